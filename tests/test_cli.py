"""The CLI contract: compile, simulate, demo and help, called as users and tools call them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bnn2fpga.cli import main


@pytest.mark.parametrize("sub, options", [
    ([], ["compile", "simulate", "report", "demo"]),
    (["compile"], ["--force", "--input-scale", "--input-bits", "--part", "--clock-ns",
                   "--folding", "--target-fps", "--objective", "--cycles", "--control"]),
    (["simulate"], ["--input", "--output", "--engine", "--stall-prob", "--trace",
                    "--hang-cycles", "--hls-verilog"]),
    (["report"], ["--synth"]),
    (["demo"], ["-o", "--output", "--engine"]),
])
def test_help_explains_options(sub, options):
    result = subprocess.run([sys.executable, "-m", "bnn2fpga.cli", *sub, "--help"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    for option in options:
        assert option in result.stdout


def test_compile_then_simulate(tmp_path, capsys, qkeras_mlp, digits):
    model = tmp_path / "mlp.keras"
    qkeras_mlp.save(model)
    out = tmp_path / "proj"
    assert main(["compile", str(model), "-o", str(out), "--skip", "hls", "--skip", "rtl"]) == 0
    design = json.loads((out / "design.json").read_text())
    assert [n["name"] for n in design["nodes"]] == ["input", "fc1", "fc2", "fc3"]
    assert design["meta"]["part"] == "xc7z020clg400-1" and design["meta"]["clock_ns"] == 10.0
    x = digits.x_test[:37].reshape(37, 64)
    np.save(tmp_path / "x.npy", x)
    capsys.readouterr()
    assert main(["simulate", str(out), "--input", str(tmp_path / "x.npy"),
                 "--output", str(tmp_path / "y.npy")]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("simulated 37 frames with engine reference in ")
    y = np.load(tmp_path / "y.npy")
    assert y.dtype == np.float32 and y.shape == (37, 10)
    assert np.array_equal(y.argmax(1), qkeras_mlp.predict(x, verbose=0).argmax(1))


def test_version():
    """`bnn2fpga --version` prints the version pyproject.toml declares."""
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    want = re.search(r'^version = "([^"]+)"$', pyproject.read_text(), re.M).group(1)
    result = subprocess.run([sys.executable, "-m", "bnn2fpga.cli", "--version"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout == f"bnn2fpga {want}\n"


def test_demo_reports_agreement_and_keeps_its_model(tmp_path, capsys):
    """demo -o OUT (as compile): the trained model stays in OUT, where design.json names it
    as the source, and recompiling from it in place keeps it."""
    out = tmp_path / "demo"
    assert main(["demo", "--engine", "reference", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Keras accuracy" in text
    assert "reference accuracy" in text and "argmax agreement with Keras 1.0000" in text
    assert (out / "design.json").is_file() and (out / "report.html").is_file()
    design = json.loads((out / "design.json").read_text())
    model = out / "digits_mlp.keras"
    assert design["meta"]["source_model"] == str(model.absolute()) and model.is_file()
    assert f"bnn2fpga compile {model} -o {out}" in text
    assert main(["compile", str(model), "-o", str(out), "--skip", "hls", "--skip", "rtl"]) == 0
    again = json.loads((out / "design.json").read_text())
    assert model.is_file() and again["meta"]["source_model"] == str(model.absolute())
    assert again["nodes"] == design["nodes"]


def test_demo_out_is_a_deprecated_alias(tmp_path, capsys):
    from bnn2fpga.cli import build_parser

    assert build_parser().parse_args(["demo", "--out", "d"]).out_deprecated == "d"
    assert main(["demo", "--out", "a", "-o", "b"]) == 2
    err = capsys.readouterr().err
    assert "-o/--output" in err and "--out" in err
    assert not (tmp_path / "a").exists()


@pytest.mark.slow
def test_simulate_rtl_prints_a_summary_and_records_conditions(tmp_path, capsys, qkeras_mlp,
                                                             digits):
    """simulate --engine rtl: a short summary on stdout, the full figures and the run's
    conditions in OUT/rtl_sim.json; the report compares a stall-free run with the estimate
    and only names a run with stalls."""
    model = tmp_path / "mlp.keras"
    qkeras_mlp.save(model)
    out = tmp_path / "proj"
    assert main(["compile", str(model), "-o", str(out), "--skip", "hls"]) == 0
    np.save(tmp_path / "x.npy", digits.x_test[:6].reshape(6, 64))
    args = ["simulate", str(out), "--input", str(tmp_path / "x.npy"), "--output",
            str(tmp_path / "y.npy"), "--engine", "rtl"]
    capsys.readouterr()
    runs = {}
    for stall, seed in ((0.0, 1), (0.5, 3)):
        assert main([*args, "--stall-prob", str(stall), "--seed", str(seed)]) == 0
        text = capsys.readouterr().out
        sim = json.loads((out / "rtl_sim.json").read_text())
        assert sim["conditions"] == {"design": "bnn2fpga RTL (bnn_top)", "frames": 6,
                                     "stall_prob": stall, "seed": seed, "trace": False}
        assert "{" not in text  # no raw JSON
        assert f"first-frame latency {sim['first_frame_latency_cycles']:,} cycles" in text
        assert f"{sim['steady_state_cycles_per_frame']:,.1f} cycles per frame" in text
        assert f"{sim['fps']:,.1f} frames/s" in text
        assert f"full figures and the run's conditions: {out / 'rtl_sim.json'}" in text
        assert ("probability 0.5" in text) == (stall > 0)
        assert main(["report", str(out)]) == 0
        runs[stall] = json.loads((out / "report.json").read_text())["measured"]["cycles"]
    assert runs[0.0]["compared"] and runs[0.0]["interval_cycles"]["error_pct"] is not None
    assert not runs[0.5]["compared"] and runs[0.5]["interval_cycles"]["error_pct"] is None
    # stalls cost cycles: the two runs measured different things
    assert runs[0.5]["interval_cycles"]["measured"] > runs[0.0]["interval_cycles"]["measured"]


def test_target_fps_then_report(tmp_path, capsys, qkeras_mlp):
    """compile --target-fps picks a folding that reaches the rate; report says so; an
    unreachable target is refused with what would fit, and writes nothing."""
    model = tmp_path / "mlp.keras"
    qkeras_mlp.save(model)
    skip = ["--skip", "hls", "--skip", "rtl"]
    slow, fast = tmp_path / "slow", tmp_path / "fast"
    for out, fps in ((slow, 1e5), (fast, 2e6)):
        assert main(["compile", str(model), "-o", str(out), "--target-fps", str(fps),
                     "--clock-ns", "10", "--part", "xczu3eg-sbva484-1-e", *skip]) == 0
        assert main(["report", str(out)]) == 0
        report = json.loads((out / "report.json").read_text())
        assert report["device"] == "xczu3eg" and report["fps"] >= fps
        assert (out / "report.html").read_text().count("<svg") >= 2
    small = json.loads((slow / "report.json").read_text())["total"]["lut"]
    large = json.loads((fast / "report.json").read_text())["total"]["lut"]
    assert small < large  # a lower target costs fewer LUTs
    capsys.readouterr()
    out = tmp_path / "impossible"
    assert main(["compile", str(model), "-o", str(out), "--target-fps", "1e9", *skip]) == 2
    err = capsys.readouterr().err
    assert "FPS" in err or "fps" in err
    assert not out.exists()
