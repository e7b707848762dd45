"""PPO loss terms as pure functions of tensors (Schulman et al. 2017).

Every mean is over the valid rows only (mask = 1): EnvPool's auto-reset rows
carry an ignored action and must not pull on the policy or the values.
"""

import tensorflow as tf


def masked_mean(x, mask):
    return tf.reduce_sum(x * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)


def normalize_advantages(adv, mask):
    mean = masked_mean(adv, mask)
    std = tf.sqrt(masked_mean(tf.square(adv - mean), mask))
    return (adv - mean) / (std + 1e-8)


def policy_terms(logits, actions, old_logp, advantages, mask, clip_range, kl_logp=None):
    """Clipped surrogate loss, entropy, approx KL and clip fraction (masked means).

    kl_logp: the log-probs the KL is measured against, where they are not old_logp's
    (PTR-PPO's replayed rows: the ratio is pi / b, the KL is against the round's frozen
    network, seed 002's reference)."""
    logp_all = tf.nn.log_softmax(logits)
    logp = tf.gather(logp_all, actions, batch_dims=1)
    log_ratio = logp - old_logp
    ratio = tf.exp(log_ratio)
    kl_log_ratio = log_ratio if kl_logp is None else logp - kl_logp
    surrogate = tf.minimum(ratio * advantages,
                           tf.clip_by_value(ratio, 1.0 - clip_range, 1.0 + clip_range) * advantages)
    entropy = -tf.reduce_sum(tf.exp(logp_all) * logp_all, axis=-1)
    return {
        "policy_loss": -masked_mean(surrogate, mask),
        "entropy": masked_mean(entropy, mask),
        # The low-variance k3 estimator of KL(old || new) (Schulman, "Approximating KL"); old is the
        # behaviour policy, or with kl_logp the network frozen for the round (PTR-PPO's replayed rows).
        "approx_kl": masked_mean(tf.exp(kl_log_ratio) - 1.0 - kl_log_ratio, mask),
        "clip_fraction": masked_mean(tf.cast(tf.abs(ratio - 1.0) > clip_range, tf.float32), mask),
    }


def huber(err):
    """Smooth L1 with delta 1 (PyTorch's SmoothL1Loss): 0.5 d^2 if |d| <= 1 else |d| - 0.5."""
    abs_err = tf.abs(err)
    return tf.where(abs_err <= 1.0, 0.5 * tf.square(err), abs_err - 0.5)


def value_loss(pred, target, mask, kind="mse", weights=None):
    """0.5 * squared error, or the Huber loss (delta 1) that the Mario presets use; each row
    scaled by `weights` where given (PTR-PPO's rho_marg, seed 002's reference)."""
    err = pred - target
    per_row = huber(err) if kind == "huber" else 0.5 * tf.square(err)
    if weights is not None:
        per_row = per_row * weights
    return masked_mean(per_row, mask)


# --- value-based (agent/dqn.py) ----------------------------------------------


def double_q_targets(rewards, discounts, q_next_online, q_next_target):
    """Double DQN targets (van Hasselt et al. 2016): the online network picks the next
    action, the target network values it: r + discount * Q_target(s', argmax_a Q_online(s', a)).

    `rewards` are (n-step) returns and `discounts` gamma^m for a return of m steps, or 0
    where the episode terminated (utilities/replay.py computes both; a time-out
    bootstraps). Gradients do not flow into the targets."""
    best = tf.argmax(q_next_online, axis=-1, output_type=tf.int32)
    next_value = tf.gather(q_next_target, best, batch_dims=1)
    return tf.stop_gradient(rewards + discounts * next_value)


def td_loss(pred, target, kind="huber", weights=None):
    """Mean TD loss over a batch, each row scaled by `weights` (prioritised replay's
    importance weights; None: 1). "huber": Smooth L1 (seed 001). "mse": d^2 (PyTorch's
    MSELoss, CleanRL and Dopamine's JAX DQN), without PPO's factor 0.5."""
    err = target - pred
    per_row = huber(err) if kind == "huber" else tf.square(err)
    if weights is not None:
        per_row = per_row * weights
    return tf.reduce_mean(per_row)
