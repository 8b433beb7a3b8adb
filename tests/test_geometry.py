import numpy as np
import pytest

from plumecast.geometry import (
    Box,
    GeometryError,
    Patch,
    Room,
    coarsen_mean,
    parse_ascii_plan,
    plane_fluid_fraction,
    plane_layers,
)
from plumecast.scenario import load_scenario_set


def simple_room(**kw):
    args = dict(
        size_m=(2.0, 1.0, 1.0),
        plan_cell_m=0.5,
        plan=np.ones((2, 4), bool),
        inlets=(Patch("in", "z+", (0.0, 0.5, 0.0, 1.0), 1.0),),
        outlets=(Patch("out", "x+", (0.0, 1.0, 0.0, 0.5), None),),
    )
    args.update(kw)
    return Room(**args)


def test_ascii_plan_first_line_is_highest_y():
    mask = parse_ascii_plan("#..\n...")
    assert mask.shape == (2, 3)
    assert not mask[1, 0] and mask[0].all()


@pytest.mark.parametrize("plan", ["", "..\n.", ".x."])
def test_malformed_ascii_plan(plan):
    with pytest.raises(GeometryError):
        parse_ascii_plan(plan)


def test_discretise_balances_free_outlets():
    g = simple_room().discretise(0.25)
    assert g.shape == (4, 4, 8)
    assert g.volume_flow_in_m3_s() == pytest.approx(0.5 * 1.0 * 1.0)
    assert g.volume_flow_out_m3_s() == pytest.approx(g.volume_flow_in_m3_s(), rel=1e-12)
    # Inlet on the ceiling pushes down (w < 0); outlet on x+ pulls out (u > 0).
    assert (g.w_bc[-1][g.inlet_faces[2][-1]] < 0).all()
    assert (g.u_bc[:, :, -1][g.outlet_faces[0][:, :, -1]] > 0).all()


def test_unbalanced_fixed_outlets_are_rejected():
    room = simple_room(outlets=(Patch("out", "x+", (0.0, 1.0, 0.0, 0.5), 0.3),))
    with pytest.raises(GeometryError, match="unbalanced"):
        room.discretise(0.25)


def test_patch_on_solid_is_rejected():
    plan = np.ones((2, 4), bool)
    plan[:, -1] = False  # the x+ wall is solid behind the outlet
    with pytest.raises(GeometryError, match="wall or obstacle"):
        simple_room(plan=plan).discretise(0.25)


def test_obstacle_cells_are_solid():
    g = simple_room(obstacles=(Box("desk", 0.5, 1.0, 0.0, 0.5, 0.0, 0.5),)).discretise(0.25)
    assert not g.fluid[:2, :2, 2:4].any()
    assert g.fluid[2:, :2, 2:4].all()
    assert g.fluid.sum() == 4 * 4 * 8 - 2 * 2 * 2


def test_plane_layers_and_fraction():
    g = simple_room(obstacles=(Box("cab", 0.0, 0.5, 0.0, 0.25, 0.0, 0.75),)).discretise(0.25)
    lower, upper, wgt = plane_layers(g, 0.5)
    assert (lower, upper, wgt) == (1, 2, pytest.approx(0.5))
    frac = plane_fluid_fraction(g, 0.5, 0.5)
    assert frac.shape == (2, 4)
    assert frac[0, 0] == pytest.approx(0.5)  # the cabinet covers half of that coarse cell
    assert frac[1:, :].min() == 1.0
    with pytest.raises(GeometryError):
        plane_layers(g, 1.5)


def test_coarsen_mean_preserves_mean():
    fine = np.arange(32.0).reshape(4, 8)
    assert coarsen_mean(fine, 0.25, 0.5).mean() == pytest.approx(fine.mean())


def test_paper_room_plan_matches_the_paper(reference_dir):
    """The preset's plane mask equals the fluid cells of the real Fluent export (791)."""
    import re

    cells = set()
    for line in (reference_dir / "fluent_turb_vis.txt").read_text().splitlines():
        m = re.match(r"\s*x(\d+)y(\d+)z(\d+)\s+\S+", line)
        if m:
            cells.add((int(m[2]) - 1, int(m[1]) - 1))
    sset = load_scenario_set("paper-room")
    grid = sset.room.discretise(sset.simulation.fine_cell_m)
    frac = plane_fluid_fraction(grid, sset.simulation.plane_height_m, sset.simulation.plane_cell_m)
    assert frac.shape == (26, 49)
    assert {tuple(map(int, ij)) for ij in np.argwhere(frac > 0)} == cells
    assert len(cells) == 791
