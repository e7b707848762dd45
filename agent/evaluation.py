"""Greedy test episodes (seed 000's test) on any batched env.

Generic: return and length for every env; "cleared" and "progress" where the env
reports them in info (envs/__init__.py: Mario reports its flag and x position).
"""

import numpy as np

from utilities.video import frames_from_obs


def greedy_episodes(act, env, max_repeats=None, record=False):
    """One greedy episode in each of env's envs, stepped together; with max_repeats
    (seed 000: 200 for Mario) an env's episode is cut after that many identical
    consecutive actions (a stuck agent). Rows of envs already done are stepped but
    not counted. act: obs [N, ...] -> actions [N]. Returns per-env arrays "return",
    "length" and, where the env reports them, "cleared" and "progress" (its maximum);
    and "frames": if record, env 0's frames (the env's "screen" at half size, else
    the newest observed frame)."""
    obs, info = env.reset()
    n = len(obs)
    running = np.ones(n, bool)
    total, steps = np.zeros(n), np.zeros(n, int)
    cleared = progress = None
    repeats, last, frames = np.zeros(n, int), np.full(n, -1), []
    while running.any():
        if record and running[0]:
            frames.append(info["screen"][0, ::2, ::2] if "screen" in info else frames_from_obs(obs[0]))
        actions = np.asarray(act(obs))
        repeats = np.where(actions == last, repeats + 1, 0)
        last = actions
        obs, reward, terminated, truncated, info = env.step(actions)
        total += np.where(running, reward, 0.0)
        steps += running
        if "progress" in info:
            progress = np.zeros(n, info["progress"].dtype) if progress is None else progress
            progress = np.where(running, np.maximum(progress, info["progress"]), progress)
        ended = running & info["episode_end"]   # the game's end, not a lost life (EnvPool's episodic_life)
        if "cleared" in info:
            cleared = np.zeros(n, bool) if cleared is None else cleared
            cleared |= ended & info["cleared"]
        running &= ~ended
        if max_repeats:
            running &= repeats < max_repeats
    out = {"return": total, "length": steps, "frames": [f for f in frames if f is not None]}
    if cleared is not None:
        out["cleared"] = cleared
    if progress is not None:
        out["max_progress"] = progress
    return out


def greedy_episode(act, env, max_repeats=None, record=False):
    """greedy_episodes on a one-env env, as plain numbers."""
    out = greedy_episodes(act, env, max_repeats, record)
    return {k: (v if k == "frames" else v[0].item()) for k, v in out.items()}


def clear_rate(act, env, max_repeats=None):
    """(share, count) of greedy episodes, one per env, that clear the level, and their
    count. With random starts they differ, where one greedy episode from the fixed start
    is brittle."""
    cleared = greedy_episodes(act, env, max_repeats)["cleared"]
    return float(cleared.mean()), len(cleared)


def make_test(test_env, rate_env=None, max_repeats=None):
    """The loop's test: one recorded greedy episode on test_env and, with rate_env (N
    envs with random starts) and `rate`, the clear rate over its N episodes and N (logged
    beside it: a resume may change N, and an export's card names the N of its rate)."""
    def test(act, rate=True):
        result = greedy_episode(act, test_env, max_repeats, record=True)
        if rate_env is not None and rate:
            result["clear_rate"], result["clear_episodes"] = clear_rate(act, rate_env, max_repeats)
        return result
    return test
