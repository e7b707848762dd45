"""agent/presets.py: the most specific row wins, and every row makes a valid config."""

import pytest

from agent import presets
from agent.config import ALGORITHMS, RunConfig


def test_rows_from_stage_to_game_to_kind():
    assert presets.preset("ppo", "mario", "mario", "4-2")["learning_rate"] == 7e-5          # stage row
    assert presets.preset("ppo", "mario", "mario", "1-1")["num_minibatches"] == 8 * 256 // 64
    assert presets.preset("ppo-rnd", "mario", "mario", "4-2")["num_envs"] == 32             # kind row
    assert presets.preset("ppo-rnd", "atari", "freeway")["num_envs"] == 8                   # game row
    assert presets.preset("ppo-rnd", "atari", "venture")["num_envs"] == 32                  # kind row
    with pytest.raises(ValueError, match="no 'dqn' preset"):
        presets.preset("dqn", "atari", "freeway")


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
@pytest.mark.parametrize("kind, game, stage", [("atari", "freeway", None), ("atari", "venture", None),
                                               ("classic", "cartpole", None), ("deepsea", "deepsea", None)]
                         + [("mario", "mario", s) for s in presets.MARIO_PPO_STAGES])
def test_every_row_is_a_valid_config(algo, kind, game, stage):
    cfg = RunConfig.from_preset(presets.preset(algo, kind, game, stage), game=game, algo=algo)
    cfg.validate()
