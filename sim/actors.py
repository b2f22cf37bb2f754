"""Actors as struct-of-arrays, so that a world tick is a handful of numpy calls."""
from __future__ import annotations

import math
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

    A walker going round a standing car (see `sim.world_kernels.walkers_held`) stands `off` [m]
    (x, y, in the world frame) beside its path point: it moves `off` toward `off_goal` at its
    walking speed when stepping aside (held on its path meanwhile), at half of it when drifting
    back to its path while walking. The offset is a world-frame vector, not a distance along the
    path's normal, so that a corner of the path while off it does not make the walker jump.
    `x, y` are the real pose; `yaw, v` the real heading and speed (the path's while on it);
    `path_x, path_y, path_yaw` the path point. With `off` zero the pose is the path point's.
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
    path_x: np.ndarray = field(init=False)  # the path point at s [m]
    path_y: np.ndarray = field(init=False)
    path_yaw: np.ndarray = field(init=False)  # the path's direction at s [rad]
    off: np.ndarray = field(init=False)  # n×2: where the walker stands relative to its path point [m]
    off_goal: np.ndarray = field(init=False)  # n×2: where `off` is heading [m]

    PACK = 1e5

    def __post_init__(self) -> None:
        n = len(self.id)
        self.x, self.y, self.yaw, self.v = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
        self.path_x, self.path_y, self.path_yaw = np.zeros(n), np.zeros(n), np.zeros(n)
        self.off, self.off_goal = np.zeros((n, 2)), np.zeros((n, 2))
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
        """Walk for dt [s]: everyone whose `go` is set and who is not `held` (bool per walker) along
        the path; everyone whose `go` is set toward `off_goal` beside it."""
        if len(self.id):
            (self.v, self.s, self.x, self.y, self.yaw, self.path_x, self.path_y, self.path_yaw,
             self.off) = _advance(dt, held, self.go, self.speed, self.s, self.loop, self.path_len, self._base,
                                  self._keys, self._x, self._y, self._yaw, self.off, self.off_goal)

    def update_pose(self) -> None:
        if len(self.id):
            _, _, self.x, self.y, self.yaw, self.path_x, self.path_y, self.path_yaw, _ = _advance(
                0.0, np.ones(len(self.id), dtype=bool), self.go, self.speed, self.s, self.loop, self.path_len,
                self._base, self._keys, self._x, self._y, self._yaw, self.off, self.off_goal)

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
def _advance(dt, held, go, speed, s, loop, path_len, base, keys, xs, ys, seg_yaw, off, off_goal):
    """(v, s, x, y, yaw, path x, path y, path yaw, off) after walking dt [s]; path points from the
    packed paths. Off the path (or moving toward or away from it) the pose is the path point
    plus `off` and (v, yaw) the real velocity; on it, exactly the path point's."""
    n = len(s)
    v_o, s_o, x_o, y_o, yaw_o = np.empty(n), np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    bx_o, by_o, byaw_o, off_o = np.empty(n), np.empty(n), np.empty(n), off.copy()
    for i in range(n):
        v_o[i] = speed[i] if (go[i] and not held[i]) else 0.0
        s_o[i] = s[i] + v_o[i] * dt
        key = _path_key(s_o[i], loop[i], path_len[i], base[i])
        j = locate(key, keys)
        x_o[i] = bx_o[i] = interp_at(key, keys, xs, j)
        y_o[i] = by_o[i] = interp_at(key, keys, ys, j)
        yaw_o[i] = byaw_o[i] = seg_yaw[bisect_right(keys, key) - 1]
        ox, oy, gx, gy = off[i, 0], off[i, 1], off_goal[i, 0], off_goal[i, 1]
        if go[i] and dt > 0.0 and (gx != ox or gy != oy):
            # aside at walking speed, back to the path at half of it
            step = speed[i] * dt if (gx != 0.0 or gy != 0.0) else 0.5 * speed[i] * dt
            ex, ey = gx - ox, gy - oy
            d = math.hypot(ex, ey)
            if d <= step:
                off_o[i, 0], off_o[i, 1] = gx, gy
            else:
                off_o[i, 0], off_o[i, 1] = ox + ex / d * step, oy + ey / d * step
            vx = v_o[i] * math.cos(byaw_o[i]) + (off_o[i, 0] - ox) / dt
            vy = v_o[i] * math.sin(byaw_o[i]) + (off_o[i, 1] - oy) / dt
            v_o[i], yaw_o[i] = math.hypot(vx, vy), math.atan2(vy, vx)
        if off_o[i, 0] != 0.0 or off_o[i, 1] != 0.0:
            x_o[i] += off_o[i, 0]
            y_o[i] += off_o[i, 1]
    return v_o, s_o, x_o, y_o, yaw_o, bx_o, by_o, byaw_o, off_o


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
