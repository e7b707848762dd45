"""agent/config.py: the run config, its JSON, the registry and validation."""

import json

import numpy as np
import pytest

from agent import presets
from agent.config import ALGORITHMS, DQNConfig, PPOConfig, RNDConfig, RunConfig


def test_from_preset_splits_common_and_algorithm_fields_and_round_trips():
    cfg = RunConfig.from_preset(presets.preset("ppo-rnd", "atari", "freeway"), game="freeway", algo="ppo-rnd",
                                seed=4, total_steps=2048, num_envs=None).validate()
    assert (cfg.seed, cfg.total_steps, cfg.num_envs) == (4, 2048, 8)        # None keeps the preset's
    assert isinstance(cfg.params, PPOConfig) and cfg.params.rollout_steps == 128
    assert cfg.params.rnd == RNDConfig(int_gamma=0.99, update_fraction=0.25, warmup_steps=1024, obs_clip=5.0)
    assert cfg.env["reward_clip"] is True
    text = cfg.to_json()
    assert json.loads(text)["format"] == 2 and json.loads(text)["params"]["rnd"]["warmup_steps"] == 1024
    assert RunConfig.from_json(text) == cfg


@pytest.mark.parametrize("change, message", [
    ({"algo": "dqn"}, "unknown algo 'dqn'"),
    ({"total_steps": 0}, "total_steps must be a positive integer, got 0"),
    ({"num_minibatches": 5}, "num_minibatches 5 must divide num_envs x rollout_steps = 1024"),
    ({"algo": "ppo-rnd"}, "needs RND settings"),
    ({"max_grad_norm": 0.0}, r"max_grad_norm must be > 0 or null \(no clip\), got 0.0"),
])
def test_validate_names_the_bad_value(change, message):
    cfg = RunConfig.from_preset(presets.preset("ppo", "atari"), game="pong-v5", algo="ppo")
    for key, value in change.items():
        setattr(cfg.params if hasattr(cfg.params, key) else cfg, key, value)
    with pytest.raises(ValueError, match=message):
        cfg.validate()


@pytest.mark.parametrize("fraction", [0.0, 1.5])
def test_an_rnd_update_fraction_outside_0_1_is_refused(fraction):
    cfg = RunConfig.from_preset(presets.preset("ddqn-rnd", "deepsea"), game="deepsea", algo="ddqn-rnd")
    cfg.params.rnd.update_fraction = fraction
    with pytest.raises(ValueError, match=f"rnd update_fraction must lie in \\(0, 1\\], got {fraction}"):
        cfg.validate()


@pytest.mark.parametrize("width", [0, "64"])
def test_an_rnd_width_that_is_not_a_positive_integer_is_refused(width):
    cfg = RunConfig.from_preset(presets.preset("ppo-rnd", "deepsea"), game="deepsea", algo="ppo-rnd")
    cfg.params.rnd.width = width
    with pytest.raises(ValueError, match=f"width must be a positive integer, got {width!r}"):
        cfg.validate()


def test_a_config_of_the_previous_format_is_refused():
    old = {"game": "cartpole", "algo": "ppo", "seed": 1, "total_steps": 512, "num_envs": 8, "epochs": 10}
    with pytest.raises(ValueError, match="older version of the package .run format 1"):
        RunConfig.from_json(json.dumps(old))


def test_every_algorithm_names_a_learner_and_a_config():
    from agent.config import learner_class

    for name, spec in ALGORITHMS.items():
        learner = learner_class(name)      # imports the module and finds the class
        assert spec.config.__dataclass_fields__, name
        assert all(callable(getattr(learner, m, None)) for m in ("act", "observe", "ready", "update", "greedy",
                                                                  "trackables", "serving")), name


@pytest.mark.parametrize("change, message", [
    ({"buffer_size": 0}, "buffer_size must be a positive integer, got 0"),
    ({"batch_size": -1}, "batch_size must be a positive integer, got -1"),
    ({"batch_size": 0}, "batch_size must be a positive integer, got 0"),
    ({"buffer_size": 40}, "buffer_size 40 is too small for 8 envs"),
    ({"loss": "l1"}, "loss must be huber or mse"),
    ({"unit": "frames"}, "unit must be steps or episodes"),
    ({"min_replay": -1}, "min_replay must be 0 or a positive integer"),
    ({"epsilon": {"kind": "cosine"}}, "epsilon kind must be decay or linear or linear_episodes"),
    ({"epsilon": {"kind": "decay", "start": 1.0}}, "epsilon 'decay' needs factor, floor"),
    ({"epsilon": {"kind": "linear", "start": 1.5, "end": 0.1, "steps": 10}}, "epsilon values must lie in"),
    # Each would fail only at the first act (a division by zero) or grow epsilon past 1.
    ({"epsilon": {"kind": "linear", "start": 1.0, "end": 0.1, "steps": 0}}, r"epsilon steps must be > 0, got 0"),
    ({"epsilon": {"kind": "linear_episodes", "start": 0.5, "end": 0.02, "episodes": 0}},
     r"epsilon episodes must be > 0, got 0"),
    ({"epsilon": {"kind": "linear", "start": 1.0, "end": 0.1, "steps": 9, "begin": -1}}, r"epsilon begin must be >= 0"),
    ({"epsilon": {"kind": "decay", "start": 1.0, "factor": 1.01, "floor": 0.1}}, r"epsilon factor must be in \(0, 1\]"),
    ({"beta0": 1.5}, r"beta0 must lie in \[0, 1\], got 1.5"),
    ({"prioritized": True, "priority_eps": 0.0}, r"priority_eps must be > 0 \(0 only without prioritised replay\)"),
    ({"priority_eps": -1.0}, "priority_eps must be > 0"),
    ({"max_grad_norm": 0.0}, r"max_grad_norm must be > 0 or null \(no clip\), got 0.0"),
])
def test_dqn_validate_names_the_bad_value(change, message):
    cfg = RunConfig.from_preset(presets.preset("ddqn", "atari"), game="pong-v5", algo="ddqn")
    for key, value in change.items():
        setattr(cfg.params, key, value)
    with pytest.raises(ValueError, match=message):
        cfg.validate()


def test_dqn_config_round_trips_and_owns_its_preset_values():
    preset = presets.preset("ddqn-rnd", "atari", "gravitar")
    cfg = RunConfig.from_preset(preset, game="gravitar", algo="ddqn-rnd").validate()
    assert isinstance(cfg.params, DQNConfig) and cfg.params.rnd.update_fraction == 0.25
    assert RunConfig.from_json(cfg.to_json()) == cfg
    cfg.params.epsilon["start"] = 0.0
    assert preset["epsilon"]["start"] == 0.5            # the preset is untouched


@pytest.mark.parametrize("change, message", [
    ({"memory_size": 8}, "memory_size 8 cannot hold off_policy_start x num_envs = 16 trajectories"),
    ({"off_epochs": 0}, "off_epochs must be a positive integer, got 0"),
    ({"eps_marg": 1.0}, "eps_marg must lie in"),
    ({"alpha": -1.0}, "alpha must be >= 0"),
    ({"priority_eps": 0.0}, "priority_eps must be > 0, got 0.0"),
    ({"num_minibatches": 5}, "num_minibatches 5 must divide"),
])
def test_ptr_ppo_validate_names_the_bad_value(change, message):
    cfg = RunConfig.from_preset(presets.preset("ptr-ppo", "deepsea"), game="deepsea", algo="ptr-ppo")
    for key, value in change.items():
        setattr(cfg.params, key, value)
    with pytest.raises(ValueError, match=message):
        cfg.validate()


def test_memory_needs_by_hand():
    # What the CLI checks against free memory before anything is allocated (seed 002's 1-1 row).
    cfg = RunConfig.from_preset(presets.preset("ptr-ppo", "mario", stage="1-1"), game="mario", algo="ptr-ppo")
    frame = 84 * 84
    assert cfg.params.memory_needs(16, (4, 84, 84), np.uint8) == [
        # 16 x 512 rows: the 4-stack and 39 bytes of int32, float32 and bool fields.
        ("a rollout of 16 x 512 steps", 16 * 512 * (4 * frame + 39)),
        # 256 trajectories: 512 + 4 single frames, (512 + 1) x 4 int16 plane indices, 13 column
        # bytes a step; a sum tree of 256 leaves at 16 bytes.
        ("a trajectory memory of 256 x 512 steps", 256 * (516 * frame + 513 * 8 + 512 * 13) + 256 * 16),
        # An off-policy pass: 16 trajectories stacked over 513 steps, with their columns.
        ("a replayed batch of 16 x 512 steps", 16 * 513 * (4 * frame + 39)),
    ] == [("a rollout of 16 x 512 steps", 231_530_496), ("a trajectory memory of 256 x 512 steps", 934_828_032),
          ("a replayed batch of 16 x 512 steps", 231_982_704)]
