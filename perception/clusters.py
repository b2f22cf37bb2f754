"""Cars the camera cannot see, from lidar alone: the modular stack's rear and side view.

The detector sees the camera's 90° ahead; radar looks ahead too. A car closing in from behind
matters the moment the planner wants to leave its lane (nudging around a parked car), and the
lidar covers 360°. So does a parked car the ego is squeezing past: within a few metres it is cut
by the image's edge and the detector loses it (parked_car_blocking seed 4: the track died, the
plan went back to the lane centre, into the car). Its non-ground points outside the camera's
view or within NEAR_M of the camera, on the road, are grouped
(points closer than a range-dependent link are one object), and every group big enough to be a
car becomes a car measurement for the tracker, which gives it a velocity over the following ticks.
A group on a lane is placed by fitting a car of the lane's heading to it, as lifting does: close
beside the ego the lidar sees across the roof, so the middle of the points is already the car's
middle, and pushing it farther along the ray put a kerbside car off the road, where it was dropped
(parked_car_blocking seed 3: the ego, beside the car, lost it and steered back into it).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist

from perception.lifting import components, fit_car
from sim.map import RoadMap
from sim.sensors.calibration import CameraCalib

GROUND_Z, TOP_Z = 0.3, 2.2  # car bodies, not road nor canopies [m]
# points closer than max(LINK_M, LINK_PER_M × range) belong to one object [m]: on a hood seen from
# behind, consecutive rings land 1.7 m apart at 15 m and farther apart beyond
LINK_M, LINK_PER_M = 2.0, 0.13
MAX_RANGE_M = 40.0
MIN_POINTS = 8
CAR_GATE_M = 4.0  # a car group this close to a car the camera placed is that car [m]
MIN_EXTENT_M = 1.2  # a car from any side is at least this long in its longest visible direction [m]
MAX_EXTENT_M = 7.0  # longer groups are walls and hedges
CENTRE_BEHIND_M = 1.0  # a car's centre lies about this far beyond its visible surface [m]
OVERLAP_DEG = 5.0  # groups this far inside the camera's edge are left to the camera ...
NEAR_M = 10.0  # ... unless this close: a car cut by the image's edge beside the bumper is missed
EGO_HALF = (2.6, 1.2)  # the ego's own body in the vehicle frame [m]
CELL_M = 0.25  # points are thinned to one per cell of this size [m]
ROAD_MARGIN_M = 1.5  # cells this far off the drivable area still count: a kerbside car's far side


def unseen_cars(points: np.ndarray, camera: CameraCalib, T_world_vehicle: np.ndarray, road_map: RoadMap,
                heading: Callable[[float, float], float | None] | None = None) -> np.ndarray:
    """World-frame (K×2) centres of car-sized lidar groups outside the camera's view (or close to
    the bumper), on the road.

    `points`: lidar points in the vehicle frame (N×3), seen from the lidar at the frame's origin.
    A group within CAR_GATE_M of a car the camera placed is that car (`outside_gate`): the
    caller gates, so this can run while the network does. `heading(x, y)`: the vehicle-frame heading of the
    lane under a vehicle-frame point, or None; without one a group's centre is pushed along the ray."""
    p = np.asarray(points, dtype=float).reshape(-1, 3)
    R, t = T_world_vehicle[:2, :2], T_world_vehicle[:2, 3]  # planar vehicle → world
    keep = _beside_camera(p, camera, MAX_RANGE_M, NEAR_M)
    # one point per 0.25 m cell, and only cells on or by the road: walls and hedges would otherwise
    # give the grouping tens of thousands of points (and millions of pairs) in a dense town
    p, _, count = _cells(p[keep, :2])
    near_road = road_map.near_drivable(p @ R.T + t, ROAD_MARGIN_M) if len(p) else np.zeros(0, bool)
    p, count = p[near_road], count[near_road]
    if count.sum() < MIN_POINTS:
        return np.zeros((0, 2))
    pairs = cKDTree(p).query_pairs(max(LINK_M, LINK_PER_M * MAX_RANGE_M), output_type="ndarray")
    rng = np.hypot(p[:, 0], p[:, 1])
    gap = np.hypot(*(p[pairs[:, 0]] - p[pairs[:, 1]]).T)
    pairs = pairs[gap < np.maximum(LINK_M, LINK_PER_M * np.minimum(rng[pairs[:, 0]], rng[pairs[:, 1]]))]
    n, label = components(pairs, len(p))
    counts = np.bincount(label, weights=count, minlength=n)
    centres = []
    for k in np.nonzero(counts >= MIN_POINTS)[0]:
        g = p[label == k]
        extent = float(np.ptp(g, axis=0).max())
        if not MIN_EXTENT_M <= extent <= MAX_EXTENT_M:
            continue
        c = np.average(g, axis=0, weights=count[label == k])
        yaw = heading(float(c[0]), float(c[1])) if heading is not None else None
        if yaw is None:
            centres.append(c + CENTRE_BEHIND_M * c / max(np.hypot(*c), 1e-9))  # from the surface to the middle
        else:
            centres.append(fit_car(g, yaw, np.zeros(2)))
    if not centres:
        return np.zeros((0, 2))
    xy = np.asarray(centres) @ R.T + t
    return xy[road_map.is_drivable(xy)]  # the middle too, not just some of its points


PED_RANGE_M = 15.0  # walkers farther out than this are the camera's [m]
PED_LINK_M = 0.5  # a walker's points lie this close together; a walker beside a car is its own group [m]
PED_MAX_EXTENT_M = 1.0
PED_MIN_TOP_M = 1.0  # a walker reaches at least this high [m]; car fragments mostly do too, hence the car gate
PED_NEAR_CAR_M = 1.0  # a small group this close to a car-sized one is a piece of that car
PED_POLE_M = 1.0  # … and this close to a mapped sign or signal post, that post
WALKER_GATE_M = 1.5  # … and this close to a walker the camera placed, that walker


def unseen_pedestrians(points: np.ndarray, camera: CameraCalib, T_world_vehicle: np.ndarray,
                       road_map: RoadMap) -> np.ndarray:
    """World-frame (K×2) positions of walker-sized lidar groups on the road beside the camera's view;
    the caller drops those within WALKER_GATE_M of a walker the camera placed (`outside_gate`).

    A walker crossing close in front of a car stopped at a junction stands outside the camera's 90°
    until it is in front of the bumper, its feet below the image (t_junction_left seed 4: the camera
    never saw the walker the ego then crept into). The lidar sees it all along."""
    p = np.asarray(points, dtype=float).reshape(-1, 3)
    R, t = T_world_vehicle[:2, :2], T_world_vehicle[:2, 3]
    q = p[_beside_camera(p, camera, PED_RANGE_M, NEAR_M / 2)]
    c, inverse, count = _cells(q[:, :2])
    top = np.full(len(c), -np.inf)
    np.maximum.at(top, inverse, q[:, 2])
    on_road = road_map.is_drivable(c @ R.T + t) if len(c) else np.zeros(0, bool)
    c, count, top = c[on_road], count[on_road], top[on_road]
    if count.sum() < MIN_POINTS:
        return np.zeros((0, 2))
    pairs = cKDTree(c).query_pairs(PED_LINK_M, output_type="ndarray")
    n, label = components(pairs, len(c))
    extent = np.array([np.ptp(c[label == k], axis=0).max() for k in range(n)])
    big = c[extent[label] > PED_MAX_EXTENT_M]  # cells of car-sized groups
    out = []
    for k in np.nonzero(np.bincount(label, weights=count, minlength=n) >= MIN_POINTS)[0]:
        g = label == k
        if extent[k] > PED_MAX_EXTENT_M or top[g].max() < PED_MIN_TOP_M:
            continue
        centre = np.average(c[g], axis=0, weights=count[g])
        if len(big) and np.hypot(*(big - centre).T).min() < PED_NEAR_CAR_M + extent[k] / 2:
            continue
        out.append(centre)
    if not out:
        return np.zeros((0, 2))
    xy = np.asarray(out) @ R.T + t
    poles = np.array([(q.x, q.y) for q in road_map.props]).reshape(-1, 2)  # the map's sign and signal posts
    return outside_gate(xy, poles, PED_POLE_M)


def outside_gate(xy: np.ndarray, others: np.ndarray, gate_m: float) -> np.ndarray:
    """The points of `xy` (K×2) at least `gate_m` from every point of `others` (M×2)."""
    if not len(others) or not len(xy):
        return xy
    return xy[cdist(xy, np.asarray(others)).min(axis=1) >= gate_m]


def _beside_camera(p: np.ndarray, camera: CameraCalib, max_range: float, near: float) -> np.ndarray:
    """Body-height points (N×3, vehicle frame) within `max_range` of the camera, not on the ego, and
    outside the camera's view (its half-angle less OVERLAP_DEG) or within `near` of it."""
    keep = (p[:, 2] > GROUND_Z) & (p[:, 2] < TOP_Z)
    keep &= (np.abs(p[:, 0]) > EGO_HALF[0]) | (np.abs(p[:, 1]) > EGO_HALF[1])
    idx = np.flatnonzero(keep)  # most points are road: the angles only for the rest
    rel = p[idx, :2] - camera.T_vehicle_camera[:2, 3]
    dist = np.hypot(rel[:, 0], rel[:, 1])
    half_fov = np.arctan2(camera.cx, camera.fx) - np.radians(OVERLAP_DEG)
    beside = (np.abs(np.arctan2(rel[:, 1], rel[:, 0])) > half_fov) | (dist < near)
    keep[idx] = (dist < max_range) & beside
    return keep


CELL_SPAN = 1 << 21  # cell indices are offset into [0, CELL_SPAN) to pack a cell into one integer


def _cells(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The CELL_M cells the points (N×2) fall in: their centres (K×2, ordered by x then y), each
    point's cell, and the points per cell. Packing (i, j) into one int64 makes np.unique a 1-D
    sort, several times faster than its row-wise (axis=0) form."""
    ij = np.floor(xy / CELL_M).astype(np.int64) + CELL_SPAN // 2
    key, inverse, count = np.unique(ij[:, 0] * CELL_SPAN + ij[:, 1], return_inverse=True, return_counts=True)
    cells = np.column_stack(np.divmod(key, CELL_SPAN)) - CELL_SPAN // 2
    return (cells + 0.5) * CELL_M, inverse, count
