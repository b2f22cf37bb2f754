"""Multi-object tracking: constant-velocity Kalman filters with Hungarian assignment, per class.

A measurement is a world-frame position and, when radar saw the object, its radial speed along a
known unit vector u: that is u·v, linear in the state, so the filter stays an exact linear KF.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment


@dataclass(frozen=True)
class Measurement:
    cls: str
    x: float  # world frame [m]
    y: float
    sigma: float  # position standard deviation [m]
    radial: tuple[float, float, float] | None = None  # (ux, uy, u·v [m/s]) in the world frame


@dataclass(frozen=True)
class TrackerParams:
    gate_m: dict = field(default_factory=lambda: {"car": 4.0, "pedestrian": 2.0})
    accel_std: dict = field(default_factory=lambda: {"car": 3.0, "pedestrian": 1.5})  # process noise [m/s²]
    radial_std: float = 0.3  # [m/s]
    confirm_hits: int = 2  # a track is reported after this many updates
    max_misses: int = 8  # ticks without a measurement before a track is dropped
    heading_speed: float = 1.5  # a track's heading follows its velocity above this speed [m/s]


@dataclass
class Track:
    id: int
    cls: str
    x: np.ndarray  # [px, py, vx, vy]
    P: np.ndarray
    hits: int = 1
    misses: int = 0
    heading: float | None = None  # direction of travel [rad], held while the object slows: it turns only while it moves


class Tracker:
    def __init__(self, params: TrackerParams | None = None) -> None:
        self.p = params or TrackerParams()
        self.reset()

    def reset(self) -> None:
        self.tracks: list[Track] = []
        self._next_id = 1
        self.t: float | None = None

    def _predict(self, dt: float) -> None:
        F = np.eye(4)
        F[0, 2] = F[1, 3] = dt
        G = np.array([[dt * dt / 2, 0], [0, dt * dt / 2], [dt, 0], [0, dt]])
        for tr in self.tracks:
            q = self.p.accel_std.get(tr.cls, 2.0) ** 2
            tr.x = F @ tr.x
            tr.P = F @ tr.P @ F.T + q * G @ G.T

    def _update(self, tr: Track, m: Measurement) -> None:
        H, z, R = [[1, 0, 0, 0], [0, 1, 0, 0]], [m.x, m.y], [m.sigma**2, m.sigma**2]
        if m.radial is not None:
            ux, uy, vr = m.radial
            H, z, R = H + [[0, 0, ux, uy]], z + [vr], R + [self.p.radial_std**2]
        H, z, R = np.array(H, dtype=float), np.array(z), np.diag(R)
        S = H @ tr.P @ H.T + R
        K = np.linalg.solve(S, H @ tr.P).T
        tr.x = tr.x + K @ (z - H @ tr.x)
        tr.P = (np.eye(4) - K @ H) @ tr.P
        tr.hits += 1
        tr.misses = 0

    def _birth(self, m: Measurement) -> None:
        x = np.array([m.x, m.y, 0.0, 0.0])
        P = np.diag([m.sigma**2, m.sigma**2, 25.0, 25.0])
        tr = Track(self._next_id, m.cls, x, P, hits=0)
        self._next_id += 1
        self._update(tr, m)
        self.tracks.append(tr)

    def update(self, t: float, measurements: list[Measurement]) -> list[Track]:
        """Advance to time t, assign measurements, and return the confirmed tracks."""
        if self.t is not None and t > self.t:
            self._predict(t - self.t)
        self.t = t
        for cls in sorted({m.cls for m in measurements} | {tr.cls for tr in self.tracks}):
            tracks = [tr for tr in self.tracks if tr.cls == cls]
            meas = [m for m in measurements if m.cls == cls]
            matched_t, matched_m = set(), set()
            if tracks and meas:
                cost = np.hypot(np.array([[tr.x[0] - m.x for m in meas] for tr in tracks]),
                                np.array([[tr.x[1] - m.y for m in meas] for tr in tracks]))
                gate = self.p.gate_m.get(cls, 3.0)
                rows, cols = linear_sum_assignment(np.where(cost > gate, 1e6, cost))
                for r, c in zip(rows, cols):
                    if cost[r, c] <= gate:
                        self._update(tracks[r], meas[c])
                        matched_t.add(r)
                        matched_m.add(c)
            for i, tr in enumerate(tracks):
                if i not in matched_t:
                    tr.misses += 1
            for j, m in enumerate(meas):
                if j not in matched_m:
                    self._birth(m)
        self.tracks = [tr for tr in self.tracks if tr.misses <= self.p.max_misses]
        for tr in self.tracks:
            if np.hypot(tr.x[2], tr.x[3]) > self.p.heading_speed:
                tr.heading = float(np.arctan2(tr.x[3], tr.x[2]))
        return [tr for tr in self.tracks if tr.hits >= self.p.confirm_hits]
