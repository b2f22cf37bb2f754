"""Triangle meshes, built once per type and placed by a transform; and the material table.

Canonical frames: x forward (the way a car drives, a sign or a light faces), y left, z up, origin
on the ground under the object's centre. Car meshes are in units of the car's length (x) and width
(y) and in metres in z, so one mesh serves every car of its type; pedestrians and props are in
metres. Meshes are lean (tens of triangles): the ray-casting scene is rebuilt every frame.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from sim.sensors.frames import SEM

# ---- materials ----------------------------------------------------------------------------------
# tint: 0 fixed albedo, 1 the instance's primary colour, 2 its secondary, 3 its skin tone
# glow: emitted RGB when lit; lit: 0 never, 1 when headlights are on (dusk, night, fog, rain),
#       2 red / 3 yellow / 4 green traffic lamp, lit when the light shows that state
@dataclass(frozen=True)
class Material:
    name: str
    albedo: tuple[float, float, float]
    semantic: int
    reflectivity: float  # lidar reflectivity 0–1 (retro-reflectors high)
    labelled: bool  # carries the object's instance id
    tint: int = 0
    glow: tuple[float, float, float] = (0.0, 0.0, 0.0)
    lit: int = 0


MATERIALS: tuple[Material, ...] = (
    Material("car_paint", (0.5, 0.5, 0.5), SEM["car"], 0.35, True, tint=1),
    Material("car_glass", (0.07, 0.09, 0.12), SEM["car"], 0.10, True),
    Material("car_tyre", (0.035, 0.035, 0.035), SEM["car"], 0.05, True),
    Material("car_headlight", (0.85, 0.85, 0.8), SEM["car"], 0.90, True, glow=(1.0, 0.95, 0.8), lit=1),
    Material("car_taillight", (0.5, 0.04, 0.04), SEM["car"], 0.90, True, glow=(0.9, 0.05, 0.03), lit=1),
    Material("ped_shirt", (0.5, 0.5, 0.5), SEM["pedestrian"], 0.30, True, tint=1),
    Material("ped_trousers", (0.2, 0.2, 0.3), SEM["pedestrian"], 0.25, True, tint=2),
    Material("ped_skin", (0.8, 0.6, 0.5), SEM["pedestrian"], 0.30, True, tint=3),
    Material("ped_hair", (0.1, 0.07, 0.05), SEM["pedestrian"], 0.20, True),
    Material("pole_metal", (0.42, 0.43, 0.45), SEM["pole"], 0.30, False),
    Material("sign_red", (0.72, 0.04, 0.05), SEM["stop_sign"], 0.95, True),
    Material("sign_white", (0.92, 0.92, 0.92), SEM["stop_sign"], 0.95, True),
    Material("sign_back", (0.55, 0.55, 0.57), SEM["stop_sign"], 0.40, True),
    Material("light_housing", (0.09, 0.09, 0.07), SEM["traffic_light"], 0.20, True),
    Material("lamp_red", (0.18, 0.03, 0.03), SEM["traffic_light"], 0.50, True, glow=(1.0, 0.12, 0.08), lit=2),
    Material("lamp_yellow", (0.18, 0.14, 0.03), SEM["traffic_light"], 0.50, True, glow=(1.0, 0.72, 0.1), lit=3),
    Material("lamp_green", (0.03, 0.18, 0.08), SEM["traffic_light"], 0.50, True, glow=(0.15, 1.0, 0.5), lit=4),
    Material("wall", (0.6, 0.55, 0.5), SEM["building"], 0.30, False, tint=1),
    Material("roof", (0.28, 0.27, 0.27), SEM["building"], 0.25, False),
    Material("kerb", (0.62, 0.62, 0.6), SEM["kerb"], 0.35, False),
    Material("street_lamp", (0.85, 0.85, 0.75), SEM["pole"], 0.40, False, glow=(1.0, 0.9, 0.6), lit=1),
    Material("bark", (0.25, 0.17, 0.1), SEM["vegetation"], 0.20, False),
    Material("leaves", (0.15, 0.3, 0.1), SEM["vegetation"], 0.25, False, tint=1),
)
MAT = {m.name: i for i, m in enumerate(MATERIALS)}
MAT_ALBEDO = np.array([m.albedo for m in MATERIALS], dtype=np.float32)
MAT_SEMANTIC = np.array([m.semantic for m in MATERIALS], dtype=np.uint8)
MAT_REFLECTIVITY = np.array([m.reflectivity for m in MATERIALS], dtype=np.float32)
MAT_LABELLED = np.array([m.labelled for m in MATERIALS], dtype=bool)
MAT_TINT = np.array([m.tint for m in MATERIALS], dtype=np.int8)
MAT_GLOW = np.array([m.glow for m in MATERIALS], dtype=np.float32)
MAT_LIT = np.array([m.lit for m in MATERIALS], dtype=np.int8)


@dataclass(frozen=True, eq=False)
class Mesh:
    vertices: np.ndarray  # V×3 float32, canonical frame
    triangles: np.ndarray  # T×3 int32
    material: np.ndarray  # T int16 index into MATERIALS
    label_vertices: np.ndarray  # indices of the vertices of labelled triangles (the 2D box's extent)

    @property
    def labelled(self) -> np.ndarray:
        return MAT_LABELLED[self.material]


class MeshBuilder:
    def __init__(self) -> None:
        self.v: list[np.ndarray] = []
        self.t: list[np.ndarray] = []
        self.m: list[np.ndarray] = []
        self.n = 0

    def add(self, verts, tris, material: str) -> "MeshBuilder":
        verts = np.asarray(verts, dtype=np.float64).reshape(-1, 3)
        tris = np.asarray(tris, dtype=np.int64).reshape(-1, 3)
        self.v.append(verts)
        self.t.append(tris + self.n)
        self.m.append(np.full(len(tris), MAT[material], dtype=np.int16))
        self.n += len(verts)
        return self

    def quad(self, a, b, c, d, material: str) -> "MeshBuilder":
        return self.add([a, b, c, d], [[0, 1, 2], [0, 2, 3]], material)

    def box(self, x0, x1, y0, y1, z0, z1, material: str, top: bool = True, bottom: bool = False,
            sides: str = "fblr") -> "MeshBuilder":
        """Axis-aligned box; faces: f(ront +x), b(ack), l(eft +y), r(ight), top, bottom."""
        return self.frustum((x0, x1, y0, y1), (x0, x1, y0, y1), z0, z1, material, top, bottom, sides)

    def frustum(self, lo, hi, z0, z1, material: str, top: bool = True, bottom: bool = False,
                sides: str = "fblr", top_material: str | None = None) -> "MeshBuilder":
        """A box whose bottom rectangle `lo` = (x0, x1, y0, y1) at z0 narrows to `hi` at z1."""
        (a0, a1, b0, b1), (c0, c1, d0, d1) = lo, hi
        v = [[a0, b0, z0], [a1, b0, z0], [a1, b1, z0], [a0, b1, z0],
             [c0, d0, z1], [c1, d0, z1], [c1, d1, z1], [c0, d1, z1]]
        faces = {"f": [1, 2, 6, 5], "b": [0, 4, 7, 3], "l": [2, 3, 7, 6], "r": [0, 1, 5, 4]}
        quads = [faces[s] for s in sides]
        if bottom:
            quads.append([0, 3, 2, 1])
        tris = [[q[0], q[1], q[2]] for q in quads] + [[q[0], q[2], q[3]] for q in quads]
        self.add(v, tris, material)
        if top:
            self.add([v[4], v[5], v[6], v[7]], [[0, 1, 2], [0, 2, 3]], top_material or material)
        return self

    def disc_x(self, x: float, y: float, z: float, radius: float, n: int, material: str,
               phase: float = 0.0) -> "MeshBuilder":
        """A flat regular n-gon in the plane x = const, facing ±x."""
        a = phase + 2 * np.pi * np.arange(n) / n
        ring = np.stack([np.full(n, x), y + radius * np.cos(a), z + radius * np.sin(a)], axis=1)
        tris = [[0, k, k + 1] for k in range(1, n - 1)]
        return self.add(ring, tris, material)

    def build(self) -> Mesh:
        v = np.concatenate(self.v).astype(np.float32)
        t = np.concatenate(self.t).astype(np.int32)
        m = np.concatenate(self.m)
        lab = np.unique(t[MAT_LABELLED[m]])
        return Mesh(v, t, m, lab.astype(np.int32))


# ---- actors --------------------------------------------------------------------------------------
# (name, height [m], body top [m], cabin x extent at the bottom and at the roof [× length])
CAR_TYPES = {
    "sedan": (1.45, 0.92, (-0.33, 0.14), (-0.26, -0.02)),
    "suv": (1.75, 1.0, (-0.42, 0.18), (-0.40, 0.04)),
    "van": (2.05, 1.05, (-0.48, 0.30), (-0.48, 0.20)),
}
CAR_BODY_BOTTOM = 0.30  # [m]; the tyres fill the gap at the axles


def car_type(length: float) -> str:
    """The mesh for a car of this length [m]: compact and sedan, SUV, van."""
    return "sedan" if length < 4.75 else ("suv" if length < 5.05 else "van")


@lru_cache(maxsize=None)
def car_mesh(kind: str) -> Mesh:
    h, body_top, (cb0, cb1), (ct0, ct1) = CAR_TYPES[kind]
    b = MeshBuilder()
    for cx in (-0.32, 0.32):  # axles: the tyres of both sides as one dark block
        b.box(cx - 0.07, cx + 0.07, -0.49, 0.49, 0.0, CAR_BODY_BOTTOM + 0.05, "car_tyre", top=False)
    b.box(-0.5, 0.5, -0.5, 0.5, CAR_BODY_BOTTOM, body_top, "car_paint", bottom=True)
    b.frustum((cb0, cb1, -0.46, 0.46), (ct0, ct1, -0.40, 0.40), body_top, h, "car_glass", top_material="car_paint")
    zl = body_top - 0.2
    for y0, y1 in ((0.27, 0.44), (-0.44, -0.27)):
        b.quad([0.502, y0, zl], [0.502, y1, zl], [0.502, y1, zl + 0.12], [0.502, y0, zl + 0.12], "car_headlight")
        b.quad([-0.502, y0, zl], [-0.502, y1, zl], [-0.502, y1, zl + 0.12], [-0.502, y0, zl + 0.12], "car_taillight")
    return b.build()


PED_HEIGHT = 1.75  # canonical pedestrian height [m]; instances scale z


@lru_cache(maxsize=None)
def pedestrian_mesh() -> Mesh:
    b = MeshBuilder()
    b.box(-0.09, 0.09, -0.15, 0.15, 0.0, 0.86, "ped_trousers", top=False)
    b.box(-0.12, 0.12, -0.22, 0.22, 0.86, 1.46, "ped_shirt")
    b.box(-0.1, 0.1, -0.085, 0.085, 1.49, 1.72, "ped_skin", top=False)
    b.box(-0.11, 0.1, -0.095, 0.095, 1.66, PED_HEIGHT, "ped_hair", sides="bl")
    return b.build()


# ---- props -------------------------------------------------------------------------------------
STOP_SIGN_CENTRE = 2.2  # height of the plate's centre [m]
STOP_SIGN_RADIUS = 0.40  # circumradius of the octagon [m] (0.74 m across the flats)


@lru_cache(maxsize=None)
def stop_sign_mesh() -> Mesh:
    b = MeshBuilder()
    b.box(-0.035, 0.035, -0.035, 0.035, 0.0, STOP_SIGN_CENTRE, "pole_metal", top=False)
    z, r, ph = STOP_SIGN_CENTRE, STOP_SIGN_RADIUS, np.pi / 8  # flat top
    b.disc_x(0.04, 0.0, z, r, 8, "sign_back", ph)
    b.disc_x(0.05, 0.0, z, r, 8, "sign_white", ph)
    b.disc_x(0.055, 0.0, z, r * 0.88, 8, "sign_red", ph)
    b.quad([0.06, -0.22, z - 0.06], [0.06, 0.22, z - 0.06], [0.06, 0.22, z + 0.06], [0.06, -0.22, z + 0.06], "sign_white")
    return b.build()


LIGHT_BOTTOM, LIGHT_TOP = 2.4, 3.35  # housing extent [m]
LAMP_Z = (3.14, 2.875, 2.61)  # red, yellow, green centres [m]


@lru_cache(maxsize=None)
def traffic_light_mesh() -> Mesh:
    b = MeshBuilder()
    b.box(-0.06, 0.06, -0.06, 0.06, 0.0, LIGHT_BOTTOM, "pole_metal", top=False)
    b.box(-0.14, 0.14, -0.18, 0.18, LIGHT_BOTTOM, LIGHT_TOP, "light_housing", bottom=True)
    for z, mat in zip(LAMP_Z, ("lamp_red", "lamp_yellow", "lamp_green")):
        b.disc_x(0.145, 0.0, z, 0.11, 8, mat)
        b.quad([0.145, -0.14, z + 0.12], [0.145, 0.14, z + 0.12], [0.3, 0.14, z + 0.12], [0.3, -0.14, z + 0.12],
               "light_housing")  # visor
    return b.build()


@lru_cache(maxsize=None)
def street_lamp_mesh() -> Mesh:
    """A lamp post whose head reaches towards +x (the road)."""
    b = MeshBuilder()
    b.box(-0.08, 0.08, -0.08, 0.08, 0.0, 6.0, "pole_metal", top=False)
    b.box(-0.08, 1.5, -0.12, 0.12, 5.95, 6.12, "pole_metal", top=True, sides="flr")
    b.quad([0.9, -0.12, 5.95], [1.5, -0.12, 5.95], [1.5, 0.12, 5.95], [0.9, 0.12, 5.95], "street_lamp")
    return b.build()


@lru_cache(maxsize=None)
def tree_mesh() -> Mesh:
    b = MeshBuilder()
    b.box(-0.15, 0.15, -0.15, 0.15, 0.0, 2.2, "bark", top=False)
    b.frustum((-1.3, 1.3, -1.3, 1.3), (-0.5, 0.5, -0.5, 0.5), 2.0, 6.0, "leaves", bottom=True)
    return b.build()


# the types that get labels, in a fixed order (the index is the type code)
LABELLED_TYPES = ("sedan", "suv", "van", "pedestrian", "stop_sign", "traffic_light")


def type_mesh(kind: str) -> Mesh:
    if kind in CAR_TYPES:
        return car_mesh(kind)
    return {"pedestrian": pedestrian_mesh, "stop_sign": stop_sign_mesh, "traffic_light": traffic_light_mesh,
            "street_lamp": street_lamp_mesh, "tree": tree_mesh}[kind]()


def type_height(kind: str) -> float:
    if kind in CAR_TYPES:
        return CAR_TYPES[kind][0]
    return {"pedestrian": PED_HEIGHT, "stop_sign": STOP_SIGN_CENTRE + STOP_SIGN_RADIUS,
            "traffic_light": LIGHT_TOP}[kind]


def place(mesh: Mesh, x: np.ndarray, y: np.ndarray, yaw: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """World vertices of n instances: (n, V, 3) float32, scaled by (n, 3), rotated by yaw, moved."""
    v = mesh.vertices[None, :, :] * scale[:, None, :].astype(np.float32)
    c, s = np.cos(yaw).astype(np.float32)[:, None], np.sin(yaw).astype(np.float32)[:, None]
    out = np.empty_like(v)
    out[..., 0] = c * v[..., 0] - s * v[..., 1] + x[:, None]
    out[..., 1] = s * v[..., 0] + c * v[..., 1] + y[:, None]
    out[..., 2] = v[..., 2]
    return out
