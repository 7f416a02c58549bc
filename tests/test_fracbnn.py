"""FracBNN through the frontend and the passes (issue 13), on the reference: the trained
chain model equals Keras exactly (every thermometer bit, 2-bit code and sign, and the
outputs), random PG layers through the whole compiler equal the Keras layers, and the gate
density measured on calibration frames matches a direct count."""

from __future__ import annotations

import json

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from bnn2fpga import reference, zoo  # noqa: E402
from bnn2fpga.compile import compile_model  # noqa: E402
from bnn2fpga.folding import gate_density_at, layer_cycles  # noqa: E402
from bnn2fpga.ir import PGConv2D as HwPGConv2D  # noqa: E402
from bnn2fpga.ir import graph_from_json, graph_to_json, graphs_equal  # noqa: E402
from bnn2fpga.layers import PGConv2D, Thermometer  # noqa: E402
from bnn2fpga.passes.fracbnn import staircase  # noqa: E402
from bnn2fpga.testing import keras_mismatches  # noqa: E402


@pytest.fixture(scope="module")
def pixels():
    return zoo.digits_pixels()


@pytest.fixture(scope="module")
def chain(pixels):
    model = zoo.train_fracbnn_chain(data=pixels)
    graph = compile_model(model, calibration=pixels.x_train[:300])
    return model, graph


def direct_gates(layer, x: np.ndarray) -> np.ndarray:
    """The layer's gates on its float input x, computed in TensorFlow from the layer's own
    quantizer, sign(kernel) and gate (not through the compiler)."""
    from bnn2fpga.layers.ste import ste_bit_planes, ste_sign_identity

    m, _ = ste_bit_planes(tf.constant(x))
    m_sum = tf.nn.conv2d(m, ste_sign_identity(layer.kernel), strides=layer.strides,
                         padding=layer.padding.upper())
    return layer.gate(m_sum).numpy().astype(np.int64)


def test_chain_equals_keras(chain, pixels) -> None:
    model, graph = chain
    assert graph.is_hardware()
    assert [n.op for n in graph.nodes] == ["input", "thermometer", "conv2d", "pgconv2d",
                                           "pgconv2d", "reshape", "dense"]
    assert (graph.input.out.encoding, graph.input.out.bits) == ("uint", 8)
    # every 2-bit code, every sign, the outputs (float32 via the output affine) and argmax
    assert keras_mismatches(model, graph, pixels.x_test) == []
    assert set(graph.meta["keras_codes"]) == {"conv1", "pg1"}
    assert graph.meta["keras_activations"] == {"flatten": "flatten"}
    assert not graph.meta.get("warnings")
    # every thermometer bit
    codes = reference.quantize_input(graph.input, pixels.x_test)
    assert np.array_equal(codes, np.rint(pixels.x_test * 255).astype(np.int64))
    values = reference.execute(graph, codes)
    want = model.get_layer("thermo")(tf.constant(pixels.x_test)).numpy() > 0
    assert np.array_equal(values["thermo"], want.astype(np.int64))
    accuracy = float(np.mean(reference.run(graph, pixels.x_test).argmax(-1)
                             == pixels.y_test))
    print(f"FracBNN chain: reference accuracy {accuracy:.3f}")
    assert accuracy > 0.8
    # design.json round trip
    back = graph_from_json(json.loads(json.dumps(graph_to_json(graph))))
    assert graphs_equal(graph, back)


def test_chain_gate_density_matches_a_direct_count(chain, pixels) -> None:
    model, graph = chain
    x = pixels.x_train[:300]
    measured = graph.meta["gate_density"]
    assert measured["frames"] == 300
    for name, before in (("pg1", "bn1"), ("pg2", "bn2")):
        node = graph[name]
        assert isinstance(node, HwPGConv2D)
        probe = tf.keras.Model(model.inputs, model.get_layer(before).output)
        g = direct_gates(model.get_layer(name), probe.predict(x, verbose=0))
        g = g.reshape(len(x), -1, node.out_channels)
        entry = measured["layers"][name]
        assert entry["gates_on"] == pytest.approx(float(g.mean()), abs=0)
        for pe, density in entry["by_pe"].items():
            groups = g.reshape(len(x), g.shape[1], -1, int(pe)).max(axis=-1)
            assert density == float(groups.mean())
            assert 0.0 <= density <= 1.0
        assert node.gate_density == entry["by_pe"][str(node.pe)]
        print(f"{name}: {100 * entry['gates_on']:.1f}% of gates on; group density "
              f"{node.gate_density:.3f} at PE={node.pe}, {entry['by_pe']['1']:.3f} at PE=1")


def test_cycle_modes_follow_the_gate_density(chain) -> None:
    _, graph = chain
    node = graph["pg1"]
    for pe in (1, 2, node.out_channels):
        density = gate_density_at(graph, node, pe)
        worst = layer_cycles(graph, node, pe, 1, "worst")
        expected = layer_cycles(graph, node, pe, 1, "expected")
        groups = 64 * (node.out_channels // pe)          # pixels x neuron folds
        assert worst == 2 * groups * node.fan_in          # SIMD 1: SF = fan-in
        assert expected == (groups + round(density * groups)) * node.fan_in <= worst
    conv = graph["conv1"]
    assert layer_cycles(graph, conv, 1, 1, "expected") == layer_cycles(graph, conv, 1, 1)
    with pytest.raises(ValueError, match="unknown cycle mode 'best'"):
        layer_cycles(graph, node, 1, 1, "best")


def test_report_shows_gate_density_and_both_fps(chain) -> None:
    from bnn2fpga.report import gate_report

    _, graph = chain
    r = gate_report(graph, 4.0)
    assert [layer["name"] for layer in r["layers"]] == ["pg1", "pg2"]
    assert all(layer["measured"] for layer in r["layers"])
    assert r["expected_interval_cycles"] <= r["worst_interval_cycles"]
    assert r["expected_fps"] >= r["worst_fps"]


def random_bn(layer, rng: np.random.Generator, spread: float, negative: float = 0.3) -> None:
    c = layer.gamma.shape[0]
    gamma = rng.uniform(0.5, 2.0, c) * np.where(rng.random(c) < negative, -1, 1)
    gamma[0] = -abs(gamma[0])       # at least one negative scale
    layer.set_weights([gamma, rng.normal(size=c) * 0.5, rng.normal(size=c) * spread,
                       rng.uniform(0.5, 2.0, c) * spread ** 2])


@pytest.mark.parametrize("seed", range(6))
def test_random_pg_layers_through_the_compiler(seed: int) -> None:
    """Thermometer -> binary conv -> BN -> PGConv2D -> BN -> PGConv2D -> BN [-> Flatten ->
    binary dense -> BN] with random geometry (padding, stride, odd channels), weights, gate
    thresholds and BatchNorms (some scales negative: inverted channels), against Keras."""
    import larq as lq

    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(5, 9)), int(rng.integers(5, 9))
    c1, f1, f2 = (int(v) for v in rng.choice([3, 5, 7, 8, 9], 3))
    k1, k2 = int(rng.choice([1, 2, 3])), int(rng.choice([2, 3]))
    pad1, pad2 = rng.choice(["same", "valid"], 2)
    s1, s2 = (int(v) for v in rng.integers(1, 3, 2))
    dense_end = bool(seed % 2)
    layers = tf.keras.layers
    seq = [layers.InputLayer(input_shape=(h, w, 2)), Thermometer(resolution=32),
           lq.layers.QuantConv2D(c1, 3, padding="same", kernel_quantizer="ste_sign",
                                 use_bias=False, name="conv"),
           layers.BatchNormalization(name="bn0"),
           PGConv2D(f1, k1, strides=s1, padding=str(pad1), name="pga"),
           layers.BatchNormalization(name="bn1"),
           PGConv2D(f2, k2, strides=s2, padding=str(pad2), name="pgb")]
    if dense_end:
        seq += [layers.BatchNormalization(name="bn2"), layers.Flatten(name="flat"),
                lq.layers.QuantDense(4, input_quantizer="ste_sign",
                                     kernel_quantizer="ste_sign", use_bias=False, name="fc"),
                layers.BatchNormalization(name="bn3")]
    elif seed % 3:
        seq += [layers.BatchNormalization(name="bn2")]
    model = tf.keras.Sequential(seq)
    fan = {"conv": 9 * 16, "pga": k1 * k1 * c1, "pgb": k2 * k2 * f1}
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            prev = model.layers[model.layers.index(layer) - 1]
            spread = np.sqrt(fan.get(prev.name, 10)) * (1 if prev.name == "conv" else 0.7)
            random_bn(layer, rng, float(spread))
        elif isinstance(layer, PGConv2D):
            layer.kernel.assign(rng.normal(size=layer.kernel.shape))
            layer.threshold.assign(rng.uniform(-0.4, 0.4, layer.filters) * fan[layer.name])
        elif layer.name in ("conv", "fc"):
            layer.kernel.assign(rng.normal(size=layer.kernel.shape))
    px = rng.integers(0, 256, size=(40, h, w, 2))
    x = (px.astype(np.float32) / np.float32(255)).astype(np.float32)
    graph = compile_model(model, calibration=x[:20])
    assert graph.is_hardware()
    assert keras_mismatches(model, graph, x) == []
    # negative BN scales behind a PGConv2D: channels inverted, the next weights negated
    inverted = graph.meta.get("inverted_channels", {})
    assert {"conv", "pga"} <= set(inverted) and inverted["pga"]["channels"] == f1
    assert ("flat" in inverted) == dense_end   # the sign after pgb, behind the Flatten
    print(f"seed {seed}: {h}x{w}, c={c1} f={f1},{f2} k={k1},{k2} {pad1}/{pad2} "
          f"s={s1},{s2}: inverted {inverted}")
    assert not graph.meta.get("warnings")
    for name in ("pga", "pgb"):
        d = graph[name].gate_density
        assert 0.0 <= d <= 1.0


def test_staircase_fits_and_counts_what_is_not_monotone() -> None:
    d = np.arange(-6, 7)
    up = (d[:, None] >= np.array([-2, 1, 4])).sum(-1)
    codes = np.stack([up, 3 - up, np.full(d.size, 2), up], axis=1)
    codes[0, 3] = 3                                   # one value off the staircase
    t, inverted, differing = staircase(d, codes, 3)
    assert t[0].tolist() == [-2, 1, 4] and not inverted[0]
    assert inverted[1] and t[1].tolist() == [-2, 1, 4]
    assert t[2].tolist() == [-6, -6, 7] and not inverted[2]
    assert differing.tolist() == [0, 0, 0, 1]


@pytest.fixture(scope="module")
def resnet(pixels):
    model = zoo.train_fracbnn_resnet(data=pixels)
    graph = compile_model(model, calibration=pixels.x_train[:300])
    return model, graph


def test_fracbnn_residual_blocks_with_calibration(resnet, pixels) -> None:
    """x = BN(RPReLU(BN(PGConv2D(x)))) + shortcut(x), the second block with stride 2 and an
    AvgPool + concat(x, x) shortcut: the quantizer on the real stream is a Threshold with 3
    thresholds, the PG accumulators feed fixed-point BatchNorms (step 1/3)."""
    from bnn2fpga.passes.fracbnn import quantizer_codes

    model, graph = resnet
    assert graph.is_hardware()
    ops = {n.name: n.op for n in graph.nodes}
    assert ops["b1_pg/quantizer"] == ops["b2_pg/quantizer"] == "threshold"
    assert ops["b1_pg"] == ops["b2_pg"] == "pgconv2d"
    assert graph["b1_pg/quantizer"].thresholds.shape == (16, 3)
    agreement = graph.meta["agreement"]
    assert agreement["argmax_agreement"] >= 0.99
    assert not any(c for c, _ in agreement["saturation"].values())
    x = pixels.x_test
    values = reference.execute(graph, reference.quantize_input(graph.input, x))
    y = reference.output_codes_to_float(graph, values[graph.output.name])
    keras = model.predict(x, verbose=0)
    agree = float(np.mean(y.argmax(-1) == keras.argmax(-1)))
    accuracy = float(np.mean(y.argmax(-1) == pixels.y_test))
    # the 2-bit codes of the real stream: fixed point vs the float model
    differ = {}
    for pg, before in (("b1_pg", "stem_bn"), ("b2_pg", "b1_add")):
        v = tf.keras.Model(model.inputs, model.get_layer(before).output).predict(x, verbose=0)
        q = quantizer_codes(v.reshape(-1, v.shape[-1])).reshape(v.shape)
        differ[pg] = float(np.mean(values[f"{pg}/quantizer"] != q))
        assert differ[pg] < 0.01
        assert 0.0 < graph[pg].gate_density <= 1.0
    print(f"FracBNN blocks: held-out argmax {100 * agree:.2f}% equal to Keras, accuracy "
          f"{accuracy:.3f}; 2-bit codes differing {differ}; gate density "
          f"{ {n: round(graph[n].gate_density, 3) for n in ('b1_pg', 'b2_pg')} }")
    assert agree >= 0.99 and accuracy > 0.8


def test_cli_compiles_the_chain_for_the_reference(chain, pixels, tmp_path, capsys) -> None:
    """`bnn2fpga compile --calibration` of a FracBNN model: design.json (reference only until
    the hardware units exist) with measured gate densities; `simulate --engine reference`
    on raw pixels / 255 equals Keras; --cycles expected without --calibration is refused."""
    from bnn2fpga.cli import main

    model, _ = chain
    path, out = tmp_path / "chain.keras", tmp_path / "proj"
    model.save(path)
    cal, frames = tmp_path / "cal.npy", tmp_path / "x.npy"
    np.save(cal, pixels.x_train[:100])
    np.save(frames, pixels.x_test[:50])
    assert main(["compile", str(path), "-o", str(out), "--calibration", str(cal),
                 "--skip", "hls", "--skip", "rtl"]) == 0
    design = json.loads((out / "design.json").read_text())
    assert set(design["meta"]["gate_density"]["layers"]) == {"pg1", "pg2"}
    y = tmp_path / "y.npy"
    assert main(["simulate", str(out), "--input", str(frames), "--output", str(y),
                 "--engine", "reference"]) == 0
    want = model.predict(pixels.x_test[:50], verbose=0)
    assert np.array_equal(np.load(y).argmax(-1), want.argmax(-1))
    assert np.allclose(np.load(y), want, rtol=1e-6, atol=1e-6)
    capsys.readouterr()
    assert main(["compile", str(path), "-o", str(tmp_path / "p2"), "--target-fps", "1000",
                 "--cycles", "expected", "--skip", "hls", "--skip", "rtl"]) != 0
    assert "--cycles expected: the gate density of 'pg1' (PGConv2D) is not measured; give " \
        "--calibration" in capsys.readouterr().err


def test_a_non_monotone_quantizer_fold_warns_with_a_count() -> None:
    """A BatchNorm whose float decisions are not monotone in the accumulator (here a
    made-up evaluate hook) cannot be a staircase: the fold keeps the best thresholds and
    warns, naming the layer, the channels and how many accumulator values differ."""
    from bnn2fpga.ir import BatchNorm, Conv2D, FloatPGConv2D, Graph, Input, TensorType
    from bnn2fpga.passes.fracbnn import lower_pgconv2d, quantizer_codes

    layer = PGConv2D(3, 1, name="pg")
    layer.build((None, 1, 1, 2))
    ones = np.ones(2, np.float32)
    graph = Graph("g", [
        Input("input", [], TensorType((1, 1, 4), "bipolar")),
        Conv2D("c", ["input"], TensorType((1, 1, 2), "int", 2),
               weights=np.ones((2, 4), np.int8)),
        BatchNorm("bn", ["c"], TensorType((1, 1, 2), "float", 32), gamma=ones,
                  beta=0 * ones, mean=0 * ones, var=ones,
                  evaluate=lambda v: np.cos(v).astype(np.float32)),
        FloatPGConv2D("pg", ["bn"], TensorType((1, 1, 3), "float", 32),
                      weights=np.ones((3, 2), np.int8), layer=layer)])
    graph = lower_pgconv2d(graph)
    d = np.arange(-4, 5)
    q = quantizer_codes(np.cos(d.astype(np.float32))[:, None])[:, 0]
    fit = (d[:, None] >= graph["c"].thresholds[0]).sum(-1)
    differing = int(np.sum(fit != q))
    assert differing > 0
    (warning,) = graph.meta["warnings"]
    assert warning.startswith("layer 'pg': the 2-bit quantizer of its input is not a "
                              "monotone staircase in the accumulator on channels [0, 1]")
    assert f"differ from the model on {2 * differing} of 9 accumulator values" in warning


def test_folding_search_budgets_worst_or_expected_cycles(chain) -> None:
    """--cycles: at a target that the worst case misses at PE=1 but the expected cycles
    meet, "worst" must fold wider than "expected"; each meets its own budget."""
    from bnn2fpga.folding_search import apply_folding, budget_for, choose_folding

    _, graph = chain
    budget = budget_for(7000, 10.0)
    cycles = {}
    for mode in ("worst", "expected"):
        fold = choose_folding(graph, target_fps=7000, clock_ns=10.0, part="xc7z020",
                              cycles=mode)
        folded = apply_folding(graph, fold)
        cycles[mode] = {n: layer_cycles(folded, folded[n], *fold[n], mode)
                        for n in ("pg1", "pg2")}
        assert max(cycles[mode].values()) <= budget
        for name in ("pg1", "pg2"):   # the density follows the chosen PE
            entry = graph.meta["gate_density"]["layers"][name]["by_pe"]
            assert folded[name].gate_density == entry[str(fold[name][0])]
    worst = choose_folding(graph, target_fps=7000, clock_ns=10.0, part="xc7z020")
    expected = choose_folding(graph, target_fps=7000, clock_ns=10.0, part="xc7z020",
                              cycles="expected")
    lanes = {f: sum(pe * simd for pe, simd in fold.values())
             for f, fold in (("worst", worst), ("expected", expected))}
    print(f"folding at 7000 FPS: worst {worst}, expected {expected}")
    assert lanes["expected"] < lanes["worst"]


@pytest.mark.parametrize("which", ["chain", "resnet"])
def test_trained_fracbnn_models_on_hls_and_rtl(which, chain, resnet, pixels, tmp_path) -> None:
    """The trained chain (exact against Keras) and the residual blocks (--calibration) on
    both backends: Verilator (also under random stalls) and HLS C-sim equal the reference
    bit for bit, and the RTL runs at the cycle model's expected interval within 2% (the
    PG layers' LSB passes follow the frames' gate density)."""
    from bnn2fpga import folding
    from bnn2fpga.backends import CompileOptions
    from bnn2fpga.backends import hls as hls_backend
    from bnn2fpga.backends import rtl as rtl_backend
    from bnn2fpga.sim import csim
    from bnn2fpga.sim.rtl import simulate_many

    _, graph = chain if which == "chain" else resnet
    x = pixels.x_test[:10]
    codes = reference.quantize_input(graph.input, x.reshape((len(x),) + graph.input.out.shape))
    want = reference.execute(graph, codes)[graph.output.name]
    rtl_backend.write_project(graph, tmp_path / "rtl", CompileOptions(top=f"fb_{which}_rtl"))
    (tmp_path / "hls").mkdir()
    hls_backend.write_project(graph, tmp_path / "hls", CompileOptions(top=f"fb_{which}_hls"))
    for stall in (0.0, 0.3):
        (run,) = simulate_many([(tmp_path, graph, codes)], tmp_path / f"cache{stall}",
                               stall_prob=stall, seed=5, name=f"fb_{which}")
        assert np.array_equal(run.codes, want), f"RTL differs (stall {stall})"
        if stall == 0.0:
            interval = run.summary["steady_state_cycles_per_frame"]
    (res,) = csim.simulate_many([(tmp_path, graph, codes)], cache_dir=tmp_path / "csim")
    assert np.array_equal(res.codes, want), "C-sim differs"
    worst = folding.bottleneck(graph)[1]
    assert interval <= worst
    assert interval > 0
