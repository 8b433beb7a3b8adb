"""Rooms: floor plan, obstacles, supply inlets and exhaust outlets, and their grids.

Conventions used everywhere in plumecast:

* Coordinates in metres; x along the room's length, y across it, z up from the floor.
* 3D arrays are indexed ``(z, y, x)``, plane arrays ``(y, x)``; cell ``i`` along an axis
  spans ``[i * h, (i + 1) * h]``.
* Face velocity arrays follow a staggered (MAC) layout: ``u`` on x-faces
  ``(nz, ny, nx + 1)``, ``v`` on y-faces ``(nz, ny + 1, nx)``, ``w`` on z-faces
  ``(nz + 1, ny, nx)``.
* Boundary patches (inlets, outlets) lie on one of the six faces of the room's bounding
  box: ``x-``, ``x+``, ``y-``, ``y+``, ``z-`` (floor), ``z+`` (ceiling).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FACES = ("x-", "x+", "y-", "y+", "z-", "z+")

# Rectangle coordinates of a patch, per face: the two in-face axes in (first, second) order.
_FACE_AXES = {"x": ("y", "z"), "y": ("x", "z"), "z": ("x", "y")}


class GeometryError(ValueError):
    """A room, obstacle, patch or source that cannot be built as described."""


@dataclass(frozen=True)
class Box:
    """An axis-aligned solid box ``[x0, x1] x [y0, y1] x [z0, z1]`` (metres)."""

    name: str
    x0: float
    x1: float
    y0: float
    y1: float
    z0: float
    z1: float

    def __post_init__(self):
        for lo, hi, axis in ((self.x0, self.x1, "x"), (self.y0, self.y1, "y"), (self.z0, self.z1, "z")):
            if not hi > lo:
                raise GeometryError(f"obstacle {self.name!r}: {axis}1 must exceed {axis}0, got [{lo}, {hi}]")


@dataclass(frozen=True)
class Patch:
    """A rectangle on one face of the room's bounding box, with a normal speed.

    ``rect_m`` = ``(a0, a1, b0, b1)`` spans the face's two in-plane axes: (y, z) on x faces,
    (x, z) on y faces, (x, y) on z faces. ``speed_m_s`` is the speed into the room for an
    inlet and out of it for an outlet; ``None`` on an outlet means "share the total supply
    equally by area".
    """

    name: str
    face: str
    rect_m: tuple[float, float, float, float]
    speed_m_s: float | None

    def __post_init__(self):
        if self.face not in FACES:
            raise GeometryError(f"patch {self.name!r}: face must be one of {FACES}, got {self.face!r}")
        a0, a1, b0, b1 = self.rect_m
        if not (a1 > a0 and b1 > b0):
            raise GeometryError(f"patch {self.name!r}: empty rectangle {self.rect_m}")
        if self.speed_m_s is not None and not (np.isfinite(self.speed_m_s) and self.speed_m_s > 0):
            raise GeometryError(f"patch {self.name!r}: speed must be a positive number of m/s, got {self.speed_m_s}")


@dataclass(frozen=True)
class Room:
    """A room: bounding box, full-height walls from a floor plan, obstacles and patches.

    ``plan`` is a boolean array ``(ny_plan, nx_plan)`` on cells of ``plan_cell_m``: True
    where the floor plan is open (fluid), False where a full-height wall or void is.
    """

    size_m: tuple[float, float, float]
    plan_cell_m: float
    plan: np.ndarray = field(repr=False)
    obstacles: tuple[Box, ...] = ()
    inlets: tuple[Patch, ...] = ()
    outlets: tuple[Patch, ...] = ()

    def __post_init__(self):
        lx, ly, lz = self.size_m
        if min(lx, ly, lz) <= 0:
            raise GeometryError(f"room size must be positive, got {self.size_m}")
        ny, nx = self.plan.shape
        if not (np.isclose(nx * self.plan_cell_m, lx) and np.isclose(ny * self.plan_cell_m, ly)):
            raise GeometryError(
                f"floor plan of {ny} x {nx} cells of {self.plan_cell_m} m does not cover the room "
                f"{lx} x {ly} m"
            )
        if not self.plan.any():
            raise GeometryError("floor plan has no open cell")
        if not self.inlets:
            raise GeometryError("room has no supply inlet")
        if not self.outlets:
            raise GeometryError("room has no exhaust outlet")
        names = [p.name for p in self.inlets + self.outlets] + [b.name for b in self.obstacles]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise GeometryError(f"duplicate names in room: {sorted(dup)}")

    def discretise(self, cell_m: float) -> "Grid3D":
        return discretise(self, cell_m)


def parse_ascii_plan(text: str) -> np.ndarray:
    """An ASCII plan to a fluid mask ``(ny, nx)``: '.' open, '#' solid.

    The first line is the highest y (north up, as on a drawing); all lines equally long.
    """
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        raise GeometryError("ASCII plan is empty")
    widths = {len(ln) for ln in lines}
    if len(widths) != 1:
        raise GeometryError(f"ASCII plan rows differ in length: {sorted(widths)}")
    bad = {c for ln in lines for c in ln} - {".", "#"}
    if bad:
        raise GeometryError(f"ASCII plan has characters other than '.' and '#': {sorted(bad)}")
    mask = np.array([[c == "." for c in ln] for ln in lines], dtype=bool)
    return mask[::-1]


def plan_from_rectangles(size_xy_m: tuple[float, float], cell_m: float, solids) -> np.ndarray:
    """Fluid mask of an open plan with full-height solid rectangles ``(x0, x1, y0, y1)``."""
    nx = int(round(size_xy_m[0] / cell_m))
    ny = int(round(size_xy_m[1] / cell_m))
    xc = (np.arange(nx) + 0.5) * cell_m
    yc = (np.arange(ny) + 0.5) * cell_m
    mask = np.ones((ny, nx), dtype=bool)
    for x0, x1, y0, y1 in solids:
        mask &= ~(((xc >= x0) & (xc <= x1))[None, :] & ((yc >= y0) & (yc <= y1))[:, None])
    return mask


@dataclass(frozen=True)
class Grid3D:
    """A room on a uniform 3D grid: the fluid mask and prescribed boundary face velocities.

    ``u_bc``, ``v_bc``, ``w_bc`` hold the velocity (m/s, signed along the axis) prescribed on
    inlet and outlet faces of the bounding box and zero elsewhere; ``inlet_faces`` and
    ``outlet_faces`` are the matching boolean masks, each a tuple ``(u, v, w)``.
    """

    fluid: np.ndarray = field(repr=False)
    cell_m: float
    u_bc: np.ndarray = field(repr=False)
    v_bc: np.ndarray = field(repr=False)
    w_bc: np.ndarray = field(repr=False)
    inlet_faces: tuple[np.ndarray, np.ndarray, np.ndarray] = field(repr=False)
    outlet_faces: tuple[np.ndarray, np.ndarray, np.ndarray] = field(repr=False)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.fluid.shape

    def centres(self, axis: str) -> np.ndarray:
        """Cell-centre coordinates (m) along ``axis`` in {'x', 'y', 'z'}."""
        n = {"z": 0, "y": 1, "x": 2}[axis]
        return (np.arange(self.fluid.shape[n]) + 0.5) * self.cell_m

    def cell_index(self, x: float, y: float, z: float) -> tuple[int, int, int] | None:
        """Index ``(k, j, i)`` of the cell holding a point, or None outside the box."""
        idx = []
        for coord, n in zip((z, y, x), self.fluid.shape):
            i = int(np.floor(coord / self.cell_m))
            if coord < 0 or i > n or (i == n and not np.isclose(coord, n * self.cell_m)):
                return None
            idx.append(min(i, n - 1))
        return tuple(idx)

    def volume_flow_in_m3_s(self) -> float:
        return self._flow(self.inlet_faces)

    def volume_flow_out_m3_s(self) -> float:
        return self._flow(self.outlet_faces)

    def _flow(self, masks) -> float:
        area = self.cell_m**2
        return float(sum(np.abs(bc[m]).sum() for bc, m in zip((self.u_bc, self.v_bc, self.w_bc), masks)) * area)

    def patch_velocity(self, patch: Patch) -> np.ndarray:
        """The velocity vector ``(3,)`` (m/s, x, y, z) prescribed on an inlet or outlet patch.

        The mean over the patch's faces of this grid's boundary velocity (uniform over a
        patch as ``discretise`` places it): normal to the patch's face, signed along the axis.
        """
        comp = {"x": 0, "y": 1, "z": 2}[patch.face[0]]
        bc = (self.u_bc, self.v_bc, self.w_bc)[comp]
        _, side, mask = _patch_face_mask(patch, self.shape, self.cell_m)
        sl = [slice(None)] * 3
        sl[2 - comp] = side
        v = np.zeros(3)
        v[comp] = float(np.mean(bc[tuple(sl)][mask]))
        return v


def _patch_face_mask(patch: Patch, shape, cell_m: float):
    """(axis index in (z, y, x) order, side 0|-1, boolean mask over the face's cells)."""
    nz, ny, nx = shape
    axis_name, side = patch.face[0], patch.face[1]
    first, second = _FACE_AXES[axis_name]
    n_of = {"x": nx, "y": ny, "z": nz}
    ca = (np.arange(n_of[first]) + 0.5) * cell_m
    cb = (np.arange(n_of[second]) + 0.5) * cell_m
    a0, a1, b0, b1 = patch.rect_m
    in_a = (ca > a0) & (ca < a1)
    in_b = (cb > b0) & (cb < b1)
    mask_ab = in_a[:, None] & in_b[None, :]  # (first, second)
    # Reorder into the face's (z, y, x) order with the normal axis dropped.
    order = [a for a in ("z", "y", "x") if a != axis_name]
    if order == [second, first]:
        mask_ab = mask_ab.T
    axis = {"z": 0, "y": 1, "x": 2}[axis_name]
    return axis, (0 if side == "-" else -1), mask_ab


def discretise(room: Room, cell_m: float) -> Grid3D:
    """The room on a uniform grid of ``cell_m``: fluid mask and boundary face velocities.

    Outlets without a speed share the discretised supply flow equally by area; outlets with
    a speed must balance the supply (to 1e-9 relative) or a GeometryError names the gap.
    """
    lx, ly, lz = room.size_m
    counts = [lz / cell_m, ly / cell_m, lx / cell_m]
    if not all(np.isclose(c, round(c)) for c in counts):
        raise GeometryError(f"room size {room.size_m} m is not a whole number of {cell_m} m cells")
    ratio = room.plan_cell_m / cell_m
    if not np.isclose(ratio, round(ratio)) or round(ratio) < 1:
        raise GeometryError(f"plan cell {room.plan_cell_m} m is not a whole multiple of the 3D cell {cell_m} m")
    nz, ny, nx = (int(round(c)) for c in counts)
    r = int(round(ratio))
    plan_fine = np.repeat(np.repeat(room.plan, r, axis=0), r, axis=1)
    fluid = np.broadcast_to(plan_fine, (nz, ny, nx)).copy()
    zc, yc, xc = ((np.arange(n) + 0.5) * cell_m for n in (nz, ny, nx))
    for b in room.obstacles:
        inside = (
            ((zc > b.z0) & (zc < b.z1))[:, None, None]
            & ((yc > b.y0) & (yc < b.y1))[None, :, None]
            & ((xc > b.x0) & (xc < b.x1))[None, None, :]
        )
        if not inside.any():
            raise GeometryError(f"obstacle {b.name!r} covers no cell centre of the {cell_m} m grid")
        fluid &= ~inside
    if not fluid.any():
        raise GeometryError("no fluid cell left after obstacles")

    face_shapes = [(nz, ny, nx + 1), (nz, ny + 1, nx), (nz + 1, ny, nx)]  # u, v, w
    bcs = [np.zeros(s) for s in face_shapes]
    inlet_masks = [np.zeros(s, dtype=bool) for s in face_shapes]
    outlet_masks = [np.zeros(s, dtype=bool) for s in face_shapes]
    comp_of_axis = {2: 0, 1: 1, 0: 2}  # (z,y,x) axis -> index into (u, v, w)

    def place(patch: Patch, masks, sign_into: float, speed: float | None):
        axis, side, face_mask = _patch_face_mask(patch, (nz, ny, nx), cell_m)
        if not face_mask.any():
            raise GeometryError(f"patch {patch.name!r} on {patch.face} covers no cell face of the {cell_m} m grid")
        adjacent = np.take(fluid, 0 if side == 0 else -1, axis=axis)
        if not adjacent[face_mask].all():
            raise GeometryError(
                f"patch {patch.name!r} on {patch.face} lies partly on a wall or obstacle: "
                f"{int((~adjacent[face_mask]).sum())} of {int(face_mask.sum())} faces touch solid cells"
            )
        c = comp_of_axis[axis]
        sl = [slice(None)] * 3
        sl[axis] = 0 if side == 0 else -1
        if ((inlet_masks[c] | outlet_masks[c])[tuple(sl)] & face_mask).any():
            raise GeometryError(f"patch {patch.name!r} overlaps another patch")
        masks[c][tuple(sl)] |= face_mask
        # Normal pointing into the room is +axis on the '-' side and -axis on the '+' side.
        into = 1.0 if side == 0 else -1.0
        if speed is not None:
            bcs[c][tuple(sl)] = np.where(face_mask, into * sign_into * speed, bcs[c][tuple(sl)])
        return face_mask.sum() * cell_m**2

    supply = 0.0
    for p in room.inlets:
        supply += place(p, inlet_masks, +1.0, p.speed_m_s) * p.speed_m_s
    fixed_out, free_area, free = 0.0, 0.0, []
    for p in room.outlets:
        area = place(p, outlet_masks, -1.0, p.speed_m_s)
        if p.speed_m_s is None:
            free_area += area
            free.append(p)
        else:
            fixed_out += area * p.speed_m_s
    if free:
        rest = supply - fixed_out
        if rest <= 0:
            raise GeometryError(
                f"inlets and outlets are unbalanced: supply {supply:.6g} m3/s, fixed exhaust "
                f"{fixed_out:.6g} m3/s leaves nothing for outlets {[p.name for p in free]}"
            )
        for p in free:
            place_speed = rest / free_area
            axis, side, face_mask = _patch_face_mask(p, (nz, ny, nx), cell_m)
            c = comp_of_axis[axis]
            sl = [slice(None)] * 3
            sl[axis] = 0 if side == 0 else -1
            into = 1.0 if side == 0 else -1.0
            bcs[c][tuple(sl)] = np.where(face_mask, -into * place_speed, bcs[c][tuple(sl)])
    elif not np.isclose(fixed_out, supply, rtol=1e-9, atol=0.0):
        raise GeometryError(
            f"inlets and outlets are unbalanced: supply {supply:.6g} m3/s but exhaust "
            f"{fixed_out:.6g} m3/s on the {cell_m} m grid; give outlets no speed to balance automatically"
        )
    return Grid3D(
        fluid=fluid,
        cell_m=float(cell_m),
        u_bc=bcs[0],
        v_bc=bcs[1],
        w_bc=bcs[2],
        inlet_faces=tuple(inlet_masks),
        outlet_faces=tuple(outlet_masks),
    )


def plane_fluid_fraction(grid: Grid3D, plane_height_m: float, plane_cell_m: float) -> np.ndarray:
    """Fluid area fraction of each coarse plane cell at ``plane_height_m``, ``(ny_c, nx_c)``.

    A fine cell counts as fluid at the plane when the fine cells on both sides of the plane
    (or the one holding it) are fluid, so a desk top exactly at the plane is solid.
    """
    lower, upper, _ = plane_layers(grid, plane_height_m)
    fine = grid.fluid[lower] & grid.fluid[upper]
    return coarsen_mean(fine.astype(float), grid.cell_m, plane_cell_m)


def plane_layers(grid: Grid3D, plane_height_m: float) -> tuple[int, int, float]:
    """The two fine layers bracketing a height and the weight of the upper one.

    Linear interpolation between cell centres; below the first or above the last centre
    the nearest layer is used.
    """
    nz = grid.fluid.shape[0]
    height = nz * grid.cell_m
    if not 0 < plane_height_m < height:
        raise GeometryError(f"plane height {plane_height_m} m is outside the room (0, {height}) m")
    s = plane_height_m / grid.cell_m - 0.5
    lower = int(np.clip(np.floor(s), 0, nz - 1))
    upper = min(lower + 1, nz - 1)
    weight = float(np.clip(s - lower, 0.0, 1.0)) if upper != lower else 0.0
    return lower, upper, weight


def coarsen_mean(fine: np.ndarray, fine_cell_m: float, coarse_cell_m: float) -> np.ndarray:
    """Block mean over the last two axes ``(..., ny, nx)`` from fine to coarse cells."""
    r = coarse_cell_m / fine_cell_m
    if not np.isclose(r, round(r)) or round(r) < 1:
        raise GeometryError(f"coarse cell {coarse_cell_m} m is not a whole multiple of {fine_cell_m} m")
    r = int(round(r))
    *lead, ny, nx = fine.shape
    if ny % r or nx % r:
        raise GeometryError(f"fine plane {ny} x {nx} does not split into {r} x {r} blocks")
    return fine.reshape(*lead, ny // r, r, nx // r, r).mean(axis=(-3, -1))
