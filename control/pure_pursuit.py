"""Pure pursuit on the planned path with a PID on speed: the baseline tracker and the MPC's fallback."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.geometry import arc_length
from sim.types import Control, Trajectory, VehicleState
from sim.vehicle_model import VehicleParams


@dataclass(frozen=True)
class TrackingParams:
    lookahead_min: float = 3.0  # [m]
    lookahead_gain: float = 0.3  # [s]: lookahead grows with speed (pure pursuit cuts curves by ~Ld²/2R)
    lookahead_max: float = 15.0  # [m]
    kp: float = 1.2  # speed error gain [1/s]
    ki: float = 0.2  # [1/s²]
    preview: float = 0.2  # follow the reference this far ahead in time [s]
    hold_brake: float = -3.0  # standing still on a stop [m/s²]


class PurePursuitPID:
    def __init__(self, vehicle: VehicleParams = VehicleParams(), params: TrackingParams = TrackingParams()) -> None:
        self.vp, self.p = vehicle, params
        self.integral = 0.0

    def reset(self) -> None:
        self.integral = 0.0

    def control(self, ego: VehicleState, traj: Trajectory, t: float, dt: float = 0.1) -> Control:
        p = self.p
        _, _, _, v_ref, a_ref = traj.at(t + p.preview)
        # longitudinal: feedforward plus PI on the speed error; hold the brake while the plan
        # stays at rest for the next second (a plan that creeps off from rest must not be held)
        if max(v_ref, traj.at(t + 1.0)[3]) < 0.05 and ego.v < 0.3:
            self.integral = 0.0
            accel = p.hold_brake
        else:
            err = v_ref - ego.v
            self.integral = float(np.clip(self.integral + err * dt, -2.0, 2.0))
            accel = a_ref + p.kp * err + p.ki * self.integral
        # lateral: pure pursuit from the rear axle (where its geometry holds) towards the path point
        # one lookahead ahead of the closest point
        rx = ego.x - np.cos(ego.yaw) * self.vp.wheelbase / 2
        ry = ego.y - np.sin(ego.yaw) * self.vp.wheelbase / 2
        path = np.column_stack([traj.x, traj.y])
        closest = int(np.argmin(np.hypot(path[:, 0] - ego.x, path[:, 1] - ego.y)))
        path = path[closest:]
        s = arc_length(path) if len(path) > 1 else np.zeros(1)
        ld = float(np.clip(p.lookahead_min + p.lookahead_gain * ego.v, p.lookahead_min, p.lookahead_max))
        if s[-1] >= ld:
            gx, gy = np.interp(ld, s, path[:, 0]), np.interp(ld, s, path[:, 1])
        else:  # the plan ends short (stopping): extend it along its final heading
            yaw_end = float(traj.yaw[-1])
            gx = path[-1, 0] + np.cos(yaw_end) * (ld - s[-1])
            gy = path[-1, 1] + np.sin(yaw_end) * (ld - s[-1])
        alpha = np.arctan2(gy - ry, gx - rx) - ego.yaw
        steer = float(np.arctan2(2 * self.vp.wheelbase * np.sin(alpha), max(np.hypot(gx - rx, gy - ry), 1.0)))
        return Control(float(np.clip(steer, -self.vp.max_steer, self.vp.max_steer)),
                       float(np.clip(accel, self.vp.min_accel, self.vp.max_accel)))
