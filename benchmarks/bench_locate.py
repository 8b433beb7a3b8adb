"""Speed of locating one source on the paper-room plane: library (forward scan), posterior and refinement.

    .venv/bin/python benchmarks/bench_locate.py --run runs/layered-quick --data data/paper-room.nc
    .venv/bin/python benchmarks/bench_locate.py --run runs/memory-quick --data data/paper-room.nc --refine 1 --iterations 15

Readings of ``--sensors`` seeded random fluid cells are drawn from the dataset's truth of
``--scenario`` (every 10 s for 120 s after the release, 10 % noise), as ``locate-eval``
draws them. Timed apart, each the median of ``--repeats`` warm runs after one run that
compiles: the library of every fluid cell (the forward scan; once per sensor layout),
the posterior over cells and starts, the gradient refinement, and the whole ``locate``
call without a library (what ``plumecast locate`` does, start-up and reading excluded).
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--scenario", default="static-01")
    p.add_argument("--sensors", type=int, default=6)
    p.add_argument("--refine", type=int, default=3)
    p.add_argument("--iterations", type=int, default=30)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()

    from plumecast.io.dataset import read_dataset
    from plumecast.locate import LocateSettings, build_library, default_limit, locate
    from plumecast.locate.evaluate import EvalSettings, draw_case, sensor_cells
    from plumecast.train import load_run

    ds = read_dataset(a.data)
    system, config, _ = load_run(a.run)
    model = system[0]
    rng = np.random.default_rng(a.seed)
    cells = sensor_cells(np.asarray(model.fluid), a.sensors, rng)
    index = [str(s) for s in ds["scenario"].values].index(a.scenario)
    readings, truth = draw_case(ds, index, cells, EvalSettings(sensors=a.sensors), rng)
    settings = LocateSettings(detection_limit=default_limit(model), refine=a.refine, iterations=a.iterations)
    readings = readings.with_limit(settings.detection_limit)
    n_steps = int(math.ceil(float(readings.time.max()) / model.config.dt - 1e-9)) + 1
    heights = (float(model.config.plane_height_m),)

    def timed(fn):
        fn()  # compile
        out = []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            r = fn()
            out.append(time.perf_counter() - t0)
        return float(np.median(out)), r

    lib_s, lib = timed(lambda: build_library(system, readings.sensor_xy, heights=heights, n_steps=n_steps))
    scan_settings = LocateSettings(**{**settings.__dict__, "refine": 0})
    scan_s, _ = timed(lambda: locate(system, readings, scan_settings, library=lib))
    online_s, result = timed(lambda: locate(system, readings, settings, library=lib))
    whole_s, _ = timed(lambda: locate(system, readings, settings))
    e = result.estimate or {}
    err = math.hypot(e["x_m"] - truth["x_m"], e["y_m"] - truth["y_m"]) if e else float("nan")
    load = os.getloadavg()[0]
    print(f"{a.run} ({config.variant}), {a.scenario}, {a.sensors} sensors, {len(lib.xyz)} candidates x {n_steps} steps; "
          f"load {load:.1f}")
    print(f"  library {lib_s:.2f} s | scan (posterior) {scan_s:.2f} s | scan + refinement ({a.refine} x {a.iterations}) "
          f"{online_s:.2f} s | whole locate without a library {whole_s:.2f} s")
    print(f"  status {result.status}; position error {err:.2f} m; region {result.credible and result.credible['area_m2']} m^2")


if __name__ == "__main__":
    main()
