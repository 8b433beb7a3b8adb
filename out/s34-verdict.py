"""Session 34: the val-8 and val-24 picks, the last models and the significance rule, side by side.

Reads the CSVs of out/s34-tables.sh (height_table.py, selected and last models, on the 24-val
paper-room and on the fresh set) and the runs' summary.json; prints Markdown tables. No choice
is made here: every rule is fixed beforehand (docs/results.md, session 34's plan).
"""
import csv
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, "scripts")
import paired_table as pt  # noqa: E402

MODELS = ("physics", "layered", "memory", "column")
SEEDS = (0, 1, 2)
rows = []
for name, tag in (("main", ""), ("main-last", "last:"), ("fresh", "fresh:"), ("fresh-last", "fresh:last:")):
    for path in sorted(Path("out").glob(f"s34-{name}-[sem][0-9].csv")):  # one file per tag (out/s34-tables.sh TAG)
        for r in csv.DictReader(open(path)):
            r["run"] = tag + r["run"]
            rows.append(r)
SEEDS = tuple(s for s in SEEDS if all(Path("runs", f"{p}-{m}-s{s}", "summary.json").exists()
                                      for p in ("v8", "v24") for m in MODELS))  # the seeds whose chains are done


def summary(run):
    return json.loads(Path("runs", run, "summary.json").read_text())


def rule_run(run):
    """The significance rule: the pick when the sign test gives p < 0.05 on val, else the last model."""
    ev = summary(run).get("pick_evidence")
    return run if ev and ev["sign_test_p"] < 0.05 else "last:" + run


def median(run, split):
    vals = [float(r["relative_l2"]) for r in rows if r["run"] == run and r["split"] == split]
    return float(np.median(vals)) if vals else float("nan")


def sets(m):
    return {
        "pick on val 8": [f"v8-{m}-s{s}" for s in SEEDS],
        "pick on val 24": [f"v24-{m}-s{s}" for s in SEEDS],
        "last (val-8 runs)": [f"last:v8-{m}-s{s}" for s in SEEDS],
        "last (val-24 runs)": [f"last:v24-{m}-s{s}" for s in SEEDS],
        "rule: pick if p < 0.05, else last (val 24)": [rule_run(f"v24-{m}-s{s}") for s in SEEDS],
    }


print("Final-time median relative L2, per seed s0 / s1 / s2 (mean); val is the 24-val split for every run.\n")
print("| model | rule | val 24 | test | OOD | fresh test (20) | fresh OOD (4) |")
print("|---|---|---|---|---|---|---|")
for m in MODELS:
    for label, runs in sets(m).items():
        cells = []
        for split, prefix in (("val", ""), ("test", ""), ("ood", ""), ("test", "fresh:"), ("ood", "fresh:")):
            v = [median(prefix + r, split) for r in runs]
            cells.append(" / ".join(f"{x:.3f}" for x in v) + f" ({np.mean(v):.3f})")
        print(f"| {m} | {label} | " + " | ".join(cells) + " |")

print("\nPaired, per scenario (seed means): the val-24 pick against the val-8 pick, and the rule and the")
print("last model against the val-24 pick (negative: the first is lower).\n")
for m in MODELS:
    s = sets(m)
    for label, model, base in (("val-24 pick vs val-8 pick", s["pick on val 24"], s["pick on val 8"]),
                               ("last vs val-24 pick", s["last (val-24 runs)"], s["pick on val 24"]),
                               ("rule vs val-24 pick", s["rule: pick if p < 0.05, else last (val 24)"], s["pick on val 24"])):
        if model == base:
            continue
        for prefix, split_names in (("", ("test", "ood")), ("fresh:", ("test", "ood"))):
            for split in split_names:
                try:
                    f = pt.paired(pt.scenario_means(rows, [prefix + r for r in model], split),
                                  pt.scenario_means(rows, [prefix + r for r in base], split))
                except ValueError as e:
                    print(f"| {m} | {label} | {prefix}{split} | {e} |")
                    continue
                print(f"| {m} | {label} | {prefix or 'main:'}{split} | {f['median_diff']:+.4f} | {f['wins']} of {f['n']} | "
                      f"{f['p']:.3f} | [{f['low']:+.4f}, {f['high']:+.4f}] | {pt.verdict(f)} |")

print("\nThe model each val split chooses among the four, per seed (its own val figure), and its figures:\n")
print("| seed | val | chosen | its val | test | OOD | fresh test | fresh OOD |")
print("|---|---|---|---|---|---|---|---|")
for s in SEEDS:
    for p in ("v8", "v24"):
        runs = [f"{p}-{m}-s{s}" for m in MODELS]
        best = min(runs, key=lambda r: summary(r)["selected"]["val"])
        print(f"| {s} | {p[1:]} | {best} | {summary(best)['selected']['val']:.3f} | {median(best, 'test'):.3f} | "
              f"{median(best, 'ood'):.3f} | {median('fresh:' + best, 'test'):.3f} | {median('fresh:' + best, 'ood'):.3f} |")

EXT = {"column-memory": "column", "column-markovian": "column", "datadriven": "physics",
       "memory": "layered", "markovian": "layered",
       "column-unscaled": "column", "column-smooth": "column"}  # each closure (or option) and the model it starts from (or changes)


def scored(run):
    return any(r["run"] == run for r in rows)


print("\nItem 5's embedded rows (24 val), each against the model it starts from; per seed s0 / s1 / s2 (mean):\n")
print("| model | seeds | pick epochs | val 24 | test | OOD | fresh test | fresh OOD |")
print("|---|---|---|---|---|---|---|---|")
for m in ("physics", "layered", "column", *EXT):
    seeds = [s for s in (0, 1, 2) if scored(f"v24-{m}-s{s}")]
    if not seeds:
        continue
    runs = [f"v24-{m}-s{s}" for s in seeds]
    epochs = " / ".join("start" if summary(r)["selected"]["phase"] == -1 else str(summary(r)["selected"]["epoch"])
                        for r in runs)
    cells = []
    for split, prefix in (("val", ""), ("test", ""), ("ood", ""), ("test", "fresh:"), ("ood", "fresh:")):
        v = [median(prefix + r, split) for r in runs]
        cells.append(" / ".join(f"{x:.3f}" for x in v) + f" ({np.mean(v):.3f})")
    print(f"| {m} | {len(seeds)} | {epochs} | " + " | ".join(cells) + " |")
print()
for m, base in EXT.items():
    seeds = [s for s in (0, 1, 2) if scored(f"v24-{m}-s{s}") and scored(f"v24-{base}-s{s}")]
    if not seeds:
        continue
    for prefix in ("", "fresh:"):
        for split in ("test", "ood"):
            f = pt.paired(pt.scenario_means(rows, [f"{prefix}v24-{m}-s{s}" for s in seeds], split),
                          pt.scenario_means(rows, [f"{prefix}v24-{base}-s{s}" for s in seeds], split))
            print(f"| {m} vs {base} | seeds {seeds} | {prefix or 'main:'}{split} | {f['median_diff']:+.4f} | "
                  f"{f['wins']} of {f['n']} | {f['p']:.3f} | [{f['low']:+.4f}, {f['high']:+.4f}] | {pt.verdict(f)} |")
