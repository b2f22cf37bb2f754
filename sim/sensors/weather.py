"""Lighting and weather for each `World.weather`: what the camera, lidar and radar make of it.

Numbers are chosen to look right at 320×160, not measured: a sun and a sky, exposure, fog as
Koschmieder extinction (visibility V ≈ 3.9/β), rain as lower contrast, streaks and extra dropout.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _sun(azimuth_deg: float, elevation_deg: float) -> tuple[float, float, float]:
    a, e = np.radians(azimuth_deg), np.radians(elevation_deg)
    return float(np.cos(e) * np.cos(a)), float(np.cos(e) * np.sin(a)), float(np.sin(e))


@dataclass(frozen=True)
class Weather:
    name: str
    sun_dir: tuple[float, float, float]  # unit vector towards the sun (world frame)
    sun: tuple[float, float, float]  # direct light RGB
    ambient: tuple[float, float, float]  # sky light RGB
    sky_zenith: tuple[float, float, float]
    sky_horizon: tuple[float, float, float]
    fog: float  # extinction coefficient β for the camera [1/m]; distance blends towards the sky colour
    fog_colour: tuple[float, float, float]  # the fog's colour (the fog weather's sky is this grey)
    noise: float  # × the camera's noise_std
    contrast: float
    headlights: float  # ego headlight strength (0: off)
    rain: float  # rain streak strength 0–1
    lidar_fog: float  # extinction β for the lidar [1/m] (near infrared sees a little further)
    lidar_dropout: float  # extra dropout probability
    lidar_noise: float  # × range noise
    radar_noise: float  # × radar noise


WEATHERS: dict[str, Weather] = {
    "day": Weather("day", _sun(140, 55), (0.62, 0.6, 0.55), (0.42, 0.44, 0.48), (0.28, 0.48, 0.82),
                   (0.7, 0.8, 0.92), 0.0015, (0.72, 0.8, 0.9), 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0),
    "dusk": Weather("dusk", _sun(250, 7), (0.6, 0.38, 0.2), (0.24, 0.2, 0.24), (0.2, 0.2, 0.38),
                    (0.85, 0.5, 0.3), 0.003, (0.6, 0.42, 0.35), 2.0, 0.95, 0.4, 0.0, 0.0, 0.0, 1.0, 1.0),
    "night": Weather("night", _sun(0, -30), (0.0, 0.0, 0.0), (0.06, 0.065, 0.085), (0.01, 0.012, 0.03),
                     (0.05, 0.05, 0.08), 0.004, (0.04, 0.04, 0.06), 4.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0),
    "fog": Weather("fog", _sun(140, 40), (0.2, 0.2, 0.2), (0.55, 0.56, 0.58), (0.75, 0.76, 0.78),
                   (0.78, 0.79, 0.8), 0.045, (0.76, 0.77, 0.79), 1.5, 0.9, 0.3, 0.0, 0.02, 0.02, 1.5, 1.2),
    "rain": Weather("rain", _sun(140, 45), (0.15, 0.15, 0.16), (0.42, 0.43, 0.46), (0.42, 0.44, 0.47),
                    (0.55, 0.56, 0.58), 0.008, (0.5, 0.51, 0.53), 2.5, 0.75, 0.3, 0.6, 0.003, 0.05, 2.0, 1.5),
}


def weather(name: str) -> Weather:
    if name not in WEATHERS:
        raise ValueError(f"unknown weather {name!r}; use one of {', '.join(WEATHERS)}")
    return WEATHERS[name]
