"""Session 43: where the column's final-time error sits, per source height class (train and val only).

For each scenario of the splits: the final-time relative L2; the share of its squared error within
RADIUS_M of the source (horizontally, at the final time); the error left after the best single scale
of the forecast (shape); the forecast's plane mass over the truth's, and its value over the truth's in the
source's cell, in the 3 x 3 cells about it and in the cells beyond them up to RADIUS_M. Medians per class.
    .venv/bin/python out/s43-atplane.py runs/prw10-column-s0 data/paper-room-wide-l10-of.nc train,val
"""
import sys

import numpy as np

from plumecast.evaluate import evaluate_run
from plumecast.io.dataset import read_dataset
from plumecast.metrics import relative_l2

RADIUS_M, BAND_M = 1.0, 0.25
run, data, splits = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
ds = read_dataset(data)
plane = float(ds.attrs["plane_height_m"])
X, Y = np.meshgrid(ds["x"].values, ds["y"].values)
for split in splits:
    ev = evaluate_run(run, ds, split)
    m = ev.fluid.astype(bool)
    rows = []
    for name, p, t in zip(ev.scenarios, ev.forecast, ev.truth):
        p, t = np.asarray(p[-1]), np.asarray(t[-1])
        k = list(ds["scenario"].values).index(name)
        sx, sy = (float(ds[v].values[k, -1]) for v in ("source_x", "source_y"))
        z0 = float(ds["source_z"].values[k, 0])
        cls = "below" if z0 < plane - BAND_M else "above" if z0 > plane + BAND_M else "at"
        err2 = (p - t) ** 2 * m
        near = (np.hypot(X - sx, Y - sy) <= RADIUS_M) & m
        a = float(np.sum(p[m] * t[m]) / max(np.sum(p[m] ** 2), 1e-30))
        j, i = np.unravel_index(np.argmin(np.hypot(X - sx, Y - sy)), X.shape)
        block = np.s_[max(j - 1, 0):j + 2, max(i - 1, 0):i + 2]
        ring = near & ~np.isin(np.arange(X.size).reshape(X.shape), np.arange(X.size).reshape(X.shape)[block])
        rows.append((cls, relative_l2(p, t, m), float(err2[near].sum() / err2.sum()), relative_l2(a * p, t, m),
                     float(p[m].sum() / t[m].sum()), float(p[j, i] / t[j, i]), float((p * m)[block].sum() / (t * m)[block].sum()),
                     float(p[ring].sum() / t[ring].sum())))
    print(f"{run} {split}: class n | rel L2 | error share within {RADIUS_M:g} m | rescaled | plane mass ratio")
    for cls in ("below", "at", "above"):
        r = np.array([x[1:] for x in rows if x[0] == cls])
        if len(r):
            print(f"  {cls:5s} {len(r):3d} | " + " | ".join(f"{v:.3f}" for v in np.median(r, axis=0)))
