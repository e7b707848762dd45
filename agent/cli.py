"""`python -m agent train ...`: the composition root that joins an env to the agent.

The agent package never imports envs; this module is the one place that does.
"""

import argparse
import datetime
import pathlib
import sys


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # One line naming the bad value and what is allowed; exit code 2.
        self.exit(2, f"{self.prog}: error: {message}\n")


def positive_int(text):
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        value = None
    if value is None or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def build_parser():
    parser = _Parser(prog="python -m agent", description="Train PPO / PPO+RND agents.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    train = sub.add_parser("train", help="train an agent")
    train.add_argument("--game", default="freeway",
                       help="freeway, venture, gravitar, cartpole, mountaincar or an EnvPool id (Pong-v5)")
    train.add_argument("--algo", default="ppo", help="ppo or ppo-rnd")
    train.add_argument("--steps", type=positive_int, help="agent steps over all envs (default: the preset's)")
    train.add_argument("--num-envs", type=positive_int, help="parallel envs (default: the preset's)")
    train.add_argument("--seed", type=int, default=1)
    train.add_argument("--run-dir", help="run folder (default: logs/<game>-<algo>-<time>)")
    train.add_argument("--checkpoint-every", type=positive_int, default=50, help="updates between checkpoints")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    plot = sub.add_parser("plot", help="learning curve PNG from run folders' event files")
    plot.add_argument("run_dirs", nargs="+")
    plot.add_argument("--out", default="learning_curve.png")
    plot.add_argument("--tag", default="episode/return")
    return parser


def resolve_config(args):
    """The run's TrainConfig from a game preset and the flags; ValueError if bad."""
    from agent.config import TrainConfig
    import envs

    preset = envs.preset(args.game, args.algo)  # raises on an unknown game or algo
    cfg = TrainConfig.from_preset(preset, game=args.game, algo=args.algo, seed=args.seed,
                                  total_steps=args.steps, num_envs=args.num_envs)
    return cfg.validate()


def train(args):
    import envs

    try:
        cfg = resolve_config(args)
    except ValueError as err:
        print(f"python -m agent train: error: {err}", file=sys.stderr)
        return 2
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = pathlib.Path(args.run_dir or f"logs/{cfg.game}-{cfg.algo}-{stamp}")
    if (run_dir / "config.json").exists():
        print(f"python -m agent train: error: run folder {str(run_dir)!r} already holds a run; "
              f"choose another --run-dir", file=sys.stderr)
        return 2
    from agent.trainer import Trainer  # TensorFlow loads only once the input is known good

    env = envs.make(cfg.game, cfg.num_envs, cfg.seed, **cfg.env)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(cfg.to_json())
    trainer = Trainer(cfg, env, run_dir, checkpoint_every=args.checkpoint_every)
    print(f"training {cfg.algo} on {cfg.game} for {cfg.total_steps:,} steps "
          f"({cfg.num_updates} updates of {cfg.batch_size}) -> {run_dir}")
    try:
        summary = trainer.train(progress=not args.no_progress)
    finally:
        trainer.close()
    print(format_summary(summary))
    return 0


def format_summary(s):
    minutes, seconds = divmod(int(s["wall_seconds"]), 60)
    return (f"done: {s['steps']:,} steps, {s['updates']} updates in {minutes}m{seconds:02d}s "
            f"({s['steps_per_second']:.0f} steps/s, {100 * s['grad_share']:.0f}% in gradient steps)\n"
            f"episodes: {s['episodes']}, mean return of the last 20: {s['mean_recent_return']:.2f}\n"
            f"run folder: {s['run_dir']}  (tensorboard --logdir {s['run_dir']})")


def plot(args):
    missing = [d for d in args.run_dirs if not pathlib.Path(d).is_dir()]
    if missing:
        print(f"python -m agent plot: error: no run folder {missing[0]!r}", file=sys.stderr)
        return 2
    from utilities.plots import plot_learning_curve

    print(plot_learning_curve(args.run_dirs, args.out, args.tag))
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    return {"train": train, "plot": plot}[args.command](args)
