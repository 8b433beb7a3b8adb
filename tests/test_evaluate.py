"""Evaluation and reports end to end: train a tiny model through the CLI, evaluate, compare."""

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

import plumecast  # noqa: F401
from plumecast.cli import app
from plumecast.io.dataset import make_dataset, write_dataset

runner = CliRunner()


def said(result) -> str:
    """The command's output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def tiny_dataset(ny=10, nx=14, n_train=2, n_test=2, n_ood=1, horizon_s=8.0, snapshot_s=2.0, seed=0):
    """A small plane dataset: plumes that grow around their source and drift with a uniform flow.

    The truth is analytic (a Gaussian puff fed by the source, widening over time and
    decaying as if lost through the plane), not a solution of the coarse model.
    """
    rng = np.random.default_rng(seed)
    dx = 0.5
    x = (np.arange(nx) + 0.5) * dx
    y = (np.arange(ny) + 0.5) * dx
    fluid = np.ones((ny, nx))
    fluid[3:5, 6:8] = 0
    times = np.arange(0.0, horizon_s + 1e-9, snapshot_s)
    n = n_train + n_test + n_ood
    splits = ["train"] * n_train + ["test"] * n_test + ["ood"] * n_ood
    X, Y = np.meshgrid(x, y)
    conc = np.zeros((n, len(times), ny, nx))
    xyz = np.zeros((n, len(times), 3))
    rate = np.full((n, len(times)), 2.0)
    for k in range(n):
        j, i = rng.integers(1, ny - 1), rng.choice([1, 2, 3, nx - 3, nx - 2])
        sx = np.full(len(times), x[i])
        if splits[k] == "ood":  # a moving source along the bottom row of fluid cells
            j = 1
            sx = np.interp(times, [0, horizon_s], [x[1], x[5]])
        xyz[k, :, 0], xyz[k, :, 1], xyz[k, :, 2] = sx, y[j], 1.2
        for m, t in enumerate(times):
            if t == 0:
                continue
            s2 = 0.3 + 0.05 * t
            conc[k, m] = 0.5 * (1 - np.exp(-t / 4)) * np.exp(-((X - sx[m] - 0.02 * t) ** 2 + (Y - y[j]) ** 2) / (2 * s2))
    conc *= fluid
    u = np.full((ny, nx), 0.02) * fluid
    v = np.zeros((ny, nx))
    return make_dataset(
        scenario_names=[f"{s}-{k}" for k, s in enumerate(splits)], splits=splits, times_s=times, x_m=x, y_m=y,
        concentration=conc, u=u, v=v, w=0.005 * fluid, nu_t=0.003 * fluid, fluid_fraction=fluid, source_xyz=xyz,
        source_rate=rate, plane_height_m=1.5, mass_unit="mg", generator="test-tiny", generator_version="0",
        scenario_config={"name": "tiny", "room": {"size_m": [nx * dx, ny * dx, 3.0]}},
    )


def _train_args(data, out, variant):
    return ["train", str(data), "--variant", variant, "--out", str(out), "--no-progress",
            "--set", "curriculum_s=[4]", "--set", "epochs=[1]", "--set", "window_s=4", "--set", "batch_size=2"]


@pytest.fixture(scope="module")
def data_path(tmp_path_factory):
    return write_dataset(tiny_dataset(), tmp_path_factory.mktemp("data") / "tiny.nc")


@pytest.fixture(scope="module")
def memory_run(data_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "memory"
    r = runner.invoke(app, _train_args(data_path, out, "memory"))
    assert r.exit_code == 0, r.output
    return out


def test_train_then_evaluate_writes_the_report(memory_run, data_path, tmp_path):
    out = tmp_path / "report"
    r = runner.invoke(app, ["evaluate", str(memory_run), str(data_path), "--split", "test", "--out", str(out)])
    assert r.exit_code == 0, r.output
    files = {p.name for p in out.iterdir()}
    for name in ("metrics.json", "metrics_per_scenario.csv", "metrics_over_time.csv", "metrics_over_time.png",
                 "learned_fields.png", "report.html"):
        assert name in files
    gifs = sorted(f for f in files if f.endswith(".gif"))
    snaps = sorted(f for f in files if f.startswith("snapshots_") and f.endswith(".png"))
    assert len(gifs) == 2 and len(snaps) == 2  # both test scenarios are examples
    assert not any(f.startswith(".") for f in files)  # no staging leftovers
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".report.")]
    m = json.loads((out / "metrics.json").read_text())
    assert m["split"] == "test" and m["variant"] == "memory" and m["n_scenarios"] == 2
    assert set(m["per_scenario"]) == {"test-2", "test-3"}
    s = m["summary"]["spearman"]
    assert -1 <= s["final"]["median"] <= 1 and s["final"]["q25"] <= s["final"]["median"] <= s["final"]["q75"]
    assert len(s["over_time"]["median"]) == len(m["times_s"]) == 5
    page = (out / "report.html").read_text()
    for f in gifs + snaps + ["metrics.json", "metrics_over_time.png"]:
        assert f"'{f}'" in page
    rows = (out / "metrics_per_scenario.csv").read_text().splitlines()
    assert rows[0].startswith("scenario,split,spearman_final") and len(rows) == 3


def test_evaluation_matches_the_forecast_command(memory_run, data_path):
    """evaluate's batched rollouts agree with the training engine's one-scenario forecast."""
    from plumecast.evaluate import evaluate_run
    from plumecast.io.dataset import read_dataset
    from plumecast.forecast import forecast
    from plumecast.train import load_run

    ev = evaluate_run(memory_run, data_path, "ood")
    assert ev.scenarios == ["ood-4"] and ev.forecast.shape == ev.truth.shape == (1, 5, 10, 14)
    np.testing.assert_array_equal(ev.forecast[:, 0], ev.truth[:, 0])
    system, _, _ = load_run(memory_run)
    ref = forecast(system, read_dataset(data_path), "ood-4")
    np.testing.assert_allclose(ev.forecast[0], ref, rtol=1e-5, atol=1e-7)
    assert set(ev.per_time) >= {"spearman", "relative_l2", "ssim", "com_error_m", "exposure_error"}
    assert all(a.shape == (1, 5) for a in ev.per_time.values())
    assert not ev.non_finite


def test_compare_two_runs(memory_run, data_path, tmp_path):
    other = tmp_path / "memory-copy"
    shutil.copytree(memory_run, other)
    out = tmp_path / "cmp"
    r = runner.invoke(app, ["compare", str(memory_run), str(other), "--data", str(data_path), "--out", str(out)])
    assert r.exit_code == 0, r.output
    files = {p.name for p in out.iterdir()}
    assert {"compare.csv", "compare.json", "compare.png", "compare.html", "compare_over_time_test.png",
            "compare_over_time_ood.png"} <= files
    rows = (out / "compare.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 2  # two runs x (test, ood)
    table = json.loads((out / "compare.json").read_text())["runs"]
    by = {(e["run"], e["split"]): e for e in table}
    # Same model, same numbers.
    assert by[("memory", "test")]["relative_l2"] == by[("memory-copy", "test")]["relative_l2"]


def test_grid_mismatch_is_rejected(memory_run, tmp_path):
    other = write_dataset(tiny_dataset(ny=9, nx=14), tmp_path / "other.nc")
    out = tmp_path / "report"
    r = runner.invoke(app, ["evaluate", str(memory_run), str(other), "--out", str(out)])
    assert r.exit_code != 0
    assert "grid mismatch" in said(r) and "10 x 14" in said(r) and "9 x 14" in said(r)
    assert not out.exists()
    r = runner.invoke(app, ["compare", str(memory_run), "--data", str(other), "--out", str(out)])
    assert r.exit_code != 0 and "grid mismatch" in said(r) and not out.exists()


def test_bad_arguments_fail_cleanly(memory_run, data_path, tmp_path):
    out = tmp_path / "report"
    r = runner.invoke(app, ["evaluate", str(memory_run), str(data_path), "--split", "validation", "--out", str(out)])
    assert r.exit_code != 0 and "unknown split" in said(r)
    r = runner.invoke(app, ["evaluate", str(tmp_path / "nope"), str(data_path), "--out", str(out)])
    assert r.exit_code != 0 and "config.json" in said(r)
    r = runner.invoke(app, ["evaluate", str(memory_run), str(tmp_path / "missing.nc"), "--out", str(out)])
    assert r.exit_code != 0 and "no such file" in said(r)
    assert not out.exists()


def test_staging_writes_nothing_on_error(tmp_path):
    from plumecast.report import staged_dir

    out = tmp_path / "report"
    with pytest.raises(RuntimeError):
        with staged_dir(out) as tmp:
            (tmp / "metrics.json").write_text("{}")
            raise RuntimeError("boom")
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_val_split_is_known_to_train_evaluate_and_compare(tmp_path):
    """A dataset with val: train prints its curve and pick, evaluate scores val (its role in the report), compare
    puts val first by default, and --model last evaluates the latest checkpoint instead of the selected model."""
    from plumecast.io.dataset import SPLITS

    ds = tiny_dataset(n_test=3)
    ds["split"] = ("scenario", np.asarray(["train", "train", "val", "test", "test", "ood"]))
    data = write_dataset(ds, tmp_path / "val.nc")
    run = tmp_path / "run"
    r = runner.invoke(app, _train_args(data, run, "physics")[:-2] + ["--set", "batch_size=2", "--set", "epochs=[2]"])
    assert r.exit_code == 0, r.output
    assert "val curve (epoch: median final-time relative L2): 0:" in said(r) and "selected on val: epoch" in said(r)
    summary = json.loads((run / "summary.json").read_text())
    assert set(summary["trained"]) == {"train", "val", "test", "ood"} and len(summary["val_curve"]) == 3
    out = tmp_path / "val-report"
    r = runner.invoke(app, ["evaluate", str(run), str(data), "--split", "val", "--out", str(out)])
    assert r.exit_code == 0, r.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["split"] == "val" and m["n_scenarios"] == 1 and m["split_role"].startswith("chooses")
    assert m["summary"]["relative_l2"]["final"]["median"] == pytest.approx(summary["selected"]["val"], rel=1e-4)
    r = runner.invoke(app, ["evaluate", str(run), str(data), "--split", "val", "--model", "last", "--out",
                            str(tmp_path / "last")])
    assert r.exit_code == 0, r.output
    last = json.loads((tmp_path / "last" / "metrics.json").read_text())
    assert last["summary"]["relative_l2"]["final"]["median"] == pytest.approx(summary["val_curve"][-1]["val"], rel=1e-4)
    cmp = tmp_path / "cmp"
    r = runner.invoke(app, ["compare", str(run), "--data", str(data), "--out", str(cmp)])
    assert r.exit_code == 0, r.output
    c = json.loads((cmp / "compare.json").read_text())
    assert [e["split"] for e in c["runs"]] == ["val", "test", "ood"] and set(c["split_roles"]) == {"val", "test", "ood"}
    r = runner.invoke(app, ["evaluate", str(run), str(data), "--split", "val", "--model", "best", "--out",
                            str(tmp_path / "x")])
    assert r.exit_code != 0 and "unknown --model" in said(r)
    assert "val" in SPLITS
