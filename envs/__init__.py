"""Batched environments behind one interface.

Every env here (EnvPool tasks, the Mario adapter, Deep Sea) is a batch of N envs
stepped together:

  num_envs, single_observation_space, single_action_space
  reset() -> (obs [N, ...], info)
  step(actions [N]) -> (obs, reward, terminated, truncated, info), all [N]
  close()

info always carries
  "reset_row"      True where this step was a next-step auto-reset (EnvPool's rule:
                   the step after an end ignores the action, pays 0 and returns the
                   new episode's first observation) -- the row is not a transition;
  "episode_end", "episode_return", "episode_length"
                   the real end of an episode (game over or time-out, not a lost
                   life) and its UNCLIPPED return and length in agent steps.
It may carry, for greedy tests, "cleared" (the level was finished), "progress"
(how far the agent got, e.g. Mario's x position) and "screen" (RGB frames to record).
"""

from envs.envpool_env import EnvPoolEnv
from envs.games import (GAMES, Game, cpu_settings, env_bytes, make, make_test_env, observation_space, resolve_game,
                        stage_settings)
