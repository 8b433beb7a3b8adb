"""scripts/walk_overlap.py: the share of a walk's route near other routes."""

from __future__ import annotations

import numpy as np

from conftest import load_script


def test_near_share_counts_the_points_within_the_radius():
    overlap = load_script("walk_overlap")
    route = overlap.route_points([(0.0, 0.0, 0.0, 1.0), (10.0, 4.0, 0.0, 1.0)])  # 4 m along x at z = 1
    assert route.shape == (20, 3)
    assert overlap.near_share(route, [route], 0.1) == 1.0
    far = overlap.route_points([(0.0, 0.0, 3.0, 1.0), (10.0, 4.0, 3.0, 1.0)])  # parallel, 3 m away
    assert overlap.near_share(route, [far], 0.5) == 0.0
    assert np.isclose(overlap.near_share(route, [route[:10] + [0.0, 0.2, 0.0]], 0.25), 0.5)  # beside its first half
    assert overlap.near_share(route, [], 0.5) == 0.0
