"""Mario env throughput (agent steps/s, preprocessing included) on this machine.

Compares the shared-memory adapter (envs.mario.MarioVecEnv) with one process
stepping the same wrappers, and with seed 000's design: a process per env, each
step's whole result pickled through a Pipe. Usage:
    python benchmarks/mario_throughput.py [--steps 300]
"""

import argparse
import multiprocessing as mp
import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from envs.mario import MarioGame, MarioVecEnv  # noqa: E402


def one_process(steps, seed=0):
    game = MarioGame("1-1", "complex", seed)
    game.reset()
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    for _ in range(steps):
        _, _, done, truncated, _ = game.step(rng.integers(12))
        if done or truncated:
            game.reset()
    return steps / (time.perf_counter() - start)


def _one_process_job(steps, queue):
    queue.put(one_process(steps))


def independent_processes(count, steps):
    """`count` single processes at once, sharing nothing: the machine's own ceiling."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_one_process_job, args=(steps, queue)) for _ in range(count)]
    for p in procs:
        p.start()
    total = sum(queue.get() for _ in procs)
    for p in procs:
        p.join()
    return total


def adapter(num_envs, steps, num_workers=None):
    env = MarioVecEnv(num_envs, 0, stage="1-1", num_workers=num_workers)
    env.reset()
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(steps):
        env.step(rng.integers(12, size=num_envs))
    sps = steps * num_envs / (time.perf_counter() - start)
    env.close()
    return sps


def _pipe_worker(conn, seed):
    game = MarioGame("1-1", "complex", seed)
    game.reset()
    while True:
        command, action = conn.recv()
        if command == "close":
            return
        obs, reward, done, truncated, info = game.step(action)
        if done or truncated:
            obs, _ = game.reset()
        conn.send((obs.copy(), reward, done, truncated, info))


def pipe_per_env(num_envs, steps):
    ctx = mp.get_context("spawn")
    pipes = [ctx.Pipe() for _ in range(num_envs)]
    procs = [ctx.Process(target=_pipe_worker, args=(child, i), daemon=True)
             for i, (_, child) in enumerate(pipes)]
    for p in procs:
        p.start()
    conns = [parent for parent, _ in pipes]
    rng = np.random.default_rng(0)
    # Warm up: the first reply waits for the emulators to start.
    for conn in conns:
        conn.send(("step", 0))
    for conn in conns:
        conn.recv()
    start = time.perf_counter()
    for _ in range(steps):
        for conn, a in zip(conns, rng.integers(12, size=num_envs)):
            conn.send(("step", int(a)))
        results = [conn.recv() for conn in conns]
        np.stack([r[0] for r in results])
    sps = steps * num_envs / (time.perf_counter() - start)
    for conn in conns:
        conn.send(("close", None))
    for p in procs:
        p.join()
    return sps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="batched steps per measurement")
    args = parser.parse_args()
    cores = min(os.cpu_count(), 2)
    single = one_process(args.steps * 4)
    both = independent_processes(cores, args.steps * 4)
    print(f"one process: {single:.0f} agent steps/s; {cores} independent processes at once: {both:.0f} "
          f"({both / (cores * single):.2f} of {cores} x one)\n"
          f"target for the adapter: >= 90% of {cores} x one = {0.9 * cores * single:.0f}")
    print(f"{'envs':>5}{'workers':>9}{'adapter':>9}{'pipe/env':>10}{'adapter / (cores x one)':>25}"
          f"{'adapter / pipe':>16}")
    pipe = {num_envs: pipe_per_env(num_envs, args.steps) for num_envs in (2, 8)}
    for num_envs, num_workers in ((2, 2), (8, 2), (8, 8)):
        a, p = adapter(num_envs, args.steps, num_workers), pipe[num_envs]
        print(f"{num_envs:>5}{num_workers:>9}{a:>9.0f}{p:>10.0f}{a / (cores * single):>25.2f}{a / p:>16.2f}")


if __name__ == "__main__":
    main()
