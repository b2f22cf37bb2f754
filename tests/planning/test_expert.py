"""The expert (ground truth → planner → pure pursuit) drives shipped scenarios end to end."""
from __future__ import annotations

import pytest

from drivestack.agents import make_agent
from drivestack.agents.expert import ExpertAgent
from drivestack.runner import run_episode
from planning.behaviour import State

SCENARIOS = {  # scenario → the behaviour state it is about
    "signal_red_stop": State.STOP_LIGHT,
    "pedestrian_crosswalk": State.YIELD_PEDESTRIAN,
    "lead_hard_brake": State.FOLLOW_LEAD,
    "allway_stop": State.WAIT_STOP_SIGN,
}
_runs: dict[str, tuple[dict, list[State]]] = {}


def episode(name: str) -> tuple[dict, list[State]]:
    """Run each scenario once (seed 0) and share the record and per-tick planner states."""
    if name not in _runs:
        agent = make_agent("expert")
        assert isinstance(agent, ExpertAgent)
        states: list[State] = []
        record = run_episode(name, agent, 0, on_tick=lambda world: states.append(agent.last.state))
        _runs[name] = (record, states)
    return _runs[name]


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_expert_reaches_the_goal_cleanly(scenario):
    record, states = episode(scenario)
    assert record["outcome"] == "goal_reached", record["events"]
    assert record["collisions"] == []
    assert record["red_light_violations"] == 0 and record["stop_sign_violations"] == 0
    assert record["route_completion"] == pytest.approx(1.0)
    assert record["offroad_fraction"] == 0.0
    assert SCENARIOS[scenario] in states, sorted({s.value for s in states})  # it exercised its situation


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_expert_needs_no_sustained_emergency_braking(scenario):
    """Each of these situations can be handled with comfortable braking (lead_hard_brake: a lead
    braking at 5.5–7 m/s² from a 4 m + 1.5 s gap needs about 3 m/s²)."""
    _, states = episode(scenario)
    ticks = states.count(State.EMERGENCY_STOP)
    assert ticks <= 5, f"{ticks} ticks ({ticks / 10:.1f} s) in emergency_stop"


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_expert_is_comfortable_outside_emergency_stops(scenario):
    """nuPlan's comfort limits hold everywhere except around the ticks the planner declared an
    emergency stop, and the record counts exactly those ticks."""
    record, states = episode(scenario)
    assert record["emergency_ticks"] == states.count(State.EMERGENCY_STOP)
    assert record["comfort_violations_nonemergency"] == 0, record["comfort"]
