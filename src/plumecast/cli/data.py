"""Commands: generate, info, plot (the 3D reference data)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from plumecast.cli.app import app, check_output_path, console, fail, progress_bar, read_dataset_or_fail
from plumecast.geometry import GeometryError
from plumecast.io.dataset import BUDGET_VARS, FLUX_VARS, LEVEL_VARS, SPLITS, DatasetError
from plumecast.io.preflight import PreflightError, require_memory
from plumecast.scenario import ScenarioError, load_scenario_set, preset_names


@app.command()
def generate(
    preset_or_toml: Annotated[str, typer.Argument(
        help=f"A preset name (one of plumecast/presets/*.toml: {', '.join(preset_names())}) or a scenario TOML "
        "file.")],
    out: Annotated[Path, typer.Option("--out", help="Output netCDF file (put it under data/, which git ignores).")],
    scenarios: Annotated[
        str | None, typer.Option("--scenarios", help="Comma-separated scenario names to generate (default: all).")
    ] = None,
    engine: Annotated[str, typer.Option("--engine", help="embedded (default) or openfoam.")] = "embedded",
    chunk: Annotated[int, typer.Option("--chunk", min=1, help="Scenarios simulated together.")] = 16,
    scheduler: Annotated[
        str | None,
        typer.Option("--scheduler", help="Where scenario tasks run: 'local' (a Dask LocalCluster on 127.0.0.1, the "
                     "default), a Dask scheduler address (tcp://host:8786), or 'inline' (this process, no Dask). "
                     "Default from PLUMECAST_DASK_SCHEDULER."),
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="Workers of the local cluster (default: one per CPU, "
                                 "divided by --procs).")
    ] = None,
    procs: Annotated[
        int, typer.Option("--procs", min=1, help="OpenFOAM engine: MPI ranks per case (decomposePar + mpirun; "
                          "needs openmpi-bin, which Debian's openfoam package brings).")
    ] = 1,
) -> None:
    """Simulate a scenario set in 3D and write its plane dataset, with the flow at the column levels (reuses what
    exists)."""
    import os

    from plumecast.reference.generate import INLINE, LOCAL, SCHEDULER_ENV, GenerationError

    check_output_path(out, "file")
    if engine not in ("embedded", "openfoam"):
        fail(f"unknown engine {engine!r}; use 'embedded' or 'openfoam'")
    if procs != 1 and engine != "openfoam":
        fail("--procs decomposes OpenFOAM cases; the embedded engine runs a chunk per worker (use --workers)")
    scheduler = (scheduler or os.environ.get(SCHEDULER_ENV) or LOCAL).strip()
    if scheduler not in (LOCAL, INLINE) and ":" not in scheduler:
        fail(f"--scheduler {scheduler!r}: give 'local', 'inline' or a Dask scheduler address such as "
             "tcp://10.0.0.5:8786")
    if workers is not None and scheduler != LOCAL:
        fail(f"--workers sizes the local cluster; the scheduler {scheduler!r} has its own workers")
    try:
        sset = load_scenario_set(preset_or_toml)
        sset = sset.select([s.strip() for s in scenarios.split(",") if s.strip()] if scenarios else None)
    except (ScenarioError, GeometryError) as e:
        fail(str(e))
    from plumecast.reference.flow import FlowError
    from plumecast.reference.generate import check_memory, generate_embedded, grid_cells

    try:  # pre-flight: memory, then the room and every source, before the progress bars and any work
        if engine == "openfoam":  # OpenFOAM's solvers and reading their fields: about 2 kB per cell, roughly
            nz, ny, nx = grid_cells(sset)
            require_memory(2048.0 * nz * ny * nx, f"an OpenFOAM case of {nz} x {ny} x {nx} cells",
                           "choose a coarser fine_cell_m")
        else:
            check_memory(sset, chunk)
        sset.validate_sources(sset.room.discretise(sset.simulation.fine_cell_m))
    except (PreflightError, ScenarioError, GeometryError) as e:
        fail(f"{preset_or_toml}: {e}")
    if engine == "openfoam":
        _generate_openfoam(sset, out, scheduler, workers, procs)
        return

    try:
        with progress_bar() as bar:
            flow_task = bar.add_task("flow (iterations)", total=sset.flow.max_iterations)
            scen_task = bar.add_task("scenarios", total=len(sset.scenarios))
            # Time steps are counted in this process only; Dask workers report whole chunks.
            step_task = bar.add_task("time steps of chunk", total=None, visible=scheduler == INLINE)

            plain = not console.is_terminal  # logs get a line per milestone instead of a live bar

            def on_flow(it, residual):
                bar.update(flow_task, completed=it, description=f"flow (residual {residual:.2e})")
                if plain and it % 500 == 0:
                    console.print(f"flow iteration {it}, residual {residual:.2e}", highlight=False)

            def on_scen(done, total):
                bar.update(scen_task, completed=done, total=total)
                if plain:
                    console.print(f"scenarios {done}/{total} done", highlight=False)

            def on_steps(done, total):
                bar.update(step_task, completed=done, total=total)

            def on_stage(name):
                if plain:
                    console.print(f"stage: {name}", highlight=False)
                if name == "scalar":
                    bar.update(flow_task, completed=bar.tasks[flow_task].total, description="flow (done)")

            report = generate_embedded(
                sset, out, chunk_size=chunk, on_stage=on_stage, on_flow_progress=on_flow,
                on_scenarios=on_scen, on_steps=on_steps, scheduler=scheduler, workers=workers,
            )
    except KeyboardInterrupt:
        fail("interrupted; finished scenarios are cached, rerun the same command to resume", code=130)
    except (ScenarioError, GeometryError, FlowError, DatasetError, PreflightError, GenerationError) as e:
        fail(str(e))
    except OSError as e:
        fail(f"cannot write {out} or its cache beside it: {e}")
    if report.reused:
        console.print(f"{out} is up to date with {sset.name} ({len(sset.scenarios)} scenarios); nothing to do")
        return
    d = report.flow_diagnostics
    console.print(
        f"flow: {'cached' if report.flow_cached else 'solved'}; iterations {d.get('iterations')}, "
        f"residual {d.get('residual', float('nan')):.3g} (tol {d.get('residual_tol')}), "
        f"divergence {d.get('divergence', float('nan')):.3g} (tol {d.get('divergence_tol')})",
        highlight=False,
    )
    console.print(
        f"scenarios: {report.scenarios_simulated} simulated, {report.scenarios_cached} from cache; "
        f"wrote {out} in {report.seconds:.1f} s",
        highlight=False,
    )


def _generate_openfoam(sset, out: Path, scheduler: str, workers: int | None, procs: int) -> None:
    try:
        from plumecast.reference.openfoam_engine import INSTALL_HINT, generate_openfoam, openfoam_missing
    except ImportError as e:
        fail(f"the OpenFOAM engine is not available: {e}")
    from plumecast.io.dataset import write_dataset

    missing = openfoam_missing(procs)
    if missing:  # before any progress bar or case folder
        fail(f"OpenFOAM applications not found: {', '.join(missing)}; {INSTALL_HINT}")

    try:
        with progress_bar() as bar:
            task = bar.add_task("OpenFOAM cases", total=len(sset.scenarios))
            ds = generate_openfoam(
                sset, out.parent / ".plumecast-cache" / "openfoam", progress=lambda d, t: bar.update(task, completed=d, total=t),
                scheduler=scheduler, workers=workers, procs=procs,
            )
        write_dataset(ds, out)
    except KeyboardInterrupt:
        fail("interrupted; finished scenarios are cached, rerun the same command to resume", code=130)
    except (ScenarioError, GeometryError, DatasetError, RuntimeError, FileNotFoundError) as e:
        fail(str(e))
    except OSError as e:
        fail(f"cannot write {out}: {e}")
    console.print(f"wrote {out}")


@app.command()
def info(path: Annotated[Path, typer.Argument(help="A plumecast dataset (netCDF).")]) -> None:
    """Grid, splits, scenarios, time span, value ranges and mass budget of a dataset."""
    ds = read_dataset_or_fail(path)
    fluid = ds["fluid"].values == 1
    t = ds["time"].values
    c = ds["concentration"].values
    table = Table(title=str(path), show_header=False)
    table.add_row("generator", f"{ds.attrs['generator']} {ds.attrs['generator_version']}")
    if ds.attrs.get("history"):
        table.add_row("history", str(ds.attrs["history"]).splitlines()[0])
    table.add_row(
        "plane grid",
        f"{ds.sizes['y']} (y) x {ds.sizes['x']} (x) cells of {ds.attrs['dx_m']:g} x {ds.attrs['dy_m']:g} m, "
        f"{int(fluid.sum())} fluid, plane at {ds.attrs['plane_height_m']} m",
    )
    table.add_row("time", f"{t[0]:g} .. {t[-1]:g} s, {len(t)} snapshots every {np.diff(t).mean():g} s" if len(t) > 1
                  else f"one snapshot at {t[0]:g} s")
    splits = [str(s) for s in ds["split"].values]
    table.add_row("splits", ", ".join(f"{k}: {splits.count(k)}" for k in SPLITS))
    names = [str(s) for s in ds["scenario"].values]
    table.add_row("scenarios", ", ".join(names[:8]) + (f", ... ({len(names)} in all)" if len(names) > 8 else ""))
    unit = ds["concentration"].attrs.get("units", "")
    table.add_row("concentration", f"min {c.min():.4g}, max {c.max():.4g} {unit}; final-time median over fluid "
                  f"{np.median(c[:, -1][:, fluid]):.4g}")
    for k in ("u", "v", "w"):
        table.add_row(k, f"{ds[k].values[fluid].min():+.4f} .. {ds[k].values[fluid].max():+.4f} m/s")
    table.add_row("nu_t", f"{ds['nu_t'].values[fluid].min():.3g} .. {ds['nu_t'].values[fluid].max():.3g} m^2/s")
    if "level" in ds.coords and all(k in ds for k in LEVEL_VARS):
        z = np.asarray(ds["level"].values, float)
        speed = np.hypot(ds["u_level"].values, ds["v_level"].values)
        table.add_row("flow levels", f"{len(z)} heights {', '.join(f'{v:.3g}' for v in z)} m; horizontal speed up to "
                      f"{speed.max():.3g} m/s, nu_t up to {float(ds['nu_t_level'].max()):.3g} m^2/s")
    if all(k in ds for k in FLUX_VARS):
        from plumecast.reference.coarse_flux import relative_divergence, volume_thicknesses_m

        fluxes = {k.removesuffix("_level"): np.asarray(ds[k].values, float) for k in FLUX_VARS}
        through = float(np.clip(fluxes["outflow"], 0.0, None).sum())
        volume = float(fluxes["volume"].sum())
        thickness = volume_thicknesses_m(fluxes["volume"], float(ds.attrs["dx_m"]) * float(ds.attrs["dy_m"]))
        table.add_row("level fluxes", f"layers {', '.join(f'{h:.3g}' for h in thickness)} m thick; {through:.3g} m^3/s "
                      f"out of {volume:.4g} m^3 ({3600 * through / max(volume, 1e-300):.2f} air changes/h); max "
                      f"|divergence| {relative_divergence(fluxes):.1e} of the largest face or boundary flux")
    table.add_row("mass budget", _budget_line(ds, unit))
    if "flow_diagnostics" in ds.attrs:
        try:
            d = json.loads(ds.attrs["flow_diagnostics"])
            line = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in sorted(d.items()))
        except (TypeError, ValueError, AttributeError):
            line = "(unreadable flow_diagnostics attribute)"
        table.add_row("flow", line)
    console.print(table)


def _budget_line(ds, unit: str) -> str:
    """The mass budget from the optional budget variables (any of them may be absent, as in imports)."""
    present = [k for k in BUDGET_VARS if k in ds.variables]
    if len(present) == len(BUDGET_VARS):
        room, inj, outf = (ds[k].values for k in BUDGET_VARS)
        err = np.abs(room - (inj - outf)).max(axis=1) / np.maximum(inj.max(axis=1), 1e-300)
        share = outf[:, -1] / np.maximum(inj[:, -1], 1e-300)
        return (f"max |room - (injected - outflow)| / injected = {err.max():.2e}; "
                f"left through outlets by the end: {np.median(share):.0%} median")
    if "mass_room" in ds.variables:
        room = ds["mass_room"].values
        return (f"mass in the room {room[:, -1].min():.4g} .. {room[:, -1].max():.4g} {unit.split('/')[0]} at the end; "
                "injected and outflow not recorded (an import: the fields alone do not tell them)")
    return "not recorded"


@app.command()
def plot(
    path: Annotated[Path, typer.Argument(help="A plumecast dataset (netCDF).")],
    scenario: Annotated[str, typer.Option("--scenario", help="Scenario name.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder.")],
) -> None:
    """A snapshot grid (PNG), an animation (GIF) and the plane flow (PNG) of one scenario."""
    from plumecast import plot as pictures

    check_output_path(out, "dir")
    ds = read_dataset_or_fail(path)
    names = [str(s) for s in ds["scenario"].values]
    if scenario not in names:
        fail(f"scenario {scenario!r} is not in {path}; it has {', '.join(names[:10])}{' ...' if len(names) > 10 else ''}")
    try:
        written = [
            pictures.snapshot_grid(ds, scenario, out / f"{scenario}-snapshots.png"),
            pictures.animation(ds, scenario, out / f"{scenario}.gif"),
            pictures.plane_flow_picture(ds, out / "plane-flow.png"),
        ]
    except OSError as e:
        fail(f"cannot write the pictures to {out}: {e}")
    for p in written:
        console.print(f"wrote {p}")
