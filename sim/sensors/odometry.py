"""Ego odometry as the car's own sensors report it: wheel speed with a per-episode scale error,
a gyro with a per-episode bias, an accelerometer; white noise on each."""
from __future__ import annotations

import numpy as np

from sim.sensors.specs import OdometrySpec
from sim.sensors.state import SceneState
from sim.types import EgoOdometry


class Odometry:
    def __init__(self, spec: OdometrySpec, rng: np.random.Generator) -> None:
        self.spec, self.rng = spec, rng
        self.scale = 1.0 + spec.speed_scale_std * rng.standard_normal()
        self.bias = spec.yaw_rate_bias_std * rng.standard_normal()

    def capture(self, state: SceneState) -> EgoOdometry:
        s, e = self.spec, state.ego
        n = self.rng.standard_normal(3)
        speed = e.v * self.scale + s.speed_std * n[0]
        return EgoOdometry(state.t, float(speed), float(e.yaw_rate + self.bias + s.yaw_rate_std * n[1]),
                           float(e.accel + s.accel_std * n[2]))
