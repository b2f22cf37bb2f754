"""The kinematic bicycle model, defined once and shared by the simulator and the MPC.

The reference point is the vehicle's geometric centre, with the slip angle β of a bicycle whose
centre of mass sits halfway along the wheelbase (as in highway-env and Kong et al. 2015).
Functions take an array module (`numpy` or `casadi`) so that the MPC builds its NLP from the very
same equations that step the world.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit


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


def step_many(x, y, yaw, v, steer, accel, cmd_steer, cmd_accel, p: VehicleParams, dt: float):
    """`step` for float64 arrays of many vehicles in two compiled loops, bit-identical to it.

    numpy's tan and arctan (SIMD code whose last bit can differ from libm's) stay numpy calls.
    """
    steer, accel = _limits(steer, accel, cmd_steer, cmd_accel, p.max_steer, p.min_accel, p.max_accel,
                           p.max_steer_rate * dt, p.max_jerk * dt)
    tan = np.tan(steer)
    return (*_integrate(x, y, yaw, v, accel, tan, np.arctan(0.5 * tan), p.wheelbase, dt), steer, accel)


@njit(cache=True)
def _limits(steer, accel, cmd_steer, cmd_accel, max_steer, min_accel, max_accel, steer_step, jerk_step):
    """`apply_actuator_limits`, with the rate limits per step."""
    n = len(steer)
    steer_o, accel_o = np.empty(n), np.empty(n)
    for i in range(n):
        target = _clip(cmd_steer[i], -max_steer, max_steer)
        steer_o[i] = steer[i] + _clip(target - steer[i], -steer_step, steer_step)
        target = _clip(cmd_accel[i], min_accel, max_accel)
        accel_o[i] = accel[i] + _clip(target - accel[i], -jerk_step, jerk_step)
    return steer_o, accel_o


@njit(cache=True)
def _integrate(x, y, yaw, v, accel, tan_steer, beta, wheelbase, dt):
    """`step`'s forward Euler given tan δ and the slip angle β."""
    n = len(x)
    x_o, y_o, yaw_o, v_o = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    for i in range(n):
        x_o[i] = x[i] + v[i] * math.cos(yaw[i] + beta[i]) * dt
        y_o[i] = y[i] + v[i] * math.sin(yaw[i] + beta[i]) * dt
        yaw_o[i] = yaw[i] + v[i] * math.cos(beta[i]) * tan_steer[i] / wheelbase * dt
        vi = v[i] + accel[i] * dt
        v_o[i] = vi if (vi >= 0.0 or vi != vi) else 0.0
    return x_o, y_o, yaw_o, v_o


@njit(cache=True)
def _clip(a, lo, hi):
    """np.minimum(np.maximum(a, lo), hi) for scalars."""
    a = a if (a >= lo or a != a) else lo
    return a if (a <= hi or a != a) else hi
