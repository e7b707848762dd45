"""Clear rates over several greedy episodes at once."""

import numpy as np

from agent.evaluation import clear_rate


class ScriptedEnds:
    """Four envs: env 0 clears at step 3; env 1 dies at step 2 and its auto-reset row
    then shows flag_get (it must not count); env 2 never ends; env 3 clears at step 5."""

    def reset(self):
        self.t = 0
        return np.zeros((4, 1)), {}

    def step(self, actions):
        self.t += 1
        t = self.t
        terminated = np.array([t == 3, t == 2, False, t == 5])
        flag_get = np.array([t == 3, t == 3, False, t == 5])
        return np.zeros((4, 1)), np.zeros(4), terminated, np.zeros(4, bool), {"flag_get": flag_get}


def test_clear_rate_counts_each_env_first_episode_and_cuts_stuck_ones():
    env, calls = ScriptedEnds(), []

    def act(obs):
        calls.append(len(calls))
        k = len(calls)
        return np.array([k % 2, k % 2, 0, k % 2])   # env 2 repeats one action

    assert clear_rate(act, env, max_repeats=10) == 0.5
    # Env 2's 11th identical action is its 10th repeat: the cut, as in greedy_episode.
    assert env.t == 11
