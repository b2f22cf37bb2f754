"""Drivable-area compliance, as nuPlan's `drivable_area_compliance`.

The off-road criterion (sim.infractions.OffroadCriterion) keeps how far any corner of the ego got
outside the drivable area; nuPlan fails the episode when that exceeds 0.3 m.
"""
from __future__ import annotations

import numpy as np
import shapely


def outside_distance(road_map):
    """A function (N×2 points) -> distance to the map's drivable area [m] (0 inside)."""
    area = road_map.drivable

    def distance(xy: np.ndarray) -> np.ndarray:
        xy = np.atleast_2d(xy)
        return shapely.distance(area, shapely.points(xy[:, 0], xy[:, 1]))

    return distance


def drivable_area_compliance(max_outside_m: float, threshold: float = 0.3) -> float:
    """1 if no corner ever got more than `threshold` [m] (nuPlan max_violation_threshold) outside, else 0."""
    return 1.0 if max_outside_m <= threshold else 0.0
