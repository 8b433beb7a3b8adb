"""Draw fresh test and OOD scenarios of l-office-xl or paper-room-wide: scenarios no model has been judged on.

A held-out split that has judged many model forms is used up (docs/evaluation.md): a
verdict on it is one more look at the same scenarios. This writes a scenario file with the
``--room`` preset's room, grid and flow settings unchanged (so ``plumecast generate`` reuses
its cached 3D flow) and only new scenarios:

- ``--test N`` static releases drawn with ``--test-seed`` (l-office-xl: fine-cell centres 0.5 m
  clear of walls; paper-room-wide: plane-cell centres whose 8 neighbours are open), at least
  ``--clearance-m`` in plan from every static source of the preset and of every ``--exclude``
  file (earlier fresh draws), heights cycled over the room's classes (l-office's four;
  paper-room's at, below and above the plane);
- ``--ood M`` walks drawn with ``--walk-seed`` as l-office-xl's OOD walks are (paper-room: at
  its three heights and its walks' speeds), kept in draw order only when under
  ``--max-route-share`` of their route lies within 0.5 m of a training walk's route
  (scripts/walk_overlap.py's measure).

    .venv/bin/python scripts/draw_fresh.py --test 28 --ood 32 --test-seed 41 --walk-seed 42 \\
        --exclude out/l-office-xl-fresh.toml --name l-office-xl-fresh2 --out out/l-office-xl-fresh2.toml
    plumecast generate out/l-office-xl-fresh2.toml --engine openfoam --workers 2 --out data/l-office-xl-fresh2-of.nc

Exit 2, and no file, when the draws cannot be had (too few free positions at that clearance,
too few new walks), an --exclude file does not load, or --out exists.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_presets as mp  # noqa: E402
import walk_overlap as wo  # noqa: E402

from plumecast.io.atomic import atomic_path  # noqa: E402
from plumecast.scenario import ScenarioError, load_scenario_set, scenario_set_from_config  # noqa: E402

ROUTE_RADIUS_M = 0.5
MAX_WALK_DRAWS = 2000
ROOMS = ("l-office-xl", "paper-room-wide")  # the presets a draw can be made in (:func:`room`)


class Room(NamedTuple):
    """What a draw needs of a preset's room: release proposals, heights by class name, furniture, walks."""

    propose: Callable  # rng -> (x, y) m
    blocked: Callable  # (x, y) m -> bool
    heights_m: dict  # height class name -> z m, in the order releases cycle over
    furniture: list  # (x0, x1, y0, y1, top m)
    walks: Callable  # (n, seed) -> [(polyline, speed m/s)]
    clearance_m: float  # the default --clearance-m


def room(preset: str) -> Room:
    """The :class:`Room` of one of ``ROOMS``."""
    if preset == "l-office-xl":
        propose, blocked, _, furniture = mp._l_office_cells()
        return Room(propose, blocked, mp.LO_HEIGHTS_M, furniture, mp.l_office_xl_walks, mp.LO_XL_CLEARANCE_M)
    if preset != "paper-room-wide":
        raise ValueError(f"no fresh draws in {preset!r}: one of {', '.join(ROOMS)}")
    propose, blocked, _ = mp._paper_room_cells()
    heights = dict(zip(("at", "below", "above"), mp.HEIGHTS_M))
    # 0.5 m, not its test split's 0.75 m: at 0.75 m one free plane-cell centre is left beside paper-room-wide's
    # 143 static sources; at 0.5 m a fresh source still sits in a plane cell no source has used
    return Room(propose, blocked, heights, mp.PR_FURNITURE, mp.paper_room_walks, 0.5)


def static_positions(sset) -> list[tuple[float, float]]:
    """Plan positions (x, y) m of every static source of a scenario set."""
    return [tuple(sc.source.position_m[:2]) for sc in sset.scenarios if not sc.source.moving]


def draw(preset: str, n_test: int, n_ood: int, test_seed: int, walk_seed: int, clearance_m: float,
         max_route_share: float, exclude_sets=()) -> tuple[list, list]:
    """``(releases, walks)``: releases ``(x, y, z)`` m; walks ``(polyline, speed m/s, path, route share)``."""
    base = load_scenario_set(preset)
    r = room(preset)
    held = static_positions(base) + [xy for s in exclude_sets for xy in static_positions(s)]
    releases = (mp.draw_releases(n_test, test_seed, r.propose, list(r.heights_m.values()), r.furniture, held,
                                 clearance_m, r.blocked) if n_test else [])
    train_routes = wo.training_routes(base)
    walks = []
    if n_ood:
        for poly, speed in r.walks(MAX_WALK_DRAWS, walk_seed):
            path = mp.ping_pong(poly, speed, horizon_s=base.simulation.horizon_s)
            share = wo.near_share(wo.route_points(path), train_routes, ROUTE_RADIUS_M)
            if share < max_route_share:
                walks.append((poly, speed, path, share))
                if len(walks) == n_ood:
                    break
        if len(walks) < n_ood:
            raise RuntimeError(f"found {len(walks)} of {n_ood} walks under {max_route_share:.2f} of their route "
                               f"near a training walk's in {MAX_WALK_DRAWS} draws")
    return releases, walks


def scenario_text(preset: str, name: str, releases, walks, provenance: str, prefix: str | None = None) -> str:
    """The scenario file: the preset's text up to its first scenario (room, grid, flow), then the draws,
    named ``PREFIX-test-NN-CLASS`` and ``PREFIX-ood-walk-NN-CLASS`` (``prefix`` defaults to ``name``)."""
    prefix = name if prefix is None else prefix
    heights = room(preset).heights_m

    def _height_class(z: float) -> str:
        return next(c for c, h in heights.items() if h == z)

    text = resources.files("plumecast.presets").joinpath(f"{preset}.toml").read_text()
    head = text[: text.index("[[scenarios]]")].replace(f'name = "{preset}"', f'name = "{name}"')
    lines = [f"# {provenance}", head.rstrip("\n"), ""]
    for i, (x, y, z) in enumerate(releases):
        lines += ["[[scenarios]]", f'name = "{prefix}-test-{i:02d}-{_height_class(z)}"', 'split = "test"',
                  f"source = {{ position_m = {mp.fmt((x, y, z))}, rate = [[0.0, 1.0]] }}", ""]
    for i, (poly, speed, path, share) in enumerate(walks):
        lines += ["[[scenarios]]", f'name = "{prefix}-ood-walk-{i:02d}-{_height_class(poly[0][2])}"', 'split = "ood"',
                  f"# drawn: {speed} m/s along {len(poly)} waypoints, forth and back; "
                  f"{share:.2f} of its route near a training walk's",
                  f"source = {{ rate = [[0.0, 1.0]], path = {mp.fmt(path)} }}", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--room", choices=ROOMS, default="l-office-xl", help="the preset whose room is drawn in")
    ap.add_argument("--test", type=int, default=28, help="static test releases (default 28)")
    ap.add_argument("--ood", type=int, default=32, help="OOD walks (default 32)")
    ap.add_argument("--test-seed", type=int, required=True)
    ap.add_argument("--walk-seed", type=int, required=True)
    ap.add_argument("--clearance-m", type=float,
                    help=f"plan distance to every held static source (default: l-office-xl {mp.LO_XL_CLEARANCE_M}, "
                         f"paper-room-wide 0.5)")
    ap.add_argument("--max-route-share", type=float, default=0.30)
    ap.add_argument("--exclude", nargs="*", default=[], help="earlier fresh scenario files whose static sources stay clear")
    ap.add_argument("--name", required=True, help="the scenario set's name")
    ap.add_argument("--prefix", help="the scenarios' names' prefix (default: --name)")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    if a.test < 0 or a.ood < 0 or a.test + a.ood == 0:
        print("error: --test and --ood must be >= 0, not both 0", file=sys.stderr)
        return 2
    if a.out.exists():
        print(f"error: {a.out} exists; draws are never overwritten", file=sys.stderr)
        return 2
    clearance_m = room(a.room).clearance_m if a.clearance_m is None else a.clearance_m
    room_option = "" if a.room == "l-office-xl" else f"--room {a.room} "  # l-office-xl's provenance as before
    provenance = (f"Fresh draw of {a.room} by scripts/draw_fresh.py: {room_option}--test {a.test} --ood {a.ood} "
                  f"--test-seed {a.test_seed} --walk-seed {a.walk_seed} --clearance-m {clearance_m} --max-route-share "
                  f"{a.max_route_share} --exclude {' '.join(Path(p).name for p in a.exclude) or '(none)'}"
                  f"{f' --prefix {a.prefix}' if a.prefix else ''}")
    try:
        excluded = [load_scenario_set(p) for p in a.exclude]
        releases, walks = draw(a.room, a.test, a.ood, a.test_seed, a.walk_seed, clearance_m, a.max_route_share,
                               excluded)
        text = scenario_text(a.room, a.name, releases, walks, provenance, a.prefix)
        scenario_set_from_config(tomllib.loads(text), f"fresh draw {a.name}")  # the generator's own validation
    except (ScenarioError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    with atomic_path(a.out) as tmp:
        Path(tmp).write_text(text)
    shares = ", ".join(f"{w[3]:.2f}" for w in walks)
    print(f"wrote {a.out}: {len(releases)} test releases, {len(walks)} OOD walks (route shares {shares or '-'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
