"""Building blocks shared by every agent: statistics, rollout storage, logging, checkpoints."""

from utilities.gae import discounted_filter, gae
from utilities.info_writer import InfoWriter
from utilities.normalizer import Normalizer, merge_moments
from utilities.optimization_batch import OptimizationBatch
