"""Pictures of plane datasets: snapshot grids, animations, the plane flow."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import imageio.v3 as iio  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from plumecast.closure.reservoir import Reservoir  # noqa: E402
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
    tracks = source_tracks(ds, scenario)
    for ax, k in zip(axes.flat, idx):
        im = ax.imshow(
            _masked(ds, c[k]), origin="lower", extent=_extent(ds), vmin=0, vmax=vmax, cmap="inferno"
        )
        for sx, sy, on in tracks:
            ax.plot(sx[k], sy[k], "c+" if on is None or on[k] else "w+", ms=9, mew=2, alpha=1.0 if on is None or on[k]
                    else 0.5)
        ax.set_title(f"t = {times[k]:.0f} s", fontsize=9)
        ax.set_xlabel("x (m)")
        ax.set_ylabel("y (m)")
    for ax in list(axes.flat)[len(idx):]:
        ax.axis("off")
    fig.colorbar(im, ax=axes, shrink=0.8, label=f"concentration ({unit})")
    fig.suptitle(f"{scenario}: plane at {ds.attrs['plane_height_m']} m ({ds.attrs['generator']})")
    return save_figure(fig, path)


def source_tracks(ds: xr.Dataset, scenario: str) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """``(x(t), y(t), on(t) or None)`` per source of a scenario: every source of a what-if forecast
    (``sources_*`` variables, ``on`` where its rate is positive), else the schema's one track."""
    if "sources_x" in ds:
        sx, sy = ds["sources_x"].sel(scenario=scenario).values, ds["sources_y"].sel(scenario=scenario).values
        rate = ds["sources_rate"].sel(scenario=scenario).values
        return [(sx[k], sy[k], rate[k] > 0) for k in range(sx.shape[0])]
    return [(ds["source_x"].sel(scenario=scenario).values, ds["source_y"].sel(scenario=scenario).values, None)]


def animation(ds: xr.Dataset, scenario: str, path: str | Path, every: int = 1, fps: int = 12) -> Path:
    """An animated GIF of one scenario's plane concentration over time."""
    c = ds["concentration"].sel(scenario=scenario).values
    times = ds["time"].values
    tracks = source_tracks(ds, scenario)
    vmax = max(float(np.percentile(c[:, ds["fluid"].values == 1], 99.5)), 1e-30)
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    im = ax.imshow(_masked(ds, c[0]), origin="lower", extent=_extent(ds), vmin=0, vmax=vmax, cmap="inferno")
    markers = [ax.plot([sx[0]], [sy[0]], "c+", ms=9, mew=2)[0] for sx, sy, _ in tracks]
    fig.colorbar(im, ax=ax, label=ds["concentration"].attrs.get("units", ""))
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    frames = []
    for k in range(0, len(times), every):
        im.set_data(_masked(ds, c[k]))
        for marker, (sx, sy, on) in zip(markers, tracks):
            marker.set_data([sx[k]], [sy[k]])
            if on is not None:
                marker.set_color("c" if on[k] else "w")
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
    ``closure`` (a :class:`~plumecast.closure.reservoir.Reservoir`; not a column's levels) also
    its capture share, return rate and spreading.
    """

    def cell_mean(fx, fy):
        cx, cy = ops_.cells_from_faces(fx, fy)
        return 0.5 * (np.asarray(cx) + np.asarray(cy))

    fields = {"D = (Dx + Dy) / 2 at cells (m^2/s)": cell_mean(*model.diffusivities()),
              "exchange rate lambda (1/s)": np.asarray(model.exchange_rate())}
    if model.theta_observation is not None:
        fields[OBSERVATION_TITLE] = np.log(np.asarray(model.observation_factor()))
    layer = None if closure is None else closure.layer()
    if isinstance(layer, Reservoir):  # a column's levels have no capture, return or spreading maps
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


def _plane_extent(room):
    return (room.x[0] - room.dx / 2, room.x[-1] + room.dx / 2, room.y[0] - room.dy / 2, room.y[-1] + room.dy / 2)


def _source_map(room, xyz, values, z: float) -> np.ndarray:
    """Per-source values drawn at the cells of the sources at height ``z`` (NaN elsewhere)."""
    out = np.full(room.shape, np.nan)
    for (x, y, zz), v in zip(xyz, values):
        if abs(zz - z) > 1e-9:
            continue
        cell = room.cell_of(float(x), float(y))
        if cell is not None:
            out[cell] = v
    return out


def _receptor_marks(ax, receptors, colour="c"):
    for r in receptors:
        xs, ys = zip(*r.points)
        ax.plot(xs, ys, "o", mfc="none", mec=colour, ms=8, mew=1.8)
        ax.annotate(r.name, (xs[0], ys[0]), xytext=(5, 5), textcoords="offset points", color=colour, fontsize=8)


def _room_axes(ax, room, title):
    from matplotlib.colors import ListedColormap

    solid = np.ma.masked_where(np.asarray(room.fluid) > 0, np.ones(room.shape))
    ax.imshow(solid, origin="lower", extent=_plane_extent(room), cmap=ListedColormap(["0.35"]), vmin=0, vmax=1)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")


def worst_exposure_picture(room, worst, receptors, path: str | Path, *, title: str = "") -> Path:
    """The worst-case exposure per cell over all candidate sources (log colours), receptors marked."""
    from matplotlib.colors import LogNorm

    fluid = np.asarray(room.fluid) > 0
    field = np.ma.masked_where(~fluid | (worst <= 0), worst)
    fig, ax = plt.subplots(figsize=(7.2, 3.9))
    _room_axes(ax, room, title or "worst-case exposure over all candidate sources")
    if field.count():
        top = float(field.max())
        im = ax.imshow(field, origin="lower", extent=_plane_extent(room), cmap="magma",
                       norm=LogNorm(vmin=max(top * 1e-4, float(field.min())), vmax=top))
        fig.colorbar(im, ax=ax, label=f"exposure ({room.mass_unit} s/m^3)")
    _receptor_marks(ax, receptors)
    return save_figure(fig, path)


def receptor_picture(room, xyz, arrival, exposure, receptor, path: str | Path, *, horizon_s: float,
                     threshold: float) -> Path:
    """Where a source reaches one receptor first (arrival time) and hardest (exposure), per candidate location.

    One row per source height; grey: solid, white: not a candidate (or, for the arrival
    time, the threshold not reached within the horizon).
    """
    from matplotlib.colors import LogNorm

    heights = sorted({round(float(z), 9) for z in np.asarray(xyz)[:, 2]})
    fig, axes = plt.subplots(len(heights), 2, figsize=(13, 3.6 * len(heights)), squeeze=False)
    unit = room.mass_unit
    for row, z in zip(axes, heights):
        a = _source_map(room, xyz, arrival, z)
        e = _source_map(room, xyz, exposure, z)
        _room_axes(row[0], room, f"arrival at {receptor.name!r} (>= {threshold:g} {unit}/m^3) from a source at "
                                 f"z = {z:g} m")
        if np.isfinite(a).any():
            im = row[0].imshow(np.ma.masked_invalid(a), origin="lower", extent=_plane_extent(room), cmap="viridis_r",
                               vmin=0, vmax=horizon_s)
            fig.colorbar(im, ax=row[0], label="arrival time (s)")
        _room_axes(row[1], room, f"exposure at {receptor.name!r} from a source at z = {z:g} m")
        pos = np.ma.masked_where(~(e > 0), e)
        if pos.count():
            top = float(pos.max())
            im = row[1].imshow(pos, origin="lower", extent=_plane_extent(room), cmap="magma",
                               norm=LogNorm(vmin=max(top * 1e-4, float(pos.min())), vmax=top))
            fig.colorbar(im, ax=row[1], label=f"exposure ({unit} s/m^3)")
        for ax in row:
            _receptor_marks(ax, [receptor])
    return save_figure(fig, path)
