"""envs/deep_sea.py: the exploration benchmark's rules and the batched interface."""

import numpy as np

import envs


def test_deep_sea_pays_only_the_all_right_path():
    env = envs.make("deepsea", 2, seed=0, size=5)
    try:
        obs, _ = env.reset()
        assert obs.shape == (2, 25) and obs[:, 0].all()
        right = env._right_action          # the per-cell action meaning "right"
        total = np.zeros(2)
        col = np.zeros(2, int)
        for row in range(5):
            # env 0 always goes right, env 1 always left
            acts = np.array([right[row, col[0]], 1 - right[row, col[1]]])
            obs, reward, terminated, _, info = env.step(acts)
            total += reward
            col = np.clip(col + [1, -1], 0, 4)
        assert terminated.all() and info["episode_end"].all()
        np.testing.assert_allclose(total, [1.0 - 5 * 0.01 / 5, 0.0], rtol=1e-5)
        np.testing.assert_allclose(info["episode_return"], total, rtol=1e-5)
        obs, reward, _, _, info = env.step(np.zeros(2, int))
        assert info["reset_row"].all() and (reward == 0).all() and obs[:, 0].all()
    finally:
        env.close()
