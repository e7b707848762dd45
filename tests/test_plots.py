"""utilities/plots.py: the smoothing a learning curve is drawn with."""

import numpy as np
import pytest

from utilities.plots import plot_learning_curve, trailing_mean


def test_trailing_mean_uses_only_the_points_up_to_each_one():
    values = np.random.default_rng(0).normal(size=50)
    for window in (1, 3, 7, 50, 80):
        naive = [values[max(0, i + 1 - window):i + 1].mean() for i in range(len(values))]
        np.testing.assert_allclose(trailing_mean(values, window), naive, rtol=1e-12)
    assert trailing_mean([1, 2, 3, 4], 2).tolist() == [1.0, 1.5, 2.5, 3.5]


def test_a_smoothed_curve_is_drawn_over_the_raw_one(tmp_path, monkeypatch):
    import tensorflow as tf
    from matplotlib.figure import Figure

    writer = tf.summary.create_file_writer(str(tmp_path / "run"))
    with writer.as_default():
        for step, value in enumerate([0.0, 4.0, 2.0, 6.0]):
            tf.summary.scalar("episode/return", value, step=step)
    writer.close()
    drawn = {}
    monkeypatch.setattr(Figure, "savefig", lambda fig, path: drawn.update(
        {line.get_label(): line.get_ydata().tolist() for line in fig.axes[0].lines}))
    plot_learning_curve([tmp_path / "run"], tmp_path / "c.png", smooth=2)
    assert drawn["run (mean of 2 points)"] == pytest.approx([0.0, 2.0, 3.0, 4.0])
    assert [0.0, 4.0, 2.0, 6.0] in drawn.values()     # the raw points, faint, under it
