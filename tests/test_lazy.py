"""Lazy data (datasets larger than memory): the same numbers as eager loading, never the whole concentration read.

The lazy path opens the dataset with :func:`plumecast.io.dataset.open_dataset_lazy` and
reads the concentration by index (:class:`plumecast.forcing.LazyConcentration`): per
batch in training, per chunk of scenarios in validation and evaluation. These tests
train and evaluate the tiny synthetic data both ways, and count what is read from the
netCDF file by instrumenting xarray's netCDF4 backend, below every plumecast path.

Each test holds at most one open handle of a file at a time: with the netCDF4 build here
(netCDF-C 4.10.1, HDF5 2.2.0), reading a file through two handles, closing one and opening
the file again crashes the process (reproduced with netCDF4 alone, without plumecast).
"""

import json

import equinox as eqx
import jax
import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner
from xarray.backends.netCDF4_ import NetCDF4ArrayWrapper

import plumecast.io.dataset as dataset_io
from plumecast.cli import app
from plumecast.evaluate import evaluate_run, evaluate_system, load_system, read_data
from plumecast.forcing import LazyConcentration, concentration_scale_of, prepare_data
from plumecast.io.dataset import DatasetError, open_dataset_lazy, read_dataset, write_dataset
from plumecast.train import train

from _coarse_helpers import synthetic_dataset
from test_train import _with_splits, tiny

SPLITS = ["train"] * 3 + ["val"] * 2 + ["test"] * 2 + ["ood"]
quiet = dict(progress=False, log=lambda m: None)


@pytest.fixture(scope="module")
def data_path(tmp_path_factory):
    """The tiny synthetic data with every split (3 train, 2 val, 2 test, 1 OOD), as a netCDF file."""
    ds = _with_splits(synthetic_dataset(n_train=3, n_test=4, n_ood=1, horizon_s=8.0, decay=0.05), SPLITS)
    return write_dataset(ds, tmp_path_factory.mktemp("data") / "tiny.nc")


@pytest.fixture
def concentration_reads(monkeypatch):
    """Shapes of every block of 'concentration' read from a netCDF file while the test runs."""
    reads = []
    read = NetCDF4ArrayWrapper._getitem

    def recording(self, key):
        out = read(self, key)
        if self.variable_name == "concentration":
            reads.append(np.shape(out))
        return out

    monkeypatch.setattr(NetCDF4ArrayWrapper, "_getitem", recording)
    return reads


def leaves(system):
    return [np.asarray(a) for a in jax.tree.leaves(eqx.filter(system, eqx.is_array))]


# Batches of 2 of the 3 train scenarios: the second batch of an epoch wraps around and
# repeats a scenario. The lazy runs of these tests share one compilation of the rollout.
FUSED = tiny(epochs=(2, 1), batch_size=2)


@pytest.fixture(scope="module")
def eager_run(data_path, tmp_path_factory):
    return train(data_path, tmp_path_factory.mktemp("runs") / "eager", FUSED, **quiet)


def assert_same_training(eager, lazy):
    assert lazy.system[0].config.c_ref == eager.system[0].config.c_ref  # the streamed 99th percentile is numpy's
    for a, b in zip(leaves(eager.system), leaves(lazy.system), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-9)
    for a, b in zip(leaves(eager.last_system), leaves(lazy.last_system), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose([h["loss"] for h in lazy.history], [h["loss"] for h in eager.history], rtol=1e-6)
    assert [v["epoch"] for v in lazy.val_curve] == [v["epoch"] for v in eager.val_curve]
    np.testing.assert_allclose([v["val"] for v in lazy.val_curve], [v["val"] for v in eager.val_curve], rtol=1e-6)
    assert lazy.selected["epoch"] == eager.selected["epoch"]


def test_lazy_training_equals_eager(data_path, eager_run, tmp_path):
    """Two curriculum phases with val selection and the summary: parameters, losses, val curve, errors all agree."""
    lazy = train(data_path, tmp_path / "lazy", FUSED, lazy=True, **quiet)
    assert_same_training(eager_run, lazy)
    for label in ("untrained", "trained"):
        assert set(lazy.summary[label]) == set(eager_run.summary[label]) == {"train", "val", "test", "ood"}
        for split, stats in eager_run.summary[label].items():
            np.testing.assert_allclose(lazy.summary[label][split]["median"], stats["median"], rtol=1e-6)
    assert lazy.trace_count <= 1  # one compilation of the batch rollout serves every batch and phase


def test_lazy_per_window_training_equals_eager(data_path, tmp_path):
    cfg = tiny(epochs=(2, 1), batch_size=2)
    eager = train(data_path, tmp_path / "eager", cfg, engine="per-window", evaluate=False, **quiet)
    lazy = train(data_path, tmp_path / "lazy", cfg, engine="per-window", evaluate=False, lazy=True, **quiet)
    assert_same_training(eager, lazy)


def test_lazy_evaluation_equals_eager(data_path, eager_run, tmp_path):
    """The CLI's `evaluate --lazy` writes the eager report's metrics; the frames it draws are the eager ones."""
    runner = CliRunner()
    run = eager_run.run_dir
    for mode in ("eager", "lazy"):  # the lazy report draws an example from the file and a forecast made again
        args = ["evaluate", str(run), str(data_path), "--split", "test", "--out", str(tmp_path / mode)]
        r = runner.invoke(app, args + (["--lazy", "--examples", "1"] if mode == "lazy" else ["--examples", "0"]))
        assert r.exit_code == 0, r.output
    assert len(list((tmp_path / "lazy").glob("snapshots_*.png"))) == len(list((tmp_path / "lazy").glob("animation_*.gif"))) == 1
    eager, lazy = (json.loads((tmp_path / m / "metrics.json").read_text()) for m in ("eager", "lazy"))
    for doc in (eager, lazy):
        doc.pop("rollout_seconds", None)
    assert lazy == eager
    ev_eager = evaluate_run(run, data_path, "test", chunk=2)
    system, _ = load_system(run)
    with read_data(data_path, lazy=True) as ds:  # open while the lazy evaluation's frames are read
        ev_lazy = evaluate_system(system, ds, "test", chunk=2, lazy=True)
        assert ev_lazy.scenarios == ev_eager.scenarios and ev_lazy.non_finite == ev_eager.non_finite
        for m, values in ev_eager.per_time.items():
            np.testing.assert_allclose(ev_lazy.per_time[m], values, rtol=1e-6, atol=1e-12)
        assert ev_lazy.truth.shape == ev_eager.truth.shape and ev_lazy.forecast.shape == ev_eager.forecast.shape
        for i in range(len(ev_eager.scenarios)):
            np.testing.assert_array_equal(ev_lazy.truth[i], ev_eager.truth[i])
            np.testing.assert_allclose(ev_lazy.forecast[i], ev_eager.forecast[i], rtol=1e-6, atol=1e-9)
            np.testing.assert_array_equal(ev_lazy.forecast[i, -1], ev_lazy.forecast[i][-1])


def test_lazy_path_never_reads_the_whole_concentration(data_path, tmp_path, concentration_reads, monkeypatch):
    """Every read of training (with val and the summary) and evaluation is at most a batch of scenarios.

    The same instrument sees eager loading read all of it at once, so it would see the
    lazy path do the same (the split on the device, a split's truth in memory, ...).
    """
    with xr.open_dataset(data_path) as ds:
        n, T, ny, nx = ds["concentration"].shape
    batch_size = 2
    scenario_bytes = T * ny * nx * 8  # validation blocks of one scenario (the default is 32 MiB)
    monkeypatch.setattr(dataset_io, "_LAZY_BLOCK_BYTES", scenario_bytes)

    read_dataset(data_path)
    assert max(int(np.prod(s)) for s in concentration_reads) == n * T * ny * nx  # eager: all of it, one read
    concentration_reads.clear()

    assert FUSED.schedule.batch_size == batch_size
    train(data_path, tmp_path / "run", FUSED, lazy=True, **quiet)
    system, _ = load_system(tmp_path / "run")
    with read_data(data_path, lazy=True) as ds:
        evaluate_system(system, ds, "train", chunk=batch_size, lazy=True)
    largest = max(int(np.prod(s)) for s in concentration_reads)
    assert len(concentration_reads) > n  # read in pieces: validation, the scale, batches, val, summary, evaluation
    assert largest <= batch_size * T * ny * nx, (largest, sorted(set(concentration_reads)))
    assert largest < 3 * T * ny * nx  # less than the 3 train scenarios, let alone all 8


def test_lazy_concentration_indexes_as_numpy(data_path):
    eager = read_dataset(data_path)["concentration"].values
    with open_dataset_lazy(data_path) as ds:
        lazy = LazyConcentration(ds["concentration"])
        assert lazy.shape == eager.shape and len(lazy) == eager.shape[0]
        scaled_lazy, scaled_eager = lazy / 0.37, eager / 0.37
        for key in ((np.array([5, 1, 1, 7]), slice(1, 4)), (np.array([2, 0]), 0), 3, (slice(2, 6), -1),
                    (np.array([4, 0]), slice(None), 1), (slice(None),)):
            np.testing.assert_array_equal(scaled_lazy[key], scaled_eager[key])
            assert scaled_lazy[key].dtype == np.float32
        with pytest.raises(TypeError, match="never whole"):
            np.asarray(lazy)
        with pytest.raises(TypeError, match="integers or slices"):
            lazy[0, np.array([1, 2])]


def test_streamed_scale_is_numpys_percentile(data_path):
    """The lazy c_ref (two streamed passes) is bit for bit the eager one, for any subset of scenarios."""
    eager = prepare_data(read_dataset(data_path), 0.4)
    with open_dataset_lazy(data_path) as ds:
        lazy = prepare_data(ds, 0.4, lazy=True)
        fluid = ds["fluid"].values
        for idx in ([0, 1, 2], [3], [7, 2, 5, 0], list(range(8))):
            assert concentration_scale_of(lazy, idx, fluid) == concentration_scale_of(eager, idx, fluid)


def _broken(path, tmp_path, name, change):
    """The dataset at ``path`` with ``change(concentration)`` applied, written without validation."""
    with xr.open_dataset(path) as opened:
        ds = opened.load()
    conc = ds["concentration"].values.copy()
    change(conc)
    ds["concentration"] = (ds["concentration"].dims, conc)
    ds.to_netcdf(tmp_path / name)
    return tmp_path / name


def test_lazy_open_validates_like_read_dataset(data_path, tmp_path, monkeypatch):
    """Checked a block at a time, the verdicts of read_dataset: NaN, negatives judged against the whole file's largest."""
    with xr.open_dataset(data_path) as ds:
        n, T, ny, nx = ds["concentration"].shape
    monkeypatch.setattr(dataset_io, "_LAZY_BLOCK_BYTES", T * ny * nx * 8)  # one scenario per block

    def nan(c):
        c[6, 2, 3, 4] = np.nan

    def scale_scenario(c, factor):
        c[5] *= factor

    def negative(c, amount):
        c[5, 2, 3, 4] = -amount * np.abs(c).max()

    cases = {
        "nan.nc": (nan, "non-finite"),
        # Scenario 5 alone is 1e-3 of the largest value: -2e-7 of the file's largest is round-off for the whole file,
        # though 2e-4 of scenario 5's own (a block check against the block's largest would refuse it).
        "roundoff.nc": (lambda c: (scale_scenario(c, 1e-3 / max(np.abs(c[5]).max(), 1e-30) * np.abs(c).max()),
                                   negative(c, 2e-7)), None),
        "negative.nc": (lambda c: negative(c, 1e-3), "negative values"),
    }
    for name, (change, message) in cases.items():
        path = _broken(data_path, tmp_path, name, change)
        if message is None:
            read_dataset(path)
            open_dataset_lazy(path).close()
            continue
        with pytest.raises(DatasetError, match=message):
            read_dataset(path)
        with pytest.raises(DatasetError, match=message):
            open_dataset_lazy(path)
    with pytest.raises(DatasetError, match="no such file"):
        open_dataset_lazy(tmp_path / "absent.nc")
