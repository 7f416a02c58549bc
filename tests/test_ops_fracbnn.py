"""FracBNN's hardware ops (ops/thermometer.py, ops/pgconv2d.py) against the Keras layers
they implement (bnn2fpga.layers.Thermometer, PGConv2D): every output bit / value equal."""

from __future__ import annotations

import numpy as np
import pytest

from bnn2fpga.ir import PGConv2D, TensorType, ThermometerEncode, same_pads
from bnn2fpga.ops import op_type
from bnn2fpga.ops.pgconv2d import accumulators, group_density

tf = pytest.importorskip("tensorflow")
layers = pytest.importorskip("bnn2fpga.layers")

# the compiler's own exhaustive derivations (passes.fracbnn): the thermometer's per-level
# pixel thresholds from the layer on all 256 pixels, the gate's integer thresholds from
# layer.gate on every M in [-F-1, F+1]
from bnn2fpga.passes.fracbnn import gate_thresholds, thermometer_thresholds  # noqa: E402


@pytest.mark.parametrize("resolution", [8, 5, 3.3])
def test_thermometer_equals_the_layer(resolution):
    layer = layers.Thermometer(resolution=resolution)
    t = thermometer_thresholds(layer)
    src = TensorType((4, 5, 3), "uint", 8)
    node = ThermometerEncode("thermo", ["input"], TensorType((4, 5, 3 * t.size), "bipolar"),
                             thresholds=t)
    op_type(node).check_on(node, [src])
    px = np.random.default_rng(1).integers(0, 256, size=(6, 4, 5, 3))
    got = op_type(node).run_on(node, [src], [px])
    want = layer(tf.constant(px.astype(np.float32) / np.float32(255))).numpy() > 0
    assert np.array_equal(got, want.astype(int))


@pytest.mark.parametrize("padding,stride,cin,filters,k",
                         [("same", 1, 3, 5, 3), ("valid", 2, 4, 6, 3), ("same", 2, 5, 4, 3),
                          ("valid", 1, 1, 3, 2), ("same", 1, 7, 2, 1)])
def test_pgconv2d_equals_the_layer(padding, stride, cin, filters, k):
    rng = np.random.default_rng(cin * 7 + filters)
    h, w = 7, 6
    layer = layers.PGConv2D(filters, k, strides=stride, padding=padding)
    layer.build((None, h, w, cin))
    layer.kernel.assign(rng.normal(size=layer.kernel.shape).astype(np.float32))
    fan_in = k * k * cin
    layer.threshold.assign(rng.uniform(-0.3, 0.3, filters).astype(np.float32) * fan_in)
    q = rng.integers(0, 4, size=(8, h, w, cin))
    x = ((2 * q - 3) / 3).astype(np.float32)
    want = layer(tf.constant(x)).numpy()
    kernel = layer.kernel.numpy()
    weights = np.where(kernel.reshape(-1, filters).T >= 0, 1, -1).astype(np.int8)
    if padding == "same":
        pads = same_pads(h, k, stride) + same_pads(w, k, stride)
    else:
        pads = (0, 0, 0, 0)
    oh, ow = want.shape[1:3]
    node = PGConv2D("pg", ["input"], TensorType((oh, ow, filters), "int", 12),
                    weights=weights, kernel=(k, k), stride=(stride, stride), pads=pads,
                    gate_thresholds=gate_thresholds(layer, fan_in),
                    output_affine=(np.full(filters, 1 / 3), np.zeros(filters)), acc_bits=12,
                    pe=1, simd=cin)
    src = TensorType((h, w, cin), "uint", 2)
    op_type(node).check_on(node, [src])
    acc = op_type(node).run_on(node, [src], [q])
    third = (acc.astype(np.float64) / 3.0).astype(np.float32)  # the layer's third_of
    assert np.array_equal(third, want)
    _, g = accumulators(node, q)
    assert 0.0 < group_density(node, g) < 1.0 or filters == 2


def test_pgconv2d_cycles_fall_with_gate_density():
    node = PGConv2D("pg", ["input"], TensorType((4, 4, 8), "int", 12),
                    weights=np.ones((8, 36), np.int8), kernel=(3, 3), pads=(1, 1, 1, 1),
                    gate_thresholds=np.zeros(8, np.int64), acc_bits=12, pe=2, simd=4,
                    output_affine=(np.ones(8), np.zeros(8)))
    full = op_type(node).cycles(node, (4, 4, 4))
    msb = 16 * 4 * 9
    assert full.worst == full.expected == 2 * msb
    node.gate_density = 0.25
    part = op_type(node).cycles(node, (4, 4, 4))
    assert part.worst == 2 * msb and part.expected == round(1.25 * msb)
