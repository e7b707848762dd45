"""Hyperparameters as data, keyed by algorithm and kind of env, with per-game and
per-Mario-stage rows (as RL Zoo keeps one table per algorithm).

A preset is a flat dict: the run's common fields (num_envs, total_steps, env) and
the algorithm's own (agent.config), RND's under "rnd". `preset()` looks one up.
"""

RND = {"int_gamma": 0.99, "update_fraction": 0.25, "warmup_steps": 1024, "obs_clip": 5.0}

# Seed 004, PPO preset: 8 envs x 128 steps, 4 minibatches, 3 epochs, lr 2.5e-4 and
# clip 0.1 both annealed linearly to 0, entropy 0.01, gamma 0.99, rewards clipped,
# 10,000 rollouts (~10M agent steps).
ATARI_PPO = {
    "num_envs": 8, "rollout_steps": 128, "num_minibatches": 4, "epochs": 3,
    "learning_rate": 2.5e-4, "anneal": True, "clip_range": 0.1, "ent_coef": 0.01,
    "gamma": 0.99, "gae_lambda": 0.95, "vf_coef": 1.0, "total_steps": 10_240_000,
    "env": {"reward_clip": True, "max_episode_steps": 27000, "repeat_action_probability": 0.0},
}
# Seed 004, RND preset (Burda et al. 2018 scaled to 32 envs): 4 epochs, lr 1e-4,
# entropy 0.001, gamma_ext 0.999, gamma_int 0.99, no annealing, 4,500-step
# (18,000-frame) episodes, sticky actions 0.25, 8,000 rollouts (~33M agent steps).
ATARI_RND = {
    "num_envs": 32, "rollout_steps": 128, "num_minibatches": 4, "epochs": 4,
    "learning_rate": 1e-4, "anneal": False, "clip_range": 0.1, "ent_coef": 0.001,
    "gamma": 0.999, "gae_lambda": 0.95, "vf_coef": 1.0, "ext_coef": 2.0, "int_coef": 1.0,
    "total_steps": 32_768_000, "rnd": RND,
    "env": {"reward_clip": True, "max_episode_steps": 4500, "repeat_action_probability": 0.25},
}
# Small vector tasks for quick runs and learning tests: short rollouts and many
# epochs learn CartPole in ~50k steps (measured: 500 reached by 50k, seeds 1 and 2).
CLASSIC_PPO = {
    "num_envs": 8, "rollout_steps": 64, "num_minibatches": 4, "epochs": 10,
    "learning_rate": 1e-3, "anneal": True, "clip_range": 0.2, "ent_coef": 0.0,
    "gamma": 0.99, "gae_lambda": 0.95, "vf_coef": 0.5, "total_steps": 100_000, "env": {},
}
# Deep Sea 20: episodes of 20 steps plus the auto-reset row, so a 42-step rollout
# ends with every env back at the start (a resumed run continues exactly); entropy
# kept small so the policy can commit to a path.
DEEP_SEA_PPO = {**CLASSIC_PPO, "rollout_steps": 42, "ent_coef": 0.001, "total_steps": 60_000}

# Mario, per stage: shared/reference/mario_ppo_stages.md (CVHvn/Mario_PPO) and seed 000.
# Every stage: 12 actions (complex), GAE lambda 0.95, clip 0.2, value coef 0.5, entropy
# 0.01, max grad norm 0.5, 10 epochs, no annealing, seed 000's network.
# stage: (num_envs, rollout_steps, minibatch, gamma, lr, target_kl, norm_adv, value_loss)
MARIO_PPO_STAGES = {
    "1-1": (8, 256, 64, 0.9, 1e-4, None, True, "huber"),
    "1-2": (8, 256, 64, 0.9, 1e-4, None, True, "huber"),
    "1-3": (16, 512, 64, 0.99, 1e-4, None, False, "mse"),
    "1-4": (8, 256, 64, 0.9, 1e-4, None, True, "huber"),
    "2-1": (8, 256, 64, 0.9, 1e-4, None, True, "huber"),
    "2-2": (8, 512, 256, 0.9, 1e-4, None, False, "huber"),
    "2-3": (8, 256, 64, 0.9, 1e-4, None, True, "huber"),
    "2-4": (8, 256, 64, 0.9, 1e-4, None, True, "huber"),
    "3-1": (8, 256, 64, 0.9, 1e-4, None, False, "huber"),
    "3-2": (8, 256, 64, 0.9, 1e-4, None, True, "huber"),
    "3-3": (16, 512, 256, 0.99, 1e-4, None, False, "huber"),
    "3-4": (8, 256, 64, 0.9, 1e-4, None, True, "huber"),
    "4-1": (8, 256, 64, 0.9, 1e-4, None, True, "huber"),
    "4-2": (16, 512, 64, 0.99, 7e-5, None, False, "mse"),
    "4-3": (16, 512, 64, 0.99, 7e-5, None, False, "mse"),
    "4-4": (16, 512, 256, 0.99, 1e-4, None, True, "mse"),
    "5-1": (8, 256, 64, 0.9, 1e-4, None, True, "huber"),
    "5-2": (8, 256, 64, 0.9, 1e-4, None, False, "huber"),
    "5-3": (16, 512, 64, 0.99, 7e-5, 0.05, False, "huber"),
    "5-4": (8, 256, 64, 0.9, 1e-4, None, True, "huber"),
    "6-1": (8, 512, 256, 0.9, 1e-4, None, False, "huber"),
    "6-2": (8, 512, 256, 0.9, 1e-4, None, False, "huber"),
    "6-3": (16, 512, 64, 0.99, 7e-5, None, False, "mse"),
    "6-4": (8, 256, 64, 0.9, 1e-4, None, True, "huber"),
    "7-1": (8, 256, 64, 0.9, 1e-4, None, True, "huber"),
    "7-2": (8, 512, 256, 0.9, 1e-4, None, False, "huber"),
    "7-3": (8, 256, 64, 0.9, 1e-4, None, True, "huber"),
    "7-4": (16, 512, 256, 0.9, 1e-4, None, False, "mse"),
    "8-1": (16, 512, 256, 0.9, 1e-4, None, False, "huber"),
    "8-2": (16, 512, 256, 0.9, 1e-4, None, True, "huber"),
    "8-3": (16, 512, 256, 0.9, 1e-4, None, True, "huber"),
    # 8-4 was not cleared by PPO alone; the seed 000 PPO+RND setting below is the one to use.
    "8-4": (16, 512, 256, 0.99, 1e-4, None, False, "mse"),
}
MARIO_COMMON = {"epochs": 10, "gae_lambda": 0.95, "clip_range": 0.2, "vf_coef": 0.5, "ent_coef": 0.01,
                "max_grad_norm": 0.5, "anneal": False, "network": "mario", "env": {"action_set": "complex"}}
# The Mario sources (CVHvn's Mario_PPO and Mario_PTR_PPO train.py, seed 000) stop at total_step
# 5e6 counted in batched steps (one per envs.step): 5e6 x num_envs agent steps. Their slowest
# first clears need it (PPO 7-2: 23.6M agent steps; PTR 8-1: 39M; PPO+RND 8-4: 31.6M).
SOURCE_BATCHED_STEPS = 5_000_000


# The Mario sources' "mse" is PyTorch's F.mse_loss, the squared error; the package's is half
# of it (agent.losses.value_loss, CleanRL's form): twice their V_coef 0.5 gives their weight.
MSE_AS_TORCH = 2.0


def _mario_ppo_stage(stage):
    envs, rollout, minibatch, gamma, lr, target_kl, norm_adv, loss = MARIO_PPO_STAGES[stage]
    return {**MARIO_COMMON, "num_envs": envs, "total_steps": SOURCE_BATCHED_STEPS * envs, "rollout_steps": rollout,
            "num_minibatches": envs * rollout // minibatch, "gamma": gamma, "learning_rate": lr,
            "target_kl": target_kl, "norm_adv": norm_adv, "value_loss": loss,
            "vf_coef": MARIO_COMMON["vf_coef"] * (MSE_AS_TORCH if loss == "mse" else 1.0)}


# Seed 000's PPO+RND config (written for 8-4): 32 envs x 756 steps, lr 7e-5, entropy
# 0.05, gamma 0.99 / 0.99, target KL 0.05, ext 2 / int 1, mse. Its minibatch of 256
# does not divide 32 x 756 = 24,192 samples: 96 minibatches of 252 here.
MARIO_RND = {**MARIO_COMMON, "num_envs": 32, "rollout_steps": 756, "num_minibatches": 96, "gamma": 0.99,
             "learning_rate": 7e-5, "ent_coef": 0.05, "target_kl": 0.05, "norm_adv": False,
             "value_loss": "mse", "vf_coef": MARIO_COMMON["vf_coef"] * MSE_AS_TORCH, "ext_coef": 2.0,
             "int_coef": 1.0, "total_steps": SOURCE_BATCHED_STEPS * 32, "rnd": RND}

# --- Value-based: Double DQN (`ddqn`) and dueling Double DQN + prioritised replay + RND
# (`ddqn-rnd`). Sources: shared/reference/dqn_family.md. Fields: agent.config.DQNConfig.

# Dopamine's JAX DQN (dqn.gin): Adam 6.25e-5 (eps 1.5e-4), MSE, batch 32, train every 4
# agent steps, target every 8,000, min replay 20,000, epsilon 1 -> 0.01 over 250,000
# steps after the min replay, sticky actions 0.25, 27,000-step episodes, gamma 0.99. Its
# replay holds 1M transitions (7 GB here); 100k (0.7 GB) is the default so a run fits any
# machine (--buffer-size raises it). 10M agent steps, CleanRL's budget. 8 envs: the
# cadences count agent steps over all envs, as in the PPO presets.
ATARI_DQN = {
    "num_envs": 8, "total_steps": 10_000_000, "buffer_size": 100_000, "min_replay": 20_000, "batch_size": 32,
    "learning_rate": 6.25e-5, "adam_epsilon": 1.5e-4, "gamma": 0.99, "n_step": 1, "loss": "mse",
    "max_grad_norm": None, "network": "nature", "dueling": False, "prioritized": False,
    "unit": "steps", "train_period": 4, "gradient_steps": 1, "target_period": 8_000, "update_every": 1_000,
    "epsilon": {"kind": "linear", "start": 1.0, "end": 0.01, "steps": 250_000, "begin": 20_000},
    "env": {"reward_clip": True, "max_episode_steps": 27000, "repeat_action_probability": 0.25},
}
# Seed 001 (the PyTorch Mario DDQN tutorial): actions [right], [right, A]; gamma 0.9; Adam
# 2.5e-4 (PyTorch's eps 1e-8); Smooth L1; replay 100,000; batch 32; burn-in 1e4; learn
# every 3 agent steps; target synced every 1e4; epsilon 1.0 x 0.99999975 per step, floor
# 0.1; one env; MarioNet = the Nature CNN + 512 + head. It suggests 40,000 episodes; 2M
# agent steps here (epsilon is still 0.61 there: raise --steps for the full decay, 9.2M).
MARIO_DQN = {
    "num_envs": 1, "total_steps": 2_000_000, "buffer_size": 100_000, "min_replay": 10_000, "batch_size": 32,
    "learning_rate": 2.5e-4, "adam_epsilon": 1e-8, "gamma": 0.9, "n_step": 1, "loss": "huber",
    "max_grad_norm": None, "network": "nature", "dueling": False, "prioritized": False,
    "unit": "steps", "train_period": 3, "gradient_steps": 1, "target_period": 10_000, "update_every": 1_000,
    "epsilon": {"kind": "decay", "start": 1.0, "factor": 0.99999975, "floor": 0.1},
    "env": {"action_set": "right-a"},
}
# Seed 003 (dueling DQN + RND on Gravitar): Adam 1e-4, gamma 0.99, Smooth L1, replay 50,000
# (training from 2,000), batch 128, 10 gradient steps after every finished episode, target
# synced every 100 episodes, epsilon max(0.02, 0.5 - episode / 2000) (0.02 from episode
# 960), rewards 1/500 x extrinsic + 1/500 x intrinsic standardised over its last 1,000
# values and clipped to 5 (seed 003 multiplies the raw intrinsic reward by 0.5 BEFORE the
# standardisation, which cancels it), unclipped game scores, one env, the predictor on a
# quarter of each batch. Seed 003's replay is uniform (all priorities 1): prioritised
# here with Schaul et al.'s proportional alpha 0.6, beta 0.4 -> 1 (ablate: --no-prioritized).
SEED_003 = {
    "num_envs": 1, "total_steps": 10_000_000, "buffer_size": 50_000, "min_replay": 2_000, "batch_size": 128,
    "learning_rate": 1e-4, "adam_epsilon": 1e-8, "gamma": 0.99, "n_step": 1, "loss": "huber",
    "max_grad_norm": None, "network": "nature", "dueling": True, "prioritized": True,
    "alpha": 0.6, "beta0": 0.4, "priority_eps": 1e-6,
    "unit": "episodes", "train_period": 1, "gradient_steps": 10, "target_period": 100, "update_every": 1_000,
    "epsilon": {"kind": "linear_episodes", "start": 0.5, "end": 0.02, "episodes": 960},
    "ext_coef": 1 / 500, "int_coef": 1 / 500, "int_window": 1_000, "int_clip": 5.0, "rnd": RND,
    "env": {"reward_clip": False, "max_episode_steps": 27000, "repeat_action_probability": 0.25},
}
# RL Zoo's CartPole-v1 DQN (hyperparams/dqn.yml): batch 64, replay 100k, learning_starts
# 1,000, 128 gradient steps every 256 agent steps, epsilon 1 -> 0.04 over the first 16% of
# 50k steps (8,000), net [256, 256], gamma 0.99, SB3's Smooth L1, gradient norm 10, Adam
# eps 1e-8. Its target_update_interval 10 counts env steps inside the collection phase, so
# every training phase starts from a fresh copy: here a sync every 256 agent steps, due
# with (and before) each training phase. Changed, measured on this machine (seeds 1-3, 50-60k
# steps): its lr 2.3e-3 oscillated (last-20 means 34-199 at 50k, greedy 26-117); lr 1e-3
# with 3-step returns and the dueling head held 500 from 36k steps (seed 1) and was the
# steadiest of the variants tried. 8 envs instead of 1: the same cadences in agent steps,
# an eighth of the loop's per-step overhead.
CLASSIC_DQN = {
    "num_envs": 8, "total_steps": 50_000, "buffer_size": 100_000, "min_replay": 1_000, "batch_size": 64,
    "learning_rate": 1e-3, "adam_epsilon": 1e-8, "gamma": 0.99, "n_step": 3, "loss": "huber",
    "max_grad_norm": 10.0, "hidden": [256, 256], "dueling": True, "prioritized": False,
    "unit": "steps", "train_period": 256, "gradient_steps": 128, "target_period": 256, "update_every": 256,
    "epsilon": {"kind": "linear", "start": 1.0, "end": 0.04, "steps": 8_000}, "env": {},
}
# Seed 003's additions to Double DQN: the dueling head, proportional prioritised replay
# (Schaul et al.'s alpha 0.6, beta 0.4 -> 1) and its intrinsic-reward standardisation.
DUELING_PER_RND = {"dueling": True, "prioritized": True, "alpha": 0.6, "beta0": 0.4, "priority_eps": 1e-6,
                   "int_window": 1_000, "int_clip": 5.0}
CLASSIC_DQN_RND = {**CLASSIC_DQN, **DUELING_PER_RND, "ext_coef": 1.0, "int_coef": 0.1,
                   "rnd": {**RND, "warmup_steps": 256}}
# Deep Sea's RND: warm-up for one episode of 42 batched steps; 64 features and 64-unit predictor
# layers, as its policy MLP, instead of Burda et al.'s 512 (a one-hot of 400 cells; the 512-wide
# predictor made ~half of a ddqn-rnd run's time).
DEEP_SEA_RND = {**RND, "warmup_steps": 42, "width": 64}
# Deep Sea 20: 8 envs, updates every 42 x 8 agent steps, the length of two episodes
# (20 steps + the auto-reset row), so every update ends with all envs back at the start
# and a resumed run continues exactly (as DEEP_SEA_PPO's 42-step rollouts). RND's bonus
# has to travel back 19 steps before the predictor has learned the new cell, so: 4 gradient
# steps per batched step, and the bonus recomputed for each sampled batch (a stored one
# keeps pulling the agent to cells that stopped being new). A cell is only rewarded once a
# transition into it is in the replay, so the frontier moves by epsilon's random steps:
# epsilon ends at 0.1, not 0.01. Measured at 60k steps, treasure visits (furthest column
# of 19): seed 1, epsilon 0.01: stored bonus 0 (17), with 4 gradient steps 0 (15),
# recomputed 0 (18), recomputed with 4 gradient steps 360 (first at 39,472 steps); seed 2,
# recomputed, 4 gradient steps: epsilon 0.01 0 (18), 0.05 415 (first at 37,960), 0.1 467
# (first at 25,024); ddqn alone (4 gradient steps, epsilon 0.01) 0 (14).
DEEP_SEA_DQN = {
    "num_envs": 8, "total_steps": 60_000, "buffer_size": 20_000, "min_replay": 336, "batch_size": 64,
    "learning_rate": 1e-3, "adam_epsilon": 1e-8, "gamma": 0.99, "n_step": 1, "loss": "huber",
    "max_grad_norm": 10.0, "hidden": [64, 64], "dueling": False, "prioritized": False,
    "unit": "steps", "train_period": 8, "gradient_steps": 4, "target_period": 336, "update_every": 336,
    "epsilon": {"kind": "linear", "start": 1.0, "end": 0.1, "steps": 5_000}, "env": {},
}
DEEP_SEA_DQN_RND = {**DEEP_SEA_DQN, **DUELING_PER_RND, "ext_coef": 1.0, "int_coef": 0.1,
                    "int_reward_at": "sample", "rnd": DEEP_SEA_RND}
# Mario with RND: seed 001's settings with seed 003's dueling head, prioritised replay
# and reward mixing (a starting point; no seed trains Mario this way).
MARIO_DQN_RND = {**MARIO_DQN, **DUELING_PER_RND, "ext_coef": 1 / 500, "int_coef": 1 / 500, "rnd": RND}

# (algorithm, kind of env) -> preset; kinds come from the game registry (envs.games).
BY_KIND = {
    ("ppo", "atari"): ATARI_PPO,
    ("ppo-rnd", "atari"): ATARI_RND,
    ("ppo", "classic"): CLASSIC_PPO,
    ("ppo-rnd", "classic"): {**CLASSIC_PPO, "ext_coef": 2.0, "int_coef": 1.0, "rnd": RND},
    ("ppo", "deepsea"): DEEP_SEA_PPO,
    ("ppo-rnd", "deepsea"): {**DEEP_SEA_PPO, "ext_coef": 2.0, "int_coef": 1.0, "rnd": DEEP_SEA_RND},
    ("ppo", "mario"): _mario_ppo_stage("1-1"),
    ("ppo-rnd", "mario"): MARIO_RND,
    ("ddqn", "atari"): ATARI_DQN,
    ("ddqn-rnd", "atari"): SEED_003,
    ("ddqn", "classic"): CLASSIC_DQN,
    ("ddqn-rnd", "classic"): CLASSIC_DQN_RND,
    ("ddqn", "deepsea"): DEEP_SEA_DQN,
    ("ddqn-rnd", "deepsea"): DEEP_SEA_DQN_RND,
    ("ddqn", "mario"): MARIO_DQN,
    ("ddqn-rnd", "mario"): MARIO_DQN_RND,
}
# (algorithm, game) -> preset, where a game departs from its kind.
BY_GAME = {
    # Seed 004 trains Freeway with RND on the PPO preset (rnd_bonus=True, rnd_hyperparams=False).
    ("ppo-rnd", "freeway"): {**ATARI_PPO, "ext_coef": 2.0, "int_coef": 1.0, "rnd": RND},
    # Seed 003 is written for Gravitar.
    ("ddqn-rnd", "gravitar"): SEED_003,
}
# (algorithm, Mario stage) -> preset.
BY_STAGE = {("ppo", stage): _mario_ppo_stage(stage) for stage in MARIO_PPO_STAGES}


# --- PPO with prioritised trajectory replay (`ptr-ppo`). Sources: seed 002 and
# shared/reference/ptr_ppo.md. Fields: agent.config.PTRPPOConfig.

# Seed 002's table, every stage: 16 envs x 512 steps, minibatch 64, 2 on-policy epochs + 8
# off-policy passes, lambda 0.95, lr 7e-5 (constant), target KL 0.05, clip 0.2, grad norm 0.5,
# no advantage normalisation, value coef 0.5, entropy 0.01, Huber, PER eps 0.01 and alpha 0.7
# (its beta 0.4 is unused), eps_marg 0.2, memory 256 trajectories, seed 000's network, 12
# actions. Only gamma (0.99 below, 0.9 elsewhere) and the minibatch (256 on 8-1 and 8-4) vary.
PTR_GAMMA_099 = {"1-3", "3-3", "3-4", "4-2", "4-3", "4-4", "5-3", "5-4", "6-3", "6-4", "7-4", "8-4"}
PTR_MINIBATCH_256 = {"8-1", "8-4"}
PTR = {"off_epochs": 8, "memory_size": 256, "off_policy_start": 8, "alpha": 0.7, "priority_eps": 0.01,
       "eps_marg": 0.2, "stratified": True}
MARIO_PTR = {**MARIO_COMMON, **PTR, "num_envs": 16, "rollout_steps": 512, "epochs": 2, "learning_rate": 7e-5,
             "target_kl": 0.05, "norm_adv": False, "value_loss": "huber", "total_steps": SOURCE_BATCHED_STEPS * 16}


def _mario_ptr_stage(stage):
    minibatch = 256 if stage in PTR_MINIBATCH_256 else 64
    return {**MARIO_PTR, "num_minibatches": 16 * 512 // minibatch, "gamma": 0.99 if stage in PTR_GAMMA_099 else 0.9}


# Generic rows (no seed trains PTR-PPO there). Atari: seed 002's 2 + 8 epoch split, replay
# settings and KL stop on the PPO preset, 256 trajectories of 128 steps (32 rounds, ~0.24 GB
# of frames); not measured. CartPole and Deep Sea: the PPO preset's 10 epochs (no KL stop)
# plus 8 replayed passes, 64 trajectories (8 rounds), replay from the second round. Measured
# on CartPole at 20,480 steps (seeds 1/2/3, mean of the last 20 episodes): PPO 315/242/329,
# this row 326/373/371; with 4 + 8 epochs 264/233/295. Deep Sea's rounds are whole episodes
# as DEEP_SEA_PPO's, so a resume continues exactly.
ATARI_PTR = {**ATARI_PPO, **PTR, "epochs": 2, "target_kl": 0.05}
CLASSIC_PTR = {**CLASSIC_PPO, **PTR, "memory_size": 64, "off_policy_start": 2}
DEEP_SEA_PTR = {**DEEP_SEA_PPO, **PTR, "memory_size": 64, "off_policy_start": 2}
BY_KIND.update({("ptr-ppo", "atari"): ATARI_PTR, ("ptr-ppo", "classic"): CLASSIC_PTR,
                ("ptr-ppo", "deepsea"): DEEP_SEA_PTR, ("ptr-ppo", "mario"): _mario_ptr_stage("1-1")})
BY_STAGE.update({("ptr-ppo", stage): _mario_ptr_stage(stage) for stage in MARIO_PPO_STAGES})


def preset(algo, kind, game=None, stage=None):
    """The preset of `algo` for a game of `kind` (the most specific row: stage, game, kind)."""
    for table, key in ((BY_STAGE, (algo, stage)), (BY_GAME, (algo, game)), (BY_KIND, (algo, kind))):
        if key in table:
            return table[key]
    raise ValueError(f"no {algo!r} preset for {game or kind!r}")
