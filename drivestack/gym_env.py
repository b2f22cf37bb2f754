"""One scenario as a Gymnasium environment: `gymnasium.make("drivestack/Drive-v0", scenario=..., seed=...)`
(registered when `drivestack` is imported).

- Observation: a Dict of the keys chosen with `observations` (`OBS_KEYS`): `camera` (H×W×3 uint8),
  `lidar` (a fixed `lidar_points`×4 array of x, y, z [m] in the vehicle frame and intensity, a random
  subset of the sweep; rows past the sweep's points are zero), `radar` (`radar_returns`×4: range [m],
  azimuth [rad], range rate [m/s], RCS [dBsm], nearest first, zero-padded), `ego` (`EGO_FIELDS`)
  and `command` (the route command, an index into `sim.route.COMMANDS`).
- Action: a Box in [−1, 1]²: steer × 0.61 rad and accel × 3 m/s² (positive) or × 8 m/s² (negative),
  the ego's limits (`physical_actions=True`: the same in rad and m/s² directly).
- Reward: 100 × the step's gain in route completion (progress less the off-road fraction, as
  scored), minus 100 × (1 − coefficient) for every penalised infraction in the step (pedestrian
  −50, vehicle −40, static −35, red light −30, stop sign −20, timeout −30; collisions when at
  fault). Over an episode without infractions the return is the driving score.
- Episode end: `terminated` at the goal, on any collision, or 30 m off the route; `truncated` at
  the scenario's timeout or when blocked. One step is one agent tick: 0.1 s, two physics steps.
- `reset(seed=s)` plays the same episode as `drivestack run --seed s`; `reset()` draws the next
  seed from the env's generator. The same seed gives the same observations, bit for bit.
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from drivestack.errors import UserError
from drivestack.overlays import DisplaySensors, is_penalised, running_score
from sim.infractions import EventKind
from sim.route import COMMANDS
from sim.scenario import Scenario, load_scenario, parse_scenario
from sim.scoring import PENALTIES
from sim.sensors.specs import CameraSpec, LidarSpec, RadarSpec
from sim.types import Control
from sim.world import AGENT_EVERY, DT, EGO_PARAMS, World

OBS_KEYS = ("camera", "lidar", "radar", "ego", "command")
SENSOR_KEYS = ("camera", "lidar", "radar")
P = EGO_PARAMS
# the `ego` vector: name, low, high (its bounds are the space's)
EGO_FIELDS = (
    ("x", -1e4, 1e4), ("y", -1e4, 1e4), ("yaw", -np.pi, np.pi),  # pose from localisation [m, rad]
    ("speed", 0.0, 100.0), ("steer", -P.max_steer, P.max_steer), ("accel", P.min_accel, P.max_accel),
    ("yaw_rate", -10.0, 10.0),  # [rad/s]
    ("route_offset", -100.0, 100.0),  # lateral offset from the route, + left [m]
    ("route_heading_error", -np.pi, np.pi),  # heading minus the route's [rad]
    ("speed_limit", 0.0, 100.0),  # the route's limit here [m/s]
    ("progress", 0.0, 1.0),  # route progress
)
TERMINAL = {EventKind.GOAL, EventKind.COLLISION_PEDESTRIAN, EventKind.COLLISION_VEHICLE,
            EventKind.COLLISION_STATIC, EventKind.ROUTE_DEVIATION}
TRUNCATING = {EventKind.TIMEOUT, EventKind.BLOCKED}


def _scenario(scenario: Scenario | str | Path | dict) -> Scenario:
    if isinstance(scenario, Scenario):
        return scenario
    if isinstance(scenario, dict):
        return parse_scenario(dict(scenario), "scenario.yaml")
    return load_scenario(scenario)


def _keys(observations: Sequence[str] | str) -> tuple[str, ...]:
    keys = (observations,) if isinstance(observations, str) else tuple(observations)
    for k in keys:
        if k not in OBS_KEYS:
            close = difflib.get_close_matches(str(k), OBS_KEYS, n=1)
            hint = f"did you mean `{close[0]}`? " if close else ""
            raise UserError(f"observations: unknown key {k!r}; {hint}available: {', '.join(OBS_KEYS)}")
    if not keys or len(set(keys)) != len(keys):
        raise UserError(f"observations: name each of {', '.join(OBS_KEYS)} at most once, and at least one")
    return keys


def _wrap(a: float) -> float:
    return float((a + np.pi) % (2 * np.pi) - np.pi)


class DriveEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": round(1 / (DT * AGENT_EVERY))}

    def __init__(self, scenario: Scenario | str | Path | dict = "town_loop", seed: int | None = None,
                 observations: Sequence[str] = OBS_KEYS, lidar_points: int = 4096, radar_returns: int = 64,
                 physical_actions: bool = False, render_mode: str | None = None) -> None:
        """`seed`: the first `reset()`'s seed when it is given none."""
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise UserError(f"render_mode: {render_mode!r} is not one of {', '.join(self.metadata['render_modes'])}")
        if lidar_points < 1 or radar_returns < 1:
            raise UserError("lidar_points and radar_returns must be ≥ 1")
        self.scenario = _scenario(scenario)
        self.keys = _keys(observations)
        self.render_mode = render_mode
        self.first_seed = seed
        self.specs = {k: s for k, s in (("camera", CameraSpec()), ("lidar", LidarSpec()), ("radar", RadarSpec()))
                      if k in self.keys}
        self.lidar_points, self.radar_returns = lidar_points, radar_returns
        self.observation_space = spaces.Dict({k: self._space(k) for k in self.keys})
        self.physical_actions = physical_actions
        if physical_actions:
            self.action_space = spaces.Box(np.array([-P.max_steer, P.min_accel], np.float32),
                                           np.array([P.max_steer, P.max_accel], np.float32), dtype=np.float32)
        else:
            self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.world: World | None = None
        self.world_seed: int | None = None
        self._rig = None
        self._frames: dict = {}
        self._display = DisplaySensors()
        self._composer = None
        self._window = None
        self._last = (0.0, 0.0, Control(0.0, 0.0))  # reward, return, control (for the HUD)

    # ---- spaces ------------------------------------------------------------------------------------------
    def _space(self, key: str) -> spaces.Space:
        if key == "camera":
            cam = self.specs["camera"]
            return spaces.Box(0, 255, (cam.height, cam.width, 3), np.uint8)
        if key == "lidar":
            r = self.specs["lidar"].max_range + 5.0
            low = np.tile(np.array([-r, -r, -r, 0.0], np.float32), (self.lidar_points, 1))
            high = np.tile(np.array([r, r, r, 1.0], np.float32), (self.lidar_points, 1))
            return spaces.Box(low, high, dtype=np.float32)
        if key == "radar":
            r = self.specs["radar"].max_range + 5.0
            low = np.tile(np.array([0.0, -np.pi, -100.0, -100.0], np.float32), (self.radar_returns, 1))
            high = np.tile(np.array([r, np.pi, 100.0, 100.0], np.float32), (self.radar_returns, 1))
            return spaces.Box(low, high, dtype=np.float32)
        if key == "ego":
            return spaces.Box(np.array([f[1] for f in EGO_FIELDS], np.float32),
                              np.array([f[2] for f in EGO_FIELDS], np.float32), dtype=np.float32)
        return spaces.Discrete(len(COMMANDS))

    def action_to_control(self, action) -> Control:
        """The ego's command for an action (clipped to the action space)."""
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(2), self.action_space.low, self.action_space.high)
        if self.physical_actions:
            return Control(float(a[0]), float(a[1]))
        return Control(float(a[0] * P.max_steer), float(a[1] * (P.max_accel if a[1] >= 0 else -P.min_accel)))

    # ---- the episode ---------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is None and self.world is None and self.first_seed is not None:
            seed = self.first_seed
        super().reset(seed=seed)
        self.world_seed = int(seed) if seed is not None else int(self.np_random.integers(2**31 - 1))
        self.world = World(self.scenario, self.world_seed)
        if self.specs:
            from sim.sensors.rig import SensorRig

            self._rig = SensorRig(list(self.specs.values()), self.world.map, self.world_seed)
        self._completion, self._return = 0.0, 0.0
        self._last = (0.0, 0.0, Control(0.0, 0.0))
        obs = self._observe()
        if self.render_mode == "human":
            self.render()
        return obs, self._info([])

    def step(self, action):
        if self.world is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        control = self.action_to_control(action)
        events = []
        for _ in range(AGENT_EVERY):
            events += self.world.step(control)
            if any(e.kind in TERMINAL or e.kind in TRUNCATING for e in events):
                break
        obs = self._observe()
        completion = running_score(self.world).completion
        reward = 100.0 * (completion - self._completion) - sum(
            100.0 * (1.0 - PENALTIES[e.kind]) for e in events if is_penalised(e))
        self._completion = completion
        self._return += reward
        self._last = (reward, self._return, control)
        terminated = any(e.kind in TERMINAL for e in events)
        truncated = not terminated and any(e.kind in TRUNCATING for e in events)
        if self.render_mode == "human":
            self.render()
        return obs, float(reward), terminated, truncated, self._info(events)

    def _info(self, events: list) -> dict:
        score = running_score(self.world)
        ends = [e.kind.value for e in events if e.kind in TERMINAL or e.kind in TRUNCATING]
        return {"t": float(self.world.t), "world_seed": self.world_seed, "events": [e.kind.value for e in events],
                "route_completion": score.completion, "infraction_penalty": score.penalty,
                "driving_score": score.driving_score, "outcome": ends[0] if ends else ""}

    # ---- observations ----------------------------------------------------------------------------------------
    def _observe(self) -> dict:
        w = self.world
        self._frames = frames = self._rig.capture_world(w) if self._rig is not None else {}
        obs: dict[str, Any] = {}
        for k in self.keys:
            if k == "camera":
                obs[k] = np.array(frames["camera"].image, dtype=np.uint8, copy=True)
            elif k == "lidar":
                obs[k] = self._lidar(frames["lidar"])
            elif k == "radar":
                obs[k] = self._radar(frames["radar"])
            elif k == "ego":
                obs[k] = self._ego()
            else:
                obs[k] = COMMANDS.index(w.command)
        return obs

    def _clip(self, key: str, arr: np.ndarray) -> np.ndarray:
        sp = self.observation_space[key]
        return np.clip(arr, sp.low, sp.high).astype(np.float32)

    def _lidar(self, frame) -> np.ndarray:
        from sim.sensors.calibration import transform

        pts = transform(frame.calib.T_vehicle_lidar, np.asarray(frame.points, dtype=np.float64))
        n, m = len(pts), self.lidar_points
        keep = np.sort(self.np_random.choice(n, m, replace=False)) if n > m else np.arange(n)
        out = np.zeros((m, 4))
        out[:len(keep), :3] = pts[keep]
        out[:len(keep), 3] = np.asarray(frame.intensity)[keep]
        return self._clip("lidar", out)

    def _radar(self, frame) -> np.ndarray:
        order = np.argsort(np.asarray(frame.range), kind="stable")[: self.radar_returns]
        out = np.zeros((self.radar_returns, 4))
        out[:len(order)] = np.column_stack([np.asarray(a)[order] for a in
                                            (frame.range, frame.azimuth, frame.range_rate, frame.rcs)])
        return self._clip("radar", out)

    def _ego(self) -> np.ndarray:
        w = self.world
        e, r = w.ego_state, w.route
        odo = w.observe().odometry
        vals = [e.x, e.y, _wrap(e.yaw), e.v, e.steer, e.accel, odo.yaw_rate, w.d,
                _wrap(e.yaw - float(r.heading_at(w.S))), float(np.interp(w.S, r.s, r.speed_limit)),
                w.criteria.progress.completion]
        return self._clip("ego", np.array(vals))

    # ---- rendering -------------------------------------------------------------------------------------------
    def _draw(self):
        from drivestack.compose import Composer, Hud

        if self._composer is None or self._composer.geometry_map is not self.world.map:
            self._composer = Composer(self.world.map)
        reward, ret, c = self._last
        hud = Hud(f"{self.scenario.name} · gymnasium · seed {self.world_seed}",
                  extra=[f"reward {reward:+.2f}   return {ret:+.1f}   "
                         f"steer {c.steer:+.2f} rad   accel {c.accel:+.1f} m/s²"])
        return self._composer.draw(self.world, self._display.frames(self.world, self._frames), hud=hud)

    def render(self):
        """`rgb_array`: the composed view as H×W×3 uint8; `human`: the same in a pygame window."""
        if self.render_mode is None or self.world is None:
            if self.render_mode is None:
                gym.logger.warn("render() without a render_mode: make the env with render_mode='rgb_array' or 'human'")
            return None
        surface = self._draw()
        if self.render_mode == "rgb_array":
            return self._composer.array()
        import pygame

        if self._window is None:
            try:
                pygame.display.init()
                self._window = pygame.display.set_mode(surface.get_size())
            except pygame.error as e:
                raise UserError(f"render_mode='human': cannot open a window ({e}); without a display set "
                                "SDL_VIDEODRIVER=dummy or use render_mode='rgb_array'") from None
            pygame.display.set_caption(f"drivestack · {self.scenario.name}")
            self._clock = pygame.time.Clock()
        for event in pygame.event.get():
            if event.type == pygame.QUIT:  # closing the window stops the display, not the episode
                self.render_mode = None
                self._close_window()
                return None
        self._window.blit(surface, (0, 0))
        pygame.display.flip()
        self._clock.tick(self.metadata["render_fps"])
        return None

    def _close_window(self) -> None:
        if self._window is not None:
            import pygame

            pygame.display.quit()
            self._window = None

    def close(self) -> None:
        self._close_window()
        self._rig = None
