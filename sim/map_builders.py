"""Procedural maps. Right-hand traffic; lane k=0 is the rightmost lane of its direction.

Lane ids read as directions: in the junction maps `S>J.0` is the rightmost lane from node S
towards node J, and a connector inside junction J is `J:S>J.0->J>N.0`. Coordinates are in metres
with junction J (or the grid's first node) at the origin.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from sim.geometry import resample
from sim.map import Crosswalk, Junction, Lane, PedPath, Prop, RoadMap, SignalPlan
from sim.types import Command

CROSSWALK_WIDTH = 3.0  # [m]
SIDEWALK_OFFSET = 1.2  # sidewalk centre beyond the kerb [m]


@dataclass(frozen=True)
class RoadStyle:
    lanes: int = 1  # lanes per direction
    lane_width: float = 3.5  # [m]
    speed_limit: float = 11.1  # [m/s] (40 km/h)

    @property
    def half_road(self) -> float:
        return self.lanes * self.lane_width


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _left(u: np.ndarray) -> np.ndarray:
    return np.array([-u[1], u[0]])


def _bezier(a: np.ndarray, ha: np.ndarray, b: np.ndarray, hb: np.ndarray) -> np.ndarray:
    """Cubic Bézier from a (heading ha) to b (heading hb), close to a circular arc for 90° turns."""
    chord = np.linalg.norm(b - a)
    cos = float(np.clip(ha @ hb, -1, 1))
    k = chord * (0.39 if cos < 0.9 else 0.33)
    p = np.array([a, a + ha * k, b - hb * k, b])
    t = np.linspace(0, 1, max(8, int(chord * 2)))[:, None]
    return (1 - t) ** 3 * p[0] + 3 * (1 - t) ** 2 * t * p[1] + 3 * (1 - t) * t**2 * p[2] + t**3 * p[3]


def _polyline(points: list[np.ndarray] | np.ndarray, step: float = 1.0) -> np.ndarray:
    pts = np.asarray(points, dtype=float)
    keep = np.concatenate([[True], np.linalg.norm(np.diff(pts, axis=0), axis=1) > 1e-9])
    return resample(pts[keep], step)


def _offset(line: np.ndarray, d: float) -> np.ndarray:
    """Offset a polyline by d [m] to its left (negative: right)."""
    g = np.gradient(line, axis=0)
    n = np.column_stack([-g[:, 1], g[:, 0]]) / np.linalg.norm(g, axis=1)[:, None]
    return line + n * d


def _axis_groups(dirs: list[np.ndarray]) -> list[int]:
    """Signal group per arm: opposite arms share a group (they get green together)."""
    groups: list[int] = []
    axes: list[np.ndarray] = []
    for d in dirs:
        for gi, ax in enumerate(axes):
            if abs(float(d @ ax)) > 0.9:
                groups.append(gi)
                break
        else:
            axes.append(d)
            groups.append(len(axes) - 1)
    return groups


def build_network(
    name: str,
    nodes: dict[str, tuple[float, float]],
    edges: list[tuple[str, str]],
    kinds: dict[str, str],
    style: RoadStyle,
    signal: SignalPlan,
    crosswalks: bool = True,
    blocks: list[tuple[str, str, str, str]] = (),
) -> RoadMap:
    """Build a lane-level map from a node/edge road graph.

    Nodes of degree ≥ 2 are junctions of kind `kinds[node]`; nodes of degree 1 are map ends.
    `blocks` lists quadruples of nodes (counter-clockwise) that enclose a city block, for
    sidewalk loops and buildings.
    """
    pos = {k: np.asarray(v, dtype=float) for k, v in nodes.items()}
    nbrs: dict[str, list[str]] = {k: [] for k in nodes}
    for a, b in edges:
        nbrs[a].append(b), nbrs[b].append(a)
    is_junction = {k: len(v) >= 2 for k, v in nbrs.items()}
    w, half = style.lane_width, style.half_road
    r_box = half + 1.0
    has_cw = {k: crosswalks and len(nbrs[k]) >= 3 for k in nodes}
    # every junction sets its stop lines back by a crosswalk's width, crosswalk or not, so that
    # connectors are wide enough for a car to turn (a right turn's radius is about r_stop − half)
    r_stop = {k: r_box + CROSSWALK_WIDTH + 1.0 if is_junction[k] else 0.0 for k in nodes}

    lanes: dict[str, Lane] = {}
    for a, b in edges:
        for src, dst in ((a, b), (b, a)):
            u = _unit(pos[dst] - pos[src])
            right = -_left(u)
            p0 = pos[src] + u * r_stop[src]
            p1 = pos[dst] - u * r_stop[dst]
            for k in range(style.lanes):
                off = right * (style.lanes - k - 0.5) * w
                lid = f"{src}>{dst}.{k}"
                lanes[lid] = Lane(
                    id=lid,
                    centerline=_polyline([p0 + off, p1 + off]),
                    width=w,
                    speed_limit=style.speed_limit,
                    left=f"{src}>{dst}.{k + 1}" if k + 1 < style.lanes else None,
                    right=f"{src}>{dst}.{k - 1}" if k > 0 else None,
                )

    junctions: list[Junction] = []
    cws: list[Crosswalk] = []
    props: list[Prop] = []
    paths: list[PedPath] = []
    for j, arms in nbrs.items():
        if not is_junction[j]:
            continue
        c = pos[j]
        kind = kinds.get(j, "priority")
        dirs = [_unit(pos[n] - c) for n in arms]
        groups = _axis_groups(dirs)
        n_axes = max(groups) + 1
        plan = SignalPlan(tuple((g,) for g in range(n_axes)), signal.green, signal.yellow, signal.all_red, signal.offset)
        junction = Junction(id=j, center=c, kind=kind, signal=plan if kind == "signal" else None)
        stem = [i for i, d in enumerate(dirs) if not any(abs(float(d @ e)) > 0.9 for e in dirs if e is not d)]
        for i, (n_in, d_in_out) in enumerate(zip(arms, dirs)):
            d_in = -d_in_out  # travel direction of traffic entering from arm i
            if kind == "signal":
                control = "light"
            elif kind == "allway_stop":
                control = "stop"
            elif kind == "two_way_stop":
                control = "stop" if (i in stem or (not stem and groups[i] == 1)) else None
            else:
                control = None
            for k in range(style.lanes):
                inc = lanes[f"{n_in}>{j}.{k}"]
                inc.control, inc.signal_group = control, (groups[i] if control == "light" else None)
            if control is not None:
                stop_pt = lanes[f"{n_in}>{j}.0"].centerline[-1]
                post = stop_pt - _left(d_in) * (w / 2 + 1.0)
                facing = float(np.arctan2(-d_in[1], -d_in[0]))
                props.append(Prop("traffic_light" if control == "light" else "stop_sign", *post, facing, 0.3, 0.3,
                                  lane_id=f"{n_in}>{j}.0", signal_group=inc.signal_group, junction=j))
                if control == "light":  # a far-side head too: a car at the line can't see the near one
                    far = post + d_in * 2 * float((c - stop_pt) @ d_in)
                    props.append(Prop("traffic_light", *far, facing, 0.3, 0.3, lane_id=f"{n_in}>{j}.0",
                                      signal_group=inc.signal_group, junction=j))
            for o, (n_out, d_out) in enumerate(zip(arms, dirs)):
                if o == i:
                    continue
                dot = float(d_in @ d_out)
                cross = float(d_in[0] * d_out[1] - d_in[1] * d_out[0])
                if dot < -0.7:
                    continue
                turn = Command.STRAIGHT if dot > 0.7 else (Command.LEFT if cross > 0 else Command.RIGHT)
                pairs = {
                    Command.STRAIGHT: [(k, k) for k in range(style.lanes)],
                    Command.RIGHT: [(0, 0)],
                    Command.LEFT: [(style.lanes - 1, style.lanes - 1)],
                }[turn]
                for ki, ko in pairs:
                    lin, lout = lanes[f"{n_in}>{j}.{ki}"], lanes[f"{j}>{n_out}.{ko}"]
                    # curve from stop line to stop line: a right turn inside the box alone would
                    # be tighter than a car can turn
                    # (1 m straight at each end keeps the headings continuous with the lanes)
                    a, b = lin.centerline[-1], lout.centerline[0]
                    curve = _bezier(a + d_in, d_in, b - d_out, d_out)
                    cid = f"{j}:{lin.id}->{lout.id}"
                    lanes[cid] = Lane(id=cid, centerline=_polyline([a, *curve, b], 0.5), width=w,
                                      speed_limit=style.speed_limit, successors=[lout.id],
                                      junction=j, turn=turn, entry=lin.id)
                    lin.successors.append(cid)
                    junction.connectors.append(cid)
        lines = [shapely.LineString(lanes[cid].centerline) for cid in junction.connectors]
        junction.polygon = shapely.convex_hull(shapely.MultiLineString(lines)).buffer(w / 2)
        # cars crossing at right angles touch when their paths come within a half-length plus a
        # half-width (≈3.25 m); parallel neighbours are a lane width apart and never conflict
        junction.conflicts = _conflicts([lanes[cid] for cid in junction.connectors], w - 0.15)
        junctions.append(junction)
        if has_cw[j]:
            order = np.argsort([np.arctan2(d[1], d[0]) for d in dirs])
            h = half + SIDEWALK_OFFSET
            r = r_box + CROSSWALK_WIDTH / 2
            loop: list[np.ndarray] = []
            tags: list[int] = []
            for oi, i in enumerate(order):
                d = dirs[i]
                n = _left(d)
                cid = len(cws)
                mid = c + d * r
                poly = np.array([mid + n * half - d * CROSSWALK_WIDTH / 2, mid + n * half + d * CROSSWALK_WIDTH / 2,
                                 mid - n * half + d * CROSSWALK_WIDTH / 2, mid - n * half - d * CROSSWALK_WIDTH / 2])
                # pedestrians crossing arm i walk parallel to the traffic of the other axis
                other = [groups[k] for k in range(len(dirs)) if groups[k] != groups[i]]
                cws.append(Crosswalk(f"{j}/cw{i}", poly, mid - n * h, mid + n * h, j, other[0] if other else None))
                loop += [mid - n * h, mid + n * h]
                tags += [cid, -1]
                d_next = dirs[order[(oi + 1) % len(order)]]
                gap = (np.arctan2(d_next[1], d_next[0]) - np.arctan2(d[1], d[0])) % (2 * np.pi)
                bis = np.array([np.cos(np.arctan2(d[1], d[0]) + gap / 2), np.sin(np.arctan2(d[1], d[0]) + gap / 2)])
                loop.append(c + bis * h / np.sin(gap / 2))
                tags.append(-1)
            loop.append(loop[0])
            paths.append(PedPath(np.array(loop), np.array(tags)))

    buildings: list[np.ndarray] = []
    h = half + SIDEWALK_OFFSET
    for quad in blocks:
        q = np.array([pos[k] for k in quad])
        lo, hi = q.min(0), q.max(0)
        ring = np.array([[lo[0] + h, lo[1] + h], [hi[0] - h, lo[1] + h], [hi[0] - h, hi[1] - h],
                         [lo[0] + h, hi[1] - h], [lo[0] + h, lo[1] + h]])
        paths.append(PedPath(ring, np.full(4, -1)))
        inset = h + SIDEWALK_OFFSET + 2.0
        buildings.append(np.array([[lo[0] + inset, lo[1] + inset], [hi[0] - inset, lo[1] + inset],
                                   [hi[0] - inset, hi[1] - inset], [lo[0] + inset, hi[1] - inset]]))
    return RoadMap(list(lanes.values()), junctions, cws, paths, props, buildings, name=name)


def _conflicts(connectors: list[Lane], thresh: float) -> dict[str, dict[str, tuple[float, float]]]:
    """Pairs of connectors from different entries whose paths come within `thresh` [m]."""
    out: dict[str, dict[str, tuple[float, float]]] = {c.id: {} for c in connectors}
    for i, ci in enumerate(connectors):
        for cj in connectors[i + 1:]:
            if ci.entry == cj.entry:
                continue
            d = np.linalg.norm(ci.centerline[:, None, :] - cj.centerline[None, :, :], axis=-1)
            close = d < thresh
            if not close.any():
                continue
            si = ci.s[np.argmax(close.any(axis=1))]
            sj = cj.s[np.argmax(close.any(axis=0))]
            out[ci.id][cj.id] = (float(si), float(sj))
            out[cj.id][ci.id] = (float(sj), float(si))
    return out


# ---- the five builders -----------------------------------------------------------------------

def four_way(arm_length: float = 80.0, control: str = "signal", style: RoadStyle = RoadStyle(),
             signal: SignalPlan = SignalPlan(((0,), (1,)))) -> RoadMap:
    """A 4-way intersection J at the origin with arms to N, E, S, W."""
    L = arm_length
    nodes = {"J": (0, 0), "N": (0, L), "E": (L, 0), "S": (0, -L), "W": (-L, 0)}
    return build_network("four_way", nodes, [("J", k) for k in "NESW"], {"J": control}, style, signal)


def t_junction(arm_length: float = 80.0, control: str = "two_way_stop", style: RoadStyle = RoadStyle(),
               signal: SignalPlan = SignalPlan(((0,), (1,)))) -> RoadMap:
    """A T-junction J: a main road W–E and a stem to the S."""
    L = arm_length
    nodes = {"J": (0, 0), "E": (L, 0), "S": (0, -L), "W": (-L, 0)}
    return build_network("t_junction", nodes, [("J", k) for k in "ESW"], {"J": control}, style, signal)


def grid_town(rows: int = 4, cols: int = 4, block: float = 70.0, style: RoadStyle = RoadStyle(),
              signal: SignalPlan = SignalPlan(((0,), (1,)))) -> RoadMap:
    """A closed grid of (rows × cols) nodes `r{i}c{j}` at (j·block, i·block).

    Interior 4-way junctions alternate signal and all-way stop; edge T-junctions are two-way
    stops; corners are plain bends.
    """
    nodes = {f"r{i}c{j}": (j * block, i * block) for i in range(rows) for j in range(cols)}
    edges = [(f"r{i}c{j}", f"r{i}c{j + 1}") for i in range(rows) for j in range(cols - 1)]
    edges += [(f"r{i}c{j}", f"r{i + 1}c{j}") for i in range(rows - 1) for j in range(cols)]
    kinds = {}
    for i in range(rows):
        for j in range(cols):
            deg = (i > 0) + (i < rows - 1) + (j > 0) + (j < cols - 1)
            kinds[f"r{i}c{j}"] = {4: "signal" if (i + j) % 2 == 0 else "allway_stop", 3: "two_way_stop"}.get(deg, "priority")
    blocks = [(f"r{i}c{j}", f"r{i}c{j + 1}", f"r{i + 1}c{j + 1}", f"r{i + 1}c{j}")
              for i in range(rows - 1) for j in range(cols - 1)]
    return build_network("grid_town", nodes, edges, kinds, style, signal, blocks=blocks)


def straight(length: float = 400.0, style: RoadStyle = RoadStyle(lanes=2, speed_limit=16.7)) -> RoadMap:
    """A straight two-way road along +x from x=0 to x=length."""
    return _open_road("straight", np.array([[0.0, 0.0], [length, 0.0]]), style)


def curved(segments: list[tuple[float, float]] = ((60, 0), (80, 1 / 45), (40, 0), (70, -1 / 35), (60, 0)),
           style: RoadStyle = RoadStyle(lanes=1, speed_limit=13.9)) -> RoadMap:
    """A winding two-way road from pieces of (length [m], curvature [1/m], + turns left)."""
    pts, p, yaw = [np.zeros(2)], np.zeros(2), 0.0
    for length, kappa in segments:
        for _ in range(max(1, int(length))):
            ds = length / max(1, int(length))
            yaw += kappa * ds / 2
            p = p + ds * np.array([np.cos(yaw), np.sin(yaw)])
            yaw += kappa * ds / 2
            pts.append(p)
    return _open_road("curved", np.array(pts), style)


def _open_road(name: str, ref: np.ndarray, style: RoadStyle) -> RoadMap:
    """Two directions of `style.lanes` lanes about a reference line, with sidewalks on both sides."""
    ref = _polyline(ref)
    w, lanes = style.lane_width, []
    for direction, line in (("fwd", ref), ("rev", ref[::-1])):
        for k in range(style.lanes):
            lanes.append(Lane(f"{direction}.{k}", _offset(line, -(style.lanes - k - 0.5) * w), w, style.speed_limit,
                              left=f"{direction}.{k + 1}" if k + 1 < style.lanes else None,
                              right=f"{direction}.{k - 1}" if k > 0 else None))
    h = style.half_road + SIDEWALK_OFFSET
    paths = []
    for side in (1, -1):
        walk = _offset(ref, side * h)
        back = _offset(ref, side * (h + 0.8))[::-1]
        loop = np.vstack([walk, back, walk[:1]])
        paths.append(PedPath(loop, np.full(len(loop) - 1, -1)))
    return RoadMap(lanes, ped_paths=paths, name=name)


BUILDERS = {"straight": straight, "curved": curved, "four_way": four_way, "t_junction": t_junction,
            "grid_town": grid_town}
