"""Learning curves from a run's TensorBoard event files."""

import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from utilities.events import read_scalars  # noqa: E402


def plot_learning_curve(run_dirs, out_path, tag="episode/return", title=None):
    """Plot `tag` against agent steps for each run folder; saves a PNG at out_path."""
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for run_dir in run_dirs:
        points = read_scalars(run_dir).get(tag, [])
        if points:
            steps, values = zip(*points)
            ax.plot(steps, values, label=pathlib.Path(run_dir).name)
    ax.set_xlabel("agent steps (all envs; 1 Atari step = 4 frames)")
    ax.set_ylabel(tag)
    ax.set_title(title or tag)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out_path)
    plt.close(fig)
    return out_path
