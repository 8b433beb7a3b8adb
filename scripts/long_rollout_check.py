"""Do trained models stay sane past their training horizon? Rollouts to twice it (1200 s).

For every run given and every scenario of the chosen splits, rolls the model out from
t = 0 for ``--horizon`` seconds (the source track held at its last position and rate past
the data's end), and reports per run: how many rollouts stay finite, the largest share of
negative mass (``sum(max(-c, 0)) / sum(|c|)`` over fluid cells, worst frame), and the
largest concentration reached relative to the largest in the data.

    .venv/bin/python scripts/long_rollout_check.py runs/physics-quick runs/memory-quick \
        --data data/paper-room.nc --horizon 1200
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from plumecast.io.dataset import read_dataset
from plumecast.rollout import forcing_from_track
from plumecast.forecast import check_grid, rollout_frames
from plumecast.train import load_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--horizon", type=float, default=1200.0, help="seconds")
    parser.add_argument("--splits", default="test,ood")
    args = parser.parse_args()
    ds = read_dataset(args.data)
    times = ds["time"].values
    fluid = ds["fluid"].values == 1
    splits = set(args.splits.split(","))
    picks = [i for i, s in enumerate(ds["split"].values) if str(s) in splits]
    c_max_data = float(ds["concentration"].values[picks].max())
    print(f"| run | variant | rollouts finite to {args.horizon:.0f} s | worst negative-mass share | max c / max c in data |")
    print("|---|---|---|---|---|")
    for run in args.runs:
        (model, closure), config, _ = load_run(run)
        check_grid(model, ds, run=str(run), data=str(args.data))
        spf = int(round(float(times[1] - times[0]) / config.physics.dt_s))
        n_steps = int(round(args.horizon / config.physics.dt_s))
        n_steps -= n_steps % spf
        finite, worst_neg, peak = 0, 0.0, 0.0
        for i in picks:
            track = [ds[f"source_{k}"].values[i] for k in ("x", "y", "z", "rate")]
            forcing = forcing_from_track(times, *track, dt=config.physics.dt_s, n_steps=n_steps, t0=float(times[0]),
                                         dtype=config.physics.dtype)
            q0 = jnp.zeros(fluid.shape, model.config.jdtype)
            batch = jax.tree.map(lambda a: a[None], forcing)
            frames = np.asarray(model.decode(rollout_frames(model, closure, q0[None], batch, spf)[0]), float)
            jax.block_until_ready(frames)
            if not np.isfinite(frames).all():
                continue
            finite += 1
            f = frames[:, fluid]
            neg = np.maximum(-f, 0).sum(axis=1) / np.maximum(np.abs(f).sum(axis=1), 1e-30)
            worst_neg = max(worst_neg, float(neg.max()))
            peak = max(peak, float(f.max()))
        print(f"| {run} | {config.variant} | {finite}/{len(picks)} | {worst_neg:.2e} | {peak / c_max_data:.2f} |")


if __name__ == "__main__":
    main()
