"""agent/ptr_ppo.py and agent/trajectory_weights.py: the trace weights rho and rho_marg by
hand, the replayed losses by hand, the off-policy recomputation against a naive numpy
reference, and one real round on Deep Sea."""

import numpy as np
import pytest
import tensorflow as tf

from agent import losses
from agent.ptr_ppo import rows as rows_of
from agent.trajectory_weights import marginal_weights, trace_weights
from tests.conftest import make_loop


def test_rho_is_the_forward_product_within_each_episode_segment():
    # One trajectory, T = 5, time-major [T, 1]; the episode ends at t = 1.
    ratios = np.array([[0.5], [2.0], [0.9], [1.2], [3.0]])
    dones = np.array([[False], [True], [False], [False], [False]])
    all_valid = np.ones_like(dones)
    rho = trace_weights(ratios, dones, all_valid)
    # t=4: 3.0 (window end); t=3: 1.2 x 3.0; t=2: 0.9 x 3.6; t=1: 2.0 (its episode ends);
    # t=0: 0.5 x 2.0.
    np.testing.assert_allclose(rho[:, 0], [1.0, 2.0, 3.24, 3.6, 3.0])
    # A row that is no transition (an auto-reset row) counts as ratio 1.
    valid = np.array([[True], [True], [False], [True], [True]])
    np.testing.assert_allclose(trace_weights(ratios, dones, valid)[:, 0], [1.0, 2.0, 3.6, 3.6, 3.0])
    # The weight is clamped at 1e15, the running product only at 1e100, as the reference does:
    # a tiny ratio after a long run of large ones still leaves a huge weight (1e-16 x 1e100);
    # columns are independent.
    ratios = np.full((40, 3), [1e3, 0.5, 1e3])
    ratios[0, 2] = 1e-16
    huge = trace_weights(ratios, np.zeros((40, 3), bool), np.ones((40, 3), bool))
    assert huge[0, 0] == 1e15 and huge[0, 1] == 0.5 ** 40 and huge[0, 2] == 1e15 and huge[1, 2] == 1e15


def test_rho_marg_by_hand():
    rho = np.array([0.0, 0.5, 0.8, 1.0, 2.0, 1e15])
    # eps 0.2: rho up to 0.8; above, 0.8 + (rho - 0.8) / rho, towards 1.8.
    np.testing.assert_allclose(marginal_weights(rho, 0.2), [0.0, 0.5, 0.8, 1.0, 1.4, 1.8])
    np.testing.assert_allclose(marginal_weights(np.array([4.0]), 0.5), [0.5 + 3.5 / 4.0])


def test_replayed_losses_by_hand():
    # Two rows, two actions. Ratio pi / b, advantage already rho_marg x A, KL against the
    # frozen network's log-probs, value loss weighted by rho_marg.
    logits = tf.math.log(tf.constant([[0.5, 0.5], [0.2, 0.8]]))
    actions = tf.constant([0, 1])
    b_logp = tf.math.log(tf.constant([0.25, 0.8]))           # ratios 2.0 and 1.0
    frozen_logp = tf.math.log(tf.constant([0.5, 0.4]))       # pi / pi_old: 1.0 and 2.0
    adv = tf.constant([1.0, -2.0])
    mask = tf.constant([1.0, 1.0])
    out = losses.policy_terms(logits, actions, b_logp, adv, mask, 0.2, kl_logp=frozen_logp)
    # min(2 x 1, 1.2 x 1) = 1.2 and min(1 x -2, 1 x -2) = -2: loss -(1.2 - 2) / 2 = 0.4.
    np.testing.assert_allclose(float(out["policy_loss"]), 0.4, rtol=1e-6)
    # k3 against the frozen network: (1 - 1 - 0) and (2 - 1 - ln 2), averaged.
    np.testing.assert_allclose(float(out["approx_kl"]), (1 - np.log(2)) / 2, rtol=1e-5)
    assert float(out["clip_fraction"]) == 0.5          # clipping follows pi / b
    # Huber rows 0.5 x 0.5^2 = 0.125 and 2 - 0.5 = 1.5, weighted 0.4 and 1.8: (0.05 + 2.7) / 2.
    value = losses.value_loss(tf.constant([1.0, 0.0]), tf.constant([1.5, 2.0]), mask, "huber",
                              tf.constant([0.4, 1.8]))
    np.testing.assert_allclose(float(value), 1.375, rtol=1e-6)


def naive_gae(rewards, values, last, terminated, dones, gamma, lam):
    """Per trajectory and step, as written in Schulman et al. 2016 (no vectorisation)."""
    steps = len(rewards)
    adv = np.zeros(steps)
    for t in range(steps):
        total, discount = 0.0, 1.0
        for k in range(t, steps):
            next_value = values[k + 1] if k + 1 < steps else last
            delta = rewards[k] + gamma * next_value * (not terminated[k]) - values[k]
            total += discount * delta
            if dones[k]:
                break
            discount *= gamma * lam
        adv[t] = total
    return adv, adv + values


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """ptr-ppo on Deep Sea 8: 3 rounds of 10 (the off-policy passes start at round 2; the
    learning rate, annealed over the 10, stays positive)."""
    loop = make_loop(tmp_path_factory.mktemp("ptr"), algo="ptr-ppo", steps=10 * 42 * 8, seed=2)
    loop.train(progress=False, max_updates=3)
    yield loop
    loop.close()


def test_off_policy_recomputation_matches_a_naive_reference(trained):
    algo = trained.algorithm
    p = algo.p
    slots = np.array([0, 5, 13, 5])
    flat, advantages, rho_marg = algo.replayed_batch(slots)
    data = algo.memory.gather(slots)
    steps = p.rollout_steps
    for i, slot in enumerate(slots):
        obs = data["obs"][i]                               # [T + 1, obs]
        logits, values, _ = (x.numpy() for x in algo.frozen(obs))
        logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        values = values[:, 0]
        adv, ret = naive_gae(data["rewards"][i], values[:steps], values[steps], data["terminated"][i],
                             data["dones"][i], p.gamma, p.gae_lambda)
        old = logp[np.arange(steps), data["actions"][i]]
        ratio = np.where(data["valid"][i], np.exp(old - data["behaviour_logp"][i]), 1.0)
        rho = np.ones(steps + 1)
        for t in reversed(range(steps)):
            rho[t] = ratio[t] * (1.0 if data["dones"][i][t] else rho[t + 1])
        marg = np.where(rho[:steps] <= 0.8, rho[:steps], 0.8 + (rho[:steps] - 0.8) / rho[:steps])
        rows = slice(i * steps, (i + 1) * steps)
        np.testing.assert_allclose(advantages[:, i], adv, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(flat["returns_ext"][rows], ret, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(flat["kl_logp"][rows], old, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(flat["weights"][rows], marg, rtol=1e-4)
        np.testing.assert_allclose(rho_marg[:, i], marg, rtol=1e-4)
        np.testing.assert_array_equal(flat["logp"][rows], data["behaviour_logp"][i])
        np.testing.assert_array_equal(rows_of(flat, np.arange(i * steps, (i + 1) * steps), steps)["obs"],
                                      data["obs"][i][:steps])
    # A shuffled minibatch pairs each row's observation with its own columns.
    idx = np.array([3 * steps + 2, 1, 2 * steps + steps - 1, steps])
    mb = rows_of(flat, idx, steps)
    for j, (i, t) in enumerate([(3, 2), (0, 1), (2, steps - 1), (1, 0)]):
        np.testing.assert_array_equal(mb["obs"][j], data["obs"][i][t])
        assert mb["actions"][j] == data["actions"][i][t] and mb["logp"][j] == data["behaviour_logp"][i][t]


def test_replay_starts_once_the_memory_holds_off_policy_start_rounds(trained):
    from utilities.events import read_scalars

    assert trained.algorithm.p.off_policy_start == 2
    trained.writer.flush()
    off = read_scalars(trained.folder.path)["ptr/off_gradient_steps"]
    # Round 1 pushes the first round (memory < 2 rounds): no replay; rounds 2 and 3 replay.
    assert [value > 0 for _, value in off] == [False, True, True], off


def test_a_round_pushes_replays_and_rewrites_priorities(trained):
    algo = trained.algorithm
    n = algo.cfg.num_envs
    assert len(algo.memory) == 3 * n
    drawn = []
    real_sample = algo.memory.sample
    algo.memory.sample = lambda size, rng: drawn.append(real_sample(size, rng)) or drawn[-1]
    step = 4 * algo.batch_size
    for _ in range(algo.p.rollout_steps):               # one more round of real data
        obs = algo.last_obs
        actions, extras = algo.act(obs, step)
        next_obs, reward, terminated, truncated, info = trained.env.step(actions)
        algo.observe(obs, actions, extras, reward, terminated, truncated, info, next_obs)
    try:
        stats = algo.update(step)
    finally:
        del algo.memory.sample
    assert len(algo.memory) == 4 * n and stats["memory_fill"] == 4 * n / algo.p.memory_size
    assert len(drawn) == algo.p.off_epochs and all(len(d) == n for d in drawn)
    on = stats["gradient_steps"]
    assert on == algo.p.epochs * algo.p.num_minibatches             # no target_kl in this preset
    assert stats["off_policy_share"] == stats["off_gradient_steps"] / (on + stats["off_gradient_steps"]) > 0
    # Every trajectory drawn or pushed this round now has the priority of its advantages
    # under the round's frozen network (which also acted this round).
    touched = np.unique(np.concatenate([*drawn, np.arange(3 * n, 4 * n)]))
    _, advantages, _ = algo.replayed_batch(touched)
    expected = algo.memory.priorities(advantages.T, algo.memory.valid[touched])
    np.testing.assert_allclose(algo.memory.tree.get(touched), expected, rtol=1e-4)
    # The rho_marg shares logged are those of the drawn trajectories' real rows (the frozen
    # network, hence rho, is the round's: recomputing after the round gives the same).
    rho = np.concatenate([algo.replayed_batch(d)[2][algo.memory.valid[d].T] for d in drawn])
    np.testing.assert_allclose([stats["rho_marg_mean"], stats["rho_marg_low"], stats["rho_marg_high"]],
                               [rho.mean(), (rho < 0.05).mean(), (rho > 1.5).mean()], rtol=1e-5)


def test_a_replayed_pass_stops_once_the_kl_to_the_frozen_network_passes_the_target(trained):
    algo = trained.algorithm
    p = algo.p
    saved, before = p.target_kl, int(algo.optimizer.iterations.numpy())
    try:
        p.target_kl = 1e-12        # any gradient step moves the policy further than this
        stats = algo.off_policy(update=7)
    finally:
        p.target_kl = saved
    # The policy has moved since the round froze its copy, so each of the K_off passes stops
    # at its first minibatch, whose step is not taken (the reference, A.2 step 5).
    assert stats["off_gradient_steps"] == 0 and stats["off_approx_kl"] > 1.5e-12
    assert int(algo.optimizer.iterations.numpy()) == before
