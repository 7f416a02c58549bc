"""Command line: ``bnn2fpga compile | simulate | report | demo``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


def _user_errors() -> tuple[type[BaseException], ...]:
    from bnn2fpga.frontends import FrontendError
    from bnn2fpga.ir import IRError
    from bnn2fpga.project import ProjectError
    from bnn2fpga.reference import InputError

    return (CLIError, FrontendError, IRError, ProjectError, InputError)


# ----------------------------------------------------------------------------------------
# compile
# ----------------------------------------------------------------------------------------


def apply_folding_options(args: argparse.Namespace, graph) -> None:
    """--folding FILE.json or --target-fps: re-run the folding pass with the chosen folding."""
    if not (args.folding or args.target_fps):
        return
    if args.folding and args.target_fps:
        raise CLIError("--folding and --target-fps exclude each other")
    from bnn2fpga import folding_search
    from bnn2fpga.passes import assign_folding, check_hardware_graph

    if args.folding:
        folding = folding_search.load_folding_file(args.folding, graph)
    else:
        check_cycle_mode(args.cycles, graph)
        folding = folding_search.choose_folding(graph, target_fps=args.target_fps,
                                                clock_ns=args.clock_ns, part=args.part,
                                                objective=args.objective,
                                                cycles=args.cycles)
    check_hardware_graph(assign_folding(graph, folding))


def check_cycle_mode(mode: str, graph) -> None:
    """--cycles expected needs gate densities measured on --calibration frames."""
    from bnn2fpga.ir import PGConv2D

    gated = [n.name for n in graph.nodes if isinstance(n, PGConv2D)]
    if mode == "expected" and gated and not graph.meta.get("gate_density"):
        raise CLIError(f"--cycles expected: the gate density of {gated[0]!r} (PGConv2D) is "
                       "not measured; give --calibration X.npy (frames the reference runs "
                       "to measure it), or use --cycles worst")


def cmd_compile(args: argparse.Namespace, keep_model_as: str | None = None) -> int:
    """``keep_model_as``: copy the model into the project under this name and name that copy
    as design.json's source (the demo's trained model).  A model file inside OUT is kept
    where it is."""
    from bnn2fpga.backends import CompileOptions
    from bnn2fpga.compile import compile_model
    from bnn2fpga.frontends import load_model
    from bnn2fpga.project import check_output_dir, write_project

    out = Path(args.output)
    check_output_dir(out, args.force)  # fail before the slow model load
    model_path = Path(args.model).absolute()
    source, keep = model_path, {}
    if keep_model_as:
        source, keep = out.absolute() / keep_model_as, {keep_model_as: model_path}
    elif model_path.is_file() and model_path.is_relative_to(out.absolute()):
        keep = {str(model_path.relative_to(out.absolute())): model_path}
    from bnn2fpga.passes.formats import load_formats_file

    calibration = load_frames(args.calibration) if args.calibration else None
    formats = load_formats_file(args.formats) if args.formats else None
    model = load_model(args.model)
    graph = compile_model(model, input_scale=args.input_scale, input_bits=args.input_bits,
                          name=Path(args.model).stem, calibration=calibration,
                          formats=formats, precision=args.precision)
    apply_folding_options(args, graph)
    graph.meta["source_model"] = str(source)
    options = CompileOptions(part=args.part, clock_ns=args.clock_ns, top=args.top,
                             control=args.control)
    backends = [b for b in ("hls", "rtl") if b not in (args.skip or [])]
    written = write_project(graph, out, options, force=args.force, backends=backends,
                            keep=keep)
    for warning in graph.meta.get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)
    from bnn2fpga.agreement import agreement_lines, format_lines

    lines = format_lines(graph)
    if lines:
        precision = graph.meta.get("precision")
        print("fixed-point formats (" + (f"{precision} fraction bits requested" if precision
              is not None else "exact: sums and pools of the model's quantized codes")
              + "):")
        print("\n".join(lines + agreement_lines(graph)))
    layers = len(graph.matvec_nodes())
    plan = f", {out}/plan.json" if (out / "plan.json").exists() else " (no plan.json)"
    print(f"compiled {graph.name!r}: {layers} matrix-vector layers -> {out}/design.json"
          f"{plan}" + "".join(f", {out}/{w}/" for w in written))
    return 0


# ----------------------------------------------------------------------------------------
# simulate
# ----------------------------------------------------------------------------------------


def load_frames(path: str) -> np.ndarray:
    try:
        x = np.load(path, allow_pickle=False)
    except FileNotFoundError as e:
        raise CLIError(f"input file {path!r} does not exist") from e
    except (ValueError, OSError) as e:
        raise CLIError(f"input file {path!r} is not a readable .npy array ({e})") from e
    return np.asarray(x)


def simulate_frames(out: Path, x: np.ndarray, engine: str, **options) -> tuple[np.ndarray,
                                                                               dict]:
    """Float frames -> float32 outputs shaped as the Keras model's, through one engine."""
    from bnn2fpga import reference
    from bnn2fpga.project import load_design
    from bnn2fpga.sim import load_engine

    graph = load_design(out)
    want = graph.input.out.shape
    if x.shape == want:
        raise CLIError(f"input array has the shape of one frame {x.shape}; stack frames as "
                       f"(N, {', '.join(map(str, want))})")
    codes = reference.quantize_input(graph.input, x)
    if "verilog_dir" in options:  # RTL that Vivado/Vitis HLS exported from our HLS top
        from bnn2fpga.sim.rtl import simulate_hls_export

        verilog_dir = options.pop("verilog_dir")
        if not verilog_dir.is_dir():
            raise CLIError(f"--hls-verilog {str(verilog_dir)!r} is not a directory (expected "
                           "the exported solution1/impl/verilog or syn/verilog)")
        options["top"] = options["top"] or graph.meta.get("top")
        result = simulate_hls_export(out, graph, codes, verilog_dir, **options)
    else:
        result = load_engine(engine)(out, graph, codes, **options)
    y = reference.output_codes_to_float(graph, result.codes)
    shape = graph.meta.get("keras_output_shape") or list(graph.output.out.shape)
    return y.reshape((len(x), *shape)).astype(np.float32), result.summary


def cmd_simulate(args: argparse.Namespace) -> int:
    out = Path(args.project)
    x = load_frames(args.input)
    options: dict = {}
    rtl_only = {"--stall-prob": args.stall_prob, "--trace": args.trace,
                "--hang-cycles": args.hang_cycles, "--hls-verilog": args.hls_verilog}
    if args.engine == "rtl":
        options = {"stall_prob": args.stall_prob, "trace": args.trace,
                   "hang_cycles": args.hang_cycles, "seed": args.seed}
        if args.hls_verilog:
            options.update(verilog_dir=Path(args.hls_verilog), in_port=args.in_port,
                           out_port=args.out_port, start=args.start, top=args.hls_top)
    elif any(rtl_only.values()):
        used = [k for k, v in rtl_only.items() if v]
        raise CLIError(f"{', '.join(used)} apply to --engine rtl only")
    if not 0.0 <= args.stall_prob < 1.0:
        raise CLIError(f"--stall-prob {args.stall_prob}: expected 0 <= P < 1")
    start = time.perf_counter()
    y, summary = simulate_frames(out, x, args.engine, **options)
    seconds = time.perf_counter() - start
    np.save(args.output, y)
    print(f"simulated {len(x)} frames with engine {args.engine} in {seconds:.2f} s "
          f"-> {args.output}")
    if args.engine == "rtl":
        from bnn2fpga.report import RTL_SIM_JSON

        path = out / RTL_SIM_JSON
        path.write_text(json.dumps(summary, indent=1) + "\n")
        print(rtl_summary_text(summary))
        print(f"full figures and the run's conditions: {path}")
    return 0


def rtl_summary_text(summary: dict) -> str:
    """One line for a person: latency, cycles per frame and frames/s of an RTL run, and its
    stall probability when it had stalls."""
    def num(v: float | None, fmt: str) -> str:
        return "?" if v is None else format(v, fmt)

    stall = (summary.get("conditions") or {}).get("stall_prob")
    text = (f"RTL: first-frame latency {num(summary.get('first_frame_latency_cycles'), ',')} "
            f"cycles, {num(summary.get('steady_state_cycles_per_frame'), ',.1f')} cycles "
            f"per frame, {num(summary.get('fps'), ',.1f')} frames/s at "
            f"{summary.get('clock_ns')} ns")
    if stall:
        text += f" (with random stalls, probability {stall})"
    return text


# ----------------------------------------------------------------------------------------
# report
# ----------------------------------------------------------------------------------------


def cmd_report(args: argparse.Namespace) -> int:
    from bnn2fpga.project import load_design
    from bnn2fpga.report import write_report

    load_design(Path(args.project))  # a clear error for a non-project
    json_path, html_path = write_report(Path(args.project), synth=args.synth, part=args.part,
                                        clock_ns=args.clock_ns)
    print(f"report: {html_path} ({json_path})")
    return 0


# ----------------------------------------------------------------------------------------
# demo
# ----------------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    from bnn2fpga import zoo
    from bnn2fpga.project import check_output_dir
    from bnn2fpga.report import RTL_SIM_JSON
    from bnn2fpga.sim import ENGINES

    if args.out_deprecated is not None:
        if args.output is not None:
            raise CLIError("give the project directory once: -o/--output (--out is its "
                           "deprecated old name)")
        print("bnn2fpga demo: warning: --out is deprecated; use -o/--output",
              file=sys.stderr)
    out = Path(args.output or args.out_deprecated or DEMO_OUT)
    check_output_dir(out, args.force)
    engines = args.engine or list(ENGINES)
    print(f"[demo] training a {args.model} BNN on scikit-learn digits (seed {args.seed}) ...")
    data = zoo.digits_data(args.seed)
    if args.model == "mlp":
        model = zoo.train_qkeras_mlp(args.seed, data)
        x = data.x_test.reshape(len(data.x_test), -1)
        scale_args: list[str] = []
    else:
        model = zoo.train_larq_cnn(args.seed, data)
        x = data.x_test
        scale_args = ["--input-scale", repr(zoo.DIGITS_INPUT_SCALE),
                      "--input-bits", str(zoo.DIGITS_INPUT_BITS)]
    keras_out = model.predict(x, verbose=0)
    with tempfile.TemporaryDirectory() as tmp:
        model_path = Path(tmp) / f"digits_{args.model}.keras"
        with warnings.catch_warnings():  # QKeras quantizers serialised as "constraints"
            warnings.simplefilter("ignore", UserWarning)
            model.save(model_path)
        x_path = Path(tmp) / "x_test.npy"
        np.save(x_path, x)
        compile_args = ["-o", str(out), *scale_args, *(["--force"] if args.force else [])]
        # the trained model is kept in the project, where design.json names it as the source
        kept = out / model_path.name
        print(f"[demo] bnn2fpga compile {kept} {' '.join(compile_args)}")
        compile_ns = build_parser().parse_args(["compile", str(model_path), *compile_args])
        if cmd_compile(compile_ns, keep_model_as=model_path.name) != 0:
            return 1
        keras_acc = float(np.mean(keras_out.argmax(-1) == data.y_test))
        print(f"[demo] Keras accuracy        {keras_acc:.4f} on {len(x)} test digits")
        reference_out = None
        for engine in engines:
            start = time.perf_counter()
            y, summary = simulate_frames(out, np.load(x_path), engine)
            seconds = time.perf_counter() - start
            acc = float(np.mean(y.argmax(-1) == data.y_test))
            agree = float(np.mean(y.argmax(-1) == keras_out.argmax(-1)))
            exact = float(np.max(np.abs(y - keras_out)))
            if engine == "reference":
                reference_out, same = y, ""
            elif reference_out is not None:
                same = "  bit-exact vs reference: " + \
                    ("yes" if np.array_equal(y, reference_out) else "NO")
            else:
                same = ""
            print(f"[demo] {engine:<9} accuracy {acc:.4f}  argmax agreement with Keras "
                  f"{agree:.4f}  max |output - Keras| {exact:.2e}{same}  ({seconds:.1f} s)")
            if engine == "rtl":
                (out / RTL_SIM_JSON).write_text(json.dumps(summary, indent=1) + "\n")
                print(f"[demo]           {rtl_summary_text(summary)} ({out / RTL_SIM_JSON})")
    from bnn2fpga.report import write_report

    _, html = write_report(out)
    print(f"[demo] project in {out}/ (design.json, plan.json, {model_path.name}, hls/, rtl/); "
          f"report: {html}")
    return 0


# ----------------------------------------------------------------------------------------
# parser
# ----------------------------------------------------------------------------------------


DEMO_OUT = "bnn2fpga-demo"


def package_version() -> str:
    """The installed distribution's version (importlib.metadata), else the package's."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bnn2fpga")
    except PackageNotFoundError:
        from bnn2fpga import __version__

        return __version__


def build_parser() -> argparse.ArgumentParser:
    from bnn2fpga.backends import DEFAULT_CLOCK_NS, DEFAULT_PART
    from bnn2fpga.passes.formats import DEFAULT_PRECISION

    p = argparse.ArgumentParser(
        prog="bnn2fpga",
        description="Compile trained binarized neural networks (QKeras, Larq) into "
                    "bit-exact FPGA accelerators: Vivado/Vitis HLS projects and "
                    "SystemVerilog with a Verilator cycle simulator.")
    p.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser("compile", help="compile a Keras model into a project directory",
                       description="Read a trained Keras model (.h5 or .keras), lower it to "
                       "the integer hardware IR and write OUT/design.json plus the HLS and "
                       "RTL projects.")
    c.add_argument("model", help="Keras model file (.h5 or .keras)")
    c.add_argument("-o", "--output", required=True, metavar="OUT", help="project directory")
    c.add_argument("--force", action="store_true",
                   help="replace OUT even if it is a non-empty directory that bnn2fpga did "
                   "not write")
    c.add_argument("--input-scale", type=float, metavar="S",
                   help="real-valued input format: x = k * S (needed when the model has no "
                   "input quantizer)")
    c.add_argument("--input-bits", type=int, metavar="B",
                   help="bits of the unsigned input code k, 0 <= k < 2^B")
    c.add_argument("--part", default=DEFAULT_PART,
                   help=f"FPGA part for the HLS project and estimates (default {DEFAULT_PART})")
    c.add_argument("--clock-ns", type=float, default=DEFAULT_CLOCK_NS,
                   help=f"clock period in ns (default {DEFAULT_CLOCK_NS})")
    c.add_argument("--folding", metavar="FILE.json",
                   help='manual folding: {"layer": {"pe": P, "simd": S}, ...}')
    c.add_argument("--target-fps", type=float, metavar="F",
                   help="choose PE/SIMD per layer to reach F frames/s at the clock on the "
                   "part, at the lowest resource cost")
    c.add_argument("--objective", choices=["balanced", "lut"], default="balanced",
                   help="with --target-fps: minimise the largest fraction of any device "
                   "resource (balanced, default) or LUTs alone (lut)")
    c.add_argument("--cycles", choices=["worst", "expected"], default="worst",
                   help="with --target-fps: budget a FracBNN PGConv2D at its worst case "
                   "(worst, default: every gate on, the LSB pass for every output group) or "
                   "at its expected cycles (expected: at the gate density measured on the "
                   "--calibration frames; needs --calibration)")
    c.add_argument("--top", default="bnn_top", help="name of the top function/module")
    c.add_argument("--control", choices=["ap_ctrl_none", "axilite"], default="ap_ctrl_none",
                   help="HLS block-level control: ap_ctrl_none (default; free-running, one "
                   "frame per call) or axilite (AXI-lite start/done and a frame count, "
                   "numReps, per call)")
    c.add_argument("--calibration", metavar="X.npy",
                   help="float frames (N, *input_shape) from which the fixed-point format "
                   "of every real-valued tensor is chosen (largest |value| times a margin "
                   "of 2), and on which the design's agreement with Keras is measured")
    c.add_argument("--precision", type=int, default=DEFAULT_PRECISION, metavar="P",
                   help="fraction bits of every real-valued tensor chosen from calibration "
                   f"(default {DEFAULT_PRECISION}); float layers' weights get P + 2 bits "
                   "(at most 16), constant multipliers P + 2 significant bits")
    c.add_argument("--formats", metavar="F.json",
                   help='per-tensor fixed-point formats {"tensor": [bits, frac], ...}, '
                   "overriding the calibrated ones (names as compile prints them)")
    c.add_argument("--skip", action="append", choices=["hls", "rtl"],
                   help="do not write this backend's project (repeatable)")
    c.set_defaults(func=cmd_compile)

    s = sub.add_parser("simulate", help="run input frames through a compiled project",
                       description="Run frames X.npy (N, *input_shape, float) through the "
                       "design and write the outputs Y.npy (float32, shaped as the Keras "
                       "model's outputs).")
    s.add_argument("project", metavar="OUT", help="compiled project directory")
    s.add_argument("--input", required=True, metavar="X.npy", help="input frames")
    s.add_argument("--output", required=True, metavar="Y.npy", help="where to write outputs")
    s.add_argument("--engine", default="reference", choices=["reference", "csim", "rtl"],
                   help="reference: numpy bit-exact model; csim: HLS C simulation with g++; "
                   "rtl: Verilator cycle-accurate simulation (default reference)")
    s.add_argument("--stall-prob", type=float, default=0.0, metavar="P",
                   help="rtl: probability of a random stall on the input and output streams")
    s.add_argument("--trace", metavar="FILE.fst", help="rtl: write an FST waveform")
    s.add_argument("--hang-cycles", type=int, metavar="K",
                   help="rtl: report a hang (naming the stopped unit) after K cycles without "
                   "progress (default: from the design's slowest unit)")
    s.add_argument("--seed", type=int, default=1, help="rtl: seed of the random stalls")
    s.add_argument("--hls-verilog", metavar="DIR",
                   help="rtl: simulate the Verilog that Vivado/Vitis HLS exported from this "
                   "project's HLS top (e.g. OUT/hls/<prj>/solution1/impl/verilog) instead of "
                   "bnn2fpga's own RTL")
    s.add_argument("--hls-top", metavar="MODULE",
                   help="with --hls-verilog: the exported top module (default: the compile's "
                   "--top)")
    s.add_argument("--in-port", default="s_axis",
                   help="with --hls-verilog: input stream port prefix (default s_axis)")
    s.add_argument("--out-port", default="m_axis",
                   help="with --hls-verilog: output stream port prefix (default m_axis)")
    s.add_argument("--start", metavar="PORT",
                   help="with --hls-verilog: hold PORT at 1 (ap_start, for ap_ctrl_hs)")
    s.set_defaults(func=cmd_simulate)

    r = sub.add_parser("report", help="write OUT/report.html and OUT/report.json",
                       description="Per-layer cycles and resources (estimated, and measured "
                       "where simulations or synthesis ran), bottleneck and plots.")
    r.add_argument("project", metavar="OUT", help="compiled project directory")
    r.add_argument("--synth", action="store_true",
                   help="synthesize each unit with yosys (synth_xilinx) for measured LUT/FF")
    r.add_argument("--part", help="device for the percentages (default: the compile part)")
    r.add_argument("--clock-ns", type=float, help="clock (default: the compile clock)")
    r.set_defaults(func=cmd_report)

    d = sub.add_parser("demo", help="train a BNN on digits, compile and simulate it",
                       description="Train a small seeded BNN on scikit-learn's bundled "
                       "digits, compile it, simulate it, and compare with Keras.")
    d.add_argument("-o", "--output", metavar="OUT",
                   help=f"project directory (default ./{DEMO_OUT})")
    d.add_argument("--out", dest="out_deprecated", help=argparse.SUPPRESS)  # old name
    d.add_argument("--force", action="store_true",
                   help="replace OUT even if it is a non-empty directory that bnn2fpga did "
                   "not write")
    d.add_argument("--model", choices=["mlp", "cnn"], default="mlp",
                   help="mlp: QKeras MLP; cnn: Larq CNN (default mlp)")
    d.add_argument("--engine", action="append", choices=["reference", "csim", "rtl"],
                   help="engines to run (repeatable; default: all installed)")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except _user_errors() as e:
        print(f"bnn2fpga {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
