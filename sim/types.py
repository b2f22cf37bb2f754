"""Public data types that cross package boundaries.

perception/, planning/ and control/ may import this module (and sim.map, sim.vehicle_model).
Everything is SI: metres, seconds, radians, m/s, m/s². Poses are in the world frame
(x east, y north, yaw counter-clockwise from +x) unless a name says otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np


class ActorType(str, Enum):
    VEHICLE = "vehicle"
    PEDESTRIAN = "pedestrian"
    STATIC = "static"  # props: poles, sign posts; parked cars are vehicles, as in CARLA


class LightState(str, Enum):
    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"


class Command(str, Enum):
    """High-level route command, as in conditional imitation learning (Codevilla et al. 2018)."""

    FOLLOW = "follow"
    LEFT = "left"
    RIGHT = "right"
    STRAIGHT = "straight"


@dataclass(frozen=True)
class Control:
    """What an agent asks of the ego each tick."""

    steer: float  # front-wheel angle [rad], + is left
    accel: float  # longitudinal acceleration [m/s²], − brakes


@dataclass(frozen=True)
class VehicleState:
    """Rear-axle-free kinematic state: the pose is the vehicle's geometric centre."""

    x: float  # [m]
    y: float  # [m]
    yaw: float  # [rad]
    v: float  # speed along the heading [m/s]
    steer: float = 0.0  # current front-wheel angle [rad]
    accel: float = 0.0  # current longitudinal acceleration [m/s²]

    @property
    def xy(self) -> np.ndarray:
        return np.array([self.x, self.y])


@dataclass(frozen=True)
class ObjectState:
    """An object around the ego, from ground truth or from the tracker: the same type either way."""

    id: int
    type: ActorType
    x: float  # box centre [m]
    y: float  # [m]
    yaw: float  # [rad]
    vx: float  # world-frame velocity [m/s]
    vy: float  # [m/s]
    length: float  # [m]
    width: float  # [m]


@dataclass(frozen=True)
class TrafficControlState:
    """A stop line that governs one lane: its kind and, for lights, the current state."""

    lane_id: str
    kind: str  # "light" | "stop"
    state: LightState | None  # None for stop signs


@dataclass(frozen=True)
class EgoOdometry:
    """What the ego's own sensors say about its motion (noise arrives with the sensors issue)."""

    t: float  # sim time [s]
    speed: float  # [m/s]
    yaw_rate: float  # [rad/s]
    accel: float  # [m/s²]


@dataclass(frozen=True)
class Observation:
    """Everything an agent may see on one tick.

    `sensors` holds the frames of the sensors that the agent declared (empty for privileged agents
    until the sensors land). `privileged` is filled by the runner only for privileged agents.
    """

    t: float  # [s]
    ego: VehicleState  # pose from localisation against the HD map, speed from odometry
    odometry: EgoOdometry
    command: Command  # the route command at the next junction
    sensors: dict[str, Any] = field(default_factory=dict)
    privileged: Any | None = None


@dataclass(frozen=True)
class Trajectory:
    """A time-stamped reference for the controller, in the world frame.

    All arrays have the same length; t starts at the planning time.
    """

    t: np.ndarray  # [s]
    x: np.ndarray  # [m]
    y: np.ndarray  # [m]
    yaw: np.ndarray  # [rad]
    v: np.ndarray  # [m/s]
    a: np.ndarray  # [m/s²]
    curvature: np.ndarray  # [1/m]

    def __len__(self) -> int:
        return len(self.t)

    def at(self, t: float) -> tuple[float, float, float, float, float]:
        """(x, y, yaw, v, a) interpolated at time t [s]."""
        return tuple(float(np.interp(t, self.t, arr)) for arr in (self.x, self.y, np.unwrap(self.yaw), self.v, self.a))


@dataclass(frozen=True)
class StopLineState:
    """A controlled stop line on the ego's route, as the stack perceives it."""

    S: float  # route arc length of the line [m]
    kind: str  # "light" | "stop"
    state: LightState | None  # None for stop signs, or a light not (yet) seen
    junction: str
