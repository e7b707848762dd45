"""`python -m agent train ...`: the composition root that joins an env to an algorithm.

The agent package never imports envs; this module is the one place that does.
Input is checked before TensorFlow loads: bad input costs a second, prints one line
and exits with 2, having written nothing.
"""

import argparse
import datetime
import math
import os
import pathlib
import sys
import zipfile


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # One line naming the bad value and what is allowed; exit code 2.
        self.exit(2, f"{self.prog}: error: {message}\n")


def int_at_least(minimum, allowed, maximum=None):
    """An argparse type: an integer >= minimum (and <= maximum; underscores allowed), else one
    line naming it."""
    def parse(text):
        try:
            value = int(text.replace("_", ""))
        except ValueError:
            value = None
        if value is None or value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}")
        return value
    return parse


positive_int = int_at_least(1, "a positive integer")
count = int_at_least(0, "0 or a positive integer")


OFF = "off"


def or_off(parse):
    """An argparse type: `parse`'s values, or "off" (turns a rule the run keeps off on --resume)."""
    def either(text):
        return OFF if text.strip().lower() == OFF else parse(text)
    return either


def text(value):
    """An argparse type for names and paths: anything but empty or blank."""
    if not value.strip():
        raise argparse.ArgumentTypeError(f"must not be empty, got {value!r}")
    return value


def float_where(accept, allowed):
    """An argparse type: a finite float that `accept`s, else one line naming it and `allowed`."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and accept(value)):
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}")
        return value
    return parse


share = float_where(lambda v: 0.0 < v <= 1.0, "a number in (0, 1]")
positive = float_where(lambda v: v > 0, "a finite number > 0")
finite = float_where(lambda v: True, "a finite number")


TEST_SEEDS = (10_000, 20_000)   # a run's greedy test env and random-start env: seed + these
MAX_SEED = 2**31 - 1 - max(TEST_SEEDS)   # EnvPool's seeds are non-negative 32-bit integers
seed = int_at_least(0, f"an integer from 0 to {MAX_SEED}", MAX_SEED)


def seed_list(value):
    try:
        seeds = [int(part) for part in value.split(",")]
    except ValueError:
        seeds = []
    if not seeds or len(set(seeds)) != len(seeds) or not all(0 <= k <= MAX_SEED for k in seeds):
        raise argparse.ArgumentTypeError(f"must be distinct integers from 0 to {MAX_SEED} separated by commas, "
                                         f"got {value!r}")
    return seeds


def build_parser():
    from agent.config import ALGORITHMS

    parser = _Parser(prog="python -m agent", description="Train agents on Atari (EnvPool) and Super Mario Bros.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    train = sub.add_parser("train", help="train an agent")
    train.set_defaults(run_time=None, run_suffix="")   # set per seed by --seeds (see train())
    train.add_argument("--game", type=text, help="freeway (default), venture, gravitar, cartpole, mountaincar, "
                                                 "deepsea, mario or an EnvPool Atari id (Pong-v5)")
    train.add_argument("--algo", type=text, help=f"{' or '.join(ALGORITHMS)} (default ppo)")
    train.add_argument("--stage", type=text, help="mario: W-S, world 1-8, stage 1-4 (default 1-1)")
    train.add_argument("--actions", type=text, help="mario: right, simple, complex or right-a (default: the preset's)")
    train.add_argument("--steps", type=positive_int, help="agent steps over all envs (default: the preset's)")
    train.add_argument("--num-envs", type=positive_int, help="parallel envs (default: the preset's)")
    train.add_argument("--seed", type=seed, help="random seed (default 1)")
    train.add_argument("--seeds", type=seed_list, help="train these seeds one after another, e.g. 1,2,3 "
                                                      "(run folders <run-dir>-seed<k>)")
    train.add_argument("--give-up-after", type=or_off(positive_int), metavar="S",
                       help="with --give-up-below T: move on when the mean return is still <= T after S updates "
                            "(off: no give-up rule)")
    train.add_argument("--give-up-below", type=finite, metavar="T")
    train.add_argument("--init-from", type=text, metavar="MODEL_DIR",
                       help="start a new run from an exported policy's network (same game, stage, action set and "
                            "network shape; the optimiser starts afresh), e.g. to train a shipped policy on")
    train.add_argument("--run-dir", type=text, help="run folder (default: logs/<game>[-<stage>]-<algo>[-nornd]-<time>)")
    train.add_argument("--resume", type=text, metavar="RUN_DIR",
                       help="continue the run in RUN_DIR from its last checkpoint, with the options it began with "
                            "(tests, stop rules, checkpoint cadence, give-up rule, export folder: each may be given "
                            "again to change it); --steps may be raised")
    train.add_argument("--checkpoint-every", type=positive_int, help="updates between checkpoints (default 50)")
    train.add_argument("--stop-after", type=positive_int, metavar="UPDATES",
                       help="pause after this many updates (checkpoint saved; continue with --resume)")
    train.add_argument("--test-every", type=positive_int, metavar="UPDATES",
                       help="greedy test episode every UPDATES updates (default: 10 for mario, off otherwise)")
    train.add_argument("--clear-episodes", type=count, metavar="N",
                       help="mario: at each test, also N greedy episodes with random starts for a clear rate "
                            "(default 4; 0: none)")
    train.add_argument("--clear-every", type=or_off(positive_int), metavar="UPDATES",
                       help="mario: measure the clear rate only at the tests every UPDATES updates, a multiple of "
                            "--test-every (the single greedy episode is cheap, the --clear-episodes are not; "
                            "default and off: at every test)")
    train.add_argument("--stop-at-clear", action=argparse.BooleanOptionalAction, default=None,
                       help="mario: stop at the first cleared test episode")
    train.add_argument("--stop-at-clear-rate", type=or_off(share), metavar="R",
                       help="mario: stop once a test's clear rate over its --clear-episodes random-start "
                            "episodes reaches R (0 < R <= 1; off: no such stop)")
    train.add_argument("--learning-rate", type=positive, metavar="LR",
                       help="the optimiser's learning rate (default: the preset's), e.g. lower to fine-tune "
                            "an --init-from policy")
    train.add_argument("--anneal", action=argparse.BooleanOptionalAction, default=None,
                       help=f"{algorithms_with('anneal')}: decay the learning rate and clip range linearly to 0 at --steps "
                            f"(default: the preset's)")
    value = algorithms_with("buffer_size")
    train.add_argument("--buffer-size", type=positive_int, metavar="N",
                       help=f"{value}: replay capacity in transitions (default: the preset's)")
    train.add_argument("--no-dueling", action="store_true", default=None,
                       help=f"{value}: a plain Q head instead of the dueling one")
    train.add_argument("--no-prioritized", action="store_true", default=None,
                       help=f"{value}: uniform replay instead of prioritised")
    train.add_argument("--no-rnd", action="store_true", default=None,
                       help="ppo-rnd, ddqn-rnd: the same preset without RND (trains ppo or ddqn; an ablation)")
    train.add_argument("--precision", type=text, choices=("float32", "bf16", "auto"),
                       help="network compute: bf16 (float32 weights, losses and statistics), float32, or auto "
                            "(default: bf16 on a GPU or a CPU with AVX-512 BF16 / AMX, else float32)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--cpus", type=positive_int, metavar="C",
                       help="cores the run may use: TensorFlow's thread pools and the env's threads or worker "
                            "processes (default: all; a sweep gives each run its --cpus-per-run)")
    train.add_argument("--export-dir", type=text, metavar="DIR",
                       help="where the policy is exported at the end (default: saved_model/<run-name>)")
    export = sub.add_parser("export", help="export a run's policy to saved_model/<run-name>/")
    export.add_argument("run_dir", type=text)
    export.add_argument("--out", type=text, help="export folder (default: saved_model/<run-name>)")
    play = sub.add_parser("play", help="greedy episodes of an exported policy")
    play.add_argument("model_dir", type=text)
    play.add_argument("--episodes", type=positive_int, default=1)
    play.add_argument("--random-starts", action="store_true",
                      help="mario: 0-29 random actions before each episode, so episodes differ (clear rate)")
    play.add_argument("--video", type=text, help="write the episodes to this mp4 file")
    play.add_argument("--json", action="store_true", help="one JSON object per episode")
    plot = sub.add_parser("plot", help="learning curve PNG from run folders' event files")
    plot.add_argument("run_dirs", type=text, nargs="+")
    plot.add_argument("--out", type=text, default="learning_curve.png")
    plot.add_argument("--tag", type=text, default="episode/return")
    plot.add_argument("--smooth", type=positive_int, default=1, metavar="N",
                      help="draw each run's mean over its last N points over the faint raw ones (default 1: raw)")
    add_sweep_parser(sub)
    return parser


def add_sweep_parser(sub):
    from agent.config import ALGORITHMS

    sweep = sub.add_parser("sweep", help="one training run per (game or Mario stage, seed) on Ray: this machine "
                                         "or a cluster")
    sweep.add_argument("--game", type=text, help="as for train (needed for a new sweep)")
    sweep.add_argument("--stages", type=text, help="mario: stages separated by commas (1-1,1-2) or all "
                                                   "(the 32 stages; default 1-1)")
    sweep.add_argument("--algo", type=text, help=f"{' or '.join(ALGORITHMS)} (default ppo)")
    sweep.add_argument("--seeds", type=seed_list, help="one run per seed and stage, e.g. 1,2,3 (default 1)")
    sweep.add_argument("--steps", type=positive_int, help="agent steps of each run (default: the preset's)")
    sweep.add_argument("--num-envs", type=positive_int, help="parallel envs of each run (default: the preset's)")
    sweep.add_argument("--actions", type=text, help="mario: the action set (default: the preset's)")
    sweep.add_argument("--checkpoint-every", type=positive_int, help="updates between checkpoints (default 50)")
    sweep.add_argument("--test-every", type=positive_int, metavar="UPDATES", help="as for train")
    sweep.add_argument("--clear-episodes", type=count, metavar="N", help="as for train")
    sweep.add_argument("--clear-every", type=positive_int, metavar="UPDATES", help="as for train")
    sweep.add_argument("--stop-at-clear-rate", type=share, metavar="R", help="as for train: each run stops at R")
    sweep.add_argument("--cpus-per-run", type=positive_int, metavar="C",
                       help="cores each run holds: its TensorFlow threads and env workers (default 1)")
    sweep.add_argument("--address", type=text, help="auto (the cluster `ray start` made on this machine) or "
                                                    "HOST:PORT of a cluster's head (default: a local Ray instance)")
    sweep.add_argument("--storage", type=text, metavar="DIR",
                       help="a folder every node mounts, for the run folders (default: the sweep dir)")
    sweep.add_argument("--sweep-dir", type=text, metavar="DIR", help="default: logs/sweep-<game>-<algo>-<time>")
    sweep.add_argument("--max-failures", type=count, help="restarts of a run whose node or process died (default 3)")
    sweep.add_argument("--resume", type=text, metavar="SWEEP_DIR",
                       help="continue a sweep whose driver stopped: unfinished runs from their last checkpoint")
    sweep.add_argument("--status", type=text, metavar="SWEEP_DIR", help="print one line per run and exit")


class UsageError(ValueError):
    """Bad input: reported in one line with exit code 2."""


def default_run_dir(game, algo, stage=None, when=None):
    stage = f"-{stage}" if stage else ""
    return f"logs/{game}{stage}-{algo}-{when or datetime.datetime.now():%Y%m%d-%H%M%S}"


def new_config(args):
    """The run's RunConfig from the game's preset and the flags, and its folder."""
    from agent import presets
    from agent.config import RunConfig, check_algo
    from utilities.run_folder import RunFolder, check_writable
    import envs

    name, algo = args.game or "freeway", args.algo or "ppo"
    try:
        check_algo(algo)
        game = envs.resolve_game(name)
        stage, env_settings = envs.stage_settings(name, args.stage, args.actions)
        cfg = RunConfig.from_preset(presets.preset(algo, game.kind, name.lower(), stage), game=name, algo=algo,
                                    seed=1 if args.seed is None else args.seed, total_steps=args.steps,
                                    num_envs=args.num_envs)
        cfg.env.update(env_settings)
        apply_param_flags(args, cfg)
        if args.no_rnd:
            cfg = without_rnd(cfg)
        if args.init_from:
            cfg.init_from = base_policy(args.init_from, cfg)
        cfg.validate()
        # --seeds: one start time for all seeds' folders, each with its seed (args.run_suffix).
        folder = RunFolder(args.run_dir or default_run_dir(name, cfg.algo + ("-nornd" if args.no_rnd else ""), stage,
                                                           args.run_time) + args.run_suffix)
        if folder.has_run():
            raise ValueError(f"run folder {str(folder.path)!r} already holds a run; "
                             f"continue it with --resume {folder.path} or choose another --run-dir")
        # A run's own folders (checkpoints/, side files) are no place for another run; config.json
        # alone is too common a name to judge a parent by.
        inside = next((parent.path for parent in map(RunFolder, folder.path.resolve().parents)
                       if parent.has_run() and parent.has_checkpoint()), None)
        if inside is not None:
            raise ValueError(f"run folder {str(folder.path)!r} is inside the run folder {str(inside)!r}: "
                             f"choose a folder outside it")
        stray = folder.stray_run_files()
        if stray:
            raise ValueError(f"run folder {str(folder.path)!r} holds a run's {stray[0].name!r} but no config.json: "
                             f"choose a new or empty --run-dir")
        foreign = folder.foreign_files()
        if foreign:
            raise ValueError(f"run folder {str(folder.path)!r} holds other files "
                             f"({foreign[0].name!r}): choose a new or empty --run-dir")
        check_writable(folder.path, "run folder")
    except ValueError as err:
        raise UsageError(err) from None
    return cfg, folder


def base_policy(model_dir, cfg):
    """--init-from: what a new run records of the export it starts from, once the export's card
    fits the run (ValueError naming the first mismatch); the network's shapes are checked when
    it is loaded (agent.export.start_from)."""
    from agent.config import check_init_from
    from utilities.run_folder import read_card

    try:
        card = read_card(model_dir)
        # The steps behind the policy, its own base's included (an export of an --init-from run).
        before = (card.get("init_from") or {}).get("steps_trained", 0)
        base = {"model": str(pathlib.Path(model_dir).resolve()), "algo": card["algo"],
                "steps_trained": card["steps_trained"] + before}
        theirs = (card["game"].lower(), card.get("stage"), card.get("action_set"))
        check_init_from(base)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"--init-from {model_dir!r} cannot be read as an exported policy: {err}") from None
    mine = (cfg.game.lower(), cfg.env.get("stage"), cfg.env.get("action_set"))
    for name, their, my in zip(("game", "stage", "action set"), theirs, mine):
        if their != my:
            raise ValueError(f"--init-from {model_dir!r} is a policy for {name} {their!r}, not this run's {my!r}")
    return base


# Flags onto a new run's params (a run keeps its params: --resume takes none of them):
# (flag, argparse name, params field, the value a switch sets or None for the flag's own).
PARAM_FLAGS = (("--learning-rate", "learning_rate", "learning_rate", None), ("--anneal", "anneal", "anneal", None),
               ("--buffer-size", "buffer_size", "buffer_size", None), ("--no-dueling", "no_dueling", "dueling", False),
               ("--no-prioritized", "no_prioritized", "prioritized", False))


def algorithms_with(field):
    """The algorithms whose params have `field`: the ones a flag onto it is for."""
    from agent.config import ALGORITHMS

    return ", ".join(name for name, spec in ALGORITHMS.items() if hasattr(spec.config, field))


def apply_param_flags(args, cfg):
    """The PARAM_FLAGS given onto the preset's params; ValueError for a flag the algorithm has no field for."""
    for flag, name, field, switch in PARAM_FLAGS:
        value = getattr(args, name, None)
        if value is None:
            continue
        if not hasattr(cfg.params, field):
            raise ValueError(f"{flag} is for {algorithms_with(field)}, not {cfg.algo!r}")
        setattr(cfg.params, field, value if switch is None else switch)


def without_rnd(cfg):
    """--no-rnd: the RND algorithm's preset run by its sibling without RND (same config
    class and learner), so an ablation changes nothing else (seed 003's reward scale too)."""
    from agent.config import ALGORITHMS

    spec = ALGORITHMS[cfg.algo]
    sibling = [name for name, s in ALGORITHMS.items() if not s.rnd and (s.config, s.learner) == (spec.config, spec.learner)]
    if not spec.rnd or not sibling:
        with_rnd = ", ".join(name for name, s in ALGORITHMS.items() if s.rnd)
        raise ValueError(f"--no-rnd is for the algorithms with RND ({with_rnd}), not {cfg.algo!r}")
    cfg.algo, cfg.params.rnd = sibling[0], None
    return cfg


def check_clear_flags(options, name):
    """UsageError unless the clear options (--clear-episodes, --clear-every, --stop-at-clear,
    --stop-at-clear-rate) suit the game `name`."""
    import envs

    def flag(key):
        return "--" + key.replace("_", "-")

    if envs.resolve_game(name).tests.clear_episodes:
        for key in ("stop_at_clear_rate", "clear_every"):
            if options[key] is not None and options["clear_episodes"] == 0:
                raise UsageError(f"{flag(key)} needs random-start test episodes: --clear-episodes must be > 0")
        clear_every, test_every = options["clear_every"], options["test_every"]
        if clear_every is not None and clear_every % test_every:
            raise UsageError(f"--clear-every must be a multiple of --test-every ({test_every}), got {clear_every}")
        return
    for key in ("clear_episodes", "clear_every", "stop_at_clear", "stop_at_clear_rate"):
        if options[key]:
            raise UsageError(f"{flag(key)} is for games that report clears (mario), not {name!r}")


# A run's options besides its config: (default, the argparse type of its flag, what it may be).
# Kept in config.json from the run's start; a flag given on --resume replaces its value ("off"
# and --no-stop-at-clear turn a stop rule off). --stop-after, --cpus and --no-progress belong to
# one invocation and are not kept. None for the two test options: the game's.
RUN_OPTIONS = {
    "checkpoint_every": (50, positive_int, "a positive integer"),
    "test_every": (None, positive_int, "a positive integer or null"),
    "clear_episodes": (None, count, "0, a positive integer or null"),
    "clear_every": (None, positive_int, "a positive integer or null"),
    "stop_at_clear": (False, None, "true or false"),
    "stop_at_clear_rate": (None, share, "a number in (0, 1] or null"),
    "give_up_after": (None, positive_int, "a positive integer or null"),
    "give_up_below": (None, finite, "a finite number or null"),
    "export_dir": (None, text, "a path or null"),
}


def check_saved_options(saved):
    """ValueError naming the first option of a (hand-edited) config.json that a run cannot take."""
    if not isinstance(saved, dict):
        raise ValueError(f"its options must be a JSON object, got {saved!r}")
    for name, value in saved.items():
        if name not in RUN_OPTIONS:
            raise ValueError(f"unknown option {name!r}: the options are {', '.join(RUN_OPTIONS)}")
        default, parse, allowed = RUN_OPTIONS[name]
        try:
            if parse is None:
                ok = isinstance(value, bool)
            elif value is None:
                ok = default is None
            else:
                ok = not isinstance(value, bool) and parse(str(value)) == value
        except argparse.ArgumentTypeError:
            ok = False
        if not ok:
            raise ValueError(f"option {name} must be {allowed}, got {value!r}")


def run_options(args, saved, game):
    """The run's options: the flags given, else the run's saved ones, else the defaults."""
    import envs

    options = {}
    for name, (default, _, _) in RUN_OPTIONS.items():
        given = getattr(args, name)
        options[name] = saved.get(name, default) if given is None else None if given == OFF else given
    if args.give_up_after == OFF:
        if args.give_up_below is not None:
            raise UsageError(f"--give-up-below {args.give_up_below:g} goes with a --give-up-after, not with "
                             f"--give-up-after off (which turns the give-up rule off)")
        options["give_up_below"] = None
    tests = envs.resolve_game(game).tests
    if options["test_every"] is None:
        options["test_every"] = tests.every
    if options["clear_episodes"] is None:
        options["clear_episodes"] = tests.clear_episodes
    if (options["give_up_after"] is None) != (options["give_up_below"] is None):
        raise UsageError("--give-up-after and --give-up-below go together")
    return options


def resumed_config(args):
    """The config saved in the run folder, with --steps raised if asked."""
    from utilities.run_folder import RunFolder, check_writable

    given = [(flag, value) for flag, value in (("--game", args.game), ("--algo", args.algo), ("--seed", args.seed),
                                               ("--stage", args.stage), ("--actions", args.actions),
                                               ("--num-envs", args.num_envs), ("--run-dir", args.run_dir),
                                               ("--precision", args.precision), ("--no-rnd", args.no_rnd),
                                               ("--init-from", getattr(args, "init_from", None)),
                                               *((flag, getattr(args, name, None)) for flag, name, _, _ in PARAM_FLAGS))
             if value is not None]
    if given:
        flag, value = given[0]
        flag = flag if value is not False else "--no-" + flag[2:]    # what was typed: --no-anneal
        shown = "" if isinstance(value, bool) else f" {value!r}"
        raise UsageError(f"--resume takes no {flag}{shown}: a run keeps the config it began with; "
                         f"only --steps may be raised")
    folder = RunFolder(args.resume)
    cfg = saved_config(folder, "resume")
    try:   # before the envs start and gigabytes of replay load: the run writes here at once
        check_writable(folder.path, "run folder")
        if folder.checkpoints.is_dir():
            check_writable(folder.checkpoints, "checkpoints folder")
    except ValueError as err:
        raise UsageError(err) from None
    if args.steps is not None:
        if args.steps < cfg.total_steps:
            raise UsageError(f"--steps {args.steps} is below the run's {cfg.total_steps}: it may only be raised")
        cfg.total_steps = args.steps
    return cfg, folder


def saved_config(folder, verb):
    """The RunConfig of a run folder, checked as a new run's is (UsageError: cannot <verb> ...)."""
    from agent.config import RunConfig
    import envs

    try:
        text = folder.read_config()
    except OSError:
        raise UsageError(f"no run to {verb} in {str(folder.path)!r}: it needs a readable config.json") from None
    try:
        cfg = RunConfig.from_json(text).validate()
        check_saved_options(cfg.options)
        envs.resolve_game(cfg.game)
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        raise UsageError(f"cannot {verb} {str(folder.path)!r}: {err}".splitlines()[0]) from None
    return cfg


def train(args):
    # Here, not in train_one: a sweep's trial takes the --cpus its Ray node advertises.
    if args.cpus and args.cpus > (os.cpu_count() or 1):
        return fail("train", f"--cpus {args.cpus} is more than this machine's {os.cpu_count()} cores")
    if args.seeds:
        if args.seed is not None or args.resume:
            return fail("train", "--seeds cannot be combined with --seed or --resume")
        when = datetime.datetime.now()
        runs = [argparse.Namespace(**{**vars(args), "seed": seed,
                                      "run_dir": args.run_dir and f"{args.run_dir}-seed{seed}",
                                      "run_time": when, "run_suffix": "" if args.run_dir else f"-seed{seed}",
                                      "export_dir": args.export_dir and f"{args.export_dir}-seed{seed}"})
                for seed in args.seeds]
        try:
            for run in runs:   # every seed's input, before the first one trains
                check_memory(checked_run(run)[0], cpus=run.cpus)
        except UsageError as err:
            return fail("train", err)
        for run in runs:
            code = train_one(run)
            if code != 0:
                return code
        return 0
    return train_one(args)


def checked_run(args):
    """(RunConfig, RunFolder) of a `train` command, every flag checked (UsageError naming the
    first bad one); nothing is written."""
    from utilities.run_folder import check_export_folder

    cfg, folder = resumed_config(args) if args.resume else new_config(args)
    cfg.options = run_options(args, cfg.options, cfg.game)
    check_clear_flags(cfg.options, cfg.game)
    try:
        check_export_folder(cfg.options["export_dir"] or folder.default_export(), folder.path)
    except ValueError as err:
        raise UsageError(err) from None
    return cfg, folder


def train_one(args, after_save=None):
    """One training run as `python -m agent train` makes it; after_save: see agent.loop.Loop."""
    import envs
    from utilities.errors import first_line
    from utilities.run_folder import Hold

    try:
        cfg, folder = checked_run(args)
        if args.resume:
            # A run being trained is refused now, before its envs and memory are made (it holds
            # its memory too); the folder is held for real just before the first write.
            Hold.check(folder.path, "run folder")
    except (UsageError, ValueError) as err:
        return fail("train", err)
    game = envs.resolve_game(cfg.game)

    def on_cpus(num_envs):
        return envs.cpu_settings(cfg.game, args.cpus, num_envs) if args.cpus else {}

    try:
        check_memory(cfg, cpus=args.cpus)
        env = envs.make(cfg.game, cfg.num_envs, cfg.seed, **cfg.env, **on_cpus(cfg.num_envs))
    except UsageError as err:
        return fail("train", err)
    except (TypeError, ValueError) as err:    # env settings of a hand-edited config.json, say
        return fail("train", f"cannot make the {cfg.game} env of {str(folder.path)!r}: {err}".splitlines()[0])
    space = env.single_observation_space
    opts = cfg.options
    test_every, clear_episodes = opts["test_every"], opts["clear_episodes"]
    test_envs, test, loop = [], None, None

    def close_envs():
        # Nothing may outlive the run (Mario's env workers in a sweep's process): each env is
        # closed even if another's close fails, which is said in a line, never in place of the
        # run's own outcome. The loop closes the training env and its writer.
        for close in (*(test_env.close for test_env in test_envs), env.close if loop is None else loop.close):
            try:
                close()
            except Exception as err:
                print(f"python -m agent train: warning: an env did not close: {first_line(err)}", file=sys.stderr)

    try:
        import_tensorflow_quietly()
        from agent import precision
        from agent.config import learner_class
        from agent.evaluation import make_test
        from agent.export import best_clear_rate, best_keeper, export, start_from
        from agent.loop import Loop, NonFiniteLoss
        from utilities.checkpoints import CheckpointMismatch

        if args.cpus:
            set_tensorflow_threads(args.cpus)
        if not args.resume:
            cfg.precision = precision.resolve(args.precision or "auto")
            caution = precision.warning(cfg.precision)
            if caution:
                print(caution, file=sys.stderr)
        if test_every:
            test_envs.append(envs.make_test_env(cfg.game, cfg.seed + TEST_SEEDS[0], **cfg.env, **on_cpus(1)))
            if clear_episodes:
                test_envs.append(envs.make_test_env(cfg.game, cfg.seed + TEST_SEEDS[1], clear_episodes,
                                                    random_starts=True, render=False, **cfg.env,
                                                    **on_cpus(clear_episodes)))
            test = make_test(*test_envs, max_repeats=game.tests.max_repeats)
        algorithm = learner_class(cfg.algo)(cfg, space.shape, space.dtype.name, env.single_action_space.n)
        if cfg.init_from and not (args.resume and folder.has_checkpoint()):
            try:
                if args.resume and base_policy(cfg.init_from["model"], cfg) != cfg.init_from:
                    raise ValueError("the export is no longer the one the run began from")
                start_from(algorithm, cfg)
            except (OSError, ValueError, TypeError, KeyError, zipfile.BadZipFile) as err:   # a damaged .keras too
                raise UsageError(f"cannot start from {cfg.init_from['model']!r}: {err}".splitlines()[0]) from None
            print(f"starting from {cfg.init_from['model']} ({cfg.init_from['algo']}, "
                  f"{cfg.init_from['steps_trained']:,} agent steps behind it)")
        loop = Loop(cfg, algorithm, env, folder, checkpoint_every=opts["checkpoint_every"], test=test,
                    test_every=test_every or 1, clear_every=opts["clear_every"], stop_at_clear=opts["stop_at_clear"],
                    stop_at_clear_rate=opts["stop_at_clear_rate"], after_save=after_save,
                    after_clear_rate=best_keeper(cfg, algorithm, folder, env.single_action_space.n, space.shape)
                    if test_every and clear_episodes else None)
    except BaseException as err:
        close_envs()
        if isinstance(err, UsageError):
            return fail("train", err)
        raise
    try:
        held = Hold(folder.path, "run folder")
        if not args.resume and (folder.has_run() or folder.stray_run_files() or folder.foreign_files()):
            # Checked free when this run began; another run started in it meanwhile (and ended).
            held.close(undo=True)
            raise ValueError(f"run folder {str(folder.path)!r} was taken by another run while this one started: "
                             f"choose another --run-dir")
    except ValueError as err:
        close_envs()
        return fail("train", err)
    # Held until the export is written too: a resume started meanwhile would export into the same folder.
    try:
        try:
            if args.resume and folder.has_checkpoint():
                try:
                    path = loop.restore()
                except (CheckpointMismatch, FileNotFoundError, ValueError, AssertionError) as err:
                    held.close(undo=True)
                    return refused_restore("train", f"cannot resume {str(folder.path)!r}", err)
                step = int(loop.state.step.numpy())
                print(f"resuming {folder.path} from {path} at step {step:,}")
                if step >= cfg.total_steps:
                    print(f"it has trained its {cfg.total_steps:,} steps: nothing to train, its policy is exported "
                          f"again (raise --steps to train on)")
            elif args.resume:
                # Killed before its first checkpoint: its last checkpoint is the start.
                print(f"{folder.path} has no checkpoint yet: training it from step 0 with its config")
            folder.write_config(cfg.to_json())
            print(f"training {cfg.algo} on {cfg.game} (seed {cfg.seed}, {cfg.precision}) for "
                  f"{cfg.total_steps:,} steps -> {folder.path}")
            give_up = (opts["give_up_after"], opts["give_up_below"]) if opts["give_up_after"] else None
            try:
                summary = loop.train(progress=not args.no_progress, max_updates=args.stop_after, give_up=give_up)
            except NonFiniteLoss as err:
                print(f"python -m agent train: {err}", file=sys.stderr)
                return 1
        finally:
            close_envs()
        print(format_summary(summary))
        if summary["interrupted"]:
            print(f"interrupted: checkpoint saved; continue with: python -m agent train --resume {folder.path}")
            return 130
        if summary["cleared"]:
            print(f"cleared the level in a greedy test episode; video: {folder.best_video}")
        if summary.get("clear_rate_reached"):
            print(f"reached a clear rate of {opts['stop_at_clear_rate']:g} in a test; video: {folder.best_video}")
        if summary["gave_up"]:
            print(f"gave up: mean return still <= {opts['give_up_below']} after {opts['give_up_after']} updates")
        out = export(cfg, algorithm, loop.state, folder, loop.checkpoints.latest, env.single_action_space.n,
                     space.shape, opts["export_dir"])
        print(f"policy exported to {out}")
        best = best_clear_rate(folder)
        if best:
            print(f"best clear rate {best['rate']:g} (random-start test at step {best['at_step']:,}), "
                  f"its policy: {folder.best_policy}")
        return 0
    finally:
        held.close()


# Flags a sweep hands to each run's `train` as given: (flag, attribute). A run keeps them
# (config.json), so a trial's resume names only its folder.
SWEEP_TRAIN_FLAGS = (("--algo", "algo"), ("--steps", "steps"), ("--num-envs", "num_envs"), ("--actions", "actions"),
                     ("--checkpoint-every", "checkpoint_every"), ("--test-every", "test_every"),
                     ("--clear-episodes", "clear_episodes"), ("--clear-every", "clear_every"),
                     ("--stop-at-clear-rate", "stop_at_clear_rate"))
ALL_STAGES = [f"{world}-{stage}" for world in range(1, 9) for stage in range(1, 5)]


def train_argv(argv, after_save=None):
    """`python -m agent train ARGV` in this process (a sweep's trial runs this)."""
    return train_one(build_parser().parse_args(argv), after_save)


def new_sweep(args):
    """The Sweep of the flags, each run checked as `train` checks it; nothing is written."""
    import envs
    from agent.distributed import Sweep, check_new_folder, new_experiment_dir, trial_name
    from utilities.run_folder import check_writable

    if args.game is None:
        raise UsageError("--game is needed for a new sweep (or --resume SWEEP_DIR, --status SWEEP_DIR)")
    try:
        game = envs.resolve_game(args.game)
        if args.stages is not None and not game.stages:
            raise ValueError(f"--stages is for mario, not {args.game!r}")
        if not game.stages:
            names = [None]
        elif (args.stages or "").strip().lower() == "all":
            names = ALL_STAGES
        else:
            names = (args.stages or "1-1").split(",")
            if not all(name.strip() for name in names):
                raise ValueError(f"--stages {args.stages!r} has an empty name: give stages W-S separated by "
                                 f"commas, or all")
        stages = [envs.stage_settings(args.game, name)[0] if name else None for name in names]
        repeated = sorted({s for s in stages if s and stages.count(s) > 1})
        if repeated:
            raise ValueError(f"--stages names {repeated[0]!r} twice")
        algo = args.algo or "ppo"
        sweep_dir = pathlib.Path(args.sweep_dir or f"logs/sweep-{args.game.lower()}-{algo}-"
                                                   f"{datetime.datetime.now():%Y%m%d-%H%M%S}").absolute()
        check_new_folder(sweep_dir, "sweep dir")
        check_writable(sweep_dir, "sweep dir")
        experiment = new_experiment_dir(sweep_dir, args.storage)
        if args.storage is not None:
            check_new_folder(experiment, "storage folder")
            check_writable(experiment, "storage folder")
    except ValueError as err:
        raise UsageError(err) from None
    given = [(flag, str(getattr(args, name))) for flag, name in SWEEP_TRAIN_FLAGS if getattr(args, name) is not None]
    cpus = args.cpus_per_run or 1
    run_flags = ["--no-progress", "--cpus", str(cpus)]
    trials, configs = [], []
    for stage in stages:
        for seed in args.seeds or [1]:
            name = trial_name(args.game, stage, seed)
            run_dir = experiment / name
            argv = ["train", "--game", args.game, *(["--stage", stage] if stage else []), "--seed", str(seed),
                    "--run-dir", str(run_dir), "--export-dir", str(run_dir / "export"), *run_flags,
                    *(part for flag, value in given for part in (flag, value))]
            run = build_parser().parse_args(argv)
            configs.append(checked_run(run)[0])   # raises UsageError naming the first bad value
            resume_argv = ["train", "--resume", str(run_dir), *run_flags]
            trials.append({"name": name, "stage": stage, "seed": seed, "run_dir": str(run_dir), "argv": argv,
                           "resume_argv": resume_argv})
    # On this machine's own cluster, as many runs at once as its cores hold, each with its memory.
    at_once = min(len(trials), max(1, (os.cpu_count() or 1) // cpus)) if args.address is None else 1
    for cfg in configs:
        check_memory(cfg, at_once, cpus)
    sweep = Sweep(game=args.game, algo=algo, seeds=args.seeds or [1], stages=stages, cpus_per_run=cpus,
                  experiment=str(experiment), trials=trials,
                  max_failures=3 if args.max_failures is None else args.max_failures)
    return sweep, sweep_dir


# The learner process without its arrays: TensorFlow loaded takes 593 MiB, a Mario PPO run at
# update 8 976 MiB with its 58 MiB rollout (2026-11-30).
LEARNER_BYTES = 900 * 2**20


def check_memory(cfg, runs=1, cpus=None):
    """UsageError (one line, both sizes) unless `runs` runs of `cfg` fit in free memory at
    once: the learner, its envs (training and test) and the algorithm's rollout, replay or
    trajectory memory, all sized from the settings before anything is allocated (an
    oversized array would otherwise only fail as it fills, when the OOM killer steps in)."""
    import envs
    from utilities.replay import check_fits

    space = envs.observation_space(cfg.game, cfg.num_envs, **cfg.env)
    needs = [("the learner", LEARNER_BYTES), (f"{cfg.num_envs} envs", envs.env_bytes(cfg.game, cfg.num_envs, cpus))]
    if cfg.options["test_every"]:
        clear_episodes = cfg.options["clear_episodes"]
        needs.append(("the test envs", envs.env_bytes(cfg.game, 1, cpus)
                      + (envs.env_bytes(cfg.game, clear_episodes, cpus) if clear_episodes else 0)))
    needs += cfg.params.memory_needs(cfg.num_envs, space.shape, space.dtype)
    try:
        check_fits(", ".join(what for what, _ in needs), sum(size for _, size in needs), runs)
    except ValueError as err:
        raise UsageError(err) from None


def sweep(args):
    """`python -m agent sweep`: every input is checked before Ray starts (one line, exit 2)."""
    from agent import distributed

    chosen = [flag for flag, value in (("--resume", args.resume), ("--status", args.status)) if value is not None]
    others = [flag for flag, value in (("--game", args.game), ("--stages", args.stages), ("--algo", args.algo),
                                       ("--seeds", args.seeds), ("--sweep-dir", args.sweep_dir),
                                       ("--storage", args.storage), ("--num-envs", args.num_envs),
                                       ("--actions", args.actions), ("--steps", args.steps),
                                       ("--checkpoint-every", args.checkpoint_every),
                                       ("--test-every", args.test_every), ("--clear-episodes", args.clear_episodes),
                                       ("--clear-every", args.clear_every),
                                       ("--stop-at-clear-rate", args.stop_at_clear_rate),
                                       ("--cpus-per-run", args.cpus_per_run), ("--max-failures", args.max_failures))
              if value is not None]
    if args.status and args.address:
        others.append("--address")
    if len(chosen) == 2 or (chosen and others):
        why = "it only reads the sweep's files" if chosen[0] == "--status" else \
            "a sweep keeps the settings it started with"
        return fail("sweep", f"{chosen[0]} takes no {(chosen[1:] + others)[0]}: {why}")
    if args.status:
        try:
            lines, _ = distributed.status(args.status)
        except ValueError as err:
            return fail("sweep", err)
        print("\n".join(lines))
        return 0
    try:
        if args.resume:
            try:
                spec, sweep_dir = distributed.Sweep.read(args.resume), pathlib.Path(args.resume)
            except ValueError as err:
                raise UsageError(err) from None
        else:
            spec, sweep_dir = new_sweep(args)
        try:
            address = distributed.check_address(args.address)
        except ValueError as err:
            raise UsageError(err) from None
    except UsageError as err:
        return fail("sweep", err)
    return distributed.run(spec, sweep_dir, address, resume=bool(args.resume))


def fail(command, message):
    print(f"python -m agent {command}: error: {message}", file=sys.stderr)
    return 2


def refused_restore(command, what, err):
    """fail() for a checkpoint that would not restore. Its half-restored objects would add a
    TensorFlow WARNING per unrestored value as they are collected at exit: the one line
    naming the mismatch says it all."""
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    return fail(command, f"{what}: {err}".splitlines()[0])


def import_tensorflow_quietly():
    """Import TensorFlow with stderr closed: its C++ start-up lines come before absl's
    log set-up and ignore TF_CPP_MIN_LOG_LEVEL. Called once the input is known good."""
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow  # noqa: F401
        import keras  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def set_tensorflow_threads(cpus):
    """TensorFlow's two thread pools sized to the run's cores (before its first op)."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(cpus)
    tf.config.threading.set_inter_op_parallelism_threads(cpus)


def export_command(args):
    from utilities.run_folder import RunFolder, check_export_folder

    folder = RunFolder(args.run_dir)
    if not folder.has_run() or not folder.has_checkpoint():
        return fail("export", f"no run with a checkpoint in {str(folder.path)!r}")
    out = pathlib.Path(args.out) if args.out else folder.default_export()
    try:
        check_export_folder(out, folder.path)
        cfg = saved_config(folder, "export")
    except ValueError as err:
        return fail("export", err)
    import_tensorflow_quietly()
    import tensorflow as tf
    from agent.export import export_run
    from utilities.checkpoints import CheckpointMismatch

    try:
        print(export_run(cfg, folder, out))
    except (CheckpointMismatch, ValueError, KeyError, TypeError, OSError, AssertionError, tf.errors.OpError) as err:
        return refused_restore("export", f"cannot export {str(folder.path)!r}", err)
    return 0


def play(args):
    import json

    import envs
    from utilities.run_folder import check_writable

    if args.video:
        video = pathlib.Path(args.video)
        if video.suffix.lower() != ".mp4" or video.is_dir():
            return fail("play", f"--video {args.video!r} is not an .mp4 file's path")
        if not video.parent.resolve().is_dir():
            return fail("play", f"no folder for --video {args.video!r}")
        try:
            check_writable(video.parent, "--video folder")
        except ValueError as err:
            return fail("play", err)
    import_tensorflow_quietly()
    import tensorflow as tf
    from agent.serving import served_shapes
    from utilities.run_folder import read_card

    try:
        card = read_card(args.model_dir)
        game = envs.resolve_game(card["game"])
        if args.video and len(card["obs_shape"]) != 3:
            raise ValueError(f"--video needs a game seen as images; {card['game']} is seen as a vector")
        if args.random_starts and not game.tests.clear_episodes:
            raise ValueError(f"--random-starts is for games that report clears (mario), not {card['game']!r}")
        policy = tf.saved_model.load(args.model_dir)
        served = served_shapes(policy)
        env = envs.make_test_env(card["game"], 0, random_starts=args.random_starts, **card.get("env", {}))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError, tf.errors.OpError) as err:
        # IndexError, OpError: a damaged variables/ folder (a copy cut short, say).
        return fail("play", f"cannot play {args.model_dir!r}: {err}".splitlines()[0])
    # A card edited by hand (or copied onto another export) can name a game the policy does not fit.
    seen = [list(env.single_observation_space.shape), int(env.single_action_space.n)]
    if seen != list(served):
        env.close()
        return fail("play", f"cannot play {args.model_dir!r}: the policy takes observations {served[0]} "
                            f"and {served[1]} actions, {card['game']!r} gives {seen[0]} and {seen[1]}")
    from agent.evaluation import greedy_episode
    from utilities.video import write_mp4

    frames, cleared = [], 0
    try:
        for k in range(1, args.episodes + 1):
            episode = greedy_episode(lambda obs: policy(obs)["action"].numpy(), env, game.tests.max_repeats,
                                     record=bool(args.video))
            frames += episode.pop("frames")
            cleared += episode.get("cleared", 0)
            line = {"episode": k, **{game.names.get(key, key): round(value, 3) if isinstance(value, float) else value
                                     for key, value in episode.items()}}
            print(json.dumps(line) if args.json else ", ".join(f"{key} {value}" for key, value in line.items()))
    finally:
        env.close()
    if "cleared" in episode and not args.json:
        print(f"cleared {cleared} of {args.episodes}")
    if args.video:
        write_mp4(frames, args.video)
        if not args.json:
            print(f"video: {args.video}")
    return 0


def format_summary(s):
    minutes, seconds = divmod(int(s["wall_seconds"]), 60)
    return (f"done: {s['steps']:,} steps, {s['updates']} updates in {minutes}m{seconds:02d}s "
            f"({s['steps_per_second']:.0f} steps/s, {100 * s['update_share']:.0f}% in updates)\n"
            f"episodes: {s['episodes']}, mean return of the last 20: {s['mean_recent_return']:.2f}\n"
            f"run folder: {s['run_dir']}  (tensorboard --logdir {s['run_dir']})")


PLOT_FORMATS = (".png", ".svg", ".pdf", ".jpg")


def plot(args):
    from utilities.run_folder import check_writable

    missing = [d for d in args.run_dirs if not pathlib.Path(d).is_dir()]
    if missing:
        return fail("plot", f"no run folder {missing[0]!r}")
    out = pathlib.Path(args.out)
    if out.is_dir():
        return fail("plot", f"--out {args.out!r} is a folder; give the PNG file's path")
    if out.suffix.lower() not in PLOT_FORMATS:
        return fail("plot", f"--out {args.out!r}: the file must end in one of {', '.join(PLOT_FORMATS)}")
    try:
        check_writable(out.parent, "--out folder")
    except ValueError as err:
        return fail("plot", err)
    import_tensorflow_quietly()
    from utilities.events import read_scalars
    from utilities.plots import plot_learning_curve

    empty = [d for d in args.run_dirs if not read_scalars(d).get(args.tag)]
    if empty:
        return fail("plot", f"no {args.tag!r} scalars in {empty[0]!r} (a run folder's event files; --tag names "
                            f"a TensorBoard tag such as episode/return)")
    out.parent.mkdir(parents=True, exist_ok=True)
    print(plot_learning_curve(args.run_dirs, args.out, args.tag, smooth=args.smooth))
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    return {"train": train, "export": export_command, "play": play, "plot": plot,
            "sweep": sweep}[args.command](args)
