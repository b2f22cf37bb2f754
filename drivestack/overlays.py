"""What the view shows besides the world: the agent's internals (duck-typed), the running score,
and sensor frames for display.

The viewer, the video recorder and the Gymnasium env's `render()` draw whatever an agent exposes,
without knowing its class, so that new agents show up without touching the viewer:

- `agent.last`: the planner's output (`planning.planner.PlannerOutput` or anything shaped like it):
  `.state` (the behaviour state), `.candidates` (list of N×2 xy arrays), `.trajectory` (with `.x`, `.y`);
- `agent.predicted_xy` (N×2), or else `agent.controller.last_plan` (rows x, y, …): the MPC's
  predicted horizon; hidden on ticks where the controller reports a fallback (`last_status`);
- `agent.detections`: the detector's 2D boxes in the agent's camera pixels, each an object or a
  dict with `x1, y1, x2, y2` (or `xyxy`), a class (`cls`, `label` or `name`) and optionally a
  `score` / `conf` and a `track_id`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from sim.scoring import PENALTIES, driving_score, infraction_penalty, route_completion


@dataclass(frozen=True)
class Detection:
    """A detector box for drawing, in camera pixels."""

    x1: float
    y1: float
    x2: float
    y2: float
    label: str
    score: float | None = None
    track_id: int | None = None


@dataclass(frozen=True)
class Overlay:
    """The agent's internals on one tick; every field is optional."""

    behaviour: str | None = None
    candidates: list[np.ndarray] = field(default_factory=list)  # N×2 each [m]
    trajectory: np.ndarray | None = None  # the chosen plan, N×2 [m]
    horizon: np.ndarray | None = None  # the MPC's predicted positions, N×2 [m]
    fallback: bool = False  # the controller fell back on this tick
    detections: list[Detection] | None = None  # None: the agent exposes no detector


def _xy(a: Any) -> np.ndarray | None:
    try:
        arr = np.asarray(a, dtype=float)
    except (TypeError, ValueError):
        return None
    return arr[:, :2] if arr.ndim == 2 and arr.shape[1] >= 2 and len(arr) >= 2 else None


def _get(obj: Any, *names: str, default=None):
    for n in names:
        v = obj.get(n) if isinstance(obj, dict) else getattr(obj, n, None)
        if v is not None:
            return v
    return default


def _detection(b: Any) -> Detection | None:
    xyxy = _get(b, "xyxy")
    if xyxy is None:
        xyxy = [_get(b, k) for k in ("x1", "y1", "x2", "y2")]
    try:
        x1, y1, x2, y2 = (float(v) for v in np.asarray(xyxy, dtype=float).reshape(-1)[:4])
    except (TypeError, ValueError):
        return None
    score, tid = _get(b, "score", "conf", "confidence"), _get(b, "track_id", "id")
    return Detection(x1, y1, x2, y2, str(_get(b, "cls", "label", "name", default="?")),
                     None if score is None else float(score), None if tid is None else int(tid))


def agent_overlay(agent: Any) -> Overlay:
    """Read the planner output, MPC horizon and detections that `agent` exposes (see the module doc)."""
    if agent is None:
        return Overlay()
    last = getattr(agent, "last", None)
    state = getattr(last, "state", None)
    behaviour = None if state is None else str(getattr(state, "value", state))
    candidates = [c for c in (_xy(c) for c in (getattr(last, "candidates", None) or [])) if c is not None]
    traj = getattr(last, "trajectory", None)
    trajectory = _xy(np.column_stack([traj.x, traj.y])) if traj is not None and hasattr(traj, "x") else None
    ctrl = getattr(agent, "controller", None)
    fallback = str(getattr(ctrl, "last_status", "")).startswith("fallback")
    horizon = getattr(agent, "predicted_xy", None)
    if horizon is None and ctrl is not None:
        horizon = getattr(ctrl, "last_plan", None)
    horizon = None if fallback or horizon is None else _xy(horizon)
    dets = getattr(agent, "detections", None)
    detections = None if dets is None else [d for d in map(_detection, dets) if d is not None]
    return Overlay(behaviour, candidates, trajectory, horizon, fallback, detections)


class TapAgent:
    """Wraps an agent to keep its last observation for the view; otherwise it is the agent itself
    (attributes such as `name`, `privileged`, `last` and `fallback_steps` pass through)."""

    def __init__(self, agent: Any) -> None:
        self.agent = agent
        self.obs = None

    def __getattr__(self, name: str):
        return getattr(self.__dict__["agent"], name)

    def sensors(self) -> list:
        return self.agent.sensors()

    def reset(self, route, road_map) -> None:
        self.obs = None
        self.agent.reset(route, road_map)

    def act(self, obs):
        control = self.agent.act(obs)
        self.obs = replace(obs, privileged=None) if getattr(obs, "privileged", None) is not None else obs
        return control


@dataclass(frozen=True)
class Score:
    """The episode's score so far, as `episode.json` would report it if it ended now."""

    completion: float  # 0–1, route progress less the off-road fraction
    penalty: float  # product of the infraction coefficients so far
    driving_score: float  # 0–100


def running_score(world) -> Score:
    c = world.criteria
    offroad = min(1.0, c.offroad.offroad_m / max(world.route.length, 1e-9))
    completion = route_completion(c.progress.completion, offroad)
    penalty = infraction_penalty(c.events)
    return Score(completion, penalty, driving_score(completion, penalty))


def is_penalised(event) -> bool:
    """An event that lowers the infraction penalty (collisions only when the ego is at fault)."""
    return event.kind in PENALTIES and event.at_fault


@dataclass
class Frames:
    camera: Any = None
    lidar: Any = None
    radar: Any = None


class DisplaySensors:
    """Camera, lidar and radar frames for the view: the agent's own when it declared them, else
    captured by a display rig of default specs. The display rig draws noise from its own
    generators, so watching or recording an episode never changes it."""

    def __init__(self) -> None:
        self._rig = None
        self._world = None  # the rig is per episode: its noise restarts with the world's seed
        self._missing: tuple[str, ...] = ()

    def frames(self, world, sensors: dict | None = None) -> Frames:
        from sim.sensors.frames import CameraFrame, LidarFrame, RadarFrame
        from sim.sensors.specs import CameraSpec, LidarSpec, RadarSpec

        have = Frames()
        for f in (sensors or {}).values():
            for name, typ in (("camera", CameraFrame), ("lidar", LidarFrame), ("radar", RadarFrame)):
                if isinstance(f, typ) and getattr(have, name) is None:
                    setattr(have, name, f)
        missing = tuple(n for n in ("camera", "lidar", "radar") if getattr(have, n) is None)
        if not missing:
            return have
        if self._world is not world or self._missing != missing:
            from sim.sensors.rig import SensorRig

            specs = {"camera": CameraSpec(), "lidar": LidarSpec(), "radar": RadarSpec()}
            self._rig = SensorRig([specs[n] for n in missing], world.map, world.seed)
            self._world, self._missing = world, missing
        for name, frame in self._rig.capture_world(world).items():
            setattr(have, name, frame)
        return have
