"""Commands: import openfoam, import fluent (finished CFD output to a plane dataset)."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated

import typer

from plumecast.cli.app import check_output_path, console, fail, import_app
from plumecast.io.dataset import MASS_UNITS, SPLITS, DatasetError, write_dataset
from plumecast.io.preflight import PreflightError

SOURCE_HELP = (
    "A small TOML describing the scenario: optional name, split, mass_unit and a [source] table "
    "like a scenario file's (position_m = [x, y, z] or path = [[t, x, y, z], ...], and rate = [[t, rate], ...])."
)


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
    files: Annotated[list[Path], typer.Argument(help="Fluent 'Surface Integral Report' ASCII exports, one quantity each.")],
    out: Annotated[Path, typer.Option("--out", help="Output netCDF dataset.")],
    cell: Annotated[float, typer.Option("--cell", help="Plane cell size in metres.")] = 0.5,
    height: Annotated[float | None, typer.Option("--height", help="Plane height in metres (recorded; default 1.5, marked as assumed).")] = None,
    density: Annotated[float, typer.Option("--density", help="Density in kg/m^3 to turn dynamic turbulent viscosity into kinematic (and mass fractions into kg/m^3).")] = 1.225,
    border: Annotated[int, typer.Option("--border", help="Solid cells added around the largest indices (index i -> column i - 1 + border).")] = 1,
    shape: Annotated[str | None, typer.Option("--shape", help="Grid size 'NY,NX' instead of max index + 2 x border.")] = None,
    quantity: Annotated[list[str] | None, typer.Option("--quantity", help="Override what a file holds: NAME=KIND with KIND in nu_t, u, v, w, concentration (repeatable).")] = None,
    times: Annotated[str | None, typer.Option("--times", help="Comma-separated times (s) of the concentration files, in the order given.")] = None,
    time_pattern: Annotated[str | None, typer.Option("--time-pattern", help="Regular expression whose first group reads a concentration file's time (s) from its name (default: the last number).")] = None,
    scenario: Annotated[str | None, typer.Option("--scenario", help="Scenario name.")] = None,
    split: Annotated[str | None, typer.Option("--split", help="train, test or ood.")] = None,
    source_toml: Annotated[Path | None, typer.Option("--source-toml", help=SOURCE_HELP)] = None,
    source_position: Annotated[str | None, typer.Option("--source-position", help="Static source position 'x,y,z' in metres.")] = None,
    source_rate: Annotated[float | None, typer.Option("--source-rate", help="Constant source rate (mass/s).")] = None,
    mass_unit: Annotated[str | None, typer.Option("--mass-unit", help="Mass unit of a concentration whose export has no unit.")] = None,
) -> None:
    """Fluent cell-indexed plane exports (turbulent viscosity, velocity, concentration) to a dataset."""
    from plumecast.io.fluent import DEFAULT_TIME_PATTERN, KINDS, FluentFormatError, import_fluent

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
    spec = _scenario_spec(source_toml, source_position, source_rate)
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
    split = split or spec.get("split", "train")
    if split not in SPLITS:
        fail(f"--split must be one of {SPLITS}, got {split!r}")
    src = spec["source"]
    if time_pattern is not None:
        try:
            re.compile(time_pattern)
        except re.error as e:
            fail(f"--time-pattern {time_pattern!r}: not a regular expression ({e})")
    try:
        ds = import_fluent(
            files,
            cell_m=cell,
            plane_height_m=height,
            density=density,
            border=border,
            shape=grid_shape,
            quantities=overrides,
            times=_floats(times, None, "--times") if times else None,
            time_pattern=time_pattern or DEFAULT_TIME_PATTERN,
            scenario_name=scenario or spec.get("name", "fluent"),
            split=split,
            source=src,
            mass_unit=mass_unit or spec.get("mass_unit"),
        )
    except (FluentFormatError, DatasetError, PreflightError) as e:
        fail(str(e))
    _write(ds, out)


@import_app.command("openfoam")
def import_openfoam_cmd(
    case_dir: Annotated[Path, typer.Argument(help="A finished OpenFOAM case (reconstructed or decomposed).")],
    height: Annotated[float, typer.Option("--height", help="Plane height in metres (z up).")],
    cell: Annotated[float, typer.Option("--cell", help="Plane cell size in metres.")],
    out: Annotated[Path, typer.Option("--out", help="Output netCDF dataset.")],
    field: Annotated[str | None, typer.Option("--field", help="Scalar field name (default: T, else s).")] = None,
    flow_time: Annotated[str | None, typer.Option("--flow-time", help="Time directory to read U and nut from (default: the latest holding both).")] = None,
    scenario: Annotated[str | None, typer.Option("--scenario", help="Scenario name (default: the case folder's name).")] = None,
    split: Annotated[str | None, typer.Option("--split", help="train, test or ood.")] = None,
    source_toml: Annotated[Path | None, typer.Option("--source-toml", help=SOURCE_HELP)] = None,
    source_position: Annotated[str | None, typer.Option("--source-position", help="Static source position 'x,y,z' in metres.")] = None,
    source_rate: Annotated[float | None, typer.Option("--source-rate", help="Constant source rate (mass/s).")] = None,
    mass_unit: Annotated[str | None, typer.Option("--mass-unit", help="Mass unit of the scalar (default mg).")] = None,
) -> None:
    """An OpenFOAM case's scalar, U and nut on a horizontal plane to a dataset."""
    from plumecast.io.openfoam import OpenFOAMImportError, import_openfoam

    check_output_path(out, "file")
    _check_mass_unit(mass_unit)
    if not (math.isfinite(cell) and cell > 0):
        fail(f"--cell must be a positive number of metres, got {cell}")
    if not math.isfinite(height):
        fail(f"--height must be a finite number of metres, got {height}")
    spec = _scenario_spec(source_toml, source_position, source_rate)
    split = split or spec.get("split", "train")
    if split not in SPLITS:
        fail(f"--split must be one of {SPLITS}, got {split!r}")
    try:
        ds = import_openfoam(
            case_dir,
            height_m=height,
            cell_m=cell,
            field_name=field,
            flow_time=flow_time,
            scenario_name=scenario or spec.get("name"),
            split=split,
            source=spec["source"],
            mass_unit=mass_unit or spec.get("mass_unit", "mg"),
        )
    except (OpenFOAMImportError, DatasetError, PreflightError) as e:
        fail(str(e))
    _write(ds, out)
