"""FracBNN's layers: the ``Thermometer`` input encoder and the precision-gated ``PGConv2D``."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from bnn2fpga.layers.ste import ste_bit_planes, ste_gate, ste_sign_identity

_register = tf.keras.utils.register_keras_serializable(package="bnn2fpga")


def thermometer_levels(resolution: float) -> int:
    """Levels per colour channel: ``round(255 / resolution)`` (32 at resolution 8)."""
    return int(round(255.0 / float(resolution)))


@_register
class Thermometer(tf.keras.layers.Layer):
    """FracBNN's thermometer input encoding: (H, W, C) in [0, 1] -> (H, W, C*L) in {-1, +1}.

    With ``L = round(255 / resolution)`` and, in float32, ``p = x * 255`` and
    ``n = round_half_even(p / resolution)``: channel ``c*L + k`` is +1 iff ``k < n``, else -1.
    ``x`` is the pixel divided by 255 (float32 ``(pixel / 255) * 255`` is exactly the pixel);
    values outside [0, 1] saturate (all -1 below, all +1 above). ``p / resolution`` (with
    ``resolution`` as a float32) is taken in float64 and rounded once to float32: that is
    numpy's float32 division, where a float32 division by a constant would not be (TF's
    graph optimiser turns it into a reciprocal multiplication). At a power-of-two resolution
    such as 8 the quotient is exact. No weights; no gradient reaches the input (it is meant
    to be the first layer).
    """

    def __init__(self, resolution: float = 8, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not float(resolution) > 0 or thermometer_levels(resolution) < 1:
            raise ValueError(f"Thermometer: resolution must be in (0, 510), got {resolution!r}")
        self.resolution = resolution
        self.levels = thermometer_levels(resolution)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        x = tf.stop_gradient(tf.convert_to_tensor(inputs, tf.float32))
        p = x * 255.0
        divisor = float(np.float32(self.resolution))
        quotient = tf.cast(tf.cast(p, tf.float64) / divisor, tf.float32)
        n = tf.math.round(quotient)  # half to even
        k = tf.range(self.levels, dtype=tf.float32)
        bits = tf.where(k < n[..., None], 1.0, -1.0)  # (..., C, L): channel c*L + k
        shape = tf.concat([tf.shape(x)[:-1], [x.shape[-1] * self.levels]], axis=0)
        return tf.reshape(bits, shape)

    def compute_output_shape(self, input_shape: Any) -> tf.TensorShape:
        s = tf.TensorShape(input_shape).as_list()
        return tf.TensorShape(s[:-1] + [s[-1] * self.levels])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "resolution": self.resolution}


def _pair(value: int | tuple[int, int] | list[int], name: str) -> tuple[int, int]:
    v = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(v) != 2 or not all(int(i) == i and int(i) >= 1 for i in v):
        raise ValueError(f"PGConv2D: {name} must be a positive int or a pair of them, "
                         f"got {value!r}")
    return int(v[0]), int(v[1])


def third_of(s: tf.Tensor) -> tf.Tensor:
    """The float32 nearest to ``s / 3`` for an integer-valued float32 ``s`` (|s| < 2^24):
    the IEEE float32 division ``np.float32(s) / np.float32(3)``.

    Computed as float64 ``s / 3`` rounded to float32. A float32 ``s / 3.0`` is not
    reproducible: inside a ``tf.function`` (``model.predict``, ``fit``) TF's graph optimiser
    rewrites a division by a constant into a multiplication by its reciprocal, which is one
    ulp off for about two integers in three. In float64 even that rewrite rounds to the
    correctly rounded float32 quotient for every |s| < 2^24 (float64 carries more than
    2*24 + 2 bits), so the result is the same in eager mode, in graphs and in numpy.
    """
    return tf.cast(tf.cast(s, tf.float64) / 3.0, tf.float32)


@_register
class PGConv2D(tf.keras.layers.Layer):
    """FracBNN's precision-gated binary convolution with its 2-bit input quantizer, no bias.

    Forward (float32, training and inference alike):

    1. ``q = round_half_even((clip(x, -1, 1) + 1) * 1.5)`` in {0, 1, 2, 3}; the level
       ``(2q - 3) / 3 = (2/3) m + (1/3) l``.
    2. Bit planes ``m = +1 iff q >= 2``, ``l = +1 iff q`` odd (else -1).
    3. ``W_b = sign(kernel)``, sign(0) = +1; weight ``kernel`` (kh, kw, C_in, filters).
    4. ``M = conv(m, W_b)``, ``L = conv(l, W_b)``: integers (exact in float32); zero padding
       contributes 0 to both.
    5. Gate ``g = [msb > threshold_c]`` (strict) per output pixel and channel, where
       ``msb = third_of(2 M)``: the float32 nearest to (2/3) M. ``threshold`` has shape
       (filters,), initialised at ``gate_init``. ``gate(M)`` is exactly this function, so
       a compiler can fold it to an integer threshold ``g = [M >= T_c]`` (it is
       non-decreasing in M) by testing the integers around ``1.5 * threshold_c``.
    6. ``y = third_of(2 M + g L)``: the float32 nearest to the exact ``(2M + gL) / 3``.
       Hardware computes the integer ``S = 2M + g L`` (3y); the host's float32 output is
       ``S / 3`` rounded once to float32, which ``third_of`` reproduces.

    Backward (straight-through): each bit plane passes its gradient where ``|x| <= 1``
    (0 outside); the kernel's sign passes it unchanged (identity); the gate is hard in the
    forward pass and its gradient is that of FracBNN's sigmoid relaxation
    ``sigmoid(5 (msb - threshold))`` (to ``msb``, hence M, and to ``threshold``). FracBNN's
    threshold regulariser is not part of the layer.
    """

    def __init__(self, filters: int, kernel_size: int | tuple[int, int],
                 strides: int | tuple[int, int] = 1, padding: str = "same",
                 gate_init: float = -1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if int(filters) != filters or int(filters) < 1:
            raise ValueError(f"PGConv2D: filters must be a positive int, got {filters!r}")
        padding = str(padding).lower()
        if padding not in ("same", "valid"):
            raise ValueError(f"PGConv2D: padding must be 'same' or 'valid', got {padding!r}")
        self.filters = int(filters)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.strides = _pair(strides, "strides")
        self.padding = padding
        self.gate_init = float(gate_init)
        self.input_spec = tf.keras.layers.InputSpec(ndim=4)

    def build(self, input_shape: Any) -> None:
        c_in = tf.TensorShape(input_shape)[-1]
        if c_in is None:
            raise ValueError(f"PGConv2D {self.name!r} needs a known channel (last) axis")
        self.kernel = self.add_weight(name="kernel",
                                      shape=(*self.kernel_size, int(c_in), self.filters),
                                      initializer="glorot_uniform", trainable=True)
        self.threshold = self.add_weight(
            name="threshold", shape=(self.filters,),
            initializer=tf.keras.initializers.Constant(self.gate_init), trainable=True)
        super().build(input_shape)

    def msb_term(self, m_sum: tf.Tensor) -> tf.Tensor:
        """(2/3) M as the layer computes it: the float32 nearest to 2M / 3."""
        return third_of(2.0 * tf.convert_to_tensor(m_sum, tf.float32))

    def gate(self, m_sum: tf.Tensor) -> tf.Tensor:
        """The gate (0.0/1.0) for MSB sums ``M`` (last axis = output channel), exactly as
        the forward pass decides it."""
        return tf.cast(self.msb_term(m_sum) > self.threshold, tf.float32)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        x = tf.convert_to_tensor(inputs, tf.float32)
        m, lsb = ste_bit_planes(x)
        w = ste_sign_identity(self.kernel)
        n = tf.shape(x)[0]
        both = tf.nn.conv2d(tf.concat([m, lsb], axis=0), w, strides=self.strides,
                            padding=self.padding.upper())
        m_sum, l_sum = both[:n], both[n:]
        g = ste_gate(self.msb_term(m_sum), self.threshold)
        return third_of(2.0 * m_sum + g * l_sum)

    def compute_output_shape(self, input_shape: Any) -> tf.TensorShape:
        n, h, w, _ = tf.TensorShape(input_shape).as_list()
        out = []
        for size, k, s in zip((h, w), self.kernel_size, self.strides, strict=True):
            if size is None:
                out.append(None)
            elif self.padding == "same":
                out.append(-(-size // s))
            else:
                out.append(-(-(size - k + 1) // s))
        return tf.TensorShape([n, *out, self.filters])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": self.kernel_size, "strides": self.strides,
                "padding": self.padding, "gate_init": self.gate_init}
