"""Commands: import openfoam, import fluent (finished CFD output to a plane dataset).

Both take one case (an OpenFOAM case folder, a set of Fluent export files) or several
(folders, or a ``--manifest`` TOML naming each case with its scenario name, split and
source; :func:`read_manifest`, shared by both) and write one dataset, one scenario per
case, atomically: an error in any case names the case and nothing is written.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import typer
from pydantic import BaseModel, ConfigDict, Field

from plumecast.cli.app import check_output_path, console, fail, import_app, progress_bar
from plumecast.io.dataset import DEFAULT_COLUMN_LEVELS, MASS_UNITS, SPLITS, DatasetError, write_dataset
from plumecast.io.preflight import PreflightError
from plumecast.schema import Number, load_toml_model
from plumecast.scenario import ScenarioError, Source, SourceSpec

SOURCE_HELP = (
    "A small TOML describing the scenario: optional name, split, mass_unit and a \\[source] table "
    "like a scenario file's (position_m = \\[x, y, z] or path = \\[\\[t, x, y, z], ...], and rate = \\[\\[t, rate], ...])."
)


MANIFEST_HELP = (
    "A TOML naming the cases: \\[\\[case]] tables with dir (a case folder, or for Fluent an export folder) or, for "
    "Fluent, files = [...] (paths relative to the manifest), optional name (default: the folder's), split "
    "(train, val, test, ood; default train), a \\[case.source] table like --source-toml's and, for Fluent, times "
    "= [...]; an optional top-level mass_unit."
)
JOBS_HELP = "Processes parsing cases at once (default: the CPU count, at most the number of cases)."


class ManifestError(ValueError):
    """A manifest that cannot be used; the message names the file and the case."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _ManifestCase(_Strict):
    dir: str | None = Field(None, min_length=1)
    files: list[str] | None = Field(None, min_length=1)
    name: str | None = Field(None, min_length=1)
    split: Literal[SPLITS] = "train"
    times: list[Number] | None = None
    source: SourceSpec | None = None


class _Manifest(_Strict):
    mass_unit: Literal[MASS_UNITS] | None = None
    case: list[_ManifestCase] = Field(min_length=1)


@dataclass(frozen=True)
class ManifestCase:
    """One case of a manifest, paths resolved: ``path`` (a folder) or ``files``, scenario name, split, source."""

    name: str
    split: str
    path: Path | None = None
    files: tuple[Path, ...] | None = None
    source: Source | None = None
    times: tuple[float, ...] | None = None


def read_manifest(path: Path, kind: str) -> tuple[list[ManifestCase], str | None]:
    """The cases of a manifest for ``kind`` ("openfoam" or "fluent") and its mass unit; ManifestError names the problem.

    Paths are relative to the manifest's folder. Every case folder (or file) must exist,
    names must be unique; an OpenFOAM case needs ``dir`` and takes no ``files`` or
    ``times``; a Fluent export takes ``dir`` (all files in it) or ``files``.
    """
    path = Path(path)
    spec, _ = load_toml_model(path, _Manifest, ManifestError, what="manifest")
    base = path.parent
    out, seen = [], {}
    for n, c in enumerate(spec.case):
        label = f"{path}: case {n + 1}" + (f" ({c.name!r})" if c.name else (f" ({c.dir})" if c.dir else ""))
        if kind == "openfoam":
            if c.dir is None or c.files is not None or c.times is not None:
                raise ManifestError(f"{label}: an OpenFOAM case needs dir = \"CASE_FOLDER\" (and takes no files or "
                                    "times)")
        elif (c.dir is None) == (c.files is None):
            raise ManifestError(f"{label}: a Fluent export needs exactly one of dir (a folder of its files) and files")
        folder = files = None
        if c.dir is not None:
            folder = (base / c.dir).resolve() if not Path(c.dir).is_absolute() else Path(c.dir)
            if not folder.is_dir():
                raise ManifestError(f"{label}: no such case directory {folder}")
            if kind == "fluent":
                files = tuple(sorted(f for f in folder.iterdir() if f.is_file() and not f.name.startswith(".")))
                if not files:
                    raise ManifestError(f"{label}: the export folder {folder} holds no files")
        else:
            files = tuple((base / f).resolve() if not Path(f).is_absolute() else Path(f) for f in c.files)
            for f in files:
                if not f.is_file():
                    raise ManifestError(f"{label}: no such file {f}")
        name = c.name or (folder.name if folder is not None else files[0].stem)
        if name in seen:
            raise ManifestError(f"{label}: scenario name {name!r} is already used by case {seen[name]}; give each "
                                "case its own name")
        seen[name] = n + 1
        source = None
        if c.source is not None:
            try:
                source = Source(rate=tuple(c.source.rate), position_m=c.source.position_m,
                                path=None if c.source.path is None else tuple(c.source.path))
            except ScenarioError as e:
                raise ManifestError(f"{label}: [source]: {e}") from None
        out.append(ManifestCase(name=name, split=c.split, path=folder, files=files, source=source,
                                times=None if c.times is None else tuple(float(t) for t in c.times)))
    return out, spec.mass_unit


def _jobs(jobs: int | None, n_cases: int) -> int:
    if jobs is not None and jobs < 1:
        fail(f"--jobs must be at least 1, got {jobs}")
    return jobs if jobs is not None else max(1, min(os.cpu_count() or 1, n_cases))


def _with_progress(what: str, total: int, run):
    """``run(progress)`` under a rich bar of cases done and time left (a plain line per case in logs)."""
    plain = not console.is_terminal
    with progress_bar() as bar:
        task = bar.add_task(what, total=total)

        def progress(done, total_):
            bar.update(task, completed=done, total=total_)
            if plain and done:
                console.print(f"{what}: {done}/{total_} done", highlight=False)

        return run(progress)


def _refuse_per_case_options(n_cases: int, **given) -> None:
    """Options that describe one scenario make no sense for several cases: they go in the manifest."""
    if n_cases > 1:
        used = [name for name, value in given.items() if value is not None]
        if used:
            fail(f"{', '.join(used)} describe one scenario; with {n_cases} cases give each case's name, split and "
                 "source in a --manifest")


def _floats(text: str, n: int | None, what: str) -> list[float]:
    try:
        vals = [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        fail(f"{what}: expected comma-separated numbers, got {text!r}")
    if not all(math.isfinite(v) for v in vals):
        fail(f"{what}: numbers must be finite, got {text!r}")
    if n is not None and len(vals) != n:
        fail(f"{what}: expected {n} comma-separated numbers, got {text!r}")
    return vals


def _scenario_spec(source_toml: Path | None, position: str | None, rate: float | None) -> dict:
    """name, split, mass_unit and a plumecast Source (or None) from the options."""
    from plumecast.scenario import ScenarioError, Source, load_source_file

    spec: dict = {"source": None}
    if source_toml is not None:
        if position is not None or rate is not None:
            fail("give the source either as --source-toml or as --source-position/--source-rate, not both")
        try:
            cfg, spec["source"] = load_source_file(source_toml)
        except ScenarioError as e:
            fail(str(e))
        for key in ("name", "split", "mass_unit"):
            if getattr(cfg, key) is not None:
                spec[key] = getattr(cfg, key)
    elif position is not None or rate is not None:
        if position is None:
            fail("--source-rate needs --source-position")
        xyz = _floats(position, 3, "--source-position")
        if rate is not None and not (math.isfinite(rate) and rate >= 0):
            fail(f"--source-rate must be a finite rate >= 0 (mass/s), got {rate}")
        try:
            spec["source"] = Source(rate=((0.0, float(rate or 0.0)),), position_m=tuple(xyz))
        except ScenarioError as e:
            fail(f"source: {e}")
    return spec


def _check_mass_unit(unit: str | None) -> None:
    if unit is not None and unit not in MASS_UNITS:
        fail(f"--mass-unit must be one of {', '.join(MASS_UNITS)}, got {unit!r}")


def _write(ds, out: Path) -> None:
    try:
        write_dataset(ds, out)
    except DatasetError as e:
        fail(str(e))
    except OSError as e:
        fail(f"{out}: cannot write ({e})")
    c = ds["concentration"]
    console.print(
        f"wrote {out}: {ds.sizes['y']} (y) x {ds.sizes['x']} (x) cells of {ds.attrs['dx_m']:g} m, "
        f"{int(ds['fluid'].sum())} fluid, {ds.sizes['time']} time(s), concentration max {float(c.max()):.4g}",
        highlight=False,
    )
    for line in str(ds.attrs.get("history", "")).splitlines()[1:]:
        console.print(f"  {line}", highlight=False)


@import_app.command("fluent")
def import_fluent_cmd(
    files: Annotated[list[Path] | None, typer.Argument(help="Fluent 'Surface Integral Report' ASCII exports, one quantity each; or several export folders (one scenario each).")] = None,
    out: Annotated[Path, typer.Option("--out", help="Output netCDF dataset.")] = ...,
    cell: Annotated[float, typer.Option("--cell", help="Plane cell size in metres.")] = 0.5,
    height: Annotated[float | None, typer.Option("--height", help="Plane height in metres (recorded; default 1.5, marked as assumed).")] = None,
    density: Annotated[float, typer.Option("--density", help="Density in kg/m^3 to turn dynamic turbulent viscosity into kinematic (and mass fractions into kg/m^3).")] = 1.225,
    border: Annotated[int, typer.Option("--border", help="Solid cells added around the largest indices (index i -> column i - 1 + border).")] = 1,
    shape: Annotated[str | None, typer.Option("--shape", help="Grid size 'NY,NX' instead of max index + 2 x border.")] = None,
    quantity: Annotated[list[str] | None, typer.Option("--quantity", help="Override what a file holds: NAME=KIND with KIND in nu_t, u, v, w, concentration (repeatable).")] = None,
    times: Annotated[str | None, typer.Option("--times", help="Comma-separated times (s) of the concentration files, in the order given.")] = None,
    time_pattern: Annotated[str | None, typer.Option("--time-pattern", help="Regular expression whose first group reads a concentration file's time (s) from its name (default: the last number).")] = None,
    scenario: Annotated[str | None, typer.Option("--scenario", help="Scenario name.")] = None,
    split: Annotated[str | None, typer.Option("--split", help="train, val, test or ood.")] = None,
    source_toml: Annotated[Path | None, typer.Option("--source-toml", help=SOURCE_HELP)] = None,
    source_position: Annotated[str | None, typer.Option("--source-position", help="Static source position 'x,y,z' in metres.")] = None,
    source_rate: Annotated[float | None, typer.Option("--source-rate", help="Constant source rate (mass/s).")] = None,
    mass_unit: Annotated[str | None, typer.Option("--mass-unit", help="Mass unit of a concentration whose export has no unit.")] = None,
    manifest: Annotated[Path | None, typer.Option("--manifest", help=MANIFEST_HELP)] = None,
    jobs: Annotated[int | None, typer.Option("--jobs", help=JOBS_HELP)] = None,
) -> None:
    """Fluent cell-indexed plane exports (turbulent viscosity, velocity, concentration) to a dataset."""
    from plumecast.io.fluent import DEFAULT_TIME_PATTERN, KINDS, FluentExport, FluentFormatError, import_fluent_exports

    check_output_path(out, "file")
    _check_mass_unit(mass_unit)
    if height is not None and not (math.isfinite(height) and height > 0):
        fail(f"--height must be a positive number of metres above the floor (z = 0), got {height}")
    if not (math.isfinite(cell) and cell > 0):
        fail(f"--cell must be a positive number of metres, got {cell}")
    if not (math.isfinite(density) and density > 0):
        fail(f"--density must be a positive number of kg/m^3, got {density}")
    if border < 0:
        fail(f"--border must be >= 0, got {border}")
    overrides = {}
    for q in quantity or []:
        name, sep, kind = q.partition("=")
        if not sep or kind not in KINDS:
            fail(f"--quantity {q!r}: expected NAME=KIND with KIND one of {', '.join(KINDS)}")
        overrides[name] = kind
    grid_shape = None
    if shape:
        sizes = _floats(shape, 2, "--shape")
        if not all(v == int(v) and v >= 2 for v in sizes):
            fail(f"--shape expects two whole numbers NY,NX of at least 2, got {shape!r}")
        grid_shape = tuple(int(v) for v in sizes)
    if time_pattern is not None:
        try:
            re.compile(time_pattern)
        except re.error as e:
            fail(f"--time-pattern {time_pattern!r}: not a regular expression ({e})")
    if split is not None and split not in SPLITS:
        fail(f"--split must be one of {SPLITS}, got {split!r}")

    files = files or []
    folders = [f for f in files if f.is_dir()]
    if manifest is not None:
        if files:
            fail("give the exports either as arguments or as --manifest, not both")
        try:
            entries, manifest_unit = read_manifest(manifest, "fluent")
        except ManifestError as e:
            fail(str(e))
        _refuse_per_case_options(2, **{"--scenario": scenario, "--split": split, "--source-toml": source_toml,
                                       "--source-position": source_position, "--source-rate": source_rate, "--times": times})
        exports = [FluentExport(e.files, e.name, e.split, e.source, e.times) for e in entries]
        unit = mass_unit or manifest_unit
    elif folders:
        if len(folders) != len(files):
            fail(f"give either export files (one export) or export folders (one scenario each), not both: "
                 f"{folders[0]} is a folder, {next(f for f in files if not f.is_dir())} is not")
        _refuse_per_case_options(len(folders), **{"--scenario": scenario, "--source-toml": source_toml,
                                                  "--source-position": source_position, "--source-rate": source_rate,
                                                  "--times": times})
        exports = []
        for d in folders:
            inside = tuple(sorted(f for f in d.iterdir() if f.is_file() and not f.name.startswith(".")))
            if not inside:
                fail(f"{d}: the export folder holds no files")
            exports.append(FluentExport(inside, d.name, split or "train", None))
        if len(exports) == 1:  # one folder: the single-export options apply to it
            spec = _scenario_spec(source_toml, source_position, source_rate)
            exports = [FluentExport(exports[0].files, scenario or spec.get("name", folders[0].name),
                                    split or spec.get("split", "train"), spec["source"],
                                    tuple(_floats(times, None, "--times")) if times else None)]
        unit = mass_unit
    elif files:
        spec = _scenario_spec(source_toml, source_position, source_rate)
        split = split or spec.get("split", "train")
        if split not in SPLITS:
            fail(f"--split must be one of {SPLITS}, got {split!r}")
        exports = [FluentExport(tuple(files), scenario or spec.get("name", "fluent"), split, spec["source"],
                                tuple(_floats(times, None, "--times")) if times else None)]
        unit = mass_unit or spec.get("mass_unit")
    else:
        fail("give the Fluent export files, export folders, or --manifest")
    common = dict(cell_m=cell, plane_height_m=height, density=density, border=border, shape=grid_shape,
                  quantities=overrides, time_pattern=time_pattern or DEFAULT_TIME_PATTERN, mass_unit=unit)
    n_jobs = _jobs(jobs, len(exports))
    try:
        if len(exports) == 1:
            ds = import_fluent_exports(exports, jobs=1, **common)
        else:
            ds = _with_progress("Fluent exports", len(exports),
                                lambda progress: import_fluent_exports(exports, jobs=n_jobs, progress=progress, **common))
    except (FluentFormatError, DatasetError, PreflightError) as e:
        fail(str(e))
    _write(ds, out)


@import_app.command("openfoam")
def import_openfoam_cmd(
    cases: Annotated[list[Path] | None, typer.Argument(help="Finished OpenFOAM cases (reconstructed or decomposed) on one mesh; one scenario each.")] = None,
    height: Annotated[float, typer.Option("--height", help="Plane height in metres (z up).")] = ...,
    cell: Annotated[float, typer.Option("--cell", help="Plane cell size in metres.")] = ...,
    out: Annotated[Path, typer.Option("--out", help="Output netCDF dataset.")] = ...,
    field: Annotated[str | None, typer.Option("--field", help="Scalar field name (default: T, else s).")] = None,
    flow_time: Annotated[str | None, typer.Option("--flow-time", help="Time directory to read U and nut from (default: the latest holding both).")] = None,
    flow_case: Annotated[Path | None, typer.Option("--flow-case", help="A finished flow case on the same mesh to read U and nut from (its latest time holding both), for scalar cases run on a frozen flow.")] = None,
    levels: Annotated[int | None, typer.Option("--levels", help=f"Sample U and nut at the heights of a column of N equal layers of the room through the plane, and sum phi onto its cells (0: none; default: the finest column of up to {DEFAULT_COLUMN_LEVELS} layers with a mesh cell in each).")] = None,
    scenario: Annotated[str | None, typer.Option("--scenario", help="Scenario name (default: the case folder's name).")] = None,
    split: Annotated[str | None, typer.Option("--split", help="train, val, test or ood.")] = None,
    source_toml: Annotated[Path | None, typer.Option("--source-toml", help=SOURCE_HELP)] = None,
    source_position: Annotated[str | None, typer.Option("--source-position", help="Static source position 'x,y,z' in metres.")] = None,
    source_rate: Annotated[float | None, typer.Option("--source-rate", help="Constant source rate (mass/s).")] = None,
    mass_unit: Annotated[str | None, typer.Option("--mass-unit", help="Mass unit of the scalar (default mg).")] = None,
    manifest: Annotated[Path | None, typer.Option("--manifest", help=MANIFEST_HELP)] = None,
    jobs: Annotated[int | None, typer.Option("--jobs", help=JOBS_HELP)] = None,
    source_cell: Annotated[bool, typer.Option("--source-cell", help="Record each declared source at the centre of the mesh cell a point source there emits into (fvOptions selectionMode points: the cell holding it, the lowest-numbered on a face), for cases whose fvOptions are not in the folder; a case's own fvOptions point source is always recorded there.")] = False,
) -> None:
    """OpenFOAM cases' scalar, U and nut on a horizontal plane (and U, nut at flow levels) to a dataset."""
    from plumecast.io.openfoam import CaseSpec, OpenFOAMImportError, import_openfoam_cases

    check_output_path(out, "file")
    _check_mass_unit(mass_unit)
    if not (math.isfinite(cell) and cell > 0):
        fail(f"--cell must be a positive number of metres, got {cell}")
    if not math.isfinite(height):
        fail(f"--height must be a finite number of metres, got {height}")
    if levels is not None and levels < 0:
        fail(f"--levels must be >= 0 (0: no flow levels), got {levels}")
    if split is not None and split not in SPLITS:
        fail(f"--split must be one of {SPLITS}, got {split!r}")
    if flow_case is not None and not flow_case.is_dir():
        fail(f"--flow-case {flow_case}: no such case directory")
    cases = cases or []
    if manifest is not None:
        if cases:
            fail("give the cases either as arguments or as --manifest, not both")
        try:
            entries, manifest_unit = read_manifest(manifest, "openfoam")
        except ManifestError as e:
            fail(str(e))
        _refuse_per_case_options(2, **{"--scenario": scenario, "--split": split, "--source-toml": source_toml,
                                       "--source-position": source_position, "--source-rate": source_rate})
        specs = [CaseSpec(e.path, e.name, e.split, e.source) for e in entries]
        unit = mass_unit or manifest_unit or "mg"
    elif len(cases) > 1:
        _refuse_per_case_options(len(cases), **{"--scenario": scenario, "--source-toml": source_toml,
                                                "--source-position": source_position, "--source-rate": source_rate})
        for c in cases:
            if not c.is_dir():
                fail(f"{c}: no such case directory")
        specs = [CaseSpec(c, None, split or "train", None) for c in cases]
        unit = mass_unit or "mg"
    elif cases:
        spec = _scenario_spec(source_toml, source_position, source_rate)
        split = split or spec.get("split", "train")
        if split not in SPLITS:
            fail(f"--split must be one of {SPLITS}, got {split!r}")
        specs = [CaseSpec(cases[0], scenario or spec.get("name"), split, spec["source"])]
        unit = mass_unit or spec.get("mass_unit", "mg")
    else:
        fail("give one or more OpenFOAM case folders, or --manifest")
    n_jobs = _jobs(jobs, len(specs))

    def run(progress=None):
        return import_openfoam_cases(specs, height_m=height, cell_m=cell, field_name=field, flow_time=flow_time,
                                     flow_case=flow_case, mass_unit=unit, levels=levels, jobs=n_jobs,
                                     progress=progress, source_cell=source_cell)

    try:
        ds = run() if len(specs) == 1 else _with_progress("OpenFOAM cases", len(specs), run)
    except (OpenFOAMImportError, DatasetError, PreflightError) as e:
        fail(str(e))
    _write(ds, out)
