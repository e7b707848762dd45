"""Greedy episodes of an exported policy on any env with the package's interface."""

import numpy as np

from utilities.video import frames_from_obs


def play_episodes(policy, env, episodes, record=False):
    """Run `episodes` greedy episodes on env (num_envs == 1).

    policy: a callable obs [1, ...] -> {"action": [1]} (a loaded SavedModel).
    Yields one dict per episode: return, length, and the frames when record=True.
    """
    obs, _ = env.reset()
    frames = []
    done = 0
    while done < episodes:
        if record:
            frames.append(frames_from_obs(obs[0]))
        action = np.asarray(policy(obs)["action"])
        obs, _, _, _, info = env.step(action)
        if info["episode_end"][0]:
            done += 1
            out = {"episode": done, "return": float(info["episode_return"][0]),
                   "length": int(info["episode_length"][0])}
            if record:
                out["frames"] = [f for f in frames if f is not None]
                frames = []
            yield out
