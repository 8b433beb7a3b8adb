import json

import numpy as np
import pytest
import xarray as xr

from plumecast.io.dataset import DatasetError, make_dataset, read_dataset, scenario_config, write_dataset


def small_dataset(rng, n_scen=2, n_time=4, ny=3, nx=5, **overrides):
    frac = np.ones((ny, nx))
    frac[0, 0] = 0.0
    frac[1, 1] = 0.5
    args = dict(
        scenario_names=[f"s{i}" for i in range(n_scen)],
        splits=["train", "ood", "test"][:n_scen],
        times_s=np.arange(n_time) * 2.0,
        x_m=(np.arange(nx) + 0.5) * 0.5,
        y_m=(np.arange(ny) + 0.5) * 0.5,
        concentration=rng.random((n_scen, n_time, ny, nx)),
        u=rng.normal(size=(ny, nx)),
        v=rng.normal(size=(ny, nx)),
        w=rng.normal(size=(ny, nx)),
        nu_t=rng.random((ny, nx)) * 1e-2,
        fluid_fraction=frac,
        source_xyz=np.broadcast_to([1.1, 0.6, 1.2], (n_scen, n_time, 3)) + 0.1 * rng.random((n_scen, n_time, 3)),
        source_rate=np.ones((n_scen, n_time)),
        plane_height_m=1.5,
        mass_unit="mg",
        generator="test",
        generator_version="0",
        scenario_config={"name": "t", "scenarios": [1, 2]},
        budget={"mass_room": np.ones((n_scen, n_time))},
    )
    args.update(overrides)
    return make_dataset(**args)


def test_round_trip(tmp_path, rng):
    ds = small_dataset(rng)
    path = write_dataset(ds, tmp_path / "sub" / "d.nc")
    back = read_dataset(path)
    for name in ds.data_vars:
        np.testing.assert_array_equal(back[name].values, ds[name].values)
    assert back.attrs["plane_height_m"] == 1.5
    assert scenario_config(back) == {"name": "t", "scenarios": [1, 2]}
    assert list(tmp_path.joinpath("sub").iterdir()) == [path]  # no temporary left behind
    assert back["fluid"].values[0, 0] == 0 and back["fluid"].values[1, 1] == 1


def test_concentration_is_stored_in_chunks_of_one_scenario(tmp_path, rng, monkeypatch):
    """Lazy reads of a few scenarios decompress only those (and at most LAZY_CHUNK_BYTES of snapshots)."""
    import netCDF4

    from plumecast.io import dataset

    path = write_dataset(small_dataset(rng, n_scen=3, n_time=6), tmp_path / "d.nc")
    with netCDF4.Dataset(path) as nc:
        assert nc.variables["concentration"].chunking() == [1, 6, 3, 5]
    monkeypatch.setattr(dataset, "LAZY_CHUNK_BYTES", 2 * 3 * 5 * 4)  # room for two float32 snapshots
    path = write_dataset(small_dataset(rng, n_scen=3, n_time=6), tmp_path / "e.nc")
    with netCDF4.Dataset(path) as nc:
        assert nc.variables["concentration"].chunking() == [1, 2, 3, 5]


def test_nan_is_rejected_and_nothing_written(tmp_path, rng):
    c = rng.random((2, 4, 3, 5))
    c[1, 2, 0, 3] = np.nan
    with pytest.raises(DatasetError, match="concentration.*non-finite"):
        small_dataset(rng, concentration=c)
    ds = small_dataset(rng)
    ds["u"].values[0, 0] = np.inf
    with pytest.raises(DatasetError, match="'u'"):
        write_dataset(ds, tmp_path / "d.nc")
    assert not any(tmp_path.iterdir())


def test_nan_in_a_file_is_rejected(tmp_path, rng):
    ds = small_dataset(rng)
    ds["concentration"].values[0, 0, 0, 0] = np.nan
    ds.to_netcdf(tmp_path / "nan.nc")  # written behind the writer's back
    with pytest.raises(DatasetError, match="nan.nc.*non-finite"):
        read_dataset(tmp_path / "nan.nc")


def test_truncated_and_garbage_files(tmp_path, rng):
    path = write_dataset(small_dataset(rng), tmp_path / "d.nc")
    data = path.read_bytes()
    (tmp_path / "cut.nc").write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="cut.nc"):
        read_dataset(tmp_path / "cut.nc")
    (tmp_path / "junk.nc").write_text("not a netCDF file")
    with pytest.raises(DatasetError, match="not a readable netCDF"):
        read_dataset(tmp_path / "junk.nc")
    with pytest.raises(DatasetError, match="no such file"):
        read_dataset(tmp_path / "missing.nc")


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda ds: ds.drop_vars("nu_t"), "missing variable 'nu_t'"),
        (lambda ds: ds.assign(split=("scenario", np.array(["train", "valid"]))), "unknown split"),
        (lambda ds: ds.assign(u=(("x", "y"), np.zeros((5, 3)))), "'u' has dimensions"),
        (lambda ds: ds.assign_coords(time=[0.0, 2.0, 2.0, 4.0]), "strictly increasing"),
        (lambda ds: ds.assign(fluid=(("y", "x"), np.zeros((3, 5), np.int8))), "fluid"),
        (lambda ds: ds.assign(source_rate=(("scenario", "time"), -np.ones((2, 4)))), "negative"),
        (lambda ds: ds.assign_attrs(schema_version=99), "schema version"),
        (lambda ds: ds.assign_attrs(scenario_config="{not json"), "not valid JSON"),
    ],
)
def test_malformed_datasets(tmp_path, rng, mutate, match):
    ds = mutate(small_dataset(rng))
    ds.to_netcdf(tmp_path / "bad.nc")
    with pytest.raises(DatasetError, match=match):
        read_dataset(tmp_path / "bad.nc")


def test_missing_attribute(tmp_path, rng):
    ds = small_dataset(rng)
    del ds.attrs["plane_height_m"]
    with pytest.raises(DatasetError, match="plane_height_m"):
        write_dataset(ds, tmp_path / "d.nc")
    assert json.loads(ds.attrs["scenario_config"])["name"] == "t"
