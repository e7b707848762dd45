"""Replay memory throughput for the Atari layout (single 84x84 frames, 4-stacks rebuilt).

Prints the bytes per transition, then add and sample rates (transitions/s) for uniform and
prioritised replay at batch 32 and 128, for each capacity. A capacity that does not fit in
MemAvailable (plus 1 GiB headroom) is skipped, not attempted.

Buffers are filled fast with synthetic frames written straight into the arrays (a pool of
random frames, episodes of ~400 steps with terminated ends, the next-step reset rows and
copy-filled episode starts EnvPool produces), followed by revalidate(); the add rate is then
measured with add() on the full ring, i.e. at steady state where every add overwrites.

Then DQN training on Freeway (the `ddqn` Atari preset: 8 envs, a gradient step of batch 32
every 4 agent steps, 1,000-step updates; burn-in cut to 2,000 steps so that training starts
at once): agent steps/s of the real loop beside env-only steps/s, and the share of wall time
in gradient steps (the one tf.function train step under a stopwatch), env steps and acting.

Usage: python benchmarks/replay_throughput.py [--capacities 100000,1000000] [--seconds 2]
                                              [--dqn-updates 5] [--only replay|dqn]
Single measurements on a shared machine: run it twice and compare.
"""

import argparse
import gc
import os
import pathlib
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from utilities import replay  # noqa: E402
from benchmarks.timing import Stopwatch, freeway_env_only  # noqa: E402
from utilities.replay import PrioritizedReplay, ReplayBuffer  # noqa: E402

ATARI = (4, 84, 84)
HEADROOM = 1 << 30
EPISODE = 400


def synthetic_fill(buf, rng, pool):
    """One full lap of the ring written directly: memory-bandwidth bound, not env bound."""
    n, slots = buf.num_envs, buf.slots
    flat = buf.frames.reshape(n * slots, *buf.frame_shape)
    for start in range(0, n * slots, len(pool)):       # cycle the pool in big copies
        stop = min(start + len(pool), n * slots)
        flat[start:stop] = pool[:stop - start]
    buf.actions[:] = rng.integers(0, 18, buf.actions.shape)
    buf.rewards[:] = rng.integers(-1, 2, buf.rewards.shape)
    # Episode k of env e ends (terminated) at step offset_e + k * EPISODE - 2; the next step
    # is its reset row and the one after starts a new episode with a copy-filled stack.
    phase = (np.arange(slots)[None, :] + rng.integers(0, EPISODE, (n, 1))) % EPISODE
    buf.terminated[:] = phase == EPISODE - 2
    buf.truncated[:] = False
    buf.reset_row[:] = phase == EPISODE - 1
    buf.boundary[:] = np.where(phase == 0, replay.COPY, replay.CONTINUE)
    buf.boundary[:, 0] = replay.COPY
    buf.count = slots
    buf._next_start = buf.reset_row[:, -1].copy()
    buf._fresh[:] = False
    buf.revalidate()


def rate(fn, seconds, per_call):
    fn()                                   # warm-up: first-touch page faults, caches
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return calls * per_call / elapsed


def measure(cls, capacity, num_envs, seconds, rng, pool):
    buf = cls(capacity, num_envs, ATARI, np.uint8, n_step=3, gamma=0.99)
    start = time.perf_counter()
    synthetic_fill(buf, rng, pool)
    fill_s = time.perf_counter() - start
    obs = [np.stack([pool[(k + e) % len(pool):][:4] for e in range(num_envs)])
           for k in range(0, len(pool) - 4, 16)]          # a few ready [N, 4, 84, 84] batches
    zeros_a = np.zeros(num_envs, np.int64)
    zeros_r = np.zeros(num_envs, np.float32)
    flags = np.zeros(num_envs, bool)
    calls = iter(range(1 << 62))

    def add():
        buf.add(obs[next(calls) % len(obs)], zeros_a, zeros_r, flags, flags, flags)

    row = {"fill s": fill_s, "add/s": rate(add, seconds, num_envs), "len": len(buf)}
    if capacity == 100_000:
        # What a run folder holds for it: the checkpoint's side file of a full replay.
        with tempfile.TemporaryDirectory() as folder:
            path = pathlib.Path(folder) / "replay.npz"
            buf.save(path)
            print(f"  {cls.kind} replay side file at 100k transitions: {path.stat().st_size / 2**30:.3f} GiB on disk")
    for batch in (32, 128):
        if cls is PrioritizedReplay:
            row[f"sample/s B={batch}"] = rate(lambda: buf.sample(batch, rng, 0.5), seconds,
                                              batch)

            def sample_update():
                out = buf.sample(batch, rng, 0.5)
                buf.update_priorities(out["indices"], rng.standard_normal(batch))
            row[f"sample+update/s B={batch}"] = rate(sample_update, seconds, batch)
        else:
            row[f"sample/s B={batch}"] = rate(lambda: buf.sample(batch, rng), seconds, batch)
    return row


def freeway_dqn(updates, num_envs, prioritized=False):
    """Agent steps/s of the real loop (ddqn Atari preset) over `updates` updates after the
    burn-in and one untimed update (tf.function tracing), and the shares of wall time."""
    import envs
    from agent import presets
    from agent.config import RunConfig, learner_class
    from agent.loop import Loop
    from utilities.run_folder import RunFolder

    preset = {**presets.preset("ddqn", "atari", "freeway"), "min_replay": 2000, "prioritized": prioritized}
    cfg = RunConfig.from_preset(preset, game="freeway", algo="ddqn", num_envs=num_envs).validate()
    env = envs.make("freeway", cfg.num_envs, cfg.seed, **cfg.env)
    space = env.single_observation_space
    algorithm = learner_class("ddqn")(cfg, space.shape, space.dtype.name, env.single_action_space.n)
    warm = -(-cfg.params.min_replay // cfg.params.update_every) + 1     # burn-in, then one training update
    with tempfile.TemporaryDirectory() as run_dir:
        loop = Loop(cfg, algorithm, env, RunFolder(run_dir), checkpoint_every=10**9)
        loop.train(progress=False, max_updates=warm)
        env.step = Stopwatch(env.step)
        algorithm.act = Stopwatch(algorithm.act)
        algorithm.train_step = Stopwatch(algorithm.train_step)
        steps0, grads0 = int(loop.state.step.numpy()), int(algorithm.gradient_steps.numpy())
        start = time.perf_counter()
        loop.train(progress=False, max_updates=updates)
        wall = time.perf_counter() - start
        steps = int(loop.state.step.numpy()) - steps0
        grads = int(algorithm.gradient_steps.numpy()) - grads0
        loop.close()
    shares = {"gradient": algorithm.train_step.seconds / wall, "env": env.step.seconds / wall,
              "acting": algorithm.act.seconds / wall}
    shares["other"] = 1.0 - sum(shares.values())
    return steps / wall, grads, algorithm.train_step.seconds / max(grads, 1), shares


def dqn_table(updates, num_envs):
    print(f"\nDQN training on Freeway: {num_envs} envs, batch 32 every 4 agent steps, {updates} timed "
          f"updates of 1,000 agent steps after the burn-in and one untimed")
    from agent import presets

    env_sps = freeway_env_only(num_envs, presets.preset("ddqn", "atari")["env"])
    print(f"{'run':<16}{'steps/s':>9}{'x env-only':>12}{'ms/grad':>9}{'gradient':>10}{'env':>7}"
          f"{'acting':>8}{'other':>7}")
    print(f"{'env only':<16}{env_sps:>9.0f}{1.0:>12.2f}")
    for name, prioritized in (("ddqn", False), ("ddqn + PER", True)):
        sps, grads, per_grad, s = freeway_dqn(updates, num_envs, prioritized)
        print(f"{name:<16}{sps:>9.0f}{sps / env_sps:>12.2f}{1000 * per_grad:>9.1f}{s['gradient']:>10.0%}"
              f"{s['env']:>7.0%}{s['acting']:>8.0%}{s['other']:>7.0%}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capacities", default="100000,1000000",
                        help="comma-separated total capacities (transitions)")
    parser.add_argument("--seconds", type=float, default=2.0,
                        help="timing window per measurement")
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--dqn-updates", type=int, default=5, help="timed DQN updates (1,000 agent steps each)")
    parser.add_argument("--only", choices=("replay", "dqn"), help="run one part only")
    args = parser.parse_args()
    if args.only != "dqn":
        replay_table(args)
    if args.only != "replay":
        dqn_table(args.dqn_updates, args.num_envs)


def replay_table(args):
    capacities = [int(c) for c in args.capacities.split(",")]
    rng = np.random.default_rng(0)
    pool = rng.integers(0, 256, (256, 84, 84), dtype=np.uint8)

    probe = ReplayBuffer(capacities[0], args.num_envs, ATARI, np.uint8, check_memory=False)
    print(f"bytes per transition: {probe.bytes_per_transition:g}")
    del probe
    for c in capacities:
        per = PrioritizedReplay.required_bytes(c, args.num_envs, ATARI, np.uint8) / c
        print(f"  prioritized at capacity {c}: {per:.1f} bytes per transition (sum tree incl.)")

    header = ["capacity", "replay", "fill s", "add/s", "sample/s B=32", "sample/s B=128",
              "sample+update/s B=32", "sample+update/s B=128"]
    rows = []
    for capacity in capacities:
        needed = PrioritizedReplay.required_bytes(capacity, args.num_envs, ATARI, np.uint8)
        available = replay.available_memory_bytes()
        if needed + HEADROOM > available:
            print(f"capacity {capacity}: skipped, needs {needed / 2**30:.2f} GiB + 1 GiB "
                  f"headroom, {available / 2**30:.2f} GiB available")
            continue
        for cls in (ReplayBuffer, PrioritizedReplay):
            row = measure(cls, capacity, args.num_envs, args.seconds, rng, pool)
            gc.collect()                   # free this buffer before allocating the next
            row.update({"capacity": capacity, "replay": cls.kind})
            rows.append(row)
            print(f"  done: {capacity} {cls.kind} (fill {row['fill s']:.1f} s)", flush=True)

    widths = [max(len(h), 10) for h in header]
    print(" | ".join(h.rjust(w) for h, w in zip(header, widths)))
    for row in rows:
        cells = []
        for h, w in zip(header, widths):
            v = row.get(h, "-")
            if isinstance(v, float):
                v = f"{v:.1f}" if h == "fill s" else f"{v:,.0f}"
            cells.append(str(v).rjust(w))
        print(" | ".join(cells))


if __name__ == "__main__":
    main()
