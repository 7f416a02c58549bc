"""The CLI contract: compile, simulate, demo and help, called as users and tools call them."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from bnn2fpga.cli import main


@pytest.mark.parametrize("sub, options", [
    ([], ["compile", "simulate", "report", "demo"]),
    (["compile"], ["--force", "--input-scale", "--input-bits", "--part", "--clock-ns",
                   "--folding", "--target-fps", "--objective", "--control"]),
    (["simulate"], ["--input", "--output", "--engine", "--stall-prob", "--trace",
                    "--hang-cycles", "--hls-verilog"]),
    (["report"], ["--synth"]),
    (["demo"], ["--out", "--engine"]),
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


def test_demo_reports_agreement(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--engine", "reference", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Keras accuracy" in text
    assert "reference accuracy" in text and "argmax agreement with Keras 1.0000" in text
    assert (out / "design.json").is_file() and (out / "report.html").is_file()


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
