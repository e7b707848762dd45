"""The one owner of a run folder's layout; nothing else spells these names.

logs/<run-name>/
  config.json               the run's RunConfig (agent.config)
  events.out.tfevents.*     TensorBoard summaries
  checkpoints/              ckpt-N.* and the `checkpoint` state file (utilities.checkpoints)
  best_test_episode.mp4     the best greedy test episode so far
  best_policy/              the export of the best random-start clear rate so far (agent.export.best_keeper)
  sweep_trial.log           in a sweep (agent/distributed.py): one line per start of the trial
  .lock                     held by the process training the run (Hold)
saved_model/<run-name>/     its export (agent.export): a SavedModel, policy.keras and the card
"""

import fcntl
import json
import os
import pathlib
import tempfile
import time


EXPORT_CARD = "policy.json"   # what marks a folder as an export (agent.export writes it)
# Beside an export X while agent.export.write_export swaps a new one in: X.export-tmp (being
# built), X.export-old (the previous one). Names no user picks, as both are removed or renamed.
EXPORT_TMP, EXPORT_OLD = ".export-tmp", ".export-old"
LOCK = ".lock"


class HeldError(ValueError):
    """The folder is held by another process (Hold): it may be free later."""


class Hold:
    """This process's hold on a folder (`python -m agent train` on a run folder, a sweep's
    driver on its sweep folder) until close(): a second process is refused with a HeldError
    (one line, naming the holder's pid where the system shows it) instead of interleaving
    its checkpoints with the first's. flock on the folder's .lock: the OS drops the hold
    when its process dies, so a killed run leaves no stale lock. Nothing is written into
    .lock; a refused process writes nothing at all."""

    def __init__(self, folder, what):
        folder = pathlib.Path(folder)
        self._path = folder / LOCK
        # What an undo takes back: the folders made here (deepest first), the .lock, and the
        # times of the nearest folder that was there.
        lock_existed = self._path.exists()
        self._made = [] if lock_existed else [p for p in (folder, *folder.parents) if not p.exists()]
        self._anchor = self._made[-1].parent if self._made else folder
        self._times = None if lock_existed else self._anchor.stat()
        while True:
            self._made_lock = False   # an undo removes only a .lock made here, never another's made meanwhile
            try:
                folder.mkdir(parents=True, exist_ok=True)
                try:
                    fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
                    self._made_lock = True
                except FileExistsError:
                    try:
                        fd = os.open(self._path, os.O_RDWR)
                    except FileNotFoundError:
                        continue   # removed (an undo) meanwhile: make it
            except OSError as err:   # a file in the folder's place, a .lock another user owns, a full disk
                self._undo()
                raise _cannot_hold(what, folder, err.filename or self._path, err) from None
            try:
                _flock(fd, folder, what)
            except HeldError:
                os.close(fd)   # the .lock is the holder's: left alone
                raise
            except ValueError:
                os.close(fd)
                self._undo()
                raise
            try:
                if os.stat(self._path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)   # removed (an undo) after it was opened here: hold the one there now
        self._fd = fd

    @staticmethod
    def check(folder, what):
        """The ValueError (a HeldError if held) a Hold would raise now, if any; touches
        nothing (a folder without a .lock has never been held)."""
        path = pathlib.Path(folder) / LOCK
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return
        except OSError as err:
            raise _cannot_hold(what, folder, path, err) from None
        try:
            _flock(fd, folder, what)
        finally:
            os.close(fd)   # lets go at once

    def close(self, undo=False):
        """Let go; undo: also remove .lock and the folders if this hold made them, times as
        they were (a refused resume, a sweep that never started, leave nothing behind)."""
        if self._fd is None:
            return
        if undo:
            self._undo()
        os.close(self._fd)
        self._fd = None

    def _undo(self):
        if self._times is None:
            return   # the .lock was there before: another process's, or an earlier run's
        if self._made_lock:
            self._path.unlink(missing_ok=True)
        for made in self._made:
            try:
                made.rmdir()
            except FileNotFoundError:
                continue   # never made: a mkdir that failed part way
            except OSError:   # something else was put there meanwhile
                break
        os.utime(self._anchor, ns=(self._times.st_atime_ns, self._times.st_mtime_ns))


def _cannot_hold(what, folder, failed, err):
    return ValueError(f"{what} {str(folder)!r} cannot be held: {str(failed)!r}: {err.strerror or err}")


def _flock(fd, folder, what, tries=5):
    # A few tries: Hold.check holds the lock for an instant, which must not refuse a real Hold.
    for attempt in range(tries):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if attempt < tries - 1:
                time.sleep(0.1)
        except OSError as err:   # no flock on this file system (Lustre mounted `noflock`, say)
            raise ValueError(f"{what} {str(folder)!r} cannot be locked: {err.strerror or err} (its file "
                             f"system must support flock)") from None
    holder = _flock_holder(os.fstat(fd))
    raise HeldError(f"{what} {str(folder)!r} is in use by another process"
                     f"{f' (pid {holder})' if holder else ''}: wait for it to end or stop it first")


def _flock_holder(stat):
    """The pid holding a lock on the file of this os.stat result, from /proc/locks (Linux:
    "1: FLOCK ADVISORY WRITE <pid> <major>:<minor>:<inode> 0 EOF"); None where it cannot be
    told (another system, an NFS lock, another pid namespace)."""
    file_id = f"{os.major(stat.st_dev):02x}:{os.minor(stat.st_dev):02x}:{stat.st_ino}"
    try:
        for line in pathlib.Path("/proc/locks").read_text().splitlines():
            fields = line.split()
            if "FLOCK" in fields and fields[-3] == file_id:
                return int(fields[fields.index("FLOCK") + 3]) or None
    except (OSError, ValueError, IndexError):
        pass
    return None


def read_card(model_dir):
    """The JSON card of an export; FileNotFoundError/ValueError if it is not one."""
    model_dir = pathlib.Path(model_dir)
    if not (model_dir / "saved_model.pb").is_file():
        raise FileNotFoundError(f"{str(model_dir)!r} is not an exported policy (no saved_model.pb)")
    return json.loads((model_dir / EXPORT_CARD).read_text())


class RunFolder:
    def __init__(self, path):
        self.path = pathlib.Path(path)

    @property
    def name(self):
        return self.path.name

    @property
    def config(self):
        return self.path / "config.json"

    @property
    def checkpoints(self):
        return self.path / "checkpoints"

    @property
    def best_video(self):
        return self.path / "best_test_episode.mp4"

    @property
    def best_policy(self):
        return self.path / "best_policy"

    @property
    def trial_log(self):
        return self.path / "sweep_trial.log"

    def default_export(self, root="saved_model"):
        return pathlib.Path(root) / self.name

    def has_run(self):
        return self.config.exists()

    def owns(self, name):
        """Whether a run writes a file or folder of this name in its folder."""
        # error.txt, error.pkl: what Tune records of a sweep trial's failure in its folder.
        own = {self.config.name, self.checkpoints.name, self.best_video.name, self.trial_log.name, LOCK,
               self.best_policy.name, self.best_policy.name + EXPORT_TMP, self.best_policy.name + EXPORT_OLD,
               "error.txt", "error.pkl"}
        # The temporary files of a killed write (write_atomic's, write_mp4's) are the run's own too.
        return name.replace(".tmp", "") in own or name.startswith("events.out.")

    def foreign_files(self):
        """What the folder holds that no run writes (a new run must not mix with it)."""
        return [p for p in self.path.iterdir() if not self.owns(p.name)] if self.path.is_dir() else []

    def stray_run_files(self):
        """A run's checkpoints, best policy or event files in a folder with no config.json (a
        copied checkpoints/, say): a new run there would take them for its own. A run writes
        its config.json before any of them."""
        if self.has_run() or not self.path.is_dir():
            return []
        stray = [self.checkpoints] if self.has_checkpoint() else []
        stray += [self.best_policy] if self.best_policy.exists() else []
        return stray + sorted(self.path.glob("events.out.*"))

    def has_checkpoint(self):
        return (self.checkpoints / "checkpoint").is_file()

    def read_config(self):
        return self.config.read_text()

    def write_config(self, text):
        self.path.mkdir(parents=True, exist_ok=True)
        write_atomic(self.config, text)


def write_atomic(path, text):
    """Write a small text file so a kill leaves the old or the new one, never half."""
    path = pathlib.Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def check_writable(path, what):
    """ValueError (one line) unless `path` is a folder we can write, or one we can make:
    its nearest existing ancestor must be a folder where a trial folder can be made
    (and is removed at once: root passes every permission check, so only a real try
    tells, e.g. on a read-only file system). Leaves nothing behind, the folder's times included."""
    path = pathlib.Path(path).absolute()
    for ancestor in (path, *path.parents):
        if ancestor.exists():
            break
    if not ancestor.is_dir():
        raise ValueError(f"{what} {str(path)!r} cannot be made: {str(ancestor)!r} is a file, not a folder")
    times = ancestor.stat()
    try:
        tempfile.TemporaryDirectory(dir=ancestor, prefix=".write-check-").cleanup()
        os.utime(ancestor, ns=(times.st_atime_ns, times.st_mtime_ns))   # as it was
    except OSError as err:
        raise ValueError(f"{what} {str(path)!r} cannot be written: {str(ancestor)!r}: "
                         f"{err.strerror or err}") from None


def check_export_folder(path, run_dir):
    """ValueError (one line) unless `path` may take the export of the run in `run_dir`: a new
    or empty folder, or an earlier export. An export replaces its folder whole, so a folder
    holding anything else (the run itself, say) is refused, not emptied."""
    path, run = pathlib.Path(path).absolute(), pathlib.Path(run_dir).absolute()
    if path == run or path in run.parents:
        raise ValueError(f"export folder {str(path)!r} holds the run folder {str(run)!r}: an export replaces "
                         f"its folder whole; choose another")
    inside = path.resolve().relative_to(run.resolve()).parts if path.resolve().is_relative_to(run.resolve()) else ()
    if inside and RunFolder(run).owns(inside[0]):
        raise ValueError(f"export folder {str(path)!r} is in the run's {inside[0]}, which the run keeps itself: "
                         f"choose another")
    if path.is_file() or (path.is_dir() and any(path.iterdir()) and not (path / EXPORT_CARD).is_file()):
        raise ValueError(f"export folder {str(path)!r} holds something other than an export: an export replaces "
                         f"its folder whole; choose a new folder, an empty one or an earlier export")
    check_writable(path, "export folder")
