"""Bad input gets a clear error naming the layer/option/file, and nothing is written."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from bnn2fpga.cli import main
from bnn2fpga.frontends import UnsupportedError, model_to_graph
from bnn2fpga.ir import IRError
from bnn2fpga.passes import assign_folding


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.err + captured.out


def listing(path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.fixture(scope="module")
def saved_mlp(tmp_path_factory, qkeras_mlp):
    path = tmp_path_factory.mktemp("models") / "mlp.h5"
    qkeras_mlp.save(path)
    return path


def test_unsupported_layer_names_layer_class_and_alternatives(tmp_path, capsys):
    from qkeras import QActivation, quantized_bits

    model = tf.keras.Sequential([
        tf.keras.layers.InputLayer(input_shape=(16,)),
        QActivation(quantized_bits(4, 0, keep_negative=False)),
        tf.keras.layers.Dense(4, name="float_dense"),
    ])
    path = tmp_path / "float_dense.h5"
    model.save(path)
    out = tmp_path / "out"
    code, text = run_cli(capsys, "compile", str(path), "-o", str(out))
    assert code == 2
    assert "'float_dense' (Dense)" in text
    assert "is not supported" in text and "QDense" in text and "QuantConv2D" in text
    assert not out.exists()


def test_unsupported_quantizer_option_is_named():
    import larq as lq

    model = tf.keras.Sequential([
        tf.keras.layers.InputLayer(input_shape=(8,)),
        lq.layers.QuantDense(4, input_quantizer="ste_heaviside", kernel_quantizer="ste_sign",
                             name="heavy"),
    ])
    with pytest.raises(UnsupportedError) as e:
        model_to_graph(model)
    msg = str(e.value)
    assert "'heavy' (QuantDense)" in msg and "SteHeaviside" in msg and "ste_sign" in msg


def test_residual_model_is_refused_with_reason():
    from qkeras import QActivation, QDense, binary

    inp = tf.keras.Input((8,))
    x = QActivation(binary())(inp)
    y = QDense(8, kernel_quantizer=binary(), name="branch")(x)
    z = tf.keras.layers.Add(name="add")([x, y])
    with pytest.raises(UnsupportedError) as e:
        model_to_graph(tf.keras.Model(inp, z))
    assert "'add' (Add)" in str(e.value)


def test_corrupt_model_file(tmp_path, capsys):
    bad = tmp_path / "broken.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"not really an hdf5 file" * 10)
    out = tmp_path / "out"
    code, text = run_cli(capsys, "compile", str(bad), "-o", str(out))
    assert code == 2
    assert "cannot load Keras model" in text and "broken.h5" in text
    assert not out.exists()
    code, text = run_cli(capsys, "compile", str(tmp_path / "missing.keras"), "-o", str(out))
    assert code == 2 and "does not exist" in text and not out.exists()


def test_folding_that_does_not_divide(mlp_graph):
    before = [(n.pe, n.simd) for n in mlp_graph.matvec_nodes()]
    with pytest.raises(IRError) as e:
        assign_folding(mlp_graph, {"fc1": (3, 4), "fc2": (4, 7)})
    msg = str(e.value)
    assert "'fc1'" in msg and "PE=3 does not divide out_channels=64" in msg
    assert "'fc2'" in msg and "SIMD=7 does not divide fan-in=64" in msg
    assert "valid PE: [1, 2, 4, 8, 16, 32, 64]" in msg
    with pytest.raises(IRError, match="unknown layers"):
        assign_folding(mlp_graph, {"nope": (1, 1)})
    # a refused folding leaves the graph as it was
    assert [(n.pe, n.simd) for n in mlp_graph.matvec_nodes()] == before


def test_folding_file_that_does_not_divide(tmp_path, capsys, saved_mlp):
    folding = tmp_path / "fold.json"
    folding.write_text(json.dumps({"fc1": {"pe": 3, "simd": 4}}))
    out = tmp_path / "out"
    code, text = run_cli(capsys, "compile", str(saved_mlp), "-o", str(out),
                         "--folding", str(folding), "--skip", "hls", "--skip", "rtl")
    assert code == 2 and "fc1" in text and "PE=3" in text
    assert not out.exists()


def test_unrepresentable_input(tmp_path, capsys, larq_cnn, digits):
    model = tmp_path / "cnn.h5"
    larq_cnn.save(model)
    out = tmp_path / "out"
    assert run_cli(capsys, "compile", str(model), "-o", str(out), "--input-scale", "0.0625",
                   "--input-bits", "5", "--skip", "hls", "--skip", "rtl")[0] == 0
    x = digits.x_test[:4].copy()
    x[2, 3, 5, 0] = 0.03  # not a multiple of 1/16
    np.save(tmp_path / "x.npy", x)
    y = tmp_path / "y.npy"
    code, text = run_cli(capsys, "simulate", str(out), "--input", str(tmp_path / "x.npy"),
                         "--output", str(y))
    assert code == 2
    assert "input element (2, 3, 5, 0)" in text and "0.03" in text and "--input-scale" in text
    assert not y.exists()
    x[2, 3, 5, 0] = 2.0  # on the grid but k = 32 does not fit in 5 bits
    np.save(tmp_path / "x.npy", x)
    code, text = run_cli(capsys, "simulate", str(out), "--input", str(tmp_path / "x.npy"),
                         "--output", str(y))
    assert code == 2 and "(2, 3, 5, 0)" in text and not y.exists()


def test_missing_input_format(tmp_path, capsys, larq_cnn):
    model = tmp_path / "cnn.keras"
    larq_cnn.save(model)
    out = tmp_path / "out"
    code, text = run_cli(capsys, "compile", str(model), "-o", str(out))
    assert code == 2 and "--input-scale S --input-bits B" in text
    assert not out.exists()


def test_non_empty_output_dir_is_refused(tmp_path, capsys, saved_mlp):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    before = listing(out)
    code, text = run_cli(capsys, "compile", str(saved_mlp), "-o", str(out))
    assert code == 2 and "not empty" in text and "--force" in text
    assert listing(out) == before and (out / "notes.txt").read_text() == "my notes"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]
    # --force replaces it; recompiling into a bnn2fpga project needs no --force
    skip = ["--skip", "hls", "--skip", "rtl"]
    assert run_cli(capsys, "compile", str(saved_mlp), "-o", str(out), "--force", *skip)[0] == 0
    assert (out / "design.json").is_file() and not (out / "notes.txt").exists()
    assert run_cli(capsys, "compile", str(saved_mlp), "-o", str(out), *skip)[0] == 0


def test_failed_backend_leaves_no_half_project(tmp_path, mlp_graph, monkeypatch):
    from bnn2fpga import backends, project

    def broken(graph, out_dir, options, plan):
        (out_dir / "partial.cpp").write_text("// half written")
        raise RuntimeError("backend exploded")

    monkeypatch.setattr(backends, "load_backend", lambda name: broken)
    monkeypatch.setattr(project, "load_backend", lambda name: broken)
    out = tmp_path / "deep" / "out"
    with pytest.raises(RuntimeError, match="exploded"):
        project.write_project(mlp_graph, out, backends.CompileOptions(), backends=["hls"])
    assert listing(tmp_path) == []


def test_simulate_rejects_non_project_and_bad_arrays(tmp_path, capsys):
    code, text = run_cli(capsys, "simulate", str(tmp_path), "--input", "x.npy",
                         "--output", "y.npy")
    assert code == 2 and "does not exist" in text
    (tmp_path / "x.npy").write_text("garbage")
    code, text = run_cli(capsys, "simulate", str(tmp_path), "--input",
                         str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy"))
    assert code == 2 and "not a readable .npy" in text


def test_batchnorm_after_flatten_before_a_sign_is_refused_with_what_works():
    """Per feature, not per channel: supported at the output only (README, "What it reads")."""
    from qkeras import QActivation, QConv2D, QDense, binary

    from bnn2fpga.compile import compile_model

    k = {"kernel_quantizer": binary(alpha=1), "use_bias": False}
    model = tf.keras.Sequential([
        tf.keras.layers.InputLayer(input_shape=(4, 4, 1)), QConv2D(2, 3, **k),
        tf.keras.layers.Flatten(), tf.keras.layers.BatchNormalization(name="bn_flat"),
        QActivation("binary"), QDense(2, **k)])
    with pytest.raises(IRError) as e:
        compile_model(model, input_scale=0.0625, input_bits=5)
    msg = str(e.value)
    assert "'bn_flat'" in msg and "per feature" in msg and "before the Flatten" in msg


@pytest.mark.parametrize("pad, bits", [(-1.0, 5), (1.0, 4)])
def test_larq_pad_value_off_the_input_grid_is_refused(pad, bits):
    """pad_values=±1 on a real-valued first layer needs the input grid to hold the value."""
    import larq as lq

    from bnn2fpga.compile import compile_model

    model = tf.keras.Sequential([
        tf.keras.layers.InputLayer(input_shape=(4, 4, 1)),
        lq.layers.QuantConv2D(2, 3, padding="same", pad_values=pad, kernel_quantizer="ste_sign",
                              name="first"), tf.keras.layers.Flatten()])
    with pytest.raises(IRError) as e:
        compile_model(model, input_scale=0.0625, input_bits=bits)
    msg = str(e.value)
    assert "'first'" in msg and f"pad value {pad}" in msg and "pad_values=0" in msg
    if pad > 0:  # 1.0 = 16 * 0.0625 is on a 5-bit grid
        assert compile_model(model, input_scale=0.0625, input_bits=5).nodes[1].pad == 16
