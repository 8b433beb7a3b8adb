"""Commands: train, forecast (the coarse model and training engine)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from plumecast.cli.app import app, console, fail, read_dataset_or_fail


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
) -> None:
    """Train a coarse model (physics-only or with a closure) on a plane dataset."""
    from plumecast.closure import variant_names
    from plumecast.io.checkpoint import CheckpointError, latest_checkpoint, read_json
    from plumecast.train import PRESETS, TrainConfig, TrainError, preset_config
    from plumecast.train import train as run_training

    if variant not in variant_names():
        fail(f"unknown variant {variant!r}; known: {', '.join(variant_names())}")
    if preset not in PRESETS:
        fail(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    if out.exists() and not out.is_dir():
        fail(f"{out} exists and is not a directory")
    changes = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            fail(f"--set expects KEY=VALUE, got {item!r}")
        try:
            changes[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            changes[key.strip()] = value  # a bare string
    if init_from is not None:
        changes["init_from"] = str(init_from)
    known = set(TrainConfig.field_names()) - {"variant", "preset"}
    unknown = sorted(set(changes) - known)
    if unknown:
        fail(f"unknown training config field(s) {unknown}; known: {', '.join(sorted(known))}")
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
    ds = read_dataset_or_fail(data)
    try:
        result = run_training(ds, out, config, resume=resume, progress=progress)
    except (TrainError, CheckpointError) as e:
        fail(str(e))
    except KeyboardInterrupt:
        console.print(f"interrupted: the latest checkpoint is in {out}; continue with --resume", highlight=False)
        raise typer.Exit(130)
    console.print(f"trained {result.system[0].config.ny} x {result.system[0].config.nx} model: {out}", highlight=False)


@app.command()
def forecast(
    run_dir: Path = typer.Argument(..., help="Training run directory."),
    data: Path = typer.Option(..., "--data", help="Dataset that provides the scenario (flow, source track, t = 0 field)."),
    scenario: str = typer.Option(..., "--scenario", help="Scenario name in the dataset."),
    out: Path = typer.Option(..., "--out", help="Output netCDF file (dataset schema)."),
) -> None:
    """Forecast one scenario with a trained model; writes it in the dataset schema."""
    from plumecast.forecast import forecast_dataset
    from plumecast.io.dataset import DatasetError, read_dataset, write_dataset
    from plumecast.train import TrainError, load_run

    try:
        system, config, _ = load_run(run_dir)  # fail early on a bad run directory, before reading data
        ds = read_dataset(data)
        about = {"run_dir": str(run_dir.resolve()), "variant": config.variant, "preset": config.preset}
        result = forecast_dataset(system, ds, scenario, about=about)
    except (DatasetError, TrainError) as e:
        fail(str(e))
    if out.exists() and out.is_dir():
        fail(f"{out} is a directory")
    write_dataset(result, out)
    console.print(f"forecast of {scenario!r} ({result.sizes['time']} snapshots): {out}", highlight=False)
