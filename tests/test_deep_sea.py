"""envs/deep_sea.py: the exploration benchmark's rules and the batched interface."""

import numpy as np

import envs


def test_deep_sea_pays_only_the_all_right_path():
    env = envs.make("deepsea", 3, seed=0, size=5)
    try:
        obs, _ = env.reset()
        assert obs.shape == (3, 25) and obs[:, 0].all()
        right = env._right_action          # the per-cell action meaning "right"
        total = np.zeros(3)
        col = np.zeros(3, int)
        for row in range(5):
            # env 0 always goes right, env 1 always left, env 2 left into the wall and then
            # right: it too ends in the bottom-right cell, but only the all-right path pays.
            moves = np.array([1, -1, -1 if row == 0 else 1])
            acts = np.where(moves == 1, right[row, col], 1 - right[row, col])
            obs, reward, terminated, _, info = env.step(acts)
            total += reward
            col = np.clip(col + moves, 0, 4)
        assert terminated.all() and info["episode_end"].all() and col[2] == 4
        np.testing.assert_allclose(total, [1.0 - 5 * 0.01 / 5, 0.0, -4 * 0.01 / 5], rtol=1e-5)
        np.testing.assert_allclose(info["episode_return"], total, rtol=1e-5)
        obs, reward, _, _, info = env.step(np.zeros(3, int))
        assert info["reset_row"].all() and (reward == 0).all() and obs[:, 0].all()
    finally:
        env.close()
