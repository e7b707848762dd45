"""agent/ppo.py: the rollout it fills through the loop's interface, masking, its update."""

import numpy as np

from tests.conftest import make_loop


def collect(loop):
    """One rollout through the interface, as the loop drives it; returns the step count."""
    algorithm, env = loop.algorithm, loop.env
    obs, _ = env.reset()
    step = 0
    while not algorithm.ready(step):
        actions, extras = algorithm.act(obs, step)
        next_obs, reward, terminated, truncated, info = env.step(actions)
        algorithm.observe(obs, actions, extras, reward, terminated, truncated, info, next_obs)
        obs, step = next_obs, step + env.num_envs
    return step


def test_reset_rows_are_masked_and_steps_counted(tmp_path):
    loop = make_loop(tmp_path)
    step = collect(loop)
    b = loop.algorithm.rollout
    # Deep Sea 8: every episode is 8 steps, then one auto-reset row: rows 8, 17, 26, 35.
    assert np.all(~b.valid[[8, 17, 26, 35]]) and b.valid.sum() == (42 - 4) * 8
    assert np.all(b.dones[[7, 16, 25, 34]])
    assert step == 42 * 8
    stats = loop.algorithm.update(step)
    assert loop.algorithm.t == 0 and b.rewards_int.std() > 0
    assert {"loss", "policy_loss", "value_loss", "rnd_loss", "entropy", "approx_kl", "reward_int"} <= set(stats)
    loop.close()


def test_plain_ppo_leaves_the_intrinsic_head_untrained(tmp_path):
    loop = make_loop(tmp_path, algo="ppo")
    algorithm = loop.algorithm
    before = {v.path: v.numpy().copy() for v in algorithm.policy.trainable_variables}
    algorithm.update(collect(loop))
    after = {v.path: v.numpy() for v in algorithm.policy.trainable_variables}
    assert algorithm.rnd is None
    for path in before:
        changed = not np.array_equal(before[path], after[path])
        assert changed == (not path.startswith("value_int/")), path
    loop.close()


def test_the_kl_stop_skips_the_minibatch_past_the_limit_and_ends_the_update(tmp_path):
    # Seeds 000 and 002 (SB3's rule): approx KL is measured before a minibatch's step; past
    # 1.5 x target_kl that step is not taken and the update ends.
    loop = make_loop(tmp_path, algo="ppo")
    algorithm = loop.algorithm
    step = collect(loop)
    algorithm.p.target_kl = 1e-9     # the first minibatch sees the rollout's own policy: KL 0
    before = int(algorithm.optimizer.iterations.numpy())
    stats = algorithm.update(step)
    # One step taken; the second minibatch, a step away from the rollout's policy, passes.
    assert stats["gradient_steps"] == 1 and int(algorithm.optimizer.iterations.numpy()) == before + 1
    assert stats["approx_kl"] > 1.5e-9 / 2
    # The step itself: a minibatch past the limit changes no weight and no optimizer slot.
    weights = [v.numpy().copy() for v in algorithm.policy.weights]
    mb = next(algorithm.rollout.minibatches(algorithm.p.num_minibatches, np.random.default_rng(0)))
    out = algorithm.train_step(mb, np.array([1, 2], np.int64), np.float32(0.0))
    assert float(out["approx_kl"]) > 0 and int(algorithm.optimizer.iterations.numpy()) == before + 1
    for old, new in zip(weights, algorithm.policy.weights):
        np.testing.assert_array_equal(old, new.numpy())
    loop.close()


def test_the_loss_is_policy_minus_entropy_plus_both_value_losses_plus_rnd(tmp_path):
    # PPO+RND's objective (Burda et al. 2018): the clipped surrogate, minus ent_coef x entropy,
    # plus vf_coef x (extrinsic + intrinsic value losses), plus the predictor's loss. Coefficients
    # far from the preset's, so that each term shows.
    loop = make_loop(tmp_path)                     # ppo-rnd on Deep Sea 8, value loss 0.5 x squared error
    algorithm = loop.algorithm
    collect(loop)
    b = algorithm.rollout
    b.rewards_int[:] = np.random.default_rng(0).uniform(0, 1, b.rewards_int.shape)
    b.compute_advantages(np.zeros(8), np.ones(8), 0.99, 0.9, 0.95, 2.0, 1.0)
    mb = next(b.minibatches(1, np.random.default_rng(0)))
    algorithm.p.ent_coef, algorithm.p.vf_coef = 0.5, 3.0
    _, v_ext, v_int = (t.numpy() for t in algorithm.policy(mb["obs"]))
    valid = mb["valid"]
    value_losses = [0.5 * np.mean((v[valid, 0] - mb[key][valid]) ** 2)
                    for v, key in ((v_ext, "returns_ext"), (v_int, "returns_int"))]
    out = {k: float(v) for k, v in algorithm.train_step(mb, np.array([1, 2], np.int64), np.inf).items()}
    assert min(value_losses) > 1e-3 and out["entropy"] > 0.1 and out["rnd_loss"] > 0
    np.testing.assert_allclose(out["value_loss"], sum(value_losses), rtol=1e-5)
    np.testing.assert_allclose(out["loss"], out["policy_loss"] - 0.5 * out["entropy"] + 3.0 * sum(value_losses)
                               + out["rnd_loss"], rtol=1e-5)
    loop.close()


def test_the_gradient_clip_covers_the_policy_alone(tmp_path):
    """Seeds 000 and 004 clip the policy's gradients and train RND's predictor unclipped. With
    one joint norm a large predictor gradient would shrink the policy's steps: then the policy
    after a few steps would depend on the predictor's loss, here multiplied by 1,000."""
    policies = []
    for scale in (1.0, 1000.0):
        loop = make_loop(tmp_path / str(scale))        # ppo-rnd on Deep Sea 8, max_grad_norm 0.5
        algorithm = loop.algorithm
        collect(loop)
        algorithm.rollout.compute_advantages(np.zeros(8), np.ones(8), 0.99, 0.9, 0.95, 2.0, 1.0)
        loss = algorithm.rnd.loss
        algorithm.rnd.loss = lambda *args: scale * loss(*args)
        for mb in list(algorithm.rollout.minibatches(4, np.random.default_rng(0)))[:3]:
            out = algorithm.train_step(mb, np.array([1, 2], np.int64), np.inf)
        assert float(out["rnd_loss"]) > 0
        policies.append([v.numpy() for v in algorithm.policy.weights])
        loop.close()
    for plain, scaled in zip(*policies):
        np.testing.assert_allclose(plain, scaled, rtol=1e-6, atol=1e-7)
