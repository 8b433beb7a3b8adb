"""Speed of a 600 s forecast with the memory closure on the paper-room plane grid (26 x 49).

    .venv/bin/python benchmarks/bench_closure.py                         # quick and paper-size memory hybrid
    .venv/bin/python benchmarks/bench_closure.py --variants physics memory:quick memory:paper markovian:quick datadriven:quick
    .venv/bin/python benchmarks/bench_closure.py --variants physics layered memory:quick memory:quick+layer memory:paper+layer
    .venv/bin/python benchmarks/bench_closure.py --data data/paper-room.nc --scenario static-00

1500 model steps of 0.4 s (4 physics substeps each, then the closure once per step),
float32, the field saved every 2 s (300 frames), through the same jitted function as
``plumecast forecast`` (:func:`plumecast.forecast.rollout_frames`, a batch of one). Each
variant is ``NAME[:SIZE][+layer]`` (a registered variant, the closure size, ``quick`` or
``paper``, and ``+layer`` for the layered physics' off-plane layer in the closure:
option ``reservoir=true``, as in the main job); the closure is untrained (the same work
per step as a trained one). Compilation is timed apart (first call minus the median warm call); the
figure is the median of ``--repeats`` warm calls (wall clock; the process CPU time is
printed beside it, a fairer figure when other jobs share the cores). Without ``--data`` the flow is a
synthetic one on the paper-room floor plan (same grid, same work per step).
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
from plumecast.closure import make_closure
from plumecast.physics.model import build_model
from plumecast.rollout import forcing_from_track
from plumecast.scenario import load_scenario_set
from plumecast.forecast import rollout_frames


def synthetic_setup():
    fluid = load_scenario_set("paper-room").room.plan.astype(float)
    ny, nx = fluid.shape
    y, x = np.meshgrid(np.linspace(0, 1, ny), np.linspace(0, 1, nx), indexing="ij")
    u = 0.3 * np.sin(np.pi * y) * fluid
    v = 0.1 * np.cos(2 * np.pi * x) * fluid
    model = build_model(fluid=fluid, u=u, v=v, w=0.02 * u, nu_t=5e-3 * fluid, dx=0.5, dy=0.5, exchange_max_per_s=0.05)
    cells = np.argwhere(fluid > 0)
    j, i = cells[len(cells) // 2]
    forcing = forcing_from_track(np.array([0.0, 600.0]), [0.25 + 0.5 * i] * 2, [0.25 + 0.5 * j] * 2, [1.2] * 2, [1.0, 1.0],
                                 dt=0.4, n_steps=1500)
    return model, jnp.zeros(fluid.shape, jnp.float32), forcing, 5


def data_setup(path, scenario):
    from plumecast.forcing import prepare_data
    from plumecast.io.dataset import read_dataset
    from plumecast.train import TrainConfig, build_system

    ds = read_dataset(path)
    cfg = TrainConfig()
    prep = prepare_data(ds, cfg.physics.dt_s)
    model, _ = build_system(ds, cfg, prep)
    i = prep.index(scenario)
    q0 = model.encode(prep.conc[i, 0])
    return model, q0, jax.tree.map(lambda a: jnp.asarray(a[i]), prep.forcing), prep.steps_per_snapshot


def time_forecast(model, closure, q0, forcing, spf, repeats):
    q0, forcing = q0[None], jax.tree.map(lambda a: a[None], forcing)  # a batch of one
    t0 = time.perf_counter()
    jax.block_until_ready(rollout_frames(model, closure, q0, forcing, spf))
    first = time.perf_counter() - t0
    runs, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = jax.block_until_ready(rollout_frames(model, closure, q0, forcing, spf))
        runs.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    assert bool(jnp.isfinite(out).all()), "non-finite forecast"
    med = statistics.median(runs)
    return first - med, med, runs, statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data")
    parser.add_argument("--scenario", default="static-00")
    parser.add_argument("--variants", nargs="+", default=["memory:quick", "memory:paper"])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    model, q0, forcing, spf = data_setup(args.data, args.scenario) if args.data else synthetic_setup()
    c = model.config
    n_steps = int(forcing.t.shape[0])
    print(f"plumecast {plumecast.__version__}, jax {jax.__version__} on {jax.default_backend()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}; grid {c.ny} x {c.nx}, {n_steps} steps x {c.substeps} substeps "
          f"({n_steps * c.dt:g} s), {c.dtype}, frames every {spf} steps, "
          f"{'flow from ' + args.data if args.data else 'synthetic flow on the paper-room plan'}")
    for spec in args.variants:
        spec_base, _, extra = spec.partition("+")
        name, _, size = spec_base.partition(":")
        options = {"size": size} if size else {}
        if extra == "layer":
            options["reservoir"] = True
        elif extra:
            parser.error(f"unknown variant suffix +{extra} in {spec!r} (known: +layer)")
        closure = make_closure(name, model, key=jax.random.PRNGKey(0), **options)
        n_params = sum(int(np.prod(a.shape)) for a in jax.tree.leaves(closure) if hasattr(a, "shape")) if closure else 0
        compile_s, med, runs, cpu = time_forecast(model, closure, q0, forcing, spf, args.repeats)
        print(f"{spec:16s} {n_params:8d} closure parameters: compile {compile_s:5.1f} s, forecast median {med:7.3f} s "
              f"over {len(runs)} runs (min {min(runs):.3f}, max {max(runs):.3f} s; CPU time {cpu:.3f} s); "
              f"{med / n_steps * 1e3:.3f} ms per step, load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
