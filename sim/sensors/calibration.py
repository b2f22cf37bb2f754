"""Sensor mounts, intrinsics and the projections that early fusion needs. numpy only.

Frames (all right-handed, SI units):
- world: x east, y north, z up [m].
- vehicle: origin at the vehicle's centre on the ground, x forward, y left, z up (ISO 8855).
  Every sensor's extrinsics are given in this one frame.
- lidar and radar: x forward, y left, z up, origin at the sensor.
- camera: OpenCV optical frame, x right, y down, z forward (along the optical axis).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# columns: where the optical frame's x (right), y (down) and z (forward) axes point in a body frame
OPTICAL_TO_BODY = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def rotation(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """R = Rz(yaw) · Ry(pitch) · Rx(roll) [rad]; + pitch tilts the x axis down."""
    cr, sr, cp, sp, cy, sy = np.cos(roll), np.sin(roll), np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw)
    rz = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
    ry = np.array([[cp, 0.0, sp], [0.0, 1.0, 0.0], [-sp, 0.0, cp]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cr, -sr], [0.0, sr, cr]])
    return rz @ ry @ rx


def rigid(r: np.ndarray, t: np.ndarray) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3], out[:3, 3] = r, t
    return out


def transform(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4×4 rigid transform to N×3 points."""
    p = np.asarray(points, dtype=float).reshape(-1, 3)
    return p @ T[:3, :3].T + T[:3, 3]


def invert(T: np.ndarray) -> np.ndarray:
    return rigid(T[:3, :3].T, -T[:3, :3].T @ T[:3, 3])


def vehicle_to_world(x: float, y: float, yaw: float) -> np.ndarray:
    """4×4 pose of a vehicle frame in the world frame (planar: no roll, pitch or height)."""
    return rigid(rotation(0.0, 0.0, yaw), np.array([x, y, 0.0]))


@dataclass(frozen=True)
class Mount:
    """Where a sensor sits on the vehicle, in the vehicle frame."""

    x: float = 0.0  # forward of the vehicle centre [m]
    y: float = 0.0  # left [m]
    z: float = 1.5  # above the ground [m]
    roll_deg: float = 0.0
    pitch_deg: float = 0.0  # + looks down
    yaw_deg: float = 0.0  # + looks left

    def matrix(self) -> np.ndarray:
        """4×4 T_vehicle_sensor for a body-axis sensor (x forward, y left, z up)."""
        r = rotation(*np.radians([self.roll_deg, self.pitch_deg, self.yaw_deg]))
        return rigid(r, np.array([self.x, self.y, self.z]))


@dataclass(frozen=True, eq=False)
class CameraCalib:
    """Pinhole intrinsics (pixels) and the camera's pose in the vehicle frame.

    Pixel (row i, column j) covers [j, j+1) × [i, i+1) in continuous image coordinates, so its
    centre is (j + 0.5, i + 0.5); 2D boxes use the same continuous coordinates.
    """

    width: int  # [px]
    height: int  # [px]
    fx: float  # [px]
    fy: float  # [px]
    cx: float  # [px]
    cy: float  # [px]
    T_vehicle_camera: np.ndarray  # 4×4: optical frame → vehicle frame

    @property
    def K(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def T_camera_vehicle(self) -> np.ndarray:
        return invert(self.T_vehicle_camera)

    def project(self, points_vehicle: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Vehicle-frame points (N×3) → pixel coordinates (N×2) and optical depth z (N) [m].

        Points at or behind the camera get depth ≤ 0 and meaningless pixels: mask them.
        """
        pc = transform(self.T_camera_vehicle, points_vehicle)
        z = pc[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = self.fx * pc[:, 0] / z + self.cx
            v = self.fy * pc[:, 1] / z + self.cy
        return np.stack([u, v], axis=1), z

    def rays(self) -> np.ndarray:
        """Ray direction per pixel (H×W×3) in the optical frame, scaled so that z = 1."""
        u = (np.arange(self.width) + 0.5 - self.cx) / self.fx
        v = (np.arange(self.height) + 0.5 - self.cy) / self.fy
        uu, vv = np.meshgrid(u, v)
        return np.stack([uu, vv, np.ones_like(uu)], axis=-1)


@dataclass(frozen=True, eq=False)
class LidarCalib:
    T_vehicle_lidar: np.ndarray  # 4×4: lidar frame → vehicle frame
    elevations: np.ndarray  # beam elevation per channel [rad], channel 0 lowest
    azimuths: np.ndarray  # firing azimuths [rad], + left of forward
    max_range: float  # [m]


@dataclass(frozen=True, eq=False)
class RadarCalib:
    T_vehicle_radar: np.ndarray  # 4×4: radar frame → vehicle frame
    fov: float  # half-angle of the azimuth field of view [rad]
    max_range: float  # [m]
    range_resolution: float  # [m]
    azimuth_resolution: float  # [rad]
    range_rate_resolution: float  # [m/s]


@dataclass(frozen=True, eq=False)
class ImagePoints:
    """Points projected into a camera image: pixel coordinates, depth, and which input point."""

    uv: np.ndarray  # M×2 [px]
    depth: np.ndarray  # M optical depth [m]
    index: np.ndarray  # M indices into the projected point array


def project_to_camera(points_vehicle: np.ndarray, calib: CameraCalib, min_depth: float = 0.1) -> ImagePoints:
    """Keep the vehicle-frame points that land inside the image, in front of the camera."""
    uv, z = calib.project(points_vehicle)
    ok = (z > min_depth) & (uv[:, 0] >= 0) & (uv[:, 0] < calib.width) & (uv[:, 1] >= 0) & (uv[:, 1] < calib.height)
    idx = np.nonzero(ok)[0]
    return ImagePoints(uv[idx], z[idx], idx)


def lidar_to_camera(points_lidar: np.ndarray, lidar: LidarCalib, camera: CameraCalib) -> ImagePoints:
    """Lidar-frame points (N×3) → pixels of the camera (the fusion step of early fusion)."""
    return project_to_camera(transform(lidar.T_vehicle_lidar, points_lidar), camera)


def sparse_depth_image(proj: ImagePoints, calib: CameraCalib) -> np.ndarray:
    """H×W float32 depth [m] at the pixels hit by projected points, 0 elsewhere (nearest wins)."""
    img = np.full(calib.height * calib.width, np.inf, dtype=np.float32)
    flat = proj.uv[:, 1].astype(int) * calib.width + proj.uv[:, 0].astype(int)
    np.minimum.at(img, flat, proj.depth.astype(np.float32))
    img[np.isinf(img)] = 0.0
    return img.reshape(calib.height, calib.width)


def radar_to_camera(ranges: np.ndarray, azimuths: np.ndarray, radar: RadarCalib, camera: CameraCalib,
                    heights: tuple[float, float] = (0.0, 1.5)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Radar returns (range [m], azimuth [rad] in the radar frame) → image pillars.

    Radar measures no elevation, so each return becomes a vertical pillar from `heights[0]` to
    `heights[1]` above the ground (CenterFusion-style). Returns (u [px], v_top [px], v_bottom
    [px]) per return, NaN where the return is outside the image or behind the camera.
    """
    p = np.stack([ranges * np.cos(azimuths), ranges * np.sin(azimuths), np.zeros_like(ranges)], axis=1)
    pv = transform(radar.T_vehicle_radar, p)
    out = []
    for h in heights:
        q = pv.copy()
        q[:, 2] = h
        uv, z = camera.project(q)
        uv[z <= 0.1] = np.nan
        out.append(uv)
    u = out[0][:, 0]
    inside = (u >= 0) & (u < camera.width)
    u = np.where(inside, u, np.nan)
    return u, np.where(inside, out[1][:, 1], np.nan), np.where(inside, out[0][:, 1], np.nan)
