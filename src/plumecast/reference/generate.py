"""From a scenario set to a plane dataset with the embedded 3D reference simulator.

The steady flow is computed once per room and cached; scenarios are simulated in chunks
and each finished scenario is cached too, so an interrupted generation resumes where it
stopped and a rerun with the same configuration reuses what exists. Caches live in a
hidden folder beside the output file and are keyed by a hash of everything that shapes
their content (configuration and generator version).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import xarray as xr

from plumecast import __version__
from plumecast.geometry import Grid3D, plane_fluid_fraction
from plumecast.io.atomic import atomic_path
from plumecast.io.dataset import LEVEL_VARS, DatasetError, column_levels_m, make_dataset, read_dataset, write_dataset
from plumecast.io.preflight import require_memory
from plumecast.reference.flow import Flow3D, read_flow, solve_flow, write_flow
from plumecast.reference.plane import level_flow, plane_flow
from plumecast.reference.transport import simulate_scalar
from plumecast.scenario import Scenario, ScenarioSet

GENERATOR = "plumecast-embedded"
CACHE_DIR_NAME = ".plumecast-cache"


@dataclass
class GenerationReport:
    """What a generation did, for the command line to print."""

    path: Path
    reused: bool
    flow_cached: bool
    scenarios_cached: int
    scenarios_simulated: int
    flow_diagnostics: dict
    seconds: float


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _room_key(sset: ScenarioSet) -> str:
    cfg = {k: v for k, v in sset.config.items() if k in ("room", "flow")}
    return _digest({"room": cfg, "fine_cell_m": sset.simulation.fine_cell_m, "version": __version__})


def scenario_key(sset: ScenarioSet, scenario: Scenario, room_key: str) -> str:
    raw = next((s for s in sset.config.get("scenarios", []) if s.get("name") == scenario.name), None)
    return _digest({"scenario": raw, "simulation": asdict(sset.simulation), "room": room_key})


def flow_for(sset: ScenarioSet, grid: Grid3D, cache: Path, on_progress=None) -> tuple[Flow3D, bool]:
    """The room's converged flow, from the cache when it is there."""
    path = cache / f"flow-{_room_key(sset)}.nc"
    if path.exists():
        try:
            return read_flow(path), True
        except ValueError:
            path.unlink()  # a damaged cache entry is recomputed, never trusted
    flow = solve_flow(grid, sset.flow, progress=on_progress)
    write_flow(path, grid, flow)
    return flow, False


def read_scenario_cache(path: Path) -> dict | None:
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            out = {k: np.asarray(ds[k].values) for k in ds.data_vars}
    except Exception:
        path.unlink(missing_ok=True)
        return None
    return out if all(np.isfinite(v).all() for v in out.values()) else None


def write_scenario_cache(path: Path, entry: dict) -> None:
    """Write one finished scenario's arrays (plane frames over time, budget) atomically."""
    dims = {"concentration": ("time", "y", "x"), "source_xyz": ("time", "xyz")}
    ds = xr.Dataset({k: (dims.get(k, ("time",) if np.ndim(v) else ()), np.asarray(v)) for k, v in entry.items()})
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4")


# Memory model of an embedded generation (bytes), measured on the tiny room from 6k to 88k
# cells (scripts/memory_model.py; docs/errors.md): the flow's sparse
# LU factorisation of the pressure matrix dominates, about LU_BYTES_PER_NONZERO bytes per
# non-zero with LU_FILL_SCALE * n_fluid ** LU_FILL_POWER non-zeros (a fit: 0.8 M at 5.6k
# fluid cells, 56 M at 88k); the grid, flow fields and operators take GRID_BYTES_PER_CELL
# per cell, and each scenario of a chunk SCALAR_BYTES_PER_CELL for its 3D field and fluxes.
LU_FILL_SCALE = 0.92
LU_FILL_POWER = 1.575
LU_BYTES_PER_NONZERO = 22
GRID_BYTES_PER_CELL = 8 * 40
SCALAR_BYTES_PER_CELL = 8 * 16


def grid_cells(sset: ScenarioSet) -> tuple[int, int, int]:
    """``(nz, ny, nx)`` of the 3D grid of ``sset`` at its ``fine_cell_m``, without building it."""
    h = sset.simulation.fine_cell_m
    lx, ly, lz = sset.room.size_m
    return tuple(max(1, int(round(v / h))) for v in (lz, ly, lx))


def estimate_memory_bytes(sset: ScenarioSet, chunk_size: int = 16) -> float:
    """Peak memory (bytes) of :func:`generate_embedded` for ``sset``, from the memory model above."""
    nz, ny, nx = grid_cells(sset)
    n = float(nz) * ny * nx
    n_fluid = n * float(np.mean(sset.room.plan))
    chunk = min(max(1, chunk_size), len(sset.scenarios))
    lu = LU_BYTES_PER_NONZERO * LU_FILL_SCALE * n_fluid**LU_FILL_POWER
    return n * GRID_BYTES_PER_CELL + lu + chunk * n * SCALAR_BYTES_PER_CELL


def check_memory(sset: ScenarioSet, chunk_size: int = 16) -> None:
    """PreflightError (with both figures) when the generation would need more memory than the machine has."""
    nz, ny, nx = grid_cells(sset)
    h = sset.simulation.fine_cell_m
    require_memory(
        estimate_memory_bytes(sset, chunk_size),
        f"simulation.fine_cell_m = {h:g} m makes a 3D grid of {nz} x {ny} x {nx} = {nz * ny * nx:.3g} cells, which",
        "choose a coarser fine_cell_m (or a smaller --chunk)",
    )


def existing_dataset_matches(path: Path, sset: ScenarioSet) -> bool:
    """True when ``path`` is a valid dataset of exactly this configuration and version."""
    if not path.exists():
        return False
    try:
        ds = read_dataset(path)
    except DatasetError:
        return False
    return (
        ds.attrs.get("generator") == GENERATOR
        and ds.attrs.get("generator_version") == __version__
        and ds.attrs.get("scenario_config") == sset.config_json()
        and [str(s) for s in ds["scenario"].values] == [s.name for s in sset.scenarios]
        # A dataset written before the flow levels existed is rebuilt (from the caches) to gain them.
        and all(name in ds.variables for name in LEVEL_VARS)
    )


def generate_embedded(
    sset: ScenarioSet,
    out: str | Path,
    *,
    chunk_size: int = 16,
    on_stage: Callable[[str], None] | None = None,
    on_flow_progress: Callable[[int, float], None] | None = None,
    on_scenarios: Callable[[int, int], None] | None = None,
    on_steps: Callable[[int, int], None] | None = None,
) -> GenerationReport:
    """Generate (or reuse) the plane dataset of ``sset`` at ``out``.

    Raises GeometryError/ScenarioError before any work when the room or a source is
    invalid, and PreflightError when the grid would need more memory than the machine
    has; on any failure nothing is written at ``out``.
    """
    t0 = time.perf_counter()
    out = Path(out)
    sim = sset.simulation
    check_memory(sset, chunk_size)  # before the grid is built: a too-fine grid must not allocate
    grid = sset.room.discretise(sim.fine_cell_m)
    sset.validate_sources(grid)
    if existing_dataset_matches(out, sset):
        return GenerationReport(out, True, True, len(sset.scenarios), 0, {}, time.perf_counter() - t0)

    cache = out.parent / CACHE_DIR_NAME
    cache.mkdir(parents=True, exist_ok=True)
    stage = on_stage or (lambda s: None)
    stage("flow")
    flow, flow_cached = flow_for(sset, grid, cache, on_flow_progress)

    room_key = _room_key(sset)
    results: dict[str, dict] = {}
    steps: dict[str, float] = {}
    todo: list[Scenario] = []
    for sc in sset.scenarios:
        path = cache / f"scenario-{scenario_key(sset, sc, room_key)}.nc"
        cached = read_scenario_cache(path) if path.exists() else None
        if cached is None:
            todo.append(sc)
        else:
            results[sc.name] = cached
    n_cached = len(results)
    if on_scenarios:
        on_scenarios(n_cached, len(sset.scenarios))
    stage("scalar")
    for start in range(0, len(todo), chunk_size):
        chunk = todo[start : start + chunk_size]
        res = simulate_scalar(grid, flow, chunk, sim, progress=on_steps)
        steps = {"transport_dt_s": float(res.dt_s), "transport_steps": int(res.n_steps)}
        for i, sc in enumerate(chunk):
            entry = {
                "concentration": np.asarray(res.concentration[i]),
                "source_xyz": np.asarray(res.source_xyz[i]),
                "source_rate": np.asarray(res.source_rate[i]),
                "mass_room": np.asarray(res.mass_room[i]),
                "mass_injected": np.asarray(res.mass_injected[i]),
                "mass_outflow": np.asarray(res.mass_outflow[i]),
            }
            write_scenario_cache(cache / f"scenario-{scenario_key(sset, sc, room_key)}.nc", entry)
            results[sc.name] = entry
        if on_scenarios:
            on_scenarios(len(results), len(sset.scenarios))

    stage("write")
    planes = plane_flow(grid, flow, sim.plane_height_m, sim.plane_cell_m)
    frac = plane_fluid_fraction(grid, sim.plane_height_m, sim.plane_cell_m)
    ny, nx = frac.shape
    # The flow at a column of heights (for column physics), from the flow alone: it enters
    # no cache key, so cached scenarios stay valid and a dataset gains levels on a rerun.
    levels = level_flow(grid, flow, column_levels_m(sset.room.size_m[2], sim.plane_height_m), sim.plane_cell_m)
    ordered = [results[s.name] for s in sset.scenarios]
    ds = make_dataset(
        scenario_names=[s.name for s in sset.scenarios],
        splits=[s.split for s in sset.scenarios],
        times_s=sim.times_s,
        x_m=(np.arange(nx) + 0.5) * sim.plane_cell_m,
        y_m=(np.arange(ny) + 0.5) * sim.plane_cell_m,
        concentration=np.stack([r["concentration"] for r in ordered]),
        u=planes["u"],
        v=planes["v"],
        w=planes["w"],
        nu_t=planes["nu_t"],
        fluid_fraction=frac,
        source_xyz=np.stack([r["source_xyz"] for r in ordered]),
        source_rate=np.stack([r["source_rate"] for r in ordered]),
        plane_height_m=sim.plane_height_m,
        mass_unit=sim.mass_unit,
        generator=GENERATOR,
        generator_version=__version__,
        scenario_config=sset.config_json(),
        budget={k: np.stack([r[k] for r in ordered]) for k in ("mass_room", "mass_injected", "mass_outflow")},
        levels=levels,
    )
    ds.attrs["flow_diagnostics"] = json.dumps(flow.diagnostics, sort_keys=True, default=float)
    ds.attrs["fine_cell_m"] = sim.fine_cell_m
    ds.attrs.update(steps)  # empty when every scenario came from the cache
    ds.attrs["history"] = f"plumecast {__version__} generate {sset.name} (embedded 3D reference)"
    write_dataset(ds, out)
    return GenerationReport(
        out, False, flow_cached, n_cached, len(todo), flow.diagnostics, time.perf_counter() - t0
    )
