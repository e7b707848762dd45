"""utilities/info_writer.py: fixed tags, and a purge that keeps every summary kind and survives a kill."""

import shutil
import time

import numpy as np
from tensorboard.backend.event_processing import event_accumulator

from utilities.events import read_scalars
from utilities import info_writer
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
    def files():
        return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in tmp_path.iterdir()}

    before = files()
    InfoWriter(tmp_path, purge_after=20).close()
    after = files()
    assert {name: after[name] for name in before} == before      # untouched
    assert len(set(after) - set(before)) == 1                    # the new writer's own file
    assert read_scalars(tmp_path)["loss/total"] == [(10, 1.0), (20, 2.0)]
    acc = event_accumulator.EventAccumulator(str(tmp_path), size_guidance={event_accumulator.TENSORS: 0})
    acc.Reload()
    assert [e.step for e in acc.Tensors("test/best_episode")] == [10, 20]


def test_a_purge_killed_at_any_point_loses_and_duplicates_nothing(tmp_path, monkeypatch):
    def run_folder(name):   # a killed run: a first file, then a resumed one past its checkpoint
        folder = tmp_path / name
        for steps in ((10, 20, 30), (40, 50)):
            writer = InfoWriter(folder)
            for step in steps:
                writer.write({"loss": step / 10}, step)
            writer.close()
            time.sleep(1.1)   # event file names hold the second they were made
        return folder

    clean = run_folder("clean")
    InfoWriter(clean, purge_after=40).close()
    expected = read_scalars(clean)
    assert expected["loss/total"] == [(10, 1.0), (20, 2.0), (30, 3.0), (40, 4.0)]

    # Killed after the journal was complete, before any old file went: TensorBoard still
    # reads the old files only, and the next start finishes the purge.
    whole = run_folder("whole")
    with monkeypatch.context() as m:
        m.setattr(info_writer, "_finish_purge", lambda logdir: None)
        InfoWriter(whole, purge_after=40).close()
    assert len(list(whole.glob(info_writer.JOURNAL + "*"))) == 1
    assert read_scalars(whole)["loss/total"] == [(10, 1.0), (20, 2.0), (30, 3.0), (40, 4.0), (50, 5.0)]
    # Killed while the old files went: one of the two is gone.
    half = tmp_path / "half"
    shutil.copytree(whole, half)
    min(half.glob("events.out.tfevents.*")).unlink()
    # Killed while the journal was written: the old files are whole, the journal is not.
    torn = run_folder("torn")
    (torn / f"{info_writer.JOURNAL}1.host.tmp").write_bytes(b"\x00" * 7)

    for folder in (whole, half, torn):
        InfoWriter(folder, purge_after=40).close()
        assert read_scalars(folder) == expected, folder.name
        assert not list(folder.glob(info_writer.JOURNAL + "*")), folder.name
        assert len(list(folder.glob("*.purged.v2"))) == 1, folder.name
