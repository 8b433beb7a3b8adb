"""Locating a source from sensor readings (plumecast.locate, `plumecast locate`, `locate-eval`, `sensors`) on tiny data."""

import itertools
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

from plumecast.cli import app
from plumecast.forcing import prepare_data
from plumecast.forecast import rollout_frames
from plumecast.io.dataset import write_dataset
from plumecast.locate import (LocateError, LocateSettings, Readings, check_readings, default_limit, locate, read_readings,
                              write_readings)
from plumecast.locate.core import candidates, spatial_median
from plumecast.locate.evaluate import EvalSettings, draw_case, sensor_cells
from plumecast.locate.placement import arrival_matrix, design_layout, greedy_confusion_layout, greedy_layout
from plumecast.rollout import forcing_from_track
from plumecast.sweep import sweep_forcing
from plumecast.train import TrainConfig, build_system, train

from _coarse_helpers import synthetic_dataset

runner = CliRunner()
HORIZON = 12.0


@pytest.fixture(scope="module")
def ds():
    return synthetic_dataset(n_train=3, n_test=2, n_ood=1, horizon_s=HORIZON)


@pytest.fixture(scope="module")
def system(ds):
    """The untrained physics of the tiny dataset (no training needed)."""
    return build_system(ds, TrainConfig(), prepare_data(ds, 0.4))


@pytest.fixture(scope="module")
def files(ds, tmp_path_factory):
    """The tiny dataset on disk and a tiny trained run (one epoch)."""
    root = tmp_path_factory.mktemp("locate")
    data = write_dataset(ds, root / "tiny.nc")
    cfg = TrainConfig().replace(window_s=4.0, curriculum_s=(4.0,), epochs=(1,), batch_size=2)
    train(ds, root / "run", cfg, progress=False, evaluate=False, log=lambda m: None)
    return data, root / "run"


def _model_readings(system, cells, source_cell, *, rate=2.0, start=1.2, every=1.2, t_end=HORIZON):
    """Noise-free readings of sensors at ``cells`` made by the model itself, of a source at ``source_cell``."""
    model, closure = system
    c = model.config
    xs = c.x0 + np.arange(c.nx) * c.dx
    ys = c.y0 + np.arange(c.ny) * c.dy
    sx, sy = xs[source_cell[1]], ys[source_cell[0]]
    n_steps = int(round(t_end / c.dt))
    track_t = [0.0, start - 1e-6, start, t_end]
    forcing = forcing_from_track(track_t, [sx] * 4, [sy] * 4, [c.plane_height_m] * 4, [0.0, 0.0, rate, rate], dt=c.dt,
                                 n_steps=n_steps)
    forcing = jax.tree.map(lambda a: a[None], forcing)
    spf = int(round(every / c.dt))
    frames = np.asarray(model.decode(rollout_frames(model, closure, jnp.zeros((1,) + c.shape, c.jdtype), forcing, spf)))[0]
    times = every * np.arange(1, len(frames) + 1)
    K = len(cells)
    values = np.stack([frames[:, j, i] for j, i in cells])  # (K, T)
    readings = Readings.from_arrays([f"s{k}" for k in range(K)], [(xs[i], ys[j]) for j, i in cells],
                                    np.repeat(np.arange(K), len(times)), np.tile(times, K), values.reshape(-1))
    return readings, (sx, sy)


def test_locate_recovers_the_models_own_source(system):
    model = system[0]
    source = (5, 3)
    cells = np.array([[4, 5], [7, 2], [2, 2]])  # three sensors around the source, in fluid
    assert all(np.asarray(model.fluid)[j, i] > 0 for j, i in cells)
    readings, (sx, sy) = _model_readings(system, cells, source)
    check_readings(readings, model, HORIZON)
    limit = 1e-3 * float(readings.value.max())
    result = locate(system, readings, LocateSettings(detection_limit=limit, noise=0.05, model_error=0.05, correlation_s=0.0,
                                                        iterations=40))
    assert result.located, result.reason
    e = result.estimate
    assert math.hypot(e["x_m"] - sx, e["y_m"] - sy) <= model.config.dx  # within a cell
    s = result.scan_estimate
    assert (s["x_m"], s["y_m"]) == pytest.approx((sx, sy))  # the scan's best cell is the source's
    assert e["rate"] == pytest.approx(2.0, rel=0.5)
    assert abs(e["start_s"] - 1.2) < 1.5
    assert result.contains(model, sx, sy)
    assert result.credible["area_m2"] > 0 and np.isclose(result.posterior.sum(), 1.0)
    assert result.posterior[np.asarray(model.fluid) == 0].sum() == 0
    m = result.posterior_median  # the default estimate: the posterior's spatial median cell
    assert (e["x_m"], e["y_m"], e["rate"]) == (m["x_m"], m["y_m"], m["rate"])
    assert result.refined and all(math.isfinite(r["neg_log_lik"]) for r in result.refined)
    with pytest.raises(LocateError, match="estimate must be one of"):
        LocateSettings(estimate="mode")


def test_spatial_median_is_the_expected_distance_minimiser():
    xs, ys = np.arange(5) * 0.5, np.arange(3) * 0.5
    post = np.zeros((3, 5))
    post[0, 0], post[0, 4] = 0.6, 0.4  # two cells: the heavier one minimises the expected distance
    m = spatial_median(post, xs, ys, mass=1.0)
    assert (m["x_m"], m["y_m"]) == (0.0, 0.0) and m["expected_error_m"] == pytest.approx(0.4 * 2.0)
    # an L of three equal masses: the corner, not the mean (which lies off the L, in what may be a wall)
    post = np.zeros((3, 5))
    post[0, 0] = post[0, 4] = post[2, 0] = 1 / 3
    m = spatial_median(post, xs, ys, mass=1.0)
    assert (m["x_m"], m["y_m"]) == (0.0, 0.0)
    # brute force over every cell agrees on a random posterior
    rng = np.random.default_rng(3)
    post = rng.random((3, 5)) ** 4
    post /= post.sum()
    X, Y = np.meshgrid(xs, ys)
    cost = [(np.hypot(X - x, Y - y) * post).sum() for x, y in zip(X.ravel(), Y.ravel())]
    k = int(np.argmin(cost))
    m = spatial_median(post, xs, ys, mass=1.0)
    assert (m["x_m"], m["y_m"]) == (X.ravel()[k], Y.ravel()[k])



def test_subcell_median_lies_between_centres_and_never_in_a_solid():
    xs, ys = np.arange(9) * 0.5, np.arange(7) * 0.5
    fluid = np.ones((7, 9), bool)
    post = np.zeros((7, 9))
    post[0, 0] = post[0, 8] = post[6, 4] = 1 / 3  # a triangle: its Fermat point lies inside, off the lattice
    cell = spatial_median(post, xs, ys, mass=1.0)
    fine = spatial_median(post, xs, ys, mass=1.0, fluid=fluid, subdivisions=5)
    assert fine["expected_error_m"] < cell["expected_error_m"] - 0.05
    # the Fermat point of (0, 0), (4, 0), (2, 3): every side seen at 120 degrees, at (2, 2 / sqrt(3))
    assert math.hypot(fine["x_m"] - 2.0, fine["y_m"] - 2.0 / math.sqrt(3.0)) < 0.1
    assert (fine["row"], fine["column"]) == (int(round(fine["y_m"] / 0.5)), int(round(fine["x_m"] / 0.5)))
    # a solid around the Fermat point: the median moves into the open plane
    fluid[1:4, 3:6] = False
    walled = spatial_median(post, xs, ys, mass=1.0, fluid=fluid, subdivisions=5)
    assert fluid[walled["row"], walled["column"]]
    assert fine["expected_error_m"] < walled["expected_error_m"] <= cell["expected_error_m"] + 1e-12
    # brute force over the same lattice of points agrees
    f = (np.arange(5) + 0.5) / 5 - 0.5
    px = (xs[None, :, None, None] + 0.5 * f[None, None, None, :]) + 0 * ys[:, None, None, None]
    py = (ys[:, None, None, None] + 0.5 * f[None, None, :, None]) + 0 * xs[None, :, None, None]
    ok = np.broadcast_to(fluid[:, :, None, None], px.shape)
    j, i = np.nonzero(post)
    cost = sum(post[a, b] * np.hypot(px - xs[b], py - ys[a]) for a, b in zip(j, i))
    cost = np.where(ok, cost, np.inf)
    assert walled["expected_error_m"] == pytest.approx(cost.min())
    with pytest.raises(ValueError, match="fluid mask"):
        spatial_median(post, xs, ys, subdivisions=5)

def test_nothing_above_the_limit_cannot_locate(system):
    model = system[0]
    readings = Readings.from_arrays(["a", "b", "c"], [(1.25, 1.25), (5.25, 4.25), (1.75, 3.75)], [0, 1, 2],
                                    [4.0, 4.0, 4.0], [0.0, 0.0, 0.0])
    check_readings(readings, model, HORIZON)
    result = locate(system, readings, LocateSettings(detection_limit=0.01))
    assert not result.located and "detection limit" in result.reason


def test_draw_case_reads_the_datasets_truth(ds):
    rng = np.random.default_rng(0)
    cells = sensor_cells(np.asarray(ds["fluid"].values), 3, rng)
    es = EvalSettings(sensors=3, noise=0.0, every_s=2.0, window_s=8.0, start_spread_s=0.0)
    readings, truth = draw_case(ds, 3, cells, es, rng)
    conc = ds["concentration"].values[3]
    t = ds["time"].values
    for k, (j, i) in enumerate(cells):
        m = readings.sensor == k
        np.testing.assert_allclose(readings.value[m], np.interp(readings.time[m], t, conc[:, j, i]), rtol=1e-6)
    assert truth["start_s"] == 0.0 and not truth["moving"]
    spread = sensor_cells(np.asarray(ds["fluid"].values), 4, np.random.default_rng(1), "spread")
    assert len({tuple(c) for c in spread}) == 4 and all(ds["fluid"].values[j, i] for j, i in spread)


def _csv(path, rows, header="sensor_id,x_m,y_m,time_s,value"):
    path.write_text(header + "\n" + "".join(r + "\n" for r in rows))
    return path


def test_locate_command_writes_result_and_map(ds, system, files, tmp_path):
    data, run = files
    readings, _ = _model_readings(system, np.array([[4, 5], [7, 2], [2, 2]]), (5, 3))
    path = write_readings(tmp_path / "readings.csv", readings)
    assert read_readings(path).n_sensors == 3
    out = tmp_path / "out"
    res = runner.invoke(app, ["locate", str(run), "--sensors", str(path), "--out", str(out), "--iterations", "5",
                              "--detection-limit", "1e-4"])
    assert res.exit_code == 0, res.output
    payload = json.loads((out / "locate.json").read_text())
    assert payload["status"] == "located" and payload["credible"]["level"] == 0.9
    assert {"x_m", "y_m", "rate", "start_s"} <= set(payload["estimate"])
    assert (out / "posterior.png").stat().st_size > 0
    # the run keeps its training sources' heights; they are the height classes searched by default
    train = ds["split"].values == "train"
    heights = sorted({round(float(z), 3) for z, r in zip(ds["source_z"].values[train].ravel(),
                                                         ds["source_rate"].values[train].ravel()) if r > 0})
    assert json.loads((run / "config.json").read_text())["data"]["source_heights_m"] == heights
    assert payload["search"]["heights_m"] == heights
    assert payload["noise_model"]["model_error_log_sd"] == 0.5 and payload["model_error_from"].startswith("default")
    # a run that recorded its pointwise error on val: the shortest window covering the readings is the noise model
    import shutil

    run2 = shutil.copytree(run, tmp_path / "run2")
    (run2 / "summary.json").write_text(json.dumps({"point_error_val": [
        {"window_s": 6.0, "limit": 1e-4, "values": 50, "model_error": 0.11, "bias": 0.0},
        {"window_s": 60.0, "limit": 1e-4, "values": 90, "model_error": 0.37, "bias": 0.0}]}))
    res = runner.invoke(app, ["locate", str(run2), "--sensors", str(path), "--out", str(tmp_path / "o2"), "--iterations",
                              "2", "--detection-limit", "1e-4"])
    assert res.exit_code == 0, res.output
    payload = json.loads((tmp_path / "o2" / "locate.json").read_text())
    assert payload["noise_model"]["model_error_log_sd"] == 0.37  # the readings run to 12 s: the 60 s window
    assert "within 60 s" in payload["model_error_from"]
    # all sensors below the limit: a clear "cannot locate", exit 3, the result written
    zero = _csv(tmp_path / "zero.csv", ["a,1.25,1.25,4,0", "b,5.25,4.25,4,0", "c,1.75,3.75,4,0"])
    res = runner.invoke(app, ["locate", str(run), "--sensors", str(zero), "--out", str(tmp_path / "z")])
    assert res.exit_code == 3, res.output
    assert "cannot locate" in res.output
    assert json.loads((tmp_path / "z" / "locate.json").read_text())["status"] == "cannot_locate"


@pytest.mark.parametrize("rows,header,message", [
    (["a,1.25,1.25,4,nan", "b,2.25,1.25,4,1"], None, "NaN"),
    (["a,1.25,1.25,4,-1", "b,2.25,1.25,4,1"], None, "negative"),
    (["a,4.25,2.25,4,1"], None, "solid"),
    (["a,-3,1.25,4,1"], None, "outside the plane"),
    (["a,1.25,1.25,100,1"], None, "horizon"),
    (["a,1.25,1.25,-1,1"], None, "before the run"),
    (["a,1.25,1.25,4,abc"], None, "not a number"),
    (["a,1.25,1.25,4,1", "a,2.25,1.25,5,1"], None, "moved"),
    ([], "", "empty"),
    ([], None, "no readings"),
    (["a,1.25,1.25,1"], "sensor_id,x_m,y_m,value", "missing column"),
])
def test_bad_readings_fail_cleanly(files, tmp_path, rows, header, message):
    data, run = files
    path = _csv(tmp_path / "r.csv", rows, **({} if header is None else {"header": header}))
    if header == "":
        path.write_text("")
    out = tmp_path / "out"
    res = runner.invoke(app, ["locate", str(run), "--sensors", str(path), "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert message in res.output and "error" in res.output
    assert not out.exists()


def test_bad_run_and_settings_fail_cleanly(files, tmp_path):
    data, run = files
    path = _csv(tmp_path / "r.csv", ["a,1.25,1.25,4,1"])
    (tmp_path / "notarun").mkdir()
    for args, message in (
        (["locate", str(tmp_path / "notarun"), "--sensors", str(path)], "not a training run"),
        (["locate", str(run), "--sensors", str(tmp_path / "missing.csv")], "no such file"),
        (["locate", str(run), "--sensors", str(path), "--detection-limit", "-1"], "detection limit"),
        (["locate-eval", str(tmp_path / "notarun"), str(data)], "not a training run"),
        (["locate-eval", str(run), str(data), "--split", "bogus"], "unknown split"),
        (["locate-eval", str(run), str(data), "--window", "100"], "window"),
        (["locate-eval", str(run), str(data), "--sensors", "0"], "sensors"),
    ):
        out = tmp_path / "out"
        res = runner.invoke(app, args + ["--out", str(out), "--no-progress"] if args[0] == "locate-eval" else
                            args + ["--out", str(out)])
        assert res.exit_code == 2, (args, res.output)
        assert message in res.output, (args, res.output)
        assert not out.exists()
    with pytest.raises(LocateError, match="noise"):
        LocateSettings(noise=-1.0)


def test_model_error_calibration_measures_the_models_log_error(ds, system):
    from plumecast.forcing import prepare_data as prep_of
    from plumecast.forecast import forecast_scenarios
    from plumecast.locate.evaluate import calibrate_model_error

    model = system[0]
    prep = prep_of(ds, model.config.dt, model.config.dtype, fluid=np.asarray(model.fluid))
    own = forecast_scenarios(system, prep, np.arange(ds.sizes["scenario"]))
    limit = 1e-3 * float(own.max())
    # truth = the model's own forecast, scaled: the error is the scale alone (bias), spread 0
    mine = ds.copy()
    mine["concentration"] = (ds["concentration"].dims, own * math.exp(0.3))
    cal = calibrate_model_error(system, mine, split="train", window_s=8.0, limit=limit)
    assert cal["bias"] == pytest.approx(-0.3, abs=1e-4) and cal["model_error"] < 1e-4 and cal["values"] > 10
    # the dataset's own truth (other physics): a real spread, and only the split asked for is used
    cal = calibrate_model_error(system, ds, split="train", window_s=8.0, limit=limit)
    assert cal["model_error"] > 0.01
    with pytest.raises(LocateError, match="no scenario in split 'val'"):
        calibrate_model_error(system, ds, split="val", window_s=8.0, limit=limit)


def test_model_error_by_age_partitions_the_pointwise_log_errors(ds, system):
    from plumecast.forecast import point_log_errors

    model = system[0]
    prep = prepare_data(ds, model.config.dt, model.config.dtype, fluid=np.asarray(model.fluid))
    limit = 1e-3 * float(np.asarray(ds["concentration"]).max())
    rec = point_log_errors(system, prep, prep.indices("train"), windows_s=[8.0], limit=limit, age_bin_s=2.0)[0]
    bins = rec["by_age"]
    assert len(bins) >= 3 and all(0 < b["from_s"] < b["age_s"] < b["to_s"] <= 8.0 for b in bins[1:])
    assert [b["age_s"] for b in bins] == sorted(b["age_s"] for b in bins)
    n = np.array([b["values"] for b in bins], float)
    assert n.sum() == rec["values"]  # every pair falls in exactly one bin (no bin under the minimum here)
    mean = np.array([b["bias"] for b in bins])
    sd = np.array([b["model_error"] for b in bins])
    # the pooled moments of the bins are the window's own
    assert (n * mean).sum() / n.sum() == pytest.approx(rec["bias"], abs=1e-6)  # float32 log errors
    pooled = (n * (sd ** 2 + mean ** 2)).sum() / n.sum() - rec["bias"] ** 2
    assert math.sqrt(pooled) == pytest.approx(rec["model_error"], rel=1e-5)


def test_model_error_by_age_enters_the_likelihood(system):
    model = system[0]
    # one sensor and a large error: a spread posterior (a ring) that the noise model shapes
    readings, _ = _model_readings(system, np.array([[4, 5]]), (5, 3))
    limit = 1e-3 * float(readings.value.max())
    base = dict(detection_limit=limit, noise=0.05, correlation_s=0.0, refine=1, iterations=5)
    scalar = locate(system, readings, LocateSettings(model_error=1.0, **base))
    assert scalar.located and scalar.posterior.max() < 0.2
    flat = locate(system, readings, LocateSettings(model_error=1.0, model_error_by_age=((0.0, 1.0), (10.0, 1.0)), **base))
    np.testing.assert_allclose(flat.posterior, scalar.posterior, atol=1e-6)  # a flat table is the scalar error
    assert flat.refined[0]["neg_log_lik"] == pytest.approx(scalar.refined[0]["neg_log_lik"], rel=1e-5)
    early = locate(system, readings, LocateSettings(model_error=1.0, model_error_by_age=((1.0, 3.0), (6.0, 0.5)), **base))
    assert np.abs(early.posterior - scalar.posterior).max() > 1e-3  # the table is used, by the time since release
    assert early.noise_model["model_error_by_age"] == [[1.0, 3.0], [6.0, 0.5]]
    for bad in (((5.0, 0.3), (1.0, 0.2)), ((0.0, -0.1),), ((0.0, float("nan")),), ()):
        with pytest.raises(LocateError, match="model_error_by_age"):
            LocateSettings(model_error_by_age=bad)
    with pytest.raises(LocateError, match="error-by-age needs"):
        EvalSettings(error_by_age=True)


def test_locate_eval_runs_end_to_end(files, tmp_path):
    data, run = files
    out = tmp_path / "eval"
    res = runner.invoke(app, ["locate-eval", str(run), str(data), "--split", "test", "--sensors", "3", "--noise", "0.1",
                              "--every", "2", "--window", "8", "--start-spread", "2", "--fixed-layout", "--seed", "1",
                              "--baseline", "--iterations", "3", "--maps", "1", "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    payload = json.loads((out / "locate_eval.json").read_text())
    assert len(payload["summary"]) == 2 and "untrained physics" in payload["summary"]
    assert len(payload["cases"]) == 4  # 2 test scenarios x 2 systems
    for s in payload["summary"].values():
        assert s["cases"] == 2 and 0 <= s["coverage"] <= 1
    rows = (out / "locate_eval.csv").read_text().splitlines()
    assert rows[0].startswith("scenario,split,system") and len(rows) == 5
    assert (out / "locate_eval.png").stat().st_size > 0
    assert "| system |" in res.output and (out / "locate_eval.md").exists()
    assert len(list((out / "maps").glob("*.png"))) == 2
    # a moving source (the ood split) is scored against where it was at the last reading
    out2 = tmp_path / "ood"
    res = runner.invoke(app, ["locate-eval", str(run), str(data), "--split", "ood", "--sensors", "4", "--every", "2",
                              "--window", "8", "--refine", "0", "--maps", "0", "--out", str(out2), "--no-progress"])
    assert res.exit_code == 0, res.output
    case = json.loads((out2 / "locate_eval.json").read_text())["cases"][0]
    assert case["moving"] is True
    # the model error calibrated per system on train or val (never test or ood), by the time since the release
    out3 = tmp_path / "calibrated"
    res = runner.invoke(app, ["locate-eval", str(run), str(data), "--split", "test", "--sensors", "3", "--every", "2",
                              "--window", "8", "--start-spread", "2", "--refine", "0", "--maps", "0", "--model-error", "train",
                              "--error-by-age", "--baseline",
                              "--out", str(out3), "--no-progress"])
    assert res.exit_code == 0, res.output
    libraries = json.loads((out3 / "locate_eval.json").read_text())["libraries"]
    for lib in libraries.values():
        assert lib["calibration"]["split"] == "train" and lib["model_error"] == lib["calibration"]["model_error"] > 0
        table = [[b["age_s"], b["model_error"]] for b in lib["calibration"]["by_age"]]
        assert table and lib["model_error_by_age"] == table  # 30 s bins: one bin over this 8 s window
    assert len({lib["model_error"] for lib in libraries.values()}) == 2  # each system its own
    res = runner.invoke(app, ["locate-eval", str(run), str(data), "--split", "test", "--model-error", "test",
                              "--out", str(tmp_path / "no"), "--no-progress"])
    assert res.exit_code == 2 and "calibrated on the train or val split" in res.output
    assert not (tmp_path / "no").exists()


def test_readings_from_the_model_are_its_own_forecast(ds, system, files, tmp_path):
    from plumecast.forecast import forecast_scenarios
    from plumecast.locate.evaluate import with_model_forecasts

    model = system[0]
    prep = prepare_data(ds, model.config.dt, model.config.dtype, fluid=np.asarray(model.fluid))
    test = prep.indices("test")
    mine = with_model_forecasts(ds, system, test)
    np.testing.assert_allclose(mine["concentration"].values[test], forecast_scenarios(system, prep, test), rtol=1e-6)
    others = np.setdiff1d(np.arange(ds.sizes["scenario"]), test)
    np.testing.assert_array_equal(mine["concentration"].values[others], ds["concentration"].values[others])
    assert not np.allclose(mine["concentration"].values[test], ds["concentration"].values[test])  # not the truth
    data, run = files
    # the located split read from the model; its error still calibrated against the truth (here: that same split)
    res = runner.invoke(app, ["locate-eval", str(run), str(data), "--split", "train", "--sensors", "3", "--every", "2",
                              "--window", "8", "--start-spread", "2", "--refine", "0", "--maps", "0", "--readings-from", "model",
                              "--model-error", "train", "--out", str(tmp_path / "own"), "--no-progress"])
    assert res.exit_code == 0, res.output
    payload = json.loads((tmp_path / "own" / "locate_eval.json").read_text())
    assert payload["settings"]["readings_from"] == "model"
    assert next(iter(payload["libraries"].values()))["model_error"] > 0.01  # not the model against itself (0)
    res = runner.invoke(app, ["locate-eval", str(run), str(data), "--readings-from", "forecast",
                              "--out", str(tmp_path / "no"), "--no-progress"])
    assert res.exit_code == 2 and "--readings-from must be one of" in res.output and not (tmp_path / "no").exists()


def test_layout_seed_changes_the_layout_and_keeps_the_readings_draws(files, tmp_path):
    data, run = files
    common = ["locate-eval", str(run), str(data), "--split", "test", "--sensors", "3", "--every", "2", "--window", "8",
              "--start-spread", "2", "--fixed-layout", "--refine", "0", "--maps", "0",
              "--no-progress"]
    payloads = {}
    for name, extra in {"s1": ["--seed", "1"], "s2": ["--seed", "2"], "s1-l2": ["--seed", "1", "--layout-seed", "2"]}.items():
        res = runner.invoke(app, common + extra + ["--out", str(tmp_path / name)])
        assert res.exit_code == 0, res.output
        payloads[name] = json.loads((tmp_path / name / "locate_eval.json").read_text())
    assert payloads["s1"]["layout"] != payloads["s2"]["layout"]
    assert payloads["s1-l2"]["layout"] == payloads["s2"]["layout"]  # the layout of --seed 2 ...
    starts = {k: [c["truth_start_s"] for c in p["cases"]] for k, p in payloads.items()}
    assert starts["s1-l2"] == starts["s1"] != starts["s2"]  # ... read with the release clock of --seed 1
    res = runner.invoke(app, ["locate-eval", str(run), str(data), "--layout-seed", "2", "--out", str(tmp_path / "no"),
                              "--no-progress"])
    assert res.exit_code == 2 and "--layout-seed" in res.output and not (tmp_path / "no").exists()


# ---------------------------------------------------------------- sensor placement (plumecast.locate.placement)
def _objective(worth, cols, cover):
    """The design score, straight from its definition: per source the sum of the ``cover`` largest worths."""
    picked = np.sort(worth[:, list(cols)], axis=1)[:, ::-1][:, :cover]
    return float(picked.sum())


@pytest.mark.parametrize("cover", [1, 2, 3])
def test_greedy_layout_scores_its_objective_and_is_near_the_best(cover):
    rng = np.random.default_rng(cover)
    for _ in range(5):
        worth = rng.uniform(0, 1, (12, 7)) * (rng.uniform(0, 1, (12, 7)) < 0.4)
        cols, score = greedy_layout(worth, 3, cover)
        assert len(set(cols.tolist())) == 3
        assert score == pytest.approx(_objective(worth, cols, cover))
        best = max(_objective(worth, s, cover) for s in itertools.combinations(range(7), 3))
        assert score >= (1 - 1 / math.e) * best - 1e-12
        assert score <= best + 1e-12


def test_greedy_layout_picks_what_covers_most():
    # three cells each seeing its own block of sources; cell 3 sees nothing, cell 0 a superset of cell 4's sources
    worth = np.zeros((9, 5))
    worth[0:4, 0] = 1.0
    worth[4:7, 1] = 1.0
    worth[7:9, 2] = 1.0
    worth[0:2, 4] = 1.0
    cols, score = greedy_layout(worth, 3, 1)
    assert sorted(cols.tolist()) == [0, 1, 2] and score == 9.0
    cols, score = greedy_layout(worth, 4, 2)  # with two counted per source, cell 4 adds the second view of 0-1
    assert sorted(cols.tolist()) == [0, 1, 2, 4] and score == 11.0
    with pytest.raises(LocateError, match="sensors asked for"):
        greedy_layout(worth, 6, 1)
    with pytest.raises(LocateError, match="cover"):
        greedy_layout(worth, 2, 0)


def test_arrival_matrix_is_the_forecasts_first_time_above_the_limit(system):
    model, closure = system
    c = model.config
    limit = 0.2 * default_limit(model)
    window = 8.0
    xyz, _ = candidates(model, (c.plane_height_m,), 2)
    arrival, cells = arrival_matrix(system, xyz, window_s=window, limit=limit, batch=3)
    assert arrival.shape == (len(xyz), len(cells))
    n_steps = int(round(window / c.dt))
    for k in (0, len(xyz) // 2):
        f = sweep_forcing(xyz[k : k + 1], 1.0, dt=c.dt, n_steps=n_steps, dtype=c.dtype)
        frames = np.asarray(model.decode(rollout_frames(model, closure, jnp.zeros((1,) + c.shape, c.jdtype),
                                                        jax.tree.map(jnp.asarray, f), 1)))[0]  # (n_steps, ny, nx)
        for (j, i), a in zip(cells, arrival[k]):
            series = frames[:, j, i]
            above = np.flatnonzero(series >= limit)
            if above.size == 0:
                assert np.isinf(a)
            else:  # crossed during the step ending at frame above[0] (linear between steps)
                t_hi = c.dt * (above[0] + 1)
                assert t_hi - c.dt - 1e-5 <= a <= t_hi + 1e-5
    assert np.isfinite(arrival).any() and np.isinf(arrival).any()


def test_design_layout_places_distinct_fluid_sensors(system):
    model = system[0]
    layout = design_layout(system, 3, heights=(model.config.plane_height_m,), window_s=8.0,
                           limit=0.2 * default_limit(model), cover=1, stride=2)
    fluid = np.asarray(model.fluid) > 0
    assert len({tuple(c) for c in layout.cells.tolist()}) == 3
    assert all(fluid[j, i] for j, i in layout.cells)
    assert layout.sources_seen.sum() == pytest.approx(1.0)
    assert 0 < layout.score <= 1
    d = layout.as_dict()
    assert [s["id"] for s in d["sensors"]] == ["S1", "S2", "S3"]
    confusion = design_layout(system, 3, heights=(model.config.plane_height_m,), window_s=8.0,
                              limit=0.2 * default_limit(model), criterion="confusion", bin_s=2.0, stride=2)
    assert confusion.criterion == "confusion" and confusion.score >= 0 and len(confusion.cells) == 3
    with pytest.raises(LocateError, match="window"):
        design_layout(system, 3, heights=(1.5,), window_s=0.0, limit=1.0)


def test_sensors_command_and_designed_locate_eval(files, tmp_path):
    data, run = files
    out = tmp_path / "layout"
    res = runner.invoke(app, ["sensors", str(run), "--count", "3", "--window", "8", "--cover", "2", "--stride", "2",
                              "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    rows = (out / "sensors.csv").read_text().splitlines()
    assert rows[0] == "sensor_id,x_m,y_m" and len(rows) == 4
    payload = json.loads((out / "sensors.json").read_text())
    assert payload["cover"] == 2 and len(payload["sensors"]) == 3
    assert (out / "sensors.png").stat().st_size > 0
    # locate-eval on the same design: its fixed layout is the command's
    ev = tmp_path / "eval"
    res = runner.invoke(app, ["locate-eval", str(run), str(data), "--split", "test", "--sensors", "3", "--every", "2",
                              "--window", "8", "--start-spread", "2", "--layout", "designed", "--cover", "2",
                              "--stride", "2", "--refine", "0", "--maps", "0", "--out", str(ev), "--no-progress"])
    assert res.exit_code == 0, res.output
    result = json.loads((ev / "locate_eval.json").read_text())
    assert [[s["row"], s["column"]] for s in result["design"]["sensors"]] == \
        [[c["row"], c["column"]] for c in result["layout"]]
    assert [(s["row"], s["column"]) for s in result["design"]["sensors"]] == \
        [(s["row"], s["column"]) for s in payload["sensors"]]


@pytest.mark.parametrize("args, message", [
    (["--window", "100"], "--window"),
    (["--window", "0"], "--window"),
    (["--count", "100000"], "sensors asked for"),
    (["--rate", "-1"], "rate"),
    (["--detection-limit", "0"], "detection limit"),
    (["--criterion", "bogus"], "--criterion"),
    (["--criterion", "confusion", "--bin", "0"], "--bin"),
])
def test_sensors_bad_input_fails_cleanly(files, tmp_path, args, message):
    _, run = files
    out = tmp_path / "bad"
    res = runner.invoke(app, ["sensors", str(run), "--out", str(out), "--no-progress", "--stride", "2", "--window", "8"]
                        + args)
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert not out.exists()


def _confusion_rms(arrival, xy, cols, bin_s):
    """RMS distance to the centroid of each group of sources with equal arrival bins at ``cols`` (from the definition)."""
    keys = [tuple(-1 if not np.isfinite(a) else int(a // bin_s) for a in arrival[s, list(cols)]) for s in range(len(xy))]
    total = 0.0
    for key in set(keys):
        members = xy[[k == key for k in keys]]
        total += ((members - members.mean(axis=0)) ** 2).sum()
    return math.sqrt(total / len(xy))


def test_greedy_confusion_layout_scores_its_groups():
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 10, (30, 2))
    arrival = rng.uniform(0, 60, (30, 6))
    arrival[rng.uniform(size=arrival.shape) < 0.3] = np.inf
    cols, rms = greedy_confusion_layout(arrival, xy, 3, 20.0)
    assert len(set(cols.tolist())) == 3
    assert rms == pytest.approx(_confusion_rms(arrival, xy, cols, 20.0))
    # its first sensor is the best single one
    singles = [_confusion_rms(arrival, xy, [j], 20.0) for j in range(6)]
    assert _confusion_rms(arrival, xy, cols[:1], 20.0) == pytest.approx(min(singles))
    # a sensor that tells every source apart leaves nothing to confuse
    arrival[:, 5] = np.arange(30) * 20.0 + 1.0
    cols, rms = greedy_confusion_layout(arrival, xy, 1, 20.0)
    assert cols.tolist() == [5] and rms == 0.0
    with pytest.raises(LocateError, match="bin"):
        greedy_confusion_layout(arrival, xy, 1, 0.0)
