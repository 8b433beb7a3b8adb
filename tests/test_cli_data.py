"""End-to-end: the data commands on the tiny preset, and their errors."""

import numpy as np
import pytest
from typer.testing import CliRunner

from plumecast.cli import app
from plumecast.io.dataset import SPLITS, read_dataset
from plumecast.scenario import load_scenario_set

from conftest import tiny_variant

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "tiny.nc"
    result = runner.invoke(app, ["generate", "tiny", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_generate_tiny_is_sound(tiny_dataset):
    ds = read_dataset(tiny_dataset)
    assert ds.sizes["scenario"] == len(load_scenario_set("tiny").scenarios) and ds.sizes["y"] == 4 and ds.sizes["x"] == 8
    c = ds["concentration"].values
    assert c.min() >= 0 and c[:, 0].max() == 0 and c[:, -1].max() > 0
    assert (c[:, :, ds["fluid"].values == 0] == 0).all()
    room, inj, out = (ds[k].values for k in ("mass_room", "mass_injected", "mass_outflow"))
    np.testing.assert_allclose(room, inj - out, rtol=0, atol=1e-10 * inj.max())
    assert (out[:, -1] > 0).all()  # the exhaust carries some of every plume away
    assert abs(ds["w"].values).max() > 0  # air crosses the plane vertically
    assert set(ds["split"].values) == {s.split for s in load_scenario_set("tiny").scenarios}
    moving = ds["source_x"].sel(scenario="moving-f").values
    assert moving[-1] != moving[0]


def test_rerun_reuses(tiny_dataset):
    before = tiny_dataset.stat().st_mtime_ns
    result = runner.invoke(app, ["generate", "tiny", "--out", str(tiny_dataset)])
    assert result.exit_code == 0 and "up to date" in result.output
    assert tiny_dataset.stat().st_mtime_ns == before


def test_subset_from_cache(tiny_dataset, tmp_path):
    out = tiny_dataset.parent / "subset.nc"
    result = runner.invoke(app, ["generate", "tiny", "--out", str(out), "--scenarios", "static-a,moving-f"])
    assert result.exit_code == 0, result.output
    assert "2 from cache" in result.output
    ds, full = read_dataset(out), read_dataset(tiny_dataset)
    assert list(ds["scenario"].values) == ["static-a", "moving-f"]
    np.testing.assert_array_equal(ds["concentration"].values[1], full["concentration"].sel(scenario="moving-f").values)
    bad = runner.invoke(app, ["generate", "tiny", "--out", str(tmp_path / "x.nc"), "--scenarios", "nope"])
    assert bad.exit_code != 0 and "unknown scenarios" in bad.output


def test_info_and_plot(tiny_dataset, tmp_path):
    result = runner.invoke(app, ["info", str(tiny_dataset)])
    assert result.exit_code == 0, result.output
    splits = [str(s) for s in read_dataset(tiny_dataset)["split"].values]
    assert "mass budget" in result.output
    assert ", ".join(f"{k}: {splits.count(k)}" for k in SPLITS) in result.output  # val included
    result = runner.invoke(app, ["plot", str(tiny_dataset), "--scenario", "moving-f", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for name in ("moving-f-snapshots.png", "moving-f.gif", "plane-flow.png"):
        assert (tmp_path / name).stat().st_size > 1000
    result = runner.invoke(app, ["plot", str(tiny_dataset), "--scenario", "nope", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "not in" in result.output


@pytest.mark.parametrize(
    "old,new,message",
    [
        ("position_m = [1.0, 0.5, 0.75]", "position_m = [2.0, 0.75, 0.25]", "inside a wall or obstacle"),
        ("position_m = [1.0, 0.5, 0.75]", "position_m = [1.0, 0.5, 7.0]", "outside the room"),
        ("[40.0, 3.5, 1.7, 0.75]", "[40.0, 3.5, 0.2, 0.75]", "inside a wall"),
        ('rect_m = [1.0, 2.0, 0.0, 0.5]\n', 'rect_m = [1.0, 2.0, 0.0, 0.5]\nspeed_m_s = 0.3\n', "unbalanced"),
        ("rect_m = [1.0, 2.0, 0.0, 0.5]", "rect_m = [0.0, 0.5, 0.0, 0.5]", "wall or obstacle"),
    ],
)
def test_generate_errors_write_nothing(tmp_path, old, new, message):
    out = tmp_path / "data" / "bad.nc"
    result = runner.invoke(app, ["generate", str(tiny_variant(tmp_path, old, new)), "--out", str(out)])
    assert result.exit_code != 0
    assert message in result.output
    assert not out.exists()


def test_info_rejects_truncated(tiny_dataset, tmp_path):
    data = tiny_dataset.read_bytes()
    cut = tmp_path / "cut.nc"
    cut.write_bytes(data[: len(data) // 3])
    result = runner.invoke(app, ["info", str(cut)])
    assert result.exit_code != 0 and "cut.nc" in result.output
