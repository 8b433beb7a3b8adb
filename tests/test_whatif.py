"""What-if forecasts: a run stores its room; new sources forecast without a dataset; bad inputs are named errors."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from _coarse_helpers import synthetic_dataset
from _surrogate_helpers import invoke, one_line_error, run_copy, tiny_run
from plumecast.forecast import check_grid, rollout_frames
from plumecast.io.dataset import read_dataset, write_dataset
from plumecast.io.room import RoomError, file_sha256, load_run_room, read_room, room_from_dataset
from plumecast.physics.model import Forcing
from plumecast.train import load_run
from plumecast.whatif import WhatIfError, forecast_whatif, parse_whatif, whatif_forcing


def _toml(value) -> str:
    if isinstance(value, (list, tuple, np.ndarray)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(float(value))


def _whatif_file(path, horizon_s, sources, extra=""):
    lines = [f"horizon_s = {horizon_s!r}", extra]
    for s in sources:
        lines.append("[[sources]]")
        for k, v in s.items():
            lines.append(f"{k} = {v}" if isinstance(v, str) else f"{k} = {_toml(v)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _system_room():
    data, run = tiny_run()
    system, _, run_json = load_run(run)
    return system, load_run_room(run, run_json)


# ---------------------------------------------------------------------------------- the room
def test_a_run_stores_its_room_with_a_checked_hash():
    data, run = tiny_run()
    run_json = json.loads((run / "config.json").read_text())
    entry = run_json["room"]
    assert entry["file"] == "room.nc" and entry["sha256"] == file_sha256(run / "room.nc")
    room = load_run_room(run, run_json)
    ds = read_dataset(data)
    for name in ("fluid", "fluid_fraction", "u", "v", "w", "nu_t"):
        np.testing.assert_array_equal(getattr(room, name), ds[name].values)
    np.testing.assert_array_equal(room.x, ds["x"].values)
    assert (room.plane_height_m, room.horizon_s, room.snapshot_s, room.mass_unit) == (0.75, 40.0, 2.0, "mg")
    assert room.room_size_m == (4.0, 2.0, 1.5) and room.train_source_z_m == (0.6, 0.9)
    assert room.has_geometry and room.room_cell_m == 0.25
    assert room.where(2.0, 0.75, 0.3) == "inside obstacle 'desk'"
    assert room.where(3.5, 0.25, 0.75) == "inside a wall or obstacle"
    assert room.where(1.0, 0.5, 0.75) is None
    assert "floor" in room.where(1.0, 0.5, -0.1) and "ceiling" in room.where(1.0, 0.5, 1.6)
    assert room.where(4.5, 0.5, 0.75) == "outside the room"
    check_grid(load_run(run)[0][0], room.as_dataset())  # the stored room is the run's grid and flow


def test_a_room_without_3d_geometry_checks_the_plane_and_height():
    room = room_from_dataset(synthetic_dataset(n_train=1, n_test=0, n_ood=0, horizon_s=4.0))
    assert not room.has_geometry and room.room_size_m == (7.0, 5.0, 3.0)
    assert room.where(1.0, 1.0, 1.2) is None
    assert room.where(8.0, 1.0, 1.2) == "outside the room"
    assert "ceiling" in room.where(1.0, 1.0, 3.5)
    assert not room.plane_ok(np.asarray([0.25]), np.asarray([0.25]))[0]  # cell (0, 0) is solid


def test_read_room_refuses_a_changed_file(tmp_path):
    _, run = tiny_run()
    path = tmp_path / "room.nc"
    path.write_bytes((run / "room.nc").read_bytes() + b"\0")
    with pytest.raises(RoomError, match="does not match the SHA-256"):
        read_room(path, json.loads((run / "config.json").read_text())["room"]["sha256"])


# ---------------------------------------------------------------------------------- forecasts
@pytest.mark.parametrize("scenario", ["static-a", "pulse-c", "moving-f"])
def test_whatif_of_a_dataset_scenario_equals_its_dataset_forecast(tmp_path, scenario):
    data, run = tiny_run()
    ds = read_dataset(data)
    i = [str(s) for s in ds["scenario"].values].index(scenario)
    t = ds["time"].values
    x, y, z, r = (ds[f"source_{k}"].values[i] for k in ("x", "y", "z", "rate"))
    source = {"rate": np.stack([t, r], axis=-1)}
    if np.ptp(x) == 0 and np.ptp(y) == 0 and np.ptp(z) == 0:
        source["position_m"] = [x[0], y[0], z[0]]
    else:
        source["path"] = np.stack([t, x, y, z], axis=-1)
    spec = _whatif_file(tmp_path / "what-if.toml", float(t[-1]), [source])
    a, b = tmp_path / "dataset.nc", tmp_path / "what-if.nc"
    r1 = invoke("forecast", run, "--data", data, "--scenario", scenario, "--out", a)
    assert r1.exit_code == 0, r1.output
    r2 = invoke("forecast", run, "--scenario-file", spec, "--out", b)
    assert r2.exit_code == 0, r2.output
    fa, fb = read_dataset(a), read_dataset(b)
    np.testing.assert_array_equal(fb["time"].values, fa["time"].values)
    top = float(np.abs(fa["concentration"].values).max())
    assert top > 0
    np.testing.assert_allclose(fb["concentration"].values, fa["concentration"].values, rtol=0, atol=1e-6 * top)
    for k in ("x", "y", "z", "rate"):
        np.testing.assert_allclose(fb[f"source_{k}"].values, fa[f"source_{k}"].values, atol=1e-12)
    assert fb.attrs["generator"] == "plumecast-whatif" and str(fb["split"].values[0]) == "ood"
    assert (tmp_path / "what-if.png").is_file() and (tmp_path / "what-if.gif").is_file()


def test_several_sources_run_in_one_rollout_and_add_up():
    """The layered physics is linear in the source: two sources at once are the sum of each alone."""
    system, room = _system_room()
    a = {"name": "printer", "position_m": [1.0, 0.5, 0.75], "rate": [[0.0, 1.0], [20.0, 0.5]]}
    b = {"path": [[0.0, 0.75, 1.75, 0.75], [30.0, 3.25, 1.75, 0.9]], "rate": 2.0, "start_s": 4.0, "stop_s": 13.3}
    both, warnings = forecast_whatif(system, room, parse_whatif({"horizon_s": 30.0, "sources": [a, b]}))
    fa, _ = forecast_whatif(system, room, parse_whatif({"horizon_s": 30.0, "sources": [a]}))
    fb, _ = forecast_whatif(system, room, parse_whatif({"horizon_s": 30.0, "sources": [b]}))
    c = both["concentration"].values
    top = float(np.abs(c).max())
    np.testing.assert_allclose(c, fa["concentration"].values + fb["concentration"].values, rtol=0, atol=2e-6 * top)
    assert both["sources_x"].shape == (1, 2, 16) and both.attrs["n_sources"] == 2
    np.testing.assert_array_equal(both["source_rate"].values, fa["source_rate"].values)  # source_*: the first source
    rate_b = both["sources_rate"].values[0, 1]
    assert rate_b[both["time"].values < 4.0].max() == 0 and rate_b[both["time"].values >= 14.0].max() == 0
    assert list(both["source_name"].values) == ["printer", "source 2"]
    assert warnings == []


def test_a_source_axis_of_one_is_the_one_source_forcing_bit_for_bit():
    system, room = _system_room()
    model, closure = system
    spec = parse_whatif({"horizon_s": 8.0, "sources": [{"position_m": [3.0, 1.5, 0.6], "rate": [[0, 1], [8, 3]]}]})
    f = whatif_forcing(spec, dt=model.config.dt, n_steps=20, dtype=model.config.dtype)
    one = Forcing(*(jnp.asarray(a)[None] for a in (f.t, f.x, f.y, f.z, f.rate)))
    axis = Forcing(one.t, *(a[..., None] for a in (one.x, one.y, one.z, one.rate)))
    q0 = jnp.zeros((1,) + model.config.shape, model.config.jdtype)
    np.testing.assert_array_equal(np.asarray(rollout_frames(model, closure, q0, axis, 5)),
                                  np.asarray(rollout_frames(model, closure, q0, one, 5)))


def test_start_and_stop_emit_exactly_their_share_of_a_step():
    spec = parse_whatif({"horizon_s": 4.0, "sources": [{"position_m": [1, 1, 1], "rate": 2.0, "start_s": 0.5,
                                                         "stop_s": 2.9}]})
    f = whatif_forcing(spec, dt=0.4, n_steps=10, dtype="float64")
    assert float(np.sum(f.rate) * 0.4) == pytest.approx(2.0 * (2.9 - 0.5), rel=1e-12)
    assert f.rate[0] == 0 and f.rate[-1] == 0


def test_longer_horizons_warn_up_to_twice_the_training_horizon(tmp_path):
    _, run = tiny_run()
    src = [{"position_m": [1.0, 0.5, 0.75], "rate": 1.0}]
    out = tmp_path / "f.nc"
    r = invoke("forecast", run, "--scenario-file", _whatif_file(tmp_path / "w.toml", 60.0, src), "--out", out,
               "--no-pictures")
    assert r.exit_code == 0, r.output
    assert "beyond the 40 s the run was trained on" in " ".join(r.output.split())
    assert read_dataset(out).sizes["time"] == 31
    assert not out.with_suffix(".png").exists()


# ---------------------------------------------------------------------------------- bad input
BAD_WHATIFS = [
    ("horizon_s = 40\n[[sources]]\nposition_m = [2.0, 0.75, 0.3]\nrate = 1.0\n", ["source 1", "inside obstacle 'desk'"]),
    ("horizon_s = 40\n[[sources]]\npath = [[0, 1.0, 0.75, 0.3], [20, 3.0, 0.75, 0.3]]\nrate = 1.0\n",
     ["path", "t = ", "inside obstacle 'desk'"]),
    ("horizon_s = 40\n[[sources]]\npath = [[0, 2.75, 1.5, 0.75], [20, 3.5, 0.25, 0.75]]\nrate = 1.0\n",
     ["path", "inside a wall or obstacle"]),
    ("horizon_s = 40\n[[sources]]\nposition_m = [1.0, 0.5, -0.2]\nrate = 1.0\n", ["below the floor"]),
    ("horizon_s = 40\n[[sources]]\nposition_m = [1.0, 0.5, 1.7]\nrate = 1.0\n", ["above the ceiling"]),
    ("horizon_s = 40\n[[sources]]\nposition_m = [5.0, 0.5, 0.7]\nrate = 1.0\n", ["outside the room"]),
    ("horizon_s = 40\n[[sources]]\nposition_m = [1.0, 0.5, 0.75]\nrate = nan\n", ["sources[1].rate", "NaN"]),
    ("horizon_s = 40\n[[sources]]\nposition_m = [1.0, 0.5, 0.75]\nrate = [[0, 1.0], [5, -0.5]]\n",
     ["sources[1].rate", ">= 0"]),
    ("horizon_s = 40\n[[sources]]\nposition_m = [1.0, 0.5, 0.75]\nrate = -1\n", ["sources[1].rate", ">= 0"]),
    ("horizon_s = 40\n[[sources]]\npositon_m = [1.0, 0.5, 0.75]\nrate = 1\n",
     ["unknown key 'positon_m'", "did you mean 'position_m'"]),
    ("horizon = 40\n[[sources]]\nposition_m = [1.0, 0.5, 0.75]\nrate = 1\n", ["unknown key 'horizon'", "horizon_s"]),
    ("horizon_s = 81\n[[sources]]\nposition_m = [1.0, 0.5, 0.75]\nrate = 1\n", ["more than 2x", "refused"]),
    ("horizon_s = inf\n[[sources]]\nposition_m = [1.0, 0.5, 0.75]\nrate = 1\n", ["horizon_s", "finite"]),
    ("horizon_s = 40\noutput_interval_s = 1.3\n[[sources]]\nposition_m = [1.0, 0.5, 0.75]\nrate = 1\n",
     ["not a whole number"]),
    ("horizon_s = 40\n[[sources]]\nposition_m = [1.0, 0.5, 0.75]\nrate = 1\nstart_s = 5\nstop_s = 2\n",
     ["stop_s", "after start_s"]),
    ("horizon_s = 40\n[[sources]]\nposition_m = [1.0, 0.5]\nrate = 1\n", ["position_m", "[x, y, z]"]),
    ("horizon_s = 40\nsources = []\n", ["at least one [[sources]]"]),
    ("horizon_s = 40\n[[sources]\n", ["malformed TOML"]),
]


@pytest.mark.parametrize("text,phrases", BAD_WHATIFS, ids=[f"bad-{k}" for k in range(len(BAD_WHATIFS))])
def test_bad_whatifs_are_named_errors_and_write_nothing(tmp_path, text, phrases):
    _, run = tiny_run()
    spec = tmp_path / "what-if.toml"
    spec.write_text(text)
    out = tmp_path / "out" / "f.nc"
    one_line_error(invoke("forecast", run, "--scenario-file", spec, "--out", out), *phrases)
    assert not (tmp_path / "out").exists()


def _good(tmp_path):
    return _whatif_file(tmp_path / "w.toml", 20.0, [{"position_m": [1.0, 0.5, 0.75], "rate": 1.0}])


def test_a_run_without_a_stored_room_says_so(tmp_path):
    run = run_copy(tmp_path)
    cfg = json.loads((run / "config.json").read_text())
    del cfg["room"]
    (run / "config.json").write_text(json.dumps(cfg))
    (run / "room.nc").unlink()
    out = tmp_path / "out" / "f.nc"
    one_line_error(invoke("forecast", run, "--scenario-file", _good(tmp_path), "--out", out), "stores no room",
                   "--data DATA --scenario NAME", "attach-room")
    assert not (tmp_path / "out").exists()


def test_a_missing_or_changed_room_file_is_refused(tmp_path):
    run = run_copy(tmp_path)
    out = tmp_path / "out" / "f.nc"
    room = (run / "room.nc").read_bytes()
    (run / "room.nc").write_bytes(room[:-1] + bytes([room[-1] ^ 1]))
    one_line_error(invoke("forecast", run, "--scenario-file", _good(tmp_path), "--out", out), "does not match",
                   "SHA-256")
    (run / "room.nc").unlink()
    one_line_error(invoke("forecast", run, "--scenario-file", _good(tmp_path), "--out", out), "room.nc is missing")
    assert not (tmp_path / "out").exists()


def test_out_that_is_a_directory_and_mixed_forms_are_refused(tmp_path):
    data, run = tiny_run()
    (tmp_path / "d").mkdir()
    one_line_error(invoke("forecast", run, "--scenario-file", _good(tmp_path), "--out", tmp_path / "d"),
                   "is a directory")
    one_line_error(invoke("forecast", run, "--scenario-file", _good(tmp_path), "--data", data, "--out",
                          tmp_path / "f.nc"), "two forms")
    one_line_error(invoke("forecast", run, "--out", tmp_path / "f.nc"), "--scenario-file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "w.toml"]


def test_attach_room_stores_the_room_of_an_older_run(tmp_path):
    data, _ = tiny_run()
    run = run_copy(tmp_path)
    cfg = json.loads((run / "config.json").read_text())
    del cfg["room"]
    (run / "config.json").write_text(json.dumps(cfg))
    (run / "room.nc").unlink()
    other = write_dataset(synthetic_dataset(n_train=1, n_test=0, n_ood=0, horizon_s=4.0), tmp_path / "other.nc")
    one_line_error(invoke("attach-room", run, "--data", other), "grid mismatch")
    assert not (run / "room.nc").exists() and "room" not in json.loads((run / "config.json").read_text())
    r = invoke("attach-room", run, "--data", data)
    assert r.exit_code == 0, r.output
    assert json.loads((run / "config.json").read_text())["room"]["sha256"] == file_sha256(run / "room.nc")
    r = invoke("forecast", run, "--scenario-file", _good(tmp_path), "--out", tmp_path / "f.nc", "--no-pictures")
    assert r.exit_code == 0, r.output


def test_whatif_errors_from_the_api_name_the_problem():
    system, room = _system_room()
    with pytest.raises(WhatIfError, match="not a whole number of 2 s output intervals"):
        forecast_whatif(system, room, parse_whatif({"horizon_s": 5.0, "sources": [{"position_m": [1, 0.5, 0.75],
                                                                                     "rate": 1}]}))
    spec = parse_whatif({"horizon_s": 8.0, "sources": [{"position_m": [1, 0.5, 0.75], "rate": 1.0}]})
    _, warnings = forecast_whatif(system, room, spec.model_copy(update={"sources": (
        spec.sources[0].model_copy(update={"position_m": (1.0, 0.5, 1.2)}),)}))
    assert any("outside the heights the run was trained on" in w for w in warnings)
    assert jax.tree.leaves(system)  # the system is untouched by forecasts


# ---------------------------------------------------------------------------------- ensembles
def _perturbed_copy(tmp_path):
    """A copy of the tiny run whose model forecasts differently: its x-diffusivity logits raised by 1."""
    import equinox as eqx

    from plumecast.train.select import read_selected, selected_path

    run = run_copy(tmp_path)
    system, _, _ = load_run(run)
    info = read_selected(run)
    assert info is not None  # the tiny preset has val scenarios, so the run keeps a selected model
    eqx.tree_serialise_leaves(selected_path(run, info), eqx.tree_at(lambda s: s[0].theta_x, system,
                                                                      system[0].theta_x + 1.0))
    return run


def test_an_ensemble_forecast_is_the_members_mean_with_their_spread(tmp_path):
    """`forecast RUN RUN2` writes the two runs' mean and spread, for a what-if and a dataset scenario alike."""
    data, run = tiny_run()
    other = _perturbed_copy(tmp_path)
    spec = _good(tmp_path)
    for form in (["--scenario-file", spec, "--no-pictures"], ["--data", data, "--scenario", "moving-f"]):
        paths = [tmp_path / f"{name}.nc" for name in ("a", "b", "ens")]
        for runs, path in (([run], paths[0]), ([other], paths[1]), ([run, other], paths[2])):
            r = invoke("forecast", *runs, *form, "--out", path)
            assert r.exit_code == 0, r.output
        fa, fb, fe = (read_dataset(p) for p in paths)
        a, b = (f["concentration"].values.astype(float) for f in (fa, fb))
        top = float(np.abs(a).max())
        assert np.abs(a - b).max() > 1e-3 * top  # the members differ
        np.testing.assert_allclose(fe["concentration"].values, (a + b) / 2, rtol=0, atol=1e-5 * top)
        np.testing.assert_allclose(fe["concentration_spread"].values, np.abs(a - b) / 2, rtol=0, atol=1e-5 * top)
        assert "concentration_spread" not in fa
        meta = json.loads(fe.attrs["scenario_config"])["forecast"]
        assert meta["ensemble_members"] == 2 and len(meta["ensemble"]) == 2


def test_an_ensemble_member_with_another_time_step_is_refused(tmp_path):
    _, run = tiny_run()
    other = run_copy(tmp_path)
    config = json.loads((other / "config.json").read_text())
    config["grid"]["dt"] = config["grid"]["dt"] / 2
    (other / "config.json").write_text(json.dumps(config))
    out = tmp_path / "e.nc"
    one_line_error(invoke("forecast", run, other, "--scenario-file", _good(tmp_path), "--out", out),
                   "ensemble mismatch", "dt")
    assert not out.exists()
