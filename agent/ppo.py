"""PPO (Schulman et al. 2017), optionally with RND's two-stream advantages (Burda et al. 2018).

One algorithm behind the loop's interface (agent/loop.py): act and observe fill a
(T, N) rollout; once it is full, `update` computes advantages and runs the epochs
of the one-function learner step. All randomness is stateless and keyed by the
step counter the loop passes in, so a resumed run draws the same numbers.
"""

import keras
import numpy as np
import tensorflow as tf

from agent import losses, networks
from agent.rnd import RND
from agent.serving import GreedyPolicy
from utilities.optimization_batch import OptimizationBatch

KL_FACTOR = 1.5


class PPO:
    def __init__(self, cfg, obs_shape, obs_dtype, num_actions):
        """cfg: agent.config.RunConfig with PPOConfig params."""
        self.cfg = cfg
        self.p = p = cfg.params
        keras.utils.set_random_seed(cfg.seed)   # the networks' initial weights
        self.obs_shape, self.num_actions = tuple(obs_shape), int(num_actions)
        self.batch_size = cfg.num_envs * p.rollout_steps
        self.num_updates = -(-cfg.total_steps // self.batch_size)   # --steps rounds up to whole updates
        self.policy = networks.actor_critic(self.obs_shape, self.num_actions, obs_dtype, p.network, cfg.precision)
        # Plain PPO has no intrinsic stream: its value head stays untrained.
        self.trainable = [v for v in self.policy.trainable_variables
                          if p.rnd or not v.path.startswith("value_int/")]
        self.num_policy_vars = len(self.trainable)   # the first ones: the gradient clip covers these alone
        self.rnd = RND(p.rnd, self.obs_shape, obs_dtype, cfg.num_envs) if p.rnd else None
        if self.rnd:
            self.trainable += self.rnd.trainable
            self.rnd_batch = max(1, int(round(p.rnd.update_fraction * (self.batch_size // p.num_minibatches))))
        # No clip here: _train_step clips the policy's gradients only (seeds 000 and 004 train
        # RND's predictor unclipped; one joint norm let its gradient shrink the policy's steps).
        self.optimizer = keras.optimizers.Adam(p.learning_rate, epsilon=1e-5)
        # Built now so a checkpoint restore fills (and checks) every slot.
        self.optimizer.build(self.trainable)
        self.clip_range = tf.Variable(p.clip_range, dtype=tf.float32, trainable=False)
        self.rollout = OptimizationBatch(p.rollout_steps, cfg.num_envs, self.obs_shape, obs_dtype)
        self.t, self.last_obs = 0, None

        obs_spec = tf.TensorSpec((None,) + self.obs_shape, self.policy.inputs[0].dtype)
        self._act = tf.function(self._act_fn, input_signature=[obs_spec, tf.TensorSpec((2,), tf.int64)])
        self._greedy = tf.function(self._greedy_fn, input_signature=[obs_spec])
        self._values = tf.function(self._values_fn, input_signature=[obs_spec])
        self.train_step = tf.function(self._train_step)

    # --- the loop's interface -------------------------------------------------

    @property
    def warmup_steps(self):
        """Random-action batched steps before training: RND's input statistics."""
        return self.rnd.cfg.warmup_steps if self.rnd else 0

    def warm_up(self, obs):
        self.rnd.warm_up(obs, flush_every=self.p.rollout_steps)

    def end_warm_up(self):
        self.rnd.end_warm_up()

    def act(self, obs, step):
        # Sampling is keyed by (seed, step counter): a resumed run draws the same.
        actions, logp, v_ext, v_int = self._act(obs, np.array([self.cfg.seed, step], np.int64))
        return actions.numpy(), (logp, v_ext, v_int)

    def observe(self, obs, actions, extras, reward, terminated, truncated, info, next_obs):
        logp, v_ext, v_int = extras
        self.rollout.add(self.t, obs, actions, logp.numpy(), v_ext.numpy(), v_int.numpy(), reward,
                         terminated, terminated | truncated, ~info["reset_row"])
        self.t += 1
        self.last_obs = next_obs

    def ready(self, step):
        return self.t == self.p.rollout_steps

    def update(self, step):
        """Advantages, then PPO epochs over the rollout; returns the update's mean scalars."""
        p, b = self.p, self.rollout
        self.t = 0
        update = step // self.batch_size - 1          # updates done before this one
        last_ext, last_int = self._values(self.last_obs)
        if self.rnd:
            b.rewards_int[:] = self.rnd.rewards(b.obs, self.last_obs)
        b.compute_advantages(last_ext.numpy(), last_int.numpy(), p.gamma, p.rnd.int_gamma if p.rnd else 0.0,
                             p.gae_lambda, p.ext_coef if p.rnd else 1.0, p.int_coef if p.rnd else 0.0)
        self._anneal(update / self.num_updates)
        rng = np.random.default_rng([self.cfg.seed, update])

        def minibatches():
            for epoch in range(p.epochs):
                for i, mb in enumerate(b.minibatches(p.num_minibatches, rng)):
                    yield mb, np.array([self.cfg.seed, (update * p.epochs + epoch) * p.num_minibatches + i], np.int64)

        stats = self.learner_steps(minibatches())
        stats.update(learning_rate=float(self.optimizer.learning_rate.numpy()),
                     clip_range=float(self.clip_range.numpy()),
                     explained_variance=explained_variance(b.values_ext, b.returns_ext, b.valid),
                     reward_ext=float(b.rewards_ext[b.valid].mean()))
        if self.rnd:
            stats["reward_int"] = float(b.rewards_int.mean())
        return stats

    def learner_steps(self, minibatches):
        """The learner step over (minibatch, seed) pairs until one passes the KL limit.
        Returns the scalars' means over the minibatches seen; "gradient_steps" counts the
        steps taken."""
        target_kl = self.p.target_kl
        # Seeds 000 and 002 end an update at the first minibatch whose approx KL, measured
        # before its step, passes 1.5 x target_kl, and do not take that step (SB3's rule).
        limit = np.float32(np.inf if target_kl is None else KL_FACTOR * target_kl)
        sums, seen, taken = {}, 0, 0
        for mb, seed in minibatches:
            out = self.train_step(mb, seed, limit)
            for k, v in out.items():
                sums[k] = sums.get(k, 0.0) + v
            seen += 1
            # Only a KL limit needs the value on the host before the next step.
            if target_kl is not None and float(out["approx_kl"]) > limit:
                break
            taken += 1
        stats = {k: float(v) / seen for k, v in sums.items()}
        stats["gradient_steps"] = taken
        return stats

    def greedy(self, obs):
        return self._greedy(obs).numpy()

    def trackables(self):
        """Everything of the algorithm that a checkpoint must hold."""
        out = {"policy": self.policy, "optimizer": self.optimizer, "clip_range": self.clip_range}
        if self.rnd:
            out.update(self.rnd.trackables())
        return out

    def serving(self):
        """(tf.Module, keras.Model) that export writes: greedy action, logits, value."""
        return GreedyPolicy(self.policy, lambda out: {"logits": out[0], "value": out[1][:, 0]}), self.policy

    def start_from(self, weights):
        """A new run's network from an exported one's weights (--init-from)."""
        self.policy.set_weights(weights)

    # --- maths --------------------------------------------------------------

    def _anneal(self, fraction_done):
        """Linear annealing of learning rate and clip range (seed 004's PPO preset)."""
        scale = 1.0 - fraction_done if self.p.anneal else 1.0
        self.optimizer.learning_rate.assign(self.p.learning_rate * scale)
        self.clip_range.assign(self.p.clip_range * scale)

    def _act_fn(self, obs, seed):
        logits, v_ext, v_int = self.policy(obs, training=False)
        # Gumbel-max: argmax(logits + Gumbel noise) samples the softmax exactly.
        uniform = tf.random.stateless_uniform(tf.shape(logits), seed, minval=1e-20, maxval=1.0)
        actions = tf.argmax(logits - tf.math.log(-tf.math.log(uniform)), axis=-1, output_type=tf.int32)
        logp = tf.gather(tf.nn.log_softmax(logits), actions, batch_dims=1)
        return actions, logp, v_ext[:, 0], v_int[:, 0]

    def _greedy_fn(self, obs):
        logits, _, _ = self.policy(obs, training=False)
        return tf.argmax(logits, axis=-1, output_type=tf.int32)

    def _values_fn(self, obs):
        _, v_ext, v_int = self.policy(obs, training=False)
        return v_ext[:, 0], v_int[:, 0]

    def _train_step(self, mb, seed, kl_limit):
        p = self.p
        mask = tf.cast(mb["valid"], tf.float32)
        adv = mb["advantages"]
        if p.norm_adv:
            adv = losses.normalize_advantages(adv, mask)
        # PTR-PPO's replayed rows (agent/ptr_ppo.py) carry rho_marg, which scales their advantage
        # and value loss, and the frozen network's log-probs for the KL; on-policy rows neither.
        weights = mb.get("weights")
        if weights is not None:
            adv = adv * weights
        with tf.GradientTape() as tape:
            logits, v_ext, v_int = self.policy(mb["obs"], training=True)
            out = losses.policy_terms(logits, mb["actions"], mb["logp"], adv, mask, self.clip_range,
                                      mb.get("kl_logp"))
            v_loss = losses.value_loss(v_ext[:, 0], mb["returns_ext"], mask, p.value_loss, weights)
            if self.rnd:
                v_loss += losses.value_loss(v_int[:, 0], mb["returns_int"], mask, p.value_loss)
            loss = out["policy_loss"] - p.ent_coef * out["entropy"] + p.vf_coef * v_loss
            if self.rnd:
                out["rnd_loss"] = self.rnd.loss(mb["obs"], seed, self.rnd_batch)
                loss += out["rnd_loss"]
        grads = tape.gradient(loss, self.trainable)
        n = self.num_policy_vars
        if p.max_grad_norm is not None:
            grads = list(tf.clip_by_global_norm(grads[:n], p.max_grad_norm)[0]) + grads[n:]

        def apply():
            self.optimizer.apply_gradients(zip(grads, self.trainable))
            return tf.constant(True)

        # approx_kl is measured before the step: a minibatch past the limit leaves the
        # weights as they are (seeds 000 and 002).
        tf.cond(out["approx_kl"] <= kl_limit, apply, lambda: tf.constant(False))
        out["value_loss"] = v_loss
        out["loss"] = loss
        return out


def explained_variance(pred, target, mask):
    """1 - Var(target - pred) / Var(target) over valid rows: 1 is perfect, 0 is a constant."""
    pred, target = np.asarray(pred)[mask], np.asarray(target)[mask]
    var = np.var(target)
    return float("nan") if var == 0 else float(1.0 - np.var(target - pred) / var)
