"""HD map geometry and queries on every procedural builder; signal plans."""
from __future__ import annotations

import numpy as np
import pytest

from sim import map_builders as mb
from sim.map import SignalPlan
from sim.types import Command, LightState

BUILDER_NAMES = ["straight", "curved", "four_way", "t_junction", "grid_town"]


@pytest.fixture(scope="module")
def maps():
    return {name: mb.BUILDERS[name]() for name in BUILDER_NAMES}


# ---- Frenét frame -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", BUILDER_NAMES)
def test_frenet_of_centreline_points_is_exact(maps, name):
    """A point on the centreline projects to its own arc length with zero offset."""
    m = maps[name]
    rng = np.random.default_rng(1)
    for lane in m.lanes.values():
        s = rng.uniform(0.0, lane.length, 40)
        s2, d2 = lane.frenet(lane.position(s))
        np.testing.assert_allclose(s2, s, atol=1e-6, err_msg=lane.id)
        np.testing.assert_allclose(d2, 0.0, atol=1e-6, err_msg=lane.id)


def test_frenet_sign_convention_on_straight_road(maps):
    lane = maps["straight"].lanes["fwd.0"]  # runs along +x at y = −5.25
    s, d = lane.frenet(np.array([[100.0, -5.25 + 1.2], [50.0, -5.25 - 0.7]]))
    np.testing.assert_allclose(s, [100.0, 50.0], atol=1e-9)
    np.testing.assert_allclose(d, [1.2, -0.7], atol=1e-9)  # + is left of the driving direction
    np.testing.assert_allclose(lane.position(100.0, 1.2), [100.0, -4.05], atol=1e-9)


@pytest.mark.parametrize("name", BUILDER_NAMES)
def test_frenet_then_position_round_trips_near_lanes(maps, name):
    """xy → (s, d) by `Lane.frenet` → xy by `Lane.position`, for random points inside each lane.

    The two must be inverses of each other to within a millimetre, on curves and junction
    connectors too (straight lanes are exact).
    """
    m = maps[name]
    rng = np.random.default_rng(2)
    tol = 1e-6 if name == "straight" else 1e-3
    worst, where = 0.0, None
    for lane in m.lanes.values():
        s = rng.uniform(0.0, lane.length, 60)
        d = rng.uniform(-lane.width / 2, lane.width / 2, 60)
        xy = lane.position(s, d)  # random points within the lane's width
        s2, d2 = lane.frenet(xy)
        back = lane.position(s2, d2)
        err = np.linalg.norm(back - xy, axis=1)
        k = int(np.argmax(err))
        if err[k] > worst:
            worst, where = float(err[k]), (lane.id, float(s[k]), float(d[k]))
    assert worst <= tol, f"{name}: round trip off by {worst:.4f} m at lane/s/d {where}"


# ---- lookups -------------------------------------------------------------------------------------

def test_nearest_lane_uses_heading_to_pick_the_direction(maps):
    m = maps["straight"]  # fwd.1 at y = −1.75 (eastbound), rev.1 at y = +1.75 (westbound)
    xy = np.array([[100.0, 0.3], [100.0, 0.3], [250.0, -0.3], [250.0, -0.3]])
    heading = np.array([0.0, np.pi, 0.0, np.pi])
    li, s, _ = m.nearest_lane(xy, heading)
    assert [m.lane_ids[i] for i in li] == ["fwd.1", "rev.1", "fwd.1", "rev.1"]
    # s is measured along each lane's own direction: rev runs from x = 400 to x = 0
    np.testing.assert_allclose(s, [100.0, 300.0, 250.0, 150.0], atol=1.0)
    li, _, _ = m.nearest_lane(np.array([[100.0, 0.3]]))  # no heading: simply the closest
    assert m.lane_ids[li[0]] == "rev.1"

    j = maps["four_way"]
    xy = np.array([[1.0, -40.0], [1.0, -40.0], [-40.0, 1.0], [-40.0, 1.0]])
    heading = np.array([np.pi / 2, -np.pi / 2, 0.0, np.pi])
    li, _, _ = j.nearest_lane(xy, heading)
    assert [j.lane_ids[i] for i in li] == ["S>J.0", "J>S.0", "W>J.0", "J>W.0"]


@pytest.mark.parametrize("name", BUILDER_NAMES)
def test_is_drivable_on_lane_centres_not_far_away(maps, name):
    m = maps[name]
    for lane in m.lanes.values():
        assert m.is_drivable(lane.centerline).all(), lane.id
        # well inside the lane's edges too
        assert m.is_drivable(lane.position(lane.s, 0.4 * lane.width)).all(), lane.id
        assert m.is_drivable(lane.position(lane.s, -0.4 * lane.width)).all(), lane.id
    lo = m.sample_xy.min(axis=0)
    hi = m.sample_xy.max(axis=0)
    far = np.array([[lo[0] - 50, lo[1] - 50], [hi[0] + 50, hi[1] + 50], [lo[0] - 50, hi[1] + 50], [1e4, 1e4]])
    assert not m.is_drivable(far).any()


def test_is_drivable_edges_of_the_straight_road(maps):
    m = maps["straight"]  # two lanes each way, 3.5 m: the road spans y ∈ [−7, 7]
    ys = np.array([-6.9, -3.0, 0.0, 3.0, 6.9, 7.5, -7.5, 12.0])
    got = m.is_drivable(np.column_stack([np.full(len(ys), 200.0), ys]))
    assert got.tolist() == [True, True, True, True, True, False, False, False]


def test_is_drivable_in_a_junction_box_but_not_its_corners(maps):
    m = maps["four_way"]
    assert m.is_drivable(np.array([[0.0, 0.0], [2.0, -2.0], [-3.0, 3.0]])).all()
    assert not m.is_drivable(np.array([[20.0, 20.0], [-20.0, 20.0], [-20.0, -20.0], [20.0, -20.0]])).any()


# ---- routing -------------------------------------------------------------------------------------

def _check_connected(m, route):
    for a, b in zip(route[:-1], route[1:]):
        lane = m.lanes[a]
        assert b in lane.successors or b in (lane.left, lane.right), f"{a} -> {b} is not connected"


@pytest.mark.parametrize("lanes", [1, 2])
def test_route_lanes_on_grid_town(lanes):
    m = mb.grid_town(style=mb.RoadStyle(lanes=lanes))
    start, goal = "r0c0>r0c1.0", "r3c2>r3c3.0"
    route = m.route_lanes(start, goal)
    assert route[0] == start and route[-1] == goal
    _check_connected(m, route)
    roads = [lid for lid in route if m.lanes[lid].junction is None]
    # a shortest route walks the Manhattan distance: the start road, r0c1 → r3c2 (4 blocks), the
    # goal road; with two lanes a lane change may add a second piece on the same road
    edges = [lid.split(".")[0] for lid in roads]
    assert len(set(edges)) == 6 and edges[0] == "r0c0>r0c1" and edges[-1] == "r3c2>r3c3"
    for lid in route:
        lane = m.lanes[lid]
        if lane.junction is not None:  # a connector sits between its entry and its exit
            i = route.index(lid)
            assert lane.entry == route[i - 1] and lane.successors == [route[i + 1]]


def test_route_lanes_to_itself_and_across_lanes():
    m = mb.grid_town(style=mb.RoadStyle(lanes=2))
    assert m.route_lanes("r1c1>r1c2.0", "r1c1>r1c2.0") == ["r1c1>r1c2.0"]
    r = m.route_lanes("r1c1>r1c2.0", "r1c1>r1c2.1")
    assert r == ["r1c1>r1c2.0", "r1c1>r1c2.1"]  # a lane change to the left neighbour
    r = m.route_lanes("r0c0>r0c1.0", "r0c1>r0c0.0")  # the opposite direction: around a block
    _check_connected(m, r)
    assert r[0] == "r0c0>r0c1.0" and r[-1] == "r0c1>r0c0.0"


def test_route_lanes_unreachable_raises():
    m = mb.straight()
    with pytest.raises(ValueError):
        m.route_lanes("fwd.0", "rev.0")  # no U-turns on an open road


# ---- junction structure --------------------------------------------------------------------------

def test_four_way_connectors_have_the_right_turns(maps):
    m = maps["four_way"]
    j = m.junctions["J"]
    assert len(j.connectors) == 12  # 4 approaches × (left, straight, right), no U-turns
    expect = {  # (from, to) for a single lane each way
        ("S", "N"): Command.STRAIGHT, ("S", "E"): Command.RIGHT, ("S", "W"): Command.LEFT,
        ("N", "S"): Command.STRAIGHT, ("N", "W"): Command.RIGHT, ("N", "E"): Command.LEFT,
        ("E", "W"): Command.STRAIGHT, ("E", "N"): Command.RIGHT, ("E", "S"): Command.LEFT,
        ("W", "E"): Command.STRAIGHT, ("W", "S"): Command.RIGHT, ("W", "N"): Command.LEFT,
    }
    for (a, b), turn in expect.items():
        cid = f"J:{a}>J.0->J>{b}.0"
        lane = m.lanes[cid]
        assert lane.turn is turn, cid
        assert lane.junction == "J" and lane.entry == f"{a}>J.0" and lane.successors == [f"J>{b}.0"]
        assert cid in m.lanes[f"{a}>J.0"].successors
        # the heading change agrees: left turns +90°, right turns −90°
        dh = lane.heading[-1] - lane.heading[0]
        assert dh == pytest.approx({Command.STRAIGHT: 0.0, Command.LEFT: np.pi / 2, Command.RIGHT: -np.pi / 2}[turn],
                                   abs=0.05), cid
        # connectors start and end where their entry and exit lanes do
        np.testing.assert_allclose(lane.centerline[0], m.lanes[f"{a}>J.0"].centerline[-1], atol=1e-9)
        np.testing.assert_allclose(lane.centerline[-1], m.lanes[f"J>{b}.0"].centerline[0], atol=1e-9)


def test_right_hand_traffic_on_four_way(maps):
    m = maps["four_way"]
    assert np.all(m.lanes["S>J.0"].centerline[:, 0] > 0)  # northbound keeps right: x > 0
    assert np.all(m.lanes["J>N.0"].centerline[:, 0] > 0)
    assert np.all(m.lanes["N>J.0"].centerline[:, 0] < 0)  # southbound: x < 0
    assert np.all(m.lanes["W>J.0"].centerline[:, 1] < 0)  # eastbound: y < 0
    assert np.all(m.lanes["E>J.0"].centerline[:, 1] > 0)  # westbound: y > 0
    lane = m.lanes["S>J.0"]
    assert np.cos(lane.heading_at(10.0) - np.pi / 2) == pytest.approx(1.0)
    np.testing.assert_allclose(lane.centerline[0], [1.75, -80.0], atol=1e-9)


def test_right_hand_traffic_on_open_roads(maps):
    m = maps["straight"]  # fwd runs +x, so its lanes are at y < 0; fwd.0 is the rightmost
    assert np.all(m.lanes["fwd.0"].centerline[:, 1] < m.lanes["fwd.1"].centerline[:, 1])
    assert np.all(m.lanes["fwd.1"].centerline[:, 1] < 0) and np.all(m.lanes["rev.1"].centerline[:, 1] > 0)
    assert m.lanes["fwd.0"].left == "fwd.1" and m.lanes["fwd.1"].right == "fwd.0"


def test_junction_controls_by_kind():
    for control, expect in (("signal", "light"), ("allway_stop", "stop"), ("priority", None)):
        m = mb.four_way(control=control)
        assert {m.lanes[f"{a}>J.0"].control for a in "NESW"} == {expect}, control
        assert m.junctions["J"].kind == control
    m = mb.four_way(control="signal")
    groups = {a: m.lanes[f"{a}>J.0"].signal_group for a in "NESW"}
    assert groups["N"] == groups["S"] and groups["E"] == groups["W"] and groups["N"] != groups["E"]
    t = mb.t_junction()  # two-way stop: only the stem (from S) stops
    assert t.lanes["S>J.0"].control == "stop"
    assert t.lanes["E>J.0"].control is None and t.lanes["W>J.0"].control is None


def test_conflicts_are_symmetric_and_exclude_same_entry(maps):
    j = maps["four_way"].junctions["J"]
    m = maps["four_way"]
    for c, others in j.conflicts.items():
        for c2 in others:
            assert c in j.conflicts[c2]
            assert m.lanes[c].entry != m.lanes[c2].entry
    # crossing straights conflict; opposite straights and both right turns from opposite sides do not
    assert "J:E>J.0->J>W.0" in j.conflicts["J:S>J.0->J>N.0"]
    assert "J:N>J.0->J>S.0" not in j.conflicts["J:S>J.0->J>N.0"]
    assert "J:N>J.0->J>W.0" not in j.conflicts["J:S>J.0->J>E.0"]
    # a left turn crosses the opposite straight
    assert "J:N>J.0->J>S.0" in j.conflicts["J:S>J.0->J>W.0"]


# ---- signal plans --------------------------------------------------------------------------------

def test_signal_plan_full_cycle():
    plan = SignalPlan(((0,), (1,)), green=10.0, yellow=3.0, all_red=2.0)
    assert plan.cycle == 30.0
    t = np.arange(0.0, 60.0, 0.05)
    s0 = np.array([plan.state(0, x).value for x in t])
    s1 = np.array([plan.state(1, x).value for x in t])

    def runs(states):
        out = []
        for x, st in zip(t, states):
            if not out or out[-1][0] != st:
                out.append([st, x, x])
            out[-1][2] = x + 0.05
        return [(st, round(b - a, 6)) for st, a, b in out]

    # group 0: green 10, yellow 3, red 2 + the other phase's 15, ...
    assert runs(s0) == [("green", 10.0), ("yellow", 3.0), ("red", 17.0), ("green", 10.0), ("yellow", 3.0),
                        ("red", 17.0)]
    assert runs(s1) == [("red", 15.0), ("green", 10.0), ("yellow", 3.0), ("red", 17.0), ("green", 10.0),
                        ("yellow", 3.0), ("red", 2.0)]
    # all-red: both groups red for `all_red` seconds after each yellow, and never both non-red
    both_red = (s0 == "red") & (s1 == "red")
    np.testing.assert_allclose(both_red.sum() * 0.05, 4 * 2.0)
    assert not np.any((s0 != "red") & (s1 != "red"))
    # exact edges
    assert plan.state(0, 0.0) is LightState.GREEN
    assert plan.state(0, 9.999) is LightState.GREEN
    assert plan.state(0, 10.0) is LightState.YELLOW
    assert plan.state(0, 13.0) is LightState.RED
    assert plan.state(1, 14.999) is LightState.RED
    assert plan.state(1, 15.0) is LightState.GREEN
    assert plan.state(0, 30.0) is LightState.GREEN


def test_signal_plan_offset_and_time_to_change():
    plan = SignalPlan(((0,), (1,)), green=12.0, yellow=3.0, all_red=1.0, offset=5.0)
    # with the offset, group 0 is 5 s into its green at t = 0
    assert plan.state(0, 0.0) is LightState.GREEN
    assert plan.state(0, 7.0) is LightState.YELLOW
    assert plan.state(1, 11.0) is LightState.GREEN
    assert plan.time_to_change(0.0) == pytest.approx(7.0)  # green ends at 12 − 5
    assert plan.time_to_change(8.0) == pytest.approx(2.0)  # yellow ends at 15 − 5
    assert plan.time_to_change(10.5) == pytest.approx(0.5)  # all-red ends at 16 − 5
    assert plan.time_to_change(11.0) == pytest.approx(12.0)  # phase 1's green just began
    plain = SignalPlan(((0,), (1,)))
    for t in np.arange(0.0, 64.0, 0.25):
        ttc = plain.time_to_change(t)
        assert 0 < ttc <= 12.0
        for g in (0, 1):  # nothing changes before the announced time, and something changes at it
            assert plain.state(g, t + ttc - 1e-6) is plain.state(g, t)
        assert any(plain.state(g, t + ttc + 1e-6) is not plain.state(g, t) for g in (0, 1))
