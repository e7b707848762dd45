"""What Ray costs a sweep: 2 CartPole runs as `python -m agent sweep` on this machine (a
local Ray instance, one core a run) against the same 2 runs as plain `python -m agent
train --cpus 1` processes side by side; plus Ray's start-up time and the memory its own
processes hold while idle.

Usage: python benchmarks/sweep_overhead.py [--steps 40960] [--rounds 1]
Target: the sweep's wall time within 10% of the plain processes'. With --rounds R the two
alternate R times and the medians are shown.
"""

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ENV = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2", RAY_AUTH_MODE="disabled")
SEEDS = (1, 2)


def agent(*args):
    return subprocess.Popen([sys.executable, "-m", "agent", *args], cwd=ROOT, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finish(proc):
    _, err = proc.communicate()
    if proc.returncode != 0:
        sys.exit(f"benchmark run failed ({proc.returncode}): {err[-2000:]}")


def plain(steps, folder):
    start = time.perf_counter()
    procs = [agent("train", "--game", "cartpole", "--seed", str(seed), "--steps", str(steps), "--cpus", "1",
                   "--no-progress", "--run-dir", f"{folder}/plain-{seed}", "--export-dir", f"{folder}/plain-{seed}-x")
             for seed in SEEDS]
    for proc in procs:
        finish(proc)
    return time.perf_counter() - start


def sweep(steps, folder):
    start = time.perf_counter()
    finish(agent("sweep", "--game", "cartpole", "--seeds", ",".join(map(str, SEEDS)), "--steps", str(steps),
                 "--cpus-per-run", "1", "--sweep-dir", f"{folder}/sweep"))
    return time.perf_counter() - start


def descendants_rss_mb():
    """Resident memory of this process's descendants (Ray's processes), in MB."""
    parents = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                parents[int(pid)] = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError):
            pass
    found, grew = {os.getpid()}, True
    while grew:
        new = {pid for pid, parent in parents.items() if parent in found} - found
        found |= new
        grew = bool(new)
    total = 0
    for pid in found - {os.getpid()}:
        try:
            with open(f"/proc/{pid}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            pass
    return total / 1024


def ray_start_up():
    """(seconds for ray.init of a local instance as the sweep starts it, MB its processes hold)."""
    from agent.distributed import LOCAL_IP, Reaper

    os.environ["RAY_AUTH_MODE"] = "disabled"
    reaper = Reaper()
    import ray

    start = time.perf_counter()
    ray.init(address="local", num_cpus=os.cpu_count(), _node_ip_address=LOCAL_IP, include_dashboard=False,
             object_store_memory=200 * 2**20, logging_level="WARNING")
    seconds = time.perf_counter() - start
    time.sleep(5)   # let the idle workers Ray prestarts come up
    memory = descendants_rss_mb()
    ray.shutdown()
    reaper.close()
    return seconds, memory


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40960, help="agent steps of each run")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    plains, sweeps = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.rounds):
            plains.append(plain(args.steps, f"{tmp}/{k}"))
            sweeps.append(sweep(args.steps, f"{tmp}/{k}"))
    seconds, memory = ray_start_up()
    p, s = statistics.median(plains), statistics.median(sweeps)
    print(f"2 CartPole runs of {args.steps:,} steps, {os.cpu_count()} cores, {args.rounds} round(s)")
    print(f"plain processes side by side: {p:6.1f} s")
    print(f"sweep on a local Ray instance: {s:6.1f} s   ratio {s / p:.2f}  (target <= 1.10: "
          f"{'met' if s / p <= 1.10 else 'NOT met'})")
    print(f"Ray start-up (ray.init, local instance): {seconds:.1f} s; its processes hold {memory:.0f} MB when idle")


if __name__ == "__main__":
    main()
