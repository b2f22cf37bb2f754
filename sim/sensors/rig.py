"""The sensor rig that the runner builds from an agent's `sensors()` declaration.

Every sensor draws its noise from its own generator, seeded from (episode seed, sensor name), so
adding, removing or reading sensors never changes the traffic (whose generator is the world's),
and the same seed gives the same frames.
"""
from __future__ import annotations

import time
import zlib
from dataclasses import replace

import numpy as np

from sim.map import RoadMap
from sim.sensors.specs import CameraSpec, LidarSpec, OdometrySpec, RadarSpec, SensorSpec, check_rig
from sim.sensors.state import SceneState, snapshot

SCENE_RADIUS = 150.0  # geometry farther than this from the ego is left out of a frame [m]


def sensor_rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(name.encode()), 1]))


class SensorRig:
    def __init__(self, specs: list[SensorSpec], road_map: RoadMap, seed: int, scene_radius: float = SCENE_RADIUS) -> None:
        from sim.sensors.camera import Camera
        from sim.sensors.lidar import Lidar
        from sim.sensors.odometry import Odometry
        from sim.sensors.radar import Radar
        from sim.sensors.static import static_world

        self.specs = check_rig(specs)
        self.map = road_map
        self.radius = scene_radius
        make = {CameraSpec: Camera, LidarSpec: Lidar, RadarSpec: Radar, OdometrySpec: Odometry}
        self.sensors = {s.name: make[type(s)](s, sensor_rng(seed, s.name)) for s in self.specs}
        self.needs_scene = any(not isinstance(s, OdometrySpec) for s in self.specs)
        self.static = static_world(road_map) if self.needs_scene else None
        self.timing: dict[str, float] = {}  # the last capture's cost per stage [ms]

    def capture(self, state: SceneState) -> dict:
        """Every sensor's frame for this snapshot, keyed by sensor name."""
        from sim.sensors.odometry import Odometry
        from sim.sensors.scene import FrameScene

        timing = {}
        scene = self.last_scene = None
        if self.needs_scene:
            t0 = time.perf_counter()
            scene = self.last_scene = FrameScene(self.static, state, self.radius)
            timing["scene"] = (time.perf_counter() - t0) * 1e3
        frames = {}
        for name, sensor in self.sensors.items():
            t0 = time.perf_counter()
            frames[name] = sensor.capture(state) if isinstance(sensor, Odometry) else sensor.capture(scene, state)
            timing[name] = (time.perf_counter() - t0) * 1e3
        self.timing = timing
        return frames

    def capture_world(self, world) -> dict:
        return self.capture(snapshot(world))

    def observe(self, world, obs):
        """The observation with the rig's frames in `sensors` and, if declared, noisy odometry."""
        frames = self.capture_world(world)
        odo = [n for n, s in zip(frames, self.specs) if isinstance(s, OdometrySpec)]
        odometry = frames.pop(odo[0]) if odo else obs.odometry
        return replace(obs, sensors=frames, odometry=odometry)


def build_rig(specs, world) -> SensorRig | None:
    """The rig for an agent's declaration, or None when it declares no sensors (no open3d import)."""
    specs = check_rig(specs or [])
    return SensorRig(specs, world.map, world.seed) if specs else None
