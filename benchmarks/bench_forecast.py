"""Speed of a 600 s physics-only forecast on the paper-room plane grid (26 x 49 cells).

    .venv/bin/python benchmarks/bench_forecast.py                       # synthetic flow on the paper-room plan
    .venv/bin/python benchmarks/bench_forecast.py --data data/paper-room.nc --scenario static-00
    .venv/bin/python benchmarks/bench_forecast.py --run RUN_DIR[,RUN_DIR...] --data data/paper-room.nc --scenario static-00
    .venv/bin/python benchmarks/bench_forecast.py --data data/paper-room.nc --variants physics,layered,column

1500 model steps of 0.4 s with 4 explicit substeps each, float32, one field saved every
2 s (300 frames, as ``plumecast forecast`` does), through the same jitted function as the
command (:func:`plumecast.forecast.rollout_frames`, a batch of one). ``--variants`` times
the untrained systems of several variants on the data side by side, in one run. Compilation is timed apart (first call minus a warm call); the figure is the
median of ``--repeats`` warm calls. Without ``--data`` the flow is a synthetic one on the
paper-room floor plan (same grid, same work per step).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

import plumecast
from plumecast.physics.model import build_model
from plumecast.rollout import forcing_from_track
from plumecast.scenario import load_scenario_set
from plumecast.forcing import prepare_data
from plumecast.forecast import rollout_frames
from plumecast.train import load_run


def synthetic_setup():
    room = load_scenario_set("paper-room").room
    fluid = room.plan.astype(float)
    ny, nx = fluid.shape
    y, x = np.meshgrid(np.linspace(0, 1, ny), np.linspace(0, 1, nx), indexing="ij")
    u = 0.3 * np.sin(np.pi * y) * fluid
    v = 0.1 * np.cos(2 * np.pi * x) * fluid
    nu_t = 5e-3 * fluid
    model = build_model(fluid=fluid, u=u, v=v, nu_t=nu_t, dx=0.5, dy=0.5)
    j, i = np.argwhere(fluid > 0)[len(np.argwhere(fluid > 0)) // 2]
    times = np.array([0.0, 600.0])
    forcing = forcing_from_track(times, [0.25 + 0.5 * i] * 2, [0.25 + 0.5 * j] * 2, [1.2] * 2, [1.0, 1.0], dt=0.4,
                                 n_steps=1500)
    return model, None, jnp.zeros(fluid.shape, jnp.float32), forcing, 5


def data_setup(path, scenario, run_dir, variant="physics"):
    from plumecast.io.dataset import read_dataset
    from plumecast.train import TrainConfig, build_system

    ds = read_dataset(path)
    if run_dir:
        (model, closure), _, _ = load_run(run_dir)
    else:
        cfg = TrainConfig(variant=variant)
        prep0 = prepare_data(ds, cfg.physics.dt_s)
        model, closure = build_system(ds, cfg, prep0)
    prep = prepare_data(ds, model.config.dt, model.config.dtype)
    i = prep.index(scenario)
    q0 = model.encode(prep.conc[i, 0])
    f = jax.tree.map(lambda a: jnp.asarray(a[i]), prep.forcing)
    return model, closure, q0, f, prep.steps_per_snapshot


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data")
    parser.add_argument("--scenario", default="static-00")
    parser.add_argument("--run", help="training runs (their selected models) instead of the untrained model; "
                        "comma-separated: timed side by side")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--variants", default="physics", help="with --data and no --run: untrained variants to time, comma-separated")
    args = parser.parse_args()
    if args.run and args.data:
        for run in args.run.split(","):
            print(f"run {run}:")
            time_one(args, *data_setup(args.data, args.scenario, run))
        return
    variants = args.variants.split(",") if args.data else [None]
    for variant in variants:
        if variant is not None:
            print(f"variant {variant}:")
        time_one(args, *(data_setup(args.data, args.scenario, None, variant or "physics") if args.data
                         else synthetic_setup()))


def time_one(args, model, closure, q0, forcing, spf) -> None:
    c = model.config
    n_steps = int(forcing.t.shape[0])
    print(f"plumecast {plumecast.__version__}, jax {jax.__version__} on {jax.default_backend()}, {os.cpu_count()} cores; "
          f"grid {c.ny} x {c.nx}, {n_steps} steps x {c.substeps} substeps ({n_steps * c.dt:g} s), {c.dtype}, "
          f"frames every {spf} steps, {'flow from ' + args.data if args.data else 'synthetic flow on the paper-room plan'}")
    q0, forcing = q0[None], jax.tree.map(lambda a: a[None], forcing)  # a batch of one
    t0 = time.perf_counter()
    jax.block_until_ready(rollout_frames(model, closure, q0, forcing, spf))
    first = time.perf_counter() - t0
    runs = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        out = jax.block_until_ready(rollout_frames(model, closure, q0, forcing, spf))
        runs.append(time.perf_counter() - t0)
    med = statistics.median(runs)
    assert bool(jnp.isfinite(out).all())
    print(f"compile (first call minus a warm call): {first - med:.2f} s")
    print(f"forecast: median {med * 1e3:.1f} ms over {len(runs)} runs (min {min(runs) * 1e3:.1f}, max {max(runs) * 1e3:.1f} ms); "
          f"{med / (n_steps * c.substeps) * 1e6:.1f} us per substep")


if __name__ == "__main__":
    main()
