"""The HTML report in a real headless browser (Chromium): it renders, the layer table and
the SVG plots are there after parsing, and the screenshot shows them.

Needs the system package ``chromium`` (Debian).  Without it the test is skipped, except in
CI (env CI=true), where a missing browser is a failure."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from bnn2fpga import testing
from bnn2fpga.backends import CompileOptions
from bnn2fpga.project import write_project
from bnn2fpga.report import write_report

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--force-device-scale-factor=1")
BAR_BLUE = (0x4A, 0x78, 0xB5)        # .s-cycles / .s-lut in report.css.j2
BOTTLENECK_ROW = (0xFD, 0xE2, 0xE1)  # tr.bottleneck td background


def find_browser() -> str:
    for name in (os.environ.get("BNN2FPGA_CHROMIUM"), *BROWSERS):
        if name and shutil.which(name):
            return shutil.which(name)
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("CI=true but no Chromium found (install the Debian package 'chromium')")
    pytest.skip("no Chromium on this machine (apt-get install chromium); the browser check "
                "runs in CI")


def run_browser(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120)


def decode_png(path: Path) -> np.ndarray:
    """8-bit RGB/RGBA non-interlaced PNG -> (h, w, channels) uint8 (all five filters)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and colour in (2, 6) and interlace == 0
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * bpp
    out = np.zeros((h, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.int64)
    for y in range(h):
        kind = raw[y * (stride + 1)]
        row = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int64)
        if kind == 1:      # Sub: running sum per channel
            row = np.cumsum(row.reshape(w, bpp), axis=0).reshape(-1) % 256
        elif kind == 2:    # Up
            row = (row + prev) % 256
        elif kind in (3, 4):
            row = _unfilter_sequential(kind, row.tolist(), prev.tolist(), bpp)
        out[y] = row
        prev = out[y].astype(np.int64)
    return out.reshape(h, w, bpp)


def _unfilter_sequential(kind: int, row: list[int], up: list[int], bpp: int) -> np.ndarray:
    """Average (3) and Paeth (4) filters depend on the reconstructed left neighbour."""
    for i in range(len(row)):
        a = row[i - bpp] if i >= bpp else 0
        b = up[i]
        if kind == 3:
            row[i] = (row[i] + (a + b) // 2) & 0xFF
            continue
        c = up[i - bpp] if i >= bpp else 0
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
        row[i] = (row[i] + pred) & 0xFF
    return np.array(row, dtype=np.int64)


def count_colour(img: np.ndarray, rgb: tuple[int, int, int]) -> int:
    return int(np.all(img[..., :3] == np.array(rgb, dtype=np.uint8), axis=-1).sum())


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> tuple[Path, list[str], str]:
    out = tmp_path_factory.mktemp("browser") / "proj"
    graph = testing.random_cnn_graph(np.random.default_rng(0))
    write_project(graph, out, CompileOptions(), backends=("rtl",))
    _, html = write_report(out)
    layers = [n.name for n in graph.nodes[1:] if n.op != "reshape"]
    report = json.loads((out / "report.json").read_text())
    bottleneck = next(la["name"] for la in report["layers"] if la["bottleneck"])
    return html, layers, bottleneck


def test_dom_after_render_has_table_rows_and_plots(report_html, tmp_path):
    browser = find_browser()
    html, layers, bottleneck = report_html
    proc = run_browser(browser, tmp_path / "profile", "--dump-dom", html.as_uri())
    dom = proc.stdout
    assert proc.returncode == 0 and "<table" in dom, proc.stderr[-2000:]
    rows = re.findall(r'<tr class="layer( bottleneck)?" id="layer-([^"]+)"', dom)
    assert [name for _, name in rows] == layers
    assert [name for b, name in rows if b] == [bottleneck]
    svgs = re.findall(r"<svg[^>]*class=\"chart\"", dom)
    assert len(svgs) == 2
    assert len(re.findall(r'<rect class="bar ', dom)) >= 2 * len(layers)


def test_screenshot_shows_the_table_and_the_plot(report_html, tmp_path):
    browser = find_browser()
    html, layers, _ = report_html
    shot = tmp_path / "report.png"
    proc = run_browser(browser, tmp_path / "profile", f"--screenshot={shot}",
                       "--window-size=1100,1500", html.as_uri())
    assert shot.is_file() and shot.stat().st_size > 20_000, proc.stderr[-2000:]
    img = decode_png(shot)
    assert img.shape[:2] == (1500, 1100)
    colours = np.unique(img[..., :3].reshape(-1, 3), axis=0)
    assert len(colours) > 50                        # text, table, plot: not a blank page
    assert count_colour(img, BOTTLENECK_ROW) > 500  # the highlighted bottleneck row
    assert count_colour(img, BAR_BLUE) > 2000       # the bars of the plots
