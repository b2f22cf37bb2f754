"""The rule-based driver: IDM car following, and all-way-stop order in the full world."""
from __future__ import annotations

import numpy as np
import pytest

from sim.traffic import DriverParams, idm
from sim.world import World

P = DriverParams()
DT = 0.05


def follow(x_f, v_f, x_l, v_l, v0, seconds, p=P, length=4.6, lead_speed=None):
    """Integrate a follower (semi-implicit Euler) behind a leader; gaps are bumper to bumper."""
    n = int(round(seconds / DT))
    gaps, speeds, accels = np.empty(n), np.empty(n), np.empty(n)
    for k in range(n):
        gap = x_l - x_f - length
        a = float(idm(np.array([v_f]), np.array([v0]), np.array([gap]), np.array([v_l]), p)[0])
        v_f = max(0.0, v_f + a * DT)
        x_f += v_f * DT
        x_l += v_l * DT
        gaps[k], speeds[k], accels[k] = x_l - x_f - length, v_f, a
    return gaps, speeds, accels


def test_idm_free_road_at_rest_and_at_desired_speed():
    inf = np.array([np.inf])
    assert idm(np.array([0.0]), np.array([10.0]), inf, np.array([0.0]), P)[0] == pytest.approx(P.max_accel)
    assert idm(np.array([10.0]), np.array([10.0]), inf, np.array([0.0]), P)[0] == pytest.approx(0.0, abs=1e-12)
    # half the desired speed: a·(1 − 0.5⁴)
    assert idm(np.array([5.0]), np.array([10.0]), inf, np.array([0.0]), P)[0] == pytest.approx(2.0 * (1 - 0.5**4))
    # faster than desired: slows down
    assert idm(np.array([12.0]), np.array([10.0]), inf, np.array([0.0]), P)[0] < 0


def test_idm_free_road_accelerates_toward_v0():
    v0 = 12.0
    _, speeds, accels = follow(0.0, 0.0, 1e9, 0.0, v0, 60.0)
    assert np.all(np.diff(speeds) >= -1e-12)  # monotone
    assert speeds.max() <= v0 + 1e-9
    assert speeds[-1] == pytest.approx(v0, abs=0.1)
    assert accels[0] == pytest.approx(P.max_accel)
    assert speeds[int(5 / DT)] > 7.0  # it gets going: about 2 m/s² at first


def test_idm_steady_state_following_gap():
    v_lead, v0 = 10.0, 30.0
    gaps, speeds, _ = follow(0.0, 14.0, 60.0, v_lead, v0, 120.0)
    s_star = P.min_gap + v_lead * P.time_headway  # 17 m
    # the exact IDM equilibrium for a finite v0: s* / sqrt(1 − (v/v0)^δ)
    s_eq = s_star / np.sqrt(1 - (v_lead / v0) ** P.delta)
    assert speeds[-1] == pytest.approx(v_lead, abs=0.01)
    assert gaps[-1] == pytest.approx(s_eq, abs=0.05)
    assert gaps[-1] == pytest.approx(s_star, rel=0.02)
    assert np.std(gaps[-200:]) < 0.01  # converged, not oscillating
    assert gaps.min() > P.min_gap  # never closer than the jam distance on the way


@pytest.mark.parametrize("v_lead", [5.0, 8.0])
def test_idm_steady_state_from_too_close(v_lead):
    """Starting 5 m behind, the follower drops back to the same equilibrium gap."""
    v0 = 40.0
    gaps, speeds, accels = follow(0.0, v_lead, 4.6 + 5.0, v_lead, v0, 120.0)
    s_eq = (P.min_gap + v_lead * P.time_headway) / np.sqrt(1 - (v_lead / v0) ** P.delta)
    assert accels[0] < -1.0  # it brakes first
    assert gaps[-1] == pytest.approx(s_eq, abs=0.05)
    assert speeds[-1] == pytest.approx(v_lead, abs=0.01)


def test_idm_stops_before_a_stopped_obstacle():
    v0 = 15.0
    gaps, speeds, accels = follow(0.0, 15.0, 4.6 + 80.0, 0.0, v0, 40.0)
    assert accels.min() < -1.0  # it brakes
    assert accels.min() >= -P.max_decel - 1e-9
    assert speeds[-1] < 0.01  # and comes to a stop
    assert gaps.min() > 0.5  # before the obstacle
    assert gaps[-1] == pytest.approx(gaps.min(), abs=1e-6)
    assert gaps[-1] < P.min_gap + 0.5  # and close to it: it does not stop 20 m early


def test_idm_vectorised_matches_scalar():
    v = np.array([0.0, 5.0, 10.0, 15.0])
    v0 = np.array([10.0, 10.0, 12.0, 15.0])
    gap = np.array([np.inf, 20.0, 5.0, 30.0])
    vl = np.array([0.0, 5.0, 0.0, 20.0])
    out = idm(v, v0, gap, vl, P)
    for k in range(4):
        assert out[k] == idm(v[k:k + 1], v0[k:k + 1], gap[k:k + 1], vl[k:k + 1], P)[0]
    assert out[2] == -P.max_decel  # 5 m from a standstill at 10 m/s: clipped emergency braking


# ---- all-way stop ------------------------------------------------------------------------------

ALLWAY = {
    "description": "three cars meet at an all-way stop",
    "map": {"type": "four_way", "control": "allway_stop", "arm_length": 80},
    "duration_s": 60,
    # the ego stands still on an exit that nobody uses
    "ego": {"start": {"lane": "J>W.0", "s": 5}, "goal": {"lane": "J>W.0", "s": 65}},
    # listed in a different order than they arrive: the S car is nearest, then E, then N
    "actors": [
        {"type": "vehicle", "start": {"lane": "N>J.0", "s": 10}, "speed": 8, "via": [{"lane": "J>E.0", "s": 60}]},
        {"type": "vehicle", "start": {"lane": "S>J.0", "s": 40}, "speed": 8, "via": [{"lane": "J>N.0", "s": 60}]},
        {"type": "vehicle", "start": {"lane": "E>J.0", "s": 25}, "speed": 8, "via": [{"lane": "J>S.0", "s": 60}]},
    ],
}


def run_allway(world: World, seconds: float, n_cars: int):
    """Step the world; per NPC row: arrival (first full stop near the line), entry time and connector.

    Stops 3 s after the last of `n_cars` has entered the junction.
    """
    m = world.map
    v = world.vehicles
    arrived: dict[int, float] = {}
    entered: dict[int, tuple[float, str]] = {}
    min_speed_near_line: dict[int, float] = {}
    violations: list[str] = []
    for _ in range(int(round(seconds / 0.05))):
        world.step()
        if world.steps % 2:
            continue  # the traffic manager runs at 10 Hz
        on_connector: dict[int, str] = {}
        newly: list[tuple[int, str]] = []
        for row, d in world.traffic.drivers.items():
            # the piece of the driver's route under the car's centre
            S, _ = d.route.project(np.array([v.x[row], v.y[row]]))
            lid = d.route.lane_ids[d.route.piece_at(S)]
            if ":" in lid:
                on_connector[row] = lid
                if row not in entered:
                    entered[row] = (world.t, lid)
                    newly.append((row, lid))
            elif row not in entered and m.lanes[lid].control == "stop":
                lane = m.lanes[lid]
                s, _ = lane.frenet(np.array([v.x[row], v.y[row]]))
                if s[0] > lane.length - 8.0:  # the last 8 m before the stop line
                    min_speed_near_line[row] = min(min_speed_near_line.get(row, np.inf), float(v.v[row]))
                    if v.v[row] < 0.1 and row not in arrived:
                        arrived[row] = world.t
        conflicts = m.junctions["J"].conflicts
        for row, c in newly:
            for other, c2 in on_connector.items():
                if other != row and c2 in conflicts[c]:
                    violations.append(f"t={world.t}: row {row} entered {c} while row {other} is on {c2}")
        if len(entered) == n_cars and world.t > max(t for t, _ in entered.values()) + 3.0:
            break
    return arrived, entered, min_speed_near_line, violations


@pytest.mark.parametrize("seed", [0, 1])
def test_allway_stop_full_stops_and_arrival_order(make_scenario, seed):
    sc = make_scenario(ALLWAY)
    world = World(sc, seed)
    m = world.map
    conflicts = m.junctions["J"].conflicts
    paths = ["J:N>J.0->J>E.0", "J:S>J.0->J>N.0", "J:E>J.0->J>S.0"]
    for a in paths:  # the three paths cross each other, so they must take turns
        for b in paths:
            assert a == b or b in conflicts[a]
    arrived, entered, min_speed, violations = run_allway(world, 40.0, 3)
    rows = [1, 2, 3]  # row 0 is the ego
    assert sorted(entered) == rows, f"not every car crossed: entered={entered}"
    assert {row: entered[row][1] for row in rows} == dict(zip(rows, paths))
    for row in rows:
        assert min_speed[row] < 0.1, f"row {row} rolled through the stop at {min_speed[row]:.2f} m/s"
        assert row in arrived
        assert arrived[row] < entered[row][0]
    by_arrival = sorted(rows, key=lambda r: arrived[r])
    by_entry = sorted(rows, key=lambda r: entered[r][0])
    assert by_arrival == [2, 3, 1]  # nearest first: S, then E, then N
    assert by_entry == by_arrival, f"arrivals {arrived}, entries {entered}"
    assert violations == []


def test_a_car_waiting_at_an_allway_stop_keeps_its_arrival_time(make_scenario):
    """The manager re-examines every car whenever any route in the world is extended (a repack).
    A car waiting at its line must keep the time it stopped, or it loses its turn to later
    arrivals. In a 3 × 4 town r1c2 is an all-way stop; the car reaches it from r1c1's junction."""
    data = {"description": "one car through a signal, then to an all-way stop",
            "map": {"type": "grid_town", "rows": 3, "cols": 4, "block": 60}, "duration_s": 60,
            "ego": {"start": {"lane": "r2c0>r2c1.0", "s": 5}, "goal": {"lane": "r2c0>r2c1.0", "s": 40}},
            "actors": [{"type": "vehicle", "start": {"lane": "r1c0>r1c1.0", "s": 30}, "speed": 8,
                        "via": [{"lane": "r1c2>r1c3.0", "s": 40}]}]}
    world = World(make_scenario(data), 0)
    tm = world.traffic
    assert world.map.junctions["r1c2"].kind == "allway_stop"
    update = tm.update

    def repacking(t):  # as if some other car's route were extended every tick
        tm._dirty = True
        update(t)

    tm.update = repacking
    row = next(iter(tm.drivers))
    stops = []  # its recorded stop time at each tick from the first full stop until it enters
    for _ in range(int(60 / 0.05)):
        world.step()
        d = tm.drivers.get(row)
        if d is None or "r1c2:" in d.route.lane_ids[d.route.piece_at(d.S)]:
            break
        if stops or d.stopped_at is not None:
            stops.append(d.stopped_at)
    assert len(stops) > 5 and len(set(stops)) == 1, f"the waiting car's arrival time moved: {stops}"


def test_no_entry_while_a_conflicting_connector_is_occupied(make_scenario):
    """Four cars arriving nearly together at an all-way stop never share crossing paths."""
    data = {
        **ALLWAY,
        "ego": {"start": {"lane": "J>W.0", "s": 40}, "goal": {"lane": "J>W.0", "s": 65}},
        "actors": [
            {"type": "vehicle", "start": {"lane": "N>J.0", "s": 45}, "speed": 8, "via": [{"lane": "J>S.0", "s": 60}]},
            {"type": "vehicle", "start": {"lane": "S>J.0", "s": 44}, "speed": 8, "via": [{"lane": "J>W.0", "s": 20}]},
            {"type": "vehicle", "start": {"lane": "E>J.0", "s": 43}, "speed": 8, "via": [{"lane": "J>N.0", "s": 60}]},
            {"type": "vehicle", "start": {"lane": "W>J.0", "s": 46}, "speed": 8, "via": [{"lane": "J>N.0", "s": 30}]},
        ],
    }
    world = World(make_scenario(data), 3)
    _, entered, min_speed, violations = run_allway(world, 45.0, 4)
    assert sorted(entered) == [1, 2, 3, 4]
    assert all(min_speed[r] < 0.1 for r in entered)
    assert violations == []


def test_only_a_moving_car_on_its_own_crossing_connector_is_a_threat(make_scenario):
    """Inside a junction a car watches the connectors that cross its own. Connectors from one
    entry overlap where they start, so lane matching can put a car on a sibling of its connector;
    and a car standing well short of the crossing is waiting, often for us. Counting either made
    two cars wait for each other for good (town_loop seed 4, dense_urban seed 2)."""
    world = World(make_scenario(ALLWAY), 0)
    tm = world.traffic
    c, c2 = "J:S>J.0->J>N.0", "J:E>J.0->J>S.0"  # rows 2 and 3 in ALLWAY; they cross
    cf = next(cf for cf in tm._conflicts[c] if cf.c2 == c2)

    def threat(actor: int, s: float, v: float):
        return tm._threat(2, c, {cf.lane: [(actor, s, v)]}, yield_to_priority=False)

    assert threat(3, cf.s_c2 - 1.0, 2.0) == cf.s_c  # row 3 drives c2 towards the crossing
    assert threat(1, cf.s_c2 - 1.0, 2.0) is None  # row 1 is matched to c2 but drives N>J → J>E
    assert threat(0, cf.s_c2 - 3.0, 2.0) == cf.s_c  # the ego (route unknown) moving in
    assert threat(0, cf.s_c2 - 3.0, 0.0) is None  # ... standing 3 m short of the crossing
    assert threat(0, cf.s_c2 - 1.0, 0.0) == cf.s_c  # ... standing at it


def test_a_car_turning_off_behind_a_car_standing_in_the_junction_stops(make_scenario):
    """Connectors from one entry overlap where they start: a car standing 8 m into the junction
    has its centre on its own connector, but its rear still on the one a car behind it turns
    onto. That car must take it for its leader (town_loop seed 1: a left-turner off the priority
    road drove into the standing ego)."""
    data = {
        "description": "the ego stands inside a T junction; a car behind it turns left into the stem",
        "map": {"type": "t_junction", "control": "two_way_stop", "arm_length": 80},
        "duration_s": 30,
        "ego": {"start": {"lane": "J:E>J.0->J>W.0", "s": 8}, "goal": {"lane": "J>W.0", "s": 60}},
        "actors": [{"type": "vehicle", "start": {"lane": "E>J.0", "s": 40}, "speed": 8,
                    "via": [{"lane": "J>S.0", "s": 60}]}],
    }
    world = World(make_scenario(data), 0)
    assert world.traffic.drivers[1].route.lane_ids[1] == "J:E>J.0->J>S.0"  # it turns left behind the ego
    kinds = [e.kind for _ in range(int(15 / 0.05)) for e in world.step()]
    assert not [k for k in kinds if k.value.startswith("collision")], kinds
    gap = np.hypot(world.vehicles.x[1] - world.vehicles.x[0], world.vehicles.y[1] - world.vehicles.y[0])
    assert world.vehicles.v[1] < 0.1 and gap < 12.0  # it waits behind the ego, not somewhere else
