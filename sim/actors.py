"""Actors as struct-of-arrays, so that a world tick is a handful of numpy calls."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numba import njit

from sim.geometry import arc_length
from sim.kernels import np_max, np_min, bisect_right, interp_at, locate

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
        self._x, self._y = self._xy[:, 0].copy(), self._xy[:, 1].copy()
        self.update_pose()

    def __len__(self) -> int:
        return len(self.id)

    def advance(self, dt: float, held: np.ndarray) -> None:
        """Walk for dt [s]: everyone whose `go` is set and who is not `held` (bool per walker)."""
        if len(self.id):
            self.v, self.s, self.x, self.y, self.yaw = _advance(
                dt, held, self.go, self.speed, self.s, self.loop, self.path_len, self._base, self._keys, self._x,
                self._y, self._yaw)

    def update_pose(self) -> None:
        if len(self.id):
            _, _, self.x, self.y, self.yaw = _advance(0.0, np.ones(len(self.id), dtype=bool), self.go, self.speed,
                                                      self.s, self.loop, self.path_len, self._base, self._keys,
                                                      self._x, self._y, self._yaw)

    def at_kerb(self, ahead: float) -> list[tuple[int, int]]:
        """(walker, crosswalk) for looping walkers whose crosswalk starts within `ahead` [m]; every
        other looping walker gets `go` (set here)."""
        if not len(self.id):
            return []
        return _at_kerb(ahead, self.s, self.loop, self.go, self.path_len, self._base, self._keys, self._cw)


@njit(cache=True)
def _path_key(s: float, loop: bool, path_len: float, base: float) -> float:
    """Packed key of arc length s on a walker's path: wrapped on loops, held at the end otherwise."""
    return base + (s % np_max(path_len, 1e-9) if loop else np_min(s, path_len))


@njit(cache=True)
def _advance(dt, held, go, speed, s, loop, path_len, base, keys, xs, ys, seg_yaw):
    """(v, s, x, y, yaw) after walking dt [s]; poses from the packed paths."""
    n = len(s)
    v_o, s_o, x_o, y_o, yaw_o = np.empty(n), np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    for i in range(n):
        v_o[i] = speed[i] if (go[i] and not held[i]) else 0.0
        s_o[i] = s[i] + v_o[i] * dt
        key = _path_key(s_o[i], loop[i], path_len[i], base[i])
        j = locate(key, keys)
        x_o[i] = interp_at(key, keys, xs, j)
        y_o[i] = interp_at(key, keys, ys, j)
        yaw_o[i] = seg_yaw[bisect_right(keys, key) - 1]
    return v_o, s_o, x_o, y_o, yaw_o


@njit(cache=True)
def _at_kerb(ahead, s, loop, go, path_len, base, keys, cw):
    """`Pedestrians.at_kerb`: the crosswalk of the segment `ahead` metres on, not yet begun."""
    out = []
    for i in range(len(s)):
        if not loop[i]:
            continue
        upcoming = cw[bisect_right(keys, _path_key(s[i] + ahead, loop[i], path_len[i], base[i])) - 1]
        current = cw[bisect_right(keys, _path_key(s[i] + 0.0, loop[i], path_len[i], base[i])) - 1]
        if upcoming >= 0 and current < 0:
            out.append((i, upcoming))
        else:
            go[i] = True
    return out


def vehicle_params(length: float, width: float, base: VehicleParams = VehicleParams()) -> VehicleParams:
    """Per-size parameters: the wheelbase scales with length."""
    return VehicleParams(**{**base.__dict__, "length": length, "width": width, "wheelbase": 0.61 * length})
