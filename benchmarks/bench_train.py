"""Training speed: optimiser steps and windows per second, the per-window loop against the fused one.

    .venv/bin/plumecast generate tiny --out /tmp/tiny.nc
    .venv/bin/python benchmarks/bench_train.py --tiny /tmp/tiny.nc --repeats 5
    .venv/bin/python benchmarks/bench_train.py --tiny /tmp/tiny.nc --variants physics memory --repeats 5 --val
    .venv/bin/python benchmarks/bench_train.py --advection upwind tvd --repeats 5   # what TVD costs

Two cases, each timed with both engines of :mod:`plumecast.train.loop` in the same
process, alternating, from the same parameters:

* ``tiny``: the tiny preset's dataset (4 x 8 cells), its train split, windows of 10 s
  over a 40 s horizon (4 windows per rollout), batches of 2;
* ``paper-room grid``: a synthetic dataset on the paper-room floor plan (26 x 49 cells,
  791 fluid), 10 train scenarios whose "truth" is the untrained physics' own rollout,
  windows of 60 s over a 120 s horizon (2 windows per rollout, 150 model steps of 4
  substeps each), batches of 5, as the quick preset cuts them.

``per-window`` is the earlier loop: one jitted call per window (:func:`train_step`),
with the window cut and copied to the device on the host and ``float(loss)`` /
``bool(ok)`` read back after each (a device round trip per window). ``fused`` is what
``plumecast train`` runs: the split on the device once, one jitted call per batch
rollout that runs all its windows (:func:`train_rollout`), one read-back per rollout.
One repeat is one epoch (every train scenario once through the horizon); the figures
are medians over ``--repeats`` epochs after one warm-up epoch (compilation apart, timed
and printed). Optimiser steps per second = windows of a batch rollout, one step each;
windows per second counts each scenario's window (steps times the batch size).
Wall clock; the process CPU time is printed beside it (fairer when other jobs share the
cores). ``--val`` also times one validation (the val score of 8 scenarios of 600 s on the
paper-room grid), the cost training adds per epoch when the data has a val split.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import equinox as eqx
import jax
import numpy as np

import plumecast
from plumecast.forcing import prepare_data
from plumecast.io.dataset import make_dataset, read_dataset
from plumecast.train import TrainConfig, build_system
from plumecast.train.loop import epoch_fused, epoch_per_window, make_optimizer, train_data
from plumecast.train.system import system_spec
from plumecast.train.windows import epoch_batches, window_plan


def paper_room_grid_dataset(n_train: int = 10, horizon_s: float = 120.0):
    """A synthetic paper-room-sized dataset: the plan, a smooth flow, truth = the untrained physics' rollout."""
    from plumecast.forecast import rollout_frames
    from plumecast.physics.model import build_model
    from plumecast.rollout import forcing_from_track
    from plumecast.scenario import load_scenario_set

    fluid = load_scenario_set("paper-room").room.plan.astype(float)
    ny, nx = fluid.shape
    yy, xx = np.meshgrid(np.linspace(0, 1, ny), np.linspace(0, 1, nx), indexing="ij")
    u, v = 0.3 * np.sin(np.pi * yy) * fluid, 0.1 * np.cos(2 * np.pi * xx) * fluid
    w, nu_t = 0.02 * u, 5e-3 * fluid
    x, y = 0.25 + 0.5 * np.arange(nx), 0.25 + 0.5 * np.arange(ny)
    model = build_model(fluid=fluid, u=u, v=v, w=w, nu_t=nu_t, dx=0.5, dy=0.5, x0=x[0], y0=y[0],
                        exchange_max_per_s=0.05)
    times = np.arange(0.0, horizon_s + 1e-9, 2.0)
    cells = np.argwhere(fluid > 0)
    pick = cells[np.random.default_rng(0).choice(len(cells), n_train, replace=False)]
    xyz = np.zeros((n_train, len(times), 3))
    xyz[:, :, 0], xyz[:, :, 1], xyz[:, :, 2] = x[pick[:, 1], None], y[pick[:, 0], None], 1.5
    rate = np.ones((n_train, len(times)))
    n_steps = int(round(horizon_s / 0.4))
    per = [forcing_from_track(times, *xyz[k].T, rate[k], dt=0.4, n_steps=n_steps) for k in range(n_train)]
    forcing = jax.tree.map(lambda *a: np.stack(a), *per)
    q0 = np.zeros((n_train, ny, nx), np.float32)
    frames = np.asarray(model.decode(rollout_frames(model, None, q0, forcing, 5)))
    conc = np.concatenate([np.zeros((n_train, 1, ny, nx)), np.maximum(frames, 0)], axis=1)
    return make_dataset(
        scenario_names=[f"s{k:02d}" for k in range(n_train)], splits=["train"] * n_train, times_s=times, x_m=x, y_m=y,
        concentration=conc, u=u, v=v, w=w, nu_t=nu_t, fluid_fraction=fluid, source_xyz=xyz, source_rate=rate,
        plane_height_m=1.5, mass_unit="mg", generator="bench-train-synthetic", generator_version=plumecast.__version__,
        scenario_config={"name": "paper-room-grid", "room": {"size_m": [24.5, 13.0, 3.0]}},
    )


def bench_case(label: str, ds, config: TrainConfig, repeats: int) -> dict:
    prep = prepare_data(ds, config.physics.dt_s, config.physics.dtype)
    plan = window_plan(config.schedule, prep, config.physics.dt_s)
    system = build_system(ds, config, prep)
    params, static = eqx.partition(system, system_spec(system))
    opt_state = make_optimizer(config.schedule).init(params)
    train_idx = prep.indices("train")
    conc_n = prep.conc / system[0].config.c_ref
    memory0 = system[1].init_memory() if system[1] is not None else ()
    K = plan.windows[-1]
    key = jax.random.PRNGKey(0)
    t0 = time.perf_counter()
    data = train_data(prep, conc_n, train_idx, plan, system[0].config.jdtype)
    jax.block_until_ready(data)
    setup_s = time.perf_counter() - t0
    common = dict(prep=prep, conc_n=conc_n, plan=plan, data=data, train_idx=train_idx, memory0=memory0,
                  sched=config.schedule, objective=config.objective)
    engines = {"per-window": epoch_per_window, "fused": epoch_fused}
    n_batches = len(epoch_batches(key, 0, train_idx, config.schedule.batch_size))
    steps = n_batches * K
    windows = steps * config.schedule.batch_size
    times: dict[str, list] = {name: [] for name in engines}
    cpu: dict[str, list] = {name: [] for name in engines}
    first: dict[str, float] = {}
    finals = {}
    for rep in range(repeats + 1):  # rep 0 is the warm-up (compilation)
        for name, run in engines.items():
            batches = epoch_batches(key, rep, train_idx, config.schedule.batch_size)
            t, c = time.perf_counter(), time.process_time()
            p, o = run(params, static, opt_state, batches, K, **common)
            jax.block_until_ready((p, o))
            wall, proc = time.perf_counter() - t, time.process_time() - c
            if rep == 0:
                first[name] = wall
                finals[name] = p
            else:
                times[name].append(wall)
                cpu[name].append(proc)
    # Same start, same batches: both engines end the warm-up epoch at the same parameters.
    diff = max(float(np.max(np.abs(np.asarray(a, float) - np.asarray(b, float))))
               for a, b in zip(jax.tree.leaves(finals["per-window"]), jax.tree.leaves(finals["fused"])))
    out = {"case": label, "steps_per_epoch": steps, "windows_per_epoch": windows, "max_param_difference": diff,
           "data_to_device_s": setup_s}
    for name in engines:
        med = statistics.median(times[name])
        out[name] = {"epoch_s": med, "steps_per_s": steps / med, "windows_per_s": windows / med,
                     "cpu_s": statistics.median(cpu[name]), "compile_s": first[name] - med,
                     "range_s": (min(times[name]), max(times[name]))}
    return out


def bench_val(variant: str, repeats: int) -> dict:
    """Seconds of one validation on the paper-room grid: 8 scenarios of 600 s (full rollouts, final frame only; paper-room's own val split is 24)."""
    from plumecast.train.select import val_score

    ds = paper_room_grid_dataset(n_train=8, horizon_s=600.0)
    cfg = TrainConfig(preset="bench").replace(variant=variant)
    prep = prepare_data(ds, cfg.physics.dt_s, cfg.physics.dtype)
    system = build_system(ds, cfg, prep)
    idx = np.arange(len(prep.names))
    t = time.perf_counter()
    val_score(system, prep, idx)
    first = time.perf_counter() - t
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        val_score(system, prep, idx)
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    return {"variant": variant, "val_s": med, "compile_s": first - med}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", help="the tiny preset's dataset (plumecast generate tiny --out PATH); omit to skip")
    ap.add_argument("--no-paper-grid", action="store_true", help="skip the synthetic paper-room-sized case")
    ap.add_argument("--variants", nargs="+", default=["physics"], help="model variants (closure size quick)")
    ap.add_argument("--advection", nargs="+", default=["upwind"], choices=["upwind", "tvd"],
                    help="advection schemes to time (each case once per scheme)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--val", action="store_true", help="also time one validation (8 scenarios of 600 s) on the "
                    "paper-room grid, per variant")
    a = ap.parse_args(argv)
    print(f"plumecast {plumecast.__version__}, jax {jax.__version__} on {jax.devices()[0].platform}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    base = TrainConfig(preset="bench").replace(learning_rate=2e-2, clip_norm=1.0, loss="field", smoothness=1e-3)
    cases = []
    if a.tiny:
        tiny = read_dataset(a.tiny)
        for variant in a.variants:
            for scheme in a.advection:
                cfg = base.replace(variant=variant, advection=scheme, window_s=10.0, curriculum_s=(40.0,), epochs=(1,),
                                   batch_size=2)
                cases.append((f"tiny, {variant}, {scheme}", tiny, cfg))
    if not a.no_paper_grid:
        grid = paper_room_grid_dataset()
        for variant in a.variants:
            for scheme in a.advection:
                cfg = base.replace(variant=variant, advection=scheme, window_s=60.0, curriculum_s=(120.0,), epochs=(1,),
                                   batch_size=5)
                cases.append((f"paper-room grid, {variant}, {scheme}", grid, cfg))
    if not cases and not a.val:
        ap.error("nothing to time: give --tiny PATH, leave the paper-room grid case on, or --val")
    if cases:
        print("| case | steps / epoch | engine | epoch (s) | steps/s | windows/s | CPU s / epoch | compile (s) |")
        print("|---|---|---|---|---|---|---|---|")
    for label, ds, cfg in cases:
        r = bench_case(label, ds, cfg, a.repeats)
        for name in ("per-window", "fused"):
            e = r[name]
            print(f"| {label} | {r['steps_per_epoch']} | {name} | {e['epoch_s']:.3f} ({e['range_s'][0]:.3f}-"
                  f"{e['range_s'][1]:.3f}) | {e['steps_per_s']:.1f} | {e['windows_per_s']:.1f} | {e['cpu_s']:.3f} | "
                  f"{e['compile_s']:.1f} |")
        print(f"|   | speed-up {r['fused']['steps_per_s'] / r['per-window']['steps_per_s']:.2f}x | largest parameter "
              f"difference after one epoch {r['max_param_difference']:.2e} | | | | | |", flush=True)
    if a.val:
        print()
        print("| validation, paper-room grid (8 scenarios x 600 s) | seconds (median) | compile (s) |")
        print("|---|---|---|")
        for variant in a.variants:
            v = bench_val(variant, a.repeats)
            print(f"| {variant} | {v['val_s']:.3f} | {v['compile_s']:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
