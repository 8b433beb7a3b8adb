"""Session 33: final-time median relative L2 of runs' selected and last models, per split.

usage: .venv/bin/python out/s33-sel-last.py DATA RUN... [--splits train val test ood]
Prints one Markdown row per run and model (selected on val / last checkpoint), and the
selected epoch from the run's summary.json.
"""
import argparse
import json
from pathlib import Path

import numpy as np

from plumecast.evaluate import evaluate_run, read_data

ap = argparse.ArgumentParser()
ap.add_argument("data")
ap.add_argument("runs", nargs="+")
ap.add_argument("--splits", nargs="+", default=["train", "val", "test", "ood"])
ap.add_argument("--models", nargs="+", default=["selected", "last"])
a = ap.parse_args()
ds = read_data(a.data)
print("| run | model | " + " | ".join(a.splits) + " |")
print("|---|---|" + "---|" * len(a.splits))
for run in a.runs:
    summary = json.loads((Path(run) / "summary.json").read_text())
    sel = summary.get("selected") or {}
    for model in a.models:
        cells = []
        for split in a.splits:
            ev = evaluate_run(run, ds, split, model=model)
            cells.append(f"{np.median(ev.per_time['relative_l2'][:, -1]):.3f}")
        tag = model if model == "last" else f"selected (epoch {sel.get('epoch', '?')})"
        print(f"| {Path(run).name} | {tag} | " + " | ".join(cells) + " |", flush=True)
