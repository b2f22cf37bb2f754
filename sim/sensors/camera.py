"""A pinhole camera rendered by ray casting: RGB, depth, instance and semantic masks, 2D labels.

Shading is Lambertian under a sun and a sky light, plus emitters (lamps, headlights at night);
the ground's albedo comes from the map texture; fog and haze blend towards the fog colour with
distance; noise is drawn from the camera's own generator (a pool sampled at random offsets, so
noise costs no random draws per pixel).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from sim.sensors.frames import Box2D, CameraFrame
from sim.sensors.ground import GROUND_SEMANTIC
from sim.sensors.kernels import camera_pixels
from sim.sensors.meshes import LABELLED_TYPES, MAT, type_mesh
from sim.sensors.scene import FrameScene, ground_rays, o3d
from sim.sensors.specs import CameraSpec
from sim.sensors.state import SceneState
from sim.sensors.weather import Weather, weather

SIGN_FACING_COS = 0.3  # stop signs are labelled when seen within ±72° of their front (the octagon reads)
LIGHT_FACING_COS = 0.7  # lights within ±45.6°: farther round, the lit lamp is a pixel or two under its visor
MAX_RECAST = 1024  # rays per object when counting the pixels it would cover unoccluded
MIN_TRANSMITTANCE = 0.05  # objects deeper in fog or haze than this get no label (they can't be seen)
_OFFSET = 100.0  # spacing of the canonical meshes in the label scene [m]
_LIGHT_CLASS = {2: "traffic_light_red", 3: "traffic_light_yellow", 4: "traffic_light_green"}
_CLASS = {"sedan": "car", "suv": "car", "van": "car", "pedestrian": "pedestrian", "stop_sign": "stop_sign"}
_EMPTY = np.zeros(0, dtype=np.float32)  # an absent layer (no rain, no noise)
_KIND_STOP, _KIND_LIGHT = LABELLED_TYPES.index("stop_sign"), LABELLED_TYPES.index("traffic_light")


@lru_cache(maxsize=1)
def _label_scene():
    """Every labelled type's labelled triangles, in its canonical frame, 100 m apart along x."""
    lib = o3d()
    verts, tris, ranges, n = [], [], [], 0
    for k, kind in enumerate(LABELLED_TYPES):
        m = type_mesh(kind)
        t = m.triangles[m.labelled]
        v = m.vertices.copy()
        v[:, 0] += _OFFSET * (k + 1)
        start = sum(len(x) for x in tris)
        verts.append(v)
        tris.append(t + n)
        ranges.append((start, start + len(t)))
        n += len(v)
    scene = lib.t.geometry.RaycastingScene()
    scene.add_triangles(lib.core.Tensor(np.concatenate(verts).astype(np.float32)),
                        lib.core.Tensor(np.concatenate(tris).astype(np.uint32)))
    return scene, np.array(ranges)


@lru_cache(maxsize=None)
def _label_geometry(kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m = type_mesh(kind)
    v = m.vertices[m.label_vertices].astype(float)
    return v, v.min(axis=0), v.max(axis=0)


# the labelled part's canonical bounding box per type (index: LABELLED_TYPES)
_LO = np.array([_label_geometry(k)[1] for k in LABELLED_TYPES])
_HI = np.array([_label_geometry(k)[2] for k in LABELLED_TYPES])


class Camera:
    def __init__(self, spec: CameraSpec, rng: np.random.Generator) -> None:
        self.spec, self.rng = spec, rng
        self.calib = c = spec.calib()
        T = c.T_vehicle_camera
        self.T_cv = c.T_camera_vehicle
        d_opt = c.rays().reshape(-1, 3)
        self.dirs = (d_opt @ T[:3, :3].T).astype(np.float32)  # vehicle frame, optical z = 1
        self._dir_rows = np.ascontiguousarray(self.dirs.T)  # 3 × N: the kernel's layout
        self.dx, self.dy, self.dz = self._dir_rows
        self.norm = np.linalg.norm(self.dirs, axis=1).astype(np.float32)
        self.elev = self.dirs[:, 2] / self.norm
        self.origin = T[:3, 3].astype(np.float32)
        n = c.width * c.height
        self._rays = np.empty((n, 6), dtype=np.float32)  # constant: the scene moves, not the rays
        self._rays[:, :3] = self.origin
        self._rays[:, 3:] = self.dirs
        self._ground_t = ground_rays(self._rays, spec.max_depth)
        self._pool = rng.standard_normal(n * 3 * 2, dtype=np.float32) if spec.noise_std > 0 else None
        self._scaled_pool: dict[str, np.ndarray] = {}
        # ego headlights: a soft-edged cone below the horizon; grazing ground is lit less
        x_opt, y_opt = d_opt[:, 0], d_opt[:, 1]
        beam = np.exp(-(x_opt / 0.6) ** 2) * np.clip(0.3 + y_opt * 4, 0, 1)
        self._beam_ground = (beam * np.sqrt(np.clip(-self.dz / self.norm, 0, 1))).astype(np.float32)
        self._beam_mesh = (beam * 0.7).astype(np.float32)
        self._sky: dict[str, np.ndarray] = {}
        self._streaks: np.ndarray | None = None

    # ---- rendering ------------------------------------------------------------------------------
    def sky(self, w: Weather) -> np.ndarray:
        """Planar 3 × N sky colour per pixel (by elevation); below the horizon, the horizon's."""
        if w.name not in self._sky:
            k = np.clip(self.elev / 0.45, 0, 1)[:, None] ** 0.6
            sky = np.array(w.sky_horizon) * (1 - k) + np.array(w.sky_zenith) * k
            self._sky[w.name] = np.ascontiguousarray(sky.T, dtype=np.float32)
        return self._sky[w.name]

    def _noise(self, w: Weather) -> np.ndarray | None:
        """The noise pool scaled for this weather, in 0–255 units, with the +0.5 of rounding."""
        if self._pool is None:
            return None
        if w.name not in self._scaled_pool:
            self._scaled_pool[w.name] = self._pool * np.float32(self.spec.noise_std * w.noise * 255) + np.float32(0.5)
        return self._scaled_pool[w.name]

    def capture(self, scene: FrameScene, state: SceneState) -> CameraFrame:
        """Render one frame. Meshes are flat-shaded, so each triangle's lit colour is computed once
        and gathered per pixel; the ground is shaded per pixel from its texture; one compiled
        loop does every per-pixel step (`kernels.camera_pixels`)."""
        spec, c = self.spec, self.calib
        w = weather(state.weather)
        h = scene.cast(self._rays, self._ground_t)
        t, tri = h.t, h.tri
        rng_m = t * self.norm  # range along the ray [m]; inf: sky, or ground beyond max_depth
        with np.errstate(invalid="ignore", over="ignore"):  # haze or fog (Koschmieder) transmittance
            fog_t = np.exp(-w.fog * rng_m)

        amb, sun_rgb = np.asarray(w.ambient, dtype=np.float32), np.asarray(w.sun, dtype=np.float32)
        sun = scene.vector_to_vehicle(np.asarray(w.sun_dir))
        lam = scene.lambert(self.origin, sun)  # per triangle; the last row is the ground's
        light = amb[:, None] + sun_rgb[:, None] * lam  # 3 × T+1
        lamps = w.headlights > 0 and len(scene.static.lamps) > 0  # street lamps are lit
        night = w.headlights >= 0.5
        streaks = self._rain_layer() if w.rain > 0 else _EMPTY
        noise = self._noise(w)
        off = int(self.rng.integers(0, len(noise) - 3 * len(t))) if noise is not None else 0
        image = np.empty((c.height, c.width, 3), dtype=np.uint8)
        semantic = np.empty(len(t), dtype=np.uint8)
        instance = np.empty(len(t), dtype=np.int32)
        # visible pixels per instance id (bin id + 1: −1, none, is bin 0)
        pixels = np.zeros(max(int(scene.instance.max()), int(scene.objects.id.max(initial=-1))) + 2, dtype=np.int64)
        tex = scene.static.texture
        camera_pixels(
            t, tri, h.ground, h.normal, rng_m, fog_t, self._dir_rows, self.origin, scene.pose32(),
            scene.shaded(light), light, scene.albedo, scene.is_wall, scene.semantic, scene.instance,
            tex.bytes, tex.grid(), GROUND_SEMANTIC, scene.static.lampmap.reshape(-1), scene.static.lamp_grid(lamps),
            np.array([1.0, 0.85, 0.6, 0.55 * w.headlights], dtype=np.float32),
            state.weather in ("night", "dusk"), self._beam_ground, self._beam_mesh,
            np.float32(w.headlights * 2.5 if night else 0.0), np.float32(1 / (0.4 * spec.max_depth)), self.sky(w),
            streaks, np.float32(w.rain * 0.22), np.float32(255 * w.contrast),
            np.float32(0.45 * 255 * (1 - w.contrast)), noise if noise is not None else _EMPTY, off,
            image.reshape(-1, 3), semantic, instance, pixels)
        boxes = self._labels(scene, state, pixels, w)
        instance = instance.reshape(c.height, c.width)
        return CameraFrame(spec.name, state.t, image, t.reshape(c.height, c.width), instance,
                           semantic.reshape(c.height, c.width), boxes, c, state.weather)

    def _rain_layer(self) -> np.ndarray:
        c = self.calib
        if self._streaks is None:  # sparse short vertical streaks, twice the image height
            r = np.random.default_rng(7)
            img = np.zeros((2 * c.height, c.width), dtype=np.float32)
            for _ in range(c.width * c.height // 120):
                x, y, ln = r.integers(c.width), r.integers(2 * c.height), r.integers(4, 14)
                img[y:y + ln, x] = r.uniform(0.3, 1.0)
            self._streaks = img
        off = int(self.rng.integers(0, c.height))
        return self._streaks[off:off + c.height].reshape(-1)

    # ---- labels -----------------------------------------------------------------------------------
    def _labels(self, scene: FrameScene, state: SceneState, pixels: np.ndarray, w: Weather) -> tuple[Box2D, ...]:
        """2D labels for the objects with enough visible pixels (`pixels`: the count per instance
        id + 1), all geometry in the vehicle frame."""
        spec, c = self.spec, self.calib
        obj = scene.objects
        if not len(obj.id):
            return ()
        vis = pixels[obj.id + 1]
        sel = np.nonzero(vis >= spec.min_visible_pixels)[0]
        kinds = obj.kind[sel]
        # signs and lights: only from the front, where the sign or the state can be read
        to_cam = self.origin[:2, None] - np.stack([obj.x[sel], obj.y[sel]])
        min_cos = np.where(kinds == _KIND_LIGHT, LIGHT_FACING_COS, SIGN_FACING_COS)
        facing = np.cos(obj.yaw[sel]) * to_cam[0] + np.sin(obj.yaw[sel]) * to_cam[1] >= min_cos * np.hypot(*to_cam)
        is_prop = kinds >= _KIND_STOP
        keep = ~is_prop | (facing & ((kinds != _KIND_LIGHT) | (obj.light[sel] >= 2)))
        sel, kinds = sel[keep], kinds[keep]
        if not len(sel):
            return ()
        lo, hi = _LO[kinds], _HI[kinds]
        scale = obj.scale[sel]
        cc = (lo + hi) / 2 * scale
        cw, sw = np.cos(obj.yaw[sel]), np.sin(obj.yaw[sel])
        centre = np.stack([obj.x[sel] + cw * cc[:, 0] - sw * cc[:, 1], obj.y[sel] + sw * cc[:, 0] + cw * cc[:, 1],
                           cc[:, 2]], axis=1)
        depth = centre @ self.T_cv[2, :3] + self.T_cv[2, 3]
        seen = np.exp(-w.fog * np.maximum(depth, 0)) >= MIN_TRANSMITTANCE  # not lost in fog or haze
        boxes = self._amodal_boxes(sel, kinds, obj)
        ok = seen & np.isfinite(boxes[:, 0])
        sel, kinds, boxes, centre, depth, scale, lo, hi = (a[ok] for a in (sel, kinds, boxes, centre, depth, scale, lo, hi))
        if not len(sel):
            return ()
        full = self._unoccluded_pixels(sel, kinds, boxes, obj)
        x1, y1, x2, y2 = boxes.T
        cx1, cy1 = np.maximum(x1, 0.0), np.maximum(y1, 0.0)
        cx2, cy2 = np.minimum(x2, c.width), np.minimum(y2, c.height)
        trunc = np.clip(1.0 - np.maximum(cx2 - cx1, 0) * np.maximum(cy2 - cy1, 0)
                        / np.maximum((x2 - x1) * (y2 - y1), 1e-9), 0, 1)
        v = vis[sel]
        frac = np.minimum(1.0, v / np.maximum(full, 1.0))
        size = (hi - lo) * scale
        yaw = (obj.yaw[sel] + np.pi) % (2 * np.pi) - np.pi
        out = []
        for i, j in enumerate(sel):
            kind = LABELLED_TYPES[kinds[i]]
            cls = _LIGHT_CLASS[obj.light[j]] if kind == "traffic_light" else _CLASS[kind]
            out.append(Box2D(cls, int(obj.id[j]), float(cx1[i]), float(cy1[i]), float(cx2[i]), float(cy2[i]),
                             float(frac[i]), float(trunc[i]), int(v[i]), float(depth[i]),
                             tuple(float(q) for q in centre[i]), tuple(float(q) for q in size[i]), float(yaw[i])))
        return tuple(out)

    def _amodal_boxes(self, sel, kinds, obj, near: float = 0.05) -> np.ndarray:
        """Pixel extent (x1, y1, x2, y2; unclipped) of each object's labelled part with nothing in
        front of it: its mesh vertices through the pinhole, clipped at the near plane if needed.
        NaN for an object wholly behind the camera."""
        c = self.calib
        out = np.full((len(sel), 4), np.nan)
        R, t = self.T_cv[:3, :3], self.T_cv[:3, 3]
        for k in np.unique(kinds):
            rows = np.nonzero(kinds == k)[0]
            j = sel[rows]
            v = _label_geometry(LABELLED_TYPES[k])[0][None] * obj.scale[j][:, None, :]  # n × m × 3
            cw, sw = np.cos(obj.yaw[j])[:, None], np.sin(obj.yaw[j])[:, None]
            pv = np.stack([obj.x[j][:, None] + cw * v[..., 0] - sw * v[..., 1],
                           obj.y[j][:, None] + sw * v[..., 0] + cw * v[..., 1], v[..., 2]], axis=-1)
            pc = pv @ R.T + t
            for r, p in zip(rows, pc):
                front = p[:, 2] >= near
                if not front.any():
                    continue
                if not front.all():  # clip every front–back vertex pair at the near plane
                    a, b = p[front], p[~front]
                    q = (near - a[:, None, 2]) / (b[None, :, 2] - a[:, None, 2])
                    p = np.concatenate([a, (a[:, None, :] + q[..., None] * (b[None] - a[:, None, :])).reshape(-1, 3)])
                u = c.fx * p[:, 0] / p[:, 2] + c.cx
                vv = c.fy * p[:, 1] / p[:, 2] + c.cy
                out[r] = (u.min(), vv.min(), u.max(), vv.max())
        return out

    def _unoccluded_pixels(self, sel, kinds, boxes, obj) -> np.ndarray:
        """Pixels each object would cover alone: its box's pixels (strided for big boxes) cast at
        its canonical mesh in the label scene."""
        c = self.calib
        scene, ranges = _label_scene()
        j0 = np.clip(np.floor(boxes[:, 0]), 0, c.width).astype(int)
        j1 = np.clip(np.ceil(boxes[:, 2]), 0, c.width).astype(int)
        i0 = np.clip(np.floor(boxes[:, 1]), 0, c.height).astype(int)
        i1 = np.clip(np.ceil(boxes[:, 3]), 0, c.height).astype(int)
        st = np.maximum(1, np.ceil(np.sqrt((j1 - j0) * (i1 - i0) / MAX_RECAST))).astype(int)
        pix = [(np.arange(a, b, s)[:, None] * c.width + np.arange(e, f, s)[None, :]).ravel()
               for a, b, e, f, s in zip(i0, i1, j0, j1, st)]
        own = np.repeat(np.arange(len(sel)), [len(p) for p in pix])
        if not len(own):
            return np.zeros(len(sel))
        pix = np.concatenate(pix)
        # vehicle frame → each object's canonical frame: unrotate, unscale, move to its type's slot
        cw, sw = np.cos(obj.yaw[sel]), np.sin(obj.yaw[sel])
        inv = 1.0 / obj.scale[sel]
        ox, oy = self.origin[0] - obj.x[sel], self.origin[1] - obj.y[sel]
        o_l = np.stack([(cw * ox + sw * oy) * inv[:, 0] + _OFFSET * (kinds + 1), (-sw * ox + cw * oy) * inv[:, 1],
                        self.origin[2] * inv[:, 2]], axis=1)
        cwr, swr, invr = cw[own], sw[own], inv[own]
        dx, dy = self.dx[pix], self.dy[pix]
        rays = np.empty((len(pix), 6), dtype=np.float32)
        rays[:, :3] = o_l[own]
        rays[:, 3] = (cwr * dx + swr * dy) * invr[:, 0]
        rays[:, 4] = (-swr * dx + cwr * dy) * invr[:, 1]
        rays[:, 5] = self.dz[pix] * invr[:, 2]
        prim = scene.cast_rays(o3d().core.Tensor.from_numpy(rays))["primitive_ids"].numpy()
        k = kinds[own]
        ok = (prim >= ranges[k, 0]) & (prim < ranges[k, 1])
        return np.bincount(own[ok], minlength=len(sel)) * st.astype(float) ** 2
