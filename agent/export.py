"""Exported policies: a SavedModel that loads without this package, a .keras file, a JSON card.

saved_model/<run-name>/
  saved_model.pb, variables/   tf.saved_model.load(dir)(obs) -> {"action", ...the algorithm's outputs}
  policy.keras                 keras.saving.load_model, for fine-tuning or inspection
  policy.json                  game, stage, action set, observation shape, steps, scores, env settings

What is written comes from the algorithm (`serving()`); this module only writes it.
"""

import contextlib
import fcntl
import json
import os
import pathlib
import shutil
import sys

import keras
import numpy as np
import tensorflow as tf

from agent.config import learner_class
from agent.loop import LoopState, checkpoint_store
from utilities.checkpoints import nonfinite_variables, saved_meta
from utilities.errors import first_line
from utilities.events import read_scalars
from utilities.run_folder import EXPORT_CARD, EXPORT_OLD, EXPORT_TMP, read_card


def write_export(module, model, out_dir, card):
    """Write the export to out_dir atomically: built beside it, then swapped in."""
    out_dir = pathlib.Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with one_writer(out_dir.parent):
        recover_export(out_dir)
        tmp = out_dir.with_name(out_dir.name + EXPORT_TMP)
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            tf.saved_model.save(module, str(tmp), signatures={"serving_default": module.__call__})
            model.save(tmp / "policy.keras")
            (tmp / EXPORT_CARD).write_text(json.dumps(card, indent=2, sort_keys=True))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)   # a full disk, say: the previous export stays, nothing else
            raise
        old = out_dir.with_name(out_dir.name + EXPORT_OLD)
        if out_dir.exists():
            out_dir.rename(old)
        tmp.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    return out_dir


@contextlib.contextmanager
def one_writer(folder):
    """Exports into `folder` one at a time (`export` of a run while the run writes its own
    would swap halves of each other's in): flock on the folder, waited for. Where the file
    system has no flock on folders (NFS), without."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another export into {folder} to end", file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            pass
        yield
    finally:
        os.close(fd)   # lets go


def recover_export(out_dir):
    """An export killed between its two renames left the previous export as <out_dir>.export-old
    and no <out_dir>: put the previous one back (any other .export-old is a finished one's)."""
    old = out_dir.with_name(out_dir.name + EXPORT_OLD)
    if old.exists() and not out_dir.exists():
        old.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)


def export(cfg, algorithm, state, folder, checkpoint, num_actions, obs_shape, out_dir=None, clear_rate=None):
    """Export a run's policy as it stands (default: saved_model/<run-name>). clear_rate: the
    card's {rate, episodes, at_step} when the caller has just measured it (else looked up)."""
    module, model = algorithm.serving()
    # A step can leave NaN weights behind a finite loss; the loop stops at the next update,
    # but a clear-rate test in between would keep that policy as the best (0 clears).
    bad = nonfinite_variables({"policy": model})
    if bad:
        raise ValueError(f"the policy holds NaN or Inf weights ({bad[0]}): not exported")
    card = {"game": cfg.game, "stage": cfg.env.get("stage"), "algo": cfg.algo, "seed": cfg.seed,
            "action_set": cfg.env.get("action_set"), "num_actions": int(num_actions),
            "obs_shape": list(obs_shape), "steps_trained": int(state.step.numpy()),
            # Atari runs have no greedy tests unless asked: the best training score stands in.
            "best_test_score": _finite(state.best_test), "best_mean_return": _finite(state.best_return),
            "env": cfg.env, "run_dir": str(folder.path), "checkpoint": checkpoint,
            "init_from": cfg.init_from}
    # What a user of a Mario policy wants to know (#12): how often it clears from random starts.
    if clear_rate is None:
        try:
            found = clear_rate_at(folder, card["steps_trained"])
        except (tf.errors.OpError, OSError, ValueError):   # unreadable event files: no rate, still an export
            found = None
        if found:
            # Runs before test/clear_episodes was logged: the run's option now stands in.
            episodes = found[2] if found[2] is not None else cfg.options.get("clear_episodes")
            clear_rate = {"rate": found[1], "episodes": episodes, "at_step": found[0]}
    if clear_rate:
        card["clear_rate"] = clear_rate
    return write_export(module, model, out_dir or folder.default_export(), card)


def best_keeper(cfg, algorithm, folder, num_actions, obs_shape):
    """The loop's after_clear_rate for a run with random-start tests: a test whose clear rate
    beats every earlier one of the run over as many episodes exports the policy to the run's
    best_policy/ (the clear rate swings between tests, 0.3-0.75 within 400k steps on 1-1,
    and a checkpoint is kept only for the last three). The best so far lives in that
    export's card alone, so a resume goes on comparing against it. A failed export (a full
    disk) is a warning: the run goes on."""
    def keep(rate, episodes, state):
        rate = round(float(rate), 4)
        try:
            recover_export(folder.best_policy)    # before the card is read: a killed swap hides it
            best = best_clear_rate(folder)
            if best and best.get("episodes") == episodes and not rate > best["rate"]:
                return None
            return export(cfg, algorithm, state, folder, None, num_actions, obs_shape, folder.best_policy,
                          {"rate": rate, "episodes": episodes, "at_step": int(state.step.numpy())})
        except (OSError, tf.errors.OpError, ValueError) as err:
            print(f"warning: the policy of clear rate {rate:g} was not kept in {folder.best_policy}: {first_line(err)}",
                  file=sys.stderr)
            return None

    return keep


def best_clear_rate(folder):
    """The clear-rate record {rate, episodes, at_step} of the run's best_policy/, or None where
    there is none (or it cannot be read: the next test's policy replaces it)."""
    try:
        best = read_card(folder.best_policy)["clear_rate"]
        numbers = isinstance(best.get("rate"), (int, float)) and isinstance(best.get("at_step"), int)
        return best if numbers else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def clear_rate_at(folder, step):
    """(step, rate, episodes) of the last random-start clear-rate test the run logged at or
    before `step` (its latest checkpoint's), or None before the first; episodes None where
    the run did not log their count."""
    scalars = read_scalars(folder.path)
    points = [(s, round(v, 4)) for s, v in scalars.get("test/clear_rate", []) if s <= step]
    if not points:
        return None
    counts = dict(scalars.get("test/clear_episodes", []))
    at, rate = points[-1]
    return at, rate, int(counts[at]) if at in counts else None


def start_from(algorithm, cfg):
    """--init-from: a new run's learner takes the exported network's weights (its optimiser, and
    RND and the replay where it has them, start afresh). ValueError when the networks differ."""
    base = cfg.init_from
    model = keras.saving.load_model(pathlib.Path(base["model"]) / "policy.keras", compile=False)
    _, own = algorithm.serving()
    if [tuple(w.shape) for w in model.weights] != [tuple(w.shape) for w in own.weights]:
        raise ValueError(f"its {base['algo']} network does not fit a {cfg.algo} network of this run "
                         f"(other layers or shapes)")
    algorithm.start_from(model.get_weights())


def export_run(cfg, folder, out_dir=None):
    """Export the policy of a run folder's latest checkpoint (cfg: its RunConfig, read and
    checked by the caller); returns the export folder. Raises ValueError (or
    CheckpointMismatch) for a run this version cannot read."""
    # The state file's newest entry, read without latest_checkpoint's file check (which logs
    # an ERROR line of its own when the files are gone): saved_meta names what is wrong.
    record = tf.train.get_checkpoint_state(str(folder.checkpoints))
    if record is None or not record.model_checkpoint_path:
        raise FileNotFoundError(f"no checkpoint named in {str(folder.checkpoints / 'checkpoint')!r}")
    path = record.model_checkpoint_path
    meta = saved_meta(path)
    shape, dtype, actions = meta["obs_shape"], meta.get("obs_dtype"), meta["num_actions"]
    algorithm, state = learner_class(cfg.algo)(cfg, shape, dtype, actions), LoopState()
    # The card names the checkpoint restored: a run still training may have saved a newer one since.
    path = checkpoint_store(folder, cfg, algorithm, state, shape, dtype, actions).restore(side=False)
    return export(cfg, algorithm, state, folder, path, actions, shape, out_dir)


def _finite(variable):
    value = float(variable.numpy())
    return value if np.isfinite(value) else None
