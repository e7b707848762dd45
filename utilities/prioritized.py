"""Proportional prioritised replay (Schaul et al. 2016, "Prioritized Experience Replay").

A transition i is drawn with probability P(i) = p_i^alpha / sum_k p_k^alpha and its loss is
scaled by the importance weight w_i = (N * P(i))^-beta / max_j w_j, which undoes the bias
of the non-uniform draw as beta -> 1.

The sum tree below stores the leaf values p_i^alpha (already exponentiated) so that sampling
needs only the tree. It is fully vectorised like Dopamine's numpy sum tree: a batched `set`
walks up depth-many levels and a batched `find` walks down depth-many levels, each level one
numpy operation over the whole batch, so no Python loop runs per item.

Everything here is plain numpy and float64: priorities of a 1M tree sum to large totals, and
float32 round-off there would make small leaves unreachable.
"""

import numpy as np


class SumTree:
    """Binary sum tree over `capacity` leaves.

    Layout: 1-based heap in one float64 array of 2 * L nodes, L = capacity rounded up to a
    power of two. The root is node 1, node k has children 2k and 2k + 1, leaf i is node L + i;
    node 0 is unused. Padding leaves (i >= capacity) stay 0 and so are never found.
    """

    def __init__(self, capacity):
        capacity = int(capacity)
        if capacity < 1:
            raise ValueError(f"SumTree capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.depth = self.depth_for(capacity)
        self.num_leaves = 1 << self.depth
        self.nodes = np.zeros(2 * self.num_leaves, np.float64)
        # Schaul et al.: a new transition gets the largest priority seen so far, so it is
        # replayed at least once soon; Dopamine starts that running maximum at 1.0.
        self.max_recorded = 1.0

    @staticmethod
    def depth_for(capacity):
        """Levels below the root: capacity rounded up to a power of two is 2 ** depth leaves."""
        return max(int(capacity) - 1, 0).bit_length()

    @classmethod
    def required_bytes(cls, capacity):
        return 2 * (1 << cls.depth_for(capacity)) * np.dtype(np.float64).itemsize

    @property
    def total(self):
        return float(self.nodes[1])

    @property
    def nbytes(self):
        return self.nodes.nbytes

    def _check(self, indices):
        indices = np.asarray(indices, np.int64).reshape(-1)
        if indices.size and (indices.min() < 0 or indices.max() >= self.capacity):
            raise IndexError(f"sum tree leaf index out of range [0, {self.capacity})")
        return indices

    def get(self, indices):
        """Leaf values (p^alpha) at `indices`."""
        return self.nodes[self.num_leaves + self._check(indices)]

    def set(self, indices, priorities):
        """Set leaf values for a batch; with a repeated index the LAST write wins.

        Parents are recomputed from their two children (not patched with deltas), level by
        level over the unique touched parents: repeated delta updates would let round-off
        drift accumulate in the upper nodes over millions of updates, a recomputed node is
        always exactly left + right.
        """
        indices = self._check(indices)
        priorities = np.broadcast_to(np.asarray(priorities, np.float64), indices.shape)
        if indices.size == 0:
            return
        if not np.all(np.isfinite(priorities)) or priorities.min() < 0:
            raise ValueError("priorities must be finite and >= 0")
        # np.unique keeps the first occurrence: run it on the reversed batch so the last
        # write of each repeated index is the one kept (plain fancy assignment leaves the
        # winner unspecified by numpy's documentation).
        unique, first_in_reversed = np.unique(indices[::-1], return_index=True)
        values = priorities[::-1][first_in_reversed]
        nodes = unique + self.num_leaves
        self.nodes[nodes] = values
        for _ in range(self.depth):
            nodes = np.unique(nodes >> 1)
            self.nodes[nodes] = self.nodes[2 * nodes] + self.nodes[2 * nodes + 1]
        self.max_recorded = max(self.max_recorded, float(values.max()))

    def find(self, targets):
        """Leaf index whose cumulative-mass interval [c_{i-1}, c_i) holds each target.

        Equivalent to searchsorted(cumsum(leaves), targets, side="right") for targets in
        [0, total). One vectorised step per level. Guard against round-off: a node's stored
        sum can differ in the last bits from the sum of what lies below, so a target near an
        edge could be sent into a subtree of mass 0 and end on a zero-priority leaf (a
        transition that must never be drawn). Never descend into a zero-mass child while its
        sibling has mass; with a positive root every step then stays on positive mass.
        """
        targets = np.array(targets, np.float64, copy=True).reshape(-1)
        if self.nodes[1] <= 0:
            raise ValueError("cannot sample from a sum tree whose total is 0")
        node = np.ones(targets.shape, np.int64)
        for _ in range(self.depth):
            left = self.nodes[2 * node]
            right = self.nodes[2 * node + 1]
            go_right = ((targets >= left) & (right > 0)) | (left <= 0)
            targets = np.where(go_right, targets - left, targets)
            node = 2 * node + go_right
        return node - self.num_leaves

    def state(self):
        """Checkpoint contents: numpy arrays only (saved with the replay's other arrays)."""
        return {"nodes": self.nodes.copy(),
                "max_recorded": np.array(self.max_recorded, np.float64),
                "capacity": np.array(self.capacity, np.int64)}

    def load(self, state):
        if int(state["capacity"]) != self.capacity or state["nodes"].shape != self.nodes.shape:
            raise ValueError(f"sum tree state for capacity {int(state['capacity'])} does not "
                             f"fit a tree of capacity {self.capacity}")
        self.nodes[:] = state["nodes"]
        self.max_recorded = float(state["max_recorded"])


def proportional_probabilities(leaf_values):
    """P(i) = p_i^alpha / sum_k p_k^alpha, from leaf values that are already p^alpha."""
    leaf_values = np.asarray(leaf_values, np.float64)
    return leaf_values / leaf_values.sum()


def sample(tree, batch_size, rng, stratified=True):
    """Draw `batch_size` leaves with probability proportional to their value.

    Returns (indices, probabilities). Stratified (Schaul et al., Appendix B.2.1): the total
    mass is cut into batch_size equal segments and one target is drawn uniformly in each,
    which lowers the variance of a batch's composition; stratified=False draws every
    target i.i.d. on [0, total) as Dopamine does.
    """
    total = tree.total
    if total <= 0:
        raise ValueError("no transition has a positive priority")
    if stratified:
        targets = (np.arange(batch_size) + rng.random(batch_size)) * (total / batch_size)
    else:
        targets = rng.random(batch_size) * total
    # (k + u) * total / B can round up to exactly `total`, which belongs to no leaf.
    targets = np.minimum(targets, np.nextafter(total, 0.0))
    indices = tree.find(targets)
    return indices, tree.get(indices) / total


def importance_weights(probabilities, n_items, beta):
    """w_i = (N * P(i))^-beta normalised by the batch maximum (Schaul et al., Alg. 1 line 10).

    Dividing by the max only ever scales the update down, which keeps step sizes stable.
    """
    weights = (float(n_items) * np.asarray(probabilities, np.float64)) ** (-float(beta))
    return weights / weights.max()


def beta_schedule(progress, beta0=0.4):
    """Importance-sampling exponent annealed linearly from beta0 to 1 over training
    (Schaul et al.: full correction matters most near convergence)."""
    progress = np.clip(progress, 0.0, 1.0)
    return beta0 + (1.0 - beta0) * progress


def priority_from_td(td_errors, alpha, eps):
    """Leaf value (|delta| + eps)^alpha. eps > 0 keeps a transition with a zero TD error
    drawable (Schaul et al.: proportional variant)."""
    return (np.abs(np.asarray(td_errors, np.float64)) + eps) ** alpha
