"""The per-step metrics the world feeds at the agent rate, kept apart from one another."""
from __future__ import annotations

from dataclasses import dataclass

from sim.metrics.direction import DrivingDirectionMetric
from sim.metrics.speed_limit import SpeedLimitMetric
from sim.metrics.ttc import TTCMetric


@dataclass
class StepMetrics:
    ttc: TTCMetric
    direction: DrivingDirectionMetric
    speed_limit: SpeedLimitMetric

    @classmethod
    def for_route(cls, road_map, route, dt: float) -> "StepMetrics":
        """Default thresholds (nuPlan's); `dt` [s] is the time between updates."""
        return cls(TTCMetric(), DrivingDirectionMetric(road_map, route, dt=dt), SpeedLimitMetric(route, dt=dt))

    def update(self, ego, others) -> None:
        self.ttc.update(ego, others)
        self.direction.update(ego)
        self.speed_limit.update(ego)
