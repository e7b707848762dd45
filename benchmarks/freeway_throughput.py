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
from agent.config import TrainConfig  # noqa: E402
from agent.trainer import Trainer  # noqa: E402

SETTINGS = dict(num_envs=8, rollout_steps=128, epochs=4, num_minibatches=4)


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
    env = envs.make("freeway", SETTINGS["num_envs"], 0, **envs.preset("freeway", "ppo")["env"])
    env.reset()
    rng = np.random.default_rng(0)
    actions = rng.integers(3, size=(steps, SETTINGS["num_envs"]))
    start = time.perf_counter()
    for a in actions:
        env.step(a)
    seconds = time.perf_counter() - start
    env.close()
    return steps * SETTINGS["num_envs"] / seconds


def training(algo, updates):
    cfg = TrainConfig.from_preset(envs.preset("freeway", algo), game="freeway", algo=algo,
                                  total_steps=10_000_000, **SETTINGS)
    env = envs.make("freeway", cfg.num_envs, cfg.seed, **cfg.env)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(cfg, env, run_dir)
        trainer.obs, _ = env.reset()
        if cfg.rnd:
            trainer.warmup_obs_norm()
        trainer.collect_rollout()   # the first update traces the tf.functions: not timed
        trainer.learn()
        env.step = Stopwatch(env.step)
        trainer.agent.act = Stopwatch(trainer.agent.act)
        trainer.grad_seconds = 0.0
        start = time.perf_counter()
        for _ in range(updates):
            trainer.collect_rollout()
            stats = trainer.learn()
            trainer.writer.write(stats, int(trainer.step.numpy()))
        trainer.save()
        wall = time.perf_counter() - start
        trainer.close()
    shares = {"gradient": trainer.grad_seconds / wall, "env": env.step.seconds / wall,
              "acting": trainer.agent.act.seconds / wall}
    shares["other"] = 1.0 - sum(shares.values())
    return updates * cfg.batch_size / wall, shares


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=5)
    args = parser.parse_args()
    print(f"Freeway, {SETTINGS}, {args.updates} timed updates after one untimed")
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
