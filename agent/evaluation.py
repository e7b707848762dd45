"""Greedy test episodes (seed 000's test) on any batched env."""

import numpy as np

from utilities.video import frames_from_obs


def greedy_episodes(act, env, max_repeats=None, record=False):
    """One greedy episode in each of env's envs, stepped together; with max_repeats
    (seed 000: 200 for Mario) an env's episode is cut after that many identical
    consecutive actions (a stuck agent). Rows of envs already done are stepped but
    not counted. act: obs [N, ...] -> actions [N]. Returns per-env arrays return,
    length, cleared (Mario's flag_get), max_x (Mario's x_pos) and, if record, env 0's
    RGB frames (Mario's screen at half size)."""
    obs, info = env.reset()
    n = len(obs)
    running, cleared = np.ones(n, bool), np.zeros(n, bool)
    total, steps, max_x = np.zeros(n), np.zeros(n, int), np.zeros(n, int)
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
        max_x = np.where(running, np.maximum(max_x, info.get("x_pos", 0)), max_x)
        ended = running & (terminated | truncated)
        cleared |= ended & info.get("flag_get", False)
        running &= ~ended
        if max_repeats:
            running &= repeats < max_repeats
    return {"return": total, "length": steps, "cleared": cleared, "max_x": max_x,
            "frames": [f for f in frames if f is not None]}


def greedy_episode(act, env, max_repeats=None, record=False):
    """greedy_episodes on a one-env env, as plain numbers."""
    out = greedy_episodes(act, env, max_repeats, record)
    return {"return": float(out["return"][0]), "length": int(out["length"][0]),
            "cleared": bool(out["cleared"][0]), "max_x": int(out["max_x"][0]), "frames": out["frames"]}


def clear_rate(act, env, max_repeats=None):
    """Share of greedy episodes, one per env, that clear the stage. With random starts
    they differ, where one greedy episode from the fixed start is brittle."""
    return float(greedy_episodes(act, env, max_repeats)["cleared"].mean())
