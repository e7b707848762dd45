"""Running mean and variance, checkpointable.

The update is the parallel-moments merge of Chan et al. (1979), the same rule as
OpenAI baselines' RunningMeanStd that RND (Burda et al. 2018) and seed 004 use: a
batch of any size merges exactly, so the statistics do not depend on how the data
was split into batches.
"""

import numpy as np
import tensorflow as tf


def merge_moments(mean, var, count, batch_mean, batch_var, batch_count):
    """Combine (mean, var, count) with a batch's moments; returns the merged triple."""
    delta = batch_mean - mean
    total = count + batch_count
    new_mean = mean + delta * batch_count / total
    m2 = var * count + batch_var * batch_count + np.square(delta) * count * batch_count / total
    return new_mean, m2 / total, total


class Normalizer(tf.Module):
    """Per-element running statistics of arrays shaped `shape`.

    The statistics live in tf.Variables so one tf.train.Checkpoint holds them with
    the networks; the running moments merge in float64 numpy, outside the training graph.
    """

    def __init__(self, shape=(), epsilon=1e-4, name=None):
        super().__init__(name=name)
        self.shape = tuple(shape)
        self.mean = tf.Variable(np.zeros(self.shape), dtype=tf.float64, trainable=False)
        self.var = tf.Variable(np.ones(self.shape), dtype=tf.float64, trainable=False)
        # A tiny prior count (as baselines) keeps the first merge well defined.
        self.count = tf.Variable(epsilon, dtype=tf.float64, trainable=False)

    def update(self, x):
        """Merge a batch: `x` has shape [..., *shape]; all leading axes are samples."""
        batch = np.asarray(x).reshape((-1,) + self.shape)
        mean, var, count = merge_moments(
            self.mean.numpy(), self.var.numpy(), self.count.numpy(),
            batch.mean(axis=0, dtype=np.float64), batch.var(axis=0, dtype=np.float64),
            batch.shape[0])
        self.mean.assign(mean)
        self.var.assign(var)
        self.count.assign(count)

    def normalize(self, x, clip=None):
        """(x - mean) / sqrt(var + 1e-8) as float32, clipped to [-clip, clip] if given.

        The one whitening formula of the package: TF ops, so RND's tf.functions and
        plain calls share it (RND whitens its input this way, Burda et al. 2018)."""
        x = tf.cast(x, tf.float32)
        y = (x - tf.cast(self.mean, tf.float32)) / tf.sqrt(tf.cast(self.var, tf.float32) + 1e-8)
        return y if clip is None else tf.clip_by_value(y, -clip, clip)
