"""Sensors: camera, lidar and radar by ray casting (open3d / Embree, CPU), ego odometry, and the
calibration to project between them.

Public, for perception and agents: `specs` (what an agent declares), `frames` (what it gets),
`calibration` (mounts, intrinsics, projections). These import numpy only. The rig and the
renderers (`rig`, `camera`, `lidar`, `radar`, `scene`, ...) belong to the simulator; open3d is
imported on first use, so runs without sensors never load it.
"""
from sim.sensors.calibration import CameraCalib, LidarCalib, Mount, RadarCalib, lidar_to_camera, radar_to_camera
from sim.sensors.frames import DETECTION_CLASSES, SEMANTIC_CLASSES, Box2D, CameraFrame, LidarFrame, RadarFrame
from sim.sensors.specs import CameraSpec, LidarSpec, OdometrySpec, RadarSpec, SensorSpec, default_rig

__all__ = [
    "Box2D", "CameraCalib", "CameraFrame", "CameraSpec", "DETECTION_CLASSES", "LidarCalib", "LidarFrame", "LidarSpec",
    "Mount", "OdometrySpec", "RadarCalib", "RadarFrame", "RadarSpec", "SEMANTIC_CLASSES", "SensorSpec", "default_rig",
    "lidar_to_camera", "radar_to_camera",
]
