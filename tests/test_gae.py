"""GAE and RND's reward filter against numbers worked out by hand."""

import numpy as np
import pytest

from utilities.gae import discounted_filter, gae

REWARDS = np.array([[1.0], [2.0], [3.0]])
VALUES = np.array([[0.5], [1.0], [1.5]])
LAST = np.array([2.0])
GAMMA, LAM = 0.9, 0.8


def test_episode_that_terminates():
    # t=2: 3 + .9*2 - 1.5 = 3.3
    # t=1: terminated, so no bootstrap and no recursion: 2 - 1 = 1.0
    # t=0: (1 + .9*1 - .5) + .9*.8*1.0 = 1.4 + .72 = 2.12
    adv, ret = gae(REWARDS, VALUES, LAST, [[0], [1], [0]], [[0], [1], [0]], GAMMA, LAM)
    np.testing.assert_allclose(adv[:, 0], [2.12, 1.0, 3.3], rtol=1e-6)
    np.testing.assert_allclose(ret[:, 0], [2.62, 2.0, 4.8], rtol=1e-6)


def test_time_out_bootstraps_from_the_cut_off_state():
    # t=1 truncated: bootstraps from values[2] (EnvPool keeps the final obs in the
    # next row), but the recursion stops: 2 + .9*1.5 - 1 = 2.35
    # t=0: 1.4 + .72*2.35 = 3.092
    adv, _ = gae(REWARDS, VALUES, LAST, [[0], [0], [0]], [[0], [1], [0]], GAMMA, LAM)
    np.testing.assert_allclose(adv[:, 0], [3.092, 2.35, 3.3], rtol=1e-6)


def test_non_episodic_stream_flows_across_everything():
    # t=1: 2.35 + .72*3.3 = 4.726; t=0: 1.4 + .72*4.726 = 4.80272
    zeros = np.zeros_like(REWARDS)
    adv, ret = gae(REWARDS, VALUES, LAST, zeros, zeros, GAMMA, LAM)
    np.testing.assert_allclose(adv[:, 0], [4.80272, 4.726, 3.3], rtol=1e-6)
    np.testing.assert_allclose(ret[:, 0], adv[:, 0] + VALUES[:, 0], rtol=1e-6)


def test_lambda_one_gives_discounted_returns():
    rng = np.random.default_rng(0)
    r = rng.normal(size=(5, 3))
    v = rng.normal(size=(5, 3))
    last = rng.normal(size=3)
    zeros = np.zeros_like(r)
    _, ret = gae(r, v, last, zeros, zeros, 0.97, 1.0)
    expected = last.copy()
    for t in reversed(range(5)):
        expected = r[t] + 0.97 * expected
        np.testing.assert_allclose(ret[t], expected, rtol=1e-5)


def test_reward_forward_filter_runs_forward_in_time():
    # state 10, gamma .5: 10*.5+1 = 6; 6*.5+2 = 5; 5*.5+3 = 5.5
    out, state = discounted_filter(REWARDS, np.array([10.0]), 0.5)
    np.testing.assert_allclose(out[:, 0], [6.0, 5.0, 5.5])
    assert state[0] == pytest.approx(5.5)
