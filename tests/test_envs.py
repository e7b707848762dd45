"""The batched-env contract on real EnvPool games."""

import numpy as np
import pytest

import envs


def _random_steps(env, steps, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        yield env.step(rng.integers(env.single_action_space.n, size=env.num_envs))


def test_freeway_shapes_dtypes_and_reset_rows():
    env = envs.make("freeway", 4, seed=3, reward_clip=True, max_episode_steps=50)
    try:
        assert env.num_envs == 4
        assert env.single_observation_space.shape == (4, 84, 84)
        assert env.single_action_space.n == 3
        obs, info = env.reset()
        assert obs.shape == (4, 4, 84, 84) and obs.dtype == np.uint8
        assert not info["reset_row"].any()
        prev_done = np.zeros(4, bool)
        resets = 0
        for obs, reward, terminated, truncated, info in _random_steps(env, 120):
            assert obs.shape == (4, 4, 84, 84) and obs.dtype == np.uint8
            assert reward.shape == terminated.shape == truncated.shape == (4,)
            # The step after an end is EnvPool's auto-reset: flagged, reward 0.
            np.testing.assert_array_equal(info["reset_row"], prev_done)
            assert np.all(reward[info["reset_row"]] == 0)
            resets += info["reset_row"].sum()
            ends = info["episode_end"]
            # Time-out after 50 steps: every env ends an episode of 50 real steps.
            assert np.all(info["episode_length"][ends] == 50)
            prev_done = terminated | truncated
        assert resets == 8   # 2 episode ends x 4 envs within 120 steps
    finally:
        env.close()


def test_episode_returns_are_unclipped():
    # Asterix pays 50 per item: clipping to 1 would be visible in the return.
    env = envs.make("Asterix-v5", 4, seed=0, reward_clip=True, max_episode_steps=300)
    try:
        env.reset()
        clipped = np.zeros(4)
        returns = []
        for _, reward, _, _, info in _random_steps(env, 700):
            clipped += reward
            ends = info["episode_end"]
            returns.extend(info["episode_return"][ends])
            assert np.all(np.abs(reward) <= 1.0)
        assert len(returns) >= 4
        assert max(returns) >= 50 and max(returns) % 50 == 0
        assert sum(returns) > clipped.sum()
    finally:
        env.close()


def test_lost_lives_are_not_episode_ends():
    env = envs.make("Breakout-v5", 2, seed=1, episodic_life=True)
    try:
        env.reset()
        life_losses = episodes = 0
        for _, _, terminated, _, info in _random_steps(env, 3000):
            life_losses += terminated.sum()
            episodes += info["episode_end"].sum()
            assert np.all(info["lives"][info["episode_end"]] == 0)
            if episodes >= 2:
                break
        assert episodes >= 2 and life_losses >= 5 * episodes
    finally:
        env.close()


def test_vector_task_goes_through_the_same_interface():
    env = envs.make("cartpole", 3, seed=0)
    try:
        obs, _ = env.reset()
        assert obs.shape == (3, 4) and obs.dtype == np.float32
        lengths = []
        for _, reward, _, _, info in _random_steps(env, 200):
            lengths.extend(info["episode_length"][info["episode_end"]])
        # A random CartPole episode lasts ~22 steps; each pays 1 per step.
        assert len(lengths) > 10 and 10 < np.mean(lengths) < 40
    finally:
        env.close()


@pytest.mark.parametrize("name", ["pong", "Freeway-v4", "abc"])
def test_unknown_game_is_refused(name):
    with pytest.raises(ValueError, match="unknown game"):
        envs.resolve_game(name)


def test_any_envpool_atari_id_is_a_game():
    task, presets = envs.resolve_game("Pong-v5")
    assert task == "Pong-v5" and set(presets) == set(envs.ALGOS)


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
