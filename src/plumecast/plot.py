"""Pictures of plane datasets: snapshot grids, animations, the plane flow."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import imageio.v3 as iio  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from plumecast.io.atomic import atomic_path  # noqa: E402
from plumecast.physics import operators as ops_  # noqa: E402


def _extent(ds: xr.Dataset):
    dx, dy = float(ds.attrs["dx_m"]), float(ds.attrs["dy_m"])
    x, y = ds["x"].values, ds["y"].values
    return (x[0] - dx / 2, x[-1] + dx / 2, y[0] - dy / 2, y[-1] + dy / 2)


def _masked(ds: xr.Dataset, field: np.ndarray) -> np.ma.MaskedArray:
    return np.ma.masked_where(ds["fluid"].values == 0, field)


def save_figure(fig, path: str | Path) -> Path:
    """Write a figure atomically (PNG by the suffix) and close it."""
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def snapshot_grid(ds: xr.Dataset, scenario: str, path: str | Path, n: int = 6) -> Path:
    """``n`` evenly spaced snapshots of one scenario's plane concentration, one colour scale."""
    c = ds["concentration"].sel(scenario=scenario).values
    times = ds["time"].values
    idx = np.linspace(0, len(times) - 1, n).round().astype(int)
    vmax = max(float(np.percentile(c[idx][:, ds["fluid"].values == 1], 99.5)), 1e-30)
    cols = min(3, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 2.8 * rows), squeeze=False)
    unit = ds["concentration"].attrs.get("units", "")
    sx, sy = ds["source_x"].sel(scenario=scenario).values, ds["source_y"].sel(scenario=scenario).values
    for ax, k in zip(axes.flat, idx):
        im = ax.imshow(
            _masked(ds, c[k]), origin="lower", extent=_extent(ds), vmin=0, vmax=vmax, cmap="inferno"
        )
        ax.plot(sx[k], sy[k], "c+", ms=9, mew=2)
        ax.set_title(f"t = {times[k]:.0f} s", fontsize=9)
        ax.set_xlabel("x (m)")
        ax.set_ylabel("y (m)")
    for ax in list(axes.flat)[len(idx):]:
        ax.axis("off")
    fig.colorbar(im, ax=axes, shrink=0.8, label=f"concentration ({unit})")
    fig.suptitle(f"{scenario}: plane at {ds.attrs['plane_height_m']} m ({ds.attrs['generator']})")
    return save_figure(fig, path)


def animation(ds: xr.Dataset, scenario: str, path: str | Path, every: int = 1, fps: int = 12) -> Path:
    """An animated GIF of one scenario's plane concentration over time."""
    c = ds["concentration"].sel(scenario=scenario).values
    times = ds["time"].values
    sx, sy = ds["source_x"].sel(scenario=scenario).values, ds["source_y"].sel(scenario=scenario).values
    vmax = max(float(np.percentile(c[:, ds["fluid"].values == 1], 99.5)), 1e-30)
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    im = ax.imshow(_masked(ds, c[0]), origin="lower", extent=_extent(ds), vmin=0, vmax=vmax, cmap="inferno")
    (marker,) = ax.plot([sx[0]], [sy[0]], "c+", ms=9, mew=2)
    fig.colorbar(im, ax=ax, label=ds["concentration"].attrs.get("units", ""))
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    frames = []
    for k in range(0, len(times), every):
        im.set_data(_masked(ds, c[k]))
        marker.set_data([sx[k]], [sy[k]])
        ax.set_title(f"{scenario}  t = {times[k]:.0f} s")
        fig.canvas.draw()
        frames.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
    plt.close(fig)
    path = Path(path)
    with atomic_path(path, suffix=".gif") as tmp:
        iio.imwrite(tmp, np.stack(frames), duration=1000 / fps, loop=0)
    return path


def plane_flow_picture(ds: xr.Dataset, path: str | Path) -> Path:
    """Plane velocity (arrows), vertical velocity through the plane and eddy viscosity."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 3.6))
    x, y = np.meshgrid(ds["x"].values, ds["y"].values)
    w = ds["w"].values
    lim = max(float(np.abs(w).max()), 1e-12)
    im = a.imshow(_masked(ds, w), origin="lower", extent=_extent(ds), cmap="RdBu_r", vmin=-lim, vmax=lim)
    fl = ds["fluid"].values == 1
    a.quiver(x[fl], y[fl], ds["u"].values[fl], ds["v"].values[fl], scale_units="xy", angles="xy")
    fig.colorbar(im, ax=a, label="w through the plane (m/s)")
    a.set_title("plane velocity (arrows) and vertical velocity")
    im2 = b.imshow(_masked(ds, ds["nu_t"].values), origin="lower", extent=_extent(ds), cmap="viridis")
    fig.colorbar(im2, ax=b, label="nu_t (m^2/s)")
    b.set_title("turbulent viscosity at the plane")
    for ax in (a, b):
        ax.set_xlabel("x (m)")
        ax.set_ylabel("y (m)")
    return save_figure(fig, path)


def learned_fields(model, closure) -> dict[str, np.ndarray]:
    """A trained run's learned physics as cell maps ``(ny, nx)``, titled with their units.

    Diffusivity (mean of the x- and y-face values at each cell) and exchange rate; the
    observation factor (as ``log g``) when the model has one; with an off-plane layer in
    ``closure`` also its capture share, return rate, spreading and, when it drifts, its
    drift speed.
    """

    def cell_mean(fx, fy):
        cx, cy = ops_.cells_from_faces(fx, fy)
        return 0.5 * (np.asarray(cx) + np.asarray(cy))

    fields = {"D = (Dx + Dy) / 2 at cells (m^2/s)": cell_mean(*model.diffusivities()),
              "exchange rate lambda (1/s)": np.asarray(model.exchange_rate())}
    if model.theta_observation is not None:
        fields[OBSERVATION_TITLE] = np.log(np.asarray(model.observation_factor()))
    layer = None if closure is None else closure.layer()
    if layer is not None:
        fields["layer capture share kappa"] = np.asarray(layer.capture())
        fields["layer return rate mu (1/s)"] = np.asarray(layer.return_rate(model.fluid))
        fields["layer spreading D_s at cells (m^2/s)"] = cell_mean(*layer.spread_diffusivities(model.fluid))
    return fields


OBSERVATION_TITLE = "observation factor log g (plane / state)"


def learned_fields_picture(model, closure, path: str | Path) -> Path:
    """Maps of :func:`learned_fields` (``model`` a coarse model, ``closure`` its closure or None)."""
    fluid = np.asarray(model.fluid)
    c = model.config
    extent = (c.x0 - c.dx / 2, c.x0 + (c.nx - 0.5) * c.dx, c.y0 - c.dy / 2, c.y0 + (c.ny - 0.5) * c.dy)
    panels = list(learned_fields(model, closure).items())
    cols = 2 if len(panels) <= 4 else 3
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 3.2 * rows), squeeze=False)
    for ax, (title, field) in zip(axes.flat, panels):
        cmap = "magma" if "(1/s)" in title else "viridis"
        limits = {}
        if title == OBSERVATION_TITLE:  # signed: centred on 0 (g = 1)
            top = float(np.abs(field[fluid > 0]).max()) or 1.0
            cmap, limits = "RdBu_r", {"vmin": -top, "vmax": top}
        im = ax.imshow(np.ma.masked_where(fluid == 0, field), origin="lower", extent=extent, cmap=cmap, **limits)
        fig.colorbar(im, ax=ax)
        ax.set_title(title)
        ax.set_xlabel("x (m)")
        ax.set_ylabel("y (m)")
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    return save_figure(fig, path)
