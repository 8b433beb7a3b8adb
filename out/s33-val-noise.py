"""Session 33: is a run's val pick inside the val split's noise? Val alone is read.

usage: .venv/bin/python out/s33-val-noise.py DATA RUN...
For each run: the final-time relative L2 of the selected and the last model on every val
scenario, how many scenarios favour the pick, the sign test's two-sided p, and a
percentile bootstrap (10,000 resamples of the val scenarios, seed 0) of the difference of
medians (selected - last).
"""
import argparse

import numpy as np
from plumecast.evaluate import evaluate_run, read_data
from plumecast.train.select import pick_evidence

ap = argparse.ArgumentParser()
ap.add_argument("data")
ap.add_argument("runs", nargs="+")
a = ap.parse_args()
ds = read_data(a.data)
rng = np.random.default_rng(0)
print("| run | val scenarios | selected lower on | sign test p | median(selected) - median(last) | bootstrap 90 % |")
print("|---|---|---|---|---|---|")
for run in a.runs:
    sel = evaluate_run(run, ds, "val", model="selected").per_time["relative_l2"][:, -1]
    last = evaluate_run(run, ds, "val", model="last").per_time["relative_l2"][:, -1]
    n = sel.size
    ev = pick_evidence(sel, last)
    lower, p = ev["selected_lower_on"], ev["sign_test_p"]
    idx = rng.integers(0, n, size=(10_000, n))
    boot = np.median(sel[idx], axis=1) - np.median(last[idx], axis=1)
    lo, hi = np.percentile(boot, [5, 95])
    print(f"| {run.rstrip('/').split('/')[-1]} | {n} | {lower} of {n} | {p:.2f} | {np.median(sel) - np.median(last):+.3f} "
          f"| [{lo:+.3f}, {hi:+.3f}] |", flush=True)
