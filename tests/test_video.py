"""utilities/video.py: an mp4 is replaced whole or not at all."""

import cv2
import numpy as np
import pytest

from utilities import video


def frame_count(path):
    capture = cv2.VideoCapture(str(path))
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.release()
    return count


def test_an_interrupted_write_leaves_the_old_video(tmp_path, monkeypatch):
    path = tmp_path / "best_test_episode.mp4"
    video.write_mp4([np.full((84, 84), v, np.uint8) for v in range(5)], path)
    assert frame_count(path) == 5
    old = path.read_bytes()

    calls = []

    def interrupted(frame, code):   # Ctrl-C on the third frame
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return cv2.cvtColor(frame, code)

    with monkeypatch.context() as m:
        m.setattr(video.cv2, "cvtColor", interrupted)
        with pytest.raises(KeyboardInterrupt):
            video.write_mp4([np.zeros((84, 84, 3), np.uint8)] * 9, path)
    assert path.read_bytes() == old and [p.name for p in tmp_path.iterdir()] == [path.name]

    video.write_mp4([np.zeros((84, 84), np.uint8)] * 9, path)
    assert frame_count(path) == 9 and [p.name for p in tmp_path.iterdir()] == [path.name]


def test_an_mp4_reads_back_as_its_frames_and_plays_as_a_gif(tmp_path):
    # What the notebooks show: the run's mp4 read back, as an animated GIF.
    from PIL import Image
    import io

    path = tmp_path / "play.mp4"
    frames = [np.full((84, 84), 10 * v, np.uint8) for v in range(12)]
    video.write_mp4(frames, path)
    back, fps = video.read_mp4(path)
    # Upscaled to 336 x 336 RGB (84 x 4 >= 300); grey levels (10 apart) survive the lossy codec within 6.
    assert len(back) == 12 and back[0].shape == (336, 336, 3) and fps == 30
    assert [int(np.median(f)) for f in back] == pytest.approx([10 * v for v in range(12)], abs=6)
    gif = Image.open(io.BytesIO(video.gif_bytes(back, fps, width=256)))
    assert gif.n_frames == 12 and gif.size == (256, 256)
    # A long video: every third frame at a third of the rate, the same playing time.
    few, fps = video.read_mp4(path, max_frames=4)
    assert [int(np.median(f)) for f in few] == pytest.approx([0, 30, 60, 90], abs=6) and fps == 10
    with pytest.raises(OSError, match="cannot read the video"):
        video.read_mp4(tmp_path / "missing.mp4")


def test_frames_are_made_viewable_one_at_a_time(tmp_path):
    # An 84 x 84 gray frame becomes 336 x 336 RGB (338 KB) to be viewable: a long Atari episode
    # converted whole would take gigabytes. 200 frames: 68 MB if all were kept at once.
    import tracemalloc

    frames = (np.full((84, 84), v, np.uint8) for v in range(200))
    tracemalloc.start()
    try:
        video.write_mp4(frames, tmp_path / "long.mp4")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200 * 336 * 336 * 3 / 10, peak
    assert len(video.read_mp4(tmp_path / "long.mp4")[0]) == 200
