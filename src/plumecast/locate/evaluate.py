"""An honest evaluation of locating: readings drawn from a dataset's ground truth, located, scored.

For every scenario of a split (:func:`evaluate_locate`):

* **release**: the first snapshot time at which the dataset's ``source_rate`` is > 0;
* **sensors**: ``K`` distinct fluid cells drawn with the seed (``fixed_layout``: one draw
  for every scenario, as a building has; else a new draw per scenario), or the layout
  ``designed`` from the run's own forecasts (:mod:`plumecast.locate.placement`, fixed; no
  truth is used), each reading the cell's plane concentration of the **dataset** (the 3D
  truth, never a model forecast);
* **readings**: every ``every_s`` seconds over the first ``window_s`` seconds after the
  release (``every_s, 2 every_s, ..., window_s`` after it), linear in time between the
  dataset's snapshots, times multiplicative log-normal noise ``exp(noise e)``, ``e``
  standard normal (the median reading is the true value);
* **clock**: the readings' clock puts the release at a seeded random time in ``[0,
  start_spread_s]`` (the dataset's releases are all at its t = 0, which is also the
  earliest start the locator allows; without the shift every true start would sit on the
  edge of the prior). The true start is that time;
* **truth**: the source's (x, y) where it was at the last reading (for a moving source
  the estimate is compared with that point; the static-source locator then answers
  "where is it now" from readings of a trail), its height, and its mean rate over the
  window.

Scores per case: position error (m, on the plane), rate error (estimate / truth - 1),
start error (estimate - truth, s), whether the truth's cell lies in the 90 % credible
region, the region's area and the locating time. A case that cannot be located counts
as a miss of the region and has no errors. Every system (the trained run and,
optionally, the untrained physics baseline) locates the same readings.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace

import numpy as np

from plumecast.locate.core import Library, LocateSettings, build_library, default_limit, locate
from plumecast.locate.placement import CRITERIA, design_layout
from plumecast.locate.readings import LocateError, Readings, check_readings

__all__ = ["EvalSettings", "draw_case", "evaluate_locate", "summarise", "markdown_table", "baseline_system",
           "calibrate_model_error", "age_table"]


LAYOUTS = ("random", "spread", "designed")
READINGS_FROM = ("truth", "model")


@dataclass(frozen=True)
class EvalSettings:
    split: str = "test"
    sensors: int = 6
    noise: float = 0.1
    fixed_layout: bool = False
    layout: str = "random"  # "random": seeded random fluid cells; "spread": seeded k-means centres of the fluid
    # cells; "designed": the greedy layout from the run's forecasts (placement.py; always fixed)
    cover: int = 1  # the designed layout's sensors counted per source (placement.design_layout)
    criterion: str = "coverage"  # the designed layout's criterion (placement.CRITERIA)
    bin_s: float = 10.0  # its arrival bins for criterion "confusion", s
    seed: int = 0
    layout_seed: int | None = None  # a fixed layout drawn with this seed; the readings' draws stay those of `seed`
    every_s: float = 10.0
    window_s: float = 120.0
    start_spread_s: float = 60.0
    calibrate: str | None = None  # a split ("val"): each system's model_error from its log error there
    error_by_age: bool = False  # with `calibrate`: the model error by the time since the release, not one number
    # "truth": readings from the dataset's concentration (the evaluation); "model": from the first system's own forecast
    # of each scenario, a perfect model's case (what the readings themselves can tell, not the model's accuracy)
    readings_from: str = "truth"

    def __post_init__(self):
        # never on test or ood, which are only reported; on the located split itself when that is train or val
        # (choosing settings there, with the error those scenarios show)
        if self.calibrate is not None and self.calibrate not in ("train", "val"):
            raise LocateError(f"the model error is calibrated on the train or val split, not on {self.calibrate!r} "
                              f"(the located split is {self.split!r})")
        if self.readings_from not in READINGS_FROM:
            raise LocateError(f"--readings-from must be one of {', '.join(READINGS_FROM)}, got {self.readings_from!r}")
        if self.error_by_age and self.calibrate is None:
            raise LocateError("--error-by-age needs the model error calibrated on a split (--model-error val)")
        if self.sensors < 1:
            raise LocateError(f"--sensors must be >= 1, got {self.sensors}")
        if not (math.isfinite(self.noise) and self.noise >= 0):
            raise LocateError(f"--noise must be a finite number >= 0, got {self.noise}")
        if not (self.every_s > 0 and self.window_s >= self.every_s):
            raise LocateError(f"--every ({self.every_s:g} s) must be > 0 and at most --window ({self.window_s:g} s)")
        if self.layout_seed is not None and (not self.fixed_layout or self.layout == "designed"):
            raise LocateError("--layout-seed draws a fixed random or spread layout: give --fixed-layout, not --layout "
                              "designed")
        if self.layout not in LAYOUTS:
            raise LocateError(f"--layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if self.cover < 1:
            raise LocateError(f"--cover must be >= 1, got {self.cover}")
        if self.criterion not in CRITERIA:
            raise LocateError(f"--criterion must be one of {', '.join(CRITERIA)}, got {self.criterion!r}")
        if not (math.isfinite(self.bin_s) and self.bin_s > 0):
            raise LocateError(f"--bin must be > 0 s, got {self.bin_s}")
        if not (math.isfinite(self.start_spread_s) and self.start_spread_s >= 0):
            raise LocateError(f"--start-spread must be >= 0, got {self.start_spread_s}")


def baseline_system(ds):
    """The untrained physics of a dataset: nu_t / Sc_t diffusivities, no learning, no closure."""
    from plumecast.forcing import prepare_data
    from plumecast.train import TrainConfig, build_system

    return (build_system(ds, TrainConfig(), prepare_data(ds, 0.4))[0], None)


def sensor_cells(fluid: np.ndarray, k: int, rng, layout: str = "random") -> np.ndarray:
    """``(k, 2)`` distinct fluid cells ``(row, column)``: seeded random, or spread (k-means centres of the fluid)."""
    cells = np.argwhere(fluid > 0)
    if k > len(cells):
        raise LocateError(f"{k} sensors asked for but the plane has only {len(cells)} fluid cells")
    if layout == "random":
        return cells[np.sort(rng.choice(len(cells), k, replace=False))]
    # k-means (Lloyd) on the fluid cells from a seeded random start, each centre snapped to a distinct cell
    pts = cells.astype(float)
    centres = pts[rng.choice(len(pts), k, replace=False)]
    for _ in range(50):
        label = np.argmin(((pts[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
        new = np.stack([pts[label == j].mean(axis=0) if (label == j).any() else centres[j] for j in range(k)])
        if np.allclose(new, centres):
            break
        centres = new
    chosen: list[int] = []
    for centre in centres:
        d = ((pts - centre) ** 2).sum(-1)
        d[chosen] = np.inf
        chosen.append(int(np.argmin(d)))
    return cells[np.sort(chosen)]


def with_model_forecasts(ds, system, indices):
    """A copy of ``ds`` whose concentration of scenarios ``indices`` is ``system``'s forecast of them (the rest as is)."""
    from plumecast.forcing import prepare_data
    from plumecast.forecast import check_grid, forecast_scenarios

    model = system[0]
    check_grid(model, ds)
    prep = prepare_data(ds, model.config.dt, model.config.dtype, fluid=np.asarray(model.fluid))
    conc = np.array(ds["concentration"].values, dtype=float)
    conc[np.asarray(indices, int)] = forecast_scenarios(system, prep, indices)
    out = ds.copy()
    out["concentration"] = (ds["concentration"].dims, conc.astype(ds["concentration"].dtype))
    return out


def draw_case(ds, index: int, cells: np.ndarray, settings: EvalSettings, rng) -> tuple[Readings, dict]:
    """Readings of the sensors at ``cells`` ``(K, 2)`` for scenario ``index`` of ``ds``, and the truth."""
    name = str(ds["scenario"].values[index])
    times = np.asarray(ds["time"].values, float)
    rate = np.asarray(ds["source_rate"].values[index], float)
    on = np.flatnonzero(rate > 0)
    if on.size == 0:
        raise LocateError(f"scenario {name!r} never emits (its source_rate is 0 throughout)")
    release = float(times[on[0]])
    n = int(math.floor(settings.window_s / settings.every_s + 1e-9))
    t_ds = release + settings.every_s * np.arange(1, n + 1)
    if t_ds[-1] > times[-1] + 1e-9:
        raise LocateError(f"scenario {name!r}: readings up to {t_ds[-1]:g} s need data beyond its last snapshot "
                          f"({times[-1]:g} s); shorten --window")
    conc = np.asarray(ds["concentration"].values[index], float)  # (T, ny, nx)
    x, y = np.asarray(ds["x"].values, float), np.asarray(ds["y"].values, float)
    values = np.stack([np.interp(t_ds, times, conc[:, j, i]) for j, i in cells], axis=0)  # (K, n)
    values = np.maximum(values, 0.0) * np.exp(settings.noise * rng.standard_normal(values.shape))
    offset = float(rng.uniform(0.0, settings.start_spread_s)) if settings.start_spread_s > 0 else 0.0
    K = len(cells)
    readings = Readings.from_arrays(
        [f"S{k + 1}" for k in range(K)], np.stack([x[cells[:, 1]], y[cells[:, 0]]], axis=1),
        np.repeat(np.arange(K), n), np.tile(t_ds - release + offset, K), values.reshape(-1))
    t_end = float(t_ds[-1])
    track = {k: np.asarray(ds[f"source_{k}"].values[index], float) for k in ("x", "y", "z")}
    window = (times >= release - 1e-9) & (times <= t_end + 1e-9)
    moving = bool(np.ptp(track["x"][window]) > 1e-6 or np.ptp(track["y"][window]) > 1e-6)
    fine = np.linspace(release, t_end, 200)
    truth = {"x_m": float(np.interp(t_end, times, track["x"])), "y_m": float(np.interp(t_end, times, track["y"])),
             "z_m": float(np.interp(t_end, times, track["z"])), "rate": float(np.interp(fine, times, rate).mean()),
             "start_s": offset, "moving": moving, "release_in_data_s": release}
    return readings, truth


def _case_record(name, split, label, result, truth, model, readings: Readings, seconds: float, library_share: float) -> dict:
    detected = readings.value >= readings.limit
    rec = {"scenario": name, "split": split, "system": label, "moving": truth["moving"], "status": result.status,
           "reason": result.reason, "truth_x_m": truth["x_m"], "truth_y_m": truth["y_m"], "truth_z_m": truth["z_m"],
           "truth_rate": truth["rate"], "truth_start_s": truth["start_s"],
           "readings_above_limit": int(detected.sum()),
           "sensors_above_limit": int(len(np.unique(readings.sensor[detected]))),
           "locate_s": seconds, "library_share_s": library_share, "time_per_case_s": seconds + library_share}
    for k in ("x_m", "y_m", "z_m", "rate", "start_s"):
        rec[f"est_{k}"] = None if result.estimate is None else result.estimate[k]
    if result.located:
        e = result.estimate
        rec["position_error_m"] = math.hypot(e["x_m"] - truth["x_m"], e["y_m"] - truth["y_m"])
        rec["rate_error_rel"] = e["rate"] / truth["rate"] - 1.0 if truth["rate"] > 0 else None
        rec["start_error_s"] = e["start_s"] - truth["start_s"]
        s = result.scan_estimate
        rec["scan_position_error_m"] = math.hypot(s["x_m"] - truth["x_m"], s["y_m"] - truth["y_m"])
        m = result.posterior_mean
        rec["mean_position_error_m"] = math.hypot(m["x_m"] - truth["x_m"], m["y_m"] - truth["y_m"])
        m = result.posterior_median
        rec["median_position_error_m"] = math.hypot(m["x_m"] - truth["x_m"], m["y_m"] - truth["y_m"])
    else:
        for k in ("position_error_m", "rate_error_rel", "start_error_s", "scan_position_error_m",
                  "mean_position_error_m", "median_position_error_m"):
            rec[k] = None
    rec["in_region"] = bool(result.located and result.contains(model, truth["x_m"], truth["y_m"]))
    rec["region_area_m2"] = None if result.credible is None else result.credible["area_m2"]
    return rec


def evaluate_locate(systems: dict, ds, settings: EvalSettings, locate_settings: LocateSettings, *, horizon_s: float,
                    progress=None, pictures=None) -> dict:
    """Locate every scenario of ``settings.split`` with each of ``systems`` (label -> (model, closure)).

    Returns ``{"cases": [records], "summary": {label: aggregate}, "settings": ..., "libraries": ...}``.
    ``pictures(label, name, model, result, readings, truth)`` is called per case when given.
    """
    splits = [str(s) for s in ds["split"].values]
    names = [str(s) for s in ds["scenario"].values]
    indices = [i for i, s in enumerate(splits) if s == settings.split]
    if not indices:
        present = ", ".join(sorted(set(splits)))
        raise LocateError(f"the dataset has no scenario in split {settings.split!r} (it has: {present})")
    first_system = next(iter(systems.values()))
    first = first_system[0]
    truth_ds = ds  # the model error is always calibrated against the truth
    if settings.readings_from == "model":
        ds = with_model_forecasts(ds, first_system, indices)
    fluid = np.asarray(first.fluid)
    limit = locate_settings.detection_limit if locate_settings.detection_limit is not None else default_limit(first)
    locate_settings = replace(locate_settings, detection_limit=limit)
    rng = np.random.default_rng(settings.seed)
    heights = locate_settings.heights if locate_settings.heights is not None else (float(first.config.plane_height_m),)
    design = None
    if settings.layout == "designed":
        design = design_layout(first_system, settings.sensors, heights=heights,
                               window_s=settings.window_s, limit=limit, cover=settings.cover,
                               rate=locate_settings.rate_ref, stride=locate_settings.stride,
                               criterion=settings.criterion, bin_s=settings.bin_s)
        layout = design.cells
    elif settings.fixed_layout:
        layout = sensor_cells(fluid, settings.sensors, rng, settings.layout)
        # the draw above stays even with --layout-seed: it advances `rng` as in --seed's own run, so the noise
        # and clock draws below are that run's and layouts compare on the same readings
        if settings.layout_seed is not None:
            layout = sensor_cells(fluid, settings.sensors, np.random.default_rng(settings.layout_seed), settings.layout)
    else:
        layout = None
    cases = []
    for i in indices:
        cells = layout if layout is not None else sensor_cells(fluid, settings.sensors, rng, settings.layout)
        readings, truth = draw_case(ds, i, cells, settings, rng)
        readings = readings.with_limit(limit)
        check_readings(readings, first, horizon_s, origin=f"scenario {names[i]!r}")
        cases.append((i, readings, truth))
    # One library per system, at every sensor position of every case (one layout, or their union).
    all_xy = np.unique(np.concatenate([r.sensor_xy for _, r, _ in cases]), axis=0)
    t_max = max(float(r.time.max()) for _, r, _ in cases)
    dt = first.config.dt
    n_steps = int(math.ceil(t_max / dt - 1e-9)) + 1
    records, libraries = [], {}
    total = len(systems) * len(cases)
    done = 0
    for label, system in systems.items():
        system_settings, calibration = locate_settings, None
        if settings.calibrate is not None:
            calibration = calibrate_model_error(system, truth_ds, split=settings.calibrate, window_s=settings.window_s,
                                                limit=limit)
            system_settings = replace(locate_settings, model_error=calibration["model_error"],
                                      model_error_by_age=age_table(calibration) if settings.error_by_age else None)
        lib: Library = build_library(system, all_xy, heights=heights, n_steps=n_steps, rate_ref=locate_settings.rate_ref,
                                     stride=locate_settings.stride, batch=locate_settings.batch)
        libraries[label] = {"seconds": lib.seconds, "candidates": len(lib.xyz), "sensors": len(all_xy),
                            "steps": n_steps, "model_error": system_settings.model_error,
                            "model_error_by_age": system_settings.model_error_by_age, "calibration": calibration}
        share = lib.seconds / len(cases)
        for i, readings, truth in cases:
            t0 = time.perf_counter()
            result = locate(system, readings, system_settings, library=lib)
            seconds = time.perf_counter() - t0
            records.append(_case_record(names[i], splits[i], label, result, truth, system[0], readings, seconds, share))
            if pictures is not None:
                pictures(label, names[i], system[0], result, readings, truth)
            done += 1
            if progress is not None:
                progress(done, total)
    summary = {label: summarise([r for r in records if r["system"] == label], libraries[label]) for label in systems}
    return {"cases": records, "summary": summary, "settings": asdict(settings), "locate_settings": asdict(locate_settings),
            "libraries": libraries, "layout": None if layout is None else
            [{"row": int(j), "column": int(i)} for j, i in layout],
            "design": None if design is None else design.as_dict()}


def age_table(record: dict) -> tuple[tuple[float, float], ...] | None:
    """``LocateSettings.model_error_by_age`` from a :func:`~plumecast.forecast.point_log_errors` record (None without bins)."""
    rows = record.get("by_age") or []
    return tuple((float(r["age_s"]), float(r["model_error"])) for r in rows) or None


def calibrate_model_error(system, ds, *, split: str = "val", window_s: float, limit: float) -> dict:
    """``model_error`` (and ``bias``) of a system from its log error on ``split`` (:func:`~plumecast.forecast.point_log_errors`).

    The validation split, so that locating the test split chooses nothing on it.
    """
    from plumecast.forcing import prepare_data
    from plumecast.forecast import check_grid, point_log_errors

    model = system[0]
    check_grid(model, ds)
    prep = prepare_data(ds, model.config.dt, model.config.dtype, fluid=np.asarray(model.fluid))
    indices = prep.indices(split)
    if len(indices) == 0:
        raise LocateError(f"the dataset has no scenario in split {split!r} to calibrate the model error on")
    record = point_log_errors(system, prep, indices, windows_s=[window_s], limit=limit)[0]
    if record["values"] < 10:
        raise LocateError(f"too few cells above the detection limit ({record['values']}) in split {split!r} within "
                          f"{window_s:g} s of the releases to calibrate the model error")
    return {"split": split, **record}


def _median(values) -> float | None:
    v = [x for x in values if x is not None and math.isfinite(x)]
    return float(np.median(v)) if v else None


def _quantiles(values) -> list[float] | None:
    v = [x for x in values if x is not None and math.isfinite(x)]
    return [float(q) for q in np.percentile(v, [25, 75])] if v else None


def summarise(records: list[dict], library: dict) -> dict:
    """Aggregate of one system's cases (median and IQR; failures counted where said)."""
    n = len(records)
    ok = [r for r in records if r["status"] == "located"]
    errs = [r["position_error_m"] for r in ok]
    # failures as infinitely far: the median over all cases
    all_errs = sorted([e for e in errs] + [math.inf] * (n - len(ok)))
    median_all = float(np.median(all_errs)) if n else None
    static = [r for r in records if not r["moving"]]
    return {
        "cases": n,
        "located": len(ok),
        "cannot_locate": n - len(ok),
        "moving_cases": n - len(static),
        "position_error_m": {"median": _median(errs), "iqr": _quantiles(errs),
                             "median_all_cases": None if median_all is None or math.isinf(median_all) else median_all,
                             "within_1m_all_cases": sum(e <= 1.0 for e in errs) / n if n else None},
        "scan_position_error_m": {"median": _median([r["scan_position_error_m"] for r in ok])},
        "mean_position_error_m": {"median": _median([r["mean_position_error_m"] for r in ok])},
        "median_position_error_m": {"median": _median([r["median_position_error_m"] for r in ok])},
        "rate_error_rel": {"median_abs": _median([abs(r["rate_error_rel"]) for r in ok if r["rate_error_rel"] is not None]),
                           "median": _median([r["rate_error_rel"] for r in ok])},
        "start_error_s": {"median_abs": _median([abs(r["start_error_s"]) for r in ok]),
                          "median": _median([r["start_error_s"] for r in ok])},
        "coverage": sum(r["in_region"] for r in records) / n if n else None,
        "coverage_located": sum(r["in_region"] for r in ok) / len(ok) if ok else None,
        "region_area_m2": {"median": _median([r["region_area_m2"] for r in ok])},
        "locate_s": {"median": _median([r["locate_s"] for r in records]), "max": max(r["locate_s"] for r in records)},
        "library_s": library["seconds"],
        "model_error": library.get("model_error"),
        "time_per_case_s": {"median": _median([r["time_per_case_s"] for r in records])},
    }


def _fmt(v, spec=".2f", suffix="") -> str:
    return "n/a" if v is None else f"{v:{spec}}{suffix}"


def markdown_table(summary: dict) -> str:
    """The aggregate of each system as a markdown table."""
    head = ("| system | cases | located | median position error (m, located) | IQR (m) | posterior mean's error (m) | "
            "posterior median's error (m) | "
            "within 1 m (all) | "
            "90 % region holds truth (all) | median region (m^2) | median abs rate error | median abs start error (s) | "
            "locate per case (s) | library (s, once) | time per case (s) | model error (log sd) |")
    rows = [head, "|" + "---|" * 16]
    for label, s in summary.items():
        pe = s["position_error_m"]
        iqr = "n/a" if pe["iqr"] is None else f"{pe['iqr'][0]:.2f}-{pe['iqr'][1]:.2f}"
        rows.append(
            f"| {label} | {s['cases']} | {s['located']} | {_fmt(pe['median'])} | {iqr} | "
            f"{_fmt(s['mean_position_error_m']['median'])} | {_fmt(s['median_position_error_m']['median'])} | "
            f"{_fmt(None if pe['within_1m_all_cases'] is None else 100 * pe['within_1m_all_cases'], '.0f', ' %')} | "
            f"{_fmt(None if s['coverage'] is None else 100 * s['coverage'], '.0f', ' %')} | "
            f"{_fmt(s['region_area_m2']['median'], '.1f')} | {_fmt(s['rate_error_rel']['median_abs'])} | "
            f"{_fmt(s['start_error_s']['median_abs'], '.1f')} | {_fmt(s['locate_s']['median'])} | "
            f"{_fmt(s['library_s'], '.1f')} | {_fmt(s['time_per_case_s']['median'])} | {_fmt(s['model_error'])} |")
    return "\n".join(rows)
