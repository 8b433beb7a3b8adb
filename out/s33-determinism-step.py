"""Session 33: where training stops being bit-reproducible. The first window's update of the main job's
plane physics (quick preset, seed 0) on one training scenario at a time, 12 times each with identical inputs in
one process; prints each repeat's largest parameter difference from the first.
usage: .venv/bin/python out/s33-determinism-step.py   (repository root; data/paper-room.nc)
"""
import numpy as np, jax, jax.numpy as jnp, equinox as eqx
from plumecast.evaluate import read_data
from plumecast.forcing import prepare_data
from plumecast.train.config import preset_config
from plumecast.train.system import build_system, system_spec
from plumecast.train.windows import window_plan
ds = read_data("data/paper-room.nc")
cfg = preset_config("quick", variant="physics").replace(observation_log_max=1.0, observation_spacing_cells=12, loss="field+root")
prep = prepare_data(ds, cfg.physics.dt_s, cfg.physics.dtype)
plan = window_plan(cfg.schedule, prep, cfg.physics.dt_s)
system = build_system(ds, cfg, prep)
params, static = eqx.partition(system, system_spec(system))
conc_n = prep.conc / system[0].config.c_ref
model0 = system[0]

from plumecast.train.loop import make_optimizer, train_rollout, train_data, train_rows
opt0 = make_optimizer(cfg.schedule).init(params)
data = train_data(prep, conc_n, prep.indices("train"), plan, model0.config.jdtype)
for s in [0, 13, 21, 50, 11, 15]:
    rows = train_rows(prep.indices("train"), np.array([s]))
    outs = []
    for _ in range(12):
        p2, o2, *_ = train_rollout(params, static, opt0, (), data, rows, jnp.asarray(1, jnp.int32), cfg.schedule, cfg.objective,
                                   prep.steps_per_snapshot, None, None)
        outs.append([np.asarray(l).copy() for l in jax.tree.leaves(p2)])
    print("scenario", s, prep.names[s], [max(float(np.abs(a - b).max()) for a, b in zip(outs[0], o)) for o in outs][1:])
print([l.shape for l in jax.tree.leaves(params)])
