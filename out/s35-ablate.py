"""Session 35: which learned parameters make the trained column worse than its untrained start for sources at the plane?

Val and train only (test, OOD and the fresh set are not read). For each run: its untrained
start (build_system, the run's own seed and config) and its val pick; then, per group of
learned arrays, the pick with that group reset to its untrained value ("reset G") and
the start with only that group trained ("only G"). Prints the median final-time relative
L2 per split and source height class.
    .venv/bin/python out/s35-ablate.py runs/v24-column-s0 ...
"""
import sys
from pathlib import Path

import equinox as eqx
import numpy as np

sys.path.insert(0, "scripts")
from height_table import height_class  # noqa: E402

from plumecast.forcing import prepare_data  # noqa: E402
from plumecast.forecast import forecast_scenarios  # noqa: E402
from plumecast.io.dataset import read_dataset  # noqa: E402
from plumecast.metrics import relative_l2  # noqa: E402
from plumecast.train.system import build_system, load_run  # noqa: E402

ds = read_dataset("data/paper-room.nc")
split = ds["split"].values
keep = np.flatnonzero(np.isin(split, ["train", "val"]))
plane = float(ds.attrs["plane_height_m"])
cls = np.array([height_class(float(z), plane, 0.15) for z in ds["source_z"].values[:, 0]])  # scripts/height_table.py's default --band


def groups(system):
    """{name: getter} of the learned arrays that a run changes, grouped by field name."""
    model, closure = system
    g = {"plane diffusivity (theta_x, theta_y)": lambda s: (s[0].theta_x, s[0].theta_y),
         "plane exchange (theta_exchange)": lambda s: s[0].theta_exchange,
         "source net": lambda s: s[0].source_net}
    if model.theta_observation is not None:
        g["observation factor"] = lambda s: s[0].theta_observation
    col = closure.layer() if closure is not None else None
    for name in ("theta_hx", "theta_hy", "theta_vertical", "theta_sink"):
        if col is not None and hasattr(col, name):
            g[f"column {name}"] = (lambda n: lambda s: getattr(s[1].layer(), n))(name)
    return g


def score(system, prep):
    final = forecast_scenarios(system, prep, keep, final_only=True)
    fluid = np.asarray(system[0].fluid)
    err = np.array([relative_l2(final[i], prep.conc[k, -1], fluid) for i, k in enumerate(keep)])
    out = {}
    for sp in ("train", "val"):
        for c in ("all", "below", "at", "above"):
            m = (split[keep] == sp) & ((cls[keep] == c) | (c == "all"))
            out[f"{sp} {c}"] = float(np.median(err[m]))
    return out


for run in map(Path, sys.argv[1:]):
    trained, config, _ = load_run(run)
    prep = prepare_data(ds, trained[0].config.dt, trained[0].config.dtype)
    start = build_system(ds, config, prep)  # the run's own start: its seed, or its --init-from run
    rows = {"untrained start": score(start, prep), "val pick": score(trained, prep)}
    for name, get in groups(trained).items():
        try:
            rows[f"reset {name}"] = score(eqx.tree_at(get, trained, get(start)), prep)
            rows[f"only {name}"] = score(eqx.tree_at(get, start, get(trained)), prep)
        except (AttributeError, ValueError, TypeError) as e:
            print(f"{run.name}: {name}: {e}", file=sys.stderr)
    keys = list(next(iter(rows.values())))
    print(f"\n{run.name}\n\n| system | " + " | ".join(keys) + " |\n|---|" + "---|" * len(keys))
    for name, r in rows.items():
        print(f"| {name} | " + " | ".join(f"{r[k]:.3f}" for k in keys) + " |")
    sys.stdout.flush()
