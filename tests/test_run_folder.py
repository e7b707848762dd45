"""utilities/run_folder.py: the layout's one owner, atomic config, the writability check."""

import errno
import fcntl
import os
import re
import threading
import time

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


def test_a_hold_waits_out_a_momentary_check_but_not_a_holder(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / ".lock").touch()
    # Another process's Hold.check holds the lock for an instant: a Hold started then still gets it.
    fd = os.open(folder / ".lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    threading.Timer(0.05, os.close, [fd]).start()
    Hold(folder, "run folder").close()
    fd = os.open(folder / ".lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        start = time.monotonic()
        with pytest.raises(ValueError, match="is in use by another process"):
            Hold(folder, "run folder")
        assert time.monotonic() - start >= 0.4   # its tries, spread over 0.4 s
    finally:
        os.close(fd)


def test_a_lock_that_cannot_be_opened_or_taken_is_a_one_line_refusal(tmp_path, monkeypatch):
    folder = tmp_path / "run"
    (folder / ".lock").mkdir(parents=True)    # what root, who passes every permission check, cannot open
    for hold in (Hold.check, Hold):
        with pytest.raises(ValueError, match=re.escape(f"run folder {str(folder)!r} cannot be held: "
                                                       f"{str(folder / '.lock')!r}: Is a directory")):
            hold(folder, "run folder")
    (folder / ".lock").rmdir()

    def no_flock(fd, operation):   # a file system without flock (Lustre mounted noflock: ENOSYS)
        raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS))

    # A file where the folder should be.
    (tmp_path / "file").touch()
    with pytest.raises(ValueError, match=re.escape(f"run folder {str(tmp_path / 'file')!r} cannot be held: "
                                                   f"{str(tmp_path / 'file')!r}: File exists")):
        Hold(tmp_path / "file", "run folder")
    (tmp_path / "file").unlink()

    monkeypatch.setattr(fcntl, "flock", no_flock)
    times = tmp_path.stat().st_mtime_ns
    new = tmp_path / "new" / "run"
    with pytest.raises(ValueError, match=re.escape(f"run folder {str(new)!r} cannot be locked: "
                                                   f"Function not implemented (its file system must support flock)")):
        Hold(new, "run folder")
    # The refusal took back the .lock and the folders it made.
    assert [p.name for p in tmp_path.iterdir()] == ["run"] and tmp_path.stat().st_mtime_ns == times
