"""Cross-validation: the embedded 3D scalar solver on OpenFOAM's flow vs OpenFOAM's scalar.

Runs OpenFOAM (flow and scalar, ``generate_openfoam``) for the chosen scenarios of a
preset, then the embedded transport on OpenFOAM's face fluxes, and compares the planes
per snapshot (``plumecast.reference.crossval``). Prints markdown tables and writes
``<img>-metrics.png`` (Spearman and relative L2 over time) and ``<img>-snapshot.png``
(OpenFOAM | embedded at the horizon for one scenario).

    .venv/bin/python scripts/crossval_openfoam.py paper-room \\
        --scenarios static-01,static-03,static-09,static-18,static-20,static-22,moving-01 \\
        --work data/crossval/paper-room --workers 2 --every 10 --scheme-check static-03 --trilinear

OpenFOAM results are reused from ``--work`` when they match. ``--scheme-check NAME`` also
reruns OpenFOAM's scalar case of NAME with first-order upwind (the embedded scheme) in
place of limitedLinear, to measure how much of the difference the scheme explains.
``--trilinear`` adds the comparison with the embedded trilinear source deposit.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from plumecast.io.atomic import atomic_path
from plumecast.metrics import relative_l2, spearman
from plumecast.reference.crossval import cross_validate, openfoam_cells, read_cells, rerun_with_scheme
from plumecast.scenario import load_scenario_set


def scheme_check(res, sset, work: Path, name: str, every_s: float) -> dict:
    """Metrics of embedded vs OpenFOAM limitedLinear, vs OpenFOAM upwind, and of the two OpenFOAM runs."""
    from plumecast.io.openfoam import time_dirs
    from plumecast.reference.plane import plane_sampler

    sim = sset.simulation
    grid = sset.room.discretise(sim.fine_cell_m)
    src = work / f"scalar-{name}"
    dst = rerun_with_scheme(src, work / "upwind" / f"scalar-{name}", "Gauss upwind")
    _, flat = openfoam_cells(src, grid)
    sampler = plane_sampler(grid, sim.plane_height_m, sim.plane_cell_m)
    i = res.names.index(name)
    up = {round(t, 6): d for t, d in time_dirs(dst) if (d / "s").is_file()}
    rows = []
    for T in res.times_s:
        if T <= 0 or (round(T / every_s) * every_s != T and T != res.times_s[-1]) or round(T, 6) not in up:
            continue
        k = res.at(T)
        p_up = sampler(read_cells(up[round(T, 6)] / "s", flat, grid))
        p_ll, p_emb = res.openfoam[i, k], res.embedded[i, k]
        f = res.fluid
        rows.append({
            "t": float(T),
            "emb_vs_ll": (spearman(p_emb, p_ll, f), relative_l2(p_emb, p_ll, f)),
            "emb_vs_up": (spearman(p_emb, p_up, f), relative_l2(p_emb, p_up, f)),
            "up_vs_ll": (spearman(p_up, p_ll, f), relative_l2(p_up, p_ll, f)),
        })
    return {"name": name, "rows": rows, "seconds": json.loads((dst / "plumecast-done.json").read_text())["seconds"]}


def figures(res, prefix: str, snap: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), dpi=90)
    for i, n in enumerate(res.names):
        ls = "--" if res.splits[i] == "ood" else "-"
        axes[0].plot(res.times_s, res.spearman[i], ls, lw=1.2, label=n)
        axes[1].plot(res.times_s, res.relative_l2[i], ls, lw=1.2, label=n)
    axes[0].axhline(0.9, color="k", lw=0.6, ls=":")
    axes[0].set_ylim(0.8, 1.0)
    axes[0].set_ylabel("Spearman (plane, fluid cells)")
    axes[1].set_ylabel("relative L2 (embedded vs OpenFOAM)")
    axes[1].set_ylim(0, None)
    for a in axes:
        a.set_xlabel("time (s)")
        a.grid(alpha=0.3)
    axes[1].legend(fontsize=7, ncol=2)
    fig.suptitle("Embedded solver on OpenFOAM's flow vs OpenFOAM's scalar", fontsize=10)
    fig.tight_layout()
    path = Path(f"{prefix}-metrics.png")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    out.append(path)

    i = res.names.index(snap)
    k = len(res.times_s) - 1
    a, b = res.openfoam[i, k], res.embedded[i, k]
    m = res.fluid
    from matplotlib.colors import LogNorm

    vmax = float(max(a[m].max(), b[m].max()))
    norm = LogNorm(vmin=vmax * 1e-3, vmax=vmax)
    dx = 0.5 * (res.x_m[1] - res.x_m[0])
    ext = [res.x_m[0] - dx, res.x_m[-1] + dx, res.y_m[0] - dx, res.y_m[-1] + dx]
    fig, axes = plt.subplots(1, 3, figsize=(13, 2.9), dpi=90, layout="constrained")
    for ax, fld, title in ((axes[0], a, "OpenFOAM (limitedLinear)"), (axes[1], b, "embedded (upwind) on OpenFOAM's flow")):
        im = ax.imshow(np.ma.masked_where(~m, np.maximum(fld, vmax * 1e-3)), origin="lower", extent=ext, norm=norm,
                       cmap="viridis")
        ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=axes[:2], shrink=0.9, label="mg/m3 (log)")
    d = np.ma.masked_where(~m, b - a)
    lim = float(np.abs(d).max())
    im = axes[2].imshow(d, origin="lower", extent=ext, vmin=-lim, vmax=lim, cmap="RdBu_r")
    axes[2].set_title("embedded - OpenFOAM", fontsize=9)
    fig.colorbar(im, ax=axes[2], shrink=0.9, label="mg/m3")
    for ax in axes:
        ax.set_xlabel("x (m)")
    axes[0].set_ylabel("y (m)")
    fig.suptitle(f"{snap} at t = {res.times_s[k]:g} s: Spearman {res.spearman[i, k]:.3f}, "
                 f"relative L2 {res.relative_l2[i, k]:.3f}", fontsize=10)
    path = Path(f"{prefix}-snapshot.png")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    out.append(path)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("preset", nargs="?", default="paper-room")
    ap.add_argument("--scenarios", default="static-01,static-03,static-09,static-18,static-20,static-22,moving-01")
    ap.add_argument("--work", default=None, help="OpenFOAM work folder (default data/crossval/PRESET)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--times", default="60,300,600", help="times (s) of the table")
    ap.add_argument("--img", default="docs/img/crossval", help="figure path prefix")
    ap.add_argument("--snapshot", default=None, help="scenario of the snapshot figure (default the first)")
    ap.add_argument("--scheme-check", default=None, metavar="NAME")
    ap.add_argument("--trilinear", action="store_true", help="also run the embedded trilinear source deposit")
    ap.add_argument("--json", default=None, help="write the per-time metrics here")
    ap.add_argument("--every", type=float, default=10.0, help="compare every EVERY seconds (reading fields is slow)")
    ap.add_argument("--horizon", type=float, default=None, help="shorter horizon (s) than the preset's")
    args = ap.parse_args(argv)

    sset = load_scenario_set(args.preset)
    names = args.scenarios.split(",") if args.scenarios else None
    work = Path(args.work or f"data/crossval/{args.preset}")
    res = cross_validate(sset, work, names, horizon_s=args.horizon, every_s=args.every, workers=args.workers,
                         progress=lambda m: print(m, file=sys.stderr))
    times = [float(t) for t in args.times.split(",") if float(t) <= res.times_s[-1]]
    d = res.flow_diagnostics
    ex = res.info["plane_extraction_max_rel_diff"]
    print(f"## {args.preset}: embedded solver on OpenFOAM's flow vs OpenFOAM\n")
    print(f"Flow ({d['cells']} cells): OpenFOAM phi divergence {d['divergence_raw']:.2e}, after projection "
          f"{d['divergence']:.2e} ({d['divergence_definition']}; velocity change {d['projection_change']:.2e} U_in); "
          f"inflow {d['inflow_m3_s']:.6g} m3/s, outflow {d['outflow_m3_s']:.6g} m3/s (room: {d['grid_inflow_m3_s']:.6g}); "
          f"largest wall flux {d['wall_flux_max_m3_s']:.1e} m3/s.")
    print(f"Mass budgets: embedded {res.budget_embedded:.1e}, OpenFOAM {res.budget_openfoam:.1e} (max relative). "
          f"Time steps: embedded {res.info['embedded_dt_s']:.4g} s (explicit), OpenFOAM "
          f"{res.info['openfoam_dt_s']:.4g} s (implicit Euler). Plane extraction check (OpenFOAM's dataset vs "
          f"the embedded sampler, run cases only): {'n/a (cases reused)' if ex is None else f'{ex:.1e}'}. Wall time: OpenFOAM {res.info['openfoam_seconds']} s "
          f"(0 when reused), embedded {res.info['embedded_seconds']} s.")
    print(f"Source cells matched to OpenFOAM's: {res.source_cells}\n")
    print(res.markdown(times))
    s_fin = res.spearman[:, -1]
    static = [i for i, s in enumerate(res.splits) if s != "ood"]
    print(f"\nFinal-time Spearman >= 0.9: {int((s_fin >= 0.9).sum())} of {len(s_fin)} scenarios "
          f"({int((s_fin[static] >= 0.9).sum())} of {len(static)} static); median {np.median(s_fin):.3f}; "
          f"relative L2 median {np.median(res.relative_l2[:, -1]):.3f}.")
    if res.final_3d:
        print("\n3D (all fluid cells) at the horizon: " + ", ".join(
            f"{n} Spearman {v['spearman']:.3f} / rel. L2 {v['relative_l2']:.3f}" for n, v in res.final_3d.items()))
    if args.trilinear:
        tri = cross_validate(sset, work, names, horizon_s=args.horizon, every_s=max(args.every, 60.0),
                             match_source_cells=False)
        print("\n### Embedded run with its own trilinear source deposit (sources on cell edges spread over 4-8 cells)\n")
        print(tri.markdown(times))
    if args.scheme_check:
        chk = scheme_check(res, sset.select(names), work, args.scheme_check, every_s=60.0)
        print(f"\n### Scheme check on {chk['name']}: OpenFOAM rerun with first-order upwind "
              f"({chk['seconds']:.0f} s)\n")
        print("| t (s) | emb vs OF limitedLinear: Spearman / rel. L2 | emb vs OF upwind | OF upwind vs OF limitedLinear |")
        print("|---|---|---|---|")
        for r in chk["rows"]:
            print(f"| {r['t']:g} | " + " | ".join(f"{r[k][0]:.3f} / {r[k][1]:.3f}" for k in
                                                 ("emb_vs_ll", "emb_vs_up", "up_vs_ll")) + " |")
    snap = args.snapshot or res.names[0]
    paths = figures(res, args.img, snap)
    print("\nFigures: " + ", ".join(f"{p} ({p.stat().st_size // 1024} KB)" for p in paths))
    if args.json:
        Path(args.json).write_text(json.dumps({
            "names": res.names, "splits": res.splits, "times_s": res.times_s.tolist(),
            "spearman": np.where(np.isfinite(res.spearman), res.spearman, -9).tolist(),
            "relative_l2": np.where(np.isfinite(res.relative_l2), res.relative_l2, -9).tolist(),
            "flow": res.flow_diagnostics, "info": res.info, "final_3d": res.final_3d,
        }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
