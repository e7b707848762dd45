"""agent/presets.py: the most specific row wins, and every row makes a valid config."""

import numpy as np
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


def test_value_based_rows_follow_their_seeds():
    mario = presets.preset("ddqn", "mario", "mario", "1-1")
    # Seed 001, exactly.
    assert (mario["env"]["action_set"], mario["gamma"], mario["learning_rate"], mario["loss"]) == ("right-a", 0.9,
                                                                                                 2.5e-4, "huber")
    assert (mario["buffer_size"], mario["batch_size"], mario["min_replay"], mario["train_period"],
            mario["target_period"], mario["num_envs"]) == (100_000, 32, 10_000, 3, 10_000, 1)
    assert mario["epsilon"] == {"kind": "decay", "start": 1.0, "factor": 0.99999975, "floor": 0.1}
    gravitar = presets.preset("ddqn-rnd", "atari", "gravitar")
    assert gravitar is presets.preset("ddqn-rnd", "atari", "venture")        # seed 003 for every Atari game
    assert (gravitar["unit"], gravitar["gradient_steps"], gravitar["target_period"], gravitar["batch_size"],
            gravitar["buffer_size"], gravitar["min_replay"]) == ("episodes", 10, 100, 128, 50_000, 2_000)
    assert gravitar["dueling"] and gravitar["prioritized"] and gravitar["ext_coef"] == gravitar["int_coef"] == 1 / 500
    # Deep Sea: updates are whole episodes of all 8 envs (20 steps + the reset row).
    for algo in ("ddqn", "ddqn-rnd"):
        row = presets.preset(algo, "deepsea")
        assert row["update_every"] % (21 * row["num_envs"]) == 0 and row["min_replay"] <= row["update_every"]


def test_mario_value_losses_weigh_as_in_their_pytorch_sources():
    """CVHvn's table and seed 000 weigh F.mse_loss (the squared error) or smooth_l1 by
    V_coef 0.5: at an error of 2, 0.5 x 4 = 2.0 and 0.5 x 1.5 = 0.75."""
    from agent.losses import value_loss

    rows = [presets.preset("ppo", "mario", "mario", s) for s in presets.MARIO_PPO_STAGES]
    rows.append(presets.preset("ppo-rnd", "mario", "mario"))
    assert {row["value_loss"] for row in rows} == {"mse", "huber"}
    for row in rows:
        weighed = row["vf_coef"] * float(value_loss(np.array([2.0]), np.array([0.0]), np.array([1.0]), row["value_loss"]))
        assert weighed == (2.0 if row["value_loss"] == "mse" else 0.75), row


def test_mario_budgets_are_their_sources_5e6_batched_steps():
    """CVHvn's train.py (and seed 000's config) count total_step 5e6 per envs.step: x num_envs
    agent steps, enough for the sources' slowest first clears."""
    rows = [presets.preset(algo, "mario", "mario", s) for algo in ("ppo", "ptr-ppo") for s in presets.MARIO_PPO_STAGES]
    rows.append(presets.preset("ppo-rnd", "mario", "mario"))
    assert {row["total_steps"] // row["num_envs"] for row in rows} == {5_000_000}
    assert presets.preset("ptr-ppo", "mario", "mario", "8-1")["total_steps"] == 80_000_000 > 2_455_542 * 16
    assert presets.preset("ppo", "mario", "mario", "7-2")["total_steps"] == 40_000_000 > 2_951_967 * 8
    assert presets.preset("ppo-rnd", "mario", "mario", "8-4")["total_steps"] == 160_000_000 > 31_550_000


def test_ptr_ppo_mario_rows_follow_seed_002():
    gamma_099 = {"1-3", "3-3", "3-4", "4-2", "4-3", "4-4", "5-3", "5-4", "6-3", "6-4", "7-4", "8-4"}
    for stage in presets.MARIO_PPO_STAGES:
        row = presets.preset("ptr-ppo", "mario", "mario", stage)
        minibatch = row["num_envs"] * row["rollout_steps"] // row["num_minibatches"]
        assert minibatch == (256 if stage in ("8-1", "8-4") else 64), stage
        assert row["gamma"] == (0.99 if stage in gamma_099 else 0.9), stage
        assert (row["num_envs"], row["rollout_steps"], row["epochs"], row["off_epochs"], row["gae_lambda"],
                row["learning_rate"], row["target_kl"], row["clip_range"], row["max_grad_norm"], row["vf_coef"],
                row["ent_coef"], row["value_loss"], row["alpha"], row["priority_eps"], row["eps_marg"],
                row["memory_size"], row["norm_adv"]) == (16, 512, 2, 8, 0.95, 7e-5, 0.05, 0.2, 0.5, 0.5, 0.01,
                                                         "huber", 0.7, 0.01, 0.2, 256, False), stage
