"""TensorBoard logging: one sink fed flat dicts of scalars under fixed tags.

A sink only: it keeps no data that the loop reads back (the recent-episode window
lives in the loop and its checkpoint).
"""

import os
import pathlib
import socket
import time

import tensorflow as tf
from tensorboard.compat.proto import event_pb2

# Fixed tag for every quantity the loop reports. "test_<name>" goes to "test/<name>";
# any other key without a tag here goes under "misc/", so a typo shows up in
# TensorBoard instead of vanishing.
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
    "steps_per_second": "time/steps_per_second",
    "update_share": "time/update_share",
    # Value-based algorithms (agent/dqn.py).
    "td_loss": "loss/td",
    "q_mean": "train/q_mean",
    "epsilon": "train/epsilon",
    "replay_fill": "train/replay_fill",
    "beta": "train/beta",
    "gradient_steps": "train/gradient_steps",
    # PPO with prioritised trajectory replay (agent/ptr_ppo.py): the replayed passes, the
    # truncated trace weight rho_marg, the trajectory priorities (leaf values p^alpha).
    "off_policy_share": "ptr/off_policy_share",
    "off_gradient_steps": "ptr/off_gradient_steps",
    "off_loss": "ptr/off_loss",
    "off_policy_loss": "ptr/off_policy_loss",
    "off_value_loss": "ptr/off_value_loss",
    "off_entropy": "ptr/off_entropy",
    "off_approx_kl": "ptr/off_approx_kl",
    "off_clip_fraction": "ptr/off_clip_fraction",
    "rho_marg_mean": "ptr/rho_marg_mean",
    "rho_marg_low": "ptr/rho_marg_below_0.05",
    "rho_marg_high": "ptr/rho_marg_above_1.5",
    "priority_mean": "ptr/priority_mean",
    "priority_min": "ptr/priority_min",
    "priority_max": "ptr/priority_max",
    "memory_fill": "ptr/memory_fill",
}


def tag_of(key):
    if key in TAGS:
        return TAGS[key]
    return "test/" + key[5:] if key.startswith("test_") else "misc/" + key


class InfoWriter:
    """Writes summaries to a TensorBoard event file in `logdir`. With purge_after=S
    it first drops what a killed run wrote after its last checkpoint at step S."""

    def __init__(self, logdir, purge_after=None):
        if purge_after is not None:
            purge_events_after(logdir, purge_after)
        self.writer = tf.summary.create_file_writer(str(logdir))

    def write(self, values, step):
        """One point per key at `step` (the agent-step counter)."""
        with self.writer.as_default(step=int(step)):
            for key, value in values.items():
                tf.summary.scalar(tag_of(key), float(value))

    def animation(self, tag, gif, width, height, step):
        """An animated GIF in TensorBoard's image tab (the image plugin serves any
        encoded image; browsers animate GIFs)."""
        from tensorboard.plugins.image import metadata

        with self.writer.as_default(step=int(step)):
            tf.summary.write(tag, tf.constant([str(width), str(height), gif]),
                             metadata=metadata.create_summary_metadata(display_name=tag, description=""))

    def flush(self):
        self.writer.flush()

    def close(self):
        self.writer.close()


def _records(path):
    """The raw records of an event file; a kill may have cut the last one short."""
    out = []
    try:
        for record in tf.data.TFRecordDataset(str(path)):
            out.append(record.numpy())
    except tf.errors.DataLossError:
        pass
    return out


# A purge's kept events wait under this name (TensorBoard reads only names with
# "tfevents") until the files they came from are gone; the rest is the final name's tail.
JOURNAL = "events.out.purging."


def purge_events_after(logdir, step):
    """Drop every summary a killed run wrote after its last checkpoint at `step`, so
    the resumed run's curves have neither gaps nor duplicated steps. Events are
    copied as they are (scalars, animations, any plugin's data), so nothing the run
    had up to its checkpoint is lost.

    A kill at any moment loses nothing and duplicates nothing: the kept events are
    written to a journal file, which is complete once renamed; only then do the old
    files go and the journal take an event file's name, and a purge killed between
    the two is finished by the next one (`_finish_purge`)."""
    logdir = pathlib.Path(logdir)
    _finish_purge(logdir)
    old = sorted(logdir.glob("events.out.tfevents.*"))
    kept, dropped = [], 0
    for path in old:
        for record in _records(path):
            event = event_pb2.Event.FromString(record)
            if event.HasField("file_version"):
                continue
            if event.step <= step:
                kept.append(record)
            else:
                dropped += 1
    if not dropped:
        return
    # TensorBoard reads a folder's event files in name order, and names start with a
    # time: the kept events must sort before the resumed run's new file.
    first = old[0].name.split(".")[3]
    stamp = int(first) - 1 if first.isdigit() else int(time.time()) - 1
    journal = logdir / f"{JOURNAL}{stamp}.{socket.gethostname()}"
    tmp = journal.with_name(journal.name + ".tmp")
    version = event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2").SerializeToString()
    with tf.io.TFRecordWriter(str(tmp)) as writer:
        for record in [version, *kept]:
            writer.write(record)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    tmp.replace(journal)
    _finish_purge(logdir)


def _finish_purge(logdir):
    """Complete a purge that a kill interrupted. A journal still being written means the
    old files stand whole: it goes. A complete journal holds everything kept of the
    event files present (the resumed run writes none before its purge has finished):
    they go, then the journal takes its event file's name."""
    for tmp in logdir.glob(JOURNAL + "*.tmp"):
        tmp.unlink()
    for journal in logdir.glob(JOURNAL + "*"):
        for path in logdir.glob("events.out.tfevents.*"):
            path.unlink()
        journal.replace(logdir / f"events.out.tfevents.{journal.name.removeprefix(JOURNAL)}.purged.v2")
