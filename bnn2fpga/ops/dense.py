"""Dense: a binary-weight matrix-vector layer (MVTU), XNOR-popcount of bipolar inputs or
+-sums of unsigned codes, then thresholds or the raw accumulator.  Also the matrix-vector
core that ``conv2d`` shares: accumulator bound, dot products, folding rules, MVTU
parameters."""

from __future__ import annotations

import numpy as np

from bnn2fpga.ir import Conv2D, Dense, IRError, Node, TensorType
from bnn2fpga.ops import FIFO_DEPTH, Cycles, Folding, OpType, divisors, out_pixels
from bnn2fpga.packing import bipolar_to_bits, lane_mask, pack_words, popcount

DEFAULT_MAX_SIMD = 32
DEFAULT_MAX_PE = 8
_CHUNK_ELEMENTS = 1 << 22  # bound on rows * out_channels * words held at once


def max_abs_code(t: TensorType) -> int:
    """Largest |value| of one input element as the MVTU sees it (bipolar: +-1)."""
    if t.encoding == "bipolar":
        return 1
    if t.encoding in ("uint", "unipolar"):
        return (1 << t.bits) - 1
    if t.encoding in ("int", "fixed"):
        return 1 << (t.bits - 1)
    raise IRError(f"a {t.encoding!r} tensor has no integer codes")


def is_multibit(node: Dense, in_type: TensorType) -> bool:
    """Whether the node multiplies (integer weights, or a signed real-valued input) instead
    of XNOR-popcount / +-sums of unsigned codes."""
    return node.weight_bits > 1 or in_type.encoding in ("int", "fixed")


def accumulator_bound(node: Dense, in_type: TensorType) -> int:
    """Largest |accumulator| a matrix-vector node can produce, from its fan-in."""
    if is_multibit(node, in_type):
        w = 1 if node.weight_bits == 1 else 1 << (node.weight_bits - 1)
        return node.fan_in * w * max_abs_code(in_type)
    if in_type.encoding == "bipolar":
        return node.fan_in
    if in_type.encoding in ("uint", "unipolar"):
        return node.fan_in * ((1 << in_type.bits) - 1)
    raise IRError(f"layer {node.name!r}: a {in_type.encoding!r} input to a binary-weight "
                  "unit is not supported (expected bipolar, unipolar or uint): binarise the "
                  "previous layer's output first (a QActivation('binary') or a Larq "
                  "input_quantizer)")


# ---- legal foldings -------------------------------------------------------------------

def simd_limit(node: Dense) -> int:
    """The number SIMD must divide: input channels for a conv (its window emits SIMD
    channels of one tap per beat, as in FINN), the fan-in for a dense layer."""
    if isinstance(node, Conv2D):
        return node.fan_in // (node.kernel[0] * node.kernel[1])
    return node.fan_in


def folding_error(node: Dense, pe: int, simd: int) -> str | None:
    """Why (pe, simd) is not a legal folding for ``node``, or None if it is."""
    what = "input channels" if isinstance(node, Conv2D) else "fan-in"
    limit = simd_limit(node)
    problems = []
    if pe < 1 or node.out_channels % pe:
        problems.append(f"PE={pe} does not divide out_channels={node.out_channels} "
                        f"(valid PE: {divisors(node.out_channels)})")
    if simd < 1 or limit % simd:
        problems.append(f"SIMD={simd} does not divide {what}={limit} "
                        f"(valid SIMD: {divisors(limit)})")
    if not problems:
        return None
    return f"layer {node.name!r} ({type(node).__name__}): " + "; ".join(problems)


def default_folding(node: Dense) -> tuple[int, int]:
    pe = max(d for d in divisors(node.out_channels) if d <= DEFAULT_MAX_PE)
    simd = max(d for d in divisors(simd_limit(node)) if d <= DEFAULT_MAX_SIMD)
    return pe, simd


def matvec_cycles(node: Dense, pe: int | None = None, simd: int | None = None) -> int:
    """Cycles per frame of a matrix-vector unit: pixels * (OC/PE) * (fan_in/SIMD)."""
    pe = node.pe if pe is None else pe
    simd = node.simd if simd is None else simd
    return out_pixels(node) * (node.out_channels // pe) * (node.fan_in // simd)


# ---- reference kernel -----------------------------------------------------------------

def _popcount_dot(a_words: np.ndarray, w_words: np.ndarray, combine: str) -> np.ndarray:
    """sum over words of popcount(XNOR or AND of a (R, W) and w (O, W)) -> (R, O)."""
    rows, nwords = a_words.shape
    out = np.zeros((rows, w_words.shape[0]), dtype=np.int64)
    step = max(1, _CHUNK_ELEMENTS // max(1, w_words.shape[0] * nwords))
    for start in range(0, rows, step):
        a = a_words[start:start + step, None, :]
        x = ~(a ^ w_words[None]) if combine == "xnor" else (a & w_words[None])
        out[start:start + step] = popcount(x).sum(axis=-1)
    return out


def bipolar_dot(bits: np.ndarray, valid: np.ndarray | None, weights: np.ndarray) -> np.ndarray:
    """Signed dot products of bipolar activations with bipolar weights.

    bits: (R, K) 0/1; valid: (R, K) 0/1 or None; weights (O, K) in {-1,+1}.
    dot = 2 * popcount(XNOR(a, w) & valid) - popcount(valid): invalid lanes contribute 0."""
    k = bits.shape[-1]
    w_words = pack_words(bipolar_to_bits(weights))
    a_words = pack_words(bits)
    if valid is None:
        a_xnor = _popcount_dot(a_words, w_words, "xnor")
        # XNOR sets the lanes past K too (0 xnor 0 = 1): remove them once
        pad_lanes = w_words.shape[-1] * 64 - k
        return 2 * (a_xnor - pad_lanes) - k
    # mask invalid lanes: XNOR(a, w) & v = (a & w & v) | (~a & ~w & v)
    v_words = pack_words(valid)
    n_valid = popcount(v_words).sum(axis=-1)[:, None]
    ones = _popcount_dot(a_words & v_words, w_words, "and")
    zeros = _popcount_dot(~a_words & v_words & lane_mask(k), ~w_words & lane_mask(k), "and")
    return 2 * (ones + zeros) - n_valid


def unsigned_dot(codes: np.ndarray, bits: int, weights: np.ndarray) -> np.ndarray:
    """Dot products of unsigned codes (R, K) with bipolar weights (O, K), bit-serially:
    sum_b 2^b * (2 * popcount(plane_b & w) - popcount(plane_b))."""
    w_words = pack_words(bipolar_to_bits(weights))
    acc = np.zeros((codes.shape[0], weights.shape[0]), dtype=np.int64)
    for b in range(bits):
        plane = pack_words(((codes >> b) & 1).astype(np.uint8))
        pos = _popcount_dot(plane, w_words, "and")
        ones = popcount(plane).sum(axis=-1)[:, None]
        acc += (2 * pos - ones) << b
    return acc


def integer_dot(rows: np.ndarray, valid: np.ndarray | None, in_type: TensorType,
                weights: np.ndarray) -> np.ndarray:
    """Plain integer dot products (multi-bit weights or a signed input): codes as values
    (bipolar bits as +-1; a padded, invalid tap as 0) times the integer weights."""
    x = np.asarray(rows, np.int64)
    if in_type.encoding == "bipolar":
        x = 2 * x - 1
    if valid is not None:
        x = x * np.asarray(valid, np.int64)
    return x @ np.asarray(weights, np.int64).T


def matvec_rows(node: Dense, in_type: TensorType, rows: np.ndarray,
                valid: np.ndarray | None) -> np.ndarray:
    """The MVTU on (R, fan_in) input rows: accumulators, thresholded where it has
    thresholds.  Overflow is impossible by construction (the accumulator width comes from
    ``accumulator_bound``), and asserted here."""
    if rows.shape[1] != node.fan_in:
        raise IRError(f"layer {node.name!r}: fan-in {node.fan_in} != input size {rows.shape[1]}")
    bound = accumulator_bound(node, in_type)
    if is_multibit(node, in_type):
        acc = integer_dot(rows, valid, in_type, node.weights)
    elif in_type.encoding == "bipolar":
        acc = bipolar_dot(rows.astype(np.uint8), valid, node.weights)
    else:
        acc = unsigned_dot(rows, in_type.bits if in_type.encoding == "uint" else 1,
                           node.weights)
    assert np.abs(acc).max(initial=0) <= bound, f"{node.name}: accumulator exceeds {bound}"
    if node.thresholds is not None:
        acc = (acc[:, :, None] >= node.thresholds[None, :, :]).sum(axis=-1)
    return acc


def run(node: Dense, in_type: TensorType, codes: np.ndarray) -> np.ndarray:
    n = codes.shape[0]
    return matvec_rows(node, in_type, codes.reshape(n, -1), None).reshape((n,) + node.out.shape)


# ---- invariants -----------------------------------------------------------------------

def check(node: Dense, src: TensorType) -> None:
    """Accumulator width, threshold range and order, an output affine on an accumulator
    output, a legal folding."""
    where = f"node {node.name!r} ({node.op})"
    wb = node.weight_bits
    w = node.weights
    if wb == 1 and w.size and not np.all(np.abs(w) == 1):
        raise IRError(f"{where}: weight_bits=1 needs weights in {{-1, +1}}")
    if wb > 1 and w.size and (wb > 16 or w.min() < -(1 << (wb - 1))
                              or w.max() >= 1 << (wb - 1)):
        raise IRError(f"{where}: weights outside the {wb}-bit signed range (at most 16 bits)")
    bound = accumulator_bound(node, src)
    if node.acc_bits < 2 or (1 << (node.acc_bits - 1)) <= bound:
        raise IRError(f"{where}: accumulator width {node.acc_bits} cannot hold +-{bound + 1}")
    if node.thresholds is not None:
        t = node.thresholds
        if t.dtype.kind != "i" or t.min() < -bound or t.max() > bound + 1:
            raise IRError(f"{where}: thresholds outside [-{bound}, {bound + 1}]")
        if np.any(np.diff(t, axis=1) < 0):
            raise IRError(f"{where}: thresholds not ascending")
    elif node.output_affine is None:
        raise IRError(f"{where}: an accumulator output needs an output affine")
    if err := folding_error(node, node.pe, node.simd):
        raise IRError(err)
    if not isinstance(node, Conv2D) and node.fan_in != src.size:
        raise IRError(f"{where}: fan-in {node.fan_in} != input size {src.size}")


def cycles(node: Dense, in_shape: tuple[int, ...]) -> Cycles:
    """The MVTU, (OC/PE) * (fan_in/SIMD) cycles per output pixel."""
    c = matvec_cycles(node)
    return Cycles(c, c)


# ---- lowering -------------------------------------------------------------------------

def elem_bits(t: TensorType) -> int:
    """Bits of one streamed element of a tensor."""
    if t.is_binary:
        return 1
    if t.encoding in ("uint", "int", "fixed"):
        return int(t.bits)
    raise IRError(f"a {t.encoding!r} tensor cannot be streamed in hardware; run the passes "
                  "(compile the model) first")


def mvtu_params(node: Dense, in_type: TensorType, pe: int, simd: int,
                tap_valid: bool = False) -> dict[str, int]:
    """bnn_mvtu / MatrixVectorActivate parameters of ``node`` at (pe, simd)."""
    bound = accumulator_bound(node, in_type)
    acc_w = node.acc_bits  # set by passes.assign_accumulator_widths
    if acc_w < 2 or (1 << (acc_w - 1)) - 1 < bound + 1:
        raise IRError(f"layer {node.name!r}: acc_bits={acc_w} cannot hold the worst-case "
                      f"accumulator {bound} and the never-on threshold {bound + 1}; run the "
                      "passes (assign_accumulator_widths)")
    nt = 0 if node.thresholds is None else int(node.thresholds.shape[1])
    if nt:
        out_w = max(1, nt.bit_length())
        if node.out.encoding == "uint" and node.out.bits < out_w:
            raise IRError(f"layer {node.name!r}: {nt} thresholds need {out_w} output bits, "
                          f"the IR declares {node.out.bits}")
        if node.out.encoding != "uint" and nt != 1:
            raise IRError(f"layer {node.name!r}: a {node.out.encoding} output takes one "
                          f"threshold per channel, got {nt}")
    else:
        out_w = acc_w
    params = {"PE": pe, "SIMD": simd, "NF": node.out_channels // pe,
              "SF": node.fan_in // simd, "IN_BITS": elem_bits(in_type),
              "IN_UINT": int(in_type.encoding != "bipolar"),
              "USE_TAP_VALID": int(tap_valid), "ACC_W": acc_w, "NT": nt, "TW": acc_w,
              "OUT_W": out_w}
    if is_multibit(node, in_type):
        # integer multiply-accumulate: weights of WB bits (binary weights of a signed
        # input as the 2-bit codes +-1), signed or unsigned input codes
        params.update(WB=weight_word_bits(node), IN_SIGNED=int(in_type.is_signed))
    return params


def weight_word_bits(node: Dense) -> int:
    """Bits per weight in a multi-bit MVTU's weight ROM."""
    return max(2, node.weight_bits)


def input_fifo_depth(node: Node, pe: int, simd: int) -> int:
    """Beats of the FIFO in front of ``node``'s MVTU at folding (pe, simd), 0 for none.

    An MVTU takes each input vector (a dense layer's, a conv's window of one output pixel)
    only during its first neuron fold (FINN-style input caching) and replays it for the
    other NF - 1 folds.  A FIFO of one whole vector (SF words of SIMD codes) right in front
    of it lets the producer (the previous layer, or the conv's sliding window) write the
    next vector meanwhile, and the MVTU then reads it at one word per cycle: the pair runs
    at the slower one's folded rate instead of serialising.  The RTL's sliding window keeps
    going on its own while the MVTU replays, the HLS one (blocking reads and writes in one
    loop) stops, so without this FIFO a conv would stall everything upstream in HLS
    (CNV-W1A1: 42,842 instead of 32,768 cycles per frame).  An MVTU with one neuron fold
    reads every cycle and needs none."""
    if not isinstance(node, Dense) or node.out_channels == pe:
        return 0
    return max(FIFO_DEPTH, node.fan_in // simd)


def check_folding(node: Dense, fold: Folding) -> tuple[int, int]:
    pe, simd = fold[node.name]
    if err := folding_error(node, pe, simd):
        raise IRError(f"invalid folding: {err}")
    return pe, simd


def lower_mvtu(b, node: Dense, in_type: TensorType, pixels: int, tap_valid: bool) -> None:
    """Append ``node``'s MVTU (and its input-vector FIFO) to plan builder ``b``."""
    pe, simd = b.fold[node.name]
    params = mvtu_params(node, in_type, pe, simd, tap_valid)
    if depth := input_fifo_depth(node, pe, simd):
        b.add_fifo(node.name, depth, "in_fifo")
    b.add("mvtu", node.name, params, pe, params["OUT_W"], pixels * params["NF"],
          signed=node.thresholds is None)


def lower(b, node: Dense, in_type: TensorType) -> None:
    check_folding(node, b.fold)
    if node.fan_in != in_type.size:
        raise IRError(f"layer {node.name!r}: fan-in {node.fan_in} != input size "
                      f"{in_type.size}")
    lower_mvtu(b, node, in_type, 1, tap_valid=False)


OP = OpType("dense", check=check, infer=None, run=run, cycles=cycles,
            first_lanes=lambda node, fold: fold[node.name][1], lower=lower)
