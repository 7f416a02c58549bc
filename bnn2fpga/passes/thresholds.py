"""BatchNorm + sign -> integer thresholds (and the max-pools in between stay exact).

For a binary matrix-vector node with integer accumulator d, the float chain that Keras
evaluates before the sign is a per-channel composition of monotone steps (input scale,
weight scale, bias, BatchNorm, max-pool).  Its float64 composition A*d + B gives the crossing
tau = -B/A; the bit is +1 iff d >= ceil(tau) when A > 0, iff d <= floor(tau) when A < 0
(the channel is flipped: its weights are negated, so the unit always tests acc >= T), and
constant when A = 0.  Ties are then settled exactly as the model settles them: the candidate
integers around tau are run through the model's own float32 layers (``evaluate`` hooks set
by the frontend) or, without hooks, through a float32 emulation.

A max-pool inside the chain commutes with the threshold: max then an increasing map equals
the map then max (OR of bits); with a decreasing remainder it becomes min (AND of bits).
"""

from __future__ import annotations

import numpy as np

from bnn2fpga.ir import (
    AvgPool2D,
    BatchNorm,
    ChannelAffine,
    Dense,
    FloatPReLU,
    Graph,
    IRError,
    MajorityPool2D,
    MaxPool2D,
    Node,
    PGConv2D,
    Reshape,
    Sign,
    TensorType,
)
from bnn2fpga.passes.structure import propagate_types
from bnn2fpga.reference import accumulator_bound

CHAIN_OPS = (ChannelAffine, BatchNorm, MaxPool2D, Reshape)
_WINDOW = np.arange(-4, 5)
FLOAT32_EXACT = float(2 ** 24)  # from here on, float32 no longer holds every integer


def input_scale(in_type: TensorType) -> float:
    """Real value of one accumulator unit (the uint input's scale; 1 for bipolar)."""
    if in_type.encoding == "uint":
        if in_type.offset != 0.0:
            raise IRError("a uint input with a non-zero offset needs an offset term in the "
                          "threshold (not supported yet)")
        return in_type.scale
    if in_type.encoding == "fixed":
        return in_type.step
    return 1.0


def channel_vector(node: Node, value: np.ndarray | None, channels: int, default: float
                   ) -> np.ndarray:
    if value is None:
        return np.full(channels, default, dtype=np.float32)
    v = np.asarray(value, dtype=np.float32).reshape(-1)
    if v.size == 1:
        return np.full(channels, v[0], dtype=np.float32)
    if v.size != channels:
        raise IRError(f"layer {node.name!r} has {v.size} parameters but the binary layer "
                      f"before it has {channels} output channels: a BatchNorm or scale after "
                      "a Flatten is per feature, not per channel, and is supported only at "
                      "the output; before a binarisation, put it before the Flatten")
    return v


def affine_terms(op: Node, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """(mul, add) in float64 with op(x) = mul * x + add (exact arithmetic)."""
    if isinstance(op, ChannelAffine):
        mul = channel_vector(op, op.mul, channels, 1.0).astype(np.float64)
        return mul, channel_vector(op, op.add, channels, 0.0).astype(np.float64)
    if isinstance(op, BatchNorm):
        for attr in ("gamma", "beta", "mean", "var"):
            channel_vector(op, getattr(op, attr), channels, 0.0)
        return op.scale_shift()
    return np.ones(channels), np.zeros(channels)


def evaluate_float32(ops: list[Node], x: np.ndarray) -> np.ndarray:
    """Run float32 values (n, channels) through the chain's value-changing ops, as the model
    does (through its own layers when the frontend attached them; ReLU/PReLU/RPReLU by their
    float32 formula)."""
    for op in ops:
        if isinstance(op, ChannelAffine):
            c = x.shape[1]
            if op.mul is not None:
                x = (x * channel_vector(op, op.mul, c, 1.0)).astype(np.float32)
            if op.add is not None:
                x = (x + channel_vector(op, op.add, c, 0.0)).astype(np.float32)
        elif isinstance(op, BatchNorm):
            if op.evaluate is not None:
                x = np.asarray(op.evaluate(x), dtype=np.float32)
            else:  # Keras's non-fused formula: x * s + (beta - mean * s)
                s = (np.float32(1) / np.sqrt(op.var + np.float32(op.eps))) * op.gamma
                s = s.astype(np.float32)
                x = (x * s + (op.beta - op.mean * s)).astype(np.float32)
        elif isinstance(op, FloatPReLU):  # as Keras PReLU and bnn2fpga.layers.RPReLU
            u = (x + op.shift_in.astype(np.float32)).astype(np.float32)
            f = np.where(u >= 0, u, (op.slope.astype(np.float32) * u).astype(np.float32))
            x = (f + op.shift_out.astype(np.float32)).astype(np.float32)
    return x


def sign_bits(sign: Sign, x: np.ndarray) -> np.ndarray:
    """The model's binarisation of float32 pre-activations x, by its own quantizer; from
    |x| >= 2^24, where QKeras's float32 arithmetic fails (``float32_sign_warning``), the exact
    sign (x >= 0)."""
    if sign.evaluate is not None:
        exact = np.abs(x) >= FLOAT32_EXACT
        return np.where(exact, x >= 0, np.asarray(sign.evaluate(x)) > 0)
    return x >= 0


def collect_chain(graph: Graph, sign: Sign) -> tuple[Dense, list[Node]]:
    """The binary layer feeding ``sign`` and the ops between them (in order)."""
    ops: list[Node] = []
    node = graph.producer(sign)
    while isinstance(node, CHAIN_OPS):
        if len(graph.consumers(node.name)) != 1:
            raise IRError(f"node {node.name!r} feeds several layers; a binarisation after it "
                          "cannot be folded into thresholds")
        ops.insert(0, node)
        node = graph.producer(node)
    if not isinstance(node, Dense) or node.thresholds is not None:
        raise IRError(f"binarisation {sign.name!r} follows {node.name!r} ({node.op}), not a "
                      "binary layer's accumulator; supported: a binary Dense/Conv2D followed "
                      "by scale, bias, BatchNorm and max-pool, then the sign")
    return node, ops


def chain_affine(matvec: Dense, in_type: TensorType, ops: list[Node]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) in float64 per channel: the pre-activation is a * acc + b (exact arithmetic)."""
    channels = matvec.out_channels
    a = np.full(channels, input_scale(in_type), dtype=np.float64)
    b = np.zeros(channels, dtype=np.float64)
    for op in ops:
        mul, add = affine_terms(op, channels)
        a, b = a * mul, b * mul + add
    return a, b


def float32_sign_warning(matvec: Dense, in_type: TensorType, ops: list[Node], sign: Sign
                         ) -> str | None:
    """A warning naming the layer when the model's own binarisation can return values other
    than ±1 over the reachable pre-activations.  QKeras ``binary`` computes
    x + stop_gradient(sign(x) - x) in float32, which gives 0 or ±2 once |x| >= 2^24; the
    hardware binarises exactly, so Keras and the design then differ."""
    if sign.evaluate is None:
        return None
    a, b = chain_affine(matvec, in_type, ops)
    reach = np.abs(a) * accumulator_bound(matvec, in_type) + np.abs(b)
    channels = np.flatnonzero(reach >= FLOAT32_EXACT)
    if channels.size == 0:
        return None
    probe = np.float32(FLOAT32_EXACT + 2) * np.array([[1.0], [-1.0]], np.float32)
    values = np.asarray(sign.evaluate(np.repeat(probe, matvec.out_channels, axis=1)))
    if np.all(np.abs(values) == 1):
        return None  # this quantizer is exact at large magnitudes (Larq's signs are)
    layer = sign.name.split("/")[0]
    return (f"layer {layer!r}: the binarisation after {matvec.name!r} sees pre-activations "
            f"up to {float(reach.max()):.3g} in magnitude on channels "
            f"{channels.tolist()[:8]}{' ...' if channels.size > 8 else ''}; from 2^24 on, its "
            "float32 arithmetic returns 0 or ±2 instead of ±1 (QKeras binary), so Keras may "
            "differ from the design, which binarises exactly; rescale the BatchNorm "
            "(smaller gamma) to stay below 2^24")


def threshold_channels(matvec: Dense, in_type: TensorType, ops: list[Node], sign: Sign
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Per channel: (T, flip) with bit = [acc' >= T] where acc' = -acc for flipped channels."""
    channels = matvec.out_channels
    bound = accumulator_bound(matvec, in_type)
    scale = input_scale(in_type)
    a, b = chain_affine(matvec, in_type, ops)

    def decide(d: np.ndarray) -> np.ndarray:
        x = (d.astype(np.float32) * np.float32(scale)).astype(np.float32)
        return sign_bits(sign, evaluate_float32(ops, x))

    with np.errstate(divide="ignore", invalid="ignore"):
        tau = np.where(a != 0, -b / np.where(a != 0, a, 1.0), 0.0)
    centre = np.clip(np.nan_to_num(np.round(tau), posinf=bound + 1, neginf=-bound - 1),
                     -bound - 1, bound + 1).astype(np.int64)
    cand = centre[None, :] + _WINDOW[:, None]                     # (window, channels)
    ends = np.array([[-bound] * channels, [bound] * channels])     # range end points
    probe = np.clip(np.concatenate([cand, ends]), -bound, bound)
    bits = decide(probe)
    win_d, win_bits = probe[:-2], bits[:-2]
    lo_bit, hi_bit = bits[-2], bits[-1]

    flip = a < 0
    thresholds = np.empty(channels, dtype=np.int64)
    for c in range(channels):
        if a[c] == 0 or lo_bit[c] == hi_bit[c]:
            # constant over the whole reachable range
            on = bool(hi_bit[c]) if a[c] != 0 else bool(decide(np.zeros((1, channels),
                                                                        np.int64))[0, c])
            thresholds[c] = -bound if on else bound + 1
            flip[c] = False
            continue
        d, bit = win_d[:, c], win_bits[:, c]
        order = np.argsort(d) if a[c] > 0 else np.argsort(-d)   # walk towards "on"
        d, bit = d[order], bit[order]
        if bit[0] or not bit[-1] or np.any(np.diff(bit.astype(np.int8)) < 0):
            raise IRError(f"layer {matvec.name!r} channel {c}: the model's float decisions "
                          f"around the crossing {tau[c]!r} are not monotone ({bit.tolist()} "
                          f"at {d.tolist()}); cannot fold into one threshold")
        first_on = int(d[np.argmax(bit)])
        thresholds[c] = first_on if a[c] > 0 else -first_on
    return thresholds, flip


def pool_min_channels(ops: list[Node], pool_index: int, channels: int) -> tuple[int, ...]:
    """Channels whose chain after the pool is decreasing: their pool becomes a min (AND)."""
    direction = np.ones(channels)
    for op in ops[pool_index + 1:]:
        direction *= np.sign(affine_terms(op, channels)[0])
    return tuple(int(c) for c in np.flatnonzero(direction < 0))


def on_real_path(graph: Graph, sign: Sign) -> bool:
    """Whether ``sign`` binarises a real-valued tensor that no fold into an integer
    accumulator's thresholds reaches (a residual sum, a fork, an average of reals): the
    real-path passes (``passes.real``) make it a ``Threshold`` on fixed-point codes."""
    pool = graph.producer(sign)
    while isinstance(pool, Reshape):
        pool = graph.producer(pool)
    if isinstance(pool, AvgPool2D):
        return graph.producer(pool).out.encoding != "bipolar"
    try:
        collect_chain(graph, sign)
    except IRError:
        return True
    return False


def fold_sign_into_thresholds(graph: Graph, leave_real: bool = False) -> Graph:
    """Every Sign after a binary layer's chain -> integer thresholds on that layer.

    One sign at a time, first in graph order; before each, the types are re-derived
    (``propagate_types``) and signs on already bipolar tensors removed, so every fold sees
    the types its earlier folds produced (a Flatten or max-pool behind a folded sign is
    bipolar; a second sign behind it is the identity).  ``leave_real``: signs on real
    paths (``on_real_path``) stay for the real-path passes instead of being refused."""
    while True:
        graph = remove_redundant_signs(propagate_types(graph))
        sign = next((n for n in graph.nodes if isinstance(n, Sign)
                     and not (leave_real and on_real_path(graph, n))), None)
        if sign is None:
            return graph
        graph.meta.setdefault("binarisations", {})
        pool, reshapes = graph.producer(sign), []
        while isinstance(pool, Reshape):
            reshapes.insert(0, pool)
            pool = graph.producer(pool)
        if isinstance(pool, AvgPool2D):
            fold_sign_into_majority_pool(graph, pool, reshapes, sign)
            graph.meta["binarisations"][(reshapes or [pool])[-1].name] = sign.name
            continue
        matvec, ops = collect_chain(graph, sign)
        if isinstance(matvec, PGConv2D):
            from bnn2fpga.passes.fracbnn import fold_sign_after_pgconv2d

            fold_sign_after_pgconv2d(graph, matvec, ops, sign)
            continue
        in_type = graph.producer(matvec).out
        warning = float32_sign_warning(matvec, in_type, ops, sign)
        if warning:
            graph.meta.setdefault("warnings", []).append(warning)
        thresholds, flip = threshold_channels(matvec, in_type, ops, sign)
        matvec.weights = np.where(flip[:, None], -matvec.weights, matvec.weights).astype(np.int8)
        matvec.thresholds = thresholds[:, None]
        matvec.out = TensorType(matvec.out.shape, "bipolar")
        kept: list[Node] = [matvec]
        for i, op in enumerate(ops):
            if isinstance(op, (MaxPool2D, Reshape)):
                op.inputs = [kept[-1].name]
                if isinstance(op, MaxPool2D):
                    op.min_channels = pool_min_channels(ops, i, matvec.out_channels)
                kept.append(op)
        graph.replace([matvec, *ops, sign], kept)
        # which model tensor the new binary output equals, after its binarisation: lets the
        # tests compare every intermediate activation with the model's own
        before_sign = (ops[-1] if ops else matvec).name.split("/")[0]
        graph.meta.setdefault("keras_activations", {})[kept[-1].name] = before_sign
        graph.meta["binarisations"][kept[-1].name] = sign.name


def fold_sign_into_majority_pool(graph: Graph, pool: AvgPool2D, reshapes: list[Node],
                                 sign: Sign) -> None:
    """sign(average of ±1 values) = sign(sum of ±1 values): a majority vote over the window.
    Reshapes between the pool and the sign stay (a sign commutes with them)."""
    src = graph.producer(pool).out
    if src.encoding != "bipolar":
        raise IRError(f"average pool {pool.name!r} averages {src.encoding} values; supported: "
                      "an average pool of binary (±1) activations followed by a "
                      "binarisation (a majority vote)")
    majority = MajorityPool2D(pool.name, list(pool.inputs),
                              TensorType(pool.out.shape, "bipolar"), kernel=pool.kernel,
                              stride=pool.stride, pads=pool.pads)
    kept: list[Node] = [majority]
    for op in reshapes:
        op.inputs = [kept[-1].name]
        kept.append(op)
    graph.replace([pool, *reshapes, sign], kept)
    graph.meta.setdefault("keras_activations", {})[kept[-1].name] = reshapes[-1].name \
        if reshapes else pool.name


def remove_redundant_signs(graph: Graph) -> Graph:
    """A Sign on an already bipolar tensor is the identity (types as ``propagate_types``
    derives them: a sign, or a pool or reshape of one, is bipolar)."""
    for node in list(graph.nodes):
        if isinstance(node, Sign) and graph.producer(node).out.encoding == "bipolar":
            graph.bypass(node)
    return graph
