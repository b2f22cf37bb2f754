"""`e2e`: one network from the camera image, ego speed and route command to steer and accel.

The PilotNet-sized, command-branched network of drivestack/e2e/model.py, trained by imitation of
the expert (`drivestack train e2e`). It outputs steer and a target speed; the only step after it
is accel = (target − speed) / 1 s, clipped to the vehicle's limits (`model.decode`). No planner,
no MPC. `e2e-mean` is the trivial baseline it must beat.

Weights: models/e2e.pt, or the file named by $DRIVESTACK_E2E_WEIGHTS (an environment variable,
so evaluation workers and Ray tasks see it too). torch is imported when an agent is built.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from sim.map import RoadMap
from sim.route import COMMANDS, Route
from sim.sensors.specs import OdometrySpec
from sim.types import Control, Observation

WEIGHTS = Path(__file__).resolve().parents[2] / "models" / "e2e.pt"
TRAIN_HINT = ("train them with `drivestack data e2e --episodes 240 --out data/e2e --workers 2` then "
              "`drivestack train e2e --data data/e2e --epochs 12 --dagger-rounds 6 --dagger-episodes 16 --workers 2 "
              "--out models/e2e.pt` (the shipped recipe, about 35 min; models/README.md)")


def weights_path() -> Path:
    return Path(os.environ.get("DRIVESTACK_E2E_WEIGHTS") or WEIGHTS)


def _load(policy):
    """The given policy, or the shipped one; a missing file is a one-line UserError naming the train command."""
    if policy is not None:
        return policy
    from drivestack.e2e.model import load_policy

    return load_policy(weights_path(), TRAIN_HINT)


class E2EAgent:
    name = "e2e"
    privileged = False
    uses_traffic_manager = False

    def __init__(self, policy=None) -> None:
        """`policy`: a drivestack.e2e.model.Policy (training passes its own); default: load the weights file."""
        import torch

        from drivestack.e2e.model import camera_spec

        # one thread, on purpose: beside the simulator on 2 cores, more threads are slower (DESIGN.md)
        torch.set_num_threads(1)
        self.policy = _load(policy)
        self.camera = camera_spec(self.policy.camera)
        self.timing: dict[str, float] = {}  # this tick's cost [ms], for `bench stack`

    def sensors(self) -> list:
        # wheel odometry: the speed input is a sensor reading, as it would be on a car
        return [self.camera, OdometrySpec()]

    def reset(self, route: Route, road_map: RoadMap) -> None:
        pass  # the network is memoryless: the route reaches it only as the command

    def act(self, obs: Observation) -> Control:
        t0 = time.perf_counter()
        steer, accel = self.policy.act(obs.sensors[self.camera.name].image, obs.odometry.speed, obs.command)
        self.timing = {"perception": 0.0, "planning": 0.0, "control": (time.perf_counter() - t0) * 1e3}
        return Control(steer, accel)


class E2EMeanAgent:
    """The trivial baseline: the training set's mean steer for the current command, at constant
    speed (the training set's mean speed, held by a proportional controller). No camera."""

    name = "e2e-mean"
    privileged = False
    uses_traffic_manager = False
    GAIN = 0.5  # [1/s]: accel = GAIN × (mean speed − speed)

    def __init__(self, policy=None) -> None:
        stats = _load(policy).stats
        self.steer = np.asarray(stats["steer_mean"], dtype=float)  # per command, in COMMANDS order
        self.speed = float(stats["speed_mean"])

    def sensors(self) -> list:
        return []

    def reset(self, route: Route, road_map: RoadMap) -> None:
        pass

    def act(self, obs: Observation) -> Control:
        accel = float(np.clip(self.GAIN * (self.speed - obs.odometry.speed), -3.0, 2.0))
        return Control(float(self.steer[COMMANDS.index(obs.command)]), accel)
