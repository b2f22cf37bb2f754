"""Ego comfort over an episode, with nuPlan's limits (nuplan-devkit ego_is_comfortable)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import savgol_filter


@dataclass(frozen=True)
class ComfortLimits:
    min_lon_accel: float = -4.05  # [m/s²]
    max_lon_accel: float = 2.40  # [m/s²]
    max_abs_lat_accel: float = 4.89  # [m/s²]
    max_abs_yaw_rate: float = 0.95  # [rad/s]
    max_abs_yaw_accel: float = 1.93  # [rad/s²]
    max_abs_lon_jerk: float = 4.13  # [m/s³]
    max_abs_jerk: float = 8.37  # jerk magnitude [m/s³]


def comfort_signals(t: np.ndarray, v: np.ndarray, yaw: np.ndarray) -> dict[str, np.ndarray]:
    """Smoothed derivatives (Savitzky–Golay, as nuPlan) of the ego's speed and heading."""
    if len(t) < 9:
        z = np.zeros(len(t))
        return dict(lon_accel=z, lat_accel=z, yaw_rate=z, yaw_accel=z, lon_jerk=z, jerk=z)
    dt = float(np.median(np.diff(t)))
    window = min(15, len(t) - (1 - len(t) % 2))
    yaw = np.unwrap(yaw)
    lon_accel = savgol_filter(v, window, 2, deriv=1, delta=dt)
    lon_jerk = savgol_filter(v, window, 3 if window > 3 else 2, deriv=2, delta=dt)
    yaw_rate = savgol_filter(yaw, window, 2, deriv=1, delta=dt)
    yaw_accel = savgol_filter(yaw, window, 3 if window > 3 else 2, deriv=2, delta=dt)
    lat_accel = v * yaw_rate
    lat_jerk = np.gradient(lat_accel, dt)
    return dict(lon_accel=lon_accel, lat_accel=lat_accel, yaw_rate=yaw_rate, yaw_accel=yaw_accel,
                lon_jerk=lon_jerk, jerk=np.hypot(lon_jerk, lat_jerk))


def outside_windows(t: np.ndarray, events: np.ndarray, before: float = 0.5, after: float = 1.5) -> np.ndarray:
    """Mask of the samples `t` [s] farther than `before` ahead of / `after` behind every event time.

    Used to leave emergency stops out of comfort: the smoothing window (0.7 s) spreads the brake's
    onset ahead of the tick that decided it, and its release follows the last emergency tick."""
    if len(events) == 0:
        return np.ones(len(t), bool)
    events = np.sort(np.asarray(events, float))
    i = np.searchsorted(events, t)  # the next event at or after each sample
    nxt = events[np.minimum(i, len(events) - 1)]
    prv = events[np.maximum(i - 1, 0)]
    near_next = (nxt >= t) & (nxt - t <= before)
    near_prev = (prv <= t) & (t - prv <= after)
    return ~(near_next | near_prev)


def comfort_violations(sig: dict[str, np.ndarray], lim: ComfortLimits = ComfortLimits(),
                       mask: np.ndarray | None = None) -> dict[str, bool]:
    """Which of nuPlan's six comfort terms were exceeded at any time in the episode (or in `mask`)."""
    if mask is not None:
        sig = {k: v[mask] for k, v in sig.items()}
    if len(sig["lon_accel"]) == 0:
        return {}
    return {
        "lon_accel": bool(np.any((sig["lon_accel"] < lim.min_lon_accel) | (sig["lon_accel"] > lim.max_lon_accel))),
        "lat_accel": bool(np.max(np.abs(sig["lat_accel"])) > lim.max_abs_lat_accel),
        "yaw_rate": bool(np.max(np.abs(sig["yaw_rate"])) > lim.max_abs_yaw_rate),
        "yaw_accel": bool(np.max(np.abs(sig["yaw_accel"])) > lim.max_abs_yaw_accel),
        "lon_jerk": bool(np.max(np.abs(sig["lon_jerk"])) > lim.max_abs_lon_jerk),
        "jerk": bool(np.max(np.abs(sig["jerk"])) > lim.max_abs_jerk),
    }
