"""The 3D flow's face fluxes summed onto the column's cells: hand-made cases, both engines, the importer."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from plumecast.cli import app
from plumecast.io.dataset import (FLUX_VARS, DatasetError, column_levels_m, column_too_fine, finest_column_levels,
                                  read_dataset, write_dataset)
from plumecast.reference.coarse_flux import (FLUX_KEYS, coarse_cell_index, coarse_level_fluxes, column_fluxes,
                                             divergence, level_edges_m, relative_divergence, staggered_faces)
from plumecast.scenario import ScenarioError, load_scenario_set

from conftest import tiny_variant


def _fluxes_of(ds) -> dict:
    return {k: np.asarray(ds[f"{k}_level"].values, float) for k in FLUX_KEYS}


# ----------------------------------------------------------------------------- hand-made cases


def test_eight_fine_cells_per_coarse_cell_checked_by_hand():
    """A 4 x 2 x 4 grid of 0.5 m cells on 1 m plane cells and two levels: each coarse cell holds 2 x 2 x 2 fine cells."""
    nz, ny, nx, h = 4, 2, 4, 0.5
    kji = np.argwhere(np.ones((nz, ny, nx), bool))
    centres = (kji[:, ::-1] + 0.5) * h

    def lab(k, j, i):
        return (k * ny + j) * nx + i

    edges = level_edges_m([0.5, 1.5], 2.0)
    np.testing.assert_allclose(edges, [0.0, 1.0, 2.0])
    index = coarse_cell_index(centres, x0=0.0, y0=0.0, dx=1.0, dy=1.0, nx=2, ny=1, edges_z=edges)
    assert index[lab(0, 0, 0)].tolist() == [0, 0, 0] and index[lab(3, 1, 3)].tolist() == [1, 0, 1]
    assert index[lab(1, 1, 2)].tolist() == [0, 0, 1] and index[lab(2, 0, 1)].tolist() == [1, 0, 0]
    faces, flux = [], []
    # Level 0, from coarse cell x 0 to x 1: the four fine faces at x = 1 m; one face stored the other way round.
    for (k, j), f in zip([(0, 0), (0, 1), (1, 0), (1, 1)], [0.1, 0.2, 0.3, 0.4]):
        faces.append((lab(k, j, 1), lab(k, j, 2)) if f != 0.4 else (lab(k, j, 2), lab(k, j, 1)))
        flux.append(f if f != 0.4 else -f)
    # Column x 1, from level 0 up to level 1: the four fine faces at z = 1 m.
    for j in (0, 1):
        for i in (2, 3):
            faces.append((lab(1, j, i), lab(2, j, i)))
            flux.append(0.25)
    # Level 1, back from x 1 to x 0 through two of its four faces.
    for k in (2, 3):
        faces.append((lab(k, 0, 2), lab(k, 0, 1)))
        flux.append(0.5)
    # Faces inside one coarse cell move nothing between coarse cells.
    faces += [(lab(0, 0, 0), lab(0, 0, 1)), (lab(2, 1, 3), lab(3, 1, 3))]
    flux += [5.0, -7.0]
    # In through a fine face of coarse cell (0, 0, 0), out through two of (1, 0, 0).
    bcells = [lab(0, 0, 0), lab(3, 0, 0), lab(2, 1, 1)]
    bflux = [-1.0, 0.7, 0.3]
    out = coarse_level_fluxes(index, np.full(len(centres), h**3), faces, flux, bcells, bflux, (2, 1, 2))
    expect = {k: np.zeros((2, 1, 2)) for k in FLUX_KEYS}
    expect["flux_x"][0, 0, 0] = 0.1 + 0.2 + 0.3 + 0.4
    expect["flux_x"][1, 0, 0] = -1.0
    expect["flux_z"][0, 0, 1] = 1.0
    expect["outflow"][0, 0, 0] = -1.0
    expect["outflow"][1, 0, 0] = 1.0
    expect["volume"][:] = 8 * h**3
    for k in FLUX_KEYS:
        np.testing.assert_allclose(out[k], expect[k], rtol=0, atol=1e-15, err_msg=k)
    np.testing.assert_allclose(divergence(out), 0.0, atol=1e-15)


@pytest.mark.parametrize("reverse", [False, True])
def test_a_diagonal_face_is_routed_through_the_cells_between(reverse):
    """A face joining coarse cells (0, 0, 0) and (1, 1, 1): x first, then y, then z; the column still balances."""
    index = np.argwhere(np.ones((2, 2, 2), bool))  # fine cell n is coarse cell (k, j, i) in C order
    a, b = 0, 7
    face, flux = ((b, a), -2.0) if reverse else ((a, b), 2.0)
    out = coarse_level_fluxes(index, np.ones(8), [face], [flux], [a, b], [-2.0, 2.0], (2, 2, 2))
    assert out["flux_x"][0, 0, 0] == 2.0 and out["flux_y"][0, 0, 1] == 2.0 and out["flux_z"][0, 1, 1] == 2.0
    assert sum(float(np.abs(out[k]).sum()) for k in ("flux_x", "flux_y", "flux_z")) == 6.0
    np.testing.assert_array_equal(divergence(out), 0.0)
    # 1.5 from (1, 0, 1) to (0, 1, 0), routed from the lower cell (0, 1, 0): x up, y down, z up, carrying -1.5.
    out = coarse_level_fluxes(index, np.ones(8), [(5, 2)], [1.5], [5, 2], [-1.5, 1.5], (2, 2, 2))
    assert out["flux_x"][0, 1, 0] == -1.5 and out["flux_y"][0, 0, 1] == 1.5 and out["flux_z"][0, 0, 1] == -1.5
    np.testing.assert_array_equal(divergence(out), 0.0)


def test_cells_outside_the_grid_are_dropped():
    centres = np.array([[0.5, 0.5, 0.5], [1.5, 0.5, 0.5], [-0.5, 0.5, 0.5], [0.5, 0.5, 2.5], [0.5, 2.5, 0.5]])
    index = coarse_cell_index(centres, x0=0.0, y0=0.0, dx=1.0, dy=1.0, nx=2, ny=1, edges_z=[0.0, 2.0])
    assert index.tolist() == [[0, 0, 0], [0, 0, 1]] + [[-1, -1, -1]] * 3
    out = coarse_level_fluxes(index, np.ones(5), [(0, 1), (2, 0), (1, 3)], [1.0, 9.0, 9.0], [0, 2, 4], [-1.0, 5.0, 5.0],
                              (1, 1, 2))
    assert out["flux_x"].tolist() == [[[1.0, 0.0]]] and out["outflow"].tolist() == [[[-1.0, 0.0]]]
    assert out["volume"].tolist() == [[[1.0, 1.0]]]
    # column_fluxes refuses them: the faces dropped with them would unbalance the column.
    faces = ([(0, 1)], [1.0], [0], [-1.0])
    with pytest.raises(ValueError, match=r"3 of 5 fine cells have their centre outside the column"):
        column_fluxes(centres, np.ones(5), faces, x0=0.0, y0=0.0, cell_m=1.0, shape=(1, 2), levels_m=[1.0],
                      height_m=2.0)


def test_column_fluxes_refuse_an_unbalanced_flow_above_the_tolerance():
    """Two cells, one per column cell: 1 m^3/s in through the first, 1.01 out through the second."""
    centres = np.array([[0.5, 0.5, 0.5], [1.5, 0.5, 0.5]])
    faces = ([(0, 1)], [1.0], [0, 1], [-1.0, 1.01])
    kwargs = dict(x0=0.0, y0=0.0, cell_m=1.0, shape=(1, 2), levels_m=[0.5], height_m=1.0)
    fluxes = column_fluxes(centres, np.ones(2), faces, **kwargs, tolerance=0.02)
    assert relative_divergence(fluxes) == pytest.approx(0.01 / 1.01)
    with pytest.raises(ValueError, match=r"do not balance .* above 0.001"):
        column_fluxes(centres, np.ones(2), faces, **kwargs, tolerance=1e-3)


def _solenoidal_mac(fluid: np.ndarray, h: float, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A divergence-free MAC flow on ``fluid``: the curl of a random edge potential (zero on every edge
    touching a solid or the box), plus a uniform stream along x through the row y = 0 (in at x = 0,
    out at the far end; that row must be all fluid)."""
    nz, ny, nx = fluid.shape
    fp = np.pad(fluid, 1)
    ax = fp[:-1, :-1, 1:-1] & fp[:-1, 1:, 1:-1] & fp[1:, :-1, 1:-1] & fp[1:, 1:, 1:-1]  # (nz+1, ny+1, nx)
    ay = fp[:-1, 1:-1, :-1] & fp[:-1, 1:-1, 1:] & fp[1:, 1:-1, :-1] & fp[1:, 1:-1, 1:]  # (nz+1, ny, nx+1)
    az = fp[1:-1, :-1, :-1] & fp[1:-1, :-1, 1:] & fp[1:-1, 1:, :-1] & fp[1:-1, 1:, 1:]  # (nz, ny+1, nx+1)
    Ax, Ay, Az = (rng.normal(size=m.shape) * m for m in (ax, ay, az))
    fx = (Az[:, 1:, :] - Az[:, :-1, :]) - (Ay[1:] - Ay[:-1])  # (nz, ny, nx+1): circulation around each face
    fy = (Ax[1:] - Ax[:-1]) - (Az[:, :, 1:] - Az[:, :, :-1])  # (nz, ny+1, nx)
    fz = (Ay[:, :, 1:] - Ay[:, :, :-1]) - (Ax[:, 1:, :] - Ax[:, :-1, :])  # (nz+1, ny, nx)
    u, v, w = fx / h**2, fy / h**2, fz / h**2
    assert fluid[:, 0, :].all()
    u[:, 0, :] += 0.3
    return u, v, w


def test_staggered_faces_of_a_divergence_free_mac_flow_balance_on_the_column(rng):
    nz, ny, nx, h = 4, 4, 6, 0.5
    fluid = np.ones((nz, ny, nx), bool)
    fluid[:2, 2:, 2:4] = False  # a desk
    fluid[:, 3, 5] = False  # a pillar
    u, v, w = _solenoidal_mac(fluid, h, rng)
    ids, *faces = staggered_faces(fluid, u, v, w, h)
    face_cells, face_flux, bcells, bflux = faces
    n = int(fluid.sum())
    assert ids.max() == n - 1 and (ids[~fluid] == -1).all()
    fine = np.zeros(n)
    np.add.at(fine, face_cells[:, 0], face_flux)
    np.add.at(fine, face_cells[:, 1], -face_flux)
    np.add.at(fine, bcells, bflux)
    np.testing.assert_allclose(fine, 0.0, atol=1e-12)  # the fine flow is divergence-free to round-off
    inflow = 0.3 * nz * h**2
    assert bflux.min() == pytest.approx(-0.3 * h**2) and bflux.sum() == pytest.approx(0.0, abs=1e-12)
    kji = np.argwhere(ids >= 0)
    centres = (kji[:, ::-1] + 0.5) * h
    # Uneven layers (0.6, 0.65, 0.75 m) on plane cells of two fine cells.
    out = column_fluxes(centres, np.full(n, h**3), faces, x0=0.0, y0=0.0, cell_m=2 * h, shape=(2, 3),
                        levels_m=[0.3, 0.9, 1.6], height_m=nz * h)
    assert out["volume"].shape == (3, 2, 3)
    assert relative_divergence(out) < 1e-12 and np.abs(divergence(out)).max() < 1e-12
    assert out["volume"].sum() == pytest.approx(n * h**3, rel=1e-12)
    assert out["volume"][0, 1, 1] == pytest.approx(0.0)  # the desk fills that cell of the lowest layer
    np.testing.assert_allclose(out["outflow"][:, 0, 0].sum(), -inflow, rtol=1e-12)
    np.testing.assert_allclose(out["outflow"][:, 0, -1].sum(), inflow, rtol=1e-12)
    assert (out["flux_x"][:, :, -1] == 0).all() and (out["flux_y"][:, -1] == 0).all() and (out["flux_z"][-1] == 0).all()
    assert np.abs(out["flux_z"]).max() > 0 and np.abs(out["flux_y"]).max() > 0


# ----------------------------------------------------------------------------- embedded engine


@pytest.fixture(scope="module")
def tiny_embedded(tmp_path_factory):
    """The tiny preset's first scenario generated with the embedded engine (a few seconds)."""
    from plumecast.reference.generate import generate_embedded

    sset = load_scenario_set("tiny").select(["static-a"])
    out = tmp_path_factory.mktemp("embedded") / "tiny.nc"
    generate_embedded(sset, out)
    return sset, out


def test_embedded_engine_writes_balanced_level_fluxes(tiny_embedded):
    sset, out = tiny_embedded
    ds = read_dataset(out)
    assert all(name in ds.variables and ds[name].dims == ("level", "y", "x") for name in FLUX_VARS)
    fl = _fluxes_of(ds)
    assert relative_divergence(fl) < 1e-9
    grid = sset.room.discretise(sset.simulation.fine_cell_m)
    assert fl["volume"].sum() == pytest.approx(grid.fluid.sum() * grid.cell_m**3, rel=1e-12)
    assert fl["outflow"].sum() == pytest.approx(0.0, abs=1e-12)
    assert np.clip(fl["outflow"], 0, None).sum() == pytest.approx(grid.volume_flow_out_m3_s(), rel=1e-9)
    # The diffuser (ceiling) feeds the top level, the exhaust (x+ wall, low) drains the lowest ones.
    assert fl["outflow"][-1].min() < 0 and fl["outflow"][:, :, -1].max() > 0


def test_a_dataset_with_levels_but_no_fluxes_is_rebuilt_from_the_caches(tiny_embedded, tmp_path):
    from plumecast.reference.generate import existing_dataset_matches, generate_embedded

    sset, out = tiny_embedded
    ds = read_dataset(out)
    old = tmp_path / "tiny.nc"
    shutil.copytree(out.parent / ".plumecast-cache", tmp_path / ".plumecast-cache")
    write_dataset(ds.drop_vars(list(FLUX_VARS)), old)
    assert "u_level" in read_dataset(old).variables and not existing_dataset_matches(old, sset)
    report = generate_embedded(sset, old)
    assert not report.reused and report.flow_cached and report.scenarios_simulated == 0
    again = read_dataset(old)
    for name in FLUX_VARS:
        np.testing.assert_array_equal(again[name].values, ds[name].values)
    assert existing_dataset_matches(old, sset)


def test_a_tampered_flux_fails_to_load(tiny_embedded, tmp_path):
    _, out = tiny_embedded
    ds = read_dataset(out).load()
    fx = ds["flux_x_level"].values.copy()
    k, j, i = np.unravel_index(np.argmax(np.abs(fx[:, :, :-1])), fx[:, :, :-1].shape)
    fx[k, j, i] += 0.1 * np.abs(fx).max()  # one coarse face changed
    bad = tmp_path / "bad.nc"
    ds.assign(flux_x_level=(("level", "y", "x"), fx, ds["flux_x_level"].attrs)).to_netcdf(bad)  # unvalidated
    with pytest.raises(DatasetError, match="bad.nc: the coarse fluxes are not divergence-free"):
        read_dataset(bad)


def test_a_layer_is_empty_exactly_when_no_fine_cell_is_assigned_to_it():
    """The column check agrees with the assignment the fluxes are summed by, on a 3 m room of 0.25 m cells."""
    centres_z = (np.arange(12) + 0.5) * 0.25
    centres = np.stack([np.full(12, 0.1), np.full(12, 0.1), centres_z], 1)
    for n in range(1, 25):
        z = column_levels_m(3.0, 1.5, n)
        k = coarse_cell_index(centres, x0=0, y0=0, dx=1, dy=1, nx=1, ny=1, edges_z=level_edges_m(z, 3.0))[:, 0]
        assigned = np.bincount(k, minlength=len(z))
        assert (column_too_fine(3.0, 1.5, n, centres_z) is None) == bool((assigned > 0).all()), n
    # The OpenFOAM rooms' nine-level column (docs/results.md, session 42) fits the mesh; 24 layers do not.
    assert column_too_fine(3.0, 1.5, 10, centres_z) is None
    assert "finer than the mesh: more layers than its 12 cell centres" in column_too_fine(3.0, 1.5, 24, centres_z)
    assert "finer than the mesh: 11 of its 23 layers" in column_too_fine(3.0, 1.5, 24, np.repeat(centres_z, 4))
    assert finest_column_levels(3.0, 1.5, centres_z, upto=10) == 10
    assert finest_column_levels(3.0, 1.5, centres_z, upto=11) == 11  # 12 layers put edges on centres: a tie


def test_a_column_finer_than_the_fine_cells_is_refused_before_any_solve(tmp_path):
    """simulation.column_levels that leaves layers without a fine cell fails when the set loads, naming the fix."""
    path = tiny_variant(tmp_path, "fine_cell_m = 0.25", "fine_cell_m = 0.25\ncolumn_levels = 40")
    with pytest.raises(ScenarioError, match=r"column_levels = 40: a column of 40 layers is finer than the mesh.*"
                                            r"0.25 m fine cells in a room 1.5 m high.*column_levels = 6"):
        load_scenario_set(path)
    out = tmp_path / "d.nc"
    result = CliRunner().invoke(app, ["generate", str(path), "--out", str(out)])
    assert result.exit_code != 0 and "finer than the mesh" in " ".join(result.output.split()) and not out.exists()
    assert load_scenario_set(tiny_variant(tmp_path, "fine_cell_m = 0.25", "fine_cell_m = 0.25\ncolumn_levels = 6"))
    # An absurd count is refused as fast, without building its column.
    with pytest.raises(ScenarioError, match=r"more layers than its 6 cell centres.*column_levels = 6"):
        load_scenario_set(tiny_variant(tmp_path, "fine_cell_m = 0.25", "fine_cell_m = 0.25\ncolumn_levels = 1000000000"))


def test_a_dataset_with_an_empty_level_fails_to_load(tiny_embedded, tmp_path):
    """A column summed from a mesh coarser than it (a level without volume) is refused, the level named."""
    _, out = tiny_embedded
    ds = read_dataset(out).load()
    volume = ds["volume_level"].values.copy()
    volume[1] = 0.0
    bad = tmp_path / "bad.nc"
    ds.assign(volume_level=(("level", "y", "x"), volume, ds["volume_level"].attrs)).to_netcdf(bad)  # unvalidated
    z = float(ds["level"].values[1])
    with pytest.raises(DatasetError, match=rf"1 of the column's {ds.sizes['level']} levels \({z:g} m\) holds no fluid"):
        read_dataset(bad)


@pytest.mark.parametrize("damage", ["missing", "nan", "negative volume", "edge"])
def test_damaged_fluxes_fail_to_load_naming_the_problem(tiny_embedded, tmp_path, damage):
    _, out = tiny_embedded
    ds = read_dataset(out).load()
    if damage == "missing":
        ds, expected = ds.drop_vars("outflow_level"), "coarse fluxes need all of .*missing \\['outflow_level'\\]"
    else:
        name = {"nan": "flux_y_level", "negative volume": "volume_level", "edge": "flux_z_level"}[damage]
        values = ds[name].values.copy()
        if damage == "nan":
            values[0, 0, 0], expected = np.nan, "'flux_y_level' holds non-finite values"
        elif damage == "negative volume":
            values[0, 0, 0], expected = -1.0, "'volume_level' has negative values"
        else:
            values[-1, 0, 0], expected = 1.0, "'flux_z_level' must be 0 on the last cell"
        ds = ds.assign({name: (("level", "y", "x"), values, ds[name].attrs)})
    bad = tmp_path / "bad.nc"
    ds.to_netcdf(bad)  # unvalidated
    with pytest.raises(DatasetError, match=expected):
        read_dataset(bad)


# ----------------------------------------------------------------------------- OpenFOAM files (foamlib only)


def _write_phi(path: Path, internal, boundary, fmt: str) -> None:
    """A surfaceScalarField ``phi`` with one patch ``walls`` (as tests/_openfoam_case writes the mesh)."""
    from _openfoam_case import _header, _list

    head = _header(fmt, "surfaceScalarField", path.parent.name, "phi") + "\ndimensions [0 3 -1 0 0 0 0];\n\n"
    body = b"internalField   nonuniform List<scalar> " + _list(internal, fmt, "<f8").rstrip(b"\n") + b";\n"
    wall = b"nonuniform List<scalar> " + _list(boundary, fmt, "<f8").rstrip(b"\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(head.encode() + body + b"\nboundaryField\n{\n    walls\n    {\n        type calculated;\n"
                     b"        value " + wall + b";\n    }\n}\n")


@pytest.mark.parametrize("fmt", ["ascii", "binary"])
def test_importer_sums_a_uniform_flow_exactly(tmp_path, fmt):
    """phi of a uniform velocity on the importer tests' box (2 x 1 x 1 m of 0.25 m cells): every coarse
    face carries the velocity times its area, in ascii and in binary."""
    pytest.importorskip("foamlib", reason="needs foamlib: pip install 'plumecast[openfoam]'")
    from _openfoam_case import XS, YS, ZS, box_mesh, write_case

    from plumecast.io.openfoam import import_openfoam, read_face_fluxes

    U = np.array([0.1, -0.05, 0.02])
    case = write_case(tmp_path / "box", fmt, flow_dir="4")
    points, faces, owner, neighbour, n_cells, n_int = box_mesh(XS, YS, ZS)
    p = points[np.asarray(faces)]  # (F, 4, 3) quads
    area = 0.5 * np.cross(p[:, 2] - p[:, 0], p[:, 3] - p[:, 1])  # oriented: from owner to neighbour, or outward
    phi = area @ U
    _write_phi(case / "4" / "phi", phi[:n_int], phi[n_int:], fmt)
    face_cells, face_flux, bcells, bflux = read_face_fluxes(case, "4")
    np.testing.assert_array_equal(face_cells, np.stack([owner[:n_int], neighbour], axis=1))
    np.testing.assert_allclose(face_flux, phi[:n_int], rtol=0, atol=1e-17)
    np.testing.assert_array_equal(bcells, owner[n_int:])
    ds = import_openfoam(case, height_m=0.45, cell_m=0.5)
    z = ds["level"].values
    np.testing.assert_allclose(z, [0.25, 0.45, 0.65, 0.85])  # layers 0.25 m thick: one fine layer each
    fl = _fluxes_of(ds)
    L, ny, nx = fl["volume"].shape
    assert (L, ny, nx) == (4, 2, 4)
    np.testing.assert_allclose(fl["flux_x"][:, :, :-1], U[0] * 0.5 * 0.25, rtol=1e-12)
    np.testing.assert_allclose(fl["flux_y"][:, :-1], U[1] * 0.5 * 0.25, rtol=1e-12)
    np.testing.assert_allclose(fl["flux_z"][:-1], U[2] * 0.5 * 0.5, rtol=1e-12)
    np.testing.assert_allclose(fl["volume"], 0.5 * 0.5 * 0.25, rtol=1e-12)
    np.testing.assert_allclose(fl["outflow"][:, :, 0].sum(), -U[0] * 1.0 * 1.0, rtol=1e-12)  # in through x = 0
    assert relative_divergence(fl) < 1e-12
    assert "coarse level fluxes: " in ds.attrs["history"] and "/4/phi summed onto the column" in ds.attrs["history"]


def test_importer_without_phi_writes_no_fluxes_and_says_so(tmp_path):
    pytest.importorskip("foamlib", reason="needs foamlib: pip install 'plumecast[openfoam]'")
    from _openfoam_case import write_case

    from plumecast.io.openfoam import OpenFOAMImportError, import_openfoam

    case = write_case(tmp_path / "box")
    ds = import_openfoam(case, height_m=0.45, cell_m=0.5)
    assert "u_level" in ds and not any(name in ds for name in FLUX_VARS)
    assert f"coarse level fluxes: not written, no phi at the flow time 0 ({case}/0/phi is missing)" in ds.attrs["history"]
    (case / "0" / "phi").write_text("FoamFile\n{\n    format ascii;\n    class surfaceScalarField;\n}\n"
                                    "internalField nonuniform List<scalar> 5 (1 2 3);\n")
    with pytest.raises(OpenFOAMImportError, match=r"box/0/phi:\d+: .*"):
        import_openfoam(case, height_m=0.45, cell_m=0.5)


# ----------------------------------------------------------------------------- OpenFOAM (needs OpenFOAM)


@pytest.mark.openfoam
def test_openfoam_engine_writes_balanced_level_fluxes(tiny_openfoam, tmp_path):
    sset, ds, _, work = tiny_openfoam
    fl = _fluxes_of(ds)
    assert fl["volume"].shape == (ds.sizes["level"], ds.sizes["y"], ds.sizes["x"])
    # simpleFoam's own continuity error (p solved to relTol 0.05) is what remains: 1.8e-4 measured.
    assert relative_divergence(fl) < 1e-3
    grid = sset.room.discretise(sset.simulation.fine_cell_m)
    assert fl["volume"].sum() == pytest.approx(grid.fluid.sum() * grid.cell_m**3, rel=1e-9)
    assert np.clip(fl["outflow"], 0, None).sum() == pytest.approx(grid.volume_flow_out_m3_s(), rel=1e-6)
    back = read_dataset(write_dataset(ds, tmp_path / "of.nc"))
    for name in FLUX_VARS:
        np.testing.assert_array_equal(back[name].values, ds[name].values)


@pytest.mark.openfoam
def test_importing_the_finished_openfoam_case_gives_the_same_fluxes(tiny_openfoam, tmp_path):
    """``plumecast import openfoam`` of the flow case (its k as the scalar), and of a scenario case with that
    flow case decomposed over two processors (processor patches joined, cells put back in mesh order)."""
    from typer.testing import CliRunner

    from plumecast.cli import app
    from plumecast.io.openfoam import import_openfoam
    from plumecast.reference import openfoam_engine as ofe

    sset, ds, _, work = tiny_openfoam
    flow = next(work.glob("flow-*"))
    sim = sset.simulation
    out = tmp_path / "flow.nc"
    result = CliRunner().invoke(app, ["import", "openfoam", str(flow), "--field", "k", "--height",
                                      str(sim.plane_height_m), "--cell", str(sim.plane_cell_m), "--levels",
                                      str(sim.column_levels), "--out", str(out)])
    assert result.exit_code == 0, result.output
    imported = read_dataset(out)
    np.testing.assert_allclose(imported["level"].values, ds["level"].values, rtol=1e-12)
    for name in FLUX_VARS:
        np.testing.assert_allclose(imported[name].values, ds[name].values, rtol=0, atol=1e-15, err_msg=name)

    if ofe.openfoam_missing(procs=2):
        pytest.skip("decomposePar missing")
    dec = tmp_path / "decomposed"
    shutil.copytree(flow, dec, ignore=shutil.ignore_patterns("processor*"))
    final = ofe._latest_time(dec)
    ofe.decompose(dec, 2, sset.room.size_m)
    ofe.run_app(dec, "decomposePar", "-force", "-latestTime")
    for t in [d for d in dec.iterdir() if d.name not in ("0", "constant", "system") and d.name[0].isdigit()]:
        shutil.rmtree(t)  # only the processors hold the flow now
    scalar = work / f"scalar-{sset.scenarios[0].name}"
    both = import_openfoam(scalar, height_m=sim.plane_height_m, cell_m=sim.plane_cell_m, field_name="s", flow_case=dec,
                           levels=sim.column_levels)
    assert f"{dec}/processor*/{final}/phi summed onto the column" in both.attrs["history"]
    scale = float(np.abs(ds["flux_z_level"].values).max())
    for name in FLUX_VARS:
        np.testing.assert_allclose(both[name].values, ds[name].values, rtol=0, atol=1e-12 * scale, err_msg=name)


def test_a_column_run_takes_the_fluxes_where_the_data_has_them(tiny_embedded):
    """``flow = "auto"``: fluxes for a physics with the column on data with fluxes; sampled otherwise."""
    from plumecast.errors import TrainError
    from plumecast.forcing import prepare_data
    from plumecast.forecast import final_time_errors
    from plumecast.train import TrainConfig, build_system
    from plumecast.train.config import PhysicsSettings

    _, out = tiny_embedded
    ds = read_dataset(out)
    prep = prepare_data(ds, 0.4)
    column = build_system(ds, TrainConfig(variant="column"), prep)
    assert column[0].config.flow == "fluxes" and column[0].level_flux is not None
    memory = build_system(ds, TrainConfig(variant="memory", closure_options={"reservoir": "column"}), prep)
    assert memory[0].config.flow == "fluxes"
    assert build_system(ds, TrainConfig(variant="physics"), prep)[0].config.flow == "sampled"
    no_flux = ds.drop_vars(list(FLUX_VARS))
    assert build_system(no_flux, TrainConfig(variant="column"), prep)[0].config.flow == "sampled"
    with pytest.raises(TrainError, match="summed fluxes"):
        build_system(no_flux, TrainConfig(variant="column", physics=PhysicsSettings(flow="fluxes")), prep)
    # The untrained flux column forecasts the embedded truth it was built from closely.
    errors = final_time_errors(column, prepare_data(ds, 0.4, fluid=np.asarray(column[0].fluid)), [0])
    assert np.isfinite(errors).all() and errors[0] < 0.5
