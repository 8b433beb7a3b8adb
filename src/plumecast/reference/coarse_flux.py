"""The 3D flow's volume fluxes summed onto the coarse column's cells: exact coarse-grained transport.

A 3D flow sampled at a few heights (``u_level`` ... ``w_level``) is not divergence-free on
the coarse grid: its upwind transport piles mass up where the samples converge and has
no way out through the exhausts. Summing the fine mesh's face fluxes instead keeps what
the 3D solver guaranteed. Each fine cell belongs to the coarse cell ``(level, j, i)``
that holds its centre (levels are the layers between the midpoints of the dataset's
``level`` heights, floor and ceiling closing the ends, :func:`level_edges_m`); then

* ``flux_x (L, ny, nx)``: volume flux (m^3/s) from cell ``(k, j, i)`` to ``(k, j, i+1)``,
  the sum of the fine faces between them (zero in the last column);
* ``flux_y``: to ``(k, j+1, i)`` (zero in the last row); ``flux_z``: to ``(k+1, j, i)``
  (zero at the top level);
* ``outflow (L, ny, nx)``: net flux out of the room through the cell's boundary faces
  (m^3/s; inlets negative, exhausts positive, walls zero);
* ``volume (L, ny, nx)``: the cell's fluid volume (m^3), zero where it holds no fluid.

For each coarse cell, the net outflow of ``flux_*`` plus ``outflow`` is the sum of its
fine cells' divergence: zero to the 3D solver's tolerance (:func:`divergence`). A fine
face between coarse cells that are not neighbours (a mesh not aligned with the axes) is
routed through the cells between them, x first, then y, then z, from the cell of lower
flat index (so the owner/neighbour orientation of the face does not matter), which keeps
that balance exact.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FLUX_KEYS", "level_edges_m", "empty_layers", "coarse_cell_index", "coarse_level_fluxes", "divergence",
           "staggered_faces", "column_fluxes", "relative_divergence", "volume_thicknesses_m"]

FLUX_KEYS = ("flux_x", "flux_y", "flux_z", "outflow", "volume")


def level_edges_m(levels_m, height_m: float) -> np.ndarray:
    """``(L + 1,)`` heights (m) of the levels' layers: the floor, the midpoints between levels, the ceiling."""
    z = np.asarray(levels_m, float)
    return np.concatenate([[0.0], 0.5 * (z[1:] + z[:-1]), [float(height_m)]])


def empty_layers(levels_m, height_m: float, centres_z) -> np.ndarray:
    """Indices of the levels whose layer holds no fine cell centre of heights ``centres_z`` (m).

    Layers as :func:`level_edges_m` and cells assigned as :func:`coarse_cell_index` does; an
    empty layer (a column finer than the mesh) would have no volume and no fluxes.
    """
    edges = level_edges_m(levels_m, height_m)
    k = np.searchsorted(edges, np.asarray(centres_z, float).ravel(), side="right") - 1
    held = np.bincount(k[(k >= 0) & (k < len(edges) - 1)], minlength=len(edges) - 1)
    return np.flatnonzero(held == 0)


def coarse_cell_index(centres, *, x0: float, y0: float, dx: float, dy: float, nx: int, ny: int,
                      edges_z) -> np.ndarray:
    """``(n, 3)`` indices ``(k, j, i)`` of the coarse cell holding each fine cell centre; -1 rows outside.

    ``x0, y0``: the low corner of the plane grid (m); ``edges_z``: :func:`level_edges_m`.
    """
    c = np.asarray(centres, float)
    i = np.floor((c[:, 0] - x0) / dx).astype(np.int64)
    j = np.floor((c[:, 1] - y0) / dy).astype(np.int64)
    edges = np.asarray(edges_z, float)
    k = np.searchsorted(edges, c[:, 2], side="right") - 1
    out = np.stack([k, j, i], axis=1)
    bad = (i < 0) | (i >= nx) | (j < 0) | (j >= ny) | (k < 0) | (k >= len(edges) - 1)
    out[bad] = -1
    return out


def coarse_level_fluxes(cell_index, volumes, face_cells, face_flux, boundary_cells, boundary_flux,
                        shape) -> dict[str, np.ndarray]:
    """The coarse fluxes (module docstring) of a fine mesh's faces.

    ``cell_index (n, 3)``: :func:`coarse_cell_index` of each fine cell (a row of -1: the cell
    is outside the plane's grid; its faces are dropped); ``volumes (n,)`` in m^3;
    ``face_cells (F, 2)`` the fine cells on either side of each internal face and
    ``face_flux (F,)`` the volume flux from the first to the second (m^3/s);
    ``boundary_cells (B,)`` and ``boundary_flux (B,)`` the cell and outward flux of each
    boundary face; ``shape`` ``(L, ny, nx)``.
    """
    L, ny, nx = shape
    idx = np.asarray(cell_index, np.int64)
    inside = (idx >= 0).all(axis=1)
    out = {k: np.zeros(shape) for k in FLUX_KEYS}
    np.add.at(out["volume"], tuple(idx[inside].T), np.asarray(volumes, float)[inside])

    fc = np.asarray(face_cells, np.int64).reshape(-1, 2)
    flux = np.asarray(face_flux, float).ravel()
    a, b = idx[fc[:, 0]], idx[fc[:, 1]]
    keep = inside[fc[:, 0]] & inside[fc[:, 1]] & (a != b).any(axis=1)
    a, b, flux = a[keep], b[keep], flux[keep]
    # Route from the coarse cell of lower flat index, so that the path (and the result) does
    # not depend on which side of a face the mesh calls its owner.
    swap = (np.ravel_multi_index(tuple(a.T), shape) > np.ravel_multi_index(tuple(b.T), shape))[:, None]
    a, b, flux = np.where(swap, b, a), np.where(swap, a, b), np.where(swap[:, 0], -flux, flux)
    # Route each flux from a to b one axis at a time: x (axis 2), then y (1), then z (0).
    names = {2: "flux_x", 1: "flux_y", 0: "flux_z"}
    pos = a.copy()
    for axis in (2, 1, 0):
        while True:
            step = np.sign(b[:, axis] - pos[:, axis])
            moving = step != 0
            if not moving.any():
                break
            lo = pos[moving].copy()
            # The face between pos and pos + step is stored at the lower cell, flux counted upward.
            lo[:, axis] = np.minimum(pos[moving, axis], pos[moving, axis] + step[moving])
            np.add.at(out[names[axis]], tuple(lo.T), flux[moving] * step[moving])
            pos[moving, axis] += step[moving]

    bc = np.asarray(boundary_cells, np.int64).ravel()
    bf = np.asarray(boundary_flux, float).ravel()
    ok = inside[bc]
    np.add.at(out["outflow"], tuple(idx[bc[ok]].T), bf[ok])
    return out


def divergence(fluxes: dict) -> np.ndarray:
    """``(L, ny, nx)`` net volume flux out of each coarse cell (m^3/s): zero for a divergence-free flow."""
    fx, fy, fz = (np.asarray(fluxes[k], float) for k in ("flux_x", "flux_y", "flux_z"))
    net = np.asarray(fluxes["outflow"], float).copy()
    net += fx
    net[:, :, 1:] -= fx[:, :, :-1]
    net += fy
    net[:, 1:, :] -= fy[:, :-1, :]
    net += fz
    net[1:] -= fz[:-1]
    return net


def staggered_faces(fluid, u, v, w, cell_m: float):
    """The faces of a MAC grid as :func:`coarse_level_fluxes` takes them.

    ``fluid (nz, ny, nx)`` (bool), face velocities ``u (nz, ny, nx+1)``, ``v (nz, ny+1,
    nx)``, ``w (nz+1, ny, nx)`` in m/s on a uniform grid of ``cell_m``. Returns
    ``(cell_ids (nz, ny, nx) with -1 in solids, face_cells, face_flux, boundary_cells,
    boundary_flux)``: internal faces join two fluid cells; a face between a fluid cell and
    a solid or the domain's edge is a boundary face, its flux counted outward.
    """
    F = np.asarray(fluid, bool)
    ids = np.full(F.shape, -1, np.int64)
    ids[F] = np.arange(int(F.sum()))
    area = cell_m * cell_m
    cells, fluxes, bcells, bflux = [], [], [], []
    for axis, vel in ((2, u), (1, v), (0, w)):
        vel = np.asarray(vel, float) * area
        n = F.shape[axis]
        # Face m along this axis lies between cells m-1 and m.
        lo_ids = np.concatenate([np.full_like(np.take(ids, [0], axis), -1), ids], axis=axis)
        hi_ids = np.concatenate([ids, np.full_like(np.take(ids, [0], axis), -1)], axis=axis)
        assert lo_ids.shape == vel.shape, (axis, lo_ids.shape, vel.shape, n)
        lo, hi, f = lo_ids.ravel(), hi_ids.ravel(), vel.ravel()
        both = (lo >= 0) & (hi >= 0)
        cells.append(np.stack([lo[both], hi[both]], axis=1))
        fluxes.append(f[both])
        only_lo = (lo >= 0) & (hi < 0)  # the face is above the fluid cell: outward = +flux
        only_hi = (hi >= 0) & (lo < 0)  # below: outward = -flux
        bcells += [lo[only_lo], hi[only_hi]]
        bflux += [f[only_lo], -f[only_hi]]
    return (ids, np.concatenate(cells), np.concatenate(fluxes), np.concatenate(bcells), np.concatenate(bflux))


def column_fluxes(centres, volumes, faces, *, x0: float, y0: float, cell_m: float, shape, levels_m,
                  height_m: float, tolerance: float | None = None) -> dict[str, np.ndarray]:
    """The coarse fluxes of a fine mesh on a dataset's column: ``{flux_x, ..., volume}``, each ``(L, ny, nx)``.

    ``centres (n, 3)`` and ``volumes (n,)`` of the fine cells; ``faces`` is ``(face_cells,
    face_flux, boundary_cells, boundary_flux)`` as :func:`coarse_level_fluxes` takes them;
    the plane grid has ``shape (ny, nx)`` squares of ``cell_m`` from ``(x0, y0)`` and the
    levels ``levels_m`` in a room ``height_m`` high. Raises ValueError when a fine cell lies
    outside the column: its faces would be lost and the column would not balance; and,
    with ``tolerance``, when a cell's net outflow is above that share of the largest flux
    (:func:`relative_divergence`).
    """
    ny, nx = shape
    edges = level_edges_m(levels_m, height_m)
    index = coarse_cell_index(centres, x0=x0, y0=y0, dx=cell_m, dy=cell_m, nx=nx, ny=ny, edges_z=edges)
    outside = int((index < 0).any(axis=1).sum())
    if outside:
        raise ValueError(f"{outside} of {len(index)} fine cells have their centre outside the column's {len(edges) - 1} "
                         f"x {ny} x {nx} cells of {cell_m:g} m from ({x0:g}, {y0:g}) m, 0 to {height_m:g} m high")
    fluxes = coarse_level_fluxes(index, volumes, *faces, (len(edges) - 1, ny, nx))
    imbalance = relative_divergence(fluxes)
    if tolerance is not None and imbalance > tolerance:
        raise ValueError(f"the fluxes do not balance on the column's cells (a cell's net outflow is {imbalance:.2g} of "
                         f"the largest face flux, above {tolerance:g}); an unconverged flow?")
    return fluxes


def volume_thicknesses_m(volume, cell_area_m2: float) -> np.ndarray:
    """``(L,)`` thickness (m) of each level: its fullest cell's fluid ``volume (L, ny, nx)`` over the cell area.

    Obstacles only take volume from cells, so the fullest cell of a level spans all of it.
    """
    v = np.asarray(volume, float)
    return v.reshape(v.shape[0], -1).max(axis=1) / cell_area_m2


def relative_divergence(fluxes: dict) -> float:
    """Largest net outflow of a coarse cell over the largest face or boundary flux (0 without flow)."""
    scale = max(float(np.abs(np.asarray(fluxes[k], float)).max()) for k in ("flux_x", "flux_y", "flux_z", "outflow"))
    return float(np.abs(divergence(fluxes)).max()) / scale if scale > 0 else 0.0
