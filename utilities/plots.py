"""Learning curves from a run's TensorBoard event files."""

import pathlib

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from utilities.events import read_scalars  # noqa: E402


def trailing_mean(values, window):
    """Each point's mean over itself and the window - 1 points before it (fewer at the start):
    smoothing that uses no later point, so a curve never shows a rise before it happened."""
    values = np.asarray(values, float)
    sums = np.cumsum(np.concatenate([[0.0], values]))
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(ends - window, 0)
    return (sums[ends] - sums[starts]) / (ends - starts)


def plot_learning_curve(run_dirs, out_path, tag="episode/return", title=None, smooth=1):
    """Plot `tag` against agent steps for each run folder; saves a PNG at out_path. smooth=N:
    each run's trailing mean over N points drawn over its raw points (drawn faint)."""
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for run_dir in run_dirs:
        points = read_scalars(run_dir).get(tag, [])
        if points:
            steps, values = zip(*points)
            name = pathlib.Path(run_dir).name
            if smooth > 1:
                raw, = ax.plot(steps, values, alpha=0.2, linewidth=0.8)
                ax.plot(steps, trailing_mean(values, smooth), color=raw.get_color(),
                        label=f"{name} (mean of {smooth} points)")
            else:
                ax.plot(steps, values, label=name)
    ax.set_xlabel("agent steps (all envs; 1 Atari step = 4 frames)")
    ax.set_ylabel(tag)
    ax.set_title(title or tag)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out_path)
    plt.close(fig)
    return out_path
