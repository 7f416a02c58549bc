"""Larq layers -> float-stage IR (QuantDense, QuantConv2D with sign quantizers)."""

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

# quantizers whose forward pass is exactly sign(x) with sign(0) = +1
SIGN_QUANTIZERS = ("SteSign", "ApproxSign", "SwishSign")
SUPPORTED = "input_quantizer None/'ste_sign'/'approx_sign'/'swish_sign'"
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
    if iq is not None and iq not in SIGN_QUANTIZERS:
        raise UnsupportedError(layer, f"input_quantizer={iq}", SUPPORTED)
    if kq is None:  # a float layer (the first and last of most BNNs)
        check_pad_zero(layer)
        if iq is not None:
            add_sign(b, f"{layer.name}/input_quantizer", layer.input_quantizer)
        bias = np.asarray(layer.bias, np.float32) if layer.use_bias else None
        add_float_matvec(b, layer, np.asarray(layer.kernel), bias)
        return
    if kq not in SIGN_QUANTIZERS + SCALED_SIGN_QUANTIZERS:
        raise UnsupportedError(layer, f"kernel_quantizer={kq}",
                               "kernel_quantizer 'ste_sign'/'approx_sign'/'swish_sign'/"
                               "'magnitude_aware_sign' (real-valued kernels cannot be "
                               "binarised exactly)")
    act = activation_name(getattr(layer, "activation", None))
    if act not in ("linear", "relu"):
        check_linear_activation(layer)
    if iq is not None:
        add_sign(b, f"{layer.name}/input_quantizer", layer.input_quantizer)
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


def check_pad_zero(layer: Any) -> None:
    if hasattr(layer, "pad_values") and layer.padding == "same":
        import tensorflow as tf

        pad_value = float(tf.keras.backend.get_value(layer.pad_values))
        if pad_value != 0.0:
            raise UnsupportedError(layer, f"pad_values={pad_value} on a float layer",
                                   "pad_values=0.0")
