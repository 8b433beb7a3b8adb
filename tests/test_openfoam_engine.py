"""The OpenFOAM engine: the tiny preset end to end (needs OpenFOAM), source windows, errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from plumecast.geometry import plane_fluid_fraction
from plumecast.io.dataset import FLUX_VARS, LEVEL_VARS, column_levels_m, read_dataset, validate_dataset, write_dataset
from plumecast.io.openfoam import import_openfoam, read_field, read_mesh
from plumecast.reference import openfoam_engine as ofe
from plumecast.scenario import Scenario, Source, load_scenario_set

# tiny_openfoam (conftest.py): the tiny preset generated with OpenFOAM once per session.


@pytest.mark.openfoam
def test_tiny_end_to_end(tiny_openfoam, tmp_path):
    sset, ds, calls, work = tiny_openfoam
    validate_dataset(ds)
    out = write_dataset(ds, tmp_path / "tiny-of.nc")
    ds = read_dataset(out)
    n = len(sset.scenarios)
    assert ds.sizes == {"scenario": n, "time": 21, "y": 4, "x": 8, "level": 5}
    assert ds.attrs["generator"] == "plumecast-openfoam"
    assert calls[0] == (0, n + 1) and calls[-1] == (n + 1, n + 1)
    # The same plane cells as the embedded engine.
    grid = sset.room.discretise(sset.simulation.fine_cell_m)
    np.testing.assert_allclose(ds["fluid_fraction"].values, plane_fluid_fraction(grid, 0.75, 0.5), atol=1e-9)
    c = ds["concentration"].values
    assert c[:, 0].max() == 0 and (c[:, -1].max(axis=(1, 2)) > 0).all()
    # limitedLinear's tiny undershoots are clipped at 0 and put on record per scenario.
    assert c.min() >= 0
    clipped = json.loads(ds.attrs["openfoam_negative_clipped"])
    assert set(clipped) <= set(ds["scenario"].values.tolist())
    assert all(v["values"] > 0 and -1e-3 < v["lowest_relative"] < 0 for v in clipped.values())
    assert (c[:, :, ds["fluid"].values == 0] == 0).all()
    assert abs(ds["w"].values).max() > 0 and ds["nu_t"].values.max() > 0
    moving = ds["source_x"].sel(scenario="moving-f").values
    assert moving[-1] != moving[0]


@pytest.mark.openfoam
def test_tiny_flow_levels_equal_the_plane_at_the_plane_height(tiny_openfoam, tmp_path):
    sset, ds, _, _ = tiny_openfoam
    z = ds["level"].values
    np.testing.assert_allclose(z, column_levels_m(sset.room.size_m[2], sset.simulation.plane_height_m,
                                                  sset.simulation.column_levels))
    assert (np.diff(z) > 0).all() and 0 < z[0] and z[-1] < sset.room.size_m[2]
    k = int(np.flatnonzero(np.isclose(z, sset.simulation.plane_height_m))[0])
    for name in ("u", "v", "w", "nu_t"):
        assert ds[f"{name}_level"].dims == ("level", "y", "x")
        np.testing.assert_array_equal(ds[f"{name}_level"].values[k], ds[name].values)
    assert not np.allclose(ds["w_level"].values[0], ds["w_level"].values[-1])
    # Written and read back, the levels survive; a dataset without them (older) still loads.
    back = read_dataset(write_dataset(ds, tmp_path / "levels.nc"))
    np.testing.assert_array_equal(back["nu_t_level"].values, ds["nu_t_level"].values)
    old = read_dataset(write_dataset(ds.drop_vars([*LEVEL_VARS, *FLUX_VARS, "level"]), tmp_path / "old.nc"))
    assert "u_level" not in old.variables and old.sizes["scenario"] == ds.sizes["scenario"]


@pytest.mark.openfoam
def test_tiny_mass_budget_matches_sources(tiny_openfoam):
    sset, ds, _, _ = tiny_openfoam
    room, inj, out = (ds[k].values for k in ("mass_room", "mass_injected", "mass_outflow"))
    # Conservation: what is in the room plus what left through the outlets is what was injected.
    np.testing.assert_allclose(room + out, inj, rtol=0, atol=1e-8 * inj.max())
    # Injected equals the time integral of each source's rate (40 mg over 40 s in every tiny scenario).
    t = ds["time"].values
    for k, sc in enumerate(sset.scenarios):
        tt = np.linspace(0, t[-1], 40001)
        exact = np.trapezoid(sc.source.rate_at(tt), tt)
        assert inj[k, -1] == pytest.approx(exact, rel=1e-9)
        # Time-stepped injection follows the rate within one time step's worth.
        dt = ds.attrs["openfoam_time_step_s"]
        cum = np.array([np.trapezoid(sc.source.rate_at(tt[tt <= T]), tt[tt <= T]) for T in t])
        assert np.abs(inj[k] - cum).max() <= 2 * dt * sc.source.rate_at(tt).max() + 1e-9
    assert (out[:, -1] > 0).all() and (np.diff(out, axis=1) >= -1e-12).all()


@pytest.mark.openfoam
def test_flow_is_reused_and_failures_name_case_and_log(tiny_openfoam, tmp_path):
    sset, ds, _, work = tiny_openfoam
    flows = sorted(work.glob("flow-*"))
    assert len(flows) == 1 and (flows[0] / "plumecast-done.json").is_file()
    diag = ds.attrs["flow_diagnostics"]
    assert '"stationary": true' in diag
    broken = tmp_path / "broken"
    (broken / "system").mkdir(parents=True)
    with pytest.raises(ofe.OpenFOAMError, match=r"case .*broken: simpleFoam failed .* see .*broken/log.simpleFoam"):
        ofe.run_app(broken, "simpleFoam")


@pytest.mark.openfoam
def test_rerun_resumes_from_finished_scenarios(tiny_openfoam, monkeypatch, tmp_path):
    sset, ds, _, work = tiny_openfoam
    assert ds.attrs["openfoam_scalar_seconds_total"] > 0
    runs = []
    real_run = ofe.run_app
    monkeypatch.setattr(ofe, "run_app", lambda case, app, *a, **k: (runs.append((case.name, app)), real_run(case, app, *a, **k))[1])
    again = ofe.generate_openfoam(sset, work, workers=1)
    assert runs == []  # every scenario came from the cache of the first run
    np.testing.assert_array_equal(again["concentration"].values, ds["concentration"].values)
    assert again.attrs["openfoam_scalar_seconds_total"] == ds.attrs["openfoam_scalar_seconds_total"]
    per = json.loads(again.attrs["openfoam_scalar_seconds"])
    assert list(per) == [s.name for s in sset.scenarios] and all(v > 0 for v in per.values())
    # An interrupted run loses the results it had not written: only those scenarios rerun.
    lost = sorted(work.glob("result-*.nc"))
    assert len(lost) == len(sset.scenarios)
    lost[0].unlink()
    third = ofe.generate_openfoam(sset, work, workers=1)
    assert [app for _, app in runs] == ["scalarTransportFoam"]
    np.testing.assert_allclose(third["concentration"].values, ds["concentration"].values, rtol=1e-12, atol=0)
    # The cache holds planes, not 3D fields: asking for the fields runs every scenario again.
    runs.clear()
    kept = ofe.generate_openfoam(sset, work, workers=1, keep_fields=True)
    assert [app for _, app in runs] == ["scalarTransportFoam"] * len(sset.scenarios)
    assert all(any((case / d / "s").is_file() for d in ("2", "40")) for case in work.glob("scalar-*"))
    # The dataset's source is where OpenFOAM emitted: the cell where the first snapshot peaks, not the
    # scenario's point (the tiny sources sit on fine-cell corners; OpenFOAM takes the lower cell).
    moved = 0
    for k, sc in enumerate(sset.scenarios):
        if sc.source.moving:
            continue
        case = work / f"scalar-{sc.name}"
        geom = read_mesh(case / "constant" / "polyMesh")
        first = min((d for d in case.iterdir() if (d / "s").is_file() and d.name != "0"), key=lambda d: float(d.name))
        peak = geom.centres[int(np.argmax(read_field(first / "s", geom.n_cells)))]
        recorded = [float(kept[v].values[k, 0]) for v in ("source_x", "source_y", "source_z")]
        np.testing.assert_allclose(recorded, peak, atol=1e-9, err_msg=sc.name)
        moved += not np.allclose(recorded, sc.source.position_m)
    assert moved >= 4  # the rule matters for most of them
    # The importer records a declared source there too: always when the case's fvOptions hold the point source
    # (tests/test_fvoptions.py), else when asked (--source-cell); here the fvOptions select a cellZone instead,
    # which the importer cannot place (the copy is never run).
    sc = next(sc for sc in sset.scenarios if not sc.source.moving)
    k = [s.name for s in sset.scenarios].index(sc.name)
    sim, flow = sset.simulation, next(work.glob("flow-*"))
    case = shutil.copytree(work / f"scalar-{sc.name}", tmp_path / "zone")
    control = case / "system" / "controlDict"
    control.write_text(control.read_text().replace("selectionMode points;", "selectionMode cellZone;"))
    for cell, expected in ((True, kept), (False, None)):
        got = import_openfoam(case, height_m=sim.plane_height_m, cell_m=sim.plane_cell_m,
                              field_name="s", flow_case=flow, source=sc.source, source_cell=cell)
        recorded = [float(got[v].values[0, 0]) for v in ("source_x", "source_y", "source_z")]
        want = sc.source.position_m if expected is None else [float(kept[v].values[k, 0]) for v in
                                                               ("source_x", "source_y", "source_z")]
        np.testing.assert_allclose(recorded, want, atol=1e-9)


@pytest.mark.openfoam
def test_the_importer_reads_each_cases_source_from_its_fvoptions(tiny_openfoam):
    # No source declared: the importer finds it in the case (the engine's fvOptions in controlDict) and records
    # it where OpenFOAM emitted, as the engine does: the same cell for static sources, within a fine cell for
    # walks (the engine records the path's point at each snapshot, the case holds the window's).
    sset, ds, _, work = tiny_openfoam
    sim, flow = sset.simulation, next(work.glob("flow-*"))
    for k, sc in enumerate(sset.scenarios):
        got = import_openfoam(work / f"scalar-{sc.name}", height_m=sim.plane_height_m, cell_m=sim.plane_cell_m,
                              field_name="s", flow_case=flow)
        at = np.searchsorted(ds["time"].values, got["time"].values)
        recorded, engine = (np.stack([d[f"source_{v}"].values[i][j] for v in "xyz"], -1)
                            for d, i, j in ((got, 0, slice(None)), (ds, k, at)))
        np.testing.assert_allclose(recorded, engine, atol=sim.fine_cell_m + 1e-9 if sc.source.moving else 1e-9,
                                   err_msg=sc.name)
        if len(sc.source.rate) == 1:  # a constant rate: every window holds it
            np.testing.assert_allclose(got["source_rate"].values[0], ds["source_rate"].values[k][at], err_msg=sc.name)
        assert "fvOptions point source emits" in got.attrs["history"]


def test_missing_openfoam_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ofe.OpenFOAMError, match="apt-get install -y --no-install-recommends openfoam"):
        ofe.generate_openfoam(load_scenario_set("tiny"), tmp_path)
    assert isinstance(ofe.OpenFOAMError("x"), RuntimeError)


def test_source_windows_tile_time_and_keep_mass():
    pulse = Scenario("p", "train", Source(rate=((0.0, 0.0), (5.0, 2.0), (20.0, 2.0), (25.0, 0.0)), position_m=(1, 1, 1)))
    wins = ofe.source_windows(pulse, 40.0, 0.4, 2.0, 0.25)
    assert all(abs(round(w[0] / 0.4) * 0.4 - w[0]) < 1e-9 for w in wins)
    assert all(b[0] >= a[1] - 1e-12 for a, b in zip(wins, wins[1:]))
    assert sum((w[1] - w[0]) * w[2] for w in wins) == pytest.approx(40.0, rel=1e-9)
    # Ramps are cut into windows of at most a snapshot; equal neighbours merge (the plateau).
    assert all(w[1] - w[0] <= 2.0 + 1e-9 or w[2] == pytest.approx(2.0) for w in wins)
    assert len(wins) > 6
    static = Scenario("s", "train", Source(rate=((0.0, 1.0),), position_m=(1, 1, 1)))
    assert ofe.source_windows(static, 40.0, 0.4, 2.0, 0.25) == [(0.0, 40.0, 1.0, (1.0, 1.0, 1.0))]
    moving = Scenario("m", "ood", Source(rate=((0.0, 1.0),), path=((0.0, 0.5, 0.75, 0.75), (20.0, 3.5, 0.75, 0.75))))
    wins = ofe.source_windows(moving, 40.0, 0.2, 2.0, 0.25)
    steps = [np.linalg.norm(np.subtract(b[3], a[3])) for a, b in zip(wins, wins[1:])]
    assert max(steps) <= 0.125 + 1e-9  # less than half a fine cell between consecutive windows
    assert sum((w[1] - w[0]) * w[2] for w in wins) == pytest.approx(40.0)


def test_case_owner_record_names_live_other_processes_only(tmp_path):
    import os
    import subprocess
    import sys

    case = tmp_path / "scalar-x"
    case.mkdir()
    assert ofe.case_in_use(case) is None  # no record: free (finished, or an older plumecast's case)
    (case / ofe.OWNER_FILE).write_text(json.dumps({"pid": os.getpid(), "room": "r"}))
    assert ofe.case_in_use(case) is None  # this process's own case
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (case / ofe.OWNER_FILE).write_text(json.dumps({"pid": int(dead.stdout), "room": "r"}))
    assert ofe.case_in_use(case) is None  # its writer is gone: a stale record
    (case / ofe.OWNER_FILE).write_text("{not json")
    assert ofe.case_in_use(case) is None
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (case / ofe.OWNER_FILE).write_text(json.dumps({"pid": live.pid, "room": "other-room"}))
        assert ofe.case_in_use(case) == {"pid": live.pid, "room": "other-room"}
    finally:
        live.kill()
        live.wait()


@pytest.mark.openfoam
def test_a_case_another_running_generation_owns_is_not_touched(tiny_openfoam):
    import subprocess
    import sys

    sset, ds, _, work = tiny_openfoam
    assert not list(work.glob(f"scalar-*/{ofe.OWNER_FILE}"))  # finished runs leave no owner record
    name = sset.scenarios[0].name
    case = work / f"scalar-{name}"
    results = sorted(work.glob("result-*.nc"))
    hidden = [r.rename(r.with_suffix(".hidden")) for r in results]  # every scenario must run again
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (case / ofe.OWNER_FILE).write_text(json.dumps({"pid": live.pid, "room": "other-room"}))
        before = {p: p.stat().st_mtime_ns for p in case.rglob("*") if p.is_file()}
        with pytest.raises(ofe.OpenFOAMError, match=rf"scalar-{name}.*still running \(process {live.pid}, room 'other-room'\)"):
            ofe.generate_openfoam(sset, work, workers=1)
        assert {p: p.stat().st_mtime_ns for p in case.rglob("*") if p.is_file()} == before
    finally:
        live.kill()
        live.wait()
        (case / ofe.OWNER_FILE).unlink(missing_ok=True)
        for h in hidden:
            h.rename(h.with_suffix(".nc"))


@pytest.mark.openfoam
def test_cases_decomposed_over_two_mpi_ranks_match_one_rank(tiny_openfoam, tmp_path):
    """--procs 2: decomposePar, mpirun -parallel and the processors' cells put back in mesh order."""
    sset, ds, _, _ = tiny_openfoam
    missing = ofe.openfoam_missing(procs=2)
    if missing:
        pytest.skip(f"MPI tools missing: {', '.join(missing)}")
    names = [sset.scenarios[0].name, next(s.name for s in sset.scenarios if s.source.path)]  # a static and a moving
    runs = []
    real_run = ofe.run_app
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ofe, "run_app", lambda case, app, *a, **k: (runs.append((app, k.get("procs", 1))),
                                                               real_run(case, app, *a, **k))[1])
        par = ofe.generate_openfoam(sset.select(names), tmp_path / "np2", workers=1, scheduler="inline", procs=2)
    assert ("simpleFoam", 2) in runs and runs.count(("scalarTransportFoam", 2)) == 2
    assert runs.count(("decomposePar", 1)) == 3  # the flow case and each scalar case
    assert par.attrs["openfoam_procs"] == 2 and "on 2 MPI ranks" in par.attrs["history"]
    one = ds.sel(scenario=names)
    # The decomposed flow solve converges to the same flow up to its own tolerances, and the
    # static source's plume follows it. A cell-order mix-up would give errors of order one.
    for var in ("u", "v", "nu_t", "mass_room", "mass_outflow"):
        a, b = one[var].values, par[var].values
        assert np.abs(a - b).max() <= 1e-3 * np.abs(a).max(), var
    a, b = one["concentration"].values[0], par["concentration"].values[0]
    assert np.abs(a - b).max() <= 1e-3 * np.abs(a).max()
    # The moving source crosses the cut between the two subdomains: a point on a face is
    # put in the cell of the processor that claims it, which may be the other neighbour than
    # in the serial run; the plume differs by a few per cent there (measured 4.8 % at most).
    a, b = one["concentration"].values[1, 1:], par["concentration"].values[1, 1:]
    rel = np.linalg.norm((a - b).reshape(len(a), -1), axis=1) / np.linalg.norm(a.reshape(len(a), -1), axis=1)
    assert rel.max() < 0.1
    assert not list((tmp_path / "np2").glob("flow-*/processor*"))  # the flow is gathered in the case root


def test_decomposed_cases_need_mpi_and_say_so(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name: None if name == "mpirun" else f"/usr/bin/{name}")
    assert ofe.openfoam_missing() == [] and ofe.openfoam_missing(procs=2) == ["mpirun"]
    with pytest.raises(ofe.OpenFOAMError, match="not found: mpirun"):
        ofe.generate_openfoam(load_scenario_set("tiny"), tmp_path, procs=2)
    with pytest.raises(ofe.OpenFOAMError, match="procs must be a whole number >= 1"):
        ofe.generate_openfoam(load_scenario_set("tiny"), tmp_path, procs=0)
    assert not any(tmp_path.iterdir())
