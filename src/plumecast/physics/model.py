"""The coarse plane model: 2D finite-volume physics with learned orthotropic diffusivity.

``CoarseModel`` is an ``eqx.Module`` over **one unbatched state** ``q (ny, nx)``:

* static grid configuration (:class:`GridConfig`: sizes, spacing, step, substeps and the
  reference scales) as a static field, saved as JSON with every checkpoint;
* fixed arrays from the dataset: fluid mask, plane velocity ``u, v, w`` and ``nu_t``
  (kept out of training by :func:`trainable_spec`);
* learnable arrays: the face diffusivities, stored as unconstrained logits ``theta_x
  (ny, nx-1)``, ``theta_y (ny-1, nx)`` with ``D = d_max * sigmoid(theta) * face_mask``.
  So ``D`` is positive by construction, exactly zero on faces touching solids, and below
  ``d_max``, the largest diffusivity for which the explicit substep stays positive with the
  dataset's velocity (computed once when the model is built; a flow too fast for the
  substeps raises :class:`~plumecast.physics.operators.StabilityError`). Learned ``D``
  therefore can never make a rollout unstable. They start at ``nu_t / Sc_t`` (``Sc_t`` =
  0.7 unless the dataset says otherwise) averaged to the faces;
* the learned exchange rate with the rest of the room, ``lambda = exchange_max *
  sigmoid(theta_exchange) * fluid`` (1/s, per cell), applied after the substeps of each
  step as ``q <- q exp(-lambda dt)``. A plane is not a closed 2D world: air from the
  ceiling diffusers dilutes it and the exhausts draw from it, so mass leaves the plane at
  a rate that depends on where in the room it is. The exact exponential keeps every step
  positive and bounded whatever is learned; ``exchange_max_per_s = 0`` (the default of
  :class:`GridConfig`) switches the term off and the model conserves mass in a closed room;
* the learned source-rate correction ``source_net``: a small MLP of the source position
  (x, y normalised to the room, height above the plane in layer heights) whose output
  ``o`` gives a bounded scale ``exp(log(S) tanh(o))`` in ``[1/S, S]`` (``S`` =
  ``source_scale_max``, default 10) on the emission rate of the dataset's source track.
  The last layer starts at zero, so the scale starts at exactly 1. It stands in for the
  paper's small rate network: a 2D plane receives only part of what a source above or
  below it emits, and how much depends on where the source is. It is constant in time
  for a static source and follows a moving one;
* optionally (``observation_log_max > 0``) the learned **observation factor** ``g(x, y)``:
  the state is the concentration of the air around the plane (the layer of thickness
  ``layer_height_m`` that the physics moves), and the plane itself sees ``g`` times it,
  ``log g = b - mean_fluid(b)`` with ``b = observation_log_max * tanh(theta)``, ``theta``
  learned on control points every ``observation_spacing_cells`` cells and interpolated
  bilinearly to the cells (a profile set by the ventilation varies over metres; learned
  per cell it dents the few cells next to each training source instead, measured).
  Under a ceiling diffuser's jet the plane sits in cleaner air than the layer around it,
  in a stagnant corner in richer air: a vertical profile, fixed by the ventilation, that a
  2D state cannot carry. ``g`` only maps the state to what the plane sees (``encode`` /
  ``decode``, ``observe``): the transport, the mass budget and its tests act on the state
  unchanged. Its geometric mean over the fluid is 1, so it shapes and never scales (the
  amount is the source scale's); it starts at exactly 1 (``theta = 0``). Measured on
  paper-room (docs/results.md): the final-time forecasts of a trained layered model are
  off by the same spatial pattern on the train, test and moving-source splits.

Nondimensionalisation: the state is ``q = C / c_ref`` (``c_ref`` a concentration scale of
the training data, see :func:`concentration_scale`), so networks and losses see O(1)
values whatever the mass unit. Space and time stay in metres and seconds in the physics
(the diffusivity is learned through O(1) logits, and :class:`ClosureContext` gives the
closure velocities over ``u_ref`` and diffusivities over ``d_ref``). ``encode`` and
``decode`` convert concentrations.

The plane is treated as a layer of thickness ``layer_height_m`` (default: the room height
when the dataset's scenario config gives it, else 3 m): an emission of ``r`` mass/s raises
the concentration of the cells around the source at ``r / (dx dy layer_height)``.

Flow at several heights (optional, ``GridConfig.levels_m``): when the dataset carries the
3D flow at a column of levels (``u_level`` ... ``nu_t_level``, one of them at the plane),
the model holds it as the fixed array ``level_flow (4, L, ny, nx)`` (u, v, w in m/s,
nu_t in m^2/s) for the column physics (:mod:`plumecast.closure.column`), which the
closures see through :class:`ClosureContext`. The plane physics itself does not use it.

Transport by the 3D flow's fluxes (``GridConfig.flow = "fluxes"``): when the dataset also
carries the 3D solver's volume fluxes summed onto the column's cells
(``flux_x_level`` ... ``volume_level``, :mod:`plumecast.reference.coarse_flux`), the
model holds them as ``level_flux (5, L, ny, nx)`` (flux_x, flux_y, flux_z, outflow in
m^3/s, fluid volume in m^3) and the plane's face velocities are its level's fluxes over
the face areas (``dy h``, ``dx h``; ``h`` the level's thickness,
``GridConfig.level_thickness_m``) instead of the sampled ``u, v`` averaged to the faces.
Sampled velocities are not divergence-free on the coarse grid; the summed fluxes are, so
the column built on them moves mass as the 3D flow does, out through the exhausts
included (measured on OpenFOAM truth: docs/results.md).

float32 by default; ``dtype="float64"`` for verification.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from plumecast.numerics import enable_x64
from plumecast.physics import operators as ops_
from plumecast.physics.operators import StabilityError
# FLUX_KEYS: the order of CoarseModel.level_flux, as the datasets name them (without "_level").
from plumecast.reference.coarse_flux import FLUX_KEYS, volume_thicknesses_m

# The learned exchange rate starts here everywhere (about one air change per 17 minutes).
EXCHANGE_INIT_PER_S = 1e-3
SOURCE_NET_WIDTH = 16
FLOW_SOURCES = ("sampled", "fluxes")

__all__ = [
    "GridConfig",
    "CoarseModel",
    "Forcing",
    "PhysicsOperators",
    "ClosureContext",
    "build_model",
    "model_from_dataset",
    "concentration_scale",
    "trainable_spec",
    "level_face_velocities",
    "FLUX_KEYS",
    "StabilityError",
]


@dataclass(frozen=True)
class GridConfig:
    """Static configuration of a coarse model (JSON-serialisable, hashable)."""

    ny: int
    nx: int
    dx: float
    dy: float
    x0: float = 0.0  # x of the centre of cell (., 0), m
    y0: float = 0.0
    dt: float = 0.4  # model step, s
    substeps: int = 4  # explicit physics substeps per step
    c_ref: float = 1.0  # concentration scale, mass/m^3
    u_ref: float = 1.0  # velocity scale, m/s
    d_ref: float = 1.0  # diffusivity scale, m^2/s
    d_max: float = 1.0  # upper bound of learned D (stability limit), m^2/s
    layer_height_m: float = 3.0
    plane_height_m: float = 1.5
    schmidt: float = 0.7
    source_scale_max: float = 10.0
    stability_limit: float = 0.9
    exchange_max_per_s: float = 0.0  # bound of the learned plane-room exchange rate; 0 = off
    observation_log_max: float = 0.0  # bound of |log g| of the learned observation factor; 0 = off
    observation_spacing_cells: int = 1  # cells between the control points of the observation factor
    levels_m: tuple[float, ...] = ()  # heights of the flow levels the model holds (one is the plane), m; () = none
    advection: str = "upwind"  # "upwind" (first order) or "tvd" (van Leer flux-limited), operators.ADVECTION_SCHEMES
    # Face velocities from the sampled flow ("sampled") or the 3D flow's summed fluxes ("fluxes").
    flow: str = "sampled"
    level_thickness_m: tuple[float, ...] = ()  # with flow "fluxes": each level's layer thickness, m
    dtype: str = "float32"

    def __post_init__(self):
        if self.ny < 2 or self.nx < 2:
            raise ValueError(f"grid must be at least 2 x 2 cells, got {self.ny} x {self.nx}")
        if not (self.dx > 0 and self.dy > 0 and self.dt > 0 and self.substeps >= 1):
            raise ValueError(f"bad spacing/step in {self}")
        ops_.advection_stability_factor(self.advection)  # names an unknown scheme
        if self.flow not in FLOW_SOURCES:
            raise ValueError(f"flow must be one of {FLOW_SOURCES}, got {self.flow!r}")
        object.__setattr__(self, "level_thickness_m", tuple(float(h) for h in self.level_thickness_m))
        if self.flow == "fluxes" and (len(self.level_thickness_m) != len(self.levels_m) or not self.levels_m
                                      or min(self.level_thickness_m) <= 0):
            raise ValueError(f"flow 'fluxes' needs a positive thickness for each of the {len(self.levels_m)} levels, "
                             f"got {list(self.level_thickness_m)}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype!r}")
        if not self.source_scale_max >= 1:
            raise ValueError("source_scale_max must be >= 1")
        if not (math.isfinite(self.exchange_max_per_s) and self.exchange_max_per_s >= 0):
            raise ValueError(f"exchange_max_per_s must be finite and >= 0, got {self.exchange_max_per_s}")
        if not (math.isfinite(self.observation_log_max) and self.observation_log_max >= 0):
            raise ValueError(f"observation_log_max must be finite and >= 0, got {self.observation_log_max}")
        if not (isinstance(self.observation_spacing_cells, int) and self.observation_spacing_cells >= 1):
            raise ValueError(f"observation_spacing_cells must be an int >= 1, got {self.observation_spacing_cells!r}")
        object.__setattr__(self, "levels_m", tuple(float(z) for z in self.levels_m))
        z = self.levels_m
        if z and (any(b <= a for a, b in zip(z, z[1:])) or z[0] <= 0 or z[-1] >= self.layer_height_m
                  or min(abs(h - self.plane_height_m) for h in z) > 1e-3):
            raise ValueError(f"the flow levels {[round(h, 4) for h in z]} m must increase strictly inside (0, "
                             f"layer_height_m = {self.layer_height_m:g} m), the room, with one at the plane "
                             f"({self.plane_height_m:g} m)")

    @property
    def shape(self) -> tuple[int, int]:
        return (self.ny, self.nx)

    @property
    def observation_shape(self) -> tuple[int, int]:
        """Control points of the observation factor: every ``observation_spacing_cells`` cells, both ends included."""
        k = self.observation_spacing_cells
        return (-(-(self.ny - 1) // k) + 1, -(-(self.nx - 1) // k) + 1)

    @property
    def plane_level(self) -> int:
        """Index of the level at the plane in ``levels_m`` (-1 without levels)."""
        return nearest_level(self.levels_m, self.plane_height_m) if self.levels_m else -1

    @property
    def sub_dt(self) -> float:
        return self.dt / self.substeps

    @property
    def jdtype(self):
        return jnp.dtype(self.dtype)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "GridConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown grid config keys {unknown}")
        return cls(**d)


class Forcing(eqx.Module):
    """What drives one model step: time at the step's start and the source track.

    Scalars for one step; in a rollout each field has a leading step axis. ``x, y, z`` in
    metres and ``rate`` in mass/s, taken at the step's midpoint.

    Several sources at once: ``x, y, z, rate`` carry a trailing source axis (``(S,)`` for
    one step, ``(n_steps, S)`` in a rollout) while ``t`` stays one time per step. The
    source term is then the sum of the sources' deposits, each scaled by the learned
    source scale at its own position (:meth:`CoarseModel.source_terms`); a forcing
    without the source axis is the one-source case, computed exactly as before.
    """

    t: jax.Array
    x: jax.Array
    y: jax.Array
    z: jax.Array
    rate: jax.Array


class PhysicsOperators(eqx.Module):
    """Arrays fixed over a rollout, computed once from the model (outside the time loop)."""

    fluid: jax.Array
    uf: jax.Array  # face velocities, m/s
    vf: jax.Array
    Dx: jax.Array  # face diffusivities, m^2/s
    Dy: jax.Array
    stencil: tuple  # five-point coefficients of one substep (operators.substep_stencil)
    retained: jax.Array  # exp(-lambda dt): share of each cell's field left after the exchange of a step
    exchanged_per_retained: jax.Array  # exp(lambda dt) - 1: mass the exchange took per unit left


class ClosureContext(eqx.Module):
    """What a closure sees in one step, all O(1) and on cell centres ``(ny, nx)``.

    ``q`` is the normalised field at the start of the step, ``q_physics`` after the physics
    substeps (equal to ``q`` for a closure that does not use physics); ``u, v, w`` over
    ``u_ref``; ``dx_c``, ``dy_c`` the learned diffusivities averaged to cells over
    ``d_ref``; ``source`` the normalised source increment of one step (``dt * s / 1``);
    ``fluid`` the mask; ``t`` the time at the step's start, s; ``exchanged`` the normalised
    mass per cell that the exchange term took out of the plane in this step (zero without
    the exchange term; meaningless for a closure that does not use the physics);
    ``source_position`` the source's position ``(3,)`` as the source-rate net reads it
    (:meth:`CoarseModel.source_position`).

    Several sources (a forcing with a source axis): ``source`` is the sum of the sources'
    increments (what a network reads), ``source_position`` is ``(S, 3)`` and
    ``source_parts`` ``(S, ny, nx)`` holds each source's own increment, so that a closure
    with a per-source response (the off-plane layer's source share) applies it per source
    and sums. ``source_parts`` is None for one source.
    """

    q: jax.Array
    q_physics: jax.Array
    u: jax.Array
    v: jax.Array
    w: jax.Array
    dx_c: jax.Array
    dy_c: jax.Array
    source: jax.Array
    fluid: jax.Array
    t: jax.Array
    exchanged: jax.Array
    source_position: jax.Array
    source_parts: jax.Array | None = None
    level_flow: jax.Array | None = None  # (4, L, ny, nx): u, v, w (m/s), nu_t (m^2/s) at GridConfig.levels_m
    level_flux: jax.Array | None = None  # (5, L, ny, nx) with flow "fluxes": CoarseModel.level_flux


class CoarseModel(eqx.Module):
    """The coarse plane physics (see the module docstring). Build with :func:`build_model`."""

    config: GridConfig = eqx.field(static=True)
    fluid: jax.Array
    u: jax.Array
    v: jax.Array
    w: jax.Array
    nu_t: jax.Array
    theta_x: jax.Array
    theta_y: jax.Array
    theta_exchange: jax.Array
    source_net: eqx.nn.MLP
    theta_observation: jax.Array | None = None  # config.observation_shape; None when the factor is off
    level_flow: jax.Array | None = None  # (4, L, ny, nx) fixed; None without config.levels_m
    # (5, L, ny, nx) fixed, with flow "fluxes": flux_x, flux_y, flux_z, outflow (m^3/s), volume (m^3)
    level_flux: jax.Array | None = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def skeleton(cls, config: GridConfig) -> "CoarseModel":
        """A model with the right structure and zero arrays, to deserialise leaves into."""
        if config.dtype == "float64":
            enable_x64()
        dt = config.jdtype
        z = jnp.zeros(config.shape, dt)
        return cls(
            config=config,
            fluid=z,
            u=z,
            v=z,
            w=z,
            nu_t=z,
            theta_x=jnp.zeros((config.ny, config.nx - 1), dt),
            theta_y=jnp.zeros((config.ny - 1, config.nx), dt),
            theta_exchange=z,
            source_net=_source_net(config, jax.random.PRNGKey(0)),
            theta_observation=jnp.zeros(config.observation_shape, dt) if config.observation_log_max > 0 else None,
            level_flow=jnp.zeros((4, len(config.levels_m)) + config.shape, dt) if config.levels_m else None,
            level_flux=(jnp.zeros((len(FLUX_KEYS), len(config.levels_m)) + config.shape, dt)
                        if config.flow == "fluxes" else None),
        )

    # ------------------------------------------------------------------ physics
    def _check(self, q):
        if q.shape != self.config.shape:
            raise ValueError(
                f"expected one unbatched field of shape {self.config.shape}, got {q.shape}; "
                "use jax.vmap at the call site for batches"
            )

    def diffusivities(self):
        """Face diffusivities ``(Dx (ny, nx-1), Dy (ny-1, nx))`` in m^2/s."""
        mx, my = ops_.face_masks(self.fluid)
        d = self.config.d_max
        return d * jax.nn.sigmoid(self.theta_x) * mx, d * jax.nn.sigmoid(self.theta_y) * my

    def exchange_rate(self):
        """Learned plane-room exchange rate ``(ny, nx)`` in 1/s (zero on solids, or when off)."""
        fluid = jax.lax.stop_gradient(self.fluid)
        return self.config.exchange_max_per_s * jax.nn.sigmoid(self.theta_exchange) * fluid

    def observation_factor(self) -> jax.Array:
        """``g (ny, nx)``: what the plane sees per unit of the state (ones when off); geometric mean 1 on the fluid."""
        fluid = jax.lax.stop_gradient(self.fluid)
        if self.theta_observation is None:
            return jnp.ones_like(fluid)
        c = self.config
        wy, wx = (jnp.asarray(ops_.control_point_weights(n, c.observation_spacing_cells), fluid.dtype) for n in (c.ny, c.nx))
        b = c.observation_log_max * (wy @ jnp.tanh(self.theta_observation) @ wx.T) * fluid
        mean = jnp.sum(b) / jnp.maximum(jnp.sum(fluid), 1.0)
        return jnp.exp((b - mean) * fluid)

    def observe(self, q):
        """The normalised plane field the state ``q`` (one field or a stack of them) shows: ``g q``."""
        if self.theta_observation is None:
            return q
        return q * self.observation_factor()

    def face_velocities(self):
        """The plane's face velocities ``(uf (ny, nx-1), vf (ny-1, nx))`` in m/s (see ``GridConfig.flow``)."""
        fluid = jax.lax.stop_gradient(self.fluid)
        c = self.config
        if c.flow == "fluxes":
            p = c.plane_level
            return level_face_velocities(jax.lax.stop_gradient(self.level_flux[:, p]), c.level_thickness_m[p],
                                         c.dx, c.dy, fluid)
        return ops_.face_velocities(jax.lax.stop_gradient(self.u), jax.lax.stop_gradient(self.v), fluid)

    def prepare(self) -> PhysicsOperators:
        """Per-rollout operator arrays (face velocities, diffusivities, exchange), computed once outside the time loop."""
        fluid = jax.lax.stop_gradient(self.fluid)
        uf, vf = self.face_velocities()
        Dx, Dy = self.diffusivities()
        c = self.config
        stencil = ops_.substep_stencil(uf, vf, Dx, Dy, fluid, c.dx, c.dy, c.sub_dt)
        rate_dt = c.dt * self.exchange_rate()
        return PhysicsOperators(fluid=fluid, uf=uf, vf=vf, Dx=Dx, Dy=Dy, stencil=stencil, retained=jnp.exp(-rate_dt),
                                exchanged_per_retained=jnp.expm1(rate_dt))

    def source_position(self, x, y, z) -> jax.Array:
        """A source position in metres as O(1) features ``(3,)``: x and y over the room in
        [-1, 1], and the height above the plane over ``layer_height_m``."""
        c = self.config
        lx, ly = c.nx * c.dx, c.ny * c.dy
        return jnp.stack([
            2.0 * (x - c.x0 + 0.5 * c.dx) / lx - 1.0,
            2.0 * (y - c.y0 + 0.5 * c.dy) / ly - 1.0,
            (z - c.plane_height_m) / c.layer_height_m,
        ]).astype(c.jdtype)

    def source_scale(self, x, y, z):
        """The learned, bounded emission-rate correction at a source position (scalar)."""
        c = self.config
        o = self.source_net(self.source_position(x, y, z))[0]
        return jnp.exp(math.log(c.source_scale_max) * jnp.tanh(o))

    def source_term(self, forcing: Forcing, ops: PhysicsOperators | None = None):
        """Source tendency ``(ny, nx)`` in normalised units per second (summed over sources, when several)."""
        if jnp.ndim(forcing.x) > 0:
            return jnp.sum(self.source_terms(forcing, ops), axis=0)
        c = self.config
        fluid = ops.fluid if ops is not None else jax.lax.stop_gradient(self.fluid)
        x, y, z, rate = (jnp.asarray(a).astype(c.jdtype) for a in (forcing.x, forcing.y, forcing.z, forcing.rate))
        w = ops_.deposit_weights(x, y, fluid, c.x0, c.y0, c.dx, c.dy)
        rate = rate * self.source_scale(x, y, z)
        return (rate / (c.dx * c.dy * c.layer_height_m * c.c_ref)) * w

    def source_terms(self, forcing: Forcing, ops: PhysicsOperators | None = None):
        """Per-source tendencies ``(S, ny, nx)`` of a forcing with a source axis (``x, y, z, rate`` of shape ``(S,)``).

        Each source is deposited and scaled by the learned source scale at its own
        position, exactly as one source is by :meth:`source_term`.
        """
        c = self.config
        fluid = ops.fluid if ops is not None else jax.lax.stop_gradient(self.fluid)
        x, y, z, rate = (jnp.asarray(a).astype(c.jdtype) for a in (forcing.x, forcing.y, forcing.z, forcing.rate))
        if x.ndim != 1:
            raise ValueError(f"source_terms takes one step's forcing with a source axis (S,), got x of shape {x.shape}")

        def one(x, y, z, rate):
            w = ops_.deposit_weights(x, y, fluid, c.x0, c.y0, c.dx, c.dy)
            rate = rate * self.source_scale(x, y, z)
            return (rate / (c.dx * c.dy * c.layer_height_m * c.c_ref)) * w

        return jax.vmap(one)(x, y, z, rate)

    def physics(self, q, source, ops: PhysicsOperators | None = None):
        """The physics substeps of one model step (constant source within the step)."""
        self._check(q)
        ops = self.prepare() if ops is None else ops
        c = self.config
        increment = (c.sub_dt * source) * ops.fluid
        q = ops_.transport_substeps(q, ops.stencil, increment, c.substeps, c.advection, ops.uf, ops.vf, ops.fluid,
                                    c.dx, c.dy, c.sub_dt)
        if c.exchange_max_per_s > 0:
            q = q * ops.retained
        return q

    def __call__(self, q, forcing: Forcing, ops: PhysicsOperators | None = None):
        """One physics-only model step: normalised field in, normalised field out."""
        ops = self.prepare() if ops is None else ops
        return self.physics(q, self.source_term(forcing, ops), ops)

    def closure_context(self, q, q_physics, source, ops: PhysicsOperators, forcing: Forcing,
                        source_parts=None) -> ClosureContext:
        """The closure's view of one step; ``source_parts`` ``(S, ny, nx)``: per-source tendencies (several sources)."""
        c = self.config
        if jnp.ndim(forcing.x) > 0:
            position = jax.vmap(self.source_position)(forcing.x, forcing.y, forcing.z)
            if source_parts is None:
                source_parts = self.source_terms(forcing, ops)
            parts = source_parts * c.dt
        else:
            position = self.source_position(forcing.x, forcing.y, forcing.z)
            parts = None
        dxc, dyc = ops_.cells_from_faces(ops.Dx, ops.Dy)
        sg = jax.lax.stop_gradient
        return ClosureContext(
            q=q,
            q_physics=q_physics,
            u=sg(self.u) / c.u_ref,
            v=sg(self.v) / c.u_ref,
            w=sg(self.w) / c.u_ref,
            dx_c=dxc / c.d_ref,
            dy_c=dyc / c.d_ref,
            source=source * c.dt,
            fluid=ops.fluid,
            t=forcing.t,
            # q_physics = q_substeps * retained, so what left is q_physics (1 / retained - 1),
            # zero with the exchange off (rate 0).
            exchanged=q_physics * ops.exchanged_per_retained,
            source_position=position,
            source_parts=parts,
            level_flow=None if self.level_flow is None else sg(self.level_flow),
            level_flux=None if self.level_flux is None else sg(self.level_flux),
        )

    # ------------------------------------------------------------------ units
    def encode(self, concentration):
        """Plane concentration (mass/m^3; one field or a stack) to the normalised state."""
        q = jnp.asarray(concentration) / self.config.c_ref
        if self.theta_observation is not None:
            q = q / self.observation_factor()
        return q.astype(self.config.jdtype)

    def decode(self, q):
        """Normalised state (one field or a stack) to the plane concentration it shows (mass/m^3)."""
        return self.observe(q) * self.config.c_ref


def nearest_level(levels_m, height_m: float) -> int:
    """Index of the level in ``levels_m`` nearest ``height_m`` (the plane's level)."""
    return min(range(len(levels_m)), key=lambda k: abs(levels_m[k] - height_m))


def level_face_velocities(flux, thickness_m: float, dx: float, dy: float, fluid):
    """Face velocities (m/s) of one level's summed fluxes ``flux (>= 2, ny, nx)`` (flux_x, flux_y first), masked by ``fluid``.

    The flux through a face over its area (``dy h`` for x-faces, ``dx h`` for y-faces);
    faces touching a cell outside ``fluid`` are closed.
    """
    mx, my = ops_.face_masks(fluid)
    return flux[0][:, :-1] / (dy * thickness_m) * mx, flux[1][:-1, :] / (dx * thickness_m) * my


def _source_net(config: GridConfig, key) -> eqx.nn.MLP:
    net = eqx.nn.MLP(3, 1, SOURCE_NET_WIDTH, 1, activation=jnp.tanh, key=key, dtype=config.jdtype)
    last = net.layers[-1]
    return eqx.tree_at(lambda n: (n.layers[-1].weight, n.layers[-1].bias), net, (jnp.zeros_like(last.weight), jnp.zeros_like(last.bias)))


def trainable_spec(model: CoarseModel):
    """Filter spec (pytree of bools) of the learnable leaves: D and exchange logits, source net."""
    spec = jax.tree.map(lambda _: False, model)
    exchange = model.config.exchange_max_per_s > 0
    spec = eqx.tree_at(
        lambda m: (m.theta_x, m.theta_y, m.theta_exchange, m.source_net),
        spec,
        replace=(True, True, exchange, jax.tree.map(eqx.is_inexact_array, model.source_net)),
    )
    if model.theta_observation is not None:
        spec = eqx.tree_at(lambda m: m.theta_observation, spec, True)
    return spec


def build_model(
    *,
    fluid,
    u,
    v,
    nu_t,
    dx: float,
    dy: float,
    w=None,
    x0: float | None = None,
    y0: float | None = None,
    dt: float = 0.4,
    substeps: int = 4,
    c_ref: float = 1.0,
    layer_height_m: float = 3.0,
    plane_height_m: float = 1.5,
    schmidt: float = 0.7,
    source_scale_max: float = 10.0,
    stability_limit: float = 0.9,
    d_faces=None,
    exchange_max_per_s: float = 0.0,
    exchange_init_per_s: float = EXCHANGE_INIT_PER_S,
    observation_log_max: float = 0.0,
    observation_spacing_cells: int = 1,
    levels=None,
    advection: str = "upwind",
    flow: str = "sampled",
    dtype: str = "float32",
    key=None,
) -> CoarseModel:
    """Build a coarse model from plane arrays ``(ny, nx)`` (numpy or JAX, any float type).

    ``d_faces`` optionally gives the initial ``(Dx, Dy)`` in m^2/s instead of
    ``nu_t / schmidt`` at the faces. Raises :class:`StabilityError` when the flow is too
    fast for ``substeps`` explicit substeps, or the initial diffusivity is above the
    stable bound. ``exchange_max_per_s > 0`` turns on the learned exchange rate, starting
    at ``exchange_init_per_s`` everywhere (about one air change per 17 minutes).
    ``observation_log_max > 0`` turns on the learned observation factor, starting at 1.
    ``levels`` optionally gives the flow at several heights: a mapping of ``z_m (L,)``
    and ``u``, ``v``, ``w``, ``nu_t`` ``(L, ny, nx)``, one level at the plane, and
    optionally the summed fluxes ``flux_x`` ... ``volume`` (``FLUX_KEYS``), which
    ``flow="fluxes"`` needs (module docstring).
    ``advection="tvd"`` adds van Leer flux-limited corrections to the upwind fluxes
    (:func:`~plumecast.physics.operators.tvd_increment`); its positivity bound counts the
    advective fraction twice, so it may need more substeps.
    """
    adv_factor = ops_.advection_stability_factor(advection)
    if dtype == "float64":
        enable_x64()  # else JAX would hand out float32 arrays for the float64 asked for
    if exchange_max_per_s > 0 and not 0 < exchange_init_per_s < exchange_max_per_s:
        raise ValueError(f"exchange_init_per_s must lie in (0, {exchange_max_per_s}), got {exchange_init_per_s}")
    fluid = (np.asarray(fluid) > 0).astype(float)
    if fluid.ndim != 2:
        raise ValueError(f"fluid must be (ny, nx), got shape {fluid.shape}")
    shape = fluid.shape
    u, v, nu_t = (np.asarray(a, float) for a in (u, v, nu_t))
    w = np.zeros(shape) if w is None else np.asarray(w, float)
    for name, a in (("u", u), ("v", v), ("w", w), ("nu_t", nu_t)):
        if a.shape != shape:
            raise ValueError(f"{name} has shape {a.shape}, expected {shape} like the fluid mask")
        if not np.isfinite(a).all():
            raise ValueError(f"{name} holds non-finite values")
    u, v, w, nu_t = (a * fluid for a in (u, v, w, nu_t))
    levels_m, level_flow = (), None
    if levels is not None:
        levels_m = tuple(float(z) for z in np.asarray(levels["z_m"], float))
        level_flow = np.stack([np.asarray(levels[n], float) for n in ("u", "v", "w", "nu_t")])
        if level_flow.shape != (4, len(levels_m)) + shape or not np.isfinite(level_flow).all():
            raise ValueError(f"levels must hold finite (L, ny, nx) = ({len(levels_m)}, {shape[0]}, {shape[1]}) fields")
        level_flow = level_flow * fluid
        level_flow[3] = np.clip(level_flow[3], 0.0, None)
    level_flux, thickness = None, ()
    if flow == "fluxes":
        if levels is None or any(k not in levels for k in FLUX_KEYS):
            raise ValueError("flow 'fluxes' needs the 3D flow's summed fluxes (a dataset with flux_x_level ... "
                             "volume_level: regenerate it, or import it with the flow case's phi)")
        level_flux = np.stack([np.asarray(levels[k], float) for k in FLUX_KEYS])
        if level_flux.shape != (len(FLUX_KEYS), len(levels_m)) + shape or not np.isfinite(level_flux).all():
            raise ValueError(f"the summed fluxes must be finite (L, ny, nx) = ({len(levels_m)}, {shape[0]}, "
                             f"{shape[1]}) fields")
        thickness = tuple(float(h) for h in volume_thicknesses_m(level_flux[4], dx * dy))
        if min(thickness) <= 0:
            raise ValueError(f"a flow level holds no fluid volume (thicknesses {[round(h, 4) for h in thickness]} m)")
    ny, nx = shape
    sub = dt / substeps
    mx, my = (np.asarray(m) for m in ops_.face_masks(fluid))
    if flow == "fluxes":
        p = nearest_level(levels_m, plane_height_m)
        uf, vf = (np.asarray(a) for a in level_face_velocities(level_flux[:, p], thickness[p], dx, dy, fluid))
    else:
        uf, vf = (np.asarray(a) for a in ops_.face_velocities(u, v, fluid))
    zx, zy = np.zeros_like(mx), np.zeros_like(my)
    adv = np.asarray(ops_.outflow_rates(uf, vf, zx, zy, dx, dy)) * sub * adv_factor
    geo = np.asarray(ops_.outflow_rates(zx, zy, mx, my, dx, dy)) * sub  # per unit D
    worst = float(adv.max())
    if worst >= stability_limit:
        need = int(np.ceil(substeps * worst / (0.5 * stability_limit)))
        j, i = np.unravel_index(int(adv.argmax()), adv.shape)
        raise StabilityError(
            f"advective CFL number {worst:.3g}{' (twice the outflow, for TVD)' if adv_factor > 1 else ''} at cell "
            f"(y={j}, x={i}) with {substeps} substeps of "
            f"{sub:g} s exceeds the limit {stability_limit:g}; use about {need} substeps"
        )
    with np.errstate(divide="ignore"):
        room = np.where((fluid > 0) & (geo > 0), (stability_limit - adv) / np.where(geo > 0, geo, 1.0), np.inf)
    d_max = float(room.min()) if np.isfinite(room.min()) else 1.0
    if d_faces is None:
        Dx0, Dy0 = (np.asarray(a) / schmidt for a in ops_.faces_from_cells(nu_t, fluid))
    else:
        Dx0, Dy0 = (np.asarray(a, float) for a in d_faces)
        if Dx0.shape != mx.shape or Dy0.shape != my.shape:
            raise ValueError(f"d_faces must have shapes {mx.shape} and {my.shape}, got {Dx0.shape}, {Dy0.shape}")
    d_top = max(float((Dx0 * mx).max(initial=0.0)), float((Dy0 * my).max(initial=0.0)))
    if not d_top < d_max:
        raise StabilityError(
            f"initial diffusivity {d_top:.3g} m^2/s is above the stable bound {d_max:.3g} m^2/s for "
            f"{substeps} substeps of {sub:g} s; use more substeps"
        )
    floor = 1e-6 * d_max

    def logit(D, m):
        p = np.clip(D / d_max, floor / d_max, 1.0 - 1e-6)
        return np.where(m > 0, np.log(p) - np.log1p(-p), 0.0)

    on = np.concatenate([Dx0[mx > 0], Dy0[my > 0]])
    d_ref = float(np.mean(on)) if on.size and np.mean(on) > 0 else d_max * 0.1
    speed = np.abs(np.concatenate([u[fluid > 0], v[fluid > 0]]))
    u_ref = float(speed.max()) if speed.size and speed.max() > 0 else 1.0
    config = GridConfig(
        ny=ny,
        nx=nx,
        dx=float(dx),
        dy=float(dy),
        x0=float(0.5 * dx if x0 is None else x0),
        y0=float(0.5 * dy if y0 is None else y0),
        dt=float(dt),
        substeps=int(substeps),
        c_ref=float(c_ref),
        u_ref=u_ref,
        d_ref=d_ref,
        d_max=d_max,
        layer_height_m=float(layer_height_m),
        plane_height_m=float(plane_height_m),
        schmidt=float(schmidt),
        source_scale_max=float(source_scale_max),
        stability_limit=float(stability_limit),
        exchange_max_per_s=float(exchange_max_per_s),
        observation_log_max=float(observation_log_max),
        observation_spacing_cells=int(observation_spacing_cells),
        levels_m=levels_m,
        advection=advection,
        flow=flow,
        level_thickness_m=thickness,
        dtype=dtype,
    )
    jd = config.jdtype
    key = jax.random.PRNGKey(0) if key is None else key
    return CoarseModel(
        config=config,
        fluid=jnp.asarray(fluid, jd),
        u=jnp.asarray(u, jd),
        v=jnp.asarray(v, jd),
        w=jnp.asarray(w, jd),
        nu_t=jnp.asarray(nu_t, jd),
        theta_x=jnp.asarray(logit(Dx0, mx), jd),
        theta_y=jnp.asarray(logit(Dy0, my), jd),
        theta_exchange=jnp.full(shape, _exchange_logit(exchange_init_per_s, exchange_max_per_s), jd),
        source_net=_source_net(config, key),
        theta_observation=jnp.zeros(config.observation_shape, jd) if config.observation_log_max > 0 else None,
        level_flow=None if level_flow is None else jnp.asarray(level_flow, jd),
        level_flux=None if level_flux is None else jnp.asarray(level_flux, jd),
    )


def _exchange_logit(init: float, top: float) -> float:
    return math.log(init / top) - math.log1p(-init / top) if top > 0 else 0.0


def concentration_scale(concentration, fluid) -> float:
    """A robust concentration scale: the 99th percentile of positive fluid-cell values (1 if none)."""
    c = np.asarray(concentration)
    mask = np.broadcast_to(np.asarray(fluid) > 0, c.shape)
    vals = c[mask & (c > 0)]
    if vals.size == 0:
        return 1.0
    scale = float(np.percentile(vals, 99.0))
    return scale if np.isfinite(scale) and scale > 0 else 1.0


def model_from_dataset(ds, *, c_ref: float, dt: float = 0.4, substeps: int = 4, layer_height_m: float | None = None,
                       source_scale_max: float = 10.0, exchange_max_per_s: float = 0.0,
                       exchange_init_per_s: float = EXCHANGE_INIT_PER_S, observation_log_max: float = 0.0,
                       observation_spacing_cells: int = 1, advection: str = "upwind", flow: str = "sampled",
                       dtype: str = "float32", key=None) -> CoarseModel:
    """A coarse model on a dataset's plane: its grid, flow, ``nu_t`` and transport constants."""
    cfg = {}
    try:
        cfg = json.loads(ds.attrs.get("scenario_config", "{}")) or {}
    except (TypeError, ValueError):
        cfg = {}
    sim = cfg.get("simulation", {}) if isinstance(cfg, dict) else {}
    room = cfg.get("room", {}) if isinstance(cfg, dict) else {}
    schmidt = float(sim.get("turbulent_schmidt", 0.7))
    if layer_height_m is None:
        size = room.get("size_m")
        layer_height_m = float(size[2]) if isinstance(size, (list, tuple)) and len(size) == 3 else 3.0
    x = np.asarray(ds["x"].values, float)
    y = np.asarray(ds["y"].values, float)
    levels = None
    if "u_level" in ds.variables:
        levels = {"z_m": ds["level"].values,
                  **{n: ds[f"{n}_level"].values for n in ("u", "v", "w", "nu_t") + FLUX_KEYS if f"{n}_level" in ds}}
    return build_model(
        fluid=np.asarray(ds["fluid"].values),
        u=ds["u"].values,
        v=ds["v"].values,
        w=ds["w"].values,
        nu_t=ds["nu_t"].values,
        dx=float(ds.attrs["dx_m"]),
        dy=float(ds.attrs["dy_m"]),
        x0=float(x[0]),
        y0=float(y[0]),
        dt=dt,
        substeps=substeps,
        c_ref=c_ref,
        layer_height_m=layer_height_m,
        plane_height_m=float(ds.attrs["plane_height_m"]),
        schmidt=schmidt,
        source_scale_max=source_scale_max,
        exchange_max_per_s=exchange_max_per_s,
        exchange_init_per_s=exchange_init_per_s,
        observation_log_max=observation_log_max,
        observation_spacing_cells=observation_spacing_cells,
        levels=levels,
        advection=advection,
        flow=flow,
        dtype=dtype,
        key=key,
    )
