"""agent/rnd.py: RND's rewards against a numpy reference, its warm-up and its input."""

import numpy as np
import pytest

from agent.config import RNDConfig
from agent.rnd import RND
from utilities.normalizer import merge_moments


def reference_errors(rnd, obs):
    """Predictor error per row in numpy: the last frame, whitened by the input statistics and
    clipped to 5 (Burda et al. 2018), through both networks, squared error averaged."""
    mean, var = rnd.obs_norm.mean.numpy(), rnd.obs_norm.var.numpy()
    x = np.clip((obs[:, -1:].astype(np.float64) - mean) / np.sqrt(var + 1e-8), -5, 5).astype(np.float32)
    return np.mean((rnd.predictor(x).numpy() - rnd.target(x).numpy()) ** 2, axis=-1)


def test_rewards_are_errors_over_the_filtered_return_std():
    rnd = RND(RNDConfig(int_gamma=0.5), (4, 36, 36), "uint8", num_envs=2)
    rng = np.random.default_rng(0)
    rollout = rng.integers(0, 255, size=(3, 2, 4, 36, 36), dtype=np.uint8)
    last = rng.integers(0, 255, size=(2, 4, 36, 36), dtype=np.uint8)
    rnd.obs_norm.update(rng.integers(0, 255, size=(50, 1, 36, 36)))
    nxt = np.concatenate([rollout[1:], last[None]])                   # row t's next observation
    raw = np.stack([reference_errors(rnd, n) for n in nxt])          # before the statistics move
    rewards = rnd.rewards(rollout, last)
    filtered, running = np.zeros((3, 2)), np.zeros(2)
    for t in range(3):                                                # forward in time
        running = 0.5 * running + raw[t]
        filtered[t] = running
    np.testing.assert_allclose(rnd.filter.numpy(), running, rtol=1e-5)
    # The return statistics: their prior (mean 0, var 1, count 1e-4) merged with the filtered values.
    _, var, _ = merge_moments(0.0, 1.0, 1e-4, filtered.mean(), filtered.var(), filtered.size)
    assert rnd.return_norm.var.numpy() == pytest.approx(var, rel=1e-5)
    np.testing.assert_allclose(rewards, raw / np.sqrt(var + 1e-8), rtol=1e-5)
    assert rnd.obs_norm.count.numpy() == pytest.approx(50 + 6, abs=1e-3)   # only the last frames, 3 x 2


def test_warm_up_merges_last_frames_in_chunks_and_input_is_whitened_and_clipped():
    rnd = RND(RNDConfig(obs_clip=1.0), (4, 36, 36), "uint8", num_envs=3)
    frames = [np.full((3, 4, 36, 36), 10 * k, np.uint8) for k in range(5)]
    for f in frames:
        rnd.warm_up(f, flush_every=2)
    assert rnd.obs_norm.count.numpy() == pytest.approx(4 * 3, abs=1e-3)   # two flushes of 2 x 3
    rnd.end_warm_up()
    assert rnd.obs_norm.count.numpy() == pytest.approx(5 * 3, abs=1e-3)
    np.testing.assert_allclose(rnd.obs_norm.mean.numpy(), 20.0, rtol=1e-4)
    x = rnd.obs_norm.normalize(np.full((1, 1, 36, 36), 40.0), clip=rnd.cfg.obs_clip).numpy()
    assert np.all(x == 1.0)   # (40 - 20) / std(0..40) = 1.41, clipped to 1
