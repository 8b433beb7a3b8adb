"""Commands: evaluate, compare (metrics, figures and reports of trained models)."""

from __future__ import annotations

from pathlib import Path

import typer

from plumecast.cli.app import app, check_output_path, console, fail, read_dataset_or_fail
from plumecast.io.dataset import SPLITS as _SPLITS

_MODELS = ("selected", "last")


@app.command()
def evaluate(
    run_dir: Path = typer.Argument(..., help="Training run directory (its selected model is evaluated)."),
    data: Path = typer.Argument(..., help="Plane dataset (netCDF) on the run's grid."),
    split: str = typer.Option("test", "--split", help="Split to evaluate: " + " | ".join(_SPLITS) + "."),
    out: Path = typer.Option(..., "--out", help="Report directory: metrics.json, CSV, figures, animations, report.html."),
    examples: int = typer.Option(3, "--examples", min=0, help="Scenarios with snapshot figures and animations."),
    model: str = typer.Option("selected", "--model", help="selected (best on val; the last model for a run without "
                              "val) | last (the latest checkpoint)."),
    lazy: bool = typer.Option(False, "--lazy", help="Leave the concentration in the file and read it a chunk of "
                              "scenarios at a time (datasets larger than memory; the same metrics)."),
) -> None:
    """Forecast every scenario of a split and report the metrics (fluid cells; median and IQR)."""
    from plumecast.evaluate import EvaluationError, evaluate_system, load_system, read_data
    from plumecast.report import write_report

    if split not in _SPLITS:
        fail(f"unknown split {split!r}; expected one of {', '.join(_SPLITS)}")
    if model not in _MODELS:
        fail(f"unknown --model {model!r}; expected one of {', '.join(_MODELS)}")
    check_output_path(out, "dir")
    try:
        system, config = load_system(run_dir, model)
        ds = read_data(data, lazy)
        ev = evaluate_system(system, ds, split, run_dir=str(run_dir), variant=config.variant, preset=config.preset,
                             data=str(data), lazy=lazy)
    except EvaluationError as e:
        fail(str(e))
    try:
        write_report(ev, out, n_examples=examples)  # lazy: reads the example scenarios from the open file
    except OSError as e:
        fail(f"cannot write the report to {out}: {e}")
    finally:
        ds.close()
    s = ev.summary
    console.print(
        f"{ev.label} ({ev.variant}) on {split} ({len(ev.scenarios)} scenarios): final-time median Spearman "
        f"{_num(s['spearman']['final']['median'])}, relative L2 {_num(s['relative_l2']['final']['median'])}, "
        f"SSIM {_num(s['ssim']['final']['median'])}; report: {out / 'report.html'}",
        highlight=False,
    )


def _num(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


@app.command()
def compare(
    run_dirs: list[Path] = typer.Argument(..., help="Training run directories to put side by side."),
    data: Path = typer.Option(..., "--data", help="Plane dataset (netCDF) on the runs' grid."),
    out: Path = typer.Option(..., "--out", help="Output directory: compare.csv/json/png/html."),
    splits: list[str] = typer.Option([], "--split", help="Split(s) to compare (repeatable); default: val (the split "
                                     "that chooses), test and ood, where present."),
) -> None:
    """Evaluate several runs on the same data and compare them in one table and one figure."""
    from plumecast.evaluate import EvaluationError, check_compatible, evaluate_system, load_system
    from plumecast.report import write_comparison

    if len(set(map(str, run_dirs))) != len(run_dirs):
        fail("the same run directory is given twice")
    bad = [s for s in splits if s not in _SPLITS]
    if bad:
        fail(f"unknown split(s) {bad}; expected {', '.join(_SPLITS)}")
    check_output_path(out, "dir")
    ds = read_dataset_or_fail(data)
    present = {str(s) for s in ds["split"].values}
    default = ("val", "test", "ood")
    splits = list(dict.fromkeys(splits)) or [s for s in default if s in present]
    missing = [s for s in splits if s not in present]
    if missing or not splits:
        fail(f"{data} has no scenario in split(s) {missing or list(default)} (it has: {', '.join(sorted(present))})")
    systems = []
    try:  # check every run before any long work
        for run_dir in run_dirs:
            system, config = load_system(run_dir)
            check_compatible(system[0], ds, run=str(run_dir), data=str(data))
            systems.append((run_dir, system, config))
        evaluations = [
            evaluate_system(system, ds, split, run_dir=str(run_dir), variant=config.variant, preset=config.preset, data=str(data))
            for run_dir, system, config in systems
            for split in splits
        ]
    except EvaluationError as e:
        fail(str(e))
    try:
        write_comparison(evaluations, out)
    except OSError as e:
        fail(f"cannot write the comparison to {out}: {e}")
    for ev in evaluations:
        s = ev.summary
        console.print(
            f"{ev.label:>20s} {ev.variant:>10s} {ev.split:>5s}: Spearman {_num(s['spearman']['final']['median'])}, "
            f"relative L2 {_num(s['relative_l2']['final']['median'])}",
            highlight=False,
        )
    console.print(f"comparison: {out / 'compare.html'}", highlight=False)
