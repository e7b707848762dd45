"""One tf.train.Checkpoint for all training state, written atomically, checked on restore.

Atomic: TensorFlow writes a checkpoint's data and index under temporary names and
renames them into place, then CheckpointManager replaces its `checkpoint` state
file atomically. A run killed at any moment therefore leaves the state file
pointing at a complete checkpoint (the previous one if the kill hit a write).

State too big for the checkpoint (a replay memory) goes to side files written BEFORE
the checkpoint (Dopamine's Checkpointer): the state file, written last, only names
a checkpoint whose side files are complete. Only the latest checkpoint keeps them.
"""

import json
import pathlib
import shutil
import zipfile

import keras
import numpy as np
import tensorflow as tf

from utilities.errors import first_line

META_KEY = "meta/.ATTRIBUTES/VARIABLE_VALUE"


class CheckpointMismatch(ValueError):
    """The checkpoint belongs to another game, algorithm, action set or package version."""


class DamagedCheckpoint(ValueError):
    """A checkpoint whose files are missing, cut short or not a checkpoint's (disk trouble
    or hand edits: the writes themselves are atomic)."""


def _readable(what, read, errors=(tf.errors.OpError, IndexError, json.JSONDecodeError, UnicodeDecodeError)):
    """read(), with the errors of damaged files raised as one DamagedCheckpoint naming `what`."""
    try:
        return read()
    except tf.errors.ResourceExhaustedError:
        raise          # out of memory: the files may well be whole
    except errors as err:
        raise DamagedCheckpoint(f"{what} cannot be read ({first_line(err)})") from None


class NonFiniteState(ValueError):
    """A checkpoint about to hold a NaN or Inf where none belongs: not written."""


class CheckpointStore:
    def __init__(self, directory, meta, keep=3, side=None, finite=(), **trackables):
        """meta: a JSON-able dict that a checkpoint must match to be restored here.
        side: None, or an object with save_side(folder) and load_side(folder) for the
        side files of a checkpoint (each checkpoint number gets its own folder).
        finite: the names of the trackables whose float values must all be finite to be saved."""
        self.directory, self.side = pathlib.Path(directory), side
        self.finite = {name: trackables[name] for name in finite}
        self.meta = dict(meta)
        self._meta_var = tf.Variable(json.dumps(self.meta, sort_keys=True), trainable=False)
        self.checkpoint = tf.train.Checkpoint(meta=self._meta_var, **trackables)
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(directory), max_to_keep=keep)

    @property
    def latest(self):
        return self.manager.latest_checkpoint

    def side_folder(self, number):
        return self.directory / f"side-{number}"

    def save(self, number):
        """Write checkpoint `number`, side files first; NonFiniteState (nothing written) if a
        `finite` value is NaN or Inf, checked after save_side, which may sync state into them."""
        if self.side is not None:
            folder = self.side_folder(number)
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            self.side.save_side(folder)
        bad = nonfinite_variables(self.finite)
        if bad:
            if self.side is not None:
                shutil.rmtree(self.side_folder(number), ignore_errors=True)
            raise NonFiniteState(f"non-finite values in {', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''}")
        path = self.manager.save(checkpoint_number=number)
        if self.side is not None:
            for old in self.directory.glob("side-*"):
                if old != self.side_folder(number):
                    shutil.rmtree(old, ignore_errors=True)
        return path

    def restore(self, side=True):
        """Restore the latest checkpoint; every saved value must find its object and
        every object its value. side=False leaves the side files unread (an export
        needs the weights, not a replay of gigabytes). Raises FileNotFoundError,
        CheckpointMismatch or DamagedCheckpoint."""
        path = self.latest
        if path is None:
            raise FileNotFoundError(f"no checkpoint in {self.manager.directory}")
        saved = saved_meta(path)
        if saved.get("format", 1) != self.meta.get("format", 1):
            raise CheckpointMismatch(f"checkpoint {path} comes from an older version of the package "
                                     f"(format {saved.get('format', 1)}; this version reads format "
                                     f"{self.meta.get('format', 1)}): start a new run")
        for key, value in self.meta.items():
            if saved.get(key) != value:
                raise CheckpointMismatch(f"checkpoint {path} is for {key} {saved.get(key)!r}, "
                                         f"this run has {value!r}")
        _readable(f"checkpoint {path}", lambda: self.checkpoint.restore(path).assert_consumed())
        if side and self.side is not None:
            folder = self.side_folder(checkpoint_number(path))
            _readable(f"side files {folder} of checkpoint {path}", lambda: self.side.load_side(folder),
                      (OSError, EOFError, KeyError, zipfile.BadZipFile))   # not ValueError: the replay's own
                                                                             # checks name a mismatch
        return path


def checkpoint_number(path):
    """N of a checkpoint path ".../ckpt-N"."""
    return int(str(path).rsplit("-", 1)[1])


def saved_meta(path):
    """The meta dict stored in the checkpoint at `path` (DamagedCheckpoint if unreadable)."""
    raw = _readable(f"checkpoint {path}", lambda: tf.train.load_checkpoint(path).get_tensor(META_KEY))
    return _readable(f"checkpoint {path}", lambda: json.loads(raw.decode() if isinstance(raw, bytes) else raw))


def nonfinite_variables(trackables):
    """The names (trackable name / variable path) of the float variables of `trackables` (a dict
    of models, optimizers, modules, variables) that hold a NaN or Inf."""
    out = []
    for key, obj in trackables.items():
        for v in [obj] if isinstance(obj, (tf.Variable, keras.Variable)) else obj.variables:
            if tf.as_dtype(v.dtype).is_floating and not np.isfinite(v.numpy()).all():
                out.append(key if v is obj else f"{key}/{v.path if isinstance(v, keras.Variable) else v.name[:-2]}")
    return out
