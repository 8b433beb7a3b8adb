"""Sweeps: batched forecasts of a source at every candidate location equal one-at-a-time forecasts."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

from _surrogate_helpers import invoke, one_line_error, run_copy, tiny_run
from plumecast.forecast import rollout_frames
from plumecast.io.room import load_run_room
from plumecast.sweep import SweepError, candidate_sources, parse_receptors, run_sweep, sweep_forcing
from plumecast.train import load_run


def _system_room():
    _, run = tiny_run()
    system, _, run_json = load_run(run)
    return system, load_run_room(run, run_json)


def _one_at_a_time(system, xyz, *, rate, horizon_s, cells, threshold):
    """Exposure and arrival from stored frames of single forecasts (every model step kept)."""
    model, closure = system
    n_steps = int(round(horizon_s / model.config.dt))
    dt = model.config.dt
    expo, arrival = [], []
    for p in xyz:
        f = sweep_forcing(p[None], rate, dt=dt, n_steps=n_steps, dtype=model.config.dtype)
        q0 = jnp.zeros((1,) + model.config.shape, model.config.jdtype)
        frames = np.asarray(model.decode(rollout_frames(model, closure, q0, jax.tree.map(jnp.asarray, f), 1)))[0]
        c = np.concatenate([np.zeros((1,) + model.config.shape), frames.astype(float)])
        expo.append(0.5 * dt * (c[1:] + c[:-1]).sum(axis=0))
        t = dt * np.arange(n_steps + 1)
        a = []
        for j, i in cells:
            above = np.flatnonzero(c[:, j, i] >= threshold)
            if above.size == 0:
                a.append(np.nan)
                continue
            k = above[0]
            lo, hi = c[k - 1, j, i], c[k, j, i]
            a.append(t[k - 1] + dt * (threshold - lo) / (hi - lo))
        arrival.append(a)
    return np.asarray(expo), np.asarray(arrival)


def test_sweep_equals_one_at_a_time_forecasts(tmp_path):
    system, room = _system_room()
    xyz, notes = candidate_sources(room, heights=[room.plane_height_m])
    assert len(xyz) == int(room.fluid.sum()) and notes == []
    receptors = parse_receptors(["desk=3.25,1.25", "0.75,1.75"], room)
    result = run_sweep(system, room, xyz, rate=1.5, horizon_s=20.0, receptors=receptors, threshold=0.05, batch=8,
                       out_dir=tmp_path)
    cells = [receptors[0].cells[0], receptors[1].cells[0]]
    expo, arrival = _one_at_a_time(system, xyz, rate=1.5, horizon_s=20.0, cells=cells, threshold=0.05)
    with xr.open_dataset(tmp_path / "sweep.nc") as ds:
        got = ds["exposure"].values
        np.testing.assert_allclose(ds["source_x"].values, xyz[:, 0])
        top = float(np.abs(expo).max())
        np.testing.assert_allclose(got, expo, rtol=0, atol=1e-5 * top)
        np.testing.assert_allclose(ds["worst_exposure"].values, expo.max(axis=0), rtol=0, atol=1e-5 * top)
        np.testing.assert_allclose(ds["arrival_s"].values, arrival, atol=1e-3, equal_nan=True)
        j, i = cells[0]
        np.testing.assert_allclose(ds["receptor_exposure"].values[:, 0], expo[:, j, i], rtol=0, atol=1e-5 * top)
        assert list(ds["receptor_name"].values) == ["desk", "r1"]
    assert np.isfinite(arrival).any() and np.isnan(arrival).any()  # some reach the receptor in 20 s, some do not


def test_sweep_command_writes_maps_and_a_summary(tmp_path):
    _, run = tiny_run()
    out = tmp_path / "sweep"
    r = invoke("sweep", run, "--out", out, "--height", 0.75, "--height", 0.3, "--horizon", 10,
               "--receptor", "desk=3.25,1.25", "--receptor", "desk=3.75,1.25", "--batch", 4, "--no-progress")
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    assert "left out at z = 0.3 m" in text  # the desk top is at 0.5 m
    for name in ("sweep.nc", "worst-exposure.png", "receptor-desk.png", "summary.json"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    with xr.open_dataset(out / "sweep.nc") as ds:
        n = ds.sizes["source"]
        assert summary["sources"] == n and ds.sizes["receptor"] == 1 and ds.sizes["receptor_point"] == 2
        z = ds["source_z"].values
        assert set(np.round(z, 6)) == {0.75, 0.3} and (z == 0.75).sum() > (z == 0.3).sum()
    assert summary["receptors"]["desk"]["hardest"]


def test_sweep_points_csv(tmp_path):
    _, run = tiny_run()
    pts = tmp_path / "points.csv"
    pts.write_text("x,y\n# the printer and a desk\n1.0,0.5\n3.25,1.75\n")
    r = invoke("sweep", run, "--out", tmp_path / "s", "--points", pts, "--horizon", 8, "--no-progress")
    assert r.exit_code == 0, r.output
    with xr.open_dataset(tmp_path / "s" / "sweep.nc") as ds:
        np.testing.assert_allclose(ds["source_x"].values, [1.0, 3.25])
        assert ds.sizes["receptor"] == 0


BAD_SWEEPS = [
    (["--horizon", 81], ["more than 2x"]),
    (["--rate", "nan"], ["--rate"]),
    (["--rate", -1], ["--rate"]),
    (["--receptor", "3.5,0.25"], ["solid cell"]),
    (["--receptor", "9,1"], ["outside the plane"]),
    (["--receptor", "a=1"], ["x,y"]),
    (["--height", 2.0], ["above the ceiling"]),
    (["--batch", 0], ["--batch"]),
    (["--threshold", 0], ["--threshold"]),
]


@pytest.mark.parametrize("args,phrases", BAD_SWEEPS, ids=[f"bad-{k}" for k in range(len(BAD_SWEEPS))])
def test_bad_sweeps_are_named_errors_and_write_nothing(tmp_path, args, phrases):
    _, run = tiny_run()
    out = tmp_path / "sweep"
    one_line_error(invoke("sweep", run, "--out", out, "--no-progress", *args), *phrases)
    assert not out.exists()


def test_bad_points_runs_and_out(tmp_path):
    _, run = tiny_run()
    pts = tmp_path / "points.csv"
    pts.write_text("1.0,0.5\n2.0,0.75,0.3\n")
    one_line_error(invoke("sweep", run, "--out", tmp_path / "s", "--points", pts), "line 2", "inside obstacle 'desk'")
    pts.write_text("1.0,0.5\n1.0,abc\n")
    one_line_error(invoke("sweep", run, "--out", tmp_path / "s", "--points", pts), "points.csv:2")
    (tmp_path / "file").write_text("")
    one_line_error(invoke("sweep", run, "--out", tmp_path / "file"), "not a directory")
    copy = run_copy(tmp_path)
    (copy / "room.nc").write_bytes((copy / "room.nc").read_bytes() + b"\0")
    one_line_error(invoke("sweep", copy, "--out", tmp_path / "s"), "does not match")
    assert not (tmp_path / "s").exists()


def test_candidate_checks():
    _, room = _system_room()
    xyz, notes = candidate_sources(room, heights=[0.3])
    assert len(xyz) == int(room.fluid.sum()) - 2 and "2 cell(s) left out" in notes[0]  # two cells over the desk
    xyz, _ = candidate_sources(room, heights=[0.75], stride=2)
    assert len(xyz) == int(room.fluid[::2, ::2].sum())
    with pytest.raises(SweepError, match="p.csv line 7: .* inside obstacle 'desk'"):
        candidate_sources(room, heights=[0.75], points=[(7, (2.0, 0.75, 0.3))], origin="p.csv")
    with pytest.raises(SweepError, match="below the floor"):
        candidate_sources(room, heights=[-1.0])


def test_an_interrupted_sweep_leaves_nothing(tmp_path):
    system, room = _system_room()
    xyz, _ = candidate_sources(room, heights=[room.plane_height_m], stride=2)

    def stop(done, total):
        raise KeyboardInterrupt

    out = tmp_path / "sweep"
    with pytest.raises(KeyboardInterrupt):
        run_sweep(system, room, xyz, rate=1.0, horizon_s=4.0, receptors=[], threshold=0.1, batch=2, out_dir=out,
                  on_batch=stop)
    assert not out.exists()
