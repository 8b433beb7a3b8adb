"""Session 36: per split and source height class, the median final-time relative L2 of each family (mean over its seeds).

Reads height_table.py CSVs (out/s36-low-*.csv). A family is a run name without its -sN suffix. For the physics
families (physics, column) a row "FAMILY, untrained" gives the start training began from (runs/FAMILY-s0/summary.json).
No choice is made here.
    .venv/bin/python out/s36-classes.py out/s36-low-*.csv
"""
import csv
import json
import re
import sys
from collections import defaultdict

import numpy as np

cells = defaultdict(list)  # (family, split, class, seed) -> errors
classes = {}  # scenario -> height class
for path in sys.argv[1:]:
    for r in csv.DictReader(open(path)):
        fam, seed = re.fullmatch(r"(.*)-s(\d+)", r["run"]).groups()
        for c in ("all", r["height_class"]):
            cells[fam, r["split"], c, seed].append(float(r["relative_l2"]))
        classes[r["scenario"]] = r["height_class"]
for fam in [f for f in dict.fromkeys(k[0] for k in cells) if f.endswith(("-physics", "-column"))]:
    untrained = json.load(open(f"runs/{fam}-s0/summary.json"))["untrained"]
    for split, figures in untrained.items():
        for scenario, err in figures["per_scenario"].items():
            if scenario not in classes:  # scored on other data (a fresh draw): no untrained row
                continue
            for c in ("all", classes[scenario]):
                cells[f"{fam}, untrained", split, c, "0"].append(float(err))
fams = list(dict.fromkeys(k[0] for k in cells))
cols = [(s, c) for s in ("train", "val", "test", "ood") for c in ("all", "below", "at", "above")
        if any(k[1] == s and k[2] == c for k in cells)]
print("| family | seeds | " + " | ".join(f"{s} {c}" for s, c in cols) + " |")
print("|---|---|" + "---|" * len(cols))
for fam in fams:
    seeds = sorted({k[3] for k in cells if k[0] == fam})
    row = [f"{np.mean([np.median(cells[fam, s, c, sd]) for sd in seeds]):.3f}" for s, c in cols]
    print(f"| {fam} | {len(seeds)} | " + " | ".join(row) + " |")
