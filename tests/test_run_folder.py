"""utilities/run_folder.py: the layout's one owner, atomic config, the writability check."""

import os
import re

import pytest

from utilities.run_folder import Hold, RunFolder, check_writable


def test_layout_and_atomic_config(tmp_path):
    folder = RunFolder(tmp_path / "logs" / "run-a")
    assert not folder.has_run() and not folder.has_checkpoint()
    folder.write_config('{"x": 1}')
    assert folder.has_run() and folder.read_config() == '{"x": 1}'
    assert sorted(p.name for p in folder.path.iterdir()) == ["config.json"]   # no temp file left
    assert str(folder.default_export()) == "saved_model/run-a"


def test_check_writable_leaves_nothing_behind(tmp_path):
    before = tmp_path.stat().st_mtime_ns
    check_writable(tmp_path / "a" / "b", "run folder")
    assert list(tmp_path.iterdir()) == [] and tmp_path.stat().st_mtime_ns == before
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        check_writable(tmp_path / "file" / "run", "run folder")
    with pytest.raises(ValueError, match="cannot be written"):
        check_writable("/sys/run", "run folder")


def test_foreign_files_are_what_no_run_writes(tmp_path):
    folder = RunFolder(tmp_path / "run")
    assert folder.foreign_files() == []                      # not there yet
    folder.path.mkdir()
    for name in ("config.json.tmp", "events.out.tfevents.1.host", "events.out.purging.1.host.tmp",
                 "best_test_episode.tmp.mp4", "sweep_trial.log", "checkpoints",
                 "error.txt", "error.pkl", "best_policy", "best_policy.export-tmp", "best_policy.export-old"):
        (folder.path / name).touch()                         # a killed start (or Tune, of a failed trial) leaves these
    assert folder.foreign_files() == []
    (folder.path / "notes.txt").touch()
    (folder.path / "best_policy.old").touch()
    assert sorted(p.name for p in folder.foreign_files()) == ["best_policy.old", "notes.txt"]


def test_a_held_folder_refuses_a_second_hold_and_a_refusal_changes_nothing(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    before = folder.stat().st_mtime_ns
    Hold.check(folder, "run folder")            # never held: nothing to refuse, nothing made
    assert list(folder.iterdir()) == [] and folder.stat().st_mtime_ns == before
    Hold(folder, "run folder").close(undo=True)   # a refused resume's hold: gone, times as they were
    assert list(folder.iterdir()) == [] and folder.stat().st_mtime_ns == before
    held = Hold(folder, "run folder")
    message = f"run folder {str(folder)!r} is in use by another process (pid {os.getpid()})"
    with pytest.raises(ValueError, match=re.escape(message)):
        Hold.check(folder, "run folder")
    with pytest.raises(ValueError, match=re.escape(message)):
        Hold(folder, "run folder")   # a second open of .lock conflicts even in this process
    held.close()
    Hold.check(folder, "run folder")
    Hold(folder, "run folder").close()
    assert [p.name for p in folder.iterdir()] == [".lock"] and (folder / ".lock").read_text() == ""
    # A hold that made its folders takes them back with undo, the parent's times as they were.
    parent_times = tmp_path.stat().st_mtime_ns
    Hold(tmp_path / "new" / "sweep", "sweep folder").close(undo=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"] and tmp_path.stat().st_mtime_ns == parent_times
