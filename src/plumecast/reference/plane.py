"""Plane extraction: 3D fields on a Grid3D to the coarse horizontal plane grid.

A 3D cell-centred field ``(..., nz, ny, nx)`` is first interpolated linearly in z between
the two fine layers that bracket the plane height (``geometry.plane_layers``), then
averaged over the *fluid* part of each coarse ``plane_cell_m`` cell: a fine column counts
as fluid at the plane when the fine cells of both bracketing layers are fluid (the same
rule as ``geometry.plane_fluid_fraction``). Coarse cells without fluid get 0.

Everything here works on NumPy and on JAX arrays (the transport solver applies a
``PlaneSampler`` inside its jitted time loop). This module knows nothing of the solvers:
the transport solver imports it, and the solver's own scalar flux through the plane is
:func:`plumecast.reference.transport.plane_vertical_flux`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from plumecast.geometry import GeometryError, Grid3D, plane_layers


@dataclass(frozen=True)
class PlaneSampler:
    """The static data of one plane extraction (layers, weight, fine fluid mask, counts)."""

    lower: int
    upper: int
    weight_upper: float
    ratio: int
    fine_fluid: np.ndarray  # (ny, nx) float 0/1
    count: np.ndarray  # (ny_c, nx_c) number of fluid fine columns per coarse cell
    shape3d: tuple[int, int, int]

    @property
    def coarse_shape(self) -> tuple[int, int]:
        return self.count.shape

    def __call__(self, field):
        return _apply(self, field)


def plane_sampler(grid: Grid3D, plane_height_m: float, plane_cell_m: float) -> PlaneSampler:
    lower, upper, w = plane_layers(grid, plane_height_m)
    r = plane_cell_m / grid.cell_m
    if not np.isclose(r, round(r)) or round(r) < 1:
        raise GeometryError(f"plane cell {plane_cell_m} m is not a whole multiple of the 3D cell {grid.cell_m} m")
    r = int(round(r))
    nz, ny, nx = grid.shape
    if ny % r or nx % r:
        raise GeometryError(f"fine plane {ny} x {nx} does not split into {r} x {r} blocks")
    fine = (grid.fluid[lower] & grid.fluid[upper]).astype(float)
    count = fine.reshape(ny // r, r, nx // r, r).sum(axis=(1, 3))
    return PlaneSampler(lower, upper, float(w), r, fine, count, (nz, ny, nx))


def _xp(a):
    if isinstance(a, np.ndarray) or np.isscalar(a):
        return np
    import jax.numpy as jnp

    return jnp


def _apply(s: PlaneSampler, field):
    xp = _xp(field)
    if not isinstance(field, np.ndarray) and xp is np:
        field = np.asarray(field)
    if tuple(field.shape[-3:]) != s.shape3d:
        raise GeometryError(f"field of shape {tuple(field.shape)} does not end in the grid's {s.shape3d}")
    layer = field[..., s.lower, :, :]
    if s.weight_upper != 0.0:
        layer = (1.0 - s.weight_upper) * layer + s.weight_upper * field[..., s.upper, :, :]
    return coarse_fluid_mean(layer, s)


def coarse_fluid_mean(layer, s: PlaneSampler):
    """Mean of a fine plane field ``(..., ny, nx)`` over the fluid fine cells of each coarse cell."""
    xp = _xp(layer)
    r = s.ratio
    *lead, ny, nx = layer.shape
    total = (layer * s.fine_fluid).reshape(*lead, ny // r, r, nx // r, r).sum(axis=(-3, -1))
    safe = np.where(s.count > 0, s.count, 1.0)
    return xp.where(s.count > 0, total / safe, 0.0)


def coarse_fluid_sum(layer, s: PlaneSampler):
    """Sum of a fine plane field ``(..., ny, nx)`` over the fluid fine cells of each coarse cell."""
    r = s.ratio
    *lead, ny, nx = layer.shape
    return (layer * s.fine_fluid).reshape(*lead, ny // r, r, nx // r, r).sum(axis=(-3, -1))


def extract_plane(field, grid: Grid3D, plane_height_m: float, plane_cell_m: float):
    """A cell-centred field ``(..., nz, ny, nx)`` on the plane: ``(..., ny_c, nx_c)``.

    Linear interpolation in z between the bracketing layers, then the mean over the fluid
    fine columns of each coarse cell (0 where a coarse cell has none). NumPy in, NumPy out;
    JAX in, JAX out (traceable).
    """
    return plane_sampler(grid, plane_height_m, plane_cell_m)(field)


def cell_centred_velocity(grid: Grid3D, u, v, w):
    """Face velocities (MAC) to cell centres by the mean of the two opposite faces."""
    shape = grid.shape
    u, v, w = (np.asarray(a, dtype=float) for a in (u, v, w))
    nz, ny, nx = shape
    want = {"u": (nz, ny, nx + 1), "v": (nz, ny + 1, nx), "w": (nz + 1, ny, nx)}
    for name, a in zip("uvw", (u, v, w)):
        if a.shape != want[name]:
            raise GeometryError(f"face velocity {name} has shape {a.shape}, expected {want[name]}")
    uc = 0.5 * (u[..., :-1] + u[..., 1:])
    vc = 0.5 * (v[..., :-1, :] + v[..., 1:, :])
    wc = 0.5 * (w[:-1] + w[1:])
    return uc, vc, wc


def plane_flow(grid: Grid3D, flow, plane_height_m: float, plane_cell_m: float) -> dict:
    """The plane velocity and eddy viscosity: ``dict(u, v, w, nu_t)``, each ``(ny_c, nx_c)``.

    Velocities are first brought to cell centres (mean of opposite faces), then extracted
    like any cell field (``extract_plane``).
    """
    s = plane_sampler(grid, plane_height_m, plane_cell_m)
    uc, vc, wc = cell_centred_velocity(grid, flow.u, flow.v, flow.w)
    nu_t = np.asarray(flow.nu_t, dtype=float)
    return {"u": s(uc), "v": s(vc), "w": s(wc), "nu_t": s(nu_t)}


def level_flow(grid: Grid3D, flow, heights_m, plane_cell_m: float) -> dict:
    """The flow at several heights: ``dict(z_m, u, v, w, nu_t)``, fields ``(level, ny_c, nx_c)``.

    Each level is extracted exactly as :func:`plane_flow` extracts the plane (cell-centred
    velocities, linear interpolation between the bracketing layers, fluid-column mean), so
    a level at the plane height equals the plane's fields bit for bit. The heights (m above
    the floor) must increase strictly and lie inside the room; a GeometryError names the
    offending one.
    """
    z = np.asarray(heights_m, dtype=float).ravel()
    top = grid.shape[0] * grid.cell_m
    if z.size == 0 or not np.isfinite(z).all() or (np.diff(z) <= 0).any() or z[0] <= 0 or z[-1] >= top:
        raise GeometryError(f"flow levels must be heights strictly increasing inside the room (0, {top:g}) m, "
                            f"got {np.round(z, 4).tolist()}")
    uc, vc, wc = cell_centred_velocity(grid, flow.u, flow.v, flow.w)
    nu_t = np.asarray(flow.nu_t, dtype=float)
    out = {"z_m": z, "u": [], "v": [], "w": [], "nu_t": []}
    for height in z:
        s = plane_sampler(grid, float(height), plane_cell_m)
        for name, field in (("u", uc), ("v", vc), ("w", wc), ("nu_t", nu_t)):
            out[name].append(s(field))
    return {k: (v if k == "z_m" else np.stack(v)) for k, v in out.items()}
