"""Batched environments behind one interface (see envs.envpool_env)."""

from envs.envpool_env import EnvPoolEnv
from envs.games import ALGOS, GAMES, is_mario, make, make_test_env, preset, resolve_game, test_settings
