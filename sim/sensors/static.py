"""Everything that never moves, meshed once per map: props, buildings, kerbs, lamp posts, trees,
and the ground texture. Cached per map object.

The map's own props (stop signs, traffic lights) and buildings (city blocks) come first. Maps that
have no buildings along a road get procedural scenery (buildings, trees, lamp posts) set back from
the kerb, placed by a generator seeded from the map's name, so a map always looks the same. That
scenery is visual only: it stands off the road, beyond the world's collision checks.
"""
from __future__ import annotations

import weakref
import zlib
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry.polygon import orient

from sim.map import RoadMap
from sim.sensors.ground import RES, SIDEWALK, GroundTexture, paint
from sim.sensors.meshes import MAT, MAT_ALBEDO, MAT_TINT, MeshBuilder, place, type_mesh

KERB_HEIGHT = 0.15  # [m]
LAMP_RES = 0.5  # street-lamp light map [m per cell]
PANEL = 10.0  # longest edge of a wall or kerb piece [m]
WALL_PANEL = 10.0  # walls are split into panels this wide ... [m]
WALL_STOREY = 1e9  # ... and this tall [m]: big triangles make loose boxes in the BVH
BUILDING_PALETTE = np.array([[0.62, 0.36, 0.28], [0.75, 0.7, 0.6], [0.55, 0.55, 0.56], [0.85, 0.83, 0.78],
                             [0.45, 0.5, 0.58], [0.7, 0.6, 0.45], [0.5, 0.32, 0.26]], dtype=np.float32)


@dataclass(frozen=True)
class StaticProp:
    index: int  # into map.props
    kind: str  # "stop_sign" | "traffic_light" | "pole"
    x: float
    y: float
    yaw: float  # facing [rad]
    junction: str | None
    signal_group: int | None


@dataclass(eq=False)
class StaticWorld:
    texture: GroundTexture
    vertices: np.ndarray  # V×3 float32 world [m]
    triangles: np.ndarray  # T×3 int32
    material: np.ndarray  # T int16
    albedo: np.ndarray  # T×3 float32 (tints applied)
    prop: np.ndarray  # T int32 index into map.props, −1 otherwise
    chunk: np.ndarray  # T int32
    chunk_xy: np.ndarray  # C×2 chunk centres [m]
    chunk_r: np.ndarray  # C chunk radii [m]
    chunk_minor: np.ndarray  # C bool: small scenery, culled nearer
    props: tuple[StaticProp, ...]
    buildings: tuple[np.ndarray, ...]  # footprints (k×2) of every building, the map's and the generated ones
    lamps: np.ndarray  # L×3 street-lamp heads [m], light sources at dusk and night
    lampmap: np.ndarray  # irradiance from the street lamps on a LAMP_RES grid over the texture's extent
    normals: np.ndarray  # T×3 float32 unit triangle normals, world frame (outward on buildings)

    def __post_init__(self) -> None:
        self.plane = np.einsum("ij,ij->i", self.normals, self.vertices[self.triangles[:, 0]])  # n·p on each plane
        self.wall = self.material == MAT["wall"]
        self.roof = self.material == MAT["roof"]

    def lamp_grid(self, on: bool) -> np.ndarray:
        """The light map's grid for the compiled kernels: (x0, y0, 1/LAMP_RES, width, height, on)."""
        h, w = self.lampmap.shape
        return np.array([self.texture.x0, self.texture.y0, 1 / LAMP_RES, w, h, float(on)])

    def select(self, xy: np.ndarray, radius: float, detail: float = 80.0) -> np.ndarray:
        """Boolean mask of the triangles whose chunk comes within `radius` [m] of xy; small
        scenery (trees, lamp posts, kerbs: a few pixels beyond `detail` m) only within `detail`."""
        d = np.hypot(self.chunk_xy[:, 0] - xy[0], self.chunk_xy[:, 1] - xy[1]) - self.chunk_r
        return (d < np.where(self.chunk_minor, min(radius, detail), radius))[self.chunk]


class _Collector:
    def __init__(self) -> None:
        self.parts: list[tuple] = []
        self.nv = 0
        self.nchunk = 0
        self.lamps: list[tuple[float, float, float]] = []

    def add(self, v: np.ndarray, t: np.ndarray, mat: np.ndarray, tint: np.ndarray | None = None, prop: int = -1) -> None:
        alb = MAT_ALBEDO[mat].copy()
        if tint is not None:
            alb[MAT_TINT[mat] == 1] = tint
        self.parts.append((v.astype(np.float32), t + self.nv, mat, alb, np.full(len(t), prop, np.int32),
                           np.full(len(t), self.nchunk, np.int32)))
        self.nv += len(v)
        self.nchunk += 1

    def mesh(self, kind: str, x: float, y: float, yaw: float, tint=None, prop: int = -1) -> None:
        m = type_mesh(kind)
        v = place(m, np.array([x]), np.array([y]), np.array([yaw]), np.ones((1, 3)))[0]
        self.add(v, m.triangles, m.material, tint, prop)


def _prism(c: _Collector, poly: np.ndarray, height: float, colour: np.ndarray) -> None:
    b = MeshBuilder()
    ring = np.asarray(orient(shapely.Polygon(poly)).exterior.coords)[:-1]
    n = len(ring)
    for i in range(n):  # walls in panels of at most PANEL m: long thin triangles slow the BVH down
        a, e = ring[i], ring[(i + 1) % n]
        k = max(1, int(np.ceil(np.hypot(*(e - a)) / WALL_PANEL)))
        zs = np.linspace(0.0, height, max(1, int(np.ceil(height / WALL_STOREY))) + 1)
        for q in range(k):
            p0, p1 = a + (e - a) * q / k, a + (e - a) * (q + 1) / k
            for z0, z1 in zip(zs[:-1], zs[1:]):
                b.quad([*p0, z0], [*p1, z0], [*p1, z1], [*p0, z1], "wall")
    b.add(np.column_stack([ring, np.full(n, height)]), [[0, k, k + 1] for k in range(1, n - 1)], "roof")
    m = b.build()
    c.add(m.vertices, m.triangles, m.material, colour)


def _kerbs(c: _Collector, m: RoadMap) -> None:
    ends = []
    for lane in m.lanes.values():
        if not lane.predecessors:
            ends.append((lane.centerline[0], lane.heading[0], lane.width))
        if not lane.successors:
            ends.append((lane.centerline[-1], lane.heading[-1], lane.width))
    geoms = getattr(m.drivable, "geoms", [m.drivable])
    segs = []
    for g in geoms:
        g = orient(g.simplify(0.15), 1.0)  # drivable area on the left of every ring
        for ring in [g.exterior, *g.interiors]:
            p = np.asarray(ring.coords)
            segs += list(zip(p[:-1], p[1:]))
    for a, b in segs:
        d = b - a
        length = float(np.hypot(*d))
        if length < 1e-3:
            continue
        u = d / length
        mid = (a + b) / 2
        if any(np.hypot(*(mid - e)) < w * 1.5 and abs(u @ [np.cos(h), np.sin(h)]) < 0.3 for e, h, w in ends):
            continue  # the open end of a road at the map's edge
        # the kerb's face towards the road, in pieces of at most PANEL m (the top is the sidewalk texture)
        k = max(1, int(np.ceil(length / PANEL)))
        p = a + d * np.linspace(0, 1, k + 1)[:, None]
        for q in range(k):
            v = np.array([[*p[q], 0], [*p[q + 1], 0], [*p[q + 1], KERB_HEIGHT], [*p[q], KERB_HEIGHT]])
            c.add(v, np.array([[0, 1, 2], [0, 2, 3]]), np.full(2, MAT["kerb"], np.int16))


def _scenery(c: _Collector, m: RoadMap, rng: np.random.Generator, taken: list[shapely.Polygon],
             avoid_xy: np.ndarray) -> list[np.ndarray]:
    """Buildings, trees and lamp posts along the right-hand edge of every road lane."""
    keep_clear = m.drivable.buffer(5.0)
    junctions = shapely.union_all([j.polygon for j in m.junctions.values() if j.polygon is not None]) \
        if m.junctions else shapely.Point(1e9, 1e9)  # distance to an empty geometry is NaN
    occupied = shapely.union_all(taken) if taken else shapely.Point(1e9, 1e9)
    new_buildings = []
    for lane in m.lanes.values():
        if lane.junction is not None or lane.right is not None:
            continue
        edge = lane.width / 2

        def frame(s):
            p = lane.position(s)
            h = float(lane.heading_at(s))
            return p, np.array([np.cos(h), np.sin(h)]), np.array([np.sin(h), -np.cos(h)]), h

        s = float(rng.uniform(0, 8))
        while s < lane.length - 8:  # buildings
            f, depth, back = rng.uniform(12, 24), rng.uniform(10, 18), rng.uniform(6.5, 10)
            p, fwd, right, _ = frame(s + f / 2)
            q0 = p + right * (edge + back)
            poly = np.array([q0 - fwd * f / 2, q0 + fwd * f / 2, q0 + fwd * f / 2 + right * depth,
                             q0 - fwd * f / 2 + right * depth])
            sp = shapely.Polygon(poly)
            if not sp.intersects(keep_clear) and not sp.intersects(occupied):
                occupied = occupied.union(sp.buffer(1.0))
                new_buildings.append(poly)
            s += f + rng.uniform(3, 10)
        s = float(rng.uniform(2, 12))
        while s < lane.length:  # trees between the sidewalk and the buildings
            p, fwd, right, h = frame(s)
            q = p + right * (edge + SIDEWALK + 1.6)
            pt = shapely.Point(q)
            if pt.distance(occupied) > 1.5 and pt.distance(junctions) > 4.0 and pt.distance(m.drivable) > 3.5:
                c.mesh("tree", *q, float(rng.uniform(0, np.pi)), tint=np.array([0.14, 0.3, 0.1]) * rng.uniform(0.8, 1.2, 3))
            s += rng.uniform(12, 22)
        s = 15.0
        while s < lane.length - 5:  # lamp posts at the kerb, arm over the road
            p, fwd, right, h = frame(s)
            q = p + right * (edge + 0.6)
            far = len(avoid_xy) == 0 or np.min(np.hypot(*(avoid_xy - q).T)) > 4.0
            if far and shapely.Point(q).distance(junctions) > 8.0:
                c.mesh("street_lamp", *q, h + np.pi / 2)
                c.lamps.append((*(q - right * 1.2), 5.9))  # the lamp head, over the road
            s += 35.0
    return new_buildings


def build_static(m: RoadMap) -> StaticWorld:
    rng = np.random.default_rng(zlib.crc32(m.name.encode()) + len(m.lanes))
    c = _Collector()
    props = []
    for i, p in enumerate(m.props):
        kind = p.kind if p.kind in ("stop_sign", "traffic_light") else "pole"
        if kind == "pole":
            b = MeshBuilder().box(-0.1, 0.1, -0.1, 0.1, 0.0, 3.0, "pole_metal", top=True).build()
            v = place(b, np.array([p.x]), np.array([p.y]), np.array([p.yaw]), np.ones((1, 3)))[0]
            c.add(v, b.triangles, b.material, prop=i)
        else:
            c.mesh(kind, p.x, p.y, p.yaw, prop=i)
        props.append(StaticProp(i, kind, p.x, p.y, p.yaw, p.junction, p.signal_group))
    buildings = [np.asarray(b, dtype=float) for b in m.buildings]
    polys = [shapely.Polygon(b).buffer(1.0) for b in buildings]
    avoid = np.array([[p.x, p.y] for p in m.props]).reshape(-1, 2)
    buildings += _scenery(c, m, rng, polys, avoid)
    for b in buildings:
        _prism(c, b, float(rng.uniform(7, 26)), BUILDING_PALETTE[rng.integers(len(BUILDING_PALETTE))]
               * rng.uniform(0.9, 1.1))
    _kerbs(c, m)
    v, t, mat, alb, prop, chunk = (np.concatenate(x) for x in zip(*c.parts))
    minor_mat = np.isin(mat, [MAT["kerb"], MAT["bark"], MAT["leaves"], MAT["street_lamp"]])
    minor = np.zeros(c.nchunk, dtype=bool)
    minor[chunk[minor_mat]] = True  # a chunk with any such material (lamp posts are pole + lamp)
    tri_xy = v[t][:, :, :2]  # T×3×2
    lo = np.full((c.nchunk, 2), np.inf)
    hi = np.full((c.nchunk, 2), -np.inf)
    np.minimum.at(lo, chunk, tri_xy.min(axis=1))
    np.maximum.at(hi, chunk, tri_xy.max(axis=1))
    tex = paint(m)
    lamps = np.array(c.lamps, dtype=np.float32).reshape(-1, 3)
    return StaticWorld(tex, v, t.astype(np.int32), mat, alb.astype(np.float32), prop, chunk,
                       (lo + hi) / 2, np.hypot(*((hi - lo) / 2).T), minor, tuple(props), tuple(buildings), lamps,
                       _lampmap(tex, lamps), triangle_normals(v, t))


def triangle_normals(v: np.ndarray, t: np.ndarray) -> np.ndarray:
    p = v[t.astype(np.int64)].astype(np.float64)
    n = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    return (n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def _lampmap(tex: GroundTexture, lamps: np.ndarray, reach: float = 30.0) -> np.ndarray:
    """Inverse-square pools of light on the ground under each lamp head."""
    w = int(np.ceil(tex.width * RES / LAMP_RES))
    h = int(np.ceil(tex.height * RES / LAMP_RES))
    out = np.zeros((h, w), dtype=np.float32)
    k = int(reach / LAMP_RES)
    for lx, ly, lz in lamps:
        c0, r0 = int((lx - tex.x0) / LAMP_RES), int((ly - tex.y0) / LAMP_RES)
        rs, cs = slice(max(r0 - k, 0), min(r0 + k, h)), slice(max(c0 - k, 0), min(c0 + k, w))
        yy = tex.y0 + (np.arange(rs.start, rs.stop) + 0.5) * LAMP_RES - ly
        xx = tex.x0 + (np.arange(cs.start, cs.stop) + 0.5) * LAMP_RES - lx
        out[rs, cs] += 1.0 / (1.0 + (xx[None, :] ** 2 + yy[:, None] ** 2 + lz**2) / 30.0)
    return out


_CACHE: "weakref.WeakKeyDictionary[RoadMap, StaticWorld]" = weakref.WeakKeyDictionary()


def static_world(m: RoadMap) -> StaticWorld:
    """The map's static scene, built on first use (about a second for a town) and cached."""
    if m not in _CACHE:
        _CACHE[m] = build_static(m)
    return _CACHE[m]
