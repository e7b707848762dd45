"""The loop on a fast real env (Deep Sea): masking, determinism, NaN stop."""

import numpy as np
import pytest
import tensorflow as tf

import envs
from agent.config import TrainConfig
from agent.trainer import NonFiniteLoss, Trainer


def make_trainer(run_dir, steps=1280, algo="ppo-rnd", seed=3):
    cfg = TrainConfig.from_preset(envs.preset("deepsea", algo), game="deepsea", algo=algo,
                                  seed=seed, total_steps=steps)
    env = envs.make("deepsea", cfg.num_envs, seed, size=8)
    return Trainer(cfg, env, run_dir, checkpoint_every=1)


def test_reset_rows_are_masked_and_steps_counted(tmp_path):
    trainer = make_trainer(tmp_path)
    trainer.obs, _ = trainer.env.reset()
    trainer.collect_rollout()
    b = trainer.batch
    # Deep Sea 8: every episode is 8 steps, then one auto-reset row: rows 8, 17, 26, 35.
    assert np.all(~b.valid[[8, 17, 26, 35]]) and b.valid.sum() == (42 - 4) * 8
    assert np.all(b.dones[[7, 16, 25, 34]])
    assert int(trainer.step.numpy()) == 42 * 8
    assert b.rewards_int.std() > 0
    trainer.close()


def test_same_seed_same_weights(tmp_path):
    weights = []
    for name in ("a", "b"):
        trainer = make_trainer(tmp_path / name)
        trainer.train(progress=False)
        weights.append(trainer.agent.policy.get_weights() + trainer.agent.rnd_predictor.get_weights())
        trainer.close()
    for w1, w2 in zip(*weights):
        np.testing.assert_allclose(w1, w2, rtol=1e-5, atol=1e-6)


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    trainer = make_trainer(tmp_path, steps=42 * 8 * 4)
    real_step = trainer.agent.train_step
    calls = {"n": 0}

    def poisoned(mb, seed):
        # Updates 1 and 2 are fine; update 3 produces a NaN loss.
        calls["n"] += 1
        out = real_step(mb, seed)
        if calls["n"] > 2 * trainer.cfg.epochs * trainer.cfg.num_minibatches:
            out = dict(out, loss=tf.constant(np.nan))
        return out

    trainer.agent.train_step = poisoned
    with pytest.raises(NonFiniteLoss, match="update 3"):
        trainer.train(progress=False)
    assert trainer.checkpoints.latest.endswith("ckpt-2")
    trainer.close()
