"""Data-parallel training: a step with the batch split over two CPU devices equals the one-device step.

JAX fixes its device count when it first initialises, which the pytest process has already
done, so the checks run in a fresh Python process with two host devices forced through
``XLA_FLAGS`` before JAX is imported there.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

SCRIPT = r"""
import json, sys
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, sys.argv[1])
from _coarse_helpers import synthetic_dataset
from plumecast.forcing import prepare_data
from plumecast.train import TrainConfig, build_system, train
from plumecast.train.loop import _replicate, _sharded_rows, batch_mesh, make_optimizer, train_data, train_rollout, train_rows
from plumecast.train.system import system_spec
from plumecast.train.windows import window_plan

out = {"devices": len(jax.devices())}
assert batch_mesh(jax.devices()[:1]) is None  # one device: no mesh, the unchanged path
ds = synthetic_dataset(n_train=4, n_test=1, n_ood=1, horizon_s=8.0, decay=0.05)
cfg = TrainConfig().replace(window_s=4.0, curriculum_s=(8.0,), epochs=(1,), batch_size=4, learning_rate=5e-2,
                            clip_norm=1.0, smoothness=1e-3, weight_decay=1e-6, variant="layered")
prep = prepare_data(ds, cfg.physics.dt_s, cfg.physics.dtype)
plan = window_plan(cfg.schedule, prep, cfg.physics.dt_s)
system = build_system(ds, cfg, prep)
params, static = eqx.partition(system, system_spec(system))
opt = make_optimizer(cfg.schedule).init(params)
train_idx = prep.indices("train")
conc_n = prep.conc / system[0].config.c_ref
data = train_data(prep, conc_n, train_idx, plan, system[0].config.jdtype)
memory0 = system[1].init_memory() if system[1] is not None else ()
settings = (cfg.schedule, cfg.objective, prep.steps_per_snapshot)
mesh = batch_mesh()


def step(batch, sharded):
    rows = train_rows(train_idx, train_idx[batch])
    if not sharded:
        return train_rollout(params, static, opt, memory0, data, rows, jnp.asarray(2), *settings)
    rows, weights, sharding = _sharded_rows(rows, mesh)
    p, o, m, d = _replicate((params, opt, memory0, data), mesh)
    res = train_rollout(p, static, o, m, d, rows, jnp.asarray(2), *settings, weights, sharding)
    out.setdefault("rows", []).append(int(rows.shape[0]))
    out.setdefault("row_devices", []).append(len(rows.sharding.device_set))
    return res


def gap(a, b):
    worst = 0.0
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        x, y = np.asarray(x, float), np.asarray(y, float)
        worst = max(worst, float(np.max(np.abs(x - y) / (np.abs(y) + 1e-6))) if x.size else 0.0)
    return worst


for name, batch in (("even", [0, 1, 2, 3]), ("odd", [0, 1, 2])):
    ref = step(batch, False)
    got = step(batch, True)
    out[name] = {"params": gap(got[0], ref[0]), "opt": gap(got[1], ref[1]), "loss": gap(got[2], ref[2]),
                 "ran": np.asarray(got[4]).tolist(), "ok": np.asarray(got[3]).tolist(),
                 "changed": gap(got[0], params)}

# A whole run through train(): two devices against one, batches of 3 (padded to 4).
cfg3 = cfg.replace(batch_size=3, epochs=(2,))
runs = {}
for label, devs in (("one", jax.devices()[:1]), ("two", jax.devices())):
    msgs = []
    r = train(ds, f"{sys.argv[2]}/{label}", cfg3, progress=False, evaluate=False, log=msgs.append, devices=devs)
    runs[label] = (r, msgs)
out["train"] = {"params": gap(eqx.filter(runs["two"][0].system, eqx.is_array), eqx.filter(runs["one"][0].system, eqx.is_array)),
                "loss": gap([h["loss"] for h in runs["two"][0].history], [h["loss"] for h in runs["one"][0].history]),
                "said": [m for m in runs["two"][1] if "data parallel" in m],
                "one_said": [m for m in runs["one"][1] if "data parallel" in m]}
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def two_devices(tmp_path_factory):
    env = {**os.environ, "XLA_FLAGS": (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip(),
           "JAX_PLATFORMS": "cpu"}
    tmp = tmp_path_factory.mktemp("sharding")
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(HERE), str(tmp)], env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def test_two_host_devices_are_forced(two_devices):
    assert two_devices["devices"] == 2


def test_sharded_step_equals_unsharded(two_devices):
    r = two_devices["even"]
    assert r["ran"] == [True, True] and r["ok"] == [True, True]
    assert r["changed"] > 1e-4  # the step moved the parameters: the comparison below is not vacuous
    assert r["params"] < 1e-5 and r["opt"] < 1e-5 and r["loss"] < 1e-5, r
    assert two_devices["rows"][0] == 4 and two_devices["row_devices"][0] == 2  # the rows were split over both


def test_odd_batch_is_padded_with_zero_weight_rows(two_devices):
    r = two_devices["odd"]
    assert two_devices["rows"][1] == 4  # 3 rows padded to 4
    assert r["changed"] > 1e-4
    assert r["params"] < 1e-5 and r["opt"] < 1e-5 and r["loss"] < 1e-5, r


def test_train_on_two_devices_equals_one(two_devices):
    t = two_devices["train"]
    assert t["params"] < 1e-4 and t["loss"] < 1e-4, t
    assert len(t["said"]) == 1 and "padded to 4" in t["said"][0]
    assert t["one_said"] == []
