"""A route: a sequence of lanes turned into one polyline with arc length, commands and limits."""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numba import njit

from sim.geometry import arc_length, headings, point_segment_distance, resample
from sim.kernels import bisect_right, interp_at, locate
from sim.map import RoadMap
from sim.types import Command

COMMANDS = list(Command)
LANE_CHANGE_LENGTH = 25.0  # [m]
COMMAND_LOOKAHEAD = 40.0  # a junction's turn is announced this far ahead [m]
ROUTE_STEP = 0.5  # [m]


@dataclass(frozen=True)
class StopLine:
    """A controlled stop line on the ego's route: HD-map knowledge (where, and light or sign)."""

    S: float  # route arc length of the line [m]
    kind: str  # "light" | "stop"
    junction: str
    signal_group: int | None
    lane_id: str = ""  # the lane that ends at the line; the map props with this lane_id govern it


def route_stop_lines(m: RoadMap, r: "Route") -> list[StopLine]:
    """The stop lines where the route enters a controlled junction, in route order."""
    lines = []
    for k in range(1, len(r.lane_ids)):
        lane, entry = m.lanes[r.lane_ids[k]], m.lanes[r.lane_ids[k - 1]]
        if lane.junction and entry.control:
            lines.append(StopLine(float(r.piece_start[k]), entry.control, lane.junction, entry.signal_group, entry.id))
    return lines


@dataclass(frozen=True)
class Route:
    lane_ids: tuple[str, ...]
    piece_start: np.ndarray  # route arc length where each lane piece begins [m]
    piece_s0: np.ndarray  # lane arc length at the start of each piece [m]
    points: np.ndarray  # M×2 [m]
    s: np.ndarray  # (M,) [m]
    heading: np.ndarray  # (M,) [rad], unwrapped
    curvature: np.ndarray  # (M,) [1/m]
    speed_limit: np.ndarray  # (M,) [m/s]
    command: np.ndarray  # (M,) index into COMMANDS

    @property
    def length(self) -> float:
        return float(self.s[-1])

    def position(self, s) -> np.ndarray:
        return np.stack([np.interp(s, self.s, self.points[:, 0]), np.interp(s, self.s, self.points[:, 1])], -1)

    def heading_at(self, s) -> np.ndarray:
        return np.interp(s, self.s, self.heading)

    def command_at(self, s: float) -> Command:
        i = min(int(np.searchsorted(self.s, s)), len(self.s) - 1)
        return COMMANDS[int(self.command[i])]

    def piece_at(self, s: float) -> int:
        return max(0, bisect_right(self.piece_start, float(s)) - 1)

    def track(self, xy: np.ndarray, S: float) -> tuple[float, float]:
        """Cheap update of (S, d) for a point that moved less than a metre or two since `S`."""
        return _track(float(xy[0]), float(xy[1]), float(S), self.s, self._x, self._y, self.heading)

    @cached_property
    def _x(self) -> np.ndarray:
        return np.ascontiguousarray(self.points[:, 0])

    @cached_property
    def _y(self) -> np.ndarray:
        return np.ascontiguousarray(self.points[:, 1])

    def project(self, xy: np.ndarray, hint: float | None = None, window: float = 30.0) -> tuple[float, float]:
        """Arc length and signed lateral offset (+ left) of a point [m], searched near `hint`."""
        lo, hi = 0, len(self.points) - 1
        if hint is not None:
            lo = min(max(0, int(np.searchsorted(self.s, hint - window)) - 1), hi - 1)
            hi = max(min(hi, int(np.searchsorted(self.s, hint + window)) + 1), lo + 1)
        a, b = self.points[lo:hi], self.points[lo + 1:hi + 1]
        dist, t = point_segment_distance(np.asarray(xy)[None], a, b)
        k = int(np.argmin(dist))
        s = self.s[lo + k] + t[k] * (self.s[lo + k + 1] - self.s[lo + k])
        seg = b[k] - a[k]
        rel = np.asarray(xy) - (a[k] + t[k] * seg)
        return float(s), float(np.sign(seg[0] * rel[1] - seg[1] * rel[0]) * dist[k])


def build_route(m: RoadMap, lane_ids: list[str], s_start: float = 0.0, s_end: float | None = None,
                change_length: float = LANE_CHANGE_LENGTH) -> Route:
    """Join lanes into one route. Consecutive neighbours (not successors) become a lane change."""
    chunks: list[np.ndarray] = []
    piece_s0: list[float] = []
    limits: list[float] = []
    turns: list[Command] = []
    lo = s_start
    for i, lid in enumerate(lane_ids):
        lane = m.lanes[lid]
        hi = lane.length if (i + 1 < len(lane_ids) or s_end is None) else min(s_end, lane.length)
        nxt = lane_ids[i + 1] if i + 1 < len(lane_ids) else None
        change = nxt is not None and nxt in (lane.left, lane.right)
        if change:
            hi = min(lo + 5.0, max(lo, lane.length - change_length - 5.0))
        chunks.append(_lane_chunk(float(lo), float(hi), lane.s, lane.centerline, lane.heading))
        piece_s0.append(lo)
        limits.append(lane.speed_limit)
        turns.append(lane.turn)
        lo = min(hi + change_length, m.lanes[nxt].length) if change else 0.0
    raw = np.concatenate(chunks)
    keep = np.concatenate([[True], np.linalg.norm(np.diff(raw, axis=0), axis=1) > 1e-6])
    raw_s = arc_length(raw[keep])
    # route arc length where each piece starts: the cumulative length up to its first point
    starts, n = [], 0
    for c in chunks:
        starts.append(n)
        n += len(c)
    idx_map = np.cumsum(keep) - 1
    piece_start = raw_s[idx_map[np.array(starts)]]
    pts = resample(raw[keep], ROUTE_STEP)
    s = arc_length(pts)
    piece_of_point = np.searchsorted(piece_start, s, side="right") - 1
    heading = np.unwrap(headings(pts))
    command = np.zeros(len(s), dtype=int)
    for k, turn in enumerate(turns):
        if turn is Command.FOLLOW:
            continue
        end = piece_start[k + 1] if k + 1 < len(piece_start) else s[-1]
        command[(s >= piece_start[k] - COMMAND_LOOKAHEAD) & (s <= end)] = COMMANDS.index(turn)
    return Route(
        lane_ids=tuple(lane_ids),
        piece_start=piece_start,
        piece_s0=np.array(piece_s0),
        points=pts,
        s=s,
        heading=heading,
        curvature=np.gradient(heading, s) if len(s) >= 3 else np.zeros(len(s)),  # geometry.curvature
        speed_limit=np.array(limits)[piece_of_point],
        command=command,
    )


def route_through(m: RoadMap, places: list[tuple[str, float]]) -> Route:
    """The shortest route visiting (lane, s) places in order."""
    lanes: list[str] = [places[0][0]]
    for (a, _), (b, _) in zip(places[:-1], places[1:]):
        lanes += m.route_lanes(a, b)[1:] if a != b else []
    return build_route(m, lanes, places[0][1], places[-1][1])


@njit(cache=True)
def _track(x: float, y: float, S: float, s, px, py, heading) -> tuple[float, float]:
    """`Route.track`: one projection step from the route point at S."""
    j = locate(S, s)
    dx, dy = x - interp_at(S, s, px, j), y - interp_at(S, s, py, j)
    h = interp_at(S, s, heading, j)
    c, sn = math.cos(h), math.sin(h)
    S_new = S + dx * c + dy * sn
    S_new = 0.0 if 0.0 > S_new else S_new  # Python's min and max, as `track` was
    S_new = s[len(s) - 1] if s[len(s) - 1] < S_new else S_new
    return S_new, -dx * sn + dy * c


@njit(cache=True)
def _lane_chunk(lo: float, hi: float, s, centerline, heading) -> np.ndarray:
    """`lane.position` at lo, the lane's own samples strictly between, and hi [m] (N×2)."""
    n = 2
    for k in range(len(s)):
        n += lo < s[k] < hi
    out = np.empty((n, 2))
    m = 0
    for k in range(-1, len(s) + 1):
        if k == -1:
            sk = lo
        elif k == len(s):
            sk = hi
        elif lo < s[k] < hi:
            sk = s[k]
        else:
            continue
        j = locate(sk, s)
        out[m, 0] = interp_at(sk, s, centerline[:, 0], j) - math.sin(interp_at(sk, s, heading, j)) * 0.0
        out[m, 1] = interp_at(sk, s, centerline[:, 1], j) + math.cos(interp_at(sk, s, heading, j)) * 0.0
        m += 1
    return out
