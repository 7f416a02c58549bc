"""How closely the fixed-point design follows the float model on calibration frames.

Per binarisation (each sign of the model: a ``Threshold`` or a threshold folded into a
matrix-vector unit), the fraction of bits that differ from the float model's; the argmax
agreement with Keras; and every fixed-point node's saturated elements.  The float model's
signs come from ``bnn2fpga.floateval`` (the frontend's graph in float64, its signs by the
model's own quantizers); the argmax compares with Keras's own ``predict``.
"""

from __future__ import annotations

import numpy as np

from bnn2fpga import fixed, reference
from bnn2fpga.ir import Graph


def sign_flips(graph: Graph, codes: dict[str, np.ndarray],
               float_values: dict[str, np.ndarray]) -> dict[str, float]:
    """{hardware node: fraction of its bits != the float model's sign} per binarisation."""
    flips: dict[str, float] = {}
    for node, sign in (graph.meta.get("binarisations") or {}).items():
        if node not in codes or sign not in float_values:
            continue
        want = (float_values[sign] > 0).reshape(codes[node].shape)
        flips[node] = float(np.mean((codes[node] > 0) != want))
    return flips


def code_flips(graph: Graph, codes: dict[str, np.ndarray],
               float_values: dict[str, np.ndarray]) -> dict[str, float]:
    """{hardware node: fraction of its codes != the float model's} per multi-bit quantizer
    that became a threshold unit on a real path (``meta["quantizations"]``: Larq DoReFa)."""
    from bnn2fpga.passes.quantizers import grid_codes

    flips: dict[str, float] = {}
    for node, (quantizer, step, lo) in (graph.meta.get("quantizations") or {}).items():
        if node not in codes or quantizer not in float_values:
            continue
        want = np.round(grid_codes(float_values[quantizer], step)) - lo
        flips[node] = float(np.mean(codes[node] != want.reshape(codes[node].shape)))
    return flips


def measure_agreement(graph: Graph, x: np.ndarray, float_values: dict[str, np.ndarray],
                      keras_out: np.ndarray,
                      run: tuple[dict[str, np.ndarray], fixed.Saturation] | None = None
                      ) -> dict:
    """Run the reference on ``x`` (or take ``run``: its values and saturation counts on
    ``x``, from ``reference_run``); store and return sign flips, argmax agreement with
    Keras and saturation counts in ``graph.meta["agreement"]``."""
    values, saturation = run or reference_run(graph, x)
    y = reference.output_codes_to_float(graph, values[graph.output.name])
    keras = np.asarray(keras_out).reshape(y.shape)
    result = {
        "frames": int(len(x)),
        "argmax_agreement": float(np.mean(y.argmax(-1) == keras.argmax(-1))),
        "sign_flips": sign_flips(graph, values, float_values),
        "code_flips": code_flips(graph, values, float_values),
        "saturation": {n: [c, saturation.totals[n]] for n, c in saturation.counts.items()},
    }
    graph.meta["agreement"] = result
    return result


def reference_run(graph: Graph, x: np.ndarray) -> tuple[dict[str, np.ndarray],
                                                         fixed.Saturation]:
    """The reference's values on float frames ``x`` and its saturation counts."""
    saturation = fixed.Saturation()
    values = reference.execute(graph, reference.quantize_input(graph.input, x),
                               saturation=saturation)
    return values, saturation


def format_lines(graph: Graph) -> list[str]:
    """One line per fixed-point tensor: name, bits, fraction bits, saturations."""
    sat = (graph.meta.get("agreement") or {}).get("saturation", {})
    lines = []
    for node in graph.nodes:
        t = node.out
        if t.encoding != "fixed":
            continue
        clipped = sat.get(node.name)
        note = f", {clipped[0]} of {clipped[1]} saturated on the calibration frames" \
            if clipped and clipped[0] else ""
        lines.append(f"  {node.name}: fixed {t.bits} bits, {t.frac} fraction bits "
                     f"(step 2^-{t.frac}){note}")
    return lines


def agreement_lines(graph: Graph) -> list[str]:
    a = graph.meta.get("agreement")
    if not a:
        return []
    lines = [f"agreement on {a['frames']} calibration frames: argmax "
             f"{100 * a['argmax_agreement']:.2f}% equal to Keras"]
    for node, f in a["sign_flips"].items():
        lines.append(f"  signs of {node}: {100 * f:.3f}% differ from the float model")
    for node, f in (a.get("code_flips") or {}).items():
        lines.append(f"  codes of {node}: {100 * f:.3f}% differ from the float model")
    return lines
