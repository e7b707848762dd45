"""Rollout storage: both advantage streams with their coefficients, minibatches."""

import numpy as np
import pytest

from tests.test_gae import GAMMA, LAM, LAST, REWARDS, VALUES
from utilities.optimization_batch import OptimizationBatch


def test_batch_combines_both_streams_with_their_coefficients():
    batch = OptimizationBatch(3, 1, (2,), np.float32)
    for t in range(3):
        batch.add(t, np.zeros(2), 0, 0.0, VALUES[t], VALUES[t], REWARDS[t], t == 1, t == 1, True)
    batch.rewards_int[:] = REWARDS
    batch.compute_advantages(LAST, LAST, GAMMA, GAMMA, LAM, ext_coef=2.0, int_coef=1.0)
    np.testing.assert_allclose(batch.advantages[:, 0],
                               2 * np.array([2.12, 1.0, 3.3]) + np.array([4.80272, 4.726, 3.3]), rtol=1e-6)
    np.testing.assert_allclose(batch.returns_int[:, 0], [4.80272 + 0.5, 4.726 + 1.0, 4.8], rtol=1e-6)


def test_minibatches_cover_the_rollout_once():
    batch = OptimizationBatch(4, 3, (1,), np.float32)
    batch.obs[:] = np.arange(12, dtype=np.float32).reshape(4, 3, 1)
    seen = np.concatenate([mb["obs"][:, 0] for mb in batch.minibatches(4, np.random.default_rng(0))])
    assert sorted(seen.tolist()) == list(range(12))


@pytest.mark.parametrize("obs_shape, dtype", [((4, 84, 84), np.uint8), ((4,), np.float32)])
def test_required_bytes_match_the_arrays(obs_shape, dtype):
    batch = OptimizationBatch(16, 3, obs_shape, dtype)
    arrays = [v for v in vars(batch).values() if isinstance(v, np.ndarray)]
    assert len(arrays) == 13
    assert OptimizationBatch.required_bytes(16, 3, obs_shape, dtype) == sum(a.nbytes for a in arrays)
