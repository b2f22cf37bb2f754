"""Sensor frames: what perception gets. Frozen, SI units, with the calibration needed to project.

Arrays inside frames are read-only. Instance ids are the world's actor ids (vehicles, then
pedestrians, then map props), stable over an episode, so they double as track ids; −1 means none.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.sensors.calibration import CameraCalib, LidarCalib, RadarCalib

# the detector's classes, in YOLO class-id order
DETECTION_CLASSES = ("car", "pedestrian", "stop_sign", "traffic_light_red", "traffic_light_yellow",
                     "traffic_light_green")

# per-pixel / per-point semantic classes
SEMANTIC_CLASSES = ("sky", "road", "lane_marking", "sidewalk", "terrain", "building", "kerb", "pole", "car",
                    "pedestrian", "stop_sign", "traffic_light", "vegetation")
SEM = {name: i for i, name in enumerate(SEMANTIC_CLASSES)}
# Cityscapes-like colours for masks and plots (RGB, 0–255)
SEMANTIC_COLOURS = np.array([
    [70, 130, 180], [128, 64, 128], [255, 255, 255], [244, 35, 232], [152, 251, 152], [70, 70, 70],
    [190, 153, 153], [153, 153, 153], [0, 0, 142], [220, 20, 60], [220, 220, 0], [250, 170, 30], [107, 142, 35],
], dtype=np.uint8)


def _freeze(*arrays: np.ndarray) -> None:
    for a in arrays:
        if isinstance(a, np.ndarray):
            a.flags.writeable = False


@dataclass(frozen=True)
class Box2D:
    """A 2D label: the amodal box of the object's silhouette, clipped to the image.

    `truncation` is the fraction of the unclipped box outside the image (KITTI); `visible_fraction`
    is visible pixels over the pixels the object would cover with nothing in front of it.
    `center`, `size` and `yaw` give the 3D box in the vehicle frame, for lifting and its metrics.
    """

    cls: str  # one of DETECTION_CLASSES
    track_id: int  # the actor id
    x1: float  # [px], continuous image coordinates
    y1: float
    x2: float
    y2: float
    visible_fraction: float  # 0–1
    truncation: float  # 0–1
    visible_pixels: int
    depth: float  # optical depth of the 3D box centre [m]
    center: tuple[float, float, float]  # 3D box centre in the vehicle frame [m]
    size: tuple[float, float, float]  # length, width, height [m]
    yaw: float  # in the vehicle frame [rad]

    @property
    def class_id(self) -> int:
        return DETECTION_CLASSES.index(self.cls)

    def yolo(self, width: int, height: int) -> tuple[int, float, float, float, float]:
        """(class id, x centre, y centre, width, height), normalised to 0–1."""
        return (self.class_id, (self.x1 + self.x2) / 2 / width, (self.y1 + self.y2) / 2 / height,
                (self.x2 - self.x1) / width, (self.y2 - self.y1) / height)


@dataclass(frozen=True, eq=False)
class CameraFrame:
    name: str
    t: float  # sim time [s]
    image: np.ndarray  # H×W×3 uint8 RGB
    depth: np.ndarray  # H×W float32 optical depth [m]; inf where the ray sees sky
    instance: np.ndarray  # H×W int32 actor id, −1 for none (stuff, poles, sky)
    semantic: np.ndarray  # H×W uint8 index into SEMANTIC_CLASSES
    boxes: tuple[Box2D, ...]
    calib: CameraCalib
    weather: str

    def __post_init__(self) -> None:
        _freeze(self.image, self.depth, self.instance, self.semantic)


@dataclass(frozen=True, eq=False)
class LidarFrame:
    name: str
    t: float  # [s]
    points: np.ndarray  # N×3 float32 in the lidar frame [m]
    intensity: np.ndarray  # N float32, 0–1
    instance: np.ndarray  # N int32 actor id, −1 for none
    semantic: np.ndarray  # N uint8 index into SEMANTIC_CLASSES
    ring: np.ndarray  # N uint8 channel (0 = lowest beam)
    calib: LidarCalib

    def __post_init__(self) -> None:
        _freeze(self.points, self.intensity, self.instance, self.semantic, self.ring)

    def __len__(self) -> int:
        return len(self.points)


@dataclass(frozen=True, eq=False)
class RadarFrame:
    name: str
    t: float  # [s]
    range: np.ndarray  # N [m]
    azimuth: np.ndarray  # N [rad], + left of the boresight
    range_rate: np.ndarray  # N [m/s], + receding: relative radial velocity
    rcs: np.ndarray  # N radar cross-section [dBsm]
    instance: np.ndarray  # N int32 actor id of the (strongest) source, −1 for clutter
    semantic: np.ndarray  # N uint8 class of the source, 0 ("sky") for clutter
    calib: RadarCalib

    def __post_init__(self) -> None:
        _freeze(self.range, self.azimuth, self.range_rate, self.rcs, self.instance, self.semantic)

    def __len__(self) -> int:
        return len(self.range)

    @property
    def xy(self) -> np.ndarray:
        """N×2 return positions in the radar frame [m] (z unknown: radar measures no elevation)."""
        return np.stack([self.range * np.cos(self.azimuth), self.range * np.sin(self.azimuth)], axis=1)
