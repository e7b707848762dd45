"""envs/games.py: the game registry and the --stage / --actions settings."""

import numpy as np
import pytest

import envs
from agent import presets
from agent.config import ALGORITHMS


@pytest.mark.parametrize("name", ["pong", "Freeway-v4", "abc"])
def test_unknown_game_is_refused(name):
    with pytest.raises(ValueError, match="unknown game"):
        envs.resolve_game(name)


def test_any_envpool_atari_id_is_a_game():
    game = envs.resolve_game("Pong-v5")
    assert game.task_id == "Pong-v5" and game.kind == "atari"
    # Every registered algorithm has a preset for it: the generic Atari one.
    for algo in ALGORITHMS:
        assert presets.preset(algo, game.kind, "pong-v5") == presets.preset(algo, "atari"), algo


def test_stage_settings_normalise_and_refuse():
    assert envs.stage_settings("mario", " 4-4 ", "right") == ("4-4", {"stage": "4-4", "action_set": "right"})
    assert envs.stage_settings("mario") == ("1-1", {"stage": "1-1"})
    assert envs.stage_settings("freeway") == (None, {})
    with pytest.raises(ValueError, match="unknown stage '9-1'"):
        envs.stage_settings("mario", "9-1")
    with pytest.raises(ValueError, match="unknown action set 'left'"):
        envs.stage_settings("mario", "1-1", "left")
    with pytest.raises(ValueError, match="for mario, not 'freeway'"):
        envs.stage_settings("freeway", "1-1")


@pytest.mark.parametrize("game, settings", [
    ("freeway", {}), ("Pong-v5", {}), ("cartpole", {}), ("mountaincar", {}), ("deepsea", {"size": 7}),
    ("mario", {"stage": "4-2", "action_set": "right"}),
])
def test_observation_space_without_an_env_is_the_envs(game, settings):
    # The memory check sizes rollouts and replays from this before any env exists.
    space = envs.observation_space(game, **settings)
    env = envs.make(game, 1, 0, **settings)
    try:
        made = env.single_observation_space
        assert (space.shape, space.dtype) == (made.shape, made.dtype)
        assert np.array_equal(space.low, made.low) and np.array_equal(space.high, made.high)
    finally:
        env.close()


def test_env_bytes_by_hand():
    mib = 2**20
    assert envs.env_bytes("gravitar", 64) == 64 * int(1.3 * mib)
    assert envs.env_bytes("cartpole", 1000) == 1000 * 8 * 1024
    # Mario: an env's emulator and a worker process per core, at most one per env.
    assert envs.env_bytes("mario", 16, cpus=2) == 16 * mib + 2 * 170 * mib
    assert envs.env_bytes("mario", 1, cpus=4) == mib + 170 * mib


@pytest.mark.parametrize("settings, message", [
    ({"max_num_players": 0}, r"EnvPool refuses the settings \{'max_num_players': 0\} for 8 envs of Freeway-v5$"),
    ({"seed": 2**40}, "Seed should be in range of int32"),
    ({"bogus": 1}, "unexpected keyword argument 'bogus'"),
])
def test_settings_envpool_refuses_are_a_value_error(settings, message):
    # Its checks are asserts, mostly without a message: the CLI reports ValueErrors in one line.
    with pytest.raises(ValueError, match=message):
        envs.observation_space("freeway", 8, **settings)
