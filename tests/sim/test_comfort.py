"""nuPlan's comfort terms, and leaving emergency stops out of them."""
from __future__ import annotations

import numpy as np

from sim.comfort import comfort_signals, comfort_violations, outside_windows

DT = 0.05


def brake_profile(t_brake: float, decel: float, v0: float = 10.0, T: float = 12.0):
    """Cruise at v0, then brake at `decel` from t_brake until standstill (a step in accel)."""
    t = np.arange(0.0, T, DT)
    v = np.where(t < t_brake, v0, np.maximum(v0 - decel * (t - t_brake), 0.0))
    return t, v, np.zeros_like(t)


def test_gentle_driving_is_comfortable():
    t, v, yaw = brake_profile(4.0, 0.5)
    assert not any(comfort_violations(comfort_signals(t, v, yaw)).values())


def test_a_hard_brake_violates_and_its_window_excuses_it():
    t, v, yaw = brake_profile(4.0, 7.0)
    sig = comfort_signals(t, v, yaw)
    bad = comfort_violations(sig)
    assert bad["lon_accel"] and bad["lon_jerk"]
    emergency = np.arange(4.0, 5.5, 0.1)  # the planner's emergency ticks while braking
    calm = comfort_violations(sig, mask=outside_windows(t, emergency))
    assert not any(calm.values())
    # ticks that end too early leave the tail of the brake (and the stop's jerk) uncovered
    assert any(comfort_violations(sig, mask=outside_windows(t, np.array([4.0]))).values())


def test_outside_windows_edges():
    t = np.arange(0.0, 5.0, 0.5)
    m = outside_windows(t, np.array([2.0]), before=0.5, after=1.0)
    np.testing.assert_array_equal(t[~m], [1.5, 2.0, 2.5, 3.0])
    assert outside_windows(t, np.zeros(0)).all()
