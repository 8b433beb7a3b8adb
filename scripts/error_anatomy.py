"""Where a run's final-time error comes from: amount or shape, high or low cells.

For each run and split, per scenario at the final time on fluid cells: the relative L2
error; the same after the best single rescaling of the forecast (``a = <f, t> / <f, f>``,
so what is left is shape, not amount); the forecast / truth plane-mass ratio; Spearman
over all cells and within the upper and lower halves of the truth; and the truth's range.
Prints the medians per split and, with ``--per-scenario``, one line per scenario.

    .venv/bin/python scripts/error_anatomy.py runs/physics-x runs/memory-x-rd --data data/paper-room.nc --splits test ood
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from plumecast.evaluate import EvaluationError, evaluate_run
from plumecast.io.dataset import DatasetError, read_dataset
from plumecast.metrics import relative_l2, spearman

COLUMNS = ("rel_l2", "rel_l2_rescaled", "mass_ratio", "spearman", "spearman_upper", "spearman_lower", "truth_min",
           "truth_max")


def anatomy(forecast: np.ndarray, truth: np.ndarray, fluid: np.ndarray) -> dict[str, float]:
    """The figures of one final-time field pair (see the module docstring)."""
    m = fluid > 0
    f, t = forecast.astype(float), truth.astype(float)
    ff = float(np.sum(f[m] ** 2))
    scale = float(np.sum(f[m] * t[m])) / ff if ff > 0 else 0.0
    upper = m & (t > np.median(t[m]))
    return {
        "rel_l2": relative_l2(f, t, m),
        "rel_l2_rescaled": relative_l2(scale * f, t, m),
        "mass_ratio": float(f[m].sum() / t[m].sum()),
        "spearman": spearman(f, t, m),
        "spearman_upper": spearman(f, t, upper),
        "spearman_lower": spearman(f, t, m & ~upper),
        "truth_min": float(t[m].min()),
        "truth_max": float(t[m].max()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run directories")
    parser.add_argument("--data", required=True, help="the dataset the runs are judged on")
    parser.add_argument("--splits", nargs="+", default=["test", "ood"], help="splits to judge (default: test ood)")
    parser.add_argument("--per-scenario", action="store_true", help="also print one line per scenario")
    args = parser.parse_args()
    try:
        ds = read_dataset(args.data)
    except DatasetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print("run split scenario " + " ".join(COLUMNS))
    for run in args.runs:
        for split in args.splits:
            try:
                ev = evaluate_run(run, ds, split)
            except EvaluationError as e:
                print(f"error: {e}", file=sys.stderr)
                return 1
            rows = [anatomy(p[-1], t[-1], ev.fluid) for p, t in zip(ev.forecast, ev.truth)]
            if args.per_scenario:
                for name, row in zip(ev.scenarios, rows):
                    print(run, split, name, " ".join(f"{row[c]:.3g}" for c in COLUMNS))
            medians = {c: float(np.median([r[c] for r in rows])) for c in COLUMNS}
            print(run, split, "median", " ".join(f"{medians[c]:.3g}" for c in COLUMNS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
