"""Each behaviour state, triggered by a constructed situation on a four-way junction or a straight road."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from control.pure_pursuit import PurePursuitPID
from planning.behaviour import BehaviourLayer, State
from planning.planner import Planner, PlannerInput
from planning.prediction import predict
from sim.map_builders import RoadStyle, four_way, straight
from sim.route import build_route
from sim.types import ActorType, Control, LightState, ObjectState, StopLineState, VehicleState
from sim.vehicle_model import VehicleParams, step as bicycle_step

T = np.arange(0.0, 5.0 + 1e-9, 0.1)  # the lattice's prediction times [s]
HALF = 2.3  # ego half-length [m]


# ---- maps and routes ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def signal_map():
    return four_way(control="signal")


@pytest.fixture(scope="module")
def allway_map():
    return four_way(control="allway_stop")


@pytest.fixture(scope="module")
def twoway_map():
    return four_way(control="two_way_stop")  # W>J and E>J stop; N>J and S>J have priority


@pytest.fixture(scope="module")
def road():
    return straight(250.0, RoadStyle(lanes=1, speed_limit=11.1))  # fwd.0 at y = −1.75, rev.0 at y = +1.75


def junction_route(m, entry: str, exit_: str):
    """Through junction J from arm `entry` to arm `exit_` (e.g. "S", "N")."""
    return build_route(m, [f"{entry}>J.0", f"J:{entry}>J.0->J>{exit_}.0", f"J>{exit_}.0"])


def ego_at(route, S: float, v: float) -> VehicleState:
    x, y = route.position(S)
    return VehicleState(float(x), float(y), float(route.heading_at(S)), v)


def car(oid, x, y, yaw, v, length=4.6, width=1.9) -> ObjectState:
    return ObjectState(oid, ActorType.VEHICLE, x, y, yaw, v * np.cos(yaw), v * np.sin(yaw), length, width)


def walker(oid, x, y, yaw, v) -> ObjectState:
    return ObjectState(oid, ActorType.PEDESTRIAN, x, y, yaw, v * np.cos(yaw), v * np.sin(yaw), 0.5, 0.5)


def decide(layer, t, route, S, v, objects=(), lines=()):
    objects = list(objects)
    return layer.decide(t, ego_at(route, S, v), S, objects, predict(objects, layer.road_map, T), list(lines))


def no_stop_before(goal, S_line: float) -> bool:
    return goal.stop_at is None or goal.stop_at > S_line + 5.0


# ---- traffic lights ----------------------------------------------------------------------------
def light(route, state):
    return StopLineState(float(route.piece_start[1]), "light", state, "J")


def test_red_light_ahead_stops_at_the_line(signal_map):
    r = junction_route(signal_map, "S", "N")
    line = light(r, LightState.RED)
    assert line.S == pytest.approx(71.5)
    d = decide(BehaviourLayer(signal_map, r), 0.0, r, 30.0, 10.0, lines=[line])
    assert d.state is State.STOP_LIGHT
    assert d.goal.stop_at == pytest.approx(line.S, abs=0.1)
    # beyond the lookahead the light does not matter yet
    r_long = build_route(signal_map, ["S>J.0", "J:S>J.0->J>N.0", "J>N.0"])
    far = decide(BehaviourLayer(signal_map, r_long), 0.0, r_long, 0.0, 10.0, lines=[line])
    assert far.state is State.STOP_LIGHT  # 69 m to the line < 80 m lookahead
    # a light not (yet) seen counts as red
    unseen = decide(BehaviourLayer(signal_map, r), 0.0, r, 30.0, 10.0, lines=[light(r, None)])
    assert unseen.state is State.STOP_LIGHT


def test_green_light_does_not_stop(signal_map):
    r = junction_route(signal_map, "S", "N")
    line = light(r, LightState.GREEN)
    d = decide(BehaviourLayer(signal_map, r), 0.0, r, 30.0, 10.0, lines=[line])
    assert d.state is State.LANE_FOLLOW
    assert no_stop_before(d.goal, line.S)
    assert d.goal.target_speed == pytest.approx(11.1)


def test_yellow_far_away_stops_and_too_close_goes(signal_map):
    r = junction_route(signal_map, "S", "N")
    line = light(r, LightState.YELLOW)
    # 39 m to the line at 10 m/s: 16.7 m needed at 3 m/s², so stop
    far = decide(BehaviourLayer(signal_map, r), 0.0, r, 30.0, 10.0, lines=[line])
    assert far.state is State.STOP_LIGHT and far.goal.stop_at == pytest.approx(line.S, abs=0.1)
    # 9 m to the line at 10 m/s: would need 5.5 m/s², so go
    layer = BehaviourLayer(signal_map, r)
    near = decide(layer, 0.0, r, 60.0, 10.0, lines=[line])
    assert near.state is not State.STOP_LIGHT
    assert no_stop_before(near.goal, line.S)
    # and the decision to go sticks while the light stays yellow, even if we slowed a little
    again = decide(layer, 0.3, r, 62.0, 6.0, lines=[line])
    assert again.state is not State.STOP_LIGHT and no_stop_before(again.goal, line.S)


def test_yellow_means_stop_only_if_a_jerk_bounded_stop_fits(signal_map):
    """At 3.3 m/s, still pulling away at +0.6 m/s², 4 m short of the line: 3 m/s² would stop in
    1.8 m, but the lattice's comfortable stop (3 m/s³ from the current acceleration) needs 5.5 m.
    Braking anyway took 6 m/s³ (town_loop seed 4); so it goes. 7 m short, it stops."""
    r = junction_route(signal_map, "S", "N")
    line = light(r, LightState.YELLOW)

    def at(front_to_line: float):
        S = line.S - HALF - front_to_line
        x, y = r.position(S)
        ego = VehicleState(float(x), float(y), float(r.heading_at(S)), 3.3, accel=0.6)
        return BehaviourLayer(signal_map, r).decide(0.0, ego, S, [], predict([], signal_map, T), [line])

    assert at(4.0).state is not State.STOP_LIGHT and no_stop_before(at(4.0).goal, line.S)
    assert at(7.0).state is State.STOP_LIGHT


@pytest.mark.parametrize("state", [LightState.RED, LightState.YELLOW, None])
def test_a_crawling_nose_over_the_line_holds_until_green(signal_map, state):
    """Crept 1 m over the line while waiting to turn, the light changes: the red-light rule counts
    the centre crossing, so the car holds where it stands (dense_urban seed 0, modular)."""
    r = junction_route(signal_map, "S", "N")
    S = light(r, state).S - HALF + 1.0  # the front 1 m past the line, the centre 1.3 m short of it
    held = decide(BehaviourLayer(signal_map, r), 0.0, r, S, 0.3, lines=[light(r, state)])
    assert held.state is State.STOP_LIGHT and held.goal.stop_at == pytest.approx(S + HALF)
    go = decide(BehaviourLayer(signal_map, r), 0.0, r, S, 0.3, lines=[light(r, LightState.GREEN)])
    assert go.state is not State.STOP_LIGHT and no_stop_before(go.goal, light(r, state).S)
    # moving on, it is committed; once the centre is over, the line is behind it
    assert decide(BehaviourLayer(signal_map, r), 0.0, r, S, 3.0, lines=[light(r, state)]).state is not State.STOP_LIGHT
    past = decide(BehaviourLayer(signal_map, r), 0.0, r, light(r, state).S + 0.5, 0.3, lines=[light(r, state)])
    assert past.state is not State.STOP_LIGHT


@pytest.mark.parametrize("state", [LightState.RED, LightState.YELLOW])
def test_a_car_standing_with_its_nose_just_over_the_line_stays_when_the_light_changes(signal_map, state):
    """Stopped at green with the front 0.1–0.4 m past the line (for a car ahead), the light turns:
    standing, it can stop, so it stays (town_loop seed 1 set off on yellow and crossed on red)."""
    r = junction_route(signal_map, "S", "N")
    for over in (0.1, 0.4):
        S = light(r, state).S - HALF + over
        d = decide(BehaviourLayer(signal_map, r), 0.0, r, S, 0.0, lines=[light(r, state)])
        assert d.state is State.STOP_LIGHT and d.goal.stop_at <= S + HALF + 1e-9


# ---- stop signs --------------------------------------------------------------------------------
def stop_line(route):
    return StopLineState(float(route.piece_start[1]), "stop", None, "J")


def at_line(line) -> float:
    """Ego centre S with the front bumper 1 m short of the line."""
    return line.S - HALF - 1.0


def test_stop_sign_stop_then_go_when_clear(allway_map):
    r = junction_route(allway_map, "S", "N")
    line = stop_line(r)
    layer = BehaviourLayer(allway_map, r)
    d = decide(layer, 0.0, r, 30.0, 8.0, lines=[line])
    assert d.state is State.STOP_SIGN and d.goal.stop_at == pytest.approx(line.S, abs=0.1)
    # still rolling at the line: a rolling stop does not count
    d = decide(layer, 4.0, r, at_line(line), 1.0, lines=[line])
    assert d.state is State.STOP_SIGN
    # a full stop with a car crossing the junction: wait
    crossing = car(7, 0.0, -1.75, 0.0, 8.0)  # W→E, in the middle of the box
    d = decide(layer, 5.0, r, at_line(line), 0.0, [crossing], lines=[line])
    assert d.state is State.WAIT_STOP_SIGN and d.goal.stop_at == pytest.approx(line.S, abs=0.1)
    d = decide(layer, 5.5, r, at_line(line), 0.0, [replace(crossing, x=4.0)], lines=[line])
    assert d.state is State.WAIT_STOP_SIGN
    # it has left: once the junction has looked clear for a second, go, without stopping again
    gone = replace(crossing, x=30.0)
    assert decide(layer, 6.5, r, at_line(line), 0.0, [gone], lines=[line]).state is State.WAIT_STOP_SIGN
    d = decide(layer, 7.5, r, at_line(line), 0.0, [gone], lines=[line])
    assert d.state is State.LANE_FOLLOW and no_stop_before(d.goal, line.S)
    d = decide(layer, 8.0, r, at_line(line) + 1.0, 2.0, [gone], lines=[line])
    assert d.state is State.LANE_FOLLOW and no_stop_before(d.goal, line.S)


def test_stop_sign_goes_a_second_after_a_full_stop_on_an_empty_junction(allway_map):
    r = junction_route(allway_map, "S", "N")
    line = stop_line(r)
    layer = BehaviourLayer(allway_map, r)
    assert decide(layer, 0.0, r, 30.0, 8.0, lines=[line]).state is State.STOP_SIGN
    assert decide(layer, 6.0, r, at_line(line), 0.0, lines=[line]).state is State.WAIT_STOP_SIGN
    assert decide(layer, 6.5, r, at_line(line), 0.0, lines=[line]).state is State.WAIT_STOP_SIGN
    d = decide(layer, 7.0, r, at_line(line), 0.0, lines=[line])
    assert d.state is State.LANE_FOLLOW and no_stop_before(d.goal, line.S)


def test_stop_sign_looks_both_ways_before_going(twoway_map):
    """town_loop seed 1: the junction looked clear the tick the ego stopped, because the car
    coming at 10 m/s on the priority road was not yet a track; the ego went, and stopped in its
    path. A car that appears within the look holds it at the line."""
    r = junction_route(twoway_map, "W", "E")
    line = stop_line(r)
    layer = BehaviourLayer(twoway_map, r)
    decide(layer, 0.0, r, 30.0, 8.0, lines=[line])
    assert decide(layer, 5.0, r, at_line(line), 0.0, lines=[line]).state is State.WAIT_STOP_SIGN
    coming = car(5, 1.75, -25.0, np.pi / 2, 10.0)
    assert decide(layer, 5.5, r, at_line(line), 0.0, [coming], [line]).state is State.WAIT_STOP_SIGN
    # it has passed: a fresh look, then go
    away = replace(coming, y=20.0)
    assert decide(layer, 8.0, r, at_line(line), 0.0, [away], [line]).state is State.WAIT_STOP_SIGN
    assert decide(layer, 9.0, r, at_line(line), 0.0, [away], [line]).state is State.LANE_FOLLOW


def test_allway_stop_defers_to_a_car_that_arrived_first(allway_map):
    r = junction_route(allway_map, "S", "N")
    line = stop_line(r)
    layer = BehaviourLayer(allway_map, r)
    # a car from the east already stands at its line (front 1 m short of x = 8.5) when we approach
    first = car(3, 8.5 + HALF + 1.0, 1.75, np.pi, 0.0)
    assert decide(layer, 0.0, r, 30.0, 8.0, [first], [line]).state is State.STOP_SIGN
    assert decide(layer, 3.0, r, 55.0, 4.0, [first], [line]).state is State.STOP_SIGN
    states = [decide(layer, t, r, at_line(line), 0.0, [first], [line]).state for t in (6.0, 6.5, 7.5, 9.0)]
    assert states == [State.WAIT_STOP_SIGN] * 4
    # it goes: while it crosses we still wait, once it is through we go
    moving = car(3, 0.0, 1.75, np.pi, 6.0)
    assert decide(layer, 9.5, r, at_line(line), 0.0, [moving], [line]).state is State.WAIT_STOP_SIGN
    assert decide(layer, 11.0, r, at_line(line), 0.0, [replace(moving, x=-25.0)], [line]).state is State.WAIT_STOP_SIGN
    d = decide(layer, 12.0, r, at_line(line), 0.0, [replace(moving, x=-37.0)], [line])
    assert d.state is State.LANE_FOLLOW and no_stop_before(d.goal, line.S)


def test_allway_stop_keeps_the_turn_of_a_first_arrival_whose_track_jumps(allway_map):
    """dense_urban seed 2: as a crossing car hid part of a car waiting first, its track read 2 m/s
    backwards for a few ticks; the ego took it for newly arrived, went out of turn, and the two
    stood in the junction, each in the other's path. At its line by the map, it keeps its turn."""
    r = junction_route(allway_map, "S", "N")
    line = stop_line(r)
    layer = BehaviourLayer(allway_map, r)
    first = car(3, 8.5 + HALF + 1.0, 1.75, np.pi, 0.0)
    decide(layer, 0.0, r, 30.0, 8.0, [first], [line])
    assert decide(layer, 6.0, r, at_line(line), 0.0, [first], [line]).state is State.WAIT_STOP_SIGN
    jump = replace(first, x=first.x + 0.6, yaw=0.0, vx=1.9, vy=0.2)  # hidden in part: it seems to back away
    states = [decide(layer, t, r, at_line(line), 0.0, [jump if t in (6.5, 6.6) else first], [line]).state
              for t in (6.5, 6.6, 7.0, 8.0, 9.0)]
    assert states == [State.WAIT_STOP_SIGN] * 5


def test_allway_stop_lets_a_car_pulling_away_from_its_line_enter(allway_map):
    """allway_stop seed 2: our turn had come (we had waited past `max_wait`) as a car pulled away
    from its line at 1–2 m/s; both went. Pulling away from its line it is entering: let it."""
    r = junction_route(allway_map, "S", "N")
    line = stop_line(r)
    layer = BehaviourLayer(allway_map, r)
    first = car(3, 8.5 + HALF + 1.0, 1.75, np.pi, 0.0)
    decide(layer, 0.0, r, 30.0, 8.0, [first], [line])
    for t in (6.0, 9.0, 12.5):  # it waits, then our turn comes: we look for a second
        assert decide(layer, t, r, at_line(line), 0.0, [first], [line]).state is State.WAIT_STOP_SIGN
    states = [decide(layer, t, r, at_line(line), 0.0, [replace(first, x=first.x - 0.6 * k, vx=-1.3)], [line]).state
              for k, t in enumerate((13.0, 13.5, 14.0))]
    assert states == [State.WAIT_STOP_SIGN] * 3


def test_allway_stop_does_not_wait_for_a_car_still_far_away(allway_map):
    r = junction_route(allway_map, "S", "N")
    line = stop_line(r)
    layer = BehaviourLayer(allway_map, r)
    far = car(4, 45.0, 1.75, np.pi, 8.0)  # from the east, 45 m out
    decide(layer, 0.0, r, 30.0, 8.0, [far], [line])
    assert decide(layer, 5.0, r, at_line(line), 0.0, [replace(far, x=40.0)], [line]).state is State.WAIT_STOP_SIGN
    d = decide(layer, 6.0, r, at_line(line), 0.0, [replace(far, x=32.0)], [line])
    assert d.state is State.LANE_FOLLOW and no_stop_before(d.goal, line.S)


def test_two_way_stop_waits_for_priority_traffic_within_the_gap(twoway_map):
    r = junction_route(twoway_map, "W", "E")
    line = stop_line(r)
    assert twoway_map.lanes["W>J.0"].control == "stop" and twoway_map.lanes["S>J.0"].control is None
    layer = BehaviourLayer(twoway_map, r)
    assert decide(layer, 0.0, r, 30.0, 8.0, lines=[line]).state is State.STOP_SIGN
    # priority car from the south, 30 m out at 10 m/s: about 2 s to the box, inside the 5 s gap
    coming = car(5, 1.75, -30.0, np.pi / 2, 10.0)
    d = decide(layer, 5.0, r, at_line(line), 0.0, [coming], [line])
    assert d.state is State.WAIT_STOP_SIGN and d.goal.stop_at == pytest.approx(line.S, abs=0.1)
    # the same car 75 m out: over 6 s away, go
    layer2 = BehaviourLayer(twoway_map, r)
    decide(layer2, 0.0, r, 30.0, 8.0, lines=[line])
    decide(layer2, 5.0, r, at_line(line), 0.0, [replace(coming, y=-75.0)], [line])
    d = decide(layer2, 6.0, r, at_line(line), 0.0, [replace(coming, y=-65.0)], [line])
    assert d.state is State.LANE_FOLLOW and no_stop_before(d.goal, line.S)
    # a priority car that has already passed (moving away) does not hold us
    layer3 = BehaviourLayer(twoway_map, r)
    decide(layer3, 0.0, r, 30.0, 8.0, lines=[line])
    away = car(6, 1.75, 20.0, np.pi / 2, 10.0)
    decide(layer3, 5.0, r, at_line(line), 0.0, [away], [line])
    assert decide(layer3, 6.0, r, at_line(line), 0.0, [replace(away, y=30.0)], [line]).state is State.LANE_FOLLOW


# ---- pedestrians -------------------------------------------------------------------------------
def test_pedestrian_crossing_ahead_yields_short_of_it(road):
    r = build_route(road, ["fwd.0"])
    layer = BehaviourLayer(road, r)
    S = 30.0
    ped = walker(9, 60.0, -4.5, np.pi / 2, 1.4)  # stepping off the right kerb at x = 60
    d = decide(layer, 0.0, r, S, 10.0, [ped])
    assert d.state is State.YIELD_PEDESTRIAN
    # stop ped_stop_gap short of where the walker (plus corridor) meets our path: x ≈ 60 − 1.8 − margin
    assert 60.0 - 3.0 - 1.8 - 1.0 - 1.0 < d.goal.stop_at < 60.0 - 3.0
    assert d.goal.stop_at > S + HALF


def test_pedestrian_on_the_sidewalk_walking_parallel_is_ignored(road):
    r = build_route(road, ["fwd.0"])
    sidewalk_y = -(3.5 + 1.2)  # kerb at −3.5, sidewalk centre 1.2 m beyond
    parallel = [walker(9, 50.0, sidewalk_y, 0.0, 1.4), walker(10, 70.0, sidewalk_y, np.pi, 1.4),
                walker(11, 45.0, -sidewalk_y, 0.0, 1.4)]
    d = decide(BehaviourLayer(road, r), 0.0, r, 30.0, 10.0, parallel)
    assert d.state is State.LANE_FOLLOW
    assert d.goal.stop_at is None


def test_pedestrian_behind_us_is_ignored(road):
    r = build_route(road, ["fwd.0"])
    d = decide(BehaviourLayer(road, r), 0.0, r, 60.0, 10.0, [walker(9, 45.0, -4.5, np.pi / 2, 1.4)])
    assert d.state is State.LANE_FOLLOW


# ---- leads -------------------------------------------------------------------------------------
def test_moving_lead_is_followed(road):
    r = build_route(road, ["fwd.0"])
    lead = car(21, 55.0, -1.75, 0.0, 8.0)
    d = decide(BehaviourLayer(road, r), 0.0, r, 30.0, 10.0, [lead, car(22, 55.0, 1.75, np.pi, 8.0)])
    assert d.state is State.FOLLOW_LEAD and d.lead_id == 21
    assert d.goal.lead_s == pytest.approx(55.0 - 2.3, abs=0.1)
    assert d.goal.lead_speed == pytest.approx(8.0)
    # the oncoming car alone is no lead
    d = decide(BehaviourLayer(road, r), 0.0, r, 30.0, 10.0, [car(22, 55.0, 1.75, np.pi, 8.0)])
    assert d.state is State.LANE_FOLLOW and d.lead_id is None


def closed_loop(planner, ego: VehicleState, objects_at, seconds: float):
    """Planner + pure pursuit on the simulator's bicycle model: 10 Hz planning, 20 Hz physics."""
    ctrl, vp = PurePursuitPID(), VehicleParams()
    x, y, yaw, v, steer, acc = ego.x, ego.y, ego.yaw, ego.v, 0.0, 0.0
    log = []
    control = Control(0.0, 0.0)
    for k in range(int(round(seconds / 0.05))):
        t = k * 0.05
        if k % 2 == 0:
            state = VehicleState(x, y, yaw, v, steer, acc)
            objs = objects_at(t)
            out = planner.plan(PlannerInput(t, state, tuple(objs), ()))
            control = ctrl.control(state, out.trajectory, t)
            log.append((t, x, y, v, out, objs))
        x, y, yaw, v, steer, acc = (float(q) for q in bicycle_step(x, y, yaw, v, steer, acc, control.steer,
                                                                     control.accel, vp, 0.05))
    return log


def test_lead_braking_hard_makes_the_plan_decelerate(road):
    r = build_route(road, ["fwd.0"])
    planner = Planner(road, r)
    brake_at, decel = 1.0, 6.0

    def lead_at(t):
        # the lead runs at 11 m/s, then brakes at 6 m/s² to a stop 10 m further on
        v0, x0 = 11.0, 55.0
        if t < brake_at:
            return [car(31, x0 + v0 * t, -1.75, 0.0, v0)]
        tb = min(t - brake_at, v0 / decel)
        return [car(31, x0 + v0 * brake_at + v0 * tb - decel * tb**2 / 2, -1.75, 0.0, max(v0 - decel * tb, 0.0))]

    log = closed_loop(planner, ego_at(r, 30.0, 11.0), lead_at, 8.0)
    before = [e for e in log if e[0] < brake_at]
    assert all(e[4].state is State.FOLLOW_LEAD for e in before)
    assert all(e[4].trajectory.v.min() > 8.0 for e in before)  # cruising behind it
    assert {e[4].state for e in log} <= {State.FOLLOW_LEAD, State.EMERGENCY_STOP}
    # within a second of the lead braking the plan brakes firmly, and keeps braking
    during = [e for e in log if brake_at + 1.0 <= e[0] <= brake_at + 2.0]
    for _, _, _, v, out, _ in during:
        traj = out.trajectory
        assert traj.a[:10].mean() < -1.5
        assert traj.v[-1] < max(v - 4.0, 0.1)
    # ... and the ego stops behind the stopped lead without touching it
    gaps = [objs[0].x - objs[0].length / 2 - (x + HALF) for _, x, _, _, _, objs in log]
    assert min(gaps) > 1.0
    assert log[-1][3] < 0.3


@pytest.mark.parametrize("v_lead", [6.0, 11.0])
def test_following_settles_at_the_planned_gap(v_lead):
    """Behind a steady lead on a faster road the ego keeps the lattice's own target gap (4 m + 1.5 s)."""
    fast = straight(400.0, RoadStyle(lanes=1, speed_limit=13.9))
    r = build_route(fast, ["fwd.0"])

    def lead_at(t):
        return [car(31, 60.0 + v_lead * t, -1.75, 0.0, v_lead)]

    log = closed_loop(Planner(fast, r), ego_at(r, 20.0, v_lead), lead_at, 20.0)
    settled = [(v, objs[0].x - objs[0].length / 2 - (x + HALF)) for t, x, _, v, _, objs in log if t >= 16.0]
    target = 4.0 + 1.5 * v_lead
    for v, gap in settled:
        assert v == pytest.approx(v_lead, abs=0.3)
        assert 0.8 * target <= gap <= 1.3 * target, f"gap {gap:.1f} m at {v:.1f} m/s; target {target:.1f} m"


# ---- parked car: nudge or wait -----------------------------------------------------------------
def parked(x: float, d: float) -> ObjectState:
    """A parked car d [m] right of the fwd.0 centre: at d = −1.2 it covers 1.5 m of the 3.5 m lane."""
    return car(41, x, -1.75 + d, 0.0, 0.0)


def d_along(route, traj):
    """Route lateral offset (+ left) of each trajectory point [m]."""
    return np.array([route.project(np.array([x, y]), hint=x, window=20.0)[1] for x, y in zip(traj.x, traj.y)])


@pytest.mark.parametrize("d_park", [-1.2, -1.0])  # 1.5 m and 1.7 m into the lane: both leave room on the left
def test_parked_car_partly_in_lane_is_nudged_around_when_the_opposite_lane_is_free(road, d_park):
    r = build_route(road, ["fwd.0"])
    car_ = parked(50.0, d_park)
    ego = ego_at(r, 20.0, 8.0)
    d = decide(BehaviourLayer(road, r), 0.0, r, 20.0, 8.0, [car_])
    assert d.state is State.NUDGE and d.lead_id == 41 and d.goal.allow_offset
    out = Planner(road, r).plan(PlannerInput(0.0, ego, (car_,), ()))
    assert (out.state, out.emergency) == (State.NUDGE, False)
    traj = out.trajectory
    beside = np.abs(traj.x - car_.x) < car_.length / 2 + HALF
    assert beside.any(), "the plan should reach the parked car within its horizon"
    offsets = d_along(r, traj)
    assert offsets[beside].min() > 1.0  # swings left, into the free opposite lane
    assert traj.v.min() > 3.0  # without stopping
    # the boxes keep clear of each other (ego half-width 0.95, parked car's left edge)
    assert np.all(traj.y[beside] - 0.95 > car_.y + car_.width / 2 + 0.1)


def test_standing_car_reaching_into_the_path_is_passed_slowly(road):
    """A walker hidden behind it steps out at its front end: slow down to pass that point at the
    occlusion pass speed, gently from afar; no cap once past it, for a moving car, or for one clear of our path."""
    r = build_route(road, ["fwd.0"])
    layer = BehaviourLayer(road, r)
    p = layer.params
    front_end = 50.0 + 4.6 / 2

    def target(S, obj):
        return decide(layer, 0.0, r, S, 10.0, [obj]).goal.target_speed

    free = target(20.0, car(41, 200.0, 10.0, 0.0, 0.0))  # far off the road: the route's own limit
    assert free == pytest.approx(11.1)
    for S in (15.0, 25.0, 35.0, 45.0):
        gap = front_end - (S + HALF)
        expect = min(free, np.sqrt(p.occlusion_pass_speed**2 + 2 * p.occlusion_decel * gap))
        assert target(S, parked(50.0, -1.2)) == pytest.approx(expect)
    assert target(45.0, parked(50.0, -1.2)) < 6.0
    assert target(51.0, parked(50.0, -1.2)) == pytest.approx(free)  # our front is past its front end
    assert target(45.0, parked(50.0, -3.0)) == pytest.approx(free)  # at the kerb, clear of our path
    assert target(45.0, car(41, 50.0, -1.75 - 1.2, 0.0, 5.0)) == pytest.approx(free)  # moving


def test_parked_car_with_oncoming_traffic_waits_behind_it(road):
    r = build_route(road, ["fwd.0"])
    car_ = parked(50.0, -1.2)
    ego = ego_at(r, 20.0, 8.0)
    oncoming = car(42, 85.0, 1.75, np.pi, 9.0)  # would meet us beside the parked car
    out = Planner(road, r).plan(PlannerInput(0.0, ego, (car_, oncoming), ()))
    assert (out.state, out.emergency) == (State.NUDGE, False)
    traj = out.trajectory
    assert traj.v[-1] < 1.0  # waits (a gentle stop may end just past the 5 s horizon) ...
    assert traj.x.max() + HALF < car_.x - car_.length / 2 - 0.5  # ... short of the parked car
    assert np.abs(d_along(r, traj)).max() < 0.6  # in its own lane


def test_parked_car_with_oncoming_traffic_closed_loop(road):
    """Wait behind the parked car while a (slow) oncoming car, seen from the start, goes by; then pass."""
    r = build_route(road, ["fwd.0"])
    car_ = parked(55.0, -1.2)

    def objs(t):
        return [car_, car(42, 77.0 - 4.0 * t, 1.75, np.pi, 4.0)]  # beside the parked car for t ≈ 4..7 s

    log = closed_loop(Planner(road, r), ego_at(r, 10.0, 8.0), objs, 15.0)
    assert not [round(t, 1) for t, *_, out, _ in log if out.emergency], "no emergency braking needed"
    for t, x, y, v, out, (_, onc) in log:
        if abs(onc.x - x) < 4.6:  # alongside the oncoming car: well inside our own lane
            assert y < -1.0, (t, x, y)
        if abs(onc.x - car_.x) < 6.0:  # the oncoming car passes the parked one: we wait behind it
            assert x + HALF < car_.x - car_.length / 2, (t, x)
    assert log[-1][1] > car_.x + 10.0  # and then go round it


# ---- unprotected left --------------------------------------------------------------------------
def test_unprotected_left_yields_to_oncoming_traffic_on_green(signal_map):
    r = junction_route(signal_map, "S", "W")
    line = light(r, LightState.GREEN)
    oncoming = car(51, -1.75, 30.0, -np.pi / 2, 10.0)  # from the north, 3 s from the centre
    d = decide(BehaviourLayer(signal_map, r), 0.0, r, 50.0, 8.0, [oncoming], [line])
    assert d.state is State.YIELD_LEFT_TURN
    assert d.goal.stop_at == pytest.approx(line.S, abs=0.1)
    # no oncoming: go
    d = decide(BehaviourLayer(signal_map, r), 0.0, r, 50.0, 8.0, [], [line])
    assert d.state is State.LANE_FOLLOW and no_stop_before(d.goal, line.S)
    # oncoming far away (7 s) or already past the junction: go
    far = replace(oncoming, y=70.0)
    past = car(52, -1.75, -20.0, -np.pi / 2, 10.0)
    for other in (far, past):
        d = decide(BehaviourLayer(signal_map, r), 0.0, r, 50.0, 8.0, [other], [line])
        assert d.state is not State.YIELD_LEFT_TURN and no_stop_before(d.goal, line.S), other
    # going straight, oncoming traffic does not matter
    r_straight = junction_route(signal_map, "S", "N")
    d = decide(BehaviourLayer(signal_map, r_straight), 0.0, r_straight, 50.0, 8.0, [oncoming], [light(r_straight, LightState.GREEN)])
    assert d.state is State.LANE_FOLLOW


def test_unprotected_left_from_the_priority_road_yields_to_oncoming_traffic(twoway_map):
    """No stop line is ours on the priority road of a two-way stop, but turning left across the
    oncoming lanes we give way all the same; a nose already past the entry holds short of them
    while it can still stop comfortably, and goes once past that (town_loop seed 0)."""
    r = junction_route(twoway_map, "S", "W")
    assert twoway_map.lanes["S>J.0"].control is None
    S_in = float(r.piece_start[1])
    (entry, hold), = BehaviourLayer(twoway_map, r)._left_entries
    assert entry == S_in and S_in + 1.0 < hold < S_in + 5.0  # inside the junction, short of the oncoming lane
    oncoming = car(51, -1.75, 30.0, -np.pi / 2, 10.0)  # from the north, 3 s from the centre
    d = decide(BehaviourLayer(twoway_map, r), 0.0, r, S_in - 20.0, 8.0, [oncoming])
    assert d.state is State.YIELD_LEFT_TURN and d.goal.stop_at == pytest.approx(S_in)
    # crept 1 m past the entry at walking pace: hold short of the oncoming lane
    d = decide(BehaviourLayer(twoway_map, r), 0.0, r, S_in + 1.0 - HALF, 1.0, [oncoming])
    assert d.state is State.YIELD_LEFT_TURN and d.goal.stop_at == pytest.approx(hold)
    # too fast to stop short of it, or already past it: committed, go
    for S, v in ((S_in + 1.0 - HALF, 6.0), (hold + 0.5 - HALF, 1.0)):
        d = decide(BehaviourLayer(twoway_map, r), 0.0, r, S, v, [oncoming])
        assert d.state is not State.YIELD_LEFT_TURN and no_stop_before(d.goal, S_in), (S, v)
    # nobody oncoming, or the oncoming car already past: go
    for others in ([], [car(52, -1.75, -20.0, -np.pi / 2, 10.0)]):
        d = decide(BehaviourLayer(twoway_map, r), 0.0, r, S_in - 20.0, 8.0, others)
        assert d.state is State.LANE_FOLLOW and no_stop_before(d.goal, S_in)
    # the stop-controlled arm turning left has its stop sign; straight on or right, nothing to yield
    for entry_arm, exit_arm in (("W", "N"), ("S", "N"), ("S", "E")):
        assert BehaviourLayer(twoway_map, junction_route(twoway_map, entry_arm, exit_arm))._left_entries == []


@pytest.mark.parametrize("S_ego,v_ego", [(100.0, 8.0), (118.0, 0.0)])
def test_a_car_following_us_does_not_make_the_ego_stop_hard(road, S_ego, v_ego):
    """A car behind us in our lane keeps its own distance. Predicted at constant speed it would
    run into every candidate that slows or stands, and the lattice would brake hard in front of
    it (town_loop: 4-6 s of emergency stop at most stops)."""
    r = build_route(road, ["fwd.0"])
    red = StopLineState(125.0, "light", LightState.RED, "J")
    x_e, _ = r.position(S_ego)
    follower = car(7, float(x_e) - 15.0, -1.75, 0.0, 10.0)
    out = Planner(road, r).plan(PlannerInput(0.0, ego_at(r, S_ego, v_ego), (follower,), (red,)))
    assert not out.emergency and out.state is State.STOP_LIGHT
    assert out.trajectory.a.min() > -4.0  # a comfortable stop at the line
    # the same car ahead of us, coming our way in our lane, still counts
    oncoming = car(8, float(x_e) + 25.0, -1.75, np.pi, 10.0)
    assert Planner(road, r).plan(PlannerInput(0.0, ego_at(r, S_ego, v_ego), (oncoming,), (red,))).emergency
