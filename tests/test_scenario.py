import numpy as np
import pytest

from plumecast.scenario import ScenarioError, Source, load_scenario_set, preset_names

from conftest import tiny_variant


def test_presets_load_and_validate():
    assert {"paper-room", "tiny"} <= set(preset_names())
    for name in ("tiny", "paper-room"):
        sset = load_scenario_set(name)
        sset.validate_sources(sset.room.discretise(sset.simulation.fine_cell_m))


def test_paper_room_follows_the_paper():
    sset = load_scenario_set("paper-room")
    splits = [s.split for s in sset.scenarios]
    assert splits.count("train") == 26 and splits.count("test") == 27
    assert splits.count("ood") >= 6
    assert all(s.source.moving for s in sset.scenarios if s.split == "ood")
    heights = {s.source.position_m[2] for s in sset.scenarios if not s.source.moving}
    assert len(heights) > 1
    # Walking-speed and slower moving sources.
    speeds = []
    for s in sset.scenarios:
        if s.source.moving:
            p = np.asarray(s.source.path)
            speeds.append(np.max(np.linalg.norm(np.diff(p[:, 1:], axis=0), axis=1) / np.diff(p[:, 0])))
    assert max(speeds) >= 1.0 and min(speeds) <= 0.5
    assert sset.simulation.times_s[-1] == 600.0 and sset.simulation.snapshot_s <= 2.0


def test_source_interpolation():
    s = Source(rate=((0.0, 0.0), (10.0, 2.0)), path=((0.0, 0.0, 0.0, 1.0), (10.0, 5.0, 0.0, 1.0)))
    assert s.rate_at(5.0) == pytest.approx(1.0)
    np.testing.assert_allclose(s.position_at([5.0, 20.0]), [[2.5, 0.0, 1.0], [5.0, 0.0, 1.0]])


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(rate=((0.0, -1.0),), position_m=(1, 1, 1)),
        dict(rate=((0.0, 1.0), (0.0, 2.0)), position_m=(1, 1, 1)),
        dict(rate=((0.0, 1.0),)),
        dict(rate=((0.0, 1.0),), position_m=(1, 1, 1), path=((0, 1, 1, 1), (1, 1, 1, 1))),
        dict(rate=((0.0, 1.0),), path=((0, 1, 1, 1),)),
        dict(rate=((0.0, 1.0),), position_m=(float("nan"), 1, 1)),
    ],
)
def test_bad_sources(kwargs):
    with pytest.raises(ScenarioError):
        Source(**kwargs)


@pytest.mark.parametrize(
    "old,new,match",
    [
        ("position_m = [1.0, 0.5, 0.75]", "position_m = [2.0, 0.75, 0.25]", "inside a wall or obstacle"),
        ("position_m = [1.0, 0.5, 0.75]", "position_m = [9.0, 0.5, 0.75]", "outside the room"),
        ("[40.0, 3.5, 1.7, 0.75]", "[40.0, 3.5, 0.2, 0.75]", "path .* inside a wall"),
    ],
)
def test_sources_in_solids_or_outside_are_rejected(tmp_path, old, new, match):
    sset = load_scenario_set(tiny_variant(tmp_path, old, new))
    with pytest.raises(ScenarioError, match=match):
        sset.validate_sources(sset.room.discretise(sset.simulation.fine_cell_m))


def test_malformed_toml_and_unknown_preset(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[room\nsize_m = 1")
    with pytest.raises(ScenarioError, match="malformed TOML"):
        load_scenario_set(bad)
    with pytest.raises(ScenarioError, match="neither a preset"):
        load_scenario_set("no-such-preset")
    missing = tiny_variant(tmp_path, 'name = "tiny"', 'name = "tiny"\n[extra]')
    missing.write_text(missing.read_text().replace("[[room.inlets]]", "[[room.unused]]"))
    with pytest.raises(ScenarioError, match="missing key"):
        load_scenario_set(missing)
