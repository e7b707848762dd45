"""The game registry: name -> task id, kind of env, env settings and test settings.

Hyperparameters are not here: they live in agent/presets.py, keyed by algorithm
and the `kind` given here. Any EnvPool task id (Pong-v5, CartPole-v1...) is a
game too, of its kind.
"""

import dataclasses

import envpool

from envs.deep_sea import DeepSea
from envs.envpool_env import EnvPoolEnv
from envs.mario import ACTION_SETS, MarioVecEnv, workers
from envs.mario_rules import parse_stage


@dataclasses.dataclass(frozen=True)
class Tests:
    """Greedy test episodes during training (seed 000's test): every `every` updates
    (None: only when asked), each cut after `max_repeats` identical actions, plus a
    clear rate over `clear_episodes` random-start episodes where the env reports clears."""
    every: int | None = None
    max_repeats: int | None = None
    clear_episodes: int = 0


@dataclasses.dataclass(frozen=True)
class Game:
    task_id: str
    kind: str                                   # "atari", "classic", "deepsea" or "mario": picks presets
    env: dict = dataclasses.field(default_factory=dict)   # env settings every run of the game gets
    tests: Tests = Tests()
    stages: bool = False                        # takes --stage / --actions
    # How `play` names the generic test results (agent.evaluation) for this game.
    names: dict = dataclasses.field(default_factory=dict)


MARIO_TESTS = Tests(every=10, max_repeats=200, clear_episodes=4)

GAMES = {
    "freeway": Game("Freeway-v5", "atari"),
    "venture": Game("Venture-v5", "atari"),
    "gravitar": Game("Gravitar-v5", "atari"),
    "cartpole": Game("CartPole-v1", "classic"),
    "mountaincar": Game("MountainCar-v0", "classic"),
    "deepsea": Game("DeepSea", "deepsea"),
    "mario": Game("SuperMarioBros", "mario", tests=MARIO_TESTS, stages=True,
                  names={"cleared": "flag_get", "max_progress": "max_x_pos"}),
}

# Envs that are not EnvPool tasks, by the task id GAMES gives them.
NATIVE = {"DeepSea": DeepSea, "SuperMarioBros": MarioVecEnv}


# Resident memory an env adds, for the memory check before a run allocates anything.
# Measured 2026-11-30 as the growth of the process tree's RSS over reset and 20 steps:
# EnvPool Atari 81 MiB for 64 envs (Gravitar, Venture: 1.27 MiB each); Mario 171 MiB for 1
# env in 1 worker, 342 for 16 and 355 for 32 envs in 2 workers (the workers' interpreters
# dominate); classic control 7.6 MiB for 1,000 envs; Deep Sea (a few numbers an env)
# is given classic control's figure.
MIB = 2**20
BYTES_PER_ENV = {"atari": int(1.3 * MIB), "mario": MIB, "classic": 8 * 1024, "deepsea": 8 * 1024}
BYTES_PER_MARIO_WORKER = 170 * MIB


def _is_atari(task_id):
    return task_id.endswith("-v5")


def _discrete_envpool_tasks():
    # EnvPool lists every task; the agents here act in discrete action spaces,
    # which is every Atari game and the discrete classic-control tasks.
    return sorted(t for t in envpool.list_all_envs()
                  if _is_atari(t) or t in ("CartPole-v1", "MountainCar-v0", "Acrobot-v1"))


def resolve_game(name):
    """The Game of a name or EnvPool task id; ValueError otherwise."""
    key = str(name).lower()
    if key in GAMES:
        return GAMES[key]
    if name in _discrete_envpool_tasks():
        return Game(name, "atari" if _is_atari(name) else "classic")
    raise ValueError(f"unknown game {name!r}: choose one of {', '.join(GAMES)} "
                     f"or an EnvPool task id such as Pong-v5 or Breakout-v5")


def stage_settings(game, stage=None, action_set=None):
    """(stage, env settings) for --stage / --actions: Mario's normalised W-S and action
    set; other games take neither. ValueError naming a bad value."""
    if not resolve_game(game).stages:
        if stage is not None or action_set is not None:
            raise ValueError(f"--stage and --actions are for mario, not {game!r}")
        return None, {}
    world, level = parse_stage(stage or "1-1")
    settings = {"stage": f"{world}-{level}"}
    if action_set is not None:
        if action_set not in ACTION_SETS:
            raise ValueError(f"unknown action set {action_set!r}: choose one of {', '.join(ACTION_SETS)}")
        settings["action_set"] = action_set
    return settings["stage"], settings


def make(game, num_envs, seed, **env_kwargs):
    """The batched env for `game` (a name or EnvPool task id)."""
    found = resolve_game(game)
    env_kwargs = {**found.env, **env_kwargs}
    if found.task_id in NATIVE:
        return NATIVE[found.task_id](num_envs, seed, **env_kwargs)
    return EnvPoolEnv(found.task_id, num_envs, seed, **env_kwargs)


def observation_space(game, num_envs=1, **env_kwargs):
    """The observation space `make(game, num_envs, ...)` would have, without making an env,
    so that memory is checked before anything is allocated. ValueError for settings the
    env refuses."""
    found = resolve_game(game)
    env_kwargs = {**found.env, **env_kwargs}
    if found.task_id in NATIVE:
        return NATIVE[found.task_id].observation_space(**env_kwargs)
    return EnvPoolEnv.observation_space(found.task_id, num_envs, **env_kwargs)


def env_bytes(game, num_envs, cpus=None):
    """Memory `num_envs` envs of `game` take (BYTES_PER_ENV), with Mario's worker processes
    (one per core, up to `cpus`)."""
    kind = resolve_game(game).kind
    total = num_envs * BYTES_PER_ENV[kind]
    if kind == "mario":
        total += workers(num_envs, cpus) * BYTES_PER_MARIO_WORKER
    return total


def cpu_settings(game, cpus, num_envs):
    """Env settings that keep a run's env on `cpus` cores (sweeps give each run a share
    of a node): EnvPool's thread pool, Mario's worker processes; Deep Sea runs in the
    caller's thread. Not part of the run's config: a run may resume on another node."""
    native = NATIVE.get(resolve_game(game).task_id)
    if native is None:
        return {"num_threads": cpus}
    if native is MarioVecEnv:
        return {"num_workers": workers(num_envs, cpus)}
    return {}


def make_test_env(game, seed, num_envs=1, random_starts=False, render=True, **env_kwargs):
    """Env(s) for greedy test episodes. Mario: seed 000's test has no random starts
    (random_starts=True is for clear rates); render adds the screen for videos. Atari:
    the game's own score (no reward clipping, which only shapes training), as published
    scores count it."""
    kind = resolve_game(game).kind
    if kind == "mario":
        env_kwargs = {**env_kwargs, "random_starts": random_starts, "render": render}
    if kind == "atari":
        env_kwargs = {**env_kwargs, "reward_clip": False}
    return make(game, num_envs, seed, **env_kwargs)
