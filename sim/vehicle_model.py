"""The kinematic bicycle model, defined once and shared by the simulator and the MPC.

The reference point is the vehicle's geometric centre, with the slip angle β of a bicycle whose
centre of mass sits halfway along the wheelbase (as in highway-env and Kong et al. 2015).
Functions take an array module (`numpy` or `casadi`) so that the MPC builds its NLP from the very
same equations that step the world.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class VehicleParams:
    length: float = 4.6  # [m]
    width: float = 1.9  # [m]
    wheelbase: float = 2.8  # [m]
    max_steer: float = 0.61  # front-wheel angle [rad] (35°)
    max_steer_rate: float = 0.8  # [rad/s]
    max_accel: float = 3.0  # [m/s²]
    min_accel: float = -8.0  # hardest braking [m/s²]
    max_jerk: float = 30.0  # actuator jerk limit [m/s³]; comfort limits are scoring's business


def derivatives(yaw, v, steer, wheelbase, lib=np):
    """(ẋ, ẏ, ψ̇) of the centre for heading ψ, speed v and front-wheel angle δ."""
    beta = lib.arctan(0.5 * lib.tan(steer))
    return v * lib.cos(yaw + beta), v * lib.sin(yaw + beta), v * lib.cos(beta) * lib.tan(steer) / wheelbase


def apply_actuator_limits(steer, accel, cmd_steer, cmd_accel, p: VehicleParams, dt: float):
    """New (δ, a) after one step of rate-limited steering and jerk-limited acceleration."""
    def clip(a, lo, hi):  # np.minimum/np.maximum: far cheaper than np.clip on small arrays
        return np.minimum(np.maximum(a, lo), hi)

    target_steer = clip(cmd_steer, -p.max_steer, p.max_steer)
    target_accel = clip(cmd_accel, p.min_accel, p.max_accel)
    steer = steer + clip(target_steer - steer, -p.max_steer_rate * dt, p.max_steer_rate * dt)
    accel = accel + clip(target_accel - accel, -p.max_jerk * dt, p.max_jerk * dt)
    return steer, accel


def step(x, y, yaw, v, steer, accel, cmd_steer, cmd_accel, p: VehicleParams, dt: float):
    """One forward-Euler step [dt s]; speed never goes below zero (no reversing)."""
    steer, accel = apply_actuator_limits(steer, accel, cmd_steer, cmd_accel, p, dt)
    dx, dy, dyaw = derivatives(yaw, v, steer, p.wheelbase)
    v_new = np.maximum(v + accel * dt, 0.0)
    return x + dx * dt, y + dy * dt, yaw + dyaw * dt, v_new, steer, accel
