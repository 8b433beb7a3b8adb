"""Sensor placement designed from the model's forecasts (plumecast.locate.placement, `plumecast sensors`)."""

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
from plumecast.locate import LocateError, default_limit
from plumecast.locate.placement import arrival_matrix, design_layout, greedy_confusion_layout, greedy_layout
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
    return build_system(ds, TrainConfig(), prepare_data(ds, 0.4))


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
    arrival, cells = arrival_matrix(system, heights=(c.plane_height_m,), window_s=window, limit=limit, stride=2, batch=3)
    from plumecast.locate.core import candidates

    xyz, _ = candidates(model, (c.plane_height_m,), 2)
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


@pytest.fixture(scope="module")
def files(ds, tmp_path_factory):
    root = tmp_path_factory.mktemp("placement")
    data = write_dataset(ds, root / "tiny.nc")
    cfg = TrainConfig().replace(window_s=4.0, curriculum_s=(4.0,), epochs=(1,), batch_size=2)
    train(ds, root / "run", cfg, progress=False, evaluate=False, log=lambda m: None)
    return data, root / "run"


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
