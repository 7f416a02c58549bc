"""Bit-exact reference executor of the hardware IR (the executable specification).

Tensors between nodes are integer codes with a leading batch axis: 0/1 for binary
encodings, k for ``uint``, the accumulator for ``int``.  Each node runs its op's kernel
(``bnn2fpga.ops``: matrix-vector nodes pack their operands into 64-bit words and compute
XNOR-popcount, a multi-bit unsigned input bit-plane by bit-plane, as hardware would); this
module walks the graph and converts between float frames and codes at its edges.
"""

from __future__ import annotations

import numpy as np

from bnn2fpga import fixed
from bnn2fpga.ir import (
    Dense,
    Graph,
    Input,
    IRError,
    Node,
    Reshape,
    TensorType,
)
from bnn2fpga.ops import op_type
from bnn2fpga.ops.dense import accumulator_bound

__all__ = ["InputError", "accumulator_bound", "codes_to_float", "execute",
           "output_codes_to_float", "quantize_input", "run", "run_node"]


class InputError(ValueError):
    """Input frames that cannot be fed to the design exactly."""


# ----------------------------------------------------------------------------------------
# Host side: float frames -> input codes, output codes -> float results
# ----------------------------------------------------------------------------------------


def quantize_input(node: Input, x: np.ndarray) -> np.ndarray:
    """Float frames (N, *shape) -> integer codes, exactly as the model's input stage does.

    ``sign``: bit = x >= 0.  ``round_half_even``: QKeras ``quantized_bits``/``quantized_relu``
    (k = clip(rint(x / scale), 0, 2^bits - 1), scale a power of two).  ``dorefa``: Larq
    DoReFa, k = rint(clip(x, 0, 1) * (2^bits - 1)) in float32.  ``None``: x must equal
    offset + scale * k exactly for an integer 0 <= k < 2^bits; otherwise an ``InputError``
    names the first element that is not representable.  Nothing is ever rounded silently.
    """
    t = node.out
    x = np.asarray(x, dtype=np.float32)
    if x.shape[1:] != t.shape:
        raise InputError(f"input frames have shape {x.shape[1:]}, the design expects "
                         f"{t.shape} (array shape (N, {', '.join(map(str, t.shape))}))")
    if not np.all(np.isfinite(x)):
        idx = tuple(int(i) for i in np.argwhere(~np.isfinite(x))[0])
        raise InputError(f"input element {idx} is {x[idx]!s}, not a finite number")
    if t.encoding == "bipolar":
        if node.quantizer == "sign":
            return (x >= 0).astype(np.int64)
        ok = (x == 1.0) | (x == -1.0)
        if not ok.all():
            idx = tuple(int(i) for i in np.argwhere(~ok)[0])
            raise InputError(f"input element {idx} = {x[idx]!r} is not -1 or +1, and the "
                             "design has a binary input without a quantizer")
        return (x > 0).astype(np.int64)
    if t.encoding == "fixed":
        return fixed.to_codes(x, t)  # round half up, saturating (bnn2fpga.fixed)
    if t.encoding != "uint":
        raise IRError(f"input encoding {t.encoding!r} is not supported by the host")
    top = (1 << t.bits) - 1
    if node.quantizer == "round_half_even":
        p = (x / np.float32(t.scale)).astype(np.float32)  # exact: scale is a power of two
        return np.clip(np.rint(p), 0, top).astype(np.int64)
    if node.quantizer == "dorefa":   # Larq DoReFa: tf.round(clip(x, 0, 1) * n), float32
        p = (np.clip(x, np.float32(0), np.float32(1)) * np.float32(top)).astype(np.float32)
        return np.rint(p).astype(np.int64)
    if node.quantizer is not None:
        raise IRError(f"unknown input quantizer {node.quantizer!r}")
    k = np.rint((x.astype(np.float64) - t.offset) / t.scale)
    back = (t.offset + k * t.scale).astype(np.float32)
    bad = (back != x) | (k < 0) | (k > top)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputError(
            f"input element {idx} = {x[idx]!s} is not representable as "
            f"{t.offset} + {t.scale!r} * k with integer 0 <= k <= {top} "
            f"(--input-scale {t.scale!r} --input-bits {t.bits}); scale the data onto that "
            "grid, or compile with a scale/bit width that covers it")
    return k.astype(np.int64)


def codes_to_float(t: TensorType, codes: np.ndarray, affine=None) -> np.ndarray:
    """Output codes -> float32 values as the Keras model reports them."""
    if t.encoding == "bipolar":
        return np.where(codes > 0, 1.0, -1.0).astype(np.float32)
    if t.encoding == "unipolar":
        return codes.astype(np.float32)
    if t.encoding == "fixed":
        return fixed.to_real(codes, t).astype(np.float32)
    if t.encoding == "int" and affine is not None:
        scale, offset = affine
        return (codes.astype(np.float64) * scale + offset).astype(np.float32)
    return (t.offset + t.scale * codes.astype(np.float64)).astype(np.float32)


# ----------------------------------------------------------------------------------------
# Arithmetic bounds
# ----------------------------------------------------------------------------------------


def run_node(node: Node, in_type: TensorType, codes: np.ndarray) -> np.ndarray:
    """One single-input hardware node's kernel (its op's ``run``, ``bnn2fpga.ops``)."""
    return op_type(node).run_on(node, [in_type], [codes])


def execute(graph: Graph, codes: np.ndarray,
            saturation: fixed.Saturation | None = None) -> dict[str, np.ndarray]:
    """Run integer input codes through the graph (a DAG, in topological order); returns
    every node's output codes.  Fixed-point saturations are counted into ``saturation``
    per node when given."""
    values: dict[str, np.ndarray] = {graph.input.name: np.asarray(codes, dtype=np.int64)}
    types = {graph.input.name: graph.input.out}
    with fixed.counting() as counted:
        for node in graph.nodes[1:]:
            values[node.name] = op_type(node).run_on(
                node, [types[i] for i in node.inputs], [values[i] for i in node.inputs])
            types[node.name] = node.out
    if saturation is not None:
        for name, n in counted.counts.items():
            saturation.add(name, n, counted.totals[name])
    return values


def output_codes_to_float(graph: Graph, codes: np.ndarray) -> np.ndarray:
    """The output node's codes -> the model's float32 outputs.  The last binary layer's
    affine (per channel, or per element of its output) applies also behind a Flatten; the
    softmax that ends the model (``graph.meta["host_softmax"]``) is the host's last step."""
    y = output_affine_to_float(graph, codes)
    if graph.meta.get("host_softmax"):
        from bnn2fpga.floateval import softmax

        y = softmax(y.astype(np.float64)).astype(np.float32)
    return y


def output_affine_to_float(graph: Graph, codes: np.ndarray) -> np.ndarray:
    """The output codes -> float32 before the host's softmax (if the model has one)."""
    node = graph.output
    while isinstance(node, Reshape):
        node = graph.producer(node)
    affine = node.output_affine if isinstance(node, Dense) else None
    if affine is None or graph.output.out.encoding != "int":
        return codes_to_float(graph.output.out, codes)
    scale, offset = (np.asarray(v, np.float64).reshape(-1) for v in affine)
    rows = codes.reshape(len(codes), -1, scale.size)  # channels-last: channel = index % C
    return codes_to_float(graph.output.out, rows, (scale, offset)).reshape(codes.shape)


def run(graph: Graph, x: np.ndarray) -> np.ndarray:
    """Float frames in, float32 model outputs out (batch-first, as Keras returns them)."""
    if not graph.is_hardware():
        raise IRError("the reference runs the hardware IR only; compile the model first")
    codes = quantize_input(graph.input, x)
    values = execute(graph, codes)
    return output_codes_to_float(graph, values[graph.output.name])
