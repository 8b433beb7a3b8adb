"""Plane extraction (plumecast.reference.plane) against known fields."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from plumecast.geometry import GeometryError, Grid3D, plane_fluid_fraction, plane_layers
from plumecast.reference.flow import Flow3D
from plumecast.reference.plane import extract_plane, plane_flow
from plumecast.reference.transport import advance, face_diffusivities, operator_from_flow, plane_vertical_flux
from plumecast.scenario import Simulation


def closed_grid(fluid, h):
    nz, ny, nx = fluid.shape
    shapes = [(nz, ny, nx + 1), (nz, ny + 1, nx), (nz + 1, ny, nx)]
    z = [np.zeros(s) for s in shapes]
    b = tuple(np.zeros(s, bool) for s in shapes)
    return Grid3D(fluid=fluid, cell_m=h, u_bc=z[0], v_bc=z[1], w_bc=z[2], inlet_faces=b, outlet_faces=b)


def irregular_grid(h=0.25, shape=(8, 12, 16), seed=0):
    """Walls and obstacles that cut coarse cells partly, in one or both plane layers."""
    rng = np.random.default_rng(seed)
    fluid = np.ones(shape, bool)
    fluid[:, :4, :2] = False  # a full coarse block solid (corner): coarse cells with no fluid
    fluid[:, 5, 3:11] = False  # a thin wall cutting coarse cells in half
    fluid[:4, 8:11, 6:9] = False  # a desk, top between the plane layers at 1.0 m
    fluid[:, 9, 13] = False  # a pillar: a single fine column
    fluid[rng.uniform(size=shape) < 0.05] = False  # scattered solid cells
    return closed_grid(fluid, h)


def brute_plane(field, grid, height, cell):
    """The definition, cell by cell with loops."""
    lower, upper, w = plane_layers(grid, height)
    r = int(round(cell / grid.cell_m))
    nz, ny, nx = grid.shape
    out = np.zeros((ny // r, nx // r))
    for jc in range(ny // r):
        for ic in range(nx // r):
            vals = []
            for j in range(jc * r, (jc + 1) * r):
                for i in range(ic * r, (ic + 1) * r):
                    if grid.fluid[lower, j, i] and grid.fluid[upper, j, i]:
                        vals.append((1 - w) * field[lower, j, i] + w * field[upper, j, i])
            out[jc, ic] = np.mean(vals) if vals else 0.0
    return out


@pytest.mark.parametrize("height", [1.0, 0.8, 0.1, 1.95])
def test_linear_field_equals_value_at_fluid_centroid(height):
    grid = irregular_grid()
    h = grid.cell_m
    nz, ny, nx = grid.shape
    z, y, x = np.meshgrid(*(np.arange(n) * h + h / 2 for n in (nz, ny, nx)), indexing="ij")
    a, bx, by, bz = 1.3, 0.7, -0.4, 2.1
    field = a + bx * x + by * y + bz * z
    plane = extract_plane(field, grid, height, 0.5)
    assert plane.shape == (6, 8)
    lower, upper, wt = plane_layers(grid, height)
    fine = grid.fluid[lower] & grid.fluid[upper]
    # The area mean of a linear function is its value at the fluid-area centroid; in z the
    # interpolation between layer centres is exact unless the plane is beyond the outer centres.
    zp = np.clip(height, h / 2, nz * h - h / 2)
    expect = np.zeros((6, 8))
    for jc in range(6):
        for ic in range(8):
            m = fine[2 * jc : 2 * jc + 2, 2 * ic : 2 * ic + 2]
            if m.any():
                jj, ii = np.nonzero(m)
                xb = ((2 * ic + ii) * h + h / 2).mean()
                yb = ((2 * jc + jj) * h + h / 2).mean()
                expect[jc, ic] = a + bx * xb + by * yb + bz * zp
    np.testing.assert_allclose(plane, expect, rtol=0, atol=1e-13)
    # Coarse cells without fluid are 0, partly fluid cells really exist in this grid.
    frac = plane_fluid_fraction(grid, height, 0.5)
    assert np.all(plane[frac == 0] == 0) and (frac == 0).any()
    assert ((frac > 0) & (frac < 1)).sum() >= 5


def test_random_field_matches_definition_numpy_and_jax_batched():
    grid = irregular_grid(seed=1)
    rng = np.random.default_rng(5)
    fields = rng.uniform(size=(3, 2) + grid.shape)
    got = extract_plane(fields, grid, 1.1, 0.5)
    got_j = extract_plane(jnp.asarray(fields), grid, 1.1, 0.5)
    assert isinstance(got, np.ndarray) and got.shape == (3, 2, 6, 8)
    np.testing.assert_allclose(np.asarray(got_j), got, rtol=1e-15, atol=0)
    for a in range(3):
        for b in range(2):
            np.testing.assert_allclose(got[a, b], brute_plane(fields[a, b], grid, 1.1, 0.5), rtol=1e-14)


def test_bad_shapes_are_named():
    grid = irregular_grid()
    with pytest.raises(GeometryError, match="does not end in the grid"):
        extract_plane(np.zeros((4, 12, 16)), grid, 1.0, 0.5)
    with pytest.raises(GeometryError, match="whole multiple"):
        extract_plane(np.zeros(grid.shape), grid, 1.0, 0.3)


def test_plane_flow_of_a_known_face_field():
    grid = irregular_grid(seed=2)
    h = grid.cell_m
    nz, ny, nx = grid.shape
    xf = np.arange(nx + 1) * h
    yf = np.arange(ny + 1) * h
    zf = np.arange(nz + 1) * h
    u = np.broadcast_to(0.3 + 0.1 * xf, (nz, ny, nx + 1))
    v = np.broadcast_to((-0.2 + 0.05 * yf)[:, None], (nz, ny + 1, nx))
    w = np.broadcast_to((0.2 * zf)[:, None, None], (nz + 1, ny, nx))
    nu_t = np.where(grid.fluid, 0.01, 0.0)
    got = plane_flow(grid, Flow3D(u, v, w, nu_t), 1.1, 0.5)
    lower, upper, _ = plane_layers(grid, 1.1)
    fine = grid.fluid[lower] & grid.fluid[upper]
    xc, yc = (np.arange(nx) + 0.5) * h, (np.arange(ny) + 0.5) * h
    for name, fine_val in (("u", np.broadcast_to(0.3 + 0.1 * xc, (ny, nx))),
                           ("v", np.broadcast_to((-0.2 + 0.05 * yc)[:, None], (ny, nx))),
                           ("w", np.full((ny, nx), 0.2 * 1.1)),
                           ("nu_t", np.full((ny, nx), 0.01))):
        expect = np.zeros((6, 8))
        for jc in range(6):
            for ic in range(8):
                m = fine[2 * jc : 2 * jc + 2, 2 * ic : 2 * ic + 2]
                if m.any():
                    expect[jc, ic] = fine_val[2 * jc : 2 * jc + 2, 2 * ic : 2 * ic + 2][m].mean()
        np.testing.assert_allclose(got[name], expect, rtol=0, atol=1e-14, err_msg=name)


def test_vertical_flux_of_known_field():
    grid = irregular_grid(seed=3)
    h = grid.cell_m
    nz, ny, nx = grid.shape
    sim = Simulation(plane_height_m=1.0, plane_cell_m=0.5, fine_cell_m=h)
    wv = 0.3
    flow = Flow3D(np.zeros((nz, ny, nx + 1)), np.zeros((nz, ny + 1, nx)), np.full((nz + 1, ny, nx), wv),
                  np.where(grid.fluid, 0.014, 0.0))
    zc = (np.arange(nz) + 0.5) * h
    g = 2.0
    c = np.broadcast_to((5.0 + g * zc)[:, None, None], grid.shape)
    flux = plane_vertical_flux(c, grid, flow, sim)
    d = 2e-5 + 0.014 / 0.7
    k = 4  # the plane at 1.0 m lies on z-face 4
    active = grid.fluid[k - 1] & grid.fluid[k]
    n_active = active.reshape(6, 2, 8, 2).sum(axis=(1, 3))
    np.testing.assert_allclose(flux["advective"], wv * (5.0 + g * zc[k - 1]) * h * h * n_active, rtol=1e-13)
    np.testing.assert_allclose(flux["diffusive"], -d * g * h * h * n_active, rtol=1e-13, atol=1e-18)
    np.testing.assert_allclose(flux["total"], flux["advective"] + flux["diffusive"])


def test_vertical_flux_is_what_the_solver_moves_across_the_plane():
    # Closed box, recirculating flow: over one step the mass above the plane changes by exactly
    # dt * (net upward flux through the plane) evaluated on the old field.
    grid = irregular_grid(seed=4)
    h = grid.cell_m
    nz, ny, nx = grid.shape
    rng = np.random.default_rng(6)
    solid = np.pad(~grid.fluid, 1, constant_values=True)
    around = solid[:-1, 1:-1, :-1] | solid[1:, 1:-1, :-1] | solid[:-1, 1:-1, 1:] | solid[1:, 1:-1, 1:]
    chi = np.where(around, 0.0, 0.3 * h * rng.uniform(-1, 1, around.shape))
    u = (chi[1:] - chi[:-1]) / h
    w = -(chi[:, :, 1:] - chi[:, :, :-1]) / h
    flow = Flow3D(u, np.zeros((nz, ny + 1, nx)), w, np.where(grid.fluid, rng.uniform(0, 0.02, grid.shape), 0.0))
    sim = Simulation(plane_height_m=1.0, plane_cell_m=0.5, fine_cell_m=h)
    op = operator_from_flow(grid, flow, sim)
    c0 = np.where(grid.fluid, rng.uniform(0, 1, grid.shape), 0.0)
    dt = 0.01
    c1 = np.asarray(advance(op, c0, dt, 1)[0])
    flux = plane_vertical_flux(c0, grid, flow, sim, dz_faces=face_diffusivities(grid, flow.nu_t, sim)[2])
    above = slice(4, None)
    dm = (c1[above].sum() - c0[above].sum()) * h**3
    assert abs(flux["total"].sum()) > 1e-4
    assert dm == pytest.approx(dt * flux["total"].sum(), rel=1e-11)
