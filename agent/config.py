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
    target_kl: float | None = None    # stop the epochs of an update once approx KL passes this
    norm_adv: bool = True
    gamma: float = 0.99
    gae_lambda: float = 0.95
    ext_coef: float = 2.0             # with RND: advantage = ext_coef * A_ext + int_coef * A_int
    int_coef: float = 1.0
    rnd: RNDConfig | None = None

    def validate(self, num_envs):
        _positive(self, "rollout_steps", "num_minibatches", "epochs")
        _one_of(self, "value_loss", ("mse", "huber"))
        _one_of(self, "network", ("nature", "mario"))
        if num_envs * self.rollout_steps % self.num_minibatches:
            raise ValueError(f"num_minibatches {self.num_minibatches} must divide "
                             f"num_envs x rollout_steps = {num_envs * self.rollout_steps}")


@dataclasses.dataclass(frozen=True)
class Algorithm:
    """A registered algorithm: its config class, where its learner lives, whether it has RND."""
    config: type
    learner: str       # "module:Class", imported only when a run starts (TensorFlow)
    rnd: bool = False


ALGORITHMS = {
    "ppo": Algorithm(PPOConfig, "agent.ppo:PPO"),
    "ppo-rnd": Algorithm(PPOConfig, "agent.ppo:PPO", rnd=True),
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
    params: object = None             # the algorithm's config (ALGORITHMS[algo].config)

    def validate(self):
        """Raise ValueError naming the first bad value and what is allowed."""
        if self.algo not in ALGORITHMS:
            raise ValueError(f"unknown algo {self.algo!r}: choose one of {', '.join(ALGORITHMS)}")
        _positive(self, "total_steps", "num_envs")
        spec = ALGORITHMS[self.algo]
        if not isinstance(self.params, spec.config):
            raise ValueError(f"algo {self.algo!r} needs {spec.config.__name__} params")
        if spec.rnd != (getattr(self.params, "rnd", None) is not None):
            raise ValueError(f"algo {self.algo!r} {'needs' if spec.rnd else 'takes no'} RND settings")
        self.params.validate(self.num_envs)
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


def _params(algo, values):
    if algo not in ALGORITHMS:
        raise ValueError(f"unknown algo {algo!r}: choose one of {', '.join(ALGORITHMS)}")
    values = dict(values)
    if values.get("rnd") is not None:
        values["rnd"] = RNDConfig(**values["rnd"])
    return ALGORITHMS[algo].config(**values)


def _positive(obj, *names):
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _one_of(obj, name, allowed):
    if getattr(obj, name) not in allowed:
        raise ValueError(f"{name} must be {' or '.join(allowed)}, got {getattr(obj, name)!r}")
