"""Final-time figures of trained runs per split and per source height class, as a Markdown table.

The question of issue 14: does a model fit and generalise for sources below, at and above
the plane? For each run and each split of the dataset, the median final-time relative L2
error and Spearman rank correlation of full rollouts from t = 0 (the forecast API the
training summary uses), over all scenarios of the split and over each height class of
the source (its height at t = 0 against the plane: ``below`` more than ``--band`` m under
it, ``at`` within, ``above``). Rows are runs; a CSV with every scenario's figures is
written beside the table when ``--csv`` is given:

    .venv/bin/python scripts/height_table.py runs/physics-of runs/column-of --data data/paper-room-of.nc

With ``--ensemble NAME`` the runs are scored as one seed ensemble instead (the mean of
their forecasts, :func:`plumecast.forecast.forecast_ensemble`), one row per scenario
named NAME, with the members' relative spread beside the error.

No choice is made here: the runs to compare are picked on val beforehand
(docs/evaluation.md).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
from scipy import stats

from plumecast.forcing import prepare_data
from plumecast.forecast import check_grid, forecast_ensemble, forecast_scenarios
from plumecast.io.dataset import SPLITS, read_dataset
from plumecast.metrics import relative_l2, spearman
from plumecast.train.system import load_run

CLASSES = ("below", "at", "above")


def height_class(z_m: float, plane_m: float, band_m: float) -> str:
    if z_m < plane_m - band_m:
        return "below"
    return "above" if z_m > plane_m + band_m else "at"


def scenario_figures(run: Path, ds, band_m: float, model: str = "selected") -> list[dict]:
    """One row per scenario: split, height class, final-time relative L2 and Spearman (``model``: selected or last)."""
    system, config, _ = load_run(run, model)
    check_grid(system[0], ds, run=str(run))
    prep = prepare_data(ds, system[0].config.dt, system[0].config.dtype)
    final = forecast_scenarios(system, prep, np.arange(ds.sizes["scenario"]), final_only=True)
    return _rows(run.name, config.variant, final, None, prep, ds, np.asarray(system[0].fluid), band_m)


def ensemble_figures(name: str, runs: list[Path], ds, band_m: float, model: str = "selected") -> list[dict]:
    """The rows of :func:`scenario_figures` for the ensemble of ``runs`` (the mean of their forecasts), run ``name``.

    Each row also has ``spread``: the members' standard deviation relative to the ensemble
    mean (``||spread|| / ||mean||`` over fluid cells), which a user has without the truth.
    """
    loaded = [load_run(run, model) for run in runs]
    systems = [system for system, _, _ in loaded]
    for run, system in zip(runs, systems):
        check_grid(system[0], ds, run=str(run))
    prep = prepare_data(ds, systems[0][0].config.dt, systems[0][0].config.dtype)
    mean, spread = forecast_ensemble(systems, prep, np.arange(ds.sizes["scenario"]), final_only=True,
                                     names=[str(r) for r in runs])
    variant = "+".join(dict.fromkeys(config.variant for _, config, _ in loaded))
    return _rows(name, variant, mean, spread, prep, ds, np.asarray(systems[0][0].fluid), band_m)


def _rows(name, variant, final, spread, prep, ds, fluid, band_m) -> list[dict]:
    plane = float(ds.attrs["plane_height_m"])
    rows = []
    for k in range(ds.sizes["scenario"]):
        truth = prep.conc[k, -1]
        row = {
            "run": name, "variant": variant, "scenario": str(ds["scenario"].values[k]),
            "split": str(ds["split"].values[k]),
            "height_class": height_class(float(ds["source_z"].values[k, 0]), plane, band_m),
            "relative_l2": relative_l2(final[k], truth, fluid), "spearman": spearman(final[k], truth, fluid),
        }
        if spread is not None:  # ||spread|| / ||mean||, written as relative_l2(mean + spread, mean)
            row["spread"] = relative_l2(final[k] + spread[k], final[k], fluid)
        rows.append(row)
    return rows


def table(rows: list[dict], splits: list[str]) -> str:
    """Markdown: per run, per split the median relative L2 / Spearman over all and per height class (n in brackets)."""
    runs = list(dict.fromkeys(r["run"] for r in rows))
    # Only the height classes the data has (a split's "all" always).
    groups = [(s, c) for s in splits for c in ("all",) + CLASSES
              if c == "all" or any(r["split"] == s and r["height_class"] == c for r in rows)]
    head = ["run"] + [f"{s} {c}" for s, c in groups]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for run in runs:
        cells = [run]
        for s, c in groups:
            sel = [r for r in rows if r["run"] == run and r["split"] == s and (c == "all" or r["height_class"] == c)]
            l2 = float(np.median([r["relative_l2"] for r in sel]))
            sp = float(np.median([r["spearman"] for r in sel]))
            cells.append(f"{l2:.3f} / {sp:.3f} ({len(sel)})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def spread_table(rows: list[dict], splits: list[str]) -> str:
    """Markdown: per split the ensemble's median relative spread and, across scenarios, its Spearman with the error.

    A spread that ranks the scenarios as their errors do (correlation near 1) says where
    the forecast is less to be trusted; near 0 it says nothing.
    """
    lines = ["| split | scenarios | median spread | median error | Spearman(spread, error) |", "|---|---|---|---|---|"]
    for split in splits:
        sel = [r for r in rows if r["split"] == split]
        spread = np.array([r["spread"] for r in sel])
        error = np.array([r["relative_l2"] for r in sel])
        varies = len(sel) > 2 and np.ptp(spread) > 0 and np.ptp(error) > 0
        rho = stats.spearmanr(spread, error).statistic if varies else float("nan")  # undefined for a constant
        lines.append(f"| {split} | {len(sel)} | {np.median(spread):.4f} | {np.median(error):.3f} | {rho:.2f} |")
    return "\n".join(lines)


def spread_figure(rows: list[dict], splits: list[str], path: Path, title: str) -> Path:
    """Each scenario's final-time error against the ensemble's spread, one colour per split (written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from plumecast.io.atomic import atomic_path

    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for split in splits:
        sel = [r for r in rows if r["split"] == split]
        ax.scatter([r["spread"] for r in sel], [r["relative_l2"] for r in sel], s=18, label=f"{split} ({len(sel)})")
    ax.set_xlabel("ensemble spread, ||std|| / ||mean|| (final time)")
    ax.set_ylabel("final-time relative L2 error of the mean")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--band", type=float, default=0.15, help="half-width (m) of the 'at the plane' class")
    ap.add_argument("--splits", default="train,val,test,ood")
    ap.add_argument("--csv", type=Path, default=None, help="write every scenario's figures here")
    ap.add_argument("--ensemble", default=None, metavar="NAME",
                    help="score the runs as one ensemble named NAME (the mean of their forecasts; CSV rows gain 'spread') "
                    "instead of one row per run")
    ap.add_argument("--spread-figure", type=Path, default=None,
                    help="with --ensemble: write a scatter of each scenario's error against the spread here")
    ap.add_argument("--model", choices=("selected", "last"), default="selected",
                    help="each run's model chosen on val (default) or its last checkpoint (to see what training did)")
    args = ap.parse_args(argv)
    if args.spread_figure and not args.ensemble:
        print("error: --spread-figure needs --ensemble (single runs have no spread)", file=sys.stderr)
        return 2
    splits = [s for s in args.splits.split(",") if s]
    bad = [s for s in splits if s not in SPLITS]
    if bad:
        print(f"error: unknown split(s) {bad}; expected {', '.join(SPLITS)}", file=sys.stderr)
        return 2
    try:
        ds = read_dataset(args.data)
    except (OSError, ValueError) as e:
        print(f"error: {args.data}: {e}", file=sys.stderr)
        return 2
    rows = []
    if args.ensemble:
        try:
            rows = ensemble_figures(args.ensemble, args.runs, ds, args.band, args.model)
        except Exception as e:  # a member that cannot be loaded or does not fit the data or the others: say so, stop
            print(f"error: ensemble {args.ensemble}: {e}", file=sys.stderr)
            return 2
    else:
        for run in args.runs:
            try:
                rows += scenario_figures(run, ds, args.band, args.model)
            except Exception as e:  # a run that cannot be loaded or does not fit the data: name it and stop
                print(f"error: {run}: {e}", file=sys.stderr)
                return 2
    present = [s for s in splits if any(r["split"] == s for r in rows)]
    print("Final-time median relative L2 / Spearman (scenarios); height classes against the plane at "
          f"{float(ds.attrs['plane_height_m']):g} m +- {args.band:g} m\n")
    print(table(rows, present))
    if args.ensemble:
        print(f"\nThe ensemble's spread ({len(args.runs)} members; ||spread|| / ||mean|| at the final time)\n")
        print(spread_table(rows, present))
        if args.spread_figure:
            spread_figure(rows, present, args.spread_figure, f"{args.ensemble}: error against spread")
    if args.csv:
        from plumecast.io.atomic import atomic_path

        with atomic_path(args.csv) as tmp, open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
