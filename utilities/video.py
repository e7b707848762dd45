"""Episode videos as mp4 (OpenCV), from the observations the agent saw."""

import cv2
import numpy as np


def frames_from_obs(obs, scale=4):
    """One viewable RGB frame from one observation: the newest frame of an image
    stack (upscaled), or None for vector observations."""
    if obs.ndim != 3:
        return None
    frame = obs[-1]
    frame = cv2.resize(frame, (frame.shape[1] * scale, frame.shape[0] * scale),
                       interpolation=cv2.INTER_NEAREST)
    return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)


def write_mp4(frames, path, fps=30):
    """Write RGB uint8 frames [T, H, W, 3] to an mp4 file."""
    frames = [np.asarray(f, np.uint8) for f in frames]
    if not frames:
        raise ValueError("no frames to write")
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def gif_bytes(frames, fps=30, max_frames=600, width=128):
    """An animated GIF of (subsampled, shrunk) frames, for TensorBoard's image tab."""
    from PIL import Image

    step = max(1, len(frames) // max_frames)
    images = []
    for frame in frames[::step]:
        height = int(frame.shape[0] * width / frame.shape[1])
        images.append(Image.fromarray(cv2.resize(np.asarray(frame, np.uint8), (width, height),
                                                 interpolation=cv2.INTER_AREA)))
    import io
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:],
                   duration=int(1000 * step / fps), loop=0)
    return buffer.getvalue()
