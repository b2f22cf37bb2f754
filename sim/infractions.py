"""Infraction criteria: one small class per infraction, each fed a per-step snapshot.

Thresholds follow CARLA's leaderboard criteria (stop: 0.1 m/s; route deviation 30 m) unless
noted. Each criterion emits typed `Event`s; scoring (a pure function elsewhere) turns them into a
penalty.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable

import numpy as np

from sim.geometry import box_corners, boxes_overlap
from sim.metrics.at_fault import CollisionType, classify_collision, is_at_fault
from sim.route import StopLine
from sim.types import ActorType, LightState


class EventKind(str, Enum):
    COLLISION_PEDESTRIAN = "collision_pedestrian"
    COLLISION_VEHICLE = "collision_vehicle"
    COLLISION_STATIC = "collision_static"
    RED_LIGHT = "red_light"
    STOP_SIGN = "stop_sign"
    ROUTE_DEVIATION = "route_deviation"
    BLOCKED = "blocked"
    TIMEOUT = "timeout"
    GOAL = "goal_reached"


@dataclass(frozen=True)
class Event:
    t: float  # [s]
    kind: EventKind
    other_id: int | None = None
    other_type: str | None = None
    at_fault: bool = True
    detail: str = ""


@dataclass(frozen=True)
class Others:
    """Boxes of everything the ego can hit on this step."""

    id: np.ndarray
    type: np.ndarray  # ActorType values as str
    x: np.ndarray
    y: np.ndarray
    yaw: np.ndarray
    length: np.ndarray
    width: np.ndarray
    vx: np.ndarray
    vy: np.ndarray


@dataclass(frozen=True)
class EgoStep:
    t: float  # [s]
    x: float
    y: float
    yaw: float
    v: float  # [m/s]
    length: float
    width: float
    S: float  # progress along the route [m]
    d: float  # lateral offset from the route [m]


_COLLISION_KIND = {
    ActorType.PEDESTRIAN.value: EventKind.COLLISION_PEDESTRIAN,
    ActorType.VEHICLE.value: EventKind.COLLISION_VEHICLE,
    ActorType.STATIC.value: EventKind.COLLISION_STATIC,
}


class CollisionCriterion:
    """Oriented-box overlap of the ego with anything, once per other actor (as CARLA counts).

    Each collision is classified and given its fault by nuPlan's rules (`sim.metrics.at_fault`);
    `lane_context(x, y, yaw, length, width)` says whether the ego straddles lanes or the road edge,
    which decides side impacts (without it, side impacts are not the ego's fault).
    """

    def __init__(self, lane_context: Callable[..., bool] | None = None) -> None:
        self.hit: set[int] = set()
        self.lane_context = lane_context

    def update(self, ego: EgoStep, others: Others) -> list[Event]:
        if len(others.id) == 0:
            return []
        reach = np.hypot(ego.length, ego.width) / 2 + np.hypot(others.length, others.width) / 2
        near = np.nonzero(np.hypot(others.x - ego.x, others.y - ego.y) < reach)[0]
        if len(near) == 0:
            return []
        a = box_corners(ego.x, ego.y, ego.yaw, ego.length, ego.width)
        b = box_corners(others.x[near], others.y[near], others.yaw[near], others.length[near], others.width[near])
        events = []
        for k in near[boxes_overlap(np.broadcast_to(a, b.shape), b)]:
            oid = int(others.id[k])
            if oid in self.hit:
                continue
            self.hit.add(oid)
            kind = _COLLISION_KIND[str(others.type[k])]
            how = collision_type(ego, others, k)
            fault = is_at_fault(how, how is CollisionType.ACTIVE_LATERAL and self.lane_context is not None
                                and self.lane_context(ego.x, ego.y, ego.yaw, ego.length, ego.width))
            events.append(Event(ego.t, kind, oid, str(others.type[k]), fault, how.value))
        return events


def collision_type(ego: EgoStep, others: Others, k: int) -> CollisionType:
    """nuPlan's collision type of the ego with other actor k (see `sim.metrics.at_fault`)."""
    return classify_collision(ego.x, ego.y, ego.yaw, ego.v, ego.length, ego.width, float(others.x[k]),
                              float(others.y[k]), float(others.yaw[k]), float(others.length[k]),
                              float(others.width[k]), float(np.hypot(others.vx[k], others.vy[k])))


def at_fault(ego: EgoStep, others: Others, k: int, between_lanes_or_offroad: bool = False) -> bool:
    """nuPlan's at-fault rule for a collision of the ego with other actor k."""
    return is_at_fault(collision_type(ego, others, k), between_lanes_or_offroad)


class RedLightCriterion:
    """Crossing a stop line while its light is red (CARLA's RunningRedLightTest)."""

    def __init__(self, lines: list[StopLine], light_state) -> None:
        self.lines = [line for line in lines if line.kind == "light"]
        self.light_state = light_state  # (junction, group, t) -> LightState
        self.prev_S: float | None = None

    def update(self, ego: EgoStep) -> list[Event]:
        events = []
        if self.prev_S is not None and abs(ego.d) < 3.0:
            for line in self.lines:
                if self.prev_S < line.S <= ego.S and self.light_state(line.junction, line.signal_group, ego.t) is LightState.RED:
                    events.append(Event(ego.t, EventKind.RED_LIGHT, detail=f"junction {line.junction}"))
        self.prev_S = ego.S
        return events


class StopSignCriterion:
    """Crossing a stop line without a full stop (< 0.1 m/s) in the `zone` metres before it."""

    def __init__(self, lines: list[StopLine], zone: float = 8.0, stop_speed: float = 0.1) -> None:
        self.lines = [line for line in lines if line.kind == "stop"]
        self.zone, self.stop_speed = zone, stop_speed
        self.min_speed = {i: np.inf for i in range(len(self.lines))}
        self.prev_S: float | None = None

    def update(self, ego: EgoStep) -> list[Event]:
        events = []
        for i, line in enumerate(self.lines):
            if line.S - self.zone <= ego.S <= line.S and abs(ego.d) < 3.0:
                self.min_speed[i] = min(self.min_speed[i], ego.v)
            if self.prev_S is not None and self.prev_S < line.S <= ego.S and abs(ego.d) < 3.0:
                if self.min_speed[i] > self.stop_speed:
                    events.append(Event(ego.t, EventKind.STOP_SIGN, detail=f"junction {line.junction}"))
        self.prev_S = ego.S
        return events


@dataclass
class OffroadCriterion:
    """Distance driven with any corner of the ego outside the drivable area [m].

    With `outside_distance` ((N×2) -> distances [m] to the drivable area), it also keeps how far
    a corner got outside (`max_outside_m`), for nuPlan's drivable-area compliance.
    """

    is_drivable: object  # (N×2) -> bool array
    outside_distance: object | None = None  # (N×2) -> float array [m], 0 inside
    offroad_m: float = 0.0
    prev_xy: tuple[float, float] | None = None  # [m]
    samples: int = 0
    offroad_samples: int = 0
    max_outside_m: float = 0.0

    def update(self, ego: EgoStep) -> None:
        c, s, hl, hw = math.cos(ego.yaw), math.sin(ego.yaw), ego.length / 2, ego.width / 2
        corners = np.array([[ego.x + hl * c - hw * s, ego.y + hl * s + hw * c], [ego.x - hl * c - hw * s, ego.y - hl * s + hw * c],
                            [ego.x - hl * c + hw * s, ego.y - hl * s - hw * c], [ego.x + hl * c + hw * s, ego.y + hl * s - hw * c]])
        off = not bool(self.is_drivable(corners).all())
        if off and self.outside_distance is not None:
            self.max_outside_m = max(self.max_outside_m, float(np.max(self.outside_distance(corners))))
        if self.prev_xy is not None and off:
            self.offroad_m += float(np.linalg.norm(np.array([ego.x, ego.y]) - self.prev_xy))
        self.prev_xy = (ego.x, ego.y)
        self.samples += 1
        self.offroad_samples += off


@dataclass
class ProgressCriterion:
    """Route progress, goal and deviation (CARLA: 30 m off the route ends the run)."""

    route_length: float
    goal_tolerance: float = 2.0  # [m]
    max_deviation: float = 30.0  # [m]
    best_S: float = 0.0

    def update(self, ego: EgoStep) -> list[Event]:
        self.best_S = max(self.best_S, ego.S)
        if abs(ego.d) > self.max_deviation:
            return [Event(ego.t, EventKind.ROUTE_DEVIATION, detail=f"{abs(ego.d):.1f} m off the route")]
        if self.best_S >= self.route_length - self.goal_tolerance:
            self.best_S = self.route_length  # a reached goal completes the route, as in CARLA
            return [Event(ego.t, EventKind.GOAL)]
        return []

    @property
    def completion(self) -> float:
        return float(np.clip(self.best_S / max(self.route_length, 1e-9), 0.0, 1.0))


@dataclass
class BlockedCriterion:
    """Standing still (< 0.1 m/s) for `limit` seconds with nothing in front (CARLA's AgentBlockedTest)."""

    limit: float  # [s]
    since: float | None = None

    def update(self, ego: EgoStep, something_ahead: bool) -> list[Event]:
        if ego.v >= 0.1 or something_ahead:
            self.since = None
            return []
        if self.since is None:
            self.since = ego.t
        if ego.t - self.since >= self.limit:
            return [Event(ego.t, EventKind.BLOCKED, detail=f"still for {self.limit:.0f} s")]
        return []


@dataclass
class Criteria:
    collision: CollisionCriterion
    red_light: RedLightCriterion
    stop_sign: StopSignCriterion
    offroad: OffroadCriterion
    progress: ProgressCriterion
    blocked: BlockedCriterion
    events: list[Event] = field(default_factory=list)
