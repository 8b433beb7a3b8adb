"""Wall-clock time of generating a preset from scratch with the embedded 3D reference.

    .venv/bin/python benchmarks/bench_generate.py tiny --repeats 3
    .venv/bin/python benchmarks/bench_generate.py paper-room --repeats 1

Each repeat starts with an empty cache (flow and scenarios recomputed, JIT compiled in
the same process after the first repeat). Prints the time of each stage and the median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from plumecast.io.dataset import read_dataset
from plumecast.reference.generate import generate_embedded
from plumecast.scenario import load_scenario_set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("preset")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    sset = load_scenario_set(args.preset)
    print(f"preset {args.preset}: {len(sset.scenarios)} scenarios, horizon {sset.simulation.horizon_s} s, "
          f"3D cell {sset.simulation.fine_cell_m} m, cores {os.cpu_count()}")
    totals = []
    for r in range(args.repeats):
        stamps: dict[str, float] = {}
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "data.nc"
            report = generate_embedded(sset, out, on_stage=lambda s: stamps.setdefault(s, time.perf_counter()))
            ds = read_dataset(out)
            steps = ds.attrs.get("transport_steps", "?")
        total = time.perf_counter() - t0
        totals.append(total)
        flow_s = stamps["scalar"] - stamps["flow"]
        scalar_s = stamps["write"] - stamps["scalar"]
        d = report.flow_diagnostics
        print(f"repeat {r}: flow {flow_s:.1f} s ({d.get('iterations')} iterations), scalar {scalar_s:.1f} s "
              f"({len(sset.scenarios)} scenarios, {steps} steps each), total {total:.1f} s")
    print(f"median total: {statistics.median(totals):.1f} s over {len(totals)} repeat(s)")


if __name__ == "__main__":
    main()
