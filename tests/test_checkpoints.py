"""utilities/checkpoints.py: the meta record refuses foreign and older checkpoints."""

import pytest
import tensorflow as tf

from tests.conftest import ROOT
from utilities.checkpoints import CheckpointMismatch, CheckpointStore


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
