"""Reproducible CPU training: XLA's concurrency-optimised scheduler off (plumecast's command) against on (XLA's default).

    .venv/bin/plumecast generate paper-room --out data/paper-room.nc   # the main job's data
    .venv/bin/python benchmarks/bench_reproducible.py data/paper-room.nc --repeats 3

Runs the same short training (the main job's plane physics, seed 0, epochs 4/2/1/1 of the
quick curriculum) ``--repeats`` times with each setting, alternating, each in its own
``plumecast train`` process, and prints per setting the median wall time and how many
distinct val curves the repeats gave (1 = bit-reproducible) and their largest
difference. Session 33 found the default setting giving val curves 1e-5 apart after
eight epochs, which the quick preset grows to OOD figures 0.05 apart after 100
(docs/results.md).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from plumecast.numerics import REPRODUCIBLE_XLA_FLAG

SETTINGS = {"scheduler off (plumecast)": REPRODUCIBLE_XLA_FLAG,
            "scheduler on (XLA default)": REPRODUCIBLE_XLA_FLAG.replace("=false", "=true")}
TRAIN = ["--variant", "physics", "--preset", "quick", "--set", "observation_log_max=1.0", "--set",
         "observation_spacing_cells=12", "--set", "loss=field+root", "--set", "epochs=[4,2,1,1]"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    if not a.data.is_file():
        sys.exit(f"error: no dataset at {a.data}; make it with `plumecast generate paper-room --out {a.data}`")
    command = [str(Path(sys.executable).with_name("plumecast")), "train", str(a.data)]
    seconds = {name: [] for name in SETTINGS}
    curves = {name: [] for name in SETTINGS}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.repeats):
            for i, (name, flag) in enumerate(SETTINGS.items()):
                out = Path(tmp) / f"repeat{r}-setting{i}"
                env = {**os.environ, "XLA_FLAGS": flag}
                t0 = time.perf_counter()
                done = subprocess.run(command + TRAIN + ["--out", str(out)], env=env, capture_output=True, text=True)
                if done.returncode:
                    sys.exit(f"error: training failed ({name}):\n{done.stderr[-2000:]}")
                seconds[name].append(time.perf_counter() - t0)
                summary = json.loads((out / "summary.json").read_text())
                curves[name].append(tuple(v["val"] for v in summary["val_curve"]))
                print(f"repeat {r + 1}/{a.repeats}, {name}: {seconds[name][-1]:.1f} s", flush=True)
    print(f"\n| setting | median s per training | distinct val curves of {a.repeats} | largest difference |")
    print("|---|---|---|---|")
    for name in SETTINGS:
        first = curves[name][0]
        spread = max(max(abs(x - y) for x, y in zip(first, c)) for c in curves[name])
        print(f"| {name} | {statistics.median(seconds[name]):.1f} | {len(set(curves[name]))} | {spread:.2g} |")


if __name__ == "__main__":
    main()
