"""An off-plane reservoir: the memory of the mass that has left the plane, per cell.

The coarse physics removes mass from the plane at the learned exchange rate ``lambda``
(``physics/model.py``); in the 3D room part of that mass sits above or below the plane
and comes back later. A reservoir field ``s`` (normalised plane units, one value per
plane cell: the air above and below it) holds a learned share of what left and returns it
at a learned rate: in one step of ``dt``

    back = s (1 - exp(-mu dt)),   s <- spread((s - back + kappa * exchanged + sigma * source) exp(-nu dt)),
    q <- q + back

with ``0 <= mu <= return_max_per_s`` and ``0 <= kappa <= 1`` per cell (the rest of the
exchanged mass has left the room, through the exhausts) and an optional vent rate ``0 <=
nu <= vent_max_per_s`` per cell: the off-plane air leaves through exhausts that the plane
does not touch (off when ``vent_max_per_s = 0``). ``spread`` is an optional
horizontal transport of the reservoir in explicit substeps: diffusion with learned face
diffusivities ``0 <= D_s <= spread_max_m2_s`` (the off-plane air mixes across the room:
ceiling diffusers, the return of the recirculation), off when ``spread_max_m2_s = 0``, and
upwind advection with a learned drift ``|u_s| <= advect_max_m_s`` (the off-plane air has
its own mean drift, which need not be the plane's: the return flow of a ventilated room
often runs against it), off when ``advect_max_m_s = 0``. ``drift_form`` says how it is
learned: ``"free"`` (default), one velocity per face, which need not be divergence-free,
as the plane's own velocity need not (the layer is a slab of a 3D flow with up- and
downdraughts, so it may gather mass where the air sinks into it); ``"solenoidal"``, the
discrete curl of a learned streamfunction on cell corners, zero on every corner that
touches a wall, which moves the layer without piling it up anywhere (zero net outflow of
every cell to round-off). The two bounds together keep every substep positive and
conservative, whatever is learned.

A source emits into the air around it, not only into the plane: with ``source_share_max >
0`` the layer also receives ``sigma * source`` of each step's source increment, where ``0
<= sigma(x, y, z) <= source_share_max`` is a small net of the source position (the
physics' source-rate net reads the same features), so that part of the emission reaches
the plane late and spread, through the layer (a moving source leaves a trail in the air
off the plane that comes back later). Off (``sigma = 0``, no net) by default.

This is a memory in the exact sense of the paper's non-Markovian closure (the plane's
future depends on its past through ``s``), with the structure of a mobile-immobile
(dual-domain) transport model and of a two-zone room model: positive, mass-conserving
(plane + reservoir + what left the room change by exactly what the source put into the
plane and the layer), and bounded whatever is learned.

Start: ``mu`` starts at ``return_init_per_s`` (1e-4 /s by default: a return time of
hours), so an untrained reservoir returns next to nothing and the model starts as the
physics. The logits are multiplied by ``logit_scale`` inside the sigmoid: a closure
network trains at 1e-3 while these are O(1) physical logits like the physics' own, which
train at 2e-2, hence 20 by default; 1 where the reservoir trains with the physics (the
``layered`` variant).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp

from plumecast.physics import operators as ops_

__all__ = ["Reservoir", "LOGIT_SCALE", "LAYERED_SETTINGS", "make_reservoir", "reservoir_option", "static_settings"]

LOGIT_SCALE = 20.0

# The settings of the ``layered`` variant's reservoir (trained with the physics): spreading
# on, below the positive bound of 4 substeps of 0.1 s on 0.5 m cells (0.5625 m^2/s), which
# mixes a 25 m room in about 10 minutes at the top; logits at the physics' scale. A closure
# started from a layered run names its layer with ``reservoir: "layered"`` (these settings
# plus that run's options; train.py writes them out).
LAYERED_SETTINGS = {"spread_max_m2_s": 0.5, "spread_init_m2_s": 0.05, "logit_scale": 1.0}

DRIFT_FORMS = ("free", "solenoidal")


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


class Reservoir(eqx.Module):
    """Per-cell return rate, capture share and face spreading / drift of the off-plane reservoir (see the module docstring)."""

    theta_return: jax.Array  # (ny, nx)
    theta_capture: jax.Array  # (ny, nx)
    # None when the part is off, so a reservoir without it has no such leaves.
    theta_spread_x: jax.Array | None  # (ny, nx - 1)
    theta_spread_y: jax.Array | None  # (ny - 1, nx)
    theta_vent: jax.Array | None  # (ny, nx)
    theta_drift_x: jax.Array | None  # (ny, nx - 1), "free" drift
    theta_drift_y: jax.Array | None  # (ny - 1, nx)
    theta_stream: jax.Array | None  # (ny + 1, nx + 1), on cell corners, "solenoidal" drift
    source_share_net: eqx.nn.MLP | None
    return_max_per_s: float = eqx.field(static=True)
    vent_max_per_s: float = eqx.field(static=True)
    spread_max_m2_s: float = eqx.field(static=True)
    advect_max_m_s: float = eqx.field(static=True)
    drift_form: str = eqx.field(static=True)
    source_share_max: float = eqx.field(static=True)
    logit_scale: float = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    dx: float = eqx.field(static=True)
    dy: float = eqx.field(static=True)
    substeps: int = eqx.field(static=True)

    def __init__(self, shape, *, dt: float, dtype, dx: float = 1.0, dy: float = 1.0, substeps: int = 1,
                 stability_limit: float = 0.9,
                 return_max_per_s: float = 0.05, return_init_per_s: float = 1e-4, capture_init: float = 0.5,
                 spread_max_m2_s: float = 0.0, spread_init_m2_s: float = 0.0, vent_max_per_s: float = 0.0,
                 vent_init_per_s: float = 0.0, advect_max_m_s: float = 0.0, drift_form: str = "free",
                 source_share_max: float = 0.0, source_share_init: float = 1e-3, logit_scale: float = LOGIT_SCALE):
        if not (return_max_per_s > 0 and 0 < return_init_per_s < return_max_per_s):
            raise ValueError(f"reservoir rates need 0 < return_init_per_s ({return_init_per_s}) < return_max_per_s "
                             f"({return_max_per_s})")
        if not 0 < capture_init < 1:
            raise ValueError(f"capture_init must lie in (0, 1), got {capture_init}")
        if not logit_scale > 0:
            raise ValueError(f"logit_scale must be positive, got {logit_scale}")
        if not (dx > 0 and dy > 0 and dt > 0 and substeps >= 1):
            raise ValueError(f"bad reservoir spacing/step dx={dx}, dy={dy}, dt={dt}, substeps={substeps}")
        if not (math.isfinite(source_share_max) and source_share_max >= 0):
            raise ValueError(f"source_share_max must be finite and >= 0, got {source_share_max}")
        if source_share_max > 0 and not 0 < source_share_init < source_share_max:
            raise ValueError(f"source_share_init must lie in (0, {source_share_max}), got {source_share_init}")
        if drift_form not in DRIFT_FORMS:
            raise ValueError(f"drift_form must be one of {', '.join(DRIFT_FORMS)}, got {drift_form!r}")
        if not (math.isfinite(advect_max_m_s) and advect_max_m_s >= 0):
            raise ValueError(f"advect_max_m_s must be finite and >= 0, got {advect_max_m_s}")
        # One explicit substep is positive when dt_sub * (sum of outgoing |u| / h + sum of
        # D / h^2) <= 1 over a cell's four faces (operators.outflow_rates); kept below the
        # physics' own stability limit, as its learned D is.
        dt_sub = dt / substeps
        advect_share = dt_sub * advect_max_m_s * (2.0 / dx + 2.0 / dy)
        bound = (stability_limit - advect_share) / (dt_sub * (2.0 / dx**2 + 2.0 / dy**2))
        if not (advect_share <= stability_limit and 0 <= spread_max_m2_s <= bound):
            raise ValueError(f"spread_max_m2_s must lie in [0, {max(bound, 0.0):.4g}] with advect_max_m_s = "
                             f"{advect_max_m_s:g} (the positive bound of {substeps} explicit substeps of {dt_sub:g} s "
                             f"on {dx:g} x {dy:g} m cells), got {spread_max_m2_s}")
        if spread_max_m2_s > 0 and not 0 < spread_init_m2_s < spread_max_m2_s:
            raise ValueError(f"spread_init_m2_s must lie in (0, {spread_max_m2_s}), got {spread_init_m2_s}")
        if not (math.isfinite(vent_max_per_s) and vent_max_per_s >= 0):
            raise ValueError(f"vent_max_per_s must be finite and >= 0, got {vent_max_per_s}")
        if vent_max_per_s > 0 and not 0 < vent_init_per_s < vent_max_per_s:
            raise ValueError(f"vent_init_per_s must lie in (0, {vent_max_per_s}), got {vent_init_per_s}")
        ny, nx = shape
        full = lambda shp, value: jnp.full(shp, _logit(value) / logit_scale, dtype)  # noqa: E731
        self.theta_return = full(shape, return_init_per_s / return_max_per_s)
        self.theta_capture = full(shape, capture_init)
        spread_on, vent_on = spread_max_m2_s > 0, vent_max_per_s > 0
        self.theta_spread_x = full((ny, nx - 1), spread_init_m2_s / spread_max_m2_s) if spread_on else None
        self.theta_spread_y = full((ny - 1, nx), spread_init_m2_s / spread_max_m2_s) if spread_on else None
        self.theta_vent = full(shape, vent_init_per_s / vent_max_per_s) if vent_on else None
        # The drift starts at zero (tanh(0)): the layer starts as a diffusing one.
        free, solenoidal = advect_max_m_s > 0 and drift_form == "free", advect_max_m_s > 0 and drift_form == "solenoidal"
        self.theta_drift_x = jnp.zeros((ny, nx - 1), dtype) if free else None
        self.theta_drift_y = jnp.zeros((ny - 1, nx), dtype) if free else None
        self.theta_stream = jnp.zeros((ny + 1, nx + 1), dtype) if solenoidal else None
        self.source_share_net = None
        if source_share_max > 0:
            # Zero last weights: every source starts at the initial share.
            net = eqx.nn.MLP(3, 1, 16, 1, activation=jnp.tanh, key=jax.random.PRNGKey(1), dtype=dtype)
            bias = jnp.full((1,), _logit(source_share_init / source_share_max) / logit_scale, dtype)
            self.source_share_net = eqx.tree_at(lambda n: (n.layers[-1].weight, n.layers[-1].bias), net,
                                                (jnp.zeros_like(net.layers[-1].weight), bias))
        self.return_max_per_s = float(return_max_per_s)
        self.vent_max_per_s = float(vent_max_per_s)
        self.spread_max_m2_s = float(spread_max_m2_s)
        self.advect_max_m_s = float(advect_max_m_s)
        self.drift_form = str(drift_form)
        self.source_share_max = float(source_share_max)
        self.logit_scale = float(logit_scale)
        self.dt, self.dx, self.dy, self.substeps = float(dt), float(dx), float(dy), int(substeps)

    def return_rate(self, fluid) -> jax.Array:
        """``mu`` per cell, 1/s (zero on solids)."""
        return self.return_max_per_s * jax.nn.sigmoid(self.logit_scale * self.theta_return) * fluid

    def vent_rate(self, fluid) -> jax.Array:
        """``nu`` per cell, 1/s: the layer's loss to exhausts off the plane (zero on solids, or when off)."""
        if self.theta_vent is None:
            return jnp.zeros_like(fluid)
        return self.vent_max_per_s * jax.nn.sigmoid(self.logit_scale * self.theta_vent) * fluid

    def capture(self) -> jax.Array:
        """``kappa`` per cell: the share of the exchanged mass that enters the reservoir."""
        return jax.nn.sigmoid(self.logit_scale * self.theta_capture)

    def spread_diffusivities(self, fluid) -> tuple[jax.Array, jax.Array]:
        """``(D_s x-faces, D_s y-faces)`` in m^2/s, zero on faces touching solids (zero when spreading is off)."""
        mx, my = ops_.face_masks(fluid)
        if self.theta_spread_x is None:
            return jnp.zeros_like(mx), jnp.zeros_like(my)
        s = self.spread_max_m2_s
        return (s * jax.nn.sigmoid(self.logit_scale * self.theta_spread_x) * mx,
                s * jax.nn.sigmoid(self.logit_scale * self.theta_spread_y) * my)

    def advect_velocities(self, fluid) -> tuple[jax.Array, jax.Array]:
        """``(u_s x-faces, v_s y-faces)`` in m/s, signed, zero on faces touching solids (zero when advection is off).

        Free: ``advect_max_m_s tanh(theta)`` per face. Solenoidal: ``u = d psi / dy``,
        ``v = -d psi / dx`` across each face's two end corners, with ``|psi| <=
        advect_max_m_s min(dx, dy) / 2`` so that ``|u_s| <= advect_max_m_s``, and ``psi = 0``
        on corners touching a wall or the outer boundary.
        """
        mx, my = ops_.face_masks(fluid)
        a = self.advect_max_m_s
        if self.theta_drift_x is not None:
            return (a * jnp.tanh(self.logit_scale * self.theta_drift_x) * mx,
                    a * jnp.tanh(self.logit_scale * self.theta_drift_y) * my)
        if self.theta_stream is None:
            return jnp.zeros_like(mx), jnp.zeros_like(my)
        f = jnp.pad(fluid, 1)
        open_corner = f[:-1, :-1] * f[:-1, 1:] * f[1:, :-1] * f[1:, 1:]
        psi = 0.5 * a * min(self.dx, self.dy) * jnp.tanh(self.logit_scale * self.theta_stream)
        psi = psi * open_corner
        return (psi[1:, 1:-1] - psi[:-1, 1:-1]) / self.dy * mx, -(psi[1:-1, 1:] - psi[1:-1, :-1]) / self.dx * my

    def source_share(self, source_position: jax.Array) -> jax.Array:
        """``sigma``: the share of a step's source increment that also enters the layer (scalar, 0 when off)."""
        if self.source_share_net is None:
            return jnp.zeros((), self.theta_return.dtype)
        o = self.source_share_net(source_position.astype(self.theta_return.dtype))[0]
        return self.source_share_max * jax.nn.sigmoid(self.logit_scale * o)

    def init_state(self) -> jax.Array:
        return jnp.zeros_like(self.theta_return)

    def __call__(self, s: jax.Array, ctx) -> tuple[jax.Array, jax.Array]:
        """``(back, s_next)``: the mass returned to the plane this step and the reservoir after it.

        ``ctx`` is the step's :class:`~plumecast.physics.model.ClosureContext` (what the
        exchange took, the source increment and position, the mask).
        """
        fluid = ctx.fluid
        back = s * -jnp.expm1(-self.dt * self.return_rate(fluid))
        gained = self.capture() * ctx.exchanged
        if self.source_share_net is not None:
            gained = gained + self.source_share(ctx.source_position) * ctx.source
        s_next = (s - back + gained) * fluid
        if self.vent_max_per_s > 0:
            s_next = s_next * jnp.exp(-self.dt * self.vent_rate(fluid))
        if self.spread_max_m2_s > 0 or self.advect_max_m_s > 0:
            Dx, Dy = self.spread_diffusivities(fluid)
            ux, vy = self.advect_velocities(fluid)
            stencil = ops_.substep_stencil(ux, vy, Dx, Dy, fluid, self.dx, self.dy, self.dt / self.substeps)
            s_next = jax.lax.fori_loop(0, self.substeps, lambda _, a: ops_.apply_stencil(a, stencil, 0.0), s_next)
        return back, s_next


def make_reservoir(model, settings: dict, *, variant: str) -> Reservoir:
    """The reservoir of a variant on ``model``'s grid from its JSON settings (clear errors for bad ones)."""
    c = model.config
    if not c.exchange_max_per_s > 0:
        raise ValueError(f"variant {variant!r}: the reservoir holds what the exchange term takes out of the plane; "
                         "this model has the exchange off (exchange_max_per_s = 0)")
    try:
        return Reservoir(c.shape, dt=c.dt, dtype=c.jdtype, dx=c.dx, dy=c.dy, substeps=c.substeps,
                         stability_limit=c.stability_limit, **settings)
    except TypeError as e:
        raise ValueError(f"variant {variant!r}: bad reservoir settings {settings}: {e}") from None


def reservoir_option(model, value, *, variant: str) -> Reservoir | None:
    """A closure's ``reservoir`` option: false (none), true (defaults), ``"layered"`` or an object of settings."""
    if value is False:
        return None
    if value is True:
        return make_reservoir(model, {}, variant=variant)
    if value == "layered":
        return make_reservoir(model, dict(LAYERED_SETTINGS), variant=variant)
    if isinstance(value, dict):
        return make_reservoir(model, value, variant=variant)
    raise ValueError(f"variant {variant!r}: reservoir must be true, false, \"layered\" or an object of Reservoir "
                     f"settings, got {value!r}")


def static_settings(reservoir: Reservoir) -> dict:
    """The fixed (non-learned) settings of a reservoir, to check that two of them are the same kind."""
    names = ("return_max_per_s", "spread_max_m2_s", "advect_max_m_s", "drift_form", "source_share_max", "vent_max_per_s",
             "logit_scale", "dt", "dx", "dy", "substeps")
    return {n: getattr(reservoir, n) for n in names}
