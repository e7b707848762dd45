"""Keras 3 networks: actor-critic with extrinsic and intrinsic value heads, RND nets.

Orthogonal initialisation with gain sqrt(2) for hidden layers, 0.01 for the policy
head and 1 for value heads, as in the PPO baselines (Engstrom et al. 2020 list it
among the details that matter).

precision "bf16" builds an image torso with Keras' mixed_bfloat16 policy (bf16
compute, float32 weights and optimizer state); the heads always compute in float32,
so logits, log-softmax, values and every loss stay float32 (agent/precision.py).
Vector MLPs and the RND nets stay float32 (see actor_critic and agent/rnd.py).
"""

import math

import keras
from keras import layers

ROOT2 = math.sqrt(2.0)


def dtype_policy(precision):
    return "mixed_bfloat16" if precision == "bf16" else "float32"


def _dense(units, gain, activation=None, name=None, dtype="float32"):
    return layers.Dense(units, activation=activation, name=name, dtype=dtype,
                        kernel_initializer=keras.initializers.Orthogonal(gain))


def _conv(filters, kernel, stride, activation, dtype="float32", padding="valid"):
    return layers.Conv2D(filters, kernel, strides=stride, activation=activation, padding=padding, dtype=dtype,
                         kernel_initializer=keras.initializers.Orthogonal(ROOT2))


def _to_nhwc(x, dtype="float32"):
    # Observations are [C, H, W] (EnvPool's layout); TF's CPU convolutions are NHWC.
    return layers.Permute((2, 3, 1), dtype=dtype)(x)


def _nature_convs(x, activation, dtype="float32"):
    # Mnih et al. 2015 ("Nature CNN"), also the RND paper's torso.
    x = _conv(32, 8, 4, activation, dtype)(x)
    x = _conv(64, 4, 2, activation, dtype)(x)
    x = _conv(64, 3, 1, activation, dtype)(x)
    return layers.Flatten(dtype=dtype)(x)


def _mario_convs(x, dtype="float32"):
    # Seed 000 / CVHvn's Mario net: 4 x conv(32, 3x3, stride 2), 84 -> 42 -> 21 -> 11 -> 6.
    for _ in range(4):
        x = _conv(32, 3, 2, "relu", dtype, padding="same")(x)
    return layers.Flatten(dtype=dtype)(x)


def is_image(obs_shape):
    return len(obs_shape) == 3


def _mlp(x, activation="tanh", dtype="float32"):
    x = _dense(64, ROOT2, activation, dtype=dtype)(x)
    return _dense(64, ROOT2, activation, dtype=dtype)(x)


def actor_critic(obs_shape, num_actions, obs_dtype="uint8", torso="nature", precision="float32"):
    """obs -> (action logits [B, A], extrinsic value [B, 1], intrinsic value [B, 1]).

    Images share a Nature-CNN torso (rewards are clipped, so value errors stay
    small). Vectors get separate actor and critic MLPs, as CleanRL's classic-control
    agent: unclipped returns make value gradients large, and under global-norm
    clipping a shared torso would let them crowd out the policy gradient.
    """
    # bf16 where the time is, the convolutions; small MLPs gain nothing on a CPU, and in
    # bf16 PPO+RND lost Deep Sea's treasure (its intrinsic values are small differences).
    policy = dtype_policy(precision if is_image(obs_shape) else "float32")
    inputs = keras.Input(obs_shape, dtype=obs_dtype if is_image(obs_shape) else "float32")
    if is_image(obs_shape):
        x = _to_nhwc(layers.Rescaling(1.0 / 255.0, dtype=policy)(inputs), policy)
        convs = _mario_convs(x, policy) if torso == "mario" else _nature_convs(x, "relu", policy)
        # CleanRL's head: orthogonal init and a ReLU on the 512 units. Seed 000's and CVHvn's
        # Mario nets leave that layer linear with PyTorch's default init; every Mario run here
        # (PPO's clear at 471k included) was trained with this head, so it stays.
        actor = critic = _dense(512, ROOT2, "relu", dtype=policy)(convs)
    else:
        actor, critic = _mlp(inputs, dtype=policy), _mlp(inputs, dtype=policy)
    logits = _dense(num_actions, 0.01, name="logits")(actor)
    value_ext = _dense(1, 1.0, name="value_ext")(critic)
    value_int = _dense(1, 1.0, name="value_int")(critic)
    name = "actor_critic_mario" if torso == "mario" and is_image(obs_shape) else "actor_critic"
    return keras.Model(inputs, [logits, value_ext, value_int], name=name)


def _rnd_torso(obs_shape):
    # Burda et al. 2018: the Nature CNN with leaky ReLUs on the whitened last frame.
    inputs = keras.Input(obs_shape, dtype="float32")
    if is_image(obs_shape):
        return inputs, _nature_convs(_to_nhwc(inputs), "leaky_relu")
    return inputs, _mlp(inputs, "leaky_relu")


def rnd_target(obs_shape, features=512):
    """The fixed random network whose outputs the predictor learns."""
    inputs, h = _rnd_torso(obs_shape)
    model = keras.Model(inputs, _dense(features, ROOT2)(h), name="rnd_target")
    model.trainable = False
    return model


def rnd_predictor(obs_shape, features=512):
    """The target's torso plus two more layers, so it can fit the target."""
    inputs, h = _rnd_torso(obs_shape)
    h = _dense(features, ROOT2, "relu")(h)
    h = _dense(features, ROOT2, "relu")(h)
    return keras.Model(inputs, _dense(features, ROOT2)(h), name="rnd_predictor")


# --- Q-networks (value-based algorithms, agent/dqn.py) ----------------------


def dueling_aggregate(value, advantages):
    """Wang et al. 2016: Q = V + A - mean_a A; subtracting the mean makes V and A
    identifiable (seed 003's DuelingConvQNetwork does the same)."""
    return value + advantages - keras.ops.mean(advantages, axis=-1, keepdims=True)


@keras.saving.register_keras_serializable(package="rl_games")
class DuelingAggregate(layers.Layer):
    """[V [B, 1], A [B, n]] -> Q [B, n] (dueling_aggregate as a layer, so it saves)."""

    def call(self, inputs):
        value, advantages = inputs
        return dueling_aggregate(value, advantages)


def q_network(obs_shape, num_actions, obs_dtype="uint8", torso="nature", dueling=False, hidden=(256, 256),
              precision="float32"):
    """obs -> Q values [B, num_actions].

    Images: the torso ("nature": Mnih et al. 2015, also seed 001's MarioNet and seed 003's
    conv block; "mario": seed 000's; "mlp": flattened pixels into the MLP), then a 512-unit
    layer and the Q head; dueling gives the value and the advantage stream a 512-unit layer
    each (Wang et al. 2016). Vectors: an MLP of `hidden` ReLU layers, then the head(s).
    The heads compute in float32 whatever the precision of the hidden layers.
    """
    policy = dtype_policy(precision)
    image = is_image(obs_shape)
    inputs = keras.Input(obs_shape, dtype=obs_dtype if image else "float32")
    if image and torso != "mlp":
        x = _to_nhwc(layers.Rescaling(1.0 / 255.0, dtype=policy)(inputs), policy)
        features = _mario_convs(x, policy) if torso == "mario" else _nature_convs(x, "relu", policy)

        def stream():
            return _dense(512, ROOT2, "relu", dtype=policy)(features)
    else:
        x = layers.Flatten(dtype=policy)(layers.Rescaling(1.0 / 255.0, dtype=policy)(inputs)) if image else inputs
        for units in hidden:
            x = _dense(units, ROOT2, "relu", dtype=policy)(x)
        features = x

        def stream():
            return features
    if dueling:
        value = _dense(1, 1.0, name="value")(stream())
        advantages = _dense(num_actions, 1.0, name="advantage")(stream())
        q = DuelingAggregate(name="q_values", dtype="float32")([value, advantages])
    else:
        q = _dense(num_actions, 1.0, name="q_values")(stream())
    return keras.Model(inputs, q, name="dueling_q_network" if dueling else "q_network")
