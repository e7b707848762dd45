"""Fixed-shape rollout storage, advantages for both reward streams, minibatches."""

import numpy as np

from utilities.gae import gae


class OptimizationBatch:
    """One rollout of `steps` batched env steps from `num_envs` envs.

    Row t holds the observation the agent acted on, what it did, and what came
    back. `valid[t]` is False for EnvPool's auto-reset rows: the action there was
    ignored and the reward is 0, so those rows are kept out of every loss and out
    of advantage normalisation.
    """

    def __init__(self, steps, num_envs, obs_shape, obs_dtype):
        self.steps, self.num_envs = steps, num_envs
        shape = (steps, num_envs)
        self.obs = np.zeros(shape + tuple(obs_shape), obs_dtype)
        self.actions = np.zeros(shape, np.int32)
        self.logp = np.zeros(shape, np.float32)
        self.values_ext = np.zeros(shape, np.float32)
        self.values_int = np.zeros(shape, np.float32)
        self.rewards_ext = np.zeros(shape, np.float32)
        self.rewards_int = np.zeros(shape, np.float32)
        self.terminated = np.zeros(shape, bool)
        self.dones = np.zeros(shape, bool)
        self.valid = np.zeros(shape, bool)
        self.advantages = np.zeros(shape, np.float32)
        self.returns_ext = np.zeros(shape, np.float32)
        self.returns_int = np.zeros(shape, np.float32)

    @staticmethod
    def required_bytes(steps, num_envs, obs_shape, obs_dtype):
        """Bytes of the arrays __init__ allocates, computed without allocating them."""
        per_row = int(np.prod(obs_shape, dtype=np.int64)) * np.dtype(obs_dtype).itemsize
        per_row += 4 * 9 + 3     # int32 actions and 8 float32 fields; terminated, dones, valid
        return steps * num_envs * per_row

    def add(self, t, obs, actions, logp, values_ext, values_int, reward, terminated, done, valid):
        self.obs[t] = obs
        self.actions[t] = actions
        self.logp[t] = logp
        self.values_ext[t] = values_ext
        self.values_int[t] = values_int
        self.rewards_ext[t] = reward
        self.terminated[t] = terminated
        self.dones[t] = done
        self.valid[t] = valid

    def compute_advantages(self, last_ext, last_int, gamma, int_gamma, lam, ext_coef=1.0, int_coef=0.0):
        """Episodic GAE for the extrinsic stream, non-episodic for the intrinsic one
        (RND: the intrinsic return flows across episode ends); the policy follows
        ext_coef * A_ext + int_coef * A_int."""
        adv_ext, self.returns_ext[:] = gae(self.rewards_ext, self.values_ext, last_ext,
                                           self.terminated, self.dones, gamma, lam)
        if int_coef:
            no_ends = np.zeros_like(self.dones)
            adv_int, self.returns_int[:] = gae(self.rewards_int, self.values_int, last_int,
                                               no_ends, no_ends, int_gamma, lam)
            self.advantages[:] = ext_coef * adv_ext + int_coef * adv_int
        else:
            self.advantages[:] = adv_ext

    def flat(self):
        """Every field as [T * N, ...]."""
        n = self.steps * self.num_envs
        fields = ("obs", "actions", "logp", "values_ext", "values_int", "advantages",
                  "returns_ext", "returns_int", "valid")
        return {k: getattr(self, k).reshape((n,) + getattr(self, k).shape[2:]) for k in fields}

    def minibatches(self, num_minibatches, rng):
        """Shuffle the rollout and yield `num_minibatches` equal-sized dicts."""
        data = self.flat()
        n = self.steps * self.num_envs
        order = rng.permutation(n)
        size = n // num_minibatches
        for i in range(num_minibatches):
            idx = np.sort(order[i * size:(i + 1) * size])
            yield {k: v[idx] for k, v in data.items()}
