"""utilities/checkpoints.py: the meta record refuses foreign and older checkpoints; side files;
the non-finite check."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import ROOT
from utilities.checkpoints import CheckpointMismatch, CheckpointStore, NonFiniteState, nonfinite_variables


def test_meta_mismatch_and_exact_restore(tmp_path):
    v = tf.Variable(3.0)
    store = CheckpointStore(tmp_path, {"format": 2, "game": "freeway"}, v=v)
    store.save(1)
    v.assign(0.0)
    assert store.restore().endswith("ckpt-1") and v.numpy() == 3.0
    with pytest.raises(CheckpointMismatch, match="is for game 'freeway', this run has 'venture'"):
        CheckpointStore(tmp_path, {"format": 2, "game": "venture"}, v=v).restore()


def test_a_checkpoint_of_the_previous_format_is_refused():
    store = CheckpointStore(ROOT / "tests" / "data" / "format1_cartpole" / "checkpoints",
                            {"format": 2, "game": "cartpole"}, v=tf.Variable(0.0))
    with pytest.raises(CheckpointMismatch, match="comes from an older version of the package .format 1"):
        store.restore()


class Side:
    """Side state kept in a file; records what it wrote and read."""

    def __init__(self):
        self.value = 0

    def save_side(self, folder):
        (folder / "side.txt").write_text(str(self.value))

    def load_side(self, folder):
        self.value = int((folder / "side.txt").read_text())


def test_side_files_are_written_first_and_only_the_latest_kept(tmp_path):
    side, v = Side(), tf.Variable(0.0)
    store = CheckpointStore(tmp_path, {"format": 2}, side=side, v=v)
    for number in (1, 2, 3):
        side.value, _ = 10 * number, v.assign(number)
        store.save(number)
    assert sorted(p.name for p in tmp_path.glob("side-*")) == ["side-3"]
    # A kill after the side files of 4 but before its checkpoint: 3 stays the latest.
    (tmp_path / "side-4").mkdir()
    (tmp_path / "side-4" / "side.txt").write_text("999")
    side.value = 0
    assert store.restore().endswith("ckpt-3") and side.value == 30 and v.numpy() == 3.0


def test_nonfinite_variables_names_each_poisoned_weight_and_optimizer_slot():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="head")])
    optimizer = keras.optimizers.Adam()
    optimizer.build(model.trainable_variables)
    trackables = {"policy": model, "optimizer": optimizer, "count": tf.Variable(1.0), "steps": tf.Variable(7)}
    assert nonfinite_variables(trackables) == []
    kernel = model.get_layer("head").kernel
    kernel.assign(np.where(np.arange(6).reshape(3, 2) == 4, np.nan, kernel.numpy()))
    slot = next(v for v in optimizer.variables if v.path.endswith("head_bias_velocity"))
    slot.assign([0.0, np.inf])
    assert sorted(nonfinite_variables(trackables)) == ["optimizer/" + slot.path, "policy/" + kernel.path]
    trackables["count"].assign(np.inf)
    assert "count" in nonfinite_variables(trackables)


def test_a_checkpoint_with_a_non_finite_value_is_not_written(tmp_path):
    side, weight, window = Side(), tf.Variable([1.0, 2.0]), tf.Variable(np.nan)
    # The window's NaN is the loop's own "no episode yet": only `weight` must be finite.
    store = CheckpointStore(tmp_path, {"format": 2}, side=side, finite=["weight"], weight=weight, window=window)
    store.save(1)
    weight.assign([1.0, np.nan])
    with pytest.raises(NonFiniteState, match="non-finite values in weight"):
        store.save(2)
    assert store.latest.endswith("ckpt-1") and sorted(p.name for p in tmp_path.glob("side-*")) == ["side-1"]


def test_an_error_is_shown_as_its_first_line_or_its_type():
    from utilities.errors import first_line

    assert first_line(ValueError("  bad value 3\n  traceback of 40 lines\n")) == "bad value 3"
    assert first_line(OSError()) == "OSError" and first_line(RuntimeError(" \n ")) == "RuntimeError"
