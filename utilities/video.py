"""Episode videos: mp4 files (OpenCV) and GIFs for TensorBoard and notebooks (Pillow)."""

import io
import itertools
import pathlib

import cv2
import numpy as np
from PIL import Image


def frames_from_obs(obs):
    """The frame to keep from one observation: the newest frame of an image stack
    (84 x 84 gray, 7 KB: long episodes stay small), or None for vector observations."""
    return obs[-1].copy() if obs.ndim == 3 else None


def _viewable(frame, min_width=300):
    """RGB, and small frames (Atari's 84 x 84) upscaled so a player shows them large."""
    frame = np.asarray(frame, np.uint8)
    if frame.ndim == 2:
        frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    scale = max(1, -(-min_width // frame.shape[1]))
    if scale > 1:
        frame = cv2.resize(frame, (frame.shape[1] * scale, frame.shape[0] * scale),
                           interpolation=cv2.INTER_NEAREST)
    return frame


def write_mp4(frames, path, fps=30):
    """Write frames (RGB [H, W, 3] or gray [H, W] uint8) to an mp4 file, atomically: a kill
    leaves the old video or the new one, never half (OpenCV picks the container by the
    name's ending, so the temporary name ends in .mp4 too). Frames are made viewable one at
    a time: an Atari frame grows 48-fold (84 x 84 gray to 336 x 336 RGB)."""
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise ValueError("no frames to write")
    first = _viewable(first)
    path = pathlib.Path(path)
    tmp = path.with_name(f"{path.stem}.tmp{path.suffix}")
    height, width = first.shape[:2]
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    try:
        if not writer.isOpened():   # OpenCV fails silently otherwise
            raise OSError(f"cannot write the video {str(path)!r}")
        for frame in itertools.chain([first], map(_viewable, frames)):
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        writer.release()
        tmp.replace(path)
    finally:
        writer.release()
        tmp.unlink(missing_ok=True)
    return path


def read_mp4(path, max_frames=600):
    """(RGB frames, their rate) of a video write_mp4 wrote: at most `max_frames`, evenly
    spaced (all a GIF keeps; a long Atari episode whole would take gigabytes)."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    try:
        step = max(1, -(-int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) // max_frames))
        fps = (capture.get(cv2.CAP_PROP_FPS) or 30) / step
        index = 0
        while capture.grab():
            if index % step == 0:
                frames.append(cv2.cvtColor(capture.retrieve()[1], cv2.COLOR_BGR2RGB))
            index += 1
    finally:
        capture.release()
    if not frames:
        raise OSError(f"cannot read the video {str(path)!r}")
    return frames, fps


def gif_bytes(frames, fps=30, max_frames=600, width=128):
    """An animated GIF of (subsampled, shrunk) frames, for TensorBoard's image tab and the
    notebooks (browsers' video players do not decode OpenCV's mp4v, every one shows a GIF)."""
    step = max(1, len(frames) // max_frames)
    images = []
    for frame in frames[::step]:
        frame = _viewable(frame, min_width=1)
        height = int(frame.shape[0] * width / frame.shape[1])
        images.append(Image.fromarray(cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)))
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:],
                   duration=int(1000 * step / fps), loop=0)
    return buffer.getvalue()


def gif_size(gif):
    """(width, height) of a GIF."""
    return Image.open(io.BytesIO(gif)).size
