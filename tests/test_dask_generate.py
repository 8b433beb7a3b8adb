"""Scenario generation as Dask tasks: same data as the in-process path, resume, lost workers, clear failures.

One LocalCluster of two worker processes (127.0.0.1 only) serves the module; every test
generates the ``tiny`` preset (8 scenarios, a few seconds of solver time).
"""

import os
import signal
import threading
import time

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

pytest.importorskip("distributed")

from plumecast.cli import app  # noqa: E402
from plumecast.reference.generate import (GenerationError, _scalar_chunk, dask_client, generate_embedded,  # noqa: E402
                                          run_tasks)
from plumecast.scenario import load_scenario_set  # noqa: E402


def _vars(path):
    with xr.open_dataset(path) as ds:
        return {k: np.asarray(ds[k].values) for k in ds.data_vars}


def assert_same_data(a, b):
    va, vb = _vars(a), _vars(b)
    assert set(va) == set(vb)
    for k in va:
        if va[k].dtype.kind in "fc":
            np.testing.assert_allclose(va[k], vb[k], rtol=1e-12, atol=1e-12 * max(1.0, float(np.abs(va[k]).max())),
                                       err_msg=k)
        else:
            np.testing.assert_array_equal(va[k], vb[k], err_msg=k)


@pytest.fixture(scope="module")
def tiny():
    return load_scenario_set("tiny")


@pytest.fixture(scope="module")
def local(tiny, tmp_path_factory):
    """The in-process (pre-Dask) dataset of tiny."""
    out = tmp_path_factory.mktemp("inline") / "tiny.nc"
    generate_embedded(tiny, out)
    return out


@pytest.fixture(scope="module")
def cluster():
    with dask_client("local", workers=2) as client:
        yield client


def test_local_cluster_listens_on_loopback_only(cluster):
    import psutil

    info = cluster.scheduler_info(n_workers=-1)
    assert len(info["workers"]) == 2
    assert info["address"].startswith("tcp://127.0.0.1:")
    assert all(addr.startswith("tcp://127.0.0.1:") for addr in info["workers"])
    me = psutil.Process()
    listening = [c.laddr for p in [me, *me.children(recursive=True)]
                 for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
    assert listening and {a.ip for a in listening} == {"127.0.0.1"}, listening
    # The HTTP endpoint takes a free port, not Dask's fixed 8787 (two generations at once would contend).
    assert 8787 not in {a.port for a in listening}, listening


def test_two_workers_match_the_local_path(tiny, local, cluster, tmp_path):
    out = tmp_path / "tiny.nc"
    seen = []
    report = generate_embedded(tiny, out, scheduler=cluster.scheduler.address, on_scenarios=lambda d, t: seen.append(d))
    assert report.scenarios_simulated == 8 and report.scenarios_cached == 0
    assert seen[0] == 0 and seen[-1] == 8 and len(seen) >= 3  # progress per finished chunk, one chunk per worker
    assert len(list((tmp_path / ".plumecast-cache").glob("scenario-*.nc"))) == 8  # written by the workers
    assert_same_data(out, local)


def test_a_killed_client_resumes_to_the_same_dataset(tiny, local, cluster, tmp_path):
    """A client killed after some scenarios finished (a subset, then the rest) ends with the same data."""
    first = tiny.select(["static-a", "moving-f", "pulse-c"])
    generate_embedded(first, tmp_path / "part.nc", scheduler=cluster.scheduler.address)
    report = generate_embedded(tiny, tmp_path / "tiny.nc", scheduler=cluster.scheduler.address)
    assert report.scenarios_cached == 3 and report.scenarios_simulated == 5
    assert_same_data(tmp_path / "tiny.nc", local)


def test_temporaries_of_killed_cache_writes_are_removed_when_stale(tmp_path):
    """A write killed between mkstemp and rename leaves a hidden temporary; the next run removes it once stale."""
    import os
    import time

    from plumecast.io.atomic import STALE_TEMPORARY_S, atomic_path, remove_stale_temporaries

    with pytest.raises(RuntimeError):  # a failed write leaves nothing behind
        with atomic_path(tmp_path / "scenario-a.nc") as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    stale, fresh, entry = (tmp_path / ".scenario-a.nc.x1.nc", tmp_path / ".scenario-b.nc.x2.nc",
                           tmp_path / "scenario-c.nc")
    for p in (stale, fresh, entry):
        p.write_bytes(b"x")
    old = time.time() - STALE_TEMPORARY_S - 60
    os.utime(stale, (old, old))
    os.utime(entry, (old, old))
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == [fresh.name, entry.name]  # a live write and entries stay


def test_a_worker_killed_mid_task_is_replaced_and_the_data_is_the_same(tiny, local, cluster, tmp_path):
    """SIGKILL of a worker process while it runs a chunk: the chunk runs again elsewhere, the data is unchanged."""
    pids = cluster.run(os.getpid)  # worker address -> process id
    killed = []

    def killer():
        deadline = time.monotonic() + 120
        while not killed and time.monotonic() < deadline:
            for addr, keys in cluster.processing().items():
                if any(str(k).startswith("plumecast-chunk") for k in keys) and addr in pids:
                    time.sleep(0.3)  # inside the solver, not at the task's first instruction
                    os.kill(pids[addr], signal.SIGKILL)
                    killed.append(addr)
                    return
            time.sleep(0.02)

    t = threading.Thread(target=killer)
    t.start()
    report = generate_embedded(tiny, tmp_path / "tiny.nc", scheduler=cluster.scheduler.address)
    t.join()
    assert killed, "no chunk was seen running: the kill never happened"
    assert report.scenarios_simulated == 8
    assert_same_data(tmp_path / "tiny.nc", local)
    deadline = time.monotonic() + 60  # the nanny restarts the killed worker: the cluster is whole again
    while len(cluster.scheduler_info(n_workers=-1)["workers"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)


def test_a_failing_task_names_its_scenarios_and_worker(tiny, cluster, tmp_path):
    sc = tiny.scenarios[0]
    tasks = {"chunk": (_scalar_chunk, None, None, [sc], tiny.simulation, [str(tmp_path / "x.nc")])}
    with pytest.raises(GenerationError, match=rf"scenarios {sc.name} on Dask worker tcp://127\.0\.0\.1:\d+"):
        run_tasks(cluster, tasks, lambda name, out: None, lambda name: "scenarios " + sc.name)
    assert not (tmp_path / "x.nc").exists()


def test_cli_scheduler_option(tmp_path, monkeypatch):
    runner = CliRunner()
    r = runner.invoke(app, ["generate", "tiny", "--out", str(tmp_path / "a.nc"), "--scheduler", "nowhere"])
    assert r.exit_code != 0 and "--scheduler 'nowhere'" in r.output
    monkeypatch.setenv("PLUMECAST_DASK_SCHEDULER", "tcp://127.0.0.1:9")  # nothing listens on the discard port
    r = runner.invoke(app, ["generate", "tiny", "--out", str(tmp_path / "b.nc")])
    assert r.exit_code != 0 and "cannot reach the Dask scheduler 'tcp://127.0.0.1:9'" in r.output
    assert not (tmp_path / "b.nc").exists()
    r = runner.invoke(app, ["generate", "tiny", "--out", str(tmp_path / "c.nc"), "--scheduler", "inline",
                            "--workers", "2"])
    assert r.exit_code != 0 and "--workers sizes the local cluster" in r.output
    r = runner.invoke(app, ["generate", "tiny", "--out", str(tmp_path / "d.nc"), "--procs", "2"])
    assert r.exit_code != 0 and "--procs decomposes OpenFOAM cases" in r.output and not (tmp_path / "d.nc").exists()


@pytest.mark.openfoam
def test_openfoam_cases_as_dask_tasks_resume_the_local_run(tiny, cluster, tmp_path):
    """OpenFOAM: half the scenarios' results dropped from a local run's cache, rerun as Dask tasks: same data."""
    from conftest import require_openfoam
    from plumecast.reference import openfoam_engine as ofe

    require_openfoam()
    work = tmp_path / "cases"
    first = ofe.generate_openfoam(tiny, work, workers=2)
    results = sorted(work.glob("result-*.nc"))
    assert len(results) == len(tiny.scenarios)
    for path in results[::2]:
        path.unlink()
    again = ofe.generate_openfoam(tiny, work, scheduler=cluster.scheduler.address)
    assert len(list(work.glob("result-*.nc"))) == len(tiny.scenarios)  # the workers cached what they ran
    assert f"{len(results[::2])} of {len(tiny.scenarios)} scenarios run with 2 Dask worker(s)" in again.attrs["history"]
    np.testing.assert_allclose(again["concentration"].values, first["concentration"].values, rtol=1e-12, atol=0)
    for k in ("mass_room", "mass_injected", "mass_outflow"):
        np.testing.assert_allclose(again[k].values, first[k].values, rtol=1e-12, atol=0)
    assert not list(work.glob("scalar-*/plumecast-owner.json"))  # no case is left claimed
