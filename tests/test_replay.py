"""Replay memory against a naive reference built from the same stream.

The reference keeps every full (obs, action, reward, next_obs, terminated, truncated)
tuple in plain Python lists and applies the sampling rules item by item; the buffer stores
single frames and must rebuild exactly the same arrays.
"""

import os
import warnings

import numpy as np
import pytest

from utilities import replay
from utilities.prioritized import importance_weights
from utilities.replay import PrioritizedReplay, ReplayBuffer

ATARI = (4, 84, 84)


# ----- naive reference --------------------------------------------------------------------

class Reference:
    """Every step's full observation and flags, plus the ground-truth kind of each episode
    start ("copy": stack filled with the first frame, "continue": stack carried over from
    the previous episode, "unknown": earlier planes unknowable). None = mid-episode."""

    def __init__(self, num_envs):
        self.num_envs = num_envs
        self.obs, self.actions, self.rewards = [], [], []
        self.terminated, self.truncated, self.reset_row, self.kinds = [], [], [], []

    def add(self, obs, actions, rewards, terminated, truncated, reset_row, kinds):
        self.obs.append(np.array(obs, copy=True))
        self.actions.append(np.array(actions, copy=True))
        self.rewards.append(np.array(rewards, np.float64))
        self.terminated.append(np.array(terminated, bool))
        self.truncated.append(np.array(truncated, bool))
        self.reset_row.append(np.array(reset_row, bool))
        self.kinds.append(list(kinds))

    def reset_episodes(self, reset):
        """env.reset() mid-stream, `reset` = its (obs, kinds): the last step's next state is
        lost, so that step is junk; an episode still running at the step before is cut
        there (a time-out, bootstrapping from the last stored observation)."""
        if self.obs:
            cut = ~self.reset_row[-1]
            self.reset_row[-1][:] = True
            if len(self.obs) > 1:
                self.truncated[-2] |= cut & ~self.reset_row[-2]
        self.pending = reset

    def _oldest_frame(self, e, t, stack):
        """Step holding the oldest plane of the stack observed at step t, or None."""
        cur = t
        for _ in range(stack - 1):
            kind = self.kinds[cur][e]
            if kind == "copy":
                continue
            if kind == "unknown":
                return None
            cur -= 1
        return cur

    def expected(self, slots, n, gamma, stack):
        """{(env, step): (obs, action, n-step return, next_obs, discount)} of every
        transition that the rules call sampleable with `slots` slots per env."""
        count = len(self.obs)
        oldest = max(count - slots, 0)
        out = {}
        for e in range(self.num_envs):
            for t in range(oldest, count):
                if self.reset_row[t][e]:
                    continue                      # its action was ignored: junk
                ret, m, discount = 0.0, None, None
                for k in range(n):
                    if t + k >= count:
                        break
                    ret += gamma ** k * self.rewards[t + k][e]
                    if self.terminated[t + k][e]:
                        m, discount = k + 1, 0.0
                        break
                    if self.truncated[t + k][e]:
                        m, discount = k + 1, gamma ** (k + 1)   # time-out: bootstrap
                        break
                else:
                    m, discount = n, gamma ** n
                if m is None or t + m >= count:
                    continue                      # next state not stored yet
                first = self._oldest_frame(e, t, stack)
                first_next = self._oldest_frame(e, t + m, stack)
                if first is None or first < oldest or first_next is None or first_next < oldest:
                    continue                      # a frame of its stack is gone or unknown
                out[(e, t)] = (self.obs[t][e], self.actions[t][e], ret, self.obs[t + m][e],
                               discount)
        return out


def check_against_reference(buf, ref, n, gamma, stack):
    expected = ref.expected(buf.slots, n, gamma, stack)
    count = len(ref.obs)
    got_ids = buf.sampleable_indices()
    e, j = np.divmod(got_ids, buf.slots)
    steps = j + buf.slots * ((count - 1 - j) // buf.slots)
    assert set(zip(e.tolist(), steps.tolist())) == set(expected), "sampleable sets differ"
    assert len(buf) == len(expected)
    if not expected:
        return 0
    batch = buf.gather(got_ids)
    for row, key in enumerate(zip(e.tolist(), steps.tolist())):
        obs, action, ret, next_obs, discount = expected[key]
        np.testing.assert_array_equal(batch["obs"][row], obs)
        np.testing.assert_array_equal(batch["next_obs"][row], next_obs)
        assert batch["actions"][row] == action
        assert batch["rewards"][row] == pytest.approx(ret, rel=1e-6, abs=1e-6)
        assert batch["discounts"][row] == pytest.approx(discount, rel=1e-6)
    return len(expected)


# ----- a synthetic EnvPool-semantics stream ----------------------------------------------

class FakeEnv:
    """N envs with next-step auto-reset. Episode starts fill the stack with copies of the
    first frame, or (p_continue) carry the stack over like an EnvPool life loss, or
    (p_zero) zero-fill it the way Dopamine's buffer pads."""

    def __init__(self, num_envs, obs_shape, dtype, seed, p_end=0.12, p_continue=0.0,
                 p_zero=0.0):
        self.rng = np.random.default_rng(seed)
        self.n, self.shape, self.dtype = num_envs, obs_shape, np.dtype(dtype)
        self.p_end, self.p_continue, self.p_zero = p_end, p_continue, p_zero
        self.image = len(obs_shape) == 3
        self.obs = np.zeros((num_envs,) + obs_shape, self.dtype)
        self.ended = np.zeros(num_envs, bool)

    def _frame(self, k):
        shape = (k,) + (self.shape[1:] if self.image else self.shape)
        if self.dtype == np.uint8:
            return self.rng.integers(0, 256, shape, dtype=np.uint8)
        return self.rng.standard_normal(shape).astype(self.dtype)

    def reset(self):
        frame = self._frame(self.n)
        if self.image:
            self.obs[:] = frame[:, None]
        else:
            self.obs[:] = frame
        self.ended[:] = False
        return self.obs.copy(), ["copy"] * self.n

    def step(self, actions):
        reset_row = self.ended.copy()
        u = self.rng.random(self.n)
        terminated = ~reset_row & (u < self.p_end / 2)
        truncated = ~reset_row & (u >= self.p_end / 2) & (u < self.p_end)
        rewards = np.where(reset_row, 0.0, self.rng.integers(-4, 5, self.n) * 0.5)
        frame = self._frame(self.n)
        kinds = [None] * self.n
        for e in range(self.n):
            if self.image:
                if reset_row[e]:
                    v = self.rng.random()
                    if v < self.p_continue:
                        kinds[e] = "continue"
                    elif v < self.p_continue + self.p_zero:
                        kinds[e] = "unknown"
                        self.obs[e] = 0
                        self.obs[e, -1] = frame[e]
                        continue
                    else:
                        kinds[e] = "copy"
                        self.obs[e] = frame[e]
                        continue
                self.obs[e, :-1] = self.obs[e, 1:].copy()
                self.obs[e, -1] = frame[e]
            else:
                if reset_row[e]:
                    kinds[e] = "copy"
                self.obs[e] = frame[e]
        self.ended = terminated | truncated
        return (self.obs.copy(), rewards.astype(np.float32), terminated, truncated, reset_row,
                kinds)


def run_stream(buf, env, steps, check_every=1, n=1, gamma=0.99, stack=4, seed=0, ref=None):
    """Drive buf (or a list of buffers) and a Reference with the same stream; compare every
    `check_every` adds. With `ref`, continue that reference's stream where it stopped."""
    bufs = buf if isinstance(buf, list) else [buf]
    rng = np.random.default_rng(seed)
    if ref is None:
        ref = Reference(env.n)
        ref.pending = env.reset()
    checked = 0
    for t in range(steps):
        obs, kinds = ref.pending
        actions = rng.integers(0, 6, env.n)
        next_obs, rewards, terminated, truncated, reset_row, next_kinds = env.step(actions)
        for b in bufs:
            b.add(obs, actions, rewards, terminated, truncated, reset_row)
        ref.add(obs, actions, rewards, terminated, truncated, reset_row, kinds)
        ref.pending = next_obs, next_kinds
        if t % check_every == check_every - 1:
            checked += sum(check_against_reference(b, ref, n, gamma, stack) for b in bufs)
    return ref, checked


# ----- hand-worked numbers ----------------------------------------------------------------

def scripted_buffer(n_step, cls=ReplayBuffer):
    """One env, vector obs [step, 0]. Episode 1: steps 0-2, ends terminated at step 2 (step
    3 is its reset row); episode 2: steps 4-5, truncated at 5 (step 6 reset row); episode
    3 from step 7 on."""
    buf = cls(64, 1, (2,), np.float32, n_step=n_step, gamma=0.5)
    rewards = [1, 2, 4, 0, 1, 1, 0, 1, 2, 3, 4, 5]
    terminated = {2}
    truncated = {5}
    reset_rows = {3, 6}
    for t, r in enumerate(rewards):
        buf.add(np.array([[t, 0]], np.float32), [t % 3], [r], [t in terminated],
                [t in truncated], [t in reset_rows])
    return buf


def by_step(batch):
    return {int(o[0]): (float(r), float(d), int(no[0]))
            for o, r, d, no in zip(batch["obs"], batch["rewards"], batch["discounts"],
                                   batch["next_obs"])}


def test_one_step_returns_hand_worked():
    buf = scripted_buffer(1)
    got = by_step(buf.gather(buf.sampleable_indices()))
    #          step: (return, discount, next-state step)
    assert got == {0: (1, 0.5, 1), 1: (2, 0.5, 2), 2: (4, 0.0, 3),      # terminated: no bootstrap
                   4: (1, 0.5, 5), 5: (1, 0.5, 6),      # truncated: bootstrap from 6
                   7: (1, 0.5, 8), 8: (2, 0.5, 9), 9: (3, 0.5, 10), 10: (4, 0.5, 11)}
    assert len(buf) == 9                 # reset rows 3, 6 and the open step 11 excluded


def test_three_step_returns_hand_worked():
    buf = scripted_buffer(3)
    got = by_step(buf.gather(buf.sampleable_indices()))
    assert got == {
        0: (1 + 0.5 * 2 + 0.25 * 4, 0.0, 3),    # 3.0, stops at the terminal step 2
        1: (2 + 0.5 * 4, 0.0, 3),
        2: (4, 0.0, 3),
        4: (1 + 0.5 * 1, 0.25, 6),              # truncated at 5: gamma^2, final obs at 6
        5: (1, 0.5, 6),
        7: (1 + 0.5 * 2 + 0.25 * 3, 0.125, 10),  # 2.75
        8: (2 + 0.5 * 3 + 0.25 * 4, 0.125, 11),  # 4.5
    }
    assert len(buf) == 7                 # 9 and 10 wait for steps 12 and 13


def test_terminated_and_truncated_together_means_no_bootstrap():
    buf = ReplayBuffer(16, 1, (1,), np.float32, n_step=2, gamma=0.5)
    for t, (r, te, tr, rr) in enumerate([(1, 0, 0, 0), (2, 1, 1, 0), (0, 0, 0, 1), (3, 0, 0, 0)]):
        buf.add([[t]], [0], [r], [te], [tr], [rr])
    got = by_step(buf.gather(buf.sampleable_indices()))
    assert got == {0: (2.0, 0.0, 2), 1: (2.0, 0.0, 2)}


def test_reset_episodes_cuts_the_open_transition_and_truncates_the_one_before():
    buf = ReplayBuffer(64, 1, (2,), np.float32, n_step=3, gamma=0.5)
    for t in range(5):
        buf.add([[t, 0]], [0], [t + 1.0], [False], [False], [False])
    assert set(by_step(buf.gather(buf.sampleable_indices()))) == {0, 1}
    buf.reset_episodes()                 # env.reset(): step 4's next state is lost
    got = by_step(buf.gather(buf.sampleable_indices()))
    assert got == {0: (1 + 0.5 * 2 + 0.25 * 3, 0.125, 3),
                   1: (2 + 0.5 * 3 + 0.25 * 4, 0.125, 4),
                   2: (3 + 0.5 * 4, 0.25, 4),           # now ends at step 3, bootstraps from 4
                   3: (4, 0.5, 4)}
    for t in range(5, 9):               # a new episode: never chained to the old one
        buf.add([[t, 0]], [0], [10.0], [False], [False], [False])
    got = by_step(buf.gather(buf.sampleable_indices()))
    assert 4 not in got and got[5] == (10 + 5 + 2.5, 0.125, 8)


@pytest.mark.parametrize("cls", [ReplayBuffer, PrioritizedReplay])
def test_reset_episodes_across_the_ring_wrap_hand_worked(cls):
    # 7 slots, 15 steps: the ring holds steps 8..14, step 14 in slot 0 and step 13 in slot 6,
    # so the reset row and the truncated step it makes sit on either side of the wrap.
    buf = cls(7, 1, (2,), np.float32, n_step=3, gamma=0.5)
    for t in range(15):
        buf.add([[t, 0]], [0], [t + 1.0], [False], [False], [False])
    full = {8: (9 + 0.5 * 10 + 0.25 * 11, 0.125, 11), 9: (10 + 0.5 * 11 + 0.25 * 12, 0.125, 12),
            10: (11 + 0.5 * 12 + 0.25 * 13, 0.125, 13), 11: (12 + 0.5 * 13 + 0.25 * 14, 0.125, 14)}
    assert by_step(buf.gather(buf.sampleable_indices())) == full
    buf.reset_episodes()                 # step 14 has no next state; step 13 ends the episode
    cut = {12: (13 + 0.5 * 14, 0.25, 14), 13: (14, 0.5, 14)}
    assert by_step(buf.gather(buf.sampleable_indices())) == {**full, **cut}
    for t in range(15, 19):              # a new episode overwrites steps 8..11
        buf.add([[t, 0]], [0], [10.0], [False], [False], [False])
    assert by_step(buf.gather(buf.sampleable_indices())) == {**cut, 15: (10 + 5 + 2.5, 0.125, 18)}
    tree_mirrors_valid(buf)


# ----- reference comparisons on synthetic streams ----------------------------------------

@pytest.mark.parametrize("n_step, seed", [(1, 1), (1, 2), (1, 5), (3, 3), (3, 4), (3, 6)])
def test_image_stacks_match_reference_over_episode_ends_and_wraparound(n_step, seed):
    # 13 slots per env: the ring wraps ~20 times; copy-filled, carried-over and zero-filled
    # episode starts; terminated and truncated ends. Several seeds: carried-over starts right
    # after a zero-filled one (known planes only) came up in about half of the streams.
    env = FakeEnv(3, (4, 6, 5), np.uint8, seed=seed, p_end=0.15, p_continue=0.35,
                  p_zero=0.15)
    buf = ReplayBuffer(40, 3, (4, 6, 5), np.uint8, n_step=n_step, gamma=0.9)
    assert buf.stack == 4 and buf.frames.shape == (3, 13, 6, 5)
    ref, checked = run_stream(buf, env, 260, n=n_step, gamma=0.9)
    assert checked > 3000
    before = buf.valid.copy()
    assert buf.revalidate() == 0          # incremental upkeep == recomputing from scratch
    np.testing.assert_array_equal(buf.valid, before)
    clone = ReplayBuffer(40, 3, (4, 6, 5), np.uint8, n_step=n_step, gamma=0.9)
    for name in ("frames", "actions", "rewards", "terminated", "truncated", "reset_row",
                 "boundary"):
        getattr(clone, name)[:] = getattr(buf, name)
    clone.count = buf.count
    assert clone.revalidate() == len(buf) and len(clone) == len(buf)
    np.testing.assert_array_equal(clone.valid, buf.valid)
    kinds = {k for row in ref.kinds for k in row}
    assert {"copy", "continue", "unknown"} <= kinds
    assert sum(t.sum() for t in ref.terminated) > 10 and sum(t.sum() for t in ref.truncated) > 10


def test_vector_obs_match_reference_with_wraparound():
    env = FakeEnv(4, (3,), np.float32, seed=5, p_end=0.2)
    buf = ReplayBuffer(48, 4, (3,), np.float32, n_step=3, gamma=0.97)
    assert buf.stack == 1 and buf.frames.shape == (4, 12, 3)
    _, checked = run_stream(buf, env, 200, n=3, gamma=0.97, stack=1)
    assert checked > 1500


def tree_mirrors_valid(buf):
    if isinstance(buf, PrioritizedReplay):
        leaves, valid = buf.tree.get(np.arange(buf.capacity)), buf.valid.reshape(-1)
        assert np.all(leaves[valid] > 0) and np.all(leaves[~valid] == 0)


@pytest.mark.parametrize("cls", [ReplayBuffer, PrioritizedReplay])
@pytest.mark.parametrize("n_step, seed", [(1, 1), (3, 2), (3, 3)])
def test_reset_episodes_on_a_wrapped_ring_matches_reference(cls, n_step, seed):
    # env.reset() once the ring overwrites old rows (11 slots per env, 30 steps in). The two
    # rows it cuts (the one before truncated, last step junk) sit at ring slots 6|7, then
    # 10|0 across the wrap (twice), and it is called twice in a row and one step after a
    # reset (nothing before to cut); the adds that follow overwrite rows of cut episodes.
    env = FakeEnv(2, (4, 5, 5), np.uint8, seed=seed, p_end=0.1, p_continue=0.3)
    buf = cls(22, 2, (4, 5, 5), np.uint8, n_step=n_step, gamma=0.9)
    assert buf.slots == 11
    ref, _ = run_stream(buf, env, 30, n=n_step, gamma=0.9)
    checked = 0
    for steps in (4, 0, 1, 10, 25):
        buf.reset_episodes()
        ref.reset_episodes(env.reset())
        checked += check_against_reference(buf, ref, n_step, 0.9, 4)
        tree_mirrors_valid(buf)
        checked += run_stream(buf, env, steps, n=n_step, gamma=0.9, ref=ref)[1]
        tree_mirrors_valid(buf)
    assert checked > 300 and buf.revalidate() == 0
    assert sum(t.sum() for t in ref.truncated) > 3     # the cuts and the stream's own


def test_buffer_created_mid_episode_waits_for_a_full_stack():
    # The first stored observation is not copy-filled: its older planes are unknown, so the
    # first stack - 1 steps can never be sampled; from step 3 on the stack is all in the ring.
    buf = ReplayBuffer(64, 1, (4, 2, 2), np.uint8)
    rng = np.random.default_rng(0)
    history = list(rng.integers(0, 256, (3, 2, 2), dtype=np.uint8))
    stacks = []
    for t in range(8):
        history.append(rng.integers(0, 256, (2, 2), dtype=np.uint8))
        stacks.append(np.stack(history[-4:]))
        buf.add(stacks[-1][None], [0], [0.0], [False], [False], [False])
    ids = buf.sampleable_indices()
    np.testing.assert_array_equal(ids, [3, 4, 5, 6])
    batch = buf.gather(ids)
    np.testing.assert_array_equal(batch["obs"], np.stack(stacks[3:7]))
    np.testing.assert_array_equal(batch["next_obs"], np.stack(stacks[4:8]))


def test_samples_are_uniform_over_sampleable_and_never_reset_rows():
    env = FakeEnv(4, (4, 3, 3), np.uint8, seed=9, p_end=0.2)
    buf = ReplayBuffer(80, 4, (4, 3, 3), np.uint8, n_step=2)
    run_stream(buf, env, 120, check_every=120, n=2)
    valid = buf.sampleable_indices()
    flat_reset = np.flatnonzero(buf.reset_row.reshape(-1))
    assert flat_reset.size > 5 and len(valid) > 40
    rng = np.random.default_rng(1)
    counts = np.zeros(buf.capacity)
    for _ in range(100):
        batch = buf.sample(400, rng)
        counts += np.bincount(batch["indices"], minlength=buf.capacity)
    assert counts[np.setdiff1d(np.arange(buf.capacity), valid)].sum() == 0
    assert counts[flat_reset].sum() == 0
    expected = counts.sum() / len(valid)
    chi2 = np.sum((counts[valid] - expected) ** 2 / expected)
    dof = len(valid) - 1
    assert chi2 < dof + 6 * np.sqrt(2 * dof)
    a, b = buf.sample(32, np.random.default_rng(7)), buf.sample(32, np.random.default_rng(7))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


# ----- prioritised ------------------------------------------------------------------------

def test_priorities_mirror_sampleability_and_follow_td_errors():
    env = FakeEnv(3, (4, 4, 4), np.uint8, seed=2, p_end=0.15, p_continue=0.3)
    buf = PrioritizedReplay(36, 3, (4, 4, 4), np.uint8, n_step=3, gamma=0.9, alpha=0.6,
                            eps=1e-3)
    rng = np.random.default_rng(3)
    obs, _ = env.reset()
    for t in range(150):
        actions = rng.integers(0, 4, 3)
        next_obs, rewards, te, tr, rr, _ = env.step(actions)
        buf.add(obs, actions, rewards, te, tr, rr)
        obs = next_obs
        leaves = buf.tree.get(np.arange(buf.capacity))
        valid = buf.valid.reshape(-1)
        assert np.all(leaves[valid] > 0) and np.all(leaves[~valid] == 0)
        if t > 20 and t % 10 == 0:
            batch = buf.sample(16, rng, beta=0.5)
            assert valid[batch["indices"]].all()
            total = leaves.sum()
            p = leaves[batch["indices"]] / total
            np.testing.assert_allclose(batch["probabilities"], p, rtol=1e-12)
            np.testing.assert_allclose(batch["weights"], importance_weights(p, len(buf), 0.5),
                                       rtol=1e-6)
            np.testing.assert_allclose(batch["weights"],
                                       (len(buf) * p) ** -0.5 / np.max((len(buf) * p) ** -0.5),
                                       rtol=1e-6)
            td = rng.standard_normal(16) * 3
            buf.update_priorities(batch["indices"], td)
            # last write wins for slots drawn twice in the batch
            last = {i: d for i, d in zip(batch["indices"].tolist(), td)}
            ids = np.array(list(last))
            np.testing.assert_allclose(buf.tree.get(ids),
                                       (np.abs(list(last.values())) + 1e-3) ** 0.6)
    # the running max is what a newly sampleable transition receives
    before = set(buf.sampleable_indices().tolist())
    max_p = buf.tree.max_recorded
    assert max_p > 1.0
    next_obs, rewards, te, tr, rr, _ = env.step(np.zeros(3, int))
    buf.add(obs, np.zeros(3, int), rewards, te, tr, rr)
    new = sorted(set(buf.sampleable_indices().tolist()) - before)
    assert new and np.all(buf.tree.get(new) == max_p)


def test_update_for_a_slot_overwritten_since_sampling_keeps_it_at_zero():
    buf = PrioritizedReplay(8, 1, (1,), np.float32, n_step=1)
    for t in range(6):
        buf.add([[t]], [0], [1.0], [False], [False], [False])
    assert buf.valid[0, 0]
    for t in range(6, 9):   # step 8 overwrites slot 0; step 8 itself has no next state yet
        buf.add([[t]], [0], [1.0], [False], [False], [False])
    assert not buf.valid[0, 0] and buf.tree.get([0])[0] == 0
    buf.update_priorities([0, 3], [5.0, 5.0])
    assert buf.tree.get([0])[0] == 0 and buf.tree.get([3])[0] > 1.0


# ----- real EnvPool streams ---------------------------------------------------------------

def envpool_stream(task, num_envs, buf, steps, n, gamma, check_every, **kwargs):
    import envpool
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = envpool.make(task, env_type="gymnasium", num_envs=num_envs, seed=0, **kwargs)
    rng = np.random.default_rng(0)
    obs, _ = env.reset()
    kinds = ["copy"] * num_envs
    ended = np.zeros(num_envs, bool)
    life_lost = np.zeros(num_envs, bool)
    ref = Reference(num_envs)
    checked = 0
    stats = {"copy": 0, "continue": 0, "terminated": 0, "truncated": 0}
    for t in range(steps):
        actions = rng.integers(0, env.action_space.n, num_envs)
        next_obs, rewards, terminated, truncated, info = env.step(actions)
        reset_row = ended
        buf.add(obs, actions, rewards, terminated, truncated, reset_row)
        ref.add(obs, actions, rewards, terminated, truncated, reset_row, kinds)
        # Ground truth for the stack of next_obs, from the env's own bookkeeping (not from
        # pixels): the reset that follows a lost life (terminated while info["terminated"],
        # the real game over, is false) continues the stack; any other reset refills it.
        kinds = [None] * num_envs
        for e in np.flatnonzero(reset_row):
            kinds[e] = "continue" if life_lost[e] else "copy"
            stats[kinds[e]] += 1
        game_over = np.asarray(info.get("terminated", terminated), bool)
        life_lost = terminated & ~game_over & ~truncated
        stats["terminated"] += int(terminated.sum())
        stats["truncated"] += int(truncated.sum())
        ended = terminated | truncated
        obs = next_obs
        if t % check_every == check_every - 1:
            checked += check_against_reference(buf, ref, n, gamma, buf.stack)
    env.close()
    return ref, checked, stats


def test_rebuilt_stacks_equal_envpool_freeway_observations():
    # max_episode_steps=30: many time-limit resets (copy-filled by EnvPool); 40 slots per
    # env against 160 steps: the ring wraps four times.
    buf = ReplayBuffer(120, 3, ATARI, np.uint8, n_step=3, gamma=0.99)
    ref, checked, stats = envpool_stream("Freeway-v5", 3, buf, 160, 3, 0.99, check_every=8,
                                         max_episode_steps=30)
    assert checked > 1000 and stats["copy"] >= 12 and stats["truncated"] >= 12
    # EnvPool's reset stack is the first frame four times; within an episode planes differ
    # (so equal stacks are a real check, not four copies of one plane).
    for t in range(1, len(ref.obs)):
        for e in np.flatnonzero(ref.reset_row[t - 1]):
            first = ref.obs[t][e]
            assert all(np.array_equal(first[k], first[-1]) for k in range(4))
    assert not np.array_equal(ref.obs[20][0][0], ref.obs[20][0][-1])


def test_rebuilt_stacks_equal_envpool_breakout_with_life_loss_resets():
    # episodic_life=True: a lost life is `terminated`, yet EnvPool's following "reset" keeps
    # the stack running ([f-2, f-1, f, new]); a game over refills with the first frame.
    buf = ReplayBuffer(100, 2, ATARI, np.uint8, n_step=3, gamma=0.99)
    ref, checked, stats = envpool_stream("Breakout-v5", 2, buf, 260, 3, 0.99, check_every=10,
                                         episodic_life=True)
    assert checked > 800
    assert stats["continue"] >= 4 and stats["copy"] >= 1 and stats["terminated"] >= 5
    assert (buf.boundary == replay.CONTINUE).sum() > 0


def test_cartpole_vector_observations_match_envpool():
    buf = ReplayBuffer(120, 4, (4,), np.float32, n_step=3, gamma=0.99)
    _, checked, stats = envpool_stream("CartPole-v1", 4, buf, 200, 3, 0.99, check_every=5,
                                       max_episode_steps=25)
    assert checked > 1500 and stats["terminated"] >= 4 and stats["truncated"] >= 4


# ----- more envs than the capacity holds ----------------------------------------------

@pytest.mark.parametrize("cls", [ReplayBuffer, PrioritizedReplay])
def test_capacity_too_small_for_num_envs_is_refused_naming_the_values(cls):
    # capacity // num_envs slots per env: fewer slots than envs gives 0, one slot short of
    # stack + n_step + 2 would let the add-time windows wrap onto themselves.
    with pytest.raises(ValueError, match=r"^capacity 5 gives 0 slots per env; need at least "
                                         r"stack \+ n_step \+ 2 = 7$"):
        cls(5, 8, ATARI, np.uint8)
    with pytest.raises(ValueError, match=r"^capacity 47 gives 5 slots per env; need at least "
                                         r"stack \+ n_step \+ 2 = 6$"):
        cls(47, 8, (3,), np.float32, n_step=3)
    buf = cls(48, 8, (3,), np.float32, n_step=3)    # pushing more envs than it was built for
    with pytest.raises(ValueError, match=r"^obs shape \(9, 3\) != \(8, 3\)$"):
        buf.add(np.zeros((9, 3), np.float32), [0] * 9, [0.0] * 9, [False] * 9, [False] * 9,
                [False] * 9)
    assert buf.count == 0 and len(buf) == 0


def test_sizing_a_buffer_with_more_envs_than_capacity_does_not_crash():
    # The benchmarks size a buffer before building it. 0 slots per env: nothing but the
    # prioritised tree's one leaf (2 float64 nodes); its size came from log2(0) before.
    assert ReplayBuffer.required_bytes(5, 8, ATARI, np.uint8) == 0
    assert PrioritizedReplay.required_bytes(5, 8, ATARI, np.uint8) == 16


@pytest.mark.parametrize("cls", [ReplayBuffer, PrioritizedReplay])
@pytest.mark.parametrize("n_step", [1, 3])
def test_tightest_ring_per_env_matches_reference(cls, n_step):
    # 4 envs, capacity one short of a further slot each: exactly stack + n_step + 2 slots per
    # env (the remainder dropped), the smallest ring accepted, where the refresh windows at
    # both ends of the ring cover almost all of it; it wraps 10 times.
    need = 4 + n_step + 2
    env = FakeEnv(4, (4, 3, 3), np.uint8, seed=n_step, p_end=0.15, p_continue=0.3, p_zero=0.1)
    buf = cls(4 * need + 3, 4, (4, 3, 3), np.uint8, n_step=n_step, gamma=0.9)
    assert buf.slots == need and buf.capacity == 4 * need and buf.frames.shape[:2] == (4, need)
    _, checked = run_stream(buf, env, 10 * need, n=n_step, gamma=0.9)
    assert checked > 600 and buf.revalidate() == 0
    tree_mirrors_valid(buf)


# ----- memory -----------------------------------------------------------------------------

def test_atari_transition_fits_in_7200_bytes_all_arrays_included():
    for cls in (ReplayBuffer, PrioritizedReplay):
        buf = cls(10_000, 8, ATARI, np.uint8, check_memory=False)
        assert buf.nbytes == cls.required_bytes(10_000, 8, ATARI, np.uint8)
        assert 7056 <= buf.bytes_per_transition <= 7200, (cls, buf.bytes_per_transition)
        # the 1M layout, computed without allocating it
        assert cls.required_bytes(1_000_000, 8, ATARI, np.uint8) / 1_000_000 <= 7200
    small = ReplayBuffer(64, 2, (4,), np.float32)
    assert small.nbytes == ReplayBuffer.required_bytes(64, 2, (4,), np.float32)


def test_capacity_beyond_available_memory_is_refused_before_allocating(monkeypatch):
    avail = replay.available_memory_bytes()
    with open("/proc/meminfo") as f:
        total = int(next(line for line in f if line.startswith("MemTotal:")).split()[1]) * 1024
    assert 0 < avail <= total
    capacity = int(2 * total / 7000) + 1000          # needs about twice the machine's RAM
    needed = ReplayBuffer.required_bytes(capacity, 8, ATARI, np.uint8)
    with pytest.raises(ValueError) as info:
        ReplayBuffer(capacity, 8, ATARI, np.uint8)
    message = str(info.value)
    assert "\n" not in message and str(needed) in message and "available" in message
    monkeypatch.setattr(replay, "available_memory_bytes", lambda: 123_456)
    with pytest.raises(ValueError, match=r"^replay capacity 1000: 6.74 MiB \(7067000 bytes\) needed, "
                                         r"only 120.56 KiB \(123456 bytes\) available$"):
        ReplayBuffer(1000, 1, ATARI, np.uint8)
    with pytest.raises(ValueError, match="123456 bytes"):
        PrioritizedReplay(1000, 1, ATARI, np.uint8)


# ----- checkpoints ------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [ReplayBuffer, PrioritizedReplay])
def test_save_load_round_trip_samples_the_same(tmp_path, cls):
    env = FakeEnv(2, (4, 5, 5), np.uint8, seed=4, p_end=0.15, p_continue=0.3)
    buf = cls(30, 2, (4, 5, 5), np.uint8, n_step=3, gamma=0.9)
    rng = np.random.default_rng(0)
    obs, _ = env.reset()
    stream = []
    for t in range(80):
        next_obs, rewards, te, tr, rr, _ = env.step(rng.integers(0, 4, 2))
        stream.append((obs, rng.integers(0, 4, 2), rewards, te, tr, rr))
        obs = next_obs
    for item in stream[:50]:
        buf.add(*item)
    if cls is PrioritizedReplay:
        batch = buf.sample(8, rng)
        buf.update_priorities(batch["indices"], rng.standard_normal(8))
    path = tmp_path / "replay.npz"
    buf.save(path)
    buf.save(path)                                   # overwrite in place
    assert sorted(os.listdir(tmp_path)) == ["replay.npz"]   # no temp file left behind
    other = cls(30, 2, (4, 5, 5), np.uint8, n_step=3, gamma=0.9)
    other.load(path)
    assert len(other) == len(buf) and other.count == buf.count
    for _ in range(2):
        a, b = buf.sample(16, np.random.default_rng(5)), other.sample(16, np.random.default_rng(5))
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
        for item in stream[50:65]:                   # cursors and flags carried over too
            buf.add(*item)
            other.add(*item)
    np.testing.assert_array_equal(buf.valid, other.valid)
    with pytest.raises(ValueError, match="n_step"):
        cls(30, 2, (4, 5, 5), np.uint8, n_step=1, gamma=0.9).load(path)


@pytest.mark.parametrize("cls", [ReplayBuffer, PrioritizedReplay])
@pytest.mark.parametrize("count", [9, 10, 11, 29, 30, 31])
def test_save_load_at_the_wrap_point_continues_identically(tmp_path, cls, count):
    # 10 slots per env: at count 10 the ring is first full (the oldest kept step starts to
    # move), at 30 the cursor is back at slot 0 a third time; a loaded buffer maps slots to
    # steps and bounds its stacks from `count` alone, so save one step either side too.
    env = FakeEnv(2, (4, 5, 5), np.uint8, seed=count, p_end=0.15, p_continue=0.3, p_zero=0.1)
    buf = cls(20, 2, (4, 5, 5), np.uint8, n_step=3, gamma=0.9)
    ref, _ = run_stream(buf, env, count, n=3, gamma=0.9, check_every=count)
    if cls is PrioritizedReplay:
        ids = buf.sampleable_indices()
        buf.update_priorities(ids, np.random.default_rng(count).standard_normal(ids.size))
    buf.save(tmp_path / "replay.npz")
    other = cls(20, 2, (4, 5, 5), np.uint8, n_step=3, gamma=0.9)
    run_stream(other, FakeEnv(2, (4, 5, 5), np.uint8, seed=99), 17, check_every=17, n=3,
               gamma=0.9)                            # a used buffer: load replaces all of it
    other.load(tmp_path / "replay.npz")
    assert other.count == count and len(other) == len(buf) > 0
    ids = buf.sampleable_indices()
    np.testing.assert_array_equal(other.sampleable_indices(), ids)
    a, b = buf.gather(ids), other.gather(ids)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    check_against_reference(other, ref, 3, 0.9, 4)
    _, checked = run_stream([buf, other], env, 25, n=3, gamma=0.9, ref=ref)
    assert checked > 300
    np.testing.assert_array_equal(other.valid, buf.valid)
    if cls is PrioritizedReplay:
        leaves = np.arange(buf.capacity)
        np.testing.assert_array_equal(other.tree.get(leaves), buf.tree.get(leaves))
    a, b = buf.sample(16, np.random.default_rng(1)), other.sample(16, np.random.default_rng(1))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
