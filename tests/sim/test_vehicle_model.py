"""The kinematic bicycle model and its actuator limits."""
from __future__ import annotations

import numpy as np
import pytest

from sim.vehicle_model import VehicleParams, apply_actuator_limits, derivatives, step

P = VehicleParams()
DT = 0.05


def test_steer_rate_limit():
    steer, accel = apply_actuator_limits(0.0, 0.0, 0.5, 0.0, P, DT)
    assert steer == pytest.approx(P.max_steer_rate * DT)  # 0.04 rad in one step, not 0.5
    assert accel == 0.0
    steer, _ = apply_actuator_limits(0.3, 0.0, -0.5, 0.0, P, DT)
    assert steer == pytest.approx(0.3 - P.max_steer_rate * DT)
    steer, _ = apply_actuator_limits(0.1, 0.0, 0.11, 0.0, P, DT)  # within the rate: reached at once
    assert steer == pytest.approx(0.11)


def test_steer_saturates_at_max_steer():
    steer = 0.0
    for _ in range(200):
        steer, _ = apply_actuator_limits(steer, 0.0, 2.0, 0.0, P, DT)
    assert steer == pytest.approx(P.max_steer)
    for _ in range(400):
        steer, _ = apply_actuator_limits(steer, 0.0, -2.0, 0.0, P, DT)
    assert steer == pytest.approx(-P.max_steer)


def test_jerk_limit_and_accel_bounds():
    _, accel = apply_actuator_limits(0.0, 0.0, 0.0, 10.0, P, DT)
    assert accel == pytest.approx(P.max_jerk * DT)  # 1.5 m/s² per step
    accel, trace = 0.0, []
    for _ in range(20):
        _, accel = apply_actuator_limits(0.0, accel, 0.0, 10.0, P, DT)
        trace.append(accel)
    assert max(trace) == pytest.approx(P.max_accel)  # clipped command
    assert np.all(np.diff([0.0] + trace) <= P.max_jerk * DT + 1e-12)
    for _ in range(40):
        _, accel = apply_actuator_limits(0.0, accel, 0.0, -20.0, P, DT)
        trace.append(accel)
    assert min(trace) == pytest.approx(P.min_accel)
    assert np.all(np.abs(np.diff([0.0] + trace)) <= P.max_jerk * DT + 1e-12)


def test_actuator_limits_vectorised():
    steer, accel = apply_actuator_limits(np.zeros(3), np.zeros(3), np.array([0.01, 1.0, -1.0]),
                                         np.array([0.5, 5.0, -9.0]), P, DT)
    np.testing.assert_allclose(steer, [0.01, 0.04, -0.04])
    np.testing.assert_allclose(accel, [0.5, 1.5, -1.5])


def test_speed_never_negative():
    x, y, yaw, v, steer, accel = 0.0, 0.0, 0.0, 1.0, 0.0, -8.0
    speeds = []
    for _ in range(100):
        x, y, yaw, v, steer, accel = step(x, y, yaw, v, steer, accel, 0.0, -8.0, P, DT)
        speeds.append(v)
    assert min(speeds) == 0.0
    assert speeds[-1] == 0.0
    x_stop = x  # and it does not roll backwards afterwards
    for _ in range(20):
        x, y, yaw, v, steer, accel = step(x, y, yaw, v, steer, accel, 0.0, -8.0, P, DT)
    assert x == x_stop and v == 0.0


def test_straight_with_zero_steer_keeps_heading():
    yaw0 = 0.7
    x, y, yaw, v, steer, accel = 1.0, 2.0, yaw0, 10.0, 0.0, 0.0
    for _ in range(200):
        x, y, yaw, v, steer, accel = step(x, y, yaw, v, steer, accel, 0.0, 0.0, P, DT)
    assert yaw == yaw0
    assert v == 10.0
    np.testing.assert_allclose([x, y], [1.0 + 100.0 * np.cos(yaw0), 2.0 + 100.0 * np.sin(yaw0)], atol=1e-9)


def test_left_steer_turns_left_on_the_expected_circle():
    # steady state: yaw rate = v·cos(β)·tan(δ)/L with β = atan(tan(δ)/2)
    delta = 0.2
    dx, dy, dyaw = derivatives(0.0, 10.0, delta, P.wheelbase)
    beta = np.arctan(0.5 * np.tan(delta))
    assert dyaw == pytest.approx(10.0 * np.cos(beta) * np.tan(delta) / P.wheelbase)
    assert dyaw > 0 and dy > 0  # + steer is left
    x, y, yaw, v, steer, accel = 0.0, 0.0, 0.0, 10.0, delta, 0.0
    for _ in range(20):
        x, y, yaw, v, steer, accel = step(x, y, yaw, v, steer, accel, delta, 0.0, P, DT)
    assert yaw == pytest.approx(20 * DT * dyaw)
    assert y > 0
