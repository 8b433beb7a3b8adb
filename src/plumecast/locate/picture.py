"""The posterior map of a located source: posterior over cells, credible region, sensors, estimate."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from plumecast.plot import save_figure  # noqa: E402

__all__ = ["posterior_picture"]


def posterior_picture(model, result, readings, path: str | Path, *, truth: dict | None = None, title: str = "") -> Path:
    """Write the posterior map PNG atomically (solid cells grey; sensors that read above their limit filled)."""
    c = model.config
    extent = (c.x0 - 0.5 * c.dx, c.x0 + (c.nx - 0.5) * c.dx, c.y0 - 0.5 * c.dy, c.y0 + (c.ny - 0.5) * c.dy)
    fluid = np.asarray(model.fluid) > 0
    fig, ax = plt.subplots(figsize=(9.0, 9.0 * c.ny / c.nx + 1.4))
    ax.imshow(np.where(fluid, np.nan, 1.0), origin="lower", extent=extent, cmap="Greys", vmin=0, vmax=2,
              interpolation="nearest")
    if result.posterior is not None:
        post = np.ma.masked_where(~fluid, result.posterior)
        im = ax.imshow(post, origin="lower", extent=extent, cmap="viridis", interpolation="nearest")
        fig.colorbar(im, ax=ax, shrink=0.8, label="posterior probability of the source's cell")
        xs, ys = c.x0 + np.arange(c.nx) * c.dx, c.y0 + np.arange(c.ny) * c.dy
        if result.region is not None and result.region.any():
            ax.contour(xs, ys, result.region.astype(float), levels=[0.5], colors="w", linewidths=1.2)
    detected = readings.value >= readings.limit
    for k, (x, y) in enumerate(readings.sensor_xy):
        hit = bool(detected[readings.sensor == k].any())
        ax.plot(x, y, "^", ms=9, mfc="orange" if hit else "none", mec="orange", mew=1.6)
        ax.annotate(readings.sensor_ids[k], (x, y), textcoords="offset points", xytext=(4, 4), color="orange",
                    fontsize=8)
    if result.refined:
        ax.plot([r["x_m"] for r in result.refined], [r["y_m"] for r in result.refined], "x", ms=8, color="red", mew=1.5,
                label="refined points")
    if result.estimate is not None:
        kind = result.search.get("estimate", "refined")
        ax.plot(result.estimate["x_m"], result.estimate["y_m"], "*", ms=16, mfc="red", mec="w",
                label="estimate (posterior median)" if kind == "median" else "estimate (refined)")
    if truth is not None:
        ax.plot(truth["x_m"], truth["y_m"], "o", ms=10, mfc="none", mec="cyan", mew=2, label="truth")
    ax.plot([], [], "^", mfc="orange", mec="orange", label="sensor above its limit")
    ax.plot([], [], "^", mfc="none", mec="orange", label="sensor below its limit")
    if result.region is not None:
        ax.plot([], [], "-", color="w", label=f"{100 * result.credible['level']:.0f} % credible region")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, fontsize=8, facecolor="0.85")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    if not title and result.located:
        e, cr = result.estimate, result.credible
        title = (f"estimate ({e['x_m']:.2f}, {e['y_m']:.2f}) m at {e['z_m']:g} m, rate {e['rate']:.3g}/s from "
                 f"{e['start_s']:.1f} s; {100 * cr['level']:.0f} % region {cr['area_m2']:.1f} m^2")
    ax.set_title(title or f"cannot locate: {result.reason}", fontsize=9, wrap=True)
    return save_figure(fig, path)
