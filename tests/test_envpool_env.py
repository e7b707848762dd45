"""envs/envpool_env.py: the batched-env contract on real EnvPool games."""

import numpy as np

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


def test_each_named_atari_game_steps_through_the_interface():
    # Freeway, Venture and Gravitar as the notebooks and presets name them (full action
    # sets: 3, 18, 18).
    for name, actions in (("freeway", 3), ("venture", 18), ("gravitar", 18)):
        env = envs.make(name, 2, seed=1, reward_clip=False)
        try:
            obs, _ = env.reset()
            assert env.single_action_space.n == actions, name
            assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8, name
            frames = [step[0] for step in _random_steps(env, 30)]
            # The screens move: the last frame of a stack changes over 30 random steps.
            assert not np.array_equal(frames[0][:, -1], frames[-1][:, -1]), name
        finally:
            env.close()


def test_test_episodes_count_the_games_own_score_not_the_clipped_reward():
    # Training clips Atari rewards to their sign; a greedy test reports the score as
    # published (Space Invaders pays 5-30 points an alien).
    from agent.evaluation import greedy_episode

    settings = {"reward_clip": True, "max_episode_steps": 400, "repeat_action_probability": 0.0}
    fire = lambda obs: np.ones(len(obs), np.int64)    # noqa: E731  (FIRE: the same episode in both envs)
    clipped_env = envs.make("SpaceInvaders-v5", 1, 0, **settings)
    clipped_env.reset()
    clipped = 0.0
    for _ in range(400):
        _, reward, terminated, truncated, _ = clipped_env.step(np.ones(1, np.int64))
        clipped += reward[0]
        if terminated[0] or truncated[0]:
            break
    clipped_env.close()
    test_env = envs.make_test_env("SpaceInvaders-v5", 0, **settings)
    score = greedy_episode(fire, test_env)["return"]
    test_env.close()
    assert clipped > 0 and score >= 5 * clipped, (score, clipped)
