"""Run the bad inputs of issue 16 through the command line; print the table of docs/errors.md.

    .venv/bin/python scripts/bad_inputs.py > /tmp/table.md     # about 30 s

Every case runs ``plumecast ...`` in-process (typer's CliRunner) in a folder of its own,
after the shared inputs are made (the tiny dataset, a quick run trained on it, Fluent
exports, a small OpenFOAM case written without OpenFOAM). Each case is checked for: the
exit code (non-zero for a bad input; zero for the cases that must now work), no
traceback (an exception other than the CLI's exit), a one-line message, and nothing
written: every file of the case folder and of the shared inputs is as it was. The
markdown table goes to stdout, a summary to stderr; the exit code is 1 when any check
fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

import numpy as np
import xarray as xr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the OpenFOAM case writer of the importer tests

from typer.testing import CliRunner  # noqa: E402

from plumecast.cli import app  # noqa: E402

runner = CliRunner()


@dataclass
class Case:
    group: str
    what: str
    argv: Callable[[Path, dict], list[str]]  # (case folder, shared inputs) -> arguments
    ok: bool = False  # the command must succeed (a case that used to fail)


# ----------------------------------------------------------------------------- shared inputs


def tiny_toml(work: Path, old: str = "", new: str = "", name: str = "room.toml") -> Path:
    text = resources.files("plumecast.presets").joinpath("tiny.toml").read_text()
    if old:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = work / name
    path.write_text(text)
    return path


def fluent_report(quantity: str, units: str, rows: dict, z: int = 1) -> str:
    lines = ['                         "Surface Integral Report"', "", "           Area-Weighted Average",
             f"{quantity:>30}           [{units}]", "-------------------------------- --------------------"]
    lines += [f"{f'x{i}y{j}z{z}':>32} {v:>20}" for (i, j), v in rows.items()]
    lines += ["                ---------------- --------------------", f"{'Net':>32} {'0.5':>20}"]
    return "\n".join(lines) + "\n"


FLUENT_CELLS = {(i, j): repr(0.001 * (i + j)) for j in range(1, 4) for i in range(1, 5) if (i, j) != (3, 2)}


def fluent_file(work: Path, name: str, extra: dict | None = None, values: dict | None = None) -> Path:
    rows = dict(FLUENT_CELLS if values is None else values)
    rows.update(extra or {})
    path = work / name
    path.write_text(fluent_report("Turbulent Viscosity", "kg/(m s)", rows))
    return path


def edited_dataset(shared: dict, work: Path, name: str, edit) -> Path:
    """The tiny dataset with ``edit(ds)`` applied, written behind the writer's back."""
    ds = xr.open_dataset(shared["data"]).load()
    edit(ds)
    path = work / name
    ds.to_netcdf(path)
    return path


def make_shared(base: Path) -> dict:
    from _openfoam_case import write_case, write_field

    shared = base / "shared"
    shared.mkdir()
    data = shared / "tiny.nc"
    r = runner.invoke(app, ["generate", "tiny", "--out", str(data)])
    assert r.exit_code == 0, r.output
    run = shared / "run"
    sets = ["window_s=4", "curriculum_s=[4,8]", "epochs=[1,1]", "batch_size=2"]
    r = runner.invoke(app, ["train", str(data), "--out", str(run), "--no-progress",
                            *[a for s in sets for a in ("--set", s)]])
    assert r.exit_code == 0, r.output
    case = write_case(shared / "case")
    solid = np.zeros((4, 4, 8), bool)
    solid[:2, :2, 6:] = True  # a desk: x 1.5..2, y 0..0.5, z 0..0.5
    desk = write_case(shared / "desk-case", solid=solid)
    decaying = write_case(shared / "decaying-source")  # its fvOptions source has an implicit part: a decay
    (decaying / "system" / "fvOptions").write_text(
        "FoamFile { version 2.0; format ascii; class dictionary; object fvOptions; }\n"
        "leak { type scalarSemiImplicitSource; selectionMode points; points ((1.1 0.6 0.4)); volumeMode absolute; "
        "injectionRateSuSp { T (1 -0.01); } }\n")
    emitting = write_case(shared / "point-source")
    (emitting / "system" / "fvOptions").write_text(
        "FoamFile { version 2.0; format ascii; class dictionary; object fvOptions; }\n"
        "leak { type scalarSemiImplicitSource; selectionMode points; points ((1.1 0.6 0.4)); volumeMode absolute; "
        "injectionRateSuSp { T (1 0); } }\n")
    neg = write_case(shared / "negative-nut")
    nut_values = np.full(128, 1e-3)
    nut_values[32:64] = -5e-3  # the second layer (z 0.25 .. 0.5), about the plane at 0.45 m
    write_field(neg / "0" / "nut", "nut", nut_values)
    imported = shared / "imported-openfoam.nc"
    r = runner.invoke(app, ["import", "openfoam", str(case), "--height", "0.45", "--cell", "0.5", "--out", str(imported)])
    assert r.exit_code == 0, r.output
    nut = fluent_file(shared, "nut.txt")
    imported_fluent = shared / "imported-fluent.nc"
    r = runner.invoke(app, ["import", "fluent", str(nut), "--out", str(imported_fluent)])
    assert r.exit_code == 0, r.output
    return {"data": data, "run": run, "case": case, "desk": desk, "neg_nut_case": neg, "decaying": decaying,
            "emitting": emitting, "nut": nut,
            "imported": imported, "imported_fluent": imported_fluent, "dir": shared}


QUICK = ["--no-progress", "--set", "window_s=4", "--set", "curriculum_s=[4,8]", "--set", "epochs=[1,1]"]


def train_with(*sets: str):
    return lambda w, s: ["train", str(s["data"]), "--out", str(w / "run"), *QUICK, *[a for x in sets for a in ("--set", x)]]


def generate_toml(old: str, new: str):
    return lambda w, s: ["generate", str(tiny_toml(w, old, new)), "--out", str(w / "out.nc")]


def existing_dir(w: Path) -> Path:
    (w / "existing").mkdir(exist_ok=True)
    return w / "existing"


def existing_file(w: Path) -> Path:
    p = w / "existing.txt"
    p.write_text("keep me\n")
    return p


CASES = [
    # Output paths: checked before any work.
    Case("output", "`generate tiny --out /proc/x.nc`", lambda w, s: ["generate", "tiny", "--out", "/proc/x.nc"]),
    Case("output", "`generate tiny --out` an existing directory", lambda w, s: ["generate", "tiny", "--out", str(existing_dir(w))]),
    Case("output", "`plot --out /proc/plots`", lambda w, s: ["plot", str(s["data"]), "--scenario", "static-a", "--out", "/proc/plots"]),
    Case("output", "`plot --out` an existing file", lambda w, s: ["plot", str(s["data"]), "--scenario", "static-a", "--out", str(existing_file(w))]),
    Case("output", "`train --out /proc/run`", lambda w, s: ["train", str(s["data"]), "--out", "/proc/run", *QUICK]),
    Case("output", "`forecast --out /proc/x.nc`", lambda w, s: ["forecast", str(s["run"]), "--data", str(s["data"]), "--scenario", "static-a", "--out", "/proc/x.nc"]),
    Case("output", "`forecast --out` an existing directory", lambda w, s: ["forecast", str(s["run"]), "--data", str(s["data"]), "--scenario", "static-a", "--out", str(existing_dir(w))]),
    Case("output", "`import fluent --out /proc/x.nc`", lambda w, s: ["import", "fluent", str(s["nut"]), "--out", "/proc/x.nc"]),
    Case("output", "`import openfoam --out` an existing directory", lambda w, s: ["import", "openfoam", str(s["case"]), "--height", "0.45", "--cell", "0.5", "--out", str(existing_dir(w))]),
    Case("output", "`evaluate --out /proc/report`", lambda w, s: ["evaluate", str(s["run"]), str(s["data"]), "--out", "/proc/report"]),
    Case("output", "`compare --out` an existing file", lambda w, s: ["compare", str(s["run"]), "--data", str(s["data"]), "--out", str(existing_file(w))]),
    # Scenario TOML: one typed schema.
    Case("scenario TOML", "`[simulaton]` (a typo of a table)", generate_toml("[simulation]", "[simulaton]")),
    Case("scenario TOML", "`[[room.obstacle]]` (the desk would be dropped)", generate_toml("[[room.obstacles]]", "[[room.obstacle]]")),
    Case("scenario TOML", "`rat =` in a source", generate_toml("rate = [[0.0, 0.0], [5.0", "rat = [[0.0, 0.0], [5.0")),
    Case("scenario TOML", "inlet with `sped_m_s` (typo)", generate_toml("speed_m_s = 0.4", "sped_m_s = 0.4")),
    Case("scenario TOML", "inlet without `speed_m_s`", generate_toml("speed_m_s = 0.4\n", "")),
    Case("scenario TOML", "`molecular_diffusivity_m2_s = nan`", generate_toml("molecular_diffusivity_m2_s = 2.0e-5", "molecular_diffusivity_m2_s = nan")),
    Case("scenario TOML", "negative molecular diffusivity", generate_toml("molecular_diffusivity_m2_s = 2.0e-5", "molecular_diffusivity_m2_s = -2.0e-5")),
    Case("scenario TOML", "negative viscosity", generate_toml("kinematic_viscosity_m2_s = 1.5e-5", "kinematic_viscosity_m2_s = -1.5e-5")),
    Case("scenario TOML", "negative mixing length", generate_toml("mixing_length_max_m = 0.15", "mixing_length_max_m = -0.15")),
    Case("scenario TOML", "`mass_unit = \"zz\"`", generate_toml('mass_unit = "mg"', 'mass_unit = "zz"')),
    Case("scenario TOML", "`horizon_s = \"forty\"`", generate_toml("horizon_s = 40.0", 'horizon_s = "forty"')),
    Case("scenario TOML", "`fine_cell_m = 0.0005` (89 GiB)", generate_toml("fine_cell_m = 0.25", "fine_cell_m = 0.0005")),
    Case("scenario TOML", "`fine_cell_m = 0.01`", generate_toml("fine_cell_m = 0.25", "fine_cell_m = 0.01")),
    Case("scenario TOML", "`column_levels = 40` (layers finer than the fine cells)", generate_toml("fine_cell_m = 0.25", "fine_cell_m = 0.25\ncolumn_levels = 40")),
    Case("scenario TOML", "a source inside the desk", generate_toml("position_m = [1.0, 0.5, 0.75]", "position_m = [2.0, 0.75, 0.25]")),
    # Training settings (--set).
    Case("--set", "`batch_size=2.5`", train_with("batch_size=2.5")),
    Case("--set", "`seed=\"x\"`", train_with('seed="x"')),
    Case("--set", "`batch_size=true`", train_with("batch_size=true")),
    Case("--set", "`epochs=[1.7, 1]`", train_with("epochs=[1.7, 1]")),
    Case("--set", "`smoothness=-5`", train_with("smoothness=-5")),
    Case("--set", "`weight_decay=NaN`", train_with("weight_decay=NaN")),
    Case("--set", "`remat=\"yes\"` (no such setting)", train_with('remat="yes"')),
    Case("--set", "`bacth_size=2` (a typo)", train_with("bacth_size=2")),
    Case("--set", "`layer_height_m=-2`", train_with("layer_height_m=-2")),
    Case("--set", "`exchange_max_per_s=-1`", train_with("exchange_max_per_s=-1")),
    Case("--set", "`source_scale_max=-3`", train_with("source_scale_max=-3")),
    Case("--set", "`closure_options={\"bogus\": 1}` (memory variant)",
         lambda w, s: train_with('closure_options={"bogus": 1}')(w, s) + ["--variant", "memory"]),
    # Datasets edited after generation.
    Case("dataset", "train: a source moved outside the room",
         lambda w, s: ["train", str(edited_dataset(s, w, "d.nc", lambda ds: ds["source_x"].values.__setitem__((0, slice(None)), 99.0))), "--out", str(w / "run"), *QUICK]),
    Case("dataset", "forecast: a source moved outside the room",
         lambda w, s: ["forecast", str(s["run"]), "--data", str(edited_dataset(s, w, "d.nc", lambda ds: ds["source_x"].values.__setitem__((0, slice(None)), 99.0))), "--scenario", "static-a", "--out", str(w / "f.nc")]),
    Case("dataset", "train: a source moved into a solid cell of the plane",
         lambda w, s: ["train", str(edited_dataset(s, w, "d.nc", _into_solid)), "--out", str(w / "run"), *QUICK]),
    Case("dataset", "negative concentration",
         lambda w, s: ["info", str(edited_dataset(s, w, "d.nc", lambda ds: ds["concentration"].values.__setitem__((0, 5, 1, 1), -1.0)))]),
    Case("dataset", "`dx_m` contradicting the coordinates",
         lambda w, s: ["info", str(edited_dataset(s, w, "d.nc", lambda ds: ds.attrs.__setitem__("dx_m", 0.25)))]),
    Case("dataset", "`plane_height_m = NaN`",
         lambda w, s: ["info", str(edited_dataset(s, w, "d.nc", lambda ds: ds.attrs.__setitem__("plane_height_m", float("nan"))))]),
    Case("dataset", "a column level without volume (summed from a coarser mesh)",
         lambda w, s: ["info", str(edited_dataset(s, w, "d.nc", lambda ds: ds["volume_level"].values.__setitem__(1, 0.0)))]),
    # Importers.
    Case("import", "Fluent row `x99999y99999z1`", lambda w, s: ["import", "fluent", str(fluent_file(w, "nut.txt", {(99999, 99999): "0.001"})), "--out", str(w / "o.nc")]),
    Case("import", "Fluent row `x9999y9999z1`", lambda w, s: ["import", "fluent", str(fluent_file(w, "nut.txt", {(9999, 9999): "0.001"})), "--out", str(w / "o.nc")]),
    Case("import", "`import fluent --height -4`", lambda w, s: ["import", "fluent", str(s["nut"]), "--height", "-4", "--out", str(w / "o.nc")]),
    Case("import", "`import fluent --source-position 500,5,1.5`", lambda w, s: ["import", "fluent", str(s["nut"]), "--source-position", "500,5,1.5", "--source-rate", "1", "--out", str(w / "o.nc")]),
    Case("import", "Fluent negative turbulent viscosity", lambda w, s: ["import", "fluent", str(fluent_file(w, "nut.txt", {(2, 2): "-0.004"})), "--out", str(w / "o.nc")]),
    Case("import", "`import fluent --mass-unit zz`", lambda w, s: ["import", "fluent", str(s["nut"]), "--mass-unit", "zz", "--out", str(w / "o.nc")]),
    Case("import", "`import openfoam --cell 100`", lambda w, s: ["import", "openfoam", str(s["case"]), "--height", "0.45", "--cell", "100", "--out", str(w / "o.nc")]),
    Case("import", "`import openfoam --height -4`", lambda w, s: ["import", "openfoam", str(s["case"]), "--height", "-4", "--cell", "0.5", "--out", str(w / "o.nc")]),
    Case("import", "`import openfoam --source-position` inside a desk", lambda w, s: ["import", "openfoam", str(s["desk"]), "--height", "0.75", "--cell", "0.5", "--source-position", "1.75,0.25,0.25", "--source-rate", "1", "--out", str(w / "o.nc")]),
    Case("import", "`import openfoam --levels 24` (layers finer than the mesh)", lambda w, s: ["import", "openfoam", str(s["case"]), "--height", "0.45", "--cell", "0.5", "--levels", "24", "--out", str(w / "o.nc")]),
    Case("import", "OpenFOAM fvOptions source with an implicit part (a decay)", lambda w, s: ["import", "openfoam", str(s["decaying"]), "--height", "0.45", "--cell", "0.5", "--out", str(w / "o.nc")]),
    Case("import", "`import openfoam --source-position` 1 m from the case's fvOptions point source", lambda w, s: ["import", "openfoam", str(s["emitting"]), "--height", "0.45", "--cell", "0.5", "--source-position", "0.1,0.6,0.4", "--source-rate", "1", "--out", str(w / "o.nc")]),
    Case("import", "`import openfoam --source-rate` 1000 times the case's fvOptions rate", lambda w, s: ["import", "openfoam", str(s["emitting"]), "--height", "0.45", "--cell", "0.5", "--source-position", "1.1,0.6,0.4", "--source-rate", "1000", "--out", str(w / "o.nc")]),
    Case("import", "OpenFOAM negative nut", lambda w, s: ["import", "openfoam", str(s["neg_nut_case"]), "--height", "0.45", "--cell", "0.5", "--out", str(w / "o.nc")]),
    Case("import", "`info` on an `import openfoam` output (must work)", lambda w, s: ["info", str(s["imported"])], ok=True),
    Case("import", "`info` on an `import fluent` output (must work)", lambda w, s: ["info", str(s["imported_fluent"])], ok=True),
]


def _into_solid(ds):
    fluid = ds["fluid"].values
    j, i = np.argwhere(fluid == 0)[0]
    ds["source_x"].values[0, :] = float(ds["x"].values[i])
    ds["source_y"].values[0, :] = float(ds["y"].values[j])


# ----------------------------------------------------------------------------- checks


def snapshot(*folders: Path) -> dict:
    out = {}
    for folder in folders:
        for p in sorted(folder.rglob("*")):
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
    return out


def run_case(case: Case, work: Path, shared: dict) -> dict:
    argv = case.argv(work, shared)
    before = snapshot(work, shared["dir"])
    result = runner.invoke(app, argv)
    after = snapshot(work, shared["dir"])
    traceback = result.exception is not None and not isinstance(result.exception, SystemExit)
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    message = " ".join(lines) if traceback is False else f"{type(result.exception).__name__}: {result.exception}"
    if message.startswith("error: "):
        message = message[len("error: "):]
    changed = sorted(set(before.items()) ^ set(after.items()))
    ok_exit = (result.exit_code == 0) if case.ok else (result.exit_code != 0)
    one_line = case.ok or len(lines) == 1
    written = sorted({k for k, _ in changed if not (case.ok and k.endswith(".nc"))})
    return {"case": case, "exit": result.exit_code, "traceback": traceback, "message": message,
            "one_line": one_line, "written": written, "passed": ok_exit and not traceback and one_line and not written}


def main() -> int:
    os.environ.setdefault("COLUMNS", "200")
    base = Path(tempfile.mkdtemp(prefix="plumecast-bad-inputs-"))
    try:
        shared = make_shared(base)
        rows = []
        for k, case in enumerate(CASES):
            work = base / f"case-{k:02d}"
            work.mkdir()
            rows.append(run_case(case, work, shared))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print("| # | input | exit | message |")
    print("|---|---|---|---|")
    for k, r in enumerate(rows, 1):
        msg = r["message"] if not r["case"].ok else "(works: prints the dataset summary)"
        msg = msg.replace(str(base), "…").replace("|", "\\|")
        flag = "" if r["passed"] else " **FAILS THE CHECK**" + (" (traceback)" if r["traceback"] else "") + (
            f" (wrote {len(r['written'])} file(s))" if r["written"] else "") + ("" if r["one_line"] else " (several lines)")
        print(f"| {k} | {r['case'].group}: {r['case'].what} | {r['exit']} | {msg}{flag} |")
    n_tb = sum(r["traceback"] for r in rows)
    n_written = sum(bool(r["written"]) for r in rows)
    n_bad = sum(not r["passed"] for r in rows)
    print(f"\n{len(rows)} cases: {n_tb} tracebacks, {n_written} with files written, "
          f"{n_bad} failing a check", file=sys.stderr)
    print(json.dumps({"cases": len(rows), "tracebacks": n_tb, "partial_files": n_written, "failed": n_bad}),
          file=sys.stderr)
    return 1 if n_bad else 0


if __name__ == "__main__":
    sys.exit(main())
