"""Keras model -> float-stage IR.

The walker visits the model's layers in order (a linear chain) and asks a converter,
registered per layer class, for the IR nodes of that layer.  The QKeras and Larq converters
live in their own modules; plain Keras layers are here.  A layer without a converter, or
with an option a converter does not support, is an ``UnsupportedError`` that names the layer,
its class, what is unsupported and what is supported.  Nothing is approximated silently.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bnn2fpga.ir import (
    Add,
    AvgPool2D,
    BatchNorm,
    ChannelAffine,
    Concat,
    Conv2D,
    Dense,
    FloatConv2D,
    FloatDense,
    FloatPGConv2D,
    FloatPReLU,
    GlobalAvgPool,
    Graph,
    Input,
    MaxPool2D,
    Node,
    Reshape,
    Sign,
    TensorType,
    ThermometerEncode,
    same_pads,
)


class FrontendError(ValueError):
    """A model that cannot be read or converted."""


class UnsupportedError(FrontendError):
    def __init__(self, layer: Any, what: str, supported: str) -> None:
        super().__init__(f"layer {layer.name!r} ({type(layer).__name__}): {what} is not "
                         f"supported; supported: {supported}")


Converter = Callable[[Any, "Builder"], None]
CONVERTERS: dict[str, Converter] = {}


def converter(*class_names: str) -> Callable[[Converter], Converter]:
    def register(fn: Converter) -> Converter:
        for name in class_names:
            CONVERTERS[name] = fn
        return fn
    return register


@dataclass
class Builder:
    """Accumulates nodes while the walker visits layers.

    The walker gives each converter the IR names of its layer's input tensors
    (``inputs``); ``current`` is the tensor the converter's next node reads: the layer's
    (first) input, then each node the converter adds."""

    nodes: list[Node] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    cursor: str = ""
    softmax_layer: str | None = None   # the layer whose softmax the host applies
    meta: dict[str, Any] = field(default_factory=dict)   # merged into graph.meta

    def start_layer(self, inputs: list[str]) -> None:
        self.inputs = list(inputs)
        self.cursor = inputs[0] if inputs else ""

    @property
    def current(self) -> Node:
        return self.node(self.cursor)

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def add(self, node: Node) -> Node:
        if any(n.name == node.name for n in self.nodes):
            raise FrontendError(f"duplicate node name {node.name!r}")
        self.nodes.append(node)
        self.cursor = node.name
        return node

    def float_out(self, shape: tuple[int, ...]) -> TensorType:
        return TensorType(tuple(shape), "float", 32)


def layer_out_shape(layer: Any) -> tuple[int, ...]:
    shape = layer.output_shape
    if isinstance(shape, list):
        raise UnsupportedError(layer, "a layer with several outputs", "single-output layers")
    return tuple(int(s) for s in shape[1:])


def layer_in_shape(layer: Any) -> tuple[int, ...]:
    shape = layer.input_shape
    if isinstance(shape, list):
        raise UnsupportedError(layer, "a layer with several inputs (a residual or concat)",
                               "linear chains of layers")
    return tuple(int(s) for s in shape[1:])


# ----------------------------------------------------------------------------------------
# Building blocks shared by the QKeras and Larq converters
# ----------------------------------------------------------------------------------------


def bipolar_kernel(layer: Any, quantized: np.ndarray, what: str, any_scale: bool = False
                   ) -> tuple[np.ndarray, np.ndarray | None]:
    """Quantized kernel (kh, kw, cin, cout) or (cin, cout) -> (weights ±1 (cout, fan_in),
    per-channel scale or None).  The scale must be a power of two so that Keras's float32
    sums of scaled weights equal scale * (integer sum) exactly; ``any_scale`` accepts any
    positive scale (the caller records that the sums are not reproduced exactly)."""
    q = np.asarray(quantized, dtype=np.float32)
    flat = q.reshape(-1, q.shape[-1]).T  # (cout, fan_in) in (ky, kx, c) order
    mag = np.abs(flat)
    alpha = mag[:, :1]
    if not np.all(mag == alpha) or np.any(alpha == 0):
        raise UnsupportedError(layer, f"{what} producing values other than ±alpha per "
                               "output channel", "binary kernels (±1, or ±alpha with alpha "
                               "a power of two per output channel)")
    a = alpha[:, 0].astype(np.float64)
    if not any_scale and not np.all(np.exp2(np.round(np.log2(a))) == a):
        raise UnsupportedError(layer, f"{what} with a kernel scale that is not a power of "
                               f"two (e.g. {a[0]!r}): Keras sums scaled weights in float32 "
                               "and that rounding cannot be reproduced bit-exactly",
                               "alpha=None/1, a power-of-two alpha, or alpha='auto_po2'")
    weights = np.where(flat > 0, 1, -1).astype(np.int8)
    scale = None if np.all(a == 1.0) else alpha[:, 0].astype(np.float32)
    return weights, scale


def quantize_kernel(quantizer: Any, kernel: Any) -> np.ndarray:
    """The kernel as the layer's forward pass sees it: its quantizer applied to the latent
    (float) weights."""
    import tensorflow as tf

    latent = getattr(kernel, "latent_variable", kernel)
    return np.asarray(quantizer(tf.constant(np.asarray(latent.numpy(), np.float32))))


def conv_geometry(layer: Any, in_shape: tuple[int, ...]
                  ) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int, int, int]]:
    """(kernel, stride, pads) of a Keras convolution, refusing what the IR cannot express."""
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        raise UnsupportedError(layer, f"data_format={layer.data_format!r}", "channels_last")
    if tuple(layer.dilation_rate) != (1, 1):
        raise UnsupportedError(layer, f"dilation_rate={tuple(layer.dilation_rate)}",
                               "dilation_rate=(1, 1)")
    if getattr(layer, "groups", 1) != 1:
        raise UnsupportedError(layer, f"groups={layer.groups}", "groups=1")
    kh, kw = (int(k) for k in layer.kernel_size)
    sh, sw = (int(s) for s in layer.strides)
    if layer.padding == "same":
        pads = same_pads(in_shape[0], kh, sh) + same_pads(in_shape[1], kw, sw)
    elif layer.padding == "valid":
        pads = (0, 0, 0, 0)
    else:
        raise UnsupportedError(layer, f"padding={layer.padding!r}", "'same', 'valid'")
    return (kh, kw), (sh, sw), pads


def add_float_matvec(b: Builder, layer: Any, kernel: np.ndarray, bias: np.ndarray | None
                     ) -> None:
    """A float (unquantized) Dense/Conv2D: its float kernel and bias, then its activation
    (linear, relu, or a final softmax for the host)."""
    out_shape, in_shape = layer_out_shape(layer), layer_in_shape(layer)
    k = np.asarray(kernel, np.float32)
    flat = k.reshape(-1, k.shape[-1]).T.copy()     # (cout, fan_in), (ky, kx, c) order
    b_ = None if bias is None else np.asarray(bias, np.float32)
    src = [b.current.name]
    if len(in_shape) == 3:
        kernel_size, stride, pads = conv_geometry(layer, in_shape)
        b.add(FloatConv2D(layer.name, src, b.float_out(out_shape), kernel=flat, bias=b_,
                          kernel_size=kernel_size, stride=stride, pads=pads))
    elif len(in_shape) == 1:
        b.add(FloatDense(layer.name, src, b.float_out(out_shape), kernel=flat, bias=b_))
    else:
        raise UnsupportedError(layer, f"a Dense input of rank {len(in_shape)} "
                               f"(shape {in_shape})", "flattened (rank-1) inputs")
    add_activation(b, layer, getattr(layer, "activation", None))


def activation_name(act: Any) -> str:
    if act is None:
        return "linear"
    if isinstance(act, str):
        return act
    return getattr(act, "__name__", None) or type(act).__name__


def add_activation(b: Builder, layer: Any, act: Any) -> None:
    """A Keras activation on a real tensor: linear, relu, or softmax (the model's last)."""
    name = activation_name(act)
    if name == "linear":
        return
    if name == "relu":
        c = b.current.out.shape[-1]
        taken = any(n.name == layer.name for n in b.nodes)
        b.add(FloatPReLU(f"{layer.name}/relu" if taken else layer.name,
                         [b.current.name], b.current.out, shift_in=np.zeros(c, np.float32),
                         slope=np.zeros(c, np.float32), shift_out=np.zeros(c, np.float32)))
        return
    if name == "softmax":
        b.softmax_layer = layer.name
        return
    if name in ("DoReFa", "DoReFaQuantizer"):   # a Larq quantizer object as the activation
        from bnn2fpga.frontends.larq import add_dorefa

        taken = any(n.name == layer.name for n in b.nodes)
        add_dorefa(b, f"{layer.name}/activation" if taken else layer.name, layer, act)
        return
    raise UnsupportedError(layer, f"activation={name!r}",
                           "activation None/'linear'/'relu'/Larq DoReFa, or 'softmax' on the "
                           "last layer")


def add_matvec(b: Builder, layer: Any, weights: np.ndarray, scale: np.ndarray | None,
               bias: np.ndarray | None, pad_value: float = 0.0) -> None:
    """The binary matrix-vector node of a Dense/Conv2D layer, then its scale and bias."""
    out_shape = layer_out_shape(layer)
    in_shape = layer_in_shape(layer)
    placeholder = TensorType(out_shape, "int", 2)
    src = [b.current.name]
    if len(in_shape) == 3:  # convolution
        (kh, kw), (sh, sw), pads = conv_geometry(layer, in_shape)
        pad: str | float = "zero" if pad_value == 0.0 else float(pad_value)
        node: Dense = Conv2D(layer.name, src, placeholder, weights=weights, kernel=(kh, kw),
                             stride=(sh, sw), pads=pads, pad=pad)
    else:
        if len(in_shape) != 1:
            raise UnsupportedError(layer, f"a Dense input of rank {len(in_shape)} "
                                   f"(shape {in_shape})", "flattened (rank-1) inputs")
        node = Dense(layer.name, src, placeholder, weights=weights)
    b.add(node)
    if scale is not None or bias is not None:
        b.add(ChannelAffine(f"{layer.name}/affine", [node.name], b.float_out(out_shape),
                            mul=scale, add=None if bias is None else
                            np.asarray(bias, dtype=np.float32)))


def add_sign(b: Builder, name: str, evaluate: Callable[[Any], Any]) -> None:
    """A bipolar binarisation whose float decisions are taken by ``evaluate`` (the model's own
    quantizer, run in TensorFlow)."""

    def run(v: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        return np.asarray(evaluate(tf.constant(v, dtype=tf.float32)))

    b.add(Sign(name, [b.current.name], b.current.out, evaluate=run))


def check_linear_activation(layer: Any) -> None:
    act = getattr(layer, "activation", None)
    name = getattr(act, "__name__", None) or type(act).__name__
    if act is not None and name != "linear":
        raise UnsupportedError(layer, f"activation={name!r}",
                               "activation=None/'linear' (put the binarisation in a "
                               "QActivation or the next layer's input_quantizer)")


# ----------------------------------------------------------------------------------------
# Plain Keras layers
# ----------------------------------------------------------------------------------------


@converter("InputLayer", "Dropout", "SpatialDropout2D", "GaussianNoise")
def convert_identity(layer: Any, b: Builder) -> None:
    """Layers that do nothing at inference."""


@converter("Activation")
def convert_activation(layer: Any, b: Builder) -> None:
    add_activation(b, layer, layer.activation)


@converter("Softmax")
def convert_softmax(layer: Any, b: Builder) -> None:
    if layer.axis not in (-1, len(layer_in_shape(layer))):
        raise UnsupportedError(layer, f"axis={layer.axis}", "the last axis")
    b.softmax_layer = layer.name


@converter("ReLU")
def convert_relu(layer: Any, b: Builder) -> None:
    if layer.max_value is not None or float(layer.negative_slope) != 0.0 or \
            float(layer.threshold) != 0.0:
        raise UnsupportedError(layer, "ReLU with max_value, negative_slope or threshold",
                               "ReLU()")
    add_activation(b, layer, "relu")


@converter("PReLU")
def convert_prelu(layer: Any, b: Builder) -> None:
    in_shape = layer_in_shape(layer)
    alpha = np.asarray(layer.alpha.numpy(), np.float32)
    c = in_shape[-1]
    if alpha.size != c:
        raise UnsupportedError(layer, f"a PReLU with {alpha.size} slopes over {in_shape}",
                               "one slope per channel (shared_axes over every spatial axis, "
                               "e.g. shared_axes=[1, 2])")
    b.add(FloatPReLU(layer.name, [b.current.name], b.float_out(layer_out_shape(layer)),
                     shift_in=np.zeros(c, np.float32), slope=alpha.reshape(c),
                     shift_out=np.zeros(c, np.float32)))


@converter("Conv2D", "Dense")
def convert_float_matvec(layer: Any, b: Builder) -> None:
    bias = layer.bias.numpy() if layer.use_bias else None
    add_float_matvec(b, layer, layer.kernel.numpy(), bias)


@converter("Add")
def convert_add(layer: Any, b: Builder) -> None:
    binary = [n for n in b.inputs if isinstance(b.node(n), Sign)]
    if binary:
        raise UnsupportedError(layer, f"an Add of the binarised tensor {binary[0]!r}",
                               "adds of real-valued tensors (a residual shortcut taken "
                               "before the binarisation, as in Bi-Real Net and ReActNet)")
    b.add(Add(layer.name, list(b.inputs), b.float_out(layer_out_shape(layer))))


@converter("Concatenate")
def convert_concatenate(layer: Any, b: Builder) -> None:
    rank = len(layer_out_shape(layer))
    if layer.axis not in (-1, rank):
        raise UnsupportedError(layer, f"axis={layer.axis}", "the channel (last) axis")
    b.add(Concat(layer.name, list(b.inputs), b.float_out(layer_out_shape(layer))))


@converter("GlobalAveragePooling2D", "GlobalAvgPool2D")
def convert_global_avgpool(layer: Any, b: Builder) -> None:
    if layer.data_format != "channels_last" or getattr(layer, "keepdims", False):
        raise UnsupportedError(layer, f"data_format={layer.data_format!r}, keepdims="
                               f"{getattr(layer, 'keepdims', False)}",
                               "channels_last, keepdims=False")
    b.add(GlobalAvgPool(layer.name, [b.current.name], b.float_out(layer_out_shape(layer))))


@converter("Flatten", "Reshape")
def convert_reshape(layer: Any, b: Builder) -> None:
    shape = layer_out_shape(layer)
    b.add(Reshape(layer.name, [b.current.name], b.current.out.with_shape(shape)))


@converter("BatchNormalization")
def convert_batchnorm(layer: Any, b: Builder) -> None:
    weights = {w.name.split("/")[-1].split(":")[0]: w.numpy() for w in layer.weights}
    add_batchnorm(layer, b, weights)


def add_batchnorm(layer: Any, b: Builder, weights: dict[str, np.ndarray]) -> None:
    """A BatchNorm node with parameters ``weights`` (gamma, beta, moving_mean,
    moving_variance; gamma and beta optional); its float32 decisions by the layer itself."""
    in_shape = layer_in_shape(layer)
    axis = layer.axis if isinstance(layer.axis, int) else list(layer.axis)
    if axis not in (-1, len(in_shape), [len(in_shape)], [-1]):
        raise UnsupportedError(layer, f"axis={layer.axis}", "the channel (last) axis")
    c = in_shape[-1]
    gamma = np.asarray(weights.get("gamma", np.ones(c, np.float32)))
    beta = np.asarray(weights.get("beta", np.zeros(c, np.float32)))
    rank = len(in_shape) + 1

    def evaluate(v: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        shaped = v.reshape((v.shape[0],) + (1,) * (rank - 2) + (v.shape[-1],))
        return layer(tf.constant(shaped, tf.float32), training=False).numpy().reshape(v.shape)

    b.add(BatchNorm(layer.name, [b.current.name], b.float_out(layer_out_shape(layer)),
                    gamma=gamma.astype(np.float32), beta=beta.astype(np.float32),
                    mean=np.asarray(weights["moving_mean"]).astype(np.float32),
                    var=np.asarray(weights["moving_variance"]).astype(np.float32),
                    eps=float(layer.epsilon), evaluate=evaluate))


def pool_geometry(layer: Any) -> dict[str, tuple[int, ...]]:
    in_shape = layer_in_shape(layer)
    if layer.data_format != "channels_last":
        raise UnsupportedError(layer, f"data_format={layer.data_format!r}", "channels_last")
    kh, kw = (int(k) for k in layer.pool_size)
    sh, sw = (int(s) for s in layer.strides)
    if layer.padding == "same":
        pads = same_pads(in_shape[0], kh, sh) + same_pads(in_shape[1], kw, sw)
    else:
        pads = (0, 0, 0, 0)
    return {"kernel": (kh, kw), "stride": (sh, sw), "pads": pads}


@converter("MaxPooling2D", "MaxPool2D")
def convert_maxpool(layer: Any, b: Builder) -> None:
    b.add(MaxPool2D(layer.name, [b.current.name],
                    b.current.out.with_shape(layer_out_shape(layer)), **pool_geometry(layer)))


@converter("AveragePooling2D", "AvgPool2D")
def convert_avgpool(layer: Any, b: Builder) -> None:
    b.add(AvgPool2D(layer.name, [b.current.name], b.float_out(layer_out_shape(layer)),
                    **pool_geometry(layer)))


# ----------------------------------------------------------------------------------------
# The walker
# ----------------------------------------------------------------------------------------


def inbound_layers(layer: Any) -> list[Any]:
    """The layers whose outputs ``layer`` reads (empty for an input layer)."""
    nodes = getattr(layer, "_inbound_nodes", [])
    if len(nodes) > 1:
        raise UnsupportedError(layer, f"a layer applied {len(nodes)} times (shared weights)",
                               "layers applied once")
    if not nodes:
        return []
    parents = nodes[0].inbound_layers
    return list(parents) if isinstance(parents, (list, tuple)) else [parents]


def supported_layers() -> str:
    return ", ".join(sorted(CONVERTERS))


def model_to_graph(model: Any, name: str | None = None) -> Graph:
    """Convert an in-memory Keras model to the float-stage IR."""
    # register the library converters
    from bnn2fpga.frontends import larq as _larq  # noqa: F401
    from bnn2fpga.frontends import qkeras as _qkeras  # noqa: F401

    if isinstance(model.input_shape, list):
        raise FrontendError(f"model {model.name!r} has {len(model.input_shape)} inputs; "
                            "bnn2fpga compiles single-input models")
    in_shape = tuple(int(s) for s in model.input_shape[1:])
    b = Builder()
    b.add(Input("input", [], TensorType(in_shape, "float", 32)))
    output_of: dict[str, str] = {}     # Keras layer -> IR node holding its output
    classes: dict[str, str] = {}       # Keras layer -> its class name (for messages)
    for layer in model.layers:
        fn = CONVERTERS.get(type(layer).__name__)
        if fn is None:
            raise UnsupportedError(layer, f"the layer class {type(layer).__name__}",
                                   supported_layers())
        # a Sequential model's InputLayer is not among its layers: its output is the input
        parents = [output_of.get(p.name, "input") if type(p).__name__ == "InputLayer"
                   else output_of[p.name] for p in inbound_layers(layer)]
        b.start_layer(parents or ["input"])
        if b.softmax_layer is not None:
            raise UnsupportedError(layer, f"a layer after the softmax of "
                                   f"{b.softmax_layer!r}",
                                   "a softmax as the model's last step (the host applies it)")
        fn(layer, b)
        output_of[layer.name] = b.cursor
        classes[layer.name] = type(layer).__name__
    graph = Graph(name or model.name, b.nodes)
    graph.meta.update(b.meta)
    if b.softmax_layer is not None:
        graph.meta["host_softmax"] = True
        b.notes.append(f"the softmax of {b.softmax_layer!r} is applied by the host")
    graph.check_topological()
    graph.meta["keras_output_shape"] = [int(s) for s in model.output_shape[1:]]
    graph.meta["frontend_notes"] = b.notes
    graph.meta["layer_classes"] = classes
    return graph


def custom_objects() -> dict[str, Any]:
    """Every custom object the QKeras, Larq and bnn2fpga.layers loaders need."""
    import larq  # noqa: F401  (registers its objects with Keras)
    from qkeras.utils import _add_supported_quantized_objects

    objects: dict[str, Any] = {}
    _add_supported_quantized_objects(objects)
    from bnn2fpga.frontends.larq import larq_custom_objects
    from bnn2fpga.layers import custom_objects as bnn2fpga_layer_objects

    objects.update(larq_custom_objects())
    objects.update(bnn2fpga_layer_objects())
    try:  # larq-zoo registers its own objects (e.g. its blocks' layers) with Keras on import
        import larq_zoo  # noqa: F401
    except ImportError:
        pass
    return objects


def load_model(path: str | os.PathLike[str]) -> Any:
    """Load a Keras model file (.h5 or .keras) with the QKeras, Larq and bnn2fpga.layers
    custom objects."""
    p = Path(path)
    if not p.exists():
        raise FrontendError(f"model file {str(p)!r} does not exist")
    if p.suffix not in (".h5", ".keras", ".hdf5"):
        raise FrontendError(f"model file {str(p)!r}: unknown extension {p.suffix!r}; "
                            "expected a Keras model saved as .h5 or .keras")
    import tensorflow as tf

    from bnn2fpga.frontends.qkeras import readable_keras_v3_configs

    try:
        with readable_keras_v3_configs():
            return tf.keras.models.load_model(str(p), custom_objects=custom_objects(),
                                              compile=False)
    except Exception as e:  # Keras raises many types for a bad file
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise FrontendError(f"cannot load Keras model {str(p)!r}: {first[:300]} "
                            "(expected a .h5 or .keras file written by model.save(); the "
                            "file may be corrupt or truncated)") from e


# ----------------------------------------------------------------------------------------
# bnn2fpga.layers
# ----------------------------------------------------------------------------------------


@converter("RSign")
def convert_rsign(layer: Any, b: Builder) -> None:
    """RSign = a float32 shift, then a sign (0 -> +1): one ChannelAffine and one Sign, so
    that a fold into thresholds decides ties with the same float32 add as the layer."""
    shift = np.asarray(layer.shift.numpy(), np.float32)
    shape = layer_out_shape(layer)
    b.add(ChannelAffine(f"{layer.name}/shift", [b.current.name], b.float_out(shape),
                        add=shift))
    b.add(Sign(layer.name, [b.current.name], b.current.out))


@converter("RPReLU")
def convert_rprelu(layer: Any, b: Builder) -> None:
    b.add(FloatPReLU(layer.name, [b.current.name], b.float_out(layer_out_shape(layer)),
                     shift_in=np.asarray(layer.shift_in.numpy(), np.float32),
                     slope=np.asarray(layer.slope.numpy(), np.float32),
                     shift_out=np.asarray(layer.shift_out.numpy(), np.float32)))


@converter("Thermometer")
def convert_thermometer(layer: Any, b: Builder) -> None:
    """FracBNN's thermometer as the first layer: the input becomes 8-bit pixel codes p (the
    host sends raw pixels; Keras sees p / 255) and the chip expands them with per-level
    thresholds read off the layer on all 256 pixels (``passes.fracbnn``)."""
    from bnn2fpga.passes.fracbnn import thermometer_thresholds

    inp = b.current
    if not isinstance(inp, Input) or inp.out.encoding != "float" or len(b.nodes) != 1:
        raise UnsupportedError(layer, f"a Thermometer reading {inp.name!r} ({inp.op}), not "
                               "the model's input", "Thermometer as the first layer (on "
                               "pixels / 255)")
    thresholds = thermometer_thresholds(layer)
    inp.out = TensorType(inp.out.shape, "uint", 8, scale=1.0 / 255.0)
    inp.quantizer = None
    b.add(ThermometerEncode(layer.name, [inp.name],
                            TensorType(layer_out_shape(layer), "bipolar"),
                            thresholds=thresholds))


@converter("PGConv2D")
def convert_pgconv2d(layer: Any, b: Builder) -> None:
    """A precision-gated convolution: a float-stage node carrying the layer, which
    ``passes.fracbnn.lower_pgconv2d`` folds (its quantizer, gate) into integers."""
    in_shape = layer_in_shape(layer)
    kernel = np.asarray(layer.kernel.numpy(), np.float32)
    weights = np.where(kernel.reshape(-1, kernel.shape[-1]).T >= 0, 1, -1).astype(np.int8)
    (kh, kw), (sh, sw) = layer.kernel_size, layer.strides
    pads = same_pads(in_shape[0], kh, sh) + same_pads(in_shape[1], kw, sw) \
        if layer.padding == "same" else (0, 0, 0, 0)
    b.add(FloatPGConv2D(layer.name, [b.current.name], b.float_out(layer_out_shape(layer)),
                        weights=weights, kernel=(int(kh), int(kw)), stride=(int(sh), int(sw)),
                        pads=pads, layer=layer))
