"""bnn2fpga.layers: each layer against an independent numpy implementation of its contract
(formulas, ties, weight names/shapes/inits), its STE gradients, serialisation (.h5, .keras),
a few training steps, and a digits smoke test per family."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from bnn2fpga.layers import (  # noqa: E402
    LAYERS,
    PGConv2D,
    RPReLU,
    RSign,
    Thermometer,
    custom_objects,
)

F32 = np.float32


def weight_names(layer: tf.keras.layers.Layer) -> list[str]:
    return [w.name.split("/")[-1].split(":")[0] for w in layer.weights]


def weights_of(layer: tf.keras.layers.Layer) -> dict[str, np.ndarray]:
    return dict(zip(weight_names(layer), (w.numpy() for w in layer.weights), strict=True))


def set_weights(layer: tf.keras.layers.Layer, **values: np.ndarray) -> None:
    for w, name in zip(layer.weights, weight_names(layer), strict=True):
        if name in values:
            w.assign(np.asarray(values[name], F32))


# ----------------------------------------------------------------------------------------
# Independent numpy implementations of the contract
# ----------------------------------------------------------------------------------------


def np_rsign(x: np.ndarray, shift: np.ndarray) -> np.ndarray:
    return np.where(x.astype(F32) + shift.astype(F32) >= 0, 1.0, -1.0).astype(F32)


def np_rprelu(x: np.ndarray, shift_in: np.ndarray, slope: np.ndarray, shift_out: np.ndarray
              ) -> np.ndarray:
    u = x.astype(F32) + shift_in.astype(F32)
    return (np.where(u >= 0, u, slope.astype(F32) * u) + shift_out.astype(F32)).astype(F32)


def np_thermometer(x: np.ndarray, resolution: float) -> np.ndarray:
    levels = int(round(255 / resolution))
    p = x.astype(F32) * F32(255)
    n = np.rint(p / F32(resolution))  # numpy: IEEE float32 division, rint = half to even
    out = np.empty(x.shape[:-1] + (x.shape[-1] * levels,), F32)
    for c in range(x.shape[-1]):
        for k in range(levels):
            out[..., c * levels + k] = np.where(k < n[..., c], 1.0, -1.0)
    return out


def np_quantize(x: np.ndarray) -> np.ndarray:
    return np.rint((np.clip(x.astype(F32), F32(-1), F32(1)) + F32(1)) * F32(1.5)).astype(int)


def np_conv(planes: np.ndarray, wb: np.ndarray, strides: tuple[int, int], padding: str
            ) -> np.ndarray:
    """Integer convolution of (N, H, W, C) with (kh, kw, C, F); TF's 'same' split (the
    extra pad row/column at the bottom/right); padded taps are 0."""
    n, h, w, c = planes.shape
    kh, kw, _, f = wb.shape
    sh, sw = strides
    if padding == "same":
        oh, ow = -(-h // sh), -(-w // sw)
        ph, pw = max((oh - 1) * sh + kh - h, 0), max((ow - 1) * sw + kw - w, 0)
    else:
        oh, ow, ph, pw = (h - kh) // sh + 1, (w - kw) // sw + 1, 0, 0
    padded = np.zeros((n, h + ph, w + pw, c), np.int64)
    padded[:, ph // 2:ph // 2 + h, pw // 2:pw // 2 + w] = planes
    out = np.zeros((n, oh, ow, f), np.int64)
    for i in range(oh):
        for j in range(ow):
            window = padded[:, i * sh:i * sh + kh, j * sw:j * sw + kw]
            out[:, i, j] = np.einsum("nyxc,yxcf->nf", window, wb.astype(np.int64))
    return out


def nearest_f32_third(s: np.ndarray) -> np.ndarray:
    """The float32 nearest to s / 3 (float64 quotient rounded once: exact for |s| < 2^24)."""
    return (np.asarray(s, np.float64) / 3.0).astype(F32)


def np_pgconv(x: np.ndarray, kernel: np.ndarray, threshold: np.ndarray,
              strides: tuple[int, int], padding: str) -> tuple[np.ndarray, ...]:
    q = np_quantize(x)
    m = np.where(q >= 2, 1, -1)
    lsb = np.where(q % 2 == 1, 1, -1)
    wb = np.where(kernel >= 0, 1, -1)
    big_m, big_l = np_conv(m, wb, strides, padding), np_conv(lsb, wb, strides, padding)
    g = (nearest_f32_third(2 * big_m) > threshold.astype(F32)).astype(np.int64)
    return nearest_f32_third(2 * big_m + g * big_l), big_m, big_l, g


def call(layer: tf.keras.layers.Layer, x: np.ndarray) -> np.ndarray:
    return layer(tf.constant(x, tf.float32)).numpy()


# ----------------------------------------------------------------------------------------
# RSign
# ----------------------------------------------------------------------------------------


def test_rsign_weights_forward_and_ties() -> None:
    rng = np.random.default_rng(0)
    layer = RSign()
    x = rng.normal(size=(3, 4, 5, 7)).astype(F32)
    assert np.array_equal(call(layer, x), np.where(x >= 0, 1, -1))  # shift starts at 0
    assert weight_names(layer) == ["shift"]
    assert layer.shift.shape == (7,) and layer.trainable_weights == [layer.shift]
    assert np.array_equal(layer.shift.numpy(), np.zeros(7, F32))
    shift = rng.normal(size=7).astype(F32)
    set_weights(layer, shift=shift)
    x[0, 0, 0] = -shift                                   # x + shift == 0 -> +1
    x[0, 0, 1] = np.nextafter(-shift, F32(-np.inf))       # just below -> -1
    y = call(layer, x)
    assert np.all(y[0, 0, 0] == 1) and np.all(y[0, 0, 1] == -1)
    assert np.array_equal(y, np_rsign(x, shift))
    dense = RSign()                                       # rank 2 (after a Dense)
    assert np.array_equal(call(dense, x[:, 0, 0]), np_rsign(x[:, 0, 0], np.zeros(7, F32)))


def test_rsign_subnormal_sums_count_as_zero() -> None:
    """The documented exception: TF flushes subnormals to zero, so x + shift = -1e-45 (or
    -8e-39) gives +1 where exact arithmetic (numpy) gives -1; normal sums are exact."""
    layer = RSign()
    x = np.array([[-1e-45, -2e-38, -2.4e-38, 1e-45]], F32)
    layer.build(x.shape)
    set_weights(layer, shift=np.array([0, 1.2e-38, 1.2e-38, 0], F32))
    assert np.array_equal(call(layer, x), [[1, 1, -1, 1]])
    assert np.array_equal(np_rsign(x, layer.shift.numpy()), [[-1, -1, -1, 1]])


def test_rsign_ste_gradient() -> None:
    """STE: dy/dx = dy/dshift = 1 where |x + shift| <= 1 (edges included), else 0."""
    layer = RSign()
    shift = np.array([0.5, -0.25, 0.0], F32)
    x = np.array([[0.5, 0.75, 1.0], [-1.5, 1.25, -1.0], [0.6, 1.3, 3.0], [-2.0, -0.8, -1.1]],
                 F32)  # x + shift: [1, .5, 1], [-1, 1, -1], [1.1, 1.05, 3], [-1.5, -1.05, -1.1]
    layer.build(x.shape)
    set_weights(layer, shift=shift)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = layer(xt)
    dx, dshift = tape.gradient(y, [xt, layer.shift])
    inside = np.array([[1, 1, 1], [1, 1, 1], [0, 0, 0], [0, 0, 0]], F32)  # by hand
    assert np.array_equal(inside, (np.abs(x + shift) <= 1).astype(F32))
    assert np.array_equal(dx.numpy(), inside)
    assert np.array_equal(dshift.numpy(), inside.sum(axis=0))


# ----------------------------------------------------------------------------------------
# RPReLU
# ----------------------------------------------------------------------------------------


def test_rprelu_weights_forward_negative_slopes() -> None:
    rng = np.random.default_rng(1)
    layer = RPReLU()
    x = rng.normal(size=(4, 3, 3, 5)).astype(F32)
    y0 = call(layer, x)
    assert weight_names(layer) == ["shift_in", "slope", "shift_out"]
    init = weights_of(layer)
    assert all(v.shape == (5,) for v in init.values())
    assert np.array_equal(init["shift_in"], np.zeros(5, F32))
    assert np.array_equal(init["slope"], np.full(5, 0.25, F32))
    assert np.array_equal(init["shift_out"], np.zeros(5, F32))
    assert np.array_equal(y0, np.where(x >= 0, x, F32(0.25) * x))
    params = {"shift_in": rng.normal(size=5), "slope": np.array([-0.7, 0.0, 0.3, -2.0, 1.5]),
              "shift_out": rng.normal(size=5)}
    params = {k: np.asarray(v, F32) for k, v in params.items()}
    set_weights(layer, **params)
    x[0, 0, 0] = -params["shift_in"]                      # u == 0 -> y = shift_out
    y = call(layer, x)
    assert np.array_equal(y[0, 0, 0], params["shift_out"])
    assert np.array_equal(y, np_rprelu(x, **params))
    neg = x + params["shift_in"] < 0
    assert np.any(neg[..., 0]) and np.all(y[..., 0][neg[..., 0]] > params["shift_out"][0])
    # gradients: dy/dx = 1 (u >= 0) or slope; dy/dslope = sum of u < 0
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        out = layer(xt)
    dx, dslope = tape.gradient(out, [xt, layer.slope])
    u = x + params["shift_in"]
    assert np.allclose(dx.numpy(), np.where(u >= 0, 1.0, params["slope"]))
    assert np.allclose(dslope.numpy(), np.where(u < 0, u, 0).sum(axis=(0, 1, 2)), rtol=1e-5)


# ----------------------------------------------------------------------------------------
# Thermometer
# ----------------------------------------------------------------------------------------


def test_thermometer_every_pixel_value() -> None:
    """All 256 pixels p (x = p / 255) in 3 channels, each channel a different permutation."""
    rng = np.random.default_rng(2)
    p = np.stack([rng.permutation(256) for _ in range(3)], axis=-1).reshape(1, 16, 16, 3)
    x = p.astype(F32) / F32(255)
    assert np.array_equal(x * F32(255), p.astype(F32))    # (p / 255) * 255 is exact
    layer = Thermometer()
    y = call(layer, x)
    assert layer.weights == [] and layer.levels == 32 and y.shape == (1, 16, 16, 96)
    assert set(np.unique(y)) == {-1.0, 1.0}
    assert np.array_equal(y, np_thermometer(x, 8))
    # n by integer arithmetic: p / 8 = k + r / 8; r == 4 is a tie, to the even k or k + 1
    k, r = p // 8, p % 8
    n = np.where(r < 4, k, np.where(r > 4, k + 1, k + (k % 2)))
    assert np.array_equal(n[p % 16 == 4], p[p % 16 == 4] // 8)   # p = 4, 20, ... round down
    assert np.array_equal(n[p % 16 == 12], p[p % 16 == 12] // 8 + 1)  # 12, 28, ... round up
    blocks = y.reshape(1, 16, 16, 3, 32)                   # channel c*32 + k
    assert np.array_equal(blocks[..., :].sum(axis=-1), 2 * n - 32)
    assert np.array_equal(blocks, np.where(np.arange(32) < n[..., None], 1.0, -1.0))
    for pixel, count in ((0, 0), (4, 0), (12, 2), (20, 2), (244, 30), (252, 32), (255, 32)):
        at = np.argwhere(p[0, ..., 0] == pixel)[0]
        assert np.sum(blocks[0, at[0], at[1], 0] == 1) == count, pixel
        assert np.all(blocks[0, at[0], at[1], 0, :count] == 1)


@pytest.mark.parametrize("resolution,levels", [(16, 16), (10, 26), (6, 42), (8.5, 30)])
def test_thermometer_other_resolutions(resolution: float, levels: int) -> None:
    rng = np.random.default_rng(3)
    x = np.concatenate([np.arange(256) / 255, rng.uniform(-0.1, 1.1, 256), [0.0, 1.0]])
    x = x.astype(F32).reshape(1, 1, -1, 2)
    layer = Thermometer(resolution=resolution)
    assert layer.levels == levels == round(255 / resolution)
    y = call(layer, x)
    assert y.shape == (1, 1, x.shape[2], 2 * levels)
    assert np.array_equal(y, np_thermometer(x, resolution))
    clone = Thermometer.from_config(layer.get_config())
    assert clone.resolution == resolution and np.array_equal(call(clone, x), y)


def test_thermometer_graph_mode_and_no_gradient() -> None:
    x = (np.arange(256, dtype=F32) / F32(255)).reshape(16, 4, 4, 1)
    for res in (8, 10, 6, 8.5):
        model = tf.keras.Sequential([tf.keras.Input((4, 4, 1)), Thermometer(res)])
        assert np.array_equal(model.predict(x, verbose=0), np_thermometer(x, res))
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = Thermometer()(xt)
    assert tape.gradient(y, xt) is None


# ----------------------------------------------------------------------------------------
# PGConv2D
# ----------------------------------------------------------------------------------------


def quantizer_ties() -> dict[float, list[float]]:
    """Float32 inputs x whose (clip(x) + 1) * 1.5 is exactly 0.5, 1.5 or 2.5, found by
    walking 300 ulps either side of the crossing."""
    found: dict[float, list[float]] = {}
    for t in (0.5, 1.5, 2.5):
        lo = hi = F32(t / 1.5 - 1)
        xs = [lo]
        for _ in range(300):
            lo, hi = np.nextafter(lo, F32(-2)), np.nextafter(hi, F32(2))
            xs += [lo, hi]
        found[t] = [float(x) for x in xs if (x + F32(1)) * F32(1.5) == F32(t)]
    return found


def test_pgconv_quantizer_levels_ties_and_kernel_sign() -> None:
    """A 1x1 PGConv2D with one input channel, kernel +1 (or 0, or -0.0) and the gate open
    outputs the quantizer level (2q - 3) / 3 itself: -1, -1/3, 1/3, 1 as float32."""
    ties = quantizer_ties()
    # 0.5 is unreachable: x + 1 near 1/3 lies on a 2^-24 grid k·2^-24, and 1.5·k·2^-24
    # rounds to 0.5 only for k in [2^23 - 0.25, 2^23 + 0.5] / 1.5, which holds no integer
    assert ties[0.5] == [] and len(ties[1.5]) > 0 and len(ties[2.5]) > 0
    # the two adjacent float32 around the 0.5 crossing: one below (q = 0), one above (q = 1)
    walk = [F32(-0.66667)]
    while (walk[-1] + F32(1)) * F32(1.5) < F32(0.5):
        walk.append(np.nextafter(walk[-1], F32(1)))
    below, above = walk[-2], walk[-1]
    assert (above + F32(1)) * F32(1.5) > F32(0.5) and np.nextafter(below, F32(1)) == above
    x = np.array([-5.0, -1.0, -0.7, below, above, -0.6, -0.2, *ties[1.5][:4], 0.2,
                  *ties[2.5], 0.67, 0.9, 1.0, 7.0], F32)
    # by hand: clip, +1, *1.5 then half to even (1.5 -> 2, 2.5 -> 2)
    q_hand = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2, *[2] * len(ties[2.5]), 3, 3, 3, 3]
    assert list(np_quantize(x)) == q_hand
    level = nearest_f32_third(2 * np.array(q_hand) - 3)
    for k in (0.3, 0.0, -0.0, -0.4):
        layer = PGConv2D(1, 1, gate_init=-100.0)
        layer.build((1, 1, len(x), 1))
        set_weights(layer, kernel=np.full((1, 1, 1, 1), k, F32))
        y = call(layer, x.reshape(1, 1, -1, 1)).reshape(-1)
        assert np.array_equal(y, level if k >= 0 else -level), k   # sign(0) = sign(-0) = +1


CASES = [  # (seed, kernel_size, strides, padding, c_in, filters, (H, W))
    (10, 3, 1, "same", 3, 4, (7, 6)),
    (11, 3, 2, "same", 5, 3, (7, 6)),
    (12, 3, 2, "valid", 3, 5, (7, 8)),
    (13, (2, 3), (1, 2), "same", 1, 3, (6, 7)),
    (14, 1, 1, "valid", 7, 2, (3, 3)),
    (15, 4, 2, "same", 2, 3, (8, 5)),   # even kernel: TF puts the extra pad at bottom/right
]


def random_pg_input(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Normal values plus exact quantizer ties, zeros and out-of-range values."""
    ties = quantizer_ties()
    x = rng.normal(scale=0.8, size=shape).astype(F32)
    special = np.array([0.0, 1.0, -1.0, 3.0, -3.0, *ties[2.5], *ties[1.5][:3]], F32)
    mask = rng.random(shape) < 0.2
    x[mask] = rng.choice(special, size=int(mask.sum()))
    return x


@pytest.mark.parametrize("seed,kernel_size,strides,padding,c_in,filters,hw", CASES)
def test_pgconv_forward_matches_numpy(seed, kernel_size, strides, padding, c_in, filters, hw
                                      ) -> None:
    rng = np.random.default_rng(seed)
    layer = PGConv2D(filters, kernel_size, strides=strides, padding=padding)
    x = random_pg_input(rng, (3, *hw, c_in))
    model = tf.keras.Sequential([tf.keras.Input(x.shape[1:]), layer])
    kernel = rng.normal(size=layer.kernel.shape).astype(F32)
    kernel[rng.random(kernel.shape) < 0.2] = 0.0            # zero entries -> +1
    fan_in = math.prod(kernel.shape[:3])
    threshold = rng.uniform(-0.3, 0.5, filters).astype(F32) * fan_in
    set_weights(layer, kernel=kernel, threshold=threshold)
    want, big_m, big_l, g = np_pgconv(x, kernel, threshold, layer.strides, padding)
    assert 0 < g.mean() < 1                                 # the gate is on and off
    eager = call(layer, x)
    graph = model.predict(x, verbose=0)
    assert eager.shape == want.shape == tuple(layer.compute_output_shape(x.shape))
    assert np.array_equal(eager, want) and np.array_equal(graph, want)
    # 3y is the integer 2M + gL: y is the float32 nearest to it / 3
    assert np.all(np.abs(eager.astype(np.float64) * 3 - (2 * big_m + g * big_l)) <= 3e-6 *
                  np.maximum(1, np.abs(2 * big_m + g * big_l)))
    # the gate helper is the forward pass's gate
    assert np.array_equal(layer.gate(tf.constant(big_m, tf.float32)).numpy(), g)


def test_pgconv_gate_ties_are_off() -> None:
    """1x1 conv, 5 input channels, kernel all +1: M = sum of the MSB planes. By hand:
    threshold 2.0 and M = 3 give (2/3)·3 = 2.0 exactly, not > 2.0: gate off, y = 2.0;
    M = 5 gives 10/3 > 2: gate on, y = (10 + L) / 3."""
    layer = PGConv2D(1, 1, padding="valid")
    layer.build((1, 1, 2, 5))
    set_weights(layer, kernel=np.ones((1, 1, 5, 1)), threshold=np.array([2.0]))
    # pixel 0: levels (q) 3,3,3,2,0 -> m = +,+,+,+,- (M = 3), l = +,+,+,-,- (L = 1)
    # pixel 1: q 3,3,2,2,2 -> M = 5, l = +,+,-,-,- (L = -1)
    q = np.array([[3, 3, 3, 2, 0], [3, 3, 2, 2, 2]])
    x = (2 * q.astype(F32) - 3) / 3                         # the level values themselves
    assert np.array_equal(np_quantize(x), q)
    y = call(layer, x.reshape(1, 1, 2, 5)).reshape(-1)
    assert y[0] == F32(2.0)
    assert y[1] == nearest_f32_third(10 - 1) == F32(3.0)
    # every reachable M, thresholds put exactly on (2/3)·M as the layer computes it
    layer = PGConv2D(6, 3)
    layer.build((1, 5, 5, 9))
    sums = np.arange(-81, 82)
    msb = layer.msb_term(tf.constant(sums, tf.float32)).numpy()
    assert np.array_equal(msb, nearest_f32_third(2 * sums))
    assert np.array_equal(msb, (2 * sums).astype(F32) / F32(3))   # = IEEE float32 division
    on = np.array([-80, -7, -1, 1, 7, 80])
    set_weights(layer, threshold=nearest_f32_third(2 * on))
    gate = layer.gate(tf.constant(np.repeat(sums[:, None], 6, axis=1), tf.float32)).numpy()
    assert np.array_equal(gate, (sums[:, None] > on[None, :]).astype(F32))


def test_pgconv_gate_folds_to_integer_threshold() -> None:
    """The gate is non-decreasing in M for any float32 threshold, so g = [M >= T] for one
    integer T; found (as a compiler would) by testing integers around 1.5 * threshold."""
    rng = np.random.default_rng(4)
    thresholds = np.concatenate([rng.normal(scale=50, size=40), [2.0, -1.0, 0.0, 2 / 3, 1e-7]])
    layer = PGConv2D(len(thresholds), 3)
    layer.build((1, 3, 3, 64))
    set_weights(layer, threshold=thresholds)
    sums = np.arange(-600, 601)
    gate = layer.gate(tf.constant(np.repeat(sums[:, None], len(thresholds), 1),
                                  tf.float32)).numpy()
    for c, theta in enumerate(layer.threshold.numpy()):
        near = np.arange(math.floor(1.5 * float(theta)) - 3, math.floor(1.5 * float(theta)) + 4)
        g_near = layer.gate(tf.constant(np.repeat(near[:, None], len(thresholds), 1),
                                        tf.float32)).numpy()[:, c]
        t = int(near[np.argmax(g_near)])                    # first integer with the gate on
        assert np.all(np.diff(g_near) >= 0) and g_near[0] == 0 and g_near[-1] == 1
        assert np.array_equal(gate[:, c], (sums >= t).astype(F32))


def test_pgconv_weights_init_and_config() -> None:
    layer = PGConv2D(7, (3, 2), strides=(2, 1), padding="valid", gate_init=2.5)
    layer.build((None, 9, 9, 5))
    assert weight_names(layer) == ["kernel", "threshold"]
    assert layer.kernel.shape == (3, 2, 5, 7) and layer.threshold.shape == (7,)
    assert np.array_equal(layer.threshold.numpy(), np.full(7, 2.5, F32))
    assert len(layer.trainable_weights) == 2
    default = PGConv2D(4, 3)
    default.build((None, 5, 5, 3))
    assert np.array_equal(default.threshold.numpy(), np.full(4, -1.0, F32))
    assert (default.strides, default.padding, default.kernel_size) == ((1, 1), "same", (3, 3))
    config = layer.get_config()
    assert {k: config[k] for k in ("filters", "kernel_size", "strides", "padding",
                                   "gate_init")} == {
        "filters": 7, "kernel_size": (3, 2), "strides": (2, 1), "padding": "valid",
        "gate_init": 2.5}
    clone = PGConv2D.from_config(config)
    clone.build((None, 9, 9, 5))
    clone.set_weights(layer.get_weights())
    x = random_pg_input(np.random.default_rng(5), (2, 9, 9, 5))
    assert np.array_equal(call(clone, x), call(layer, x))
    with pytest.raises(ValueError, match="padding"):
        PGConv2D(3, 3, padding="full")


def test_pgconv_ste_gradients() -> None:
    """1x1 conv (so the conv's transpose is a matrix product), compared with the STE
    derivatives written out: with s = sigmoid(5 (a - threshold)), a = (2/3) M,
    dy/dM = 2/3 + (L/3)(2/3) 5 s(1 - s), dy/dL = g/3, dy/dthreshold = -(L/3) 5 s(1 - s);
    bit planes pass where |x| <= 1, the kernel's sign passes unchanged."""
    rng = np.random.default_rng(6)
    c_in, filters = 4, 3
    layer = PGConv2D(filters, 1)
    x = random_pg_input(rng, (2, 3, 3, c_in))
    layer.build(x.shape)
    kernel = rng.normal(size=(1, 1, c_in, filters)).astype(F32)
    threshold = np.array([-0.5, 0.4, 1.2], F32)
    set_weights(layer, kernel=kernel, threshold=threshold)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = layer(xt)
    dx, dk, dth = (t.numpy() for t in tape.gradient(y, [xt, layer.kernel, layer.threshold]))
    q = np_quantize(x)
    m, lsb = np.where(q >= 2, 1.0, -1.0), np.where(q % 2 == 1, 1.0, -1.0)
    wb = np.where(kernel[0, 0] >= 0, 1.0, -1.0)
    big_m, big_l = m @ wb, lsb @ wb
    a = 2 * big_m / 3
    g = (a > threshold).astype(np.float64)
    s = 1 / (1 + np.exp(-5 * (a - threshold)))
    ds = 5 * s * (1 - s)
    dy_dm = 2 / 3 + big_l / 3 * (2 / 3) * ds
    dy_dl = g / 3
    inside = np.abs(x) <= 1
    assert 0 < inside.mean() < 1 and 0 < g.mean() < 1
    assert np.allclose(dx, (dy_dm @ wb.T + dy_dl @ wb.T) * inside, atol=1e-5)
    want_dk = np.einsum("nhwc,nhwf->cf", m, dy_dm) + np.einsum("nhwc,nhwf->cf", lsb, dy_dl)
    assert np.allclose(dk[0, 0], want_dk, atol=1e-4)
    assert np.allclose(dth, -(big_l / 3 * ds).sum(axis=(0, 1, 2)), atol=1e-5)
    assert np.any(dth != 0)


# ----------------------------------------------------------------------------------------
# Every layer: training steps, serialisation, the compiler's frontend
# ----------------------------------------------------------------------------------------


def small_model(seed: int = 0) -> tf.keras.Model:
    """All four layers, small fan-ins (so the gate's sigmoid gradient is not vanishing)."""
    tf.keras.utils.set_random_seed(seed)
    inp = tf.keras.Input((5, 5, 1))
    h = Thermometer(resolution=32)(inp)                     # 8 levels
    h = PGConv2D(4, 1, gate_init=0.0)(h)
    h = RPReLU()(h)
    h = RSign()(h)
    h = PGConv2D(3, 2, strides=2, padding="valid")(h)
    h = tf.keras.layers.Flatten()(h)
    return tf.keras.Model(inp, tf.keras.layers.Dense(2)(h))


def randomise(model: tf.keras.Model, seed: int) -> None:
    """Non-initial weights everywhere (negative slopes included), so a load that fell back
    to the initialisers would show."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for w, name in zip(layer.weights, weight_names(layer), strict=True):
            w.assign(rng.normal(scale=0.7, size=w.shape).astype(F32) if name != "threshold"
                     else rng.uniform(-1.5, 1.5, w.shape).astype(F32))


def test_training_steps_change_every_weight_and_lower_loss() -> None:
    model = small_model(0)
    rng = np.random.default_rng(7)
    x = rng.random((64, 5, 5, 1)).astype(F32)
    y = (x[:, :2, :, 0].mean(axis=(1, 2)) > x[:, 3:, :, 0].mean(axis=(1, 2))).astype(int)
    model.compile(optimizer=tf.keras.optimizers.Adam(0.02),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = {w.name: w.numpy().copy() for w in model.weights}
    first = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=15, batch_size=16, verbose=0, shuffle=False)
    assert model.evaluate(x, y, verbose=0) < 0.9 * first
    for w in model.weights:
        assert not np.array_equal(w.numpy(), before[w.name]), w.name


@contextlib.contextmanager
def unregistered() -> Iterator[None]:
    """Hide the bnn2fpga layers from Keras's global registry (as in a process that never
    imported bnn2fpga.layers)."""
    registry = tf.keras.utils.get_custom_objects()
    hidden = {k: v for k, v in registry.items() if k.startswith("bnn2fpga>")}
    assert len(hidden) == len(LAYERS)
    for k in hidden:
        del registry[k]
    try:
        yield
    finally:
        registry.update(hidden)


@pytest.mark.parametrize("ext", ["h5", "keras"])
def test_save_and_load(tmp_path, ext: str) -> None:
    from bnn2fpga.frontends.keras import load_model

    model = small_model(1)
    randomise(model, 8)
    assert any(np.any(w.numpy() < 0) for w in model.layers[3].weights if "slope" in w.name)
    x = np.random.default_rng(9).random((8, 5, 5, 1)).astype(F32)
    want = model.predict(x, verbose=0)
    path = str(tmp_path / f"m.{ext}")
    model.save(path)
    with unregistered():
        with pytest.raises(Exception):  # noqa: B017 - Keras raises several types here
            tf.keras.models.load_model(path, compile=False)
        loaded = [tf.keras.models.load_model(path, custom_objects=custom_objects(),
                                             compile=False), load_model(path)]
    loaded.append(tf.keras.models.load_model(path, compile=False))
    for m in loaded:
        assert [type(la).__name__ for la in m.layers] == [type(la).__name__
                                                          for la in model.layers]
        for la, lb in zip(m.layers, model.layers, strict=True):
            assert weight_names(la) == weight_names(lb)  # (.keras drops the layer prefix)
            for a, b in zip(la.weights, lb.weights, strict=True):
                assert np.array_equal(a.numpy(), b.numpy())
        assert [la.get_config() for la in m.layers] == [la.get_config() for la in model.layers]
        assert np.array_equal(m.predict(x, verbose=0), want)


def test_frontend_loads_and_converts() -> None:
    from bnn2fpga.frontends.keras import UnsupportedError, custom_objects, model_to_graph

    objects = custom_objects()
    for cls in LAYERS:
        assert objects[cls.__name__] is cls and objects[f"bnn2fpga>{cls.__name__}"] is cls
    for make in (RSign, RPReLU):  # converted since issue 12 (shift + sign; FloatPReLU)
        graph = model_to_graph(tf.keras.Sequential([tf.keras.Input((4, 4, 2)), make()]))
        assert graph.nodes[-1].op in ("sign", "float_prelu")
    # converted since issue 13: the thermometer on 8-bit pixels, PGConv2D as a float-stage
    # node for passes.fracbnn
    graph = model_to_graph(tf.keras.Sequential([tf.keras.Input((4, 4, 2)), Thermometer()]))
    assert graph.nodes[-1].op == "thermometer" and graph.nodes[-1].out.shape == (4, 4, 64)
    assert (graph.input.out.encoding, graph.input.out.bits) == ("uint", 8)
    graph = model_to_graph(tf.keras.Sequential([tf.keras.Input((4, 4, 2)), PGConv2D(2, 3)]))
    assert graph.nodes[-1].op == "float_pgconv2d"
    # a Thermometer anywhere but first is refused, naming the layer
    model = tf.keras.Sequential([tf.keras.Input((4, 4, 2)), PGConv2D(2, 3),
                                 Thermometer(name="late_thermo")])
    with pytest.raises(UnsupportedError, match=r"'late_thermo' \(Thermometer\): a "
                       r"Thermometer reading 'pg_conv2d.*not the model's input"):
        model_to_graph(model)


# ----------------------------------------------------------------------------------------
# Digits smoke tests
# ----------------------------------------------------------------------------------------


def fit_digits(model: tf.keras.Model, digits, epochs: int, lr: float = 0.01) -> float:
    model.compile(optimizer=tf.keras.optimizers.Adam(lr),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(digits.x_train, digits.y_train, epochs=epochs, batch_size=64, verbose=0)
    return model.evaluate(digits.x_test, digits.y_test, verbose=0)[1]


def test_digits_rsign_rprelu(digits) -> None:
    import larq

    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([
        tf.keras.Input((8, 8, 1)), tf.keras.layers.Flatten(), tf.keras.layers.Dense(64),
        tf.keras.layers.BatchNormalization(), RSign(),
        larq.layers.QuantDense(64, kernel_quantizer="ste_sign", kernel_constraint="weight_clip",
                               use_bias=False),
        tf.keras.layers.BatchNormalization(), RPReLU(), RSign(),
        larq.layers.QuantDense(10, kernel_quantizer="ste_sign", kernel_constraint="weight_clip"),
        tf.keras.layers.BatchNormalization(),
    ])
    accuracy = fit_digits(model, digits, epochs=10)
    print(f"RSign/RPReLU digits accuracy {accuracy:.3f}")
    assert accuracy > 0.8                                 # chance: 0.1


def test_digits_thermometer_pgconv(digits) -> None:
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([
        tf.keras.Input((8, 8, 1)), Thermometer(),
        PGConv2D(16, 3), tf.keras.layers.BatchNormalization(),
        PGConv2D(16, 3, strides=2), tf.keras.layers.BatchNormalization(),
        tf.keras.layers.Flatten(), tf.keras.layers.Dense(10),
    ])
    accuracy = fit_digits(model, digits, epochs=6)
    print(f"Thermometer/PGConv2D digits accuracy {accuracy:.3f}")
    assert accuracy > 0.8                                 # chance: 0.1
