"""`modular`: sensors → fused YOLO → lift to 3D → track → planner → MPC. No ground truth at all.

It shares the planner and controller with `expert`; only where the objects and light states come
from differs. The HD map gives the route's stop lines and where their signal heads stand; the light
*state* comes from the detector's light boxes, read by the light-state reader, associated with a
head by 3D position.
"""
from __future__ import annotations

import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from control.mpc import MPCController
from drivestack.errors import UserError
from perception.clusters import CAR_GATE_M, WALKER_GATE_M, outside_gate, unseen_cars, unseen_pedestrians
from perception.detector import IMGSZ, Detection, Detector
from perception.fusion import fused_image
from perception.lifting import Detection3D, RadarReturns, drop_duplicate_cars, lift
from perception.light_state import LIGHT_CLASSES, LightStateReader
from perception.tracker import Measurement, Track, Tracker
from planning.planner import Planner, PlannerInput, PlannerOutput
from sim.map import RoadMap
from sim.route import Route, StopLine, route_stop_lines
from sim.sensors.calibration import ImagePoints, project_to_camera, transform, vehicle_to_world
from sim.sensors.specs import CameraSpec, LidarSpec, RadarSpec
from sim.types import ActorType, Control, LightState, ObjectState, Observation, StopLineState

SIZE = {"car": (4.6, 1.9), "pedestrian": (0.6, 0.6)}  # assumed footprint [m]: the detector gives no extent
LIGHT_STATES = {"traffic_light_red": LightState.RED, "traffic_light_yellow": LightState.YELLOW,
                "traffic_light_green": LightState.GREEN}
HEAD_GATE_M = 4.0  # a light detection this close to a mapped signal head reads that head
LIGHT_WINDOW_S = 0.35  # light states seen within this window vote (score-weighted)
LIGHT_HOLD_S = 1.5  # a light not seen for longer is unknown (and the planner treats unknown as red)
LANE_PRIOR_M = 3.0  # a car seen this close to a road lane is taken to stand along it
UNSEEN_SIGMA_M = 0.7  # position noise of a car placed from a lidar group alone [m]
UNSEEN_WALKER_SIGMA_M = 0.3  # … and of a walker: its group is its whole body


class ModularAgent:
    name = "modular"
    privileged = False
    uses_traffic_manager = False

    def __init__(self, weights: str | None = None, mode: str = "fused", conf: float = 0.3,
                 light_conf: float = 0.1, light_weights: str | None = None, backend: str | None = None,
                 zoom: bool | None = None, outline: bool | None = None, imgsz: int | None = None) -> None:
        # Light boxes count from a lower score: a far head is 6–10 px and the YOLO is unsure of its
        # colour, not of the head. The reader reads the state, and only a box within 4 m of a
        # mapped head counts, so a false head costs little.
        self.conf, self.light_conf = conf, light_conf
        # ONNX Runtime: 1.6× PyTorch's speed, the same detections (README); the variable reaches eval's workers
        backend = backend or os.environ.get("DRIVESTACK_DETECTOR_BACKEND", "onnx")
        # The zoom pass on the horizon band finds far walkers and light heads, but the suite has not
        # been driven safely with it yet (README, "Zoom pass"); =1 turns it on
        zoom = os.environ.get("DRIVESTACK_DETECTOR_ZOOM", "0") == "1" if zoom is None else zoom
        # A cut car fitted to its whole lidar outline is placed better (README, "Lifting"): the P2's
        # boxes of cars cut by the image's side are short, and the far corner put a parked car 2 m
        # too far ahead (parked_car_blocking); =0 turns it off
        self.outline = os.environ.get("DRIVESTACK_LIFT_OUTLINE", "1") == "1" if outline is None else outline
        # other weights (models/detector_yolo11n.pt) for a whole eval, as $DRIVESTACK_E2E_WEIGHTS does for e2e
        weights = weights or os.environ.get("DRIVESTACK_DETECTOR_WEIGHTS") or None
        # the size the network sees the camera image at (README, "Inference size"); =320 is the native size
        imgsz = imgsz or os.environ.get("DRIVESTACK_DETECTOR_IMGSZ") or IMGSZ
        try:
            if not str(imgsz).isdigit():
                raise ValueError(f"DRIVESTACK_DETECTOR_IMGSZ: {imgsz!r} is not a whole number of pixels; "
                                 f"the default is {IMGSZ}")
            self.detector = Detector(weights, mode, conf=min(conf, light_conf), imgsz=int(imgsz), backend=backend,
                                     zoom=zoom)
            self.reader = LightStateReader(light_weights)
        except (FileNotFoundError, ValueError) as e:
            raise UserError(str(e)) from None
        self.mode = mode
        self.tracker = Tracker()
        self.controller = MPCController()
        self.planner: Planner | None = None
        self.last: PlannerOutput | None = None
        self.detections: list[Detection] = []  # this tick's 2D boxes (for the viewer)
        self.lifted: list[Detection3D] = []
        self.tracks: list[Track] = []
        self.unseen = np.zeros((0, 2))  # this tick's lidar-only cars (world xy), outside the camera's view
        self.unseen_walkers = np.zeros((0, 2))  # … and walkers
        self.timing: dict[str, float] = {}
        # The lidar-only work (the points' projection, the rear and side view) needs no detection, so it
        # runs on a second thread while the network runs: ONNX Runtime releases the GIL (README, "Tick time")
        self._lidar_branch = ThreadPoolExecutor(1, thread_name_prefix="lidar")

    @property
    def fallback_steps(self) -> int:
        return int(self.controller.fallback_steps)

    @property
    def emergency(self) -> bool:
        """Whether this tick's plan is an emergency stop (the runner leaves those out of comfort)."""
        return bool(self.last is not None and self.last.emergency)

    def sensors(self) -> list:
        return [CameraSpec(), LidarSpec(), RadarSpec()]

    def reset(self, route: Route, road_map: RoadMap) -> None:
        self.map = road_map
        self.planner = Planner(road_map, route)
        self.controller.reset()
        self.tracker.reset()
        self.lines: list[StopLine] = route_stop_lines(road_map, route)
        heads = [(p.x, p.y, p.lane_id) for p in road_map.props if p.kind == "traffic_light"]
        self.head_xy = np.array([h[:2] for h in heads]).reshape(-1, 2)
        self.head_lane = [h[2] for h in heads]
        # per stop line (keyed by its lane): the light states seen, as (t, LightState, score)
        self.seen: dict[str, deque] = {ln.lane_id: deque() for ln in self.lines}

    def act(self, obs: Observation) -> Control:
        t0 = time.perf_counter()
        cam, lidar, radar = obs.sensors["camera"], obs.sensors["lidar"], obs.sensors["radar"]
        self._ego_T = vehicle_to_world(obs.ego.x, obs.ego.y, obs.ego.yaw)
        image = fused_image(cam, lidar, radar, self.mode)
        branch = self._lidar_branch.submit(self._lidar_view, lidar, cam.calib)
        dets = [d for d in self.detector(image)
                if d.score >= (self.light_conf if d.cls in LIGHT_CLASSES else self.conf)]
        self.detections = self.reader.relabel(cam.image, dets)
        t1 = time.perf_counter()
        points, proj, unseen, unseen_walkers, lidar_ms = branch.result()
        returns = RadarReturns.build(np.asarray(radar.range), np.asarray(radar.azimuth), np.asarray(radar.range_rate),
                                     radar.calib, cam.calib)
        self.lifted = drop_duplicate_cars(lift(self.detections, points, cam.calib, returns, heading=self._lane_heading,
                                               outline=self.outline, proj=proj))
        t2 = time.perf_counter()
        objects = self._track(obs, unseen, unseen_walkers)
        stop_lines = self._stop_lines(obs.t)
        t3 = time.perf_counter()
        self.last = self.planner.plan(PlannerInput(obs.t, obs.ego, objects, stop_lines))
        t4 = time.perf_counter()
        control = self.controller.control(obs.ego, self.last.trajectory, obs.t)
        t5 = time.perf_counter()
        self.timing = {"detector": (t1 - t0) * 1e3, "lidar_branch": lidar_ms, "lifting": (t2 - t1) * 1e3,
                       "tracking": (t3 - t2) * 1e3, "perception": (t3 - t0) * 1e3, "planning": (t4 - t3) * 1e3,
                       "control": (t5 - t4) * 1e3}
        return control

    def _lidar_view(self, lidar, camera) -> tuple[np.ndarray, ImagePoints, np.ndarray, np.ndarray, float]:
        """What needs the lidar alone: its points in the vehicle frame, their projection into the
        camera (for lifting), the car- and walker-sized groups outside the camera's view (world xy,
        not yet gated against what the camera places), and the time it took [ms]."""
        t0 = time.perf_counter()
        points = transform(lidar.calib.T_vehicle_lidar, lidar.points)
        proj = project_to_camera(points, camera)
        cars = unseen_cars(points, camera, self._ego_T, self.map, heading=self._lane_heading)
        walkers = unseen_pedestrians(points, camera, self._ego_T, self.map)
        return points, proj, cars, walkers, (time.perf_counter() - t0) * 1e3

    def _track(self, obs: Observation, unseen: np.ndarray, unseen_walkers: np.ndarray) -> tuple[ObjectState, ...]:
        ego, T = obs.ego, self._ego_T
        R = T[:2, :2]
        # the radar's own velocity (world frame): the ego's, plus the yaw rate's lever arm to its mount
        arm = R @ obs.sensors["radar"].calib.T_vehicle_radar[:2, 3]
        v_radar = ego.v * np.array([np.cos(ego.yaw), np.sin(ego.yaw)]) + obs.odometry.yaw_rate * np.array([-arm[1], arm[0]])
        meas = []
        for d in self.lifted:
            if d.det.cls not in SIZE:
                continue
            xy = R @ (d.x, d.y) + T[:2, 3]
            sigma = (0.3 if d.source == "lidar" else 1.0) + 0.03 * d.range
            radial = None
            if d.range_rate is not None:
                u = R @ d.ray
                radial = (float(u[0]), float(u[1]), float(d.range_rate + u @ v_radar))
            meas.append(Measurement(d.det.cls, float(xy[0]), float(xy[1]), sigma, radial))
        # cars outside the camera's view (behind, beside) from lidar groups, less those the camera placed: position only
        seen = np.array([(m.x, m.y) for m in meas if m.cls == "car"]).reshape(-1, 2)
        self.unseen = outside_gate(unseen, seen, CAR_GATE_M)
        meas += [Measurement("car", float(x), float(y), UNSEEN_SIGMA_M) for x, y in self.unseen]
        walkers = np.array([(m.x, m.y) for m in meas if m.cls == "pedestrian"]).reshape(-1, 2)
        self.unseen_walkers = outside_gate(unseen_walkers, walkers, WALKER_GATE_M)
        meas += [Measurement("pedestrian", float(x), float(y), UNSEEN_WALKER_SIGMA_M) for x, y in self.unseen_walkers]
        self.tracks = self.tracker.update(obs.t, meas)
        out = []
        for tr in self.tracks:
            x, y, vx, vy = (float(q) for q in tr.x)
            if tr.heading is not None:  # its direction of travel, held while it slows
                yaw = tr.heading
            elif tr.cls == "car":  # cars never seen moving stand along their lane
                (i,), (s,), _ = self.map.nearest_lane(np.array([[x, y]]))
                yaw = float(self.map.lanes[self.map.lane_ids[int(i)]].heading_at(float(s)))
            else:
                yaw = 0.0
            length, width = SIZE[tr.cls]
            kind = ActorType.VEHICLE if tr.cls == "car" else ActorType.PEDESTRIAN
            out.append(ObjectState(tr.id, kind, x, y, yaw, vx, vy, length, width))
        return tuple(out)

    def _lane_heading(self, x: float, y: float) -> float | None:
        """The heading (vehicle frame) of the road lane under a vehicle-frame point: cars on a road
        stand along it. None off the road and in junctions, where a car may point any way."""
        T = self._ego_T
        xy = T[:2, :2] @ (x, y) + T[:2, 3]
        (i,), (s,), (dist,) = self.map.nearest_lane(xy[None])
        if dist > LANE_PRIOR_M or self.map.is_connector[int(i)]:
            return None
        yaw_ego = float(np.arctan2(T[1, 0], T[0, 0]))
        return float(self.map.lanes[self.map.lane_ids[int(i)]].heading_at(float(s))) - yaw_ego

    def _stop_lines(self, t: float) -> tuple[StopLineState, ...]:
        """The route's stop lines with the light states read from detected, map-associated heads."""
        T = self._ego_T
        for d in self.lifted:
            state = LIGHT_STATES.get(d.det.cls)
            if state is None or not len(self.head_xy):
                continue
            xy = T[:2, :2] @ (d.x, d.y) + T[:2, 3]
            dist = np.hypot(*(self.head_xy - xy).T)
            k = int(np.argmin(dist))
            seen = self.seen.get(self.head_lane[k])
            if dist[k] < HEAD_GATE_M and seen is not None:
                seen.append((t, state, d.det.score))
        out = []
        for line in self.lines:
            state = None
            if line.kind == "light":
                seen = self.seen[line.lane_id]
                while seen and t - seen[0][0] > LIGHT_HOLD_S:
                    seen.popleft()
                if seen:
                    recent = [s for s in seen if seen[-1][0] - s[0] <= LIGHT_WINDOW_S]
                    votes: dict[LightState, float] = {}
                    for _, st, score in recent:
                        votes[st] = votes.get(st, 0.0) + score
                    state = max(votes, key=votes.get)
            out.append(StopLineState(line.S, line.kind, state, line.junction))
        return tuple(out)
