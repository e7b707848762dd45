"""Sum tree and proportional-PER formulas against plain numpy (Schaul et al. 2016)."""

import numpy as np
import pytest

from utilities import prioritized as per


def random_tree(capacity, seed, zero_fraction=0.2):
    rng = np.random.default_rng(seed)
    values = rng.gamma(0.5, 2.0, capacity)
    values[rng.random(capacity) < zero_fraction] = 0.0
    tree = per.SumTree(capacity)
    tree.set(np.arange(capacity), values)
    return tree, values


@pytest.mark.parametrize("capacity", [1, 2, 7, 1000, 4096])
def test_total_and_find_match_cumsum_searchsorted(capacity):
    tree, values = random_tree(capacity, seed=capacity, zero_fraction=0.0 if capacity < 3 else 0.2)
    cumsum = np.cumsum(values)
    assert tree.total == pytest.approx(cumsum[-1], rel=1e-12)
    rng = np.random.default_rng(1)
    targets = rng.random(20_000) * tree.total
    # Skip targets within round-off of an interval edge: there the two summation orders may
    # legitimately disagree about which side the target falls on.
    at = np.searchsorted(cumsum, targets)
    edge = np.minimum(np.abs(targets - cumsum[np.clip(at, 0, capacity - 1)]),
                      np.abs(targets - cumsum[np.clip(at - 1, 0, capacity - 1)]))
    targets = targets[edge > 1e-9 * tree.total]
    expected = np.searchsorted(cumsum, targets, side="right")
    np.testing.assert_array_equal(tree.find(targets), expected)
    assert np.all(values[tree.find(targets)] > 0)


def test_every_internal_node_is_the_sum_of_its_children_after_batched_updates():
    tree, values = random_tree(1000, seed=3)
    rng = np.random.default_rng(4)
    for _ in range(50):
        idx = rng.integers(0, 1000, 64)
        new = rng.random(64) * 5
        tree.set(idx, new)
        # reference: last write per index wins
        for i, v in zip(idx, new):
            values[i] = v
    leaves = np.zeros(tree.num_leaves)
    leaves[:1000] = values
    np.testing.assert_array_equal(tree.get(np.arange(1000)), values)
    level = leaves
    nodes = tree.nodes
    while level.size > 1:          # rebuild bottom-up and compare every level exactly
        level = level[0::2] + level[1::2]
        np.testing.assert_array_equal(nodes[level.size:2 * level.size], level)
    assert tree.total == pytest.approx(values.sum(), rel=1e-12)


def test_set_with_duplicate_indices_last_write_wins():
    tree = per.SumTree(8)
    tree.set([3, 5, 3, 3, 0], [1.0, 2.0, 7.0, 4.0, 0.5])
    assert tree.get([3])[0] == 4.0
    assert tree.total == 4.0 + 2.0 + 0.5
    tree.set([5, 5], [0.0, 9.0])
    assert tree.get([5])[0] == 9.0 and tree.total == 13.5


def test_max_recorded_starts_at_one_and_tracks_the_largest_value_ever_set():
    tree = per.SumTree(4)
    assert tree.max_recorded == 1.0
    tree.set([0, 1], [0.3, 0.2])
    assert tree.max_recorded == 1.0
    tree.set([2], [3.5])
    tree.set([2], [0.1])                 # lowering a leaf does not lower the running max
    assert tree.max_recorded == 3.5


def test_find_never_lands_on_a_zero_priority_leaf_at_the_edges():
    tree = per.SumTree(10)               # 16 leaves: 6 padding leaves of 0 at the end
    values = np.array([0, 0.1, 0, 0, 0.2, 0, 0.3, 0, 0, 0])
    tree.set(np.arange(10), values)
    total = tree.total
    targets = [0.0, 1e-300, np.nextafter(total, 0), total, total * (1 + 1e-15), 0.1, 0.3]
    found = tree.find(targets)
    assert np.all(values[found] > 0), found
    assert found[0] == 1 and found[2] == 6 and found[3] == 6
    with pytest.raises(ValueError):
        per.SumTree(3).find([0.0])       # all-zero tree has nothing to draw


@pytest.mark.parametrize("stratified", [True, False])
def test_sampling_frequencies_match_exact_probabilities(stratified):
    tree, values = random_tree(50, seed=7, zero_fraction=0.2)
    p = values / values.sum()
    rng = np.random.default_rng(8)
    counts = np.zeros(50)
    draws = 0
    for _ in range(200):
        idx, probs = per.sample(tree, 1000, rng, stratified=stratified)
        np.testing.assert_allclose(probs, p[idx], rtol=1e-12)
        counts += np.bincount(idx, minlength=50)
        draws += idx.size
    freq = counts / draws
    assert counts[values == 0].sum() == 0
    # Binomial std of each frequency; stratification only lowers the variance.
    bound = 5 * np.sqrt(p * (1 - p) / draws) + 1e-12
    assert np.all(np.abs(freq - p) <= bound), np.max(np.abs(freq - p) / bound)
    positive = p > 0
    chi2 = np.sum((counts[positive] - draws * p[positive]) ** 2 / (draws * p[positive]))
    dof = positive.sum() - 1
    assert chi2 < dof + 6 * np.sqrt(2 * dof)


def test_stratified_batch_takes_one_draw_per_mass_segment():
    tree = per.SumTree(4)
    tree.set(np.arange(4), [1.0, 1.0, 1.0, 1.0])
    idx, _ = per.sample(tree, 4, np.random.default_rng(0), stratified=True)
    np.testing.assert_array_equal(idx, [0, 1, 2, 3])


def test_proportional_probabilities_and_importance_weights_hand_worked():
    leaves = np.array([1.0, 2.0, 3.0, 4.0])
    P = per.proportional_probabilities(leaves)
    np.testing.assert_allclose(P, [0.1, 0.2, 0.3, 0.4])
    # w_i = (N P_i)^-beta / max_j w_j with N = 4, beta = 0.5:
    # (0.4, 0.8, 1.2, 1.6)^-0.5 / 0.4^-0.5 = (1, sqrt(1/2), sqrt(1/3), 1/2)
    w = per.importance_weights(P, 4, 0.5)
    np.testing.assert_allclose(w, [1.0, 0.7071067811865476, 0.5773502691896258, 0.5])
    np.testing.assert_allclose(w, (4 * P) ** -0.5 / np.max((4 * P) ** -0.5))
    # beta = 1 fully undoes the sampling: w is proportional to 1 / P
    np.testing.assert_allclose(per.importance_weights(P, 4, 1.0), 0.1 / P)


def test_priority_from_td_and_beta_schedule():
    np.testing.assert_allclose(per.priority_from_td([-2.0, 0.0, 0.5], alpha=0.5, eps=0.01),
                               [np.sqrt(2.01), 0.1, np.sqrt(0.51)])
    np.testing.assert_allclose(per.priority_from_td([3.0], alpha=0.6, eps=1e-6),
                               [(3.0 + 1e-6) ** 0.6])
    assert per.beta_schedule(0.0) == pytest.approx(0.4)
    assert per.beta_schedule(0.5) == pytest.approx(0.7)
    assert per.beta_schedule(1.0) == pytest.approx(1.0)
    assert per.beta_schedule(3.0) == pytest.approx(1.0)
    assert per.beta_schedule(0.25, beta0=0.5) == pytest.approx(0.625)


def test_priority_update_changes_probabilities_as_the_formula_says():
    tree = per.SumTree(5)
    tree.set(np.arange(5), np.full(5, tree.max_recorded))      # new items at max (1.0)
    td = np.array([0.5, -2.0])
    tree.set([1, 3], per.priority_from_td(td, alpha=0.6, eps=1e-6))
    expected = np.array([1.0, (0.5 + 1e-6) ** 0.6, 1.0, (2.0 + 1e-6) ** 0.6, 1.0])
    np.testing.assert_allclose(tree.get(np.arange(5)), expected, rtol=1e-15)
    assert tree.total == pytest.approx(expected.sum(), rel=1e-15)
    assert tree.max_recorded == pytest.approx((2.0 + 1e-6) ** 0.6)


def test_state_load_round_trip():
    tree, _ = random_tree(777, seed=11)
    tree.set([5], [42.0])
    copy = per.SumTree(777)
    copy.load(tree.state())
    np.testing.assert_array_equal(copy.nodes, tree.nodes)
    assert copy.max_recorded == 42.0
    a = per.sample(tree, 64, np.random.default_rng(2))
    b = per.sample(copy, 64, np.random.default_rng(2))
    np.testing.assert_array_equal(a[0], b[0])
    with pytest.raises(ValueError):
        per.SumTree(100).load(tree.state())
