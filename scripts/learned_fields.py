"""What trained runs learned: medians of their learned fields, the exchange rate at the ceiling inlets, a picture.

For each run: the medians over fluid cells of the diffusivity, the plane-room exchange rate
and, with an off-plane layer, its capture share, return rate and spreading; then, for each
ceiling inlet (``face = "z+"``) of the dataset's room, the largest exchange rate within
``--radius`` metres of the inlet's centre, beside the share of all fluid cells whose rate
is above ``--threshold``. With ``--png`` the first run's maps are drawn
(:func:`plumecast.plot.learned_fields_picture`, the picture of every evaluation report).

    .venv/bin/python scripts/learned_fields.py runs/layered-x runs/physics-x --data data/paper-room.nc --png docs/img/learned-fields-layered.png
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from plumecast.io.dataset import DatasetError, read_dataset
from plumecast.plot import learned_fields, learned_fields_picture
from plumecast.train import TrainError, load_run


def ceiling_inlets(ds) -> list[tuple[str, float, float]]:
    """``(name, x, y)`` centres of the room's ceiling inlets from the dataset's scenario config."""
    try:
        room = json.loads(ds.attrs.get("scenario_config", "{}")).get("room", {})
    except (TypeError, ValueError):
        return []
    out = []
    for inlet in room.get("inlets", []):
        if inlet.get("face") == "z+":
            x0, x1, y0, y1 = inlet["rect_m"]
            out.append((inlet.get("name", "inlet"), 0.5 * (x0 + x1), 0.5 * (y0 + y1)))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--data", required=True, help="the dataset the runs were trained on (for the inlets)")
    parser.add_argument("--radius", type=float, default=1.0, help="metres around an inlet's centre")
    parser.add_argument("--threshold", type=float, default=0.01, help="exchange rate, 1/s")
    parser.add_argument("--png", help="draw the first run's learned fields here")
    args = parser.parse_args(argv)
    try:
        ds = read_dataset(args.data)
        systems = [load_run(run)[0] for run in args.runs]
    except (DatasetError, TrainError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    inlets = ceiling_inlets(ds)
    for run, (model, closure) in zip(args.runs, systems):
        c = model.config
        fluid = np.asarray(model.fluid) > 0
        fields = learned_fields(model, closure)
        print(f"{run}: " + ", ".join(f"median {title} {np.median(field[fluid]):.3g}" for title, field in fields.items()))
        lam = fields["exchange rate lambda (1/s)"]
        yy, xx = np.meshgrid(c.y0 + c.dy * np.arange(c.ny), c.x0 + c.dx * np.arange(c.nx), indexing="ij")
        near = [float(lam[fluid & (np.hypot(xx - x, yy - y) <= args.radius)].max(initial=0.0)) for _, x, y in inlets]
        print(f"  largest exchange rate within {args.radius:g} m of each ceiling inlet: "
              + ", ".join(f"{name} {v:.3g}" for (name, _, _), v in zip(inlets, near))
              + f"; cells above {args.threshold:g} /s: {100 * float(np.mean(lam[fluid] > args.threshold)):.0f}% of the plane")
    if args.png:
        learned_fields_picture(*systems[0], args.png)
        print(f"wrote {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
