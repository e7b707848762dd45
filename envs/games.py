"""Named games, their EnvPool task ids and their presets (data only).

A preset is a dict of overrides for agent.config.TrainConfig; its "env" entry is
passed to the env constructor. Any EnvPool task id (Pong-v5, CartPole-v1...) is a
game too, with the generic preset of its kind.
"""

import envpool

from envs.deep_sea import DeepSea
from envs.envpool_env import EnvPoolEnv
from envs.mario import ACTION_SETS, MarioVecEnv
from envs.mario_presets import mario_ppo, mario_rnd
from envs.mario_rules import parse_stage

ALGOS = ("ppo", "ppo-rnd")

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
    "gamma": 0.999, "int_gamma": 0.99, "gae_lambda": 0.95, "vf_coef": 1.0,
    "ext_coef": 2.0, "int_coef": 1.0, "total_steps": 32_768_000,
    "env": {"reward_clip": True, "max_episode_steps": 4500, "repeat_action_probability": 0.25},
}
# Seed 004 trains Freeway with RND on the PPO preset (rnd_bonus=True, rnd_hyperparams=False).
FREEWAY_RND = {**ATARI_PPO, "ext_coef": 2.0, "int_coef": 1.0, "int_gamma": 0.99}

# Small vector tasks for quick runs and learning tests: short rollouts and many
# epochs learn CartPole in ~50k steps (measured: 500 reached by 50k, seeds 1 and 2).
CLASSIC_PPO = {
    "num_envs": 8, "rollout_steps": 64, "num_minibatches": 4, "epochs": 10,
    "learning_rate": 1e-3, "anneal": True, "clip_range": 0.2, "ent_coef": 0.0,
    "gamma": 0.99, "gae_lambda": 0.95, "vf_coef": 0.5, "total_steps": 100_000, "env": {},
}
CLASSIC_RND = {**CLASSIC_PPO, "ext_coef": 2.0, "int_coef": 1.0, "int_gamma": 0.99}
# Deep Sea 20: episodes of 20 steps plus the auto-reset row, so a 42-step rollout
# ends with every env back at the start (a resumed run continues exactly); entropy
# kept small so the policy can commit to a path.
DEEP_SEA_PPO = {**CLASSIC_PPO, "rollout_steps": 42, "ent_coef": 0.001, "total_steps": 60_000}
DEEP_SEA_RND = {**DEEP_SEA_PPO, "ext_coef": 2.0, "int_coef": 1.0, "int_gamma": 0.99,
                "rnd_warmup_steps": 42}

# Envs that are not EnvPool tasks, by the task id GAMES gives them.
NATIVE = {"DeepSea": DeepSea, "SuperMarioBros": MarioVecEnv}

GAMES = {
    "freeway": ("Freeway-v5", {"ppo": ATARI_PPO, "ppo-rnd": FREEWAY_RND}),
    "venture": ("Venture-v5", {"ppo": ATARI_PPO, "ppo-rnd": ATARI_RND}),
    "gravitar": ("Gravitar-v5", {"ppo": ATARI_PPO, "ppo-rnd": ATARI_RND}),
    "cartpole": ("CartPole-v1", {"ppo": CLASSIC_PPO, "ppo-rnd": CLASSIC_RND}),
    "mountaincar": ("MountainCar-v0", {"ppo": CLASSIC_PPO, "ppo-rnd": CLASSIC_RND}),
    "deepsea": ("DeepSea", {"ppo": DEEP_SEA_PPO, "ppo-rnd": DEEP_SEA_RND}),
    # Mario's presets depend on the stage: see preset().
    "mario": ("SuperMarioBros", {"ppo": mario_ppo, "ppo-rnd": mario_rnd}),
}


def _is_atari(task_id):
    return task_id.endswith("-v5")


def _discrete_envpool_tasks():
    # EnvPool lists every task; the agents here act in discrete action spaces,
    # which is every Atari game and the discrete classic-control tasks.
    return sorted(t for t in envpool.list_all_envs()
                  if _is_atari(t) or t in ("CartPole-v1", "MountainCar-v0", "Acrobot-v1"))


def resolve_game(name):
    """(task_id, presets) for a game name or EnvPool task id; ValueError otherwise."""
    key = name.lower()
    if key in GAMES:
        return GAMES[key]
    if name in _discrete_envpool_tasks():
        return name, ({"ppo": ATARI_PPO, "ppo-rnd": ATARI_RND} if _is_atari(name)
                      else {"ppo": CLASSIC_PPO, "ppo-rnd": CLASSIC_RND})
    raise ValueError(f"unknown game {name!r}: choose one of {', '.join(GAMES)} "
                     f"or an EnvPool task id such as Pong-v5 or Breakout-v5")


def preset(game, algo, stage=None, action_set=None):
    """The preset dict of `game` for `algo` (Mario: of its stage and action set)."""
    if algo not in ALGOS:
        raise ValueError(f"unknown algo {algo!r}: choose one of {', '.join(ALGOS)}")
    found = resolve_game(game)[1][algo]
    if callable(found):
        stage = stage or "1-1"
        world, level = parse_stage(stage)
        action_set = action_set or "complex"
        if action_set not in ACTION_SETS:
            raise ValueError(f"unknown action set {action_set!r}: choose one of {', '.join(ACTION_SETS)}")
        return found(f"{world}-{level}", action_set)
    if stage is not None or action_set is not None:
        raise ValueError(f"--stage and --actions are for mario, not {game!r}")
    return found


def make(game, num_envs, seed, **env_kwargs):
    """The batched env for `game` (a name or EnvPool task id)."""
    task_id, _ = resolve_game(game)
    if task_id in NATIVE:
        return NATIVE[task_id](num_envs, seed, **env_kwargs)
    return EnvPoolEnv(task_id, num_envs, seed, **env_kwargs)


def is_mario(game):
    return resolve_game(game)[0] == "SuperMarioBros"


# Greedy tests during training. Mario (seed 000): a test episode every 10 updates,
# cut after 200 identical consecutive actions, plus a clear rate over 4 episodes with
# random starts. Other games: no tests unless --test-every asks for them.
MARIO_TESTS = {"test_every": 10, "max_repeats": 200, "clear_episodes": 4}
NO_TESTS = {"test_every": None, "max_repeats": None, "clear_episodes": 0}


def test_settings(game):
    return MARIO_TESTS if is_mario(game) else NO_TESTS


def make_test_env(game, seed, num_envs=1, random_starts=False, render=True, **env_kwargs):
    """Env(s) for greedy test episodes. Mario: seed 000's test has no random starts
    (random_starts=True is for clear rates); render adds the NES screen for videos."""
    if is_mario(game):
        env_kwargs = {**env_kwargs, "random_starts": random_starts, "render": render}
    return make(game, num_envs, seed, **env_kwargs)
