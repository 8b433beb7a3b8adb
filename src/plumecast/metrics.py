"""Forecast metrics on fluid cells: per frame, per scenario over time, per split.

Every metric compares a forecast ``pred`` with the truth ``true`` on the fluid cells of
the plane only (solid cells are ignored, never counted as perfectly predicted zeros):

=================  ====================================================  ==========
name               definition                                            better
=================  ====================================================  ==========
spearman           Spearman rank correlation of the fluid-cell values    higher
                   (``scipy.stats.spearmanr``); NaN when either field
                   is constant (e.g. the empty room at t = 0)
relative_l2        ``||p - t|| / ||t||`` over fluid cells; NaN if t = 0   lower
ssim               SSIM (``skimage.metrics.structural_similarity``,      higher
                   7 x 7 uniform window, smaller on tiny grids) of the
                   two fields with solids set to 0, its map averaged
                   over fluid cells only. ``data_range`` is the truth's
                   range over fluid cells at that time (so a forecast
                   is judged on the scale of what it should show); if
                   the truth is constant, the larger of the two ranges
com_error_m        distance (m) between the centres of mass of the two   lower
                   fields (negative values clipped to 0); NaN when a
                   field holds no mass
exposure_error     ``||E_p - E_t|| / ||E_t||`` where ``E(t) = int_0^t c``  lower
                   (time-integrated concentration per cell, trapezoid
                   rule over the snapshot times), at each time
negative_mass      ``-sum(min(p, 0)) / sum(max(p, 0))`` of the forecast   lower
=================  ====================================================  ==========

Per split: the median and interquartile range (25th and 75th percentiles) over
scenarios of each metric at the final time and of its time mean (over times where it is
defined), plus median and IQR curves over time. NaN values are left out of medians.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats
from skimage.metrics import structural_similarity

__all__ = [
    "METRICS",
    "median_iqr",
    "HIGHER_IS_BETTER",
    "spearman",
    "relative_l2",
    "ssim",
    "centre_of_mass",
    "com_error",
    "exposure",
    "exposure_error",
    "negative_mass",
    "scenario_metrics",
    "summarise",
]

METRICS = ("spearman", "relative_l2", "ssim", "com_error_m", "exposure_error", "negative_mass")
HIGHER_IS_BETTER = {"spearman": True, "relative_l2": False, "ssim": True, "com_error_m": False,
                    "exposure_error": False, "negative_mass": False}
LABELS = {"spearman": "Spearman rank correlation", "relative_l2": "relative L2 error", "ssim": "SSIM",
          "com_error_m": "centre-of-mass error (m)", "exposure_error": "exposure relative error",
          "negative_mass": "negative mass fraction"}


def _fluid(fluid, shape) -> np.ndarray:
    fluid = np.asarray(fluid) > 0
    if fluid.shape != tuple(shape[-2:]):
        raise ValueError(f"fluid mask of shape {fluid.shape} does not match fields of shape {tuple(shape)}")
    if not fluid.any():
        raise ValueError("the fluid mask marks no fluid cell")
    return fluid


def _pair(pred, true, fluid):
    pred, true = np.asarray(pred, float), np.asarray(true, float)
    if pred.shape != true.shape or pred.ndim != 2:
        raise ValueError(f"expected two (ny, nx) fields of equal shape, got {pred.shape} and {true.shape}")
    return pred, true, _fluid(fluid, pred.shape)


def spearman(pred, true, fluid) -> float:
    """Spearman rank correlation of the fluid-cell values (NaN if either field is constant)."""
    pred, true, m = _pair(pred, true, fluid)
    a, b = pred[m], true[m]
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(stats.spearmanr(a, b).statistic)


def relative_l2(pred, true, fluid) -> float:
    """``||pred - true|| / ||true||`` over fluid cells (NaN when the truth is zero)."""
    pred, true, m = _pair(pred, true, fluid)
    den = float(np.sqrt(np.sum(true[m] ** 2)))
    return float(np.sqrt(np.sum((pred[m] - true[m]) ** 2)) / den) if den > 0 else float("nan")


def ssim(pred, true, fluid, data_range: float | None = None) -> float:
    """SSIM of the fluid-masked fields, averaged over fluid cells (see the module docstring)."""
    pred, true, m = _pair(pred, true, fluid)
    p, t = np.where(m, pred, 0.0), np.where(m, true, 0.0)
    if data_range is None:
        data_range = float(np.ptp(t[m]))
        if data_range == 0:
            data_range = max(float(np.ptp(p[m])), 0.0)
    if data_range == 0:  # both fields constant on the fluid cells
        return 1.0 if np.array_equal(p[m], t[m]) else float("nan")
    win = min(7, *(s if s % 2 else s - 1 for s in p.shape))
    if win < 3:
        raise ValueError(f"SSIM needs a grid of at least 3 x 3 cells, got {p.shape}")
    _, smap = structural_similarity(t, p, data_range=data_range, win_size=win, full=True)
    return float(np.mean(smap[m]))


def centre_of_mass(field, fluid, x, y) -> tuple[float, float]:
    """``(x, y)`` in metres of the fluid-cell mass of ``field`` (negatives clipped); NaN if none."""
    field = np.asarray(field, float)
    m = _fluid(fluid, field.shape)
    c = np.where(m, np.maximum(field, 0.0), 0.0)
    total = c.sum()
    if not total > 0:
        return float("nan"), float("nan")
    x, y = np.asarray(x, float), np.asarray(y, float)
    return float((c.sum(axis=0) * x).sum() / total), float((c.sum(axis=1) * y).sum() / total)


def com_error(pred, true, fluid, x, y) -> float:
    """Distance in metres between the centres of mass of ``pred`` and ``true``."""
    xp, yp = centre_of_mass(pred, fluid, x, y)
    xt, yt = centre_of_mass(true, fluid, x, y)
    return float(np.hypot(xp - xt, yp - yt))


def exposure(series, times) -> np.ndarray:
    """Cumulative time integral ``E(t_k) = int_{t_0}^{t_k} c dt`` (trapezoid), same shape as ``series``."""
    series, times = np.asarray(series, float), np.asarray(times, float)
    if series.shape[0] != times.shape[0]:
        raise ValueError(f"{series.shape[0]} frames but {times.shape[0]} times")
    dt = np.diff(times).reshape((-1,) + (1,) * (series.ndim - 1))
    steps = 0.5 * (series[1:] + series[:-1]) * dt
    return np.concatenate([np.zeros_like(series[:1]), np.cumsum(steps, axis=0)], axis=0)


def exposure_error(pred_series, true_series, times, fluid) -> np.ndarray:
    """Relative L2 error of the cumulative exposure at each time ``(T,)`` (NaN while zero)."""
    ep, et = exposure(pred_series, times), exposure(true_series, times)
    return np.array([relative_l2(a, b, fluid) for a, b in zip(ep, et)])


def negative_mass(pred, fluid) -> float:
    """``-sum(min(p, 0)) / sum(max(p, 0))`` over fluid cells (0 when no mass at all)."""
    pred = np.asarray(pred, float)
    m = _fluid(fluid, pred.shape)
    pos, neg = np.sum(np.maximum(pred[m], 0)), -np.sum(np.minimum(pred[m], 0))
    return float(neg / pos) if pos > 0 else (float("inf") if neg > 0 else 0.0)


def scenario_metrics(pred, true, fluid, times, x, y) -> dict[str, np.ndarray]:
    """Every metric of :data:`METRICS` at every time of one scenario: ``{name: (T,)}``."""
    pred, true = np.asarray(pred, float), np.asarray(true, float)
    if pred.shape != true.shape or pred.ndim != 3:
        raise ValueError(f"expected forecast and truth of equal shape (T, ny, nx), got {pred.shape} and {true.shape}")
    if len(times) != pred.shape[0]:
        raise ValueError(f"{pred.shape[0]} frames but {len(times)} times")
    out = {
        "spearman": np.array([spearman(p, t, fluid) for p, t in zip(pred, true)]),
        "relative_l2": np.array([relative_l2(p, t, fluid) for p, t in zip(pred, true)]),
        "ssim": np.array([ssim(p, t, fluid) for p, t in zip(pred, true)]),
        "com_error_m": np.array([com_error(p, t, fluid, x, y) for p, t in zip(pred, true)]),
        "exposure_error": exposure_error(pred, true, times, fluid),
        "negative_mass": np.array([negative_mass(p, fluid) for p in pred]),
    }
    return out


def median_iqr(values) -> dict:
    """Median, quartiles and count of the finite values (None when there are none)."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"median": None, "q25": None, "q75": None, "n": 0}
    q25, med, q75 = np.percentile(v, [25, 50, 75])
    return {"median": float(med), "q25": float(q25), "q75": float(q75), "n": int(v.size)}


def _time_mean(series: np.ndarray) -> float:
    s = np.asarray(series, float)
    s = s[np.isfinite(s)]
    return float(s.mean()) if s.size else float("nan")


def summarise(per_time: dict[str, np.ndarray]) -> dict:
    """Per-split statistics from ``{metric: (n_scenarios, T)}`` arrays.

    Returns ``{metric: {"final": stats, "time_mean": stats, "over_time": {"median": [...],
    "q25": [...], "q75": [...]}}}`` where ``stats`` holds median, q25, q75 and the count of
    finite values over scenarios.
    """
    out = {}
    for name, arr in per_time.items():
        arr = np.asarray(arr, float)
        if arr.ndim != 2:
            raise ValueError(f"metric {name!r}: expected (n_scenarios, T), got shape {arr.shape}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (e.g. t = 0)
            curves = {k: np.nanpercentile(arr, q, axis=0) for k, q in (("q25", 25), ("median", 50), ("q75", 75))}
        out[name] = {
            "final": median_iqr(arr[:, -1]),
            "time_mean": median_iqr([_time_mean(s) for s in arr]),
            "over_time": {k: [None if not np.isfinite(v) else float(v) for v in c] for k, c in curves.items()},
        }
    return out
