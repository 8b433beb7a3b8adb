"""2D finite-volume operators on the plane grid, with a fluid mask.

Grid conventions (as in :mod:`plumecast.geometry`): plane arrays are ``(ny, nx)``; cell
``(j, i)`` is centred at ``(x0 + i dx, y0 + j dy)``. Faces between neighbouring cells
carry the face quantities: x-faces ``(ny, nx - 1)`` (between ``i`` and ``i + 1``), y-faces
``(ny - 1, nx)``. The outer boundary has no faces, so it is a wall (zero flux); a face
touching a solid cell is a wall too: its velocity and diffusivity are zero.

Scheme (a cell-centred finite-volume method for ``c_t + div(u c) = div(D grad c) + s``):

* advection: first-order upwind, face velocity = mean of the two neighbouring cell
  velocities (the plane velocity need not be divergence-free: the conservative form keeps
  mass exact, and a convergent plane flow concentrates the scalar as it should);
* diffusion: two-point flux ``-D_f (c_R - c_L) / h`` with face diffusivities ``Dx``, ``Dy``
  (orthotropic: separate fields on x- and y-faces);
* source: a point emission deposited on the cells around its position with bilinear
  (hat-function) weights, renormalised over fluid cells so that exactly the emitted mass
  enters the fluid;
* time: forward Euler substeps. One substep is a convex combination of the old values
  (plus the source) when, in every fluid cell, ``dt * (sum of outgoing face velocities / h +
  sum of face diffusivities / h^2) <= 1``: then the step is positive and, for a
  discretely divergence-free flow, obeys the maximum principle. :func:`stability_number`
  computes that number; :func:`check_stability` raises :class:`StabilityError` above the
  limit. An unstable configuration is an error, never a silent blow-up.

Every function takes one unbatched field ``(ny, nx)``; batch with ``jax.vmap``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class StabilityError(ValueError):
    """An explicit step that would not be positive/stable; the message gives the numbers."""


def _xp(*arrays):
    """numpy when every input is numpy (setup code, no JAX dispatch), else jax.numpy."""
    return np if all(isinstance(a, (np.ndarray, float, int, np.floating)) for a in arrays) else jnp


def _check_field(q, name="field"):
    if q.ndim != 2:
        raise ValueError(f"{name} must be one unbatched (ny, nx) array, got shape {q.shape}; use jax.vmap for batches")


def face_masks(fluid):
    """``(mx (ny, nx-1), my (ny-1, nx))``: 1 on faces with fluid on both sides, else 0."""
    _check_field(fluid, "fluid")
    return fluid[:, :-1] * fluid[:, 1:], fluid[:-1, :] * fluid[1:, :]


def face_velocities(u, v, fluid):
    """Face-normal velocities: mean of the neighbouring cell velocities, zero on wall faces."""
    mx, my = face_masks(fluid)
    return 0.5 * (u[:, :-1] + u[:, 1:]) * mx, 0.5 * (v[:-1, :] + v[1:, :]) * my


def faces_from_cells(a, fluid):
    """Mean of a cell field at the faces, zero on faces touching solids: ``(ax, ay)``."""
    return face_velocities(a, a, fluid)


def cells_from_faces(fx, fy):
    """Cell-centred mean of face fields (for display or network inputs): ``(cx, cy)``.

    Each cell averages its two x-faces (or one at the outer boundary, where the missing
    face counts as zero) and likewise its y-faces.
    """
    px = jnp.pad(fx, ((0, 0), (1, 1)))
    py = jnp.pad(fy, ((1, 1), (0, 0)))
    return 0.5 * (px[:, :-1] + px[:, 1:]), 0.5 * (py[:-1, :] + py[1:, :])


def _divergence(fx, fy, dx, dy):
    """Net outflow per unit area of face fluxes: ``(Fx_e - Fx_w)/dx + (Fy_n - Fy_s)/dy``."""
    px = jnp.pad(fx, ((0, 0), (1, 1)))
    py = jnp.pad(fy, ((1, 1), (0, 0)))
    return (px[:, 1:] - px[:, :-1]) / dx + (py[1:, :] - py[:-1, :]) / dy


def advection_tendency(q, uf, vf, dx, dy):
    """``-div(u q)`` by first-order upwind, ``(ny, nx)``; ``uf``, ``vf`` are face velocities."""
    _check_field(q)
    fx = jnp.maximum(uf, 0.0) * q[:, :-1] + jnp.minimum(uf, 0.0) * q[:, 1:]
    fy = jnp.maximum(vf, 0.0) * q[:-1, :] + jnp.minimum(vf, 0.0) * q[1:, :]
    return -_divergence(fx, fy, dx, dy)


def diffusion_tendency(q, Dx, Dy, dx, dy):
    """``div(D grad q)`` with face diffusivities ``Dx (ny, nx-1)``, ``Dy (ny-1, nx)``."""
    _check_field(q)
    fx = -Dx * (q[:, 1:] - q[:, :-1]) / dx
    fy = -Dy * (q[1:, :] - q[:-1, :]) / dy
    return -_divergence(fx, fy, dx, dy)


def hat_weights(pos, n, origin, h):
    """1D linear-interpolation (hat) weights ``(n,)`` of a position between cell centres.

    Positions beyond the first/last centre are clamped to it, so the weights always sum
    to one.
    """
    s = jnp.clip((pos - origin) / h, 0.0, n - 1.0)
    return jnp.maximum(0.0, 1.0 - jnp.abs(jnp.arange(n, dtype=s.dtype) - s))


def deposit_weights(x, y, fluid, x0, y0, dx, dy):
    """Bilinear weights ``(ny, nx)`` of a point on the (at most 2 x 2) cells around it.

    Renormalised over fluid cells: the weights sum to one whenever one of the cells is
    fluid (always true for a point inside a fluid cell), so the deposit is conservative.
    Differentiable in ``x``, ``y`` except where the point crosses a cell centre.
    """
    ny, nx = fluid.shape
    w = hat_weights(y, ny, y0, dy)[:, None] * hat_weights(x, nx, x0, dx)[None, :] * fluid
    total = jnp.sum(w)
    return w / jnp.where(total > 0, total, 1.0)


def outflow_rates(uf, vf, Dx, Dy, dx, dy):
    """Per cell, the explicit-Euler loss rate (1/s): outgoing advective plus diffusive coefficients.

    ``dt * outflow_rates`` is the fraction of a cell's content that leaves it in one step;
    it must stay at or below one for positivity.
    """
    xp = _xp(uf, vf, Dx, Dy)
    ux = xp.pad(uf, ((0, 0), (1, 1)))
    vy = xp.pad(vf, ((1, 1), (0, 0)))
    adv = (xp.maximum(ux[:, 1:], 0.0) - xp.minimum(ux[:, :-1], 0.0)) / dx
    adv = adv + (xp.maximum(vy[1:, :], 0.0) - xp.minimum(vy[:-1, :], 0.0)) / dy
    Dxp = xp.pad(Dx, ((0, 0), (1, 1)))
    Dyp = xp.pad(Dy, ((1, 1), (0, 0)))
    dif = (Dxp[:, 1:] + Dxp[:, :-1]) / dx**2 + (Dyp[1:, :] + Dyp[:-1, :]) / dy**2
    return adv + dif


def stability_number(uf, vf, Dx, Dy, dx, dy, dt) -> float:
    """Largest ``dt * outflow_rate`` over cells (concrete arrays only); must be <= 1."""
    return float(np.max(np.asarray(outflow_rates(uf, vf, Dx, Dy, dx, dy))) * dt)


def check_stability(uf, vf, Dx, Dy, dx, dy, dt, limit: float = 1.0) -> float:
    """Raise :class:`StabilityError` when one explicit substep would exceed ``limit``.

    Returns the stability number. The message says how many substeps would be needed.
    """
    number = stability_number(uf, vf, Dx, Dy, dx, dy, dt)
    if not np.isfinite(number) or number > limit:
        need = int(np.ceil(number / limit)) if np.isfinite(number) else -1
        raise StabilityError(
            f"explicit substep of {dt:g} s is unstable: stability number {number:.3g} > {limit:g} "
            f"(outgoing advective + diffusive fraction of a cell per substep); use at least "
            f"{need} times as many substeps or a smaller step"
        )
    return number


def fv_substep(q, uf, vf, Dx, Dy, source, fluid, dx, dy, dt):
    """One forward-Euler substep: ``q + dt (advection + diffusion + source)``, masked to fluid."""
    rhs = advection_tendency(q, uf, vf, dx, dy) + diffusion_tendency(q, Dx, Dy, dx, dy) + source
    return (q + dt * rhs) * fluid


def substep_stencil(uf, vf, Dx, Dy, fluid, dx, dy, dt):
    """The explicit substep as a linear five-point stencil ``(cc, cw, ce, cs, cn)``.

    For fixed velocity and diffusivity (one rollout), computed once outside the time loop:

    ``q_new = cc q + cw q_W + ce q_E + cs q_S + cn q_N + dt s`` (neighbours outside the
    grid count as zero). Writing an x-face flux (per unit cell area) as ``F = aL q_L -
    aR q_R`` with ``aL = max(u_f, 0) + D_f / dx`` and ``aR = -min(u_f, 0) + D_f / dx`` (both
    non-negative), each face moves exactly what one side loses to the other, so mass is
    conserved and, when ``cc >= 0`` (the stability condition), every coefficient is
    non-negative (positivity). Identical to :func:`fv_substep` up to round-off, cheaper
    inside a time loop. Solid cells get all-zero coefficients (the state stays masked).
    """
    axL = (jnp.maximum(uf, 0.0) + Dx / dx) * (dt / dx)
    axR = (-jnp.minimum(uf, 0.0) + Dx / dx) * (dt / dx)
    ayL = (jnp.maximum(vf, 0.0) + Dy / dy) * (dt / dy)
    ayR = (-jnp.minimum(vf, 0.0) + Dy / dy) * (dt / dy)
    px = ((0, 0), (1, 1))
    py = ((1, 1), (0, 0))
    axLp, axRp = jnp.pad(axL, px), jnp.pad(axR, px)
    ayLp, ayRp = jnp.pad(ayL, py), jnp.pad(ayR, py)
    cc = (1.0 - axLp[:, 1:] - axRp[:, :-1] - ayLp[1:, :] - ayRp[:-1, :]) * fluid
    cw = axLp[:, :-1]  # inflow from the west neighbour through the west face
    ce = axRp[:, 1:]
    cs = ayLp[:-1, :]
    cn = ayRp[1:, :]
    return (cc, cw, ce, cs, cn)


def apply_stencil(q, stencil, increment):
    """``q_new`` of :func:`substep_stencil` plus a precomputed ``increment`` (``dt * source``)."""
    cc, cw, ce, cs, cn = stencil
    zc = jnp.zeros_like(q[:, :1])
    zr = jnp.zeros_like(q[:1, :])
    qw = jnp.concatenate([zc, q[:, :-1]], axis=1)
    qe = jnp.concatenate([q[:, 1:], zc], axis=1)
    qs = jnp.concatenate([zr, q[:-1, :]], axis=0)
    qn = jnp.concatenate([q[1:, :], zr], axis=0)
    return cc * q + cw * qw + ce * qe + cs * qs + cn * qn + increment


ADVECTION_SCHEMES = ("upwind", "tvd")


def advection_stability_factor(scheme: str) -> float:
    """How many times upwind's outgoing advective fraction a substep of ``scheme`` may move out of a cell.

    The limited correction of ``"tvd"`` can at most double a face's upwind coefficient
    (van Leer's limiter is at most 2), so positivity of the explicit substep holds when
    twice the advective plus the diffusive fraction stays below the stability limit.
    """
    if scheme not in ADVECTION_SCHEMES:
        raise ValueError(f"advection scheme must be one of {ADVECTION_SCHEMES}, got {scheme!r}")
    return 2.0 if scheme == "tvd" else 1.0


@jax.custom_jvp
def _van_leer(num, den):
    """``psi(num / den) * den`` for van Leer's limiter ``psi(r) = (r + |r|) / (1 + |r|)``, safe at ``den = 0``.

    It is the harmonic mean ``2 num den / (|num| + |den|)`` where the two slopes agree in
    sign and 0 where they do not (a local extremum: no steepening, no new extremum). The
    floor of the denominator (slopes are of normalised fields, O(1)) keeps its square, which
    the gradient divides by, a normal float32 where both slopes vanish.
    """
    return (num * jnp.abs(den) + jnp.abs(num) * den) / (jnp.abs(num) + jnp.abs(den) + VAN_LEER_FLOOR)


@_van_leer.defjvp
def _van_leer_jvp(primals, tangents):
    # The closed form 2 (den^2 d_num + num^2 d_den) / (|num| + |den|)^2 where the slopes
    # agree, 0 where they do not: a few operations where autodiff through the abs and the
    # division takes many (with one limiter per face, TVD training twice as fast:
    # docs/benchmarks.md, "What TVD advection costs in training").
    num, den = primals
    d_num, d_den = tangents
    total = jnp.abs(num) + jnp.abs(den) + VAN_LEER_FLOOR
    out = _van_leer(num, den)
    weight = jnp.where(num * den > 0, 2.0 / (total * total), 0.0)
    return out, weight * (den * den * d_num + num * num * d_den)


VAN_LEER_FLOOR = 1e-12


class TVDFaces(NamedTuple):
    """What the TVD correction needs of the flow and the mask, computed once per rollout step, not per substep.

    Face-shaped, x-faces ``(ny, nx-1)`` and y-faces ``(ny-1, nx)``.
    """

    ax: jax.Array  # 0.5 |u| (1 - |u| dt / dx) on the x-faces
    ay: jax.Array
    east: jax.Array  # x-faces whose flow is towards +x (bool); its upwind cell is the left one
    north: jax.Array  # y-faces whose flow is towards +y
    far_w_fluid: jax.Array  # x-faces whose far-upwind cell for +x flow (west of the left cell) is fluid (bool)
    far_e_fluid: jax.Array  # ... for -x flow (east of the right cell); likewise south and north for y-faces
    far_s_fluid: jax.Array
    far_n_fluid: jax.Array
    fluid: jax.Array


def tvd_faces(uf, vf, fluid, dx, dy, dt) -> TVDFaces:
    """The flow-only part of :func:`tvd_increment` for face velocities ``uf``, ``vf`` and substep ``dt``."""
    no_x = jnp.zeros_like(fluid[:, :1])
    no_y = jnp.zeros_like(fluid[:1, :])
    return TVDFaces(
        ax=0.5 * jnp.abs(uf) * (1.0 - jnp.abs(uf) * dt / dx),
        ay=0.5 * jnp.abs(vf) * (1.0 - jnp.abs(vf) * dt / dy),
        east=uf >= 0,
        north=vf >= 0,
        # x-face i lies between cells i and i + 1: its far-upwind cells are i - 1 and i + 2
        far_w_fluid=jnp.concatenate([no_x, fluid[:, :-2]], axis=1) > 0,
        far_e_fluid=jnp.concatenate([fluid[:, 2:], no_x], axis=1) > 0,
        far_s_fluid=jnp.concatenate([no_y, fluid[:-2, :]], axis=0) > 0,
        far_n_fluid=jnp.concatenate([fluid[2:, :], no_y], axis=0) > 0,
        fluid=fluid,
    )


def tvd_increment(q, faces: TVDFaces, dx, dy, dt):
    """The change by the anti-diffusive fluxes that turn one upwind substep into a TVD one, ``(ny, nx)``.

    Flux-limited Lax-Wendroff (Sweby): at each face the upwind flux gains
    ``0.5 |u| (1 - |u| dt / dx) psi(r) (q_R - q_L)``, ``r`` the ratio of the upwind slope to
    the slope across the face, ``psi`` van Leer's limiter. Second order where the field is
    smooth, first order (upwind) at extrema; it cancels most of upwind's numerical
    diffusion ``|u| dx / 2``. A face whose far-upwind cell is solid or outside the grid
    stays upwind (``r = 0``). Fluxes through faces, so mass is conserved to round-off;
    ``q`` must be the substep's starting field, the same one the upwind stencil is applied to.
    """
    # One limiter per face, on the slopes of its upwind side (evaluating both sides and
    # selecting would double the limiter's work in the forward and the backward pass).
    # The far-upwind cell is replaced by the near one where it is solid or off the grid.
    qL, qR = q[:, :-1], q[:, 1:]
    far_w = jnp.where(faces.far_w_fluid, jnp.concatenate([qL[:, :1], q[:, :-2]], axis=1), qL)
    far_e = jnp.where(faces.far_e_fluid, jnp.concatenate([q[:, 2:], qR[:, -1:]], axis=1), qR)
    # psi(r) (q_R - q_L) with r = (upwind slope) / (q_R - q_L), the upwind slope q_L - q_LL
    # for flow towards +x and q_RR - q_R towards -x (both in the +x direction).
    fx = faces.ax * _van_leer(jnp.where(faces.east, qL - far_w, far_e - qR), qR - qL)
    qS, qN = q[:-1, :], q[1:, :]
    far_s = jnp.where(faces.far_s_fluid, jnp.concatenate([qS[:1, :], q[:-2, :]], axis=0), qS)
    far_n = jnp.where(faces.far_n_fluid, jnp.concatenate([q[2:, :], qN[-1:, :]], axis=0), qN)
    fy = faces.ay * _van_leer(jnp.where(faces.north, qS - far_s, far_n - qN), qN - qS)
    return -dt * _divergence(fx, fy, dx, dy) * faces.fluid


def transport_substeps(q, stencil, increment, n: int, scheme: str = "upwind", uf=None, vf=None, fluid=None,
                       dx: float = 1.0, dy: float = 1.0, dt: float = 1.0):
    """``n`` explicit substeps of the five-point ``stencil`` plus ``increment`` each, upwind or TVD.

    The one loop both the plane physics and the column levels run. A loop, not Python
    unrolling: XLA on CPU compiles unrolled chains of stencils into far slower code
    (measured 14x slower for 4 substeps, see docs/benchmarks.md).
    """
    if scheme == "upwind":
        body = lambda _, a: apply_stencil(a, stencil, increment)  # noqa: E731
    else:
        faces = tvd_faces(uf, vf, fluid, dx, dy, dt)  # flow-only: outside the substep loop
        body = lambda _, a: apply_stencil(a, stencil, increment) + tvd_increment(a, faces, dx, dy, dt)  # noqa: E731
    return jax.lax.fori_loop(0, n, body, q)


def control_point_weights(n: int, spacing: int) -> np.ndarray:
    """``(n, m)`` weights of linear interpolation to ``n`` cells from control points every ``spacing`` cells (both ends in).

    A field learned on control points (``wy @ theta @ wx.T``) varies over metres, not from
    cell to cell: what the ventilation sets, not dents next to the training sources.
    """
    m = -(-(n - 1) // spacing) + 1
    pos = np.arange(n) / spacing
    lower = np.minimum(np.floor(pos).astype(int), m - 2) if m > 1 else np.zeros(n, int)
    frac = pos - lower
    w = np.zeros((n, m))
    w[np.arange(n), lower] = 1.0 - frac
    if m > 1:
        w[np.arange(n), lower + 1] += frac
    return w
