"""One frame's ray-casting scene: the static chunks near the ego plus every actor, as one mesh in
one open3d RaycastingScene (Embree, CPU), with per-triangle attribute tables.

The scene is built in the ego's vehicle frame at capture time (x forward, y left, z up, origin on
the ground under the ego's centre): the ego is planar, so every sensor's rays are constants,
computed once, and only a few thousand vertices move per frame. Rebuilding is cheaper than it
sounds (a few thousand triangles build in about a millisecond), while casting into two scenes
(static + dynamic) would double the per-ray cost. The ground is the plane z = 0, intersected
analytically and coloured from the map's texture.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from sim.sensors.meshes import (
    LABELLED_TYPES, MAT, MAT_ALBEDO, MAT_GLOW, MAT_LABELLED, MAT_LIT, MAT_REFLECTIVITY, MAT_SEMANTIC, MAT_TINT,
    type_mesh,
)
from sim.sensors.kernels import place_instances, resolve_hits
from sim.sensors.state import KIND, SceneState
from sim.sensors.static import StaticWorld

MAT_WALL = MAT["wall"]
LIGHTS_ON = {"dusk", "night", "fog", "rain"}  # headlights, tail lights and street lamps lit


def cast_threads() -> int:
    """Threads per cast: `DRIVESTACK_RAY_THREADS`, default 0 (Embree's choice: every core).

    On an idle machine two threads nearly halve a cast; on a shared one (other processes, or
    parallel episodes) one thread per process is faster, because a cast waits for its slowest
    thread. Results are identical either way: every ray is independent."""
    return int(os.environ.get("DRIVESTACK_RAY_THREADS", "0"))


@lru_cache(maxsize=1)
def o3d():
    """open3d, imported on first use: it takes seconds to import, and runs without sensors never need it."""
    import open3d

    return open3d


@dataclass(eq=False)
class Objects:
    """The labelled objects of a frame (actors, then stop signs and traffic lights), in the
    vehicle frame: poses, velocities [m/s] and mesh scales."""

    id: np.ndarray  # actor id
    kind: np.ndarray  # index into LABELLED_TYPES
    x: np.ndarray  # [m]
    y: np.ndarray
    yaw: np.ndarray  # [rad]
    scale: np.ndarray  # n×3
    vx: np.ndarray  # world velocity expressed in the vehicle frame [m/s]
    vy: np.ndarray
    light: np.ndarray  # light code (2/3/4) for traffic lights, else 0


@dataclass(eq=False)
class Hits:
    t: np.ndarray  # N float32 ray parameter (distance in units of the direction's length); inf: none
    tri: np.ndarray  # N int index into the frame's tables; the last row means ground or nothing
    ground: np.ndarray  # N bool: hit the ground plane
    normal: np.ndarray  # N×3 float32 triangle normal, vehicle frame, either side; meaningless on the ground


@dataclass(frozen=True, eq=False)
class _TypeTables:
    """Per-type constants for placing instances quickly."""

    n_vertices: int
    triangles: np.ndarray
    material: np.ndarray
    albedo: np.ndarray  # m×3 with the tinted triangles to be overwritten
    tints: tuple  # ((code, triangle indices), ...)
    lamp_idx: np.ndarray  # triangles lit with the headlights (tail and head lights)
    lamp_rgb: np.ndarray
    normals: np.ndarray  # canonical, m×3


@lru_cache(maxsize=None)
def _tables(kind: str) -> _TypeTables:
    from sim.sensors.static import triangle_normals

    m = type_mesh(kind)
    tint = MAT_TINT[m.material]
    lamp = np.nonzero(MAT_LIT[m.material] == 1)[0]
    return _TypeTables(len(m.vertices), m.triangles, m.material, MAT_ALBEDO[m.material].astype(np.float32),
                       tuple((code, np.nonzero(tint == code)[0]) for code in (1, 2, 3) if (tint == code).any()),
                       lamp, MAT_GLOW[m.material[lamp]], triangle_normals(m.vertices, m.triangles))


class FrameScene:
    def __init__(self, static: StaticWorld, state: SceneState, radius: float = 150.0) -> None:
        ego = state.ego
        self.static, self.state = static, state
        self.ego_xy = np.array([ego.x, ego.y])
        c, s = float(np.cos(ego.yaw)), float(np.sin(ego.yaw))  # Python floats: keep float32 arrays float32
        self.c, self.s = c, s
        lights_on = state.weather in LIGHTS_ON
        keep = static.select(self.ego_xy, radius)
        # roofs (7 m up or more) and walls facing away are never seen by sensors on a car: leave
        # them out (big triangles slow every ray down); the 3 m margin covers sensors off the centre
        n = static.normals
        away = (n[:, 0] * ego.x + n[:, 1] * ego.y + n[:, 2] * 1.5 - static.plane) < -3.0
        keep &= ~(static.roof | (static.wall & away))
        sel = np.nonzero(keep)[0]
        v = static.vertices
        vx, vy = v[:, 0] - float(ego.x), v[:, 1] - float(ego.y)
        verts = [np.column_stack([c * vx + s * vy, -s * vx + c * vy, v[:, 2]]).astype(np.float32)]
        tris = [static.triangles[sel]]
        mats = [static.material[sel]]
        albs = [static.albedo[sel]]
        prop = static.prop[sel]
        prop_ids = np.append(state.prop_ids, -1)  # prop −1 (not a prop) reads the last entry
        insts = [np.where(MAT_LABELLED[mats[0]] & (prop >= 0), prop_ids[prop], -1).astype(np.int32)]
        sn = static.normals[sel]
        normals = [np.column_stack([c * sn[:, 0] + s * sn[:, 1], -s * sn[:, 0] + c * sn[:, 1], sn[:, 2]])]
        # emitters, kept sparse: traffic lamps showing their state, street lamps when it is dark
        lit_code = MAT_LIT[mats[0]]
        li = np.nonzero(lit_code > 0)[0]
        code = lit_code[li]
        on = np.where(code == 1, lights_on, np.append(state.light_code, 0)[prop[li]] == code)
        glow_idx, glow_rgb = [li[on]], [MAT_GLOW[mats[0][li[on]]]]
        nv, nt = len(v), len(sel)

        a = state.actors
        near = np.hypot(a.x - ego.x, a.y - ego.y) < radius
        ax, ay, ayaw = self.to_vehicle(a.x, a.y, a.yaw)
        for k, kind in enumerate(LABELLED_TYPES[:4]):  # the actor types
            rows = np.nonzero(near & (a.kind == k))[0]
            if not len(rows):
                continue
            tb = _tables(kind)
            n, m = len(rows), len(tb.material)
            # vertices placed, normals of the scaled mesh (S⁻¹·n, normalised) turned by each yaw
            v_k, n_k = np.empty((n * tb.n_vertices, 3), dtype=np.float32), np.empty((n * m, 3), dtype=np.float32)
            place_instances(type_mesh(kind).vertices, tb.normals, a.scale[rows].astype(np.float32), ax[rows], ay[rows],
                            np.cos(ayaw[rows]), np.sin(ayaw[rows]), v_k, n_k)
            verts.append(v_k)
            normals.append(n_k)
            tris.append((tb.triangles[None] + (nv + tb.n_vertices * np.arange(n))[:, None, None]).reshape(-1, 3))
            nv += n * tb.n_vertices
            mats.append(np.tile(tb.material, n))
            alb = np.tile(tb.albedo, (n, 1, 1))
            for code, idx in tb.tints:
                alb[:, idx] = {1: a.colour, 2: a.colour2, 3: a.skin}[code][rows][:, None, :]
            albs.append(alb.reshape(-1, 3))
            insts.append(np.repeat(a.id[rows].astype(np.int32), m))
            if lights_on and len(tb.lamp_idx):
                glow_idx.append((nt + m * np.arange(n)[:, None] + tb.lamp_idx[None]).ravel())
                glow_rgb.append(np.tile(tb.lamp_rgb, (n, 1)))
            nt += n * m

        self.vertices = np.ascontiguousarray(np.concatenate(verts), dtype=np.float32)
        self.triangles = np.ascontiguousarray(np.concatenate(tris), dtype=np.uint32)
        mat = np.concatenate(mats)
        T = len(mat)
        # attribute tables with one extra row for "no mesh hit"; colour tables are planar (3 × T+1):
        # per-channel gathers are much faster than row gathers
        self.material = np.append(mat, 0)
        albedo = np.zeros((3, T + 1), dtype=np.float32)
        albedo[:, :T] = np.concatenate(albs).T
        self.albedo = albedo
        self.glow_idx = np.concatenate(glow_idx)  # the triangles that emit light this frame ...
        self.glow_rgb = np.concatenate(glow_rgb).astype(np.float32)  # ... and their light (k×3)
        self.instance = np.append(np.concatenate(insts), -1).astype(np.int32)
        self.semantic = np.append(MAT_SEMANTIC[mat], 0).astype(np.uint8)
        self.reflectivity = np.append(MAT_REFLECTIVITY[mat], 0).astype(np.float32)
        self.is_wall = self.material == MAT_WALL  # T+1
        self.normals = np.concatenate(normals).astype(np.float32)  # T×3, vehicle frame
        self.none = T

        # labelled objects: actors near the ego, then the map's stop signs and traffic lights
        pk = [p for p in static.props if p.kind in ("stop_sign", "traffic_light")
              and abs(p.x - ego.x) < radius and abs(p.y - ego.y) < radius]
        ar = np.nonzero(near)[0]
        n_p = len(pk)
        px, py, pyaw = self.to_vehicle(np.array([p.x for p in pk]), np.array([p.y for p in pk]),
                                       np.array([p.yaw for p in pk]))
        self.objects = Objects(
            id=np.concatenate([a.id[ar], [state.prop_ids[p.index] for p in pk]]).astype(int),
            kind=np.concatenate([a.kind[ar], [KIND[p.kind] for p in pk]]).astype(int),
            x=np.concatenate([ax[ar], px]), y=np.concatenate([ay[ar], py]), yaw=np.concatenate([ayaw[ar], pyaw]),
            scale=np.concatenate([a.scale[ar], np.ones((n_p, 3))]).astype(float),
            vx=np.concatenate([c * a.vx[ar] + s * a.vy[ar], np.zeros(n_p)]),
            vy=np.concatenate([-s * a.vx[ar] + c * a.vy[ar], np.zeros(n_p)]),
            light=np.concatenate([np.zeros(len(ar)), [state.light_code[p.index] for p in pk]]).astype(int),
        )
        lib = o3d()
        self.scene = lib.t.geometry.RaycastingScene()
        if T:
            self.scene.add_triangles(lib.core.Tensor.from_numpy(self.vertices),
                                     lib.core.Tensor.from_numpy(self.triangles))
        # Embree builds its BVH on the first cast: do it here, so that it is counted as scene cost
        self.scene.cast_rays(lib.core.Tensor.from_numpy(np.zeros((1, 6), dtype=np.float32)), nthreads=1)

    def shaded(self, light: np.ndarray) -> np.ndarray:
        """Per-triangle colour (3 × T+1): albedo × light (3 × T+1) plus emitted light."""
        col = self.albedo * light
        if len(self.glow_idx):
            col[:, self.glow_idx] += self.glow_rgb.T
        return col

    # ---- frames ---------------------------------------------------------------------------------
    def to_vehicle(self, x, y, yaw=None):
        """World → vehicle frame: positions [m] (and headings [rad])."""
        dx, dy = np.asarray(x, dtype=float) - self.ego_xy[0], np.asarray(y, dtype=float) - self.ego_xy[1]
        xv, yv = self.c * dx + self.s * dy, -self.s * dx + self.c * dy
        if yaw is None:
            return xv, yv
        return xv, yv, np.asarray(yaw, dtype=float) - self.state.ego.yaw

    def to_world(self, xv, yv):
        """Vehicle → world frame positions [m]."""
        ex, ey = float(self.ego_xy[0]), float(self.ego_xy[1])
        return ex + self.c * xv - self.s * yv, ey + self.s * xv + self.c * yv

    def pose32(self) -> np.ndarray:
        """(cos yaw, sin yaw, x, y) of the ego as float32: `to_world` in the compiled kernels."""
        return np.array([self.c, self.s, self.ego_xy[0], self.ego_xy[1]], dtype=np.float32)

    def vector_to_vehicle(self, v: np.ndarray) -> np.ndarray:
        """A world-frame direction (3,) in the vehicle frame."""
        return np.array([self.c * v[0] + self.s * v[1], -self.s * v[0] + self.c * v[1], v[2]], dtype=np.float32)

    def lambert(self, origin: np.ndarray, sun: np.ndarray) -> np.ndarray:
        """Per-triangle Lambert term max(n·sun, 0), with n turned towards a viewer at `origin`
        (vehicle frame), plus the ground's (+z) in the extra row. A flat triangle shows one side
        to every ray from one origin, so this replaces a per-pixel dot product with a gather."""
        n = self.normals
        v0 = np.take(self.vertices, self.triangles[:, 0], axis=0)
        away = np.einsum("ij,ij->i", n, v0 - origin) > 0
        ns = n @ sun.astype(np.float32)
        return np.append(np.maximum(np.where(away, -ns, ns), 0), max(float(sun[2]), 0.0)).astype(np.float32)

    # ---- casting --------------------------------------------------------------------------------
    def cast(self, rays: np.ndarray, ground_t: np.ndarray | None = None) -> Hits:
        """Cast N×6 float32 rays (origin, direction; vehicle frame); misses that head down meet
        the ground plane z = 0. Normals are the triangles' (either side), left as returned (zero)
        on the ground: callers know the ground's normal is +z.

        `ground_t` is each ray's ground parameter (inf where it never meets the ground, or meets it
        beyond the sensor's range): constant for a sensor, since its rays are fixed in the
        vehicle frame; `ground_rays` computes it."""
        lib = o3d()
        r = self.scene.cast_rays(lib.core.Tensor.from_numpy(np.ascontiguousarray(rays, dtype=np.float32)),
                                 nthreads=cast_threads())
        if ground_t is None:
            ground_t = ground_rays(rays)
        t, tri, ground = resolve_hits(r["t_hit"].numpy(), r["primitive_ids"].numpy(), ground_t, self.none)
        return Hits(t, tri, ground, r["primitive_normals"].numpy())


def ground_rays(rays: np.ndarray, max_range: float = np.inf) -> np.ndarray:
    """Ray parameter where each ray meets the ground z = 0 (inf if never, or beyond max_range [m])."""
    oz, d = rays[:, 2], rays[:, 3:]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(d[:, 2] < 0, -oz / d[:, 2], np.inf)
    t[t * np.linalg.norm(d, axis=1) > max_range] = np.inf
    return t.astype(np.float32)
