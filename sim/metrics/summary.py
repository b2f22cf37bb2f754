"""Episode-level terms from what the criteria and the step metrics kept: pure functions."""
from __future__ import annotations

import math

import numpy as np

from sim.infractions import Event, EventKind, OffroadCriterion
from sim.metrics.braking import hard_braking_events
from sim.metrics.drivable_area import drivable_area_compliance
from sim.metrics.step import StepMetrics


def episode_terms(events: list[Event], offroad: OffroadCriterion, progress: float, step: StepMetrics,
                  t: np.ndarray, lon_accel: np.ndarray, comfort: dict[str, bool], distance_m: float) -> dict:
    """nuPlan's terms and the extra safety numbers of one episode (keys of `episode.json`)."""
    collisions = [e for e in events if e.kind.value.startswith("collision")]
    at_fault = [e for e in collisions if e.at_fault]
    goal = next((e.t for e in events if e.kind is EventKind.GOAL), None)
    ttc = step.ttc
    min_ttc = 0.0 if at_fault else ttc.min_ttc  # nuPlan: TTC is 0 at an at-fault collision
    return {
        "at_fault_collisions": len(at_fault),
        "progress": round(float(progress), 6),
        "drivable_area_compliance": drivable_area_compliance(offroad.max_outside_m),
        "max_outside_m": round(offroad.max_outside_m, 3),
        "driving_direction_compliance": step.direction.score,
        "wrong_way_m": round(step.direction.against_m, 3),
        "speed_limit_compliance": round(step.speed_limit.score, 6),
        "max_overspeed_mps": round(step.speed_limit.max_overspeed_seen, 3),
        "min_ttc_s": None if math.isinf(min_ttc) else round(float(min_ttc), 4),
        "ttc_within_bound": bool(min_ttc > ttc.bound),
        "ttc_below_fraction": round(ttc.below_fraction, 6),
        "comfortable": not any(comfort.values()),
        "hard_braking_events": hard_braking_events(t, lon_accel),
        "collisions_per_km": round(len(collisions) / (distance_m / 1000.0), 4) if distance_m >= 1.0 else None,
        "time_to_goal_s": goal,
    }
