"""Pure pursuit + speed PI on the simulator's own bicycle model."""
from __future__ import annotations

import numpy as np
import pytest

from control.pure_pursuit import PurePursuitPID, TrackingParams
from sim.types import Trajectory, VehicleState
from sim.vehicle_model import VehicleParams, step

DT_SIM, DT_CTRL = 0.05, 0.1  # the world's physics and agent rates [s]
VP = VehicleParams()


def line_traj(v: float, y: float = 0.0, seconds: float = 40.0, t0: float = 0.0) -> Trajectory:
    """Along +x at constant speed v [m/s] on the line y."""
    t = np.arange(0.0, seconds + 1e-9, 0.1)
    n = len(t)
    return Trajectory(t0 + t, v * t, np.full(n, y), np.zeros(n), np.full(n, v), np.zeros(n), np.zeros(n))


def drive(ctrl, traj, state: VehicleState, seconds: float):
    """Close the loop: control at 10 Hz, physics at 20 Hz. Returns (t, x, y, yaw, v) rows."""
    x, y, yaw, v, steer, acc = state.x, state.y, state.yaw, state.v, state.steer, state.accel
    rows, cmd = [], None
    for k in range(int(round(seconds / DT_SIM))):
        t = k * DT_SIM
        if k % 2 == 0:
            cmd = ctrl.control(VehicleState(x, y, yaw, v, steer, acc), traj, t, DT_CTRL)
        x, y, yaw, v, steer, acc = (float(q) for q in step(x, y, yaw, v, steer, acc, cmd.steer, cmd.accel, VP, DT_SIM))
        rows.append((t + DT_SIM, x, y, yaw, v))
    return np.array(rows)


@pytest.mark.parametrize("v, offset", [(10.0, -1.0), (10.0, 1.0), (5.0, -1.0)])
def test_straight_line_lateral_offset_converges(v, offset):
    rows = drive(PurePursuitPID(), line_traj(v), VehicleState(0.0, offset, 0.0, v), 6.0)
    t, y, yaw = rows[:, 0], rows[:, 2], rows[:, 3]
    late = t > 4.0
    assert np.abs(y[late]).max() < 0.1
    assert np.abs(yaw[late]).max() < 0.03
    # moves toward the line from the start and never swings far past it
    assert abs(y[10]) < abs(offset)
    assert np.max(np.sign(-offset) * y) < 0.3


def test_heading_error_is_corrected():
    rows = drive(PurePursuitPID(), line_traj(8.0), VehicleState(0.0, 0.0, 0.2, 8.0), 6.0)
    late = rows[:, 0] > 4.0
    assert np.abs(rows[late, 2]).max() < 0.1 and np.abs(rows[late, 3]).max() < 0.03


@pytest.mark.parametrize("v0, v_ref", [(5.0, 10.0), (10.0, 6.0)])
def test_speed_pi_reaches_the_reference_speed(v0, v_ref):
    """A 4–5 m/s step with no acceleration feedforward: the PI alone closes the gap."""
    rows = drive(PurePursuitPID(), line_traj(v_ref, seconds=60.0), VehicleState(0.0, 0.0, 0.0, v0), 15.0)
    t, v = rows[:, 0], rows[:, 4]
    assert np.abs(v[t > 4.0] - v_ref).max() < 0.4  # there within about 4 s
    assert np.abs(v[t > 12.0] - v_ref).max() < 0.1  # and settles (the integral's pole is slow)
    assert np.max(np.sign(v_ref - v0) * (v - v_ref)) < 0.5  # overshoot stays small


def test_accel_feedforward_tracks_a_speed_ramp():
    t = np.arange(0.0, 10.0 + 1e-9, 0.1)
    v_ref = np.minimum(2.0 + 1.0 * t, 12.0)
    a_ref = np.where(2.0 + t < 12.0, 1.0, 0.0)
    x = np.concatenate([[0.0], np.cumsum((v_ref[1:] + v_ref[:-1]) / 2 * 0.1)])
    n = len(t)
    traj = Trajectory(t, x, np.zeros(n), np.zeros(n), v_ref, a_ref, np.zeros(n))
    rows = drive(PurePursuitPID(), traj, VehicleState(0.0, 0.0, 0.0, 2.0), 8.0)
    err = rows[:, 4] - np.interp(rows[:, 0], t, v_ref)
    assert np.abs(err[rows[:, 0] > 1.0]).max() < 0.4


def rest_traj(x0: float, creep_from: float | None = None, a: float = 0.5) -> Trajectory:
    """A plan that stays at x0, or leaves it at `creep_from` [s] with acceleration a [m/s²]."""
    t = np.arange(0.0, 5.0 + 1e-9, 0.1)
    n = len(t)
    if creep_from is None:
        v, acc = np.zeros(n), np.zeros(n)
    else:
        v = np.maximum(t - creep_from, 0.0) * a
        acc = np.where(t >= creep_from, a, 0.0)
    x = x0 + np.concatenate([[0.0], np.cumsum((v[1:] + v[:-1]) / 2 * 0.1)])
    return Trajectory(t, x, np.zeros(n), np.zeros(n), v, acc, np.zeros(n))


def test_standing_on_a_plan_at_rest_holds_the_brake():
    ctrl = PurePursuitPID()
    ego = VehicleState(10.0, 0.0, 0.0, 0.0)
    for k in range(5):
        cmd = ctrl.control(ego, rest_traj(10.0), 0.1 * k)
        assert cmd.accel == pytest.approx(TrackingParams().hold_brake)
        assert cmd.accel < 0
    # closed loop: stays put
    rows = drive(PurePursuitPID(), rest_traj(10.0), ego, 3.0)
    assert np.all(rows[:, 4] == 0.0) and rows[-1, 1] == pytest.approx(10.0)


@pytest.mark.parametrize("creep_from", [0.0, 0.5])  # creeping now, or within the next second
def test_a_plan_that_creeps_off_from_rest_releases_the_brake(creep_from):
    ctrl = PurePursuitPID()
    cmd = ctrl.control(VehicleState(10.0, 0.0, 0.0, 0.0), rest_traj(10.0, creep_from), 0.0)
    assert cmd.accel >= 0.0 and (cmd.accel > 0.0 or creep_from > 0)  # brake released
    rows = drive(PurePursuitPID(), rest_traj(10.0, creep_from), VehicleState(10.0, 0.0, 0.0, 0.0), 3.0)
    assert rows[-1, 4] > 0.5 and rows[-1, 1] > 10.5


def test_steering_is_limited():
    # a path turning sharply left just ahead (north along x = 2): full lock, never beyond the limit
    t = np.arange(0.0, 5.0 + 1e-9, 0.1)
    n = len(t)
    north = Trajectory(t, np.full(n, 2.0), 5.0 * t, np.full(n, np.pi / 2), np.full(n, 5.0), np.zeros(n), np.zeros(n))
    cmd = PurePursuitPID().control(VehicleState(0.0, 0.0, 0.0, 5.0), north, 0.0)
    assert cmd.steer == pytest.approx(VP.max_steer)
    mirrored = Trajectory(t, np.full(n, 2.0), -5.0 * t, np.full(n, -np.pi / 2), np.full(n, 5.0), np.zeros(n), np.zeros(n))
    assert PurePursuitPID().control(VehicleState(0.0, 0.0, 0.0, 5.0), mirrored, 0.0).steer == pytest.approx(-VP.max_steer)
