"""Random Network Distillation (Burda et al. 2018) as one component any algorithm holds.

It owns the fixed random target, the predictor, the running statistics that whiten
its input, the forward filter of the intrinsic return and that return's statistics,
and the warm-up that initialises the input statistics. The algorithm that holds it
trains the predictor (`loss`) with its own optimizer and mixes the rewards.
"""

import numpy as np
import tensorflow as tf

from agent import networks
from utilities.gae import discounted_filter
from utilities.normalizer import Normalizer


class RND(tf.Module):
    def __init__(self, cfg, obs_shape, obs_dtype, num_envs):
        """cfg: agent.config.RNDConfig; num_envs: the width of the reward filter."""
        super().__init__(name="rnd")
        self.cfg = cfg
        self.image = networks.is_image(obs_shape)
        # RND sees only the last frame of an image stack (Burda et al. 2018).
        shape = (1,) + tuple(obs_shape[1:]) if self.image else tuple(obs_shape)
        self.obs_norm = Normalizer(shape, name="rnd_obs_norm")
        self.target = networks.rnd_target(shape, cfg.width)
        self.predictor = networks.rnd_predictor(shape, cfg.width)
        self.return_norm = Normalizer((), name="int_return_norm")
        self.filter = tf.Variable(np.zeros(num_envs), dtype=tf.float64, trainable=False)
        self._warmup = []
        spec = tf.TensorSpec((None,) + tuple(obs_shape), obs_dtype)
        # The per-step (or per-rollout) call outside a train step: compiled once, since an
        # eager call of the two nets costs tens of milliseconds per call.
        self.raw_rewards = tf.function(self.error, input_signature=[spec])

    @property
    def trainable(self):
        return self.predictor.trainable_variables

    def trackables(self):
        return {"rnd_predictor": self.predictor, "rnd_target": self.target,
                "rnd_obs_norm": self.obs_norm, "int_return_norm": self.return_norm,
                "int_filter": self.filter}

    def frames(self, obs):
        """What RND sees: the last frame (images) or the whole vector."""
        return obs[:, -1:] if self.image else obs

    def warm_up(self, obs, flush_every):
        """Collect random-action observations; merge them into the input statistics
        every `flush_every` calls (Burda et al. initialise them this way)."""
        self._warmup.append(self.frames(obs))
        if len(self._warmup) == flush_every:
            self.end_warm_up()

    def end_warm_up(self):
        if self._warmup:
            self.obs_norm.update(np.stack(self._warmup))
            self._warmup = []

    def error(self, obs):
        """Predictor error per row (the raw intrinsic reward); differentiable, for use
        inside a tf.function (`raw_rewards` is its compiled form)."""
        x = self.obs_norm.normalize(self.frames(obs), clip=self.cfg.obs_clip)
        target = self.target(x, training=False)
        return tf.reduce_mean(tf.square(self.predictor(x, training=True) - target), axis=-1)

    def loss(self, obs, seed, count):
        """The predictor's loss on `count` random rows of a minibatch: RND's update
        proportion keeps the predictor from outpacing the policy's novelty."""
        pick = tf.argsort(tf.random.stateless_uniform([tf.shape(obs)[0]], seed))[:count]
        return tf.reduce_mean(self.error(tf.gather(obs, pick)))

    def rewards(self, rollout_obs, last_obs, chunk=1024):
        """Intrinsic rewards [T, N] of a rollout: row t's next observation is
        rollout_obs[t + 1], the last row's is last_obs. The predictor error divided by
        the running std of the discounted intrinsic return, a filter run FORWARD over
        time (Burda et al. 2018, section 2.4). Updates the input and return statistics
        and the filter."""
        steps, num_envs = rollout_obs.shape[:2]
        # Rows 1.. as a view (no copy of the rollout), then the last observation.
        later = rollout_obs[1:].reshape((-1,) + rollout_obs.shape[2:])
        chunks = [later[i:i + chunk] for i in range(0, len(later), chunk)] + [last_obs]
        raw = np.concatenate([self.raw_rewards(c).numpy() for c in chunks]).reshape(steps, num_envs)
        self.obs_norm.update(np.concatenate([self.frames(c) for c in chunks]))
        filtered, state = discounted_filter(raw, self.filter.numpy(), self.cfg.int_gamma)
        self.filter.assign(state)
        self.return_norm.update(filtered)
        return (raw / np.sqrt(self.return_norm.var.numpy() + 1e-8)).astype(np.float32)
