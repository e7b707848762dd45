"""Exported policies: a SavedModel that loads without this package, a .keras file, a JSON card.

saved_model/<run-name>/
  saved_model.pb, variables/   tf.saved_model.load(dir)(obs) -> {"action", "logits", "value"}
  policy.keras                 keras.saving.load_model, for fine-tuning or inspection
  policy.json                  game, stage, action set, observation shape, steps, scores, env settings
"""

import json
import pathlib
import shutil

import tensorflow as tf

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


def read_card(model_dir):
    """The JSON card of an export; FileNotFoundError/ValueError if it is not one."""
    model_dir = pathlib.Path(model_dir)
    if not (model_dir / "saved_model.pb").is_file():
        raise FileNotFoundError(f"{str(model_dir)!r} is not an exported policy (no saved_model.pb)")
    return json.loads((model_dir / CARD).read_text())
