"""Training throughput: float32 against bf16, side by side, for Freeway PPO, Freeway
PPO+RND (8 envs x 128, 4 epochs x 4 minibatches) and Mario 1-1 PPO (its preset:
8 envs x 256, 10 epochs, minibatch 64), with where the time goes.

Usage: python benchmarks/training_throughput.py [--updates 6] [--mario-updates 2] [--rounds 1]
Settings alternate within a round, so a slow spell of a shared machine hits both;
with --rounds R the median of R is shown.
"""

import argparse
import os
import pathlib
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import envs  # noqa: E402
from agent import presets  # noqa: E402
from agent.config import RunConfig, learner_class  # noqa: E402
from agent.loop import Loop  # noqa: E402
from benchmarks.timing import Stopwatch, freeway_env_only  # noqa: E402
from utilities.run_folder import RunFolder  # noqa: E402

FREEWAY = dict(num_envs=8, rollout_steps=128, epochs=4, num_minibatches=4)
CASES = [("freeway", "ppo", None, FREEWAY), ("freeway", "ppo-rnd", None, FREEWAY), ("mario", "ppo", "1-1", {})]


def training(game, algo, stage, settings, updates, precision):
    """Steps/s of the real loop over `updates` updates after one untimed (tracing) update,
    with the seconds in gradient steps, env steps and acting."""
    stage, env_settings = envs.stage_settings(game, stage)
    preset = {**presets.preset(algo, envs.resolve_game(game).kind, game, stage), **settings}
    cfg = RunConfig.from_preset(preset, game=game, algo=algo)
    cfg.env.update(env_settings)
    cfg.precision = precision
    cfg.validate()
    env = envs.make(game, cfg.num_envs, cfg.seed, **cfg.env)
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
    return updates * cfg.num_envs * cfg.params.rollout_steps / wall, shares


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=6, help="timed updates of the Freeway cases")
    parser.add_argument("--mario-updates", type=int, default=2, help="timed updates of Mario (0: skip it)")
    parser.add_argument("--rounds", type=int, default=1, help="alternate the settings this many times; medians")
    parser.add_argument("--precisions", default="float32,bf16", help="compared side by side, the first is the base")
    args = parser.parse_args()
    precisions = args.precisions.split(",")
    print(f"{args.updates} (Freeway) / {args.mario_updates} (Mario) timed updates after one untimed, "
          f"{args.rounds} round(s), medians; Freeway env only: {freeway_env_only(8, presets.preset('ppo', 'atari')['env']):.0f} steps/s")
    print(f"{'case':<26}{'steps/s':>9}{'x base':>8}{'gradient':>10}{'env':>7}{'acting':>8}{'other':>7}{'overhead':>10}")
    for game, algo, stage, settings in CASES:
        updates = args.mario_updates if game == "mario" else args.updates
        if not updates:
            continue
        runs = {p: [] for p in precisions}
        for _ in range(args.rounds):
            for precision in precisions:
                runs[precision].append(training(game, algo, stage, settings, updates, precision))
        base = None
        for precision in precisions:
            sps, s = sorted(runs[precision], key=lambda r: r[0])[len(runs[precision]) // 2]
            base = base or sps
            # The loop's own overhead: acting plus the rest (GAE, RND rewards,
            # normalisation, logging, checkpoint), i.e. neither gradient nor env time.
            overhead = s["acting"] + s["other"]
            name = f"{game}{'-' + stage if stage else ''} {algo} {precision}"
            print(f"{name:<26}{sps:>9.0f}{sps / base:>8.2f}{s['gradient']:>10.0%}{s['env']:>7.0%}"
                  f"{s['acting']:>8.0%}{s['other']:>7.0%}{overhead:>10.0%}", flush=True)


if __name__ == "__main__":
    main()
