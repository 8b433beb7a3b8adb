"""Sensor placement: a fixed layout designed from the model's own forecasts, with no ground truth.

A building places its sensors once, for every source it may have. :func:`design_layout`
forecasts a static source of ``rate`` switched on at t = 0 at every candidate of the
locator (fluid cells at each height class, :func:`plumecast.locate.core.candidates`) over
the readings' window ``W``, and records at every fluid cell the first time the plane
concentration reaches the detection limit (:func:`plumecast.forecast.rollout_exposure`).
A sensor at cell ``c`` is worth, for source ``s``,

    u(s, c) = (W - arrival(s, c)) / W        (0 when the limit is not reached within W),

the share of the window's readings there that would be above the limit. A layout ``S``
scores ``sum over s of the sum of the `cover` largest u(s, c), c in S``: one sensor above
its limit gives a direction, two or more give a position, and more readings above the
limit give more of both. The score is monotone submodular (per source a weighted rank of
a uniform matroid), so the greedy choice, one sensor at a time, is within ``1 - 1/e`` of
the best layout (``criterion="coverage"``).

``criterion="confusion"`` aims at the position error itself: sources whose arrival times
fall in the same ``bin_s`` bins (or never) at every sensor of the layout cannot be told
apart by when the sensors rise; the layout's score is the root mean square distance of
each candidate from the centroid of its indistinguishable group (m, smaller is better),
the expected error of a locator that knew only those arrival bins. Greedy too.
The criterion and its setting are chosen on a validation split (docs/locate.md).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from plumecast.locate.core import candidates
from plumecast.locate.readings import LocateError

__all__ = ["CRITERIA", "Layout", "arrival_matrix", "greedy_layout", "greedy_confusion_layout", "design_layout",
           "layout_picture"]


@dataclass
class Layout:
    """A designed layout: ``cells (K, 2)`` (row, column) and ``xy_m (K, 2)``, with what it was designed for."""

    cells: np.ndarray
    xy_m: np.ndarray
    score: float  # coverage: the score per candidate source (at most ``cover``); confusion: the RMS radius, m
    window_s: float
    cover: int
    limit: float
    rate: float
    heights: tuple[float, ...]
    seconds: float
    candidate_cells: np.ndarray  # (C, 2) each candidate's cell (row, column), height-major as the locator's
    seen: np.ndarray  # (C,) sensors of the layout above the limit within the window, per candidate
    criterion: str = "coverage"
    bin_s: float | None = None

    @property
    def sources_seen(self) -> np.ndarray:
        """``(cover + 1,)``: the share of candidates seen by 0, 1, ..., >= cover sensors within the window."""
        return np.bincount(np.minimum(self.seen, self.cover), minlength=self.cover + 1) / len(self.seen)

    def as_dict(self) -> dict:
        return {"sensors": [{"id": f"S{k + 1}", "x_m": float(x), "y_m": float(y), "row": int(j), "column": int(i)}
                            for k, ((x, y), (j, i)) in enumerate(zip(self.xy_m, self.cells))],
                "criterion": self.criterion, "bin_s": self.bin_s,
                "score": self.score, "window_s": self.window_s, "cover": self.cover,
                "detection_limit": self.limit, "rate": self.rate, "heights_m": list(self.heights),
                "candidates": len(self.seen), "seconds": self.seconds,
                "share_of_sources_seen_by": {(f">={k}" if k == self.cover else str(k)): float(v)
                                             for k, v in enumerate(self.sources_seen)}}


def arrival_matrix(system, xyz, *, window_s: float, limit: float, rate: float = 1.0, batch: int = 64,
                   progress=None) -> tuple[np.ndarray, np.ndarray]:
    """``(arrival (C, F) s, fluid_cells (F, 2))``: first time each fluid cell reaches ``limit`` for each source.

    Static sources of ``rate`` at ``xyz (C, 3)`` m from t = 0; ``inf`` where the limit is
    not reached within ``window_s``; ``progress(done, total)`` after each batch.
    """
    import jax
    import jax.numpy as jnp

    from plumecast.forecast import rollout_exposure
    from plumecast.sweep import sweep_forcing

    model, closure = system
    c = model.config
    if not (math.isfinite(window_s) and window_s > 0):
        raise LocateError(f"the window must be > 0 s, got {window_s}")
    if not (math.isfinite(limit) and limit > 0):
        raise LocateError(f"the detection limit must be > 0, got {limit}")
    if not (math.isfinite(rate) and rate > 0):
        raise LocateError(f"the design rate must be > 0, got {rate}")
    xyz = np.asarray(xyz, float)
    fluid_cells = np.argwhere(np.asarray(model.fluid) > 0)
    ny, nx = c.shape
    flat = jnp.asarray((fluid_cells[:, 0] * nx + fluid_cells[:, 1]).astype(np.int32))
    n_steps = int(math.ceil(window_s / c.dt - 1e-9))
    n = len(xyz)
    batch = max(1, min(int(batch), n))
    q0 = jnp.zeros((batch,) + c.shape, c.jdtype)
    out = np.full((n, len(fluid_cells)), np.inf)
    for s in range(0, n, batch):
        idx = np.resize(np.arange(s, min(s + batch, n)), batch)
        forcing = sweep_forcing(xyz[idx], rate, dt=c.dt, n_steps=n_steps, dtype=c.dtype)
        exposure, arrival, _ = rollout_exposure(model, closure, q0, jax.tree.map(jnp.asarray, forcing), flat, limit)
        k = min(batch, n - s)
        if not np.isfinite(np.asarray(exposure)[:k]).all():
            raise LocateError(f"the model's forecast of a candidate source (batch from {tuple(np.round(xyz[s], 3))} m) "
                              "is not finite")
        out[s : s + k] = np.asarray(arrival, float)[:k]
        if progress is not None:
            progress(s + k, n)
    out[out > window_s] = np.inf
    return out, fluid_cells


def greedy_layout(worth: np.ndarray, k: int, cover: int) -> tuple[np.ndarray, float]:
    """``(chosen columns (k,), score)``: greedy maximum of ``sum_s (sum of the cover largest worth[s, S])``.

    ``worth (C, F)`` >= 0. Ties go to the lower column index (deterministic).
    """
    worth = np.asarray(worth, float)
    n_src, n_cells = worth.shape
    if not 1 <= k <= n_cells:
        raise LocateError(f"{k} sensors asked for but the plane has {n_cells} fluid cells")
    if cover < 1:
        raise LocateError(f"--cover must be >= 1, got {cover}")
    # best[s]: the chosen sensors' worths for source s, the cover largest, descending (zeros to start)
    best = np.zeros((n_src, cover))
    chosen: list[int] = []
    score = 0.0
    for _ in range(k):
        # Adding a cell with worth w to source s raises its sum by max(0, w - smallest of its kept top values).
        gain = np.maximum(worth - best[:, -1:], 0.0).sum(axis=0)
        gain[chosen] = -1.0
        j = int(np.argmax(gain))
        chosen.append(j)
        score += float(gain[j])
        best = -np.sort(-np.concatenate([best, worth[:, j : j + 1]], axis=1), axis=1)[:, :cover]
    return np.asarray(chosen, int), score


def greedy_confusion_layout(arrival: np.ndarray, xy: np.ndarray, k: int, bin_s: float) -> tuple[np.ndarray, float]:
    """``(chosen columns (k,), RMS radius m)``: greedy least spread of the groups of sources with equal arrival bins.

    ``arrival (C, F)`` s (``inf``: never), ``xy (C, 2)`` the candidates' positions, m.
    """
    arrival = np.asarray(arrival, float)
    n_src, n_cells = arrival.shape
    if not 1 <= k <= n_cells:
        raise LocateError(f"{k} sensors asked for but the plane has {n_cells} fluid cells")
    if not (math.isfinite(bin_s) and bin_s > 0):
        raise LocateError(f"the arrival bin must be > 0 s, got {bin_s}")
    bins = np.where(np.isfinite(arrival), np.floor(arrival / bin_s), -1.0).astype(np.int64) + 1  # 0: never
    width = int(bins.max()) + 1
    x, y = np.asarray(xy, float)[:, 0], np.asarray(xy, float)[:, 1]
    r2 = x * x + y * y

    def spread(labels):
        _, g = np.unique(labels, return_inverse=True)
        n = np.bincount(g)
        sx, sy, s2 = (np.bincount(g, w) for w in (x, y, r2))
        return float((s2 - (sx * sx + sy * sy) / n).sum())

    group = np.zeros(n_src, np.int64)
    chosen: list[int] = []
    for _ in range(k):
        costs = np.full(n_cells, np.inf)
        for j in range(n_cells):
            if j not in chosen:
                costs[j] = spread(group * width + bins[:, j])
        j = int(np.argmin(costs))
        chosen.append(j)
        total = costs[j]
        _, group = np.unique(group * width + bins[:, j], return_inverse=True)
    return np.asarray(chosen, int), math.sqrt(max(total, 0.0) / n_src)


CRITERIA = ("coverage", "confusion")


def design_layout(system, k: int, *, heights, window_s: float, limit: float, cover: int = 1, rate: float = 1.0,
                  stride: int = 1, batch: int = 64, progress=None, criterion: str = "coverage",
                  bin_s: float = 10.0) -> Layout:
    """The greedy layout of ``k`` sensors for candidates at ``heights`` (see the module docstring)."""
    if criterion not in CRITERIA:
        raise LocateError(f"--criterion must be one of {', '.join(CRITERIA)}, got {criterion!r}")
    if not (math.isfinite(bin_s) and bin_s > 0):
        raise LocateError(f"--bin must be > 0 s, got {bin_s}")
    start = time.perf_counter()
    model = system[0]
    n_fluid = int((np.asarray(model.fluid) > 0).sum())
    if not 1 <= k <= n_fluid:  # before any forecast
        raise LocateError(f"{k} sensors asked for but the plane has {n_fluid} fluid cells")
    cand_xyz, cand_cells = candidates(model, heights, stride)
    arrival, fluid_cells = arrival_matrix(system, cand_xyz, window_s=window_s, limit=limit, rate=rate, batch=batch,
                                          progress=progress)
    worth = np.where(np.isfinite(arrival), (window_s - arrival) / window_s, 0.0)
    if criterion == "coverage":
        cols, score = greedy_layout(worth, k, cover)
        score /= len(worth)
    else:
        cols, score = greedy_confusion_layout(arrival, cand_xyz[:, :2], k, bin_s)
    cells = fluid_cells[np.sort(cols)]
    c = model.config
    xy = np.stack([c.x0 + cells[:, 1] * c.dx, c.y0 + cells[:, 0] * c.dy], axis=1)
    seen = (worth[:, cols] > 0).sum(axis=1)
    return Layout(cells, xy, score, float(window_s), int(cover), float(limit), float(rate),
                  tuple(float(h) for h in heights), time.perf_counter() - start, cand_cells, seen, criterion,
                  float(bin_s) if criterion == "confusion" else None)


def layout_picture(model, layout: Layout, path, title: str = ""):
    """PNG: per fluid cell, the fewest sensors (over the height classes) a source there reaches within the window."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from plumecast.plot import save_figure

    c = model.config
    extent = (c.x0 - 0.5 * c.dx, c.x0 + (c.nx - 0.5) * c.dx, c.y0 - 0.5 * c.dy, c.y0 + (c.ny - 0.5) * c.dy)
    fluid = np.asarray(model.fluid) > 0
    fewest = np.full(c.shape, np.nan)
    for (j, i), n in zip(layout.candidate_cells, layout.seen):
        fewest[j, i] = n if np.isnan(fewest[j, i]) else min(fewest[j, i], n)
    fig, ax = plt.subplots(figsize=(9.0, 9.0 * c.ny / c.nx + 1.2))
    ax.imshow(np.where(fluid, np.nan, 1.0), origin="lower", extent=extent, cmap="Greys", vmin=0, vmax=2,
              interpolation="nearest")
    top = max(int(np.nanmax(fewest)) if np.isfinite(fewest).any() else 0, 1)
    im = ax.imshow(np.ma.masked_invalid(fewest), origin="lower", extent=extent, interpolation="nearest",
                   cmap=plt.get_cmap("magma", top + 1), vmin=-0.5, vmax=top + 0.5)
    fig.colorbar(im, ax=ax, shrink=0.8, ticks=range(top + 1),
                 label=f"sensors above the limit within {layout.window_s:g} s of a release here (fewest over heights)")
    for k, (x, y) in enumerate(layout.xy_m):
        ax.plot(x, y, "^", ms=10, mfc="cyan", mec="k")
        ax.annotate(f"S{k + 1}", (x, y), textcoords="offset points", xytext=(4, 4), color="cyan", fontsize=9)
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title(title or (f"{len(layout.xy_m)} sensors designed for sources at {', '.join(f'{h:g}' for h in layout.heights)}"
                           f" m,\nrate {layout.rate:g}/s, limit {layout.limit:.3g}, "
                           + (f"cover {layout.cover}" if layout.criterion == "coverage" else
                              f"least confusion ({layout.bin_s:g} s bins): {layout.score:.2f} m")), fontsize=9)
    return save_figure(fig, path)
