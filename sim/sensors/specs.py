"""What an agent declares in `sensors()`: typed sensor specs, validated on construction.

Defaults: a 320×160, 90° front camera; a 32-beam spinning lidar (VLP-32C-like field of view,
1024 azimuth steps); a ±45°, 150 m front radar; wheel-speed/IMU odometry. Noise defaults are
typical datasheet magnitudes; `noiseless()` zeroes them (tests, ground-truth renders).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Union

import numpy as np

from sim.sensors.calibration import CameraCalib, LidarCalib, Mount, RadarCalib, rigid, OPTICAL_TO_BODY


def _check(cond: bool, spec, name: str, why: str) -> None:
    if not cond:
        raise ValueError(f"{type(spec).__name__}({spec.name!r}).{name}: {why}")


@dataclass(frozen=True)
class CameraSpec:
    name: str = "camera"
    width: int = 320  # [px]
    height: int = 160  # [px]
    fov_deg: float = 90.0  # horizontal field of view; square pixels
    mount: Mount = field(default_factory=lambda: Mount(x=1.0, z=1.5, pitch_deg=3.0))
    max_depth: float = 200.0  # beyond this a ray sees sky or haze [m]
    noise_std: float = 0.015  # pixel noise in daylight, × the weather's factor [0–1 intensity]
    min_visible_pixels: int = 12  # fewer visible pixels: no 2D label

    def __post_init__(self) -> None:
        _check(8 <= self.width <= 4096 and 8 <= self.height <= 4096, self, "width/height", "must be 8–4096 px")
        _check(1.0 <= self.fov_deg <= 170.0, self, "fov_deg", "must be within 1–170°")
        _check(self.max_depth > 1.0, self, "max_depth", "must be > 1 m")
        _check(self.noise_std >= 0, self, "noise_std", "must be ≥ 0")

    def calib(self) -> CameraCalib:
        f = self.width / 2 / np.tan(np.radians(self.fov_deg) / 2)
        T = self.mount.matrix() @ rigid(OPTICAL_TO_BODY, np.zeros(3))
        return CameraCalib(self.width, self.height, f, f, self.width / 2, self.height / 2, T)

    def noiseless(self) -> "CameraSpec":
        return replace(self, noise_std=0.0)


@dataclass(frozen=True)
class LidarSpec:
    name: str = "lidar"
    channels: int = 32
    horizontal: int = 1024  # azimuth steps per revolution
    fov_up_deg: float = 15.0  # highest beam elevation
    fov_down_deg: float = -25.0  # lowest beam elevation
    max_range: float = 100.0  # [m]
    min_range: float = 0.5  # [m]
    mount: Mount = field(default_factory=lambda: Mount(x=0.0, z=1.9))
    range_noise_std: float = 0.02  # [m]
    dropout: float = 0.01  # probability that a return is lost
    intensity_noise_std: float = 0.02  # [0–1]

    def __post_init__(self) -> None:
        _check(1 <= self.channels <= 256, self, "channels", "must be 1–256")
        _check(8 <= self.horizontal <= 8192, self, "horizontal", "must be 8–8192")
        _check(-90 <= self.fov_down_deg < self.fov_up_deg <= 90, self, "fov_down_deg/fov_up_deg",
               "need −90 ≤ down < up ≤ 90")
        _check(0 <= self.min_range < self.max_range, self, "max_range", "must exceed min_range ≥ 0")
        _check(0 <= self.dropout < 1, self, "dropout", "must be in [0, 1)")
        _check(self.range_noise_std >= 0 and self.intensity_noise_std >= 0, self, "range_noise_std", "must be ≥ 0")

    def calib(self) -> LidarCalib:
        el = np.radians(np.linspace(self.fov_down_deg, self.fov_up_deg, self.channels)) if self.channels > 1 \
            else np.radians([0.5 * (self.fov_down_deg + self.fov_up_deg)])
        az = np.pi - 2 * np.pi * (np.arange(self.horizontal) + 0.5) / self.horizontal  # sweeps from behind, clockwise
        return LidarCalib(self.mount.matrix(), el, az, self.max_range)

    def noiseless(self) -> "LidarSpec":
        return replace(self, range_noise_std=0.0, dropout=0.0, intensity_noise_std=0.0)


@dataclass(frozen=True)
class RadarSpec:
    name: str = "radar"
    fov_deg: float = 45.0  # half-angle: sees ±fov_deg in azimuth
    max_range: float = 150.0  # [m]
    mount: Mount = field(default_factory=lambda: Mount(x=2.3, z=0.5))
    range_resolution: float = 1.0  # returns closer than this in range ... [m]
    azimuth_resolution_deg: float = 4.0  # ... and in azimuth ...
    range_rate_resolution: float = 0.5  # ... and in range rate merge into one [m/s]
    range_std: float = 0.15  # [m]
    azimuth_std_deg: float = 0.3
    range_rate_std: float = 0.1  # [m/s]
    rcs_std_db: float = 1.5
    false_alarms: float = 1.0  # mean clutter returns per frame (Poisson)
    snr_threshold_db: float = -82.0  # RCS [dBsm] − 40·log10(range) must exceed this to be seen

    def __post_init__(self) -> None:
        _check(0 < self.fov_deg <= 90, self, "fov_deg", "half-angle must be in (0, 90]")
        _check(self.max_range > 1, self, "max_range", "must be > 1 m")
        _check(min(self.range_resolution, self.azimuth_resolution_deg, self.range_rate_resolution) >= 0, self,
               "range_resolution", "resolutions must be ≥ 0")
        _check(self.false_alarms >= 0, self, "false_alarms", "must be ≥ 0")

    def calib(self) -> RadarCalib:
        return RadarCalib(self.mount.matrix(), np.radians(self.fov_deg), self.max_range, self.range_resolution,
                          np.radians(self.azimuth_resolution_deg), self.range_rate_resolution)

    def noiseless(self) -> "RadarSpec":
        return replace(self, range_std=0.0, azimuth_std_deg=0.0, range_rate_std=0.0, rcs_std_db=0.0, false_alarms=0.0)


@dataclass(frozen=True)
class OdometrySpec:
    """Wheel speed and an IMU. The reading replaces `Observation.odometry` for agents that declare it."""

    name: str = "odometry"
    speed_std: float = 0.05  # [m/s]
    speed_scale_std: float = 0.005  # per-episode scale error of the wheel-speed sensor (tyre radius)
    yaw_rate_std: float = 0.005  # [rad/s]
    yaw_rate_bias_std: float = 0.002  # per-episode gyro bias [rad/s]
    accel_std: float = 0.1  # [m/s²]

    def noiseless(self) -> "OdometrySpec":
        return replace(self, **{f.name: 0.0 for f in fields(self) if f.name != "name"})


SensorSpec = Union[CameraSpec, LidarSpec, RadarSpec, OdometrySpec]
SPEC_TYPES = (CameraSpec, LidarSpec, RadarSpec, OdometrySpec)


def default_rig() -> list[SensorSpec]:
    """The full rig: one of each."""
    return [CameraSpec(), LidarSpec(), RadarSpec(), OdometrySpec()]


def check_rig(specs) -> list[SensorSpec]:
    """Validate an agent's declaration: typed specs, unique names, at most one odometry."""
    specs = list(specs)
    names: set[str] = set()
    for i, s in enumerate(specs):
        if not isinstance(s, SPEC_TYPES):
            raise ValueError(f"sensors()[{i}]: expected a CameraSpec, LidarSpec, RadarSpec or OdometrySpec, "
                             f"got {type(s).__name__}")
        if s.name in names:
            raise ValueError(f"sensors()[{i}]: duplicate sensor name {s.name!r}")
        names.add(s.name)
    if sum(isinstance(s, OdometrySpec) for s in specs) > 1:
        raise ValueError("sensors(): at most one OdometrySpec")
    return specs
