"""Wall time of the 3D reference for ONE paper-room scenario (flow from the cache), for the
surrogate speed ratio in docs/benchmarks.md.

    .venv/bin/python benchmarks/bench_reference_scenario.py data/paper-room.nc --scenario moving-00
"""

import argparse
import time
from pathlib import Path

from plumecast.io.dataset import read_dataset, scenario_config
from plumecast.reference.generate import CACHE_DIR_NAME, flow_for
from plumecast.reference.transport import simulate_scalar
from plumecast.scenario import scenario_set_from_config

parser = argparse.ArgumentParser()
parser.add_argument("data", type=Path)
parser.add_argument("--scenario", default="moving-00")
args = parser.parse_args()
ds = read_dataset(args.data)
sset = scenario_set_from_config(scenario_config(ds)).select([args.scenario])
grid = sset.room.discretise(sset.simulation.fine_cell_m)
flow, cached = flow_for(sset, grid, args.data.parent / CACHE_DIR_NAME)
t0 = time.perf_counter()
res = simulate_scalar(grid, flow, sset.scenarios, sset.simulation)
scalar_s = time.perf_counter() - t0
print(f"{args.scenario}: 3D scalar {scalar_s:.1f} s for {res.n_steps} steps of {res.dt_s:.4f} s "
      f"(flow {'from cache' if cached else 'solved'}; solving it costs {flow.diagnostics.get('seconds', float('nan')):.0f} s once per room)")
