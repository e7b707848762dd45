"""Deep Sea (Osband et al. 2019, bsuite): the standard test of deep exploration.

An N x N grid; the agent starts top-left and every step drops one row while
moving left or right. Only a move right from the bottom-right cell pays (+1), which
the all-right path alone reaches, and every move right costs 0.01 / N, so a dithering
agent learns to go left: random actions find the reward with probability 2^-N. Which
action means "right" is drawn per cell, so no action bias finds it either.
Observations are one-hot [N * N] float32.

The package's batched interface (envs/__init__.py), with EnvPool's next-step auto-reset.
"""

import gymnasium
import numpy as np

from envs.episodes import EpisodeCounter


class DeepSea:
    @staticmethod
    def observation_space(size=20):
        return gymnasium.spaces.Box(0.0, 1.0, (size * size,), np.float32)

    def __init__(self, num_envs, seed, size=20):
        self.num_envs, self.size = num_envs, size
        self.single_observation_space = self.observation_space(size)
        self.single_action_space = gymnasium.spaces.Discrete(2)
        self._right_action = np.random.default_rng(seed).integers(2, size=(size, size))
        self._row = np.zeros(num_envs, np.int64)
        self._col = np.zeros(num_envs, np.int64)
        self._ended = np.zeros(num_envs, bool)
        self._episodes = EpisodeCounter(num_envs)

    def _obs(self):
        obs = np.zeros((self.num_envs, self.size * self.size), np.float32)
        obs[np.arange(self.num_envs), self._row * self.size + self._col] = 1.0
        return obs

    def reset(self):
        self._row[:], self._col[:], self._ended[:] = 0, 0, False
        self._episodes = EpisodeCounter(self.num_envs)
        return self._obs(), self._episodes.reset_info()

    def step(self, actions):
        reset_row = self._ended.copy()
        right = np.asarray(actions) == self._right_action[self._row, self._col]
        # bsuite pays +1 for a move right FROM the right edge, which only the all-right path
        # reaches (in the bottom row); a path that bumps the left wall first also ends in the
        # bottom-right cell, one move cost cheaper, and must not be paid.
        reward = np.where(right, -0.01 / self.size, 0.0) + (right & (self._col == self.size - 1))
        self._col = np.clip(self._col + np.where(right, 1, -1), 0, self.size - 1)
        self._row = self._row + 1
        terminated = self._row == self.size
        # Next-step auto-reset, as EnvPool: the row after an end only resets.
        reward[reset_row] = 0.0
        terminated[reset_row] = False
        self._row[reset_row] = self._col[reset_row] = 0
        self._ended = terminated.copy()   # the caller may write to what it is returned
        self._row[terminated] = self.size - 1   # stays in range until the reset row
        obs = self._obs()
        obs[terminated] = 0.0                   # past the bottom row: no cell
        reward = reward.astype(np.float32)
        info = {"reset_row": reset_row}
        info.update(self._episodes.step(reward, ~reset_row, terminated))
        return obs, reward, terminated, np.zeros(self.num_envs, bool), info

    def close(self):
        pass
