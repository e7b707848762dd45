"""PPO loss terms against a plain numpy computation."""

import numpy as np
import tensorflow as tf

from agent import losses


def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def test_policy_terms_match_numpy():
    rng = np.random.default_rng(0)
    n, a, clip = 32, 5, 0.2
    logits = rng.normal(size=(n, a)).astype(np.float32)
    actions = rng.integers(a, size=n).astype(np.int32)
    old_logp = (_log_softmax(logits)[np.arange(n), actions] + rng.normal(0, 0.3, n)).astype(np.float32)
    adv = rng.normal(size=n).astype(np.float32)
    mask = (rng.random(n) > 0.25).astype(np.float32)

    out = losses.policy_terms(tf.constant(logits), tf.constant(actions), tf.constant(old_logp),
                              tf.constant(adv), tf.constant(mask), clip)

    logp_all = _log_softmax(logits.astype(np.float64))
    ratio = np.exp(logp_all[np.arange(n), actions] - old_logp)
    surr = np.minimum(ratio * adv, np.clip(ratio, 1 - clip, 1 + clip) * adv)
    m = mask.astype(bool)
    np.testing.assert_allclose(out["policy_loss"], -surr[m].mean(), rtol=1e-5)
    entropy = -(np.exp(logp_all) * logp_all).sum(-1)
    np.testing.assert_allclose(out["entropy"], entropy[m].mean(), rtol=1e-5)
    np.testing.assert_allclose(out["approx_kl"], (ratio - 1 - np.log(ratio))[m].mean(), rtol=1e-4)
    np.testing.assert_allclose(out["clip_fraction"], (np.abs(ratio - 1) > clip)[m].mean(), rtol=1e-6)


def test_value_losses_and_masking():
    pred = np.array([0.0, 1.0, 5.0, 100.0], np.float32)
    target = np.array([0.5, -1.0, 5.0, 0.0], np.float32)
    mask = np.array([1, 1, 1, 0], np.float32)       # the last row is an auto-reset row
    mse = losses.value_loss(pred, target, mask, "mse")
    np.testing.assert_allclose(mse, (0.5 * 0.25 + 0.5 * 4 + 0) / 3, rtol=1e-6)
    huber = losses.value_loss(pred, target, mask, "huber")
    np.testing.assert_allclose(huber, (0.5 * 0.25 + (2 - 0.5) + 0) / 3, rtol=1e-6)


def test_advantage_normalisation_ignores_masked_rows():
    adv = np.array([1.0, 2.0, 3.0, 1000.0], np.float32)
    mask = np.array([1, 1, 1, 0], np.float32)
    out = losses.normalize_advantages(adv, mask).numpy()
    np.testing.assert_allclose(out[:3], (adv[:3] - 2.0) / adv[:3].std(), rtol=1e-5)


def test_double_q_targets_pick_with_online_and_value_with_target_hand_worked():
    rewards = np.array([1.0, 0.5, 2.0], np.float32)
    discounts = np.array([0.9, 0.0, 0.729], np.float32)     # gamma; terminated; gamma^3 (3-step return)
    q_next_online = np.array([[1.0, 3.0], [5.0, 2.0], [0.0, -1.0]], np.float32)    # argmax 1, 0, 0
    q_next_target = np.array([[10.0, 20.0], [30.0, 40.0], [7.0, 8.0]], np.float32)  # (the max would be 20, 40, 8)
    out = losses.double_q_targets(rewards, discounts, q_next_online, q_next_target).numpy()
    np.testing.assert_allclose(out, [1 + 0.9 * 20, 0.5, 2 + 0.729 * 7], rtol=1e-6)


def test_td_losses_huber_and_mse_with_importance_weights():
    pred = np.array([0.0, 1.0, 5.0, 0.0], np.float32)
    target = np.array([0.5, -1.0, 5.0, 3.0], np.float32)
    weights = np.array([1.0, 1.0, 1.0, 0.5], np.float32)
    # Huber (Smooth L1, delta 1): 0.125, 2 - 0.5, 0, (3 - 0.5) x 0.5.
    huber = losses.td_loss(pred, target, "huber", weights)
    np.testing.assert_allclose(huber, (0.125 + 1.5 + 0 + 1.25) / 4, rtol=1e-6)
    # MSE: d^2, no factor 0.5 (PyTorch's MSELoss, CleanRL, Dopamine's JAX DQN).
    mse = losses.td_loss(pred, target, "mse", weights)
    np.testing.assert_allclose(mse, (0.25 + 4 + 0 + 4.5) / 4, rtol=1e-6)
    # Small errors: Huber is half the squared error; without weights every row counts 1.
    np.testing.assert_allclose(losses.td_loss(pred[:1], target[:1], "huber"), 0.5 * losses.td_loss(
        pred[:1], target[:1], "mse"), rtol=1e-6)
