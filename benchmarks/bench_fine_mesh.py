"""The surrogate against a finer OpenFOAM mesh: the speed-up a user with a production mesh sees.

    .venv/bin/python benchmarks/bench_fine_mesh.py --scenario static-01 --fine 0.125 --procs 2 \\
        --runs runs/of-physics-q,runs/of-column-q

Generates one paper-room scenario with the OpenFOAM engine on a fine mesh (``fine_cell_m``
replaced in the preset, decomposed over ``--procs`` MPI ranks) and, in the same run, on
the preset's own mesh on one rank, each in its own work folder under ``--work`` (a
finished case is taken from that folder's cache, its recorded solver seconds reported).
The plane grid (``plane_cell_m``) is the preset's in both, so the truths and the
surrogates' forecasts are compared cell for cell. Then every run of ``--runs`` forecasts
that scenario's source as a what-if on its stored room, as a user would, with no dataset
(median of ``--repeats`` warm calls of :func:`plumecast.whatif.forecast_whatif`, the first
call, with compilation, apart) and its final-time relative L2 and Spearman
against each truth are printed. The fine dataset is written to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from importlib import resources
from pathlib import Path

import numpy as np


def scenario_set(preset: str, fine_cell_m: float | None, scenario: str):
    from plumecast.scenario import load_scenario_set

    if fine_cell_m is None:
        return load_scenario_set(preset).select([scenario])
    text = resources.files("plumecast.presets").joinpath(f"{preset}.toml").read_text()
    old = [line for line in text.splitlines() if line.strip().startswith("fine_cell_m")]
    if len(old) != 1:
        raise SystemExit(f"preset {preset}: expected one fine_cell_m line, found {len(old)}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{preset}.toml"
        path.write_text(text.replace(old[0], f"fine_cell_m = {fine_cell_m}"))
        return load_scenario_set(str(path)).select([scenario])


def whatif_of(ds, scenario: str):
    """The static source of a dataset scenario as a what-if (position, constant rate, horizon, output interval)."""
    from plumecast.whatif import parse_whatif

    sc = ds.sel(scenario=scenario)
    times = ds["time"].values
    xyz = [float(sc[f"source_{a}"].values[0]) for a in "xyz"]
    rates = sc["source_rate"].values
    if any(np.ptp(sc[f"source_{a}"].values) != 0 for a in "xyz") or np.ptp(rates) != 0:
        raise SystemExit(f"{scenario}: this benchmark takes a static source with a constant rate")
    return parse_whatif({"horizon_s": float(times[-1] - times[0]), "output_interval_s": float(times[1] - times[0]),
                         "sources": [{"position_m": xyz, "rate": float(rates[0])}]})


def generate(sset, work: Path, procs: int):
    from plumecast.reference.openfoam_engine import generate_openfoam

    t0 = time.perf_counter()
    ds = generate_openfoam(sset, work, workers=1, scheduler="inline", procs=procs)
    wall = time.perf_counter() - t0
    flow_s = float(ds.attrs["openfoam_flow_seconds"])
    scalar_s = float(ds.attrs["openfoam_scalar_seconds_total"])
    return ds, wall, flow_s, scalar_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="paper-room")
    ap.add_argument("--scenario", default="static-01")
    ap.add_argument("--fine", type=float, default=0.125, help="fine_cell_m of the fine mesh (m)")
    ap.add_argument("--procs", type=int, default=2, help="MPI ranks of the fine case")
    ap.add_argument("--runs", default="", help="comma-separated trained runs to forecast with")
    ap.add_argument("--work", default="data/.plumecast-cache/openfoam-fine-bench")
    ap.add_argument("--out", default="data/paper-room-fine.nc")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    from plumecast.evaluate import load_system
    from plumecast.io.room import load_run_room
    from plumecast.whatif import forecast_whatif
    from plumecast.io.dataset import write_dataset
    from plumecast.metrics import relative_l2, spearman

    coarse_set = scenario_set(args.preset, None, args.scenario)
    fine_set = scenario_set(args.preset, args.fine, args.scenario)
    work = Path(args.work)
    truths = {}
    print(f"{args.preset} {args.scenario}: OpenFOAM on {coarse_set.simulation.fine_cell_m} m (1 rank) and "
          f"{args.fine} m ({args.procs} ranks), plane cells {coarse_set.simulation.plane_cell_m} m", flush=True)
    print("| mesh | cells | ranks | flow s | scalar s | wall s |\n|---|---|---|---|---|---|")
    # A case found in the work folder's cache is not run again: its solver seconds are the
    # ones recorded when it ran, and its wall time here is only reading the cache.
    for label, sset, procs in (("coarse", coarse_set, 1), ("fine", fine_set, args.procs)):
        ds, wall, flow_s, scalar_s = generate(sset, work / label, procs)
        cells = int(sset.room.discretise(sset.simulation.fine_cell_m).fluid.sum())  # the engine checks its mesh has these
        truths[label] = ds
        cached = " (cached: recorded solver times)" if wall < 0.5 * (flow_s + scalar_s) else ""
        print(f"| {sset.simulation.fine_cell_m} m | {cells} | {procs} | {flow_s:.1f} | {scalar_s:.1f} | {wall:.1f}{cached} |",
              flush=True)
    write_dataset(truths["fine"], args.out)
    fluid = truths["fine"]["fluid"].values == 1
    c_fine = truths["fine"]["concentration"].values[0, -1]
    c_coarse = truths["coarse"]["concentration"].values[0, -1]
    print(f"\ncoarse truth against fine truth, final time: relative L2 {relative_l2(c_coarse, c_fine, fluid):.3f}, "
          f"Spearman {spearman(c_coarse, c_fine, fluid):.3f}")

    if args.runs:
        print("\n| run | first call s | warm s (median) | rel L2 vs fine | Spearman vs fine | rel L2 vs coarse |")
        print("|---|---|---|---|---|---|")
    spec = whatif_of(truths["fine"], args.scenario)
    for run in filter(None, args.runs.split(",")):
        # The surrogate as a user with a production mesh runs it: the run's stored room (its
        # own flow) and the scenario's source as a what-if, no dataset and no truth needed.
        system, _ = load_system(run)
        room = load_run_room(run, json.loads((Path(run) / "config.json").read_text()))
        t0 = time.perf_counter()
        out, _ = forecast_whatif(system, room, spec)
        first = time.perf_counter() - t0
        warm = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            forecast_whatif(system, room, spec)
            warm.append(time.perf_counter() - t0)
        final = out["concentration"].values[0, -1]
        print(f"| {run} | {first:.2f} | {statistics.median(warm):.3f} | {relative_l2(final, c_fine, fluid):.3f} | "
              f"{spearman(final, c_fine, fluid):.3f} | {relative_l2(final, c_coarse, fluid):.3f} |", flush=True)
    print(json.dumps({"fine_history": truths["fine"].attrs["history"]}))


if __name__ == "__main__":
    main()
