"""Session 36: per split and source height class, the median final-time relative L2 of each family (mean over its seeds).

Reads height_table.py CSVs (out/s36-low-*.csv). A family is a run name without its -sN suffix. No choice is made here.
    .venv/bin/python out/s36-classes.py out/s36-low-*.csv
"""
import csv
import re
import sys
from collections import defaultdict

import numpy as np

cells = defaultdict(list)  # (family, split, class, seed) -> errors
for path in sys.argv[1:]:
    for r in csv.DictReader(open(path)):
        fam, seed = re.fullmatch(r"(.*)-s(\d+)", r["run"]).groups()
        for c in ("all", r["height_class"]):
            cells[fam, r["split"], c, seed].append(float(r["relative_l2"]))
fams = list(dict.fromkeys(k[0] for k in cells))
cols = [(s, c) for s in ("train", "val", "test", "ood") for c in ("all", "below", "at", "above")
        if any(k[1] == s and k[2] == c for k in cells)]
print("| family | seeds | " + " | ".join(f"{s} {c}" for s, c in cols) + " |")
print("|---|---|" + "---|" * len(cols))
for fam in fams:
    seeds = sorted({k[3] for k in cells if k[0] == fam})
    row = [f"{np.mean([np.median(cells[fam, s, c, sd]) for sd in seeds]):.3f}" for s, c in cols]
    print(f"| {fam} | {len(seeds)} | " + " | ".join(row) + " |")
