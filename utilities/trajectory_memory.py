"""Prioritised FIFO memory of whole trajectories (PTR-PPO, Liang et al. 2021; seed 002).

A trajectory is one env's T-step segment of one round: the T observations the agent
acted on, the final next observation (to bootstrap the last step), and per step the
action, reward, end flags, whether the row is a real transition (`valid`: EnvPool's
auto-reset rows are not) and the behaviour policy's log-probability of the action
taken (b(a|s): the off-policy ratio pi/b needs nothing else). M trajectories live in a
ring (the oldest goes first); a SumTree (utilities/prioritized.py) over the M slots
holds their leaf values p^alpha, so a draw is proportional to priority.

Storage: single frames, as the replay memory (utilities/replay.py). For image stacks
[K, H, W] uint8 (newest plane last) a trajectory keeps the K planes of its first
observation, then only the newest plane of each later observation and of the final
next observation: T + K frames instead of (T + 1) K (seed 002's reference keeps T
K-stacks plus T next frames, ~4.6 GB at M = 256, T = 512 on Mario; this layout needs
~0.93 GB, benchmarks/trajectory_memory.py). Every older plane of a stack is found
by comparing it, at push time, with what the trajectory already holds: it is either
the next-older plane of the previous stack (the stack continues: a step inside an
episode, or EnvPool's life loss) or a copy of its own newest plane (a real reset
fills the stack with copies of the first frame: EnvPool and envs/mario.py). An index
table (T + 1, K) of int16 then rebuilds every stack exactly. A stack that is neither
is refused (ValueError) rather than stored wrong. Vector observations are stored
whole (a stack of one).
"""

import zipfile

import numpy as np

from utilities import prioritized
from utilities.replay import _read_npy_into, atomic_savez, check_saved_config

# Per-step columns besides the frames.
COLUMNS = {
    "actions": np.int16,
    "rewards": np.float32,
    "terminated": np.bool_,
    "dones": np.bool_,        # terminated or truncated: the next row belongs to another episode
    "valid": np.bool_,
    "behaviour_logp": np.float32,
}


def stack_of(obs_shape, obs_dtype):
    """K for an image stack [K, H, W] uint8, else 1 (a vector, stored whole)."""
    obs_shape = tuple(obs_shape)
    return obs_shape[0] if len(obs_shape) == 3 and np.dtype(obs_dtype) == np.uint8 else 1


def plane_indices(obs):
    """Index table [T + 1, K] into a trajectory's frame pool for the stacks obs [T + 1, K, ...]
    (the pool holds obs[0]'s K planes, then the newest plane of obs[1:]); raises ValueError
    for a stack whose older planes neither continue the previous stack nor copy its newest."""
    steps, k = obs.shape[0], obs.shape[1]
    idx = np.empty((steps, k), np.int64)
    idx[0] = np.arange(k)
    if k == 1:
        idx[1:, 0] = np.arange(1, steps)
        return idx
    newest = np.arange(steps) + k - 1
    idx[:, -1] = newest
    flat = obs.reshape(steps, k, -1)
    # Compared once, vectorised over the whole segment; the chain of indices is walked after.
    continues = (flat[1:, :-1] == flat[:-1, 1:]).all(axis=-1)            # [T, K - 1]
    copies = (flat[1:, :-1] == flat[1:, -1:]).all(axis=-1)               # [T, K - 1]
    bad = ~(continues | copies)
    if bad.any():
        t = int(np.argwhere(bad)[0][0]) + 1
        raise ValueError(f"the frame stack at step {t} neither continues the previous one nor repeats its "
                         f"newest frame: it cannot be stored as single frames")
    for t in range(1, steps):
        idx[t, :-1] = np.where(copies[t - 1], newest[t], idx[t - 1, 1:])
    return idx


class TrajectoryMemory:
    def __init__(self, capacity, steps, obs_shape, obs_dtype, alpha=0.7, eps=0.01, stratified=True):
        """capacity: M trajectories; steps: T per trajectory."""
        self.capacity, self.steps = int(capacity), int(steps)
        self.obs_shape, self.obs_dtype = tuple(int(d) for d in obs_shape), np.dtype(obs_dtype)
        self.stack = stack_of(self.obs_shape, self.obs_dtype)
        self.frame_shape = self.obs_shape[1:] if self.stack > 1 else self.obs_shape
        self.pool = self.steps + self.stack          # frames per trajectory
        self.alpha, self.eps, self.stratified = float(alpha), float(eps), bool(stratified)
        m, t = self.capacity, self.steps
        self.frames = np.zeros((m, self.pool) + self.frame_shape, self.obs_dtype)
        if self.pool > np.iinfo(np.int16).max:
            raise ValueError(f"rollout_steps {t} is too long for the trajectory memory: at most "
                             f"{np.iinfo(np.int16).max - self.stack}")
        self.planes = np.zeros((m, t + 1, self.stack), np.int16)     # indices into the pool of T + K frames
        for name, dtype in COLUMNS.items():
            setattr(self, name, np.zeros((m, t), dtype))
        self.tree = prioritized.SumTree(self.capacity)
        self.count = 0      # trajectories pushed; the next goes to slot count % capacity

    @classmethod
    def required_bytes(cls, capacity, steps, obs_shape, obs_dtype):
        """Bytes of the memory's arrays, computed without allocating them."""
        obs_shape, dtype = tuple(obs_shape), np.dtype(obs_dtype)
        stack = stack_of(obs_shape, dtype)
        frame = int(np.prod(obs_shape[1:] if stack > 1 else obs_shape)) * dtype.itemsize
        per_step = sum(np.dtype(d).itemsize for d in COLUMNS.values())
        leaves = 1 << max(int(np.ceil(np.log2(capacity))), 0)
        return capacity * ((steps + stack) * frame + (steps + 1) * stack * 2 + steps * per_step) + 16 * leaves

    @property
    def nbytes(self):
        return (self.frames.nbytes + self.planes.nbytes + sum(getattr(self, n).nbytes for n in COLUMNS)
                + self.tree.nbytes)

    def __len__(self):
        return min(self.count, self.capacity)

    # ----- writing ------------------------------------------------------------------------

    def push(self, obs, last_obs, actions, rewards, terminated, dones, valid, behaviour_logp, advantages):
        """Store one round: time-major [T, N] fields (obs [T, N, *obs_shape]), last_obs [N, ...]
        the observation after the last step; each env's segment becomes a trajectory with
        priority (mean |A| over its valid rows + eps)^alpha (seed 002). Returns the slots."""
        n = obs.shape[1]
        if obs.shape[0] != self.steps or obs.shape[2:] != self.obs_shape:
            raise ValueError(f"a trajectory is {(self.steps, self.obs_shape)}, got {obs.shape}")
        slots = (self.count + np.arange(n)) % self.capacity
        last_obs = np.asarray(last_obs)

        def segment(i):   # env i's T + 1 observations, one env at a time (no copy of the rollout)
            seg = np.concatenate([obs[:, i], last_obs[i][None]])
            return seg if self.stack > 1 else seg[:, None]

        # Every index table first: a segment that cannot be stored as single frames is
        # refused before any slot is overwritten.
        tables = [plane_indices(segment(i)) for i in range(n)]
        for i, (slot, idx) in enumerate(zip(slots, tables)):
            if self.stack > 1:
                self.frames[slot, :self.stack] = obs[0, i]
                self.frames[slot, self.stack:-1] = obs[1:, i, -1]
                self.frames[slot, -1] = last_obs[i, -1]
            else:
                self.frames[slot, :-1] = obs[:, i]
                self.frames[slot, -1] = last_obs[i]
            self.planes[slot] = idx
        columns = {"actions": actions, "rewards": rewards, "terminated": terminated, "dones": dones,
                   "valid": valid, "behaviour_logp": behaviour_logp}
        for name, values in columns.items():
            getattr(self, name)[slots] = np.asarray(values).T
        self.tree.set(slots, self.priorities(np.asarray(advantages).T, self.valid[slots]))
        self.count += n
        return slots

    def priorities(self, advantages, valid):
        """Leaf values for trajectories [B, T]: (mean |A| over valid rows + eps)^alpha."""
        return prioritized.priority_from_td(mean_abs(advantages, valid), self.alpha, self.eps)

    def update_priorities(self, slots, advantages):
        """New leaf values for drawn trajectories from their recomputed advantages [B, T]
        (a slot drawn twice gets the last write: SumTree.set)."""
        slots = np.asarray(slots, np.int64)
        self.tree.set(slots, self.priorities(advantages, self.valid[slots]))

    # ----- reading ------------------------------------------------------------------------

    def sample(self, batch_size, rng):
        """Slots drawn with P proportional to their leaf value: stratified (seed 002, as PER's
        reference) or i.i.d.; duplicates possible. rng: the caller's, keyed for resumes."""
        if not len(self):
            raise ValueError("the trajectory memory is empty")
        slots, _ = prioritized.sample(self.tree, batch_size, rng, self.stratified)
        return slots

    def observations(self, slots):
        """The T + 1 stacks of each slot, rebuilt: [B, T + 1, *obs_shape]."""
        slots = np.asarray(slots, np.int64)
        flat = self.frames.reshape((self.capacity * self.pool,) + self.frame_shape)
        rows = slots[:, None, None] * self.pool + self.planes[slots]          # [B, T + 1, K]
        return flat[rows] if self.stack > 1 else flat[rows[..., 0]]

    def gather(self, slots):
        """Everything stored for the slots: obs [B, T + 1, ...] and the [B, T] columns."""
        slots = np.asarray(slots, np.int64)
        return {"obs": self.observations(slots), **{name: getattr(self, name)[slots] for name in COLUMNS}}

    def leaf_values(self):
        """Leaf values p^alpha of the filled slots."""
        return self.tree.get(np.arange(len(self)))

    # ----- checkpoints --------------------------------------------------------------------

    def _config(self):
        return {"capacity": np.array(self.capacity), "steps": np.array(self.steps),
                "obs_shape": np.array(self.obs_shape), "obs_dtype": np.array(self.obs_dtype.str),
                "alpha": np.array(self.alpha), "eps": np.array(self.eps)}

    def _state(self):
        return {"frames": self.frames, "planes": self.planes, **{n: getattr(self, n) for n in COLUMNS}}

    def save(self, path):
        """Everything (frames, columns, priorities, cursor) as one uncompressed .npz, atomically."""
        atomic_savez(path, {**{"config_" + k: v for k, v in self._config().items()}, **self._state(),
                            **{"tree_" + k: v for k, v in self.tree.state().items()},
                            "count": np.array(self.count, np.int64)})

    def load(self, path):
        """Restore what save() wrote (same configuration required), reading in place."""
        with zipfile.ZipFile(path) as zf:
            check_saved_config(zf, self._config(), "memory")
            for name, out in self._state().items():
                _read_npy_into(zf, name, out)
            self.tree.load({k: _read_npy_into(zf, "tree_" + k) for k in ("nodes", "max_recorded", "capacity")})
            self.count = int(_read_npy_into(zf, "count"))


def mean_abs(advantages, valid):
    """mean |A| over each trajectory's valid rows (0 where none): seed 002's mean priority."""
    advantages, valid = np.asarray(advantages, np.float64), np.asarray(valid, bool)
    return np.abs(np.where(valid, advantages, 0.0)).sum(-1) / np.maximum(valid.sum(-1), 1)
