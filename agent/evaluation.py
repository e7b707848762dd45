"""Greedy test episodes (seed 000's test), on any one-env batched env."""

import numpy as np

from utilities.video import frames_from_obs


def greedy_episode(act, env, max_repeats=None, record=False):
    """One greedy episode; with max_repeats (seed 000: 200 for Mario) it is cut after
    that many identical consecutive actions (a stuck agent). act: obs [1, ...] ->
    actions [1]. Returns return, length, cleared (Mario's flag_get), max_x (Mario's
    x_pos) and, if record, RGB frames (Mario's screen at half size)."""
    obs, info = env.reset()
    frames, total, steps, max_x, repeats, last = [], 0.0, 0, 0, 0, None
    while True:
        if record:
            frames.append(info["screen"][0, ::2, ::2] if "screen" in info else frames_from_obs(obs[0]))
        action = int(np.asarray(act(obs))[0])
        repeats = repeats + 1 if action == last else 0
        last = action
        obs, reward, terminated, truncated, info = env.step(np.array([action]))
        total += float(reward[0])
        steps += 1
        max_x = max(max_x, int(info.get("x_pos", [0])[0]))
        if terminated[0] or truncated[0] or (max_repeats and repeats >= max_repeats):
            break
    return {"return": total, "length": steps, "cleared": bool(info.get("flag_get", [False])[0]),
            "max_x": max_x, "frames": [f for f in frames if f is not None]}


def clear_rate(act, env, max_repeats=None):
    """Share of greedy episodes that clear the stage (Mario's flag_get): one episode in
    each of env's envs, stepped together. With random starts they differ, where one
    greedy episode from the fixed start is brittle. Each env's episode is cut like
    greedy_episode's; rows of envs already done are stepped but not counted."""
    obs, _ = env.reset()
    n = len(obs)
    running, cleared = np.ones(n, bool), np.zeros(n, bool)
    repeats, last = np.zeros(n, int), np.full(n, -1)
    while running.any():
        actions = np.asarray(act(obs))
        repeats = np.where(actions == last, repeats + 1, 0)
        last = actions
        obs, _, terminated, truncated, info = env.step(actions)
        ended = running & (terminated | truncated)
        cleared |= ended & info["flag_get"]
        running &= ~ended
        if max_repeats:
            running &= repeats < max_repeats
    return float(cleared.mean())
