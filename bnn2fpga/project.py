"""A compiled project directory: OUT/design.json (the hardware IR), OUT/plan.json (its one
hardware plan, ``bnn2fpga.plan``) plus what the backends write from that plan.

Projects are written atomically: everything goes into a sibling temporary directory that
replaces OUT only when every backend has succeeded, so a failed compile leaves no half
project.  A non-empty OUT that is not a bnn2fpga project is never replaced without --force.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from bnn2fpga import __version__
from bnn2fpga.backends import CompileOptions, load_backend
from bnn2fpga.ir import Graph, IRError, graph_from_json, graph_to_json
from bnn2fpga.plan import build_plan, plan_to_json

MARKER = ".bnn2fpga-project"
DESIGN = "design.json"
PLAN = "plan.json"


class ProjectError(ValueError):
    """An output directory that cannot be written or a project that cannot be read."""


def is_project(path: Path) -> bool:
    return (path / MARKER).is_file()


def check_output_dir(out: Path, force: bool) -> None:
    """Refuse, before anything is written, an OUT that would lose someone's files."""
    if out.exists() and not out.is_dir():
        raise ProjectError(f"output path {str(out)!r} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not is_project(out) and not force:
        raise ProjectError(f"output directory {str(out)!r} is not empty and is not a bnn2fpga "
                           "project; choose an empty or new directory, or pass --force to "
                           "replace its contents")


def write_project(graph: Graph, out: Path, options: CompileOptions, *, force: bool = False,
                  backends: Iterable[str] = ("hls", "rtl"),
                  keep: dict[str, Path] | None = None) -> list[str]:
    """Write design.json and each available backend's output into OUT, atomically.

    ``keep``: files copied into the new project, by name relative to OUT (e.g. the source
    model, when it lives in OUT: replacing OUT would otherwise delete it).  Returns the
    backends that wrote something."""
    out = Path(out).absolute()
    check_output_dir(out, force)
    keep = dict(keep or {})
    reserved = {MARKER, DESIGN, *backends}
    for name in keep:
        if Path(name).is_absolute() or ".." in Path(name).parts or \
                Path(name).parts[0] in reserved:
            raise ProjectError(f"cannot keep {name!r} in the project {str(out)!r}: the "
                               f"compile writes {', '.join(sorted(reserved))} there; move it")
    created = [p for p in reversed(out.parents) if not p.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    graph.meta.update({"part": options.part, "clock_ns": options.clock_ns, "top": options.top,
                       "control": options.control, "bnn2fpga_version": __version__})
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    written = []
    try:
        (tmp / MARKER).write_text("bnn2fpga project: this directory is generated and may be "
                                  "replaced by `bnn2fpga compile`\n")
        for name, src in keep.items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, tmp / name)
        try:
            plan = build_plan(graph, options.top)
        except IRError as e:
            # real-valued ops whose units are still being written: with no backend asked
            # for, the project is the reference's design.json alone (no plan.json)
            if "has no unit for it yet" not in str(e):
                raise
            if list(backends):
                raise IRError(f"{e}; compile with --skip hls --skip rtl to write the "
                              "reference-only project (design.json)") from e
            plan = None
            graph.meta.setdefault("warnings", []).append(
                f"no plan.json: {e}")
        (tmp / DESIGN).write_text(json.dumps(graph_to_json(graph), indent=1) + "\n")
        if plan is not None:
            (tmp / PLAN).write_text(json.dumps(plan_to_json(plan), indent=1) + "\n")
        for name in backends:
            print(f"bnn2fpga: writing {name} project", file=sys.stderr)
            (tmp / name).mkdir()
            load_backend(name)(graph, tmp / name, options, plan)
            written.append(name)
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for parent in reversed(created):  # leave no trace of a failed compile
            if parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
        raise
    return written


def _swap_into_place(tmp: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.rename(out, old / "project")
    os.rename(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def load_design(out: Path) -> Graph:
    path = Path(out) / DESIGN
    if not path.is_file():
        raise ProjectError(f"{str(out)!r} is not a compiled bnn2fpga project (no {DESIGN}); "
                           "run `bnn2fpga compile MODEL -o OUT` first")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ProjectError(f"{str(path)!r} is not valid JSON ({e}); recompile the model") from e
    return graph_from_json(data)
