"""Driving-direction compliance, as nuPlan's `driving_direction_compliance`.

Progress is measured along the direction of the lane the ego is in; nuPlan sums it over the last
1 s and scores the worst (most negative) sum: better than −2 m → 1, better than −6 m → 0.5, else 0.
Broad phase: while the ego's centre is within half a lane of its route, the lane is the route's
(no map query); only away from it are the lanes under the ego looked up, and the one best aligned
with the ego's heading gives the direction (so a wrong-way lane counts, a proper lane does not).
"""
from __future__ import annotations

from collections import deque

import numpy as np

from sim.geometry import wrap_angle
from sim.kernels import interp


class DrivingDirectionMetric:
    def __init__(self, road_map, route, compliance_m: float = 2.0, violation_m: float = 6.0, window_s: float = 1.0,
                 dt: float = 0.1) -> None:
        self.m, self.route = road_map, route
        self.compliance_m = compliance_m  # [m] nuPlan driving_direction_compliance_threshold
        self.violation_m = violation_m  # [m] nuPlan driving_direction_violation_threshold
        self.half_width = np.array([road_map.lanes[lid].width / 2 for lid in route.lane_ids])
        self.recent: deque[float] = deque(maxlen=max(1, round(window_s / dt)))  # nuPlan time_horizon 1 s
        self.worst_window_m = 0.0  # most negative progress over any window [m], ≤ 0
        self.against_m = 0.0  # total distance driven against the lane direction [m]
        self.prev: tuple[float, float] | None = None

    def update(self, ego) -> None:
        if self.prev is None:
            self.prev = (ego.x, ego.y)
            return
        dx, dy = ego.x - self.prev[0], ego.y - self.prev[1]
        self.prev = (ego.x, ego.y)
        h = self.lane_heading(ego)
        progress = 0.0 if h is None else dx * np.cos(h) + dy * np.sin(h)
        self.recent.append(progress)
        self.worst_window_m = min(self.worst_window_m, sum(self.recent))
        self.against_m += max(0.0, -progress)

    def lane_heading(self, ego) -> float | None:
        r = self.route
        if abs(ego.d) <= self.half_width[r.piece_at(ego.S)]:
            return interp(ego.S, r.s, r.heading)  # r.heading_at, compiled
        _, _, _, h = self.m.lanes_at(np.array([[ego.x, ego.y]]), float(self.half_width.max()))
        if len(h) == 0:
            return None  # off the lanes: no driving direction (off-road is scored elsewhere)
        return float(h[np.argmin(np.abs(wrap_angle(h - ego.yaw)))])

    @property
    def score(self) -> float:
        worst = -self.worst_window_m
        return 1.0 if worst < self.compliance_m else 0.5 if worst < self.violation_m else 0.0
