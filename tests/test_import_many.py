"""Importing many CFD cases into one dataset: manifest, --flow-case, parallel parsing, flow levels, info.

The OpenFOAM cases are written by ``_openfoam_case`` (no OpenFOAM binaries needed, foamlib
is); the Fluent exports by the report writer of ``test_import_fluent``.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from plumecast.cli import app
from plumecast.io.dataset import DEFAULT_COLUMN_LEVELS, column_levels_m, read_dataset

pytest.importorskip("foamlib", reason="needs foamlib: pip install 'plumecast[openfoam]'")

from plumecast.io.openfoam import (  # noqa: E402
    CaseSpec,
    OpenFOAMImportError,
    _fast_internal_field,
    _fast_mesh_list,
    import_openfoam,
    import_openfoam_cases,
    read_field,
    read_mesh,
)
from plumecast.scenario import Source  # noqa: E402

from _openfoam_case import XS, YS, ZS, centres, write_case, write_field  # noqa: E402
from test_import_fluent import CELLS, write  # noqa: E402

runner = CliRunner()


def _one_line(result) -> str:
    return " ".join(result.output.split())


def _no_output(out: Path) -> bool:
    return not out.exists() and not list(out.parent.glob(f".{out.name}*"))


# ----------------------------------------------------------------------------- the numpy readers


@pytest.mark.parametrize("fmt", ["ascii", "binary"])
def test_fast_readers_equal_foamlib(tmp_path, fmt):
    """The numpy readers take the common forms and give foamlib's values exactly; odd forms fall back."""
    rng = np.random.default_rng(3)
    xs = np.concatenate([np.linspace(0, 1, 3), np.linspace(1, 2, 9)[1:]])  # graded: 10 cells along x
    solid = np.zeros((4, 4, 10), bool)
    solid[:2, 1:3, 3:5] = True
    case = write_case(tmp_path / "c", fmt, xs=xs, solid=solid, times=(1.0,))
    n = int((~solid).sum())
    # Values over many decades and both signs, in the exponent forms an ascii file holds.
    values = rng.standard_normal(n) * 10.0 ** rng.integers(-12, 12, n)
    write_field(case / "1" / "T", "T", values, fmt)
    write_field(case / "1" / "U", "U", rng.standard_normal((n, 3)) * 1e-7, fmt)
    for name, vector in (("T", False), ("U", True)):
        path = case / "1" / name
        assert _fast_internal_field(path.read_bytes(), vector) is not None  # the fast path is taken
        fast, slow = read_field(path, n, vector=vector), read_field(path, n, vector=vector, fast=False)
        np.testing.assert_array_equal(fast, slow)
    np.testing.assert_array_equal(read_field(case / "1" / "T", n), values)
    mesh = case / "constant/polyMesh"
    for name, element in (("points", (24,)), ("faces", (4, 4)), ("owner", (4,)), ("neighbour", (4,))):
        assert _fast_mesh_list((mesh / name).read_bytes(), element) is not None, name
    a, b = read_mesh(mesh), read_mesh(mesh, fast=False)
    for attr in ("centres", "volumes", "lo", "hi"):
        np.testing.assert_array_equal(getattr(a, attr), getattr(b, attr))
    # A comment inside the list is not the common form: the checked foamlib path reads it.
    text = (case / "1" / "T").read_bytes()
    if fmt == "ascii":
        odd = text.replace(b"(\n", b"(\n// a comment\n", 1)
        assert _fast_internal_field(odd, False) is None
        (case / "1" / "T").write_bytes(odd)
        np.testing.assert_array_equal(read_field(case / "1" / "T", n), values)


# ----------------------------------------------------------------------------- many OpenFOAM cases


def _sources():
    return [
        Source(rate=((0.0, 1.0),), position_m=(0.3, 0.3, 0.5)),
        Source(rate=((0.0, 1.0), (4.0, 3.0)), path=((0.0, 0.2, 0.2, 0.5), (4.0, 1.8, 0.2, 0.5))),
        None,
    ]


@pytest.fixture
def three_cases(tmp_path):
    """Three cases of one mesh and one flow: ascii, binary and decomposed, each its own scalar."""
    a = write_case(tmp_path / "cases" / "a", "ascii", scale=1.0)
    b = write_case(tmp_path / "cases" / "b", "binary", scale=2.0)
    c = tmp_path / "cases" / "c"
    shutil.copytree(a / "constant", c / "constant")  # decomposePar leaves the whole mesh in place
    for n, xs in enumerate((XS[:5], XS[4:])):  # two processors, x < 1 and x > 1: cells in another order
        write_case(c / f"processor{n}", xs=xs, scale=3.0)
    return [a, b, c]


def test_many_cases_equal_their_single_imports(three_cases):
    splits = ["train", "val", "ood"]
    specs = [CaseSpec(p, f"s-{p.name}", s, src) for p, s, src in zip(three_cases, splits, _sources())]
    done = []
    many = import_openfoam_cases(specs, height_m=0.45, cell_m=0.5, jobs=2, progress=lambda d, t: done.append((d, t)))
    assert many["scenario"].values.tolist() == ["s-a", "s-b", "s-c"]
    assert many["split"].values.tolist() == splits
    assert done[0] == (0, 3) and done[-1] == (3, 3)
    for k, spec in enumerate(specs):
        one = import_openfoam(spec.path, height_m=0.45, cell_m=0.5, scenario_name=spec.name, split=spec.split,
                              source=spec.source)
        np.testing.assert_array_equal(many["concentration"].values[k], one["concentration"].values[0])
        for var in ("source_x", "source_y", "source_z", "source_rate", "mass_room"):
            np.testing.assert_array_equal(many[var].values[k], one[var].values[0], err_msg=var)
        for var in ("u", "v", "w", "nu_t", "fluid_fraction", "u_level", "nu_t_level"):
            np.testing.assert_array_equal(many[var].values, one[var].values, err_msg=var)
    # The cases differ (their scalar is scaled 1, 2, 3), so a mix-up of cases would show.
    c = many["concentration"].values
    np.testing.assert_allclose(c[1], 2 * c[0], rtol=1e-6)
    np.testing.assert_allclose(c[2], 3 * c[0], rtol=1e-6)
    assert "3 cases" in many.attrs["history"].splitlines()[0]


def test_one_case_in_several_jobs_equals_one_job(three_cases):
    one = import_openfoam(three_cases[0], height_m=0.45, cell_m=0.5)
    split = import_openfoam(three_cases[0], height_m=0.45, cell_m=0.5, jobs=2)  # its times in two chunks
    np.testing.assert_array_equal(split["concentration"].values, one["concentration"].values)


def _manifest(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "cases.toml"
    path.write_text(body)
    return path


MANIFEST = """
mass_unit = "ug"

[[case]]
dir = "cases/a"
name = "static-a"
split = "train"
[case.source]
position_m = [0.3, 0.3, 0.5]
rate = [[0.0, 1.0]]

[[case]]
dir = "cases/b"
split = "val"
[case.source]
path = [[0.0, 0.2, 0.2, 0.5], [4.0, 1.8, 0.2, 0.5]]
rate = [[0.0, 1.0], [4.0, 3.0]]

[[case]]
dir = "cases/c"
split = "ood"
"""


def test_cli_manifest_import(tmp_path, three_cases):
    out = tmp_path / "many.nc"
    result = runner.invoke(app, ["import", "openfoam", "--manifest", str(_manifest(tmp_path, MANIFEST)),
                                 "--height", "0.45", "--cell", "0.5", "--out", str(out), "--jobs", "2"])
    assert result.exit_code == 0, result.output
    ds = read_dataset(out)
    assert ds["scenario"].values.tolist() == ["static-a", "b", "c"]
    assert ds["split"].values.tolist() == ["train", "val", "ood"] and ds.attrs["mass_unit"] == "ug"
    one = import_openfoam(three_cases[1], height_m=0.45, cell_m=0.5, source=_sources()[1])
    np.testing.assert_allclose(ds["concentration"].values[1], one["concentration"].values[0], rtol=1e-6)
    np.testing.assert_array_equal(ds["source_x"].values[1], one["source_x"].values[0])
    # The same cases as arguments: names from the folders, one split for all.
    out2 = tmp_path / "args.nc"
    result = runner.invoke(app, ["import", "openfoam", *map(str, three_cases), "--height", "0.45", "--cell", "0.5",
                                 "--out", str(out2), "--split", "test", "--jobs", "1"])
    assert result.exit_code == 0, result.output
    ds2 = read_dataset(out2)
    assert ds2["scenario"].values.tolist() == ["a", "b", "c"] and set(ds2["split"].values) == {"test"}
    np.testing.assert_allclose(ds2["concentration"].values, ds["concentration"].values, rtol=1e-6)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m.replace('split = "val"', 'split = "dev"'), "split"),
        (lambda m: m.replace('dir = "cases/b"', 'dir = "cases/nope"'), "no such case directory"),
        (lambda m: m.replace('dir = "cases/b"', 'dir = "cases/b"\nsplt = "x"'), "did you mean 'split'"),
        (lambda m: m.replace('dir = "cases/c"', 'dir = "cases/a"\nname = "static-a"'), "already used"),
        (lambda m: m.replace('dir = "cases/b"', 'dir = "cases/other"'),
         r"case 'other' \(.*other\): its mesh differs from case 'static-a'.*64 cells against 128"),
        (lambda m: m.replace('dir = "cases/b"', 'dir = "cases/bad"'), r"case 'bad' \(.*bad\): .*bad/2/T: field holds 1"),
    ],
)
def test_cli_manifest_errors_write_nothing(tmp_path, three_cases, edit, message):
    write_case(tmp_path / "cases" / "other", xs=np.linspace(0.0, 2.0, 5))  # 4 cells along x, not 8
    bad = write_case(tmp_path / "cases" / "bad")
    x, y, z = centres(XS, YS, ZS)
    write_field(bad / "2" / "T", "T", np.r_[np.nan, np.zeros(len(x) - 1)])
    out = tmp_path / "many.nc"
    result = runner.invoke(app, ["import", "openfoam", "--manifest", str(_manifest(tmp_path, edit(MANIFEST))),
                                 "--height", "0.45", "--cell", "0.5", "--out", str(out), "--jobs", "2"])
    assert result.exit_code != 0
    assert re.search(message, _one_line(result)), result.output
    assert _no_output(out)


def test_cases_must_share_flow_and_times(tmp_path):
    a = write_case(tmp_path / "a")
    b = write_case(tmp_path / "b", flow_scale=2.0)
    with pytest.raises(OpenFOAMImportError, match=r"case 'b' .*its flow .* differs from case 'a'.*--flow-case"):
        import_openfoam_cases([a, b], height_m=0.45, cell_m=0.5)
    c = write_case(tmp_path / "c", times=(0.0, 2.0))
    with pytest.raises(OpenFOAMImportError, match=r"case 'c' .*its 2 times of 'T' .* differ from case 'a'"):
        import_openfoam_cases([a, c], height_m=0.45, cell_m=0.5)
    with pytest.raises(OpenFOAMImportError, match=r"scenario name 'a' is already used"):
        import_openfoam_cases([a, a], height_m=0.45, cell_m=0.5)


# ----------------------------------------------------------------------------- --flow-case


def test_flow_case_supplies_u_and_nut(tmp_path):
    full = write_case(tmp_path / "full", flow_scale=1.5)
    flow = write_case(tmp_path / "flow", times=(), flow_dir="100", flow_scale=1.5)  # simpleFoam's last time
    write_field(flow / "0" / "U", "U", np.zeros((128, 3)))  # the initial field must not be taken
    write_field(flow / "0" / "nut", "nut", np.zeros(128))
    scalars = [write_case(tmp_path / f"s{k}", skip=("U", "nut"), scale=k + 1.0) for k in range(2)]
    with pytest.raises(OpenFOAMImportError, match=r"s0: missing field: no time directory holds U and nut; .*--flow-case"):
        import_openfoam_cases(scalars, height_m=0.45, cell_m=0.5)
    ds = import_openfoam_cases(scalars, height_m=0.45, cell_m=0.5, flow_case=flow)
    ref = import_openfoam(full, height_m=0.45, cell_m=0.5)
    for var in ("u", "v", "w", "nu_t", "u_level", "v_level", "w_level", "nu_t_level"):
        np.testing.assert_array_equal(ds[var].values, ref[var].values, err_msg=var)
    assert ds["nu_t"].values.max() > 0
    np.testing.assert_allclose(ds["concentration"].values[1], 2 * ref["concentration"].values[0], rtol=1e-6)
    assert f"flow case {flow} at time 100" in ds.attrs["history"]
    # The CLI: without --flow-case a clear message, with it the dataset.
    out = tmp_path / "o.nc"
    args = ["import", "openfoam", *map(str, scalars), "--height", "0.45", "--cell", "0.5", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code != 0 and "give --flow-case DIR" in _one_line(result) and _no_output(out)
    result = runner.invoke(app, args + ["--flow-case", str(flow)])
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(read_dataset(out)["nu_t"].values, ref["nu_t"].values)
    other = write_case(tmp_path / "other-flow", xs=np.linspace(0.0, 2.0, 5), times=())
    with pytest.raises(OpenFOAMImportError, match=r"flow case .*other-flow: its mesh differs"):
        import_openfoam_cases(scalars, height_m=0.45, cell_m=0.5, flow_case=other)


# ----------------------------------------------------------------------------- flow levels


def test_levels_are_written_and_the_plane_level_is_the_plane(tmp_path):
    zs = np.linspace(0.0, 2.5, 11)  # a 2.5 m room of 0.25 m layers
    case = write_case(tmp_path / "tall", zs=zs, times=(1.0,))
    x, y, z = centres(XS, YS, zs)
    U = np.stack([0.1 * x + z, -0.2 * y, 0.05 * z], 1)  # a flow that changes with height
    write_field(case / "0" / "U", "U", U)
    write_field(case / "0" / "nut", "nut", 1e-3 * (1 + z))
    ds = import_openfoam(case, height_m=1.25, cell_m=0.5, levels=5)
    z_levels = ds["level"].values
    np.testing.assert_allclose(z_levels, [0.25, 0.75, 1.25, 1.75, 2.25])
    k = int(np.flatnonzero(np.isclose(z_levels, 1.25))[0])
    for var in ("u", "v", "w", "nu_t"):
        np.testing.assert_array_equal(ds[f"{var}_level"].values[k], ds[var].values)
    # Each level holds the flow of the cell layer whose centre it is (the flow is linear in z).
    X, _ = np.meshgrid(ds["x"].values, ds["y"].values)
    for k, zk in enumerate(z_levels):
        np.testing.assert_allclose(ds["u_level"].values[k], 0.1 * X + zk, rtol=1e-12)
        np.testing.assert_allclose(ds["nu_t_level"].values[k], 1e-3 * (1 + zk), rtol=1e-12)
    assert "flow levels: U and nut at 5 heights" in ds.attrs["history"]
    none = import_openfoam(case, height_m=1.25, cell_m=0.5, levels=0)
    assert "u_level" not in none and "level" not in none.coords
    out = tmp_path / "o.nc"
    result = runner.invoke(app, ["import", "openfoam", str(case), "--height", "1.25", "--cell", "0.5",
                                 "--levels", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert read_dataset(out).sizes["level"] == 3


def test_the_default_column_is_the_finest_the_mesh_allows_and_a_finer_one_is_refused(tmp_path):
    """Without --levels: the finest column of up to DEFAULT_COLUMN_LEVELS layers with a mesh cell in each."""
    zs = np.linspace(0.0, 3.0, 13)  # a 3 m room of 0.25 m layers, as the OpenFOAM presets' meshes
    case = write_case(tmp_path / "tall", zs=zs, times=(1.0,))
    x, y, z = centres(XS, YS, zs)
    write_field(case / "0" / "U", "U", np.stack([0.1 * x, -0.2 * y, 0.05 * z], 1))
    write_field(case / "0" / "nut", "nut", 1e-3 * (1 + z))
    ds = import_openfoam(case, height_m=1.5, cell_m=0.5)
    np.testing.assert_allclose(ds["level"].values, column_levels_m(3.0, 1.5, DEFAULT_COLUMN_LEVELS))
    assert f"column of {DEFAULT_COLUMN_LEVELS} layers" in ds.attrs["history"]
    with pytest.raises(OpenFOAMImportError, match=r"--levels 24: a column of 24 layers is finer than the mesh") as e:
        import_openfoam(case, height_m=1.5, cell_m=0.5, levels=24)
    finest = int(re.search(r"the finest column this mesh allows has --levels (\d+)", str(e.value)).group(1))
    assert 10 <= finest < 24  # the fix it names works
    assert import_openfoam(case, height_m=1.5, cell_m=0.5, levels=finest).sizes["level"] >= 9
    out = tmp_path / "o.nc"
    result = runner.invoke(app, ["import", "openfoam", str(case), "--height", "1.5", "--cell", "0.5",
                                 "--levels", "24", "--out", str(out)])
    assert result.exit_code != 0 and "finer than the mesh" in _one_line(result) and _no_output(out)


# ----------------------------------------------------------------------------- many Fluent exports


def _export(folder: Path, scale: float, flow: bool = True, u_scale: float = 1.0) -> Path:
    folder.mkdir(parents=True)
    if flow:
        write(folder, "nut.txt", "Turbulent Viscosity", "kg/(m s)", lambda i, j: 0.001 * (i + j))
        write(folder, "u.txt", "X Velocity", "m/s", lambda i, j: 0.1 * i * u_scale)
    for t in (5, 10):
        write(folder, f"co2_t{t}.txt", "Concentration", "mg/m^3", lambda i, j, t=t: scale * t * i)
    return folder


def test_fluent_exports_equal_their_single_imports(tmp_path):
    from plumecast.io.fluent import import_fluent

    a = _export(tmp_path / "ex-a", 1.0)
    b = _export(tmp_path / "ex-b", 2.0, flow=False)  # takes ex-a's flow
    out = tmp_path / "f.nc"
    result = runner.invoke(app, ["import", "fluent", str(a), str(b), "--out", str(out), "--cell", "0.25",
                                 "--split", "val", "--jobs", "2"])
    assert result.exit_code == 0, result.output
    ds = read_dataset(out)
    assert ds["scenario"].values.tolist() == ["ex-a", "ex-b"] and set(ds["split"].values) == {"val"}
    one = import_fluent(sorted(a.iterdir()), cell_m=0.25)
    np.testing.assert_array_equal(ds["concentration"].values[0], one["concentration"].values[0])
    np.testing.assert_allclose(ds["concentration"].values[1], 2 * one["concentration"].values[0])
    for var in ("u", "nu_t", "fluid"):
        np.testing.assert_array_equal(ds[var].values, one[var].values)
    # A manifest naming files, with a source and times.
    src = 'position_m = [0.375, 0.375, 1.0]\nrate = [[0.0, 2.0]]'
    manifest = _manifest(tmp_path, f'[[case]]\ndir = "ex-a"\nname = "A"\nsplit = "test"\n[case.source]\n{src}\n\n'
                                   '[[case]]\nfiles = ["ex-b/co2_t5.txt", "ex-b/co2_t10.txt"]\nname = "B"\n'
                                   'times = [1.0, 2.0]\n')
    result = runner.invoke(app, ["import", "fluent", "--manifest", str(manifest), "--out", str(out), "--cell", "0.25",
                                 "--time-pattern", r"t(\d+)$"])
    assert result.exit_code != 0 and "times" in _one_line(result)  # B's times differ from A's 5, 10 s
    manifest.write_text(manifest.read_text().replace("times = [1.0, 2.0]", "times = [5.0, 10.0]"))
    result = runner.invoke(app, ["import", "fluent", "--manifest", str(manifest), "--out", str(out), "--cell", "0.25"])
    assert result.exit_code == 0, result.output
    ds = read_dataset(out)
    assert ds["split"].values.tolist() == ["test", "train"] and ds["source_rate"].values[0, 0] == 2.0


def test_fluent_exports_with_different_flow_or_cells_are_refused(tmp_path):
    a = _export(tmp_path / "a", 1.0)
    b = _export(tmp_path / "b", 1.0, u_scale=2.0)
    out = tmp_path / "f.nc"
    result = runner.invoke(app, ["import", "fluent", str(a), str(b), "--out", str(out), "--cell", "0.25"])
    assert result.exit_code != 0 and "export 'b': its u differs from export 'a'" in _one_line(result)
    assert _no_output(out)
    (b / "u.txt").unlink()
    text = (b / "co2_t5.txt").read_text()
    (b / "co2_t5.txt").write_text(text.replace("x1y1z1", "x9y9z1"))
    result = runner.invoke(app, ["import", "fluent", str(a), str(b), "--out", str(out), "--cell", "0.25"])
    assert result.exit_code != 0 and "export 'b'" in _one_line(result) and _no_output(out)


# ----------------------------------------------------------------------------- info


def test_info_on_openfoam_and_fluent_imports(tmp_path, three_cases):
    out = tmp_path / "of.nc"
    result = runner.invoke(app, ["import", "openfoam", "--manifest", str(_manifest(tmp_path, MANIFEST)),
                                 "--height", "0.45", "--cell", "0.5", "--out", str(out)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["info", str(out)])
    assert result.exit_code == 0, result.output
    text = _one_line(result)
    assert "train: 1, val: 1, test: 0, ood: 1" in text and "flow levels" in text and "mass in the room" in text
    fl = tmp_path / "fl.nc"
    ex = _export(tmp_path / "ex", 1.0)
    result = runner.invoke(app, ["import", "fluent", *map(str, sorted(ex.iterdir())), "--out", str(fl), "--cell", "0.25"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["info", str(fl)])
    assert result.exit_code == 0, result.output
    assert "mass budget" in result.output and "not recorded" in result.output
    assert len(CELLS) == int(read_dataset(fl)["fluid"].sum())
