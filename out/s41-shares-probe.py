"""Session 41: does the trained paper-room column forecast better when its sources enter the levels spread?

The column (flow "fluxes") puts a source into the one level whose layer holds it. Sources at the plane
are its worst class (train 0.361 against 0.27 below and above) and keep 9 % too much mass in the plane,
as if the truth's source, in one 0.25 m cell of the 0.5 m plane layer, left the layer sooner. This
probe swaps the shares of a trained run's sources, nothing retrained, and prints the median
final-time relative L2 per split: "onehot" the run as trained; "hat" linear shares between the two
layer centres around the source's height; "finecell" the same at the centre of the fine (0.25 m)
cell that holds the source.
    .venv/bin/python out/s41-shares-probe.py runs/prw-column-s0 data/paper-room-wide-of.nc hat val,train
"""
import sys

import jax.numpy as jnp
import numpy as np

from plumecast.closure import column as col
from plumecast.evaluate import evaluate_run
from plumecast.io.dataset import read_dataset
from plumecast.metrics import relative_l2

FINE_CELL_M = 0.25  # paper-room's fine_cell_m
run, data, mode, splits = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(",")
if mode not in ("onehot", "hat", "finecell"):
    sys.exit(f"unknown mode {mode!r}")


def spread_shares(self, z_m):
    edges = np.concatenate([[0.0], np.cumsum(self.thickness_m)])
    z = jnp.asarray(z_m)
    if mode == "finecell":
        z = (jnp.floor(z / FINE_CELL_M) + 0.5) * FINE_CELL_M
    return col.height_shares(z, 0.5 * (edges[1:] + edges[:-1]))


if mode != "onehot":
    col.Column.shares = spread_shares
ds = read_dataset(data)
for split in splits:
    ev = evaluate_run(run, ds, split)
    errors = [relative_l2(p[-1], t[-1], ev.fluid) for p, t in zip(ev.forecast, ev.truth)]
    print(mode, split, f"{np.median(errors):.4f}", flush=True)
