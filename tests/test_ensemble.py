"""Seed ensembles: the mean and spread of several systems' forecasts, and height_table's --ensemble."""

import shutil

import equinox as eqx
import numpy as np
import pytest
from _coarse_helpers import synthetic_dataset
from conftest import load_script

from plumecast.forcing import prepare_data
from plumecast.forecast import check_members, forecast_ensemble, forecast_scenarios
from plumecast.io.dataset import write_dataset
from plumecast.train import TrainConfig, TrainError, build_system, train

TINY = dict(window_s=4.0, curriculum_s=(4.0,), epochs=(1,), batch_size=2, learning_rate=5e-2, clip_norm=1.0)


@pytest.fixture(scope="module")
def ds():
    return synthetic_dataset(n_train=3, n_test=2, n_ood=1, horizon_s=8.0, decay=0.05)


@pytest.fixture(scope="module")
def systems(ds):
    """Two members that differ: the second's x-diffusivity logits raised by 1."""
    cfg = TrainConfig().replace(**TINY, variant="memory", dtype="float64")
    prep = prepare_data(ds, cfg.physics.dt_s, cfg.physics.dtype)
    a = build_system(ds, cfg, prep)
    b = eqx.tree_at(lambda s: s[0].theta_x, a, a[0].theta_x + 1.0)
    return prep, a, b


def test_one_member_is_its_own_forecast_with_no_spread(systems):
    prep, a, _ = systems
    idx = np.arange(len(prep.names))
    mean, spread = forecast_ensemble([a], prep, idx)
    np.testing.assert_allclose(mean, forecast_scenarios(a, prep, idx), rtol=0, atol=1e-12)
    assert spread.shape == mean.shape and np.all(spread == 0)


def test_two_members_mean_and_spread(systems):
    prep, a, b = systems
    idx = np.arange(len(prep.names))
    fa, fb = forecast_scenarios(a, prep, idx, final_only=True), forecast_scenarios(b, prep, idx, final_only=True)
    assert np.abs(fa - fb).max() > 1e-3 * np.abs(fa).max()  # the members do differ
    mean, spread = forecast_ensemble([a, b], prep, idx, final_only=True)
    np.testing.assert_allclose(mean, (fa + fb) / 2, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(spread, np.abs(fa - fb) / 2, rtol=1e-6, atol=1e-12)  # std of two, ddof=0


def test_members_on_another_time_step_or_flow_are_refused(ds, systems):
    prep, a, _ = systems
    other_dt = build_system(ds, TrainConfig().replace(**TINY, variant="memory", dtype="float64", dt_s=0.2), prep)
    with pytest.raises(TrainError, match="dt 0.2 s"):
        check_members([a, other_dt], ["a", "b"])
    other_flow = eqx.tree_at(lambda s: s[0].u, a, a[0].u * 2.0 + 0.01)
    with pytest.raises(TrainError, match="plane 'u' of b"):
        check_members([a, other_flow], ["a", "b"])
    with pytest.raises(TrainError, match="at least one member"):
        forecast_ensemble([], prep, [0])


def test_height_table_ensemble_of_a_run_with_itself(ds, tmp_path, capsys):
    """A run's ensemble with its own copy scores as the run, with zero spread; a member on other data is refused."""
    height_table = load_script("height_table")
    data = write_dataset(ds, tmp_path / "d.nc")
    run = tmp_path / "a"
    train(ds, run, TrainConfig().replace(**TINY, variant="memory"), progress=False, log=lambda m: None)
    shutil.copytree(run, tmp_path / "b")
    single, ens = tmp_path / "single.csv", tmp_path / "ens.csv"
    assert height_table.main([str(run), "--data", str(data), "--csv", str(single)]) == 0
    figure = tmp_path / "spread.png"
    assert height_table.main([str(run), "--data", str(data), "--spread-figure", str(figure)]) == 2  # no ensemble
    assert height_table.main([str(run), str(tmp_path / "b"), "--data", str(data), "--ensemble", "pair",
                              "--csv", str(ens), "--spread-figure", str(figure)]) == 0
    assert figure.stat().st_size > 0
    out = capsys.readouterr().out
    assert "Spearman(spread, error)" in out
    one = [line.split(",") for line in single.read_text().splitlines()]
    two = [line.split(",") for line in ens.read_text().splitlines()]
    assert two[0] == one[0] + ["spread"]
    assert len(two) == len(one) == len(ds["scenario"]) + 1
    for r1, r2 in zip(one[1:], two[1:]):
        assert r2[0] == "pair" and r1[2:4] == r2[2:4]  # same scenario and split
        np.testing.assert_allclose(float(r2[5]), float(r1[5]), rtol=1e-5)  # relative_l2
        assert float(r2[-1]) == 0.0
    # A member trained on a smaller grid cannot join: rc 2, the member named, no CSV.
    small = synthetic_dataset(n_train=3, n_test=1, n_ood=0, horizon_s=8.0, decay=0.05, ny=8, nx=10)
    train(small, tmp_path / "c", TrainConfig().replace(**TINY, variant="memory"), progress=False, log=lambda m: None)
    bad = tmp_path / "bad.csv"
    assert height_table.main([str(run), str(tmp_path / "c"), "--data", str(data), "--ensemble", "pair",
                              "--csv", str(bad)]) == 2
    assert "grid mismatch" in capsys.readouterr().err and not bad.exists()
