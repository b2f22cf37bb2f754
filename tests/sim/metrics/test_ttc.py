"""Time to collision: constant-velocity approaches whose answer is worked out by hand."""
from __future__ import annotations

import numpy as np
import pytest

from sim.infractions import EgoStep, Others
from sim.metrics.ttc import TTCMetric, time_to_collision

L, W = 4.6, 1.9  # both boxes, unless a case says otherwise


def ttc_one(ox, oy, oyaw, ovx, ovy, ego_v=10.0, ego_yaw=0.0, length=L, width=W, horizon=np.inf):
    ev = (ego_v * np.cos(ego_yaw), ego_v * np.sin(ego_yaw))
    return float(time_to_collision((0.0, 0.0), ego_yaw, L, W, ev, ox, oy, oyaw, length, width, ovx, ovy, horizon)[0])


def test_stopped_car_ahead():
    # gap between the boxes: 20 − 2.3 − 2.3 = 15.4 m, closed at 10 m/s
    assert ttc_one(20.0, 0.0, 0.0, 0.0, 0.0) == pytest.approx(1.54)


def test_head_on():
    # gap 30 − 4.6 = 25.4 m, closing at 10 + 5 m/s
    assert ttc_one(30.0, 0.0, np.pi, -5.0, 0.0) == pytest.approx(25.4 / 15)


def test_following_a_slower_car_and_a_faster_one():
    assert ttc_one(20.0, 0.0, 0.0, 6.0, 0.0) == pytest.approx(15.4 / 4)  # closing at 4 m/s
    assert ttc_one(20.0, 0.0, 0.0, 12.0, 0.0) == np.inf  # pulling away


def test_orientation_matters_not_just_centre_distance():
    # the same stopped car 20 m ahead, but turned across the lane: its near face is 0.95 m from its
    # centre instead of 2.3 m, so the gap is 20 − 0.95 − 2.3 = 16.75 m
    assert ttc_one(20.0, 0.0, np.pi / 2, 0.0, 0.0) == pytest.approx(1.675)
    # a 0.6 m square turned 45° points a corner at the ego, 0.3·√2 m from its centre
    assert ttc_one(20.0, 0.0, np.pi / 4, 0.0, 0.0, length=0.6, width=0.6) == pytest.approx(
        (20.0 - 0.3 * np.sqrt(2) - 2.3) / 10)
    # a car at 45°: its near corner is (−2.298, −0.955) from its centre, just outside the ego's
    # band |y| ≤ 0.95, so the first contact is on its edge where it enters the band, x = −2.2935
    # (the edge has slope 1, so it gives back in x what the corner overshoots in y)
    reach = (2.3 + 0.95) / np.sqrt(2) - ((2.3 - 0.95) / np.sqrt(2) - 0.95)
    assert ttc_one(20.0, 0.0, np.pi / 4, 0.0, 0.0) == pytest.approx((20.0 - reach - 2.3) / 10)


def test_crossing_at_right_angles():
    # the other drives south at 5 m/s, centred at (20, 10): it spans x ∈ [19.05, 20.95] and
    # y ∈ [7.7 − 5t, 12.3 − 5t]; the ego spans x ∈ [−2.3 + 10t, 2.3 + 10t], y ∈ [−0.95, 0.95].
    # x overlaps for t ∈ [1.675, 2.325], y for t ∈ [1.35, 2.65]: first contact at 1.675 s
    assert ttc_one(20.0, 10.0, -np.pi / 2, 0.0, -5.0) == pytest.approx(1.675)
    # 1 s later it has passed before the ego arrives: y leaves [−0.95, 0.95] at 1.65 s < 1.675 s
    assert ttc_one(20.0, 10.0 - 5.0 * 1.0, -np.pi / 2, 0.0, -5.0) == np.inf


def test_miss_by_a_whisker_and_contact_now():
    assert ttc_one(30.0, 1.95, np.pi, -5.0, 0.0) == np.inf  # lateral gap 1.95 − 1.9 = 5 cm
    assert ttc_one(30.0, 1.85, np.pi, -5.0, 0.0) == pytest.approx(25.4 / 15)  # 5 cm overlap
    assert ttc_one(4.0, 0.0, 0.0, 0.0, 0.0) == 0.0  # already overlapping


def test_horizon_and_a_pedestrian():
    assert ttc_one(40.0, 0.0, 0.0, 0.0, 0.0, horizon=3.0) == np.inf  # contact at 3.54 s
    assert ttc_one(40.0, 0.0, 0.0, 0.0, 0.0, horizon=4.0) == pytest.approx(3.54)
    # a walker (0.6 m box) stepping out from the right kerb at 1.5 m/s, 15 m ahead, 4 m to the side:
    # y reaches the ego's side (−0.95 − 0.3) at (4 − 1.25)/1.5 = 1.8333 s; x overlaps from
    # (15 − 0.3 − 2.3)/10 = 1.24 s to (15 + 0.3 + 2.3)/10 = 1.76 s: the ego is past; no contact
    assert ttc_one(15.0, -4.0, np.pi / 2, 0.0, 1.5, length=0.6, width=0.6) == np.inf
    # 5 m further on it is hit: x overlaps for t ∈ [1.74, 2.26] and y from 1.8333 s
    assert ttc_one(20.0, -4.0, np.pi / 2, 0.0, 1.5, length=0.6, width=0.6) == pytest.approx(2.75 / 1.5)


def test_vectorised_over_actors():
    got = time_to_collision((0.0, 0.0), 0.0, L, W, (10.0, 0.0), [20.0, 30.0, 20.0], [0.0, 0.0, 10.0],
                            [0.0, np.pi, -np.pi / 2], [L] * 3, [W] * 3, [0.0, -5.0, 0.0], [0.0, 0.0, -5.0])
    assert got == pytest.approx([1.54, 25.4 / 15, 1.675])
    assert len(time_to_collision((0, 0), 0.0, L, W, (10, 0), [], [], [], [], [], [], [])) == 0


def test_rotated_ego_frame():
    # the stopped-car case turned by 120°: the answer must not depend on the frame
    yaw = np.radians(120.0)
    c, s = np.cos(yaw), np.sin(yaw)
    assert ttc_one(20.0 * c, 20.0 * s, yaw, 0.0, 0.0, ego_yaw=yaw) == pytest.approx(1.54)


def others(*rows) -> Others:
    """rows: (x, y, yaw, speed, length, width)."""
    a = np.array(rows, dtype=float).reshape(-1, 6)
    return Others(id=np.arange(len(a)), type=np.array(["vehicle"] * len(a)), x=a[:, 0], y=a[:, 1], yaw=a[:, 2],
                  length=a[:, 4], width=a[:, 5], vx=a[:, 3] * np.cos(a[:, 2]), vy=a[:, 3] * np.sin(a[:, 2]))


def ego(x=0.0, v=10.0, yaw=0.0) -> EgoStep:
    return EgoStep(0.0, x, 0.0, yaw, v, L, W, x, 0.0)


def test_metric_min_and_fraction_below_the_bound():
    m = TTCMetric()  # nuPlan: 3 s horizon, 0.95 s bound
    stopped_car = others((40.0, 0.0, 0.0, 0.0, L, W))
    # the ego drives at 10 m/s towards a stopped car; at x the gap is 35.4 − x, TTC (35.4 − x)/10
    xs = np.arange(0.0, 35.0, 5.0)
    ttcs = [m.update(ego(x=x), stopped_car) for x in xs]
    assert ttcs[:2] == [np.inf] * 2  # 3.54 s and 3.04 s: beyond the 3 s horizon
    assert ttcs[2:] == pytest.approx([(35.4 - x) / 10 for x in xs[2:]])  # 2.54 … 0.54 s
    assert m.min_ttc == pytest.approx(0.54)
    assert m.below_fraction == pytest.approx(1 / 7)  # only the last tick is under 0.95 s
    assert m.ticks == 7


def test_metric_ignores_stopped_ego_actors_behind_and_contact():
    m = TTCMetric()
    fast_from_behind = others((-20.0, 0.0, 0.0, 20.0, L, W))  # would hit the ego in 1.54 s
    assert m.compute(ego(v=10.0), fast_from_behind) == np.inf
    assert m.compute(ego(v=0.0), others((10.0, 0.0, np.pi, 10.0, L, W))) == np.inf  # stopped ego
    assert m.compute(ego(v=10.0), others((4.0, 0.0, 0.0, 0.0, L, W))) == np.inf  # in contact: a collision
    # beside the ego (90° bearing) is not behind: a car coming across from the left counts; its
    # front reaches y = 0.95 after (6 − 2.3 − 0.95)/4 s, while the creeping ego still spans x = 0
    cutting = others((0.0, 6.0, -np.pi / 2, 4.0, L, W))
    assert m.compute(ego(v=1.0), cutting) == pytest.approx(2.75 / 4)
