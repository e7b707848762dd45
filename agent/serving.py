"""The serving module an export writes: observations in, greedy action (and the
algorithm's named outputs) out. Loads with plain TensorFlow, without this package."""

import tensorflow as tf


class GreedyPolicy(tf.Module):
    def __init__(self, model, outputs):
        """model: the Keras network; outputs: its outputs -> dict of named tensors,
        whose first entry holds the scores the greedy action maximises (logits, Q values)."""
        super().__init__()
        self.model = model
        self._outputs = outputs
        spec = tf.TensorSpec((None,) + tuple(model.inputs[0].shape[1:]), model.inputs[0].dtype)
        self.__call__ = tf.function(self._serve, input_signature=[spec])

    def _serve(self, obs):
        named = self._outputs(self.model(obs, training=False))
        scores = next(iter(named.values()))
        return {"action": tf.argmax(scores, axis=-1, output_type=tf.int32), **named}


def served_shapes(loaded):
    """(observation shape, number of actions) of a loaded export's serving signature: what
    the policy itself takes, whatever its card says."""
    signature = loaded.signatures["serving_default"]
    (spec,) = signature.structured_input_signature[1].values()
    scores = [out for name, out in signature.structured_outputs.items() if name != "action" and out.shape.rank == 2]
    return list(spec.shape[1:]), int(scores[0].shape[-1])
