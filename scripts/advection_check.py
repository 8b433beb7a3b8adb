"""Untrained physics side by side: upwind against TVD advection, sampled flow against the summed fluxes.

    .venv/bin/python scripts/advection_check.py data/paper-room-of.nc data/l-office-of.nc data/paper-room.nc
    .venv/bin/python scripts/advection_check.py data/l-office-of.nc --variants column --schemes upwind \
        --flows sampled,fluxes

For each dataset, each variant of ``--variants`` (default ``physics,column``), each
advection scheme of ``--schemes`` and each flow of ``--flows`` (``GridConfig.flow``;
default ``auto``), the untrained system (diffusivity nu_t / Sc_t, no learning) is built and
every scenario is forecast from t = 0; printed: the median final-time relative L2 per
split and the median ratio of upwind's numerical diffusivity ``|u| dx / 2`` to the
physical ``nu_t / Sc_t`` on the plane. Nothing is trained, so nothing is chosen here.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", nargs="+")
    ap.add_argument("--variants", default="physics,column")
    ap.add_argument("--substeps", type=int, default=4)
    ap.add_argument("--schemes", default="upwind,tvd")
    ap.add_argument("--flows", default="auto", help="comma-separated: auto, sampled, fluxes")
    args = ap.parse_args()

    from plumecast.forcing import prepare_data
    from plumecast.forecast import final_time_errors
    from plumecast.io.dataset import SPLITS, read_dataset
    from plumecast.train import TrainConfig, build_system
    from plumecast.train.config import PhysicsSettings

    print("| data | variant | flow | advection | substeps | " + " | ".join(SPLITS) + " | forecast s |")
    print("|---|---|---|---|---|" + "---|" * (len(SPLITS) + 1))
    for path in args.data:
        ds = read_dataset(path)
        fluid = ds["fluid"].values == 1
        speed = np.hypot(ds["u"].values, ds["v"].values)[fluid]
        ratio = np.median(speed * float(ds.attrs["dx_m"]) / 2 / np.maximum(ds["nu_t"].values[fluid] / 0.7, 1e-12))
        runs = [(v, f, a) for v in args.variants.split(",") for f in args.flows.split(",") for a in args.schemes.split(",")]
        for variant, flow, scheme in runs:
            physics = dataclasses.replace(PhysicsSettings(), advection=scheme, substeps=args.substeps, flow=flow)
            cfg = TrainConfig(variant=variant, physics=physics)
            prep = prepare_data(ds, physics.dt_s)
            try:
                system = build_system(ds, cfg, prep)
            except Exception as e:  # noqa: BLE001 - a stability error is a result here
                print(f"| {path} | {variant} | {flow} | {scheme} | {args.substeps} | {type(e).__name__}: {e} |")
                continue
            prep = prepare_data(ds, system[0].config.dt, system[0].config.dtype, fluid=np.asarray(system[0].fluid))
            cells = []
            t0 = time.perf_counter()
            for split in SPLITS:
                idx = prep.indices(split)
                cells.append(f"{np.median(final_time_errors(system, prep, idx)):.3f}" if idx.size else "-")
            print(f"| {path} | {variant} | {system[0].config.flow} | {scheme} | {args.substeps} | " + " | ".join(cells)
                  + f" | {time.perf_counter() - t0:.1f} |", flush=True)
        print(f"({path}: median numerical / physical diffusivity of upwind on the plane {ratio:.2f})", flush=True)


if __name__ == "__main__":
    main()
