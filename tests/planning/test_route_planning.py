"""Routes on a constructed grid: lane graph search, joined geometry and junction commands."""
from __future__ import annotations

import numpy as np
import pytest

from sim.map_builders import grid_town, straight
from sim.route import COMMAND_LOOKAHEAD, ROUTE_STEP, build_route, route_through
from sim.types import Command


@pytest.fixture(scope="module")
def town():
    return grid_town(3, 3)  # nodes r{i}c{j} at (70 j, 70 i) [m]


def turn_from_geometry(m, lane_id: str) -> Command:
    """Left, right or straight from a connector's heading change alone (not from its `turn` tag)."""
    lane = m.lanes[lane_id]
    dh = float(lane.heading[-1] - lane.heading[0])
    dh = (dh + np.pi) % (2 * np.pi) - np.pi
    if dh > np.radians(45):
        return Command.LEFT
    if dh < -np.radians(45):
        return Command.RIGHT
    return Command.STRAIGHT


def assert_connected(m, lane_ids):
    for a, b in zip(lane_ids[:-1], lane_ids[1:]):
        la = m.lanes[a]
        assert b in la.successors or b in (la.left, la.right), f"{a} -> {b} is neither a successor nor a neighbour"


def test_left_turn_route_is_the_shortest_lane_sequence(town):
    # east along row 0, left at r0c1 (a T-junction), straight through r1c1 to the north
    ids = town.route_lanes("r0c0>r0c1.0", "r1c1>r2c1.0")
    assert ids == ["r0c0>r0c1.0", "r0c1:r0c0>r0c1.0->r0c1>r1c1.0", "r0c1>r1c1.0",
                   "r1c1:r0c1>r1c1.0->r1c1>r2c1.0", "r1c1>r2c1.0"]
    assert_connected(town, ids)


def test_route_geometry_is_continuous_and_ends_at_the_places(town):
    r = route_through(town, [("r0c0>r0c1.0", 10.0), ("r1c2>r2c2.0", 20.0)])
    assert_connected(town, list(r.lane_ids))
    assert r.lane_ids[0] == "r0c0>r0c1.0" and r.lane_ids[-1] == "r1c2>r2c2.0"
    start = town.lanes["r0c0>r0c1.0"].position(10.0)
    goal = town.lanes["r1c2>r2c2.0"].position(20.0)
    np.testing.assert_allclose(r.points[0], start, atol=1e-6)
    np.testing.assert_allclose(r.points[-1], goal, atol=1e-6)
    np.testing.assert_allclose(start, [70 * 0 + 8.5 + 10.0, -1.75], atol=1e-6)  # 8.5 m stop-line setback
    np.testing.assert_allclose(goal, [140 + 1.75, 70 + 8.5 + 20.0], atol=1e-6)
    step = np.linalg.norm(np.diff(r.points, axis=0), axis=1)
    assert step.max() <= ROUTE_STEP + 1e-6 and step.min() > 0.05  # no jumps, no repeated points
    assert r.s[-1] == pytest.approx(np.sum(step))
    # every piece starts where its lane's geometry is on the route
    for k, lid in enumerate(r.lane_ids):
        lane = town.lanes[lid]
        s0 = r.piece_s0[k]
        np.testing.assert_allclose(r.position(r.piece_start[k]), lane.position(s0), atol=0.3)
    # heading follows the lanes: east at the start, north at the end
    assert r.heading_at(1.0) % (2 * np.pi) == pytest.approx(0.0, abs=1e-3)
    assert r.heading_at(r.length - 1.0) % (2 * np.pi) == pytest.approx(np.pi / 2, abs=1e-3)


@pytest.mark.parametrize("start, goal", [
    ("r0c0>r0c1.0", "r1c2>r2c2.0"),   # left, right, left
    ("r1c0>r1c1.0", "r1c1>r0c1.0"),   # right at a signal
    ("r0c0>r0c1.0", "r0c1>r0c2.0"),   # straight through a T-junction
    ("r2c2>r2c1.0", "r0c1>r0c0.0"),   # west, then south down the middle column
])
def test_commands_match_the_junction_geometry(town, start, goal):
    ids = town.route_lanes(start, goal)
    assert_connected(town, ids)
    r = build_route(town, ids)
    junction_pieces = [k for k, lid in enumerate(ids) if town.lanes[lid].junction is not None]
    assert junction_pieces
    for k in junction_pieces:
        expected = turn_from_geometry(town, ids[k])
        assert town.lanes[ids[k]].turn is expected
        s_in = r.piece_start[k]
        # announced from COMMAND_LOOKAHEAD before the junction until its exit (to the route's
        # point spacing)
        for s in np.arange(s_in - COMMAND_LOOKAHEAD + 1.0, r.piece_start[k + 1] - ROUTE_STEP, 2.0):
            assert r.command_at(s) is expected, (ids[k], s)
        # and not much earlier: the previous junction's exit is followed by a plain follow stretch
        if s_in - COMMAND_LOOKAHEAD - 3.0 > (r.piece_start[k - 1] if k > 0 else 0.0):
            assert r.command_at(s_in - COMMAND_LOOKAHEAD - 3.0) is Command.FOLLOW


def test_known_left_turn_is_announced_within_40_m(town):
    r = build_route(town, town.route_lanes("r0c0>r0c1.0", "r1c1>r2c1.0"))
    line = r.piece_start[1]  # the stop line before the left turn at r0c1, x = 61.5
    assert r.position(line)[0] == pytest.approx(61.5, abs=1e-3)
    assert r.command_at(line - 35.0) is Command.LEFT
    assert r.command_at(line - 5.0) is Command.LEFT
    assert r.command_at(line - 45.0) is Command.FOLLOW
    # the turn itself turns left by 90°
    h = r.heading_at(r.piece_start[2] + 1.0) - r.heading_at(line - 1.0)
    assert h == pytest.approx(np.pi / 2, abs=0.05)
    # straight through r1c1 afterwards
    assert r.command_at(r.piece_start[3] - 10.0) is Command.STRAIGHT


def test_lane_change_route_uses_the_neighbour():
    m = straight(300.0)
    ids = m.route_lanes("fwd.0", "fwd.1")
    assert ids == ["fwd.0", "fwd.1"]
    assert_connected(m, ids)
    r = build_route(m, ids, 10.0, 200.0)
    assert r.points[0] == pytest.approx([10.0, -5.25])
    assert r.points[-1] == pytest.approx([200.0, -1.75])
    assert np.all(np.diff(r.points[:, 0]) > 0)  # always forward
    assert np.abs(np.diff(r.points[:, 1])).max() < 0.2  # a gradual change, no step across


def test_no_route_raises():
    m = straight(100.0)
    with pytest.raises(ValueError):
        m.route_lanes("fwd.0", "rev.0")
