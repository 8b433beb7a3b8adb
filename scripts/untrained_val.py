"""Val scores of untrained physics: which physics settings start closest to the truth.

Builds the untrained system of a variant (default ``column``) for each ``--try`` of
settings on top of the quick preset and the ``--set`` ones, and prints the val score a
run would start from (its "epoch 0": the median final-time relative L2 over the val
scenarios, ``train/select.py``). No training, no test or OOD figure: a cheap look at
physics options before a run is spent on them, chosen on val like everything else.

    .venv/bin/python scripts/untrained_val.py data/paper-room-wide-of.nc \
        --set observation_log_max=1.0 --set observation_spacing_cells=12 \
        --try advection=upwind --try advection=tvd --try advection=tvd,column_advection=upwind

``column_advection`` (diagnosis only) gives the column's off-plane levels another scheme
than the plane's.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from plumecast.evaluate import read_data
from plumecast.forcing import prepare_data
from plumecast.train.config import parse_overrides, preset_config
from plumecast.train.select import VAL_SPLIT, val_score
from plumecast.train.system import build_system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("--variant", default="column")
    parser.add_argument("--set", dest="sets", action="append", default=[], help="KEY=VALUE for every try")
    parser.add_argument("--try", dest="tries", action="append", default=[], help="KEY=VALUE[,KEY=VALUE...]")
    args = parser.parse_args()
    try:
        base = parse_overrides(args.sets)
        tries = [(text, parse_overrides(filter(None, text.split(",")))) for text in args.tries or [""]]
    except ValueError as e:
        raise SystemExit(str(e)) from None
    ds = read_data(args.data)
    prepared = {}  # (dt, dtype) -> the data prepared for them, once
    for text, changes in tries:
        settings = {**base, **changes}
        column_advection = settings.pop("column_advection", None)
        config = preset_config("quick", variant=args.variant, **settings)
        step = (config.physics.dt_s, config.physics.dtype)
        if step not in prepared:
            prepared[step] = prepare_data(ds, *step)
        prep = prepared[step]
        model, closure = build_system(ds, config, prep)
        if column_advection is not None:
            column = closure.layer()
            if column is None or not hasattr(column, "advection"):
                raise SystemExit("column_advection needs a variant with the column")
            closure = dataclasses.replace(closure, reservoir=dataclasses.replace(column, advection=column_advection))
        start = time.perf_counter()
        score = val_score((model, closure), prep, prep.indices(VAL_SPLIT))
        print(f"{text or '(base)':45s} val {score:.4f}  ({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
