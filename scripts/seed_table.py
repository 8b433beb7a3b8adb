"""One table of final-time medians from ``plumecast compare`` outputs, with per-variant means; picks on val.

Reads the ``compare.csv`` of each folder given, and each run's ``summary.json`` (train
relative L2), and prints a Markdown table: one row per run (test and OOD Spearman and
relative L2, the train relative L2, and the val relative L2 when the comparisons have the
val split), then the mean of each variant's rows. Used for the seed tables of
docs/results.md:

    .venv/bin/python scripts/seed_table.py out/compare-lx out/compare-lx-seed1 out/compare-lx-seed2 --runs-dir runs

``--pick variant`` (or ``--pick all``) then chooses, per variant (or among all runs: a
choice of options), the run with the lowest val relative L2 (final-time median) and
prints a second table with the pick's test and OOD figures. The pick reads val only;
test and OOD are reported for it, never used to choose (docs/evaluation.md, "Protocol:
choose on val, report test and OOD"):

    .venv/bin/python scripts/seed_table.py out/compare-s0 out/compare-s1 out/compare-s2 --pick variant
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

COLUMNS = (("test", "spearman"), ("test", "relative_l2"), ("ood", "spearman"), ("ood", "relative_l2"))
VAL = ("val", "relative_l2")  # what a pick minimises
SEED_SUFFIX = re.compile(r"-(s|seed)\d+$")


def group_of(run: str, entry: dict, by: str) -> str:
    """The group a run's row is averaged (or picked) in: its variant, its name without the seed suffix, or all."""
    if by == "name":
        return SEED_SUFFIX.sub("", run)
    return entry["variant"] if by == "variant" else "all"


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
                for split, metric in COLUMNS + (VAL,):
                    if row["split"] == split:
                        entry[(split, metric)] = float(row[f"{metric}_final_median"])
    return runs


def train_error(runs_dir: Path, run: str) -> float | None:
    try:
        return float(json.loads((runs_dir / run / "summary.json").read_text())["trained"]["train"]["median"])
    except (OSError, KeyError, ValueError, TypeError):
        return None


def pick_on_val(runs: dict[str, dict], by: str) -> list[tuple[str, str, int]]:
    """``(group, run, candidates)`` per group (see :func:`group_of`): the run with the lowest val relative L2.

    Only the val figure is read; a group none of whose runs has it is an error.
    """
    groups: dict[str, list[str]] = defaultdict(list)
    for run, entry in runs.items():
        groups[group_of(run, entry, by)].append(run)
    picks = []
    for group, members in groups.items():
        scored = [(runs[r][VAL], i, r) for i, r in enumerate(members) if runs[r].get(VAL) is not None]
        if not scored:
            raise SystemExit(f"error: no val figures for {group} ({', '.join(members)}); run plumecast compare on data "
                             "with a val split (it compares val by default)")
        picks.append((group, min(scored)[2], len(members)))
    return picks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path, help="output folders of plumecast compare")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where the runs' folders are (train error)")
    parser.add_argument("--digits", type=int, default=3)
    parser.add_argument("--pick", choices=("variant", "name", "all"), help="choose on val: the best run per variant "
                        "(or per name, e.g. of seeds) or among all runs (options), and report its test and OOD figures")
    parser.add_argument("--group", choices=("variant", "name"), default="variant",
                        help="average rows per variant, or per run name without its -s<N>/-seed<N> suffix (when two "
                        "runs of one variant differ in physics, as a memory closure on the plane and on the column)")
    args = parser.parse_args(argv)
    runs = read_rows(args.folders)
    fmt = lambda v: "" if v is None else f"{v:.{args.digits}f}"  # noqa: E731
    has_val = any(e.get(VAL) is not None for e in runs.values())
    extra = (VAL,) if has_val else ()
    print("| run | variant | train rel. L2 |" + (" val rel. L2 |" if has_val else "")
          + " test Spearman | test rel. L2 | OOD Spearman | OOD rel. L2 |")
    print("|---|---|---|" + ("---|" if has_val else "") + "---|---|---|---|")
    groups: dict[str, list[dict]] = defaultdict(list)
    for run, entry in runs.items():
        entry["train"] = train_error(args.runs_dir, run)
        groups[group_of(run, entry, args.group)].append(entry)
        print(f"| {run} | {entry['variant']} | {fmt(entry['train'])} | "
              + " | ".join(fmt(entry.get(c)) for c in extra + COLUMNS) + " |")
    for group, rows in groups.items():
        def mean(key):
            vals = [r[key] for r in rows if r.get(key) is not None]
            return sum(vals) / len(vals) if len(vals) == len(rows) else None
        print(f"| **mean of {len(rows)}** | {group} | {fmt(mean('train'))} | "
              + " | ".join(fmt(mean(c)) for c in extra + COLUMNS) + " |")
    if args.pick:
        print()
        print(f"Chosen on val ({'among all runs' if args.pick == 'all' else 'per ' + args.pick}; lowest val relative L2 "
              "at the final time; test and OOD reported for the pick only):")
        print()
        print("| group | picked run | of | val rel. L2 | test Spearman | test rel. L2 | OOD Spearman | OOD rel. L2 |")
        print("|---|---|---|---|---|---|---|---|")
        for group, run, n in pick_on_val(runs, args.pick):
            e = runs[run]
            print(f"| {group} | {run} | {n} | {fmt(e[VAL])} | " + " | ".join(fmt(e.get(c)) for c in COLUMNS) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
