"""A spinning lidar by ray casting: one ray per (channel, azimuth) step, all at the capture time
(no motion distortion). Points carry intensity, instance and semantic labels.

Range noise is Gaussian; dropout is Bernoulli, plus two-way extinction in fog; intensity is the
surface reflectivity times a Lambertian incidence term, attenuated by fog.
"""
from __future__ import annotations

import numpy as np

from sim.sensors.frames import LidarFrame
from sim.sensors.ground import GROUND_REFLECTIVITY, GROUND_SEMANTIC
from sim.sensors.kernels import lidar_candidates, lidar_points, lidar_survivors
from sim.sensors.scene import FrameScene, ground_rays
from sim.sensors.specs import LidarSpec
from sim.sensors.state import SceneState
from sim.sensors.weather import weather

_EMPTY = np.zeros(0, dtype=np.float32)  # an absent layer (no fog, no noise)


class Lidar:
    def __init__(self, spec: LidarSpec, rng: np.random.Generator) -> None:
        self.spec, self.rng = spec, rng
        self.calib = spec.calib()
        el, az = np.meshgrid(self.calib.elevations, self.calib.azimuths, indexing="ij")  # C×H
        d_s = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1).reshape(-1, 3)
        self.dirs_sensor = d_s.astype(np.float32)
        T = self.calib.T_vehicle_lidar
        dirs = (d_s @ T[:3, :3].T).astype(np.float32)  # vehicle frame, unit length
        self._dir_rows = np.ascontiguousarray(dirs.T)  # 3 × N: the kernel's layout
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
        h = scene.cast(self._rays, self._ground_t)
        idx = lidar_candidates(h.t, np.float32(spec.min_range), np.float32(spec.max_range))
        fog_t = _EMPTY
        if w.lidar_fog > 0:  # two-way extinction: fewer returns, weaker ones
            with np.errstate(over="ignore", invalid="ignore"):
                fog_t = np.exp(-2 * w.lidar_fog * h.t[idx])
        p_drop = spec.dropout + w.lidar_dropout
        if p_drop > 0 or w.lidar_fog > 0:
            u = self._slice(self._uniform, len(h.t))
            keep = lidar_survivors(idx, u, np.float32(p_drop), np.float32(1 - p_drop), fog_t)
            idx = idx[keep]
            if len(fog_t):
                fog_t = fog_t[keep]
        sigma = spec.range_noise_std * w.lidar_noise
        noisy = sigma > 0 or spec.intensity_noise_std > 0
        z = self._slice(self._normal, 2 * len(idx)) if noisy else _EMPTY
        tex = scene.static.texture
        points, intensity, inst, sem, ring = lidar_points(
            idx, h.t, h.tri, h.ground, h.normal, self._dir_rows, self.origin, scene.pose32(), scene.reflectivity,
            scene.semantic, scene.instance, tex.bytes, tex.grid(), GROUND_REFLECTIVITY, GROUND_SEMANTIC, fog_t,
            np.float32(sigma), np.float32(spec.intensity_noise_std), z, self.dirs_sensor, self.ring)
        return LidarFrame(spec.name, state.t, points, intensity, inst, sem, ring, self.calib)
