"""How much of each OOD walk's route runs near a training walk's: a check of how new the routes are.

For every moving source of the split ``--split`` (default ood) of a preset, the share of
its route's length within ``--radius`` m (3D) of a training walk's route. A route is its
waypoints joined by lines, sampled every STEP_M; a walk goes forth and back many times, and
each place it passes counts once. Prints a Markdown table; exit 2 on an unknown preset.

    .venv/bin/python scripts/walk_overlap.py l-office-xl
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


STEP_M = 0.05


def route_points(path, step_m: float = STEP_M) -> np.ndarray:
    """Distinct points ``(n, 3)``, at most ``step_m`` apart, along a source path's waypoints ``(t, x, y, z)``."""
    p = np.asarray(path, float)[:, 1:4]
    # a forth-and-back path repeats its legs: sample each distinct leg once
    legs = np.unique(np.round([np.concatenate(sorted([a, b], key=tuple)) for a, b in zip(p[:-1], p[1:])], 9), axis=0)
    points = [a + np.linspace(0.0, 1.0, max(2, int(np.ceil(np.linalg.norm(b - a) / step_m)) + 1))[:, None] * (b - a)
              for a, b in (leg.reshape(2, 3) for leg in legs)]
    return np.unique(np.round(np.concatenate(points), 9), axis=0)


def near_share(route: np.ndarray, others: list[np.ndarray], radius_m: float) -> float:
    """Share of the points of ``route`` (:func:`route_points`: the share of its length) within ``radius_m`` of a
    point of ``others``."""
    if not others:
        return 0.0
    pool = np.concatenate(others)
    d = np.linalg.norm(route[:, None, :] - pool[None, :, :], axis=2).min(axis=1)
    return float(np.mean(d < radius_m))


def training_routes(sset) -> list[np.ndarray]:
    """:func:`route_points` of every moving source of a scenario set's train split."""
    return [route_points(sc.source.path) for sc in sset.scenarios if sc.split == "train" and sc.source.moving]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("preset")
    ap.add_argument("--split", default="ood")
    ap.add_argument("--radius", type=float, default=0.5, help="m")
    args = ap.parse_args(argv)
    from plumecast.scenario import load_scenario_set

    try:
        sset = load_scenario_set(args.preset)
    except Exception as err:  # unknown preset or a bad file: one line, exit 2
        print(f"error: {err}", file=sys.stderr)
        return 2
    train = training_routes(sset)
    print(f"| {args.split} walk | share of route within {args.radius} m of a training walk's |\n|---|---|")
    for sc in sset.scenarios:
        if sc.split == args.split and sc.source.moving:
            print(f"| {sc.name} | {near_share(route_points(sc.source.path), train, args.radius):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
