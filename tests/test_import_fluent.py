"""Fluent "Surface Integral Report" importer: the real export, synthetic files, bad input, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from plumecast.cli import app
from plumecast.io.dataset import read_dataset
from plumecast.io.fluent import FluentFormatError, classify, import_fluent, read_fluent_report

runner = CliRunner()
REAL_NAME = "fluent_turb_vis.txt"


def report_text(quantity: str, rows: dict[tuple[int, int], str], units: str | None = None, *, net=True, z=1) -> str:
    """A report in Fluent's layout; ``rows`` maps 1-based (i, j) to the value text."""
    q = f"{quantity:>30}" + (f"           [{units}]" if units is not None else "")
    lines = ['                         "Surface Integral Report"', "", "           Area-Weighted Average", q,
             "-------------------------------- --------------------"]
    for (i, j), v in rows.items():
        lines.append(f"{f'x{i}y{j}z{z}':>32} {v:>20}")
    if net:
        lines += ["                ---------------- --------------------", f"{'Net':>32} {'0.5':>20}"]
    return "\n".join(lines) + "\n"


# A 4 x 3 interior (i = 1..4, j = 1..3) with cell (3, 2) solid.
CELLS = [(i, j) for j in range(1, 4) for i in range(1, 5) if (i, j) != (3, 2)]


def write(tmp_path: Path, name: str, quantity: str, units: str | None, fn, **kw) -> Path:
    p = tmp_path / name
    p.write_text(report_text(quantity, {c: repr(float(fn(*c))) for c in CELLS}, units, **kw))
    return p


@pytest.fixture
def flow_files(tmp_path):
    return [
        write(tmp_path, "nut.txt", "Turbulent Viscosity", "kg/(m s)", lambda i, j: 0.001 * (i + j)),
        write(tmp_path, "u.txt", "X Velocity", "m/s", lambda i, j: 0.1 * i),
        write(tmp_path, "v.txt", "Y Velocity", "m/s", lambda i, j: -0.05 * j),
        write(tmp_path, "w.txt", "Z Velocity", "m/s", lambda i, j: 0.01),
    ]


# ----------------------------------------------------------------------------- real file


def test_real_export_imports_as_the_paper_grid(reference_dir, tmp_path):
    path = reference_dir / REAL_NAME
    rep = read_fluent_report(path)
    assert rep.quantity == "Turbulent Viscosity" and rep.units == "kg/(m s)" and rep.z_index == 1
    assert len(rep.values) == 791
    ds = import_fluent([path])
    assert (ds.sizes["y"], ds.sizes["x"]) == (26, 49)
    fluid = ds["fluid"].values == 1
    assert fluid.sum() == 791
    # Walls all round; the obstacle and thin wall of DESIGN.md are solid.
    assert not fluid[0].any() and not fluid[-1].any() and not fluid[:, 0].any() and not fluid[:, -1].any()
    assert not fluid[3:9, 11].any() and not fluid[3:7, 19:32].any()
    # Kinematic viscosity = dynamic / 1.225, cell by cell (x10y10z1 -> row 10, column 10).
    assert ds["nu_t"].values[10, 10] == pytest.approx(0.0051234107 / 1.225)
    assert ds["nu_t"].values[~fluid].max() == 0 and ds["nu_t"].values[fluid].min() > 0
    # The export's 'Net' is Fluent's area-weighted mean over its (unequal) cells: close to ours.
    assert ds["nu_t"].values[fluid].mean() * 1.225 == pytest.approx(rep.net, rel=0.05)
    assert ds.attrs["dx_m"] == 0.5 and "1.225" in ds.attrs["history"]
    # DESIGN.md's 53 source cells are all fluid.
    for y, x in [(13, 3), (6, 8), (23, 21), (4, 1), (11, 2), (6, 46), (2, 34), (23, 25)]:
        assert fluid[y, x]
    out = tmp_path / "real.nc"
    result = runner.invoke(app, ["import", "fluent", str(path), "--out", str(out), "--height", "1.5"])
    assert result.exit_code == 0, result.output
    back = read_dataset(out)
    assert int(back["fluid"].sum()) == 791 and back.attrs["plane_height_m"] == 1.5
    assert back["u"].attrs["note"].startswith("not given")


def test_density_option_scales_nu_t(reference_dir):
    a = import_fluent([reference_dir / REAL_NAME])
    b = import_fluent([reference_dir / REAL_NAME], density=1.0)
    np.testing.assert_allclose(b["nu_t"].values, a["nu_t"].values * 1.225)


# ----------------------------------------------------------------------------- synthetic


def test_all_quantities_and_a_concentration_series(tmp_path, flow_files):
    conc = [
        write(tmp_path, f"co2_t{t}.txt", "Mass fraction of co2", None, lambda i, j, t=t: 1e-4 * t * i)
        for t in (20, 5, 10)
    ]
    ds = import_fluent(flow_files + conc, cell_m=0.25, plane_height_m=1.1)
    assert (ds.sizes["y"], ds.sizes["x"]) == (5, 6)
    np.testing.assert_allclose(ds["time"].values, [5.0, 10.0, 20.0])
    f = ds["fluid"].values == 1
    assert f.sum() == len(CELLS) and not f[2, 3]  # (i, j) = (3, 2) -> row 2, column 3
    assert ds["u"].values[1, 4] == pytest.approx(0.4) and ds["v"].values[3, 1] == pytest.approx(-0.15)
    assert ds["nu_t"].values[1, 1] == pytest.approx(0.002 / 1.225)
    # Mass fraction x density -> kg/m^3, cell (i=2, j=1) at t = 10 s.
    assert ds.attrs["mass_unit"] == "kg"
    assert ds["concentration"].values[0, 1, 1, 2] == pytest.approx(1e-4 * 10 * 2 * 1.225, rel=1e-6)
    assert ds["x"].values[0] == pytest.approx(0.125) and ds.attrs["plane_height_m"] == 1.1
    cfg = json.loads(ds.attrs["scenario_config"])
    assert cfg["quantities"]["u.txt"] == "u" and cfg["zeros"] == []


def test_explicit_times_shape_and_quantity_override(tmp_path, flow_files):
    c1 = write(tmp_path, "a.txt", "Custom Field", "kg/m^3", lambda i, j: i)
    c2 = write(tmp_path, "b.txt", "Custom Field", "kg/m^3", lambda i, j: j)
    with pytest.raises(FluentFormatError, match="a.txt.*not one plumecast imports"):
        import_fluent(flow_files + [c1, c2], times=[0, 4])
    ds = import_fluent(flow_files[:1] + [c1, c2], times=[4, 0], shape=(8, 9), quantities={"a.txt": "concentration", "b.txt": "concentration"})
    assert (ds.sizes["y"], ds.sizes["x"]) == (8, 9)
    np.testing.assert_allclose(ds["time"].values, [0, 4])
    assert ds["concentration"].values[0, 0, 3, 1] == 3.0  # b.txt first (t = 0): j = 3
    assert ds["w"].values.max() == 0 and "w: not given" in ds.attrs["history"]


def test_classify():
    assert classify("Turbulent Viscosity", "kg/(m s)") == "nu_t"
    assert classify("Turbulent Viscosity Ratio", "") is None
    assert classify("Z Velocity", "m/s") == "w"
    assert classify("Velocity Magnitude", "m/s") is None
    assert classify("Mass fraction of co2", "") == "concentration"


# ----------------------------------------------------------------------------- bad input


def _lines(p: Path) -> list[str]:
    return p.read_text().splitlines()


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda ls: ls[:8], r"nut.txt:8: file ends without the closing 'Net' line; truncated"),
        (lambda ls: ls[:7] + ["  this is not a row"] + ls[7:], r"nut.txt:8: expected a row"),
        (lambda ls: ls[:6] + [ls[6].replace(ls[6].split()[-1], "nan")] + ls[7:], r"nut.txt:7: value 'nan' .* not finite"),
        (lambda ls: ls[:7] + [ls[5]] + ls[7:], r"nut.txt:8: duplicate cell x1y1z1 \(first given on line 6\)"),
        (lambda ls: ls[:6] + ["x0y2z1  0.1"] + ls[7:], r"nut.txt:7: cell x0y2z1: index out of range"),
        (lambda ls: ls[:6] + ["x2y1z2  0.1"] + ls[7:], r"nut.txt:7: .*z index 2"),
        (lambda ls: ls[:6] + ["x2y1z1  abc"] + ls[7:], r"nut.txt:7: value 'abc' .* not a number"),
        (lambda ls: ["hello"] + ls[1:], r"nut.txt:1: expected the title"),
        (lambda ls: ls[:3], r"nut.txt:3: header has no dashed rule"),
        (lambda ls: [], r"nut.txt: empty file"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path, flow_files, mutate, message):
    nut = flow_files[0]
    nut.write_text("\n".join(mutate(_lines(nut))) + "\n")
    with pytest.raises(FluentFormatError, match=message):
        import_fluent([nut])


def test_inconsistent_files(tmp_path, flow_files):
    nut, u = flow_files[:2]
    with pytest.raises(FluentFormatError, match="missing required field.*turbulent viscosity"):
        import_fluent([u])
    ls = _lines(u)
    u.write_text("\n".join(ls[:6] + ls[7:]) + "\n")  # drops cell x2y1z1
    with pytest.raises(FluentFormatError, match=r"u.txt: no row for fluid cell x2y1z1 \(given in nut.txt:7\)"):
        import_fluent([nut, u])
    u.write_text("\n".join(ls[:6] + ["x3y2z1  0.5"] + ls[6:]) + "\n")  # a cell that nut.txt calls solid
    with pytest.raises(FluentFormatError, match=r"u.txt:7: cell x3y2z1 is not a fluid cell of nut.txt"):
        import_fluent([nut, u])
    nut2 = write(tmp_path, "nut2.txt", "Turbulent Viscosity", "kg/(m s)", lambda i, j: 1.0)
    with pytest.raises(FluentFormatError, match="nu_t is given by more than one file"):
        import_fluent([nut, nut2])
    with pytest.raises(FluentFormatError, match=r"nut.txt:\d+: cell x\d+y3 lies outside the 3 x 4 grid"):
        import_fluent([nut], shape=(3, 4))
    bad_units = write(tmp_path, "nut3.txt", "Turbulent Viscosity", "furlong", lambda i, j: 1.0)
    with pytest.raises(FluentFormatError, match=r"nut3.txt: turbulent viscosity in unknown units \[furlong\]"):
        import_fluent([bad_units])
    c1 = write(tmp_path, "c_a.txt", "Concentration", "kg/m^3", lambda i, j: 1.0)
    c2 = write(tmp_path, "c_b.txt", "Concentration", "kg/m^3", lambda i, j: 1.0)
    with pytest.raises(FluentFormatError, match=r"c_a.txt: no time in the file name"):
        import_fluent([nut, c1, c2])
    with pytest.raises(FluentFormatError, match="2 times given for 1 concentration files|1 times given for 2"):
        import_fluent([nut, c1, c2], times=[1.0])
    with pytest.raises(FluentFormatError, match="same time"):
        import_fluent([nut, c1, c2], times=[1.0, 1.0])
    with pytest.raises(FluentFormatError, match="no such file"):
        import_fluent([tmp_path / "absent.txt"])


# ----------------------------------------------------------------------------- CLI


def test_cli_success_with_source(tmp_path, flow_files):
    conc = write(tmp_path, "smoke_0012.txt", "Concentration", "mg/m^3", lambda i, j: i * j)
    src = tmp_path / "source.toml"
    src.write_text('name = "case-7"\nsplit = "test"\n[source]\nposition_m = [0.5, 0.6, 1.1]\nrate = [[0.0, 2.0]]\n')
    out = tmp_path / "out" / "f.nc"
    args = ["import", "fluent", *map(str, flow_files), str(conc), "--out", str(out), "--cell", "0.25",
            "--source-toml", str(src)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    ds = read_dataset(out)
    assert list(ds["scenario"].values) == ["case-7"] and ds["split"].values[0] == "test"
    assert ds["time"].values.tolist() == [12.0] and ds.attrs["mass_unit"] == "mg"
    assert ds["source_rate"].values[0, 0] == 2.0 and ds["source_z"].values[0, 0] == 1.1


@pytest.mark.parametrize(
    "extra, message",
    [
        ([], "nut.txt:7: value 'nan'"),
        (["--quantity", "nut.txt=pressure"], "--quantity 'nut.txt=pressure'"),
        (["--split", "dev"], "--split must be one of"),
        (["--source-position", "1,2"], "--source-position: expected 3"),
        (["--time-pattern", "(("], "not a regular expression"),
    ],
)
def test_cli_failures_write_nothing(tmp_path, flow_files, extra, message):
    nut = flow_files[0]
    ls = _lines(nut)
    nut.write_text("\n".join(ls[:6] + [ls[6].replace(ls[6].split()[-1], "nan")] + ls[7:]) + "\n")
    out = tmp_path / "bad.nc"
    result = runner.invoke(app, ["import", "fluent", str(nut), "--out", str(out), *extra])
    assert result.exit_code != 0
    assert message in " ".join(result.output.split())
    assert not out.exists() and not list(tmp_path.glob(".bad.nc*"))
