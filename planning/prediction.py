"""Where the other agents will be over the planning horizon.

Vehicles moving along a lane follow it (and its straight-most successors) at constant speed;
vehicles leaving their lane (a cut-in) and everything else go at constant velocity. Pedestrians
carry an uncertainty margin that grows with time.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from sim.geometry import arc_length
from sim.map import RoadMap
from sim.types import ActorType, ObjectState


@dataclass(frozen=True)
class PredictionParams:
    on_lane_distance: float = 1.2  # centre within this of a lane centre to follow it [m]
    on_lane_heading: float = 0.15  # and heading within this of the lane's [rad]
    standing_speed: float = 0.3  # a vehicle this slow stays where it is [m/s]
    stop_decel: float = 4.5  # a vehicle that needs more braking than this will not stop [m/s²]
    ped_margin: float = 0.2  # pedestrian uncertainty at t=0 [m]
    ped_margin_rate: float = 0.1  # growth [m/s]; more makes walkers on the kerb block the lane


@dataclass(frozen=True)
class Prediction:
    t: np.ndarray  # (M,) time from now [s]
    ids: np.ndarray  # (N,)
    types: tuple[ActorType, ...]
    x: np.ndarray  # (N, M) box centres [m]
    y: np.ndarray
    yaw: np.ndarray  # (N, M) [rad]
    length: np.ndarray  # (N,) [m]
    width: np.ndarray
    speed: np.ndarray  # (N,) [m/s]
    margin: np.ndarray  # (N, M) extra clearance to keep [m]

    def __len__(self) -> int:
        return len(self.ids)


def predict(objects: Sequence[ObjectState], m: RoadMap, t: np.ndarray,
            p: PredictionParams = PredictionParams()) -> Prediction:
    n, k = len(objects), len(t)
    x, y, yaw, margin = np.zeros((n, k)), np.zeros((n, k)), np.zeros((n, k)), np.zeros((n, k))
    speed = np.array([np.hypot(o.vx, o.vy) for o in objects]) if n else np.zeros(0)
    vehicles = [i for i, o in enumerate(objects) if o.type is ActorType.VEHICLE and speed[i] > p.standing_speed]
    lane_of: dict[int, tuple[int, float]] = {}
    if vehicles:
        xy = np.array([[objects[i].x, objects[i].y] for i in vehicles])
        heading = np.array([objects[i].yaw for i in vehicles])
        lane_idx, s, dist = m.nearest_lane(xy, heading, prefer_road=False)
        for j, i in enumerate(vehicles):
            lane = m.lanes[m.lane_ids[lane_idx[j]]]
            dh = abs((lane.heading_at(s[j]) - heading[j] + np.pi) % (2 * np.pi) - np.pi)
            if dist[j] < p.on_lane_distance and dh < p.on_lane_heading:
                lane_of[i] = (int(lane_idx[j]), float(s[j]))
    for i, o in enumerate(objects):
        if i in lane_of:
            li, s0 = lane_of[i]
            lane = m.lanes[m.lane_ids[li]]
            travel = speed[i] * t
            to_line = lane.length - s0 - o.length / 2 - 1.0
            if lane.control == "stop" and speed[i] ** 2 / (2 * p.stop_decel) < to_line:
                # it can still stop for its stop sign, so expect it to (it brakes, then waits)
                t_stop = 2 * to_line / max(speed[i], 0.1)
                travel = np.where(t < t_stop, speed[i] * t - speed[i] * t**2 / (2 * t_stop), to_line)
            x[i], y[i], yaw[i] = _follow_lane(m, li, s0, travel)
        elif o.type is ActorType.VEHICLE and speed[i] <= p.standing_speed:
            x[i], y[i], yaw[i] = o.x, o.y, o.yaw  # a car this slow stands: its tracked speed is lifting noise
        else:
            x[i] = o.x + o.vx * t
            y[i] = o.y + o.vy * t
            yaw[i] = o.yaw  # the box points where the body points; a slow track's velocity is mostly noise
        if o.type is ActorType.PEDESTRIAN:
            margin[i] = p.ped_margin + p.ped_margin_rate * t
    return Prediction(t, np.array([o.id for o in objects], dtype=int), tuple(o.type for o in objects), x, y, yaw,
                      np.array([o.length for o in objects]), np.array([o.width for o in objects]), speed, margin)


def _follow_lane(m: RoadMap, lane_idx: int, s0: float, ds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions ds [m] further along a lane and its straight-most successors."""
    lane = m.lanes[m.lane_ids[lane_idx]]
    pts = [lane.centerline[lane.s >= s0 - 1e-9]]
    pts[0] = np.vstack([lane.position(s0), pts[0]])
    need, have = float(ds[-1]), lane.length - s0
    while have < need and lane.successors:
        h_end = lane.heading[-1]
        lane = min((m.lanes[sid] for sid in lane.successors),
                   key=lambda nxt: abs((nxt.heading[-1] - h_end + np.pi) % (2 * np.pi) - np.pi))
        pts.append(lane.centerline[1:])
        have += lane.length
    line = np.vstack(pts)
    s = arc_length(line)
    dsc = np.minimum(ds, s[-1])
    px, py = np.interp(dsc, s, line[:, 0]), np.interp(dsc, s, line[:, 1])
    h = np.unwrap(np.arctan2(np.gradient(line[:, 1]), np.gradient(line[:, 0])))
    return px, py, np.interp(dsc, s, h)
