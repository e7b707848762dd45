"""The one config of a training run; saved as JSON in every run folder."""

import dataclasses
import json


@dataclasses.dataclass
class TrainConfig:
    game: str = "freeway"
    algo: str = "ppo"                 # "ppo" or "ppo-rnd"
    seed: int = 1
    total_steps: int = 10_240_000     # agent steps summed over envs (1 step = 4 frames on Atari)
    num_envs: int = 8
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
    # RND (Burda et al. 2018); used when algo == "ppo-rnd".
    int_gamma: float = 0.99
    ext_coef: float = 2.0
    int_coef: float = 1.0
    rnd_update_fraction: float = 0.25  # share of each minibatch the predictor trains on
    rnd_warmup_steps: int = 1024       # random-action batched steps that initialise the obs normaliser
    obs_clip: float = 5.0
    env: dict = dataclasses.field(default_factory=dict)  # passed to the env constructor

    @property
    def rnd(self):
        return self.algo == "ppo-rnd"

    @property
    def batch_size(self):
        return self.num_envs * self.rollout_steps

    @property
    def num_updates(self):
        # --steps is a minimum: whole updates, rounded up.
        return -(-self.total_steps // self.batch_size)

    def validate(self):
        """Raise ValueError naming the first bad value and what is allowed."""
        for name in ("total_steps", "num_envs", "rollout_steps", "num_minibatches", "epochs"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.algo not in ("ppo", "ppo-rnd"):
            raise ValueError(f"unknown algo {self.algo!r}: choose ppo or ppo-rnd")
        if self.value_loss not in ("mse", "huber"):
            raise ValueError(f"value_loss must be mse or huber, got {self.value_loss!r}")
        if self.network not in ("nature", "mario"):
            raise ValueError(f"network must be nature or mario, got {self.network!r}")
        if self.batch_size % self.num_minibatches:
            raise ValueError(f"num_minibatches {self.num_minibatches} must divide "
                             f"num_envs x rollout_steps = {self.batch_size}")
        return self

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text):
        return cls(**json.loads(text))

    @classmethod
    def from_preset(cls, preset, **overrides):
        """A config from a game preset (a dict) with the given fields replaced."""
        values = {**preset, **{k: v for k, v in overrides.items() if v is not None}}
        values["env"] = dict(values.get("env", {}))
        return cls(**values)
