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
from sim.types import ActorType, ObjectState, StopLineState, Trajectory, VehicleState

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
        pred = predict(tuple(o for o in near if not self._follows_us(o, S)), self.m, self.lattice.t)
        decision = self.behaviour.decide(inp.t, ego, S, list(near), pred, list(inp.stop_lines))
        result = self.lattice.plan(inp.t, r, s_state, d_state, decision.goal, pred, heading_error=dpsi)
        state = State.EMERGENCY_STOP if result.emergency else decision.state
        ms = (time.perf_counter() - t0) * 1e3
        self.runtimes_ms.append(ms)
        return PlannerOutput(result.trajectory, state, result.emergency, S, d, pred, result.candidates, ms)

    def _follows_us(self, o: ObjectState, S: float) -> bool:
        """A vehicle behind us in our lane, going our way: keeping its distance is its driver's job,
        so the lattice does not plan around it. Predicted at constant speed it runs into every
        candidate that slows or stands, and the lattice's only answer, an emergency stop, brakes
        hard in front of it and then stands until it has stopped (town_loop: 4-6 s at most stops)."""
        if o.type is not ActorType.VEHICLE:
            return False
        r = self.route
        s_o, d_o = r.project(np.array([o.x, o.y]), hint=S - PERCEPTION_RANGE / 2, window=PERCEPTION_RANGE / 2)
        behind = s_o + o.length / 2 < S - self.lattice.length / 2
        return behind and abs(d_o) < self.behaviour.params.corridor and np.cos(o.yaw - float(r.heading_at(s_o))) > 0.9
