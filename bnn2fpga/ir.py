"""The bnn2fpga intermediate representation.

One graph type serves both stages of the compiler:

* the *float* stage, produced by a frontend: binary matrix-vector nodes still followed by
  float nodes (``ChannelAffine``, ``BatchNorm``, ``Sign``) taken from the Keras model;
* the *hardware* stage, after the passes: integers only.  Every backend (reference, HLS, RTL,
  estimator) consumes this stage and nothing else.

Tensors are channels-last and carry no batch dimension.  Value encodings
(``TensorType.encoding``):

``bipolar``   1 bit, bit 1 = +1, bit 0 = -1
``unipolar``  1 bit, bit 1 = +1, bit 0 = 0 (Si-BNN)
``uint``      unsigned ``bits``-bit code k; real value = offset + scale * k
``int``       signed ``bits``-bit integer (an accumulator); real value = scale * k
``fixed``     signed fixed point: a ``bits``-bit two's-complement code k with ``frac``
              fraction bits; real value = k * 2^-frac (a real-valued path: residual
              streams, float first and last layers)
``float``     float32 (only in the float stage)

The graph is a DAG: a node names its input tensors (the nodes producing them) in
``inputs``, a tensor may feed several nodes, and ``Graph.index()`` gives the producer and
consumer of every tensor.  Nodes are kept in topological order.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

ENCODINGS = ("bipolar", "unipolar", "uint", "int", "fixed", "float")


class IRError(ValueError):
    """An IR that violates an invariant (bad folding, bad shape, bad parameter)."""


@dataclass(frozen=True)
class TensorType:
    shape: tuple[int, ...]
    encoding: str
    bits: int = 1
    scale: float = 1.0
    offset: float = 0.0
    frac: int = 0       # fraction bits of a ``fixed`` tensor

    def __post_init__(self) -> None:
        if self.encoding not in ENCODINGS:
            raise IRError(f"unknown encoding {self.encoding!r}; expected one of {ENCODINGS}")
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        if self.encoding == "fixed" and not (self.bits >= 2 and 0 <= self.frac < self.bits):
            raise IRError(f"a fixed-point tensor needs bits >= 2 and 0 <= frac < bits, got "
                          f"bits={self.bits} frac={self.frac}")
        if self.encoding != "fixed" and self.frac:
            raise IRError(f"frac={self.frac} is only meaningful for a fixed tensor, not "
                          f"{self.encoding}")

    @classmethod
    def fixed(cls, shape: tuple[int, ...], bits: int, frac: int) -> TensorType:
        """A signed fixed-point tensor of ``bits`` total and ``frac`` fraction bits."""
        return cls(tuple(shape), "fixed", int(bits), frac=int(frac))

    @property
    def is_signed(self) -> bool:
        return self.encoding in ("int", "fixed")

    @property
    def step(self) -> float:
        """The real value of one code unit (``fixed``: 2^-frac; ``uint``/``int``: scale)."""
        return math.ldexp(1.0, -self.frac) if self.encoding == "fixed" else self.scale

    def code_range(self) -> tuple[int, int]:
        """The smallest and largest code of one element."""
        if self.is_binary:
            return 0, 1
        if self.is_signed:
            return -(1 << (self.bits - 1)), (1 << (self.bits - 1)) - 1
        if self.encoding == "uint":
            return 0, (1 << self.bits) - 1
        raise IRError(f"a {self.encoding} tensor has no integer codes")

    @property
    def channels(self) -> int:
        return self.shape[-1]

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def is_binary(self) -> bool:
        return self.encoding in ("bipolar", "unipolar")

    def with_shape(self, shape: tuple[int, ...]) -> TensorType:
        return dataclasses.replace(self, shape=tuple(shape))


def conv_out_size(size: int, k: int, stride: int, pad_lo: int, pad_hi: int) -> int:
    return (size + pad_lo + pad_hi - k) // stride + 1


def same_pads(size: int, k: int, stride: int) -> tuple[int, int]:
    """TF/Keras 'same' padding along one axis (the odd extra pad goes to the bottom/right)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def signed_bits_for(max_abs: int) -> int:
    """Bits of a two's-complement integer that holds every value in [-max_abs, max_abs]."""
    return max(2, int(max_abs).bit_length() + 1)


# ----------------------------------------------------------------------------------------
# Nodes
# ----------------------------------------------------------------------------------------

_NODE_TYPES: dict[str, type[Node]] = {}


@dataclass(eq=False)
class Node:
    """A graph node.  ``inputs`` name earlier nodes; ``out`` is the node's output tensor."""

    name: str
    inputs: list[str]
    out: TensorType

    op: ClassVar[str] = "node"
    hardware: ClassVar[bool] = True  # False for float-stage nodes removed by the passes

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _NODE_TYPES[cls.op] = cls


@dataclass(eq=False)
class Input(Node):
    """The graph input.  The host turns float frames into the integer codes of ``out``.

    ``quantizer`` is ``None`` when the input must already lie on the grid
    (x = offset + scale * k exactly), or ``"round_half_even"`` when the model's own input
    quantizer rounds and clips (QKeras ``quantized_bits``/``quantized_relu`` do), or
    ``"dorefa"`` (Larq DoReFa: codes round_half_even(clip(x, 0, 1) * n), scale 1/n).
    """

    quantizer: str | None = None
    op: ClassVar[str] = "input"


@dataclass(eq=False)
class Dense(Node):
    """Binary-weight matrix-vector unit (MVTU): XNOR-popcount, then thresholds or accumulator.

    ``weights``: int8 in {-1, +1}, shape (out_channels, fan_in); fan-in order is the input
    tensor flattened channels-last.  A channel whose BatchNorm scale was negative has had its
    weights negated already (the flip is folded into the weights once, here).
    ``thresholds``: int64 (out_channels, n) ascending; output code = #{j : acc >= T[c, j]}.
    ``None`` means the node outputs the accumulator itself (the network's last layer).
    ``output_affine``: (scale, offset) float64 per channel, or per output element when the
    model's last float step follows a Flatten, applied by the host only, to turn the last
    layer's accumulator into the Keras model's float output.
    ``acc_bits``: signed width of the accumulator and of the thresholds, derived from the
    worst case |acc| <= bound by ``passes.assign_accumulator_widths`` (thresholds lie in
    [-bound, bound + 1], so the width holds bound + 1).  Backends use it as is.
    ``weight_bits``: 1 for bipolar weights (int8 in {-1, +1}, XNOR-popcount); 2..16 for
    signed integer weight codes in [-2^(b-1), 2^(b-1) - 1] (a float first or last layer
    quantized to fixed point: multiply-accumulate), with an ``int`` or ``fixed`` input
    allowed.  The accumulator is then in units of the input's step times the weights'.
    """

    weights: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int8))
    thresholds: np.ndarray | None = None
    output_affine: tuple[np.ndarray, np.ndarray] | None = None
    acc_bits: int = 0
    pe: int = 1
    simd: int = 1
    weight_bits: int = 1
    op: ClassVar[str] = "dense"

    @property
    def out_channels(self) -> int:
        return int(self.weights.shape[0])

    @property
    def fan_in(self) -> int:
        return int(self.weights.shape[1])


@dataclass(eq=False)
class Conv2D(Dense):
    """Binary-weight 2D convolution = sliding window + MVTU.

    Fan-in order is (ky, kx, c).  ``pads`` = (top, bottom, left, right).  ``pad`` is the value
    of padded taps: ``"zero"`` contributes exactly 0 to the dot product (for a bipolar input
    the sliding window flags the tap invalid and the MVTU adds nothing for it; for a uint
    input it is the code 0), or an integer code (bit 1 = +1 for bipolar, Larq
    ``pad_values=1``; a code k for uint).
    """

    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    pad: str | int = "zero"
    op: ClassVar[str] = "conv2d"


@dataclass(eq=False)
class MaxPool2D(Node):
    """Max-pool over a window.  Padded positions are ignored (Keras 'same' semantics).

    ``min_channels`` lists channels that take the minimum instead (AND for bits): this is how
    a max-pool that stood before a BatchNorm with a negative scale stays exact once the
    threshold has moved in front of it.  Bits are pooled as codes: max = OR, min = AND.
    """

    kernel: tuple[int, int] = (2, 2)
    stride: tuple[int, int] = (2, 2)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    min_channels: tuple[int, ...] = ()
    op: ClassVar[str] = "maxpool2d"


@dataclass(eq=False)
class MajorityPool2D(Node):
    """Average-pool of bipolar values followed by a sign: bit +1 iff the sum of the window's
    valid (unpadded) values, each ±1, is >= 0.  Keras 'same' average pooling divides by the
    count of valid positions, which cannot change the sign; a tie (sum 0) gives +1, as
    sign(0) does in QKeras and Larq.  Hardware: popcount of the window >= ceil(valid / 2)."""

    kernel: tuple[int, int] = (2, 2)
    stride: tuple[int, int] = (2, 2)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    op: ClassVar[str] = "majoritypool2d"


@dataclass(eq=False)
class Reshape(Node):
    """Flatten/Reshape: channels-last order is unchanged, so hardware sees a no-op."""

    op: ClassVar[str] = "reshape"


# ---- FracBNN: thermometer input and the precision-gated convolution ----------------------


@dataclass(eq=False)
class ThermometerEncode(Node):
    """FracBNN's thermometer input (``bnn2fpga.layers.Thermometer``) expanded on chip: the
    input is one ``uint`` 8-bit pixel code p per colour channel; output channel c*L + k is
    the bipolar bit [p >= thresholds[k]] (ascending; 256 never fires), L =
    len(thresholds).  The thresholds are the layer's own decisions on all 256 pixel
    values, so the unit is exact by exhaustion."""

    thresholds: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    op: ClassVar[str] = "thermometer"


@dataclass(eq=False)
class PGConv2D(Conv2D):
    """FracBNN's precision-gated binary convolution (``bnn2fpga.layers.PGConv2D``) on 2-bit
    codes q in {0, 1, 2, 3} (a ``uint`` 2-bit input: the previous layer's thresholds are
    the layer's quantizer).  Bit planes m = [q >= 2], l = [q odd] as +-1; M and L = the
    binary convolution of each plane with ``weights`` (a padded tap adds 0 to both);
    gate g = [M >= gate_thresholds[c]] per output pixel and channel; the accumulator is
    acc = 2M + g*L (3x the layer's output).  ``thresholds`` (optional) act on acc as a
    Dense's do.  Hardware: the MSB pass runs for every output; the LSB pass only for
    output groups (one pixel x the PE lanes of a neuron fold) with a gate on.
    ``gate_density``: the measured fraction of groups gated on (1.0 until measured), which
    sets the expected cycles; the worst case has every gate on."""

    gate_thresholds: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    gate_density: float = 1.0
    op: ClassVar[str] = "pgconv2d"


# ---- real-valued paths: fixed-point hardware nodes (bnn2fpga.fixed defines the arithmetic)


@dataclass(eq=False)
class Add(Node):
    """Element-wise sum of two or more ``fixed``/``int`` tensors of one shape (a residual
    join).  Each input is aligned exactly to the largest fraction width among the inputs
    (left shifts), the aligned codes are summed, and the sum is brought to the output's
    ``frac`` with one ``fixed.round_shift`` and saturated to the output's bits.  An ``int``
    input counts as ``frac`` 0.  ``pe``: lanes per beat of its unit."""

    pe: int = 1
    op: ClassVar[str] = "add"


@dataclass(eq=False)
class Concat(Node):
    """Channel concatenation of two or more tensors of one spatial shape and one type
    (encoding, bits, frac): output channels are the inputs' channels in input order."""

    op: ClassVar[str] = "concat"


@dataclass(eq=False)
class FixedAffine(Node):
    """Per-channel fixed-point affine with a sign-dependent slope: BatchNorm on a real
    tensor, a bias, ReLU/PReLU, RPReLU.  For channel c, on input codes x (``fixed``/``int``,
    frac F_in; ``add_in`` in input codes):

        u = x + add_in[c]
        p = u * mul_pos[c] + add_out[c]   if u >= 0
            u * mul_neg[c] + add_neg[c]   if u < 0   (add_neg empty: add_out on both sides)
        y = saturate(round_shift(p, shift))        (output frac F_out)

    so a real value maps as y ~ (u * m) * 2^-(shift) with ``mul_*`` the multipliers in
    units of 2^(F_out + shift - F_in).  ``add_out``/``add_neg`` are in product units.
    ``mul_bits``: the signed width of the multipliers (what the hardware builds, DSP or
    LUTs).  ``pe``: lanes per beat.  BN: mul_pos = mul_neg; ReLU: mul_neg = 0; RPReLU:
    add_in = shift_in and add_out = shift_out << shift; BN -> RPReLU -> BN in one node
    (``passes.real.lower_prelu_chain``): the pivot on the input codes and one offset per
    side."""

    mul_pos: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    mul_neg: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    add_in: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    add_out: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    add_neg: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    shift: int = 0
    mul_bits: int = 2
    pe: int = 1
    op: ClassVar[str] = "fixed_affine"


@dataclass(eq=False)
class Threshold(Node):
    """Thresholds on a ``fixed``/``int`` tensor (FINN's Thresholding): the output code of
    channel c is #{t : x >= thresholds[c, t]} (ascending rows), or on -x for the channels in
    ``negate_channels`` (a sign after a negative scale).  One threshold per channel gives a
    ``bipolar`` bit (RSign, the sign of a residual sum); n thresholds a ``uint`` code.
    ``pe``: lanes per beat."""

    thresholds: np.ndarray = field(default_factory=lambda: np.zeros((0, 1), np.int64))
    negate_channels: tuple[int, ...] = ()
    pe: int = 1
    op: ClassVar[str] = "threshold"


@dataclass(eq=False)
class FixedAvgPool(Node):
    """Average pooling of ``fixed``/``int`` values over unpadded windows: the window sum
    times the constant ``mul``, then ``round_shift(., shift)`` and saturation to the output
    type (mul ~ 2^(shift + F_out - F_in) / (KH * KW)).  ``global_pool``: one window over the
    whole image, output shape (C,) (Keras GlobalAveragePooling2D)."""

    kernel: tuple[int, int] = (2, 2)
    stride: tuple[int, int] = (2, 2)
    mul: int = 1
    shift: int = 0
    global_pool: bool = False
    op: ClassVar[str] = "fixed_avgpool"

    @property
    def pads(self) -> tuple[int, int, int, int]:
        """Unpadded windows (what the sliding window's parameters read)."""
        return (0, 0, 0, 0)


# ---- float-stage nodes: produced by frontends, removed by passes ----------------------

Evaluator = Callable[[np.ndarray], np.ndarray]


@dataclass(eq=False)
class ChannelAffine(Node):
    """y = x * mul + add per channel, in float32 (a weight scale or a bias)."""

    mul: np.ndarray | None = None
    add: np.ndarray | None = None
    op: ClassVar[str] = "channel_affine"
    hardware: ClassVar[bool] = False


@dataclass(eq=False)
class AvgPool2D(Node):
    """Keras average pooling (padded positions excluded from the count), float stage only:
    the passes turn it into a ``MajorityPool2D`` when a binarisation follows it."""

    kernel: tuple[int, int] = (2, 2)
    stride: tuple[int, int] = (2, 2)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    op: ClassVar[str] = "avgpool2d"
    hardware: ClassVar[bool] = False


@dataclass(eq=False)
class BatchNorm(Node):
    """Inference BatchNorm over the last axis.

    ``evaluate`` (optional, not serialised) runs the model's own layer on float32 values of
    shape (n, channels); the threshold pass uses it to decide ties exactly as the model does.
    """

    gamma: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    beta: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    var: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    eps: float = 1e-3
    evaluate: Evaluator | None = None
    op: ClassVar[str] = "batchnorm"
    hardware: ClassVar[bool] = False

    def scale_shift(self) -> tuple[np.ndarray, np.ndarray]:
        """(s, t) in float64 with BN(x) = s * x + t."""
        g = self.gamma.astype(np.float64)
        s = g / np.sqrt(self.var.astype(np.float64) + np.float64(np.float32(self.eps)))
        return s, self.beta.astype(np.float64) - self.mean.astype(np.float64) * s


@dataclass(eq=False)
class Sign(Node):
    """Bipolar binarisation: +1 iff x >= 0 (QKeras ``binary``, Larq ``ste_sign``).

    ``evaluate`` (optional, not serialised) runs the model's own quantizer.
    """

    evaluate: Evaluator | None = None
    op: ClassVar[str] = "sign"
    hardware: ClassVar[bool] = False


@dataclass(eq=False)
class Quantize(Node):
    """A model's own multi-bit quantizer on a real tensor (QKeras ``quantized_bits``/
    ``quantized_relu``; Larq ``DoReFa``), float stage only: y = step * k with integer codes k
    in [lo, hi] (``step`` a power of two, or 1/n for DoReFa).  ``evaluate`` (not serialised)
    runs the model's quantizer on float32 values; the passes derive thresholds from it by
    exhaustion (``passes.quantizers``)."""

    step: float = 1.0
    lo: int = 0
    hi: int = 1
    evaluate: Evaluator | None = None
    op: ClassVar[str] = "quantize"
    hardware: ClassVar[bool] = False


@dataclass(eq=False)
class FloatDense(Node):
    """A float (unquantized) Dense layer, float stage only: y = x @ kernel.T + bias, with
    ``kernel`` float32 (out_channels, fan_in) in the IR's fan-in order.  The passes quantize
    its weights to a power-of-two step (``passes.real.quantize_float_weights``)."""

    kernel: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    bias: np.ndarray | None = None
    op: ClassVar[str] = "float_dense"
    hardware: ClassVar[bool] = False


@dataclass(eq=False)
class FloatConv2D(FloatDense):
    """A float 2D convolution (zero padding), float stage only; fan-in order (ky, kx, c)."""

    kernel_size: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    op: ClassVar[str] = "float_conv2d"


@dataclass(eq=False)
class FloatPReLU(Node):
    """y = f(x + shift_in) + shift_out per channel, f(u) = u (u >= 0) else slope * u, float
    stage only: ReLU (slope 0), PReLU (shifts 0) and RPReLU are this one node."""

    shift_in: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    slope: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    shift_out: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    op: ClassVar[str] = "float_prelu"
    hardware: ClassVar[bool] = False


@dataclass(eq=False)
class FloatPGConv2D(Node):
    """A ``bnn2fpga.layers.PGConv2D`` in the float stage: its binary ``weights`` (int8 +-1,
    (filters, fan_in), fan-in order (ky, kx, c); sign(0) = +1), geometry, and the Keras
    ``layer`` itself (not serialised), whose ``gate``, quantizer and ``third_of`` the pass
    ``passes.fracbnn.lower_pgconv2d`` evaluates exhaustively to fold them into integers.
    Its input is the real tensor before the layer's built-in 2-bit quantizer."""

    weights: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int8))
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    layer: Any = None
    op: ClassVar[str] = "float_pgconv2d"
    hardware: ClassVar[bool] = False

    @property
    def out_channels(self) -> int:
        return int(self.weights.shape[0])

    @property
    def fan_in(self) -> int:
        return int(self.weights.shape[1])


@dataclass(eq=False)
class FloatQuantize2Bit(Node):
    """A PGConv2D's built-in 2-bit quantizer on a real-valued tensor (a residual stream),
    float stage only: q = round_half_even((clip(x, -1, 1) + 1) * 1.5), output ``uint`` 2-bit
    codes.  ``passes.real`` makes it a ``Threshold`` with 3 thresholds on fixed-point codes
    (where no binary layer's accumulator can absorb it)."""

    op: ClassVar[str] = "float_quantize2bit"
    hardware: ClassVar[bool] = False


@dataclass(eq=False)
class GlobalAvgPool(Node):
    """Keras GlobalAveragePooling2D of real values, float stage only: (H, W, C) -> (C,)."""

    op: ClassVar[str] = "global_avgpool"
    hardware: ClassVar[bool] = False


# ----------------------------------------------------------------------------------------
# Graph
# ----------------------------------------------------------------------------------------


@dataclass(eq=False)
class Graph:
    """Nodes in topological order; the first is the ``Input``, the last is the output."""

    name: str
    nodes: list[Node]
    meta: dict[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __getitem__(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(f"no node named {name!r} in graph {self.name!r}")

    @property
    def input(self) -> Input:
        node = self.nodes[0]
        assert isinstance(node, Input)
        return node

    @property
    def output(self) -> Node:
        return self.nodes[-1]

    def index(self) -> GraphIndex:
        """The producer of every tensor and its consumers, as the graph stands now (build
        it again after a pass rewires the graph)."""
        return GraphIndex.of(self)

    def producer(self, node: Node) -> Node:
        """The single producer of ``node``'s input (for the single-input nodes of a
        chain; ``producers`` for nodes with several inputs)."""
        if len(node.inputs) != 1:
            raise IRError(f"node {node.name!r} has {len(node.inputs)} inputs, expected 1")
        return self[node.inputs[0]]

    def producers(self, node: Node) -> list[Node]:
        """The producers of ``node``'s inputs, in input order."""
        return [self[name] for name in node.inputs]

    def consumers(self, name: str) -> list[Node]:
        return [n for n in self.nodes if name in n.inputs]

    @property
    def outputs(self) -> list[Node]:
        """The nodes whose tensors no node reads: the graph's outputs."""
        read = {i for n in self.nodes for i in n.inputs}
        return [n for n in self.nodes if n.name not in read]

    def check_topological(self) -> None:
        """Every input names an earlier node, and names are unique."""
        seen: set[str] = set()
        for node in self.nodes:
            missing = [i for i in node.inputs if i not in seen]
            if missing:
                raise IRError(f"node {node.name!r} reads {missing}, which no earlier node "
                              "produces (the graph must be in topological order)")
            if node.name in seen:
                raise IRError(f"two nodes are named {node.name!r}")
            seen.add(node.name)

    def replace(self, old: list[Node], new: list[Node]) -> None:
        """Replace the consecutive chain ``old`` by ``new``; rewires consumers of the chain's
        last node to the last new node."""
        first = self.nodes.index(old[0])
        old_names = {n.name for n in old}
        last_old, last_new = old[-1].name, new[-1].name
        self.nodes = self.nodes[:first] + new + [n for n in self.nodes[first:]
                                                 if n.name not in old_names]
        for node in self.nodes[first + len(new):]:
            node.inputs = [last_new if i == last_old else i for i in node.inputs]

    def bypass(self, node: Node) -> None:
        """Remove a single-input node, wiring its consumers to its producer."""
        src = self.producer(node).name
        self.nodes.remove(node)
        for n in self.nodes:
            n.inputs = [src if i == node.name else i for i in n.inputs]

    def matvec_nodes(self) -> list[Dense]:
        return [n for n in self.nodes if isinstance(n, Dense)]

    def is_hardware(self) -> bool:
        return all(type(n).hardware for n in self.nodes)


@dataclass(frozen=True)
class GraphIndex:
    """Producer and consumers of every tensor (a tensor is named by its producer)."""

    nodes: dict[str, Node]
    consumers: dict[str, list[Node]]

    @classmethod
    def of(cls, graph: Graph) -> GraphIndex:
        nodes = {n.name: n for n in graph.nodes}
        consumers: dict[str, list[Node]] = {n.name: [] for n in graph.nodes}
        for n in graph.nodes:
            for i in n.inputs:
                if i not in consumers:
                    raise IRError(f"node {n.name!r} reads {i!r}, which no node produces")
                consumers[i].append(n)
        return cls(nodes, consumers)

    def producers(self, node: Node) -> list[Node]:
        return [self.nodes[i] for i in node.inputs]

    def fan_out(self, name: str) -> int:
        return len(self.consumers[name])


# ----------------------------------------------------------------------------------------
# Serialisation (design.json)
# ----------------------------------------------------------------------------------------

FORMAT_VERSION = 1


def _array_to_json(a: np.ndarray) -> dict[str, Any]:
    if a.dtype == np.int8 and a.size and set(np.unique(a)) <= {-1, 1}:
        # bipolar weights: one packed hex string per row (bit i = element i, see packing.py)
        from bnn2fpga.packing import bipolar_to_bits, pack_bits_hex

        rows = a.reshape(a.shape[0], -1)
        return {"bipolar_hex": [pack_bits_hex(bipolar_to_bits(r)) for r in rows],
                "shape": list(a.shape)}
    if np.issubdtype(a.dtype, np.integer):
        return {"int": a.tolist(), "shape": list(a.shape)}
    return {"float": [float(x) for x in a.reshape(-1)], "shape": list(a.shape),
            "dtype": str(a.dtype)}


def _array_from_json(d: dict[str, Any]) -> np.ndarray:
    shape = tuple(d["shape"])
    if "bipolar_hex" in d:
        from bnn2fpga.packing import bits_to_bipolar, unpack_bits_hex

        n = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        rows = [unpack_bits_hex(h, n) for h in d["bipolar_hex"]]
        return bits_to_bipolar(np.array(rows).reshape(shape))
    if "int" in d:
        return np.array(d["int"], dtype=np.int64).reshape(shape)
    return np.array(d["float"], dtype=d.get("dtype", "float64")).reshape(shape)


def _value_to_json(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return _array_to_json(v)
    if isinstance(v, TensorType):
        return dataclasses.asdict(v)
    if isinstance(v, tuple):
        return [_value_to_json(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


def node_to_json(node: Node) -> dict[str, Any]:
    if not type(node).hardware:
        raise IRError(f"node {node.name!r} ({node.op}) is a float-stage node; run the passes "
                      "before serialising")
    d: dict[str, Any] = {"op": node.op}
    for f in dataclasses.fields(node):
        d[f.name] = _value_to_json(getattr(node, f.name))
    return d


def node_from_json(d: dict[str, Any]) -> Node:
    cls = _NODE_TYPES.get(d["op"])
    if cls is None:
        raise IRError(f"unknown node op {d['op']!r} in design.json")
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in d:
            continue
        v = d[f.name]
        if f.name == "out":
            v = TensorType(**v)
        elif isinstance(v, dict) and "shape" in v:
            v = _array_from_json(v)
            if f.name == "weights":  # int8 codes; multi-bit weights up to 16 bits
                v = v.astype(np.int8 if int(d.get("weight_bits", 1)) <= 8 else np.int16)
        elif f.name == "output_affine" and v is not None:
            v = (_array_from_json(v[0]), _array_from_json(v[1]))
        elif isinstance(v, list) and f.name in ("kernel", "stride", "pads", "min_channels",
                                                "negate_channels"):
            v = tuple(v)
        kwargs[f.name] = v
    return cls(**kwargs)


def graph_to_json(graph: Graph) -> dict[str, Any]:
    return {"format": "bnn2fpga-design", "version": FORMAT_VERSION, "name": graph.name,
            "meta": graph.meta, "nodes": [node_to_json(n) for n in graph.nodes]}


def graph_from_json(d: dict[str, Any]) -> Graph:
    if d.get("format") != "bnn2fpga-design":
        raise IRError("not a bnn2fpga design.json (missing format: bnn2fpga-design)")
    if d.get("version") != FORMAT_VERSION:
        raise IRError(f"design.json version {d.get('version')} is not supported by this "
                      f"bnn2fpga (expects {FORMAT_VERSION}); recompile the model")
    return Graph(d["name"], [node_from_json(n) for n in d["nodes"]], dict(d.get("meta", {})))


def graphs_equal(a: Graph, b: Graph) -> bool:
    """Structural equality of two hardware graphs (used to test the JSON round trip)."""
    if a.name != b.name or len(a.nodes) != len(b.nodes):
        return False
    for x, y in zip(a.nodes, b.nodes, strict=True):
        if type(x) is not type(y):
            return False
        for f in dataclasses.fields(x):
            u, v = getattr(x, f.name), getattr(y, f.name)
            if isinstance(u, tuple) and u and isinstance(u[0], np.ndarray):
                if not all(np.array_equal(p, q) for p, q in zip(u, v, strict=True)):
                    return False
            elif isinstance(u, np.ndarray) or isinstance(v, np.ndarray):
                if not (isinstance(u, np.ndarray) and isinstance(v, np.ndarray)
                        and u.shape == v.shape and np.array_equal(u, v)):
                    return False
            elif isinstance(u, float) and isinstance(v, float):
                if not (u == v or (math.isnan(u) and math.isnan(v))):
                    return False
            elif u != v:
                return False
    return True
