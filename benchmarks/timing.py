"""What the benchmark scripts share: a stopwatch around a callable and the env-only baseline."""

import time

import numpy as np


class Stopwatch:
    """Wraps a callable and adds up the seconds spent inside it."""

    def __init__(self, fn):
        self.fn, self.seconds = fn, 0.0

    def __call__(self, *args):
        start = time.perf_counter()
        out = self.fn(*args)
        self.seconds += time.perf_counter() - start
        return out


def freeway_env_only(num_envs, env_settings, steps=2000):
    """Agent steps/s of Freeway alone (random actions, no learner): the ceiling of training."""
    import envs

    env = envs.make("freeway", num_envs, 0, **env_settings)
    env.reset()
    actions = np.random.default_rng(0).integers(3, size=(steps, num_envs))
    start = time.perf_counter()
    for a in actions:
        env.step(a)
    seconds = time.perf_counter() - start
    env.close()
    return steps * num_envs / seconds
