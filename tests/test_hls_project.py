"""The HLS project writer: build_prj.tcl (parsed by tclsh with the Vivado commands stubbed),
options, error messages, the testbench's exit status, the csim build cache, static code."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bnn2fpga import reference, testing
from bnn2fpga.backends import CompileOptions, load_backend
from bnn2fpga.backends.hls import write_project
from bnn2fpga.ir import Graph, IRError
from bnn2fpga.sim import load_engine
from bnn2fpga.sim.csim import CSimError, ap_types_dir, simulate

VIVADO_COMMANDS = ["open_project", "set_top", "add_files", "open_solution", "set_part",
                   "create_clock", "config_array_partition", "csim_design", "csynth_design",
                   "cosim_design", "export_design"]


def small_graph(seed: int = 0) -> Graph:
    return testing.random_conv_graph(np.random.default_rng(seed), h=4, w=4, c=2, out_ch=2,
                                     pe=2, simd=2)


def written(tmp_path: Path, graph: Graph, **options) -> Path:
    out = tmp_path / "hls"
    out.mkdir(parents=True)
    write_project(graph, out, CompileOptions(**options))
    return out


def run_tcl(project: Path, *args: str, vitis: bool = False) -> list[list[str]]:
    """Source build_prj.tcl in tclsh with every Vivado command stubbed to log its call
    (``vitis``: config_array_partition rejects -maximum_size, as Vitis HLS does)."""
    tclsh = shutil.which("tclsh")
    if tclsh is None:
        pytest.skip("tclsh is not installed (CI: apt-get install tcl)")
    # one tab-separated field per Tcl argument
    stubs = "".join(f"proc {c} {{args}} {{ puts \"CALL\\t{c}\\t[join $args \\t]\" }}\n"
                    for c in VIVADO_COMMANDS)
    if vitis:
        stubs += ('proc config_array_partition {args} { puts "CALL\\tconfig_array_partition'
                  '\\trejected"; error "unknown option -maximum_size" }\n')
    driver = (stubs + "rename exit real_exit\n"
              "proc exit {args} { puts \"CALL\\texit\\t$args\"; real_exit 0 }\n"
              f"set argv [list {' '.join(args)}]\nsource build_prj.tcl\nreal_exit 0\n")
    proc = subprocess.run([tclsh], input=driver, cwd=project, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return [[f for f in line.split("\t")[1:] if f] for line in proc.stdout.splitlines()
            if line.startswith("CALL\t")]


def test_build_prj_tcl_names_part_clock_top_and_runs_every_step(tmp_path: Path) -> None:
    project = written(tmp_path, small_graph(), part="xczu3eg-sbva484-1-e", clock_ns=4.0,
                      top="digits_top", control="axilite")
    text = (project / "build_prj.tcl").read_text()
    assert 'set part "xczu3eg-sbva484-1-e"' in text
    assert "set clock_ns 4.0" in text and 'set top "digits_top"' in text
    calls = run_tcl(project)
    names = [c[0] for c in calls]
    assert names == ["open_project", "set_top", "add_files", "add_files", "add_files",
                     "open_solution", "set_part", "create_clock", "config_array_partition",
                     "csim_design", "csynth_design", "cosim_design", "export_design", "exit"]
    assert calls[-1] == ["exit"]
    assert ["set_top", "digits_top"] in calls
    assert ["set_part", "xczu3eg-sbva484-1-e"] in calls
    assert ["create_clock", "-period", "4.0", "-name", "default"] in calls
    # an explicit IP version (AR 76960) and the complete-partition limit raised (Vivado HLS)
    assert ["export_design", "-format", "ip_catalog", "-version", "1.0.0"] in calls
    assert ["config_array_partition", "-maximum_size", "4096"] in calls
    # co-simulation runs 2 frames by default (testbench arguments DATA_DIR MAX_FRAMES)
    assert ["cosim_design", "-argv", "tb_data 2"] in calls
    assert ["csim_design"] in calls
    assert any(c[:2] == ["add_files", "firmware/digits_top.cpp"] for c in calls)
    assert ["add_files", "-tb", "tb_data"] in calls


@pytest.mark.parametrize("args", [("cosim=0", "export=0"), ('"cosim=0 export=0"',)])
def test_build_prj_tcl_defaults_and_step_selection(tmp_path: Path, args: tuple[str]) -> None:
    project = written(tmp_path, small_graph())
    calls = run_tcl(project, *args)
    assert ["set_part", "xc7z020clg400-1"] in calls
    assert ["create_clock", "-period", "10.0", "-name", "default"] in calls
    names = [c[0] for c in calls]
    assert "csim_design" in names and "csynth_design" in names
    assert "cosim_design" not in names and "export_design" not in names


def test_build_prj_tcl_rejects_unknown_arguments(tmp_path: Path) -> None:
    project = written(tmp_path, small_graph())
    for bad in ("synthesis=1", "cosim_frames=0", "cosim_frames=two", "cosim=yes"):
        assert run_tcl(project, bad) == [["exit", "1"]], bad


def test_build_prj_tcl_cosim_frames_and_vitis(tmp_path: Path) -> None:
    """cosim_frames=N reaches the testbench; on Vitis HLS (which rejects
    -maximum_size) the script goes on to every step."""
    project = written(tmp_path, small_graph())
    calls = run_tcl(project, "csim=0", "cosim_frames=8", vitis=True)
    assert ["cosim_design", "-argv", "tb_data 8"] in calls
    assert ["config_array_partition", "rejected"] in calls
    names = [c[0] for c in calls]
    assert names[-4:] == ["csynth_design", "cosim_design", "export_design", "exit"]
    assert "csim_design" not in names


def test_partition_limit_follows_the_widest_complete_partition() -> None:
    """At least 4096 (hls4ml's value), more where PE, SIMD or PE x NT thresholds need it."""
    from bnn2fpga.backends.hls import partition_limit
    from bnn2fpga.plan import Unit

    def mvtu(pe: int, simd: int, nt: int) -> Unit:
        return Unit("u", "bnn_mvtu", "dense", {"PE": pe, "SIMD": simd, "NT": nt}, "mvtu")

    assert partition_limit([]) == 4096
    assert partition_limit([mvtu(2, 32, 1), mvtu(5000, 1, 1)]) == 5000
    assert partition_limit([mvtu(3, 4090, 1)]) == 4096
    assert partition_limit([mvtu(1500, 4, 3)]) == 4500


@pytest.mark.parametrize("control, pragma", [
    ("ap_ctrl_none", "#pragma HLS INTERFACE ap_ctrl_none port=return"),
    ("axilite", "#pragma HLS INTERFACE s_axilite port=return bundle=control"),
])
def test_control_option(tmp_path: Path, control: str, pragma: str) -> None:
    project = written(tmp_path, small_graph(), control=control)
    top = (project / "firmware" / "bnn_top.cpp").read_text()
    assert pragma in top
    assert "#pragma HLS INTERFACE axis port=s_axis" in top
    assert "#pragma HLS INTERFACE axis port=m_axis" in top
    assert "#pragma HLS DATAFLOW" in top


@pytest.mark.parametrize("options, words", [
    ({"control": "axi"}, ["control", "axi", "ap_ctrl_none", "axilite"]),
    ({"top": "1top"}, ["top", "1top"]),
    ({"clock_ns": 0.0}, ["clock_ns"]),
])
def test_bad_options_are_named(tmp_path: Path, options: dict, words: list[str]) -> None:
    with pytest.raises(IRError) as err:
        written(tmp_path, small_graph(), **options)
    for word in words:
        assert word in str(err.value)


def test_bad_folding_names_layer_and_option(tmp_path: Path) -> None:
    g = testing.random_dense_graph(np.random.default_rng(0), fan_in=40, out_ch=8, pe=3,
                                   simd=7)
    with pytest.raises(IRError) as err:
        written(tmp_path, g)
    msg = str(err.value)
    assert "'dense'" in msg and "PE=3" in msg and "SIMD=7" in msg


def test_float_stage_graph_is_rejected(tmp_path: Path) -> None:
    from bnn2fpga.ir import Sign

    g = small_graph()
    g.nodes.append(Sign("sign", [g.output.name], g.output.out))
    with pytest.raises(IRError, match="float-stage"):
        written(tmp_path, g)


def test_generated_code_is_static(tmp_path: Path) -> None:
    """No dynamic memory, no recursion in the firmware: fixed-size arrays only."""
    project = written(tmp_path, testing.random_cnn_graph(np.random.default_rng(0)))
    sources = list((project / "firmware").rglob("*.h")) + list(
        (project / "firmware").rglob("*.cpp"))
    assert len(sources) >= 8
    for path in sources:
        code = re.sub(r"//[^\n]*", "", path.read_text())
        for banned in ("malloc", "free(", "new ", "delete ", "std::vector", "std::deque"):
            assert banned not in code, f"{path.name}: {banned}"


def test_csim_cache_and_testbench_exit_status(tmp_path: Path) -> None:
    graph = small_graph(3)
    project = written(tmp_path, graph)
    codes = testing.random_input_codes(np.random.default_rng(1), graph, 4)
    first = simulate(tmp_path, graph, codes)
    second = simulate(tmp_path, graph, codes)
    want = reference.execute(graph, codes)[graph.output.name]
    assert np.array_equal(first.codes, want) and np.array_equal(second.codes, want)
    assert first.summary["cached_build"] is False
    assert second.summary["cached_build"] is True and second.summary["build_seconds"] == 0
    assert len(list((tmp_path / ".cache" / "csim").iterdir())) == 1
    empty = simulate(tmp_path, graph, codes[:0])
    assert empty.codes.shape == (0, *graph.output.out.shape)

    # the testbench compares with tb_data/expected.txt: 0 on a match, 1 on a mismatch
    exe = first.summary["executable"]
    ok = subprocess.run([exe, str(project / "tb_data")], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    bad = tmp_path / "bad"
    shutil.copytree(project / "tb_data", bad)
    rows = (bad / "expected.txt").read_text().splitlines()
    first_row = rows[0].split()
    first_row[0] = str(1 - int(first_row[0]))
    (bad / "expected.txt").write_text("\n".join([" ".join(first_row), *rows[1:]]) + "\n")
    mismatch = subprocess.run([exe, str(bad)], capture_output=True, text=True)
    assert mismatch.returncode == 1 and "expected" in mismatch.stderr


def test_csim_refuses_a_project_of_another_graph(tmp_path: Path) -> None:
    written(tmp_path, small_graph(0))
    other = small_graph(1)
    with pytest.raises(CSimError, match="another design"):
        simulate(tmp_path, other, testing.random_input_codes(np.random.default_rng(0),
                                                             other, 1))


def test_csim_rejects_bad_codes(tmp_path: Path) -> None:
    graph = small_graph()
    written(tmp_path, graph)
    with pytest.raises(CSimError, match="shape"):
        simulate(tmp_path, graph, np.zeros((2, 3, 3, 2), dtype=np.int64))
    with pytest.raises(CSimError, match="0..1"):
        simulate(tmp_path, graph, np.full((1, 4, 4, 2), 2, dtype=np.int64))


def test_registry_and_project_layout(tmp_path: Path) -> None:
    """What the CLI does: backends.load_backend('hls') into OUT/hls, then the csim engine
    on OUT, through the lead's project writer."""
    from bnn2fpga.project import write_project as write_whole_project

    graph = testing.random_dense_graph(np.random.default_rng(5), fan_in=20, out_ch=4, pe=2,
                                       simd=5, output="accumulator")
    assert load_backend("hls") is write_project
    out = tmp_path / "OUT"
    write_whole_project(graph, out, CompileOptions(), backends=["hls"])
    for rel in ("hls/firmware/bnn_top.cpp", "hls/firmware/bnn_top.h", "hls/bnn_top_test.cpp",
                "hls/build_prj.tcl", "hls/README.md", "hls/tb_data/inputs.txt",
                "hls/tb_data/expected.txt", "hls/firmware/bnn2fpga/mvtu.h",
                "hls/firmware/params/dense.h"):
        assert (out / rel).is_file(), rel
    codes = testing.random_input_codes(np.random.default_rng(6), graph, 5)
    result = load_engine("csim")(out, graph, codes)
    assert np.array_equal(result.codes, reference.execute(graph, codes)["dense"])


def test_ap_types_located_once() -> None:
    assert (ap_types_dir() / "ap_int.h").is_file()


def test_batched_csim_needs_distinct_tops(tmp_path: Path) -> None:
    from bnn2fpga.sim.csim import simulate_many

    jobs = []
    for i in range(2):
        graph = small_graph(i)
        written(tmp_path / f"p{i}", graph)  # both keep the default top name
        jobs.append((tmp_path / f"p{i}", graph,
                     testing.random_input_codes(np.random.default_rng(i), graph, 1)))
    with pytest.raises(CSimError, match="distinct top names"):
        simulate_many(jobs, cache_dir=tmp_path / "cache")


def test_axi_streams_stay_narrow(tmp_path: Path) -> None:
    """A 1100-wide input vector and a 200 x 12-bit output beat reach the ports in beats of at
    most 1024 bits (element counts that divide the internal beats)."""
    import json

    g = testing.random_dense_graph(np.random.default_rng(0), fan_in=1100, out_ch=200, pe=200,
                                   simd=1100, output="accumulator")
    project = written(tmp_path, g)
    manifest = json.loads((project / "manifest.json").read_text())
    assert manifest["input"]["elems"] == 550 and manifest["input"]["axi_w"] == 552
    assert manifest["output"]["elems"] * manifest["output"]["bits"] <= 1024
    assert 200 % manifest["output"]["elems"] == 0
    assert "#define AP_INT_MAX_W" in (project / "firmware" / "bnn_top.h").read_text()


def test_branching_graph_is_refused_with_the_layer_name(tmp_path: Path) -> None:
    from bnn2fpga.ir import Reshape

    g = small_graph()
    g.nodes.append(Reshape("side", ["input"], g.input.out.with_shape((32,))))
    # the input's fork is fine now (issue 12); the dangling conv is not: one output stream
    with pytest.raises(IRError, match=r"layer 'conv': its tensor is read by no layer"):
        written(tmp_path, g)


def test_axilite_top_takes_a_frame_count_and_csim_batches_frames(tmp_path: Path) -> None:
    """--control axilite: numReps frames per call, bit-exact in C-sim whatever the batch."""
    graph = testing.random_cnn_graph(np.random.default_rng(2))
    project = written(tmp_path, graph, control="axilite")
    top = (project / "firmware" / "bnn_top.cpp").read_text()
    assert "#pragma HLS INTERFACE s_axilite port=numReps bundle=control" in top
    assert "unsigned numReps) {" in (project / "firmware" / "bnn_top.h").read_text() + top
    # every process gets the frame count: each unit, and both AXI adapters
    calls = process_calls(top)
    assert len(calls) >= 8 and all(c.endswith(", numReps);") for c in calls), calls
    assert top.count("#pragma HLS INLINE off") == len(calls) - 2
    codes = testing.random_input_codes(np.random.default_rng(3), graph, 7)
    result = simulate(tmp_path, graph, codes)  # 7 frames in calls of 4 and 3
    assert np.array_equal(result.codes, reference.execute(graph, codes)[graph.output.name])
    exe = result.summary["executable"]
    for args, line in ((["5", "3"], "5 frames in 2 calls"), (["0", "8"], "8 frames in 1 calls"),
                       (["2"], "2 frames in 1 calls"), ([], "8 frames in 2 calls")):
        run = subprocess.run([exe, str(project / "tb_data"), *args], capture_output=True,
                             text=True)
        assert run.returncode == 0 and line in run.stdout, (args, run.stdout, run.stderr)
    bad = subprocess.run([exe, str(project / "tb_data"), "0", "0"], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "FRAMES_PER_CALL" in bad.stderr


def test_free_running_top_keeps_one_frame_per_call(tmp_path: Path) -> None:
    graph = small_graph(4)
    project = written(tmp_path, graph)
    top = (project / "firmware" / "bnn_top.cpp").read_text()
    # one frame per call: every process (each unit's function, both adapters) is given 1
    calls = process_calls(top)
    assert len(calls) >= 4 and all(c.endswith(", 1);") for c in calls), calls
    assert "numReps" not in top.split("void bnn_top(")[1]
    codes = testing.random_input_codes(np.random.default_rng(5), graph, 3)
    result = simulate(tmp_path, graph, codes)
    exe = result.summary["executable"]
    run = subprocess.run([exe, str(project / "tb_data"), "3"], capture_output=True, text=True)
    assert run.returncode == 0 and "3 frames in 3 calls" in run.stdout
    extra = subprocess.run([exe, str(project / "tb_data"), "3", "2"], capture_output=True,
                           text=True)
    assert extra.returncode == 2


def process_calls(top: str) -> list[str]:
    """The calls of the DATAFLOW region (one per process), as written in the top."""
    body = top.split("#pragma HLS DATAFLOW", 1)[1]
    return [ln.strip() for ln in body.splitlines() if ln.strip().endswith(");")
            and "(" in ln and not ln.strip().startswith("hls::stream")]


def window_storage(code: str) -> dict[str, str]:
    """unit function -> the BnnStorage of its SlidingWindow's line buffer."""
    return dict(re.findall(r"void (\w+)\(hls::stream[^\n]*\n(?:[^\n]*\n){0,3}?\s*"
                           r"SlidingWindow<[^>]*, (BNN_STORAGE_\w+)>\(in, out, numReps\);",
                           code))


def bindings(code: str) -> dict[str, tuple[str, str]]:
    """variable -> (BIND_STORAGE type/impl words, RESOURCE core) of the generated top."""
    vitis = dict(re.findall(r"#pragma HLS BIND_STORAGE variable=(\S+) (type=\S+ impl=\S+)",
                            code))
    vivado = dict(re.findall(r"#pragma HLS RESOURCE variable=(\S+) core=(\S+)", code))
    assert set(vitis) == set(vivado)
    guarded = re.findall(r"#ifdef __VITIS_HLS__\n#pragma HLS BIND_STORAGE variable=(\S+) .*\n"
                         r"#else\n#pragma HLS RESOURCE variable=(\S+) .*\n#endif", code)
    assert sorted(a for a, b in guarded if a == b) == sorted(vitis)
    return {v: (vitis[v], vivado[v]) for v in vitis}


@pytest.mark.parametrize("part", ["xc7z020clg400-1", "xczu7ev-ffvc1156-2-e"])
def test_memories_are_bound_as_the_estimator_maps_them(tmp_path: Path, part: str) -> None:
    """Each MVTU's weights and thresholds, its input buffer, every sliding window's line
    buffer and every FIFO carry the binding of estimate.memory_styles for the part (the
    same styles estimate() reports)."""
    from bnn2fpga.backends.hls import BUFFER_STORAGE, FIFO_BINDINGS, ROM_BINDINGS
    from bnn2fpga.estimate import estimate, memory_styles
    from bnn2fpga.plan import build_plan

    graph = testing.random_cnn_graph(np.random.default_rng(0))
    project = written(tmp_path, graph, part=part)
    code = (project / "firmware" / "bnn_top.cpp").read_text()
    found = bindings(code)
    plan = build_plan(graph)
    styles = memory_styles(plan, part)
    reported = {u["name"]: {m["name"]: m["style"] for m in u["memories"]}
                for layer in estimate(graph, part=part, clock_ns=10.0).to_json()["layers"]
                for u in layer["units"]}
    assert reported == styles
    want: dict[str, tuple[str, str]] = {}
    for u in plan.units:
        if u.kind == "mvtu":
            stem = f"bnn_top_{u.layer}"
            kind, impl, core = ROM_BINDINGS[styles[u.name]["weights"]]
            want[f"{stem}_w"] = (f"type={kind} impl={impl}", core)
            if u.params["NT"]:
                kind, impl, core = ROM_BINDINGS[styles[u.name]["thresholds"]]
                want[f"{stem}_t.m"] = (f"type={kind} impl={impl}", core)
    for s in plan.streams:
        if s.depth:
            kind, impl, core = FIFO_BINDINGS[styles[s.fifo]["storage"]]
            want[s.name] = (f"type={kind} impl={impl}", core)
    assert found == want
    windows = {u.name: BUFFER_STORAGE[styles[u.name]["line_buffer"]] for u in plan.units
               if u.kind == "swu"}
    assert windows and window_storage(code) == windows


def test_a_different_mapping_changes_every_binding(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer takes the styles from memory_styles alone: force every memory into block
    RAM and every pragma, the input buffers' and the line buffers' storage follow; each
    storage compiles (swu.h's SwuBuffer, mvtu.h's MvtuBuffer) and stays bit-exact in
    C-sim."""
    from bnn2fpga.backends import hls
    from bnn2fpga.sim.csim import simulate_many

    real = hls.memory_styles
    jobs = []
    for style in ("register", "lutram", "bram", "uram"):
        def forced(plan, part, _style=style):
            out = real(plan, part)
            for mems in out.values():
                for name in mems:
                    if mems[name] != "none":
                        mems[name] = ("bram" if name not in ("input_buffer", "line_buffer")
                                      else _style)
            return out

        monkeypatch.setattr(hls, "memory_styles", forced)
        graph = testing.random_cnn_graph(np.random.default_rng(7))
        project = written(tmp_path / style, graph, top=f"t_{style}")
        code = (project / "firmware" / f"t_{style}.cpp").read_text()
        assert set(bindings(code).values()) == {("type=rom_1p impl=bram", "ROM_1P_BRAM"),
                                                ("type=fifo impl=bram", "FIFO_BRAM")}
        assert f"BNN_STORAGE_{style.upper()} >" in code
        lbs = window_storage(code)
        assert lbs and set(lbs.values()) == {f"BNN_STORAGE_{style.upper()}"}
        jobs.append((tmp_path / style, graph,
                     testing.random_input_codes(np.random.default_rng(8), graph, 3)))
    for (_, graph, codes), result in zip(jobs, simulate_many(jobs, cache_dir=tmp_path / "c"),
                                         strict=True):
        assert np.array_equal(result.codes, reference.execute(graph, codes)[graph.output.name])
