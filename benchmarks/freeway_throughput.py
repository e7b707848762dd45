"""Freeway throughput: env-only, PPO and PPO+RND training steps/s, and where the time goes.

Settings from the issue: 8 envs x 128-step rollouts, 4 epochs, 4 minibatches.
Usage: python benchmarks/freeway_throughput.py [--updates 5]
Single measurements on a shared machine: run it twice and compare.
"""

import argparse
import os
import pathlib
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import envs  # noqa: E402
from agent import presets  # noqa: E402
from agent.config import RunConfig, learner_class  # noqa: E402
from agent.loop import Loop  # noqa: E402
from utilities.run_folder import RunFolder  # noqa: E402

SETTINGS = dict(rollout_steps=128, epochs=4, num_minibatches=4)
NUM_ENVS = 8


class Stopwatch:
    """Wraps a callable and adds up the seconds spent inside it."""

    def __init__(self, fn):
        self.fn, self.seconds = fn, 0.0

    def __call__(self, *args):
        start = time.perf_counter()
        out = self.fn(*args)
        self.seconds += time.perf_counter() - start
        return out


def env_only(steps):
    env = envs.make("freeway", NUM_ENVS, 0, **presets.preset("ppo", "atari")["env"])
    env.reset()
    rng = np.random.default_rng(0)
    actions = rng.integers(3, size=(steps, NUM_ENVS))
    start = time.perf_counter()
    for a in actions:
        env.step(a)
    seconds = time.perf_counter() - start
    env.close()
    return steps * NUM_ENVS / seconds


def training(algo, updates):
    """Steps/s of the real loop over `updates` updates after one untimed (tracing) update,
    with the seconds in gradient steps, env steps and acting."""
    preset = {**presets.preset(algo, "atari", "freeway"), **SETTINGS}
    cfg = RunConfig.from_preset(preset, game="freeway", algo=algo, num_envs=NUM_ENVS).validate()
    env = envs.make("freeway", cfg.num_envs, cfg.seed, **cfg.env)
    space = env.single_observation_space
    algorithm = learner_class(algo)(cfg, space.shape, space.dtype.name, env.single_action_space.n)
    with tempfile.TemporaryDirectory() as run_dir:
        loop = Loop(cfg, algorithm, env, RunFolder(run_dir))
        loop.train(progress=False, max_updates=1)   # traces the tf.functions: not timed
        env.step = Stopwatch(env.step)
        algorithm.act = Stopwatch(algorithm.act)
        algorithm.train_step = Stopwatch(algorithm.train_step)
        start = time.perf_counter()
        loop.train(progress=False, max_updates=updates)
        wall = time.perf_counter() - start
        loop.close()
    shares = {"gradient": algorithm.train_step.seconds / wall, "env": env.step.seconds / wall,
              "acting": algorithm.act.seconds / wall}
    shares["other"] = 1.0 - sum(shares.values())
    return updates * NUM_ENVS * cfg.params.rollout_steps / wall, shares


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=5)
    args = parser.parse_args()
    print(f"Freeway, {NUM_ENVS} envs, {SETTINGS}, {args.updates} timed updates after one untimed")
    env_sps = env_only(2000)
    print(f"{'run':<10}{'steps/s':>9}{'x env-only':>12}{'gradient':>10}{'env':>7}{'acting':>8}"
          f"{'other':>7}{'overhead':>10}")
    print(f"{'env only':<10}{env_sps:>9.0f}{1.0:>12.2f}")
    for algo in ("ppo", "ppo-rnd"):
        sps, s = training(algo, args.updates)
        # The loop's own overhead: acting plus the rest (GAE, RND rewards,
        # normalisation, logging, checkpoint), i.e. neither gradient nor env time.
        overhead = s["acting"] + s["other"]
        print(f"{algo:<10}{sps:>9.0f}{sps / env_sps:>12.2f}{s['gradient']:>10.0%}{s['env']:>7.0%}"
              f"{s['acting']:>8.0%}{s['other']:>7.0%}{overhead:>10.0%}")


if __name__ == "__main__":
    main()
