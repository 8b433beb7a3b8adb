"""Is one set of runs ahead of another scenario by scenario? A paired comparison from height_table CSVs.

A median over a split of 8 or 30 scenarios moves by a few thousandths when one scenario
changes, so "the closure is ahead of its physics" is judged here on the per-scenario
differences instead: for each scenario, the final-time relative L2 of MODEL minus that of
BASE (each the mean over its runs, e.g. three seeds), then per split the median
difference, the share of scenarios where MODEL is lower, a two-sided Wilcoxon signed-rank
p-value (scipy.stats.wilcoxon), a 95 % bootstrap interval of the median difference
(scipy.stats.bootstrap, resampling scenarios, seeded) and the verdict: MODEL is "ahead"
(or "behind") only when the interval excludes zero and p < 0.05, else "tie". Negative
differences favour MODEL. With ``--mean`` also the mean difference, its 95 % bootstrap
interval and a verdict on it alone ("ahead" when the interval lies below zero): a model that
repairs a few scenarios by much and leaves the rest moves the mean, not the median
(docs/results.md, session 44).
The CSVs are those ``scripts/height_table.py --csv`` writes (one row per run and scenario):

    .venv/bin/python scripts/height_table.py RUNS --data D --csv out/figures.csv
    .venv/bin/python scripts/paired_table.py out/figures.csv --model memory-s0,memory-s1 --base column-s0,column-s1 \
        --figure out/paired.png   # the differences of every scenario, per split

No choice is made here: both sets of runs are picked on val beforehand (docs/evaluation.md).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 9999
BOOTSTRAP_SEED = 0


def scenario_means(rows: list[dict], runs: list[str], split: str) -> dict[str, float]:
    """Scenario -> the mean final-time relative L2 over ``runs`` (each must have every scenario of ``split``)."""
    per_run: dict[str, dict[str, float]] = {run: {} for run in runs}
    for r in rows:
        if r["run"] in per_run and r["split"] == split:
            per_run[r["run"]][r["scenario"]] = float(r["relative_l2"])
    scenarios = set().union(*(set(v) for v in per_run.values()))
    if not scenarios:
        raise ValueError(f"no scenario of split {split!r} in the CSVs for {', '.join(runs)}")
    for run, figures in per_run.items():
        if set(figures) != scenarios:
            raise ValueError(f"run {run!r} lacks {sorted(scenarios - set(figures))[:3]} of split {split!r}: "
                             "compare runs evaluated on the same dataset")
    return {s: float(np.mean([per_run[run][s] for run in runs])) for s in sorted(scenarios)}


def paired(model: dict[str, float], base: dict[str, float]) -> dict:
    """The paired figures of MODEL against BASE over their common scenarios (negative: MODEL lower)."""
    if set(model) != set(base):
        odd = sorted(set(model) ^ set(base))
        raise ValueError(f"the model and base runs cover different scenarios (e.g. {odd[:3]}): one of them lacks "
                         "some; compare runs evaluated on the same dataset")
    names = sorted(model)
    diff = np.array([model[s] - base[s] for s in names])
    out = {"n": len(names), "base": float(np.median([base[s] for s in names])),
           "model": float(np.median([model[s] for s in names])), "median_diff": float(np.median(diff)),
           "wins": int(np.sum(diff < 0)), "p": float("nan"), "low": float("nan"), "high": float("nan"),
           "mean_diff": float(np.mean(diff)), "mean_low": float("nan"), "mean_high": float("nan")}
    if len(names) >= 2 and np.any(diff != 0):
        out["p"] = float(stats.wilcoxon(diff, zero_method="zsplit").pvalue)
        out["low"], out["high"] = _interval(diff, np.median)
        out["mean_low"], out["mean_high"] = _interval(diff, np.mean)
    return out


def _interval(diff: np.ndarray, statistic) -> tuple[float, float]:
    """The seeded percentile bootstrap interval of ``statistic`` of the differences, resampling scenarios."""
    ci = stats.bootstrap((diff,), statistic, confidence_level=CONFIDENCE, n_resamples=BOOTSTRAP_RESAMPLES,
                         method="percentile", random_state=np.random.default_rng(BOOTSTRAP_SEED)).confidence_interval
    return float(ci.low), float(ci.high)


SIGNIFICANCE = 0.05


def verdict(f: dict) -> str:
    """"ahead" (MODEL lower) or "behind" when the interval excludes zero and p < SIGNIFICANCE, else "tie"
    (docs/evaluation.md: with few scenarios a percentile interval of a median is too narrow to stand alone)."""
    if not f["p"] < SIGNIFICANCE:
        return "tie"
    return "ahead" if f["high"] < 0 else "behind" if f["low"] > 0 else "tie"


def mean_verdict(f: dict) -> str:
    """The verdict on the mean difference alone: "ahead" (or "behind") when its interval lies below (above) zero."""
    return "ahead" if f["mean_high"] < 0 else "behind" if f["mean_low"] > 0 else "tie"


def compare(rows: list[dict], model_runs: list[str], base_runs: list[str], splits: list[str]) -> dict:
    """Split -> (MODEL's scenario means, BASE's, their :func:`paired` figures); raises ValueError on a bad input."""
    out = {}
    for split in splits:
        model, base = scenario_means(rows, model_runs, split), scenario_means(rows, base_runs, split)
        out[split] = (model, base, paired(model, base))
    return out


def table(compared: dict, mean: bool = False) -> str:
    """Markdown: per split of :func:`compare`, the medians of BASE and MODEL and the paired figures of their difference.

    ``mean``: also the mean difference, its interval and :func:`mean_verdict`.
    """
    head = ("| split | n | base median | model median | median of model - base | model lower in | "
            f"Wilcoxon p | {CONFIDENCE:.0%} interval of the median difference | model is |")
    if mean:
        head += f" mean of model - base | {CONFIDENCE:.0%} interval of the mean difference | on the mean, model is |"
    lines = [head, "|" + "---|" * (12 if mean else 9)]
    for split, (_, _, f) in compared.items():
        line = (f"| {split} | {f['n']} | {f['base']:.3f} | {f['model']:.3f} | {f['median_diff']:+.4f} | "
                f"{f['wins']} of {f['n']} | {f['p']:.3f} | [{f['low']:+.4f}, {f['high']:+.4f}] | {verdict(f)} |")
        if mean:
            line += f" {f['mean_diff']:+.4f} | [{f['mean_low']:+.4f}, {f['mean_high']:+.4f}] | {mean_verdict(f)} |"
        lines.append(line)
    return "\n".join(lines)


def figure(compared: dict, path: Path, title: str = "") -> Path:
    """A PNG: per split of :func:`compare`, every scenario's difference (model - base, sorted), the median and its interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from plumecast.plot import save_figure

    fig, axes = plt.subplots(1, len(compared), figsize=(3.2 * len(compared), 3.2), sharey=True, squeeze=False)
    for ax, (split, (model, base, f)) in zip(axes[0], compared.items()):
        diff = np.sort([model[s] - base[s] for s in sorted(model)])
        ax.axhline(0.0, color="k", lw=0.8)
        if np.isfinite(f["low"]):
            ax.axhspan(f["low"], f["high"], color="tab:orange", alpha=0.3, label=f"{CONFIDENCE:.0%} interval")
        ax.axhline(f["median_diff"], color="tab:orange", lw=1.5, label="median")
        ax.plot(np.arange(diff.size), diff, "o", ms=3, color="tab:blue")
        ax.set_title(f"{split}: lower in {f['wins']} of {f['n']}, p = {f['p']:.2g} ({verdict(f)})", fontsize=9)
        ax.set_xlabel("scenario (sorted)")
    axes[0][0].set_ylabel("final-time rel. L2, model - base")
    axes[0][0].legend(fontsize=7, loc="upper left")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", nargs="+", type=Path, help="height_table.py --csv outputs (rows are concatenated)")
    ap.add_argument("--model", required=True, help="comma-separated run names (the CSVs' run column)")
    ap.add_argument("--base", required=True, help="comma-separated run names to compare against")
    ap.add_argument("--splits", default="test,ood")
    ap.add_argument("--figure", type=Path, default=None, help="also draw every scenario's difference here (PNG)")
    ap.add_argument("--title", default="", help="the figure's title")
    ap.add_argument("--mean", action="store_true", help="also the mean difference, its interval and a verdict on it")
    args = ap.parse_args(argv)
    rows: list[dict] = []
    for path in args.csv:
        try:
            with open(path, newline="") as fh:
                rows += list(csv.DictReader(fh))
        except OSError as e:
            print(f"error: {path}: {e}", file=sys.stderr)
            return 2
    model_runs, base_runs = ([r for r in s.split(",") if r] for s in (args.model, args.base))
    known = {r.get("run") for r in rows}
    missing = [r for r in model_runs + base_runs if r not in known]
    if missing or not model_runs or not base_runs:
        print(f"error: run(s) {missing or 'none given'} not in the CSVs (they hold {sorted(known)})", file=sys.stderr)
        return 2
    splits = [s for s in args.splits.split(",") if s]
    try:
        compared = compare(rows, model_runs, base_runs, splits)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    text = table(compared, mean=args.mean)
    if args.figure is not None:
        figure(compared, args.figure, args.title)
    print(f"Final-time relative L2, paired by scenario: model = mean of {', '.join(model_runs)}; "
          f"base = mean of {', '.join(base_runs)}; negative differences favour the model\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
