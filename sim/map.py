"""HD map: lanes as centreline polylines, junctions, signals, crosswalks, and vectorised queries.

Public: perception/, planning/ and control/ may import it. A map is static for an episode.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import math

import numpy as np
import shapely
from numba import njit
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from sim.geometry import arc_length, curvature, headings, point_segment_distance
from sim.types import Command, LightState

SAMPLE_STEP = 1.0  # lane sample spacing for the spatial index [m]


@dataclass
class Lane:
    """One directed lane. `control` describes the stop line at its *end*, if it enters a junction."""

    id: str
    centerline: np.ndarray  # N×2 [m], resampled at about 1 m
    width: float  # [m]
    speed_limit: float  # [m/s]
    successors: list[str] = field(default_factory=list)
    predecessors: list[str] = field(default_factory=list)
    left: str | None = None  # same-direction neighbour on the left
    right: str | None = None
    junction: str | None = None  # set on connector lanes inside a junction
    turn: Command = Command.FOLLOW  # for connectors: left | right | straight
    control: str | None = None  # "light" | "stop" | None at the end of this lane
    signal_group: int | None = None  # which light governs this lane's stop line
    entry: str | None = None  # for connectors: the approach lane they leave
    s: np.ndarray = field(init=False, repr=False)
    heading: np.ndarray = field(init=False, repr=False)
    curvature: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.centerline = np.asarray(self.centerline, dtype=float)
        self.s = arc_length(self.centerline)
        self.heading = np.unwrap(headings(self.centerline))
        self.curvature = curvature(self.centerline)

    @property
    def length(self) -> float:
        return float(self.s[-1])

    def position(self, s: np.ndarray | float, d: np.ndarray | float = 0.0) -> np.ndarray:
        """World point at arc length s [m] and lateral offset d [m] (+ left)."""
        s = np.asarray(s, dtype=float)
        x = np.interp(s, self.s, self.centerline[:, 0])
        y = np.interp(s, self.s, self.centerline[:, 1])
        h = np.interp(s, self.s, self.heading)
        return np.stack([x - np.sin(h) * d, y + np.cos(h) * d], axis=-1)

    def heading_at(self, s: np.ndarray | float) -> np.ndarray:
        return np.interp(s, self.s, self.heading)

    def frenet(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project points (…×2) to (s, d) on this lane; d is + to the left [m]."""
        xy = np.atleast_2d(xy)
        a, b = self.centerline[:-1], self.centerline[1:]
        dist, t = point_segment_distance(xy[:, None, :], a[None], b[None])
        k = np.argmin(dist, axis=1)
        tk = t[np.arange(len(xy)), k]
        s = self.s[k] + tk * (self.s[k + 1] - self.s[k])
        # Newton steps make the offset perpendicular to the interpolated heading, which is the
        # normal `position` offsets along, so the two are exact inverses
        for _ in range(4):
            h = np.interp(s, self.s, self.heading)
            rel = xy - self.position(s)
            along = rel[:, 0] * np.cos(h) + rel[:, 1] * np.sin(h)
            d = -rel[:, 0] * np.sin(h) + rel[:, 1] * np.cos(h)
            scale = 1.0 - np.interp(s, self.s, self.curvature) * d  # metric of the offset curve
            s = np.clip(s + along / np.maximum(scale, 0.2), 0.0, self.length)
        h = np.interp(s, self.s, self.heading)
        rel = xy - self.position(s)
        d = -rel[:, 0] * np.sin(h) + rel[:, 1] * np.cos(h)
        return s, d

    def boundaries(self) -> tuple[np.ndarray, np.ndarray]:
        """Left and right lane edges as polylines [m]."""
        return self.position(self.s, self.width / 2), self.position(self.s, -self.width / 2)


@dataclass(frozen=True)
class SignalPlan:
    """Fixed-time plan: phases in order, each turning its groups green, then yellow, then all-red."""

    phases: tuple[tuple[int, ...], ...]
    green: float = 12.0  # [s]
    yellow: float = 3.0  # [s]
    all_red: float = 1.0  # [s]
    offset: float = 0.0  # [s] added to sim time

    @property
    def cycle(self) -> float:
        return len(self.phases) * (self.green + self.yellow + self.all_red)

    def state(self, group: int, t: float) -> LightState:
        span = self.green + self.yellow + self.all_red
        tc = (t + self.offset) % self.cycle
        k = int(tc // span)
        if group not in self.phases[k]:
            return LightState.RED
        dt = tc - k * span
        if dt < self.green:
            return LightState.GREEN
        return LightState.YELLOW if dt < self.green + self.yellow else LightState.RED

    def time_to_change(self, t: float) -> float:
        """Seconds until the current interval (green, yellow or red-part) ends [s]."""
        span = self.green + self.yellow + self.all_red
        dt = (t + self.offset) % span
        for edge in (self.green, self.green + self.yellow, span):
            if dt < edge:
                return edge - dt
        return 0.0


@dataclass
class Junction:
    id: str
    center: np.ndarray  # [m]
    kind: str  # "signal" | "allway_stop" | "two_way_stop" | "priority"
    connectors: list[str] = field(default_factory=list)
    signal: SignalPlan | None = None
    polygon: shapely.Polygon | None = None
    # conflicts[c] = {c2: (s on c, s on c2)}: where c first comes within about a lane width of c2
    conflicts: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Crosswalk:
    id: str
    polygon: np.ndarray  # 4×2 corners [m]
    a: np.ndarray  # kerb end points of the walking line [m]
    b: np.ndarray
    junction: str | None = None
    signal_group: int | None = None  # the parallel traffic group; pedestrians walk on its green


@dataclass(frozen=True)
class PedPath:
    """A walking loop for background pedestrians; `crosswalk[i]` tags segment i (or −1)."""

    points: np.ndarray  # N×2 [m], closed (last point equals the first)
    crosswalk: np.ndarray  # (N−1,) int


@dataclass(frozen=True)
class Prop:
    """A static object that can be hit: sign posts, light poles."""

    kind: str  # "stop_sign" | "traffic_light" | "pole"
    x: float
    y: float
    yaw: float
    length: float
    width: float
    lane_id: str | None = None  # the lane whose stop line it governs
    signal_group: int | None = None
    junction: str | None = None


class RoadMap:
    """A lane graph with the queries that the world, scoring and planner need."""

    def __init__(
        self,
        lanes: list[Lane],
        junctions: list[Junction] = (),
        crosswalks: list[Crosswalk] = (),
        ped_paths: list[PedPath] = (),
        props: list[Prop] = (),
        buildings: list[np.ndarray] = (),
        name: str = "map",
    ) -> None:
        self.name = name
        self.lanes: dict[str, Lane] = {lane.id: lane for lane in lanes}
        self.lane_ids: list[str] = [lane.id for lane in lanes]
        self.lane_index: dict[str, int] = {lid: i for i, lid in enumerate(self.lane_ids)}
        self.junctions: dict[str, Junction] = {j.id: j for j in junctions}
        self.crosswalks = list(crosswalks)
        self.ped_paths = list(ped_paths)
        self.props = list(props)
        self.buildings = list(buildings)
        for lane in lanes:
            for succ in lane.successors:
                if lane.id not in self.lanes[succ].predecessors:
                    self.lanes[succ].predecessors.append(lane.id)
        self._build_index()
        self._build_drivable()
        self._build_graph()

    # ---- spatial index -------------------------------------------------------------------
    def _build_index(self) -> None:
        xy, lane_idx, s, h = [], [], [], []
        for i, lid in enumerate(self.lane_ids):
            lane = self.lanes[lid]
            n = max(2, int(np.ceil(lane.length / SAMPLE_STEP)) + 1)
            ss = np.linspace(0.0, lane.length, n)
            xy.append(lane.position(ss))
            lane_idx.append(np.full(n, i))
            s.append(ss)
            h.append(lane.heading_at(ss))
        self.sample_xy = np.concatenate(xy)
        self.sample_lane = np.concatenate(lane_idx)
        self.sample_s = np.concatenate(s)
        self.sample_heading = np.concatenate(h)
        self.lane_width = np.array([self.lanes[lid].width for lid in self.lane_ids])
        self.is_connector = np.array([self.lanes[lid].junction is not None for lid in self.lane_ids])
        self._tree = cKDTree(self.sample_xy)


    def _build_drivable(self) -> None:
        polys = [
            shapely.buffer(shapely.LineString(lane.centerline), lane.width / 2, cap_style="flat")
            for lane in self.lanes.values()
        ]
        polys += [j.polygon for j in self.junctions.values() if j.polygon is not None]
        self.drivable = shapely.union_all(polys).buffer(0.05)
        self._grown: dict[float, shapely.Geometry] = {}
        shapely.prepare(self.drivable)

    def _build_graph(self) -> None:
        """Lane graph: successor edges cost their length; lane changes cost a fixed 30 m."""
        rows, cols, cost = [], [], []
        for lid, lane in self.lanes.items():
            i = self.lane_index[lid]
            for succ in lane.successors:
                rows.append(i), cols.append(self.lane_index[succ]), cost.append(lane.length)
            for nb in (lane.left, lane.right):
                if nb is not None:
                    rows.append(i), cols.append(self.lane_index[nb]), cost.append(30.0)
        n = len(self.lane_ids)
        self._graph = csr_matrix((cost, (rows, cols)), shape=(n, n))

    # ---- queries -------------------------------------------------------------------------
    def nearest_lane(
        self, xy: np.ndarray, heading: np.ndarray | None = None, prefer_road: bool = True
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Nearest lane per point (…×2): (lane index, s [m], distance [m]).

        With `heading`, lanes pointing more than 90° away are skipped (opposite direction).
        `prefer_road` skips junction connectors where a road lane is nearly as close.
        """
        xy = np.atleast_2d(np.asarray(xy, dtype=float))
        k = min(48, len(self.sample_xy))
        dist, idx = self._tree.query(xy, k=k)
        lanes = self.sample_lane[idx]
        penalty = np.zeros_like(dist)
        if heading is not None:
            dh = np.abs((self.sample_heading[idx] - np.asarray(heading)[..., None] + np.pi) % (2 * np.pi) - np.pi)
            penalty += np.where(dh > np.pi / 2, 1e6, 0.0)
        if prefer_road:
            penalty += np.where(self.is_connector[lanes], 0.5, 0.0)
        best = np.argmin(dist + penalty, axis=1)
        rows = np.arange(len(xy))
        lane_idx = lanes[rows, best]
        return lane_idx, self.sample_s[idx[rows, best]], dist[rows, best]

    def lanes_at(self, xy: np.ndarray, radius: float | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every (point, lane) pair whose lane centre passes within `radius` [m] of the point.

        Returns (point index, lane index, s on lane [m], lane heading there [rad]); s is refined
        along the lane tangent, and a (point, lane) pair may repeat (once per lane sample within
        the radius).
        Points inside a junction match every connector they overlap, which is what conflict
        detection needs.
        """
        xy = np.atleast_2d(np.asarray(xy, dtype=float))
        if len(xy) == 0:
            e = np.zeros(0, dtype=int)
            return e, e, np.zeros(0), np.zeros(0)
        return self.lanes_near(np.ascontiguousarray(xy), np.full(len(xy), radius, dtype=float))

    def lanes_near(self, xy: np.ndarray, radius: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """`lanes_at` for a C-contiguous float N×2 `xy` (N > 0) and one radius per point [m]."""
        k = min(24, len(self.sample_xy))
        dist, idx = self._tree.query(xy, k=k, distance_upper_bound=radius.max())
        # a pair may appear once per nearby sample; callers take minima, so repeats are harmless
        return _lane_pairs(dist.reshape(len(xy), k), idx.reshape(len(xy), k), radius, xy, self.sample_xy,
                           self.sample_s, self.sample_heading, self.sample_lane)

    def is_drivable(self, xy: np.ndarray) -> np.ndarray:
        xy = np.atleast_2d(np.asarray(xy, dtype=float))
        return shapely.contains_xy(self.drivable, xy[:, 0], xy[:, 1])

    def near_drivable(self, xy: np.ndarray, margin: float) -> np.ndarray:
        """Points on the drivable area or within `margin` [m] of it (the grown area is cached)."""
        grown = self._grown.get(margin)
        if grown is None:
            grown = self._grown[margin] = self.drivable.buffer(margin)
            shapely.prepare(grown)
        xy = np.atleast_2d(np.asarray(xy, dtype=float))
        return shapely.contains_xy(grown, xy[:, 0], xy[:, 1])

    def route_lanes(self, start: str, goal: str) -> list[str]:
        """Shortest lane sequence from `start` to `goal` (Dijkstra over the lane graph)."""
        i, j = self.lane_index[start], self.lane_index[goal]
        if i == j:
            return [start]
        _, pred = dijkstra(self._graph, indices=i, return_predecessors=True)
        if pred[j] < 0:
            raise ValueError(f"no route from lane {start} to lane {goal}")
        path = [j]
        while path[-1] != i:
            path.append(pred[path[-1]])
        return [self.lane_ids[k] for k in reversed(path)]


@njit(cache=True)
def _lane_pairs(dist, idx, radius, xy, sample_xy, sample_s, sample_heading, sample_lane):
    """`lanes_at`'s pairs from its k-nearest query, in the query's order (point, then distance)."""
    n = 0
    for i in range(dist.shape[0]):
        for j in range(dist.shape[1]):
            n += dist[i, j] <= radius[i]
    pt, lane = np.empty(n, np.int64), np.empty(n, np.int64)
    s, h = np.empty(n), np.empty(n)
    m = 0
    for i in range(dist.shape[0]):
        for j in range(dist.shape[1]):
            if dist[i, j] <= radius[i]:
                k = idx[i, j]
                hk = sample_heading[k]
                pt[m], lane[m], h[m] = i, sample_lane[k], hk
                s[m] = sample_s[k] + (xy[i, 0] - sample_xy[k, 0]) * math.cos(hk) + (xy[i, 1] - sample_xy[k, 1]) * math.sin(hk)
                m += 1
    return pt, lane, s, h
