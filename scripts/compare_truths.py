"""Two ground truths of the same scenarios side by side (e.g. the embedded engine vs OpenFOAM).

Reads two plumecast datasets with the same plane grid and scenario names and prints, per
split, the median (and interquartile range) over scenarios of the final-time plane
Spearman correlation and relative L2 difference (the second dataset as reference), and of
the ratio of the plane's mass at the final time.

    .venv/bin/python scripts/compare_truths.py data/paper-room-of.nc data/paper-room.nc
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from plumecast.io.dataset import DatasetError, read_dataset
from plumecast.metrics import median_iqr, relative_l2, spearman


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", help="the dataset to judge")
    parser.add_argument("reference", help="the reference dataset (same grid and scenarios)")
    args = parser.parse_args()
    try:
        a, b = read_dataset(args.dataset), read_dataset(args.reference)
    except DatasetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if a["fluid"].shape != b["fluid"].shape or not np.array_equal(a["fluid"].values, b["fluid"].values):
        print("error: the two datasets have different plane grids or fluid masks", file=sys.stderr)
        return 1
    names = [str(s) for s in a["scenario"].values]
    missing = sorted(set(names) - {str(s) for s in b["scenario"].values})
    if missing:
        print(f"error: scenarios missing from {args.reference}: {', '.join(missing)}", file=sys.stderr)
        return 1
    fluid = a["fluid"].values
    rows: dict[str, list[tuple[float, float, float]]] = {}
    for name, split in zip(names, (str(s) for s in a["split"].values)):
        x = a["concentration"].sel(scenario=name).values[-1]
        y = b["concentration"].sel(scenario=name).values[-1]
        mass = float((x * fluid).sum() / (y * fluid).sum())
        rows.setdefault(split, []).append((float(spearman(x, y, fluid)), float(relative_l2(x, y, fluid)), mass))
    print(f"{args.dataset} against {args.reference}, final time {float(a['time'].values[-1]):g} s:\n")
    print("| split | scenarios | Spearman | relative L2 | plane mass ratio |")
    print("|---|---|---|---|---|")

    def cell(v):
        st = median_iqr(v)
        return f"{st['median']:.3f} ({st['q25']:.3f}-{st['q75']:.3f})"

    for split, vals in rows.items():
        v = np.asarray(vals)
        print(f"| {split} | {len(v)} | {cell(v[:, 0])} | {cell(v[:, 1])} | {cell(v[:, 2])} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
