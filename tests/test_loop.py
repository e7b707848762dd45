"""agent/loop.py: the loop on a scripted env and algorithm (cadence, checkpointed window,
NaN stop, give-up after resume, summaries kept on resume), and on every registered
algorithm (determinism, NaN stop)."""

import os
import signal

import gymnasium
import numpy as np
import pytest
import tensorflow as tf

from agent.config import ALGORITHMS, RunConfig
from agent.loop import Loop, NonFiniteLoss
from tests.conftest import assert_same_checkpoints, checkpoint_tensors, make_loop
from utilities.events import read_scalars
from utilities.run_folder import RunFolder


class ScriptedEnv:
    """N envs whose episodes all end every `every` steps with return `ret` (never if
    every is None); 8x8 one-frame image observations holding the step count."""

    def __init__(self, num_envs=2, every=3, ret=5.0):
        self.num_envs, self.every, self.ret, self.t = num_envs, every, ret, 0
        self.single_observation_space = gymnasium.spaces.Box(0, 255, (1, 8, 8), np.uint8)
        self.single_action_space = gymnasium.spaces.Discrete(2)

    def _obs(self):
        return np.full((self.num_envs, 1, 8, 8), self.t % 256, np.uint8)

    def reset(self):
        return self._obs(), {}

    def step(self, actions):
        self.t += 1
        end = np.full(self.num_envs, self.every is not None and self.t % self.every == 0)
        zeros = np.zeros(self.num_envs, bool)
        info = {"reset_row": zeros, "episode_end": end, "episode_return": np.where(end, self.ret, 0.0),
                "episode_length": np.where(end, self.every or 0, 0)}
        return self._obs(), np.ones(self.num_envs, np.float32), end, zeros, info

    def close(self):
        pass


class ScriptedAlgorithm:
    """Ready every `period` agent steps; its update adds 1 to a weight and reports
    `losses[k]` at update k (1.0 past the list; a dict is reported as it is)."""

    warmup_steps = 0

    def __init__(self, period=4, losses=()):
        self.period, self.losses = period, list(losses)
        self.weight = tf.Variable(0.0)
        self.observed = 0

    def act(self, obs, step):
        return np.zeros(len(obs), int), None

    def observe(self, obs, actions, extras, reward, terminated, truncated, info, next_obs):
        self.observed += len(obs)

    def ready(self, step):
        return step % self.period == 0

    def update(self, step):
        k = int(self.weight.numpy())
        self.weight.assign_add(1.0)
        loss = self.losses[k] if k < len(self.losses) else 1.0
        return loss if isinstance(loss, dict) else {"loss": loss}

    def greedy(self, obs):
        return np.zeros(len(obs), int)

    def trackables(self):
        return {"weight": self.weight}


def scripted_loop(run_dir, steps=40, env=None, algorithm=None, **kwargs):
    cfg = RunConfig(game="scripted", algo="ppo", total_steps=steps, num_envs=2)
    return Loop(cfg, algorithm or ScriptedAlgorithm(), env or ScriptedEnv(), RunFolder(run_dir), **kwargs)


def test_updates_when_ready_stops_at_the_budget_and_checkpoints(tmp_path):
    loop = scripted_loop(tmp_path, steps=40, checkpoint_every=3)
    summary = loop.train(progress=False)
    # 2 envs, ready every 4 agent steps: 10 updates reach 40 steps.
    assert summary["steps"] == 40 and summary["updates"] == 10 and loop.algorithm.observed == 40
    assert loop.checkpoints.latest.endswith("ckpt-10")
    # 20 batched steps; both envs end an episode every 3 of them: 6 episodes each.
    assert summary["episodes"] == 2 * (20 // 3) and summary["mean_recent_return"] == 5.0
    assert [s for s, _ in read_scalars(tmp_path)["loss/total"]] == list(range(4, 44, 4))
    loop.close()


def test_the_recent_window_comes_back_from_the_checkpoint(tmp_path):
    first = scripted_loop(tmp_path, steps=400)
    first.train(progress=False, max_updates=3)
    first.close()
    # Resumed with an env whose episodes never end: only the checkpoint can hold returns.
    again = scripted_loop(tmp_path, steps=400, env=ScriptedEnv(every=None))
    again.restore()
    assert again.state.mean_recent_return == 5.0
    # Seed 004's give-up rule right after a resume judges the restored window (5 > 1).
    summary = again.train(progress=False, max_updates=2, give_up=(4, 1.0))
    assert not summary["gave_up"] and summary["updates"] == 5
    again.close()


def test_give_up_on_a_flat_curve(tmp_path):
    loop = scripted_loop(tmp_path, steps=400, env=ScriptedEnv(ret=0.0))
    summary = loop.train(progress=False, give_up=(2, 0.0))
    assert summary["gave_up"] and summary["updates"] == 2
    loop.close()


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    loop = scripted_loop(tmp_path, algorithm=ScriptedAlgorithm(losses=[1.0, 1.0, np.nan]), checkpoint_every=1)
    with pytest.raises(NonFiniteLoss, match="update 3"):
        loop.train(progress=False)
    assert loop.checkpoints.latest.endswith("ckpt-2")
    loop.close()


def test_a_non_finite_loss_of_any_phase_stops_the_run(tmp_path):
    # PTR-PPO reports its replayed passes' loss apart from the on-policy one.
    losses = [1.0, {"loss": 1.0, "off_loss": np.inf}]
    loop = scripted_loop(tmp_path, algorithm=ScriptedAlgorithm(losses=losses), checkpoint_every=1)
    with pytest.raises(NonFiniteLoss, match=r"non-finite off_loss \(inf\) at update 2"):
        loop.train(progress=False)
    assert loop.checkpoints.latest.endswith("ckpt-1")
    loop.close()


def test_weights_gone_non_finite_are_never_saved(tmp_path):
    # A finite loss can follow an infinite gradient: the check before each save stops the run
    # and writes nothing of checkpoint 4.
    algorithm = ScriptedAlgorithm()
    algorithm.bias = tf.Variable([0.0, 0.0])
    counted = algorithm.update

    def update(step):
        out = counted(step)
        if algorithm.weight.numpy() == 3.0:
            algorithm.bias.assign([0.0, np.inf])
        return out

    algorithm.update = update
    algorithm.trackables = lambda: {"weight": algorithm.weight, "bias": algorithm.bias}
    loop = scripted_loop(tmp_path, algorithm=algorithm, checkpoint_every=2)
    with pytest.raises(NonFiniteLoss, match=r"non-finite values in bias at update 4"):
        loop.train(progress=False)
    assert loop.checkpoints.latest.endswith("ckpt-2")
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("ckpt-4*")) == []
    loop.close()


@pytest.mark.parametrize("checkpoint_every, saved", [(1, [1, 2, 3]), (2, [2, 3]), (5, [3])])
def test_each_checkpoint_is_written_once_with_its_summaries_on_disk(tmp_path, checkpoint_every, saved):
    # The closing save after a periodic one would rewrite checkpoint N, side files and all,
    # while the state file names it; and a checkpoint's summaries must not wait in a buffer.
    written, on_disk = [], []
    loop = scripted_loop(tmp_path, steps=400, checkpoint_every=checkpoint_every,
                         after_save=lambda path, state: on_disk.append(
                             [s for s, _ in read_scalars(tmp_path)["loss/total"]]))
    save = loop.checkpoints.save
    loop.checkpoints.save = lambda number: written.append(number) or save(number)
    loop.train(progress=False, max_updates=3)
    assert written == saved
    # Each report sees every update's summary up to its checkpoint (4 agent steps an update).
    assert on_disk[-1] == [4, 8, 12] and all(steps == list(range(4, 4 * n + 1, 4))
                                            for steps, n in zip(on_disk, saved))
    loop.close()


def test_a_resumed_run_keeps_every_summary_up_to_its_checkpoint(tmp_path):
    def test(act, rate):   # a scripted greedy test: 5 frames, better each time
        test.calls += 1
        return {"return": float(test.calls), "length": 5, "frames": [np.full((8, 8), 9 * i, np.uint8) for i in range(5)]}
    test.calls = 0
    loop = scripted_loop(tmp_path, steps=400, checkpoint_every=2, test=test, test_every=1)
    final_save = loop.save
    loop.save = lambda: None if int(loop.state.updates.numpy()) == 3 else final_save()   # "killed" after update 3
    loop.train(progress=False, max_updates=3)
    loop.close()
    assert RunFolder(tmp_path).best_video.stat().st_size > 1000
    resumed = scripted_loop(tmp_path, steps=400, checkpoint_every=2, test=test, test_every=1)
    resumed.restore()
    resumed.train(progress=False, max_updates=1)
    resumed.close()
    from tensorboard.backend.event_processing import event_accumulator
    acc = event_accumulator.EventAccumulator(str(tmp_path), size_guidance={event_accumulator.TENSORS: 0})
    acc.Reload()
    # Animations of updates 1 and 2 (steps 4, 8) survive the purge; update 3's (step 12)
    # went with the lost update, and the resumed update 3 wrote its own.
    assert [e.step for e in acc.Tensors("test/best_episode")] == [4, 8, 12]
    assert [s for s, _ in read_scalars(tmp_path)["test/return"]] == [4, 8, 12]


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_same_seed_same_weights(tmp_path, algo):
    for name, seed in (("a", 3), ("b", 3), ("other", 4)):
        loop = make_loop(tmp_path / name, algo=algo, steps=2 * 42 * 8, seed=seed)
        loop.train(progress=False)
        loop.close()
    same = checkpoint_tensors(tmp_path / "a")
    assert_same_checkpoints(same, checkpoint_tensors(tmp_path / "b"))
    # The seed is used: another one ends with other network weights.
    other = checkpoint_tensors(tmp_path / "other")
    kernels = [name for name in same if "kernel/" in name]
    assert kernels and any(np.abs(same[name] - other[name]).max() > 1e-3 for name in kernels)


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_nan_in_a_real_algorithm_stops_the_run(tmp_path, algo):
    import keras

    loop = make_loop(tmp_path, algo=algo, steps=42 * 8 * 4)
    real_update, calls = loop.algorithm.update, []

    def poisoned(step):   # the third update's networks go NaN: its losses, TD errors, advantages
        calls.append(step)
        if len(calls) == 3:
            for model in loop.algorithm.trackables().values():
                if isinstance(model, keras.Model):
                    for weight in model.trainable_weights:
                        weight.assign(np.full(weight.shape, np.nan, weight.dtype))
        return real_update(step)

    loop.algorithm.update = poisoned
    with pytest.raises(NonFiniteLoss, match="update 3"):
        loop.train(progress=False)
    assert loop.checkpoints.latest.endswith("ckpt-2")
    loop.close()


def test_ctrl_c_during_the_warm_up_ends_the_run_after_its_first_update_with_a_checkpoint(tmp_path):
    loop = make_loop(tmp_path, algo="ppo-rnd", steps=42 * 8 * 4, checkpoint_every=50)
    real_warm_up = loop.warm_up

    def interrupted_warm_up(obs):   # Ctrl-C before the first step: RND's warm-up is running
        os.kill(os.getpid(), signal.SIGINT)
        return real_warm_up(obs)

    loop.warm_up = interrupted_warm_up
    summary = loop.train(progress=False)
    loop.close()
    assert summary["interrupted"] and summary["updates"] == 1 and summary["steps"] == 42 * 8
    saved = checkpoint_tensors(tmp_path)
    assert saved["update/.ATTRIBUTES/VARIABLE_VALUE"] == 1


def test_stop_at_clear_rate_ends_the_run_at_the_first_test_that_reaches_it(tmp_path):
    rates = [0.0, 0.25, 0.5, 1.0]

    def test(act, rate):   # a scripted test whose random-start clear rate rises 0, 0.25, 0.5, 1
        test.calls += 1
        return {"return": 1.0, "length": 5, "frames": [], "clear_rate": rates[test.calls - 1]}
    test.calls = 0
    loop = scripted_loop(tmp_path, steps=400, test=test, test_every=1, stop_at_clear_rate=0.5)
    summary = loop.train(progress=False)
    loop.close()
    assert summary["clear_rate_reached"] and summary["updates"] == 3 and not summary["cleared"]
    assert [v for _, v in read_scalars(tmp_path)["test/clear_rate"]] == [0.0, 0.25, 0.5]
    # Unset, the same tests never stop the run early.
    test.calls, rates[:] = 0, [1.0] * 10
    loop = scripted_loop(tmp_path / "off", steps=24, test=test, test_every=1)
    summary = loop.train(progress=False)
    loop.close()
    assert not summary["clear_rate_reached"] and summary["updates"] == 6


def test_clear_every_measures_the_rate_on_its_own_cadence(tmp_path):
    calls = []

    def test(act, rate):   # the rate reaches 1 at its second measurement
        calls.append(rate)
        out = {"return": 1.0, "length": 5, "frames": []}
        return {**out, "clear_rate": float(sum(calls) == 2)} if rate else out

    loop = scripted_loop(tmp_path, steps=400, test=test, test_every=2, clear_every=4, stop_at_clear_rate=0.9)
    summary = loop.train(progress=False)
    loop.close()
    # Tests at updates 2, 4, 6, 8: greedy at each, the rate at 4 and 8 (the stop).
    assert calls == [False, True, False, True] and summary["updates"] == 8 and summary["clear_rate_reached"]
    scalars = read_scalars(tmp_path)
    assert [s for s, _ in scalars["test/return"]] == [8, 16, 24, 32]
    assert [(s, v) for s, v in scalars["test/clear_rate"]] == [(16, 0.0), (32, 1.0)]
