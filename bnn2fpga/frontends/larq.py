"""Larq layers -> float-stage IR (QuantDense, QuantConv2D with sign quantizers; DoReFa
k-bit activations as input quantizers, activations or standalone quantizer layers)."""

from __future__ import annotations

from typing import Any

import numpy as np

from bnn2fpga.frontends.keras import (
    Builder,
    UnsupportedError,
    activation_name,
    add_activation,
    add_float_matvec,
    add_matvec,
    add_sign,
    bipolar_kernel,
    check_linear_activation,
    converter,
    quantize_kernel,
)
from bnn2fpga.ir import Input, Quantize, TensorType

# quantizers whose forward pass is exactly sign(x) with sign(0) = +1
SIGN_QUANTIZERS = ("SteSign", "ApproxSign", "SwishSign")
# k-bit unsigned activations: round_half_even(clip(x, 0, 1) * n) / n, n = 2^k - 1
DOREFA_QUANTIZERS = ("DoReFa", "DoReFaQuantizer")
SUPPORTED = ("input_quantizer None/'ste_sign'/'approx_sign'/'swish_sign'/"
             "DoReFa(mode='activations')")
# sign(w) times a per-output-channel scale mean|w| (Bi-Real Net): not a power of two
SCALED_SIGN_QUANTIZERS = ("MagnitudeAwareSign",)


def larq_custom_objects() -> dict[str, Any]:
    import larq

    objs: dict[str, Any] = {}
    for mod in (larq.layers, larq.quantizers, larq.constraints):
        for name in getattr(mod, "__all__", []):
            objs[name] = getattr(mod, name)
    return objs


def quantizer_class(q: Any) -> str | None:
    if q is None:
        return None
    return type(q).__name__ if not isinstance(q, str) else q


@converter("QuantDense", "QuantConv2D")
def convert_quant_layer(layer: Any, b: Builder) -> None:
    iq = quantizer_class(layer.input_quantizer)
    kq = quantizer_class(layer.kernel_quantizer)
    if iq is not None and iq not in SIGN_QUANTIZERS + DOREFA_QUANTIZERS:
        raise UnsupportedError(layer, f"input_quantizer={iq}", SUPPORTED)
    if kq is None:  # a float layer (the first and last of most BNNs)
        check_pad_zero(layer)
        add_input_quantizer(b, layer)
        bias = np.asarray(layer.bias, np.float32) if layer.use_bias else None
        add_float_matvec(b, layer, np.asarray(layer.kernel), bias)
        return
    if kq in DOREFA_QUANTIZERS:
        raise UnsupportedError(layer, f"kernel_quantizer=DoReFa(k_bit="
                               f"{layer.kernel_quantizer.precision}, mode="
                               f"{layer.kernel_quantizer.mode!r}) (k-bit weights on a "
                               "non-power-of-two grid, normalised by the kernel's max|tanh|)",
                               "DoReFa as an input_quantizer or activation (mode="
                               "'activations'); kernel_quantizer 'ste_sign'/'approx_sign'/"
                               "'swish_sign'/'magnitude_aware_sign'")
    if kq not in SIGN_QUANTIZERS + SCALED_SIGN_QUANTIZERS:
        raise UnsupportedError(layer, f"kernel_quantizer={kq}",
                               "kernel_quantizer 'ste_sign'/'approx_sign'/'swish_sign'/"
                               "'magnitude_aware_sign' (real-valued kernels cannot be "
                               "binarised exactly)")
    act = activation_name(getattr(layer, "activation", None))
    if act not in ("linear", "relu", *DOREFA_QUANTIZERS):
        check_linear_activation(layer)
    add_input_quantizer(b, layer)
    scaled = kq in SCALED_SIGN_QUANTIZERS
    weights, scale = bipolar_kernel(layer, quantize_kernel(layer.kernel_quantizer, layer.kernel),
                                    "kernel_quantizer", any_scale=scaled)
    bias = np.asarray(layer.bias, np.float32) if layer.use_bias else None
    pad_value = 0.0
    if hasattr(layer, "pad_values"):
        import tensorflow as tf

        pad_value = float(tf.keras.backend.get_value(layer.pad_values))
        if layer.padding == "same" and pad_value not in (0.0, 1.0, -1.0):
            raise UnsupportedError(layer, f"pad_values={pad_value}",
                                   "pad_values 0.0, 1.0 or -1.0")
    add_matvec(b, layer, weights, scale, bias, pad_value)
    if scaled and scale is not None:
        # Keras sums the scaled weights in float32: a fold of this scale into thresholds is
        # not exact (passes.scaled_kernels counts the accumulator values it may decide
        # differently); on a real path it is one more per-channel factor of a FixedAffine
        b.meta.setdefault("inexact_kernel_scales", {})[f"{layer.name}/affine"] = layer.name
    if act == "relu":  # a real ReLU after the layer (and its bias), before its BatchNorm
        add_activation(b, layer, "relu")
    elif act in DOREFA_QUANTIZERS:
        add_dorefa(b, f"{layer.name}/activation", layer, layer.activation)


def add_input_quantizer(b: Builder, layer: Any) -> None:
    """A Quant layer's ``input_quantizer``: a sign, or DoReFa k-bit codes (on the model's
    input: the input encoding)."""
    iq = quantizer_class(layer.input_quantizer)
    if iq in DOREFA_QUANTIZERS:
        add_dorefa(b, f"{layer.name}/input_quantizer", layer, layer.input_quantizer)
    elif iq is not None:
        add_sign(b, f"{layer.name}/input_quantizer", layer.input_quantizer)


def dorefa_levels(layer: Any, q: Any) -> int:
    """n = 2^k - 1 of a DoReFa activation quantizer (codes 0..n, values code / n)."""
    if q.mode != "activations":
        raise UnsupportedError(layer, f"DoReFa(k_bit={q.precision}, mode={q.mode!r}) on an "
                               "activation", "DoReFa(mode='activations')")
    k = int(q.precision)
    if not 1 <= k <= 8:
        raise UnsupportedError(layer, f"DoReFa(k_bit={k})", "DoReFa k_bit 1..8")
    return (1 << k) - 1


def add_dorefa(b: Builder, name: str, layer: Any, q: Any) -> None:
    """A DoReFa activation quantizer: on the model's input, the input encoding (k-bit codes
    round_half_even(clip(x, 0, 1) * n), ``reference.quantize_input``); elsewhere a
    float-stage ``Quantize`` typed as its k-bit codes of step 1/n, run by the quantizer
    itself (folded into thresholds by ``passes.quantizers``; on a real path a ``Threshold``,
    ``passes.real.lower_quantize``)."""
    n = dorefa_levels(layer, q)
    if len(b.nodes) == 1 and isinstance(b.current, Input):
        inp = b.current
        inp.out = TensorType(inp.out.shape, "uint", int(q.precision), 1.0 / n)
        inp.quantizer = "dorefa"
        b.notes.append(f"input quantized by {name!r}: DoReFa {q.precision}-bit codes "
                       f"round(clip(x, 0, 1) * {n}), value code / {n}")
        return

    def run(v: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        return np.asarray(q(tf.constant(v, dtype=tf.float32)), np.float32)

    codes = TensorType(b.current.out.shape, "uint", int(q.precision), 1.0 / n)
    b.add(Quantize(name, [b.current.name], codes, step=1.0 / n, lo=0, hi=n, evaluate=run))
    b.notes.append(f"{name!r}: DoReFa codes 0..{n} x 1/{n}")


@converter(*DOREFA_QUANTIZERS)
def convert_dorefa(layer: Any, b: Builder) -> None:
    """A DoReFa quantizer used as a layer of its own (Larq quantizers are Keras layers)."""
    add_dorefa(b, layer.name, layer, layer)


def check_pad_zero(layer: Any) -> None:
    if hasattr(layer, "pad_values") and layer.padding == "same":
        import tensorflow as tf

        pad_value = float(tf.keras.backend.get_value(layer.pad_values))
        if pad_value != 0.0:
            raise UnsupportedError(layer, f"pad_values={pad_value} on a float layer",
                                   "pad_values=0.0")
