"""Sweeps of whole training runs on Ray Tune: one trial per (game or Mario stage, seed).

Imported only by `python -m agent sweep`, so `train` never loads Ray. Each trial is the
package's own training run (the `python -m agent train` code path, handed in by
agent/cli.py, the composition root), with its own run folder inside the sweep; the
package's checkpoint is the trial's checkpoint: after each one the trial reports it to
Tune, and a trial that starts again (its node died, or the driver died and the sweep is
resumed) continues its run folder with `--resume`, the package's exact resume.

<sweep dir>/
  sweep.json                the sweep: its trials, each as the `train` arguments it runs
  <trial>/                  (in <storage>/<sweep name>/ with --storage) a run folder
                            (config, checkpoints, events, video, export/) that is also
                            Tune's trial folder (its checkpoint_* records)
  experiment_state-*.json, tuner.pkl   Tune's record of the sweep (for --resume, --status)
"""

import dataclasses
import datetime
import importlib
import json
import logging
import math
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import time

from utilities.errors import first_line
from utilities.run_folder import LOCK, HeldError, Hold, RunFolder, write_atomic

ROOT = pathlib.Path(__file__).resolve().parents[1]
SPEC = "sweep.json"
FORMAT = 1
# A local Ray instance binds to a loopback address: Ray rewrites 127.0.0.1 to the
# machine's network address, 127.0.0.2 stays on loopback (nothing reachable from outside).
LOCAL_IP = "127.0.0.2"
# Tune's own loggers would add a second set of event files (ray/tune/*) beside each run's.
QUIET_TUNE = {"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
              "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
              "RAY_AIR_NEW_OUTPUT": "0"}


def quiet_tune():
    os.environ.update({k: v for k, v in QUIET_TUNE.items() if k not in os.environ})
    # Tune's results table looks for the result.json files of the loggers turned off above.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)


@dataclasses.dataclass
class Sweep:
    """What sweep.json holds: enough to resume or report the sweep from its folder alone."""
    game: str
    algo: str
    seeds: list
    stages: list                 # [None] for games without stages
    cpus_per_run: int
    experiment: str              # Tune's experiment folder: the sweep dir, or <storage>/<sweep name>
    trials: list                 # dicts: name, stage, seed, run_dir, argv (new run), resume_argv
    max_failures: int = 3
    train: str = "agent.cli:train_argv"   # the train entry point, "module:function"
    format: int = FORMAT

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def read(cls, sweep_dir):
        """The sweep in `sweep_dir`; ValueError (one line) if there is none."""
        path = pathlib.Path(sweep_dir) / SPEC
        try:
            values = json.loads(path.read_text())
            if values.get("format") != FORMAT:
                raise ValueError(f"format {values.get('format')!r}")
            return cls(**values)
        except (OSError, ValueError, TypeError, AttributeError) as err:
            raise ValueError(f"no sweep in {str(sweep_dir)!r}: it needs a readable {SPEC} "
                             f"({first_line(err)})") from None


def trial_name(game, stage, seed):
    return f"{game.lower()}{'-' + stage if stage else ''}-seed{seed}"


def new_experiment_dir(sweep_dir, storage):
    """Tune's experiment folder: the sweep dir itself, or <storage>/<sweep name>."""
    sweep_dir = pathlib.Path(sweep_dir).absolute()
    return sweep_dir if storage is None else pathlib.Path(storage).absolute() / sweep_dir.name


def check_new_folder(path, what):
    """ValueError unless `path` is absent or an empty folder (a sweep never mixes with another)."""
    path = pathlib.Path(path)
    if (path / SPEC).exists():
        raise ValueError(f"{what} {str(path)!r} already holds a sweep: continue it with "
                         f"--resume {path} or choose another --sweep-dir")
    # A .lock alone: a driver killed before it wrote the sweep's file.
    if path.is_dir() and any(p.name != LOCK for p in path.iterdir()):
        raise ValueError(f"{what} {str(path)!r} is not empty: choose a new or empty folder")


HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"   # + empty SETTINGS


def check_address(address):
    """The cluster address to connect to (None: start a local Ray instance); ValueError
    (one line) when no cluster answers there, before anything starts."""
    if address is None:
        return None
    if address == "auto":
        quiet_tune()
        from ray._private.services import canonicalize_bootstrap_address_or_die

        try:
            resolved = canonicalize_bootstrap_address_or_die("auto")
        except (ConnectionError, ValueError) as err:
            raise ValueError(f"--address auto: no running Ray cluster found on this machine "
                             f"({first_line(err)}); start one with `ray start --head`") from None
    else:
        resolved = address
    host, _, port = resolved.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--address must be auto or HOST:PORT, got {address!r}")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=5) as conn:
            # A Ray head's GCS speaks gRPC: an HTTP/2 server answers the client preface
            # with a SETTINGS frame (type 4). ray.init would wait minutes on anything else.
            conn.settimeout(5)
            conn.sendall(HTTP2_PREFACE)
            head = b""
            while len(head) < 9:   # the frame header may come in pieces
                piece = conn.recv(9 - len(head))
                if not piece:
                    break
                head += piece
    except OSError as err:
        raise ValueError(f"cannot reach a Ray cluster at --address {address} ({resolved}): "
                         f"{err.strerror or err}") from None
    if len(head) < 9 or head[3] != 4:
        raise ValueError(f"--address {address} ({resolved}) answers, but not as a Ray cluster's head "
                         f"(its GCS port, 6379 unless `ray start --head --port` said otherwise)")
    return resolved


# ---------------------------------------------------------------- the trial (on a Ray worker)

def trial(config):
    """A Tune trial: the package's training run of one (game or stage, seed).

    A run folder that holds a run is continued (trial_argv)."""
    import ray
    from ray import tune

    spec = config["trial"]
    folder = RunFolder(spec["run_dir"])
    node = ray.get_runtime_context().get_node_id()
    metrics = finished_metrics(folder)
    if metrics is not None:
        # Finished, but the driver died before Tune recorded it: nothing to do.
        tune.report(metrics)
        return
    if tune.get_checkpoint() is not None and not folder.has_checkpoint():
        # Tune moved the trial to a node that cannot see where it ran before.
        raise RuntimeError(f"trial {spec['name']}: its run folder {folder.path} has no checkpoint on this node, "
                           f"but Tune holds one: --storage must be a folder that every node mounts")
    wait_until_free(folder.path, HOLD_WAIT_S)
    argv, resume = trial_argv(spec, folder)
    log_trial(folder, node=node, resume=resume)

    reported, last = [], {}
    logging.getLogger("ray.train").setLevel(logging.WARNING)   # a line per Tune checkpoint otherwise

    def report(path, state):
        if reported[-1:] == [path]:
            return   # the loop's closing save rewrites the checkpoint it just wrote
        reported.append(path)
        metrics = {"steps": int(state.step.numpy()), "updates": int(state.updates.numpy()),
                   "mean_return": _finite(state.mean_recent_return), "best_test": _finite(state.best_test.numpy()),
                   "node": node}
        last.update(metrics)
        with tempfile.TemporaryDirectory() as tmp:
            # The checkpoint Tune keeps names the package's checkpoint; the run folder holds it.
            pathlib.Path(tmp, "package_checkpoint.json").write_text(
                json.dumps({"run_dir": str(folder.path), "checkpoint": path, **metrics}))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))

    module, name = config["train"].split(":")
    code = getattr(importlib.import_module(module), name)(argv, after_save=report)
    if code != 0:
        raise RuntimeError(f"python -m agent {' '.join(argv)} exited with {code}")
    log_trial(folder, node=node, finished=True, metrics=last)


# A trial moved off a node that died may find its run folder still held: on NFS the dead
# node's lock lasts until the server's lease ends (90 s by default on NFSv4).
HOLD_WAIT_S = 180


def wait_until_free(folder, seconds, poll=2.0):
    """Returns once no process holds `folder` (utilities.run_folder.Hold); RuntimeError
    (the holder named) if one still does after `seconds`, at once if it can never be held."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            Hold.check(folder, "run folder")
            return
        except HeldError as err:
            if time.monotonic() >= deadline:
                raise RuntimeError(f"{err} (waited {seconds:g} s)") from None
        except ValueError as err:
            raise RuntimeError(str(err)) from None
        time.sleep(poll)


def trial_argv(spec, folder):
    """(train argv, resumed) of a trial's start: a run folder with its config.json is
    continued with --resume, from its checkpoint or, where the run died before its first,
    from step 0 with its config (its event files purged past step 0); else a new run. A new
    run would refuse the folder: it holds a run's event files without a config.json."""
    return (spec["resume_argv"], True) if folder.has_run() else (spec["argv"], False)


def log_trial(folder, **entry):
    """One line in the run's sweep_trial.log: a start (node, resumed or new) or the end."""
    folder.path.mkdir(parents=True, exist_ok=True)
    with open(folder.trial_log, "a") as log:
        log.write(json.dumps({"time": datetime.datetime.now().isoformat(timespec="seconds"), **entry}) + "\n")


def read_trial_log(folder):
    try:
        return [json.loads(line) for line in folder.trial_log.read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        return []


def finished_metrics(folder):
    """The last metrics of a run whose trial log ends with its finish; None otherwise."""
    starts = read_trial_log(folder)
    return starts[-1]["metrics"] if starts and starts[-1].get("finished") else None


def _finite(value):
    value = float(value)
    return value if math.isfinite(value) else None


def trial_dir_name(trial):
    return trial.config["trial"]["name"]


# ---------------------------------------------------------------- the driver

def worker_runtime_env():
    # Trials import this package: every node needs it at the same path (README).
    return {"env_vars": {"PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"},
            "worker_process_setup_hook": "agent.distributed.quiet_sigterm_exit"}


def quiet_sigterm_exit():
    """Ray's setup hook for each worker process. Ray ends its workers with SIGTERM, and its
    handler raises SystemExit; should that land in a garbage-collection callback, Python
    prints "Exception ignored ... Traceback" and Ray forwards it to the driver's output
    (Ray 2.60, seen at the end of a resumed sweep). An exit asked for is no error: such
    SystemExits are dropped, every other unraisable exception is printed as before."""
    default = sys.unraisablehook

    def hook(unraisable):
        if not isinstance(unraisable.exc_value, SystemExit):
            default(unraisable)

    sys.unraisablehook = hook


def run(sweep, sweep_dir, address=None, resume=False):
    """Run (or resume) the sweep's trials to their end on the local machine or the cluster at
    `address`; prints the summary. Returns the exit code: 0 when every trial finished."""
    quiet_tune()
    sweep_dir = pathlib.Path(sweep_dir).absolute()
    experiment = pathlib.Path(sweep.experiment)
    common = dict(include_dashboard=False, runtime_env=worker_runtime_env(), logging_level=logging.WARNING,
                  configure_logging=True)
    if address is None and not cpus_fit(sweep.cpus_per_run, os.cpu_count()):
        return 2

    def refused(err):
        print(f"python -m agent sweep: error: {err}", file=sys.stderr)
        return 2

    try:
        # Before Ray starts: two drivers would run every trial twice into the same run folders.
        held = Hold(sweep_dir, "sweep folder")
    except ValueError as err:
        return refused(err)
    try:
        if not resume:   # checked free when the command began; another driver may have begun a sweep there since
            check_new_folder(sweep_dir, "sweep dir")
            if experiment != sweep_dir:
                check_new_folder(experiment, "storage folder")
    except ValueError as err:
        held.close(undo=True)
        return refused(err)
    try:
        code = start_trials(sweep, sweep_dir, experiment, address, resume, common)
    finally:
        # A new sweep that never wrote its file leaves no folder behind.
        held.close(undo=not (sweep_dir / SPEC).exists())
    if code is not None:
        return code
    lines, finished = status(sweep_dir)
    print("\n".join(lines))
    if not finished:
        print(f"not every run finished; continue with: python -m agent sweep --resume {sweep_dir}")
    return 0 if finished else 1


def start_trials(sweep, sweep_dir, experiment, address, resume, common):
    """Ray's part of run(): the cluster, Tune and the trials. Returns an exit code where it
    stops early (one line said why), None once Tune is done."""
    import ray
    from ray import tune

    reaper = Reaper() if address is None else None
    if address is None:
        ray.init(address="local", num_cpus=os.cpu_count(), _node_ip_address=LOCAL_IP,
                 object_store_memory=200 * 2**20, **common)
    else:
        try:
            ray.init(address=address, **common)
        except (ConnectionError, RuntimeError, ValueError) as err:
            # Something answers at the address, but not a Ray cluster we may join.
            print(f"python -m agent sweep: error: cannot join the Ray cluster at --address {address}: "
                  f"{first_line(err)}", file=sys.stderr)
            return 2
    try:
        if address is not None and not cpus_fit(sweep.cpus_per_run, max(
                (node["Resources"].get("CPU", 0) for node in ray.nodes() if node["Alive"]), default=0)):
            return 2
        if not resume:
            write_atomic(sweep_dir / SPEC, sweep.to_json())
        trainable = tune.with_resources(trial, {"cpu": sweep.cpus_per_run})
        param_space = {"trial": tune.grid_search(sweep.trials), "train": sweep.train}
        if resume and tune.Tuner.can_restore(str(experiment)) and readable_record(experiment):
            # The param space again: tuner.pkl does not keep it, and Tune starts the trials
            # again from it should its restore fail all the same.
            tuner = tune.Tuner.restore(str(experiment), trainable, param_space=param_space,
                                       resume_unfinished=True, resume_errored=True)
        else:
            # A driver that died before Tune's record was whole: the trials start again, each
            # continuing its run folder if it has a checkpoint (a finished one: see trial()).
            tuner = tune.Tuner(
                trainable,
                param_space=param_space,
                tune_config=tune.TuneConfig(trial_name_creator=trial_dir_name, trial_dirname_creator=trial_dir_name,
                                            reuse_actors=False),
                run_config=tune.RunConfig(name=experiment.name, storage_path=str(experiment.parent), verbose=0,
                                          failure_config=tune.FailureConfig(max_failures=sweep.max_failures),
                                          checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                                          callbacks=[progress()]))
        print(f"sweep of {len(sweep.trials)} runs -> {experiment}  (tensorboard --logdir {experiment})", flush=True)
        tuner.fit()
    finally:
        ray.shutdown()
        if reaper is not None:
            reaper.close()


def cpus_fit(cpus_per_run, largest):
    """Whether a run's CPUs fit the largest node; if not, says so in one line (Tune would
    leave such runs pending forever)."""
    if cpus_per_run <= largest:
        return True
    print(f"python -m agent sweep: error: --cpus-per-run {cpus_per_run} is more than any node has (at most "
          f"{largest:g} CPUs): no run could start", file=sys.stderr)
    return False


def progress():
    """A Tune callback printing one line per checkpoint, failure and end of a trial."""
    from ray import tune

    class Progress(tune.Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            ret = result.get("mean_return")
            print(f"{trial.config['trial']['name']}: step {result.get('steps', 0):,}, mean return "
                  f"{'-' if ret is None else f'{ret:.2f}'} (checkpoint)", flush=True)

        def on_trial_recover(self, iteration, trials, trial, **info):
            print(f"{trial.config['trial']['name']}: failed ({trial.num_failures} of {trial.max_failures} "
                  f"allowed); it starts again from its last checkpoint", flush=True)

        def on_trial_error(self, iteration, trials, trial, **info):
            print(f"{trial.config['trial']['name']}: failed for good; see {trial.path}", flush=True)

        def on_trial_complete(self, iteration, trials, trial, **info):
            print(f"{trial.config['trial']['name']}: finished", flush=True)

    return Progress()


REAPER = r"""
import os, select, sys, time

def table():
    # pid -> (parent pid, start time): the start time tells a pid reused later apart
    out = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[int(pid)] = (int(fields[1]), fields[19])
        except (OSError, IndexError):
            pass
    return out

def descendants(roots, procs):
    found, grew = dict(roots), True
    while grew:
        new = {pid: info[1] for pid, info in procs.items() if info[0] in found and pid not in found}
        found.update(new)
        grew = bool(new)
    return found

driver = int(sys.argv[1])
# What the driver ran before this watchdog (its multiprocessing resource tracker, say) is not Ray's.
before = descendants({driver: None}, table())
os.write(sys.stdout.fileno(), b"r")   # the driver waits for this before it starts anything
os.close(sys.stdout.fileno())
known = {}
while True:   # the driver's descendants, while it lives; the pipe closes when it ends, SIGKILL included
    ready = select.select([sys.stdin], [], [], 1.0)[0]
    procs = table()
    known.update(descendants({driver: None}, procs))
    if ready and not os.read(sys.stdin.fileno(), 1):
        break
for _ in range(3):   # again, for a worker being started meanwhile
    procs = table()
    known.update(descendants({p: s for p, s in known.items() if p in procs}, procs))
    for pid, start in known.items():
        if pid not in (driver, os.getpid()) and before.get(pid) != start and pid in procs and procs[pid][1] == start:
            try:
                os.kill(pid, 9)
            except OSError:
                pass
    time.sleep(0.5)
"""


class Reaper:
    """Processes of a local Ray instance never outlive the driver: ray.shutdown() ends them
    on a normal exit, but a killed driver leaves some behind (Ray 2.60's dashboard and
    runtime-env agents stay, reparented to init). A small watchdog process, in its own
    session so that Ctrl-C leaves it alone, notes this process's descendants every second
    and, once this process's end of a pipe closes (close(), any exit, SIGKILL included),
    kills those still running (not those it had already started before: they are not Ray's)."""

    def __init__(self):
        read, self._write = os.pipe()   # not inheritable: only this process holds the write end
        self.watchdog = subprocess.Popen([sys.executable, "-c", REAPER, str(os.getpid())], stdin=read,
                                         start_new_session=True, stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL)
        os.close(read)
        self.watchdog.stdout.read(1)   # it has noted what ran before it
        self.watchdog.stdout.close()

    def close(self):
        os.close(self._write)
        self.watchdog.wait(timeout=30)


# ---------------------------------------------------------------- the summary

def status(sweep_dir):
    """(lines, finished): one line per trial -- game/stage, seed, steps, mean return of the
    last 20 episodes, for Mario whether a greedy test cleared the stage, the last clear rate
    and that of its best_policy/, and Tune's state -- from the sweep's files alone (no Ray
    instance)."""
    sweep = Sweep.read(sweep_dir)
    experiment = pathlib.Path(sweep.experiment)
    states, results = {}, {}
    if readable_record(experiment):
        quiet_tune()
        from ray.tune import ExperimentAnalysis

        for t in ExperimentAnalysis(str(experiment)).trials:
            states[t.config["trial"]["name"]] = t.status
            results[t.config["trial"]["name"]] = t.last_result or {}
    # The runs' own logs say which finished: Tune's record may be torn, or older than a
    # finish (its snapshot comes every few seconds; a driver killed in between).
    for spec in sweep.trials:
        metrics = finished_metrics(RunFolder(spec["run_dir"]))
        if metrics is not None:
            states[spec["name"]], results[spec["name"]] = "TERMINATED", metrics
    mario = sweep.stages != [None]
    header = f"{'run':<12} {'seed':>5} {'steps':>11} {'mean return':>12}"
    header += f" {'cleared':>8} {'clear rate':>11} {'best rate':>10}" if mario else ""
    lines = [header + "  state"]
    for spec in sweep.trials:
        result = results.get(spec["name"], {})
        ret = result.get("mean_return")
        line = (f"{sweep.game.lower() + ('-' + spec['stage'] if spec['stage'] else ''):<12} {spec['seed']:>5} "
                f"{result.get('steps', 0):>11,} {'-' if ret is None else f'{ret:.2f}':>12}")
        if mario:
            cleared, rate, best = _clears(spec["run_dir"])
            line += f" {cleared:>8} {rate:>11} {best:>10}"
        lines.append(f"{line}  {states.get(spec['name'], 'PENDING')}")
    lines.append(f"tensorboard --logdir {experiment}")
    finished = all(states.get(spec["name"]) == "TERMINATED" for spec in sweep.trials)
    return lines, finished


def readable_record(experiment):
    """Whether Tune's newest experiment state is there and whole: Tune copies it over the
    last one in place, so a driver killed during the copy leaves it torn."""
    states = list(pathlib.Path(experiment).glob("experiment_state-*.json"))
    try:
        return bool(states) and isinstance(json.loads(max(states, key=lambda p: p.name).read_bytes()), dict)
    except (OSError, ValueError):
        return False


def _clears(run_dir):
    """('yes'/'no', last clear rate, the clear rate of the run's best_policy/) from a Mario
    run's test summaries and best export; '-' for each before there is one."""
    if not any(pathlib.Path(run_dir).glob("events.out.tfevents.*")):
        return "-", "-", "-"
    from agent.cli import import_tensorflow_quietly   # the event reader loads TensorFlow

    import_tensorflow_quietly()
    from agent.export import best_clear_rate
    from utilities.events import read_scalars

    scalars = read_scalars(run_dir)
    cleared, rates = scalars.get("test/cleared", []), scalars.get("test/clear_rate", [])
    best = best_clear_rate(RunFolder(run_dir))
    return ("-" if not cleared else "yes" if any(v > 0 for _, v in cleared) else "no",
            f"{rates[-1][1]:.2f}" if rates else "-", f"{best['rate']:.2f}" if best else "-")
