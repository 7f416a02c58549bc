"""Real-valued paths -> fixed-point hardware nodes (the formats come from
``passes.formats``, every rounding from ``bnn2fpga.fixed``).

``lower_real_paths`` sweeps the graph in topological order and lowers the first float-stage
node each time, with one small function per kind:

* float Dense/Conv2D -> a multi-bit-weight ``Dense``/``Conv2D`` (weights on a per-layer
  power-of-two step) and a float ``ChannelAffine`` (step, bias) behind it;
* a chain of scale/bias/BatchNorm -> one ``FixedAffine`` (or, at the output behind an
  accumulator, the host's output affine; or, before a sign, part of the ``Threshold``);
* ReLU/PReLU/RPReLU, with the scale/bias/BatchNorm chains on either side of it ->
  one ``FixedAffine`` with two slopes and two offsets (``lower_prelu_chain``);
* average pool / global average pool of reals -> ``FixedAvgPool``;
* a sign on a real tensor (RSign: shift + sign) -> ``Threshold``;
* a model's k-bit quantizer with uint codes (Larq DoReFa) on a real tensor -> ``Threshold``
  with one threshold per code step (``lower_quantize``);
* Add and Concat take their format; inputs of other types are aligned by an identity
  ``FixedAffine`` first (an accumulator is always rescaled to its real value).
"""

from __future__ import annotations

import math

import numpy as np

from bnn2fpga import fixed
from bnn2fpga.ir import (
    Add,
    AvgPool2D,
    BatchNorm,
    ChannelAffine,
    Concat,
    Conv2D,
    Dense,
    FixedAffine,
    FixedAvgPool,
    FloatConv2D,
    FloatDense,
    FloatPReLU,
    FloatQuantize2Bit,
    GlobalAvgPool,
    Graph,
    IRError,
    Node,
    PGConv2D,
    Quantize,
    Sign,
    TensorType,
    Threshold,
    signed_bits_for,
)
from bnn2fpga.ops.dense import accumulator_bound
from bnn2fpga.ops.realvalued import frac_of
from bnn2fpga.passes.io import fold_output_affine
from bnn2fpga.passes.structure import propagate_types
from bnn2fpga.passes.thresholds import affine_terms, input_scale

AFFINE_OPS = (ChannelAffine, BatchNorm)
MAX_WEIGHT_BITS = 16       # the multi-bit MVTU's widest weights (ops.dense)


def weight_bits_for(precision: int) -> int:
    """Weight bits of a float layer at ``--precision`` P (fraction bits): P + 2, at most 16
    (8-bit weights on a float first conv flip 0.2% of the next signs on digits; 12 bits
    0.005%)."""
    return max(2, min(MAX_WEIGHT_BITS, precision + 2))


def multiplier_bits_for(precision: int) -> int:
    """Significant bits of a FixedAffine/FixedAvgPool constant multiplier: precision + 2."""
    return max(4, precision + 2)


# ---- constants ------------------------------------------------------------------------

def quantize_weights(w: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Float weights (out_channels, fan_in) -> (signed ``bits``-bit codes, one power-of-two
    step per output channel, the smallest that holds the channel's largest |w|):
    w ~ codes * step.  The step is per channel because the affine behind the unit is."""
    top = (1 << (bits - 1)) - 1
    codes = np.zeros(w.shape, np.int64)
    steps = np.ones(w.shape[0])
    for c, row in enumerate(np.asarray(w, np.float64)):
        m = float(np.abs(row).max(initial=0.0))
        exp = 0 if m == 0 else math.ceil(math.log2(m / top))
        codes[c] = fixed.step_codes(row, -exp, -top - 1, top)
        steps[c] = math.ldexp(1.0, exp)
    return codes, steps


def constant_multiplier(factor: np.ndarray, mul_bits: int) -> tuple[np.ndarray, int]:
    """(mul, shift) with mul * 2^-shift ~ factor, shift >= 0, |mul| below 2^(mul_bits-1):
    exact when a power-of-two shift makes every factor an integer of that width."""
    f = np.asarray(factor, np.float64)
    m = float(np.abs(f).max(initial=0.0))
    if m == 0:
        return np.zeros(f.shape, np.int64), 0
    for shift in range(0, 63):
        scaled = f * math.ldexp(1.0, shift)
        if np.all(scaled == np.floor(scaled)) and np.abs(scaled).max() < 2 ** (mul_bits - 1):
            return scaled.astype(np.int64), shift
    shift = max(0, mul_bits - 2 - math.ceil(math.log2(m)))
    return fixed.step_codes(f, shift), shift


def real_step(graph: Graph, node: Node) -> float:
    """The real value of one code of ``node``'s output (fixed: 2^-frac; an accumulator:
    its input's step; uint: its scale)."""
    t = node.out
    if t.encoding == "fixed":
        return math.ldexp(1.0, -t.frac)
    if isinstance(node, PGConv2D) and t.encoding == "int":
        return 1.0 / 3.0      # FracBNN: the accumulator 2M + gL is 3x the layer's output
    if isinstance(node, Dense) and t.encoding == "int":
        return input_scale(graph.producer(node).out)
    if t.encoding == "uint" and t.offset == 0.0:
        return t.scale
    raise IRError(f"tensor {node.name!r} ({t.encoding}) is not a real value the fixed-point "
                  "ops can read")


def format_of(graph: Graph, name: str, shape: tuple[int, ...]) -> TensorType:
    formats = graph.meta.get("formats") or {}
    if name not in formats:
        raise IRError(f"tensor {name!r} is real-valued and has no fixed-point format; give "
                      "--calibration X.npy (formats from the observed range) or --formats "
                      "F.json")
    bits, frac = formats[name]
    return TensorType.fixed(shape, bits, frac)


def affine_node(name: str, src: str, step_in: float, out: TensorType, mul_pos: np.ndarray,
                mul_neg: np.ndarray, add: np.ndarray, shift_in: np.ndarray | None,
                mul_bits: int) -> FixedAffine:
    """y = (u >= 0 ? mul_pos : mul_neg) * u + add with u = x + shift_in (real values, per
    channel) as a FixedAffine from codes of step ``step_in`` to ``out``."""
    c = out.channels
    f_out = out.frac
    real = np.stack([np.broadcast_to(mul_pos, (c,)), np.broadcast_to(mul_neg, (c,))])
    muls, shift = constant_multiplier(real * step_in * math.ldexp(1.0, f_out), mul_bits)
    add_in = np.zeros(c, np.int64) if shift_in is None else \
        fixed.step_codes(np.asarray(shift_in, np.float64) / step_in, 0)
    add_out = fixed.step_codes(np.broadcast_to(add, (c,)), f_out + shift)
    width = signed_bits_for(int(np.abs(muls).max(initial=1)))
    return FixedAffine(name, [src], out, mul_pos=muls[0].copy(), mul_neg=muls[1].copy(),
                       add_in=add_in, add_out=add_out, shift=shift, mul_bits=width)


# ---- one function per kind --------------------------------------------------------------

def quantize_float_layer(graph: Graph, node: FloatDense, weight_bits: int) -> None:
    """Float Dense/Conv2D -> multi-bit-weight Dense/Conv2D + ChannelAffine(step, bias)."""
    codes, steps = quantize_weights(node.kernel, weight_bits)
    acc = TensorType(node.out.shape, "int", 2)
    dtype = np.int8 if weight_bits <= 8 else np.int16
    kwargs = dict(weights=codes.astype(dtype), weight_bits=weight_bits)
    hw: Dense
    if isinstance(node, FloatConv2D):
        hw = Conv2D(node.name, list(node.inputs), acc, kernel=node.kernel_size,
                    stride=node.stride, pads=node.pads, pad="zero", **kwargs)
    else:
        hw = Dense(node.name, list(node.inputs), acc, **kwargs)
    affine = ChannelAffine(f"{node.name}/affine", [node.name], node.out,
                           mul=steps.astype(np.float32), add=node.bias)
    formats = graph.meta.setdefault("formats", {})
    if node.name in formats:
        formats[affine.name] = formats[node.name]
    graph.replace([node], [hw, affine])


def affine_chain(graph: Graph, first: Node) -> list[Node]:
    """``first`` and the scale/bias/BatchNorm nodes that follow it one to one."""
    chain = [first]
    while True:
        consumers = graph.consumers(chain[-1].name)
        if len(consumers) != 1 or not isinstance(consumers[0], AFFINE_OPS) or \
                len(consumers[0].inputs) != 1:
            return chain
        chain.append(consumers[0])


def chain_terms(chain: list[Node]) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) float64 per channel with chain(x) = a * x + b."""
    c = chain[0].out.shape[-1]
    a, b = np.ones(c), np.zeros(c)
    for op in chain:
        mul, add = affine_terms(op, c)
        a, b = a * mul, b * mul + add
    return a, b


def set_output_affine(graph: Graph, dense: Dense) -> None:
    """An intermediate accumulator's output affine: its real value (step, 0)."""
    step = real_step(graph, dense)
    c = dense.out_channels
    dense.output_affine = (np.full(c, step), np.zeros(c))


def affine_input(graph: Graph, first: Node) -> Node:
    """The fixed-point producer an affine chain starting at ``first`` reads (a matrix-vector
    accumulator gets its output affine); any other tensor is refused, naming the layer."""
    src = graph.producer(first)
    if src.out.encoding not in ("fixed", "int"):
        raise IRError(f"layer {first.name!r} ({first.op}) reads the {src.out.encoding} "
                      f"tensor {src.name!r}; supported: scale, bias and BatchNorm on "
                      "fixed-point tensors (after a float or binary conv/dense layer)")
    if isinstance(src, Dense) and src.output_affine is None:
        set_output_affine(graph, src)
    return src


def lower_affine_chain(graph: Graph, chain: list[Node], mul_bits: int) -> None:
    """scale/bias/BatchNorm on a real tensor -> one FixedAffine named for the chain's end."""
    src = affine_input(graph, chain[0])
    a, b = chain_terms(chain)
    out = format_of(graph, chain[-1].name, chain[-1].out.shape)
    node = affine_node(chain[-1].name, src.name, real_step(graph, src), out, a, a, b, None,
                       mul_bits)
    graph.replace(chain, [node])


def prelu_pieces(a: np.ndarray, b: np.ndarray, prelu: FloatPReLU, post_a: np.ndarray,
                 post_b: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, ...]:
    """post(PReLU(a*x + b)) on integer codes x in [lo, hi], per channel, as two lines that
    meet at an integer pivot x0: (x0, slope_pos, offset_pos, slope_neg, offset_neg) in real
    values with y = slope * (x - x0) + offset, the "pos" line for x >= x0.  ``b`` includes
    the PReLU's shift_in; the post affine (post_a, post_b) also takes its shift_out.  The
    side of z = a*x + b >= 0 is decided exactly on the integer codes (x0 is the first code
    on the side that holds for large x, clamped to [lo, hi + 1]), and each line is the
    exact line of its side, so only the final rounding differs from the real function."""
    slope = np.asarray(prelu.slope, np.float64)
    c = post_a * np.asarray(prelu.shift_out, np.float64) + post_b
    with np.errstate(divide="ignore", invalid="ignore"):
        root = np.clip(np.where(a != 0, -b / np.where(a != 0, a, 1.0), 0.0), lo - 1, hi + 2)

    def side(x: np.ndarray) -> np.ndarray:   # code x is on the side that holds for large x
        return np.where(a > 0, a * x + b >= 0, a * x + b < 0)

    x0 = np.where(a > 0, np.ceil(root), np.floor(root) + 1)
    x0 = np.where(side(x0), x0, x0 + 1)          # float64's -b/a may be one code off
    x0 = np.where(side(x0 - 1), x0 - 1, x0)
    x0 = np.where(a == 0, lo, np.clip(x0, lo, hi + 1))
    z0 = a * x0 + b                      # the true pre-activation at the pivot
    up = post_a * a, post_a * z0 + c     # the z >= 0 line (slope per code, value at x0)
    down = post_a * slope * a, post_a * slope * z0 + c
    const = np.where(b >= 0, post_a * b, post_a * slope * b) + c   # a == 0
    pos = [np.where(a == 0, 0.0, np.where(a > 0, up[i], down[i])) for i in range(2)]
    neg = [np.where(a == 0, 0.0, np.where(a > 0, down[i], up[i])) for i in range(2)]
    pos[1] = np.where(a == 0, const, pos[1])
    neg[1] = np.where(a == 0, const, neg[1])
    return x0.astype(np.int64), pos[0], pos[1], neg[0], neg[1]


def code_bounds(graph: Graph, src: Node) -> tuple[int, int]:
    """The codes ``src`` can emit: its type's range, or for an accumulator (whose width
    ``assign_accumulator_widths`` sets later) +-its worst-case |acc|."""
    if isinstance(src, Dense) and src.out.encoding == "int":
        bound = accumulator_bound(src, graph.producer(src).out)
        return -bound, bound
    return src.out.code_range()


def lower_prelu_chain(graph: Graph, pre: list[Node], prelu: FloatPReLU, post: list[Node],
                      mul_bits: int) -> None:
    """scale/bias/BatchNorm (``pre``, may be empty) -> ReLU/PReLU/RPReLU -> scale/bias/
    BatchNorm (``post``, may be empty) on a real tensor -> one FixedAffine named for the
    chain's end, with the pivot on the input codes and one offset per side
    (``prelu_pieces``): one multiplier and one rounding instead of one per node (FracBNN's
    BN -> RPReLU -> BN after every PG conv)."""
    src = affine_input(graph, pre[0]) if pre else as_fixed(graph, prelu.inputs[0], mul_bits)
    c = prelu.out.shape[-1]
    a1, b1 = chain_terms(pre) if pre else (np.ones(c), np.zeros(c))
    a3, b3 = chain_terms(post) if post else (np.ones(c), np.zeros(c))
    step_in = real_step(graph, src)
    lo, hi = code_bounds(graph, src)
    x0, mp, ap, mn, an = prelu_pieces(a1 * step_in, b1 + np.asarray(prelu.shift_in, np.float64),
                                      prelu, a3, b3, lo, hi)
    end = post[-1] if post else prelu
    out = format_of(graph, end.name, end.out.shape)
    muls, shift = constant_multiplier(np.stack([mp, mn]) * math.ldexp(1.0, out.frac), mul_bits)
    width = signed_bits_for(int(np.abs(muls).max(initial=1)))
    hw = FixedAffine(end.name, [src.name], out, mul_pos=muls[0].copy(), mul_neg=muls[1].copy(),
                     add_in=-x0, add_out=fixed.step_codes(ap, out.frac + shift),
                     add_neg=fixed.step_codes(an, out.frac + shift), shift=shift,
                     mul_bits=width)
    graph.replace([*pre, prelu, *post], [hw])


def prelu_chain(graph: Graph, node: Node) -> tuple[list[Node], FloatPReLU, list[Node]] | None:
    """(pre, prelu, post) when ``node`` starts scale/bias/BatchNorm* -> ReLU/PReLU/RPReLU ->
    scale/bias/BatchNorm*, each feeding only the next (``post`` stops before an affine
    chain that a sign absorbs); None otherwise."""
    pre = affine_chain(graph, node) if isinstance(node, AFFINE_OPS) else []
    prelu = graph.consumers(pre[-1].name) if pre else [node]
    if len(prelu) != 1 or not isinstance(prelu[0], FloatPReLU) or len(prelu[0].inputs) != 1:
        return None
    after = graph.consumers(prelu[0].name)
    post: list[Node] = []
    if len(after) == 1 and isinstance(after[0], AFFINE_OPS) and len(after[0].inputs) == 1:
        post = affine_chain(graph, after[0])
        last = graph.consumers(post[-1].name)
        if len(last) == 1 and isinstance(last[0], Sign):
            post = []
    return pre, prelu[0], post


def affine_chain_source(graph: Graph, node: Node) -> tuple[list[Node], Node]:
    """The per-channel affine ops (in order) that ``node`` reads through, each read only by
    the next, and the real tensor below them (made fixed point where it is not)."""
    chain: list[Node] = []
    src = graph.producer(node)
    while isinstance(src, AFFINE_OPS) and len(graph.consumers(src.name)) == 1:
        chain.insert(0, src)
        src = graph.producer(src)
    if src.out.encoding not in ("fixed", "int"):
        src = as_fixed(graph, src.name, 16)
    return chain, src


def threshold_source(graph: Graph, node: Node) -> tuple[list[Node], Node]:
    """``affine_chain_source`` for a Threshold unit that replaces ``node``: a matrix-vector
    accumulator below the chain streams on to it, so it gets its output affine."""
    chain, src = affine_chain_source(graph, node)
    if isinstance(src, Dense) and src.output_affine is None and src.thresholds is None:
        set_output_affine(graph, src)     # the compare reads the accumulator's codes
    return chain, src


def sign_input_range(graph: Graph, src: Node) -> tuple[int, int]:
    """The codes a Threshold on ``src`` can see: an accumulator's worst case
    (``accumulator_bound``; its width is assigned after this pass), else its type's."""
    if isinstance(src, Dense) and not isinstance(src, PGConv2D) and src.out.encoding == "int":
        bound = accumulator_bound(src, graph.producer(src).out)
        return -bound, bound
    return src.out.code_range()


def lower_sign(graph: Graph, sign: Sign) -> None:
    """sign(chain(x)) on a real x -> Threshold: a*x + b >= 0 is x >= -b/a (a > 0), a
    negated compare (a < 0), or a constant (a = 0); on codes of x."""
    chain, src = threshold_source(graph, sign)
    c = sign.out.shape[-1]
    a, b = chain_terms(chain) if chain else (np.ones(c), np.zeros(c))
    step = real_step(graph, src)
    lo, hi = sign_input_range(graph, src)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(a > 0, np.ceil(-b / (a * step)), np.ceil(b / (a * step)))
    t = np.where(a == 0, np.where(b >= 0, lo, hi + 1), t)
    t = np.clip(t, lo, hi + 1).astype(np.int64)
    negate = tuple(int(i) for i in np.flatnonzero(a < 0))
    hw = Threshold(sign.name, [src.name], TensorType(sign.out.shape, "bipolar"),
                   thresholds=t[:, None], negate_channels=negate)
    graph.replace([*chain, sign], [hw])
    graph.meta.setdefault("binarisations", {})[hw.name] = sign.name


def lower_quantize2bit(graph: Graph, node: FloatQuantize2Bit) -> None:
    """FracBNN's 2-bit quantizer of a PGConv2D on a real tensor (after scale, bias,
    BatchNorm) -> Threshold with 3 thresholds on its fixed-point codes
    (``passes.fracbnn.quantizer_thresholds``: exhaustive over the codes in [-1, 1])."""
    from bnn2fpga.passes.fracbnn import quantizer_thresholds

    chain, src = affine_chain_source(graph, node)
    c = node.out.shape[-1]
    a, b = chain_terms(chain) if chain else (np.ones(c), np.zeros(c))
    lo, hi = src.out.code_range()
    t, negate = quantizer_thresholds(lo, hi, real_step(graph, src), a, b)
    hw = Threshold(node.name, [src.name], node.out, thresholds=t, negate_channels=negate)
    graph.replace([*chain, node], [hw])


MAX_QUANTIZE_CODES = 1 << 22   # input codes evaluated per channel at most


def quantize_thresholds(q: Quantize, codes_lo: int, codes_hi: int, step: float,
                        a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """The model's quantizer ``q`` of a * (k * step) + b per channel, on the fixed-point
    codes k in [codes_lo, codes_hi], as hi - lo thresholds on k (on -k for the channels
    returned, a < 0): the quantizer itself (float32) on every code whose value lies within
    one quantizer step of its range [lo, hi] * q.step, and two codes either side (outside
    it the code is constant)."""
    from bnn2fpga.passes.fracbnn import staircase
    from bnn2fpga.passes.quantizers import grid_codes

    assert q.evaluate is not None
    levels = q.hi - q.lo

    def codes(x: np.ndarray) -> np.ndarray:
        y = np.asarray(q.evaluate(x.astype(np.float32)[:, None]), np.float64)[:, 0]
        return (grid_codes(y, q.step) - q.lo).astype(np.int64)

    thresholds = np.empty((a.size, levels), np.int64)
    negate: list[int] = []
    for c in range(a.size):
        if a[c] == 0:
            k0 = int(codes(np.array([b[c]]))[0])
            thresholds[c] = [codes_lo] * k0 + [codes_hi + 1] * (levels - k0)
            continue
        y_ends = np.array([(q.lo - 1) * q.step, (q.hi + 1) * q.step])
        ends = np.sort((y_ends - b[c]) / (a[c] * step))
        lo = int(np.clip(np.floor(ends[0]) - 2, codes_lo, codes_hi))
        hi = int(np.clip(np.ceil(ends[1]) + 2, codes_lo, codes_hi))
        if hi - lo + 1 > MAX_QUANTIZE_CODES:
            raise IRError(f"quantizer {q.name!r} channel {c}: {hi - lo + 1} input codes "
                          f"to check (at most {MAX_QUANTIZE_CODES}); give its input tensor a "
                          "format with fewer fraction bits (--formats)")
        k = np.arange(lo, hi + 1, dtype=np.int64)
        v = codes(a[c] * (k * step) + b[c])
        if a[c] < 0:
            negate.append(c)
            k, v = -k[::-1], v[::-1]
        t, _, differing = staircase(k, v[:, None], levels)
        if differing[0]:
            raise IRError(f"quantizer {q.name!r} channel {c} is not monotone in its input "
                          "code; cannot be a threshold unit")
        lo_end = -codes_hi if a[c] < 0 else codes_lo
        thresholds[c] = np.where(t[0] == k[-1] + 1, k[-1] + 1,
                                 np.where(t[0] == k[0], lo_end, t[0]))
    return thresholds, tuple(negate)


def lower_quantize(graph: Graph, node: Quantize) -> None:
    """A k-bit quantizer with uint codes (Larq DoReFa) on a real tensor (after scale, bias,
    BatchNorm) -> Threshold with hi - lo thresholds on its fixed-point codes
    (``quantize_thresholds``); its output stays the codes of step 1/n."""
    if node.out.encoding != "uint" or node.evaluate is None:
        raise IRError(f"quantizer {node.name!r} on a real-valued tensor: supported on a real "
                      "path: Larq DoReFa (k-bit unsigned codes); a QKeras quantizer there "
                      "needs its input to be a binary layer's accumulator")
    chain, src = threshold_source(graph, node)
    lo, hi = sign_input_range(graph, src)
    c = node.out.shape[-1]
    a, b = chain_terms(chain) if chain else (np.ones(c), np.zeros(c))
    t, negate = quantize_thresholds(node, lo, hi, real_step(graph, src), a, b)
    hw = Threshold(node.name, [src.name], node.out, thresholds=t, negate_channels=negate)
    graph.replace([*chain, node], [hw])
    graph.meta.setdefault("quantizations", {})[hw.name] = [node.name, node.step, node.lo]


def lower_avgpool(graph: Graph, node: AvgPool2D | GlobalAvgPool, mul_bits: int) -> None:
    """Average pool / global average pool of reals -> FixedAvgPool (unpadded windows)."""
    src = as_fixed(graph, node.inputs[0], mul_bits)
    out = format_of(graph, node.name, node.out.shape)
    if isinstance(node, GlobalAvgPool):
        h, w = src.out.shape[:2]
        geometry = dict(kernel=(h, w), stride=(h, w), global_pool=True)
        count = h * w
    else:
        if any(node.pads):
            raise IRError(f"average pool {node.name!r} of real values pads its windows "
                          f"{node.pads}; supported: unpadded windows (padding='valid', or "
                          "'same' where no padding is needed)")
        geometry = dict(kernel=node.kernel, stride=node.stride)
        count = node.kernel[0] * node.kernel[1]
    factor = math.ldexp(1.0, out.frac - frac_of(src.out)) / count
    mul, shift = constant_multiplier(np.array([factor]), mul_bits)
    if int(mul[0]) < 1:
        raise IRError(f"average pool {node.name!r}: the output format {out} is too coarse "
                      "for its input")
    hw = FixedAvgPool(node.name, [src.name], out, mul=int(mul[0]), shift=shift, **geometry)
    graph.replace([node], [hw])


def lower_join(graph: Graph, node: Add | Concat, mul_bits: int) -> None:
    """Add/Concat: the output takes its format; Concat inputs are aligned to it, Add inputs
    that are accumulators rescaled to their real values."""
    out = format_of(graph, node.name, node.out.shape)
    srcs = []
    for i, name in enumerate(node.inputs):
        src = as_fixed(graph, name, mul_bits)
        if isinstance(node, Concat) and (src.out.bits, src.out.frac) != (out.bits, out.frac):
            src = align_node(graph, src, out, f"{node.name}/align{i}", mul_bits)
        srcs.append(src.name)
    node.inputs = srcs
    node.out = out if isinstance(node, Add) else out.with_shape(node.out.shape)


def align_node(graph: Graph, src: Node, like: TensorType, name: str, mul_bits: int) -> Node:
    """An identity FixedAffine from ``src`` to ``like``'s format, inserted after ``src``."""
    out = TensorType.fixed(src.out.shape, like.bits, like.frac)
    c = out.channels
    hw = affine_node(name, src.name, real_step(graph, src), out, np.ones(c), np.ones(c),
                     np.zeros(c), None, mul_bits)
    graph.nodes.insert(graph.nodes.index(src) + 1, hw)
    return hw


def as_fixed(graph: Graph, name: str, mul_bits: int) -> Node:
    """The producer of tensor ``name`` if it is fixed point; an accumulator gets an identity
    FixedAffine to its real value (format of the accumulator's own tensor)."""
    src = graph[name]
    if src.out.encoding == "fixed":
        return src
    if isinstance(src, Dense) and src.out.encoding == "int":
        if src.output_affine is None:
            set_output_affine(graph, src)
        rescaled = f"{src.name}/rescale"
        existing = [n for n in graph.nodes if n.name == rescaled]
        if existing:
            return existing[0]
        out = format_of(graph, src.name, src.out.shape)
        return align_node(graph, src, out, rescaled, mul_bits)
    raise IRError(f"tensor {name!r} is {src.out.encoding}; the real-valued op after it reads "
                  "fixed-point values (a binary tensor cannot be averaged or added here)")


# ---- the sweep --------------------------------------------------------------------------

def pending_join(graph: Graph, node: Node) -> bool:
    """An Add/Concat still to lower: a float output, or (Concat) inputs of several types
    or an accumulator input."""
    if not isinstance(node, (Add, Concat)):
        return False
    ins = [graph[i].out for i in node.inputs]
    return node.out.encoding == "float" or (isinstance(node, Concat) and (
        len({(t.encoding, t.bits, t.frac) for t in ins}) > 1
        or any(t.encoding == "int" for t in ins)))


def first_float_node(graph: Graph) -> Node | None:
    """The first node, in topological order, that is still in the float stage."""
    for node in graph.nodes[1:]:
        if not type(node).hardware or pending_join(graph, node):
            return node
    return None


def lower_real_paths(graph: Graph, precision: int) -> Graph:
    """Every float-stage node left after the binary folds -> fixed-point hardware nodes."""
    mul_bits = multiplier_bits_for(precision)
    while (node := first_float_node(graph)) is not None:
        if isinstance(node, FloatDense):
            quantize_float_layer(graph, node, weight_bits_for(precision))
        elif isinstance(node, AFFINE_OPS):
            chain = affine_chain(graph, node)
            after = graph.consumers(chain[-1].name)
            src = graph.producer(chain[0])
            if len(after) == 1 and isinstance(after[0], Sign):
                lower_sign(graph, after[0])
            elif len(after) == 1 and isinstance(after[0], Quantize):
                lower_quantize(graph, after[0])
            elif not after and isinstance(src, Dense) and src.thresholds is None:
                graph = fold_output_affine(graph)
            elif (pieces := prelu_chain(graph, node)) is not None:
                lower_prelu_chain(graph, *pieces, mul_bits)
            else:
                lower_affine_chain(graph, chain, mul_bits)
        elif isinstance(node, Sign):
            lower_sign(graph, node)
        elif isinstance(node, FloatQuantize2Bit):
            lower_quantize2bit(graph, node)
        elif isinstance(node, Quantize):
            lower_quantize(graph, node)
        elif isinstance(node, FloatPReLU):
            lower_prelu_chain(graph, *prelu_chain(graph, node), mul_bits)
        elif isinstance(node, (AvgPool2D, GlobalAvgPool)):
            lower_avgpool(graph, node, mul_bits)
        elif isinstance(node, (Add, Concat)):
            lower_join(graph, node, mul_bits)
        else:
            raise IRError(f"node {node.name!r} ({node.op}) has no fixed-point lowering")
        graph = propagate_types(graph)
    return graph


def first_real_tensor(graph: Graph) -> Node | None:
    """The first node that the binary folds left in the float stage (a real tensor)."""
    return first_float_node(graph)
