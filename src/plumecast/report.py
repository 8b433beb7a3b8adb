"""Reports of evaluations: metrics.json and CSV, figures, animations, one HTML page; comparisons.

``write_report(evaluation, out)`` writes into ``out``:

* ``metrics.json``: run, data, split, per-split statistics (median and IQR over scenarios
  at the final time, of the time mean, and curves over time), per-scenario final and
  time-mean values, rollout time;
* ``metrics_per_scenario.csv`` (one row per scenario) and ``metrics_over_time.csv`` (one
  row per snapshot time: median, q25, q75 of every metric over scenarios);
* ``metrics_over_time.png``: every metric over time, median and IQR band;
* ``learned_fields.png``: maps of the learned diffusivity, exchange rate and, for a run
  with the off-plane layer, its capture share, return rate and spreading;
* ``snapshots_<scenario>.png``: truth, forecast and error at four times, and
  ``animation_<scenario>.gif``: truth beside forecast, for example scenarios (the best,
  median and worst by final-time relative L2 error);
* ``report.html`` linking all of it.

``write_comparison(evaluations, out)`` puts several runs side by side: ``compare.csv``,
``compare.json``, ``compare.png`` (final-time medians with IQR bars, per split) and
``compare_over_time.png``, and ``compare.html``.

Nothing is half-written: the files are staged in a temporary folder next to ``out`` and
moved into ``out`` (one atomic rename per file) only when all of them are complete.
"""

from __future__ import annotations

import csv
import html
import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import imageio.v3 as iio  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from plumecast import metrics as M  # noqa: E402
from plumecast.evaluate import SPLIT_ROLES  # noqa: E402
from plumecast.plot import learned_fields_picture  # noqa: E402

__all__ = ["write_report", "write_comparison", "evaluation_json", "staged_dir"]

HEADLINE = ("spearman", "relative_l2", "ssim", "com_error_m", "exposure_error")


# --------------------------------------------------------------------------- files


@contextmanager
def staged_dir(out: str | Path):
    """Yield a temporary folder next to ``out``; on success move its files into ``out``.

    Each file lands by ``os.replace`` (atomic); on an error nothing reaches ``out``.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield tmp
        out.mkdir(parents=True, exist_ok=True)
        for f in sorted(tmp.iterdir()):
            os.replace(f, out / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _clean(obj):
    """JSON-safe: NaN/inf to None, numpy scalars and arrays to Python."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if np.isfinite(v) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(_clean(obj), indent=2, sort_keys=False) + "\n")


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for r in rows:
            w.writerow(["" if isinstance(v, float) and not np.isfinite(v) else (f"{v:.6g}" if isinstance(v, float) else v)
                        for v in r])


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "scenario"


def _save(fig, path: Path) -> None:
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def _final_time_mean(series: np.ndarray) -> tuple[float, float]:
    s = np.asarray(series, float)
    fin = s[np.isfinite(s)]
    return float(s[-1]), float(fin.mean()) if fin.size else float("nan")


# --------------------------------------------------------------------------- one evaluation


def evaluation_json(ev) -> dict:
    """The content of ``metrics.json`` for an :class:`~plumecast.evaluate.Evaluation`."""
    per = {}
    for i, name in enumerate(ev.scenarios):
        per[name] = {}
        for m in M.METRICS:
            final, mean = _final_time_mean(ev.per_time[m][i])
            per[name][m] = {"final": final, "time_mean": mean}
    return {
        "run_dir": ev.run_dir,
        "variant": ev.variant,
        "preset": ev.preset,
        "data": ev.data,
        "split": ev.split,
        "split_role": SPLIT_ROLES.get(ev.split, ""),
        "n_scenarios": len(ev.scenarios),
        "final_time_s": float(ev.times[-1]),
        "rollout_seconds": ev.rollout_seconds,
        "non_finite_forecasts": ev.non_finite,
        "metrics": {m: {"label": M.LABELS[m], "higher_is_better": M.HIGHER_IS_BETTER[m]} for m in M.METRICS},
        "notes": "fluid cells only; statistics over scenarios: median and interquartile range (q25, q75); "
                 "SSIM data_range = the truth's range over fluid cells at each time",
        "times_s": ev.times,
        "summary": ev.summary,
        "per_scenario": per,
    }


def _example_indices(ev, n: int) -> list[int]:
    """Best, median and worst scenarios by final relative L2 error (fewer if the split is small)."""
    err = np.asarray(ev.per_time["relative_l2"][:, -1], float)
    order = [int(i) for i in np.argsort(np.where(np.isfinite(err), err, np.inf))]
    if len(order) <= n:
        return order
    picks = [order[0], order[len(order) // 2], order[-1]][:n]
    return list(dict.fromkeys(picks))


def _extent(ev):
    dx = float(ev.x[1] - ev.x[0]) if len(ev.x) > 1 else 1.0
    dy = float(ev.y[1] - ev.y[0]) if len(ev.y) > 1 else 1.0
    return (ev.x[0] - dx / 2, ev.x[-1] + dx / 2, ev.y[0] - dy / 2, ev.y[-1] + dy / 2)


def _masked(ev, a):
    return np.ma.masked_where(ev.fluid == 0, a)


def snapshots_figure(ev, i: int, path: Path, n_times: int = 4) -> None:
    """Truth, forecast and error of scenario ``i`` at ``n_times`` times after t = 0."""
    T = len(ev.times)
    ks = np.unique(np.linspace(0, T - 1, n_times + 1).round().astype(int)[1:])
    fig, axes = plt.subplots(3, len(ks), figsize=(3.6 * len(ks), 6.6), squeeze=False)
    fl = ev.fluid > 0
    for col, k in enumerate(ks):
        t, p = ev.truth[i, k], ev.forecast[i, k]
        vmax = max(float(np.nanmax(np.where(fl, t, -np.inf))), 1e-30)
        err = p - t
        lim = max(float(np.nanmax(np.abs(np.where(fl, err, 0)))), 1e-30)
        rl2 = ev.per_time["relative_l2"][i, k]
        for row, (a, kw, title) in enumerate((
            (t, dict(cmap="inferno", vmin=0, vmax=vmax), f"truth  t = {ev.times[k]:.0f} s"),
            (p, dict(cmap="inferno", vmin=0, vmax=vmax), "forecast"),
            (err, dict(cmap="RdBu_r", vmin=-lim, vmax=lim), f"error (rel. L2 {rl2:.3f})"),
        )):
            ax = axes[row, col]
            im = ax.imshow(_masked(ev, a), origin="lower", extent=_extent(ev), **kw)
            ax.set_title(title, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            fig.colorbar(im, ax=ax, shrink=0.75)
    fig.suptitle(f"{ev.label} ({ev.variant}) on {ev.scenarios[i]} [{ev.split}]", fontsize=10)
    _save(fig, path)


def animation_gif(ev, i: int, path: Path, max_frames: int = 60, fps: int = 10) -> None:
    """Truth beside forecast of scenario ``i`` over time, one colour scale per animation."""
    T = len(ev.times)
    ks = np.unique(np.linspace(0, T - 1, min(T, max_frames)).round().astype(int))
    fl = ev.fluid > 0
    vmax = max(float(np.percentile(ev.truth[i][:, fl], 99.5)), 1e-30)
    fig, (a, b) = plt.subplots(1, 2, figsize=(9.0, 2.8))
    kw = dict(origin="lower", extent=_extent(ev), cmap="inferno", vmin=0, vmax=vmax)
    ia = a.imshow(_masked(ev, ev.truth[i, 0]), **kw)
    ib = b.imshow(_masked(ev, ev.forecast[i, 0]), **kw)
    for ax, name in ((a, "truth"), (b, f"forecast ({ev.variant})")):
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(name)
    frames = []
    for k in ks:
        ia.set_data(_masked(ev, ev.truth[i, k]))
        ib.set_data(_masked(ev, ev.forecast[i, k]))
        fig.suptitle(f"{ev.scenarios[i]}  t = {ev.times[k]:.0f} s", fontsize=10)
        fig.canvas.draw()
        frames.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
    plt.close(fig)
    iio.imwrite(path, np.stack(frames), extension=".gif", duration=1000 / fps, loop=0)


# Metrics whose over-time axis leaves out the first tenth of the run's spikes (relative errors).
CLIPPED_OVER_TIME = ("relative_l2", "exposure_error")


def over_time_figure(curves: list[tuple[str, np.ndarray, dict]], path: Path, metrics=HEADLINE, title: str = "") -> None:
    """Median (line) and IQR (band) over time of each metric for one or more labelled summaries."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.4 * len(metrics), 3.0), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        top = []
        for label, times, summary in curves:
            c = summary[m]["over_time"]
            med, lo, hi = (np.array([np.nan if v is None else v for v in c[k]], float) for k in ("median", "q25", "q75"))
            (line,) = ax.plot(times, med, label=label)
            ax.fill_between(times, lo, hi, color=line.get_color(), alpha=0.2, lw=0)
            # Relative errors of the first frames (a plane the plume has barely reached) can be
            # thousands; the axis shows the rest of the run, its first tenth may go off the top.
            t = np.asarray(times, float)
            later = t >= t[0] + 0.1 * (t[-1] - t[0])
            if m in CLIPPED_OVER_TIME and later.any() and np.isfinite(hi[later]).any():
                top.append(float(np.nanmax(hi[later])))
        if top:
            ax.set_ylim(bottom=0.0, top=1.15 * max(top))
        ax.set_title(M.LABELS[m], fontsize=9)
        ax.set_xlabel("time (s)")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10, y=1.04)
    _save(fig, path)


def _fmt(v, digits=3) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.{digits}f}"


def _summary_table_html(summary: dict) -> str:
    rows = []
    for m in M.METRICS:
        s = summary[m]
        f, tm = s["final"], s["time_mean"]
        arrow = "higher is better" if M.HIGHER_IS_BETTER[m] else "lower is better"
        rows.append(
            f"<tr><td>{html.escape(M.LABELS[m])} <small>({arrow})</small></td>"
            f"<td>{_fmt(f['median'])}</td><td>{_fmt(f['q25'])} – {_fmt(f['q75'])}</td>"
            f"<td>{_fmt(tm['median'])}</td><td>{_fmt(tm['q25'])} – {_fmt(tm['q75'])}</td></tr>"
        )
    return (
        "<table><tr><th>metric</th><th>final-time median</th><th>final-time IQR</th>"
        "<th>time-mean median</th><th>time-mean IQR</th></tr>" + "".join(rows) + "</table>"
    )


_CSS = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}img{max-width:100%}")


def write_report(ev, out: str | Path, *, n_examples: int = 3, max_frames: int = 60) -> dict[str, Path]:
    """Write the report of one evaluation into ``out`` (see the module docstring); return its files."""
    out = Path(out)
    written: dict[str, str] = {}
    with staged_dir(out) as tmp:
        _write_json(tmp / "metrics.json", evaluation_json(ev))
        written["metrics"] = "metrics.json"
        header = ["scenario", "split"] + [f"{m}_{k}" for m in M.METRICS for k in ("final", "time_mean")]
        rows = []
        for i, name in enumerate(ev.scenarios):
            vals = []
            for m in M.METRICS:
                vals.extend(_final_time_mean(ev.per_time[m][i]))
            rows.append([name, ev.split] + vals)
        _write_csv(tmp / "metrics_per_scenario.csv", header, rows)
        header = ["time_s"] + [f"{m}_{k}" for m in M.METRICS for k in ("median", "q25", "q75")]
        rows = []
        for k, t in enumerate(ev.times):
            r = [float(t)]
            for m in M.METRICS:
                c = ev.summary[m]["over_time"]
                r.extend(float("nan") if c[q][k] is None else float(c[q][k]) for q in ("median", "q25", "q75"))
            rows.append(r)
        _write_csv(tmp / "metrics_over_time.csv", header, rows)
        over_time_figure([(f"{ev.label} ({ev.variant})", ev.times, ev.summary)], tmp / "metrics_over_time.png",
                         title=f"{ev.split} split, {len(ev.scenarios)} scenarios: median and IQR")
        if ev.system is not None:
            learned_fields_picture(*ev.system, tmp / "learned_fields.png")
        examples = []
        for i in _example_indices(ev, n_examples):
            stem = _safe(ev.scenarios[i])
            snap, gif = f"snapshots_{stem}.png", f"animation_{stem}.gif"
            snapshots_figure(ev, i, tmp / snap)
            animation_gif(ev, i, tmp / gif, max_frames=max_frames)
            examples.append((ev.scenarios[i], snap, gif, float(ev.per_time["relative_l2"][i, -1])))
        parts = [
            f"<!doctype html><html><head><meta charset='utf-8'><title>plumecast evaluation: {html.escape(ev.label)}</title>"
            f"<style>{_CSS}</style></head><body>",
            f"<h1>{html.escape(ev.label)} <small>({html.escape(ev.variant)}, preset {html.escape(ev.preset)})</small></h1>",
            f"<p>Run <code>{html.escape(ev.run_dir)}</code> on <code>{html.escape(ev.data)}</code>, split "
            f"<b>{html.escape(ev.split)}</b> ({html.escape(SPLIT_ROLES.get(ev.split, ''))}): {len(ev.scenarios)} "
            f"scenarios, final time {ev.times[-1]:.0f} s. "
            f"All forecasts in {ev.rollout_seconds:.2f} s (compilation included). Metrics on fluid cells only; "
            "median and interquartile range over scenarios.</p>",
        ]
        if ev.non_finite:
            parts.append(f"<p><b>Non-finite forecasts:</b> {html.escape(', '.join(ev.non_finite))}</p>")
        parts += [
            _summary_table_html(ev.summary),
            "<p>Data: <a href='metrics.json'>metrics.json</a>, <a href='metrics_per_scenario.csv'>per scenario (CSV)</a>, "
            "<a href='metrics_over_time.csv'>over time (CSV)</a>.</p>",
            "<h2>Metrics over time</h2><img src='metrics_over_time.png' alt='metrics over time'>",
        ]
        if ev.system is not None:
            parts.append("<h2>What the physics learned</h2><img src='learned_fields.png' alt='learned fields'>")
        parts += [
            "<h2>Examples</h2><p>Best, median and worst scenario by final-time relative L2 error. Animations: truth "
            "(left) beside forecast (right), one colour scale per animation.</p>",
        ]
        for name, snap, gif, err in examples:
            parts.append(
                f"<h3>{html.escape(name)} <small>(final relative L2 {_fmt(err)})</small></h3>"
                f"<img src='{snap}' alt='snapshots of {html.escape(name)}'><br>"
                f"<a href='{gif}'><img src='{gif}' alt='animation of {html.escape(name)}'></a>"
            )
        parts.append("</body></html>\n")
        (tmp / "report.html").write_text("\n".join(parts))
        files = sorted(p.name for p in tmp.iterdir())
    return {name: out / name for name in files}


# --------------------------------------------------------------------------- comparisons


def write_comparison(evaluations: list, out: str | Path) -> dict[str, Path]:
    """Several runs side by side (any splits): table, figures and an HTML page in ``out``."""
    if not evaluations:
        raise ValueError("nothing to compare")
    out = Path(out)
    splits = list(dict.fromkeys(ev.split for ev in evaluations))
    labels = list(dict.fromkeys(ev.label for ev in evaluations))
    if len(labels) != len({(ev.run_dir) for ev in evaluations}):
        labels = list(dict.fromkeys(ev.run_dir for ev in evaluations))
        label_of = lambda ev: ev.run_dir  # noqa: E731
    else:
        label_of = lambda ev: ev.label  # noqa: E731
    rows, table = [], []
    for ev in evaluations:
        entry = {"run": label_of(ev), "run_dir": ev.run_dir, "variant": ev.variant, "preset": ev.preset, "split": ev.split,
                 "n_scenarios": len(ev.scenarios), "final_time_s": float(ev.times[-1]), "rollout_seconds": ev.rollout_seconds}
        row = [entry["run"], ev.variant, ev.preset, ev.split, len(ev.scenarios)]
        for m in M.METRICS:
            f, tm = ev.summary[m]["final"], ev.summary[m]["time_mean"]
            entry[m] = {"final": f, "time_mean": tm}
            row += [np.nan if f[k] is None else f[k] for k in ("median", "q25", "q75")]
            row += [np.nan if tm["median"] is None else tm["median"]]
        rows.append(row)
        table.append(entry)
    header = ["run", "variant", "preset", "split", "n_scenarios"] + [
        f"{m}_{k}" for m in M.METRICS for k in ("final_median", "final_q25", "final_q75", "time_mean_median")]
    with staged_dir(out) as tmp:
        _write_csv(tmp / "compare.csv", header, rows)
        best = {}
        for split in splits:
            best[split] = {}
            for m in M.METRICS:
                vals = [(e[m]["final"]["median"], e["run"]) for e in table if e["split"] == split and e[m]["final"]["median"] is not None]
                if vals:
                    pick = max(vals) if M.HIGHER_IS_BETTER[m] else min(vals)
                    best[split][m] = pick[1]
        _write_json(tmp / "compare.json", {"runs": table, "best_final_median": best,
                                           "split_roles": {s: SPLIT_ROLES.get(s, "") for s in splits},
                                           "notes": "final-time statistics over the scenarios of each split; fluid cells "
                                                    "only; choose between runs on val, report test and ood"})
        # Final-time medians with IQR bars: one row per split, one column per metric.
        fig, axes = plt.subplots(len(splits), len(HEADLINE), figsize=(3.2 * len(HEADLINE), 2.8 * len(splits)), squeeze=False)
        for r, split in enumerate(splits):
            for c, m in enumerate(HEADLINE):
                ax = axes[r, c]
                for j, lab in enumerate(labels):
                    ev = next((e for e in evaluations if label_of(e) == lab and e.split == split), None)
                    if ev is None or ev.summary[m]["final"]["median"] is None:
                        continue
                    f = ev.summary[m]["final"]
                    ax.bar(j, f["median"], color=f"C{j}", label=lab)
                    ax.errorbar(j, f["median"], yerr=[[f["median"] - f["q25"]], [f["q75"] - f["median"]]], color="k", capsize=3)
                ax.set_xticks(range(len(labels)))
                ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
                ax.set_title(f"{M.LABELS[m]} [{split}]", fontsize=9)
                ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        fig.suptitle("final time: median over scenarios, bars = interquartile range", fontsize=10, y=1.02)
        _save(fig, tmp / "compare.png")
        for split in splits:
            curves = [(label_of(ev), ev.times, ev.summary) for ev in evaluations if ev.split == split]
            over_time_figure(curves, tmp / f"compare_over_time_{_safe(split)}.png", title=f"{split} split: median and IQR")
        head = "".join(f"<th>{html.escape(M.LABELS[m])}<br><small>final median (IQR)</small></th>" for m in HEADLINE)
        body = []
        for e in table:
            cells = []
            for m in HEADLINE:
                f = e[m]["final"]
                mark = " <b>*</b>" if best.get(e["split"], {}).get(m) == e["run"] else ""
                cells.append(f"<td>{_fmt(f['median'])} ({_fmt(f['q25'])} – {_fmt(f['q75'])}){mark}</td>")
            body.append(f"<tr><td>{html.escape(e['run'])}</td><td>{html.escape(e['variant'])}</td><td>{html.escape(e['split'])}</td>"
                        + "".join(cells) + "</tr>")
        imgs = "".join(f"<img src='compare_over_time_{_safe(s)}.png' alt='{html.escape(s)} over time'>" for s in splits)
        (tmp / "compare.html").write_text(
            f"<!doctype html><html><head><meta charset='utf-8'><title>plumecast comparison</title><style>{_CSS}</style>"
            "</head><body><h1>Comparison</h1><p>Final-time metrics on fluid cells, median and interquartile range over "
            "the scenarios of each split; <b>*</b> marks the best median per split. Choose between runs on "
            "<b>val</b>; test and OOD are reported, never used to choose. "
            "Data: <a href='compare.csv'>compare.csv</a>, <a href='compare.json'>compare.json</a>.</p>"
            f"<table><tr><th>run</th><th>variant</th><th>split</th>{head}</tr>{''.join(body)}</table>"
            f"<img src='compare.png' alt='final-time comparison'><h2>Over time</h2>{imgs}</body></html>\n"
        )
        files = sorted(p.name for p in tmp.iterdir())
    return {name: out / name for name in files}
