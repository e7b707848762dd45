"""envs/games.py: the game registry and the --stage / --actions settings."""

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
