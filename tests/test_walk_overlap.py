"""scripts/walk_overlap.py: the share of a walk's route near other routes."""

from __future__ import annotations

import numpy as np

from conftest import load_script


def test_near_share_counts_the_points_within_the_radius():
    overlap = load_script("walk_overlap")
    route = overlap.route_points([(0.0, 0.0, 0.0, 1.0), (10.0, 4.0, 0.0, 1.0)])  # 4 m along x at z = 1
    assert route.shape == (81, 3)  # every 0.05 m
    there_and_back = overlap.route_points([(0.0, 0.0, 0.0, 1.0), (10.0, 4.0, 0.0, 1.0), (20.0, 0.0, 0.0, 1.0),
                                           (30.0, 4.0, 0.0, 1.0)])
    np.testing.assert_allclose(there_and_back, route)  # a place passed three times counts once
    assert overlap.near_share(route, [route], 0.1) == 1.0
    far = overlap.route_points([(0.0, 0.0, 3.0, 1.0), (10.0, 4.0, 3.0, 1.0)])  # parallel, 3 m away
    assert overlap.near_share(route, [far], 0.5) == 0.0
    beside = route[:40] + [0.0, 0.2, 0.0]  # 0.2 m beside the first 1.95 m
    assert np.isclose(overlap.near_share(route, [beside], 0.21), 41 / 81)  # and the point 0.05 m past its end
    assert overlap.near_share(route, [], 0.5) == 0.0
