"""nuPlan's closed-loop score (CLS), from the terms in an episode record.

nuPlan multiplies the hard terms and weights the soft ones:
  multipliers: no at-fault collisions (per type: max(0, 1 − n/(allowed+1)); allowed 0 for VRUs and
               vehicles, 1 for objects), drivable-area compliance, driving-direction compliance,
               making progress (progress ≥ 0.2);
  weighted average: TTC within bound (5), progress (5), speed-limit compliance (4), comfort (2).
nuPlan's progress is relative to the logged expert's; here it is the fraction of the route.
"""
from __future__ import annotations

WEIGHTS = {"ttc_within_bound": 5.0, "progress": 5.0, "speed_limit_compliance": 4.0, "comfortable": 2.0}
ALLOWED_AT_FAULT = {"pedestrian": 0, "vehicle": 0, "static": 1}
MIN_PROGRESS = 0.2


def nuplan_score(rec: dict, weights: dict[str, float] = WEIGHTS, allowed: dict[str, int] = ALLOWED_AT_FAULT,
                 min_progress: float = MIN_PROGRESS) -> float:
    """CLS in 0–1 from a record's `collisions`, compliance terms, progress, TTC and comfort."""
    mult = 1.0
    for kind, n_allowed in allowed.items():
        n = sum(1 for c in rec["collisions"] if c["at_fault"] and c["other_type"] == kind)
        mult *= max(0.0, 1.0 - n / (n_allowed + 1))
    mult *= rec["drivable_area_compliance"] * rec["driving_direction_compliance"]
    mult *= 1.0 if rec["progress"] >= min_progress else 0.0
    soft = sum(w * float(rec[k]) for k, w in weights.items()) / sum(weights.values())
    return mult * soft
