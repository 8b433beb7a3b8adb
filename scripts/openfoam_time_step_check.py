"""How much the OpenFOAM engine's implicit time step changes the plane: two Courant limits side by side.

Runs the chosen scenarios of a preset with the OpenFOAM engine at each
``simulation.openfoam_max_courant`` given (results are cached in ``--work`` and reused,
keyed by the step), then prints, per scenario, the plane relative L2 difference and
Spearman correlation of every other run against the first (the smallest Courant number,
the reference) at a few times and the worst over the snapshots from 10 s on.

    .venv/bin/python scripts/openfoam_time_step_check.py paper-room --scenarios static-01,moving-01 \\
        --courant 0.8 3 --work data/.plumecast-cache/openfoam
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np

from plumecast.metrics import relative_l2, spearman
from plumecast.reference.openfoam_engine import generate_openfoam
from plumecast.scenario import load_scenario_set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("preset", help="preset name or scenario TOML")
    parser.add_argument("--scenarios", required=True, help="comma-separated scenario names")
    parser.add_argument("--courant", type=float, nargs="+", default=[0.8, 3.0], help="Courant limits; the first is the reference")
    parser.add_argument("--work", default="data/.plumecast-cache/openfoam", help="OpenFOAM work directory (cases, cache)")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    base = load_scenario_set(args.preset).select([s.strip() for s in args.scenarios.split(",") if s.strip()])
    runs = {}
    for co in args.courant:
        sset = dataclasses.replace(base, simulation=dataclasses.replace(base.simulation, openfoam_max_courant=co))
        ds = generate_openfoam(sset, args.work, workers=args.workers)
        runs[co] = ds
        print(f"Courant <= {co:g}: steps {json.loads(ds.attrs['openfoam_time_steps_s'])}, "
              f"scalarTransportFoam {ds.attrs['openfoam_scalar_seconds_total']:.1f} s in all")
    ref_co, ref = args.courant[0], runs[args.courant[0]]
    fluid = ref["fluid"].values
    times = ref["time"].values
    show = [t for t in (60.0, 200.0, 400.0, times[-1]) if t <= times[-1]]
    print(f"\n| scenario | Courant | " + " | ".join(f"rel. L2 at {t:g} s" for t in show)
          + " | worst rel. L2 | worst Spearman |")
    print("|---|---|" + "---|" * (len(show) + 2))
    for co in args.courant[1:]:
        for k, name in enumerate(ref["scenario"].values):
            a = runs[co]["concentration"].values[k]
            b = ref["concentration"].values[k]
            # From 10 s on: in the first snapshots only a few cells hold any mass.
            idx = np.flatnonzero(times >= 10.0)
            rel = [float(relative_l2(a[i], b[i], fluid)) for i in idx]
            rho = [float(spearman(a[i], b[i], fluid)) for i in idx]
            at = [rel[int(np.argmin(np.abs(times[idx] - t)))] for t in show]
            print(f"| {name} | {co:g} vs {ref_co:g} | " + " | ".join(f"{r:.2e}" for r in at)
                  + f" | {max(rel):.2e} | {min(rho):.4f} |")


if __name__ == "__main__":
    main()
