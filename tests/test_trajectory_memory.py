"""utilities/trajectory_memory.py: single-frame layout against the stacks it was given,
priorities against hand-worked numbers, proportional and stratified draws, FIFO order,
atomic save and exact load."""

import numpy as np
import pytest

from utilities.trajectory_memory import COLUMNS, TrajectoryMemory, mean_abs, plane_indices

K, H, W = 4, 6, 5


def stacked_stream(steps, num_envs, rng, reset_p=0.1, life_p=0.05):
    """Stacks [steps + 1, N, K, H, W] as EnvPool builds them: each step pushes a new frame;
    a real reset fills the stack with copies of its first frame; a life loss just continues.
    Frames are random, so no two differ by chance."""
    out = np.empty((steps + 1, num_envs, K, H, W), np.uint8)
    stack = rng.integers(0, 256, (num_envs, K, H, W), dtype=np.uint8)
    for t in range(steps + 1):
        frame = rng.integers(0, 256, (num_envs, H, W), dtype=np.uint8)
        reset = rng.random(num_envs) < reset_p
        stack = np.concatenate([stack[:, 1:], frame[:, None]], axis=1)       # continue (life loss too)
        stack[reset] = frame[reset, None]                                     # copies of the first frame
        out[t] = stack
    return out


def columns(steps, n, rng):
    return {"actions": rng.integers(0, 12, (steps, n)), "rewards": rng.normal(size=(steps, n)).astype(np.float32),
            "terminated": rng.random((steps, n)) < 0.05, "dones": rng.random((steps, n)) < 0.1,
            "valid": rng.random((steps, n)) < 0.9, "behaviour_logp": -rng.random((steps, n)).astype(np.float32),
            "advantages": rng.normal(size=(steps, n))}


def push(memory, stream, cols):
    return memory.push(stream[:-1], stream[-1], cols["actions"], cols["rewards"], cols["terminated"],
                       cols["dones"], cols["valid"], cols["behaviour_logp"], cols["advantages"])


def test_stacks_are_rebuilt_exactly_from_single_frames():
    rng = np.random.default_rng(0)
    steps, n = 50, 3
    memory = TrajectoryMemory(8, steps, (K, H, W), np.uint8)
    stream, cols = stacked_stream(steps, n, rng), columns(steps, n, rng)
    slots = push(memory, stream, cols)
    # T + K single frames per trajectory instead of (T + 1) stacks of K.
    assert memory.frames.shape == (8, steps + K, H, W)
    got = memory.gather(slots)
    # The naive reference: the stacks as given, env by env.
    np.testing.assert_array_equal(got["obs"], stream.transpose(1, 0, 2, 3, 4))
    for name in ("actions", "rewards", "terminated", "dones", "valid", "behaviour_logp"):
        np.testing.assert_array_equal(got[name], np.asarray(cols[name]).T.astype(got[name].dtype), err_msg=name)


def test_a_stack_that_neither_continues_nor_copies_is_refused():
    rng = np.random.default_rng(1)
    stream = stacked_stream(10, 1, rng, reset_p=0.0)
    stream[6, 0, 0] = 0          # a zero-filled oldest plane: neither the previous stack's nor a copy
    with pytest.raises(ValueError, match="frame stack at step 6"):
        plane_indices(stream[:, 0])


def test_vector_observations_are_stored_whole():
    rng = np.random.default_rng(2)
    steps, n = 7, 2
    memory = TrajectoryMemory(4, steps, (5,), np.float32)
    stream = rng.normal(size=(steps + 1, n, 5)).astype(np.float32)
    slots = push(memory, stream, columns(steps, n, rng))
    assert memory.frames.shape == (4, steps + 1, 5)
    np.testing.assert_array_equal(memory.observations(slots), stream.transpose(1, 0, 2))


def test_the_ring_drops_the_oldest_trajectories_first():
    rng = np.random.default_rng(3)
    steps, n = 5, 2
    memory = TrajectoryMemory(5, steps, (K, H, W), np.uint8)
    streams = [stacked_stream(steps, n, rng) for _ in range(3)]
    slots = [push(memory, s, columns(steps, n, rng)) for s in streams]
    assert [s.tolist() for s in slots] == [[0, 1], [2, 3], [4, 0]] and len(memory) == 5
    # Slot 0 now holds round 3's second env; slot 1 still round 1's second env.
    np.testing.assert_array_equal(memory.observations([0])[0], streams[2][:, 1])
    np.testing.assert_array_equal(memory.observations([1])[0], streams[0][:, 1])


def test_priorities_by_hand():
    # Seed 002: leaf = (mean |A| + eps)^alpha over a trajectory; rows that are no transition
    # (valid False) do not count.
    steps = 4
    memory = TrajectoryMemory(4, steps, (3,), np.float32, alpha=0.7, eps=0.01)
    advantages = np.array([[1.0, -3.0, 100.0, 2.0], [0.0, 0.0, 0.0, 0.0]]).T       # [T, N]
    valid = np.array([[True, True, False, True], [True, True, True, True]]).T
    zeros = np.zeros((steps, 2))
    memory.push(np.zeros((steps, 2, 3), np.float32), np.zeros((2, 3), np.float32), zeros, zeros, zeros > 0,
                zeros > 0, valid, zeros, advantages)
    # mean |A| = (1 + 3 + 2) / 3 = 2 -> 2.01^0.7 = 1.6302...; all zero -> 0.01^0.7 = 0.0398...
    np.testing.assert_allclose(memory.leaf_values(), [2.01 ** 0.7, 0.01 ** 0.7])
    np.testing.assert_allclose(memory.leaf_values(), [1.630186, 0.039811], rtol=1e-5)
    memory.update_priorities([1, 1], np.array([[0.5] * 4, [1.5] * 4]))            # the last write wins
    np.testing.assert_allclose(memory.leaf_values()[1], 1.51 ** 0.7)
    np.testing.assert_allclose(mean_abs([[1.0, -1.0, 5.0]], [[True, True, False]]), [1.0])


def memory_with_leaves(leaves, stratified=True):
    memory = TrajectoryMemory(len(leaves), 2, (1,), np.float32, stratified=stratified)
    zeros = np.zeros((2, len(leaves)))
    memory.push(np.zeros((2, len(leaves), 1), np.float32), np.zeros((len(leaves), 1), np.float32), zeros, zeros,
                zeros > 0, zeros > 0, zeros == 0, zeros, zeros)
    memory.tree.set(np.arange(len(leaves)), leaves)
    return memory


def test_stratified_draws_take_one_target_per_slice_of_the_mass():
    # Mass [2, 1, 1] cut into 4 slices of 1: [0, 1) and [1, 2) fall in slot 0, then 1, then 2,
    # whatever the uniform draw inside each slice.
    memory = memory_with_leaves([2.0, 1.0, 1.0])
    for seed in range(20):
        assert sorted(memory.sample(4, np.random.default_rng(seed)).tolist()) == [0, 0, 1, 2]


@pytest.mark.parametrize("stratified", [True, False])
def test_draw_frequencies_follow_the_priorities(stratified):
    leaves = np.array([1.0, 2.0, 3.0, 4.0, 0.0])
    memory = memory_with_leaves(leaves, stratified)
    rng = np.random.default_rng(4)
    drawn = np.concatenate([memory.sample(3, rng) for _ in range(20_000)])
    freq = np.bincount(drawn, minlength=5) / len(drawn)
    np.testing.assert_allclose(freq, leaves / leaves.sum(), atol=0.005)
    assert freq[4] == 0      # a zero leaf is never drawn


def test_save_and_load_restore_everything(tmp_path):
    rng = np.random.default_rng(5)
    steps, n = 6, 2
    memory = TrajectoryMemory(3, steps, (K, H, W), np.uint8)
    for _ in range(2):
        push(memory, stacked_stream(steps, n, rng), columns(steps, n, rng))
    memory.update_priorities([2], rng.normal(size=(1, steps)))
    memory.save(tmp_path / "m.npz")
    again = TrajectoryMemory(3, steps, (K, H, W), np.uint8)
    again.load(tmp_path / "m.npz")
    assert again.count == memory.count == 4
    np.testing.assert_array_equal(again.tree.nodes, memory.tree.nodes)
    np.testing.assert_array_equal(again.observations([0, 1, 2]), memory.observations([0, 1, 2]))
    for name in ("frames", "planes", *COLUMNS):
        np.testing.assert_array_equal(getattr(again, name), getattr(memory, name), err_msg=name)
    other = TrajectoryMemory(3, steps + 1, (K, H, W), np.uint8)
    with pytest.raises(ValueError, match="steps=6 does not match"):
        other.load(tmp_path / "m.npz")
    assert list(tmp_path.iterdir()) == [tmp_path / "m.npz"]     # atomic: no temporary left


def test_required_bytes_match_the_arrays():
    memory = TrajectoryMemory(6, 9, (K, H, W), np.uint8)
    assert memory.nbytes == TrajectoryMemory.required_bytes(6, 9, (K, H, W), np.uint8)


def test_required_bytes_by_hand():
    # 2 trajectories x (8 + 4 frames of 30 bytes, 9 x 4 int16 plane indices, 8 rows of 13 column
    # bytes), and a sum tree of 2 leaves (16 bytes each).
    assert TrajectoryMemory.required_bytes(2, 8, (K, H, W), np.uint8) == 2 * (12 * 30 + 9 * 4 * 2 + 8 * 13) + 32 == 1104
