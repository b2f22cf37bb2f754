"""Who is at fault in a collision: nuPlan's classification (no_ego_at_fault_collisions).

The rules, checked in this order at the step of first contact:

1. the ego is stopped (speed ≤ 0.05 m/s)                          → STOPPED_EGO, not at fault;
2. the other actor is stopped (≤ 0.05 m/s; props, parked cars)     → STOPPED_TRACK, at fault;
3. the other's centre is behind the ego (bearing > 150°)            → ACTIVE_REAR, not at fault;
4. the ego's front edge (its bumper) touches the other's box        → ACTIVE_FRONT, at fault;
5. anything else (the side)                                         → ACTIVE_LATERAL, at fault only
   if the ego is in more than one lane (e.g. changing lanes) or off the drivable area.

So a stationary ego rear-ended (rule 1) or a moving ego rear-ended (rule 3) is not at fault.
nuPlan measures bearings from the rear axle; here the pose is the box centre.
"""
from __future__ import annotations

from enum import Enum

import numpy as np

from sim.geometry import box_corners, boxes_overlap


class CollisionType(str, Enum):
    STOPPED_EGO = "stopped_ego"
    STOPPED_TRACK = "stopped_track"
    ACTIVE_FRONT = "active_front"
    ACTIVE_REAR = "active_rear"
    ACTIVE_LATERAL = "active_lateral"


def classify_collision(ego_x: float, ego_y: float, ego_yaw: float, ego_v: float, ego_length: float, ego_width: float,
                       x: float, y: float, yaw: float, length: float, width: float, speed: float,
                       stopped_speed: float = 0.05, behind_deg: float = 150.0) -> CollisionType:
    """nuPlan's collision type; thresholds from nuplan-devkit (stopped 5e-2 m/s, behind 150°)."""
    if ego_v <= stopped_speed:
        return CollisionType.STOPPED_EGO
    if speed <= stopped_speed:
        return CollisionType.STOPPED_TRACK
    dx, dy = x - ego_x, y - ego_y
    dist = np.hypot(dx, dy)
    if dist > 1e-9 and (dx * np.cos(ego_yaw) + dy * np.sin(ego_yaw)) / dist < np.cos(np.radians(behind_deg)):
        return CollisionType.ACTIVE_REAR
    # the front bumper: a box of (almost) no length on the ego's front edge
    hl = ego_length / 2
    bumper = box_corners(ego_x + hl * np.cos(ego_yaw), ego_y + hl * np.sin(ego_yaw), ego_yaw, 1e-6, ego_width)
    if bool(boxes_overlap(bumper, box_corners(x, y, yaw, length, width))):
        return CollisionType.ACTIVE_FRONT
    return CollisionType.ACTIVE_LATERAL


def is_at_fault(kind: CollisionType, ego_between_lanes_or_offroad: bool) -> bool:
    """Front hits and hits on stopped actors are the ego's fault; side hits only when it straddles lanes."""
    if kind in (CollisionType.ACTIVE_FRONT, CollisionType.STOPPED_TRACK):
        return True
    return kind is CollisionType.ACTIVE_LATERAL and ego_between_lanes_or_offroad


class LaneContext:
    """Is the ego's box in more than one lane, or partly off the drivable area?

    Each corner is assigned its nearest lane (within half that lane's width). Corners in the same
    lane, or in lanes joined end to end, or in junction connectors (which overlap by design) count
    as one lane, as nuPlan's "common or connected route objects" do. Called only on contact.
    """

    def __init__(self, road_map) -> None:
        self.m = road_map

    def __call__(self, x: float, y: float, yaw: float, length: float, width: float) -> bool:
        m = self.m
        corners = box_corners(x, y, yaw, length, width)
        if not bool(np.all(m.is_drivable(corners))):
            return True
        idx, _, dist = m.nearest_lane(corners, prefer_road=True)
        lanes = {m.lane_ids[int(i)] for i, d in zip(idx, dist)
                 if d <= m.lanes[m.lane_ids[int(i)]].width / 2 and m.lanes[m.lane_ids[int(i)]].junction is None}
        lanes = sorted(lanes)
        for i, a in enumerate(lanes):
            for b in lanes[i + 1:]:
                la = m.lanes[a]
                if b not in la.successors and b not in la.predecessors:
                    return True
        return False
