import numpy as np

from utilities.normalizer import Normalizer


def test_matches_numpy_over_batches_of_different_sizes():
    rng = np.random.default_rng(0)
    data = rng.normal(3.0, 2.0, size=(1000, 4, 5))
    norm = Normalizer((4, 5), epsilon=0.0 + 1e-12)
    start = 0
    for size in (1, 7, 100, 392, 500):
        norm.update(data[start:start + size])
        start += size
    np.testing.assert_allclose(norm.mean.numpy(), data.mean(0), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(norm.var.numpy(), data.var(0), rtol=1e-7)
    assert norm.count.numpy() == np.float64(1000 + 1e-12)


def test_leading_axes_are_samples_and_normalize_whitens():
    rng = np.random.default_rng(1)
    x = rng.normal(-4.0, 0.5, size=(64, 8, 3))   # [T, N, features]
    norm = Normalizer((3,))
    norm.update(x)
    y = norm.normalize(x).numpy()
    np.testing.assert_allclose(y.reshape(-1, 3).mean(0), 0.0, atol=1e-3)
    np.testing.assert_allclose(y.reshape(-1, 3).std(0), 1.0, atol=1e-3)
    assert np.abs(norm.normalize(x * 100, clip=5.0).numpy()).max() == 5.0


def test_scalar_statistics():
    norm = Normalizer(())
    values = np.array([[1.0, 2.0], [3.0, 4.0]])
    norm.update(values)
    assert abs(norm.mean.numpy() - 2.5) < 1e-3
    assert abs(norm.var.numpy() - values.var()) < 1e-3
