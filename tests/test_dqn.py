"""agent/dqn.py: targets through the replay, dueling heads, epsilon schedules, the cadence
of gradient steps and target syncs, priorities, RND reward mixing, serving (resume: tests/test_resume.py)."""

import math

import numpy as np
import pytest
import tensorflow as tf

from agent import networks
from agent.config import DQNConfig, RNDConfig, RunConfig
from agent.dqn import DQN, SYNC, epsilon, standardized_intrinsic
from utilities import prioritized

OBS = 16    # one-hot states 0..15


def make_dqn(num_envs=1, obs_shape=(OBS,), num_actions=2, **params):
    values = {"buffer_size": 1000, "min_replay": 0, "batch_size": 8, "hidden": [], "learning_rate": 1e-3,
              "train_period": 1, "target_period": 1000, "update_every": 100, **params}
    p = DQNConfig(**values)
    cfg = RunConfig(game="deepsea", algo="ddqn-rnd" if p.rnd else "ddqn", seed=3, total_steps=1000,
                    num_envs=num_envs, params=p).validate()
    return DQN(cfg, obs_shape, "float32", num_actions)


def one_hot(k, n=OBS):
    out = np.zeros((1, n), np.float32)
    out[0, k] = 1.0
    return out


def feed(dqn, rows, first_step=0):
    """rows: (state, action, reward, terminated, truncated, reset_row) of one env; the
    next observation of row t is row t + 1's state (one past the last: state + 1)."""
    step = first_step
    for t, (state, action, reward, term, trunc, reset_row) in enumerate(rows):
        next_state = rows[t + 1][0] if t + 1 < len(rows) else state + 1
        info = {"reset_row": np.array([reset_row]), "episode_end": np.array([term or trunc])}
        dqn.observe(one_hot(state), np.array([action]), step, np.array([reward], np.float32), np.array([term]),
                    np.array([trunc]), info, one_hot(next_state))
        step += dqn.num_envs


def set_linear_q(model, weights):
    """hidden=[]: Q(s) = s @ W, so Q(one_hot(k)) = W[k]."""
    model.get_layer("q_values").set_weights([np.asarray(weights, np.float32), np.zeros(2, np.float32)])


def test_double_dqn_targets_through_the_replay_hand_worked():
    dqn = make_dqn(n_step=3, gamma=0.5)
    online, target = np.zeros((OBS, 2)), np.zeros((OBS, 2))
    online[6], target[6] = [0, 1], [100, -4]       # online picks action 1; the target values it -4 (not max 100)
    online[10], target[10] = [2, 1], [8, 50]       # picks 0 -> 8
    online[11], target[11] = [0, 3], [9, 16]       # picks 1 -> 16
    set_linear_q(dqn.online, online)
    set_linear_q(dqn.target, target)
    feed(dqn, [(0, 0, 1.0, False, False, False), (1, 1, 2.0, False, False, False),
               (2, 0, 4.0, True, False, False),      # terminated
               (3, 0, 0.0, False, False, True),      # auto-reset row: junk
               (4, 1, 8.0, False, False, False), (5, 0, 16.0, False, True, False),   # time-out
               (6, 0, 0.0, False, False, True),      # its next obs (state 6) is the cut episode's last
               (7, 1, 1.0, False, False, False), (8, 0, 1.0, False, False, False),
               (9, 0, 1.0, False, False, False), (10, 0, 1.0, False, False, False),
               (11, 0, 1.0, False, False, False)])
    batch = dqn.replay.gather([0, 1, 2, 4, 5, 7, 8])
    targets = dqn._targets(batch["rewards"], batch["next_obs"], batch["discounts"]).numpy()
    expected = [
        1 + 0.5 * 2 + 0.25 * 4,          # 3 steps, the last terminates: no bootstrap
        2 + 0.5 * 4,                     # terminates within its 3 steps
        4,                               # terminates at once
        8 + 0.5 * 16 + 0.25 * -4,        # time-out after 2 steps: gamma^2 x Q_target(s6, argmax Q_online(s6))
        16 + 0.5 * -4,                   # time-out at once: gamma^1
        1.75 + 0.125 * 8,                # full 3 steps: gamma^3 x Q_target(s10, 0)
        1.75 + 0.125 * 16,               # gamma^3 x Q_target(s11, 1)
    ]
    np.testing.assert_allclose(targets, expected, rtol=1e-6)
    assert not dqn.replay.valid[0, [3, 6]].any()     # reset rows are never sampled


def test_dueling_head_is_value_plus_advantage_minus_mean():
    np.testing.assert_allclose(networks.dueling_aggregate(np.array([[1.0], [-2.0]]), np.array([[1.0, 2.0, 6.0],
                                                                                             [0.0, 0.0, 3.0]])),
                               [[-1.0, 0.0, 4.0], [-3.0, -3.0, 0.0]])
    model = networks.q_network((5,), 3, "float32", dueling=True, hidden=[8])
    parts = tf.keras.Model(model.inputs[0], [model.get_layer("value").output, model.get_layer("advantage").output])
    obs = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    value, adv = (x.numpy() if hasattr(x, "numpy") else x for x in parts(obs))
    np.testing.assert_allclose(model(obs), value + adv - adv.mean(axis=1, keepdims=True), rtol=1e-5, atol=1e-6)


def test_image_q_network_is_seed_001s_marionet_torso():
    model = networks.q_network((4, 84, 84), 2, "uint8", "nature")
    kernels = [tuple(w.shape) for w in model.weights if len(w.shape) > 1]
    # conv 32 8x8/4, 64 4x4/2, 64 3x3/1, Linear(3136, 512), Linear(512, 2).
    assert kernels == [(8, 8, 4, 32), (4, 4, 32, 64), (3, 3, 64, 64), (3136, 512), (512, 2)]
    dueling = networks.q_network((4, 84, 84), 6, "uint8", "nature", dueling=True)
    assert [tuple(w.shape) for w in dueling.weights if len(w.shape) > 1][3:] == [(3136, 512), (3136, 512),
                                                                                 (512, 1), (512, 6)]


def test_epsilon_schedules_hand_worked():
    decay = {"kind": "decay", "start": 1.0, "factor": 0.5, "floor": 0.1}
    assert [epsilon(decay, s) for s in (0, 1, 3, 4, 100)] == [1.0, 0.5, 0.125, 0.1, 0.1]
    seed_001 = {"kind": "decay", "start": 1.0, "factor": 0.99999975, "floor": 0.1}
    assert epsilon(seed_001, 1_000_000) == pytest.approx(math.exp(-0.25), rel=1e-6)
    assert epsilon(seed_001, 9_300_000) == 0.1                 # 0.99999975^9.21M = 0.1
    linear = {"kind": "linear", "start": 1.0, "end": 0.01, "steps": 250_000, "begin": 20_000}
    got = [epsilon(linear, s) for s in (0, 20_000, 145_000, 270_000, 10**7)]
    np.testing.assert_allclose(got, [1.0, 1.0, 0.505, 0.01, 0.01])
    zoo = {"kind": "linear", "start": 1.0, "end": 0.04, "steps": 8_000}
    assert epsilon(zoo, 4_000) == pytest.approx(0.52)
    seed_003 = {"kind": "linear_episodes", "start": 0.5, "end": 0.02, "episodes": 960}
    assert [epsilon(seed_003, 0, n) for n in (0, 480, 960, 5000)] == pytest.approx([0.5, 0.26, 0.02, 0.02])
    # Seed 003 writes it max(0.02, 0.5 - episode / 2000).
    np.testing.assert_allclose([epsilon(seed_003, 0, n) for n in range(3000)],
                               [max(0.02, 0.5 - n / 2000) for n in range(3000)], atol=1e-12)


def random_rows(count, rng, ends=()):
    return [(int(rng.integers(OBS - 1)), int(rng.integers(2)), float(rng.normal()), t in ends, False, False)
            for t in range(count)]


def test_gradient_steps_and_syncs_fall_due_in_order_and_run_in_one_update():
    # Steps: 2 gradient steps every 3 agent steps from step 6, a sync every 10.
    for num_envs in (1, 4):
        dqn = make_dqn(num_envs=num_envs, train_period=3, gradient_steps=2, target_period=10, min_replay=6)
        rng = np.random.default_rng(0)
        obs = rng.normal(size=(num_envs, OBS)).astype(np.float32)
        for step in range(0, 12, num_envs):
            next_obs = rng.normal(size=(num_envs, OBS)).astype(np.float32)
            info = {"reset_row": np.zeros(num_envs, bool), "episode_end": np.zeros(num_envs, bool)}
            flags = np.zeros(num_envs, bool)
            dqn.observe(obs, np.zeros(num_envs, int), step, np.ones(num_envs, np.float32), flags, flags, info,
                        next_obs)
            obs = next_obs
        # Due at 6 and 9 (train), 10 (sync), 12 (train).
        assert dqn.pending == [4, SYNC, 2], num_envs
    log = []
    real_step, real_sync = dqn.gradient_step, dqn.sync_target
    dqn.gradient_step = lambda beta: (log.append("g"), real_step(beta))[1]
    dqn.sync_target = lambda: (log.append("s"), real_sync())[1]
    stats = dqn.update(12)
    assert log == list("ggggsgg") and dqn.pending == []
    assert stats["gradient_steps"] == 6 and int(dqn.gradient_steps.numpy()) == 6 and int(dqn.syncs.numpy()) == 1
    assert np.isfinite(stats["loss"]) and {"td_loss", "q_mean", "epsilon", "replay_fill"} <= set(stats)


def test_per_episode_cadence_of_seed_003():
    # 10 gradient steps after every finished episode, a sync every 2 episodes.
    dqn = make_dqn(unit="episodes", train_period=1, gradient_steps=10, target_period=2)
    rng = np.random.default_rng(1)
    feed(dqn, random_rows(6, rng, ends={2}))
    assert dqn.pending == [10]
    feed(dqn, random_rows(6, rng, ends={1, 4}), first_step=6)
    # Episode 2 ends: sync, then its 10 steps; episode 3: 10 more (merged).
    assert dqn.pending == [10, SYNC, 20] and dqn.episodes == 3


def test_burn_in_reports_an_evaluated_loss_without_learning():
    dqn = make_dqn(min_replay=50, train_period=1)
    feed(dqn, random_rows(20, np.random.default_rng(2)))
    before = [w.copy() for w in dqn.online.get_weights()]
    stats = dqn.update(20)
    assert stats["gradient_steps"] == 0 and np.isfinite(stats["loss"]) and stats["loss"] > 0
    for a, b in zip(before, dqn.online.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_ready_every_update_every_agent_steps_whatever_the_env_count():
    dqn = make_dqn(num_envs=8, update_every=1000)
    assert [s for s in range(8, 4001, 8) if dqn.ready(s)] == [1000, 2000, 3000, 4000]
    dqn = make_dqn(num_envs=3, update_every=1000)
    assert [s for s in range(3, 3001, 3) if dqn.ready(s)] == [1002, 2001, 3000]


def test_priorities_follow_the_td_errors_of_each_gradient_step():
    dqn = make_dqn(prioritized=True, alpha=0.6, priority_eps=1e-6, batch_size=16)
    feed(dqn, random_rows(60, np.random.default_rng(3), ends={20, 41}))
    seen = []
    real = dqn.train_step

    def spy(*args):
        out = real(*args)
        seen.append(out["td_error"].numpy())
        return out

    dqn.train_step = spy
    for _ in range(3):
        g = int(dqn.gradient_steps.numpy())
        batch = dqn.sample(np.random.default_rng([3, g]), 0.4)     # what the step draws (same key)
        # The TD error of the action taken, against the targets checked by hand above, before the step.
        targets = dqn._targets(batch["rewards"], batch["next_obs"], batch["discounts"]).numpy()
        q = dqn.online(batch["obs"]).numpy()[np.arange(16), batch["actions"]]
        dqn.gradient_step(0.4)
        np.testing.assert_allclose(seen[-1], targets - q, rtol=1e-5, atol=1e-6)
        # Last write wins for an index drawn twice.
        last = {i: k for k, i in enumerate(batch["indices"])}
        idx = np.array(list(last))
        expected = prioritized.priority_from_td(seen[-1][list(last.values())], 0.6, 1e-6)
        np.testing.assert_allclose(dqn.replay.tree.get(idx), expected, rtol=1e-6)
    assert not np.allclose(dqn.replay.tree.get(idx), 1.0)


def test_observe_after_an_env_reset_starts_new_episodes():
    dqn = make_dqn()
    feed(dqn, random_rows(5, np.random.default_rng(4)))
    assert not dqn.replay.reset_row[0, 4]
    # The loop reset the env (a new train() call): the next obs acted on is not the last next obs.
    feed(dqn, [(14, 0, 0.0, False, False, False)], first_step=5)
    assert dqn.replay.reset_row[0, 4] and dqn.replay.truncated[0, 3]


def test_rnd_reward_is_seed_003s_mix_of_standardised_intrinsic_and_extrinsic():
    window = np.array([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(standardized_intrinsic(np.array([3.0, 4.0, 10.0, -10.0]), [window.mean(), window.std()], 1.0),
                               [0.5 / np.sqrt(1.25), 1.0, 1.0, -1.0])
    np.testing.assert_array_equal(standardized_intrinsic(np.array([2.0]), [2.0, 0.0], 5.0), [2.0])

    dqn = make_dqn(num_envs=2, rnd=RNDConfig(), ext_coef=0.5, int_coef=2.0, int_window=3, int_clip=5.0)
    rng = np.random.default_rng(5)
    obs = [rng.normal(size=(2, OBS)).astype(np.float32) for _ in range(4)]
    raws, window = [], []
    for t in range(3):
        raw = dqn.rnd.error(obs[t + 1]).numpy().astype(np.float64)    # before the statistics move
        reset_row = np.array([False, t == 1])                          # env 1's second row is a reset row
        window = (window + list(raw[~reset_row]))[-3:]
        info = {"reset_row": reset_row, "episode_end": np.zeros(2, bool)}
        ext = np.array([1.0, -1.0], np.float32)
        dqn.observe(obs[t], np.zeros(2, int), 2 * t, ext, np.zeros(2, bool), np.zeros(2, bool), info, obs[t + 1])
        w = np.array(window)
        intrinsic = np.where(reset_row, 0.0, np.clip((raw - w.mean()) / w.std(), -5, 5) if w.std() else raw)
        np.testing.assert_allclose(dqn.replay.rewards[:, t], 2.0 * intrinsic + 0.5 * ext, rtol=1e-4, atol=1e-6)
        raws.append(raw)
    assert dqn.int_written == 5
    # The input statistics take every next observation at the next update, in one merge.
    assert dqn.rnd.obs_norm.count.numpy() == pytest.approx(0, abs=1e-3)
    frames = np.concatenate(obs[1:])
    dqn.pending = []
    dqn.update(6)
    assert dqn.rnd.obs_norm.count.numpy() == pytest.approx(6, abs=1e-3) and not dqn.new_frames
    np.testing.assert_allclose(dqn.rnd.obs_norm.mean.numpy(), frames.mean(0), rtol=1e-3, atol=1e-4)


def test_the_gradient_clip_covers_the_q_network_alone():
    """SB3's gradient norm clip (the classic presets' max_grad_norm 10) is the Q network's;
    seed 003 trains RND's predictor unclipped. With one joint norm a large predictor
    gradient would shrink the Q network's steps: then the Q network after a few steps would
    depend on the predictor's loss, here multiplied by 1,000."""
    weights = []
    for scale in (1.0, 1000.0):
        dqn = make_dqn(rnd=RNDConfig(), hidden=[16], max_grad_norm=0.1, batch_size=16)
        feed(dqn, random_rows(40, np.random.default_rng(6), ends={19}))
        loss = dqn.rnd.loss
        dqn.rnd.loss = lambda *args, scale=scale: scale * loss(*args)
        for _ in range(3):
            out = dqn.gradient_step(1.0)
        assert out["rnd_loss"] > 0
        weights.append(dqn.online.get_weights())
    for plain, scaled in zip(*weights):
        np.testing.assert_allclose(plain, scaled, rtol=1e-6, atol=1e-7)


def test_rnd_reward_at_sample_time_is_the_current_predictors_hand_worked():
    # int_reward_at "sample": the replay keeps ext_coef x extrinsic; each sampled batch's
    # target adds int_coef x the bonus of the CURRENT predictor, standardised by the window.
    dqn = make_dqn(rnd=RNDConfig(), ext_coef=0.5, int_coef=2.0, int_window=4, int_clip=1.0,
                   int_reward_at="sample", gamma=0.5)
    set_linear_q(dqn.online, np.zeros((OBS, 2)))
    set_linear_q(dqn.target, np.zeros((OBS, 2)))
    feed(dqn, [(0, 0, 1.0, False, False, False), (1, 1, 3.0, False, False, False), (2, 0, 5.0, True, False, False),
               (3, 0, 0.0, False, False, True)])     # the auto-reset row: slot 2's next obs is state 3
    np.testing.assert_allclose(dqn.replay.rewards[0, :3], [0.5, 1.5, 2.5])
    # The window: the collect-time errors of the three transitions' next states (the
    # auto-reset row adds none); no update ran, so the predictor and its input statistics
    # are still those of collect time.
    window = np.array([dqn.rnd.error(one_hot(k)).numpy()[0] for k in (1, 2, 3)], np.float64)
    stats = np.array([window.mean(), window.std()])
    assert dqn.int_written == 3 and stats[1] > 0
    np.testing.assert_allclose(dqn._int_stats(), stats, rtol=1e-6)
    dqn.rnd.predictor.set_weights([w + 0.1 for w in dqn.rnd.predictor.get_weights()])   # it learned since
    batch = dqn.replay.gather([0, 1, 2])
    raw = np.array([dqn.rnd.error(one_hot(k)).numpy()[0] for k in (1, 2, 3)], np.float64)
    assert not np.allclose(raw, window)
    bonus = np.clip((raw - stats[0]) / stats[1], -1.0, 1.0)
    targets = dqn._targets(batch["rewards"], batch["next_obs"], batch["discounts"],
                           stats.astype(np.float32)).numpy()
    np.testing.assert_allclose(targets, [0.5, 1.5, 2.5] + 2.0 * bonus, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="int_reward_at 'sample' needs n_step 1, got n_step 3"):
        make_dqn(rnd=RNDConfig(), int_reward_at="sample", n_step=3)


def test_without_rnd_the_replay_stores_the_scaled_extrinsic_reward():
    # Seed 003's 1/500 score scale holds for its ablation without RND too (--no-rnd).
    dqn = make_dqn(ext_coef=1 / 500)
    feed(dqn, [(0, 1, 250.0, False, False, False), (1, 0, -500.0, True, False, False)])
    np.testing.assert_allclose(dqn.replay.rewards[0, :2], [0.5, -1.0])



def test_serving_plays_argmax_q(tmp_path):
    from agent.export import write_export

    dqn = make_dqn(dueling=True, hidden=[8])
    module, model = dqn.serving()
    write_export(module, model, tmp_path / "export", {"game": "deepsea"})
    loaded = tf.saved_model.load(str(tmp_path / "export"))
    obs = np.random.default_rng(6).normal(size=(5, OBS)).astype(np.float32)
    out = loaded(obs)
    q = dqn.online(obs).numpy()
    np.testing.assert_allclose(out["q_values"], q, rtol=1e-5)
    np.testing.assert_array_equal(out["action"], q.argmax(axis=1))
    np.testing.assert_array_equal(dqn.greedy(obs), q.argmax(axis=1))
