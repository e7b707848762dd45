"""Episode bookkeeping shared by every batched env."""

import numpy as np


class EpisodeCounter:
    """Sums the UNCLIPPED reward per env and reports an episode when it really ends
    (game over or time-out), not at every lost life."""

    def __init__(self, num_envs):
        self.returns = np.zeros(num_envs, np.float64)
        self.lengths = np.zeros(num_envs, np.int64)

    def reset_info(self):
        """reset()'s info: no reset rows, no episode ends."""
        none = np.zeros(len(self.returns), bool)
        return {"reset_row": none, "episode_end": none.copy(),
                "episode_return": np.zeros_like(self.returns), "episode_length": np.zeros_like(self.lengths)}

    def step(self, raw_reward, counted, episode_end):
        """raw_reward: [N] unclipped; counted: [N] rows that were real steps;
        episode_end: [N]. Returns the info entries for this step."""
        self.returns += np.where(counted, raw_reward, 0.0)
        self.lengths += counted
        info = {
            "episode_end": episode_end.copy(),
            "episode_return": np.where(episode_end, self.returns, 0.0),
            "episode_length": np.where(episode_end, self.lengths, 0),
        }
        self.returns[episode_end] = 0.0
        self.lengths[episode_end] = 0
        return info
