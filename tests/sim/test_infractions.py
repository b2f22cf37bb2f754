"""Infraction criteria on small constructed cases."""
from __future__ import annotations

import numpy as np
import pytest

from sim import map_builders as mb
from sim.infractions import (
    BlockedCriterion, CollisionCriterion, EgoStep, EventKind, OffroadCriterion, Others, ProgressCriterion,
    RedLightCriterion, StopLine, StopSignCriterion,
)
from sim.map import SignalPlan
from sim.types import ActorType, LightState

L, W = 4.6, 1.9


def ego(t=0.0, x=0.0, y=0.0, yaw=0.0, v=5.0, S=None, d=0.0) -> EgoStep:
    return EgoStep(t, x, y, yaw, v, L, W, x if S is None else S, d)


def others(*rows) -> Others:
    """rows: (id, type, x, y, yaw, length, width, speed)."""
    rows = list(rows)
    col = lambda k: np.array([r[k] for r in rows], dtype=float)  # noqa: E731
    speed, yaw = col(7), col(4)
    return Others(id=np.array([r[0] for r in rows], dtype=int), type=np.array([r[1].value for r in rows]),
                  x=col(2), y=col(3), yaw=yaw, length=col(5), width=col(6), vx=speed * np.cos(yaw),
                  vy=speed * np.sin(yaw))


VEH, PED, STATIC = ActorType.VEHICLE, ActorType.PEDESTRIAN, ActorType.STATIC


# ---- collisions ----------------------------------------------------------------------------------

def test_collision_kinds_and_once_per_actor():
    crit = CollisionCriterion()
    scene = others(
        (7, VEH, 4.0, 0.0, 0.0, 4.6, 1.9, 3.0),  # overlapping the ego's front by 0.6 m
        (8, PED, 0.0, 1.2, 1.0, 0.6, 0.6, 1.4),  # touching its left side
        (9, STATIC, -2.3, -0.9, 0.0, 0.3, 0.3, 0.0),  # a pole at its rear-right corner
        (10, VEH, 0.0, 5.0, 0.0, 4.6, 1.9, 5.0),  # 3 m to the left: no contact
    )
    events = crit.update(ego(t=1.0), scene)
    assert sorted((e.other_id, e.kind) for e in events) == [
        (7, EventKind.COLLISION_VEHICLE), (8, EventKind.COLLISION_PEDESTRIAN), (9, EventKind.COLLISION_STATIC)]
    for e in events:
        assert e.t == 1.0
        assert e.other_type == {7: "vehicle", 8: "pedestrian", 9: "static"}[e.other_id]
    # nuPlan's fault rules: the ego's front hits the car (at fault), the walker steps into its side
    # while it keeps its lane (not at fault), the pole stands still (at fault)
    assert {e.other_id: (e.detail, e.at_fault) for e in events} == {
        7: ("active_front", True), 8: ("active_lateral", False), 9: ("stopped_track", True)}
    # still overlapping on the next steps: no new events
    assert crit.update(ego(t=1.05), scene) == []
    assert crit.update(ego(t=1.10, x=0.1), scene) == []
    # a new actor is a new event; the same actor again is not
    scene2 = others((10, VEH, 0.0, 1.5, 0.0, 4.6, 1.9, 5.0), (7, VEH, 4.0, 0.0, 0.0, 4.6, 1.9, 3.0))
    events = crit.update(ego(t=2.0), scene2)
    assert [(e.other_id, e.kind) for e in events] == [(10, EventKind.COLLISION_VEHICLE)]


def test_no_collision_when_apart_or_nothing_there():
    crit = CollisionCriterion()
    assert crit.update(ego(), others((1, VEH, 4.7, 0.0, 0.0, 4.6, 1.9, 0.0))) == []  # 10 cm gap
    assert crit.update(ego(), others((1, VEH, 0.0, 2.0, 0.0, 4.6, 1.9, 0.0))) == []  # 10 cm to the side
    empty = Others(*(np.zeros(0) for _ in range(9)))
    assert crit.update(ego(), empty) == []


def test_collision_with_a_rotated_box():
    crit = CollisionCriterion()
    # a car crossing at 90°, its front 0.2 m into the ego's front-left quarter
    events = crit.update(ego(v=0.0), others((3, VEH, 1.5, 0.95 + 2.3 - 0.2, -np.pi / 2, 4.6, 1.9, 4.0)))
    assert [e.other_id for e in events] == [3]
    crit = CollisionCriterion()
    assert crit.update(ego(v=0.0), others((3, VEH, 1.5, 0.95 + 2.3 + 0.2, -np.pi / 2, 4.6, 1.9, 4.0))) == []


@pytest.mark.parametrize(
    "ego_v, other_x, at_fault",
    [
        (0.0, -4.4, False),  # stopped ego, rear-ended: not at fault
        (0.05, -4.4, False),  # up to 0.05 m/s counts as stopped (nuPlan)
        (0.0, 4.4, False),  # stopped ego, something moves into its front: not at fault (nuPlan)
        (3.0, -4.4, False),  # moving ego hit from behind: not at fault (nuPlan's active rear)
        (3.0, 4.4, True),  # moving ego runs into a car: at fault
    ],
)
def test_collision_at_fault(ego_v, other_x, at_fault):
    crit = CollisionCriterion()
    events = crit.update(ego(v=ego_v), others((5, VEH, other_x, 0.0, 0.0, 4.6, 1.9, 6.0)))
    assert len(events) == 1
    assert events[0].at_fault is at_fault


def test_rear_ended_with_the_ego_facing_another_way():
    # ego heading north (yaw 90°), stopped; struck from the south
    crit = CollisionCriterion()
    events = crit.update(ego(yaw=np.pi / 2, v=0.0), others((5, VEH, 0.0, -4.4, np.pi / 2, 4.6, 1.9, 6.0)))
    assert [e.at_fault for e in events] == [False]
    crit = CollisionCriterion()  # moving north into a car that comes from the north: its front, at fault
    events = crit.update(ego(yaw=np.pi / 2, v=2.0), others((5, VEH, 0.0, 4.4, -np.pi / 2, 4.6, 1.9, 6.0)))
    assert [(e.detail, e.at_fault) for e in events] == [("active_front", True)]


# ---- off-road ------------------------------------------------------------------------------------

def test_offroad_accumulates_only_while_off():
    # drivable: x < 10 or x > 30; the ego drives along +x in 1 m steps from x = 0 to 40
    crit = OffroadCriterion(lambda xy: (xy[:, 0] < 10) | (xy[:, 0] > 30))
    for x in range(0, 41):
        crit.update(ego(x=float(x)))
    # a corner leaves the area once x + 2.3 ≥ 10 and returns when x − 2.3 > 30: x = 8 … 32 is off
    assert crit.samples == 41
    assert crit.offroad_samples == 25
    assert crit.offroad_m == pytest.approx(25.0)  # each off step adds the metre just driven


def test_offroad_on_a_real_map():
    m = mb.straight()  # road y ∈ [−7, 7]
    crit = OffroadCriterion(m.is_drivable)
    for x in np.arange(10.0, 60.0, 0.5):  # the centre of fwd.0, y = −5.25: fully on the road
        crit.update(ego(x=x, y=-5.25))
    assert crit.offroad_m == 0.0 and crit.offroad_samples == 0
    for x in np.arange(60.0, 80.0, 0.5):  # 1 m further right: the right corners are over the kerb
        crit.update(ego(x=x, y=-6.25))
    assert crit.offroad_samples == 40
    # the first off step moved 0.5 m along and 1 m across
    assert crit.offroad_m == pytest.approx(np.hypot(0.5, 1.0) + 39 * 0.5)
    for x in np.arange(80.0, 90.0, 0.5):  # back on
        crit.update(ego(x=x, y=-5.25))
    assert crit.offroad_m == pytest.approx(np.hypot(0.5, 1.0) + 39 * 0.5)
    crit.update(ego(x=90.0, y=-3.5, yaw=np.pi / 2))  # turned across the road, still inside it
    assert crit.offroad_samples == 40
    crit.update(ego(x=90.0, y=-5.25, yaw=np.pi / 2))  # across, but its rear sticks out over the kerb
    assert crit.offroad_samples == 41


# ---- red lights ----------------------------------------------------------------------------------

def drive_through(crit, S_values, t0=0.0, dt=0.05, d=0.0, v=8.0):
    events = []
    for k, S in enumerate(S_values):
        events += crit.update(ego(t=t0 + k * dt, x=float(S), S=float(S), d=d, v=v))
    return events


def test_red_light_one_event_when_crossing_on_red():
    lines = [StopLine(50.0, "light", "J", 0), StopLine(120.0, "stop", "K", None)]
    crit = RedLightCriterion(lines, lambda j, g, t: LightState.RED)
    S = np.arange(30.0, 140.0, 0.4)
    events = drive_through(crit, S, t0=5.0)
    assert len(events) == 1  # the stop sign at 120 m is not the red light's business
    assert events[0].kind is EventKind.RED_LIGHT
    assert events[0].t == pytest.approx(5.0 + 0.05 * int(np.argmax(S >= 50.0)))  # the step that crossed
    assert "J" in events[0].detail


@pytest.mark.parametrize("state", [LightState.GREEN, LightState.YELLOW])
def test_red_light_none_on_green_or_yellow(state):
    crit = RedLightCriterion([StopLine(50.0, "light", "J", 0)], lambda j, g, t: state)
    assert drive_through(crit, np.arange(30.0, 80.0, 0.4)) == []


def test_red_light_follows_the_signal_plan_and_ignores_far_off_route():
    plan = SignalPlan(((0,), (1,)))  # group 1 is red for t < 16 s, green from 16 s
    state = lambda j, g, t: plan.state(g, t)  # noqa: E731
    line = StopLine(50.0, "light", "J", 1)
    crit = RedLightCriterion([line], state)
    assert len(drive_through(crit, [49.0, 49.5, 50.0, 50.5], t0=10.0)) == 1  # crosses at t = 10.1: red
    crit = RedLightCriterion([line], state)
    assert drive_through(crit, [49.0, 49.5, 50.0, 50.5], t0=16.0) == []  # green
    crit = RedLightCriterion([line], state)
    assert drive_through(crit, [49.0, 49.5, 50.0, 50.5], t0=10.0, d=5.0) == []  # 5 m off the route
    crit = RedLightCriterion([line], state)
    assert drive_through(crit, [40.0, 45.0, 49.9, 49.9, 49.9], t0=10.0) == []  # stops short of the line


# ---- stop signs ----------------------------------------------------------------------------------

def test_stop_sign_crossing_at_speed_is_an_infraction():
    crit = StopSignCriterion([StopLine(50.0, "stop", "J", None), StopLine(90.0, "light", "K", 0)])
    events = drive_through(crit, np.arange(20.0, 120.0, 0.3), v=4.0)
    assert [e.kind for e in events] == [EventKind.STOP_SIGN]
    assert "J" in events[0].detail


def test_stop_sign_no_event_after_a_full_stop():
    crit = StopSignCriterion([StopLine(50.0, "stop", "J", None)])
    events = []
    t = 0.0
    # approach, stop 1.5 m before the line, then go
    for S, v in [(40.0, 5.0), (44.0, 3.0), (47.0, 1.0), (48.5, 0.05), (48.5, 0.0), (49.5, 1.0), (50.5, 2.0),
                 (55.0, 4.0)]:
        events += crit.update(ego(t=t, S=S, v=v))
        t += 0.5
    assert events == []


def test_stop_sign_slow_roll_or_stop_too_early_is_an_infraction():
    crit = StopSignCriterion([StopLine(50.0, "stop", "J", None)])
    ev = []
    for k, (S, v) in enumerate([(44.0, 2.0), (46.0, 0.5), (48.0, 0.2), (49.5, 0.15), (50.5, 0.5)]):
        ev += crit.update(ego(t=k * 0.5, S=S, v=v))
    assert [e.kind for e in ev] == [EventKind.STOP_SIGN]  # 0.15 m/s is not a full stop
    crit = StopSignCriterion([StopLine(50.0, "stop", "J", None)])
    ev = []
    for k, (S, v) in enumerate([(30.0, 0.0), (35.0, 4.0), (45.0, 5.0), (51.0, 5.0)]):
        ev += crit.update(ego(t=k * 0.5, S=S, v=v))
    assert [e.kind for e in ev] == [EventKind.STOP_SIGN]  # stopped 20 m early: outside the zone


# ---- progress and blocked ------------------------------------------------------------------------

def test_progress_goal_and_deviation():
    p = ProgressCriterion(route_length=100.0)
    assert p.update(ego(S=50.0)) == []
    assert p.completion == pytest.approx(0.5)
    assert p.update(ego(S=40.0)) == [] and p.completion == pytest.approx(0.5)  # best progress is kept
    assert [e.kind for e in p.update(ego(S=98.5))] == [EventKind.GOAL]
    p = ProgressCriterion(route_length=100.0)
    assert [e.kind for e in p.update(ego(S=10.0, d=31.0))] == [EventKind.ROUTE_DEVIATION]


def test_blocked_after_limit_with_nothing_ahead():
    b = BlockedCriterion(limit=3.0)
    assert b.update(ego(t=0.0, v=0.0), False) == []
    assert b.update(ego(t=2.9, v=0.0), False) == []
    assert [e.kind for e in b.update(ego(t=3.0, v=0.0), False)] == [EventKind.BLOCKED]
    b = BlockedCriterion(limit=3.0)
    for t in np.arange(0.0, 10.0, 0.5):  # waiting behind something is not blocked
        assert b.update(ego(t=t, v=0.0), True) == []
