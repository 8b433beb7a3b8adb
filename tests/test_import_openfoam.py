"""OpenFOAM case importer: cases written here (ascii, binary, decomposed), bad input, CLI.

The cases are written by the small writer of ``_openfoam_case`` (a box of hexahedra with optional solid
cells and graded spacing), so these tests need foamlib but no OpenFOAM binaries.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from plumecast.cli import app
from plumecast.io.dataset import read_dataset

pytest.importorskip("foamlib", reason="needs foamlib: pip install 'plumecast[openfoam]'")

from plumecast.io.openfoam import OpenFOAMImportError, import_openfoam, read_case, read_faces, read_mesh  # noqa: E402

from _openfoam_case import XS, YS, ZS, box_mesh, centres, scalar_at, write_case, write_field, write_mesh  # noqa: E402

runner = CliRunner()

# ----------------------------------------------------------------------------- reading


@pytest.mark.parametrize("fmt", ["ascii", "binary"])
def test_ascii_and_binary_cases_give_exact_linear_planes(tmp_path, fmt):
    case = write_case(tmp_path / f"case-{fmt}", fmt)
    geom = read_mesh(case / "constant/polyMesh")
    assert geom.n_cells == 128 and geom.volumes.sum() == pytest.approx(2.0)
    # Plane at 0.45 m between layers at 0.375 and 0.625: linear interpolation, then 0.5 m cells.
    ds = import_openfoam(case, height_m=0.45, cell_m=0.5)
    assert (ds.sizes["y"], ds.sizes["x"], ds.sizes["time"]) == (2, 4, 3)
    np.testing.assert_allclose(ds["time"].values, [0, 2, 4])
    X, Y = np.meshgrid(ds["x"].values, ds["y"].values)
    np.testing.assert_allclose(ds["concentration"].values[0, 2], scalar_at(X, Y, 0.45, 4.0), rtol=1e-6)
    np.testing.assert_allclose(ds["u"].values, 0.1 * X, rtol=1e-12)
    np.testing.assert_allclose(ds["v"].values, -0.2 * Y, rtol=1e-12)
    np.testing.assert_allclose(ds["w"].values, 0.05, rtol=1e-12)
    np.testing.assert_allclose(ds["nu_t"].values, 1e-3 * (1 + X), rtol=1e-12)
    assert (ds["fluid_fraction"].values == 1).all()
    # The 3D mass in the case: integral of the scalar over the room.
    assert ds["mass_room"].values[0, 1] == pytest.approx(2.0 * 2.0 * (1 + 1 + 1 + 1.5), rel=1e-9)


@pytest.mark.parametrize("fmt", ["ascii", "binary"])
def test_read_faces_gives_face_centres_and_owners(tmp_path, fmt):
    solid = np.zeros((4, 4, 8), bool)
    solid[:2, 1:3, 3:5] = True
    write_mesh(tmp_path, XS, YS, ZS, solid, fmt)
    points, faces, owner, _, _, _ = box_mesh(XS, YS, ZS, solid)
    fc, own = read_faces(tmp_path / "constant/polyMesh")
    np.testing.assert_array_equal(own, owner)
    np.testing.assert_allclose(fc, points[np.asarray(faces)].mean(axis=1), rtol=0, atol=1e-12)
    # Every face lies half a cell from its owner's centre along one axis (a box of 0.25 m hexes).
    geom = read_mesh(tmp_path / "constant/polyMesh")
    d = np.sort(np.abs(fc - geom.centres[own]), axis=1)
    np.testing.assert_allclose(d, np.broadcast_to([0.0, 0.0, 0.125], d.shape), rtol=0, atol=1e-12)


def test_graded_mesh_with_obstacle(tmp_path):
    xs = np.concatenate([np.linspace(0, 1, 3), np.linspace(1, 2, 9)[1:]])  # 0.5 m then 0.125 m cells
    zs = np.array([0.0, 0.2, 0.5, 0.9, 1.2])
    solid = np.zeros((4, 4, 10), bool)
    solid[:2, :2, 6:] = True  # a box x in [1.5, 2], y in [0, 0.5], z in [0, 0.5]: its top at 0.5 m
    case = write_case(tmp_path / "graded", xs=xs, zs=zs, solid=solid, times=(1.0,))
    ds = import_openfoam(case, height_m=0.5, cell_m=0.5)  # exactly the obstacle's top: solid there
    frac = ds["fluid_fraction"].values
    assert frac[0, 3] == 0 and frac[1, 3] == 1 and frac[0, 0] == 1
    assert ds["concentration"].values[0, 0, 0, 3] == 0
    ds = import_openfoam(case, height_m=0.7, cell_m=0.5)  # inside the layer 0.5-0.9 (centre 0.7)
    X, Y = np.meshgrid(ds["x"].values, ds["y"].values)
    np.testing.assert_allclose(ds["concentration"].values[0, 0], scalar_at(X, Y, 0.7, 1.0), rtol=1e-6)
    assert (ds["fluid_fraction"].values == 1).all()
    with pytest.raises(OpenFOAMImportError, match=r"coarser than the 0.25 m plane cells; choose --cell >= 0.5"):
        import_openfoam(case, height_m=0.7, cell_m=0.25)


def test_decomposed_case_is_read_by_concatenation(tmp_path):
    full = import_openfoam(write_case(tmp_path / "whole"), height_m=0.45, cell_m=0.5)
    case = tmp_path / "decomposed"
    write_mesh(case, XS, YS, ZS)  # the undecomposed mesh, as decomposePar leaves it
    for n, xs in enumerate((XS[:5], XS[4:])):
        write_case(case / f"processor{n}", xs=xs)
    data = read_case(case)
    assert data.decomposed == 2 and data.geometry.n_cells == 128
    ds = import_openfoam(case, height_m=0.45, cell_m=0.5)
    np.testing.assert_allclose(ds["concentration"].values, full["concentration"].values, rtol=1e-12)
    assert "2 processor folders" in ds.attrs["history"]


def test_scalar_named_s_and_flow_in_latest_time(tmp_path):
    case = write_case(tmp_path / "s", scalar="s", flow_dir="4", fmt="binary")
    ds = import_openfoam(case, height_m=0.5, cell_m=0.5)
    assert '"field": "s"' in ds.attrs["scenario_config"] and '"flow_time": "4"' in ds.attrs["scenario_config"]


# ----------------------------------------------------------------------------- bad input


def _truncate(path: Path, keep=0.6):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize("fmt", ["ascii", "binary"])
def test_malformed_cases(tmp_path, fmt):
    case = write_case(tmp_path / "c", fmt)
    _truncate(case / "2" / "T")
    with pytest.raises(OpenFOAMImportError, match=r"c/2/T:\d+: .*truncated"):
        import_openfoam(case, height_m=0.5, cell_m=0.5)

    case = write_case(tmp_path / "m", fmt)
    _truncate(case / "constant/polyMesh/points")
    with pytest.raises(OpenFOAMImportError, match=r"polyMesh/points:\d+: .*truncated"):
        import_openfoam(case, height_m=0.5, cell_m=0.5)

    if fmt == "ascii":  # a garbled number names its line
        case = write_case(tmp_path / "g", fmt)
        text = (case / "2" / "T").read_text()
        lines = text.splitlines()
        k = next(i for i, ln in enumerate(lines) if ln.startswith("internalField")) + 5
        lines[k] = "1.2.3"
        (case / "2" / "T").write_text("\n".join(lines) + "\n")
        with pytest.raises(OpenFOAMImportError, match=rf"g/2/T:{k + 1}: '1.2.3' is not a number"):
            import_openfoam(case, height_m=0.5, cell_m=0.5)
        (case / "2" / "T").write_text(text.replace("128\n(", "130\n(", 1))
        with pytest.raises(OpenFOAMImportError, match=r"g/2/T:\d+: the list announces 130 values but holds 128"):
            import_openfoam(case, height_m=0.5, cell_m=0.5)

    case = write_case(tmp_path / "n", fmt, skip=("nut",))
    with pytest.raises(OpenFOAMImportError, match=r"missing field: no time directory holds nut"):
        import_openfoam(case, height_m=0.5, cell_m=0.5)

    case = write_case(tmp_path / "q", fmt, times=())
    with pytest.raises(OpenFOAMImportError, match=r"missing field: no scalar named T or s.*fields found: U, nut"):
        import_openfoam(case, height_m=0.5, cell_m=0.5)
    with pytest.raises(OpenFOAMImportError, match=r"no time directory holds the scalar 'C'"):
        import_openfoam(case, height_m=0.5, cell_m=0.5, field_name="C")

    case = write_case(tmp_path / "nan", fmt)
    x, y, z = centres(XS, YS, ZS)
    bad = scalar_at(x, y, z, 2.0)
    bad[7] = np.nan
    write_field(case / "2" / "T", "T", bad, fmt)
    with pytest.raises(OpenFOAMImportError, match=r"nan/2/T: field holds 1 cells of NaN or inf"):
        import_openfoam(case, height_m=0.5, cell_m=0.5)

    case = write_case(tmp_path / "size", fmt)
    write_field(case / "4" / "T", "T", np.ones(100), fmt)
    with pytest.raises(OpenFOAMImportError, match=r"size/4/T: field has 100 values .* mesh has 128 cells.*disagree"):
        import_openfoam(case, height_m=0.5, cell_m=0.5)
    write_field(case / "4" / "T", "T", np.ones((128, 3)), fmt)
    with pytest.raises(OpenFOAMImportError, match=r"size/4/T: field has 128 values of shape \(3,\)"):
        import_openfoam(case, height_m=0.5, cell_m=0.5)


def test_other_errors(tmp_path):
    case = write_case(tmp_path / "c")
    with pytest.raises(OpenFOAMImportError, match=r"plane height 1.5 m is outside the mesh's z range"):
        import_openfoam(case, height_m=1.5, cell_m=0.5)
    with pytest.raises(OpenFOAMImportError, match="no such case directory"):
        import_openfoam(tmp_path / "absent", height_m=0.5, cell_m=0.5)
    dec = tmp_path / "dec"
    write_mesh(dec, XS, YS, ZS)
    write_field(dec / "0" / "T", "T", np.zeros(128))
    (dec / "processor0").mkdir()
    (dec / "processor1").mkdir()
    with pytest.raises(OpenFOAMImportError, match=r"processor0: decomposed case without time directories"):
        import_openfoam(dec, height_m=0.5, cell_m=0.5)
    empty = tmp_path / "empty"
    (empty / "0").mkdir(parents=True)
    with pytest.raises(OpenFOAMImportError, match="missing field"):
        import_openfoam(empty, height_m=0.5, cell_m=0.5)


# ----------------------------------------------------------------------------- CLI


def test_cli_import_with_source_toml(tmp_path):
    case = write_case(tmp_path / "room", "binary")
    src = tmp_path / "src.toml"
    src.write_text('name = "moving-1"\nsplit = "ood"\n[source]\npath = [[0.0, 0.2, 0.2, 0.5], [4.0, 1.8, 0.2, 0.5]]\n'
                   "rate = [[0.0, 1.0], [4.0, 3.0]]\n")
    out = tmp_path / "o.nc"
    result = runner.invoke(app, ["import", "openfoam", str(case), "--height", "0.45", "--cell", "0.5", "--out",
                                 str(out), "--source-toml", str(src)])
    assert result.exit_code == 0, result.output
    ds = read_dataset(out)
    assert ds["scenario"].values.tolist() == ["moving-1"] and ds["split"].values.tolist() == ["ood"]
    np.testing.assert_allclose(ds["source_x"].values[0], [0.2, 1.0, 1.8])
    np.testing.assert_allclose(ds["source_rate"].values[0], [1.0, 2.0, 3.0])


@pytest.mark.parametrize(
    "setup, extra, message",
    [
        ("nan", [], "field holds 1 cells of NaN"),
        ("ok", ["--field", "C"], "no time directory holds the scalar 'C'"),
        ("ok", ["--source-rate", "1"], "--source-rate needs --source-position"),
        ("ok", ["--split", "x"], "--split must be one of"),
        ("nonut", [], "missing field: no time directory holds nut"),
    ],
)
def test_cli_failures_write_nothing(tmp_path, setup, extra, message):
    case = write_case(tmp_path / "room", skip=("nut",) if setup == "nonut" else ())
    if setup == "nan":
        write_field(case / "2" / "T", "T", np.r_[np.nan, np.zeros(127)])
    out = tmp_path / "o.nc"
    result = runner.invoke(app, ["import", "openfoam", str(case), "--height", "0.45", "--cell", "0.5", "--out",
                                 str(out), *extra])
    assert result.exit_code != 0
    assert message in " ".join(result.output.split())
    assert not out.exists() and not list(tmp_path.glob(".o.nc*"))
