"""A spinning lidar by ray casting: one ray per (channel, azimuth) step, all at the capture time
(no motion distortion). Points carry intensity, instance and semantic labels.

Range noise is Gaussian; dropout is Bernoulli, plus two-way extinction in fog; intensity is the
surface reflectivity times a Lambertian incidence term, attenuated by fog.
"""
from __future__ import annotations

import numpy as np

from sim.sensors.frames import LidarFrame
from sim.sensors.ground import GROUND_REFLECTIVITY, GROUND_SEMANTIC
from sim.sensors.scene import FrameScene, ground_rays
from sim.sensors.specs import LidarSpec
from sim.sensors.state import SceneState
from sim.sensors.weather import weather


class Lidar:
    def __init__(self, spec: LidarSpec, rng: np.random.Generator) -> None:
        self.spec, self.rng = spec, rng
        self.calib = spec.calib()
        el, az = np.meshgrid(self.calib.elevations, self.calib.azimuths, indexing="ij")  # C×H
        d_s = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1).reshape(-1, 3)
        self.dirs_sensor = d_s.astype(np.float32)
        T = self.calib.T_vehicle_lidar
        dirs = (d_s @ T[:3, :3].T).astype(np.float32)  # vehicle frame, unit length
        self.dx, self.dy, self.dz = (np.ascontiguousarray(dirs[:, k]) for k in range(3))
        self.origin = T[:3, 3].astype(np.float32)
        self.ring = np.repeat(np.arange(spec.channels, dtype=np.uint8), spec.horizontal)
        n = len(d_s)
        self._rays = np.empty((n, 6), dtype=np.float32)  # constant: the scene moves, not the rays
        self._rays[:, :3] = self.origin
        self._rays[:, 3:] = dirs
        self._ground_t = ground_rays(self._rays, spec.max_range)
        self._normal = rng.standard_normal(n * 4, dtype=np.float32)
        self._uniform = rng.random(n * 2, dtype=np.float32)

    def _slice(self, pool: np.ndarray, n: int) -> np.ndarray:
        off = int(self.rng.integers(0, len(pool) - n))
        return pool[off:off + n]

    def capture(self, scene: FrameScene, state: SceneState) -> LidarFrame:
        spec = self.spec
        w = weather(state.weather)
        dx, dy, dz, o = self.dx, self.dy, self.dz, self.origin
        h = scene.cast(self._rays, self._ground_t)
        r = h.t
        keep = (r < spec.max_range) & (r > spec.min_range)
        p_drop = spec.dropout + w.lidar_dropout
        if p_drop > 0 or w.lidar_fog > 0:
            u = self._slice(self._uniform, len(r))
            with np.errstate(over="ignore", invalid="ignore"):
                keep &= u >= p_drop + (1 - p_drop) * (1 - np.exp(-2 * w.lidar_fog * r))
        n = h.normal
        cos_in = np.abs(n[:, 0] * dx + n[:, 1] * dy + n[:, 2] * dz)
        idx = np.nonzero(keep)[0]
        r = r[idx]
        tri = h.tri[idx]
        refl = np.take(scene.reflectivity, tri)
        sem = np.take(scene.semantic, tri)
        inst = np.take(scene.instance, tri)
        cos_in = cos_in[idx]
        gsel = np.nonzero(h.ground[idx])[0]
        if len(gsel):
            gi = idx[gsel]
            cls = scene.texels(o[0] + h.t[gi] * dx[gi], o[1] + h.t[gi] * dy[gi])[:, 3]
            refl[gsel] = GROUND_REFLECTIVITY[cls]
            sem[gsel] = GROUND_SEMANTIC[cls]
            cos_in[gsel] = -dz[gi]
        intensity = refl * (0.35 + 0.65 * cos_in)
        if w.lidar_fog > 0:
            intensity *= np.exp(-2 * w.lidar_fog * r)
        sigma = spec.range_noise_std * w.lidar_noise
        if sigma > 0 or spec.intensity_noise_std > 0:
            z = self._slice(self._normal, 2 * len(r))
            r = r + sigma * z[:len(r)]
            intensity = intensity + spec.intensity_noise_std * z[len(r):]
        points = np.take(self.dirs_sensor, idx, axis=0)
        points *= r[:, None]
        np.clip(intensity, 0, 1, out=intensity)
        return LidarFrame(spec.name, state.t, points, intensity.astype(np.float32, copy=False), inst, sem,
                          self.ring[idx], self.calib)
