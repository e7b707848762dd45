"""The run's config: the common fields, the algorithm's own config, and the registry.

A run folder's config.json is `RunConfig.to_json()`; `params` holds the algorithm's
dataclass. Nothing here imports TensorFlow, so the CLI can check input first.
"""

import dataclasses
import json

FORMAT = 2   # of config.json and the checkpoint; format 1 was the single-Trainer layout


@dataclasses.dataclass
class RNDConfig:
    """Random Network Distillation (Burda et al. 2018), a component any algorithm can hold."""
    int_gamma: float = 0.99            # discount of the intrinsic return (its filter and its GAE)
    update_fraction: float = 0.25      # share of each minibatch the predictor trains on
    warmup_steps: int = 1024           # random-action batched steps that initialise the obs normaliser
    obs_clip: float = 5.0              # whitened observations are clipped to [-obs_clip, obs_clip]
    width: int = 512                   # the output features and the predictor's two extra layers (Burda et al.: 512)


@dataclasses.dataclass
class PPOConfig:
    """PPO (Schulman et al. 2017); with `rnd` set, PPO+RND's two-stream advantages."""
    rollout_steps: int = 128          # batched steps per rollout
    num_minibatches: int = 4
    epochs: int = 3
    learning_rate: float = 2.5e-4
    anneal: bool = True               # linear decay of lr and clip range to 0 (seed 004's PPO preset)
    clip_range: float = 0.1
    ent_coef: float = 0.01
    vf_coef: float = 1.0
    value_loss: str = "mse"           # "mse" or "huber"
    network: str = "nature"           # image torso: "nature" (Mnih et al. 2015) or "mario" (seed 000)
    max_grad_norm: float = 0.5
    target_kl: float | None = None    # an update ends at the first minibatch whose approx KL passes 1.5 x this
    norm_adv: bool = True
    gamma: float = 0.99
    gae_lambda: float = 0.95
    ext_coef: float = 2.0             # with RND: advantage = ext_coef * A_ext + int_coef * A_int
    int_coef: float = 1.0
    rnd: RNDConfig | None = None

    def memory_needs(self, num_envs, obs_shape, obs_dtype):
        """[(what, bytes)] of the algorithm's large arrays, known before any is allocated
        (the CLI checks them against free memory): here the rollout."""
        from utilities.optimization_batch import OptimizationBatch

        return [(f"a rollout of {num_envs} x {self.rollout_steps} steps",
                 OptimizationBatch.required_bytes(self.rollout_steps, num_envs, obs_shape, obs_dtype))]

    def validate(self, num_envs):
        _positive(self, "rollout_steps", "num_minibatches", "epochs")
        _one_of(self, "value_loss", ("mse", "huber"))
        _one_of(self, "network", ("nature", "mario"))
        _clip_norm(self)
        if num_envs * self.rollout_steps % self.num_minibatches:
            raise ValueError(f"num_minibatches {self.num_minibatches} must divide "
                             f"num_envs x rollout_steps = {num_envs * self.rollout_steps}")


@dataclasses.dataclass
class PTRPPOConfig(PPOConfig):
    """PPO with prioritised trajectory replay (PTR-PPO, Liang et al. 2021), as seed 002's
    reference codes it (shared/reference/ptr_ppo.md). The PPO fields drive both phases:
    `epochs` are the on-policy epochs (K_on), `num_minibatches` splits a round's N x T rows
    and equally the N x T rows of each off-policy pass."""
    off_epochs: int = 8               # K_off off-policy passes per round, each over N freshly drawn trajectories
    memory_size: int = 256            # M trajectories in the FIFO memory (seed 002: 256 beat 512 and 1024)
    off_policy_start: int = 8         # rounds in memory before the off-policy passes begin (seed 002: 8)
    alpha: float = 0.7                # priority exponent: leaf (mean |GAE| + priority_eps)^alpha (seed 002)
    priority_eps: float = 0.01
    eps_marg: float = 0.2             # rho_marg = min(1 - eps, rho) + max(0, (rho - (1 - eps)) / rho) (paper)
    stratified: bool = True           # a draw per equal slice of the priority mass (seed 002) or i.i.d.

    def memory_needs(self, num_envs, obs_shape, obs_dtype):
        from utilities.optimization_batch import OptimizationBatch
        from utilities.trajectory_memory import TrajectoryMemory

        # An off-policy pass holds its N drawn trajectories as stacks over T + 1 steps (the
        # frozen network's input, read by the minibatches too) and their columns.
        replayed = OptimizationBatch.required_bytes(self.rollout_steps + 1, num_envs, obs_shape, obs_dtype)
        return super().memory_needs(num_envs, obs_shape, obs_dtype) + [
            (f"a trajectory memory of {self.memory_size} x {self.rollout_steps} steps",
             TrajectoryMemory.required_bytes(self.memory_size, self.rollout_steps, obs_shape, obs_dtype)),
            (f"a replayed batch of {num_envs} x {self.rollout_steps} steps", replayed)]

    def validate(self, num_envs):
        super().validate(num_envs)
        _positive(self, "off_epochs", "memory_size", "off_policy_start")
        if self.memory_size < self.off_policy_start * num_envs:
            raise ValueError(f"memory_size {self.memory_size} cannot hold off_policy_start x num_envs = "
                             f"{self.off_policy_start * num_envs} trajectories")
        if not 0.0 < self.eps_marg < 1.0:
            raise ValueError(f"eps_marg must lie in (0, 1), got {self.eps_marg!r}")
        if not self.alpha >= 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha!r}")
        # A trajectory of zero mean |GAE| would get priority 0: never drawn again, never rewritten.
        if not self.priority_eps > 0:
            raise ValueError(f"priority_eps must be > 0, got {self.priority_eps!r}")


EPSILON_KINDS = {
    # kind: the keys it needs (agent/dqn.py's epsilon() reads them)
    "decay": ("start", "factor", "floor"),             # start * factor^step, floored (seed 001: per agent step)
    "linear": ("start", "end", "steps"),               # start -> end over `steps` agent steps after `begin` (default 0)
    "linear_episodes": ("start", "end", "episodes"),   # start -> end over finished episodes (seed 003)
}


@dataclasses.dataclass
class DQNConfig:
    """Double DQN (van Hasselt et al. 2016) with optional dueling heads (Wang et al. 2016),
    proportional prioritised replay (Schaul et al. 2016) and, with `rnd` set, seed 003's
    RND reward mixing. Agent steps count every env's steps (as RunConfig.total_steps)."""
    buffer_size: int = 100_000        # replay capacity in transitions, all envs together (one ring per env)
    min_replay: int = 20_000          # burn-in: no gradient step before this many agent steps (acting goes on)
    batch_size: int = 32
    learning_rate: float = 6.25e-5
    adam_epsilon: float = 1.5e-4      # Dopamine's Adam epsilon; PyTorch's default is 1e-8
    gamma: float = 0.99
    n_step: int = 1                   # n-step returns, summed at sample time by the replay
    loss: str = "huber"               # "huber" (Smooth L1, delta 1) or "mse" (mean squared TD error)
    max_grad_norm: float | None = None   # global-norm gradient clipping; None: none (seeds 001, 003)
    network: str = "nature"           # image torso: "nature" (Mnih et al. 2015, seeds 001/003), "mario" (seed 000)
    #                                   or "mlp" (flattened); vectors always get the MLP below
    hidden: list = dataclasses.field(default_factory=lambda: [256, 256])   # MLP hidden sizes
    dueling: bool = False             # Q = V + A - mean A (Wang et al. 2016)
    prioritized: bool = False         # proportional prioritised replay instead of uniform
    alpha: float = 0.6                # priority exponent: P(i) ~ (|td| + eps)^alpha (Schaul et al.: 0.6)
    beta0: float = 0.4                # importance-sampling exponent, annealed linearly to 1 over the run
    priority_eps: float = 1e-6        # keeps a zero-TD transition drawable
    # Train cadence: `gradient_steps` gradient steps every `train_period` units, the target
    # network copied every `target_period` units; a unit is an agent step ("steps": Dopamine,
    # seed 001) or a finished episode ("episodes": seed 003 trains after each episode).
    unit: str = "steps"
    train_period: int = 4
    gradient_steps: int = 1
    target_period: int = 8_000
    # The loop's update: every `update_every` agent steps the gradient steps that fell due
    # since the last one run in a chunk (in order, target syncs at the gradient step where
    # they fell due), so the loop's cadences (checkpoints, tests, logging) stay meaningful.
    # Acting therefore uses weights up to update_every agent steps old (Dopamine trains
    # inside every 4th step); keep it small against target_period.
    update_every: int = 1_000
    epsilon: dict = dataclasses.field(default_factory=lambda: {"kind": "linear", "start": 1.0, "end": 0.01,
                                                               "steps": 250_000})
    # Reward = ext_coef * extrinsic, plus with `rnd` (seed 003) int_coef * clip(standardise(
    # intrinsic), int_clip), the intrinsic reward standardised by the mean and std of its last
    # `int_window` values; the predictor trains on rnd.update_fraction of each batch.
    ext_coef: float = 1.0
    int_coef: float = 1.0
    int_window: int = 1_000
    int_clip: float = 5.0
    # When the intrinsic reward is computed: "collect" (seed 003: once, when the transition
    # is stored) or "sample" (recomputed by the current predictor for each sampled batch, as
    # Acme's RND learner does, so a state's bonus fades as it stops being novel); n_step 1.
    int_reward_at: str = "collect"
    rnd: RNDConfig | None = None

    def __post_init__(self):
        # Presets are shared dicts: a config owns copies of its mutable fields.
        self.hidden = list(self.hidden)
        self.epsilon = dict(self.epsilon)

    def memory_needs(self, num_envs, obs_shape, obs_dtype):
        """[(what, bytes)]: the replay (see PPOConfig.memory_needs)."""
        from utilities.replay import PrioritizedReplay, ReplayBuffer

        replay = PrioritizedReplay if self.prioritized else ReplayBuffer
        return [(f"replay capacity {self.buffer_size}",
                 replay.required_bytes(self.buffer_size, num_envs, obs_shape, obs_dtype))]

    def validate(self, num_envs):
        _positive(self, "buffer_size", "batch_size", "n_step", "train_period", "gradient_steps",
                  "target_period", "update_every", "int_window")
        if not isinstance(self.min_replay, int) or isinstance(self.min_replay, bool) or self.min_replay < 0:
            raise ValueError(f"min_replay must be 0 or a positive integer, got {self.min_replay!r}")
        _one_of(self, "loss", ("huber", "mse"))
        _one_of(self, "network", ("nature", "mario", "mlp"))
        _one_of(self, "unit", ("steps", "episodes"))
        _one_of(self, "int_reward_at", ("collect", "sample"))
        if self.int_reward_at == "sample" and self.n_step != 1:
            raise ValueError(f"int_reward_at 'sample' needs n_step 1, got n_step {self.n_step}")
        # The replay keeps one ring per env; each needs room for a frame stack and the
        # n-step window around its write cursor (utilities/replay.py).
        needed = num_envs * (4 + self.n_step + 2)
        if self.buffer_size < needed:
            raise ValueError(f"buffer_size {self.buffer_size} is too small for {num_envs} envs: "
                             f"at least {needed} (4 + n_step + 2 slots per env)")
        kind = self.epsilon.get("kind")
        if kind not in EPSILON_KINDS:
            raise ValueError(f"epsilon kind must be {' or '.join(EPSILON_KINDS)}, got {kind!r}")
        missing = [k for k in EPSILON_KINDS[kind] if k not in self.epsilon]
        if missing:
            raise ValueError(f"epsilon {kind!r} needs {', '.join(missing)}")
        if not all(0.0 <= self.epsilon[k] <= 1.0 for k in ("start", "end", "floor") if k in self.epsilon):
            raise ValueError(f"epsilon values must lie in [0, 1], got {self.epsilon}")
        # The schedule divides by steps/episodes; a factor above 1 would raise epsilon past 1.
        for key, ok, allowed in (("factor", lambda v: 0.0 < v <= 1.0, "in (0, 1]"), ("steps", lambda v: v > 0, "> 0"),
                                 ("episodes", lambda v: v > 0, "> 0"), ("begin", lambda v: v >= 0, ">= 0")):
            if key in self.epsilon and not ok(self.epsilon[key]):
                raise ValueError(f"epsilon {key} must be {allowed}, got {self.epsilon[key]!r}")
        if not self.alpha >= 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha!r}")
        # beta anneals from beta0 up to 1 (Schaul et al. 2016).
        if not 0.0 <= self.beta0 <= 1.0:
            raise ValueError(f"beta0 must lie in [0, 1], got {self.beta0!r}")
        # A zero |TD error| with no eps would leave a sampleable transition that is never drawn.
        if not (self.priority_eps > 0 or (self.priority_eps == 0 and not self.prioritized)):
            raise ValueError(f"priority_eps must be > 0 (0 only without prioritised replay), got {self.priority_eps!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        _clip_norm(self)


@dataclasses.dataclass(frozen=True)
class Algorithm:
    """A registered algorithm: its config class, where its learner lives, whether it has RND."""
    config: type
    learner: str       # "module:Class", imported only when a run starts (TensorFlow)
    rnd: bool = False


ALGORITHMS = {
    "ppo": Algorithm(PPOConfig, "agent.ppo:PPO"),
    "ppo-rnd": Algorithm(PPOConfig, "agent.ppo:PPO", rnd=True),
    # Value-based: Double DQN; with RND, seed 003's dueling + prioritised + RND agent.
    "ddqn": Algorithm(DQNConfig, "agent.dqn:DQN"),
    "ddqn-rnd": Algorithm(DQNConfig, "agent.dqn:DQN", rnd=True),
    # PPO with prioritised trajectory replay (seed 002).
    "ptr-ppo": Algorithm(PTRPPOConfig, "agent.ptr_ppo:PTRPPO"),
}


def learner_class(algo):
    import importlib

    module, name = ALGORITHMS[algo].learner.split(":")
    return getattr(importlib.import_module(module), name)


@dataclasses.dataclass
class RunConfig:
    game: str = "freeway"
    algo: str = "ppo"
    seed: int = 1
    total_steps: int = 10_240_000     # agent steps summed over envs (1 step = 4 frames on Atari)
    num_envs: int = 8
    env: dict = dataclasses.field(default_factory=dict)   # passed to the env constructor
    precision: str = "float32"        # network compute: "float32" or "bf16" (agent/precision.py)
    params: object = None             # the algorithm's config (ALGORITHMS[algo].config)
    # How the run goes besides what it learns (tests, stop rules, checkpoint cadence: agent/cli.py's
    # RUN_OPTIONS), kept from its start so that a plain --resume goes on as it began.
    options: dict = dataclasses.field(default_factory=dict)
    # --init-from: the exported policy a new run's network starts from ({"model", "algo",
    # "steps_trained"} of its card), or None for freshly initialised weights.
    init_from: dict = None

    def validate(self):
        """Raise ValueError naming the first bad value and what is allowed."""
        check_algo(self.algo)
        _positive(self, "total_steps", "num_envs")
        _one_of(self, "precision", ("float32", "bf16"))
        spec = ALGORITHMS[self.algo]
        if not isinstance(self.params, spec.config):
            raise ValueError(f"algo {self.algo!r} needs {spec.config.__name__} params")
        if spec.rnd != (getattr(self.params, "rnd", None) is not None):
            raise ValueError(f"algo {self.algo!r} {'needs' if spec.rnd else 'takes no'} RND settings")
        if spec.rnd:
            _positive(self.params.rnd, "width")
            if not 0.0 < self.params.rnd.update_fraction <= 1.0:
                raise ValueError(f"rnd update_fraction must lie in (0, 1], got {self.params.rnd.update_fraction!r}")
        self.params.validate(self.num_envs)
        if self.init_from is not None:
            check_init_from(self.init_from)
        return self

    def to_json(self):
        return json.dumps({"format": FORMAT, **dataclasses.asdict(self)}, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text):
        """The config of a run folder; ValueError for another format (an older package)."""
        values = json.loads(text)
        found = values.pop("format", 1)
        if found != FORMAT:
            raise ValueError(f"it comes from an older version of the package (run format {found}; "
                             f"this version reads format {FORMAT}): start a new run")
        values["params"] = _params(values["algo"], values.get("params") or {})
        return cls(**values)

    @classmethod
    def from_preset(cls, preset, game, algo, seed=1, **overrides):
        """A config from a preset (agent.presets) with the given common fields replaced
        (None keeps the preset's value)."""
        common = {f.name for f in dataclasses.fields(cls)} - {"params"}
        values = {k: v for k, v in preset.items() if k in common}
        values.update({k: v for k, v in overrides.items() if v is not None})
        values["env"] = dict(values.get("env", {}))
        params = {k: v for k, v in preset.items() if k not in common}
        return cls(game=game, algo=algo, seed=seed, params=_params(algo, params), **values)


def check_init_from(base):
    """ValueError unless `base` is what --init-from records: model and algo names, and the
    agent steps behind the policy."""
    if (not isinstance(base, dict) or set(base) != {"model", "algo", "steps_trained"}
            or not all(isinstance(base[k], str) for k in ("model", "algo"))
            or not isinstance(base["steps_trained"], int) or isinstance(base["steps_trained"], bool)
            or base["steps_trained"] < 0):
        raise ValueError(f"init_from must be null or an object with model and algo (text) and steps_trained "
                         f"(an integer >= 0), got {base!r}")


def check_algo(algo):
    """ValueError naming `algo` and the registered ones, unless it is one."""
    if algo not in ALGORITHMS:
        raise ValueError(f"unknown algo {algo!r}: choose one of {', '.join(ALGORITHMS)}")


def _params(algo, values):
    check_algo(algo)
    values = dict(values)
    if values.get("rnd") is not None:
        values["rnd"] = RNDConfig(**values["rnd"])
    return ALGORITHMS[algo].config(**values)


def _positive(obj, *names):
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _clip_norm(obj):
    # 0 would scale every gradient to 0 (a frozen network); None is "no clip".
    if obj.max_grad_norm is not None and not obj.max_grad_norm > 0:
        raise ValueError(f"max_grad_norm must be > 0 or null (no clip), got {obj.max_grad_norm!r}")


def _one_of(obj, name, allowed):
    if getattr(obj, name) not in allowed:
        raise ValueError(f"{name} must be {' or '.join(allowed)}, got {getattr(obj, name)!r}")
