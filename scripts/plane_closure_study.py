"""Evidence that the plane is NOT closed in 2D, from the 3D reference itself.

For a few scenarios of a preset it reruns the 3D transport (reusing the cached flow of a
previous ``plumecast generate``), keeps the 3D field at the horizon and measures, in the
two fine layers around the plane:

* the tendency from vertical transport, ``|d F_z / d z|``, against the one from horizontal
  transport, ``|d F_x / d x + d F_y / d y|`` (both from the solver's own face fluxes,
  L1 over the fluid cells of the two layers farther than 1 m from the source, so that the
  source cell's own balance does not dominate), the storage term ``|dc/dt|`` (their sum)
  on the same cells, and the net vertical flux through the plane;
* how far a plain 2D advection-diffusion with the plane velocity and ``nu_t / 0.7`` (the
  untrained physics-only coarse model) lands from the plane truth at the final time:
  relative L2 error and Spearman rank correlation over fluid cells.

    .venv/bin/python scripts/plane_closure_study.py data/paper-room.nc --out docs/img

Prints a markdown table; writes ``plane-closure.png`` (vertical vs horizontal tendency maps
of the first scenario) into ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from plumecast.geometry import coarsen_mean, plane_layers
from plumecast.io.dataset import read_dataset, scenario_config
from plumecast.metrics import relative_l2, spearman
from plumecast.reference.generate import CACHE_DIR_NAME, flow_for
from plumecast.forcing import prepare_data
from plumecast.forecast import forecast
from plumecast.reference.transport import operator_from_flow, plane_vertical_flux, simulate_scalar
from plumecast.scenario import scenario_set_from_config
from plumecast.train import build_system, preset_config

DEFAULT = ("static-01", "static-03", "static-09", "static-18", "static-22", "moving-00", "moving-01")


def axis_tendencies(op, c: np.ndarray) -> np.ndarray:
    """Per-axis tendency ``-(F_out - F_in) / h`` (mass/m^3/s) of a 3D field, ``(3, nz, ny, nx)`` in (x, y, z)."""
    out = []
    for axis_xyz in range(3):
        a, b = op.coef[2 * axis_xyz], op.coef[2 * axis_xyz + 1]
        axis = 2 - axis_xyz
        pad = [(0, 0)] * 3
        pad[axis] = (1, 1)
        cp = np.pad(c, pad)  # ghost cells: zero outside (walls carry zero coefficients anyway)
        n = cp.shape[axis]
        lo = np.take(cp, np.arange(n - 1), axis=axis)
        hi = np.take(cp, np.arange(1, n), axis=axis)
        flux = a * lo - b * hi  # per face, already divided by h
        out.append(np.take(flux, np.arange(c.shape[axis]), axis=axis) - np.take(flux, np.arange(1, c.shape[axis] + 1), axis=axis))
    return np.stack(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="a dataset made by `plumecast generate` (its flow cache is reused)")
    parser.add_argument("--scenarios", default=",".join(DEFAULT))
    parser.add_argument("--out", type=Path, default=None, help="folder for the figure")
    args = parser.parse_args()

    ds = read_dataset(args.data)
    sset = scenario_set_from_config(scenario_config(ds), str(args.data))
    names = [n for n in args.scenarios.split(",") if n]
    sset = sset.select(names)
    sim = sset.simulation
    grid = sset.room.discretise(sim.fine_cell_m)
    flow, cached = flow_for(sset, grid, args.data.parent / CACHE_DIR_NAME)
    res = simulate_scalar(grid, flow, sset.scenarios, sim, keep_final_field=True)
    op = operator_from_flow(grid, flow, sim)
    lower, upper, _ = plane_layers(grid, sim.plane_height_m)
    layers = sorted({lower, upper})

    config = preset_config("quick", variant="physics")
    prep = prepare_data(ds, config.physics.dt_s)
    system = build_system(ds, config, prep)
    fluid = ds["fluid"].values == 1

    print(f"flow {'from cache' if cached else 'solved'}; 3D dt {res.dt_s:.4f} s; layers {layers} around "
          f"{sim.plane_height_m} m\n")
    print("| scenario | split | vertical / horizontal tendency (L1, plane layers, > 1 m from source) | storage / horizontal | net flux through plane / emission | 2D baseline rel. L2 (final) | 2D baseline Spearman (final) |")
    print("|---|---|---|---|---|---|---|")
    maps = None
    for i, sc in enumerate(sset.scenarios):
        c = res.final_field[i]
        tend = axis_tendencies(op, c)[:, layers]
        xs, ys, _ = sc.source.position_at(sim.horizon_s)
        xc, yc = grid.centres("x"), grid.centres("y")
        far = (np.abs(xc[None, :] - xs) > 1.0) | (np.abs(yc[:, None] - ys) > 1.0)
        fl = grid.fluid[layers] & far[None]
        vert = np.abs(tend[2][fl]).sum()
        horiz = np.abs((tend[0] + tend[1])[fl]).sum()
        storage = np.abs(tend.sum(axis=0)[fl]).sum()  # |dc/dt| away from the source
        flux = plane_vertical_flux(c, grid, flow, sim)["total"]
        emission = float(sc.source.rate_at(sim.horizon_s))
        truth = ds["concentration"].sel(scenario=sc.name).values
        pred = forecast(system, ds, sc.name)
        err = relative_l2(pred[-1], truth[-1], fluid)
        rho = spearman(pred[-1], truth[-1], fluid)
        print(f"| {sc.name} | {sc.split} | {vert / horiz:.2f} | {storage / horiz:.2f} | {flux.sum() / emission:+.2f} | {err:.2f} | {rho:.2f} |")
        if maps is None:
            maps = (sc.name, np.abs(tend[2]).mean(axis=0), np.abs(tend[0] + tend[1]).mean(axis=0))
            # Note: maps keep the source cell; the colour scale is logarithmic.
    if args.out is not None and maps is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        name, v, h = maps
        r = sim.plane_cell_m
        vc, hc = coarsen_mean(v, grid.cell_m, r), coarsen_mean(h, grid.cell_m, r)
        from matplotlib.colors import LogNorm

        vmax = max(vc.max(), hc.max())
        norm = LogNorm(vmin=vmax * 1e-4, vmax=vmax)
        fig, axes = plt.subplots(1, 2, figsize=(12, 3.4))
        for ax, m, title in zip(axes, (vc, hc), ("|vertical transport tendency|", "|horizontal transport tendency|")):
            im = ax.imshow(np.ma.masked_where(~fluid, m), origin="lower", cmap="magma", norm=norm,
                           extent=(0, m.shape[1] * r, 0, m.shape[0] * r))
            ax.set_title(f"{name} at {sim.horizon_s:.0f} s: {title}", fontsize=9)
            ax.set_xlabel("x (m)")
            ax.set_ylabel("y (m)")
        fig.colorbar(im, ax=axes, label=f"{sim.mass_unit}/m^3/s")
        args.out.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.out / "plane-closure.png", dpi=100, bbox_inches="tight")
        print(f"\nwrote {args.out / 'plane-closure.png'}")


if __name__ == "__main__":
    main()
