"""Position errors of several `plumecast locate-eval` outputs side by side: a table and a figure.

Each argument is ``LABEL=DIR`` (or ``LABEL=DIR1,DIR2,...``: the cases of several
outputs pooled, e.g. the train and val splits), where ``DIR`` holds a
``locate_eval.json``. Only the first system of each output is used (the run; the
``--baseline`` rows have their own label in the output's table). A case that could not
be located counts as an infinite error, so the curves end below 1 when some were not:

    .venv/bin/python scripts/locate_errors.py "real=out/a-train,out/a-val" "perfect model=out/b-train,out/b-val" \
        --out docs/img/locate-errors.png

Prints a Markdown table (``locate.evaluate.summarise`` of the pooled cases: cases, located,
median error over the located cases and over all cases, within 1 m, the 90 % region holding
the truth) and writes the cumulative
distributions of the position error as a PNG (atomically).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from plumecast.locate.evaluate import summarise


def load_cases(dirs: list[Path]) -> list[dict]:
    """The first system's case records of every ``locate_eval.json`` in ``dirs``."""
    cases = []
    for d in dirs:
        path = d / "locate_eval.json"
        try:
            payload = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise SystemExit(f"error: cannot read {path}: {e}")
        first = next(iter(payload["summary"]))
        cases += [c for c in payload["cases"] if c["system"] == first]
    return cases


def errors(cases: list[dict]) -> np.ndarray:
    """Position errors (m) with ``inf`` for the cases not located."""
    return np.asarray([c["position_error_m"] if c["status"] == "located" else math.inf for c in cases], float)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sets", nargs="+", help="LABEL=DIR[,DIR...]")
    parser.add_argument("--out", type=Path, help="PNG of the cumulative distributions")
    parser.add_argument("--title", default="Position error of the located source")
    args = parser.parse_args(argv)
    rows = []
    for item in args.sets:
        label, sep, dirs = item.partition("=")
        if not sep or not dirs:
            parser.error(f"expected LABEL=DIR[,DIR...], got {item!r}")
        cases = load_cases([Path(d) for d in dirs.split(",")])
        rows.append((label, cases, errors(cases)))
    print("| set | cases | located | median error, located (m) | median error, all cases (m) | within 1 m (all) | 90 % region holds truth (all) |")
    print("|---|---|---|---|---|---|---|")
    for label, cases, _ in rows:
        s = summarise(cases, {"seconds": None})  # locate-eval's own aggregate, over the pooled cases
        pos = s["position_error_m"]
        med_all = "inf" if pos["median_all_cases"] is None else f"{pos['median_all_cases']:.2f}"
        med = "n/a" if pos["median"] is None else f"{pos['median']:.2f}"
        print(f"| {label} | {s['cases']} | {s['located']} | {med} | {med_all} | {pos['within_1m_all_cases']:.0%} | "
              f"{s['coverage']:.0%} |")
    if args.out is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from plumecast.plot import save_figure

        fig, ax = plt.subplots(figsize=(6.4, 4.0))
        for label, _, e in rows:
            finite = np.sort(e[np.isfinite(e)])
            share = np.arange(1, len(finite) + 1) / len(e)
            ax.step(np.concatenate([[0.0], finite]), np.concatenate([[0.0], share]), where="post", label=label)
        ax.axvline(1.0, color="0.5", lw=0.8, ls="--")
        ax.axhline(0.5, color="0.5", lw=0.8, ls=":")
        ax.set_xlabel("position error (m)")
        ax.set_ylabel("share of all cases (not located: never)")
        ax.set_xlim(left=0)
        ax.set_ylim(0, 1)
        ax.set_title(args.title)
        ax.legend(fontsize=8)
        save_figure(fig, args.out)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
