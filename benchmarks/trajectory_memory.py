"""PTR-PPO's trajectory memory (utilities/trajectory_memory.py) at seed 002's size: bytes
held, push and gather times, and the memory the process actually took once it was full.

M = 256 trajectories of T = 512 steps of Mario/Atari 4 x 84 x 84 uint8 stacks, filled by
16 rounds of 16 envs with synthetic stacks built as EnvPool builds them (episodes of ~400
steps, copy-filled starts), so every page is touched. Beside it, the bytes of the reference's
layout (seed 002: T 4-stacks, T next frames, float64 actions and dones, 12 behaviour logits
per step), computed from its array shapes.

Usage: python benchmarks/trajectory_memory.py [--memory 256] [--steps 512] [--envs 16]
"""

import argparse
import pathlib
import resource
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from utilities.trajectory_memory import TrajectoryMemory  # noqa: E402

OBS = (4, 84, 84)
EPISODE = 400


def synthetic_round(rng, steps, envs, pool, start):
    """Stacks [steps + 1, envs, 4, 84, 84]: a new pool frame each step, copies at a reset."""
    obs = np.empty((steps + 1, envs) + OBS, np.uint8)
    stack = np.repeat(pool[rng.integers(len(pool), size=envs)][:, None], 4, axis=1)
    for t in range(steps + 1):
        frame = pool[rng.integers(len(pool), size=envs)]
        stack = np.concatenate([stack[:, 1:], frame[:, None]], axis=1)
        if (start + t) % EPISODE == 0:
            stack[:] = frame[:, None]
        obs[t] = stack
    return obs


def reference_bytes(memory, steps, actions=12):
    frame = int(np.prod(OBS[1:]))
    per_step = 4 * frame + frame + 8 + 4 + 8 + 4 * actions    # states, next frame, actions, rewards, dones, logits
    return memory * steps * per_step


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--memory", type=int, default=256)
    parser.add_argument("--steps", type=int, default=512)
    parser.add_argument("--envs", type=int, default=16)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    pool = rng.integers(0, 256, (64,) + OBS[1:], dtype=np.uint8)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    memory = TrajectoryMemory(args.memory, args.steps, OBS, np.uint8)
    push_seconds, rounds = [], -(-args.memory // args.envs)
    for r in range(rounds):
        obs = synthetic_round(rng, args.steps, args.envs, pool, r * args.steps)
        zeros = np.zeros((args.steps, args.envs))
        t0 = time.perf_counter()
        memory.push(obs[:-1], obs[-1], zeros, zeros, zeros > 0, zeros > 0, zeros == 0, zeros,
                    rng.normal(size=zeros.shape))
        push_seconds.append(time.perf_counter() - t0)
        del obs
    t0 = time.perf_counter()
    for _ in range(8):
        memory.gather(memory.sample(args.envs, rng))
    gather = (time.perf_counter() - t0) / 8
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"trajectory memory bytes at M={args.memory}, T={args.steps}: {memory.nbytes}")
    print(f"  ({memory.nbytes / 1e9:.3f} GB; frames {memory.frames.nbytes}, the rest {memory.nbytes - memory.frames.nbytes})")
    print(f"reference layout (T 4-stacks + next frames) bytes: {reference_bytes(args.memory, args.steps)} "
          f"({reference_bytes(args.memory, args.steps) / 1e9:.3f} GB)")
    print(f"push of {args.envs} trajectories: {1e3 * np.median(push_seconds):.0f} ms (median of {rounds})")
    print(f"gather of {args.envs} drawn trajectories (stacks rebuilt): {1e3 * gather:.0f} ms")
    print(f"peak RSS growth while filling: {(rss - rss0) / 1e9:.3f} GB (includes one round of input stacks)")


if __name__ == "__main__":
    main()
