"""Scenario generation in this process against Dask workers, and a killed generation resumed (docs/benchmarks.md).

    .venv/bin/python benchmarks/bench_dask.py [--preset tiny] [--repeats 3] [--skip-kill] [--only TEXT]

Prints, per mode, the median wall time of generating the preset's scenarios and the
scenarios per minute: ``inline`` (this process, the path before Dask), a LocalCluster of
1 and of 2 worker processes (127.0.0.1), and 2 worker threads (``processes=False``). The
flow is solved once beforehand and copied into every run's cache, so the figures are the
scenario stage plus what Dask costs (cluster start, imports in the workers, sending the
flow). Then a generation with 2 workers (``plumecast generate``) is killed with SIGKILL,
client and workers together, as soon as its first scenario is cached, and run again: the
resumed dataset's checksum against an uninterrupted one.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr

from plumecast.reference.generate import CACHE_DIR_NAME, generate_embedded
from plumecast.scenario import load_scenario_set

MODES = {
    "inline (this process)": dict(scheduler=None),
    "Dask, 1 worker process": dict(scheduler="local", workers=1),
    "Dask, 2 worker processes": dict(scheduler="local", workers=2),
    "Dask, 2 worker threads": dict(scheduler="local", workers=2, processes=False),
}


def checksums(path: Path) -> dict:
    """SHA-256 (first 16 hex digits) of the concentration frames, and of every variable rounded to 12 digits.

    Chunks of another size sum a scenario's 3D mass in another order (round-off, 1e-14
    relative), so the exact digest covers the concentration and the rounded one all data.
    """
    with xr.open_dataset(path) as ds:
        exact = hashlib.sha256(np.ascontiguousarray(ds["concentration"].values).tobytes()).hexdigest()[:16]
        h = hashlib.sha256()
        for k in sorted(ds.data_vars):
            v = np.asarray(ds[k].values)
            if v.dtype.kind == "f":
                v = np.array([float(f"{x:.12g}") for x in v.ravel()])
            h.update(k.encode() + np.ascontiguousarray(v).tobytes())
    return {"concentration": exact, "all (12 digits)": h.hexdigest()[:16]}


def timed_run(sset, flow_cache: Path, mode: dict) -> float:
    with tempfile.TemporaryDirectory(prefix="bench-dask-") as tmp:
        cache = Path(tmp) / CACHE_DIR_NAME
        cache.mkdir()
        for f in flow_cache.glob("flow-*.nc"):
            shutil.copy(f, cache / f.name)
        t0 = time.perf_counter()
        report = generate_embedded(sset, Path(tmp) / "out.nc", **mode)
        seconds = time.perf_counter() - t0
        assert report.flow_cached and report.scenarios_simulated == len(sset.scenarios)
        return seconds


def kill_and_resume(preset: str, work: Path) -> None:
    plumecast = [str(Path(sys.executable).with_name("plumecast"))]
    full, killed = work / "full" / "data.nc", work / "killed" / "data.nc"
    for d in (full.parent, killed.parent):
        d.mkdir(parents=True)
    subprocess.run(plumecast + ["generate", preset, "--out", str(full), "--workers", "2"], check=True,
                   capture_output=True)
    cmd = plumecast + ["generate", preset, "--out", str(killed), "--workers", "2"]
    # A session of its own: SIGKILL to the group takes the client and its workers down at once.
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    cache = killed.parent / CACHE_DIR_NAME
    n_total = len(load_scenario_set(preset).scenarios)
    while proc.poll() is None and not list(cache.glob("scenario-*.nc")):
        time.sleep(0.05)
    if proc.poll() is not None:
        print("  the generation finished before it could be killed; nothing to compare")
        return
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(1.0)  # let the last atomic renames settle before counting
    n_cached = len(list(cache.glob("scenario-*.nc")))
    leftovers = list(cache.glob(".scenario-*"))  # atomic_path's temporary files of interrupted writes
    print(f"  killed client and workers (SIGKILL) with {n_cached} of {n_total} scenarios cached; "
          f"{len(leftovers)} partial files left in the cache")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("scenarios:")), out.stdout.strip()[-200:])
    print(f"  rerun: {line}")
    a, b = checksums(full), checksums(killed)
    for k in a:
        print(f"  {k:18s} uninterrupted {a[k]}  killed+resumed {b[k]}  {'same' if a[k] == b[k] else 'DIFFERENT'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-kill", action="store_true")
    ap.add_argument("--only", default="", help="run the modes whose label contains this text")
    args = ap.parse_args()
    sset = load_scenario_set(args.preset)
    n = len(sset.scenarios)
    with tempfile.TemporaryDirectory(prefix="bench-dask-flow-") as tmp:
        generate_embedded(sset, Path(tmp) / "warm.nc")  # solves and caches the flow (and warms the imports)
        flow_cache = Path(tmp) / CACHE_DIR_NAME
        print(f"{args.preset}: {n} scenarios, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
              f"median of {args.repeats} runs (all runs in brackets)")
        print(f"{'mode':28s} {'wall s':>8s} {'scenarios/min':>14s}   runs")
        for label, mode in MODES.items():
            if args.only not in label:
                continue
            runs = [timed_run(sset, flow_cache, mode) for _ in range(args.repeats)]
            med = statistics.median(runs)
            print(f"{label:28s} {med:8.1f} {60 * n / med:14.1f}   [{', '.join(f'{r:.1f}' for r in runs)}]", flush=True)
    if not args.skip_kill:
        print("kill and resume (plumecast generate --workers 2):")
        with tempfile.TemporaryDirectory(prefix="bench-dask-kill-") as tmp:
            kill_and_resume(args.preset, Path(tmp))


if __name__ == "__main__":
    main()
