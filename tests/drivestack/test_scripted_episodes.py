"""Closed-loop episodes with scripted egos, where the score is known before the run."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from drivestack.agents import make_agent
from drivestack.runner import run_episode
from sim.infractions import EventKind
from sim.scoring import infraction_penalty
from sim.types import Control
from sim.world import World

AGENTS = Path(__file__).resolve().parents[1] / "scripted_agents.py"
CRUISE, DRIFT = f"{AGENTS}:Cruise", f"{AGENTS}:DriftRight"

EMPTY = {"vehicles": 0, "pedestrians": 0}

RED_LIGHT = {
    "description": "the ego cruises straight through a junction whose light stays red for it",
    # the ego's approach is group 0, green in phase 0; offset 16 s starts the cycle in phase 1,
    # so its light is red for the first 16 s; it crosses the line at about 6 s
    "map": {"type": "four_way", "control": "signal", "arm_length": 80, "lanes": 1},
    "signals": {"green": 12, "yellow": 3, "all_red": 1, "offset": 16},
    "duration_s": 30,
    "ego": {"start": {"lane": "S>J.0", "s": 30}, "goal": {"lane": "J>N.0", "s": 30}, "speed": 8},
    "traffic": EMPTY,
}


def test_running_one_red_light_costs_exactly_070(make_scenario):
    rec = run_episode(make_scenario(RED_LIGHT), CRUISE, 0)
    assert rec["outcome"] == "goal_reached"
    assert rec["red_light_violations"] == 1 and rec["stop_sign_violations"] == 0 and rec["collisions"] == []
    assert rec["infraction_penalty"] == 0.70
    assert rec["route_completion"] == 1.0 and rec["driving_score"] == 70.0
    assert rec["time_to_goal_s"] == rec["duration_s"]


def test_green_light_costs_nothing(make_scenario):
    data = {**RED_LIGHT, "signals": {"green": 12, "yellow": 3, "all_red": 1, "offset": 30}}  # green for t ∈ [2, 14)
    rec = run_episode(make_scenario(data), CRUISE, 0)
    assert rec["outcome"] == "goal_reached" and rec["red_light_violations"] == 0
    assert rec["infraction_penalty"] == 1.0 and rec["driving_score"] == 100.0


def stop_sign_and_walker(make_scenario):
    base = {
        "description": "the ego rolls through an all-way stop, then hits a walker standing in its lane",
        "map": {"type": "four_way", "control": "allway_stop", "arm_length": 80, "lanes": 1},
        "duration_s": 30,
        "ego": {"start": {"lane": "S>J.0", "s": 40}, "goal": {"lane": "J>N.0", "s": 60}, "speed": 8},
        "traffic": EMPTY,
    }
    road = World(make_scenario(base), 0).map
    x, y = road.lanes["J>N.0"].position(25.0)
    walker = {"type": "pedestrian", "path": [[float(x), float(y)], [float(x) + 3.0, float(y)]], "speed": 1.2,
              "trigger": {"time": 1000}}  # never fires: the walker stands in the lane
    return make_scenario({**base, "actors": [walker]}), float(y)


def test_stop_sign_then_a_pedestrian_costs_050_times_080(make_scenario):
    sc, walker_y = stop_sign_and_walker(make_scenario)
    rec = run_episode(sc, CRUISE, 0)
    assert rec["stop_sign_violations"] == 1 and rec["red_light_violations"] == 0
    assert rec["outcome"] == "collision"
    [hit] = rec["collisions"]
    assert hit["other_type"] == "pedestrian" and hit["at_fault"] is True
    assert hit["collision_type"] == "stopped_track"  # a moving ego hits a standing walker
    assert rec["infraction_penalty"] == 0.50 * 0.80
    assert rec["driving_score"] == pytest.approx(100 * rec["route_completion"] * 0.40, abs=1e-3)
    assert rec["at_fault_collisions"] == 1 and rec["min_ttc_s"] == 0.0  # nuPlan: 0 at an at-fault collision
    assert 0 < rec["route_completion"] < 1 and rec["nuplan_score"] == 0.0


def drive_with_npc(make_scenario, ego_speed, npc_speed):
    """The ego holds its speed; the NPC behind it is forced to hold its own (no braking)."""
    data = {"description": "an NPC that does not brake comes up behind the ego",
            "map": {"type": "straight", "length": 300}, "duration_s": 20, "blocked_s": 60,
            "ego": {"start": {"lane": "fwd.0", "s": 60}, "goal": {"lane": "fwd.0", "s": 250}, "speed": ego_speed},
            "actors": [{"type": "vehicle", "start": {"lane": "fwd.0", "s": 10}, "speed": npc_speed}],
            "traffic": EMPTY}
    w = World(make_scenario(data), 0)
    v = w.vehicles
    for _ in range(400):
        v.cmd_accel[1], v.cmd_steer[1] = 0.0, 0.0  # override the traffic manager's IDM
        events = w.step(Control(0.0, 0.0))
        if any(e.kind is EventKind.COLLISION_VEHICLE for e in events):
            break
    return w.criteria.events


@pytest.mark.parametrize("ego_speed, kind", [(0.0, "stopped_ego"), (3.0, "active_rear")])
def test_rear_ended_ego_is_not_at_fault(make_scenario, ego_speed, kind):
    events = drive_with_npc(make_scenario, ego_speed, 10.0)
    [hit] = [e for e in events if e.kind is EventKind.COLLISION_VEHICLE]
    assert hit.detail == kind and hit.at_fault is False
    assert infraction_penalty(events) == 1.0


def test_off_road_fraction_lowers_route_completion(make_scenario):
    data = {"description": "a slow drift off a straight road", "map": {"type": "straight", "length": 200},
            "duration_s": 8, "ego": {"start": {"lane": "fwd.0", "s": 10}, "goal": {"lane": "fwd.0", "s": 180},
                                     "speed": 8}, "traffic": EMPTY}
    rec = run_episode(make_scenario(data), DRIFT, 0)
    assert rec["outcome"] == "timeout"
    assert 0 < rec["offroad_fraction"] < rec["progress"]
    assert rec["route_completion"] == pytest.approx(rec["progress"] - rec["offroad_fraction"], abs=1e-6)
    assert rec["drivable_area_compliance"] == 0.0 and rec["max_outside_m"] > 0.3
    assert rec["driving_score"] == pytest.approx(100 * rec["route_completion"] * 0.70, abs=1e-3)  # timeout


def test_agent_spec_builds_the_test_agent():
    agent = make_agent(CRUISE)
    assert agent.name == "cruise" and not agent.privileged
    assert np.isclose(agent.act(type("O", (), {"ego": type("E", (), {"v": 8.0})()})()).accel, 0.0)
