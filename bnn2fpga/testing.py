"""Random hardware-IR graphs for tests and benchmarks (shared by every backend's tests)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bnn2fpga.ir import (
    Add,
    Concat,
    Conv2D,
    Dense,
    Graph,
    Input,
    MaxPool2D,
    Reshape,
    TensorType,
    conv_out_size,
    same_pads,
    signed_bits_for,
)
from bnn2fpga.reference import accumulator_bound


def random_weights(rng: np.random.Generator, out_ch: int, fan_in: int) -> np.ndarray:
    return (2 * rng.integers(0, 2, (out_ch, fan_in)) - 1).astype(np.int8)


def random_thresholds(rng: np.random.Generator, out_ch: int, bound: int, n: int = 1
                      ) -> np.ndarray:
    """Thresholds spread over the reachable range, including the always/never extremes."""
    t = rng.integers(-bound, bound + 2, (out_ch, n))
    if out_ch >= 3:
        t[0, :] = -bound      # always on
        t[1, :] = bound + 1   # never on
    return np.sort(t, axis=1).astype(np.int64)


def input_node(shape: tuple[int, ...], encoding: str, bits: int = 1) -> Input:
    if encoding == "bipolar":
        return Input("input", [], TensorType(shape, "bipolar"))
    return Input("input", [], TensorType(shape, "uint", bits, 1.0))


def finish_matvec(node: Dense, in_type: TensorType, rng: np.random.Generator,
                  output: str, out_shape: tuple[int, ...]) -> Dense:
    bound = accumulator_bound(node, in_type)
    node.acc_bits = signed_bits_for(bound + 1)
    if output == "threshold":
        node.thresholds = random_thresholds(rng, node.out_channels, bound)
        node.out = TensorType(out_shape, "bipolar")
    else:
        node.out = TensorType(out_shape, "int", node.acc_bits)
        node.output_affine = (np.ones(node.out_channels), np.zeros(node.out_channels))
    return node


def random_conv_graph(rng: np.random.Generator, *, h: int = 6, w: int = 6, c: int = 4,
                      out_ch: int = 4, k: int = 3, stride: int = 1, padding: str = "same",
                      pad: str | int = "zero", encoding: str = "bipolar", bits: int = 1,
                      pe: int = 1, simd: int = 1, output: str = "threshold",
                      pool: bool = False) -> Graph:
    """Input -> Conv2D (-> MaxPool2D 2x2) as a hardware graph."""
    inp = input_node((h, w, c), encoding, bits)
    if padding == "same":
        (pt, pb), (pl, pr) = same_pads(h, k, stride), same_pads(w, k, stride)
    else:
        pt = pb = pl = pr = 0
    oh, ow = conv_out_size(h, k, stride, pt, pb), conv_out_size(w, k, stride, pl, pr)
    conv = Conv2D("conv", ["input"], TensorType((oh, ow, out_ch), "int", 2),
                  weights=random_weights(rng, out_ch, k * k * c), kernel=(k, k),
                  stride=(stride, stride), pads=(pt, pb, pl, pr), pad=pad, pe=pe, simd=simd)
    finish_matvec(conv, inp.out, rng, output, (oh, ow, out_ch))
    nodes = [inp, conv]
    if pool:
        ph, pw = oh // 2, ow // 2
        mins = tuple(int(i) for i in np.flatnonzero(rng.integers(0, 2, out_ch)))
        nodes.append(MaxPool2D("pool", ["conv"], conv.out.with_shape((ph, pw, out_ch)),
                               kernel=(2, 2), stride=(2, 2), min_channels=mins))
    return Graph("random_conv", nodes)


def random_dense_graph(rng: np.random.Generator, *, fan_in: int = 40, out_ch: int = 8,
                       encoding: str = "bipolar", bits: int = 1, pe: int = 1, simd: int = 1,
                       output: str = "threshold") -> Graph:
    """Input -> Dense as a hardware graph."""
    inp = input_node((fan_in,), encoding, bits)
    dense = Dense("dense", ["input"], TensorType((out_ch,), "int", 2),
                  weights=random_weights(rng, out_ch, fan_in), pe=pe, simd=simd)
    finish_matvec(dense, inp.out, rng, output, (out_ch,))
    return Graph("random_dense", [inp, dense])


def random_cnn_graph(rng: np.random.Generator, *, h: int = 8, w: int = 8, c: int = 1,
                     bits: int = 4) -> Graph:
    """A small complete network: uint input -> conv -> pool -> conv(stride 2) -> flatten ->
    dense (accumulator output).  Exercises every hardware node type together."""
    g = random_conv_graph(rng, h=h, w=w, c=c, out_ch=6, k=3, encoding="uint", bits=bits,
                          pool=True, pe=2, simd=1)
    pool = g.nodes[-1]
    ph, pw, pc = pool.out.shape
    (pt, pb), (pl, pr) = same_pads(ph, 3, 2), same_pads(pw, 3, 2)
    oh, ow = conv_out_size(ph, 3, 2, pt, pb), conv_out_size(pw, 3, 2, pl, pr)
    conv2 = Conv2D("conv2", [pool.name], TensorType((oh, ow, 5), "int", 2),
                   weights=random_weights(rng, 5, 9 * pc), kernel=(3, 3), stride=(2, 2),
                   pads=(pt, pb, pl, pr), pad="zero", pe=5, simd=3)
    finish_matvec(conv2, pool.out, rng, "threshold", (oh, ow, 5))
    flat = Reshape("flatten", ["conv2"], conv2.out.with_shape((oh * ow * 5,)))
    dense = Dense("dense", ["flatten"], TensorType((10,), "int", 2),
                  weights=random_weights(rng, 10, oh * ow * 5), pe=2, simd=oh * ow * 5)
    finish_matvec(dense, flat.out, rng, "accumulator", (10,))
    g.nodes += [conv2, flat, dense]
    g.name = "random_cnn"
    return g


def random_geometry_conv_graph(rng: np.random.Generator) -> Graph:
    """A conv of any geometry: kernel 1..4 and stride 1..3 per axis, asymmetric pads up to the
    kernel size (windows made only of padding included), any folding, encoding and pad value,
    one or two thresholds or the accumulator."""
    h, w = (int(v) for v in rng.integers(1, 9, 2))
    kh, kw = (int(v) for v in rng.integers(1, 5, 2))
    sh, sw = (int(v) for v in rng.integers(1, 4, 2))
    pt, pb = (int(v) for v in rng.integers(0, kh + 1, 2))
    pl, pr = (int(v) for v in rng.integers(0, kw + 1, 2))
    pb, pr = max(pb, kh - h - pt), max(pr, kw - w - pl)  # at least one output pixel
    c, out_ch = int(rng.choice([1, 2, 3, 4, 6])), int(rng.choice([1, 2, 3, 5, 8]))
    encoding = str(rng.choice(["bipolar", "uint"]))
    bits = 1 if encoding == "bipolar" else int(rng.integers(1, 5))
    pad = rng.choice(["zero", 0, 1 if encoding == "bipolar" else (1 << bits) - 1])
    pe = int(rng.choice([d for d in range(1, out_ch + 1) if out_ch % d == 0]))
    simd = int(rng.choice([d for d in range(1, c + 1) if c % d == 0]))
    inp = input_node((h, w, c), encoding, bits)
    oh, ow = conv_out_size(h, kh, sh, pt, pb), conv_out_size(w, kw, sw, pl, pr)
    conv = Conv2D("conv", ["input"], TensorType((oh, ow, out_ch), "int", 2),
                  weights=random_weights(rng, out_ch, kh * kw * c), kernel=(kh, kw),
                  stride=(sh, sw), pads=(pt, pb, pl, pr),
                  pad="zero" if pad == "zero" else int(pad), pe=pe, simd=simd)
    output = str(rng.choice(["threshold", "accumulator"]))
    finish_matvec(conv, inp.out, rng, output, (oh, ow, out_ch))
    if output == "threshold" and rng.integers(0, 2):
        conv.thresholds = random_thresholds(rng, out_ch, conv.fan_in, n=2)
        conv.out = TensorType(conv.out.shape, "uint", 2)
    return Graph("fuzz_conv", [inp, conv])


def random_input_codes(rng: np.random.Generator, graph: Graph, frames: int) -> np.ndarray:
    t = graph.input.out
    if t.is_signed:     # fixed / int: the whole two's-complement range
        lo, hi = t.code_range()
        return rng.integers(lo, hi + 1, (frames,) + t.shape).astype(np.int64)
    top = 2 if t.encoding == "bipolar" else (1 << t.bits)
    return rng.integers(0, top, (frames,) + t.shape).astype(np.int64)


# ----------------------------------------------------------------------------------------
# Random supported Keras chains (QKeras, Larq and both mixed), built as a user would
# ----------------------------------------------------------------------------------------

CHAIN_INPUT_SCALE = 0.0625
CHAIN_INPUT_BITS = 5


@dataclass
class KerasChain:
    """A random Keras model the README says is supported, with its compile options and
    input frames on the compile's grid."""

    model: Any
    compile_kwargs: dict[str, Any]
    x: np.ndarray
    layers: list[str]  # a short description of each layer, for tables and messages


class _ChainBuilder:
    def __init__(self, rng: np.random.Generator, library: str) -> None:
        self.rng, self.library = rng, library
        self.layers: list[Any] = []
        self.desc: list[str] = []
        self.shape: tuple[int, ...] = ()
        self.pending_sign = False  # the next binary layer must binarise its input (Larq)

    def lib(self) -> str:
        return str(self.rng.choice(["qkeras", "larq"])) if self.library == "mixed" \
            else self.library

    def coin(self, p: float = 0.5) -> bool:
        return bool(self.rng.random() < p)

    def add(self, layer: Any, desc: str, shape: tuple[int, ...]) -> None:
        self.layers.append(layer)
        self.desc.append(desc)
        self.shape = shape

    def binarise(self, lib: str | None = None) -> None:
        """A binarisation: a QActivation, or (Larq) the next binary layer's input quantizer."""
        from qkeras import QActivation

        if (lib or self.lib()) == "larq":
            self.pending_sign = True
        else:
            self.add(QActivation("binary"), "QActivation(binary)", self.shape)

    def batchnorm(self) -> None:
        import tensorflow as tf

        self.add(tf.keras.layers.BatchNormalization(), "BN", self.shape)

    def matvec(self, out: int, *, conv: bool, first: bool, activation: bool = False,
               lib: str | None = None) -> None:
        """A binary Dense/Conv2D; Larq's takes the pending binarisation as input quantizer."""
        import larq as lq
        from qkeras import QConv2D, QDense, binary

        lib = "larq" if self.pending_sign else (lib or self.lib())
        bias = self.coin(0.3)
        if conv:
            k = int(self.rng.choice([k for k in (1, 2, 3) if k <= min(self.shape[:2])]))
            padding = str(self.rng.choice(["same", "valid"]))
            stride = int(self.rng.choice([1, 2])) if min(self.shape[:2]) >= 4 else 1
            h, w = ((-(-s // stride)) if padding == "same" else (s - k) // stride + 1
                    for s in self.shape[:2])
            shape = (h, w, out)
        else:
            shape = (out,)
        if lib == "qkeras":
            alpha = "auto_po2" if self.coin(0.2) else 1
            kw = {"kernel_quantizer": binary(alpha=alpha), "use_bias": bias}
            if activation:
                kw["activation"] = binary(alpha=1)
            layer = QConv2D(out, k, strides=stride, padding=padding, **kw) if conv else \
                QDense(out, **kw)
            name = f"QConv2D({out},{k},s{stride},{padding})" if conv else f"QDense({out})"
            name += f"[alpha={alpha}]" * (alpha != 1) + "+bias" * bias \
                + "+binary" * activation
        else:
            kw = {"kernel_quantizer": "ste_sign", "use_bias": bias,
                  "input_quantizer": "ste_sign" if self.pending_sign else None}
            if conv:
                # a pad value must be representable: ±1 on binary inputs, 0/1 on the grid
                pads = [0.0, 1.0] if first and not self.pending_sign else [0.0, 1.0, -1.0]
                pad = float(self.rng.choice(pads)) if padding == "same" else 0.0
                layer = lq.layers.QuantConv2D(out, k, strides=stride, padding=padding,
                                              pad_values=pad, **kw)
                name = f"QuantConv2D({out},{k},s{stride},{padding},pad={pad:g})"
            else:
                layer = lq.layers.QuantDense(out, **kw)
                name = f"QuantDense({out})"
            name += "[ste_sign in]" * self.pending_sign + "+bias" * bias
        self.pending_sign = False
        self.add(layer, name, shape)

    def between(self, conv: bool) -> None:
        """Layers a binarised tensor may pass on its way to the next binary layer: pools,
        Flatten/Reshape, a second binarisation."""
        import tensorflow as tf

        L = tf.keras.layers
        if conv and min(self.shape[:2]) >= 2 and self.coin(0.35):
            if self.coin(0.6):  # a pending Larq sign then follows the pool
                self.add(L.MaxPooling2D(), "MaxPool", (self.shape[0] // 2, self.shape[1] // 2,
                                                       self.shape[2]))
            else:
                self.sign_now()
                self.add(L.AveragePooling2D(padding="same"), "AvgPool",
                         (-(-self.shape[0] // 2), -(-self.shape[1] // 2), self.shape[2]))
                self.binarise()  # an average of bits must be binarised (a majority vote)
        if self.coin(0.25):
            self.sign_now()
            self.binarise()  # a second binarisation: the identity on ±1

    def sign_now(self) -> None:
        """Make a pending Larq binarisation explicit (a QActivation) where the next layer is
        not a binary layer."""
        if self.pending_sign:
            self.pending_sign = False
            self.binarise("qkeras")

    def flatten(self) -> None:
        import tensorflow as tf

        L = tf.keras.layers
        size = int(np.prod(self.shape))
        if len(self.shape) == 3 and self.coin(0.3):
            self.add(L.Reshape((self.shape[0] * self.shape[1], self.shape[2])), "Reshape",
                     (self.shape[0] * self.shape[1], self.shape[2]))
        self.add(L.Flatten(), "Flatten", (size,))


def random_keras_chain(rng: np.random.Generator, library: str = "mixed") -> KerasChain:
    """A random chain model of supported layers (``library`` qkeras, larq or mixed):

    input (real on a 5-bit grid, QKeras input quantizer, or a Larq sign behind Flatten or
    max-pool) -> conv blocks -> dense blocks -> a last binary layer, optionally with a
    BatchNorm before or after a final Flatten.  Each hidden block: binary layer [max-pool]
    [BN] binarisation, then optionally pools, a second binarisation, Flatten/Reshape."""
    import tensorflow as tf
    from qkeras import QActivation, quantized_relu

    L = tf.keras.layers
    b = _ChainBuilder(rng, library)
    spatial = b.coin(0.6)
    shape = (int(rng.integers(4, 8)), int(rng.integers(4, 8)), int(rng.integers(1, 3))) \
        if spatial else (int(rng.integers(4, 17)),)
    b.add(L.InputLayer(input_shape=shape), f"Input{shape}", shape)
    first_lib = b.lib()
    kwargs: dict[str, Any] = {}
    sign_input = first_lib == "larq" and b.coin(0.4)
    if sign_input:
        if spatial and b.coin(0.5):
            b.add(L.MaxPooling2D(), "MaxPool", (shape[0] // 2, shape[1] // 2, shape[2]))
        if not spatial or b.coin(0.5):
            spatial = False
            b.flatten()
        b.pending_sign = True
    elif first_lib == "qkeras" and b.coin(0.4):
        b.add(QActivation(quantized_relu(CHAIN_INPUT_BITS, 1)), "quantized_relu(5,1)", shape)
    else:
        kwargs = {"input_scale": CHAIN_INPUT_SCALE, "input_bits": CHAIN_INPUT_BITS}
    first = True
    n_conv = int(rng.integers(1, 3)) if spatial else 0
    n_dense = 0 if spatial and b.coin(0.4) else int(rng.integers(0, 3))  # often a last conv
    for i in range(n_conv + n_dense):
        conv = i < n_conv
        if not conv and len(b.shape) > 1:
            b.flatten()
        lib = b.lib()
        own_activation = not conv and lib == "qkeras" and b.coin(0.25) and not b.pending_sign
        b.matvec(int(rng.integers(2, 7)), conv=conv, first=first, activation=own_activation,
                 lib=lib)
        first = False
        if not own_activation:
            if conv and min(b.shape[:2]) >= 2 and b.coin(0.3):
                b.add(L.MaxPooling2D(), "MaxPool", (b.shape[0] // 2, b.shape[1] // 2,
                                                    b.shape[2]))
            if b.coin(0.8):
                b.batchnorm()
            b.binarise()
        b.between(conv)
    if len(b.shape) > 1 and b.coin(0.3):
        b.flatten()
    conv_last = len(b.shape) > 1
    b.matvec(int(rng.integers(2, 6)), conv=conv_last, first=first)
    if b.coin(0.5):
        b.batchnorm()
    if conv_last and b.coin(0.7):
        b.flatten()
        if b.coin(0.4):
            b.batchnorm()  # per feature, at the output
    model = tf.keras.Sequential(b.layers, name=f"chain_{library}")
    randomise_weights(rng, model)
    if sign_input:
        x = rng.normal(size=(64, *shape)).astype(np.float32)
        x[:, ::3] = 0.0  # ties: sign(0) = +1
    else:
        x = (rng.integers(0, 1 << CHAIN_INPUT_BITS, (64, *shape)) * CHAIN_INPUT_SCALE
             ).astype(np.float32)
    return KerasChain(model, kwargs, x, b.desc)


def randomise_weights(rng: np.random.Generator, model: Any) -> None:
    """Seeded latent kernels and biases, and BatchNorm statistics that put each crossing
    inside the reachable range, with negative and zero scales (as a trained model has)."""
    import tensorflow as tf

    fan_in = 1
    for layer in model.layers:
        weights = layer.get_weights()
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            c = int(layer.moving_mean.shape[0])
            spread = float(np.sqrt(fan_in))
            gamma = rng.normal(size=c)
            gamma[rng.random(c) < 0.1] = 0.0
            drawn = {"gamma": gamma, "beta": rng.normal(size=c),
                     "moving_mean": rng.normal(size=c) * spread,
                     "moving_variance": rng.uniform(0.3, 3.0, c) * spread}
            # scale=False / center=False layers have no gamma / beta
            layer.set_weights([drawn[w.name.split("/")[-1].split(":")[0]]
                               for w in layer.weights])
        elif weights:  # a binary layer: kernel [, bias]
            fan_in = int(np.prod(weights[0].shape[:-1]))
            layer.set_weights([rng.normal(size=w.shape) * (np.sqrt(fan_in) if i else 1.0)
                               for i, w in enumerate(weights)])


def inverted_mask(shape: tuple[int, ...], entry: dict[str, Any]) -> np.ndarray:
    """Where a tensor of ``shape`` (batch first, channels last, or flattened channels-last)
    holds a channel in ``entry["inverted"]`` of ``entry["channels"]``."""
    channel = np.arange(int(np.prod(shape[1:]))).reshape(shape[1:]) % entry["channels"]
    return np.isin(channel, entry["inverted"])[None]


def keras_quantized_codes(model: Any, tensor: str, step: float, lo: int, x: np.ndarray
                          ) -> np.ndarray:
    """The model's codes (value / step - lo) of a quantized tensor named as in
    ``graph.meta["keras_quantized"]``: a layer's output, or ``layer/input_quantizer`` (the
    layer's input through its own input quantizer, as the layer's call applies it)."""
    import tensorflow as tf

    from bnn2fpga.passes.quantizers import grid_codes

    name, _, role = tensor.partition("/")
    layer = model.get_layer(name)
    if role == "input_quantizer":
        probe = tf.keras.Model(model.inputs, layer.input)
        y = layer.input_quantizer(tf.constant(probe.predict(x, verbose=0)))
    else:
        y = tf.keras.Model(model.inputs, layer.output).predict(x, verbose=0)
    k = grid_codes(np.asarray(y, np.float64), step)
    if not np.all(k == np.round(k)):
        raise ValueError(f"{tensor}: the model's values are not on the grid of step {step!r}")
    return k.astype(np.int64) - lo


def keras_mismatches(model: Any, graph: Graph, x: np.ndarray) -> list[str]:
    """How the reference differs from the Keras model on frames ``x`` (empty: exact).

    Outputs: same shape and argmax, equal up to float32 rounding of the last affine step.
    Every intermediate binary activation (``graph.meta["keras_activations"]``) bit for bit,
    and every 2-bit code of a FracBNN quantizer (``graph.meta["keras_codes"]``) code for
    code (channels the compiler inverted, ``graph.meta["inverted_channels"]``, compared
    inverted)."""
    import tensorflow as tf

    from bnn2fpga import reference

    x = x.reshape((len(x), *model.input_shape[1:]))
    problems = []
    keras_out = model.predict(x, verbose=0)
    ref_out = reference.run(graph, x)
    if ref_out.dtype != np.float32 or ref_out.shape != keras_out.shape:
        return [f"output {ref_out.dtype}{ref_out.shape} vs Keras {keras_out.shape}"]
    if keras_out.shape[-1] > 1 and not np.array_equal(ref_out.argmax(-1), keras_out.argmax(-1)):
        problems.append("argmax differs")
    tol = 8 * np.finfo(np.float32).eps * np.maximum(1.0, np.abs(keras_out))
    err = np.abs(ref_out.astype(np.float64) - keras_out)
    if not np.all(err <= tol):
        problems.append(f"output error {float(err.max())!r}")
    values = reference.execute(graph, reference.quantize_input(graph.input, x))
    inverted = graph.meta.get("inverted_channels", {})
    for node_name, layer_name in graph.meta.get("keras_codes", {}).items():
        from bnn2fpga.passes.fracbnn import quantizer_codes

        probe = tf.keras.Model(model.inputs, model.get_layer(layer_name).output)
        y = probe.predict(x, verbose=0)
        q = quantizer_codes(y.reshape(-1, y.shape[-1]))
        q = q.reshape(y.shape)
        if node_name in inverted:   # a negative BN scale: 3 - q on chip
            q = np.where(inverted_mask(q.shape, inverted[node_name]), 3 - q, q)
        if values[node_name].shape != q.shape:
            problems.append(f"{node_name}: shape {values[node_name].shape} vs "
                            f"{layer_name} {q.shape}")
        elif (bad := int(np.sum(values[node_name] != q))):
            problems.append(f"{node_name} vs the 2-bit codes of {layer_name}: {bad} codes "
                            "differ")
    for node_name, layer_name in graph.meta.get("keras_activations", {}).items():
        probe = tf.keras.Model(model.inputs, model.get_layer(layer_name).output)
        keras_bits = (probe.predict(x, verbose=0) >= 0).astype(np.int64)
        if node_name in inverted:   # channels inverted on chip (the next weights negated)
            keras_bits = np.where(inverted_mask(keras_bits.shape, inverted[node_name]),
                                  1 - keras_bits, keras_bits)
        if values[node_name].shape != keras_bits.shape:
            problems.append(f"{node_name}: shape {values[node_name].shape} vs "
                            f"{layer_name} {keras_bits.shape}")
        elif (bad := int(np.sum(values[node_name] != keras_bits))):
            problems.append(f"{node_name} vs {layer_name}: {bad} bits differ")
    return problems


# ----------------------------------------------------------------------------------------
# Hardware graphs with forks and joins (residual adds, concats)
# ----------------------------------------------------------------------------------------


def _conv(rng: np.random.Generator, name: str, src: Any, out_ch: int, k: int, output: str,
          pe: int = 1, simd: int = 1) -> Conv2D:
    h, w, c = src.out.shape
    (pt, pb), (pl, pr) = same_pads(h, k, 1), same_pads(w, k, 1)
    conv = Conv2D(name, [src.name], TensorType((h, w, out_ch), "int", 2),
                  weights=random_weights(rng, out_ch, k * k * c), kernel=(k, k),
                  stride=(1, 1), pads=(pt, pb, pl, pr), pad="zero", pe=pe, simd=simd)
    return finish_matvec(conv, src.out, rng, output, (h, w, out_ch))


def residual_graph(rng: np.random.Generator, *, h: int = 6, w: int = 6, c: int = 2,
                   out_ch: int = 4, bits: int = 3, long_convs: int = 2, pe: int = 2,
                   add_pe: int = 2, join: str = "add", out_bits: int = 6,
                   out_frac: int = 1) -> Graph:
    """A residual block on a uint input: a long branch of ``long_convs`` 3x3 convs (binary
    activations between, the last an ``int`` accumulator), a short branch of one 1x1 conv
    (``int`` accumulator), joined.

    ``join="add"``: add1 = long + short (fixed, frac 2: exact left shifts), then
    add2 = add1 + short (fixed ``out_bits``/``out_frac``: a round-half-up right shift and
    saturation), so the short branch's tensor is read twice (a fork).  ``join="concat"``:
    the two accumulators' channels concatenated (both given one width)."""
    inp = input_node((h, w, c), "uint", bits)
    nodes: list[Any] = [inp]
    src: Any = inp
    for i in range(long_convs):
        last = i == long_convs - 1
        src = _conv(rng, f"long{i}", src, out_ch, 3, "accumulator" if last else "threshold",
                    pe=pe, simd=1 if i == 0 else 2)
        nodes.append(src)
    short = _conv(rng, "short", inp, out_ch, 1, "accumulator", pe=pe, simd=c)
    nodes.append(short)
    if join == "concat":
        width = max(src.acc_bits, short.acc_bits)
        for n in (src, short):
            n.acc_bits = width
            n.out = TensorType(n.out.shape, "int", width)
        out = TensorType((h, w, 2 * out_ch), "int", width)
        nodes.append(Concat("concat", [src.name, short.name], out))
        return Graph("residual_concat", nodes)
    a1 = max(src.acc_bits, short.acc_bits) + 3
    add1 = Add("add1", [src.name, short.name], TensorType.fixed((h, w, out_ch), a1, 2),
               pe=add_pe)
    add2 = Add("add2", ["add1", short.name],
               TensorType.fixed((h, w, out_ch), out_bits, out_frac), pe=add_pe)
    nodes += [add1, add2]
    return Graph("residual_add", nodes)


def assert_engines_agree(graph: Graph, x: np.ndarray, work: Any, name: str,
                         stalls: tuple[float, ...] = (0.3,), seed: int = 3) -> None:
    """Write ``graph``'s RTL and HLS projects under ``work`` and assert that Verilator (at
    each random-stall probability of ``stalls``) and the HLS C-sim give the reference's
    output codes for float frames ``x``, bit for bit."""
    from pathlib import Path

    from bnn2fpga import reference
    from bnn2fpga.backends import CompileOptions, hls, rtl
    from bnn2fpga.sim import csim
    from bnn2fpga.sim.rtl import simulate_many

    work = Path(work)
    codes = reference.quantize_input(graph.input, x)
    want = reference.execute(graph, codes)[graph.output.name]
    rtl.write_project(graph, work / "rtl", CompileOptions(top=f"{name}_rtl"))
    (work / "hls").mkdir()
    hls.write_project(graph, work / "hls", CompileOptions(top=f"{name}_hls"))
    for stall in stalls:
        (run,) = simulate_many([(work, graph, codes)], work / "cache", stall_prob=stall,
                               seed=seed, name=name)
        assert np.array_equal(run.codes, want), f"RTL differs (stall {stall})"
    (res,) = csim.simulate_many([(work, graph, codes)], cache_dir=work / "csim")
    assert np.array_equal(res.codes, want), "C-sim differs"


def assert_outputs_match(model: Any, graph: Graph, x: np.ndarray) -> None:
    """The reference's outputs for float frames ``x`` (reshaped to the model's input) equal
    Keras's: same argmax, and equal up to float32 rounding of the last affine step."""
    from bnn2fpga import reference

    x = x.reshape((len(x),) + tuple(model.input_shape[1:]))
    keras_out = model.predict(x, verbose=0)
    ref_out = reference.run(graph, x)
    assert ref_out.dtype == np.float32 and ref_out.shape == keras_out.shape
    assert np.array_equal(ref_out.argmax(-1), keras_out.argmax(-1))
    tol = 8 * np.finfo(np.float32).eps * np.maximum(1.0, np.abs(keras_out))
    assert np.all(np.abs(ref_out - keras_out) <= tol), np.abs(ref_out - keras_out).max()
