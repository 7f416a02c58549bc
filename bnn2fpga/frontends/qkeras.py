"""QKeras layers -> float-stage IR (QDense, QConv2D, QActivation)."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from typing import Any

import numpy as np

from bnn2fpga.frontends.keras import (
    Builder,
    UnsupportedError,
    add_activation,
    add_batchnorm,
    add_float_matvec,
    add_matvec,
    add_sign,
    bipolar_kernel,
    converter,
    quantize_kernel,
)
from bnn2fpga.ir import Dense, Input, Quantize, TensorType

INPUT_QUANTIZERS = "quantized_bits(keep_negative=False, alpha=None/1) or quantized_relu"
ACTIVATIONS = ("'binary' (use_01=False, alpha=None/1), 'binary_tanh'; as the model's "
               f"first layer also {INPUT_QUANTIZERS}")
BN_QUANTIZERS = {"gamma": "gamma_quantizer", "beta": "beta_quantizer",
                 "moving_mean": "mean_quantizer", "moving_variance": "variance_quantizer"}


@contextlib.contextmanager
def readable_keras_v3_configs() -> Iterator[None]:
    """QKeras 0.9's QActivation cannot read back the quantizer that the Keras-v3 (.keras)
    format saves as a nested dict; while this is active, such a dict is turned back into the
    quantizer object (QActivation accepts quantizer objects)."""
    from qkeras import quantizers
    from qkeras.qlayers import QActivation

    own = "from_config" in QActivation.__dict__
    original = QActivation.__dict__.get("from_config")

    def from_config(cls: type, config: dict[str, Any]) -> Any:
        act = config.get("activation")
        if isinstance(act, dict) and hasattr(quantizers, str(act.get("class_name"))):
            q_cls = getattr(quantizers, act["class_name"])
            config = {**config, "activation": q_cls(**act.get("config", {}))}
        return cls(**config)

    QActivation.from_config = classmethod(from_config)
    try:
        yield
    finally:
        if own:
            QActivation.from_config = original
        else:
            del QActivation.from_config


def quantizer_name(q: Any) -> str:
    return type(q).__name__ if not isinstance(q, str) else q


def _is_unit_alpha(alpha: Any) -> bool:
    return alpha is None or (not isinstance(alpha, str) and float(np.max(alpha)) == 1.0
                             and float(np.min(alpha)) == 1.0)


def check_binary(layer: Any, q: Any, role: str) -> None:
    """A QKeras ``binary`` quantizer whose forward pass is sign with 0 -> +1, outputs ±1."""
    if q.use_01:
        raise UnsupportedError(layer, f"{role} binary(use_01=True) ({{0,1}} outputs)",
                               "binary(use_01=False)")
    if q.use_stochastic_rounding:
        raise UnsupportedError(layer, f"{role} binary(use_stochastic_rounding=True)",
                               "deterministic binary")


def input_format(layer: Any, q: Any) -> tuple[int, float]:
    """(bits, scale) of an unsigned fixed-point input quantizer: value = scale * k,
    k = clip(round_half_even(x / scale), 0, 2^bits - 1)."""
    name = quantizer_name(q)
    if name == "quantized_bits":
        if q.keep_negative:
            raise UnsupportedError(layer, "a signed input quantizer quantized_bits("
                                   "keep_negative=True)", INPUT_QUANTIZERS)
        if not _is_unit_alpha(q.alpha) or q.use_stochastic_rounding:
            raise UnsupportedError(layer, f"quantized_bits(alpha={q.alpha!r}, "
                                   f"stochastic={q.use_stochastic_rounding})", INPUT_QUANTIZERS)
        bits = int(q.bits)
    elif name == "quantized_relu":
        if q.negative_slope != 0.0 or q.use_sigmoid or q.use_stochastic_rounding or \
                q.relu_upper_bound is not None:
            raise UnsupportedError(layer, "quantized_relu with negative_slope, use_sigmoid, "
                                   "relu_upper_bound or stochastic rounding",
                                   INPUT_QUANTIZERS)
        bits = int(q.bits)
    else:
        raise UnsupportedError(layer, f"the input quantizer {name}", INPUT_QUANTIZERS)
    if not getattr(q, "qnoise_factor", 1.0) == 1.0:
        raise UnsupportedError(layer, f"qnoise_factor={q.qnoise_factor}", "qnoise_factor=1")
    return bits, float(2.0 ** (int(q.integer) - bits))


def hidden_format(layer: Any, q: Any) -> tuple[float, int, int]:
    """(step, lo, hi) of a hidden ``quantized_bits``/``quantized_relu``: y = step * k with
    integer k in [lo, hi], step a power of two.  QKeras rounds half to even; the passes take
    every decision from the quantizer itself, so only the grid is read here."""
    name = quantizer_name(q)
    if getattr(q, "use_stochastic_rounding", False):
        raise UnsupportedError(layer, f"{name}(use_stochastic_rounding=True)",
                               "deterministic rounding")
    if getattr(q, "qnoise_factor", 1.0) != 1.0:
        raise UnsupportedError(layer, f"qnoise_factor={q.qnoise_factor}", "qnoise_factor=1")
    bits, integer = int(q.bits), int(q.integer)
    if name == "quantized_bits":
        if not _is_unit_alpha(q.alpha):
            raise UnsupportedError(layer, f"quantized_bits(alpha={q.alpha!r}) as an "
                                   "activation", "quantized_bits(alpha=None/1)")
        signed = bool(q.keep_negative)
        unsigned_bits = bits - int(signed)
        top = (1 << unsigned_bits) - 1
        lo = -top - 1 + int(bool(q.symmetric)) if signed else 0
        return float(2.0 ** (integer - unsigned_bits)), lo, top
    if q.negative_slope != 0.0 or q.use_sigmoid or q.relu_upper_bound is not None:
        raise UnsupportedError(layer, "quantized_relu with negative_slope, use_sigmoid or "
                               "relu_upper_bound as an activation", "quantized_relu(bits, "
                               "integer)")
    return float(2.0 ** (integer - bits)), 0, (1 << bits) - 1


def add_quantize(b: Builder, name: str, layer: Any, q: Any) -> None:
    """A hidden multi-bit quantizer: a float-stage ``Quantize`` run by the model's own
    quantizer (folded into thresholds by ``passes.quantizers``)."""
    step, lo, hi = hidden_format(layer, q)

    def run(v: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        return np.asarray(q(tf.constant(v, dtype=tf.float32)), np.float32)

    b.add(Quantize(name, [b.current.name], b.current.out, step=step, lo=lo, hi=hi,
                   evaluate=run))
    b.notes.append(f"{name!r}: {quantizer_name(q)} codes {lo}..{hi} x {step!r}")


def multibit_kernel(layer: Any, kq: Any) -> tuple[np.ndarray, int, float]:
    """A ``quantized_bits`` kernel -> (signed integer codes (cout, fan_in), bits, step): the
    quantized kernel is exactly codes * step with one power-of-two step (alpha None/1), so
    Keras's float32 products are exact and the MVTU's integer sums reproduce them."""
    if not _is_unit_alpha(kq.alpha) or kq.use_stochastic_rounding or not kq.keep_negative:
        raise UnsupportedError(layer, f"kernel_quantizer=quantized_bits(alpha={kq.alpha!r}, "
                               f"keep_negative={kq.keep_negative}, stochastic="
                               f"{kq.use_stochastic_rounding})", "quantized_bits(bits, "
                               "integer, alpha=None/1) kernels")
    bits, integer = int(kq.bits), int(kq.integer)
    if not 2 <= bits <= 16:
        raise UnsupportedError(layer, f"a {bits}-bit quantized_bits kernel", "2..16 bits")
    step = float(2.0 ** (integer - (bits - 1)))
    q = np.asarray(quantize_kernel(kq, layer.kernel), np.float64)
    codes = q.reshape(-1, q.shape[-1]).T / step      # (cout, fan_in) in (ky, kx, c) order
    top = 1 << (bits - 1)
    if not np.all(codes == np.round(codes)) or codes.min() < -top or codes.max() >= top:
        raise UnsupportedError(layer, "a quantized_bits kernel off its power-of-two grid",
                               "quantized_bits(bits, integer, alpha=None/1) kernels")
    return codes.astype(np.int8 if bits <= 8 else np.int16), bits, step


@converter("QBatchNormalization")
def convert_qbatchnorm(layer: Any, b: Builder) -> None:
    """QBatchNormalization = BatchNormalization whose inference parameters are first passed
    through their quantizers (None: unquantized); the quantized parameters are taken as the
    layer computes them, and ties are settled by the layer itself (``BatchNorm.evaluate``)."""
    import tensorflow as tf

    if getattr(layer, "renorm", False):
        raise UnsupportedError(layer, "renorm=True", "renorm=False")
    weights: dict[str, np.ndarray] = {}
    for w in layer.weights:
        name = w.name.split("/")[-1].split(":")[0]
        value = np.asarray(w.numpy(), np.float32)
        attr = BN_QUANTIZERS.get(name)
        q = getattr(layer, f"{attr}_internal", None) if attr else None
        if q is not None and getattr(layer, attr, None):
            value = np.asarray(q(tf.constant(value)), np.float32)
        weights[name] = value
    if not layer.scale:
        weights.pop("gamma", None)
    if not layer.center:
        weights.pop("beta", None)
    add_batchnorm(layer, b, weights)


def quantizer_function_name(q: Any) -> str:
    """A quantizer's name: an object's class, or a function's name (binary_tanh)."""
    if inspect.isfunction(q):
        return q.__name__
    return quantizer_name(q)


@converter("QActivation")
def convert_qactivation(layer: Any, b: Builder) -> None:
    q = layer.quantizer
    name = quantizer_function_name(q)
    if name == "binary_tanh":  # 2 * round(hard_sigmoid(x)) - 1: ±1, and -1 at 0
        add_sign(b, layer.name, layer)
        return
    if name == "binary":
        check_binary(layer, q, "activation")
        if not _is_unit_alpha(q.alpha):
            raise UnsupportedError(layer, f"binary(alpha={q.alpha!r}) as an activation",
                                   "binary(alpha=None/1)")
        add_sign(b, layer.name, layer)
        return
    if name in ("quantized_bits", "quantized_relu"):
        if len(b.nodes) != 1 or not isinstance(b.current, Input):
            add_quantize(b, layer.name, layer, q)
            return
        bits, scale = input_format(layer, q)
        inp = b.current
        inp.out = TensorType(inp.out.shape, "uint", bits, scale)
        inp.quantizer = "round_half_even"
        b.notes.append(f"input quantized by {layer.name!r}: {bits}-bit unsigned, "
                       f"scale {scale!r}")
        return
    raise UnsupportedError(layer, f"the activation quantizer {name}", ACTIVATIONS)


@converter("QDense", "QConv2D")
def convert_qdense(layer: Any, b: Builder) -> None:
    kq = layer.kernel_quantizer_internal
    if kq is None and layer.bias_quantizer_internal is None:  # a float layer
        add_float_matvec(b, layer, np.asarray(layer.kernel),
                         np.asarray(layer.bias) if layer.use_bias else None)
        return
    if kq is not None and quantizer_name(kq) == "quantized_bits":
        weights, bits, step = multibit_kernel(layer, kq)
    elif kq is None or quantizer_name(kq) != "binary":
        raise UnsupportedError(layer, f"kernel_quantizer={quantizer_name(kq)}",
                               "kernel_quantizer=binary (alpha None/1/power of two/"
                               "'auto_po2')")
    else:
        check_binary(layer, kq, "kernel_quantizer")
        bits = 1
    if bits == 1:
        weights, scale = bipolar_kernel(layer, quantize_kernel(kq, layer.kernel),
                                        "kernel_quantizer")
    else:
        scale = np.full(weights.shape[0], step, np.float32)
    bias = None
    if layer.use_bias:
        bq = layer.bias_quantizer_internal
        bias = np.asarray(bq(layer.bias) if bq is not None else layer.bias, np.float32)
    add_matvec(b, layer, weights, scale, bias)
    if bits > 1:
        matvec = b.node(layer.name)
        assert isinstance(matvec, Dense)
        matvec.weight_bits = bits
    act = layer.activation
    # a Keras activation is a function; a QKeras quantizer is an object
    act_name = "linear" if act is None else (
        act.__name__ if inspect.isfunction(act) else type(act).__name__)
    if act_name == "binary":
        check_binary(layer, act, "activation")
        add_sign(b, f"{layer.name}/activation", act)
    elif act_name == "binary_tanh":
        add_sign(b, f"{layer.name}/activation", act)
    elif act_name in ("quantized_bits", "quantized_relu"):
        add_quantize(b, f"{layer.name}/activation", layer, act)
    elif act_name in ("relu", "softmax"):  # a real ReLU, or the host's final softmax
        add_activation(b, layer, act_name)
    elif act_name != "linear":
        raise UnsupportedError(layer, f"activation={act_name!r}",
                               "activation=None/'linear'/'binary'/'binary_tanh'/'relu', or "
                               "'softmax' on the last layer")
