"""Aggregates over episodes: means with 95% intervals, totals and rates; pure functions.

Intervals are Student-t intervals of the mean over episodes (seeds × scenarios), cut to the range
of the metric (0–100 for the driving score); with fewer than two episodes there is no interval and
both ends are None. Errored episodes count with driving
score and route completion 0 (their records say so) and are left out of the other means.
Differences between two agents are paired: the same scenario and seed give one difference each.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats


def mean_ci95(values) -> tuple[float | None, list[float | None]]:
    """Mean and its 95% Student-t interval [lo, hi] (Nones for no values / one value)."""
    x = np.asarray([v for v in values if v is not None], dtype=float)
    if len(x) == 0:
        return None, [None, None]
    mean = float(x.mean())
    if len(x) < 2:
        return mean, [None, None]
    half = float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return mean, [mean - half, mean + half]


def _clip(ci: list, lo: float, hi: float) -> list:
    """An interval cut to the range the metric can take (t-intervals of few episodes overshoot)."""
    return [None if v is None else min(max(v, lo), hi) for v in ci]


def _r(x, nd: int = 6):
    return None if x is None else round(float(x), nd)


def _mean(records, key):
    vals = [r[key] for r in records if r.get(key) is not None]
    return _r(np.mean([float(v) for v in vals])) if vals else None


def _count(records, key) -> int:
    return int(sum(r.get(key) or 0 for r in records))


def block(records: list[dict]) -> dict:
    """Every summary key for one group of episodes (an agent, or an agent on one scenario)."""
    outcomes: dict[str, int] = {}
    for r in records:
        outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
    collisions = [c for r in records for c in (r.get("collisions") or [])]
    ds_mean, ds_ci = mean_ci95(r["driving_score"] for r in records)
    rc_mean, rc_ci = mean_ci95(r["route_completion"] for r in records)
    ttcs = [r["min_ttc_s"] for r in records if r.get("min_ttc_s") is not None]
    km = sum(r.get("distance_m") or 0.0 for r in records) / 1000.0
    goal_times = [r["time_to_goal_s"] for r in records if r.get("time_to_goal_s") is not None]
    ok = [r for r in records if r["outcome"] != "error"]
    return {
        "episodes": len(records),
        "errors": outcomes.get("error", 0),
        "outcomes": dict(sorted(outcomes.items())),
        "driving_score_mean": _r(ds_mean, 4),
        "driving_score_ci95": [_r(v, 4) for v in _clip(ds_ci, 0.0, 100.0)],
        "driving_score_std": _r(np.std([r["driving_score"] for r in records], ddof=1), 4) if len(records) > 1 else None,
        "route_completion_mean": _r(rc_mean),
        "route_completion_ci95": [_r(v) for v in _clip(rc_ci, 0.0, 1.0)],
        "infraction_penalty_mean": _mean(ok, "infraction_penalty"),
        "collisions": len(collisions),
        "at_fault_collisions": sum(1 for c in collisions if c["at_fault"]),
        "pedestrian_collisions": sum(1 for c in collisions if c["other_type"] == "pedestrian"),
        "vehicle_collisions": sum(1 for c in collisions if c["other_type"] == "vehicle"),
        "static_collisions": sum(1 for c in collisions if c["other_type"] == "static"),
        "red_light_violations": _count(records, "red_light_violations"),
        "stop_sign_violations": _count(records, "stop_sign_violations"),
        "offroad_fraction_mean": _mean(ok, "offroad_fraction"),
        "min_ttc_s": _r(min(ttcs), 4) if ttcs else None,
        "ttc_below_fraction_mean": _mean(ok, "ttc_below_fraction"),
        "ttc_within_bound_rate": _mean(ok, "ttc_within_bound"),
        "timeouts": outcomes.get("timeout", 0),
        "blocked": outcomes.get("blocked", 0),
        "goal_reached": outcomes.get("goal_reached", 0),
        "route_deviations": outcomes.get("route_deviation", 0),
        "drivable_area_compliance_mean": _mean(ok, "drivable_area_compliance"),
        "driving_direction_compliance_mean": _mean(ok, "driving_direction_compliance"),
        "speed_limit_compliance_mean": _mean(ok, "speed_limit_compliance"),
        "progress_mean": _mean(ok, "progress"),
        "comfortable_rate": _mean(ok, "comfortable"),
        "comfort_violations": _count(records, "comfort_violations"),
        # episodes with a comfort violation away from emergency stops; None where no episode could
        # tell (agents without a planner, records from before the key)
        "uncomfortable_nonemergency_episodes": (
            sum(1 for r in ok if (r.get("comfort_violations_nonemergency") or 0) > 0)
            if any(r.get("comfort_violations_nonemergency") is not None for r in ok) else None),
        "hard_braking_events": _count(records, "hard_braking_events"),
        "nuplan_score_mean": _mean(ok, "nuplan_score"),
        "distance_km": _r(km, 4),
        "collisions_per_km": _r(len(collisions) / km, 4) if km > 0 else None,
        "at_fault_collisions_per_km": _r(sum(1 for c in collisions if c["at_fault"]) / km, 4) if km > 0 else None,
        "time_to_goal_s_mean": _r(np.mean(goal_times), 3) if goal_times else None,
        "fallback_steps": _count(records, "fallback_steps"),
    }


def summarize(records: list[dict], agents: list[str], scenarios: list[str]) -> dict:
    """summary.json: {"agents": {AGENT: {...block, "scenarios": {SCENARIO: {...block}}}}}."""
    out: dict = {"agents": {}}
    for a in agents:
        mine = [r for r in records if r["agent"] == a]
        out["agents"][a] = {**block(mine), "scenarios": {
            s: block([r for r in mine if r["scenario"] == s]) for s in scenarios if any(r["scenario"] == s for r in mine)}}
    return out


def paired_difference(records: list[dict], a: str, b: str, key: str = "driving_score",
                      scenario: str | None = None) -> dict:
    """Mean of (B − A) over episodes with the same scenario and seed, and its 95% interval."""
    by = {(r["agent"], r["scenario"], r["seed"]): r for r in records if scenario is None or r["scenario"] == scenario}
    diffs = []
    for (agent, sc, seed), ra in by.items():
        rb = by.get((b, sc, seed))
        if agent == a and rb is not None and ra.get(key) is not None and rb.get(key) is not None:
            diffs.append(float(rb[key]) - float(ra[key]))
    mean, ci = mean_ci95(diffs)
    return {"pairs": len(diffs), "mean": _r(mean, 4), "ci95": [_r(v, 4) for v in ci]}
