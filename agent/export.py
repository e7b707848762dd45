"""Exported policies: a SavedModel that loads without this package, a .keras file, a JSON card.

saved_model/<run-name>/
  saved_model.pb, variables/   tf.saved_model.load(dir)(obs) -> {"action", "logits", "value"}
  policy.keras                 keras.saving.load_model, for fine-tuning or inspection
  policy.json                  game, stage, action set, observation shape, steps, scores, env settings
"""

import json
import pathlib
import shutil

import numpy as np
import tensorflow as tf

from agent.config import TrainConfig
from agent.ppo import PPOAgent
from utilities.checkpoints import saved_meta

CARD = "policy.json"


class GreedyPolicy(tf.Module):
    """The serving function: observations in, greedy action, logits and value out."""

    def __init__(self, policy):
        super().__init__()
        self.policy = policy
        spec = tf.TensorSpec((None,) + tuple(policy.inputs[0].shape[1:]), policy.inputs[0].dtype)
        self.__call__ = tf.function(self._serve, input_signature=[spec])

    def _serve(self, obs):
        logits, value, _ = self.policy(obs, training=False)
        return {"action": tf.argmax(logits, axis=-1, output_type=tf.int32),
                "logits": logits, "value": value[:, 0]}


def export_policy(policy, out_dir, card):
    """Write the export to out_dir atomically: built beside it, then swapped in."""
    out_dir = pathlib.Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    module = GreedyPolicy(policy)
    tf.saved_model.save(module, str(tmp), signatures={"serving_default": module.__call__})
    policy.save(tmp / "policy.keras")
    (tmp / CARD).write_text(json.dumps(card, indent=2, sort_keys=True))
    old = out_dir.with_name(out_dir.name + ".old")
    if out_dir.exists():
        out_dir.rename(old)
    tmp.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)
    return out_dir


def export_run(run_dir, out_dir=None):
    """Export the policy of the run's latest checkpoint (default: saved_model/<run-name>);
    returns the export folder."""
    run_dir = pathlib.Path(run_dir)
    cfg = TrainConfig.from_json((run_dir / "config.json").read_text())
    path = tf.train.latest_checkpoint(str(run_dir / "checkpoints"))
    meta = saved_meta(path)
    agent = PPOAgent(cfg, meta["obs_shape"], meta["num_actions"],
                     "uint8" if len(meta["obs_shape"]) == 3 else "float32")
    tf.train.Checkpoint(policy=agent.policy).restore(path).expect_partial()
    reader = tf.train.load_checkpoint(path)
    card = {"game": cfg.game, "stage": cfg.env.get("stage"), "algo": cfg.algo, "seed": cfg.seed,
            "action_set": cfg.env.get("action_set"), "num_actions": meta["num_actions"],
            "obs_shape": meta["obs_shape"], "steps_trained": int(reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE")),
            # Atari runs have no greedy tests unless asked: the best training score stands in.
            "best_test_score": _finite(reader, "best_test"), "best_mean_return": _finite(reader, "best_return"),
            "env": cfg.env, "run_dir": str(run_dir), "checkpoint": path}
    return export_policy(agent.policy, out_dir or pathlib.Path("saved_model") / run_dir.name, card)


def _finite(reader, name):
    """A float variable of a checkpoint, or None if absent or never set (-inf)."""
    key = f"{name}/.ATTRIBUTES/VARIABLE_VALUE"
    value = float(reader.get_tensor(key)) if reader.has_tensor(key) else float("nan")
    return value if np.isfinite(value) else None


def read_card(model_dir):
    """The JSON card of an export; FileNotFoundError/ValueError if it is not one."""
    model_dir = pathlib.Path(model_dir)
    if not (model_dir / "saved_model.pb").is_file():
        raise FileNotFoundError(f"{str(model_dir)!r} is not an exported policy (no saved_model.pb)")
    return json.loads((model_dir / CARD).read_text())
