"""One table of final-time medians from ``plumecast compare`` outputs, with per-variant means.

Reads the ``compare.csv`` of each folder given, and each run's ``summary.json`` (train
relative L2), and prints a Markdown table: one row per run (test and OOD Spearman and
relative L2, the train relative L2), then the mean of each variant's rows. Used for the
seed tables of docs/results.md:

    .venv/bin/python scripts/seed_table.py out/compare-lx out/compare-lx-seed1 out/compare-lx-seed2 --runs-dir runs
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from pathlib import Path

COLUMNS = (("test", "spearman"), ("test", "relative_l2"), ("ood", "spearman"), ("ood", "relative_l2"))


def read_rows(folders: list[Path]) -> dict[str, dict]:
    """Per run: its variant and the final-time medians of each (split, metric) in the comparisons."""
    runs: dict[str, dict] = {}
    for folder in folders:
        path = folder / "compare.csv"
        if not path.is_file():
            raise SystemExit(f"error: {path} does not exist; run plumecast compare --out {folder} first")
        with path.open(newline="") as fh:
            for row in csv.DictReader(fh):
                entry = runs.setdefault(row["run"], {"variant": row["variant"]})
                for split, metric in COLUMNS:
                    if row["split"] == split:
                        entry[(split, metric)] = float(row[f"{metric}_final_median"])
    return runs


def train_error(runs_dir: Path, run: str) -> float | None:
    try:
        return float(json.loads((runs_dir / run / "summary.json").read_text())["trained"]["train"]["median"])
    except (OSError, KeyError, ValueError, TypeError):
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path, help="output folders of plumecast compare")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where the runs' folders are (train error)")
    parser.add_argument("--digits", type=int, default=3)
    args = parser.parse_args(argv)
    runs = read_rows(args.folders)
    fmt = lambda v: "" if v is None else f"{v:.{args.digits}f}"  # noqa: E731
    print("| run | variant | train rel. L2 | test Spearman | test rel. L2 | OOD Spearman | OOD rel. L2 |")
    print("|---|---|---|---|---|---|---|")
    groups: dict[str, list[dict]] = defaultdict(list)
    for run, entry in runs.items():
        entry["train"] = train_error(args.runs_dir, run)
        groups[entry["variant"]].append(entry)
        print(f"| {run} | {entry['variant']} | {fmt(entry['train'])} | "
              + " | ".join(fmt(entry.get(c)) for c in COLUMNS) + " |")
    for variant, rows in groups.items():
        def mean(key):
            vals = [r[key] for r in rows if r.get(key) is not None]
            return sum(vals) / len(vals) if len(vals) == len(rows) else None
        print(f"| **mean of {len(rows)}** | {variant} | {fmt(mean('train'))} | " + " | ".join(fmt(mean(c)) for c in COLUMNS) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
