"""Steady incompressible ventilation flow (RANS with a mixing-length eddy viscosity).

Equations (kinematic pressure ``p``, effective viscosity ``nu = nu_mol + nu_t``)::

    div u = 0
    div(u u) = -grad p + div( nu (grad u + grad u^T) )
    nu_t = l_m^2 |S|,   |S| = sqrt(2 S_ij S_ij),   l_m = min(kappa d_wall, l_max)

``d_wall`` is the distance of a cell centre from the nearest solid surface (obstacles,
walls of the plan and the six faces of the bounding box, inlets and outlets included),
from ``scipy.ndimage.distance_transform_edt`` on the solid mask, in metres.

Discretisation: finite volumes on the uniform staggered (MAC) grid of a ``Grid3D``.
Face-normal velocities live on the cell faces, ``nu_t`` and ``p`` at cell centres.
Momentum fluxes: hybrid advection (central where the cell Peclet number is below 2,
first-order upwind above it, so every neighbour coefficient stays non-negative: bounded)
and the full viscous stress ``nu (d_b u_a + d_a u_b)`` with ``nu`` averaged over the
fluid cells around each cell edge.

Wall treatment: no-slip on every wall and obstacle surface. Face-normal velocities on
wall faces are zero; for a wall-parallel velocity the wall lies half a cell from the
nearest face, and its gradient at the wall edge is ``(u_face - 0) / (h / 2)`` (a mirror
ghost value); inlet and outlet patches carry their prescribed normal velocity and zero
tangential velocity. No wall function: the wall shear comes from the resolved gradient
with the effective viscosity of the adjacent fluid cells, where ``l_m = kappa h / 2``.

Solution method: pseudo-time marching with a projection step. Each iteration

1. advances the momentum explicitly, ``u* = u^n + dt R(u^n)`` on fluid faces, with the
   global pseudo time step ``dt = cfl / max_cells(sum_a |u_a| / h + 8 nu / h^2)``
   (``cfl = 0.8``; ``8 nu / h^2`` is the diagonal of the full-stress diffusion stencil of a
   face, ``4 nu / h^2`` from its two normal-stress faces and ``4 nu / h^2`` from its four
   shear faces; the hybrid scheme adds at most ``sum_a |u_a| / h``);
2. projects ``u*`` onto discretely divergence-free fields: ``M phi = -h^2 div u*`` on the
   fluid cells with homogeneous Neumann conditions on walls, inlets and outlets, one
   pressure level fixed per connected fluid region; the sparse matrix ``M`` is factorised
   once (``scipy.sparse.linalg.splu``); ``u^{n+1} = u* - grad phi``, ``p = phi / dt``;
3. under-relaxes the eddy viscosity, ``nu_t <- nu_t + alpha (l_m^2 |S| - nu_t)``.

At a fixed point ``u^{n+1} = u^n`` the discrete steady equations hold exactly.

Convergence is declared when both

* the momentum residual ``max_faces |u^{n+1} - u^n| / dt * h / U_in^2`` (the pseudo-time
  acceleration in units of the inlet's convective acceleration over one cell, ``U_in`` =
  mean inlet speed) is below ``FlowSettings.residual_tol``, and
* the divergence ``max_cells |div u| * h / U_in`` (net volume flux of a cell as a fraction
  of one inlet face's flux) is below ``FlowSettings.divergence_tol``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy import ndimage
from scipy.sparse.linalg import splu

from plumecast.io.atomic import atomic_path

KAPPA = 0.41
CFL = 0.8
NU_T_RELAXATION = 0.2
FLOW_FILE_KIND = "plumecast-flow3d"
FLOW_FILE_VERSION = 1
RESIDUAL_DEFINITION = "max_faces |u_new - u_old| / dt * h / U_in^2"
DIVERGENCE_DEFINITION = "max_cells |div u| * h / U_in"


class FlowError(RuntimeError):
    """The steady flow solve did not converge (or blew up)."""


class FlowFileError(ValueError):
    """A flow file that is not a valid plumecast Flow3D file; the message names the problem."""


@dataclass(frozen=True)
class Flow3D:
    """A converged 3D flow on a Grid3D's staggered faces.

    ``u (nz, ny, nx+1)``, ``v (nz, ny+1, nx)``, ``w (nz+1, ny, nx)`` are face-normal
    velocities in m/s (zero on wall faces, the prescribed values on inlet/outlet faces);
    ``nu_t (nz, ny, nx)`` is the cell-centred turbulent kinematic viscosity in m^2/s
    (zero in solid cells). ``diagnostics`` records iterations, final residual and
    divergence and the tolerances they were held to.
    """

    u: np.ndarray = field(repr=False)
    v: np.ndarray = field(repr=False)
    w: np.ndarray = field(repr=False)
    nu_t: np.ndarray = field(repr=False)
    diagnostics: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- helpers
# Axes in (z, y, x) order: axis 0 carries w, axis 1 carries v, axis 2 carries u.


def _sl(axis: int, s: slice) -> tuple:
    idx = [slice(None)] * 3
    idx[axis] = s
    return tuple(idx)


_LO = slice(None, -1)
_HI = slice(1, None)


def _diff(a: np.ndarray, axis: int) -> np.ndarray:
    return a[_sl(axis, _HI)] - a[_sl(axis, _LO)]


def _pad(a: np.ndarray, axis: int, value=0) -> np.ndarray:
    width = [(0, 0)] * 3
    width[axis] = (1, 1)
    return np.pad(a, width, constant_values=value)


def wall_distance(fluid: np.ndarray, cell_m: float) -> np.ndarray:
    """Distance (m) of each fluid cell centre from the nearest solid surface; 0 in solids.

    The bounding box counts as solid. A cell next to a wall is ``cell_m / 2`` from it.
    """
    padded = np.pad(fluid, 1, constant_values=False)
    d = ndimage.distance_transform_edt(padded)[1:-1, 1:-1, 1:-1] * cell_m
    return np.where(fluid, d - 0.5 * cell_m, 0.0)


def mixing_length(fluid: np.ndarray, cell_m: float, l_max_m: float) -> np.ndarray:
    """``min(kappa d_wall, l_max)`` per cell (m); 0 in solids."""
    return np.minimum(KAPPA * wall_distance(fluid, cell_m), max(float(l_max_m), 0.0))


def divergence(grid, u: np.ndarray, v: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Discrete divergence (1/s) per cell, ``(nz, ny, nx)``; 0 in solid cells."""
    h = grid.cell_m
    div = (_diff(w, 0) + _diff(v, 1) + _diff(u, 2)) / h
    return np.where(grid.fluid, div, 0.0)


class FlowOperators:
    """Static masks, the factorised pressure matrix and the momentum operator of one grid.

    The steady solver's building blocks, public for tools that work on a flow computed
    elsewhere: ``project`` makes MAC face velocities ``{0: w, 1: v, 2: u}`` discretely
    divergence-free on the fluid cells (inlet and outlet faces fixed), ``gradients`` and
    ``strain_rate`` give the wall-aware velocity gradients and ``|S|``, ``rhs`` the
    momentum tendency. ``settings`` (a ``FlowSettings``) supplies the mixing length and
    molecular viscosity; ``project`` does not depend on them.
    """

    def __init__(self, grid, settings):
        F = np.asarray(grid.fluid, dtype=bool)
        self.F = F
        self.h = h = float(grid.cell_m)
        self.shape = F.shape
        bcs = {0: grid.w_bc, 1: grid.v_bc, 2: grid.u_bc}
        self.active, self.known, self.fixed = {}, {}, {}
        for a in range(3):
            Fp = _pad(F, a, False)
            left, right = Fp[_sl(a, _LO)], Fp[_sl(a, _HI)]
            boundary = np.zeros_like(left)
            boundary[_sl(a, slice(0, 1))] = True
            boundary[_sl(a, slice(-1, None))] = True
            self.active[a] = left & right
            self.known[a] = left | right
            fixed = np.where(boundary & self.known[a], np.asarray(bcs[a], float), 0.0)
            self.fixed[a] = fixed
        # Edge bookkeeping for each unordered pair of axes (a < b): the number of fluid
        # cells around the edge (for the edge viscosity) and the edge-derivative factors.
        self.pairs = [(0, 1), (0, 2), (1, 2)]
        self.edge_count = {}
        for a, b in self.pairs:
            c = _pad(_pad(F.astype(float), a), b)
            c = c[_sl(a, _LO)] + c[_sl(a, _HI)]
            c = c[_sl(b, _LO)] + c[_sl(b, _HI)]
            self.edge_count[(a, b)] = c
        self.grad_factor = {}
        for a in range(3):
            for b in range(3):
                if a == b:
                    continue
                Kp = _pad(self.known[a], b, False)
                k1, k2 = Kp[_sl(b, _LO)], Kp[_sl(b, _HI)]
                self.grad_factor[(a, b)] = ((k1 & k2) * 1.0 + (k1 ^ k2) * 2.0) / h
        self.lm2 = mixing_length(F, h, settings.mixing_length_max_m) ** 2
        self.nu_mol = float(settings.kinematic_viscosity_m2_s)
        self._build_pressure()

    # ------------------------------------------------------------------ pressure
    def _build_pressure(self):
        F = self.F
        n_cells = int(F.sum())
        index = -np.ones(F.shape, dtype=np.int64)
        index[F] = np.arange(n_cells)
        rows, cols = [], []
        for a in range(3):
            act = self.active[a][_sl(a, slice(1, -1))]  # interior faces
            lo = index[_sl(a, _LO)][act]
            hi = index[_sl(a, _HI)][act]
            rows += [lo, hi]
            cols += [hi, lo]
        rows = np.concatenate(rows)
        cols = np.concatenate(cols)
        off = sp.coo_matrix((-np.ones(rows.size), (rows, cols)), shape=(n_cells, n_cells)).tocsr()
        diag = -np.asarray(off.sum(axis=1)).ravel()
        M = (off + sp.diags(diag)).tocsr()
        # One pressure level per connected fluid region (6-connectivity through open faces).
        labels, n_regions = ndimage.label(F)
        lab = labels[F]
        first = np.array([np.flatnonzero(lab == r)[0] for r in range(1, n_regions + 1)])
        keep = np.ones(n_cells, dtype=bool)
        keep[first] = False
        self.region_labels = lab
        self.n_regions = n_regions
        self.cell_index = index
        self.keep = keep
        # M is symmetric positive definite once the levels are fixed: a symmetric ordering
        # and no pivoting keep the fill (and the factorisation time) low.
        self.lu = splu(
            M[keep][:, keep].tocsc(),
            permc_spec="MMD_AT_PLUS_A",
            diag_pivot_thresh=0.0,
            options={"SymmetricMode": True},
        )
        self.n_cells = n_cells

    def project(self, q):
        """Make the face velocities ``q`` discretely divergence-free in place; returns phi."""
        h = self.h
        div_h = _diff(q[0], 0) + _diff(q[1], 1) + _diff(q[2], 2)  # = h * div
        rhs = -h * div_h[self.F]
        phi_c = np.zeros(self.n_cells)
        phi_c[self.keep] = self.lu.solve(rhs[self.keep])
        phi = np.zeros(self.shape)
        phi[self.F] = phi_c
        for a in range(3):
            g = np.zeros_like(q[a])
            g[_sl(a, slice(1, -1))] = _diff(phi, a) / h
            q[a] -= np.where(self.active[a], g, 0.0)
        return phi

    # ------------------------------------------------------------------ momentum
    def gradients(self, q):
        """Cell normal gradients ``d_a u_a`` and edge gradients ``d_b u_a`` (wall aware)."""
        h = self.h
        normal = {a: _diff(q[a], a) / h for a in range(3)}
        edge = {}
        for a in range(3):
            for b in range(3):
                if a != b:
                    edge[(a, b)] = _diff(_pad(q[a], b), b) * self.grad_factor[(a, b)]
        return normal, edge

    def strain_rate(self, normal, edge):
        """``|S| = sqrt(2 S_ij S_ij)`` at cell centres (1/s); 0 in solids."""
        s2 = 2.0 * sum(normal[a] ** 2 for a in range(3))
        for a, b in self.pairs:
            sab2 = (0.5 * (edge[(a, b)] + edge[(b, a)])) ** 2
            sab2 = 0.5 * (sab2[_sl(a, _LO)] + sab2[_sl(a, _HI)])
            sab2 = 0.5 * (sab2[_sl(b, _LO)] + sab2[_sl(b, _HI)])
            s2 = s2 + 4.0 * sab2
        return np.where(self.F, np.sqrt(s2), 0.0)

    def rhs(self, q, nu, normal, edge):
        """Momentum tendency ``R(u) = -div(u u) + div(nu (grad u + grad u^T))`` per face."""
        h = self.h
        nuF = np.where(self.F, nu, 0.0)
        flux_div = {a: np.zeros_like(q[a]) for a in range(3)}
        # Normal fluxes at cell centres.
        for a in range(3):
            lo, hi = q[a][_sl(a, _LO)], q[a][_sl(a, _HI)]
            U = 0.5 * (lo + hi)
            flux = _hybrid_flux(U, lo, hi, 2.0 * nuF, h) - 2.0 * nuF * normal[a]
            flux_div[a][_sl(a, slice(1, -1))] += _diff(flux, a)
        # Tangential fluxes at edges.
        for a, b in self.pairs:
            nsum = _pad(_pad(nuF, a), b)
            nsum = nsum[_sl(a, _LO)] + nsum[_sl(a, _HI)]
            nsum = nsum[_sl(b, _LO)] + nsum[_sl(b, _HI)]
            nu_e = nsum / np.maximum(self.edge_count[(a, b)], 1.0)
            tau = nu_e * (edge[(a, b)] + edge[(b, a)])
            for c, d in ((a, b), (b, a)):
                # Flux of c-momentum across d-faces of its control volume.
                vd = _pad(q[d], c)
                V = 0.5 * (vd[_sl(c, _LO)] + vd[_sl(c, _HI)])
                qc = _pad(q[c], d)
                lo, hi = qc[_sl(d, _LO)], qc[_sl(d, _HI)]
                flux = _hybrid_flux(V, lo, hi, nu_e, h) - tau
                flux_div[c] += _diff(flux, d)
        return {a: np.where(self.active[a], -flux_div[a] / h, 0.0) for a in range(3)}

    def time_step(self, q, nu):
        h = self.h
        speed = sum(np.abs(0.5 * (q[a][_sl(a, _LO)] + q[a][_sl(a, _HI)])) for a in range(3))
        rate = np.where(self.F, speed / h + 8.0 * nu / h**2, 0.0)
        return CFL / float(rate.max())


def _hybrid_flux(U, lo, hi, diff, h):
    """Hybrid (Spalding/Patankar) advective flux of a quantity carried by velocity ``U``.

    Central advection plus the artificial diffusion ``max(0, |U| h / 2 - diff)``: central
    where the cell Peclet number ``|U| h / diff`` is below 2, exactly first-order upwind
    (without the physical diffusion) above it. The flux is continuous in ``U``, and every
    neighbour coefficient, with the physical diffusion ``diff``, is non-negative.
    """
    extra = np.maximum(0.5 * np.abs(U) * h - diff, 0.0)
    return U * 0.5 * (lo + hi) - extra * (hi - lo) / h


# --------------------------------------------------------------------------- solver


def solve_flow(grid, settings, progress=None, progress_every: int = 25) -> "Flow3D":
    """The converged steady RANS flow of a room (see the module docstring for the method).

    ``progress(iteration, residual)`` is called every ``progress_every`` iterations and at
    the end. Raises FlowError when the solve does not converge within
    ``settings.max_iterations`` or blows up.
    """
    t0 = time.perf_counter()
    inflow = grid.volume_flow_in_m3_s()
    outflow = grid.volume_flow_out_m3_s()
    if not np.isclose(inflow, outflow, rtol=1e-9, atol=1e-15):
        raise FlowError(f"inflow {inflow:.9g} m3/s differs from outflow {outflow:.9g} m3/s")
    inlet_area = sum(int(m.sum()) for m in grid.inlet_faces) * grid.cell_m**2
    if inflow <= 0 or inlet_area <= 0:
        raise FlowError("the room has no inflow")
    u_in = inflow / inlet_area
    ops = FlowOperators(grid, settings)
    _check_regions(ops, grid)
    h = ops.h

    q = {a: ops.fixed[a].copy() for a in range(3)}
    ops.project(q)
    nu_t = np.zeros(ops.shape)
    acc_scale = u_in**2 / h
    residual, div_norm = np.inf, np.inf
    converged = False
    it = 0
    max_it = int(settings.max_iterations)
    for it in range(1, max_it + 1):
        normal, edge = ops.gradients(q)
        nu_new = ops.lm2 * ops.strain_rate(normal, edge)
        nu_t += NU_T_RELAXATION * (nu_new - nu_t)
        nu = ops.nu_mol + nu_t
        dt = ops.time_step(q, nu)
        r = ops.rhs(q, nu, normal, edge)
        q_old = {a: q[a].copy() for a in range(3)}
        for a in range(3):
            q[a] += dt * r[a]
        ops.project(q)
        residual = max(float(np.abs(q[a] - q_old[a]).max()) for a in range(3)) / dt / acc_scale
        if not np.isfinite(residual) or residual > 1e8:
            raise FlowError(
                f"flow solve blew up at iteration {it}: residual {residual:.3e}; "
                f"divergence {div_norm:.3e}"
            )
        if residual < settings.residual_tol:
            div_norm = float(np.abs(divergence(grid, q[2], q[1], q[0])).max()) * h / u_in
            if div_norm < settings.divergence_tol:
                converged = True
        if progress is not None and (it % progress_every == 0 or converged):
            progress(it, residual)
        if converged:
            break
    div_norm = float(np.abs(divergence(grid, q[2], q[1], q[0])).max()) * h / u_in
    if not converged:
        raise FlowError(
            f"flow did not converge in {it} iterations: residual {residual:.3e} "
            f"(tolerance {settings.residual_tol:.1e}, {RESIDUAL_DEFINITION}), divergence "
            f"{div_norm:.3e} (tolerance {settings.divergence_tol:.1e}, {DIVERGENCE_DEFINITION})"
        )
    u, v, w = q[2], q[1], q[0]
    nu_t = np.where(ops.F, nu_t, 0.0)
    speed = _cell_speed(u, v, w)
    diagnostics = {
        "iterations": int(it),
        "residual": float(residual),
        "divergence": float(div_norm),
        "residual_tol": float(settings.residual_tol),
        "divergence_tol": float(settings.divergence_tol),
        "converged": True,
        "seconds": float(time.perf_counter() - t0),
        "inflow_m3_s": float(inflow),
        "outflow_m3_s": float(outflow),
        "max_speed_m_s": float(speed[ops.F].max()),
        "max_nu_t_m2_s": float(nu_t.max()),
        "inlet_speed_m_s": float(u_in),
        "residual_definition": RESIDUAL_DEFINITION,
        "divergence_definition": DIVERGENCE_DEFINITION,
    }
    return Flow3D(u=u, v=v, w=w, nu_t=nu_t, diagnostics=diagnostics)


def _cell_speed(u, v, w):
    return np.sqrt(
        (0.5 * (u[..., 1:] + u[..., :-1])) ** 2
        + (0.5 * (v[:, 1:] + v[:, :-1])) ** 2
        + (0.5 * (w[1:] + w[:-1])) ** 2
    )


def _check_regions(ops: FlowOperators, grid) -> None:
    """Each connected fluid region must balance its own inflow and outflow."""
    if ops.n_regions == 1:
        return
    net = np.zeros(ops.n_regions)
    q = {a: ops.fixed[a] for a in range(3)}
    div_h = (_diff(q[0], 0) + _diff(q[1], 1) + _diff(q[2], 2))[ops.F]
    np.add.at(net, ops.region_labels - 1, div_h * grid.cell_m**2)
    bad = np.flatnonzero(np.abs(net) > 1e-9 * max(grid.volume_flow_in_m3_s(), 1e-30))
    if bad.size:
        raise FlowError(
            f"{bad.size} of {ops.n_regions} disconnected fluid regions have unbalanced inlets and "
            f"outlets (net outflow {net[bad].tolist()} m3/s)"
        )


# --------------------------------------------------------------------------- files

_FIELD_DIMS = {
    "u": ("z", "y", "x_face"),
    "v": ("z", "y_face", "x"),
    "w": ("z_face", "y", "x"),
    "nu_t": ("z", "y", "x"),
    "fluid": ("z", "y", "x"),
}


def write_flow(path, grid, flow: Flow3D) -> Path:
    """Write a flow (and its grid's fluid mask) as netCDF, atomically; returns the path.

    The file is written to a temporary file in the target folder and moved into place
    with ``os.replace``, so a reader never sees a half-written file.
    """
    import xarray as xr

    path = Path(path)
    nz, ny, nx = grid.shape
    expected = {"u": (nz, ny, nx + 1), "v": (nz, ny + 1, nx), "w": (nz + 1, ny, nx), "nu_t": (nz, ny, nx)}
    for name, shape in expected.items():
        got = np.shape(getattr(flow, name))
        if got != shape:
            raise FlowFileError(f"flow field {name!r} has shape {got}, the grid needs {shape}")
    h = grid.cell_m
    ds = xr.Dataset(
        {
            "u": (_FIELD_DIMS["u"], np.asarray(flow.u, float), {"units": "m s-1", "long_name": "x-face velocity"}),
            "v": (_FIELD_DIMS["v"], np.asarray(flow.v, float), {"units": "m s-1", "long_name": "y-face velocity"}),
            "w": (_FIELD_DIMS["w"], np.asarray(flow.w, float), {"units": "m s-1", "long_name": "z-face velocity"}),
            "nu_t": (_FIELD_DIMS["nu_t"], np.asarray(flow.nu_t, float), {"units": "m2 s-1"}),
            "fluid": (_FIELD_DIMS["fluid"], np.asarray(grid.fluid, np.int8), {"long_name": "1 in fluid cells"}),
        },
        coords={
            "z": (np.arange(nz) + 0.5) * h,
            "y": (np.arange(ny) + 0.5) * h,
            "x": (np.arange(nx) + 0.5) * h,
            "z_face": np.arange(nz + 1) * h,
            "y_face": np.arange(ny + 1) * h,
            "x_face": np.arange(nx + 1) * h,
        },
        attrs={
            "kind": FLOW_FILE_KIND,
            "version": FLOW_FILE_VERSION,
            "cell_m": float(h),
            "diagnostics": json.dumps(flow.diagnostics, sort_keys=True),
        },
    )
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4")
    return path


def read_flow(path, grid=None) -> Flow3D:
    """Read a flow written by ``write_flow``; FlowFileError names what is wrong.

    With ``grid`` the file must also match that grid (cell size and fluid mask).
    """
    import xarray as xr

    path = Path(path)
    if not path.is_file():
        raise FlowFileError(f"{path}: no such flow file")
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            ds = ds.load()
    except Exception as e:  # netCDF4/xarray raise many types for unreadable files
        raise FlowFileError(f"{path}: not a readable netCDF file ({type(e).__name__}: {e})") from None
    if ds.attrs.get("kind") != FLOW_FILE_KIND:
        raise FlowFileError(f"{path}: attribute 'kind' is {ds.attrs.get('kind')!r}, expected {FLOW_FILE_KIND!r}")
    if int(ds.attrs.get("version", -1)) != FLOW_FILE_VERSION:
        raise FlowFileError(f"{path}: flow file version {ds.attrs.get('version')!r}, expected {FLOW_FILE_VERSION}")
    for name, dims in _FIELD_DIMS.items():
        if name not in ds:
            raise FlowFileError(f"{path}: missing variable {name!r}")
        if tuple(ds[name].dims) != dims:
            raise FlowFileError(f"{path}: variable {name!r} has dims {tuple(ds[name].dims)}, expected {dims}")
    nz, ny, nx = (ds.sizes[d] for d in ("z", "y", "x"))
    for d, n in (("z_face", nz + 1), ("y_face", ny + 1), ("x_face", nx + 1)):
        if ds.sizes.get(d) != n:
            raise FlowFileError(f"{path}: dimension {d!r} has size {ds.sizes.get(d)}, expected {n}")
    arrays = {k: np.asarray(ds[k].values, float) for k in ("u", "v", "w", "nu_t")}
    for k, a in arrays.items():
        if not np.isfinite(a).all():
            raise FlowFileError(f"{path}: variable {k!r} has non-finite values")
    if (arrays["nu_t"] < 0).any():
        raise FlowFileError(f"{path}: variable 'nu_t' has negative values")
    try:
        diagnostics = json.loads(ds.attrs["diagnostics"])
        if not isinstance(diagnostics, dict):
            raise ValueError("not a JSON object")
    except (KeyError, ValueError) as e:
        raise FlowFileError(f"{path}: attribute 'diagnostics' is missing or not a JSON object ({e})") from None
    if grid is not None:
        if not np.isclose(float(ds.attrs.get("cell_m", np.nan)), grid.cell_m):
            raise FlowFileError(f"{path}: cell size {ds.attrs.get('cell_m')} m, the grid has {grid.cell_m} m")
        fluid = np.asarray(ds["fluid"].values) != 0
        if fluid.shape != grid.shape or not np.array_equal(fluid, grid.fluid):
            raise FlowFileError(f"{path}: fluid mask {fluid.shape} does not match the grid {grid.shape}")
    return Flow3D(**arrays, diagnostics=diagnostics)
