"""The road surface as a top-down texture, painted once per map: asphalt, lane markings,
crosswalks, stop lines, sidewalks and grass. Camera and lidar look up ground hits in it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from sim.map import RoadMap
from sim.sensors.frames import SEM

RES = 0.1  # [m] per texel
MARGIN = 25.0  # grass beyond the roads and sidewalks [m]
SIDEWALK = 3.0  # sidewalk width beyond the kerb [m]
TERRAIN, SIDEWALK_C, ROAD, WHITE, YELLOW = range(5)  # texel classes
GROUND_SEMANTIC = np.array([SEM["terrain"], SEM["sidewalk"], SEM["road"], SEM["lane_marking"], SEM["lane_marking"]],
                           dtype=np.uint8)
GROUND_REFLECTIVITY = np.array([0.18, 0.28, 0.12, 0.65, 0.6], dtype=np.float32)
DASH, GAP = 3.0, 6.0  # lane-separator dashes [m]


@dataclass(eq=False)
class GroundTexture:
    x0: float  # world x of the texture's first column edge [m]
    y0: float  # world y of its first row edge [m]
    width: int  # texels
    height: int
    packed: np.ndarray  # (H·W) uint32 texels: bytes R, G, B (albedo) and the texel class (TERRAIN … YELLOW)

    @property
    def bytes(self) -> np.ndarray:
        """(H·W)×4 uint8 view of the texels: R, G, B, class."""
        return self.packed.view(np.uint8).reshape(-1, 4)

    def grid(self) -> np.ndarray:
        """(x0, y0, 1/RES, width, height, 1) as float64: the compiled kernels' description of the grid."""
        return np.array([self.x0, self.y0, 1 / RES, self.width, self.height, 1.0])

    @property
    def rgb(self) -> np.ndarray:
        return self.packed.view(np.uint8).reshape(-1, 4)[:, :3]

    @property
    def cls(self) -> np.ndarray:
        return self.packed.view(np.uint8).reshape(-1, 4)[:, 3]

    def image(self) -> np.ndarray:
        """The texture as an H×W×3 image with north up (for looking at it)."""
        return self.rgb.reshape(self.height, self.width, 3)[::-1]


class _Canvas:
    def __init__(self, x0: float, y0: float, w: int, h: int) -> None:
        self.x0, self.y0 = x0, y0
        self.img = Image.new("L", (w, h), 0)
        self.draw = ImageDraw.Draw(self.img)

    def px(self, pts: np.ndarray) -> list[tuple[float, float]]:
        p = (np.asarray(pts) - [self.x0, self.y0]) / RES
        return [tuple(q) for q in p]

    def polygon(self, geom, value: int) -> None:
        for poly in getattr(geom, "geoms", [geom]):
            if poly.is_empty:
                continue
            self.draw.polygon(self.px(np.asarray(poly.exterior.coords)), fill=value)
            for ring in poly.interiors:
                self.draw.polygon(self.px(np.asarray(ring.coords)), fill=0)

    def line(self, pts: np.ndarray, value: int, width_m: float) -> None:
        self.draw.line(self.px(pts), fill=value, width=max(1, int(round(width_m / RES))))

    def array(self) -> np.ndarray:
        return np.asarray(self.img)


def _dashes(line: np.ndarray) -> list[np.ndarray]:
    seg = np.linalg.norm(np.diff(line, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    out = []
    start = GAP / 2
    while start < s[-1]:
        ss = np.linspace(start, min(start + DASH, s[-1]), 4)
        out.append(np.stack([np.interp(ss, s, line[:, 0]), np.interp(ss, s, line[:, 1])], axis=1))
        start += DASH + GAP
    return out


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    coarse = rng.standard_normal((h // cell + 2, w // cell + 2)).astype(np.float32)
    return np.asarray(Image.fromarray(coarse, mode="F").resize((w, h), Image.BILINEAR))


def paint(m: RoadMap, seed: int = 0) -> GroundTexture:
    drivable = m.drivable
    walk = drivable.buffer(SIDEWALK, join_style="mitre")
    x0, y0, x1, y1 = walk.bounds
    x0, y0 = np.floor(x0 - MARGIN), np.floor(y0 - MARGIN)
    w, h = int(np.ceil((x1 + MARGIN - x0) / RES)), int(np.ceil((y1 + MARGIN - y0) / RES))
    layers = []
    for geom in (walk, drivable):  # each layer on its own canvas: a hole must not erase the layer below
        c = _Canvas(x0, y0, w, h)
        c.polygon(geom, 1)
        layers.append(c.array() > 0)
    c = _Canvas(x0, y0, w, h)
    c.img = Image.fromarray(np.where(layers[1], ROAD, np.where(layers[0], SIDEWALK_C, TERRAIN)).astype(np.uint8))
    c.draw = ImageDraw.Draw(c.img)
    for lane in m.lanes.values():
        if lane.junction is not None:
            continue
        left, right = lane.boundaries()
        if lane.left is not None:
            for dash in _dashes(left):
                c.line(dash, WHITE, 0.15)
        else:  # the centre line: double yellow
            c.line(lane.position(lane.s, lane.width / 2 - 0.1), YELLOW, 0.12)
        if lane.right is None:  # edge line
            c.line(lane.position(lane.s, -lane.width / 2 + 0.25), WHITE, 0.15)
        if lane.control is not None:  # stop line across the lane's end
            s = max(lane.length - 0.3, 0.0)
            c.line(lane.position(np.array([s, s]), np.array([lane.width / 2 - 0.1, -lane.width / 2])), WHITE, 0.45)
    for cw in m.crosswalks:
        p = cw.polygon
        e0, e1 = p[1] - p[0], p[2] - p[1]
        across, along, origin = (e1, e0, p[0]) if np.linalg.norm(e1) > np.linalg.norm(e0) else (e0, e1, p[1])
        n = max(1, int(np.linalg.norm(across) / 1.0))
        for k in range(n):  # 0.5 m stripes every 1 m, parallel to the traffic
            a = origin + across * (k + 0.25) / n
            b = origin + across * (k + 0.75) / n
            c.draw.polygon(c.px(np.array([a, b, b + along, a + along])), fill=WHITE)
    cls = c.array().copy()

    rng = np.random.default_rng(seed)
    fine = rng.standard_normal((h, w), dtype=np.float32)
    blotch = _smooth_noise(rng, h, w, 40)
    tiles = ((np.arange(w) % 15 == 0)[None, :] | (np.arange(h) % 15 == 0)[:, None])  # 1.5 m paving slabs
    rgb = np.empty((h, w, 3), dtype=np.float32)
    base = np.array([[0.24, 0.39, 0.14], [0.56, 0.55, 0.52], [0.2, 0.2, 0.21], [0.82, 0.82, 0.8], [0.8, 0.64, 0.14]],
                    dtype=np.float32)
    grain = (np.array([0.05, 0.025, 0.02, 0.04, 0.04], dtype=np.float32) / np.maximum(base.mean(axis=1), 0.2))[cls]
    tone = 1.0 + 0.08 * blotch + grain * fine
    tone -= np.where(cls == SIDEWALK_C, 0.12 * tiles, 0.0)
    rgb[:] = base[cls] * tone[..., None]
    texels = np.empty((h * w, 4), dtype=np.uint8)
    texels[:, :3] = (np.clip(rgb, 0, 1) * 255).astype(np.uint8).reshape(-1, 3)
    texels[:, 3] = cls.reshape(-1)
    return GroundTexture(x0, y0, w, h, texels.view(np.uint32).reshape(-1))
