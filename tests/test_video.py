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
