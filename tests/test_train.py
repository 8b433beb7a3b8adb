"""The training engine, checkpoints and the train/forecast commands, on tiny synthetic data."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

from plumecast.cli import app
from plumecast.forcing import prepare_data
from plumecast.io.checkpoint import (key_from_json, key_to_json, latest_checkpoint, load_checkpoint, save_checkpoint,
                                     write_json_atomic)
from plumecast.io.dataset import read_dataset, write_dataset
from plumecast.train import TrainConfig, TrainError, build_system, load_run, train
from plumecast.train.loop import make_optimizer, set_learning_rate, train_step, train_step_traces
from plumecast.train.system import system_spec

from _coarse_helpers import synthetic_dataset

TINY = dict(window_s=4.0, curriculum_s=(4.0, 8.0), epochs=(3, 2), batch_size=2, learning_rate=5e-2, clip_norm=1.0,
            smoothness=1e-3, weight_decay=1e-6)


def tiny(**changes) -> TrainConfig:
    """The tiny training config with ``changes`` (any field name of the config or its settings)."""
    return TrainConfig().replace(**{**TINY, **changes})


def _same_parameters(a, b):
    """The array leaves of ``a`` and ``b`` (any pytrees of models) are equal, bit for bit, and as many."""
    xs, ys = (jax.tree.leaves(eqx.filter(t, eqx.is_array)) for t in (a, b))
    assert len(xs) == len(ys)
    for x, y in zip(xs, ys):
        np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def ds():
    return synthetic_dataset(n_train=3, n_test=2, n_ood=1, horizon_s=8.0, decay=0.05)


def test_training_learns_without_recompiling(ds, tmp_path):
    cfg = tiny()
    result = train(ds, tmp_path / "run", cfg, progress=False, log=lambda m: None)
    assert result.completed and result.trace_count <= 1  # one compile at most for all windows and phases
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < losses[0]
    s = result.summary
    for split in ("train", "test"):
        assert s["trained"][split]["median"] < 0.9 * s["untrained"][split]["median"]
    assert set(s["trained"]) == {"train", "test", "ood"}
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert TrainConfig.from_json(saved["train"]) == cfg
    # The trained model loads back from its checkpoint, identical.
    system, config, _ = load_run(tmp_path / "run")
    assert config == cfg
    _same_parameters(system, result.system)


@pytest.mark.parametrize("lr_decay, average_decay", [("constant", 0.0), ("cosine", 0.0), ("cosine", 0.7)])
def test_interrupted_then_resumed_equals_uninterrupted(ds, tmp_path, lr_decay, average_decay):
    cfg = tiny(epochs=(2, 2), lr_decay=lr_decay, average_decay=average_decay)
    full = train(ds, tmp_path / "full", cfg, progress=False, evaluate=False, log=lambda m: None)
    part = train(ds, tmp_path / "part", cfg, progress=False, evaluate=False, stop_after_epochs=3, log=lambda m: None)
    assert not part.completed
    with pytest.raises(TrainError, match="already holds a run"):
        train(ds, tmp_path / "part", cfg, progress=False, evaluate=False, log=lambda m: None)
    resumed = train(ds, tmp_path / "part", None, resume=True, progress=False, evaluate=False, log=lambda m: None)
    assert resumed.completed
    _same_parameters(full.system, resumed.system)
    assert [h["loss"] for h in full.history] == [h["loss"] for h in resumed.history]


def test_non_finite_loss_keeps_last_good_state(ds):
    cfg = tiny()
    prep = prepare_data(ds, cfg.physics.dt_s)
    system = build_system(ds, cfg, prep)
    params, static = eqx.partition(system, system_spec(system))
    opt_state = make_optimizer(cfg.schedule).init(params)
    settings = (cfg.schedule, cfg.objective, prep.steps_per_snapshot)

    def step(*args):
        return train_step(*args, *settings)

    idx = np.array([0, 1])
    carry = (jnp.asarray(prep.conc[idx, 0], jnp.float32), ((), ()))
    carry = (carry[0], ())
    f = jax.tree.map(lambda a: jnp.asarray(a[idx, :10]), prep.forcing)
    targets = jnp.asarray(prep.conc[idx, 1:3] / system[0].config.c_ref, jnp.float32)
    p1, o1, c1, loss, ok = step(params, static, opt_state, carry, f, targets)
    traces = train_step_traces()
    assert bool(ok) and np.isfinite(float(loss))
    assert not np.array_equal(p1[0].theta_x, params[0].theta_x)
    bad = targets.at[0, 0, 3, 3].set(jnp.nan)
    p2, o2, _, loss, ok = step(p1, static, o1, c1, f, bad)
    assert not bool(ok) and not np.isfinite(float(loss))
    for a, b in zip(jax.tree.leaves((p2, o2)), jax.tree.leaves((p1, o1))):
        np.testing.assert_array_equal(a, b)
    # Other windows (new data, carry and parameters) reuse the same compiled step.
    f2 = jax.tree.map(lambda a: jnp.asarray(a[idx, 10:20]), prep.forcing)
    step(p2, static, o2, c1, f2, targets * 2)
    assert train_step_traces() == traces


def _diverging_above(monkeypatch, rate: float):
    """Every training step of a learning rate above ``rate`` comes out not finite (a model of a diverging run).

    The rate is a static argument of the jitted rollout, so each rate is traced with this
    step; tests use rates no other test uses, so no trace made without it is reused.
    """
    from plumecast.train import loop

    real = loop.window_update

    def update(params, static, opt_state, carry, forcing, targets, schedule, *args):
        out = real(params, static, opt_state, carry, forcing, targets, schedule, *args)
        if schedule.learning_rate <= rate:
            return out
        return params, opt_state, out[2], jnp.full_like(out[3], jnp.nan), jnp.zeros_like(out[4])

    monkeypatch.setattr(loop, "window_update", update)


def test_a_diverging_epoch_goes_back_to_its_start_at_half_the_rate(ds, tmp_path, monkeypatch):
    """Diverged in epoch 1 at 0.0634, the run equals one started at 0.0317; resumed after the rollback, the same."""
    _diverging_above(monkeypatch, 0.05)
    said = []
    cfg = tiny(learning_rate=0.0634, epochs=(2, 2))
    rolled = train(ds, tmp_path / "rolled", cfg, progress=False, log=said.append)
    assert rolled.completed and rolled.summary["rollbacks"] == [{"epoch": 1, "phase": 0, "learning_rate": 0.0317}]
    assert any("epoch 1 diverged" in m and "0.0317" in m for m in said)
    plain = train(ds, tmp_path / "plain", tiny(learning_rate=0.0317, epochs=(2, 2)), progress=False, evaluate=False,
                  log=lambda m: None)
    _same_parameters(rolled.last_system, plain.last_system)
    assert [h["loss"] for h in rolled.history] == [h["loss"] for h in plain.history]
    # Interrupted after the rollback, resumed: the halved rate is kept (the full one would diverge again).
    part = train(ds, tmp_path / "part", cfg, progress=False, evaluate=False, stop_after_epochs=2, log=lambda m: None)
    assert not part.completed
    resumed = train(ds, tmp_path / "part", None, resume=True, progress=False, log=lambda m: None)
    assert resumed.summary["rollbacks"] == rolled.summary["rollbacks"]
    _same_parameters(resumed.last_system, rolled.last_system)


def test_a_run_that_keeps_diverging_stops_with_a_clear_error(ds, tmp_path, monkeypatch):
    _diverging_above(monkeypatch, 0.001)
    with pytest.raises(TrainError, match=r"diverged: epoch 1 .* after 2 rollback\(s\) .* \(now 0\.0159\)"):
        train(ds, tmp_path / "run", tiny(learning_rate=0.0636, rollbacks=2), progress=False, log=lambda m: None)
    assert not (tmp_path / "run" / "summary.json").exists()
    # Without rollbacks the steps are only skipped, as before: the run ends with its start parameters.
    kept = train(ds, tmp_path / "kept", tiny(learning_rate=0.0638, rollbacks=0), progress=False, evaluate=False,
                 log=lambda m: None)
    start = build_system(ds, tiny(), prepare_data(ds, tiny().physics.dt_s))
    _same_parameters(kept.last_system, start)


def test_an_epoch_whose_val_forecast_breaks_goes_back_at_half_the_rate(ds_val, tmp_path, monkeypatch):
    """Val finite before epoch 1 and not after it: rolled back, the run equals one started at half the rate."""
    from plumecast.train import loop

    real, calls = loop.val_score, []

    def score(*args):  # the second score (epoch 1's model, first try) comes out not finite
        calls.append(1)
        return float("inf") if len(calls) == 2 else real(*args)

    monkeypatch.setattr(loop, "val_score", score)
    said = []
    rolled = train(ds_val, tmp_path / "rolled", tiny(learning_rate=0.0512, epochs=(2, 1)), progress=False,
                   log=said.append)
    assert rolled.summary["rollbacks"] == [{"epoch": 1, "phase": 0, "learning_rate": 0.0256}]
    assert any("epoch 1 diverged" in m and "its val forecast not finite" in m for m in said)
    assert all(np.isfinite(v["val"]) for v in rolled.val_curve) and len(rolled.val_curve) == 4
    monkeypatch.setattr(loop, "val_score", real)
    plain = train(ds_val, tmp_path / "plain", tiny(learning_rate=0.0256, epochs=(2, 1)), progress=False,
                  evaluate=False, log=lambda m: None)
    _same_parameters(rolled.last_system, plain.last_system)
    assert rolled.val_curve == plain.val_curve


def test_a_failing_last_step_rolls_back_only_without_val(ds, ds_val, tmp_path, monkeypatch):
    """Epoch 1's last step reported not finite: with val the score after it judges (finite: no rollback)."""
    from plumecast.train import loop

    real = loop.epoch_fused
    monkeypatch.setattr(loop, "DIVERGED_SHARE", 1.0)  # one failing step of two is not a share that diverges

    def epoch(params, static, opt_state, batches, *args, on_batch, **kw):
        first = not epoch.seen
        epoch.seen = True

        def report(b, losses, bad_k):
            on_batch(b, losses, 0 if first and b + 1 == len(batches) else bad_k)

        return real(params, static, opt_state, batches, *args, on_batch=report, **kw)

    for data, rollbacks in ((ds_val, []), (ds, [{"epoch": 1, "phase": 0, "learning_rate": 0.0257}])):
        epoch.seen = False
        monkeypatch.setattr(loop, "epoch_fused", epoch)
        run = train(data, tmp_path / f"run{len(rollbacks)}", tiny(learning_rate=0.0514, epochs=(2, 1)),
                    progress=False, log=lambda m: None)
        assert run.summary["rollbacks"] == rollbacks


def test_cosine_decay_sets_each_epochs_rate_in_the_optimiser_state(ds, tmp_path):
    sched = tiny(lr_decay="cosine", lr_final_share=0.1).schedule
    rates = [sched.epoch_learning_rate(e, 5) for e in range(5)]
    assert rates[0] == pytest.approx(sched.learning_rate) and rates[-1] == pytest.approx(0.1 * sched.learning_rate)
    assert all(a > b for a, b in zip(rates, rates[1:]))
    assert tiny().schedule.epoch_learning_rate(3, 5) == tiny().schedule.learning_rate  # constant: no decay
    # The step uses the rate held in the state: 0 leaves the parameters, the constant optimiser's rate
    # gives its update exactly.
    cfg = tiny(lr_decay="cosine")
    prep = prepare_data(ds, cfg.physics.dt_s)
    system = build_system(ds, cfg, prep)
    params, static = eqx.partition(system, system_spec(system))
    idx = np.array([0, 1])
    carry = (jnp.asarray(prep.conc[idx, 0], jnp.float32), ())
    f = jax.tree.map(lambda a: jnp.asarray(a[idx, :10]), prep.forcing)
    targets = jnp.asarray(prep.conc[idx, 1:3] / system[0].config.c_ref, jnp.float32)

    def moved(schedule, opt_state):
        return train_step(params, static, opt_state, carry, f, targets, schedule, cfg.objective,
                          prep.steps_per_snapshot)[0]

    state = make_optimizer(cfg.schedule).init(params)
    frozen = moved(cfg.schedule, set_learning_rate(state, 0.0))
    np.testing.assert_array_equal(frozen[0].theta_x, params[0].theta_x)
    half = moved(cfg.schedule, set_learning_rate(state, 0.5 * cfg.schedule.learning_rate))
    constant = tiny(learning_rate=0.5 * cfg.schedule.learning_rate).schedule
    reference = moved(constant, make_optimizer(constant).init(params))
    assert not np.array_equal(half[0].theta_x, params[0].theta_x)
    np.testing.assert_allclose(half[0].theta_x, reference[0].theta_x, rtol=1e-6, atol=1e-7)
    # A whole run leaves the rate of its last epoch (the last phase's final share) in its checkpoint.
    run = train(ds, tmp_path / "run", cfg, progress=False, evaluate=False, log=lambda m: None)
    assert run.completed
    _, saved_state, _ = load_checkpoint(latest_checkpoint(tmp_path / "run"), system_like=system, opt_state_like=state)
    last = cfg.schedule.epoch_learning_rate(cfg.schedule.epochs[-1] - 1, cfg.schedule.epochs[-1])
    assert last == pytest.approx(cfg.schedule.lr_final_share * cfg.schedule.learning_rate)
    assert float(saved_state[1].hyperparams["learning_rate"]) == pytest.approx(last)


def test_parameter_average_is_the_debiased_exponential_average_of_the_iterates():
    from plumecast.train.optim import averaged_parameters

    sched = tiny(average_decay=0.6, learning_rate=0.1).schedule
    params = {"a": jnp.asarray([1.0, -2.0]), "b": jnp.asarray(3.0)}
    opt = make_optimizer(sched)
    state = opt.init(params)
    assert averaged_parameters(params, state, sched) is params  # no update yet: the parameters themselves
    iterates = []
    for k in range(4):
        grads = jax.tree.map(lambda p: jnp.sin(p + k), params)
        updates, state = opt.update(grads, state, params)
        params = eqx.apply_updates(params, updates)
        iterates.append(params)
    d, n = 0.6, len(iterates)
    weights = np.asarray([(1 - d) * d ** (n - 1 - k) for k in range(n)]) / (1 - d**n)
    assert weights.sum() == pytest.approx(1.0)
    averaged = averaged_parameters(params, state, sched)
    for key in params:
        expected = sum(w * np.asarray(p[key]) for w, p in zip(weights, iterates))
        np.testing.assert_allclose(averaged[key], expected, rtol=1e-6)
        assert not np.allclose(averaged[key], params[key])  # the average lags the last iterate
    # Without averaging the optimiser holds no average and the parameters are the model's.
    plain = tiny().schedule
    assert averaged_parameters(params, make_optimizer(plain).init(params), plain) is params


def test_an_averaging_run_validates_selects_and_returns_the_average(ds_val, tmp_path):
    """With ``average_decay`` the val curve, the selection and the last model are the parameters' average, and
    ``load_run(model="last")`` gives that average, not the raw parameters of the checkpoint."""
    from plumecast.train.loop import val_score
    from plumecast.train.optim import averaged_parameters

    cfg = tiny(epochs=(2, 1), learning_rate=2e-1, average_decay=0.8)
    result = train(ds_val, tmp_path / "run", cfg, progress=False, evaluate=False, log=lambda m: None)
    prep = prepare_data(ds_val, 0.4)
    curve = [v["val"] for v in result.val_curve]
    assert val_score(result.last_system, prep, prep.indices("val")) == pytest.approx(curve[-1], rel=1e-5)
    assert val_score(result.system, prep, prep.indices("val")) == pytest.approx(min(curve), rel=1e-5)
    skeleton = build_system(ds_val, cfg, prep)
    spec = system_spec(skeleton)
    opt_like = make_optimizer(cfg.schedule).init(eqx.partition(skeleton, spec)[0])
    raw, opt_state, _ = load_checkpoint(latest_checkpoint(tmp_path / "run"), system_like=skeleton, opt_state_like=opt_like)
    params, static = eqx.partition(raw, spec)
    expected = eqx.combine(averaged_parameters(params, opt_state, cfg.schedule), static)
    last, _, _ = load_run(tmp_path / "run", model="last")
    for a, b, c in zip(jax.tree.leaves(eqx.filter(last, eqx.is_array)), jax.tree.leaves(eqx.filter(expected, eqx.is_array)),
                       jax.tree.leaves(eqx.filter(result.last_system, eqx.is_array))):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    assert not np.array_equal(last[0].theta_x, raw[0].theta_x)


def test_checkpoint_files_are_atomic_and_keys_roundtrip(tmp_path):
    key = jax.random.fold_in(jax.random.PRNGKey(3), 7)
    assert np.array_equal(key_from_json(json.loads(json.dumps(key_to_json(key)))), key)
    typed = jax.random.key(5)
    back = key_from_json(json.loads(json.dumps(key_to_json(typed))))
    assert np.array_equal(jax.random.key_data(back), jax.random.key_data(typed))
    tree = {"a": jnp.arange(3.0), "b": jnp.ones((2, 2), jnp.float32)}
    for i in range(4):
        save_checkpoint(tmp_path, i, system=tree, opt_state=(), state={"i": i})
    ckpts = sorted(p.name for p in (tmp_path / "checkpoints").glob("ckpt-*"))
    assert ckpts == ["ckpt-000002", "ckpt-000003"] and latest_checkpoint(tmp_path).name == "ckpt-000003"
    assert not list((tmp_path / "checkpoints").glob(".*tmp*"))
    write_json_atomic(tmp_path / "x.json", {"k": 1})
    assert json.loads((tmp_path / "x.json").read_text()) == {"k": 1}


def test_config_rejects_bad_settings(ds, tmp_path):
    with pytest.raises(TrainError, match="windows"):
        TrainConfig().replace(window_s=60.0, curriculum_s=(90.0,), epochs=(1,))
    with pytest.raises(TrainError, match="unknown variant"):
        TrainConfig(variant="nope")
    with pytest.raises(TrainError, match="exceeds the dataset"):
        train(ds, tmp_path / "r", tiny(curriculum_s=(4.0, 60.0), epochs=(1, 1)), progress=False)
    with pytest.raises(TrainError, match="whole number"):
        train(ds, tmp_path / "r", tiny(window_s=3.0, curriculum_s=(6.0,), epochs=(1,), dt_s=0.4), progress=False)
    assert not (tmp_path / "r" / "checkpoints").exists()
    with pytest.raises(TrainError, match="loss must be one of field, cell, field\\+root"):
        tiny(loss="l1")
    # Every number has a type and a range; unknown names are refused with the known ones.
    for bad, message in ((dict(batch_size=2.5), "batch_size must be a whole number"),
                         (dict(batch_size=True), "batch_size must be a whole number"),
                         (dict(epochs=(1.7, 1)), "epochs must be a whole number"),
                         (dict(smoothness=-5.0), "smoothness must be finite and >= 0"),
                         (dict(weight_decay=float("nan")), "weight_decay must be finite"),
                         (dict(layer_height_m=-2.0), "layer_height_m must be finite and > 0"),
                         (dict(exchange_max_per_s=-1.0), "exchange_max_per_s must be finite and >= 0"),
                         (dict(average_decay=1.0), "average_decay must be"),
                         (dict(seed="x"), "seed must be a whole number"),
                         (dict(remat=True), "unknown training config field")):
        with pytest.raises(TrainError, match=message):
            tiny(**bad)
    with pytest.raises(TrainError, match="unknown options"):
        build_system(ds, tiny(variant="memory", closure_options={"bogus": 1}), prepare_data(ds, 0.4))


def test_snapshot_losses():
    """field: squared relative L2; cell: per-cell relative with a floor; field+root."""
    from plumecast.train.loss import snapshot_loss as _snapshot_loss

    fluid = jnp.asarray([[1.0, 1.0, 1.0, 0.0]])
    target = jnp.asarray([[2.0, 1.0, 0.0, 5.0]])
    q = jnp.asarray([[1.0, 1.0, 1.0, 9.0]])  # errors 1, 0, 1 on fluid; the solid cell is ignored
    field = float(_snapshot_loss("field", 0.1)(q, target, fluid))
    cell = float(_snapshot_loss("cell", 0.1)(q, target, fluid))
    assert field == pytest.approx(2.0 / 5.0)
    scale = 0.1 * 5.0 / 3.0
    assert cell == pytest.approx((1.0 / (4.0 + scale) + 0.0 + 1.0 / scale) / 3.0)
    offset = 0.1 * 3.0 / 3.0  # floor times the mean of the target over the fluid
    root = (np.sqrt(np.array([1.0, 1.0, 1.0]) + offset) - np.sqrt(np.array([2.0, 1.0, 0.0]) + offset)) ** 2
    expected = field + root.sum() / (np.array([2.0, 1.0, 0.0]) + offset).sum()
    assert float(_snapshot_loss("field+root", 0.1)(q, target, fluid)) == pytest.approx(expected)
    logs = (np.log(np.array([1.0, 1.0, 1.0]) + offset) - np.log(np.array([2.0, 1.0, 0.0]) + offset)) ** 2
    assert float(_snapshot_loss("field+log", 0.1)(q, target, fluid)) == pytest.approx(field + logs.mean())
    # a uniform 20 % error costs the log part the same in every cell, however small the truth there
    flat = jnp.asarray([[1.0, 1e-3, 1e-6, 0.0]])
    low_only = float(_snapshot_loss("field+log", 1e-9)(flat.at[0, 2].multiply(1.2), flat, fluid))
    high = flat.at[0, 0].multiply(1.2)
    high_only = float(_snapshot_loss("field+log", 1e-9)(high, flat, fluid))
    assert low_only == pytest.approx(np.log(1.2) ** 2 / 3.0, rel=1e-3)
    high_field = float(_snapshot_loss("field", 1e-9)(high, flat, fluid))
    assert high_only - high_field == pytest.approx(np.log(1.2) ** 2 / 3.0, rel=1e-3)  # the same log part


def test_snapshot_losses_take_their_scale_from_the_window():
    """An empty target frame (a plume that has not reached the plane yet) weighs like any other frame of its window."""
    from plumecast.train.loss import snapshot_loss

    fluid = jnp.ones((1, 3))
    window = jnp.asarray([[[0.0, 0.0, 0.0]], [[2.0, 1.0, 1.0]]])  # frames: empty, then the plume
    p = jnp.asarray([[0.1, 0.0, 0.0]])
    for kind in ("field", "cell", "field+root", "field+log"):
        alone = float(snapshot_loss(kind, 0.1)(p, window[0], fluid))
        scaled = float(snapshot_loss(kind, 0.1)(p, window[0], fluid, window))
        assert alone > 1e6  # per snapshot: unbounded as the frame empties
        assert scaled < 1.0  # over the window: an error of 0.1 against a plume of 2 is small
    field = float(snapshot_loss("field", 0.1)(p, window[0], fluid, window))
    assert field == pytest.approx(0.01 / (6.0 / 2.0))  # sum of squares over the mean sum of squares of the frames


def test_cli_train_and_forecast_end_to_end(ds, tmp_path):
    data = write_dataset(ds, tmp_path / "tiny.nc")
    run = tmp_path / "run"
    runner = CliRunner()
    sets = ["--set", "window_s=4", "--set", "curriculum_s=[4,8]", "--set", "epochs=[1,1]", "--set", "batch_size=2"]
    for k in ("learning_rate", "clip_norm", "smoothness", "weight_decay"):  # reuse the compiled step of TINY
        sets += ["--set", f"{k}={TINY[k]}"]
    r = runner.invoke(app, ["train", str(data), "--variant", "physics", "--out", str(run), "--no-progress", *sets])
    assert r.exit_code == 0, r.output
    assert latest_checkpoint(run) is not None and (run / "summary.json").is_file()
    out = tmp_path / "fc.nc"
    r = runner.invoke(app, ["forecast", str(run), "--data", str(data), "--scenario", "s05", "--out", str(out)])
    assert r.exit_code == 0, r.output
    fc = read_dataset(out)
    assert fc.attrs["generator"] == "plumecast-forecast"
    assert fc.sizes["scenario"] == 1 and fc.sizes["time"] == ds.sizes["time"]
    assert str(fc["split"].values[0]) == "ood"
    np.testing.assert_allclose(fc["source_x"].values[0], ds["source_x"].values[5])
    assert float(fc["concentration"].max()) > 0
    # Resume of a finished run is accepted and changes nothing.
    r = runner.invoke(app, ["train", str(data), "--out", str(run), "--resume", "--no-progress"])
    assert r.exit_code == 0, r.output
    # Bad inputs: a clear error, a non-zero exit, nothing written.
    bad_cases = [
        (["train", str(tmp_path / "missing.nc"), "--out", str(tmp_path / "r1")], "no such file", tmp_path / "r1"),
        (["train", str(data), "--variant", "nope", "--out", str(tmp_path / "r2")], "unknown variant", tmp_path / "r2"),
        (["train", str(data), "--out", str(tmp_path / "r3"), "--set", "epochs=[1]"], "epochs", tmp_path / "r3"),
        (["train", str(data), "--out", str(run)], "already holds a run", None),
        (["train", str(data), "--out", str(tmp_path / "r4"), "--resume"], "no checkpoint", tmp_path / "r4"),
        (["forecast", str(run), "--data", str(data), "--scenario", "zz", "--out", str(tmp_path / "f1.nc")], "no scenario",
         tmp_path / "f1.nc"),
        (["forecast", str(tmp_path), "--data", str(data), "--scenario", "s00", "--out", str(tmp_path / "f2.nc")],
         "not a training run", tmp_path / "f2.nc"),
    ]
    for args, message, must_not_exist in bad_cases:
        r = runner.invoke(app, args)
        assert r.exit_code != 0, args
        assert message in " ".join(r.output.split()), (args, r.output)
        if must_not_exist is not None:
            assert not must_not_exist.exists(), args
    other = synthetic_dataset(n_train=2, n_test=1, n_ood=0, horizon_s=4.0, ny=9, nx=14)
    other_path = write_dataset(other, tmp_path / "other.nc")
    r = runner.invoke(app, ["forecast", str(run), "--data", str(other_path), "--scenario", "s00", "--out", str(tmp_path / "f3.nc")])
    assert r.exit_code != 0 and "grid mismatch" in r.output and not (tmp_path / "f3.nc").exists()


def test_init_from_starts_with_the_trained_coarse_model(ds, tmp_path):
    cfg = tiny(epochs=(1, 1))
    first = train(ds, tmp_path / "physics", cfg, progress=False, evaluate=False, log=lambda m: None)
    warm = cfg.replace(variant="markovian", init_from=str(tmp_path / "physics"))
    model, closure = build_system(ds, warm, prepare_data(ds, 0.4))
    _same_parameters(model, first.system[0])
    assert closure is not None
    with pytest.raises(TrainError, match="differs in substeps"):
        build_system(ds, warm.replace(substeps=8), prepare_data(ds, 0.4))
    with pytest.raises(TrainError, match="not a training run"):
        build_system(ds, warm.replace(init_from=str(tmp_path)), prepare_data(ds, 0.4))


def test_presets_size_closures_apart_from_physics():
    from plumecast.train import PRESETS, preset_config

    assert preset_config("quick") == PRESETS["quick"]
    hybrid = preset_config("quick", variant="memory")
    assert hybrid.schedule.learning_rate < PRESETS["quick"].schedule.learning_rate and hybrid.variant == "memory"
    assert preset_config("paper", variant="markovian").closure_options == {"size": "paper"}
    assert preset_config("paper", variant="physics").closure_options == {}
    assert preset_config("quick", variant="memory", learning_rate=5e-4).schedule.learning_rate == 5e-4  # overrides win
    # The paper's protocol (docs/evaluation.md): Adam 1e-5, clip 0.1, batches of 5, 60 s windows, 500 epochs per
    # phase of 60 / 120 / 300 / 600 s, the per-cell loss with weight decay and temporal smoothness, no exchange.
    paper = preset_config("paper", variant="memory")
    assert (paper.schedule.learning_rate, paper.schedule.clip_norm, paper.schedule.batch_size) == (1e-5, 0.1, 5)
    assert paper.schedule.curriculum_s == (60.0, 120.0, 300.0, 600.0) and paper.schedule.epochs == (500,) * 4
    assert paper.objective.loss == "cell" and paper.objective.weight_decay == 1e-6
    assert paper.objective.temporal_smoothness > 0 and paper.physics.exchange_max_per_s == 0


def test_init_from_a_layered_run_keeps_its_layer(ds, tmp_path):
    cfg = tiny(epochs=(1, 1), variant="layered")
    first = train(ds, tmp_path / "layered", cfg, progress=False, evaluate=False, log=lambda m: None)
    trained = first.system[1].reservoir
    start = dict(init_from=str(tmp_path / "layered"), learning_rate=1e-3)
    for variant in ("memory", "markovian"):
        warm = cfg.replace(variant=variant, closure_options={"reservoir": True}, **start)
        _, closure = build_system(ds, warm, prepare_data(ds, 0.4))
        _same_parameters(closure.reservoir, trained)
    with pytest.raises(TrainError, match="has an off-plane layer"):
        build_system(ds, cfg.replace(variant="memory", **start), prepare_data(ds, 0.4))
    with pytest.raises(TrainError, match="reservoir must be true or false"):
        build_system(ds, cfg.replace(variant="memory", closure_options={"reservoir": "sideways"}, **start),
                     prepare_data(ds, 0.4))


def test_train_physics_false_trains_the_network_alone(ds, tmp_path):
    """With ``train_physics=False`` the model and the closure's layer keep the start run's values; the network moves."""
    cfg = tiny(epochs=(1, 1), variant="layered")
    train(ds, tmp_path / "layered", cfg, progress=False, evaluate=False, log=lambda m: None)
    warm = cfg.replace(variant="markovian", closure_options={"reservoir": True, "size": "local"},
                       init_from=str(tmp_path / "layered"), learning_rate=1e-2, train_physics=False)
    start = build_system(ds, warm, prepare_data(ds, 0.4))
    done = train(ds, tmp_path / "net", warm, progress=False, evaluate=False, log=lambda m: None).system
    leaves = lambda tree: jax.tree.leaves(eqx.filter(tree, eqx.is_inexact_array))  # noqa: E731
    for a, b in zip(leaves((start[0], start[1].reservoir)), leaves((done[0], done[1].reservoir))):
        np.testing.assert_array_equal(a, b)
    assert max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(leaves(start[1].net), leaves(done[1].net))) > 0
    with pytest.raises(TrainError, match="nothing to train"):
        cfg.replace(train_physics=False)


def test_layer_seed_follows_the_run_seed(ds):
    """The layer's source-share net is drawn from the run's seed, not from a fixed key."""
    prep = prepare_data(ds, 0.4)
    nets = [build_system(ds, tiny(variant="layered", seed=seed), prep)[1].reservoir.source_share_net for seed in (0, 0, 1)]
    first = [np.asarray(a) for a in jax.tree.leaves(eqx.filter(nets[0], eqx.is_array))]
    again = [np.asarray(a) for a in jax.tree.leaves(eqx.filter(nets[1], eqx.is_array))]
    other = [np.asarray(a) for a in jax.tree.leaves(eqx.filter(nets[2], eqx.is_array))]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], other[0])


def test_observation_factor_trains_reloads_and_is_kept_by_init_from(ds, tmp_path):
    """A run with the observation factor learns it, saves and reloads it, evaluates through it, and a closure keeps it."""
    from plumecast.evaluate import evaluate_system
    from plumecast.metrics import relative_l2
    from plumecast.rollout import init_carry, rollout
    from plumecast.forecast import final_time_errors

    cfg = tiny(epochs=(2, 1), variant="layered", observation_log_max=1.0)
    first = train(ds, tmp_path / "layered", cfg, progress=False, evaluate=False, log=lambda m: None)
    model = first.system[0]
    g = np.asarray(model.observation_factor())
    assert np.ptp(g[np.asarray(model.fluid) > 0]) > 0  # it moved from 1
    (reloaded, _), saved, _ = load_run(tmp_path / "layered")
    assert saved.physics.observation_log_max == 1.0
    np.testing.assert_array_equal(reloaded.theta_observation, model.theta_observation)
    # What is scored is g times the state: the evaluation's final field against a rollout by hand.
    prep = prepare_data(ds, 0.4)
    ev = evaluate_system(first.system, ds, "test")
    i = prep.index(ev.scenarios[0])
    closure = first.system[1]
    forcing = jax.tree.map(lambda a: jnp.asarray(a[i]), prep.forcing)
    (q_end, _), _ = rollout(model, closure, init_carry(closure, jnp.zeros_like(model.fluid)), forcing,
                            steps_per_frame=forcing.t.shape[0], hook=lambda c, d: ())
    plane = g * np.asarray(q_end) * model.config.c_ref
    np.testing.assert_allclose(ev.forecast[0, -1], plane, rtol=1e-4, atol=1e-6 * plane.max())
    truth = prep.conc[i, -1]
    np.testing.assert_allclose(final_time_errors(first.system, prep, [i])[0], relative_l2(plane, truth, np.asarray(model.fluid)), rtol=1e-4)
    warm = cfg.replace(variant="markovian", closure_options={"reservoir": True},
                       init_from=str(tmp_path / "layered"), learning_rate=1e-3)
    (m2, _) = build_system(ds, warm, prep)
    np.testing.assert_array_equal(m2.theta_observation, model.theta_observation)
    with pytest.raises(TrainError, match="observation_log_max"):
        build_system(ds, warm.replace(observation_log_max=0.0), prep)
    with pytest.raises(TrainError, match="observation_log_max must be finite"):
        tiny(observation_log_max=float("nan"))
    with pytest.raises(TrainError, match="observation_spacing_cells must be finite and > 0"):
        tiny(observation_spacing_cells=0)


def test_a_source_off_the_plane_is_refused_not_moved(ds):
    """In-memory datasets skip the reader's checks: the forcing layout refuses a source off the plane itself."""
    off = ds.copy(deep=True)
    off["source_x"].values[0, :] = 500.0
    with pytest.raises(TrainError, match="lies outside the plane"):
        prepare_data(off, 0.4)
    prepare_data(ds, 0.4)  # the same data with the source on the plane is fine


# --------------------------------------------------------------------------- the fused loop, alignment, val


def _with_splits(ds, splits):
    out = ds.copy(deep=True)
    out["split"] = ("scenario", np.asarray(splits))
    return out


@pytest.fixture(scope="module")
def ds_val():
    """The tiny synthetic data with a val split: s00-s02 train, s03-s04 val, s05-s06 test, s07 OOD."""
    base = synthetic_dataset(n_train=3, n_test=4, n_ood=1, horizon_s=8.0, decay=0.05)
    return _with_splits(base, ["train"] * 3 + ["val"] * 2 + ["test"] * 2 + ["ood"])


@pytest.mark.parametrize("variant", ["physics", "layered"])
def test_fused_loop_equals_the_per_window_loop(ds, tmp_path, variant):
    """The jitted rollout of all windows ends where one call per window ends (the layer's memory carried too)."""
    cfg = tiny(variant=variant, epochs=(2, 1))
    old = train(ds, tmp_path / "old", cfg, progress=False, evaluate=False, log=lambda m: None, engine="per-window")
    new = train(ds, tmp_path / "new", cfg, progress=False, evaluate=False, log=lambda m: None)
    for a, b in zip(jax.tree.leaves(eqx.filter(old.system, eqx.is_array)), jax.tree.leaves(eqx.filter(new.system, eqx.is_array))):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose([h["loss"] for h in old.history], [h["loss"] for h in new.history], rtol=1e-6)
    with pytest.raises(TrainError, match="unknown training engine"):
        train(ds, tmp_path / "x", cfg, progress=False, engine="nope")


def test_fused_rollout_skips_windows_after_a_non_finite_step(ds):
    """A NaN target in window 1 of a batch: that step and the later windows change nothing; window 0's step stays."""
    from plumecast.train.loop import train_data, train_rollout, train_rows
    from plumecast.train.windows import window_plan

    cfg = tiny()
    prep = prepare_data(ds, cfg.physics.dt_s)
    plan = window_plan(cfg.schedule, prep, cfg.physics.dt_s)
    system = build_system(ds, cfg, prep)
    params, static = eqx.partition(system, system_spec(system))
    opt_state = make_optimizer(cfg.schedule).init(params)
    train_idx = prep.indices("train")
    conc_n = prep.conc / system[0].config.c_ref
    conc_n[train_idx[0], plan.frames + 1] = np.nan  # first frame of window 1 of scenario s00
    data = train_data(prep, conc_n, train_idx, plan, system[0].config.jdtype)
    rows = train_rows(train_idx, train_idx[:2])
    args = (static, opt_state, (), data, rows)
    settings = (cfg.schedule, cfg.objective, prep.steps_per_snapshot)
    p2, o2, losses, oks, ran = train_rollout(params, *args, jnp.asarray(2), *settings)
    p1, o1, l1, ok1, ran1 = train_rollout(params, *args, jnp.asarray(1), *settings)
    assert list(np.asarray(ran)) == [True, True] and list(np.asarray(oks)) == [True, False]
    assert list(np.asarray(ran1)) == [True, False] and np.isfinite(float(losses[0]))
    for a, b in zip(jax.tree.leaves((p2, o2)), jax.tree.leaves((p1, o1))):  # window 1 changed nothing
        np.testing.assert_array_equal(a, b)


def _own_rollout_data(ds, cfg, shift: int):
    """``ds`` whose concentration is the untrained model's own forecast, frames shifted by ``shift`` snapshots."""
    from plumecast.forecast import forecast_scenarios

    prep = prepare_data(ds, cfg.physics.dt_s, cfg.physics.dtype)
    system = build_system(ds, cfg, prep)
    truth = forecast_scenarios(system, prep, np.arange(len(prep.names)))  # frame j at t_j, frame 0 the t = 0 field
    T = truth.shape[1]
    conc = truth.copy()
    if shift:  # frame j holds the model's frame j + shift (the end frames repeat)
        conc[:, 1:] = truth[:, np.clip(np.arange(1, T) + shift, 1, T - 1)]
    out = ds.copy(deep=True)
    out["concentration"] = (ds["concentration"].dims, np.maximum(conc, 0.0))
    return out


def test_windows_compare_frame_k_with_the_truth_at_frame_k(ds):
    """On data that is the model's own rollout every window's loss is ~0; targets shifted by one frame are not.

    Checked through both engines: the per-window cut (``window_slice``) and the fused one
    (``TrainData`` sliced on the device), over a whole curriculum of several windows.
    """
    from plumecast.train.loop import epoch_fused, epoch_per_window, train_data
    from plumecast.train.windows import epoch_batches, window_plan

    cfg = tiny(dtype="float64", learning_rate=1e-30, smoothness=0.0, weight_decay=0.0, loss="field",
               curriculum_s=(8.0,), epochs=(1,))

    def losses(data, engine):
        prep = prepare_data(data, cfg.physics.dt_s, cfg.physics.dtype)
        plan = window_plan(cfg.schedule, prep, cfg.physics.dt_s)
        assert plan.windows == (2,) and plan.frames == 2  # 2 windows of 2 snapshots each: the window edges are tested
        system = build_system(data, cfg, prep)
        params, static = eqx.partition(system, system_spec(system))
        train_idx = prep.indices("train")
        conc_n = prep.conc / system[0].config.c_ref
        seen = []
        engine(params, static, make_optimizer(cfg.schedule).init(params),
               epoch_batches(jax.random.PRNGKey(0), 0, train_idx, cfg.schedule.batch_size), 2, prep=prep, conc_n=conc_n,
               plan=plan, data=train_data(prep, conc_n, train_idx, plan, system[0].config.jdtype), train_idx=train_idx,
               memory0=(), sched=cfg.schedule, objective=cfg.objective,
               on_batch=lambda b, ls, bad: seen.extend(ls))
        return np.asarray(seen)

    for engine in (epoch_per_window, epoch_fused):
        exact = losses(_own_rollout_data(ds, cfg, 0), engine)
        assert exact.size == 4 and exact.max() < 1e-12, (engine.__name__, exact)
        for shift in (1, -1):
            shifted = losses(_own_rollout_data(ds, cfg, shift), engine)
            assert shifted.min() > 1e-4, (engine.__name__, shift, shifted)


def test_val_selects_the_model_and_test_ood_choose_nothing(ds_val, tmp_path):
    """The selected model is the best of the val curve (epoch 0 included), stored and loaded back; changing the test
    and OOD truths changes neither the curve nor the pick."""
    from plumecast.train.loop import val_score

    cfg = tiny(epochs=(3, 2), learning_rate=2e-1)
    result = train(ds_val, tmp_path / "run", cfg, progress=False, log=lambda m: None)
    curve = [v["val"] for v in result.val_curve]
    assert [v["epoch"] for v in result.val_curve] == list(range(6))  # before training, then after each epoch
    best = int(np.argmin(curve))
    assert result.selected == {"epoch": best, "phase": result.val_curve[best]["phase"], "val": curve[best]}
    prep = prepare_data(ds_val, 0.4)
    assert val_score(result.system, prep, prep.indices("val")) == pytest.approx(curve[best], rel=1e-5)
    assert val_score(result.last_system, prep, prep.indices("val")) == pytest.approx(curve[-1], rel=1e-5)
    s = result.summary
    assert s["selected"]["epoch"] == best and len(s["val_curve"]) == 6 and set(s["trained"]) == {"train", "val", "test", "ood"}
    assert s["trained"]["val"]["median"] == pytest.approx(curve[best], rel=1e-5)
    # the pick against the last model, scenario by scenario on val
    picked, last_err = s["trained"]["val"]["per_scenario"], s["last"]["per_scenario"]
    assert list(picked) == list(last_err) and np.median(list(last_err.values())) == pytest.approx(curve[-1], rel=1e-5)
    lower = sum(picked[n] < last_err[n] for n in picked)
    assert s["pick_evidence"]["scenarios"] == len(picked) and s["pick_evidence"]["selected_lower_on"] == lower
    # the selected model's pointwise error on val, per window after the release (locate's noise model)
    from plumecast.locate.core import default_limit
    from plumecast.locate.evaluate import calibrate_model_error

    assert [r["window_s"] for r in s["point_error_val"]] == [8.0]  # the 60 ... 600 s windows exceed the 8 s horizon
    cal = calibrate_model_error(result.system, ds_val, split="val", window_s=8.0, limit=default_limit(result.system[0]))
    assert s["point_error_val"][0]["model_error"] == pytest.approx(cal["model_error"], rel=1e-6) and cal["values"] > 0
    selected, _, _ = load_run(tmp_path / "run")
    last, _, _ = load_run(tmp_path / "run", model="last")
    _same_parameters(selected, result.system)
    _same_parameters(last, result.last_system)
    # Test and OOD truths scrambled: nothing chosen changes.
    scrambled = ds_val.copy(deep=True)
    other = np.flatnonzero(np.isin(scrambled["split"].values, ["test", "ood"]))
    scrambled["concentration"].values[other] *= np.random.default_rng(1).uniform(0, 3, scrambled["concentration"].values[other].shape)
    again = train(scrambled, tmp_path / "again", cfg, progress=False, evaluate=False, log=lambda m: None)
    assert again.val_curve == result.val_curve and again.selected == result.selected


def test_patience_ends_a_phase_and_resume_keeps_the_selection(ds_val, tmp_path, monkeypatch):
    """Scripted val scores: patience 2 ends phase 1 early; the interrupted-and-resumed run equals the whole one."""
    from plumecast.train import loop

    cfg = tiny(epochs=(4, 3), patience=2)
    # The scores in call order: epochs 0-3, then (epoch 4 skipped) 5-7.
    values = [1.0, 0.5, 0.6, 0.7, 0.55, 0.4, 0.45]
    counter = {"n": 0}

    def scripted(system, prep, idx):
        v = values[counter["n"]]
        counter["n"] += 1
        return v

    monkeypatch.setattr(loop, "val_score", scripted)
    logs = []
    whole = train(ds_val, tmp_path / "whole", cfg, progress=False, evaluate=False, log=logs.append)
    assert [(v["epoch"], v["val"]) for v in whole.val_curve] == [(0, 1.0), (1, 0.5), (2, 0.6), (3, 0.7), (5, 0.55),
                                                                 (6, 0.4), (7, 0.45)]
    assert any("phase ended after 3 of 4 epochs" in m for m in logs)
    assert len(whole.history) == 6 and [h["phase"] for h in whole.history] == [0, 0, 0, 1, 1, 1]
    assert whole.selected == {"epoch": 6, "phase": 1, "val": 0.4}
    sel, last = (jax.tree.leaves(eqx.filter(m, eqx.is_array)) for m in (whole.system, whole.last_system))
    assert any(not np.array_equal(a, b) for a, b in zip(sel, last))  # epoch 6's model, not the last one
    # Interrupted after 2 epochs, then after 2 more, then resumed to the end: same curve, selection and parameters.
    counter["n"] = 0
    part = train(ds_val, tmp_path / "part", cfg, progress=False, evaluate=False, stop_after_epochs=2, log=lambda m: None)
    assert not part.completed and part.selected["epoch"] == 1
    part = train(ds_val, tmp_path / "part", None, resume=True, progress=False, evaluate=False, stop_after_epochs=2,
                 log=lambda m: None)
    assert not part.completed
    done = train(ds_val, tmp_path / "part", None, resume=True, progress=False, evaluate=False, log=lambda m: None)
    assert done.completed and done.val_curve == whole.val_curve and done.selected == whole.selected
    _same_parameters((done.system, done.last_system), (whole.system, whole.last_system))
    assert [h["loss"] for h in done.history] == [h["loss"] for h in whole.history]


def test_without_val_the_run_says_so_once_and_keeps_its_last_model(ds, tmp_path):
    logs = []
    result = train(ds, tmp_path / "run", tiny(epochs=(1, 1), patience=1), progress=False, evaluate=False, log=logs.append)
    assert sum("no 'val' scenarios" in m for m in logs) == 1 and any("patience is ignored" in m for m in logs)
    assert result.selected is None and result.val_curve == [] and not (tmp_path / "run" / "selected").exists()
    _same_parameters(result.system, result.last_system)


def test_resume_repairs_a_selection_left_behind_by_a_crash(ds_val, tmp_path, monkeypatch):
    """A crash after the checkpoint (which names itself best) and before RUN/selected was rewritten: resume fixes it;
    a selection that matches nothing the state knows is an error, not silently used."""
    from plumecast.train import loop
    from plumecast.train.select import read_selected, write_selected

    values = iter([1.0, 0.9, 0.8, 0.95])  # epochs 0-3: epoch 2 is the best
    monkeypatch.setattr(loop, "val_score", lambda system, prep, idx: next(values))
    cfg = tiny(epochs=(2, 1))
    run = tmp_path / "run"
    part = train(ds_val, run, cfg, progress=False, evaluate=False, stop_after_epochs=2, log=lambda m: None)
    assert part.selected["epoch"] == 2 and read_selected(run)["epoch"] == 2
    write_selected(run, part.system, {"epoch": 1, "phase": 0, "val": 0.9})  # the pointer as before epoch 2's write
    write_selected(run, build_system(ds_val, cfg, prepare_data(ds_val, 0.4)), {"epoch": 1, "phase": 0, "val": 0.9})
    done = train(ds_val, run, None, resume=True, progress=False, evaluate=False, log=lambda m: None)
    assert done.selected["epoch"] == 2 and read_selected(run)["epoch"] == 2
    _same_parameters(done.system, part.last_system)  # epoch 2's model, from its checkpoint
    write_selected(run, done.system, {"epoch": 1, "phase": 0, "val": 0.9})  # now the checkpoint (epoch 3) is not the best
    with pytest.raises(TrainError, match="does not match the checkpoint's best"):
        train(ds_val, run, None, resume=True, progress=False, evaluate=False, log=lambda m: None)


def test_resume_keeps_the_val_set_the_run_started_with(ds, tmp_path):
    """Data regenerated with val scenarios appended resumes a run that had none as it was (no selection); other
    train scenarios (here: a renamed one, same numbers) are refused."""
    import xarray as xr

    cfg = tiny(epochs=(1, 1))
    run = tmp_path / "run"
    train(ds, run, cfg, progress=False, evaluate=False, stop_after_epochs=1, log=lambda m: None)
    extra = ds.isel(scenario=[3]).assign_coords(scenario=["v00"])
    extra["split"] = ("scenario", np.asarray(["val"]))
    appended = xr.concat([ds, extra], dim="scenario", data_vars="minimal", coords="minimal", compat="override")
    done = train(appended, run, None, resume=True, progress=False, evaluate=False, log=lambda m: None)
    assert done.completed and done.selected is None and done.val_curve == []
    other = ds.assign_coords(scenario=["renamed"] + [str(n) for n in ds["scenario"].values[1:]])
    with pytest.raises(TrainError, match="train scenarios differ"):
        train(other, run, None, resume=True, progress=False, evaluate=False, log=lambda m: None)


def test_pick_evidence_counts_scenarios_and_signs():
    """The sign test of the pick against the last model: ties left out, a non-finite error is the higher one."""
    from plumecast.train.select import pick_evidence

    ev = pick_evidence([0.1, 0.2, 0.3, 0.4], [0.2, 0.1, 0.3, 0.5])
    assert ev == {"scenarios": 4, "selected_lower_on": 2, "last_lower_on": 1, "sign_test_p": pytest.approx(1.0)}
    eight = pick_evidence(np.full(8, 0.1), np.full(8, 0.2))  # lower on all eight: p = 2 / 2^8
    assert eight["selected_lower_on"] == 8 and eight["sign_test_p"] == pytest.approx(2 / 256)
    assert pick_evidence([0.1, np.nan], [0.2, 0.3])["last_lower_on"] == 1
    assert pick_evidence([0.3, 0.3], [0.3, 0.3])["sign_test_p"] == 1.0
    with pytest.raises(ValueError, match="equal, non-empty"):
        pick_evidence([0.1], [0.1, 0.2])
