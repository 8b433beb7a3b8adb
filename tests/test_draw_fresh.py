"""scripts/draw_fresh.py: fresh l-office-xl and paper-room-wide scenarios, clear of every held source, on the same room."""

from __future__ import annotations

import re

import numpy as np

from conftest import load_script
from plumecast.scenario import load_scenario_set


def _plan_distances(sset, held_sset):
    new = np.array([sc.source.position_m[:2] for sc in sset.scenarios if not sc.source.moving])
    held = np.array([sc.source.position_m[:2] for sc in held_sset.scenarios if not sc.source.moving])
    return np.hypot(new[:, None, 0] - held[None, :, 0], new[:, None, 1] - held[None, :, 1]).min(axis=1)


def test_a_draw_is_new_scenarios_on_l_office_xls_room(tmp_path):
    fresh = load_script("draw_fresh")
    overlap = load_script("walk_overlap")
    first = tmp_path / "first.toml"
    assert fresh.main(["--test", "4", "--ood", "2", "--test-seed", "5", "--walk-seed", "6", "--name", "f1",
                       "--out", str(first)]) == 0
    second = tmp_path / "second.toml"
    assert fresh.main(["--test", "4", "--ood", "0", "--test-seed", "5", "--walk-seed", "6", "--name", "f2", "--prefix", "p",
                       "--exclude", str(first), "--out", str(second)]) == 0
    base = load_scenario_set("l-office-xl")
    one, two = load_scenario_set(first), load_scenario_set(second)
    # the room, grid and flow settings are l-office-xl's: generate reuses its cached flow
    def setting(s):
        return {k: v for k, v in s.config.items() if k not in ("name", "scenarios")}

    assert setting(one) == setting(base) and set(setting(base)) >= {"room", "simulation", "flow"}
    assert [sc.split for sc in one.scenarios] == ["test"] * 4 + ["ood"] * 2
    assert [sc.split for sc in two.scenarios] == ["test"] * 4
    assert [sc.name for sc in one.scenarios][::3] == ["f1-test-00-floor", "f1-test-03-ceiling"]
    assert one.scenarios[4].name.startswith("f1-ood-walk-00-") and two.scenarios[0].name == "p-test-00-floor"
    heights = [sc.source.position_m[2] for sc in one.scenarios if not sc.source.moving]
    assert heights == [0.375, 1.125, 1.875, 2.625]  # cycled over the four classes
    assert _plan_distances(one, base).min() >= 0.5
    # the same seed as the first draw: only the exclusion keeps it off the first draw's positions
    assert _plan_distances(two, base).min() >= 0.5 and _plan_distances(two, one).min() >= 0.5
    train_routes = [overlap.route_points(sc.source.path) for sc in base.scenarios
                    if sc.split == "train" and sc.source.moving]
    for sc in one.scenarios[4:]:
        assert sc.source.moving
        assert overlap.near_share(overlap.route_points(sc.source.path), train_routes, 0.5) < 0.30


def test_a_paper_room_draw_keeps_its_room_and_heights_and_leaves_every_used_cell(tmp_path):
    fresh = load_script("draw_fresh")
    out = tmp_path / "p.toml"
    assert fresh.main(["--room", "paper-room-wide", "--test", "6", "--ood", "3", "--test-seed", "5", "--walk-seed", "6",
                       "--name", "p", "--out", str(out)]) == 0
    base, one = load_scenario_set("paper-room-wide"), load_scenario_set(out)
    assert {k: v for k, v in one.config.items() if k not in ("name", "scenarios")} == \
        {k: v for k, v in base.config.items() if k not in ("name", "scenarios")}
    assert [sc.split for sc in one.scenarios] == ["test"] * 6 + ["ood"] * 3
    statics = [sc for sc in one.scenarios if not sc.source.moving]
    # cycled over paper-room's classes: at, below and above the 1.5 m plane
    assert [sc.source.position_m[2] for sc in statics] == [1.5, 1.1, 1.9] * 2
    assert [sc.name for sc in statics[:3]] == ["p-test-00-at", "p-test-01-below", "p-test-02-above"]
    # the default clearance, 0.5 m: a plane cell no static source of the preset has used
    assert _plan_distances(one, base).min() >= 0.5
    walks = one.scenarios[6:]
    assert all(sc.source.moving for sc in walks)
    assert [sc.source.path[0][3] for sc in walks] == [1.5, 1.1, 1.9]  # (t, x, y, z)
    assert walks[0].source.path[-1][0] >= base.simulation.horizon_s  # paper-room's 600 s, not l-office's 480 s


def test_a_draw_that_cannot_be_had_or_would_overwrite_is_refused(tmp_path, capsys):
    fresh = load_script("draw_fresh")
    out = tmp_path / "f.toml"
    # a greedy draw finds 44-45 free positions in l-office-xl at 0.5 m (docs/evaluation.md)
    assert fresh.main(["--test", "60", "--ood", "0", "--test-seed", "41", "--walk-seed", "1", "--name", "f",
                       "--out", str(out)]) == 2
    assert re.search(r"found \d+ of 60 releases", capsys.readouterr().err) and not out.exists()
    out.write_text("kept")
    assert fresh.main(["--test", "1", "--ood", "0", "--test-seed", "1", "--walk-seed", "1", "--name", "f",
                       "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err and out.read_text() == "kept"
    assert fresh.main(["--test", "1", "--ood", "0", "--test-seed", "1", "--walk-seed", "1", "--name", "f",
                       "--exclude", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "g.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err and not (tmp_path / "g.toml").exists()
    assert list(tmp_path.iterdir()) == [out]  # no temporary left behind
