"""Shared builders for the coarse-model tests: small masked rooms and synthetic datasets."""

from __future__ import annotations

import numpy as np

from plumecast.io.dataset import make_dataset


def small_room(ny=12, nx=18, obstacles=True):
    """A fluid mask with an obstacle block and a thin wall (1 = fluid)."""
    fluid = np.ones((ny, nx))
    if obstacles:
        fluid[3:6, 7:11] = 0
        fluid[6:10, 4] = 0
        fluid[0, 0] = 0
    return fluid


def swirl_flow(fluid, speed=0.3, seed=0):
    """A smooth, non-solenoidal plane velocity (u, v), zero in solids."""
    ny, nx = fluid.shape
    y, x = np.meshgrid(np.linspace(0, 1, ny), np.linspace(0, 1, nx), indexing="ij")
    rng = np.random.default_rng(seed)
    u = speed * (np.sin(np.pi * y) + 0.2 * rng.standard_normal((ny, nx)))
    v = speed * (0.5 * np.cos(2 * np.pi * x) * np.sin(np.pi * y) + 0.2 * rng.standard_normal((ny, nx)))
    return u * fluid, v * fluid


def synthetic_dataset(*, n_train=3, n_test=2, n_ood=1, horizon_s=12.0, snapshot_s=2.0, ny=10, nx=14, seed=0,
                      truth_scale=2.0, decay=0.02):
    """A tiny dataset in the plumecast schema whose 'truth' is a 2D model with other physics.

    The truth diffuses ``truth_scale`` times faster than nu_t / 0.7 and loses mass at rate
    ``decay`` (a stand-in for vertical exchange), so training has something to learn.
    """
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from plumecast.physics.model import build_model
    from plumecast.rollout import forcing_from_track, init_carry, rollout

    rng = np.random.default_rng(seed)
    fluid = small_room(ny, nx)
    u, v = swirl_flow(fluid, speed=0.15, seed=seed)
    w = 0.01 * rng.standard_normal((ny, nx)) * fluid
    nu_t = (0.004 + 0.003 * rng.random((ny, nx))) * fluid
    dx = 0.5
    x = (np.arange(nx) + 0.5) * dx
    y = (np.arange(ny) + 0.5) * dx
    times = np.arange(0.0, horizon_s + 1e-9, snapshot_s)
    n = n_train + n_test + n_ood
    splits = ["train"] * n_train + ["test"] * n_test + ["ood"] * n_ood
    cells = np.argwhere(fluid > 0)
    cells = cells[(cells[:, 0] > 0) & (cells[:, 0] < ny - 1) & (cells[:, 1] > 0) & (cells[:, 1] < nx - 1)]
    pick = cells[rng.choice(len(cells), n, replace=False)]
    xyz = np.zeros((n, len(times), 3))
    rate = np.zeros((n, len(times)))
    for k, (j, i) in enumerate(pick):
        xyz[k, :, 0] = x[i]
        xyz[k, :, 1] = y[j]
        xyz[k, :, 2] = 1.2
        rate[k] = 2.0 + 0.5 * np.sin(times / 5.0)
        if splits[k] == "ood":  # moving source: drift along x through fluid cells of its row
            row = np.flatnonzero(fluid[j] > 0)
            xyz[k, :, 0] = np.interp(times, [0, horizon_s], [x[row[0]] + 0.1, x[row[min(3, len(row) - 1)]]])
    truth = build_model(
        fluid=fluid, u=u, v=v, w=w, nu_t=nu_t * truth_scale, dx=dx, dy=dx, x0=x[0], y0=y[0], dtype="float64",
        layer_height_m=3.0, plane_height_m=1.5,
    )
    dt = 0.4
    n_steps = int(round(horizon_s / dt))
    spf = int(round(snapshot_s / dt))
    conc = np.zeros((n, len(times), ny, nx))
    per = [forcing_from_track(times, xyz[k, :, 0], xyz[k, :, 1], xyz[k, :, 2], rate[k], dt=dt, n_steps=n_steps,
                              dtype="float64") for k in range(n)]
    forcing = jax.tree.map(lambda *a: jnp.stack(a), *per)

    @eqx.filter_jit
    def run(model, f):
        return jax.vmap(lambda ff: rollout(model, None, init_carry(None, jnp.zeros((ny, nx))), ff, steps_per_frame=spf)[1])(f)

    conc[:, 1:] = np.asarray(run(truth, forcing)) * np.exp(-decay * times[1:])[None, :, None, None]
    config = {"name": "synthetic", "room": {"size_m": [nx * dx, ny * dx, 3.0]}, "simulation": {"turbulent_schmidt": 0.7}}
    return make_dataset(
        scenario_names=[f"s{k:02d}" for k in range(n)],
        splits=splits,
        times_s=times,
        x_m=x,
        y_m=y,
        concentration=conc,
        u=u,
        v=v,
        w=w,
        nu_t=nu_t,
        fluid_fraction=fluid,
        source_xyz=xyz,
        source_rate=rate,
        plane_height_m=1.5,
        mass_unit="mg",
        generator="test-synthetic",
        generator_version="0",
        scenario_config=config,
    )
