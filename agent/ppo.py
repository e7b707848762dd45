"""The PPO (+RND) agent: acting, intrinsic reward and the one-function learner step."""

import keras
import numpy as np
import tensorflow as tf

from agent import losses, networks
from utilities.normalizer import Normalizer


class PPOAgent:
    """Networks, optimizer and the tf.functions that use them.

    All randomness is stateless and keyed by counters the caller passes in
    (seed, step), so a resumed run draws the same numbers as an uninterrupted one
    without any generator state to save.
    """

    def __init__(self, cfg, obs_shape, num_actions, obs_dtype="uint8"):
        self.cfg = cfg
        self.obs_shape = tuple(obs_shape)
        self.num_actions = int(num_actions)
        self.policy = networks.actor_critic(self.obs_shape, self.num_actions, obs_dtype, cfg.network)
        # Plain PPO has no intrinsic stream: its value head stays untrained.
        trainable = [v for v in self.policy.trainable_variables
                     if cfg.rnd or not v.path.startswith("value_int/")]
        self.minibatch_size = cfg.batch_size // cfg.num_minibatches
        if cfg.rnd:
            # RND sees only the last frame of the stack (Burda et al. 2018).
            rnd_shape = (1,) + self.obs_shape[1:] if networks.is_image(self.obs_shape) else self.obs_shape
            self.obs_norm = Normalizer(rnd_shape, name="rnd_obs_norm")
            self.rnd_target = networks.rnd_target(rnd_shape)
            self.rnd_predictor = networks.rnd_predictor(rnd_shape)
            trainable += self.rnd_predictor.trainable_variables
            self.rnd_batch = max(1, int(round(cfg.rnd_update_fraction * self.minibatch_size)))
        self.trainable = trainable
        self.optimizer = keras.optimizers.Adam(cfg.learning_rate, epsilon=1e-5,
                                               global_clipnorm=cfg.max_grad_norm)
        # Built now so a checkpoint restore fills (and checks) every slot.
        self.optimizer.build(self.trainable)
        self.clip_range = tf.Variable(cfg.clip_range, dtype=tf.float32, trainable=False)

        obs_spec = tf.TensorSpec((None,) + self.obs_shape, self.policy.inputs[0].dtype)
        seed_spec = tf.TensorSpec((2,), tf.int64)
        self.act = tf.function(self._act, input_signature=[obs_spec, seed_spec])
        self.greedy = tf.function(self._greedy, input_signature=[obs_spec])
        self.values = tf.function(self._values, input_signature=[obs_spec])
        self.intrinsic_reward = tf.function(self._intrinsic_reward, input_signature=[obs_spec])
        self.train_step = tf.function(self._train_step)

    def trackables(self):
        """Everything of the agent that a checkpoint must hold."""
        out = {"policy": self.policy, "optimizer": self.optimizer, "clip_range": self.clip_range}
        if self.cfg.rnd:
            out.update(rnd_predictor=self.rnd_predictor, rnd_target=self.rnd_target,
                       rnd_obs_norm=self.obs_norm)
        return out

    def set_progress(self, fraction_done):
        """Linear annealing of learning rate and clip range (seed 004's PPO preset)."""
        scale = 1.0 - fraction_done if self.cfg.anneal else 1.0
        self.optimizer.learning_rate.assign(self.cfg.learning_rate * scale)
        self.clip_range.assign(self.cfg.clip_range * scale)

    def rnd_frames(self, obs):
        """What RND sees: the last frame (images) or the whole vector."""
        return obs[:, -1:] if networks.is_image(self.obs_shape) else obs

    # --- tf.functions -------------------------------------------------------

    def _act(self, obs, seed):
        logits, v_ext, v_int = self.policy(obs, training=False)
        # Gumbel-max: argmax(logits + Gumbel noise) samples the softmax exactly.
        uniform = tf.random.stateless_uniform(tf.shape(logits), seed, minval=1e-20, maxval=1.0)
        actions = tf.argmax(logits - tf.math.log(-tf.math.log(uniform)), axis=-1, output_type=tf.int32)
        logp = tf.gather(tf.nn.log_softmax(logits), actions, batch_dims=1)
        return actions, logp, v_ext[:, 0], v_int[:, 0]

    def _greedy(self, obs):
        logits, _, _ = self.policy(obs, training=False)
        return tf.argmax(logits, axis=-1, output_type=tf.int32)

    def _values(self, obs):
        _, v_ext, v_int = self.policy(obs, training=False)
        return v_ext[:, 0], v_int[:, 0]

    def _rnd_input(self, obs):
        # Whitened by running per-element statistics and clipped to [-5, 5] (Burda et al.).
        x = tf.cast(self.rnd_frames(obs), tf.float32)
        mean = tf.cast(self.obs_norm.mean, tf.float32)
        std = tf.sqrt(tf.cast(self.obs_norm.var, tf.float32) + 1e-8)
        return tf.clip_by_value((x - mean) / std, -self.cfg.obs_clip, self.cfg.obs_clip)

    def _rnd_error(self, obs):
        x = self._rnd_input(obs)
        target = self.rnd_target(x, training=False)
        return tf.reduce_mean(tf.square(self.rnd_predictor(x, training=True) - target), axis=-1)

    def _intrinsic_reward(self, obs):
        return self._rnd_error(obs)

    def _train_step(self, mb, seed):
        cfg = self.cfg
        mask = tf.cast(mb["valid"], tf.float32)
        adv = mb["advantages"]
        if cfg.norm_adv:
            adv = losses.normalize_advantages(adv, mask)
        with tf.GradientTape() as tape:
            logits, v_ext, v_int = self.policy(mb["obs"], training=True)
            out = losses.policy_terms(logits, mb["actions"], mb["logp"], adv, mask, self.clip_range)
            v_loss = losses.value_loss(v_ext[:, 0], mb["returns_ext"], mask, cfg.value_loss)
            if cfg.rnd:
                v_loss += losses.value_loss(v_int[:, 0], mb["returns_int"], mask, cfg.value_loss)
            loss = out["policy_loss"] - cfg.ent_coef * out["entropy"] + cfg.vf_coef * v_loss
            if cfg.rnd:
                # The predictor trains on a random fraction of the minibatch (RND's
                # update proportion), so it does not outpace the policy's novelty.
                pick = tf.argsort(tf.random.stateless_uniform([tf.shape(mask)[0]], seed))[:self.rnd_batch]
                out["rnd_loss"] = tf.reduce_mean(self._rnd_error(tf.gather(mb["obs"], pick)))
                loss += out["rnd_loss"]
        grads = tape.gradient(loss, self.trainable)
        self.optimizer.apply_gradients(zip(grads, self.trainable))
        out["value_loss"] = v_loss
        out["loss"] = loss
        return out


def explained_variance(pred, target, mask):
    """1 - Var(target - pred) / Var(target) over valid rows: 1 is perfect, 0 is a constant."""
    pred, target = np.asarray(pred)[mask], np.asarray(target)[mask]
    var = np.var(target)
    return float("nan") if var == 0 else float(1.0 - np.var(target - pred) / var)
