"""agent/evaluation.py: greedy episodes and clear rates over several envs at once."""

import numpy as np

from agent.evaluation import clear_rate


class ScriptedEnds:
    """Four envs: env 0 clears at step 3; env 1 dies at step 2 and its auto-reset row
    then shows a clear (it must not count); env 2 never ends; env 3 clears at step 5."""

    def reset(self):
        self.t = 0
        return np.zeros((4, 1)), {}

    def step(self, actions):
        self.t += 1
        t = self.t
        terminated = np.array([t == 3, t == 2, False, t == 5])
        cleared = np.array([t == 3, t == 3, False, t == 5])
        return np.zeros((4, 1)), np.zeros(4), terminated, np.zeros(4, bool), {"cleared": cleared,
                                                                             "episode_end": terminated}


def test_clear_rate_counts_each_env_first_episode_and_cuts_stuck_ones():
    env, calls = ScriptedEnds(), []

    def act(obs):
        calls.append(len(calls))
        k = len(calls)
        return np.array([k % 2, k % 2, 0, k % 2])   # env 2 repeats one action

    assert clear_rate(act, env, max_repeats=10) == (0.5, 4)
    # Env 2's 11th identical action is its 10th repeat: the cut, as in greedy_episode.
    assert env.t == 11


class Walker:
    """Two envs that report progress but no clears: env 0 walks 3 steps right and ends,
    env 1 walks back and forth for 4 steps, losing a life on the way."""

    def reset(self):
        self.t = 0
        return np.zeros((2, 1)), {}

    def step(self, actions):
        self.t += 1
        progress = np.array([10 * self.t, [5, 9, 2, 7][min(self.t, 4) - 1]])
        terminated = np.array([self.t == 3, self.t == 4])
        # Env 1 loses a life at step 2 (terminated under EnvPool's episodic_life); its game ends at 4.
        lost_life = np.array([False, self.t == 2])
        return (np.zeros((2, 1)), np.ones(2), terminated | lost_life, np.zeros(2, bool),
                {"progress": progress, "episode_end": terminated})


def test_episodes_report_what_the_env_reports():
    from agent.evaluation import greedy_episodes

    out = greedy_episodes(lambda obs: np.arange(2), Walker())
    np.testing.assert_array_equal(out["return"], [3.0, 4.0])
    np.testing.assert_array_equal(out["length"], [3, 4])
    # The best progress while running: env 0's row after its end is not counted.
    np.testing.assert_array_equal(out["max_progress"], [30, 9])
    assert "cleared" not in out
