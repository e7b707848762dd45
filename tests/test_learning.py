"""Learning, not just running: seeded runs on small real tasks."""

import numpy as np
import pytest

from tests.conftest import make_loop

pytestmark = pytest.mark.slow


class GoalCounter:
    """Passes every call to the env; counts steps paying more than `threshold`."""

    def __init__(self, env, threshold):
        self.env, self.threshold, self.goals = env, threshold, 0

    def __getattr__(self, name):
        return getattr(self.env, name)

    def step(self, actions):
        out = self.env.step(actions)
        self.goals += int((out[1] > self.threshold).sum())
        return out


def train(game, algo, steps, seed, run_dir, threshold=np.inf):
    loop = make_loop(run_dir, algo, steps, seed, game, checkpoint_every=50, **({"size": 20} if game == "deepsea" else {}))
    loop.env = env = GoalCounter(loop.env, threshold)
    summary = loop.train(progress=False)
    loop.close()
    return summary, env.goals


def test_ppo_learns_cartpole(tmp_path):
    # A random policy lasts ~22 steps; 500 is the cap.
    summary, _ = train("cartpole", "ppo", 60_000, 1, tmp_path)
    assert summary["mean_recent_return"] >= 400, summary


def test_rnd_finds_the_deep_sea_treasure_that_ppo_misses(tmp_path):
    # Deep Sea 20: random exploration finds the reward with probability 2^-20 an
    # episode; RND's novelty bonus leads the policy there (Osband et al. 2019).
    rnd, rnd_goals = train("deepsea", "ppo-rnd", 60_000, 1, tmp_path / "rnd", threshold=0.5)
    ppo, ppo_goals = train("deepsea", "ppo", 60_000, 1, tmp_path / "ppo", threshold=0.5)
    assert ppo_goals == 0 and ppo["mean_recent_return"] < 0.5, ppo
    assert rnd_goals > 100 and rnd["mean_recent_return"] > 0.5, rnd
