"""Early fusion: the camera image plus lidar depth and radar projected into it, as one uint8 image.

The detector sees channels in this order (`CHANNELS`). Training images (TIFF, one page per channel)
and the modular agent's live frames both come from `fused_image`, so they cannot drift apart.
"""
from __future__ import annotations

import cv2
import numpy as np

from sim.sensors.calibration import lidar_to_camera, radar_to_camera
from sim.sensors.frames import CameraFrame, LidarFrame, RadarFrame

CHANNELS = {"rgb": ("red", "green", "blue"), "fused": ("red", "green", "blue", "lidar_depth", "radar_range_rate")}
DEPTH_MAX_M = 80.0  # lidar depth is coded 255 (at the camera) … 1 (at this depth); 0 = no return
RANGE_RATE_SCALE = 4.0  # radar: 128 + 4 × range rate [m/s], so ±31 m/s fits; 0 = no return
RADAR_PILLAR = (0.0, 1.8)  # heights a radar return is drawn between [m] (radar measures no elevation)
BEAM_GAP_KERNEL = np.ones((4, 1), np.uint8)  # the depth channel's vertical dilation: one beam gap [px]


def depth_channel(lidar: LidarFrame, cam: CameraFrame) -> np.ndarray:
    """Lidar points projected into the camera: near is bright. Dilated vertically by one beam gap
    (~4 px at the default rig) so the 32 rings read as a surface rather than as thin lines: each
    pixel is the brightest of rows i−1 … i+2, as scipy's `grey_dilation(size=(4, 1))` rendered the
    shipped detectors' data; OpenCV does it in 10 µs instead of 0.3 ms of the agent's tick."""
    proj = lidar_to_camera(np.asarray(lidar.points), lidar.calib, cam.calib)
    h, w = cam.calib.height, cam.calib.width
    out = np.zeros(h * w, dtype=np.uint8)
    code = np.clip(255.0 * (1.0 - proj.depth / DEPTH_MAX_M), 1, 255).astype(np.uint8)
    flat = proj.uv[:, 1].astype(int) * w + proj.uv[:, 0].astype(int)
    np.maximum.at(out, flat, code)  # the nearest point wins a pixel
    return cv2.dilate(out.reshape(h, w), BEAM_GAP_KERNEL, anchor=(0, 1))


def radar_channel(radar: RadarFrame, cam: CameraFrame, half_width_px: int = 1) -> np.ndarray:
    """Each radar return as a vertical pillar coded by range rate; nearer returns are drawn last."""
    h, w = cam.calib.height, cam.calib.width
    out = np.zeros((h, w), dtype=np.uint8)
    if not len(radar):
        return out
    u, top, bottom = radar_to_camera(np.asarray(radar.range), np.asarray(radar.azimuth), radar.calib, cam.calib,
                                     RADAR_PILLAR)
    code = np.clip(np.rint(128 + RANGE_RATE_SCALE * np.asarray(radar.range_rate)), 1, 255).astype(np.uint8)
    for k in np.argsort(-np.asarray(radar.range)):
        if not np.isfinite(u[k]):
            continue
        c = int(u[k])
        r0, r1 = int(np.clip(min(top[k], bottom[k]), 0, h - 1)), int(np.clip(max(top[k], bottom[k]), 0, h - 1))
        out[r0:r1 + 1, max(c - half_width_px, 0):c + half_width_px + 1] = code[k]
    return out


def fused_image(cam: CameraFrame, lidar: LidarFrame | None, radar: RadarFrame | None, mode: str = "fused") -> np.ndarray:
    """H×W×C uint8 in `CHANNELS[mode]` order (RGB first)."""
    if mode == "rgb":
        return np.ascontiguousarray(cam.image)
    if lidar is None or radar is None:
        raise ValueError("the fused input needs the lidar and radar frames")
    return np.dstack([cam.image, depth_channel(lidar, cam), radar_channel(radar, cam)])
