"""Speed of the surrogate commands on paper-room: sweep throughput by batch size, what-if vs dataset forecasts.

    .venv/bin/python benchmarks/bench_sweep.py                      # data/paper-room.nc, runs/layered-quick
    .venv/bin/python benchmarks/bench_sweep.py --run runs/memory-quick --sources 16 --no-full

1. **Sweep throughput, side by side**: ``--sources`` static sources (fluid cells spread
   over the plane) at the plane height, each ``--horizon`` s, through the sweep's jitted
   function (:func:`plumecast.forecast.rollout_exposure`, exposure accumulated in the
   scan) at batch 1 (one source per call) and at batch ``--batch``; sources per second,
   median of ``--repeats`` warm passes, compilation apart; and, for comparison, what a
   user without the sweep would run: one what-if forecast per source through the
   forecast API (``--api-sources`` of them; frames kept, checks, a dataset built).
2. **The full sweep** (unless ``--no-full``): every fluid cell of the plane at batch
   ``--batch`` through :func:`plumecast.sweep.run_sweep` as ``plumecast sweep`` runs it
   (netCDF streamed to a temporary folder, no pictures), wall time including compilation.
3. **What-if vs dataset forecast**: the what-if of ``--scenario``'s source
   (:func:`plumecast.whatif.forecast_whatif`: checks, forcing, rollout, dataset) against
   the dataset forecast of the scenario (:func:`plumecast.forecast.forecast_dataset`),
   median of ``--repeats`` warm calls each, no file written.

The run's stored room is used when it has one; otherwise the room is built from the
dataset in memory (nothing is written to the run).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import plumecast
from plumecast.forecast import forecast_dataset, rollout_exposure
from plumecast.io.dataset import read_dataset
from plumecast.io.room import RoomError, load_run_room, room_from_dataset
from plumecast.sweep import candidate_sources, parse_receptors, run_sweep, sweep_forcing
from plumecast.train import load_run
from plumecast.whatif import forecast_whatif, parse_whatif


def _median_time(fn, repeats: int) -> tuple[float, float]:
    """``(first call, median of warm calls)`` in seconds."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return first, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/paper-room.nc")
    parser.add_argument("--run", default="runs/layered-quick")
    parser.add_argument("--scenario", default="static-01")
    parser.add_argument("--sources", type=int, default=64, help="sources in the side-by-side throughput test")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--api-sources", type=int, default=8, help="sources forecast one by one through the what-if API")
    parser.add_argument("--horizon", type=float, default=600.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--full", action=argparse.BooleanOptionalAction, default=True,
                        help="also time the sweep of every fluid cell")
    args = parser.parse_args()
    if not (Path(args.data).is_file() and Path(args.run, "config.json").is_file()):
        sys.exit(f"needs {args.data} and the run {args.run} (make demo makes both)")
    system, config, run_json = load_run(args.run)
    model, closure = system
    ds = read_dataset(args.data)
    try:
        room, room_from = load_run_room(args.run, run_json), "its stored room"
    except RoomError:
        room, room_from = room_from_dataset(ds), "the dataset (in memory)"
    c = model.config
    n_steps = int(round(args.horizon / c.dt))
    print(f"plumecast {plumecast.__version__}, jax {jax.__version__} on {jax.default_backend()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}; run {args.run} ({config.variant}), room from {room_from}; grid "
          f"{c.ny} x {c.nx} ({int(room.fluid.sum())} fluid cells), {args.horizon:g} s = {n_steps} steps x {c.substeps} "
          f"substeps, {c.dtype}")

    # 1. throughput at batch 1 and batch B, the same sources
    every, _ = candidate_sources(room, heights=[room.plane_height_m])
    pick = np.linspace(0, len(every) - 1, args.sources).round().astype(int)
    xyz = every[pick]
    cells = jnp.asarray(np.asarray([0], np.int32))

    def sweep_at(batch: int):
        q0 = jnp.zeros((batch,) + c.shape, c.jdtype)

        def go():
            out = []
            for s in range(0, len(xyz), batch):
                idx = np.resize(np.arange(s, min(s + batch, len(xyz))), batch)
                f = jax.tree.map(jnp.asarray, sweep_forcing(xyz[idx], 1.0, dt=c.dt, n_steps=n_steps, dtype=c.dtype))
                out.append(np.asarray(rollout_exposure(model, closure, q0, f, cells, 0.1)[0]))
            return out

        return go

    rows = []
    for batch in (1, min(args.batch, len(xyz))):
        first, med = _median_time(sweep_at(batch), args.repeats)
        rows.append((batch, first - med, med, len(xyz) / med))
    print(f"\nsweep throughput, {len(xyz)} sources of {args.horizon:g} s, median of {args.repeats} warm passes:")
    print("| batch | compile | time for all | sources/s | per source |")
    print("|---|---|---|---|---|")
    for batch, comp, med, rate in rows:
        print(f"| {batch} | {comp:.1f} s | {med:.2f} s | {rate:.1f} | {1000 * med / len(xyz):.1f} ms |")
    print(f"batch {rows[1][0]} is {rows[1][3] / rows[0][3]:.1f}x the throughput of batch 1")

    # 1b. what a user without the sweep does: one what-if forecast per source (frames kept, checks, a dataset)
    few = xyz[: args.api_sources]
    specs = [parse_whatif({"horizon_s": args.horizon, "output_interval_s": room.snapshot_s,
                           "sources": [{"position_m": [float(v) for v in p], "rate": 1.0}]}) for p in few]
    first, med = _median_time(lambda: [forecast_whatif(system, room, s) for s in specs], args.repeats)
    print(f"one what-if forecast per source through the forecast API ({len(few)} sources): {1000 * med / len(few):.1f} ms "
          f"per source ({len(few) / med:.1f} sources/s); the sweep at batch {rows[1][0]} is "
          f"{rows[1][3] / (len(few) / med):.1f}x that")

    # 2. the full sweep as the command runs it
    if args.full:
        receptors = parse_receptors([f"r={room.x[len(room.x) // 2]},{room.y[len(room.y) // 2]}"], room) \
            if room.fluid[len(room.y) // 2, len(room.x) // 2] else []
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            result = run_sweep(system, room, every, rate=1.0, horizon_s=args.horizon, receptors=receptors,
                               threshold=0.1, batch=args.batch, out_dir=tmp)
            wall = time.perf_counter() - t0
            size = Path(tmp, "sweep.nc").stat().st_size
        print(f"\nfull sweep: {len(every)} sources x {args.horizon:g} s at batch {args.batch}: {wall:.1f} s wall including "
              f"compilation ({len(every) / wall:.1f} sources/s); sweep.nc {size / 1e6:.1f} MB; worst-case exposure "
              f"max {result.worst_exposure.max():.3g} {room.mass_unit} s/m^3")

    # 3. what-if vs dataset forecast of the same source
    names = [str(s) for s in ds["scenario"].values]
    i = names.index(args.scenario)
    t = ds["time"].values
    track = {k: ds[f"source_{k}"].values[i] for k in ("x", "y", "z", "rate")}
    static = all(np.ptp(track[k]) == 0 for k in ("x", "y", "z"))
    source = {"rate": np.stack([t, track["rate"]], -1).tolist()}
    if static:
        source["position_m"] = [float(track[k][0]) for k in ("x", "y", "z")]
    else:
        source["path"] = np.stack([t, track["x"], track["y"], track["z"]], -1).tolist()
    spec = parse_whatif({"horizon_s": float(t[-1] - t[0]), "sources": [source]})
    holder = {}
    f_first, f_med = _median_time(lambda: holder.__setitem__("d", forecast_dataset(system, ds, args.scenario)),
                                  args.repeats)
    w_first, w_med = _median_time(lambda: holder.__setitem__("w", forecast_whatif(system, room, spec)[0]),
                                  args.repeats)
    diff = float(np.abs(holder["w"]["concentration"].values - holder["d"]["concentration"].values).max())
    print(f"\n{args.scenario} forecast ({float(t[-1]):g} s), median of {args.repeats} warm calls, no file written "
          f"(first call in brackets):")
    print(f"| form | time |\n|---|---|\n| dataset (`--data --scenario`) | {f_med:.3f} s ({f_first:.2f} s) |\n"
          f"| what-if (`--scenario-file`) | {w_med:.3f} s ({w_first:.2f} s) |")
    print(f"what-if / dataset: {w_med / f_med:.2f}; largest difference of the two forecasts {diff:.3g} "
          f"{room.mass_unit}/m^3")


if __name__ == "__main__":
    main()
