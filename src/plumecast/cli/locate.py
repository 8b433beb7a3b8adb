"""Commands: locate (a source from sensor readings), locate-eval (locating scored against a dataset's truth), sensors
(a layout designed from the run's forecasts)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import typer

from plumecast.cli.app import app, check_output_path, console, fail, read_dataset_or_fail
from plumecast.io.dataset import SPLITS

DEFAULT_MODEL_ERROR = 0.5  # log standard deviation, for runs that record none of their own
ESTIMATE_HELP = ("The reported source: median (the point of the open plane least far from the source in expectation, "
                 "at 1/5 of a cell), cell-median (the same among cell centres) or refined (the gradient-refined point "
                 "of highest likelihood).")

# Exit status of `locate` when the readings cannot locate a source (the result is written, status cannot_locate).
CANNOT_LOCATE_EXIT = 3


def _settings(height, detection_limit, noise, model_error, correlation, stride, refine, iterations, rate_ref, estimate):
    from plumecast.locate import LocateError, LocateSettings

    try:
        return LocateSettings(heights=tuple(height) or None, detection_limit=detection_limit, noise=noise,
                              model_error=model_error, correlation_s=correlation, stride=stride, refine=refine,
                              iterations=iterations, rate_ref=rate_ref, estimate=estimate)
    except LocateError as e:
        fail(str(e))


def _load(run_dir: Path):
    """``(system, config, horizon_s, mass_unit, source_heights_m)`` of a run, or a one-line error.

    ``source_heights_m``: the height classes of its training sources (None for runs that
    predate them or trained on too many heights).
    """
    from plumecast.train import TrainError, load_run

    try:
        system, config, run = load_run(run_dir)
    except TrainError as e:
        fail(str(e))
    try:
        horizon = float(run["data"]["horizon_s"])
    except (KeyError, TypeError, ValueError):
        fail(f"{run_dir}: config.json does not give the training horizon (data.horizon_s); not a plumecast run")
    unit = None
    if isinstance(run.get("room"), dict):
        try:
            from plumecast.io.room import load_run_room

            unit = load_run_room(run_dir, run).mass_unit
        except Exception:  # the unit is a label only; the room itself is not needed to locate
            unit = None
    heights = run["data"].get("source_heights_m")
    return system, config, horizon, unit, tuple(float(h) for h in heights) if heights else None


def _run_model_error(run_dir: Path, span_s: float) -> dict | None:
    """The run's recorded pointwise error on val (``summary.json``) for the shortest window covering ``span_s``."""
    try:
        records = json.loads((run_dir / "summary.json").read_text()).get("point_error_val") or []
    except (OSError, ValueError):
        return None
    records = sorted((r for r in records if r.get("model_error")), key=lambda r: r["window_s"])
    if not records:
        return None
    return next((r for r in records if r["window_s"] >= span_s - 1e-9), records[-1])


def _with_heights(settings, heights):
    """The settings with the run's training heights as the height classes when none were given."""
    return settings if settings.heights is not None or not heights else replace(settings, heights=heights)


def _write_json(path: Path, payload: dict) -> None:
    from plumecast.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=1, allow_nan=False, default=_plain) + "\n")


def _plain(v):
    import numpy as np

    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


def _finite(obj):
    """``obj`` with non-finite floats as None (strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


@app.command("locate")
def locate_command(
    run_dir: Path = typer.Argument(..., help="Training run directory (its latest checkpoint is the model)."),
    sensors: Path = typer.Option(..., "--sensors", help="Readings CSV: sensor_id,x_m,y_m,time_s,value[,detection_limit] "
                                 "(docs/locate.md)."),
    out: Path = typer.Option(..., "--out", help="Output directory: locate.json, posterior.png."),
    height: list[float] = typer.Option([], "--height", help="Source height class, m (repeat for several; the posterior "
                                       "sums over them). Default: the run's training source heights, else the plane "
                                       "height."),
    detection_limit: float | None = typer.Option(None, "--detection-limit", help="Detection limit of readings without "
                                                 "their own (mass/m^3). Default: 1 % of the run's concentration scale."),
    noise: float = typer.Option(0.1, "--noise", help="The sensors' multiplicative noise, log standard deviation."),
    model_error: float | None = typer.Option(None, "--model-error", help="The model's error at a point, log standard "
                                             "deviation. Default: the run's own on its val scenarios (summary.json), "
                                             "else 0.5."),
    correlation: float = typer.Option(60.0, "--correlation", help="Correlation time of the model error, s (readings of "
                                      "one sensor closer than this share weight)."),
    stride: int = typer.Option(1, "--stride", help="Candidate lattice: every STRIDE-th fluid cell in x and y."),
    refine: int = typer.Option(3, "--refine", help="Best candidates refined by gradients through the model (0: none)."),
    iterations: int = typer.Option(30, "--iterations", help="Adam steps per refined candidate."),
    estimate: str = typer.Option("median", "--estimate", help=ESTIMATE_HELP),
    rate_ref: float = typer.Option(1.0, "--rate-ref", help="Source rate of the candidate scan, mass/s."),
) -> None:
    """Locate a static source (position, rate, start) from sensor readings; a posterior map and a 90 % region."""
    from plumecast.locate import LocateError, check_readings, locate, read_readings
    from plumecast.locate.picture import posterior_picture

    check_output_path(out, "dir")
    settings = _settings(height, detection_limit, noise, DEFAULT_MODEL_ERROR if model_error is None else model_error,
                         correlation, stride, refine, iterations, rate_ref, estimate)
    system, config, horizon, unit, heights = _load(run_dir)
    settings = _with_heights(settings, heights)
    try:
        readings = read_readings(sensors)
        warnings = check_readings(readings, system[0], horizon, origin=str(sensors))
    except LocateError as e:
        fail(str(e))
    model_error_from = "--model-error"
    if model_error is None:
        stored = _run_model_error(run_dir, float(readings.time.max()))
        if stored is None:
            model_error_from = f"default {DEFAULT_MODEL_ERROR} (the run records no error on val scenarios)"
        else:
            settings = replace(settings, model_error=stored["model_error"])
            model_error_from = (f"the run's log error on its val scenarios within {stored['window_s']:g} s of the "
                                f"release ({stored['values']} cell values)")
    for w in warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
    console.print(f"model error {settings.model_error:.2f} (log sd): {model_error_from}", highlight=False)
    try:
        result = locate(system, readings, settings)
    except LocateError as e:
        fail(str(e))
    result.warnings.extend(warnings)
    payload = _finite({"run": str(run_dir), "variant": config.variant, "readings": str(sensors),
                       "model_error_from": model_error_from,
                       "mass_unit": unit or "the training data's mass unit", **result.to_json()})
    limit = result.noise_model["detection_limit"]
    try:
        out.mkdir(parents=True, exist_ok=True)
        _write_json(out / "locate.json", payload)
        posterior_picture(system[0], result, readings.with_limit(limit), out / "posterior.png")
    except OSError as e:
        fail(f"cannot write the result to {out}: {e}")
    if not result.located:
        console.print(f"cannot locate: {result.reason} ({out / 'locate.json'})", highlight=False)
        raise typer.Exit(CANNOT_LOCATE_EXIT)
    e, cr = result.estimate, result.credible
    console.print(
        f"source at ({e['x_m']:.2f}, {e['y_m']:.2f}) m, height {e['z_m']:g} m, rate {e['rate']:.3g} "
        f"{unit or 'mass'}/s, start {e['start_s']:.1f} s; {100 * cr['level']:.0f} % region {cr['area_m2']:.1f} m^2 "
        f"({cr['cells']} cells); {result.timings['total_s']:.1f} s; {out / 'locate.json'}, {out / 'posterior.png'}",
        highlight=False)


_CSV_COLUMNS = ("scenario", "split", "system", "moving", "status", "truth_x_m", "truth_y_m", "truth_z_m", "truth_rate",
                "truth_start_s", "est_x_m", "est_y_m", "est_z_m", "est_rate", "est_start_s", "position_error_m",
                "rate_error_rel", "start_error_s", "in_region", "region_area_m2", "scan_position_error_m",
                "mean_position_error_m", "median_position_error_m", "readings_above_limit", "sensors_above_limit",
                "locate_s", "library_share_s", "time_per_case_s", "reason")


def _write_csv(path: Path, records: list[dict], columns=_CSV_COLUMNS) -> None:
    import csv

    from plumecast.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(columns)
            for r in records:
                w.writerow(["" if r.get(k) is None else (f"{r[k]:.6g}" if isinstance(r[k], float) else r[k])
                            for k in columns])


def _histogram(path: Path, records: list[dict], labels: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from plumecast.io.atomic import atomic_path

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    panels = (("position_error_m", "position error (m)", False), ("rate_error_rel", "rate error (estimate / truth - 1)", False),
              ("start_error_s", "start error (s)", False))
    for ax, (key, title, _) in zip(axes, panels):
        data = [[r[key] for r in records if r["system"] == lab and r[key] is not None] for lab in labels]
        flat = [v for d in data for v in d]
        if flat:
            lo, hi = min(flat), max(flat)
            bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 16)
            for d, lab in zip(data, labels):
                n_all = sum(r["system"] == lab for r in records)
                ax.hist(d, bins=bins, alpha=0.55, label=f"{lab} ({len(d)}/{n_all} located)")
        if key == "position_error_m":
            ax.axvline(1.0, color="k", ls="--", lw=1)
        ax.set_xlabel(title)
        ax.set_ylabel("cases")
        if flat:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "no case located", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110)
    finally:
        plt.close(fig)


@app.command("locate-eval")
def locate_eval_command(
    run_dir: Path = typer.Argument(..., help="Training run directory."),
    data: Path = typer.Argument(..., help="Plane dataset (netCDF) on the run's grid: the ground truth of the readings."),
    out: Path = typer.Option(..., "--out", help="Output directory: locate_eval.json/.csv/.md/.png, maps/."),
    split: str = typer.Option("test", "--split", help="Split whose scenarios are located: train | val | test | ood (choose settings on val)."),
    sensors: int = typer.Option(6, "--sensors", help="Sensors per case (K)."),
    noise: float = typer.Option(0.1, "--noise", help="Multiplicative noise of the readings (log standard deviation); "
                                "also the locator's stated sensor noise."),
    fixed_layout: bool = typer.Option(False, "--fixed-layout", help="The same K sensors for every scenario (a building's "
                                      "layout); else a new draw per scenario."),
    layout: str = typer.Option("random", "--layout", help="random: seeded random fluid cells; spread: seeded k-means "
                               "centres of the fluid cells; designed: the layout `plumecast sensors` designs from "
                               "the run's forecasts (fixed, no truth used)."),
    cover: int = typer.Option(1, "--cover", help="--layout designed: sensors counted per candidate source."),
    criterion: str = typer.Option("coverage", "--criterion", help="--layout designed: coverage or confusion "
                                  "(`plumecast sensors --help`)."),
    bin_s: float = typer.Option(10.0, "--bin", help="--layout designed, --criterion confusion: arrival bins, s."),
    seed: int = typer.Option(0, "--seed", help="Seed of sensor positions, noise and release clock."),
    layout_seed: int | None = typer.Option(None, "--layout-seed", help="Draw the fixed layout with this seed instead, "
                                           "the noise and release clock still with --seed (layouts compared on the "
                                           "same readings' draws)."),
    every: float = typer.Option(10.0, "--every", help="Seconds between readings."),
    window: float = typer.Option(120.0, "--window", help="Readings over this many seconds after the release."),
    start_spread: float = typer.Option(60.0, "--start-spread", help="The release is put at a seeded random time in "
                                       "[0, START_SPREAD] s of the readings' clock (0: the dataset's clock)."),
    baseline: bool = typer.Option(False, "--baseline", help="Also locate with the untrained physics of the dataset "
                                  "(nu_t / 0.7, no learning), side by side."),
    height: list[float] = typer.Option([], "--height", help="Source height class(es), m; default: the run's training "
                                       "source heights, else the plane height."),
    detection_limit: float | None = typer.Option(None, "--detection-limit", help="Detection limit, mass/m^3 (default: 1 % "
                                                 "of the run's concentration scale)."),
    model_error: str = typer.Option("0.5", "--model-error", help="The locator's model error, log standard deviation; "
                                    "or val (or train): each system's log error at single cells on that split's "
                                    "scenarios over the readings' window."),
    correlation: float = typer.Option(60.0, "--correlation", help="Correlation time of the model error, s."),
    by_age: bool = typer.Option(False, "--error-by-age/--constant-error", help="With --model-error val (or train): "
                                "the model error per 30 s of the time since the release, not one number."),
    readings_from: str = typer.Option("truth", "--readings-from", help="truth: readings from the dataset (the "
                                      "evaluation); model: from the run's own forecast of each scenario, a perfect "
                                      "model's case (what the readings can tell, not the model's accuracy)."),
    stride: int = typer.Option(1, "--stride", help="Candidate lattice stride (cells)."),
    refine: int = typer.Option(3, "--refine", help="Candidates refined by gradients (0: none)."),
    iterations: int = typer.Option(30, "--iterations", help="Adam steps per refined candidate."),
    estimate: str = typer.Option("median", "--estimate", help=ESTIMATE_HELP),
    maps: int = typer.Option(3, "--maps", min=0, help="Posterior maps drawn per system (the first MAPS cases)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the progress bar."),
) -> None:
    """Locate every scenario of a split from readings drawn from the dataset's truth; errors, coverage and times."""
    from plumecast.forecast import check_grid
    from plumecast.locate import LocateError
    from plumecast.locate.evaluate import EvalSettings, baseline_system, evaluate_locate, markdown_table
    from plumecast.locate.picture import posterior_picture
    from plumecast.train import TrainError

    check_output_path(out, "dir")
    if split not in SPLITS:
        fail(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    calibrate = model_error if model_error in SPLITS else None
    try:
        sigma_model = DEFAULT_MODEL_ERROR if calibrate else float(model_error)
    except ValueError:
        fail(f"--model-error must be a number or a split name (val, train), got {model_error!r}")
    settings = _settings(height, detection_limit, noise, sigma_model, correlation, stride, refine, iterations, 1.0,
                         estimate)
    try:
        es = EvalSettings(split=split, sensors=sensors, noise=noise, fixed_layout=fixed_layout, layout=layout, seed=seed,
                          every_s=every, window_s=window, start_spread_s=start_spread, calibrate=calibrate, cover=cover,
                          criterion=criterion, bin_s=bin_s, layout_seed=layout_seed, error_by_age=by_age,
                          readings_from=readings_from)
    except LocateError as e:
        fail(str(e))
    system, config, horizon, _, heights = _load(run_dir)
    settings = _with_heights(settings, heights)
    ds = read_dataset_or_fail(data)
    present = {str(s) for s in ds["split"].values}
    if split not in present:
        fail(f"{data} has no scenario in split {split!r} (it has: {', '.join(sorted(present))})")
    try:
        check_grid(system[0], ds, run=str(run_dir), data=str(data))
        systems = {f"{config.variant} ({run_dir.name})": system}
        if baseline:
            systems["untrained physics"] = baseline_system(ds)
    except TrainError as e:
        fail(str(e))
    drawn = {label: 0 for label in systems}
    safe = {label: "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in label).strip("-") for label in systems}

    def picture(label, name, model, result, readings, truth):
        if drawn[label] < maps:
            drawn[label] += 1
            title = f"{label}, {name}: " + ("located" if result.located else f"cannot locate: {result.reason}")
            posterior_picture(model, result, readings, out / "maps" / f"{safe[label]}-{name}.png", truth=truth, title=title)

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("locating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                   disable=not progress)
    try:
        with bar:
            task = bar.add_task("cases", total=None)
            result = evaluate_locate(systems, ds, es, settings, horizon_s=horizon, pictures=picture,
                                     progress=lambda d, t: bar.update(task, completed=d, total=t))
    except (LocateError, TrainError) as e:
        fail(str(e))
    table = markdown_table(result["summary"])
    payload = _finite({"run": str(run_dir), "data": str(data), **result})
    try:
        out.mkdir(parents=True, exist_ok=True)
        _write_json(out / "locate_eval.json", payload)
        _write_csv(out / "locate_eval.csv", result["cases"])
        _histogram(out / "locate_eval.png", result["cases"], list(systems))
        from plumecast.io.atomic import atomic_path

        with atomic_path(out / "locate_eval.md") as tmp:
            tmp.write_text(table + "\n")
    except OSError as e:
        fail(f"cannot write the evaluation to {out}: {e}")
    print(table)
    console.print(f"cases: {out / 'locate_eval.csv'}; summary: {out / 'locate_eval.json'}; histogram: "
                  f"{out / 'locate_eval.png'}", highlight=False)


@app.command("sensors")
def sensors_command(
    run_dir: Path = typer.Argument(..., help="Training run directory."),
    out: Path = typer.Option(..., "--out", help="Output directory: sensors.csv, sensors.json, sensors.png."),
    count: int = typer.Option(6, "--count", min=1, help="Sensors to place."),
    window: float = typer.Option(120.0, "--window", help="Seconds after a release within which the sensors should read "
                                 "above their limit (the readings' window of `locate`)."),
    cover: int = typer.Option(1, "--cover", min=1, help="Sensors counted per candidate source: one gives a direction, "
                              "two or more a position (docs/locate.md)."),
    height: list[float] = typer.Option([], "--height", help="Source height class(es), m; default: the run's training "
                                       "source heights, else the plane height."),
    rate: float = typer.Option(1.0, "--rate", help="Emission rate the layout is designed for, mass/s."),
    detection_limit: float | None = typer.Option(None, "--detection-limit", help="The sensors' detection limit, "
                                                 "mass/m^3 (default: 1 % of the run's concentration scale)."),
    stride: int = typer.Option(1, "--stride", min=1, help="Candidate sources on every STRIDE-th fluid cell."),
    criterion: str = typer.Option("coverage", "--criterion", help="coverage: the most candidates seen early by COVER "
                                  "sensors; confusion: the least spread of candidates whose arrival times at every "
                                  "sensor fall in the same BIN-second bins."),
    bin_s: float = typer.Option(10.0, "--bin", help="--criterion confusion: width of the arrival-time bins, s."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the progress bar."),
) -> None:
    """Design a fixed sensor layout from the run's own forecasts: sensors that see every candidate source early."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from plumecast.locate import LocateError, default_limit
    from plumecast.locate.placement import design_layout, layout_picture

    check_output_path(out, "dir")
    system, config, horizon, unit, heights = _load(run_dir)
    model = system[0]
    heights = tuple(height) or heights or (float(model.config.plane_height_m),)
    if not (math.isfinite(window) and 0 < window <= 2 * horizon):
        fail(f"--window must be > 0 s and at most twice the run's training horizon ({2 * horizon:g} s), got {window:g}")
    limit = default_limit(model) if detection_limit is None else detection_limit
    bar = Progress(TextColumn("forecasting candidates"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=console, disable=not progress)
    try:
        with bar:
            task = bar.add_task("sources", total=None)
            layout = design_layout(system, count, heights=heights, window_s=window, limit=limit, cover=cover, rate=rate,
                                   stride=stride, criterion=criterion, bin_s=bin_s,
                                   progress=lambda d, t: bar.update(task, completed=d, total=t))
    except LocateError as e:
        fail(str(e))
    payload = _finite({"run": str(run_dir), "variant": config.variant, "mass_unit": unit or "the training data's mass unit",
                       **layout.as_dict()})
    try:
        out.mkdir(parents=True, exist_ok=True)
        _write_csv(out / "sensors.csv", [{"sensor_id": s["id"], "x_m": s["x_m"], "y_m": s["y_m"]}
                                         for s in payload["sensors"]], ("sensor_id", "x_m", "y_m"))
        _write_json(out / "sensors.json", payload)
        layout_picture(model, layout, out / "sensors.png")
    except OSError as e:
        fail(f"cannot write the layout to {out}: {e}")
    seen = payload["share_of_sources_seen_by"]
    console.print(", ".join(f"({s['x_m']:.2f}, {s['y_m']:.2f})" for s in payload["sensors"]) + " m", highlight=False)
    console.print("candidate sources seen by " + ", ".join(f"{k} sensors: {100 * v:.0f} %" for k, v in seen.items())
                  + f" within {window:g} s; {layout.seconds:.1f} s; {out / 'sensors.csv'}, {out / 'sensors.png'}",
                  highlight=False)
