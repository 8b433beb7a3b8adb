"""Measure the memory of the embedded flow solve against the model of plumecast.reference.generate.

    .venv/bin/python scripts/memory_model.py                 # tiny at 0.125, 0.1, 0.0625, 0.05 m (~2 min)
    .venv/bin/python scripts/memory_model.py --cells 0.1 0.05

Each cell size runs in a process of its own: the room is discretised and the flow's
operators built (the sparse LU factorisation of the pressure matrix, which dominates
the memory of a generation); the peak resident memory above the start, the LU's
non-zeros and the model's estimate (``estimate_memory_bytes`` with a chunk of one) are
printed as a markdown table. ``LU_FILL_SCALE`` and ``LU_FILL_POWER`` are a fit of the
non-zeros against the fluid cells; ``LU_BYTES_PER_NONZERO`` the peak over the non-zeros.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import dataclasses, json, resource, sys, time
from plumecast.scenario import load_scenario_set
from plumecast.reference.flow import FlowOperators
from plumecast.reference.generate import estimate_memory_bytes
h = float(sys.argv[1])
sset = load_scenario_set("tiny")
sset = dataclasses.replace(sset, simulation=dataclasses.replace(sset.simulation, fine_cell_m=h))
grid = sset.room.discretise(h)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
t = time.perf_counter()
ops = FlowOperators(grid, sset.flow)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"h": h, "cells": int(grid.fluid.size), "fluid": int(grid.fluid.sum()),
                  "nnz": int(ops.lu.L.nnz + ops.lu.U.nnz), "peak": peak - base,
                  "model": estimate_memory_bytes(sset, 1), "seconds": time.perf_counter() - t}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=float, nargs="*", default=[0.125, 0.1, 0.0625, 0.05])
    args = ap.parse_args()
    print("| fine cell (m) | cells | fluid | LU non-zeros | peak above start | model | factorisation |")
    print("|---|---|---|---|---|---|---|")
    for h in args.cells:
        out = subprocess.run([sys.executable, "-c", CHILD, str(h)], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {r['h']:g} | {r['cells']:,} | {r['fluid']:,} | {r['nnz'] / 1e6:.1f} M | {r['peak'] / 1e9:.2f} GB | "
              f"{r['model'] / 1e9:.2f} GB | {r['seconds']:.1f} s |")


if __name__ == "__main__":
    main()
