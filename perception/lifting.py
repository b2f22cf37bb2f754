"""2D detections → 3D positions in the vehicle frame, from lidar points in each box's frustum,
falling back on radar range, then on the flat ground under the box. Radar adds radial velocity.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist

from perception.detector import Detection
from sim.sensors.calibration import CameraCalib, ImagePoints, RadarCalib, project_to_camera, transform

GROUND_Z = 0.3  # lidar points lower than this [m] are road, not object
TOP_Z = 2.2  # ... and higher ones are canopies and walls, not cars [m]
MIN_POINTS = 3
BARE_GROUND_POINTS = 20  # lidar returns inside a box, all of them road: the lidar sees bare ground there
SHRINK = 0.15  # keep the inner part of the box: edges bleed into the background
# depth spread of one object's visible surface [m], and how far its centre lies behind that surface [m]
EXTENT = {"car": 3.0, "pedestrian": 1.0}
CENTRE_BEHIND = {"car": 1.2, "pedestrian": 0.15}
CAR_LENGTH, CAR_WIDTH = 4.6, 1.9  # a typical car [m]: seen from behind its centre is L/2 away, from the side W/2
RADAR_GATE_M = 2.5
EDGE_PX = 2.0  # a box this close to the image's side is cut by it
# a box this close to the image's side is cut by it if the lidar shows its object going on beyond that
# side: points past the side within CUT_LINK_M of the box's visible surface
CUT_NEAR_PX = 8.0
CUT_LINK_M = 1.0
CORNER_MAX_SIN = 0.5  # the far-corner fit of a cut car holds within 30° of parallel to the ego, or of square to it
# a cut car's outline: its points chain by hops this short [m] (close up, a car's lidar points lie
# centimetres apart; cars parked in a row, a metre or more) ...
OUTLINE_LINK_M = 0.5
# ... and all lie this close to each of its seen points [m]: the biggest car's diagonal (sim.world's
# CAR_SIZES run from 4.2 × 1.8 m to a 5.2 × 2.1 m van)
OUTLINE_MAX_M = 5.6
BIGGEST_CAR = np.array([5.2, 2.1])  # [m]
OUTLINE_CELL_M = 0.1  # the outline keeps one point per cell this size [m]
OUTLINE_SLACK_M = 0.3  # an outline longer or wider than the biggest car by more than this is not one car [m]
OUTLINE_MIN_ACROSS_M = 0.5  # ... nor one thinner than this across [m]
# beyond this [m] a car's lidar rings lie as far apart as walls and other cars: on test frames, cut
# cars within 15 m were placed within 0.3 m by their outline (far corner: up to 3.8 m), beyond it
# walls and neighbours joined the outline and put them 1.8–3.3 m off
OUTLINE_RANGE_M = 15.0
YAW_STEP_DEG = 1.0  # the L-shape fit's search step
SPAN_SEEN = 0.8  # an outline spanning this much of a car's size along an axis shows both its ends


@dataclass(frozen=True)
class Detection3D:
    det: Detection
    x: float  # vehicle frame [m]: forward
    y: float  # left
    z: float  # up
    source: str  # "lidar" | "radar" | "ground"
    points: int  # lidar points used
    range_rate: float | None = None  # relative radial velocity from radar [m/s], + receding
    ray: tuple[float, float] | None = None  # unit vector (vehicle frame, planar) the range rate is along

    @property
    def range(self) -> float:
        return float(np.hypot(self.x, self.y))


@dataclass(frozen=True)
class RadarReturns:
    """Radar returns in the vehicle frame, projected into the camera once per frame."""

    xy: np.ndarray  # N×2 [m]
    range_rate: np.ndarray  # N [m/s]
    u: np.ndarray  # N image column [px], NaN outside the image
    ray: np.ndarray  # N×2 unit vectors from the radar to each return: the direction its range rate is along

    @staticmethod
    def build(ranges: np.ndarray, azimuths: np.ndarray, range_rate: np.ndarray, radar: RadarCalib,
              camera: CameraCalib) -> "RadarReturns":
        p = np.stack([ranges * np.cos(azimuths), ranges * np.sin(azimuths), np.full_like(ranges, 0.5)], axis=1)
        pv = transform(radar.T_vehicle_radar, p)
        uv, z = camera.project(pv)
        inside = (z > 0.1) & (uv[:, 0] >= 0) & (uv[:, 0] < camera.width)
        ray = pv[:, :2] - radar.T_vehicle_radar[:2, 3]
        ray /= np.maximum(np.hypot(*ray.T), 1e-9)[:, None]
        return RadarReturns(pv[:, :2], np.asarray(range_rate, dtype=float), np.where(inside, uv[:, 0], np.nan), ray)


def _ray_point(camera: CameraCalib, u: float, v: float, dist: float) -> np.ndarray:
    """The vehicle-frame point on the pixel's ray at horizontal distance `dist` from the camera."""
    d_cam = np.array([(u - camera.cx) / camera.fx, (v - camera.cy) / camera.fy, 1.0])
    R, o = camera.T_vehicle_camera[:3, :3], camera.T_vehicle_camera[:3, 3]
    d = R @ d_cam
    return o + d * dist / max(np.hypot(d[0], d[1]), 1e-9)


def _ground_point(camera: CameraCalib, u: float, v: float) -> np.ndarray | None:
    d = camera.T_vehicle_camera[:3, :3] @ np.array([(u - camera.cx) / camera.fx, (v - camera.cy) / camera.fy, 1.0])
    o = camera.T_vehicle_camera[:3, 3]
    if d[2] >= -1e-6:
        return None  # the box's bottom is at or above the horizon
    return o + d * (-o[2] / d[2])


def lift(dets: list[Detection], lidar_vehicle: np.ndarray, camera: CameraCalib,
         radar: RadarReturns | None = None,
         heading: Callable[[float, float], float | None] | None = None, outline: bool = True,
         proj: ImagePoints | None = None) -> list[Detection3D]:
    """One Detection3D per detection that can be placed: not a light with no lidar and no radar,
    nor a car or walker box where the lidar sees only road.

    `heading(x, y)` is the heading a car at that vehicle-frame point would have (its lane's), or
    None if unknown. With it, a car is placed by fitting its footprint to the visible surface.
    `outline`: a car cut by the image's side is fitted to its whole lidar outline where that works;
    without it, from its far corner (with a heading) or pushed along the ray.
    `proj`: `project_to_camera(lidar_vehicle, camera)`, where the caller has made it already.
    """
    pts = np.asarray(lidar_vehicle, dtype=float).reshape(-1, 3)
    proj = project_to_camera(pts, camera) if proj is None else proj
    xyz = pts[proj.index]
    u, v, depth = proj.uv[:, 0], proj.uv[:, 1], proj.depth
    near_side = any(d.x1 <= CUT_NEAR_PX or d.x2 >= camera.width - CUT_NEAR_PX for d in dets if d.cls == "car")
    beyond = _beyond_sides(pts, camera) if near_side else None
    out = []
    for det in dets:
        w, h = det.x2 - det.x1, det.y2 - det.y1
        inside = ((u >= det.x1 + SHRINK * w) & (u <= det.x2 - SHRINK * w) & (v >= det.y1 + SHRINK * h)
                  & (v <= det.y2 - SHRINK * h))
        covered = np.count_nonzero(inside)
        if det.cls in EXTENT:
            inside &= xyz[:, 2] > GROUND_Z
        lifted = None
        n_obj = np.count_nonzero(inside)
        if det.cls in EXTENT and covered >= BARE_GROUND_POINTS and n_obj < MIN_POINTS:
            continue  # rays through its silhouette met the road: a car or walker there would have returned them
        if n_obj >= MIN_POINTS:
            d = depth[inside]
            near = d <= np.percentile(d, 20) + EXTENT.get(det.cls, 1.0)
            surface = xyz[inside][near]
            p = np.median(surface, axis=0)
            yaw = heading(float(p[0]), float(p[1])) if heading is not None and det.cls == "car" else None
            side = _cut_side(det, camera, surface[:, :2], beyond) if det.cls == "car" else None
            centre = None
            if side is not None and outline:
                # the rest of the car: in its box (its margins and the depth band left parts out) and past the side
                box = (u >= det.x1) & (u <= det.x2) & (v >= det.y1) & (v <= det.y2)
                candidates = np.vstack([xyz[box], beyond[side]])
                body = candidates[(candidates[:, 2] > GROUND_Z) & (candidates[:, 2] < TOP_Z), :2]
                centre = _fit_outline(_outline(surface[:, :2], body), yaw)
            if centre is not None:
                p[:2] = centre
            elif yaw is None:
                p = _behind(p, camera, _centre_behind(det, float(np.median(d[near])), camera))
            else:
                edge = _side_ray(det, camera, side) if side is not None else None
                p[:2] = fit_car(surface[:, :2], yaw, camera.T_vehicle_camera[:2, 3], edge)
            lifted = p, "lidar", int(np.count_nonzero(near))
        elif radar is not None and len(radar.xy):
            cols = np.nonzero((radar.u >= det.x1) & (radar.u <= det.x2))[0]
            if len(cols):
                k = cols[np.argmin(np.hypot(*radar.xy[cols].T))]
                dist = float(np.hypot(*(radar.xy[k] - camera.T_vehicle_camera[:2, 3])))
                p = _ray_point(camera, (det.x1 + det.x2) / 2, (det.y1 + det.y2) / 2, dist)
                lifted = _behind(p, camera, _centre_behind(det, dist, camera)), "radar", 0
        if lifted is None and det.cls in EXTENT:
            g = _ground_point(camera, (det.x1 + det.x2) / 2, det.y2)
            if g is not None:
                lifted = _behind(g, camera, CENTRE_BEHIND[det.cls]), "ground", 0
        if lifted is None:
            continue
        p, source, n = lifted
        rr, ray = _range_rate(det, p, radar)
        out.append(Detection3D(det, float(p[0]), float(p[1]), float(p[2]), source, n, rr, ray))
    return out


def drop_duplicate_cars(lifted: list[Detection3D]) -> list[Detection3D]:
    """The lifted detections less every car placed within a car's width of a better-scored car.

    Two cars' centres are never that close, so such a pair is one car boxed twice: an NMS-free
    head (YOLO26) can box a car whole and again its front, at IoU under the NMS threshold, and
    the second box, lifted elsewhere on the car, would become a ghost track moving into the
    ego's path."""
    cars = sorted((d for d in lifted if d.det.cls == "car"), key=lambda d: -d.det.score)
    kept: list[Detection3D] = []
    for d in cars:
        if all(np.hypot(d.x - k.x, d.y - k.y) >= CAR_WIDTH for k in kept):
            kept.append(d)
    keep = {id(d) for d in kept}
    return [d for d in lifted if d.det.cls != "car" or id(d) in keep]


def _centre_behind(det: Detection, depth: float, camera: CameraCalib) -> float:
    """How far behind its visible surface an object's centre lies. For a car this depends on the
    view: its apparent width tells a rear view (≈ W wide, centre L/2 behind) from a side view."""
    if det.cls != "car":
        return CENTRE_BEHIND.get(det.cls, 0.0)
    seen_width = (det.x2 - det.x1) * depth / camera.fx
    side = np.clip((seen_width - CAR_WIDTH) / (CAR_LENGTH - CAR_WIDTH), 0.0, 1.0)
    return float((1 - side) * CAR_LENGTH / 2 + side * CAR_WIDTH / 2)


def fit_car(surface: np.ndarray, yaw: float, eye: np.ndarray, edge_ray: np.ndarray | None = None,
            whole: bool = False) -> np.ndarray:
    """The centre of a car of known heading whose visible surface is `surface` (N×2, vehicle frame).

    Along each of the car's axes the sensor sees the near face, so the centre is half the car's size
    beyond it; where the sensor is level with the points along an axis, it sees across the car and
    the centre is their middle. Pushing along the viewing ray instead misplaces a car seen
    obliquely (a kerbside car close ahead) by more than half a metre sideways.

    A car cut by the image's side shows only its far part, so the middle of its points lies beyond
    its centre. `edge_ray` (planar direction of the box's uncut side) then finds the far corner
    where it meets the face seen whole, and the centre is half the car's size back from it along
    the cut axis. For a car about parallel to the ego the cut axis is its length and the face seen
    whole its flank; for a car crossing ahead, its width and its near end. In between (30°–60°
    off), neither holds and the plain fit stands.

    `whole`: the points are the car's whole lidar outline, one connected group, so its extremes are
    the car's faces (percentiles lie inside them by a share of the car's length that depends on
    how the points are spread). Along an axis where they span most of the car (SPAN_SEEN), both
    its ends are seen and the centre is their middle.
    """
    axes = np.array([[np.cos(yaw), np.sin(yaw)], [-np.sin(yaw), np.cos(yaw)]])
    along = surface @ axes.T  # N×2: (longitudinal, lateral) coordinates
    lo, hi = (along.min(axis=0), along.max(axis=0)) if whole else np.percentile(along, [5, 95], axis=0)
    e = axes @ eye
    half = np.array([CAR_LENGTH, CAR_WIDTH]) / 2
    centre = np.where(e < lo, lo + half, np.where(e > hi, hi - half, (lo + hi) / 2))
    if whole:
        centre = np.where(hi - lo >= SPAN_SEEN * 2 * half, (lo + hi) / 2, centre)
    if edge_ray is None:
        return axes.T @ centre
    cut = 0 if abs(np.sin(yaw)) < CORNER_MAX_SIN else 1 if abs(np.cos(yaw)) < CORNER_MAX_SIN else None
    if cut is not None and (e[1 - cut] < lo[1 - cut] or e[1 - cut] > hi[1 - cut]):
        whole = 1 - cut
        face = lo[whole] if e[whole] < lo[whole] else hi[whole]
        r = axes @ edge_ray
        t = (face - e[whole]) / r[whole] if abs(r[whole]) > 1e-6 else -1.0
        if t > 0:
            corner = e[cut] + t * r[cut]
            centre[cut] = corner - np.sign(corner - e[cut]) * half[cut]
    return axes.T @ centre


def _beyond_sides(pts: np.ndarray, camera: CameraCalib) -> dict[str, np.ndarray]:
    """The above-ground lidar points (N×3) past the image's left and right sides (behind the
    camera's plane included)."""
    solid = pts[pts[:, 2] > GROUND_Z]
    pc = transform(camera.T_camera_vehicle, solid)
    ahead = pc[:, 2] > 0.1
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.where(ahead, camera.fx * pc[:, 0] / pc[:, 2] + camera.cx, np.where(pc[:, 0] < 0, -np.inf, np.inf))
    return {"left": solid[u < 0], "right": solid[u >= camera.width]}


def _runs_on(surface: np.ndarray, beyond: np.ndarray) -> bool:
    """Whether at least MIN_POINTS of `beyond` lie within CUT_LINK_M of the visible surface."""
    lo, hi = surface.min(axis=0) - CUT_LINK_M, surface.max(axis=0) + CUT_LINK_M
    near = beyond[np.all((beyond >= lo) & (beyond <= hi), axis=1)]
    if len(near) < MIN_POINTS:
        return False
    return int(np.count_nonzero(cKDTree(surface).query(near, distance_upper_bound=CUT_LINK_M)[0] < np.inf)) >= MIN_POINTS


def _cut_side(det: Detection, camera: CameraCalib, surface: np.ndarray,
              beyond: dict[str, np.ndarray] | None) -> str | None:
    """"left" or "right" when that side of the image cuts the box, else None.

    A detector's box of a cut car may stop a few pixels short of the side; then the lidar decides:
    the car is cut if MIN_POINTS of its points go on past that side."""
    beyond = beyond or {}
    for side, gap in (("left", det.x1), ("right", camera.width - det.x2)):
        if gap <= EDGE_PX or (gap <= CUT_NEAR_PX and side in beyond and _runs_on(surface, beyond[side][:, :2])):
            return side
    return None


def _side_ray(det: Detection, camera: CameraCalib, side: str) -> np.ndarray:
    """The planar ray through the box's inner side, the one the image's `side` does not cut."""
    d = _ray_point(camera, det.x2 if side == "left" else det.x1, camera.cy, 1.0)[:2] - camera.T_vehicle_camera[:2, 3]
    return d / np.hypot(*d)


def _outline(surface: np.ndarray, candidates: np.ndarray) -> np.ndarray | None:
    """A cut car's whole lidar outline (planar): its visible surface and the candidate points that
    chain to it by hops of at most OUTLINE_LINK_M and lie within OUTLINE_MAX_M of every surface
    point. None if that adds too little to the surface, or the car is beyond OUTLINE_RANGE_M.

    Close up a car returns thousands of points centimetres apart; one per OUTLINE_CELL_M cell keeps
    its shape and the chaining cheap (about 100 ms a frame without)."""
    if np.median(np.hypot(*surface.T)) > OUTLINE_RANGE_M:
        return None
    near = candidates[np.all(candidates >= surface.min(axis=0) - OUTLINE_MAX_M, axis=1)
                      & np.all(candidates <= surface.max(axis=0) + OUTLINE_MAX_M, axis=1)]
    surface, near = _thin(surface), _thin(near)
    if len(near):
        near = near[cdist(near, surface).max(axis=1) <= OUTLINE_MAX_M]
    if len(near) < MIN_POINTS:
        return None
    both = np.vstack([surface, near])
    _, label = components(cKDTree(both).query_pairs(OUTLINE_LINK_M, output_type="ndarray"), len(both))
    rest = near[np.isin(label[len(surface):], label[:len(surface)])]
    return np.vstack([surface, rest]) if len(rest) >= MIN_POINTS else None


def _thin(points: np.ndarray) -> np.ndarray:
    """One point (a real one, not a cell centre) per OUTLINE_CELL_M cell, in the input's order.
    Cells are packed into one integer: a 1-D np.unique is several times faster than axis=0's."""
    ij = np.floor(points / OUTLINE_CELL_M).astype(np.int64) + (1 << 20)
    _, first = np.unique(ij[:, 0] << 21 | ij[:, 1], return_index=True)
    return points[np.sort(first)]


def _fit_outline(whole: np.ndarray | None, yaw: float | None) -> np.ndarray | None:
    """The centre of the car whose whole outline this is, seen from the lidar (at the origin), of
    the lane's heading `yaw` or, with none, the outline's own; None if the outline is no car's
    shape: bigger than the biggest car (other cars or walls chained in), or a line (a wall: within
    OUTLINE_RANGE_M the lidar, 1.9 m up, sees a car's roof or two of its faces)."""
    if whole is None:
        return None
    yaw = outline_yaw(whole) if yaw is None else yaw
    axes = np.array([[np.cos(yaw), np.sin(yaw)], [-np.sin(yaw), np.cos(yaw)]])
    extent = np.ptp(whole @ axes.T, axis=0)
    if np.any(extent > BIGGEST_CAR + OUTLINE_SLACK_M) or extent.min() < OUTLINE_MIN_ACROSS_M:
        return None
    return fit_car(whole, yaw, np.zeros(2), whole=True)


def outline_yaw(points: np.ndarray) -> float:
    """The heading of a car from its lidar outline (N×2), modulo π: L-shape fitting by the closeness
    criterion (Zhang et al., 2017). The minimum-area rectangle ties on an L of two faces; closeness
    rewards the rectangle whose sides the points hug. Of its two axes, the car's width is the one
    whose extent is nearer CAR_WIDTH: that holds for a rear face alone and for a short L."""
    theta = np.radians(np.arange(0.0, 90.0, YAW_STEP_DEG))
    e = np.stack([np.cos(theta), np.sin(theta)])  # 2×K
    c1, c2 = points @ e, points @ np.stack([-e[1], e[0]])  # N×K
    d1 = np.minimum(c1.max(axis=0) - c1, c1 - c1.min(axis=0))
    d2 = np.minimum(c2.max(axis=0) - c2, c2 - c2.min(axis=0))
    score = (1.0 / np.maximum(np.minimum(d1, d2), 0.01)).sum(axis=0)
    k = int(np.argmax(score))
    extent = np.array([np.ptp(c1[:, k]), np.ptp(c2[:, k])])
    along_second = abs(extent[0] - CAR_WIDTH) < abs(extent[1] - CAR_WIDTH)
    return float(theta[k] + (np.pi / 2 if along_second else 0.0))


def components(pairs: np.ndarray, n: int) -> tuple[int, np.ndarray]:
    """Connected components of n nodes linked by `pairs` (K×2): (count, label per node)."""
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)


def _behind(p: np.ndarray, camera: CameraCalib, offset: float) -> np.ndarray:
    """Push a visible-surface point back along the horizontal viewing ray to the object's centre."""
    o = camera.T_vehicle_camera[:3, 3]
    d = p[:2] - o[:2]
    n = np.hypot(*d)
    q = p.copy()
    if n > 1e-6:
        q[:2] += d / n * offset
    return q


def _range_rate(det: Detection, p: np.ndarray, radar: RadarReturns | None) -> tuple[float | None, tuple | None]:
    if radar is None or not len(radar.xy):
        return None, None
    r = np.hypot(*radar.xy.T)
    ok = (radar.u >= det.x1) & (radar.u <= det.x2) & (np.abs(r - np.hypot(p[0], p[1])) < RADAR_GATE_M)
    if not ok.any():
        return None, None
    # The median return, with its own ray. Close up a car spans tens of degrees, and its returns'
    # range rates differ by direction alone: one return's rate paired with another's ray reads the
    # ego's own speed as the car's (a standing car gained ~1 m/s at 8 m).
    k = np.nonzero(ok)[0]
    m = k[np.argsort(radar.range_rate[k], kind="stable")[(len(k) - 1) // 2]]
    return float(radar.range_rate[m]), (float(radar.ray[m, 0]), float(radar.ray[m, 1]))
