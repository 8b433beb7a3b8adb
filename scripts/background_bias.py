"""Is a run's final-time error a fixed spatial pattern? The diagnostic behind the observation factor.

For each split, the mean over scenarios of ``log(f / mean f) - log(t / mean t)`` at the final
time, on fluid cells where the truth is above ``--threshold`` times its mean (the room's
background and plume, not the cells the plume has not reached): a map of where the
forecast is too rich (> 0) or too lean for its amount. Prints how alike the splits' maps
are (correlation over cells), and what the train map alone would buy on the other splits
if the forecasts were divided by ``exp(map)`` and rescaled to their own mass (a post-hoc
check fitted on train only, not a model): median final-time Spearman and relative L2
before -> after. ``--png`` draws the maps.

    .venv/bin/python scripts/background_bias.py runs/layered-xq --data data/paper-room.nc --png docs/img/background-bias.png
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from plumecast.evaluate import EvaluationError, evaluate_run
from plumecast.io.dataset import DatasetError, read_dataset
from plumecast.metrics import relative_l2, spearman

SPLITS = ("train", "test", "ood")


def bias_map(forecast: np.ndarray, truth: np.ndarray, fluid: np.ndarray, threshold: float) -> np.ndarray:
    """Mean log-ratio map over scenarios ``(n, ny, nx)`` of final fields (0 where no scenario counts)."""
    m = fluid > 0
    total, count = np.zeros(fluid.shape), np.zeros(fluid.shape)
    for f, t in zip(forecast, truth):
        ok = m & (t > threshold * t[m].mean()) & (f > 0)
        ratio = np.log(f[ok] / f[m].mean()) - np.log(t[ok] / t[m].mean())
        total[ok] += ratio
        count[ok] += 1
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)


def corrected(forecast: np.ndarray, fluid: np.ndarray, pattern: np.ndarray) -> np.ndarray:
    """``forecast / exp(pattern)``, rescaled to the forecast's own mass on the fluid."""
    m = fluid > 0
    out = forecast * np.exp(-pattern)
    return out * forecast[m].sum() / out[m].sum()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="run directory")
    parser.add_argument("--data", required=True, help="the dataset the run is judged on")
    parser.add_argument("--threshold", type=float, default=0.2, help="cells above this times the truth's mean count")
    parser.add_argument("--png", help="draw the maps of the three splits here")
    args = parser.parse_args()
    try:
        ds = read_dataset(args.data)
        finals = {}
        for split in SPLITS:
            ev = evaluate_run(args.run, ds, split)
            finals[split] = (np.asarray(ev.forecast[:, -1], float), np.asarray(ev.truth[:, -1], float))
    except (DatasetError, EvaluationError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    fluid = np.asarray(ev.fluid)
    m = fluid > 0
    maps = {s: bias_map(*finals[s], fluid, args.threshold) for s in SPLITS}
    for a, b in (("train", "test"), ("train", "ood"), ("test", "ood")):
        print(f"correlation of the {a} and {b} maps over fluid cells: {np.corrcoef(maps[a][m], maps[b][m])[0, 1]:.2f}")
    print("split  Spearman before -> after the train map   rel. L2 before -> after (medians, final time)")
    for split in ("test", "ood"):
        f, t = finals[split]
        fixed = [corrected(a, fluid, maps["train"]) for a in f]
        sp0, sp1 = (np.median([spearman(a, b, fluid) for a, b in zip(x, t)]) for x in (f, fixed))
        l0, l1 = (np.median([relative_l2(a, b, fluid) for a, b in zip(x, t)]) for x in (f, fixed))
        print(f"{split:5s}  {sp0:.4f} -> {sp1:.4f}   {l0:.4f} -> {l1:.4f}")
    if args.png:
        from plumecast.plot import plt, save_figure

        fig, axes = plt.subplots(1, 3, figsize=(18, 3.8))
        top = max(float(np.abs(maps[s][m]).max()) for s in SPLITS) or 1.0
        x, y = np.asarray(ev.x), np.asarray(ev.y)
        hx, hy = (x[1] - x[0]) / 2, (y[1] - y[0]) / 2
        extent = (x[0] - hx, x[-1] + hx, y[0] - hy, y[-1] + hy)
        for ax, split in zip(axes, SPLITS):
            im = ax.imshow(np.ma.masked_where(~m, maps[split]), origin="lower", cmap="RdBu_r", vmin=-top, vmax=top,
                           extent=extent)
            ax.set_title(f"{split}: mean log(f / t), each over its mean")
            ax.set_xlabel("x (m)")
            ax.set_ylabel("y (m)")
            fig.colorbar(im, ax=ax)
        save_figure(fig, args.png)
        print(f"wrote {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
