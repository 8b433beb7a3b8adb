"""The column physics: the plane as one of a few coarse levels, each moved by the 3D flow at its height.

The plane model (``physics/model.py``) sees only the plane: a source below or above it is
injected straight into the plane, and what leaves the plane can only be lumped. In the
room, a source at 0.3 m is carried by the air near the floor and reaches breathing height
where and when the flow lifts it. The column gives the coarse model that vertical
structure while the target stays the plane:

* ``L`` levels at the heights ``GridConfig.levels_m`` (the dataset's ``level``
  coordinate; one of them is the plane), each a layer of air from the midpoint to the
  level below to the midpoint to the level above (the floor and the ceiling close the
  first and the last). The state of the levels other than the plane is the closure's
  memory ``s (L - 1, ny, nx)``, in the plane's normalised concentration units;
* each off-plane level is advected by its own flow ``u, v`` (the plane's advection scheme and
  finite-volume operators) and diffused with face diffusivities ``D = d_max
  sigmoid(logit(D0 / d_max) + a)``: ``D0 = nu_t / Sc_t`` of the level at the faces,
  ``d_max`` the positive bound of the explicit substeps with that level's flow, and ``a``
  learned (separately for x- and y-faces: orthotropic);
* neighbouring levels exchange through their interface by the vertical velocity ``w``
  (mean of the two levels', upwind) and a vertical diffusivity ``K = K_max sigmoid(
  logit(K0 / K_max) + b)``, ``K0 = nu_t / Sc_t`` of the interface, ``K_max =
  VERTICAL_D_MAX_M2_S``, ``b`` learned;
* each off-plane level loses mass to the exhausts at a rate ``lambda = SINK_MAX_PER_S
  sigmoid(logit(SINK_INIT_PER_S / SINK_MAX_PER_S) + c)`` (exact exponential), as the
  plane does through the model's exchange term, ``c`` learned;

Every learned correction (``a``, ``b``, the sink logit) lives on control points every
``CONTROL_SPACING_CELLS`` cells, interpolated bilinearly to the cells
(:func:`~plumecast.physics.operators.control_point_weights`): with a few dozen training
sources, fields learned per cell fit dents around those sources and lose on val, the
same lesson as the plane's observation factor (docs/results.md). The corrections start
at zero, so an untrained column is the 3D flow's own physics, and the objective's weight
decay (which acts on them) pulls them back to it;
* a source at height ``z`` enters the levels with linear (hat) weights between the two
  levels around it (all of it into the first or last level beyond them): the plane
  receives its share through :meth:`Column.plane_source_factor`, applied to the plane's
  deposit before the physics, and the other levels theirs here.

**Transport by the 3D flow's fluxes** (``GridConfig.flow = "fluxes"``, the default where
the dataset carries them, :func:`plumecast.train.system.build_system`): each level's face
velocities are its summed fluxes over the face areas, the vertical velocity at an
interface is its summed flux over ``dx dy``, every level (the plane too) loses
``outflow / (dx dy h)`` per second through the exhausts (exact exponential), the levels'
thicknesses are those of the fluid cells they sum (``GridConfig.level_thickness_m``), a
source enters the level whose layer holds it, a level's cells are those that hold fluid
at that level (the plane's are the plane's), and the learned sink starts near zero
(``SINK_INIT_FLUX_PER_S``), since the exhausts are no longer missing. Untrained, this is
a coarse finite-volume model of the 3D scalar transport, fed the 3D solver's own
fluxes: it lowers the sampled column's untrained error on every split of every truth
measured (docs/results.md).

One step: the plane physics has run (``ctx.q_physics``); then the off-plane levels receive
their source shares, take the horizontal substeps of their own flow, lose their sink, and
all ``L`` levels take the vertical substeps. Every part is a convex (or exponential-decay)
update: positive by construction whatever is learned, and it conserves the column's mass
``sum_k h_k sum(q_k)`` up to the source and the sinks exactly (tests check both to
round-off). A flow too fast for the substeps raises
:class:`~plumecast.physics.operators.StabilityError` when the column is built.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from plumecast.physics import operators as ops_
from plumecast.physics.operators import StabilityError
from plumecast.reference.coarse_flux import level_edges_m

__all__ = ["Column", "make_column", "level_thicknesses_m", "height_shares", "layer_shares", "VERTICAL_D_MAX_M2_S",
           "SINK_MAX_PER_S"]

VERTICAL_D_MAX_M2_S = 0.2
SINK_MAX_PER_S = 0.05
SINK_INIT_PER_S = 1e-3
SINK_INIT_FLUX_PER_S = 1e-6
CONTROL_SPACING_CELLS = 6
# Floor of the flow's diffusivities, as a share of their bound (logits stay finite).
D_FLOOR = 1e-4


def level_thicknesses_m(levels_m, height_m: float) -> np.ndarray:
    """Thickness (m) of each level's layer: between the midpoints to its neighbours, floor and ceiling closing the ends."""
    return np.diff(level_edges_m(levels_m, height_m))


def layer_shares(z_m, edges_m) -> jax.Array:
    """``(..., L)``: 1 for the level whose layer ``[edges_k, edges_k+1)`` holds ``z_m``, else 0 (ends clamped)."""
    z = jnp.asarray(z_m)
    e = jnp.asarray(edges_m, z.dtype)
    k = jnp.clip(jnp.searchsorted(e, z, side="right") - 1, 0, e.shape[0] - 2)
    return jax.nn.one_hot(k, e.shape[0] - 1, dtype=z.dtype)


def height_shares(z_m, levels_m) -> jax.Array:
    """``(..., L)`` shares of a source at height ``z_m`` among the levels: hat weights, clamped at the ends; sum 1."""
    z = jnp.asarray(z_m)
    lv = jnp.asarray(levels_m, z.dtype)
    # Linear interpolation of each level's indicator is exactly its hat weight.
    one = lambda zz: jax.vmap(lambda e: jnp.interp(zz, lv, e))(jnp.eye(lv.shape[0], dtype=z.dtype))  # noqa: E731
    return one(z) if z.ndim == 0 else jax.vmap(one)(z.reshape(-1)).reshape(z.shape + (lv.shape[0],))


def _logit(p):
    return jnp.log(p) - jnp.log1p(-p)


def _bounded_logit(value, bound):
    """``logit(value / bound)``, the share kept inside ``[D_FLOOR, 1 - 1e-6]``."""
    return _logit(jnp.clip(value / bound, D_FLOOR, 1.0 - 1e-6))


class Column(eqx.Module):
    """The levels above and below the plane: horizontal transport per level, vertical exchange, sinks.

    Same interface as the off-plane layer (:class:`~plumecast.closure.reservoir.Reservoir`):
    ``init_state()``, ``(back, s_next) = column(s, ctx)`` with ``q_next = q_physics +
    back``, and :meth:`plane_source_factor`.
    """

    # On control points (L-1, my, mx): corrections of the off-plane levels' x- and y-face
    # diffusivity logits, of the L-1 interfaces' vertical diffusivity logits, and the
    # off-plane levels' sink-rate logits.
    theta_hx: jax.Array
    theta_hy: jax.Array
    theta_vertical: jax.Array
    theta_sink: jax.Array
    levels_m: tuple = eqx.field(static=True)
    plane_level: int = eqx.field(static=True)
    layer_height_m: float = eqx.field(static=True)  # the room height (the model's layer), m
    plane_height_m: float = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    dx: float = eqx.field(static=True)
    dy: float = eqx.field(static=True)
    substeps: int = eqx.field(static=True)
    stability_limit: float = eqx.field(static=True)
    schmidt: float = eqx.field(static=True)
    shape: tuple = eqx.field(static=True)  # (ny, nx) of the plane
    advection: str = eqx.field(static=True, default="upwind")  # the model's scheme (GridConfig.advection)
    flow: str = eqx.field(static=True, default="sampled")  # GridConfig.flow
    level_thickness: tuple = eqx.field(static=True, default=())  # GridConfig.level_thickness_m (flow "fluxes")

    # ------------------------------------------------------------------ geometry
    @property
    def thickness_m(self) -> np.ndarray:
        if self.flow == "fluxes":
            return np.asarray(self.level_thickness, float)
        return level_thicknesses_m(self.levels_m, self.layer_height_m)

    @property
    def fluxes(self) -> bool:
        return self.flow == "fluxes"

    def _off(self, a):
        """The off-plane levels of a level-first array."""
        p = self.plane_level
        return jnp.concatenate([a[:p], a[p + 1:]], axis=0)

    def shares(self, z_m) -> jax.Array:
        """``(..., L)``: each level's share of a source at ``z_m``."""
        if self.fluxes:
            return layer_shares(z_m, np.concatenate([[0.0], np.cumsum(self.thickness_m)]))
        return height_shares(z_m, self.levels_m)

    def plane_source_factor(self, z_m: jax.Array) -> jax.Array:
        """The plane's deposit factor: its share of the emission, per unit of the model's deposit.

        The model deposits an emission over ``layer_height_m``; the plane level holds
        ``h_plane`` of it, so its share goes in at ``share * layer_height_m / h_plane``.
        """
        h = float(self.thickness_m[self.plane_level])  # a Python float: weakly typed, keeps the model's dtype
        return self.shares(z_m)[..., self.plane_level] * (self.layer_height_m / h)

    def init_state(self) -> jax.Array:
        return jnp.zeros((len(self.levels_m) - 1,) + self.shape, self.theta_sink.dtype)

    def cells(self, theta) -> jax.Array:
        """``(K, ny, nx)`` cell fields of control-point fields ``(K, my, mx)``."""
        wy, wx = (jnp.asarray(ops_.control_point_weights(n, CONTROL_SPACING_CELLS), theta.dtype) for n in self.shape)
        return jnp.einsum("ym,kmn,xn->kyx", wy, theta, wx)

    # ------------------------------------------------------------------ transport of the levels
    def transport(self, level_flow, level_flux, fluid):
        """``(fluid_L (L, ny, nx), uf (L, ny, nx-1), vf (L, ny-1, nx), w_face (L-1, ny, nx), outflow_rate (L, ny, nx))``.

        Each level's cells and face velocities (m/s), the vertical velocity at each interface
        (m/s) and each level's rate of loss through the exhausts (1/s): from the summed fluxes
        with flow "fluxes", else from the sampled flow (the plane's cells for every level,
        no exhausts).
        """
        L = len(self.levels_m)
        if self.fluxes:
            from plumecast.physics.model import level_face_velocities

            h = jnp.asarray(self.thickness_m, fluid.dtype)
            fluid_L = (level_flux[4] > 0).astype(fluid.dtype).at[self.plane_level].set(fluid)
            uf, vf = jax.vmap(lambda f, hk, m: level_face_velocities(f, hk, self.dx, self.dy, m), in_axes=(1, 0, 0))(
                level_flux[:2], h, fluid_L)
            w_face = level_flux[2][:-1] / (self.dx * self.dy) * fluid_L[:-1] * fluid_L[1:]
            outflow = jnp.maximum(level_flux[3], 0.0) / (self.dx * self.dy * h[:, None, None]) * fluid_L
            return fluid_L, uf, vf, w_face, outflow
        fluid_L = jnp.broadcast_to(fluid, (L,) + fluid.shape)
        uf, vf = jax.vmap(lambda u, v: ops_.face_velocities(u, v, fluid))(level_flow[0], level_flow[1])
        w_face = 0.5 * (level_flow[2][:-1] + level_flow[2][1:])
        return fluid_L, uf, vf, w_face, jnp.zeros_like(fluid_L)

    # ------------------------------------------------------------------ learned fields
    def horizontal_diffusivities(self, level_flow, uf, vf, fluid_L):
        """``(Dx (L-1, ny, nx-1), Dy (L-1, ny-1, nx))`` of the off-plane levels, m^2/s, below each level's bound.

        ``uf, vf, fluid_L``: the off-plane levels' face velocities and cells (:meth:`transport`).
        """
        nu = self._off(level_flow[3])
        d_max = jax.vmap(lambda a, b, m: _diffusion_bound(a, b, m, self.dx, self.dy, self.dt / self.substeps,
                                                          self.stability_limit, self.advection))(uf, vf, fluid_L)
        d_max = d_max[:, None, None]
        d0x, d0y = jax.vmap(lambda n, m: ops_.faces_from_cells(n / self.schmidt, m))(nu, fluid_L)
        ax, ay = self.cells(self.theta_hx), self.cells(self.theta_hy)
        ax, ay = 0.5 * (ax[:, :, :-1] + ax[:, :, 1:]), 0.5 * (ay[:, :-1, :] + ay[:, 1:, :])
        mx, my = jax.vmap(ops_.face_masks)(fluid_L)
        return (d_max * jax.nn.sigmoid(_bounded_logit(d0x, d_max) + ax) * mx,
                d_max * jax.nn.sigmoid(_bounded_logit(d0y, d_max) + ay) * my)

    def vertical_diffusivity(self, level_flow, fluid_L, correction=None) -> jax.Array:
        """``K (L-1, ny, nx)`` at the interfaces between neighbouring levels, m^2/s (zero where either side is solid).

        ``correction (L-1, ny, nx)``: added to the logit (a closure's per-step change); K stays below its bound.
        """
        nu = level_flow[3] / self.schmidt
        k0 = 0.5 * (nu[:-1] + nu[1:])
        logit = _bounded_logit(k0, VERTICAL_D_MAX_M2_S) + self.cells(self.theta_vertical)
        if correction is not None:
            logit = logit + correction
        return VERTICAL_D_MAX_M2_S * jax.nn.sigmoid(logit) * fluid_L[:-1] * fluid_L[1:]

    def vertical_speed_room(self, w_face, fluid_L) -> jax.Array:
        """The largest extra vertical speed (m/s) every interface can take with the vertical substeps still positive.

        Each level cell's outflow per substep with the largest vertical diffusivity and the
        flow's own ``w_face`` (:meth:`transport`), plus ``W`` through each of its
        interfaces, must stay below the stability limit; this is the ``W`` that leaves (0
        when there is none). For a closure that corrects the vertical velocity
        (:mod:`plumecast.closure.exchange`).
        """
        sub = self.dt / self.substeps
        dz = jnp.asarray(np.diff(self.centres_m), w_face.dtype)[:, None, None]
        h = jnp.asarray(self.thickness_m, w_face.dtype)[:, None, None]
        up = jnp.maximum(w_face, 0.0) + VERTICAL_D_MAX_M2_S / dz
        down = -jnp.minimum(w_face, 0.0) + VERTICAL_D_MAX_M2_S / dz
        zero = jnp.zeros_like(w_face[:1])
        out = jnp.concatenate([up, zero]) + jnp.concatenate([zero, down])
        one = jnp.ones_like(zero)
        interfaces = jnp.concatenate([one, 2.0 * jnp.ones_like(w_face[1:]), one])  # of each level: 1 at the ends
        room = (self.stability_limit / sub - out / h) * h / interfaces
        return jnp.maximum(jnp.min(jnp.where(fluid_L > 0, room, jnp.inf)), 0.0)

    def sink_rate(self, fluid_off) -> jax.Array:
        """``lambda (L-1, ny, nx)`` of the off-plane levels, 1/s."""
        init = SINK_INIT_FLUX_PER_S if self.fluxes else SINK_INIT_PER_S
        start = _logit(jnp.asarray(init / SINK_MAX_PER_S, self.theta_sink.dtype))
        return SINK_MAX_PER_S * jax.nn.sigmoid(start + self.cells(self.theta_sink)) * fluid_off

    # ------------------------------------------------------------------ step
    def level_deposits(self, ctx) -> jax.Array:
        """``(L, ny, nx)``: the normalised increments of the step's sources into every level (the plane's included)."""
        scale = jnp.asarray(self.layer_height_m / self.thickness_m, ctx.q.dtype)
        z = self.plane_height_m + ctx.source_position[..., 2] * self.layer_height_m
        if ctx.source_parts is None:
            return (self.shares(z) * scale)[:, None, None] * ctx.source[None]
        share = jax.vmap(self.shares)(z)  # (S, L)
        return jnp.einsum("sk,syx->kyx", share * scale[None], ctx.source_parts)

    def deposits(self, ctx) -> jax.Array:
        """``(L-1, ny, nx)``: the normalised increments of the step's sources into the off-plane levels."""
        return self._off(self.level_deposits(ctx))

    def vertical_substep(self, Q, w_face, K):
        """One explicit substep of the exchange between neighbouring levels; ``Q (L, ny, nx)``.

        ``w_face`` and ``K`` are zero where an interface has a solid on either side.
        """
        dz = jnp.asarray(np.diff(self.centres_m), Q.dtype)[:, None, None]
        h = jnp.asarray(self.thickness_m, Q.dtype)[:, None, None]
        up = jnp.maximum(w_face, 0.0) + K / dz  # from the lower level into the upper, per unit of the lower's q
        down = jnp.maximum(-w_face, 0.0) + K / dz
        flux = up * Q[:-1] - down * Q[1:]  # (L-1): upward flux per unit area through each interface
        dt = self.dt / self.substeps
        zero = jnp.zeros_like(Q[:1])
        net = jnp.concatenate([zero, flux]) - jnp.concatenate([flux, zero])  # in through the floor side, out the top
        return Q + dt * net / h

    @property
    def centres_m(self) -> np.ndarray:
        """Heights (m) of the levels' centres: the dataset's levels, or with flow "fluxes" the middles of their layers."""
        if self.fluxes:
            edges = np.concatenate([[0.0], np.cumsum(self.thickness_m)])
            return 0.5 * (edges[1:] + edges[:-1])
        return np.asarray(self.levels_m, float)

    def level_transport(self, ctx):
        """:meth:`transport` of a step's context (the flow levels it carries; a clear error without them)."""
        if ctx.level_flow is None or (self.fluxes and ctx.level_flux is None):
            raise ValueError("the column needs the model's flow levels (a dataset with u_level ... nu_t_level, and "
                             "flux_x_level ... volume_level for flow 'fluxes')")
        return self.transport(ctx.level_flow, ctx.level_flux, ctx.fluid)

    def __call__(self, s: jax.Array, ctx, exchange=None, transport=None) -> tuple[jax.Array, jax.Array]:
        """``(back, s_next)``: the plane's change by the column this step, and the off-plane levels after it.

        ``exchange``: ``(dk, dw)``, each ``(L-1, ny, nx)``, a closure's change of this step's
        vertical exchange: ``dk`` added to the vertical diffusivities' logits, ``dw`` (m/s)
        to the interfaces' vertical velocity. The caller keeps ``|dw|`` within
        :meth:`vertical_speed_room`, so the vertical substeps stay positive. ``transport``:
        :meth:`level_transport` of ``ctx`` when the caller has it already (computed here otherwise).
        """
        flow = ctx.level_flow
        fluid_L, uf, vf, w_face, outflow = self.level_transport(ctx) if transport is None else transport
        fluid_off = self._off(fluid_L)
        uf_off, vf_off = self._off(uf), self._off(vf)
        sub = self.dt / self.substeps
        # Horizontal: each off-plane level in its own flow, its sources deposited first.
        s = (s + self.deposits(ctx)) * fluid_off
        Dx, Dy = self.horizontal_diffusivities(flow, uf_off, vf_off, fluid_off)

        def level(q, u_f, v_f, dx_f, dy_f, m):
            stencil = ops_.substep_stencil(u_f, v_f, dx_f, dy_f, m, self.dx, self.dy, sub)
            return ops_.transport_substeps(q, stencil, 0.0, self.substeps, self.advection, u_f, v_f, m,
                                           self.dx, self.dy, sub)

        s = jax.vmap(level)(s, uf_off, vf_off, Dx, Dy, fluid_off)
        s = s * jnp.exp(-self.dt * self.sink_rate(fluid_off))
        # Vertical: all levels, the plane included; then the exhausts.
        p = self.plane_level
        Q = jnp.concatenate([s[:p], ctx.q_physics[None], s[p:]], axis=0)
        dk = None
        if exchange is not None:
            dk, dw = exchange
            w_face = (w_face + dw) * fluid_L[:-1] * fluid_L[1:]
        K = self.vertical_diffusivity(flow, fluid_L, dk)
        Q = jax.lax.fori_loop(0, self.substeps, lambda _, a: self.vertical_substep(a, w_face, K), Q)
        if self.fluxes:
            Q = Q * jnp.exp(-self.dt * outflow)
        return Q[p] - ctx.q_physics, self._off(Q)


def _diffusion_bound(uf, vf, fluid, dx, dy, sub_dt, limit, advection="upwind"):
    """The largest face diffusivity (m^2/s) that keeps an explicit substep with face velocities ``uf, vf`` positive."""
    mx, my = ops_.face_masks(fluid)
    adv = (ops_.outflow_rates(uf, vf, jnp.zeros_like(mx), jnp.zeros_like(my), dx, dy) * sub_dt
           * ops_.advection_stability_factor(advection))
    geo = ops_.outflow_rates(jnp.zeros_like(uf), jnp.zeros_like(vf), mx, my, dx, dy) * sub_dt
    room = jnp.where((fluid > 0) & (geo > 0), (limit - adv) / jnp.where(geo > 0, geo, 1.0), jnp.inf)
    bound = jnp.min(room)
    return jnp.where(jnp.isfinite(bound), bound, 1.0)


def make_column(model, *, key=None) -> Column:
    """The column on ``model``'s grid and flow levels (clear errors when it cannot be built)."""
    c = model.config
    if not c.levels_m or model.level_flow is None:
        raise ValueError("the column physics needs the flow at several heights; this dataset has none (regenerate it, "
                         "or import it with --levels)")
    L = len(c.levels_m)
    if L < 2:
        raise ValueError(f"the column needs at least two levels, got {list(c.levels_m)}")
    dtype = c.jdtype
    my, mx = (-(-(n - 1) // CONTROL_SPACING_CELLS) + 1 for n in (c.ny, c.nx))
    zeros = jnp.zeros((L - 1, my, mx), dtype)
    column = Column(
        theta_hx=zeros,
        theta_hy=zeros,
        theta_vertical=zeros,
        theta_sink=zeros,
        levels_m=tuple(c.levels_m),
        plane_level=c.plane_level,
        layer_height_m=float(c.layer_height_m),
        plane_height_m=float(c.plane_height_m),
        dt=float(c.dt),
        dx=float(c.dx),
        dy=float(c.dy),
        substeps=int(c.substeps),
        stability_limit=float(c.stability_limit),
        schmidt=float(c.schmidt),
        shape=(c.ny, c.nx),
        advection=c.advection,
        flow=c.flow,
        level_thickness=tuple(c.level_thickness_m),
    )
    sub = c.dt / c.substeps
    fluid_L, uf, vf, w_face, _ = (np.asarray(a, float) for a in column.transport(model.level_flow, model.level_flux,
                                                                                model.fluid))
    # Horizontal stability of each level's own flow (with zero diffusivity, the room left for it).
    for k in range(L):
        adv = float(np.max(np.asarray(ops_.outflow_rates(uf[k], vf[k], np.zeros((c.ny, c.nx - 1)),
                                                          np.zeros((c.ny - 1, c.nx)), c.dx, c.dy)))) \
            * sub * ops_.advection_stability_factor(c.advection)
        if adv >= 0.5 * c.stability_limit:
            raise StabilityError(f"the flow at level {c.levels_m[k]:g} m moves {adv:.3g} of a cell per substep of "
                                 f"{sub:g} s; use about {math.ceil(c.substeps * adv / (0.25 * c.stability_limit))} substeps")
    dz = np.diff(column.centres_m)[:, None, None]
    up = np.maximum(w_face, 0.0) + VERTICAL_D_MAX_M2_S / dz
    down = np.maximum(-w_face, 0.0) + VERTICAL_D_MAX_M2_S / dz
    out = np.zeros((L, c.ny, c.nx))
    out[:-1] += up
    out[1:] += down
    worst = float((out * fluid_L / column.thickness_m[:, None, None]).max()) * sub
    if worst > c.stability_limit:
        raise StabilityError(f"vertical exchange of {worst:.3g} of a level per substep of {sub:g} s exceeds the limit "
                             f"{c.stability_limit:g}; use more substeps")
    return column
