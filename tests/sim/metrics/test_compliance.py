"""nuPlan's compliance terms: driving direction, speed limit, drivable area; hard braking; CLS."""
from __future__ import annotations

import numpy as np
import pytest

from sim import map_builders as mb
from sim.infractions import EgoStep, OffroadCriterion
from sim.metrics.braking import hard_braking_events
from sim.metrics.direction import DrivingDirectionMetric
from sim.metrics.drivable_area import drivable_area_compliance, outside_distance
from sim.metrics.nuplan_score import nuplan_score
from sim.metrics.speed_limit import SpeedLimitMetric
from sim.route import build_route

L, W, DT = 4.6, 1.9, 0.1


@pytest.fixture(scope="module")
def road():
    m = mb.straight()  # 400 m, two lanes each way: fwd.0 y = −5.25, fwd.1 −1.75, rev.1 +1.75, rev.0 +5.25
    return m, build_route(m, ["fwd.0"], 0.0)


def step(route, x, y, yaw=0.0, v=5.0):
    S, d = route.project(np.array([x, y]))
    return EgoStep(0.0, x, y, yaw, v, L, W, S, d)


def drive(metric, route, xs, y, yaw=0.0, v=5.0):
    for x in xs:
        metric.update(step(route, float(x), y, yaw, v))
    return metric


@pytest.mark.parametrize("y, dx, expected, why", [
    (-5.25, 1.0, 1.0, "forward in its lane"),
    (-1.75, 1.0, 1.0, "forward in the next lane, the right direction"),
    (-5.25, -0.1, 1.0, "reversing 1 m/s: 1 m per second, under nuPlan's 2 m"),
    (-5.25, -0.3, 0.5, "reversing 3 m/s: between 2 and 6 m"),
    (1.75, 0.8, 0.0, "8 m/s on the wrong side of the road"),
])
def test_driving_direction(road, y, dx, expected, why):
    m, route = road
    xs = 100.0 + dx * np.arange(30)  # 3 s at 10 Hz
    metric = drive(DrivingDirectionMetric(m, route, dt=DT), route, xs, y)
    assert metric.score == expected, why
    against = max(0.0, -dx) * 29 if y < 0 else 0.8 * 29
    assert metric.against_m == pytest.approx(against)
    if expected < 1:
        assert metric.worst_window_m == pytest.approx(-10 * abs(dx))  # the last 1 s: 10 ticks


def test_driving_direction_off_the_lanes_counts_nothing(road):
    m, route = road
    metric = drive(DrivingDirectionMetric(m, route, dt=DT), route, 100.0 - 0.8 * np.arange(30), -12.0)
    assert metric.score == 1.0 and metric.against_m == 0.0


@pytest.mark.parametrize("over, expected", [(0.0, 1.0), (-5.0, 1.0), (2.23 / 2, 0.5), (2.23, 0.0), (5.0, 0.0)])
def test_speed_limit(road, over, expected):
    m, route = road
    limit = m.lanes["fwd.0"].speed_limit
    metric = SpeedLimitMetric(route, dt=DT)
    for x in np.arange(50.0, 60.0, 0.5):
        metric.update(step(route, x, -5.25, v=limit + over))
    assert metric.score == pytest.approx(expected)
    assert metric.max_overspeed_seen == pytest.approx(max(0.0, over))


def test_speed_limit_part_of_the_time(road):
    m, route = road
    limit = m.lanes["fwd.0"].speed_limit
    metric = SpeedLimitMetric(route, dt=DT)
    for k in range(40):  # 1 s at 2.23 m/s over, 3 s within: loss 1/4
        metric.update(step(route, 50.0 + k, -5.25, v=limit + (2.23 if k < 10 else 0.0)))
    assert metric.score == pytest.approx(0.75)


def test_drivable_area_compliance_on_a_constructed_path(road):
    m, _ = road
    crit = OffroadCriterion(m.is_drivable, outside_distance(m))
    for x in np.arange(10.0, 30.0, 0.5):
        crit.update(EgoStep(0.0, x, -5.25, 0.0, 5.0, L, W, x, 0.0))
    assert crit.max_outside_m == 0.0 and drivable_area_compliance(crit.max_outside_m) == 1.0
    # 0.2 m over the kerb at y = −7 (the map's area reaches 5 cm beyond it): compliant
    crit.update(EgoStep(0.0, 30.0, -7.0 + 0.95 - 0.15 - 0.05, 0.0, 5.0, L, W, 30.0, 0.0))
    assert crit.max_outside_m == pytest.approx(0.15, abs=1e-6)
    assert drivable_area_compliance(crit.max_outside_m) == 1.0
    crit.update(EgoStep(0.0, 31.0, -7.0 + 0.95 - 0.5 - 0.05, 0.0, 5.0, L, W, 31.0, 0.0))  # 0.5 m over
    assert crit.max_outside_m == pytest.approx(0.5, abs=1e-6)
    assert drivable_area_compliance(crit.max_outside_m) == 0.0


def test_hard_braking_events():
    t = np.arange(0.0, 10.0, 0.05)
    a = np.zeros_like(t)
    assert hard_braking_events(t, a) == 0
    a[(t >= 1.0) & (t < 1.5)] = -6.0  # one spell
    a[(t >= 1.8) & (t < 2.0)] = -5.0  # 0.3 s later: the same event
    a[(t >= 5.0) & (t < 5.5)] = -4.5  # a second one
    a[(t >= 8.0) & (t < 9.0)] = -4.0  # not below −4.05
    assert hard_braking_events(t, a) == 2
    assert hard_braking_events(t, a, threshold=-3.9) == 3


def test_nuplan_score_combines_the_terms():
    rec = {"collisions": [], "drivable_area_compliance": 1.0, "driving_direction_compliance": 1.0, "progress": 1.0,
           "ttc_within_bound": True, "speed_limit_compliance": 1.0, "comfortable": True}
    assert nuplan_score(rec) == 1.0
    # uncomfortable and TTC out of bound: (5·0 + 5·1 + 4·1 + 2·0) / 16
    assert nuplan_score({**rec, "ttc_within_bound": False, "comfortable": False}) == pytest.approx(9 / 16)
    # half the route and half the speed-limit term: (5 + 5·0.5 + 4·0.5 + 2) / 16
    assert nuplan_score({**rec, "progress": 0.5, "speed_limit_compliance": 0.5}) == pytest.approx(11.5 / 16)
    assert nuplan_score({**rec, "driving_direction_compliance": 0.5}) == 0.5
    assert nuplan_score({**rec, "progress": 0.1}) == 0.0  # not making progress
    hit = lambda kind, fault=True: {"t": 1.0, "other_type": kind, "other_id": 3, "at_fault": fault}  # noqa: E731
    assert nuplan_score({**rec, "collisions": [hit("vehicle")]}) == 0.0
    assert nuplan_score({**rec, "collisions": [hit("vehicle", fault=False)]}) == 1.0
    assert nuplan_score({**rec, "collisions": [hit("static")]}) == 0.5  # one object hit is allowed at half
    assert nuplan_score({**rec, "collisions": [hit("static"), hit("static")]}) == 0.0


def test_offroad_fraction_on_a_constructed_path(road):
    """From x = 5 m to 204 m along fwd.0, 50 m of it 1 m further right, its right wheels over the kerb."""
    from sim.infractions import ProgressCriterion
    from sim.scoring import route_completion

    m, route = road
    offroad = OffroadCriterion(m.is_drivable, outside_distance(m))
    progress = ProgressCriterion(route.length)
    for x in range(5, 205):  # from 5 m: the rear stays on the road, which starts at x = 0
        y = -6.25 if 100 <= x < 150 else -5.25
        ego = step(route, float(x), y)
        offroad.update(ego)
        progress.update(ego)
    off_m = np.sqrt(2) + 49  # the first step off also moves 1 m sideways; the step back on is on
    assert offroad.offroad_m == pytest.approx(off_m)
    fraction = offroad.offroad_m / route.length
    assert progress.completion == pytest.approx(204 / route.length, abs=1e-6)
    assert route_completion(progress.completion, fraction) == pytest.approx((204 - off_m) / route.length, abs=1e-6)
    assert offroad.max_outside_m == pytest.approx(6.25 + 0.95 - 7.05, abs=1e-6)  # 0.15 m: still compliant
