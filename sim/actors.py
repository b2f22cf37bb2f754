"""Actors as struct-of-arrays, so that a world tick is a handful of numpy calls."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim.geometry import arc_length

from sim.vehicle_model import VehicleParams

EGO, NPC, PARKED = 0, 1, 2


@dataclass
class Vehicles:
    """Every vehicle, the ego (row 0) included. Parked cars are vehicles that never move."""

    id: np.ndarray  # actor ids, unique across the world
    role: np.ndarray  # EGO | NPC | PARKED
    x: np.ndarray  # centre [m]
    y: np.ndarray
    yaw: np.ndarray  # [rad]
    v: np.ndarray  # [m/s]
    steer: np.ndarray  # [rad]
    accel: np.ndarray  # [m/s²]
    length: np.ndarray  # [m]
    width: np.ndarray  # [m]
    colour: np.ndarray  # n×3 RGB in 0–1, for the sensors
    cmd_steer: np.ndarray = field(init=False)  # commands applied on the next physics step
    cmd_accel: np.ndarray = field(init=False)
    active: np.ndarray = field(init=False)  # False once a vehicle has left the map

    def __post_init__(self) -> None:
        self.cmd_steer = np.zeros(len(self.id))
        self.cmd_accel = np.zeros(len(self.id))
        self.active = np.ones(len(self.id), dtype=bool)

    def __len__(self) -> int:
        return len(self.id)


@dataclass
class Pedestrians:
    """Walkers that follow polylines at their own speed; `go` gates scripted or waiting walkers.

    All paths are packed into one array (walker i's arc length offset by i·PACK) so that
    poses for every walker come from one `np.interp`.
    """

    id: np.ndarray
    path: list[np.ndarray]  # per walker: N×2 polyline [m]
    crosswalk: list[np.ndarray]  # per walker: crosswalk index per path segment, or −1
    loop: np.ndarray  # bool: walk the path forever, else stop at its end
    s: np.ndarray  # progress [m]
    speed: np.ndarray  # walking speed [m/s]
    go: np.ndarray  # bool: walking (False: standing, waiting for a trigger or a gap)
    x: np.ndarray = field(init=False)
    y: np.ndarray = field(init=False)
    yaw: np.ndarray = field(init=False)
    v: np.ndarray = field(init=False)
    length: np.ndarray = field(init=False)
    width: np.ndarray = field(init=False)

    PACK = 1e5

    def __post_init__(self) -> None:
        n = len(self.id)
        self.x, self.y, self.yaw, self.v = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
        self.length, self.width = np.full(n, 0.6), np.full(n, 0.6)
        keys, xy, seg_yaw, cw = [], [], [], []
        self.path_len = np.zeros(n)
        for i, (p, c) in enumerate(zip(self.path, self.crosswalk)):
            s = arc_length(p)
            self.path_len[i] = s[-1]
            keys.append(i * self.PACK + s)
            xy.append(p)
            d = np.diff(p, axis=0)
            seg_yaw.append(np.append(np.arctan2(d[:, 1], d[:, 0]), np.arctan2(d[-1, 1], d[-1, 0])))
            cw.append(np.append(c, -1))
        empty = np.zeros((0, 2))
        self._keys = np.concatenate(keys) if n else np.zeros(0)
        self._xy = np.concatenate(xy) if n else empty
        self._yaw = np.concatenate(seg_yaw) if n else np.zeros(0)
        self._cw = np.concatenate(cw).astype(int) if n else np.zeros(0, dtype=int)
        self._base = np.arange(n) * self.PACK
        self.update_pose()

    def __len__(self) -> int:
        return len(self.id)

    def _key(self, ahead: np.ndarray | float = 0.0) -> np.ndarray:
        s = self.s + ahead
        return self._base + np.where(self.loop, s % np.maximum(self.path_len, 1e-9), np.minimum(s, self.path_len))

    def update_pose(self) -> None:
        if not len(self.id):
            return
        key = self._key()
        self.x = np.interp(key, self._keys, self._xy[:, 0])
        self.y = np.interp(key, self._keys, self._xy[:, 1])
        seg = np.searchsorted(self._keys, key, side="right") - 1
        self.yaw = self._yaw[seg]

    def crosswalk_ahead(self, ahead: float) -> np.ndarray:
        """Crosswalk index of each walker's path segment `ahead` metres on, or −1."""
        if not len(self.id):
            return np.zeros(0, dtype=int)
        return self._cw[np.searchsorted(self._keys, self._key(ahead), side="right") - 1]


def vehicle_params(length: float, width: float, base: VehicleParams = VehicleParams()) -> VehicleParams:
    """Per-size parameters: the wheelbase scales with length."""
    return VehicleParams(**{**base.__dict__, "length": length, "width": width, "wheelbase": 0.61 * length})
