"""Keras 3 networks: actor-critic with extrinsic and intrinsic value heads, RND nets.

Orthogonal initialisation with gain sqrt(2) for hidden layers, 0.01 for the policy
head and 1 for value heads, as in the PPO baselines (Engstrom et al. 2020 list it
among the details that matter).
"""

import math

import keras
from keras import layers

ROOT2 = math.sqrt(2.0)


def _dense(units, gain, activation=None, name=None):
    return layers.Dense(units, activation=activation, name=name,
                        kernel_initializer=keras.initializers.Orthogonal(gain))


def _conv(filters, kernel, stride, activation):
    return layers.Conv2D(filters, kernel, strides=stride, activation=activation,
                         kernel_initializer=keras.initializers.Orthogonal(ROOT2))


def _to_nhwc(x):
    # Observations are [C, H, W] (EnvPool's layout); TF's CPU convolutions are NHWC.
    return layers.Permute((2, 3, 1))(x)


def _nature_convs(x, activation):
    # Mnih et al. 2015 ("Nature CNN"), also the RND paper's torso.
    x = _conv(32, 8, 4, activation)(x)
    x = _conv(64, 4, 2, activation)(x)
    x = _conv(64, 3, 1, activation)(x)
    return layers.Flatten()(x)


def _mario_convs(x):
    # Seed 000 / CVHvn's Mario net: 4 x conv(32, 3x3, stride 2), 84 -> 42 -> 21 -> 11 -> 6.
    for _ in range(4):
        x = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu",
                          kernel_initializer=keras.initializers.Orthogonal(ROOT2))(x)
    return layers.Flatten()(x)


def is_image(obs_shape):
    return len(obs_shape) == 3


def _mlp(x, activation="tanh"):
    x = _dense(64, ROOT2, activation)(x)
    return _dense(64, ROOT2, activation)(x)


def actor_critic(obs_shape, num_actions, obs_dtype="uint8", torso="nature"):
    """obs -> (action logits [B, A], extrinsic value [B, 1], intrinsic value [B, 1]).

    Images share a Nature-CNN torso (rewards are clipped, so value errors stay
    small). Vectors get separate actor and critic MLPs, as CleanRL's classic-control
    agent: unclipped returns make value gradients large, and under global-norm
    clipping a shared torso would let them crowd out the policy gradient.
    """
    inputs = keras.Input(obs_shape, dtype=obs_dtype if is_image(obs_shape) else "float32")
    if is_image(obs_shape):
        x = _to_nhwc(layers.Rescaling(1.0 / 255.0)(inputs))
        convs = _mario_convs(x) if torso == "mario" else _nature_convs(x, "relu")
        actor = critic = _dense(512, ROOT2, "relu")(convs)
    else:
        actor, critic = _mlp(inputs), _mlp(inputs)
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
    h = _dense(512, ROOT2, "relu")(h)
    h = _dense(512, ROOT2, "relu")(h)
    return keras.Model(inputs, _dense(features, ROOT2)(h), name="rnd_predictor")
