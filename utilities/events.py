"""Read scalars back from a run's TensorBoard event files (for tests, plots, notebooks)."""

import pathlib

from tensorboard.backend.event_processing import event_accumulator
from tensorboard.util import tensor_util


def read_scalars(logdir):
    """{tag: [(step, value), ...]} for every scalar written under `logdir`, sorted by step."""
    out = {}
    for path in sorted(pathlib.Path(logdir).glob("events.out.tfevents.*")):
        acc = event_accumulator.EventAccumulator(str(path), size_guidance={event_accumulator.TENSORS: 0})
        acc.Reload()
        for tag in acc.Tags()["tensors"]:
            if acc.SummaryMetadata(tag).plugin_data.plugin_name != "scalars":
                continue   # images, animations
            out.setdefault(tag, []).extend(
                (e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in acc.Tensors(tag))
    return {tag: sorted(points) for tag, points in out.items()}
