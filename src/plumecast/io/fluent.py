"""Import ANSYS Fluent "Surface Integral Report" ASCII exports keyed by cell indices.

A report looks like this (one file per quantity)::

                             "Surface Integral Report"

               Area-Weighted Average
                 Turbulent Viscosity           [kg/(m s)]
    -------------------------------- --------------------
                            x10y10z1         0.0051234107
                            ...
                    ---------------- --------------------
                                 Net         0.0092660189

Each row names one cell of a structured plane by its indices ``x{i}y{j}z{k}`` (1-based,
counted from the first cell inside the room's wall ring) and holds that cell's value.
Cells without a row are solid. By default the plane grid gets a one-cell solid border
around the largest indices found (``border=1``), so index ``i`` lands in column ``i``
(0-based) of a grid ``max(i) + 2`` cells wide: the public export
``fluent_turb_vis.txt`` (indices x 1..47, y 1..24) becomes the paper's 26 x 49 grid.

Quantities are recognised from the header line:

=====================================  ==========  =======================================
header (case-insensitive)              becomes     conversion
=====================================  ==========  =======================================
Turbulent Viscosity [kg/(m s)]         nu_t        divided by the density (kinematic)
Turbulent Viscosity [m^2/s]            nu_t        none
X / Y / Z Velocity [m/s]               u / v / w   none
Mass fraction of ... (no unit)         conc.       times the density: kg/m^3
Concentration/Scalar/UDS/... [kg/m^3]  conc.       none (mass unit kg)
other scalars (unknown unit)           conc.       none; mass unit as given (default mg)
=====================================  ==========  =======================================

The eddy viscosity is required; velocity and concentration are optional and recorded as
zeros (and said so in ``history`` and the variable's ``note``) when not given. Several
concentration files form a time series: the time of each comes from ``times`` or from the
file name through ``time_pattern`` (the first capture group, in seconds).

Everything read is validated; a malformed file raises :class:`FluentFormatError` naming
the file and line.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from plumecast import __version__
from plumecast.io.dataset import make_dataset, nonnegative_viscosity, source_outside_plane
from plumecast.io.preflight import require_memory

GENERATOR = "plumecast-import-fluent"
DEFAULT_DENSITY = 1.225  # kg/m^3, air at 15 C
DEFAULT_TIME_PATTERN = r"(?:^|[^0-9.])(\d+(?:\.\d+)?)(?:s)?$"  # the last number of the file stem
KINDS = ("nu_t", "u", "v", "w", "concentration")
# A grid of more than STRAY_MIN_CELLS cells with fewer than STRAY_MIN_SHARE of them listed
# comes from a stray row with far-off indices (x9999y9999z1), not from a plane export.
STRAY_MIN_CELLS = 10_000
STRAY_MIN_SHARE = 0.01

_ROW = re.compile(r"^\s*x(-?\d+)y(-?\d+)z(-?\d+)\s+(\S+)\s*$", re.IGNORECASE)
_DASHES = re.compile(r"^\s*-+(\s+-+)*\s*$")
_NET = re.compile(r"^\s*Net\s+(\S+)\s*$", re.IGNORECASE)
_QUANTITY = re.compile(r"^\s*(?P<name>.*?)\s*(?:\[(?P<units>[^\]]*)\])?\s*$")


class FluentFormatError(ValueError):
    """A Fluent export that cannot be imported; the message names the file and line."""


@dataclass
class FluentReport:
    """One parsed report: the quantity, its units and one value per listed cell."""

    path: Path
    report_type: str
    quantity: str
    units: str
    z_index: int
    values: dict[tuple[int, int], float] = field(repr=False)  # (i, j) -> value
    lines: dict[tuple[int, int], int] = field(repr=False)  # (i, j) -> line number
    net: float | None = None


def read_fluent_report(path: str | Path) -> FluentReport:
    """Parse one "Surface Integral Report" file; FluentFormatError names any problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except FileNotFoundError:
        raise FluentFormatError(f"{path}: no such file") from None
    except UnicodeDecodeError as e:
        raise FluentFormatError(f"{path}: not a text file ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise FluentFormatError(f"{path}: cannot be read ({e})") from None
    lines = text.splitlines()

    def fail(lineno: int | None, msg: str):
        where = f"{path}:{lineno}" if lineno else str(path)
        raise FluentFormatError(f"{where}: {msg}")

    # Header: the title, the report type, the quantity line and a dashed rule.
    n = 0
    while n < len(lines) and not lines[n].strip():
        n += 1
    if n >= len(lines):
        fail(None, "empty file; expected a Fluent \"Surface Integral Report\"")
    if "surface integral report" not in lines[n].lower():
        fail(n + 1, f"expected the title \"Surface Integral Report\", got {lines[n].strip()[:60]!r}")
    header: list[tuple[int, str]] = []
    n += 1
    while n < len(lines) and not _DASHES.match(lines[n]):
        if lines[n].strip():
            header.append((n + 1, lines[n].strip()))
        if _ROW.match(lines[n]):
            fail(n + 1, "table row before the header's dashed rule")
        n += 1
    if n >= len(lines):
        fail(len(lines), "header has no dashed rule (---- ----) before the table; truncated file?")
    if len(header) < 1:
        fail(n + 1, "header names no quantity")
    report_type = header[0][1] if len(header) >= 2 else ""
    qline_no, qline = header[-1]
    m = _QUANTITY.match(qline)
    quantity, units = m.group("name").strip(), (m.group("units") or "").strip()
    if not quantity:
        fail(qline_no, f"cannot read the quantity from {qline!r}")

    values: dict[tuple[int, int], float] = {}
    where: dict[tuple[int, int], int] = {}
    z_index = None
    net = None
    closed = False
    n += 1
    while n < len(lines):
        ln = lines[n]
        lineno = n + 1
        n += 1
        if not ln.strip() or _DASHES.match(ln):
            continue
        m_net = _NET.match(ln)
        if m_net:
            try:
                net = float(m_net.group(1))
            except ValueError:
                fail(lineno, f"'Net' line has no number: {ln.strip()!r}")
            closed = True
            break
        m_row = _ROW.match(ln)
        if not m_row:
            fail(lineno, f"expected a row 'x<i>y<j>z<k>  value' or the closing 'Net' line, got {ln.strip()[:60]!r}")
        i, j, k = (int(m_row.group(g)) for g in (1, 2, 3))
        raw = m_row.group(4)
        try:
            value = float(raw)
        except ValueError:
            fail(lineno, f"value {raw!r} of cell x{i}y{j}z{k} is not a number")
        if not math.isfinite(value):
            fail(lineno, f"value {raw!r} of cell x{i}y{j}z{k} is not finite (NaN or inf)")
        if min(i, j, k) < 1:
            fail(lineno, f"cell x{i}y{j}z{k}: index out of range (indices are 1-based)")
        if z_index is None:
            z_index = k
        elif k != z_index:
            fail(lineno, f"cell x{i}y{j}z{k} lies on z index {k}, but the report's plane is z index {z_index}")
        if (i, j) in values:
            fail(lineno, f"duplicate cell x{i}y{j}z{k} (first given on line {where[(i, j)]})")
        values[(i, j)] = value
        where[(i, j)] = lineno
    if not closed:
        fail(len(lines), "file ends without the closing 'Net' line; truncated file?")
    if not values:
        fail(n, "report holds no cell rows")
    for rest_no in range(n, len(lines)):
        if lines[rest_no].strip():
            fail(rest_no + 1, f"unexpected text after the 'Net' line: {lines[rest_no].strip()[:60]!r}")
    return FluentReport(path, report_type, quantity, units, int(z_index), values, where, net)


def classify(quantity: str, units: str) -> str | None:
    """The dataset variable a report's quantity becomes, or None when unknown."""
    q = quantity.lower()
    if "turbulent viscosity" in q and "ratio" not in q:
        return "nu_t"
    m = re.fullmatch(r"\s*([xyz])[- ]velocity\s*", q)
    if m:
        return {"x": "u", "y": "v", "z": "w"}[m.group(1)]
    if re.search(r"concentration|mass fraction|mole fraction|scalar|uds|species|smoke|co2|tracer|contaminant", q):
        return "concentration"
    return None


def _norm_units(units: str) -> str:
    return re.sub(r"[\s*.]", "", units.lower()).replace("^", "")


@dataclass
class _Converted:
    kind: str
    values: dict
    note: str
    mass_unit: str | None = None


def _convert(rep: FluentReport, kind: str, density: float) -> _Converted:
    u = _norm_units(rep.units)
    vals = rep.values
    desc = f"{rep.path.name}: {rep.quantity}" + (f" [{rep.units}]" if rep.units else "")
    if kind == "nu_t":
        if u in ("kg/(ms)", "kg/m/s", "kg/(m-s)", "pas", "pa-s", "kgm-1s-1", "kg/(sm)"):
            return _Converted(kind, {c: v / density for c, v in vals.items()},
                              f"{desc} (dynamic) divided by density {density} kg/m^3 -> kinematic m^2/s")
        if u in ("m2/s", "m2s-1"):
            return _Converted(kind, dict(vals), f"{desc} taken as kinematic m^2/s")
        raise FluentFormatError(
            f"{rep.path}: turbulent viscosity in unknown units [{rep.units}]; expected kg/(m s) or m^2/s"
        )
    if kind in ("u", "v", "w"):
        if u and u not in ("m/s", "ms-1"):
            raise FluentFormatError(f"{rep.path}: velocity in unknown units [{rep.units}]; expected m/s")
        return _Converted(kind, dict(vals), f"{desc} as {kind} in m/s")
    # concentration
    q = rep.quantity.lower()
    if "mass fraction" in q and not u:
        return _Converted(kind, {c: v * density for c, v in vals.items()},
                          f"{desc} times density {density} kg/m^3 -> kg/m^3", "kg")
    if u in ("kg/m3", "kgm-3"):
        return _Converted(kind, dict(vals), f"{desc} in kg/m^3", "kg")
    if u in ("mg/m3", "mgm-3"):
        return _Converted(kind, dict(vals), f"{desc} in mg/m^3", "mg")
    if u in ("g/m3", "gm-3"):
        return _Converted(kind, dict(vals), f"{desc} in g/m^3", "g")
    return _Converted(kind, dict(vals), f"{desc} taken as concentration as is (unit not converted)")


def _refuse_stray_cells(rep: FluentReport, cells, ny: int, nx: int) -> None:
    """Refuse a grid made mostly empty by a few far-off cell indices (a stray row)."""
    if ny * nx <= STRAY_MIN_CELLS or len(cells) >= STRAY_MIN_SHARE * ny * nx:
        return
    # The row whose index lies furthest beyond the others' range is the likely culprit.
    def reach(axis):
        values = sorted({c[axis] for c in cells})
        return (values[-1] - values[-2]) if len(values) > 1 else 0

    axis = 0 if reach(0) >= reach(1) else 1
    far = max(cells, key=lambda c: c[axis])
    rest = [c for c in cells if c[axis] != far[axis]] or cells
    raise FluentFormatError(
        f"{rep.path}:{rep.lines[far]}: cell x{far[0]}y{far[1]}z{rep.z_index} makes the plane grid {ny} x {nx} "
        f"cells, of which only {len(cells)} are listed (the other cells reach "
        f"x{max(c[0] for c in rest)}, y{max(c[1] for c in rest)}); a stray row? Remove it, or give --shape"
    )


def _time_of(path: Path, pattern: str) -> float | None:
    m = re.search(pattern, path.stem)
    if not m:
        return None
    try:
        return float(m.group(1) if m.groups() else m.group(0))
    except (TypeError, ValueError):
        return None


def import_fluent(
    paths,
    *,
    cell_m: float = 0.5,
    plane_height_m: float | None = None,
    density: float = DEFAULT_DENSITY,
    border: int = 1,
    shape: tuple[int, int] | None = None,
    quantities: dict[str, str] | None = None,
    times: list[float] | None = None,
    time_pattern: str = DEFAULT_TIME_PATTERN,
    scenario_name: str = "fluent",
    split: str = "train",
    source=None,
    mass_unit: str | None = None,
) -> xr.Dataset:
    """Fluent reports to a validated plumecast dataset (one scenario).

    ``quantities`` maps a file name (or path) to one of ``KINDS`` to override what the
    header says. ``source`` is a :class:`plumecast.scenario.Source` when known; otherwise
    the source track is zeros and ``history`` says so.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise FluentFormatError("no Fluent files given")
    if not (np.isfinite(cell_m) and cell_m > 0):
        raise FluentFormatError(f"cell size must be positive, got {cell_m}")
    if not (np.isfinite(density) and density > 0):
        raise FluentFormatError(f"density must be positive, got {density}")
    if border < 0:
        raise FluentFormatError(f"border must be >= 0, got {border}")
    if plane_height_m is not None and not (np.isfinite(plane_height_m) and plane_height_m > 0):
        raise FluentFormatError(
            f"plane height must be a positive number of metres above the floor (z = 0), got {plane_height_m}"
        )
    if shape is not None and (len(shape) != 2 or min(int(s) for s in shape) < 2):
        raise FluentFormatError(f"shape must be two sizes NY, NX of at least 2 cells each, got {tuple(shape)}")
    overrides = {str(k): v for k, v in (quantities or {}).items()}
    for k, v in overrides.items():
        if v not in KINDS:
            raise FluentFormatError(f"quantity for {k}: {v!r} is not one of {KINDS}")
    seen = set()
    for p in paths:
        if str(p.resolve()) in seen:
            raise FluentFormatError(f"{p}: given twice")
        seen.add(str(p.resolve()))

    reports = [read_fluent_report(p) for p in paths]
    converted: list[_Converted] = []
    for rep in reports:
        kind = overrides.get(str(rep.path), overrides.get(rep.path.name)) or classify(rep.quantity, rep.units)
        if kind is None:
            raise FluentFormatError(
                f"{rep.path}: quantity {rep.quantity!r} is not one plumecast imports (turbulent viscosity, "
                "X/Y/Z velocity, a concentration or scalar); name it with a quantity override (e.g. "
                f"--quantity {rep.path.name}=concentration)"
            )
        converted.append(_convert(rep, kind, density))

    # One file per flow quantity; any number of concentration files (a time series).
    by_kind: dict[str, list[tuple[FluentReport, _Converted]]] = {k: [] for k in KINDS}
    for rep, conv in zip(reports, converted):
        by_kind[conv.kind].append((rep, conv))
    for k in ("nu_t", "u", "v", "w"):
        if len(by_kind[k]) > 1:
            names = ", ".join(str(r.path) for r, _ in by_kind[k])
            raise FluentFormatError(f"{k} is given by more than one file: {names}")
    if not by_kind["nu_t"]:
        raise FluentFormatError(
            "missing required field: no file holds the turbulent viscosity (nu_t), which the plane "
            "model's diffusivity starts from"
        )

    # All files must list the same cells on the same plane.
    ref_rep = by_kind["nu_t"][0][0]
    cells = set(ref_rep.values)
    for rep in reports:
        if rep.z_index != ref_rep.z_index:
            raise FluentFormatError(
                f"{rep.path}: plane z index {rep.z_index} differs from {ref_rep.path.name}'s {ref_rep.z_index}"
            )
        extra = sorted(set(rep.values) - cells)
        if extra:
            i, j = extra[0]
            raise FluentFormatError(
                f"{rep.path}:{rep.lines[(i, j)]}: cell x{i}y{j}z{rep.z_index} is not a fluid cell of "
                f"{ref_rep.path.name} ({len(extra)} such cells)"
            )
        missing = sorted(cells - set(rep.values))
        if missing:
            i, j = missing[0]
            raise FluentFormatError(
                f"{rep.path}: no row for fluid cell x{i}y{j}z{rep.z_index} (given in {ref_rep.path.name}:"
                f"{ref_rep.lines[(i, j)]}); {len(missing)} cells missing"
            )

    max_i = max(i for i, _ in cells)
    max_j = max(j for _, j in cells)
    if shape is None:
        ny, nx = max_j + 2 * border, max_i + 2 * border
        _refuse_stray_cells(ref_rep, cells, ny, nx)
    else:
        ny, nx = (int(s) for s in shape)
        for (i, j) in sorted(cells):
            if j - 1 + border >= ny or i - 1 + border >= nx:
                raise FluentFormatError(
                    f"{ref_rep.path}:{ref_rep.lines[(i, j)]}: cell x{i}y{j} lies outside the {ny} x {nx} grid "
                    f"(index out of range with border {border})"
                )

    n_conc = len(by_kind["concentration"])
    require_memory(  # the grids built below, float64, and the dataset (float32 concentration) once more
        ny * nx * (8 * (8 + 2 * max(n_conc, 1)) + 4 * max(n_conc, 1)),
        f"a plane grid of {ny} x {nx} cells with {max(n_conc, 1)} time(s)",
        "check the largest cell indices of the export, or give --shape",
    )
    if ny < 2 or nx < 2:
        raise FluentFormatError(f"the plane grid is {ny} x {nx} cells; at least 2 x 2 are needed")

    def to_grid(vals: dict) -> np.ndarray:
        g = np.zeros((ny, nx))
        for (i, j), v in vals.items():
            g[j - 1 + border, i - 1 + border] = v
        return g

    fluid = to_grid({c: 1.0 for c in cells})
    history = [f"plumecast {__version__} import fluent: {len(paths)} file(s), grid {ny} x {nx} cells of {cell_m} m "
               f"(index i -> column i - 1 + {border})"]
    fields = {}
    notes = {}
    for k in ("nu_t", "u", "v", "w"):
        if by_kind[k]:
            rep, conv = by_kind[k][0]
            fields[k] = to_grid(conv.values)
            history.append(conv.note)
        else:
            fields[k] = np.zeros((ny, nx))
            notes[k] = "not given in the Fluent import: zeros"
            history.append(f"{k}: not given, set to zero")
    nut_values = by_kind["nu_t"][0][1].values
    worst_cell = min(nut_values, key=nut_values.get)
    try:
        fields["nu_t"], nut_note = nonnegative_viscosity(fields["nu_t"])
    except ValueError as e:
        i, j = worst_cell
        raise FluentFormatError(f"{ref_rep.path}:{ref_rep.lines[(i, j)]}: {e} (the lowest at cell x{i}y{j})") from None
    if nut_note:
        history.append(nut_note)

    conc_files = by_kind["concentration"]
    units_found = {conv.mass_unit for _, conv in conc_files if conv.mass_unit}
    if len(units_found) > 1:
        raise FluentFormatError(f"concentration files disagree on units: {sorted(units_found)}")
    if units_found and mass_unit and mass_unit not in units_found:
        raise FluentFormatError(f"mass unit {mass_unit!r} given, but the concentration files are in {units_found.pop()}/m^3")
    unit = units_found.pop() if units_found else (mass_unit or "mg")
    if conc_files:
        if times is not None:
            if len(times) != len(conc_files):
                raise FluentFormatError(
                    f"{len(times)} times given for {len(conc_files)} concentration files "
                    f"({', '.join(r.path.name for r, _ in conc_files)})"
                )
            tvals = [float(t) for t in times]
        elif len(conc_files) == 1 and _time_of(conc_files[0][0].path, time_pattern) is None:
            tvals = [0.0]
        else:
            tvals = []
            for rep, _ in conc_files:
                t = _time_of(rep.path, time_pattern)
                if t is None:
                    raise FluentFormatError(
                        f"{rep.path}: no time in the file name (pattern {time_pattern!r}); give times explicitly"
                    )
                tvals.append(t)
        if not all(np.isfinite(tvals)):
            raise FluentFormatError(f"concentration times must be finite, got {tvals}")
        order = np.argsort(tvals, kind="stable")
        ts = np.asarray(tvals)[order]
        dup = np.flatnonzero(np.diff(ts) == 0)
        if dup.size:
            a, b = conc_files[order[dup[0]]][0].path, conc_files[order[dup[0] + 1]][0].path
            raise FluentFormatError(f"{a} and {b} have the same time {ts[dup[0]]} s")
        conc = np.stack([to_grid(conc_files[o][1].values) for o in order])
        for o in order:
            history.append(f"{conc_files[o][1].note} at t = {tvals[o]:g} s")
        conc_note = None
    else:
        ts = np.array([0.0])
        conc = np.zeros((1, ny, nx))
        conc_note = "not given in the Fluent import: zeros"
        history.append("concentration: not given, one zero frame at t = 0")

    nt = len(ts)
    if source is None:
        sxyz, srate = np.zeros((nt, 3)), np.zeros(nt)
        history.append("source: unknown, recorded as position (0, 0, 0) and rate 0")
    else:
        problem = source_outside_plane(source, fluid, x_lo=0.0, y_lo=0.0, dx=cell_m, dy=cell_m, times=ts,
                                       z_range=(0.0, np.inf))
        if problem:
            raise FluentFormatError(f"{problem} ({ny} x {nx} cells of {cell_m} m from x = y = 0)")
        sxyz, srate = source.position_at(ts), source.rate_at(ts)
    height = 1.5 if plane_height_m is None else float(plane_height_m)
    if plane_height_m is None:
        history.append("plane height: not in the export, assumed 1.5 m")

    config = {
        "importer": "fluent",
        "files": [str(p.name) for p in paths],
        "quantities": {r.path.name: c.kind for r, c in zip(reports, converted)},
        "cell_m": cell_m,
        "density_kg_m3": density,
        "border": border,
        "plane_height_m": height,
        "plane_height_given": plane_height_m is not None,
        "z_index": ref_rep.z_index,
        "zeros": sorted(notes) + (["concentration"] if conc_note else []),
    }
    ds = make_dataset(
        scenario_names=[scenario_name],
        splits=[split],
        times_s=ts,
        x_m=(np.arange(nx) + 0.5) * cell_m,
        y_m=(np.arange(ny) + 0.5) * cell_m,
        concentration=conc[None],
        u=fields["u"],
        v=fields["v"],
        w=fields["w"],
        nu_t=fields["nu_t"],
        fluid_fraction=fluid,
        source_xyz=np.asarray(sxyz)[None],
        source_rate=np.asarray(srate)[None],
        plane_height_m=height,
        mass_unit=unit,
        generator=GENERATOR,
        generator_version=__version__,
        scenario_config=config,
        origin=", ".join(str(p) for p in paths[:3]) + (" ..." if len(paths) > 3 else ""),
    )
    for k, note in notes.items():
        ds[k].attrs["note"] = note
    if conc_note:
        ds["concentration"].attrs["note"] = conc_note
    ds.attrs["history"] = "\n".join(history)
    ds.attrs["density_kg_m3"] = float(density)
    return ds


# ----------------------------------------------------------------------------- several exports


@dataclass(frozen=True)
class FluentExport:
    """One export of a multi-export import: its files, scenario name, split, source and times.

    ``times`` (s) are the concentration files' times in the order given, or None for the
    file-name pattern. ``source`` is a :class:`plumecast.scenario.Source` or None.
    """

    files: tuple
    name: str
    split: str = "train"
    source: object = None
    times: tuple | None = None


def export_kinds(paths, quantities: dict[str, str] | None = None) -> dict[Path, str | None]:
    """What each file of an export holds (``KINDS`` or None when unknown), from its header and the overrides."""
    overrides = {str(k): v for k, v in (quantities or {}).items()}
    out = {}
    for p in map(Path, paths):
        rep = read_fluent_report(p)
        out[p] = overrides.get(str(p), overrides.get(p.name)) or classify(rep.quantity, rep.units)
    return out


def _import_one(kwargs: dict) -> xr.Dataset:
    return import_fluent(**kwargs)


def import_fluent_exports(exports, *, jobs: int = 1, progress=None, **common) -> xr.Dataset:
    """Several Fluent exports of one plane to one dataset, one scenario per export.

    ``common`` are :func:`import_fluent`'s options shared by all exports (cell, height,
    density, border, shape, quantities, time pattern, mass unit). The dataset holds one
    flow: an export without a turbulent viscosity file takes the flow files (nu_t, u, v,
    w) of the first export that has one, and an export with its own flow must agree with
    it. All exports must give the same grid, fluid cells and times. ``jobs`` > 1 parses
    exports in that many processes (started as
    :func:`plumecast.io.openfoam.process_pool_context` says); ``progress(done, total)``
    counts finished exports. FluentFormatError names the export.
    """
    exports = list(exports)
    if not exports:
        raise FluentFormatError("no Fluent export given")
    multi = len(exports) > 1
    names = [e.name for e in exports]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise FluentFormatError(f"scenario name {dup[0]!r} is given to more than one export; name the exports apart")

    def named(k: int, e: Exception) -> FluentFormatError:
        return FluentFormatError(f"export {names[k]!r}: {e}" if multi else str(e))

    if not multi:  # one export: exactly import_fluent
        e = exports[0]
        return import_fluent(e.files, **common, scenario_name=e.name, split=e.split, source=e.source,
                             times=None if e.times is None else list(e.times))
    kinds = []
    for k, e in enumerate(exports):
        try:
            kinds.append(export_kinds(e.files, common.get("quantities")))
        except FluentFormatError as err:
            raise named(k, err) from None
    with_flow = [k for k, kd in enumerate(kinds) if "nu_t" in kd.values()]
    if not with_flow:
        raise FluentFormatError(
            "missing required field: no export holds the turbulent viscosity (nu_t), which the plane model's "
            "diffusivity starts from"
        )
    shared = [p for p, kind in kinds[with_flow[0]].items() if kind in ("nu_t", "u", "v", "w")]
    calls = []
    for k, e in enumerate(exports):
        files = list(map(Path, e.files)) if k in with_flow else shared + list(map(Path, e.files))
        calls.append({**common, "paths": files, "scenario_name": e.name, "split": e.split, "source": e.source,
                      "times": None if e.times is None else list(e.times)})
    report = progress or (lambda done, total: None)
    report(0, len(exports))
    results: list = [None] * len(exports)
    if jobs <= 1:
        for k, kw in enumerate(calls):
            try:
                results[k] = _import_one(kw)
            except FluentFormatError as err:
                raise named(k, err) from None
            report(k + 1, len(exports))
    else:
        from plumecast.io.openfoam import TaskFailed, run_in_pool  # one pool for both importers

        finished = []

        def on_done(k, _result):
            finished.append(k)
            report(len(finished), len(exports))

        try:
            results = run_in_pool(_import_one, calls, jobs, on_done)
        except TaskFailed as t:
            if isinstance(t.error, FluentFormatError):
                raise named(t.index, t.error) from None
            # a worker that died, or a dataset error
            raise FluentFormatError(f"export {names[t.index]!r}: {type(t.error).__name__}: {t.error}") from None
    return _combine(results, names, with_flow[0])


def _combine(parts: list[xr.Dataset], names: list[str], flow_from: int) -> xr.Dataset:
    """One dataset from single-export datasets that share grid, fluid cells, times, unit and flow."""
    ref = parts[flow_from]
    first = parts[0]
    for k, ds in enumerate(parts):
        who = f"export {names[k]!r}"
        if ds.sizes["y"] != first.sizes["y"] or ds.sizes["x"] != first.sizes["x"] or not (
                np.allclose(ds["x"].values, first["x"].values) and np.allclose(ds["y"].values, first["y"].values)):
            raise FluentFormatError(f"{who}: its plane grid ({ds.sizes['y']} x {ds.sizes['x']} cells of "
                                    f"{ds.attrs['dx_m']:g} m) differs from export {names[0]!r}'s ({first.sizes['y']} x "
                                    f"{first.sizes['x']} of {first.attrs['dx_m']:g} m); one dataset needs one grid")
        if not np.array_equal(ds["fluid"].values, first["fluid"].values):
            bad = int((ds["fluid"].values != first["fluid"].values).sum())
            raise FluentFormatError(f"{who}: {bad} plane cells are fluid in one export and solid in "
                                    f"export {names[0]!r}; one dataset needs one plane")
        if not np.array_equal(ds["time"].values, first["time"].values):
            raise FluentFormatError(f"{who}: its times {ds['time'].values.tolist()} s differ from export "
                                    f"{names[0]!r}'s {first['time'].values.tolist()} s; one dataset needs one time axis")
        if ds.attrs["mass_unit"] != first.attrs["mass_unit"]:
            raise FluentFormatError(f"{who}: concentration in {ds.attrs['mass_unit']}/m^3, export {names[0]!r}'s in "
                                    f"{first.attrs['mass_unit']}/m^3")
        if ds.attrs["plane_height_m"] != first.attrs["plane_height_m"]:
            raise FluentFormatError(f"{who}: plane height {ds.attrs['plane_height_m']} m differs from "
                                    f"{first.attrs['plane_height_m']} m")
        for var in ("u", "v", "w", "nu_t"):
            a, b = ds[var].values, ref[var].values
            if np.abs(a - b).max() > 1e-9 * max(float(np.abs(b).max()), 1e-30):
                raise FluentFormatError(
                    f"{who}: its {var} differs from export {names[flow_from]!r}'s by up to {np.abs(a - b).max():.3g}; "
                    "one dataset holds one flow field: import the exports separately"
                )
    ds = make_dataset(
        scenario_names=names,
        splits=[str(p["split"].values[0]) for p in parts],
        times_s=first["time"].values,
        x_m=first["x"].values,
        y_m=first["y"].values,
        concentration=np.concatenate([p["concentration"].values for p in parts]),
        u=ref["u"].values, v=ref["v"].values, w=ref["w"].values, nu_t=ref["nu_t"].values,
        fluid_fraction=first["fluid_fraction"].values,
        source_xyz=np.concatenate([np.stack([p[f"source_{c}"].values for c in "xyz"], axis=-1) for p in parts]),
        source_rate=np.concatenate([p["source_rate"].values for p in parts]),
        plane_height_m=float(first.attrs["plane_height_m"]),
        mass_unit=str(first.attrs["mass_unit"]),
        generator=GENERATOR,
        generator_version=__version__,
        scenario_config={"importer": "fluent", "exports": [
            {"scenario": n, **json.loads(p.attrs["scenario_config"])} for n, p in zip(names, parts)]},
        origin=f"{len(parts)} Fluent exports",
    )
    for var in ("u", "v", "w", "nu_t", "concentration"):
        if "note" in ref[var].attrs and var != "concentration":
            ds[var].attrs["note"] = ref[var].attrs["note"]
    history = [f"plumecast {__version__} import fluent: {len(parts)} exports ({', '.join(names[:6])}"
               f"{', ...' if len(names) > 6 else ''}), flow from export {names[flow_from]!r}"]
    for n, p in zip(names, parts):
        history += [f"{n}: {line}" for line in str(p.attrs.get("history", "")).splitlines()[1:]]
    ds.attrs["history"] = "\n".join(history)
    ds.attrs["density_kg_m3"] = float(first.attrs["density_kg_m3"])
    return ds
