"""The command line as a user runs it: real processes, real files."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import envs
from agent.config import TrainConfig
from agent.trainer import Trainer
from tests.conftest import ROOT
from utilities.events import read_scalars


def run_cli(*args, cwd=ROOT, timeout=600):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "agent", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("args, bad", [
    (["--game", "pacmann"], "pacmann"),
    (["--algo", "dqn"], "dqn"),
    (["--steps", "0"], "'0'"),
    (["--steps", "ten"], "'ten'"),
    (["--num-envs", "-4"], "'-4'"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, bad):
    result = run_cli("train", *args, "--run-dir", str(tmp_path / "run"), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and bad in lines[0], result.stderr
    assert list(tmp_path.iterdir()) == []


def test_ppo_rnd_on_freeway_writes_events_config_and_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli("train", "--game", "freeway", "--algo", "ppo-rnd", "--steps", "2048",
                     "--seed", "7", "--run-dir", str(run_dir), "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "done: 2,048 steps, 2 updates" in result.stdout

    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["game"] == "freeway" and cfg["algo"] == "ppo-rnd" and cfg["seed"] == 7
    assert cfg["num_envs"] == 8 and cfg["int_coef"] == 1.0 and cfg["env"]["reward_clip"] is True

    scalars = read_scalars(run_dir)
    for tag in ("loss/policy", "loss/value", "loss/rnd", "loss/entropy", "reward/intrinsic",
                "train/approx_kl", "train/explained_variance", "train/learning_rate",
                "time/steps_per_second"):
        assert [s for s, _ in scalars[tag]] == [1024, 2048], tag
    assert all(v > 0 for _, v in scalars["reward/intrinsic"])
    assert all(np.isfinite(v) for _, v in scalars["loss/rnd"])
    # Linear annealing: update 2 of 2 runs at half the preset's learning rate.
    np.testing.assert_allclose([v for _, v in scalars["train/learning_rate"]], [2.5e-4, 1.25e-4], rtol=1e-5)

    plot = run_cli("plot", str(run_dir), "--out", str(tmp_path / "curve.png"), "--tag", "loss/rnd")
    assert plot.returncode == 0 and (tmp_path / "curve.png").stat().st_size > 5000

    # The checkpoint restores into a fresh trainer in this (another) process.
    reader = tf.train.load_checkpoint(str(run_dir / "checkpoints"))
    saved = {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}
    trainer = Trainer(TrainConfig(**cfg), envs.make("freeway", 8, 7, **cfg["env"]), run_dir)
    fresh = [w.copy() for w in trainer.agent.rnd_predictor.get_weights()]
    trainer.restore()
    assert int(trainer.step.numpy()) == 2048 and int(trainer.update.numpy()) == 2
    assert not np.allclose(fresh[-2], trainer.agent.rnd_predictor.get_weights()[-2])
    # Warm-up (1024 steps x 8 envs) plus the two rollouts' next observations.
    assert trainer.agent.obs_norm.count.numpy() == pytest.approx(1024 * 8 + 2 * 1024, abs=1)
    assert trainer.int_return_norm.count.numpy() == pytest.approx(2 * 1024, abs=1)
    for name, var in (("rnd_obs_norm", trainer.agent.obs_norm), ("int_return_norm", trainer.int_return_norm)):
        for field in ("mean", "var", "count"):
            np.testing.assert_array_equal(getattr(var, field).numpy(),
                                          saved[f"{name}/{field}/.ATTRIBUTES/VARIABLE_VALUE"])
    np.testing.assert_array_equal(trainer.int_filter.numpy(), saved["int_filter/.ATTRIBUTES/VARIABLE_VALUE"])
    trainer.close()


def test_exported_policy_loads_without_the_package_and_plays(tmp_path):
    result = run_cli("train", "--game", "freeway", "--steps", "1024", "--run-dir", "logs/fw",
                     "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    model = tmp_path / "saved_model" / "fw"
    card = json.loads((model / "policy.json").read_text())
    assert card["game"] == "freeway" and card["num_actions"] == 3 and card["steps_trained"] == 1024
    assert card["obs_shape"] == [4, 84, 84] and card["env"]["reward_clip"] is True
    assert (model / "policy.keras").stat().st_size > 100_000

    # Plain TensorFlow in a bare process: no package on the path, cwd elsewhere.
    obs = np.random.default_rng(0).integers(0, 255, size=(3, 4, 84, 84), dtype=np.uint8)
    np.save(tmp_path / "obs.npy", obs)
    code = ("import sys, numpy as np, tensorflow as tf; f = tf.saved_model.load(sys.argv[1]); "
            "out = f(np.load(sys.argv[2])); print(out['action'].numpy().tolist(), out['logits'].shape)")
    bare = subprocess.run([sys.executable, "-c", code, str(model), str(tmp_path / "obs.npy")],
                          capture_output=True, text=True, cwd="/", env={"PATH": os.environ["PATH"]})
    assert bare.returncode == 0, bare.stderr[-2000:]
    import keras
    expected = np.argmax(keras.saving.load_model(model / "policy.keras")(obs)[0], axis=-1).tolist()
    assert bare.stdout.strip() == f"{expected} (3, 3)"

    video = tmp_path / "episode.mp4"
    played = run_cli("play", str(model), "--episodes", "1", "--json", "--video", str(video), cwd=tmp_path)
    assert played.returncode == 0, played.stderr[-2000:]
    episode = json.loads(played.stdout.strip().splitlines()[0])
    # Freeway lasts 2 min 16 s of game time: ~2048 agent steps after the random no-op start.
    assert episode["episode"] == 1 and 2000 <= episode["length"] <= 2048
    import cv2
    capture = cv2.VideoCapture(str(video))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == episode["length"]
    assert int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)) == 336


@pytest.mark.parametrize("args, message", [
    (["play", "nowhere"], "not an exported policy"),
    (["export", "nowhere"], "no run with a checkpoint"),
    (["plot", "nowhere"], "no run folder"),
])
def test_missing_paths_are_one_line_errors(tmp_path, args, message):
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr[-2000:]
