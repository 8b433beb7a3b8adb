"""The plane dataset: one writer, one reader, one validator (netCDF through xarray).

Schema (version 1), dimensions ``scenario, time, y, x``:

==================  =======================  ===========================================
variable            dims                     meaning
==================  =======================  ===========================================
concentration       scenario, time, y, x     plane concentration, mass/m^3 (0 in solids)
u, v, w             y, x                     plane velocity, m/s (w > 0 upward)
nu_t                y, x                     plane turbulent kinematic viscosity, m^2/s
fluid               y, x                     1 where the coarse cell holds fluid, else 0
fluid_fraction      y, x                     fluid area fraction of the coarse cell
source_x/_y/_z      scenario, time           source position, m
source_rate         scenario, time           emission rate, mass/s
split               scenario                 'train', 'val', 'test' or 'ood'
==================  =======================  ===========================================

Optional flow at several heights (the column physics reads it; a dataset without it
loads as before), dimensions ``level, y, x`` with the coordinate ``level`` holding each
level's height above the floor in metres, strictly increasing inside the room:
``u_level``, ``v_level``, ``w_level`` (m/s) and ``nu_t_level`` (m^2/s, >= 0), all four or
none. :func:`column_levels_m` gives the levels the engines and importers write.

Optional per-scenario diagnostics ``mass_room``, ``mass_injected``, ``mass_outflow``
(scenario, time) hold the 3D mass budget where the generator knows it. Coordinates are
cell centres in metres and times in seconds. Attributes: ``schema_version``,
``plane_height_m``, ``dx_m``, ``dy_m``, ``mass_unit``, ``generator``,
``generator_version``, ``scenario_config`` (JSON), and free-form ``history``.

:func:`validate_dataset` refuses what cannot be: missing or mis-shaped variables, NaN or
inf, a grid under 2 x 2 cells, ``dx_m``/``dy_m`` that contradict the coordinates, a
non-finite ``plane_height_m``, a ``mass_unit`` not in :data:`MASS_UNITS`, negative
concentration beyond round-off, negative rates or ``nu_t``, and an emitting source off
the plane, in a solid plane cell or outside the room's height.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr

from plumecast.io.atomic import atomic_path
from plumecast.io.preflight import PreflightError, require_memory
from plumecast.reference.coarse_flux import FLUX_KEYS

SCHEMA_VERSION = 1
# ``val`` chooses (options, checkpoints, early stopping, seeds); ``test`` and ``ood`` are
# only reported (docs/evaluation.md).
SPLITS = ("train", "val", "test", "ood")
# Negative concentration beyond this share of the largest |value| is an error, not round-off.
NEGATIVE_TOLERANCE = 1e-6
# Mass units a concentration (mass/m^3) and a rate (mass/s) may be given in.
MASS_UNITS = ("ng", "ug", "mg", "g", "kg")
FIELD_VARS = ("u", "v", "w", "nu_t", "fluid", "fluid_fraction")
TRACK_VARS = ("source_x", "source_y", "source_z", "source_rate")
BUDGET_VARS = ("mass_room", "mass_injected", "mass_outflow")
LEVEL_VARS = ("u_level", "v_level", "w_level", "nu_t_level")
# Optional with the levels: the 3D flow's volume fluxes summed onto the column's cells
# (plumecast.reference.coarse_flux), all five or none.
FLUX_VARS = tuple(f"{k}_level" for k in FLUX_KEYS)
FLUX_DOCS = {
    "flux_x_level": ("m^3/s", "volume flux to the next cell along x (0 in the last column)"),
    "flux_y_level": ("m^3/s", "volume flux to the next cell along y (0 in the last row)"),
    "flux_z_level": ("m^3/s", "volume flux to the level above (0 at the top level)"),
    "outflow_level": ("m^3/s", "net volume flux out of the room through the cell's boundary faces"),
    "volume_level": ("m^3", "fluid volume of the cell"),
}
# Largest net volume flux out of a column cell, as a share of the largest face flux, that
# still counts as divergence-free (the 3D solvers' continuity tolerance is far below it).
FLUX_DIVERGENCE_TOL = 1e-3
# The importer's column when --levels is not given: the finest of up to this many layers that
# keeps a mesh cell in every layer (nine levels 0.3 m apart in a 3 m room of 0.25 m cells, the
# column val chose on both OpenFOAM rooms: docs/results.md, sessions 42-43).
DEFAULT_COLUMN_LEVELS = 10
REQUIRED_ATTRS = (
    "schema_version", "plane_height_m", "dx_m", "dy_m", "mass_unit", "generator", "generator_version",
    "scenario_config",
)


class DatasetError(ValueError):
    """A dataset that does not follow the plumecast schema; the message names the problem."""


def make_dataset(
    *,
    scenario_names,
    splits,
    times_s,
    x_m,
    y_m,
    concentration,
    u,
    v,
    w,
    nu_t,
    fluid_fraction,
    source_xyz,
    source_rate,
    plane_height_m: float,
    mass_unit: str,
    generator: str,
    generator_version: str,
    scenario_config: dict | str,
    budget: dict | None = None,
    levels: dict | None = None,
    origin: str = "dataset",
) -> xr.Dataset:
    """Assemble and validate a dataset from arrays.

    ``concentration`` is ``(scenario, time, y, x)``; ``source_xyz`` is ``(scenario, time,
    3)``; ``budget`` optionally maps ``mass_room``/``mass_injected``/``mass_outflow`` to
    ``(scenario, time)`` arrays; ``levels`` optionally maps ``z_m`` ``(level,)`` and ``u``,
    ``v``, ``w``, ``nu_t`` ``(level, y, x)`` to the flow at several heights, and
    optionally the coarse fluxes ``flux_x`` ... ``volume`` of
    :func:`plumecast.reference.coarse_flux.coarse_level_fluxes` (all five). ``origin`` names what the data came from in error
    messages (an importer's input files).
    """
    x_m, y_m = np.asarray(x_m, float), np.asarray(y_m, float)
    fluid_fraction = np.asarray(fluid_fraction, float)
    source_xyz = np.asarray(source_xyz, float)
    st, yx = ("scenario", "time"), ("y", "x")
    mass = f"{mass_unit}"
    data_vars = {
        "concentration": (st + yx, np.asarray(concentration, np.float32), {"units": f"{mass}/m^3"}),
        "u": (yx, np.asarray(u, float), {"units": "m/s", "long_name": "plane velocity along x"}),
        "v": (yx, np.asarray(v, float), {"units": "m/s", "long_name": "plane velocity along y"}),
        "w": (yx, np.asarray(w, float), {"units": "m/s", "long_name": "vertical velocity through the plane"}),
        "nu_t": (yx, np.asarray(nu_t, float), {"units": "m^2/s", "long_name": "turbulent kinematic viscosity"}),
        "fluid": (yx, (fluid_fraction > 0).astype(np.int8), {"long_name": "1 in fluid cells"}),
        "fluid_fraction": (yx, fluid_fraction, {"long_name": "fluid area fraction"}),
        "source_x": (st, source_xyz[..., 0], {"units": "m"}),
        "source_y": (st, source_xyz[..., 1], {"units": "m"}),
        "source_z": (st, source_xyz[..., 2], {"units": "m"}),
        "source_rate": (st, np.asarray(source_rate, float), {"units": f"{mass}/s"}),
        "split": (("scenario",), np.asarray(splits, dtype=str)),
    }
    for name, arr in (budget or {}).items():
        if name not in BUDGET_VARS:
            raise DatasetError(f"unknown budget variable {name!r}; expected one of {BUDGET_VARS}")
        data_vars[name] = (st, np.asarray(arr, float), {"units": mass})
    if levels is not None:
        flux_keys = {n.removesuffix("_level") for n in FLUX_VARS}
        unknown = sorted(set(levels) - {"z_m", "u", "v", "w", "nu_t"} - flux_keys)
        partial = flux_keys & set(levels) and not flux_keys <= set(levels)
        if unknown or "z_m" not in levels or partial:
            raise DatasetError(f"{origin}: levels must map z_m, u, v, w, nu_t (and all or none of "
                               f"{', '.join(sorted(flux_keys))}); got {sorted(levels)}")
        lyx = ("level", "y", "x")
        for name, long in (("u", "velocity along x"), ("v", "velocity along y"), ("w", "vertical velocity")):
            data_vars[f"{name}_level"] = (lyx, np.asarray(levels[name], float), {"units": "m/s", "long_name": long})
        data_vars["nu_t_level"] = (lyx, np.asarray(levels["nu_t"], float),
                                   {"units": "m^2/s", "long_name": "turbulent kinematic viscosity"})
        for name in FLUX_VARS:
            key = name.removesuffix("_level")
            if key in levels:
                units, long = FLUX_DOCS[name]
                data_vars[name] = (lyx, np.asarray(levels[key], float), {"units": units, "long_name": long})
    coords = {
        "scenario": ("scenario", np.asarray(scenario_names, dtype=str)),
        "time": ("time", np.asarray(times_s, float), {"units": "s"}),
        "y": ("y", y_m, {"units": "m"}),
        "x": ("x", x_m, {"units": "m"}),
    }
    if levels is not None:
        coords["level"] = ("level", np.asarray(levels["z_m"], float), {"units": "m", "long_name": "height above the floor"})
    attrs = {
        "schema_version": SCHEMA_VERSION,
        "plane_height_m": float(plane_height_m),
        "dx_m": float(np.diff(x_m).mean()) if len(x_m) > 1 else float("nan"),
        "dy_m": float(np.diff(y_m).mean()) if len(y_m) > 1 else float("nan"),
        "mass_unit": mass_unit,
        "generator": generator,
        "generator_version": generator_version,
        "scenario_config": scenario_config if isinstance(scenario_config, str) else json.dumps(scenario_config, sort_keys=True),
    }
    ds = xr.Dataset(data_vars, coords=coords, attrs=attrs)
    validate_dataset(ds, origin)
    return ds


def validate_dataset(ds: xr.Dataset, source: str = "dataset") -> None:
    """Raise DatasetError naming the first problem found; return None when ``ds`` is sound."""

    def fail(msg):
        raise DatasetError(f"{source}: {msg}")

    for name in ("concentration",) + FIELD_VARS + TRACK_VARS + ("split",):
        if name not in ds.variables:
            fail(f"missing variable {name!r}")
    for name in ("scenario", "time", "y", "x"):
        if name not in ds.coords:
            fail(f"missing coordinate {name!r}")
    expected = {"concentration": ("scenario", "time", "y", "x"), "split": ("scenario",)}
    expected.update({n: ("y", "x") for n in FIELD_VARS})
    expected.update({n: ("scenario", "time") for n in TRACK_VARS + BUDGET_VARS})
    for name, dims in expected.items():
        if name in ds.variables and ds[name].dims != dims:
            fail(f"variable {name!r} has dimensions {ds[name].dims}, expected {dims}")
    for name in REQUIRED_ATTRS:
        if name not in ds.attrs:
            fail(f"missing attribute {name!r}")
    if int(ds.attrs["schema_version"]) != SCHEMA_VERSION:
        fail(f"schema version {ds.attrs['schema_version']} is not the supported {SCHEMA_VERSION}")
    sizes = ds.sizes
    if min(sizes["scenario"], sizes["time"], sizes["y"], sizes["x"]) < 1:
        fail(f"empty dimension in {dict(sizes)}")
    if sizes["y"] < 2 or sizes["x"] < 2:
        fail(f"the plane grid is {sizes['y']} (y) x {sizes['x']} (x) cells; the plane model needs at least 2 x 2 "
             "(a plane cell as large as the room?)")
    for name in ("plane_height_m", "dx_m", "dy_m"):
        value = _number(ds.attrs[name])
        if value is None or not np.isfinite(value):
            fail(f"attribute {name!r} must be a finite number, got {value if value is not None else ds.attrs[name]!r}")
    if str(ds.attrs["mass_unit"]) not in MASS_UNITS:
        fail(f"attribute 'mass_unit' must be one of {', '.join(MASS_UNITS)}, got {ds.attrs['mass_unit']!r}")
    names = [str(s) for s in ds["scenario"].values]
    if len(set(names)) != len(names):
        fail("scenario names are not unique")
    bad_split = sorted({str(s) for s in ds["split"].values} - set(SPLITS))
    if bad_split:
        fail(f"unknown split values {bad_split}; expected {SPLITS}")
    t = np.asarray(ds["time"].values, float)
    if not np.isfinite(t).all() or (np.diff(t) <= 0).any():
        fail("time coordinate must be finite and strictly increasing")
    for axis in ("x", "y"):
        c = np.asarray(ds[axis].values, float)
        if not np.isfinite(c).all() or (len(c) > 1 and (np.diff(c) <= 0).any()):
            fail(f"{axis} coordinate must be finite and strictly increasing")
        if len(c) > 2 and not np.allclose(np.diff(c), np.diff(c)[0], rtol=1e-6):
            fail(f"{axis} coordinate is not uniformly spaced")
        step = float(ds.attrs[f"d{axis}_m"])
        if not np.isclose(step, np.diff(c).mean(), rtol=1e-6, atol=0.0):
            fail(f"attribute 'd{axis}_m' = {step:g} m contradicts the {axis} coordinate, whose cells are "
                 f"{np.diff(c).mean():g} m apart")
    for name in ("concentration",) + FIELD_VARS + TRACK_VARS + tuple(n for n in BUDGET_VARS if n in ds):
        values = np.asarray(ds[name].values, float)
        if not np.isfinite(values).all():
            count = int((~np.isfinite(values)).sum())
            fail(f"variable {name!r} holds {count} non-finite values (NaN or inf)")
    fluid = np.asarray(ds["fluid"].values)
    if not set(np.unique(fluid)).issubset({0, 1}):
        fail("variable 'fluid' must hold only 0 and 1")
    if not fluid.any():
        fail("variable 'fluid' marks no fluid cell")
    frac = np.asarray(ds["fluid_fraction"].values, float)
    if (frac < 0).any() or (frac > 1).any() or ((frac > 0) != (fluid == 1)).any():
        fail("variable 'fluid_fraction' must lie in [0, 1] and be positive exactly where 'fluid' is 1")
    if (np.asarray(ds["source_rate"].values) < 0).any():
        fail("variable 'source_rate' has negative rates")
    if (np.asarray(ds["nu_t"].values) < 0).any():
        fail("variable 'nu_t' has negative values")
    conc = np.asarray(ds["concentration"].values)
    worst = float(conc.min())
    if worst < 0 and -worst > NEGATIVE_TOLERANCE * float(np.abs(conc).max()):
        count = int((conc < -NEGATIVE_TOLERANCE * float(np.abs(conc).max())).sum())
        fail(f"variable 'concentration' holds {count} negative values (the lowest {worst:.4g}), beyond round-off "
             f"({NEGATIVE_TOLERANCE:g} of the largest value)")
    problem = source_problem(ds) or level_problem(ds)
    if problem:
        fail(problem)
    try:
        json.loads(ds.attrs["scenario_config"])
    except (TypeError, json.JSONDecodeError) as e:
        fail(f"attribute 'scenario_config' is not valid JSON: {e}")


def _level_fields_problem(ds: xr.Dataset, names, what: str) -> str | None:
    """All of ``names`` present, on ``(level, y, x)`` with the ``level`` coordinate, and finite; or what is wrong."""
    missing = sorted(set(names) - set(ds.variables))
    if missing:
        return f"{what} need all of {', '.join(names)}; missing {missing}"
    if "level" not in ds.coords:
        return f"{what} without the coordinate 'level' (heights in m)"
    for name in names:
        if ds[name].dims != ("level", "y", "x"):
            return f"variable {name!r} has dimensions {ds[name].dims}, expected ('level', 'y', 'x')"
        if not np.isfinite(np.asarray(ds[name].values, float)).all():
            return f"variable {name!r} holds non-finite values (NaN or inf)"
    return None


def level_problem(ds: xr.Dataset) -> str | None:
    """What is wrong with the optional flow levels (all four variables or none), or None."""
    if not any(n in ds.variables for n in LEVEL_VARS):
        return None
    problem = _level_fields_problem(ds, LEVEL_VARS, "flow levels")
    if problem:
        return problem
    if (np.asarray(ds["nu_t_level"].values) < 0).any():
        return "variable 'nu_t_level' has negative values"
    z = np.asarray(ds["level"].values, float)
    height = room_height_m(ds)
    if not np.isfinite(z).all() or (np.diff(z) <= 0).any() or z[0] <= 0 or (height is not None and z[-1] >= height):
        return (f"coordinate 'level' must be heights strictly increasing inside the room (0, "
                f"{height if height is not None else 'ceiling'}) m, got {np.round(z, 4).tolist()}")
    return flux_problem(ds)


def flux_problem(ds: xr.Dataset) -> str | None:
    """What is wrong with the optional coarse fluxes (all five with the levels, or none), or None."""
    if not any(n in ds.variables for n in FLUX_VARS):
        return None
    problem = _level_fields_problem(ds, FLUX_VARS, "coarse fluxes")
    if problem:
        return problem
    arrays = {name: np.asarray(ds[name].values, float) for name in FLUX_VARS}
    if (arrays["volume_level"] < 0).any():
        return "variable 'volume_level' has negative values"
    empty = np.flatnonzero(arrays["volume_level"].reshape(len(arrays["volume_level"]), -1).sum(axis=1) <= 0)
    if len(empty):
        z = np.asarray(ds["level"].values, float)[empty]
        many = len(empty) > 1
        heights = ", ".join(f"{h:g}" for h in z[:4]) + (" ..." if len(z) > 4 else "")
        return (f"{len(z)} of the column's {len(arrays['volume_level'])} levels ({heights} m) "
                f"hold{'' if many else 's'} no fluid volume: a column finer than the mesh it was summed from")
    edge = {"flux_x_level": np.s_[:, :, -1], "flux_y_level": np.s_[:, -1, :], "flux_z_level": np.s_[-1]}
    for name, last in edge.items():
        if np.any(arrays[name][last] != 0):
            return f"variable {name!r} must be 0 on the last cell along its axis (no neighbour there)"
    from plumecast.reference.coarse_flux import relative_divergence

    imbalance = relative_divergence({n.removesuffix("_level"): a for n, a in arrays.items()})
    if imbalance > FLUX_DIVERGENCE_TOL:
        return (f"the coarse fluxes are not divergence-free: a cell's net outflow is {imbalance:.2g} of the largest "
                "face flux (a flux of another mesh, or of an unconverged flow?)")
    return None


def column_levels_m(height_m: float, plane_height_m: float, n_levels: int) -> np.ndarray:
    """Heights (m) of a column of ``n_levels`` equal layers of the room height, shifted so that the plane is one.

    The spacing is ``room_height / n_levels``; levels are the plane height plus whole
    multiples of it that fall strictly inside the room (a plane at a layer centre gives
    exactly ``n_levels`` levels).
    """
    if not (height_m > 0 and 0 < plane_height_m < height_m and n_levels >= 1):
        raise ValueError(f"no column in a room {height_m} m high with the plane at {plane_height_m} m")
    h = height_m / n_levels
    k = np.arange(-n_levels, n_levels + 1)
    z = plane_height_m + k * h
    return z[(z > 0.25 * h) & (z < height_m - 0.25 * h)]


def column_too_fine(height_m: float, plane_height_m: float, n_levels: int, centres_z) -> str | None:
    """Why a column of ``n_levels`` layers (:func:`column_levels_m`) is finer than a mesh, or None.

    ``centres_z``: the heights (m) of the mesh's cell centres; a layer that holds none of them
    would have no volume (its coarse fluxes all zero) and the column cannot be built.
    """
    from plumecast.reference.coarse_flux import empty_layers, level_edges_m

    if n_levels > np.size(centres_z):  # more layers than cells (and no huge column built to say so)
        return (f"a column of {n_levels} layers is finer than the mesh: more layers than its {np.size(centres_z)} "
                "cell centres")
    z = column_levels_m(height_m, plane_height_m, n_levels)
    empty = empty_layers(z, height_m, centres_z)
    if not len(empty):
        return None
    edges = level_edges_m(z, height_m)
    spans = ", ".join(f"{edges[k]:.3g}-{edges[k + 1]:.3g} m" for k in empty[:3]) + (" ..." if len(empty) > 3 else "")
    return (f"a column of {n_levels} layers is finer than the mesh: {len(empty)} of its {len(z)} layers ({spans}) "
            "hold no cell centre")


def finest_column_levels(height_m: float, plane_height_m: float, centres_z, upto: int = DEFAULT_COLUMN_LEVELS) -> int:
    """The largest ``n <= upto`` whose column has a mesh cell centre in every layer (0 when none has)."""
    # A column has about n layers, each needing its own centre height: no more than the distinct heights.
    distinct = np.unique(np.round(np.asarray(centres_z, float), 9)).size
    for n in range(min(int(upto), distinct + 1, 1000), 0, -1):
        if len(column_levels_m(height_m, plane_height_m, n)) and column_too_fine(height_m, plane_height_m, n,
                                                                                  centres_z) is None:
            return n
    return 0


def _number(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def plane_cell_of(ds: xr.Dataset, x: float, y: float) -> tuple[int, int] | None:
    """The plane cell ``(j, i)`` holding the point ``(x, y)`` (edges included), or None outside the plane."""
    out = []
    for coord, axis in ((y, "y"), (x, "x")):
        c = np.asarray(ds[axis].values, float)
        h = float(ds.attrs[f"d{axis}_m"])
        lo = c[0] - 0.5 * h
        k = int(np.floor((coord - lo) / h))
        tol = 1e-9 * max(1.0, abs(lo) + len(c) * h)
        if coord < lo - tol or coord > lo + len(c) * h + tol:
            return None
        out.append(min(max(k, 0), len(c) - 1))
    return out[0], out[1]


def room_height_m(ds: xr.Dataset) -> float | None:
    """The room height of the dataset's scenario config (``room.size_m``), when it gives one."""
    try:
        size = json.loads(ds.attrs["scenario_config"])["room"]["size_m"]
        return float(size[2])
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def source_problem(ds: xr.Dataset) -> str | None:
    """What is wrong with a source track, or None: every emitting source in a fluid plane cell.

    Where the rate is positive, a source's (x, y) must lie on the plane and in a fluid
    cell of it (the plane model deposits the emission there), and its z inside the room
    when the scenario config gives the room's height. A zero rate (an importer's
    unknown source) is not checked.
    """
    fluid = np.asarray(ds["fluid"].values)
    height = room_height_m(ds)
    xs, ys, zs = (np.asarray(ds[f"source_{k}"].values, float) for k in ("x", "y", "z"))
    rate = np.asarray(ds["source_rate"].values, float)
    times = np.asarray(ds["time"].values, float)
    names = [str(s) for s in ds["scenario"].values]
    for n, name in enumerate(names):
        for t in np.flatnonzero(rate[n] > 0):
            x, y, z = xs[n, t], ys[n, t], zs[n, t]
            where = f"scenario {name!r}: the source at ({x:.3f}, {y:.3f}, {z:.3f}) m, t = {times[t]:g} s,"
            cell = plane_cell_of(ds, x, y)
            if cell is None:
                xv, yv = np.asarray(ds["x"].values), np.asarray(ds["y"].values)
                dx, dy = float(ds.attrs["dx_m"]), float(ds.attrs["dy_m"])
                return (f"{where} lies outside the plane (x {xv[0] - dx / 2:g} .. {xv[-1] + dx / 2:g} m, "
                        f"y {yv[0] - dy / 2:g} .. {yv[-1] + dy / 2:g} m)")
            if fluid[cell] != 1:
                return f"{where} lies in a solid cell of the plane (row {cell[0]}, column {cell[1]})"
            if height is not None and not (0.0 <= z <= height):
                return f"{where} lies outside the room's height 0 .. {height:g} m"
    return None


def nonnegative_viscosity(nu_t) -> tuple[np.ndarray, str | None]:
    """The importers' one policy for negative turbulent viscosity: refuse it, unless round-off.

    Values within round-off of zero (down to -1e-9 of the largest |value|) become 0 and the
    returned note counts them; anything more negative raises ValueError naming the count
    and the lowest value. A negative eddy viscosity is not a state of the RANS models whose
    output is imported (nu_t = C k^2 / epsilon or k / omega), so it means a wrong field,
    unit or column, or a broken solution; clipping it would hide that and change the
    diffusivity the plane model starts from.
    """
    nu_t = np.asarray(nu_t, float)
    neg = nu_t < 0
    if not neg.any():
        return nu_t, None
    tol = 1e-9 * float(np.abs(nu_t).max())
    bad = nu_t < -tol
    if bad.any():
        raise ValueError(f"{int(bad.sum())} cell(s) of negative turbulent viscosity, the lowest "
                         f"{float(nu_t.min()):.4g} m^2/s; a negative eddy viscosity is not physical (wrong field, "
                         "unit or a broken solution?)")
    return np.where(neg, 0.0, nu_t), f"nu_t: {int(neg.sum())} round-off negative value(s) (>= {-tol:.3g}) set to 0"


def source_outside_plane(source, fluid, *, x_lo: float, y_lo: float, dx: float, dy: float, times,
                         z_range: tuple[float, float] = (-np.inf, np.inf)) -> str | None:
    """Why a declared source (a :class:`plumecast.scenario.Source`) cannot be on this plane, or None.

    ``fluid`` ``(ny, nx)`` marks fluid cells of ``dx`` x ``dy`` from the corner ``(x_lo,
    y_lo)``. The position is checked at ``times``, at the path's waypoints and densely
    between them (whatever the rate): (x, y) in a fluid plane cell, z in ``z_range``.
    """
    fluid = np.asarray(fluid) > 0
    ny, nx = fluid.shape
    times = np.asarray(times, float)
    if source.path is not None:
        way = np.asarray(source.path, float)[:, 0]
        times = np.union1d(times, np.union1d(way, np.linspace(way[0], way[-1], 501)))
    pos = source.position_at(times)
    for t, (x, y, z) in zip(times, pos):
        what = "source" if source.path is None else f"source path at t = {t:g} s"
        fx, fy = (x - x_lo) / dx, (y - y_lo) / dy
        if not (-1e-9 <= fx <= nx + 1e-9 and -1e-9 <= fy <= ny + 1e-9):
            return (f"the {what} ({x:g}, {y:g}, {z:g}) m lies outside the plane "
                    f"(x {x_lo:g} .. {x_lo + nx * dx:g} m, y {y_lo:g} .. {y_lo + ny * dy:g} m)")
        i, j = min(max(int(np.floor(fx)), 0), nx - 1), min(max(int(np.floor(fy)), 0), ny - 1)
        if not fluid[j, i]:
            return f"the {what} ({x:g}, {y:g}, {z:g}) m lies in a solid cell of the plane (row {j}, column {i})"
        if not z_range[0] <= z <= z_range[1]:
            return f"the {what} ({x:g}, {y:g}, {z:g}) m lies outside the height range {z_range[0]:g} .. {z_range[1]:g} m"
    return None


LAZY_CHUNK_BYTES = 4 * 2**20


def write_dataset(ds: xr.Dataset, path: str | Path) -> Path:
    """Validate, then write atomically: a temporary file in the same folder, renamed."""
    path = Path(path)
    validate_dataset(ds, str(path))
    # Chunks of one scenario and up to 4 MiB of its snapshots: lazy training and evaluation
    # read a few scenarios at a time, and netCDF-C's default chunks (tens of scenarios)
    # made each such read decompress many (docs/benchmarks.md, "Datasets larger than memory").
    _, n_times, ny, nx = ds["concentration"].shape
    snapshots = max(1, min(n_times, LAZY_CHUNK_BYTES // max(1, ny * nx * ds["concentration"].dtype.itemsize)))
    chunks = (1, snapshots, ny, nx)
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4",
                     encoding={"concentration": {"zlib": True, "complevel": 1, "chunksizes": chunks}})
    return path


def read_dataset(path: str | Path) -> xr.Dataset:
    """Read a dataset fully into memory and validate it; DatasetError names any problem."""
    path = Path(path)
    try:
        with _open_netcdf(path) as ds:
            _require_memory(ds.nbytes, f"reading {path} ({dict(ds.sizes)})")
            ds = ds.load()
    except DatasetError:
        raise
    except Exception as e:  # netCDF4 raises OSError, RuntimeError, ValueError for bad files
        raise DatasetError(f"{path}: not a readable netCDF dataset ({type(e).__name__}: {e})") from None
    validate_dataset(ds, str(path))
    return ds


def _open_netcdf(path: Path, **kwargs) -> xr.Dataset:
    """``xr.open_dataset`` of a plumecast file; DatasetError when it is missing or not netCDF."""
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    try:
        return xr.open_dataset(path, engine="netcdf4", **kwargs)
    except Exception as e:  # netCDF4 raises OSError, RuntimeError, ValueError for bad files
        raise DatasetError(f"{path}: not a readable netCDF dataset ({type(e).__name__}: {e})") from None


def _require_memory(nbytes: float, what: str) -> None:
    """Room for twice ``nbytes`` (the data and a working copy), or a DatasetError saying what to do."""
    try:
        require_memory(2 * nbytes, what, "read it on a larger machine or split its scenarios")
    except PreflightError as e:
        raise DatasetError(str(e)) from None


# Scenarios validated at once when a dataset is opened lazily: blocks of about this many
# bytes of concentration (validate_dataset holds a few float64 copies of its input).
_LAZY_BLOCK_BYTES = 32 * 2**20


def open_dataset_lazy(path: str | Path) -> xr.Dataset:
    """Open a dataset leaving its concentration in the file; validate it a block of scenarios at a time.

    Everything but ``concentration`` (scenario x time x y x x, the one variable that grows
    with the data) is read into memory; ``concentration`` stays a lazily indexed variable
    (xarray's netCDF4 backend, ``cache=False`` so no read keeps a copy), and indexing it
    reads only the hyperslab asked for. :func:`plumecast.forcing.prepare_data` with
    ``lazy=True`` reads it so. The dataset passes the same checks as :func:`read_dataset`:
    :func:`validate_dataset` on blocks of scenarios of about ``_LAZY_BLOCK_BYTES``, with
    the two checks that span scenarios done over the whole file (unique names, and
    negative concentration against the largest value of all scenarios). The file stays
    open while the dataset is in use; ``close()`` it (or use ``with``) when done.
    """
    path = Path(path)
    ds = _open_netcdf(path, cache=False)
    try:
        if "concentration" not in ds.variables:
            validate_dataset(ds, str(path))  # names what is missing
        rest = ds.drop_vars("concentration")
        _require_memory(rest.nbytes, f"reading {path} without its concentration ({dict(ds.sizes)})")
        rest = rest.load()
        _validate_in_blocks(rest.assign(concentration=ds["concentration"]), str(path))
    except BaseException:
        ds.close()
        raise
    out = rest.assign(concentration=ds["concentration"])
    out.set_close(ds.close)
    return out


def _validate_in_blocks(ds: xr.Dataset, source: str) -> None:
    """:func:`validate_dataset` of ``ds`` (concentration lazy) without holding more than a block of it."""
    names = [str(s) for s in ds["scenario"].values]
    if len(set(names)) != len(names):
        raise DatasetError(f"{source}: scenario names are not unique")
    conc = ds["concentration"]
    if conc.dims != ("scenario", "time", "y", "x"):
        validate_dataset(ds.isel(scenario=slice(0, 1)).load(), source)  # names the dimensions
    per_scenario = max(1, int(np.prod(conc.shape[1:])) * 8)
    step = max(1, _LAZY_BLOCK_BYTES // per_scenario)
    worst, largest = 0.0, 0.0
    for start in range(0, max(1, ds.sizes["scenario"]), step):
        block = ds.isel(scenario=slice(start, start + step)).load()
        values = block["concentration"].values
        if np.isfinite(values).all():
            worst = min(worst, float(values.min()))
            largest = max(largest, float(np.abs(values).max()))
        # Negative values are judged below against the largest value of all scenarios, as
        # validate_dataset judges them against its whole input; here they are set to 0.
        block["concentration"] = block["concentration"].clip(min=0)
        validate_dataset(block, source)
    if worst < 0 and -worst > NEGATIVE_TOLERANCE * largest:
        count = 0
        for start in range(0, ds.sizes["scenario"], step):
            values = ds["concentration"].isel(scenario=slice(start, start + step)).values
            count += int((values < -NEGATIVE_TOLERANCE * largest).sum())
        raise DatasetError(f"{source}: variable 'concentration' holds {count} negative values (the lowest {worst:.4g}), "
                           f"beyond round-off ({NEGATIVE_TOLERANCE:g} of the largest value)")


def scenario_config(ds: xr.Dataset) -> dict:
    """The full scenario configuration stored with the dataset."""
    return json.loads(ds.attrs["scenario_config"])
