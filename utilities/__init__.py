"""Building blocks shared by every agent: statistics, rollout storage, logging, checkpoints.

Import the modules themselves (utilities.gae, utilities.normalizer...): this package
file imports nothing, so light modules (run_folder) load without TensorFlow."""
