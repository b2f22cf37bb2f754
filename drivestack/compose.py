"""The composed view: a top-down map with the route, the plan and the actors, the camera, lidar and
radar panels, and a HUD. Drawn with pygame on an off-screen surface (no window or display needed),
so the viewer's window, the videos and the Gymnasium env's `render()` show the same picture.

Layout (1280×720): the map on the left (720×720, north up, centred on the ego); on the right the
camera (560×280) above lidar and radar from above (280×280 each) and the HUD (560×160).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame  # noqa: E402

from drivestack.overlays import (  # noqa: E402
    DisplaySensors, Frames, Overlay, Score, TapAgent, agent_overlay, is_penalised, running_score,
)
from sim.actors import EGO, PARKED  # noqa: E402
from sim.geometry import box_corners  # noqa: E402
from sim.map import RoadMap  # noqa: E402
from sim.types import LightState  # noqa: E402

SIZE = (1280, 720)
MAP_RECT = pygame.Rect(0, 0, 720, 720)
CAM_RECT = pygame.Rect(720, 0, 560, 280)
LIDAR_RECT = pygame.Rect(720, 280, 280, 280)
RADAR_RECT = pygame.Rect(1000, 280, 280, 280)
HUD_RECT = pygame.Rect(720, 560, 560, 160)
EVENT_BANNER_S = 3.0  # an event is announced on the map this long [s]

GROUND, ASPHALT, BUILDING = (40, 58, 36), (74, 74, 80), (96, 90, 84)
LANE_LINE, CROSSWALK, TEXT, DIM = (150, 150, 150), (200, 200, 200), (235, 235, 235), (150, 150, 160)
LIGHT_RGB = {LightState.GREEN: (40, 230, 90), LightState.YELLOW: (255, 200, 0), LightState.RED: (240, 40, 40)}
ROUTE_RGBA, DONE_RGBA = (70, 140, 255, 90), (70, 140, 255, 35)
CANDIDATE_RGBA, PLAN_RGB, HORIZON_RGB = (120, 200, 255, 70), (60, 255, 120), (255, 150, 30)
EGO_RGB, PED_RGB = (245, 245, 255), (255, 60, 200)


@dataclass
class Layers:
    """What is drawn; the viewer's keys toggle these."""

    route: bool = True
    candidates: bool = True
    trajectory: bool = True
    horizon: bool = True
    ids: bool = True
    detections: bool = False  # the camera shows the detector's boxes instead of the ground truth


@dataclass
class Hud:
    """Text for the HUD beyond what the world and the agent say."""

    title: str = ""  # e.g. "town_loop · expert · seed 0"
    status: str = ""  # e.g. "PAUSED" or the outcome
    extra: list[str] = field(default_factory=list)  # more lines (the env's reward, say)
    keys: str = ""  # a help line


@dataclass(frozen=True)
class _StopLine:
    a: np.ndarray
    b: np.ndarray
    kind: str  # "light" | "stop"
    junction: str | None
    group: int | None


class MapGeometry:
    """The map's static drawing primitives in world coordinates, computed once per map."""

    def __init__(self, m: RoadMap) -> None:
        geoms = getattr(m.drivable, "geoms", [m.drivable])
        self.drivable = [(np.asarray(g.exterior.coords)[:, :2], [np.asarray(r.coords)[:, :2] for r in g.interiors])
                         for g in geoms if not g.is_empty]
        self.buildings = [np.asarray(b, float) for b in m.buildings]
        road = [lane for lane in m.lanes.values() if lane.junction is None]
        self.lane_lines = [lane.boundaries()[0] for lane in road] + [lane.boundaries()[1] for lane in road]
        self.stripes: list[np.ndarray] = []
        for cw in m.crosswalks:
            u = (cw.b - cw.a) / max(np.linalg.norm(cw.b - cw.a), 1e-9)
            n = np.array([-u[1], u[0]])
            mid = cw.polygon.mean(axis=0)
            half = float(np.max(np.abs((cw.polygon - mid) @ n)))
            along = (cw.polygon - cw.a) @ u
            for s in np.arange(along.min(), along.max() - 0.3, 1.2):
                p, q = cw.a + u * s, cw.a + u * min(s + 0.6, along.max())
                self.stripes.append(np.array([p + n * half, q + n * half, q - n * half, p - n * half])
                                    + n * ((mid - cw.a) @ n))
        self.stop_lines = []
        for lane in m.lanes.values():
            if lane.control is None:
                continue
            p, h = lane.position(lane.length), float(lane.heading_at(lane.length))
            n = np.array([-np.sin(h), np.cos(h)]) * lane.width / 2
            junction = m.lanes[lane.successors[0]].junction if lane.successors else None
            self.stop_lines.append(_StopLine(p + n, p - n, lane.control, junction, lane.signal_group))
        self.props = list(m.props)
        self.lane_boxes = _boxes(self.lane_lines)
        self.stripe_boxes = _boxes(self.stripes)


class Composer:
    """Draws one frame of the view. `ppm` is the map's zoom [pixels per metre]."""

    def __init__(self, road_map: RoadMap, ppm: float = 7.0) -> None:
        pygame.font.init()
        self.geometry = MapGeometry(road_map)
        self.geometry_map = road_map
        self.ppm = ppm
        self.surface = pygame.Surface(SIZE)
        self._alpha = pygame.Surface(MAP_RECT.size, pygame.SRCALPHA)
        self.font = pygame.font.Font(None, 21)
        self.small = pygame.font.Font(None, 16)
        self.big = pygame.font.Font(None, 30)

    # ---- the whole frame ---------------------------------------------------------------------
    def draw(self, world, frames: Frames, overlay: Overlay | None = None, layers: Layers | None = None,
             hud: Hud | None = None) -> pygame.Surface:
        """Draw the frame on `self.surface` and return it."""
        overlay, layers, hud = overlay or Overlay(), layers or Layers(), hud or Hud()
        s = self.surface
        s.fill((16, 16, 20))
        score = running_score(world)
        s.set_clip(MAP_RECT)
        self._map(world, overlay, layers)
        s.set_clip(None)
        self._camera(frames.camera, overlay, layers)
        self._bev(frames)
        self._hud(world, overlay, score, hud)
        for r in (MAP_RECT, CAM_RECT, LIDAR_RECT, RADAR_RECT, HUD_RECT):
            pygame.draw.rect(s, (70, 70, 80), r, 1)
        return s

    def compose(self, world, frames: Frames, overlay: Overlay | None = None, layers: Layers | None = None,
                hud: Hud | None = None) -> np.ndarray:
        """The frame as an H×W×3 uint8 RGB array."""
        self.draw(world, frames, overlay, layers, hud)
        return self.array()

    def array(self) -> np.ndarray:
        """The last drawn frame as an H×W×3 uint8 RGB array (a copy)."""
        return np.frombuffer(pygame.image.tobytes(self.surface, "RGB"), np.uint8).reshape(SIZE[1], SIZE[0], 3).copy()

    # ---- map -----------------------------------------------------------------------------------
    def _px(self, xy: np.ndarray) -> np.ndarray:
        """World [m] → map-panel pixels (north up, the ego at the centre)."""
        xy = np.asarray(xy, float).reshape(-1, 2)
        k = self.ppm
        return np.column_stack([MAP_RECT.centerx + (xy[:, 0] - self._cx) * k,
                                MAP_RECT.centery - (xy[:, 1] - self._cy) * k])

    def _poly(self, surf, colour, xy: np.ndarray, width: int = 0) -> None:
        if len(xy) >= 3:
            pygame.draw.polygon(surf, colour, self._px(xy).tolist(), width)

    def _line(self, surf, colour, xy: np.ndarray, width: int = 1) -> None:
        if xy is not None and len(xy) >= 2:
            pygame.draw.lines(surf, colour, False, self._px(xy).tolist(), width)

    def _in_view(self, xy: np.ndarray, margin: float = 10.0) -> np.ndarray:
        half = MAP_RECT.width / 2 / self.ppm + margin
        return (np.abs(xy[..., 0] - self._cx) < half) & (np.abs(xy[..., 1] - self._cy) < half)

    def _boxes_in_view(self, boxes: np.ndarray) -> np.ndarray:
        """Which (x0, y0, x1, y1) boxes overlap the map panel."""
        half = MAP_RECT.width / 2 / self.ppm
        return ((boxes[:, 0] < self._cx + half) & (boxes[:, 2] > self._cx - half)
                & (boxes[:, 1] < self._cy + half) & (boxes[:, 3] > self._cy - half))

    def _map(self, world, overlay: Overlay, layers: Layers) -> None:
        s, g, k = self.surface, self.geometry, self.ppm
        v = world.vehicles
        self._cx, self._cy = float(v.x[0]), float(v.y[0])
        s.fill(GROUND, MAP_RECT)
        for ext, holes in g.drivable:
            self._poly(s, ASPHALT, ext)
            for hole in holes:
                self._poly(s, GROUND, hole)
        for b in g.buildings:
            self._poly(s, BUILDING, b)
        for i in np.nonzero(self._boxes_in_view(g.lane_boxes))[0]:
            self._line(s, LANE_LINE, g.lane_lines[i])
        for i in np.nonzero(self._boxes_in_view(g.stripe_boxes))[0]:
            self._poly(s, CROSSWALK, g.stripes[i])
        for sl in g.stop_lines:
            colour = (230, 230, 230) if sl.kind == "stop" else LIGHT_RGB[world.light_state(sl.junction, sl.group)]
            self._line(s, colour, np.array([sl.a, sl.b]), max(2, int(0.5 * k)))
        a = self._alpha
        a.fill((0, 0, 0, 0))
        r = world.route
        if layers.route:
            done = r.s <= world.S
            self._line(a, DONE_RGBA, r.points[done], max(2, int(1.6 * k)))
            self._line(a, ROUTE_RGBA, r.points[~done], max(2, int(1.6 * k)))
        if layers.candidates:
            for c in overlay.candidates:
                self._line(a, CANDIDATE_RGBA, c, 1)
        s.blit(a, MAP_RECT.topleft)
        if layers.trajectory and overlay.trajectory is not None:
            self._line(s, PLAN_RGB, overlay.trajectory, 3)
        if layers.horizon and overlay.horizon is not None:
            self._line(s, HORIZON_RGB, overlay.horizon, 2)
            for p in self._px(overlay.horizon):
                pygame.draw.circle(s, HORIZON_RGB, p, 3)
        self._actors(world, layers)
        self._props(world)
        self._banner(world)
        self._scale_bar()

    def _actors(self, world, layers: Layers) -> None:
        s, v, p = self.surface, world.vehicles, world.peds
        rows = np.nonzero(v.active)[0]
        rows = rows[self._in_view(np.column_stack([v.x[rows], v.y[rows]]))]
        corners = box_corners(v.x[rows], v.y[rows], v.yaw[rows], v.length[rows], v.width[rows])
        labels = []
        for i, c in zip(rows, corners, strict=True):
            ego = v.role[i] == EGO
            fill = EGO_RGB if ego else tuple(int(q) for q in np.asarray(v.colour[i]) * 255)
            pts = self._px(c).tolist()
            pygame.draw.polygon(s, fill, pts)
            pygame.draw.polygon(s, (0, 200, 255) if ego else (20, 20, 20), pts, 2 if ego else 1)
            front = self._px(c[[0, 3]].mean(axis=0))[0]  # the box's front edge, for the heading
            pygame.draw.line(s, (20, 20, 20), self._px([v.x[i], v.y[i]])[0], front, 2)
            if layers.ids:
                labels.append(("ego" if ego else f"#{v.id[i]}" + (" P" if v.role[i] == PARKED else ""), c.max(axis=0)))
        for i in np.nonzero(self._in_view(np.column_stack([p.x, p.y])))[0] if len(p) else []:
            c = self._px([p.x[i], p.y[i]])[0]
            pygame.draw.circle(s, PED_RGB, c, max(3, 0.35 * self.ppm))
            pygame.draw.circle(s, (20, 20, 20), c, max(3, 0.35 * self.ppm), 1)
            if layers.ids:
                labels.append((f"#{p.id[i]}", np.array([p.x[i] + 0.4, p.y[i] + 0.4])))
        for text, xy in labels:
            img = self.small.render(text, True, (255, 255, 255), (0, 0, 0))
            s.blit(img, self._px(xy)[0] + (2, -img.get_height()))

    def _props(self, world) -> None:
        s = self.surface
        for q in self.geometry.props:
            c = self._px([q.x, q.y])[0]
            if not MAP_RECT.collidepoint(c):
                continue
            if q.kind == "traffic_light":
                pygame.draw.rect(s, (0, 0, 0), pygame.Rect(c[0] - 7, c[1] - 7, 14, 14))
                pygame.draw.circle(s, LIGHT_RGB[world.light_state(q.junction, q.signal_group)], c, 5)
            elif q.kind == "stop_sign":
                ang = np.pi / 8 + np.arange(8) * np.pi / 4
                octagon = (c + 6 * np.column_stack([np.cos(ang), np.sin(ang)])).tolist()
                pygame.draw.polygon(s, (210, 20, 30), octagon)
                pygame.draw.polygon(s, (255, 255, 255), octagon, 1)
            else:
                pygame.draw.circle(s, (130, 130, 130), c, 3)

    def _banner(self, world) -> None:
        recent = [e for e in world.criteria.events
                  if world.t - e.t <= EVENT_BANNER_S and e.kind.value != "goal_reached"]
        y = MAP_RECT.top + 8
        for e in recent[-3:]:
            img = self.big.render(_event_text(e).upper(), True, (255, 255, 255))
            box = img.get_rect(midtop=(MAP_RECT.centerx, y)).inflate(16, 8)
            pygame.draw.rect(self.surface, (200, 30, 30) if is_penalised(e) else (60, 60, 160), box)
            self.surface.blit(img, img.get_rect(center=box.center))
            y = box.bottom + 4

    def _scale_bar(self) -> None:
        s, k = self.surface, self.ppm
        metres = next(m for m in (5, 10, 20, 50, 100, 200, 500) if m * k >= 60)
        x0, y0 = MAP_RECT.left + 12, MAP_RECT.bottom - 14
        pygame.draw.line(s, TEXT, (x0, y0), (x0 + metres * k, y0), 3)
        s.blit(self.small.render(f"{metres} m, north up", True, TEXT), (x0, y0 - 16))

    # ---- camera, lidar, radar ---------------------------------------------------------------------
    def _blit_array(self, arr: np.ndarray, rect: pygame.Rect) -> None:
        img = pygame.image.frombuffer(np.ascontiguousarray(arr).tobytes(), (arr.shape[1], arr.shape[0]), "RGB")
        self.surface.blit(pygame.transform.smoothscale(img, rect.size), rect.topleft)

    def _placeholder(self, rect: pygame.Rect, text: str) -> None:
        img = self.font.render(text, True, DIM)
        self.surface.blit(img, img.get_rect(center=rect.center))

    def _camera(self, cam, overlay: Overlay, layers: Layers) -> None:
        from sim.sensors import render as R

        if cam is None:
            return self._placeholder(CAM_RECT, "no camera")
        if not layers.detections:
            self._blit_array(R.camera_boxes(cam, scale=2), CAM_RECT)
            caption = "ground-truth boxes  [D] detector"
        else:
            self._blit_array(np.asarray(cam.image), CAM_RECT)
            sx, sy = CAM_RECT.width / cam.image.shape[1], CAM_RECT.height / cam.image.shape[0]
            for d in overlay.detections or []:
                box = pygame.Rect(CAM_RECT.left + d.x1 * sx, CAM_RECT.top + d.y1 * sy, (d.x2 - d.x1) * sx,
                                  (d.y2 - d.y1) * sy)
                pygame.draw.rect(self.surface, (255, 230, 0), box, 2)
                text = d.label + ("" if d.score is None else f" {d.score:.2f}") + (
                    "" if d.track_id is None else f" #{d.track_id}")
                img = self.small.render(text, True, (0, 0, 0), (255, 230, 0))
                self.surface.blit(img, (box.left, max(CAM_RECT.top, box.top - img.get_height())))
            caption = ("agent exposes no detector" if overlay.detections is None
                       else f"detector boxes ({len(overlay.detections)})") + "  [D] ground truth"
        img = self.small.render(caption, True, TEXT, (0, 0, 0))
        self.surface.blit(img, (CAM_RECT.left + 4, CAM_RECT.bottom - img.get_height() - 3))

    def _bev(self, frames: Frames) -> None:
        from sim.sensors import render as R

        if frames.lidar is None:
            self._placeholder(LIDAR_RECT, "no lidar")
        else:
            self._blit_array(R.lidar_bev(frames.lidar, size=400, extent=40.0), LIDAR_RECT)
        if frames.radar is None:
            self._placeholder(RADAR_RECT, "no radar")
        else:
            self._blit_array(R.radar_bev(frames.radar, frames.lidar, size=400, extent=60.0), RADAR_RECT)

    # ---- HUD -------------------------------------------------------------------------------------------
    def _hud(self, world, overlay: Overlay, score: Score, hud: Hud) -> None:
        s = self.surface
        v = float(world.vehicles.v[0])
        limit = float(np.interp(world.S, world.route.s, world.route.speed_limit))
        infractions = [e for e in world.criteria.events if e.kind.value != "goal_reached"]
        lines = [
            (f"speed {v:4.1f} m/s ({v * 3.6:3.0f} km/h)   limit {limit * 3.6:.0f} km/h   "
             f"command {world.command.value}", TEXT),
            (f"behaviour {overlay.behaviour or '–'}" + ("   controller: FALLBACK" if overlay.fallback else ""),
             TEXT),
            (f"score {score.driving_score:5.1f} = 100 × completion {score.completion:.3f} "
             f"× penalty {score.penalty:.2f}", TEXT),
            ("infractions: " + ("; ".join(_event_text(e, with_time=True) for e in infractions[-3:]) or "none"),
             (255, 120, 120) if any(is_penalised(e) for e in infractions) else TEXT),
            *[(line, TEXT) for line in hud.extra],
        ]
        x, y = HUD_RECT.left + 10, HUD_RECT.top + 8
        title = self.font.render(hud.title, True, (120, 200, 255))
        s.blit(title, (x, y))
        right = self.font.render(f"t {world.t:6.1f} s" + (f"   {hud.status}" if hud.status else ""), True,
                                 (255, 220, 80) if hud.status else TEXT)
        s.blit(right, (HUD_RECT.right - right.get_width() - 10, y))
        y += 24
        for text, colour in lines:
            s.blit(self.font.render(text, True, colour), (x, y))
            y += 20
        if hud.keys:
            img = self.small.render(hud.keys, True, DIM)
            s.blit(img, (x, HUD_RECT.bottom - img.get_height() - 6))


def _boxes(shapes: list[np.ndarray]) -> np.ndarray:
    """Bounding boxes (x0, y0, x1, y1) of polylines, for culling."""
    return np.array([[*p.min(axis=0), *p.max(axis=0)] for p in shapes]).reshape(-1, 4)


def _event_text(e, with_time: bool = False) -> str:
    text = e.kind.value.replace("_", " ")
    if e.other_id is not None:
        text += f" #{e.other_id}"
    if e.kind.value.startswith("collision"):
        text += " (at fault)" if e.at_fault else " (not at fault)"
    return f"{e.t:.1f} s {text}" if with_time else text


class EpisodeView:
    """The view of an episode run by `drivestack.runner.run_episode`: pass `agent` (the wrapped
    agent) to the runner and `tick` as its `on_tick`; `draw()` / `frame()` give the current picture."""

    def __init__(self, agent, title: str = "", layers: Layers | None = None, keys: str = "") -> None:
        self.agent = TapAgent(agent)
        self.sensors = DisplaySensors()
        self.layers = layers or Layers()
        self.hud = Hud(title, keys=keys)
        self.composer: Composer | None = None
        self.world = None

    def tick(self, world) -> None:
        self.world = world
        if self.composer is None or self.composer.geometry_map is not world.map:
            ppm = self.composer.ppm if self.composer is not None else 7.0
            self.composer = Composer(world.map, ppm)

    def draw(self, status: str = "") -> pygame.Surface:
        obs = self.agent.obs
        frames = self.sensors.frames(self.world, getattr(obs, "sensors", None))
        self.hud.status = status
        return self.composer.draw(self.world, frames, agent_overlay(self.agent.agent), self.layers, self.hud)

    def frame(self, status: str = "") -> np.ndarray:
        self.draw(status)
        return self.composer.array()
