"""Generalised advantage estimation (Schulman et al. 2016), as a pure function."""

import numpy as np


def gae(rewards, values, last_value, terminated, dones, gamma, lam):
    """Advantages and returns for a [T, N] rollout.

    rewards, values, terminated, dones: [T, N]; last_value: [N], the value of the
    observation after the last step.

    terminated[t] cuts the bootstrap (a real end: the next state is worth 0);
    dones[t] (terminated or truncated) cuts the recursion (the next row belongs to
    another episode). A time-out is therefore bootstrapped from the value of the
    state it cut off, which with EnvPool's next-step auto-reset is values[t + 1]:
    the row after an end holds the final observation (and is itself masked out).
    Pass zeros for both flags for a non-episodic stream (RND's intrinsic rewards).
    """
    rewards = np.asarray(rewards, np.float32)
    values = np.asarray(values, np.float32)
    steps = rewards.shape[0]
    next_values = np.concatenate([values[1:], np.asarray(last_value, np.float32)[None]], axis=0)
    not_terminated = 1.0 - np.asarray(terminated, np.float32)
    not_done = 1.0 - np.asarray(dones, np.float32)
    deltas = rewards + gamma * next_values * not_terminated - values
    advantages = np.zeros_like(rewards)
    running = np.zeros_like(rewards[0])
    for t in reversed(range(steps)):
        running = deltas[t] + gamma * lam * not_done[t] * running
        advantages[t] = running
    return advantages, advantages + values


def discounted_filter(rewards, state, gamma):
    """RND's RewardForwardFilter: a discounted sum run FORWARD over time.

    rewards: [T, N]; state: [N], the running value carried between rollouts.
    Returns ([T, N] filtered values, new state). Its running std scales the
    intrinsic reward (Burda et al. 2018, section 2.4).
    """
    out = np.empty_like(np.asarray(rewards, np.float64))
    running = np.asarray(state, np.float64)
    for t in range(out.shape[0]):
        running = running * gamma + rewards[t]
        out[t] = running
    return out, running
