"""Super Mario Bros (nes-py) behind the package's batched interface.

Seed 000's training env in each emulator (MarioGame): JoypadSpace with an action
set, skip 4 with the classic reward summed per frame, gray 84x84 (INTER_AREA),
stack 4, 0-29 random actions after each reset (training only), seed 000's
bonuses and stage rules, done on death.

MarioVecEnv steps N of them in worker processes (the emulator holds the GIL):
observations and per-step results go through shared memory, one message per
worker per agent step, and the auto-reset semantics match EnvPool's, so the agent
cannot tell the two apart.
"""

import ctypes
import multiprocessing as mp
import multiprocessing.connection
import os
import signal
import sys
import time
import weakref
from multiprocessing import shared_memory

import cv2
import gymnasium
import numpy as np

from envs.episodes import EpisodeCounter
from envs.mario_rules import StageRules, classic_frame_reward, parse_stage

ACTION_SETS = ("right", "simple", "complex", "right-a")   # right-a: seed 001's [right], [right, A]
FRAME = (84, 84)
SCREEN = (240, 256, 3)   # the NES picture, for videos
WAIT_SLICE = 1.0         # seconds a wait for the workers blocks before it counts the time
PR_SET_PDEATHSIG = 1     # linux/prctl.h


def _buttons(action_set):
    from gym_super_mario_bros.actions import COMPLEX_MOVEMENT, RIGHT_ONLY, SIMPLE_MOVEMENT

    return {"right": RIGHT_ONLY, "simple": SIMPLE_MOVEMENT, "complex": COMPLEX_MOVEMENT,
            "right-a": [["right"], ["right", "A"]]}[action_set]


class MarioGame:
    """One emulator with seed 000's training wrappers."""

    def __init__(self, stage, action_set, seed, random_starts=True, skip=4, noop_max=30):
        import gym_super_mario_bros  # noqa: F401  (registers the envs)
        from nes_py.wrappers import JoypadSpace

        self.world, self.stage = parse_stage(stage)
        self.env = JoypadSpace(gymnasium.make(f"SuperMarioBros-{self.world}-{self.stage}-v0"),
                               _buttons(action_set))
        self.num_actions = self.env.action_space.n
        self.rng = np.random.default_rng(seed)
        self.seed, self.random_starts, self.skip, self.noop_max = seed, random_starts, skip, noop_max
        self.rules = StageRules(self.world, self.stage)
        self.stack = np.zeros((4,) + FRAME, np.uint8)
        self.screen = np.zeros(SCREEN, np.uint8)
        self.prev = None

    def frame(self):
        """The current picture, gray 84x84 (seed 000: cv2 RGB2GRAY, INTER_AREA). The
        emulator's own frame is a strided view of its BGRx buffer, which cv2 reads at
        half speed; its contiguous RGB copy (also kept for videos) gives the same pixels."""
        self.env.unwrapped.observation("rgb_array_contiguous", self.screen)
        return cv2.resize(cv2.cvtColor(self.screen, cv2.COLOR_RGB2GRAY), FRAME, interpolation=cv2.INTER_AREA)

    def reset(self):
        _, info = self.env.reset(seed=self.seed)
        self.seed = None   # seeded once; later resets continue the emulator's own stream
        if self.random_starts:
            for _ in range(self.rng.integers(self.noop_max)):
                _, _, terminated, truncated, info = self.env.step(int(self.rng.integers(self.num_actions)))
                if terminated or truncated:
                    _, info = self.env.reset()
        self.rules.reset()
        self.prev = info
        self.stack[:] = self.frame()
        return self.stack, info

    def step(self, action):
        total = 0.0
        for _ in range(self.skip):
            _, _, terminated, truncated, info = self.env.step(int(action))
            total += classic_frame_reward(info, self.prev)
            self.prev = info
            if terminated or truncated:
                break
        reward, done = self.rules(total, terminated, info)
        self.stack[:-1] = self.stack[1:]
        self.stack[-1] = self.frame()
        return self.stack, reward, done, truncated and not done, info

    def close(self):
        self.env.close()


# --- the vectorised adapter ---------------------------------------------------

class WorkerDied(RuntimeError):
    """A Mario worker process ended; the env cannot go on."""


def _layout(num_envs, render):
    """(name, dtype, shape) of every shared array, in order; screens only when rendering."""
    arrays = [("obs", np.uint8, (num_envs, 4) + FRAME), ("reward", np.float32, (num_envs,)),
            ("terminated", np.bool_, (num_envs,)), ("truncated", np.bool_, (num_envs,)),
            ("reset_row", np.bool_, (num_envs,)), ("x_pos", np.int32, (num_envs,)),
            ("y_pos", np.int32, (num_envs,)), ("flag_get", np.bool_, (num_envs,))]
    if render:
        arrays.append(("screen", np.uint8, (num_envs,) + SCREEN))
    return arrays


def _views(buffer, num_envs, render):
    views, offset = {}, 0
    for name, dtype, shape in _layout(num_envs, render):
        size = int(np.prod(shape)) * np.dtype(dtype).itemsize
        views[name] = np.ndarray(shape, dtype, buffer=buffer, offset=offset)
        offset += size
    return views


def _shared_size(num_envs, render):
    return sum(int(np.prod(shape)) * np.dtype(dtype).itemsize for _, dtype, shape in _layout(num_envs, render))


def _die_with_parent():
    """A worker that the parent's death finds inside the emulator, or stopped, never reads
    the pipe's end: the kernel kills it then (Linux). It is sent when the thread that
    started the worker ends, and MarioVecEnv is closed in that thread."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != mp.parent_process().pid:
        os._exit(0)   # the parent died before the request took effect


def _worker(conn, shm_name, num_envs, indices, stage, action_set, seeds, random_starts, render):
    _die_with_parent()
    # Ctrl-C in a terminal reaches the whole process group: the parent saves a checkpoint
    # and ends the workers itself, so they must not die of it first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    shm = shared_memory.SharedMemory(name=shm_name, track=False)   # the parent owns it
    out = _views(shm.buf, num_envs, render)
    games = [MarioGame(stage, action_set, s, random_starts) for s in seeds]
    ended = [False] * len(games)

    def write(i, game, obs, reward, terminated, truncated, reset_row, info):
        out["obs"][i] = obs
        out["reward"][i] = reward
        out["terminated"][i], out["truncated"][i], out["reset_row"][i] = terminated, truncated, reset_row
        out["x_pos"][i], out["y_pos"][i], out["flag_get"][i] = info["x_pos"], info["y_pos"], info["flag_get"]
        if render:
            out["screen"][i] = game.screen

    try:
        conn.send(("ready", games[0].num_actions))
        while True:
            command, actions = conn.recv()
            if command == "close":
                break
            for k, (i, game) in enumerate(zip(indices, games)):
                if command == "reset" or ended[k]:
                    # EnvPool's next-step auto-reset: the step after an end only resets.
                    obs, info = game.reset()
                    write(i, game, obs, 0.0, False, False, command != "reset", info)
                    ended[k] = False
                else:
                    obs, reward, terminated, truncated, info = game.step(actions[k])
                    write(i, game, obs, reward, terminated, truncated, False, info)
                    ended[k] = terminated or truncated
            conn.send(("done", None))
    except (EOFError, KeyboardInterrupt, BrokenPipeError):
        pass   # the parent is gone: exit rather than outlive it
    finally:
        for game in games:
            game.close()
        del out
        shm.close()


def _shutdown(processes, conns, shm):
    for conn in conns:
        try:
            conn.send(("close", None))
        except (OSError, BrokenPipeError):
            pass
    for p in processes:
        p.join(timeout=5)
        if p.is_alive():
            p.kill()
            p.join(timeout=5)
    try:
        shm.close()
    except BufferError:
        pass   # numpy views still alive in this process; unlinking frees it anyway
    shm.unlink()


def workers(num_envs, num_workers=None):
    """Worker processes for `num_envs` envs: as asked, else one per core; at most one per env."""
    return min(num_envs, num_workers or os.process_cpu_count() or 1)   # the cores this process may use


class MarioVecEnv:
    @staticmethod
    def observation_space(**settings):   # settings: the stage's, as make() takes them
        """Every stage and action set: 4 stacked 84 x 84 grey frames (seed 000's preprocessing)."""
        return gymnasium.spaces.Box(0, 255, (4,) + FRAME, np.uint8)

    def __init__(self, num_envs, seed, stage="1-1", action_set="complex", random_starts=True,
                 render=False, num_workers=None, timeout=60.0):
        """render=True adds info["screen"], the RGB NES picture [N, 240, 256, 3], for videos."""
        parse_stage(stage)
        if action_set not in ACTION_SETS:
            raise ValueError(f"unknown action set {action_set!r}: choose one of {', '.join(ACTION_SETS)}")
        self.stage, self.action_set, self.num_envs, self.timeout = stage, action_set, num_envs, timeout
        self.render = render
        num_workers = workers(num_envs, num_workers)
        self._shm = shared_memory.SharedMemory(create=True, size=_shared_size(num_envs, render))
        self._out = _views(self._shm.buf, num_envs, render)
        ctx = mp.get_context("spawn")   # never fork a process that holds TensorFlow
        self._conns, self._processes = [], []
        self._slices = np.array_split(np.arange(num_envs), num_workers)
        for indices in self._slices:
            parent, child = ctx.Pipe()
            seeds = [seed + int(i) for i in indices]   # each env seeded on its own
            p = ctx.Process(target=_worker, daemon=True,
                            args=(child, self._shm.name, num_envs, indices.tolist(), stage, action_set,
                                  seeds, random_starts, render))
            p.start()
            child.close()
            self._conns.append(parent)
            self._processes.append(p)
        self._finalizer = weakref.finalize(self, _shutdown, self._processes, self._conns, self._shm)
        # The workers that owe a reply: each sends one when it is ready, then one per command.
        self._owed = set(self._conns)
        num_actions = self._gather()[0]
        self.single_observation_space = self.observation_space()
        self.single_action_space = gymnasium.spaces.Discrete(num_actions)
        self._episodes = EpisodeCounter(num_envs)

    def _gather(self):
        """The replies of the workers that owe one, in worker order; a dead worker raises
        instead of hanging, as does (closing the env) one silent for `timeout` seconds."""
        replies = {}
        process = dict(zip(self._conns, self._processes))
        waited = 0.0
        while self._owed:
            start = time.monotonic()
            ready = mp.connection.wait([*self._owed, *(process[c].sentinel for c in self._owed)], WAIT_SLICE)
            # Waited in slices, each counted at most once: the time this process was suspended
            # (Ctrl-Z, kill -STOP) is no delay of the workers, which were stopped with it.
            waited += min(time.monotonic() - start, WAIT_SLICE)
            if not ready and waited >= self.timeout:
                for conn in self._owed:    # hung: no "close" would be read
                    process[conn].kill()
                self.close()
                raise WorkerDied(f"Mario workers gave no answer within {self.timeout:.0f} s")
            for conn in [c for c in self._conns if c in self._owed]:
                p = process[conn]
                if conn in ready:
                    try:
                        replies[conn] = conn.recv()[1]
                    except (EOFError, OSError):
                        pass
                    else:
                        self._owed.discard(conn)
                        continue
                if p.sentinel in ready or not p.is_alive():
                    self.close()
                    raise WorkerDied(f"Mario worker (pid {p.pid}) died with exit code {p.exitcode}")
        return [replies[c] for c in self._conns if c in replies]

    def _command(self, command, actions=None):
        if not self._finalizer.alive:
            raise RuntimeError("MarioVecEnv is closed")
        if actions is not None:   # checked before any worker is sent its part
            actions = np.asarray(actions)
            n = self.single_action_space.n
            if (actions.shape != (self.num_envs,) or not np.issubdtype(actions.dtype, np.integer)
                    or not ((actions >= 0) & (actions < n)).all()):
                shown = np.array2string(actions.ravel(), threshold=8, max_line_width=10**9)
                raise ValueError(f"actions must be {self.num_envs} integers in [0, {n}), got {actions.dtype} "
                                 f"{actions.shape} {shown}")
        # A command cut short (Ctrl-C while waiting) leaves replies owed: take them first, or
        # this command would read the old ones as its own while the workers still write.
        self._gather()
        for conn, p, indices in zip(self._conns, self._processes, self._slices):
            chunk = None if actions is None else actions[indices].tolist()
            self._owed.add(conn)
            try:
                conn.send((command, chunk))
            except (BrokenPipeError, OSError):
                self.close()
                raise WorkerDied(f"Mario worker (pid {p.pid}) died with exit code {p.exitcode}") from None
        self._gather()

    def _info(self):
        out = self._out
        info = {"reset_row": out["reset_row"].copy(), "x_pos": out["x_pos"].copy(),
                "y_pos": out["y_pos"].copy(), "flag_get": out["flag_get"].copy()}
        # The names greedy tests read on any env (envs/__init__.py).
        info["cleared"], info["progress"] = info["flag_get"], info["x_pos"]
        if self.render:
            info["screen"] = out["screen"].copy()
        return info

    def reset(self):
        self._command("reset")
        self._episodes = EpisodeCounter(self.num_envs)
        return self._out["obs"].copy(), {**self._info(), **self._episodes.reset_info()}

    def step(self, actions):
        self._command("step", actions)
        out = self._out
        reward, terminated, truncated = out["reward"].copy(), out["terminated"].copy(), out["truncated"].copy()
        info = self._info()
        info.update(self._episodes.step(reward, ~info["reset_row"], terminated | truncated))
        return out["obs"].copy(), reward, terminated, truncated, info

    def close(self):
        self._out = None
        self._finalizer()
