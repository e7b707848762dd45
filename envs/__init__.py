"""Batched environments behind one interface (see envs.envpool_env)."""

from envs.envpool_env import EnvPoolEnv
from envs.games import ALGOS, GAMES, make, preset, resolve_game
