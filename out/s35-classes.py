"""Session 35: per source height class, the median final-time relative L2 of model families (mean over seeds).

Reads out/s34-{main,fresh}-*.csv (out/s34-tables.sh). Each argument is a family prefix, e.g. v24-column
(its runs: PREFIX-s0, -s1, -s2 where scored). No choice is made here.
    .venv/bin/python out/s35-classes.py v24-column v24-column-unscaled v24-column-smooth
"""
import csv
import json
import sys
from pathlib import Path

import numpy as np

rows = []
for kind, tag in (("main", ""), ("fresh", "fresh:")):
    for path in sorted(Path("out").glob(f"s34-{kind}-[sem][0-9].csv")):
        for r in csv.DictReader(open(path)):
            r["run"] = tag + r["run"]
            rows.append(r)
groups = [("", "val"), ("", "test"), ("", "ood"), ("fresh:", "test"), ("fresh:", "ood")]
print("| family | seeds | " + " | ".join(f"{p or ''}{s} {c}" for p, s in groups for c in ("below", "at", "above")) + " |")
print("|---|---|" + "---|" * (3 * len(groups)))
for fam in sys.argv[1:]:
    seeds = [s for s in (0, 1, 2) if any(r["run"] == f"{fam}-s{s}" for r in rows)]
    cells = []
    for p, split in groups:
        for c in ("below", "at", "above"):
            per_seed = [np.median([float(r["relative_l2"]) for r in rows if r["run"] == f"{p}{fam}-s{s}"
                                   and r["split"] == split and r["height_class"] == c] or [np.nan]) for s in seeds]
            cells.append(f"{np.mean(per_seed):.3f}")
    print(f"| {fam} | {len(seeds)} | " + " | ".join(cells) + " |")

# The untrained start of the first family's seed-0 run (its summary.json; val, test and OOD only).
run = sys.argv[1] + "-s0"
untrained = json.loads(Path("runs", run, "summary.json").read_text())["untrained"]
cls = {r["scenario"]: r["height_class"] for r in rows if r["run"] == run}
cells = []
for p, split in groups:
    for c in ("below", "at", "above"):
        v = [e for k, e in untrained.get(split, {}).get("per_scenario", {}).items() if not p and cls.get(k) == c]
        cells.append(f"{np.median(v):.3f}" if v else "")
print(f"| {sys.argv[1]}, untrained | | " + " | ".join(cells) + " |")
