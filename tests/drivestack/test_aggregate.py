"""Aggregation over episodes: means, Student-t intervals and paired differences on known numbers."""
from __future__ import annotations

import pytest

from drivestack.aggregate import block, mean_ci95, paired_difference, summarize

T3 = 3.182446305284263  # Student t, 97.5th percentile, 3 degrees of freedom
T2 = 4.302652729911275  # … 2 degrees of freedom


def test_mean_and_interval_on_known_numbers():
    mean, (lo, hi) = mean_ci95([10.0, 20.0, 30.0, 40.0])
    sd = (sum((x - 25.0) ** 2 for x in (10, 20, 30, 40)) / 3) ** 0.5  # 12.9099
    half = T3 * sd / 2  # se = sd / √4
    assert mean == 25.0
    assert (lo, hi) == pytest.approx((25.0 - half, 25.0 + half))
    assert (lo, hi) == pytest.approx((4.4574, 45.5426), abs=1e-4)


def test_interval_edge_cases():
    assert mean_ci95([]) == (None, [None, None])
    assert mean_ci95([70.0]) == (70.0, [None, None])  # one episode: no interval
    assert mean_ci95([50.0, 50.0, 50.0]) == (50.0, [50.0, 50.0])
    assert mean_ci95([None, 10.0, None, 30.0])[0] == 20.0  # missing values are left out


def rec(agent, scenario, seed, score, outcome="goal_reached", **kw):
    r = {"agent": agent, "scenario": scenario, "seed": seed, "outcome": outcome, "driving_score": score,
         "route_completion": score / 100, "infraction_penalty": 1.0, "collisions": [], "red_light_violations": 0,
         "stop_sign_violations": 0, "offroad_fraction": 0.0, "min_ttc_s": None, "distance_m": 500.0,
         "time_to_goal_s": None, "comfort_violations": 0, "hard_braking_events": 0, "fallback_steps": 0}
    r.update(kw)
    return r


def test_paired_difference_on_known_numbers():
    records = [rec("A", "s", 0, 50.0), rec("A", "s", 1, 60.0), rec("A", "s", 2, 70.0),
               rec("B", "s", 0, 55.0), rec("B", "s", 1, 70.0), rec("B", "s", 2, 74.0)]
    d = paired_difference(records, "A", "B")  # differences 5, 10, 4
    sd = ((5 - 19 / 3) ** 2 + (10 - 19 / 3) ** 2 + (4 - 19 / 3) ** 2) ** 0.5 / 2 ** 0.5
    half = T2 * sd / 3 ** 0.5
    assert d["pairs"] == 3 and d["mean"] == pytest.approx(19 / 3, abs=1e-4)
    assert d["ci95"] == pytest.approx([19 / 3 - half, 19 / 3 + half], abs=1e-4)
    # pairing matters: an unmatched seed is left out
    assert paired_difference(records + [rec("B", "s", 3, 0.0)], "A", "B")["pairs"] == 3


def test_block_counts_and_rates():
    hit = lambda kind, fault: {"t": 1.0, "other_type": kind, "other_id": 4, "at_fault": fault}  # noqa: E731
    records = [
        rec("A", "s", 0, 100.0, time_to_goal_s=20.0, min_ttc_s=2.0),
        rec("A", "s", 1, 35.0, outcome="collision", collisions=[hit("pedestrian", True)], red_light_violations=1,
            infraction_penalty=0.35, min_ttc_s=0.0),
        rec("A", "s", 2, 49.0, outcome="timeout", collisions=[hit("vehicle", False)], stop_sign_violations=2,
            infraction_penalty=0.7),
        rec("A", "s", 3, 0.0, outcome="error", route_completion=0.0, infraction_penalty=None, distance_m=None),
    ]
    b = block(records)
    assert b["episodes"] == 4 and b["errors"] == 1
    assert b["outcomes"] == {"collision": 1, "error": 1, "goal_reached": 1, "timeout": 1}
    assert b["driving_score_mean"] == pytest.approx(46.0)
    assert b["collisions"] == 2 and b["at_fault_collisions"] == 1 and b["pedestrian_collisions"] == 1
    assert b["red_light_violations"] == 1 and b["stop_sign_violations"] == 2
    assert b["timeouts"] == 1 and b["blocked"] == 0 and b["goal_reached"] == 1
    assert b["min_ttc_s"] == 0.0
    assert b["infraction_penalty_mean"] == pytest.approx((1.0 + 0.35 + 0.7) / 3)  # the error is left out
    assert b["distance_km"] == 1.5 and b["collisions_per_km"] == pytest.approx(2 / 1.5, abs=1e-4)
    assert b["time_to_goal_s_mean"] == 20.0
    lo, hi = b["driving_score_ci95"]
    assert lo == 0.0 and 0 < hi <= 100.0  # the t-interval of 4 spread scores is cut to 0–100


def test_summary_layout():
    records = [rec("A", "s1", 0, 80.0), rec("A", "s2", 0, 60.0), rec("B", "s1", 0, 40.0), rec("B", "s2", 0, 20.0)]
    s = summarize(records, ["A", "B"], ["s1", "s2"])
    assert list(s["agents"]) == ["A", "B"]
    assert list(s["agents"]["A"]["scenarios"]) == ["s1", "s2"]
    assert s["agents"]["A"]["driving_score_mean"] == 70.0 and s["agents"]["B"]["scenarios"]["s2"]["episodes"] == 1
    for key in ("episodes", "driving_score_mean", "driving_score_ci95", "route_completion_mean", "collisions",
                "at_fault_collisions", "pedestrian_collisions", "red_light_violations", "stop_sign_violations",
                "offroad_fraction_mean", "min_ttc_s", "timeouts", "blocked"):
        assert key in s["agents"]["A"] and key in s["agents"]["A"]["scenarios"]["s1"], key
