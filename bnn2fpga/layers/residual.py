"""ReActNet's learned-shift activations: ``RSign`` and ``RPReLU``."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from bnn2fpga.layers.ste import ste_sign

_register = tf.keras.utils.register_keras_serializable(package="bnn2fpga")


def _channels(layer: tf.keras.layers.Layer, input_shape: Any) -> int:
    c = tf.TensorShape(input_shape)[-1]
    if c is None:
        raise ValueError(f"{type(layer).__name__} {layer.name!r} needs a known last (channel) "
                         f"axis; got input shape {tf.TensorShape(input_shape)}")
    return int(c)


@_register
class RSign(tf.keras.layers.Layer):
    """ReActNet's RSign: ``y = +1 if x + shift >= 0 else -1`` (float32, per channel).

    Weight ``shift`` of shape (C,) (C = last axis), initialised at 0. ``x + shift`` is one
    float32 add, whose sign is that of the exact sum (an IEEE sum rounds to zero only when
    it is exactly zero), so the layer is ``x >= -shift`` exactly, with one exception: TF's
    CPU kernels flush subnormals to zero, so a sum (or an ``x``) of magnitude below 2^-126
    counts as 0 and gives +1. A compiler should settle ties by running the layer itself.
    Backward (straight-through): ``dy/dx = dy/dshift = 1`` where ``|x + shift| <= 1``, else 0.
    """

    def build(self, input_shape: Any) -> None:
        c = _channels(self, input_shape)
        self.shift = self.add_weight(name="shift", shape=(c,), initializer="zeros",
                                     trainable=True)
        super().build(input_shape)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return ste_sign(tf.convert_to_tensor(inputs, tf.float32) + self.shift)

    def compute_output_shape(self, input_shape: Any) -> tf.TensorShape:
        return tf.TensorShape(input_shape)

    def get_config(self) -> dict[str, Any]:
        return super().get_config()


@_register
class RPReLU(tf.keras.layers.Layer):
    """ReActNet's RPReLU: ``y = f(x + shift_in) + shift_out`` with ``f(u) = u`` for
    ``u >= 0`` and ``slope * u`` otherwise, all per channel, in float32.

    Weights of shape (C,): ``shift_in`` (init 0), ``slope`` (init 0.25), ``shift_out``
    (init 0). Slopes are not constrained: a learned slope may be zero or negative (the
    layer is then not monotonic, which a compiler must handle). Gradients are the exact
    derivatives (at ``u = 0`` the ``u >= 0`` branch: 1 for x and 0 for slope).
    """

    def build(self, input_shape: Any) -> None:
        c = _channels(self, input_shape)
        self.shift_in = self.add_weight(name="shift_in", shape=(c,), initializer="zeros",
                                        trainable=True)
        self.slope = self.add_weight(name="slope", shape=(c,),
                                     initializer=tf.keras.initializers.Constant(0.25),
                                     trainable=True)
        self.shift_out = self.add_weight(name="shift_out", shape=(c,), initializer="zeros",
                                         trainable=True)
        super().build(input_shape)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        u = tf.convert_to_tensor(inputs, tf.float32) + self.shift_in
        return tf.where(u >= 0, u, self.slope * u) + self.shift_out

    def compute_output_shape(self, input_shape: Any) -> tf.TensorShape:
        return tf.TensorShape(input_shape)

    def get_config(self) -> dict[str, Any]:
        return super().get_config()
