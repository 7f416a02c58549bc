"""Straight-through estimators shared by the layers (forward exact, backward surrogate)."""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

GATE_SHARPNESS = 5.0  # FracBNN's sigmoid(5 * (out_msb - threshold)) relaxation of the gate


def _bipolar(condition: tf.Tensor) -> tf.Tensor:
    return tf.where(condition, tf.constant(1.0, tf.float32), tf.constant(-1.0, tf.float32))


@tf.custom_gradient
def ste_sign(u: tf.Tensor) -> tuple[tf.Tensor, Callable[[tf.Tensor], tf.Tensor]]:
    """``+1 if u >= 0 else -1``; gradient 1 where ``|u| <= 1``, else 0."""

    def grad(dy: tf.Tensor) -> tf.Tensor:
        return dy * tf.cast(tf.abs(u) <= 1.0, dy.dtype)

    return _bipolar(u >= 0), grad


@tf.custom_gradient
def ste_sign_identity(w: tf.Tensor) -> tuple[tf.Tensor, Callable[[tf.Tensor], tf.Tensor]]:
    """``+1 if w >= 0 else -1`` (sign(0) = +1); gradient passed unchanged (identity)."""

    def grad(dy: tf.Tensor) -> tf.Tensor:
        return dy

    return _bipolar(w >= 0), grad


@tf.custom_gradient
def ste_bit_planes(x: tf.Tensor) -> tuple[tuple[tf.Tensor, tf.Tensor], Callable[..., tf.Tensor]]:
    """FracBNN's 2-bit quantizer as bipolar bit planes (msb, lsb).

    ``q = round_half_even((clip(x, -1, 1) + 1) * 1.5)`` in float32; ``msb = +1 iff q >= 2``,
    ``lsb = +1 iff q`` is odd. Backward: each plane passes its gradient unchanged where
    ``|x| <= 1`` and 0 outside, so the level ``(2 msb + lsb) / 3`` has the identity STE of
    FracBNN's QuantSign on [-1, 1].
    """
    q = tf.math.round((tf.clip_by_value(x, -1.0, 1.0) + 1.0) * 1.5)  # tf.round: half to even
    msb = _bipolar(q >= 2.0)
    lsb = _bipolar(tf.math.floormod(q, 2.0) == 1.0)

    def grad(d_msb: tf.Tensor, d_lsb: tf.Tensor) -> tf.Tensor:
        return (d_msb + d_lsb) * tf.cast(tf.abs(x) <= 1.0, d_msb.dtype)

    return (msb, lsb), grad


@tf.custom_gradient
def ste_gate(a: tf.Tensor, threshold: tf.Tensor
             ) -> tuple[tf.Tensor, Callable[[tf.Tensor], tuple[tf.Tensor, tf.Tensor]]]:
    """The hard gate ``[a > threshold]`` (0.0/1.0, strict, threshold per last-axis channel).

    Backward: the gradient of FracBNN's relaxation ``s = sigmoid(5 (a - threshold))``:
    ``ds/da = 5 s (1 - s) = -ds/dthreshold``.
    """

    def grad(dg: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        s = tf.sigmoid(GATE_SHARPNESS * (a - threshold))
        d = dg * GATE_SHARPNESS * s * (1.0 - s)
        axes = list(range(len(d.shape) - 1))
        return d, -tf.reduce_sum(d, axis=axes)

    return tf.cast(a > threshold, tf.float32), grad
