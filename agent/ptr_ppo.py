"""PTR-PPO: PPO with prioritised trajectory replay (Liang et al. 2021, arXiv 2112.03798), as
seed 002's reference (CVHvn/Mario_PTR_PPO) codes it: shared/reference/ptr_ppo.md.

A round (one loop update, N envs x T steps):
  1. freeze a copy of the network for the round (pi_old, V_old);
  2. K_on on-policy PPO epochs over the rollout: PPO.update, unchanged;
  3. push each env's T-step segment into the FIFO memory (utilities/trajectory_memory.py)
     with priority (mean |GAE| + eps)^alpha, the GAE computed before step 2;
  4. once the memory holds `off_policy_start` rounds, K_off off-policy passes, each over N
     trajectories freshly drawn by priority: advantages and TD(lambda) targets recomputed
     with the frozen network, the truncated trace weight rho_marg
     (agent/trajectory_weights.py), one shuffled pass of PPO minibatches with ratio pi / b
     and advantage rho_marg x A, value loss weighted by rho_marg, stopped when the KL to
     the frozen network passes 1.5 x target_kl; then the drawn trajectories' priorities
     are rewritten from the recomputed advantages.
The PPO maths (losses, the train step) are PPO's own: the replayed minibatches only add
`weights` (rho_marg) and `kl_logp` (the frozen network's log-probs) to the dict.

Randomness is keyed: draws and shuffles by (seed, round, pass), so a resumed run replays
what an uninterrupted one would. The memory and its priorities go to the checkpoint's side
files (save_side/load_side), written before the checkpoint state.
"""

import numpy as np
import tensorflow as tf

from agent import networks
from agent.ppo import PPO
from agent.trajectory_weights import marginal_weights, trace_weights
from utilities.gae import gae
from utilities.trajectory_memory import TrajectoryMemory

MEMORY_FILE = "trajectories.npz"
CHUNK = 2048            # observations per forward pass of the frozen network
RHO_LOW, RHO_HIGH = 0.05, 1.5   # the shares of rho_marg logged (ptr_ppo.md A.4)


def rows(flat, idx, steps):
    """Rows `idx` of a replayed batch (PTRPPO.replayed_batch): row b x steps + t of the
    stacked observations [B, steps + 1, ...] is [b, t]."""
    return {key: v[idx // steps, idx % steps] if key == "obs" else v[idx] for key, v in flat.items()}


class PTRPPO(PPO):
    def __init__(self, cfg, obs_shape, obs_dtype, num_actions):
        """cfg: agent.config.RunConfig with PTRPPOConfig params."""
        super().__init__(cfg, obs_shape, obs_dtype, num_actions)
        p = self.p
        # The round's frozen copy: built once, its weights copied from the policy at the start of
        # every round, so never checkpointed.
        self.frozen = networks.actor_critic(self.obs_shape, self.num_actions, obs_dtype, p.network, cfg.precision)
        self.frozen.trainable = False
        self.memory = TrajectoryMemory(p.memory_size, p.rollout_steps, self.obs_shape, obs_dtype, p.alpha,
                                       p.priority_eps, p.stratified)
        obs_spec = tf.TensorSpec((None,) + self.obs_shape, self.policy.inputs[0].dtype)
        self._frozen_eval = tf.function(self._frozen_fn, input_signature=[obs_spec])

    # --- the loop's interface -------------------------------------------------

    def update(self, step):
        """One round: on-policy epochs, push, off-policy passes; the round's mean scalars."""
        p = self.p
        # The reference backs pi_old up once per round, before the on-policy epochs, and keeps
        # it through the off-policy passes; the paper backs it up before each replayed batch,
        # which the reference found unstable (ptr_ppo.md A.2 step 1). Following the reference.
        for frozen, live in zip(self.frozen.weights, self.policy.weights):
            frozen.assign(live)
        # The on-policy epochs are PPO's own, KL stop included (the reference's rule).
        stats = super().update(step)
        b = self.rollout
        if not np.isfinite(b.advantages).all():
            # The network went NaN before this round (the frozen copy with it): nothing to store
            # or replay, and the round's non-finite loss stops the run cleanly (agent/loop.py).
            return stats
        # b.advantages still hold the GAE of the rollout from before the epochs (reference:
        # priorities computed before the on-policy update).
        self.memory.push(b.obs, self.last_obs, b.actions, b.rewards_ext, b.terminated, b.dones, b.valid, b.logp,
                         b.advantages)
        on_steps = stats["gradient_steps"]
        off = {"off_gradient_steps": 0}
        if len(self.memory) >= p.off_policy_start * self.cfg.num_envs:
            off = self.off_policy(step // self.batch_size - 1)
        off_steps = off["off_gradient_steps"]
        stats.update(off, off_policy_share=off_steps / max(on_steps + off_steps, 1),
                     memory_fill=len(self.memory) / self.memory.capacity)
        leaves = self.memory.leaf_values()
        stats.update(priority_mean=leaves.mean(), priority_min=leaves.min(), priority_max=leaves.max())
        return stats

    def save_side(self, folder):
        self.memory.save(folder / MEMORY_FILE)

    def load_side(self, folder):
        self.memory.load(folder / MEMORY_FILE)

    # --- off-policy -----------------------------------------------------------

    def replayed_batch(self, slots):
        """Drawn trajectories as one batch of B x T rows for PPO's train step, everything the
        frozen network gives recomputed: returns (flat dict, advantages [T, B], rho_marg [T, B]).
        The dict's columns are [B x T]; its "obs" stays the gathered [B, T + 1, ...] (`rows`
        reads row b x T + t at [b, t]), which saves a copy of every stack (231 MB on Mario)."""
        p = self.p
        data = self.memory.gather(slots)
        batch, steps = len(slots), p.rollout_steps
        obs = data["obs"].reshape((batch * (steps + 1),) + self.obs_shape)
        logp_all, values = self.frozen_outputs(obs)
        logp_all = logp_all.reshape(batch, steps + 1, -1)[:, :steps]
        values = values.reshape(batch, steps + 1)
        actions = data["actions"].astype(np.int32)
        old_logp = np.take_along_axis(logp_all, actions[..., None], axis=-1)[..., 0]
        # Time-major from here, as utilities.gae. Plain GAE with the frozen critic, no
        # correction inside the recursion (the reference's choice, A.2 step 2).
        advantages, returns = gae(data["rewards"].T, values[:, :steps].T, values[:, steps], data["terminated"].T,
                                  data["dones"].T, p.gamma, p.gae_lambda)
        ratios = np.exp(old_logp.astype(np.float64) - data["behaviour_logp"]).T
        rho_marg = marginal_weights(trace_weights(ratios, data["dones"].T, data["valid"].T), p.eps_marg)
        flat = {
            "obs": data["obs"],
            "actions": actions,
            # The ratio is pi / b: the reference found PPO works only so (A.2 step 5).
            "logp": data["behaviour_logp"],
            "kl_logp": old_logp.astype(np.float32),
            # Normalised first where norm_adv is set (PPO's train step), then scaled by rho_marg;
            # seed 002's Mario rows do not normalise.
            "advantages": advantages.T,
            # The reference weights the value loss by rho_marg too, where the paper trains the
            # critic on a one-step TD error weighted by pi / b (README "what did I adjust").
            "weights": rho_marg.T.astype(np.float32),
            "returns_ext": returns.T,
            "valid": data["valid"],
        }
        flat = {k: v if k == "obs" else v.reshape(batch * steps) for k, v in flat.items()}
        return flat, advantages, rho_marg

    def off_policy(self, update):
        """K_off passes over freshly drawn trajectories; the passes' mean scalars ("off_"...)."""
        p, n = self.p, self.cfg.num_envs
        passes, rho_seen = [], []
        for k in range(p.off_epochs):
            rng = np.random.default_rng([self.cfg.seed, update, k])
            slots = self.memory.sample(n, rng)
            flat, advantages, rho_marg = self.replayed_batch(slots)
            rho_seen.append(rho_marg[flat["valid"].reshape(n, -1).T])
            order = rng.permutation(len(flat["actions"]))
            size = len(order) // p.num_minibatches

            def minibatches():
                for i in range(p.num_minibatches):
                    yield (rows(flat, np.sort(order[i * size:(i + 1) * size]), p.rollout_steps),
                           np.array([self.cfg.seed, -1 - ((update * p.off_epochs + k) * p.num_minibatches + i)],
                                    np.int64))

            # The KL stop ends this pass only; the next one draws afresh (the reference).
            passes.append(self.learner_steps(minibatches()))
            # Priorities from the advantages recomputed with the frozen network before this
            # pass's gradient steps (the reference, A.2 step 6).
            self.memory.update_priorities(slots, advantages.T)
        rho = np.concatenate(rho_seen)
        stats = {"off_" + key: float(np.mean([s[key] for s in passes])) for key in passes[0]}
        stats.update(off_gradient_steps=sum(s["gradient_steps"] for s in passes), rho_marg_mean=rho.mean(),
                     rho_marg_low=(rho < RHO_LOW).mean(), rho_marg_high=(rho > RHO_HIGH).mean())
        return stats

    def frozen_outputs(self, obs):
        """Log-softmax [B, A] and value [B] of the frozen network, in chunks."""
        parts = [self._frozen_eval(obs[i:i + CHUNK]) for i in range(0, len(obs), CHUNK)]
        return (np.concatenate([a.numpy() for a, _ in parts]), np.concatenate([v.numpy() for _, v in parts]))

    def _frozen_fn(self, obs):
        logits, v_ext, _ = self.frozen(obs, training=False)
        return tf.nn.log_softmax(logits), v_ext[:, 0]
