"""Run one closed-loop episode: world ↔ agent at 10 Hz, physics at 20 Hz, scored at the end."""
from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
import yaml

from drivestack.agents import Agent, make_agent
from drivestack.errors import UserError
from sim.comfort import comfort_signals, comfort_violations, outside_windows
from sim.infractions import EventKind
from sim.metrics.nuplan_score import nuplan_score
from sim.metrics.summary import episode_terms
from sim.scenario import Scenario, load_scenario
from sim.scoring import driving_score, infraction_penalty, route_completion
from sim.sensors.rig import build_rig
from sim.types import Control
from sim.world import AGENT_EVERY, World

OUTCOMES = {
    EventKind.GOAL: "goal_reached",
    EventKind.COLLISION_PEDESTRIAN: "collision",
    EventKind.COLLISION_VEHICLE: "collision",
    EventKind.COLLISION_STATIC: "collision",
    EventKind.TIMEOUT: "timeout",
    EventKind.BLOCKED: "blocked",
    EventKind.ROUTE_DEVIATION: "route_deviation",
}


def run_episode(scenario: Scenario | str, agent: Agent | str, seed: int,
                on_tick: Callable[[World], None] | None = None, controller: str | None = None) -> dict:
    """Drive one episode to its end and return its record (the keys of `episode.json`).

    `controller` ("mpc" | "pid") selects the expert's tracker when `agent` is a name."""
    sc = load_scenario(scenario) if isinstance(scenario, str) else scenario
    ag = make_agent(agent, controller) if isinstance(agent, str) else agent
    wall0 = time.perf_counter()
    world = World(sc, seed, ego_autopilot=getattr(ag, "uses_traffic_manager", False))
    ag.reset(world.route, world.map)
    try:  # the agent declares its sensors; none (the autopilot) means no rig and no open3d
        rig = build_rig(ag.sensors(), world)
    except ValueError as e:
        raise UserError(f"agent {ag.name!r}: {e}") from None
    control = Control(0.0, 0.0)
    trace: list[tuple[float, float, float, float, float]] = []
    emergency_t: list[float] = []
    outcome = None
    v = world.vehicles
    while outcome is None:
        if world.steps % AGENT_EVERY == 0:
            obs = world.observe()
            if rig is not None:  # frames at the agent rate, and noisy odometry if declared
                obs = rig.observe(world, obs)
            control = ag.act(replace(obs, privileged=world) if ag.privileged else obs)
            if getattr(ag, "emergency", False):  # planners report their emergency stops
                emergency_t.append(obs.t)
            if on_tick is not None:
                on_tick(world)
        for event in world.step(control):
            outcome = outcome or OUTCOMES.get(event.kind)
        trace.append((world.t, float(v.x[0]), float(v.y[0]), float(v.yaw[0]), float(v.v[0])))
    return _record(world, sc, ag.name, seed, outcome, np.array(trace), time.perf_counter() - wall0,
                   fallback_steps=int(getattr(ag, "fallback_steps", 0)),
                   emergency_t=np.array(emergency_t) if hasattr(ag, "emergency") else None)


def _record(world: World, sc: Scenario, agent: str, seed: int, outcome: str, trace: np.ndarray, wall: float,
            fallback_steps: int = 0, emergency_t: np.ndarray | None = None) -> dict:
    c = world.criteria
    events = c.events
    distance = float(np.sum(np.hypot(np.diff(trace[:, 1]), np.diff(trace[:, 2])))) if len(trace) > 1 else 0.0
    offroad_fraction = min(1.0, c.offroad.offroad_m / max(world.route.length, 1e-9))
    completion = route_completion(c.progress.completion, offroad_fraction)
    penalty = infraction_penalty(events)
    sig = comfort_signals(trace[:, 0], trace[:, 4], trace[:, 3])
    comfort = comfort_violations(sig)
    # agents without a planner report no emergencies: for them the split is unknown, not "none"
    comfort_calm = (comfort_violations(sig, mask=outside_windows(trace[:, 0], emergency_t))
                    if emergency_t is not None and len(trace) else None)
    collisions = [e for e in events if e.kind.value.startswith("collision")]
    terms = episode_terms(events, c.offroad, c.progress.completion, world.metrics, trace[:, 0], sig["lon_accel"],
                          comfort, distance)
    record = {
        "scenario": sc.name,
        "agent": agent,
        "seed": seed,
        "outcome": outcome,
        "route_completion": round(completion, 6),
        "infraction_penalty": round(penalty, 6),
        "driving_score": round(driving_score(completion, penalty), 4),
        "collisions": [{"t": e.t, "other_type": e.other_type, "other_id": e.other_id, "at_fault": e.at_fault,
                        "collision_type": e.detail} for e in collisions],
        "red_light_violations": sum(e.kind is EventKind.RED_LIGHT for e in events),
        "stop_sign_violations": sum(e.kind is EventKind.STOP_SIGN for e in events),
        "offroad_fraction": round(offroad_fraction, 6),
        "min_ttc_s": terms.pop("min_ttc_s"),
        "max_abs_jerk": round(float(np.max(np.abs(sig["jerk"]))) if len(trace) else 0.0, 4),
        "comfort_violations": sum(comfort.values()),
        "comfort": comfort,
        # the same terms outside emergency stops (0.5 s before to 1.5 s after each tick the planner reported one)
        "comfort_violations_nonemergency": None if comfort_calm is None else sum(comfort_calm.values()),
        "emergency_ticks": None if emergency_t is None else len(emergency_t),
        "distance_m": round(distance, 3),
        "duration_s": round(world.t, 3),
        "sim_steps": world.steps,
        "wall_s": round(wall, 3),
        "fallback_steps": fallback_steps,  # ticks the MPC handed to its fallback (the agent's count)
        **terms,
        "weather": world.weather,
        "route_length_m": round(world.route.length, 3),
        "events": [{"t": e.t, "kind": e.kind.value, "other_id": e.other_id, "other_type": e.other_type,
                    "at_fault": e.at_fault, "detail": e.detail} for e in events],
    }
    record["nuplan_score"] = round(nuplan_score(record), 6)
    return record


def write_episode(record: dict, scenario: Scenario, out: Path) -> Path:
    """Write `episode.json` and the resolved scenario beside it."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "episode.json").write_text(json.dumps(record, indent=2))
    (out / "scenario.yaml").write_text(yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False))
    return out / "episode.json"
