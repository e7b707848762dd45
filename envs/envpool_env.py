"""EnvPool tasks (Atari and classic control) behind the package's batched interface.

The batched interface is described in envs/__init__.py.
"""

import warnings

import envpool
import numpy as np

from envs.episodes import EpisodeCounter


# EnvPool declares classic-control bounds in float64; Gymnasium warns on the cast.
PRECISION_WARNING = ".*precision lowered.*"


class EnvPoolEnv:
    @staticmethod
    def observation_space(task_id, num_envs, **kwargs):
        """The task's observation space from its spec: no env is made. ValueError for
        settings EnvPool refuses (its checks are asserts, often without a message)."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=PRECISION_WARNING)
            try:
                return envpool.make_spec(task_id, num_envs=num_envs, **kwargs).observation_space
            except (AssertionError, TypeError) as err:
                raise ValueError(f"EnvPool refuses the settings {kwargs} for {num_envs} envs of {task_id}"
                                 f"{': ' + str(err) if str(err) else ''}") from None

    def __init__(self, task_id, num_envs, seed, **kwargs):
        # Synchronous mode (batch_size == num_envs): one call steps every env in
        # EnvPool's C++ thread pool, no Python loop over envs.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=PRECISION_WARNING)
            self._env = envpool.make(task_id, env_type="gymnasium", num_envs=num_envs,
                                     seed=seed, **kwargs)
            self.single_observation_space = self._env.observation_space
            self.single_action_space = self._env.action_space
        self.task_id = task_id
        self.num_envs = num_envs
        self._episodes = EpisodeCounter(num_envs)
        self._ended = np.zeros(num_envs, bool)

    def reset(self):
        obs, info = self._env.reset()
        self._episodes = EpisodeCounter(self.num_envs)
        self._ended[:] = False
        return obs, {"env_id": info["env_id"], **self._episodes.reset_info()}

    def step(self, actions):
        obs, reward, terminated, truncated, info = self._env.step(np.asarray(actions))
        # With next-step auto-reset every step after a done is a reset step (after
        # a lost life too, under episodic_life): its action was ignored.
        reset_row = self._ended
        self._ended = terminated | truncated
        # Atari reports the unclipped reward and the real game over in info;
        # classic-control tasks have neither, and their reward is the raw one.
        raw = info.get("reward", reward)
        game_over = np.asarray(info.get("terminated", terminated), bool) | truncated
        out = {"reset_row": reset_row, "env_id": info["env_id"]}
        if "lives" in info:
            out["lives"] = info["lives"]
        out.update(self._episodes.step(raw, ~reset_row, game_over))
        return obs, reward, terminated, truncated, out

    def close(self):
        self._env.close()
