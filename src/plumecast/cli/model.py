"""Commands: train, forecast (dataset scenarios and what-ifs), sweep, attach-room (the coarse model and training engine)."""

from __future__ import annotations

from pathlib import Path

import typer

from plumecast.cli.app import app, check_output_path, console, fail, read_dataset_or_fail


@app.command()
def train(
    data: Path = typer.Argument(..., help="Plane dataset (netCDF) to train on (its 'train' split)."),
    out: Path = typer.Option(..., "--out", help="Run directory: config, checkpoints, summary."),
    variant: str = typer.Option("physics", "--variant", help="Model variant (see the closure registry)."),
    preset: str = typer.Option("quick", "--preset", help="Training preset: quick | paper."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its latest checkpoint."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the progress bar."),
    init_from: Path | None = typer.Option(
        None, "--init-from", help="Start the coarse model (Dx, Dy, exchange rate, source scale) from this trained run."
    ),
    overrides: list[str] = typer.Option(
        [], "--set", help="Override a training config field, KEY=VALUE with a JSON value (e.g. epochs=[2,1,1,1])."
    ),
    lazy: bool = typer.Option(False, "--lazy", help="Leave the concentration in the file and read it a batch at a time "
                              "(datasets larger than memory; the same results as loading it whole)."),
) -> None:
    """Train a coarse model (physics-only or with a closure) on a plane dataset."""
    from plumecast.closure import variant_names
    from plumecast.io.checkpoint import CheckpointError, latest_checkpoint, read_json
    from plumecast.train import PRESETS, TrainConfig, TrainError, preset_config
    from plumecast.train.config import parse_overrides
    from plumecast.train import train as run_training

    if variant not in variant_names():
        fail(f"unknown variant {variant!r}; known: {', '.join(variant_names())}")
    if preset not in PRESETS:
        fail(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    check_output_path(out, "dir")
    try:
        changes = parse_overrides(overrides)
    except ValueError as e:
        fail(str(e))
    if init_from is not None:
        changes["init_from"] = str(init_from)
    for name in ("variant", "preset"):
        if name in changes:
            fail(f"--set {name}=...: give it as --{name}")
    try:
        config = preset_config(preset, variant=variant, **changes)
    except (TrainError, TypeError, ValueError) as e:
        fail(f"bad training configuration: {e}")
    if resume:
        if latest_checkpoint(out) is None:
            fail(f"{out} holds no checkpoint to resume from")
        try:
            saved = TrainConfig.from_json(read_json(out / "config.json")["train"])
        except (CheckpointError, TrainError, KeyError, TypeError) as e:
            fail(f"{out}: cannot read the run configuration ({e})")
        if saved.variant != variant or saved.preset != preset:
            fail(f"{out} was trained as variant {saved.variant!r}, preset {saved.preset!r}; resume with those")
        if changes and saved != config:
            fail(f"{out} was trained with other settings; resume without --set changes")
        config = None
    elif latest_checkpoint(out) is not None:
        fail(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    ds = _read_data_or_fail(data, lazy)
    created = not out.exists()
    try:
        result = run_training(ds, out, config, resume=resume, progress=progress, lazy=lazy)
    except (TrainError, CheckpointError) as e:
        fail(str(e))
    except OSError as e:
        fail(f"cannot write the run to {out}: {e}")
    except KeyboardInterrupt:
        ckpt = latest_checkpoint(out)
        if ckpt is not None:
            console.print(f"interrupted: the latest checkpoint is {ckpt}; continue with --resume", highlight=False)
        else:
            if created:  # nothing to resume: leave nothing behind
                import shutil

                shutil.rmtree(out, ignore_errors=True)
            console.print("interrupted before the first checkpoint: there is nothing to resume; run the same command "
                          "again to start over", highlight=False)
        raise typer.Exit(130)
    console.print(f"trained {result.system[0].config.ny} x {result.system[0].config.nx} model: {out}", highlight=False)
    _print_selection(result)


def _read_data_or_fail(path: Path, lazy: bool):
    """The dataset read whole, or with ``lazy`` opened with its concentration left in the file; or a one-line error."""
    if not lazy:
        return read_dataset_or_fail(path)
    from plumecast.io.dataset import DatasetError, open_dataset_lazy

    try:
        return open_dataset_lazy(path)
    except DatasetError as e:
        _fail(str(e))


def _print_selection(result) -> None:
    """The val curve (at most 12 points, the pick among them) and the selected epoch."""
    if result.selected is None:
        console.print("no val split: the run's model is its last epoch's", highlight=False)
        return
    curve, sel = result.val_curve, result.selected
    step = max(1, -(-len(curve) // 12))
    shown = [v for i, v in enumerate(curve) if i % step == 0 or i == len(curve) - 1 or v["epoch"] == sel["epoch"]]
    console.print("val curve (epoch: median final-time relative L2): "
                  + ", ".join(f"{v['epoch']}: {v['val']:.4g}" + ("*" if v["epoch"] == sel["epoch"] else "")
                              for v in shown), highlight=False)
    console.print(f"selected on val: epoch {sel['epoch']} (val {sel['val']:.4g}; the last epoch is the resumable "
                  "checkpoint)", highlight=False)


@app.command()
def forecast(
    run_dirs: list[Path] = typer.Argument(..., help="Training run directory; several (seeds of one model, say) make an "
                                          "ensemble: OUT holds their mean and its concentration_spread."),
    data: Path | None = typer.Option(None, "--data", help="Dataset that provides the scenario (flow, source track, t = 0 "
                                     "field)."),
    scenario: str | None = typer.Option(None, "--scenario", help="Scenario name in the dataset."),
    scenario_file: Path | None = typer.Option(
        None, "--scenario-file", help="What-if TOML: horizon_s, output_interval_s and [[sources]] (docs/surrogate.md); "
        "forecast in the run's stored room, no dataset."),
    out: Path = typer.Option(..., "--out", help="Output netCDF file (dataset schema)."),
    pictures: bool = typer.Option(True, "--pictures/--no-pictures", help="What-if: also write OUT's snapshot grid "
                                  "(.png) and animation (.gif)."),
) -> None:
    """Forecast a dataset scenario (--data, --scenario) or a what-if (--scenario-file) with a trained model or an ensemble."""
    from plumecast.forecast import forecast_dataset
    from plumecast.io.dataset import DatasetError, read_dataset, write_dataset
    from plumecast.train import TrainError, load_run

    if scenario_file is not None and (data is not None or scenario is not None):
        _fail("--scenario-file (a what-if) and --data/--scenario (a dataset scenario) are two forms; give one")
    if scenario_file is None and (data is None or scenario is None):
        _fail("give --data DATA --scenario NAME (a dataset scenario) or --scenario-file WHAT-IF.toml (new sources)")
    _check_out(out, "file")
    if scenario_file is not None:
        _forecast_whatif(run_dirs, scenario_file, out, pictures)
        return
    try:
        loaded = [load_run(run_dir) for run_dir in run_dirs]  # fail early on a bad run directory, before reading data
        ds = read_dataset(data)
        result = forecast_dataset(_system_of(loaded), ds, scenario, about=_about(run_dirs, loaded))
    except (DatasetError, TrainError) as e:
        _fail(str(e))
    write_dataset(result, out)
    members = f", mean of {len(run_dirs)} members with its spread" if len(run_dirs) > 1 else ""
    console.print(f"forecast of {scenario!r} ({result.sizes['time']} snapshots{members}): {out}", highlight=False)


def _system_of(loaded):
    """One run's system, or the list of several runs' systems (an ensemble)."""
    systems = [system for system, _, _ in loaded]
    return systems if len(systems) > 1 else systems[0]


def _about(run_dirs, loaded, **more) -> dict:
    """What a forecast records of the runs that made it (every member's, for an ensemble)."""
    configs = [config for _, config, _ in loaded]
    about = {"run_dir": str(run_dirs[0].resolve()), "variant": configs[0].variant, "preset": configs[0].preset, **more}
    if len(run_dirs) > 1:
        about["ensemble"] = [{"run_dir": str(r.resolve()), "variant": c.variant, "preset": c.preset}
                             for r, c in zip(run_dirs, configs)]
    return about


def _load_run_and_room(run_dir: Path):
    """``(system, config, room)`` of a run with its stored room, or a one-line error."""
    from plumecast.io.room import RoomError, load_run_room
    from plumecast.train import TrainError, load_run

    try:
        system, config, run = load_run(run_dir)
        room = load_run_room(run_dir, run)
    except (TrainError, RoomError) as e:
        _fail(str(e))
    return system, config, room


def _forecast_whatif(run_dirs: list[Path], scenario_file: Path, out: Path, pictures: bool) -> None:
    from plumecast import plot
    from plumecast.io.dataset import write_dataset
    from plumecast.train import TrainError
    from plumecast.whatif import WhatIfError, forecast_whatif, load_whatif

    try:
        spec = load_whatif(scenario_file)
    except WhatIfError as e:
        _fail(str(e))
    loaded = [_load_run_and_room(run_dir) for run_dir in run_dirs]
    room = loaded[0][2]  # every member is checked against it (forecast_whatif)
    about = _about(run_dirs, loaded, scenario_file=str(scenario_file))
    try:
        result, warnings = forecast_whatif(_system_of(loaded), room, spec, about=about)
    except (WhatIfError, TrainError) as e:
        _fail(str(e))
    for w in warnings:
        console.print(f"[yellow]warning:[/] {escape(w)}", highlight=False)
    name = str(result["scenario"].values[0])
    write_dataset(result, out)
    written = [out]
    if pictures:
        written.append(plot.snapshot_grid(result, name, out.with_suffix(".png")))
        every = max(1, (result.sizes["time"] - 1) // 100)  # at most about 100 frames
        written.append(plot.animation(result, name, out.with_suffix(".gif"), every=every))
    console.print(f"what-if forecast {name!r} ({len(spec.sources)} source(s), {result.sizes['time']} snapshots to "
                  f"{float(result['time'].values[-1]):g} s): {', '.join(map(str, written))}", highlight=False)


@app.command("attach-room")
def attach_room(
    run_dir: Path = typer.Argument(..., help="Training run directory trained before runs stored their room."),
    data: Path = typer.Option(..., "--data", help="The dataset the run was trained on."),
) -> None:
    """Store the room of a run's training data with the run (RUN/room.nc), for runs trained before rooms were stored."""
    from plumecast.forecast import check_grid
    from plumecast.io.checkpoint import read_json, write_json_atomic
    from plumecast.io.room import ROOM_FILE, RoomError, load_run_room, room_from_dataset, store_run_room
    from plumecast.train import TrainError, load_run

    try:
        system, _, run = load_run(run_dir)
    except TrainError as e:
        _fail(str(e))
    if run.get("room"):
        try:
            load_run_room(run_dir, run)
        except RoomError as e:
            _fail(f"{run_dir} already records a stored room, and it is not sound ({e}); train the run again")
        console.print(f"{run_dir} already stores its room ({run_dir / ROOM_FILE}); nothing to do", highlight=False)
        return
    ds = read_dataset_or_fail(data)
    try:
        check_grid(system[0], ds, run=str(run_dir), data=str(data))
    except TrainError as e:
        _fail(str(e))
    times = ds["time"].values
    horizon, snapshot = float(times[-1] - times[0]), float(times[1] - times[0])
    trained = run.get("data", {})
    for key, value in (("horizon_s", horizon), ("snapshot_s", snapshot)):
        if key in trained and abs(float(trained[key]) - value) > 1e-9:
            _fail(f"{data} has {key} = {value:g} but {run_dir} was trained on {float(trained[key]):g}; give the dataset "
                 "the run was trained on")
    if "scenarios" in trained and [str(s) for s in ds["scenario"].values] != list(trained["scenarios"]):
        console.print(f"[yellow]warning:[/] {data} holds other scenarios than {run_dir} was trained on; its room, "
                      "grid and flow are the run's (checked)", highlight=False)
    entry = store_run_room(run_dir, room_from_dataset(ds, horizon_s=horizon, snapshot_s=snapshot))
    run = read_json(run_dir / "config.json")
    run["room"] = entry
    write_json_atomic(run_dir / "config.json", run)
    console.print(f"stored the room of {data} with {run_dir}: {run_dir / ROOM_FILE} (sha256 {entry['sha256'][:12]}...)",
                  highlight=False)


@app.command()
def sweep(
    run_dir: Path = typer.Argument(..., help="Training run directory (with its stored room)."),
    out: Path = typer.Option(..., "--out", help="Output folder: sweep.nc, PNG maps, summary.json."),
    points: Path | None = typer.Option(None, "--points", help="CSV of candidate source points x,y[,z] (m) instead of "
                                       "every fluid cell."),
    stride: int | None = typer.Option(None, "--stride", help="Every K-th fluid cell in x and y instead of all."),
    heights: list[float] = typer.Option([], "--height", help="Source height (m); repeat for several; default the "
                                        "plane height."),
    rate: float = typer.Option(1.0, "--rate", help="Emission rate of each candidate source (mass/s)."),
    horizon: float | None = typer.Option(None, "--horizon", help="Forecast span (s); default the training horizon."),
    receptors: list[str] = typer.Option([], "--receptor", help="Receptor NAME=x,y or x,y (m); repeat; the same NAME "
                                        "repeated forms one receptor."),
    threshold: float = typer.Option(0.1, "--threshold", help="Arrival threshold (mass/m^3) at the receptors."),
    batch: int = typer.Option(64, "--batch", help="Sources per vmapped batch."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the progress bar."),
) -> None:
    """Forecast a static source at every candidate location; exposure per source, receptor and worst-case maps."""
    import math
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from plumecast import plot
    from plumecast.io.checkpoint import write_json_atomic
    from plumecast.sweep import SweepError, candidate_sources, parse_receptors, read_points_csv, run_sweep
    from plumecast.train import TrainError
    from plumecast.whatif import WhatIfError, check_horizon

    _check_out(out, "dir")
    if points is not None and stride is not None:
        _fail("--points and --stride choose the candidates two ways; give one")
    if batch < 1:
        _fail(f"--batch must be >= 1, got {batch}")
    if not (math.isfinite(rate) and rate >= 0):
        _fail(f"--rate must be a finite number >= 0 (mass/s), got {rate}")
    if not (math.isfinite(threshold) and threshold > 0):
        _fail(f"--threshold must be a finite number > 0 (mass/m^3), got {threshold}")
    system, config, room = _load_run_and_room(run_dir)
    horizon_s = room.horizon_s if horizon is None else horizon
    try:
        warning = check_horizon(horizon_s, room.horizon_s, "--horizon")
        pts = read_points_csv(points) if points is not None else None
        xyz, notes = candidate_sources(room, heights=heights or [room.plane_height_m], stride=stride, points=pts,
                                       origin=str(points))
        recs = parse_receptors(receptors, room)
    except (SweepError, WhatIfError) as e:
        _fail(str(e))
    for w in ([warning] if warning else []) + notes:
        console.print(f"[yellow]note:[/] {escape(w)}", highlight=False)
    about = {"run_dir": str(run_dir.resolve()), "variant": config.variant, "preset": config.preset}
    bar = Progress(TextColumn("[bold]sweep[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("sources"),
                   TextColumn("{task.fields[speed]}"), TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
                   console=console, disable=not progress)
    try:
        with bar:
            task = bar.add_task("sweep", total=len(xyz), speed="compiling")
            t0 = time.perf_counter()

            def on_batch(done, total):
                seconds = time.perf_counter() - t0
                bar.update(task, completed=done, speed=f"{done / seconds:.1f} sources/s" if seconds > 0 else "")

            result = run_sweep(system, room, xyz, rate=rate, horizon_s=horizon_s, receptors=recs, threshold=threshold,
                               batch=batch, out_dir=out, about=about, on_batch=on_batch, notes=notes)
    except (SweepError, TrainError) as e:
        _fail(str(e))
    except KeyboardInterrupt:
        console.print("interrupted: nothing written to sweep.nc", highlight=False)
        raise typer.Exit(130)
    written = [out / "sweep.nc", plot.worst_exposure_picture(room, result.worst_exposure, recs, out / "worst-exposure.png")]
    for k, r in enumerate(recs):
        written.append(plot.receptor_picture(room, xyz, result.arrival[:, k], result.receptor_exposure[:, k], r,
                                             out / f"receptor-{_slug(r.name)}.png", horizon_s=horizon_s,
                                             threshold=threshold))
    written.append(write_json_atomic(out / "summary.json", result.summary))
    s = result.summary
    console.print(f"swept {len(xyz)} sources ({horizon_s:g} s each) in {result.seconds:.1f} s "
                  f"({s['sources_per_second']} sources/s)", highlight=False)
    for name, r in s["receptors"].items():
        first = r["first"][0] if r["first"] else None
        hard = r["hardest"][0]
        console.print(escape(f"  receptor {name!r}: reached by {r['sources_reaching']} of {len(xyz)} sources; first "
                             "from " + (f"{first['source_m']} m after {first['arrival_s']:g} s" if first else "none")
                             + f"; hardest from {hard['source_m']} m ({hard['exposure']:.3g} {room.mass_unit} s/m^3)"),
                      highlight=False)
    for p in written:
        console.print(f"wrote {p}", highlight=False)


def _slug(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "receptor"


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(str(text))


def _fail(message: str) -> None:
    """:func:`fail` for messages that quote the user's input (brackets are not rich markup)."""
    fail(escape(message))


def _check_out(path: Path, kind: str) -> None:
    """Pre-flight check of ``--out`` (a directory where a file is meant, a folder that cannot be written, ...)."""
    from plumecast.io.preflight import output_problem

    problem = output_problem(path, kind)
    if problem:
        _fail(f"--out: {problem}")
