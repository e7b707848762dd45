"""utilities/info_writer.py: fixed tags, and a purge that keeps every summary kind."""

import numpy as np
from tensorboard.backend.event_processing import event_accumulator

from utilities.events import read_scalars
from utilities.info_writer import InfoWriter, tag_of
from utilities.video import gif_bytes, gif_size


def test_tags():
    assert tag_of("loss") == "loss/total" and tag_of("test_clear_rate") == "test/clear_rate"
    assert tag_of("typo") == "misc/typo"


def test_purge_drops_only_what_came_after_the_checkpoint(tmp_path):
    writer = InfoWriter(tmp_path)
    gif = gif_bytes([np.full((8, 8), v, np.uint8) for v in (0, 128, 255)])
    for step in (10, 20, 30):
        writer.write({"loss": step / 10}, step)
        writer.animation("test/best_episode", gif, *gif_size(gif), step)
    writer.close()
    InfoWriter(tmp_path, purge_after=20).close()   # a resume from the checkpoint at step 20
    assert read_scalars(tmp_path)["loss/total"] == [(10, 1.0), (20, 2.0)]
    acc = event_accumulator.EventAccumulator(str(tmp_path), size_guidance={event_accumulator.TENSORS: 0})
    acc.Reload()
    assert [e.step for e in acc.Tensors("test/best_episode")] == [10, 20]
    assert acc.SummaryMetadata("test/best_episode").plugin_data.plugin_name == "images"
    # Nothing past the checkpoint: a second purge at the same step changes nothing.
    files = sorted(p.name for p in tmp_path.iterdir())
    InfoWriter(tmp_path, purge_after=20).close()
    assert [p for p in sorted(p.name for p in tmp_path.iterdir()) if p in files] == files
    assert read_scalars(tmp_path)["loss/total"] == [(10, 1.0), (20, 2.0)]
    acc = event_accumulator.EventAccumulator(str(tmp_path), size_guidance={event_accumulator.TENSORS: 0})
    acc.Reload()
    assert [e.step for e in acc.Tensors("test/best_episode")] == [10, 20]
