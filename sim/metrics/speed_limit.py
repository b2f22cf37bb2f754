"""Speed-limit compliance, as nuPlan's `speed_limit_compliance`.

Over-speed is the speed above the route's limit where the ego is [m/s]; the score is
max(0, 1 − ∫over-speed dt / (2.23 m/s × duration)): 1 when never over, 0 when the ego averaged
5 mph over the limit for the whole episode (nuPlan's max_overspeed_value_threshold).
"""
from __future__ import annotations

import numpy as np


class SpeedLimitMetric:
    def __init__(self, route, max_overspeed: float = 2.23, dt: float = 0.1) -> None:
        self.route = route
        self.max_overspeed = max_overspeed  # [m/s] nuPlan max_overspeed_value_threshold
        self.dt = dt  # [s] time between updates
        self.overspeed_integral = 0.0  # [m]
        self.max_overspeed_seen = 0.0  # [m/s]
        self.duration = 0.0  # [s]

    def update(self, ego) -> None:
        r = self.route
        limit = float(r.speed_limit[min(int(np.searchsorted(r.s, ego.S)), len(r.s) - 1)])
        over = max(0.0, ego.v - limit)
        self.overspeed_integral += over * self.dt
        self.max_overspeed_seen = max(self.max_overspeed_seen, over)
        self.duration += self.dt

    @property
    def score(self) -> float:
        if self.duration <= 0:
            return 1.0
        return max(0.0, 1.0 - self.overspeed_integral / (max(self.max_overspeed, 1e-3) * self.duration))
