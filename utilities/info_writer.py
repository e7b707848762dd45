"""TensorBoard logging: one sink fed flat dicts of scalars under fixed tags."""

import collections
import pathlib

import numpy as np
import tensorflow as tf

from utilities.events import read_scalars

# Fixed tag for every quantity the loop reports; a key without a tag here goes
# under "misc/", so a typo shows up in TensorBoard instead of vanishing.
TAGS = {
    "episode_return": "episode/return",
    "episode_length": "episode/length",
    "reward_ext": "reward/extrinsic",
    "reward_int": "reward/intrinsic",
    "policy_loss": "loss/policy",
    "value_loss": "loss/value",
    "rnd_loss": "loss/rnd",
    "entropy": "loss/entropy",
    "loss": "loss/total",
    "approx_kl": "train/approx_kl",
    "clip_fraction": "train/clip_fraction",
    "explained_variance": "train/explained_variance",
    "learning_rate": "train/learning_rate",
    "clip_range": "train/clip_range",
    "epochs_run": "train/epochs_run",
    "test_return": "test/return",
    "test_length": "test/length",
    "test_cleared": "test/cleared",
    "test_max_x": "test/max_x_pos",
    "test_clear_rate": "test/clear_rate",
    "steps_per_second": "time/steps_per_second",
    "grad_share": "time/gradient_share",
}


class InfoWriter:
    """Writes scalars to a TensorBoard event file in `logdir` and keeps the
    recent episode returns for the progress bar."""

    def __init__(self, logdir, recent=20, purge_after=None):
        if purge_after is not None:
            purge_events_after(logdir, purge_after)
        self.writer = tf.summary.create_file_writer(str(logdir))
        self.recent_returns = collections.deque(maxlen=recent)
        self._returns, self._lengths = [], []

    def add_episodes(self, returns, lengths):
        """Episodes that ended since the last write; their means go out with it."""
        self._returns.extend(float(r) for r in returns)
        self._lengths.extend(float(n) for n in lengths)
        self.recent_returns.extend(float(r) for r in returns)

    def write(self, values, step):
        """One point per tag at `step` (the env-step counter): the update's scalars
        plus the mean return and length of the episodes ended since the last write."""
        values = dict(values)
        if self._returns:
            values["episode_return"] = np.mean(self._returns)
            values["episode_length"] = np.mean(self._lengths)
            self._returns, self._lengths = [], []
        with self.writer.as_default(step=int(step)):
            for key, value in values.items():
                tf.summary.scalar(TAGS.get(key, "misc/" + key), float(value))

    def animation(self, tag, gif, width, height, step):
        """An animated GIF in TensorBoard's image tab (the image plugin serves any
        encoded image; browsers animate GIFs)."""
        from tensorboard.plugins.image import metadata

        with self.writer.as_default(step=int(step)):
            tf.summary.write(tag, tf.constant([str(width), str(height), gif]),
                             metadata=metadata.create_summary_metadata(display_name=tag, description=""))

    @property
    def mean_recent_return(self):
        return float(np.mean(self.recent_returns)) if self.recent_returns else float("nan")

    def flush(self):
        self.writer.flush()

    def close(self):
        self.writer.close()


def purge_events_after(logdir, step):
    """Drop the points a killed run wrote after its last checkpoint at `step`, so the
    resumed run's curves have neither gaps nor duplicated steps. The kept points
    are written to a new file before the old files go: a kill in between leaves
    duplicates, never a loss."""
    old = sorted(pathlib.Path(logdir).glob("events.out.tfevents.*"))
    scalars = read_scalars(logdir)
    if not any(s > step for points in scalars.values() for s, _ in points):
        return
    writer = tf.summary.create_file_writer(str(logdir), filename_suffix=".purged")
    with writer.as_default():
        for tag, points in scalars.items():
            for s, value in points:
                if s <= step:
                    tf.summary.scalar(tag, value, step=s)
    writer.close()
    for path in old:
        path.unlink()
