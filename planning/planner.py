"""The planner's one verb: `Planner.plan(PlannerInput) -> PlannerOutput`.

It sees the ego state, a list of objects (ground truth or tracked, the same dataclass), the stop
lines on the route and the HD map. It never touches the world. Timing is recorded here, once.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from planning.behaviour import BehaviourLayer, BehaviourParams, State
from planning.lattice import LatticeParams, LatticePlanner
from planning.prediction import Prediction, predict
from sim.map import RoadMap
from sim.route import Route
from sim.types import ObjectState, StopLineState, Trajectory, VehicleState

PERCEPTION_RANGE = 70.0  # objects farther than this are ignored [m]


@dataclass(frozen=True)
class PlannerInput:
    t: float  # [s]
    ego: VehicleState
    objects: tuple[ObjectState, ...]
    stop_lines: tuple[StopLineState, ...]


@dataclass(frozen=True)
class PlannerOutput:
    trajectory: Trajectory
    state: State
    emergency: bool
    S: float  # ego progress along the route [m]
    d: float  # lateral offset [m]
    prediction: Prediction
    candidates: list[np.ndarray]  # checked candidates' xy, for the viewer
    runtime_ms: float


class Planner:
    def __init__(self, road_map: RoadMap, route: Route, length: float = 4.6, width: float = 1.9,
                 lattice: LatticeParams = LatticeParams(), behaviour: BehaviourParams = BehaviourParams()) -> None:
        self.m, self.route = road_map, route
        self.lattice = LatticePlanner(road_map, lattice, length, width)
        self.behaviour = BehaviourLayer(road_map, route, length, behaviour)
        self.S: float | None = None
        self.runtimes_ms: list[float] = []

    def plan(self, inp: PlannerInput) -> PlannerOutput:
        t0 = time.perf_counter()
        ego, r = inp.ego, self.route
        S, d = r.project(np.array([ego.x, ego.y]), hint=self.S, window=30.0 if self.S is not None else r.length)
        self.S = S
        kappa = float(np.interp(S, r.s, r.curvature))
        dpsi = (ego.yaw - float(np.interp(S, r.s, r.heading)) + np.pi) % (2 * np.pi) - np.pi
        s_state = (S, ego.v * np.cos(dpsi) / max(1 - kappa * d, 0.1), ego.accel * np.cos(dpsi))
        d_state = (d, ego.v * np.sin(dpsi), 0.0)
        near = tuple(o for o in inp.objects if np.hypot(o.x - ego.x, o.y - ego.y) < PERCEPTION_RANGE)
        pred = predict(near, self.m, self.lattice.t)
        decision = self.behaviour.decide(inp.t, ego, S, list(near), pred, list(inp.stop_lines))
        result = self.lattice.plan(inp.t, r, s_state, d_state, decision.goal, pred, heading_error=dpsi)
        state = State.EMERGENCY_STOP if result.emergency else decision.state
        ms = (time.perf_counter() - t0) * 1e3
        self.runtimes_ms.append(ms)
        return PlannerOutput(result.trajectory, state, result.emergency, S, d, pred, result.candidates, ms)
