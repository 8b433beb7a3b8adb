"""From a scenario set to a plane dataset with the embedded 3D reference simulator.

The steady flow is computed once per room and cached; scenarios are simulated in chunks
and each finished scenario is cached too, so an interrupted generation resumes where it
stopped and a rerun with the same configuration reuses what exists. Caches live in a
hidden folder beside the output file and are keyed by a hash of everything that shapes
their content (configuration and generator version).

**On Dask** (``scheduler``, :func:`dask_client`): the flow is solved here, sent to every
worker once, and each chunk of scenarios is a Dask task. The worker writes each finished
scenario of its chunk into the cache itself (atomically, as the in-process path does), so
a killed client or worker loses only the chunks in flight and a rerun resumes; the client
writes any entry a worker could not (a worker on another filesystem). ``"local"`` starts
a ``distributed.LocalCluster`` on 127.0.0.1 sized to the machine (worker processes, one
thread each: the scalar solver is mostly GIL-bound scipy, docs/benchmarks.md "Scaling
out" has the figures); an address (``tcp://host:8786``) uses an existing cluster, whose
workers must import the same plumecast and see the cache folder to write it (otherwise the
client writes it). A task that raises names its scenarios and worker; a task that keeps
killing workers (memory, a kill) names its scenarios and says what is cached. With
``scheduler=None`` the scenarios run in this process, as before Dask.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import xarray as xr

from plumecast import __version__
from plumecast.geometry import Grid3D, plane_fluid_fraction
from plumecast.io.atomic import atomic_path, remove_stale_temporaries
from plumecast.io.dataset import FLUX_VARS, LEVEL_VARS, DatasetError, column_levels_m, make_dataset, read_dataset, write_dataset
from plumecast.io.preflight import require_memory
from plumecast.reference.flow import Flow3D, read_flow, solve_flow, write_flow
from plumecast.reference.plane import level_flow, plane_flow
from plumecast.reference.transport import simulate_scalar
from plumecast.scenario import Scenario, ScenarioSet

GENERATOR = "plumecast-embedded"
CACHE_DIR_NAME = ".plumecast-cache"
SCHEDULER_ENV = "PLUMECAST_DASK_SCHEDULER"  # the default of ``plumecast generate --scheduler``
LOCAL = "local"  # a LocalCluster of this machine
INLINE = "inline"  # no Dask: this process (the path before Dask)


class GenerationError(RuntimeError):
    """A scenario task failed or its worker was lost; the message names the scenarios."""


@contextmanager
def dask_client(scheduler: str = LOCAL, *, workers: int | None = None, processes: bool = True,
                memory_per_worker: float | None = None) -> Iterator:
    """A ``distributed.Client`` for ``scheduler``: ``"local"`` (a LocalCluster here) or a scheduler address.

    The LocalCluster listens on 127.0.0.1 only (scheduler, workers, nannies and the scheduler's
    HTTP endpoint, on a free port so that two generations at once do not contend for 8787); it has ``workers`` workers (default: one per CPU, fewer when
    ``memory_per_worker`` bytes each would not fit in the memory available), one thread each.
    Dask's own memory limit is off: the pre-flight check (:func:`check_memory`) sizes the
    work instead, and a worker Dask paused or restarted for memory would only stall.
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError as e:  # a dependency since issue 17; an old environment may lack it
        raise GenerationError(f"Dask is not installed ({e}); pip install 'dask[distributed]'") from None
    if scheduler != LOCAL:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError, ValueError) as e:
            raise GenerationError(f"cannot reach the Dask scheduler {scheduler!r}: {e}") from None
        try:
            yield client
        finally:
            client.close()
        return
    n = workers or os.cpu_count() or 1
    if workers is None and memory_per_worker:
        from plumecast.io.preflight import available_memory_bytes

        free = available_memory_bytes()
        if free:
            n = max(1, min(n, int(free // memory_per_worker)))
    # TCP on 127.0.0.1 for worker threads too (their default, the in-process transport, refuses a host).
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=processes, host="127.0.0.1", protocol="tcp://",
                           dashboard_address="127.0.0.1:0", memory_limit=0, silence_logs=40)  # 40: errors only
    try:
        with Client(cluster) as client:
            yield client
    finally:
        cluster.close()


def run_tasks(client, tasks: dict[str, tuple], on_done: Callable[[str, object], None], describe: Callable[[str], str]):
    """Run ``tasks`` (name -> (function, *args)) on ``client``, calling ``on_done(name, result)`` as each finishes.

    A task that raises stops the generation with a :class:`GenerationError` naming
    ``describe(name)`` and the worker; a task whose workers died (KilledWorker) names it
    too. The other tasks are cancelled; what finished is cached already.
    """
    from distributed import as_completed
    from distributed.client import FutureCancelledError
    from distributed.scheduler import KilledWorker

    futures = {client.submit(fn, *args, key=f"plumecast-{name}-{os.urandom(4).hex()}", pure=False, retries=0): name
               for name, (fn, *args) in tasks.items()}
    try:
        for fut in as_completed(futures):
            name = futures[fut]
            try:
                result = fut.result()
            except KilledWorker as e:
                raise GenerationError(f"{describe(name)}: the task's workers died ({e}); out of memory or killed? The "
                                      "scenarios finished so far are cached: rerun the same command to resume") from None
            except (FutureCancelledError, GenerationError):
                raise
            except Exception as e:  # the task's own error, raised again here by Dask
                raise GenerationError(f"{describe(name)}: {type(e).__name__}: {e}") from None
            on_done(name, result)
    finally:
        client.cancel([f for f in futures if not f.done()])


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
    simulation = asdict(sset.simulation)
    simulation.pop("column_levels")  # levels come from the flow alone; cached scenarios stay valid
    return _digest({"scenario": raw, "simulation": simulation, "room": room_key})


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


def _scalar_on_dask(grid, flow, todo, sset, path_of, results, chunk_size, scheduler, workers, processes,
                    on_scenarios) -> dict:
    """The scenarios ``todo`` as Dask tasks of up to ``chunk_size`` scenarios; fills ``results``; the step record."""
    steps: dict = {}
    with dask_client(scheduler, workers=workers, processes=processes,
                     memory_per_worker=worker_memory_bytes(sset, chunk_size)) as client:
        n_workers = max(1, len(client.scheduler_info(n_workers=-1).get("workers", {})))
        # Chunks small enough that every worker gets one, large enough to keep the solver vectorised.
        size = max(1, min(chunk_size, math.ceil(len(todo) / n_workers)))
        chunks = {f"chunk{k:04d}": todo[k : k + size] for k in range(0, len(todo), size)}
        grid_f, flow_f = client.scatter([grid, flow], broadcast=True)  # sent to each worker once, not per task
        tasks = {name: (_scalar_chunk, grid_f, flow_f, chunk, sset.simulation, [str(path_of[sc.name]) for sc in chunk])
                 for name, chunk in chunks.items()}

        def done(name, out):
            for sc, entry, written in zip(chunks[name], out["entries"], out["written"]):
                if not written:
                    write_scenario_cache(path_of[sc.name], entry)
                results[sc.name] = entry
            steps.update(out["steps"])
            if on_scenarios:
                on_scenarios(len(results), len(sset.scenarios))

        run_tasks(client, tasks, done, lambda name: "scenarios " + ", ".join(sc.name for sc in chunks[name]))
    return steps


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
        # A dataset written before the flow levels (or their coarse fluxes) existed is rebuilt
        # from the caches to gain them.
        and all(name in ds.variables for name in LEVEL_VARS + FLUX_VARS)
    )


def grid_level_fluxes(grid: Grid3D, flow: Flow3D, heights_m, plane_cell_m: float, shape) -> dict:
    """The flow's MAC face fluxes summed onto the cells of the column of ``heights_m``: ``dict(flux_x, ..., volume)``.

    The plane grid of ``shape (ny, nx)`` starts at the grid's origin, as the plane
    sampler's (:mod:`plumecast.reference.coarse_flux`).
    """
    from plumecast.reference.coarse_flux import column_fluxes, staggered_faces

    ids, *faces = staggered_faces(grid.fluid, flow.u, flow.v, flow.w, grid.cell_m)
    kji = np.argwhere(ids >= 0)  # C order: the order of the ids
    centres = (kji[:, ::-1] + 0.5) * grid.cell_m
    volumes = np.full(len(kji), grid.cell_m**3)
    return column_fluxes(centres, volumes, faces, x0=0.0, y0=0.0, cell_m=plane_cell_m, shape=shape,
                         levels_m=heights_m, height_m=grid.shape[0] * grid.cell_m)


def _scalar_chunk(grid: Grid3D, flow: Flow3D, chunk: list[Scenario], sim, paths: list[str]) -> dict:
    """One Dask task: simulate ``chunk``, write each scenario's cache entry, return the entries.

    Writing here, on the worker, is what makes a finished chunk survive a lost client.
    """
    names = ", ".join(sc.name for sc in chunk)
    try:
        res = simulate_scalar(grid, flow, chunk, sim)
    except Exception as e:
        where = _worker_address()
        raise GenerationError(f"scenarios {names} on Dask worker {where} (its log is that worker's stderr): "
                              f"{type(e).__name__}: {e}") from None
    entries = [_entry(res, i) for i in range(len(chunk))]
    written = []
    for path, entry in zip(paths, entries):
        try:
            write_scenario_cache(Path(path), entry)
            written.append(True)
        except OSError:  # a worker that cannot see the cache folder: the client writes it
            written.append(False)
    return {"entries": entries, "written": written,
            "steps": {"transport_dt_s": float(res.dt_s), "transport_steps": int(res.n_steps)}}


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return "(not a Dask worker)"


def _entry(res, i: int) -> dict:
    """Scenario ``i`` of a :func:`simulate_scalar` result, as a cache entry."""
    return {
        "concentration": np.asarray(res.concentration[i]),
        "source_xyz": np.asarray(res.source_xyz[i]),
        "source_rate": np.asarray(res.source_rate[i]),
        "mass_room": np.asarray(res.mass_room[i]),
        "mass_injected": np.asarray(res.mass_injected[i]),
        "mass_outflow": np.asarray(res.mass_outflow[i]),
    }


def worker_memory_bytes(sset: ScenarioSet, chunk_size: int) -> float:
    """Memory of one Dask worker of an embedded generation: grid and flow, plus its chunk's fields (no LU)."""
    nz, ny, nx = grid_cells(sset)
    n = float(nz) * ny * nx
    return n * GRID_BYTES_PER_CELL + min(chunk_size, len(sset.scenarios)) * n * SCALAR_BYTES_PER_CELL


def generate_embedded(
    sset: ScenarioSet,
    out: str | Path,
    *,
    chunk_size: int = 16,
    scheduler: str | None = None,
    workers: int | None = None,
    processes: bool = True,
    on_stage: Callable[[str], None] | None = None,
    on_flow_progress: Callable[[int, float], None] | None = None,
    on_scenarios: Callable[[int, int], None] | None = None,
    on_steps: Callable[[int, int], None] | None = None,
) -> GenerationReport:
    """Generate (or reuse) the plane dataset of ``sset`` at ``out``.

    Raises GeometryError/ScenarioError before any work when the room or a source is
    invalid, and PreflightError when the grid would need more memory than the machine
    has; on any failure nothing is written at ``out``. ``scheduler`` (None: this process;
    ``"local"``; a Dask scheduler address) runs the scenario chunks as Dask tasks (see
    the module docstring); ``workers`` and ``processes`` size a local cluster. A failed
    or lost task raises :class:`GenerationError` naming its scenarios.
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
    remove_stale_temporaries(cache)  # what killed runs left half-written (never read: only renames publish)
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
    path_of = {sc.name: cache / f"scenario-{scenario_key(sset, sc, room_key)}.nc" for sc in todo}
    if scheduler is not None and scheduler != INLINE and todo:
        steps = _scalar_on_dask(grid, flow, todo, sset, path_of, results, chunk_size, scheduler, workers, processes,
                                on_scenarios)
    for start in range(0, len(todo) if scheduler in (None, INLINE) else 0, chunk_size):
        chunk = todo[start : start + chunk_size]
        res = simulate_scalar(grid, flow, chunk, sim, progress=on_steps)
        steps = {"transport_dt_s": float(res.dt_s), "transport_steps": int(res.n_steps)}
        for i, sc in enumerate(chunk):
            entry = _entry(res, i)
            write_scenario_cache(path_of[sc.name], entry)
            results[sc.name] = entry
        if on_scenarios:
            on_scenarios(len(results), len(sset.scenarios))

    stage("write")
    planes = plane_flow(grid, flow, sim.plane_height_m, sim.plane_cell_m)
    frac = plane_fluid_fraction(grid, sim.plane_height_m, sim.plane_cell_m)
    ny, nx = frac.shape
    # The flow at a column of heights (for column physics), from the flow alone: it enters
    # no cache key, so cached scenarios stay valid and a dataset gains levels on a rerun.
    heights = column_levels_m(sset.room.size_m[2], sim.plane_height_m, sim.column_levels)
    levels = level_flow(grid, flow, heights, sim.plane_cell_m)
    levels.update(grid_level_fluxes(grid, flow, levels["z_m"], sim.plane_cell_m, (ny, nx)))
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
