"""A plan picture of a scenario set's room: walls, obstacles, supply and exhaust, sources.

For documentation (docs/reference-simulator.md): what the 3D reference engines are given,
drawn from the same ``Room.discretise`` grid they use, so the picture shows exactly the
solid cells and patches of the simulation. Usage::

    python -m plumecast.reference.room_plan l-office docs/img/l-office/plan.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from plumecast.scenario import ScenarioSet, load_scenario_set

SPLIT_MARKERS = {"train": "o", "val": "s", "test": "^", "ood": "D"}
HEIGHT_CMAP = "plasma"


def room_plan_picture(sset: ScenarioSet, path: str | Path) -> Path:
    """Draw the room of ``sset`` from above and write it (PNG, atomically) to ``path``.

    Grey: full-height walls; brown, shaded by height: obstacles (top height written on
    them); blue bars: supply patches on walls (arrows point into the room), blue squares:
    ceiling supply; red: exhausts (bars on walls, squares on the ceiling or floor). Static
    sources are markers by split, coloured by height; moving sources are lines coloured by
    height.
    """
    from matplotlib import colors
    from matplotlib.patches import Rectangle

    from plumecast.plot import plt, save_figure

    room = sset.room
    grid = room.discretise(sset.simulation.fine_cell_m)
    lx, ly, lz = room.size_m
    h = grid.cell_m
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * lx, 0.75 * ly + 0.6))
    walls = np.ma.masked_where(grid.fluid.any(axis=0), np.ones(grid.shape[1:]))
    ax.imshow(walls, origin="lower", extent=(0, lx, 0, ly), cmap=colors.ListedColormap(["0.35"]), vmin=0, vmax=1)
    for b in room.obstacles:
        shade = 0.85 - 0.45 * min(b.z1 / lz, 1.0)  # taller obstacles darker
        ax.add_patch(Rectangle((b.x0, b.y0), b.x1 - b.x0, b.y1 - b.y0, fc=(0.75, shade, 0.5), ec="0.3", lw=0.6))
        ax.text(0.5 * (b.x0 + b.x1), 0.5 * (b.y0 + b.y1), f"{b.z1:g} m", ha="center", va="center", fontsize=6)
    for patches, colour, kind in ((room.inlets, "tab:blue", "supply"), (room.outlets, "tab:red", "exhaust")):
        for p in patches:
            _draw_patch(ax, p, colour, kind, lx, ly, h)
    norm = colors.Normalize(0.0, lz)
    cmap = plt.get_cmap(HEIGHT_CMAP)
    for sc in sset.scenarios:
        if sc.source.moving:
            path_xyz = np.asarray(sc.source.path, float)[:, 1:]
            ax.plot(path_xyz[:, 0], path_xyz[:, 1], color=cmap(norm(path_xyz[:, 2].mean())), lw=1.6, alpha=0.9,
                    ls="--" if sc.split == "val" else "-")
            ax.plot(*path_xyz[0, :2], marker=SPLIT_MARKERS[sc.split], color=cmap(norm(path_xyz[0, 2])), mec="k",
                    ms=6)
        else:
            x, y, z = sc.source.position_m
            ax.plot(x, y, marker=SPLIT_MARKERS[sc.split], color=cmap(norm(z)), mec="k", ms=6, ls="none")
    for split, marker in SPLIT_MARKERS.items():
        if any(s.split == split for s in sset.scenarios):
            ax.plot([], [], marker=marker, color="w", mec="k", ls="none", label=split)
    ax.legend(loc="upper right", fontsize=7, framealpha=0.9, title="split (lines: moving)", title_fontsize=7)
    sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(sm, ax=ax, label="source height (m)", fraction=0.03, pad=0.02)
    ax.set_xlim(-0.3, lx + 0.3)
    ax.set_ylim(-0.3, ly + 0.3)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    supply = grid.volume_flow_in_m3_s()
    ax.set_title(f"{sset.name}: {lx:g} x {ly:g} x {lz:g} m, supply {supply:.2f} m3/s "
                 f"({supply * 3600 / (grid.fluid.sum() * h**3):.1f} air changes per hour), "
                 f"plane at {sset.simulation.plane_height_m:g} m", fontsize=9)
    return save_figure(fig, path)


def _draw_patch(ax, p, colour: str, kind: str, lx: float, ly: float, h: float) -> None:
    from matplotlib.patches import Rectangle

    a0, a1, b0, b1 = p.rect_m
    axis, side = p.face[0], p.face[1]
    label = f"{p.name} (z {b0:g}-{b1:g} m)" if axis in "xy" else p.name
    if axis == "z":  # a ceiling (or floor) grille: a square in plan
        ax.add_patch(Rectangle((a0, b0), a1 - a0, b1 - b0, fc=colour, ec="k", lw=0.6,
                               hatch="xx" if side == "+" else "..", alpha=0.8))
        ax.annotate(p.name, (0.5 * (a0 + a1), b1), xytext=(0, 3), textcoords="offset points", ha="center",
                    fontsize=6, color=colour)
        return
    into = 1.0 if side == "-" else -1.0  # the room lies on the + side of a '-' face
    at = 0.0 if side == "-" else (lx if axis == "x" else ly)
    thick = 0.15
    if axis == "x":
        ax.add_patch(Rectangle((at - thick / 2, a0), thick, a1 - a0, fc=colour, ec="k", lw=0.6))
        mid = (at, 0.5 * (a0 + a1))
        arrow = (into * 0.8, 0.0)
    else:
        ax.add_patch(Rectangle((a0, at - thick / 2), a1 - a0, thick, fc=colour, ec="k", lw=0.6))
        mid = (0.5 * (a0 + a1), at)
        arrow = (0.0, into * 0.8)
    if kind == "exhaust":
        arrow = (-arrow[0], -arrow[1])
        start = (mid[0] - arrow[0], mid[1] - arrow[1])
    else:
        start = mid
    ax.annotate("", xy=(start[0] + arrow[0], start[1] + arrow[1]), xytext=start,
                arrowprops=dict(arrowstyle="->", color=colour, lw=1.2))
    ax.annotate(label, mid, xytext=(4 * into if axis == "x" else 0, 4 * into if axis == "y" else 0),
                textcoords="offset points", fontsize=6, color=colour,
                ha="left" if (axis == "x" and into > 0) else "right" if axis == "x" else "center",
                va="bottom" if (axis == "y" and into > 0) else "top" if axis == "y" else "center")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m plumecast.reference.room_plan PRESET_OR_TOML OUT.png", file=sys.stderr)
        return 2
    out = room_plan_picture(load_scenario_set(args[0]), args[1])
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
