"""Time to collision (TTC) under constant-velocity projection, with oriented boxes.

nuPlan's `time_to_collision_within_bound` (nuplan-devkit, metrics/evaluation_metrics/common) moves
the ego and every track forward at constant velocity in 0.1 s steps for up to 3 s and reports the
first time their oriented boxes intersect; the bound is 0.95 s. Here the same projection is
solved exactly: under constant velocity neither box rotates, so the pair only translates relative
to each other, and the separating-axis test over the four edge normals gives, per axis, the
interval of time in which the projections overlap. The boxes touch when all four intervals
overlap, so TTC is the latest interval start (if it is not after the earliest interval end).

Per agent tick the cost is one vectorised broad phase over all actors (the closest approach of the
two centres within the horizon against the sum of the boxes' half-diagonals: the circles around
the boxes must touch before the boxes can) and the exact test, vectorised, on the few actors that
pass it; most ticks have none.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import math

import numpy as np
from numba import njit

from sim.kernels import np_max, np_min

if TYPE_CHECKING:
    from sim.infractions import EgoStep, Others


def time_to_collision(ego_xy, ego_yaw: float, ego_length: float, ego_width: float, ego_vxy,
                      x, y, yaw, length, width, vx, vy, horizon: float = np.inf) -> np.ndarray:
    """TTC [s] of the ego's box against each other box, both moving at constant velocity.

    Returns one value per other actor: 0 if the boxes overlap now, `inf` if they never touch
    within `horizon` [s] (or are moving apart). Poses are box centres [m], yaws [rad], velocities
    [m/s] in the world frame.
    """
    x, y, yaw, length, width, vx, vy = (np.ascontiguousarray(a, dtype=float).reshape(-1)
                                        for a in (x, y, yaw, length, width, vx, vy))
    out = np.empty(len(x))
    for k in range(len(x)):
        out[k] = _ttc(float(ego_xy[0]), float(ego_xy[1]), ego_yaw, ego_length, ego_width, float(ego_vxy[0]),
                      float(ego_vxy[1]), x[k], y[k], yaw[k], length[k], width[k], vx[k], vy[k], horizon)
    return out


@njit(cache=True)
def _ttc(ex, ey, ego_yaw, ego_length, ego_width, evx, evy, x, y, yaw, length, width, vx, vy, horizon) -> float:
    """`time_to_collision` of one pair."""
    # work in the ego's frame: its axes are (1, 0) and (0, 1); the other's are (cθ, sθ), (−sθ, cθ)
    ce, se = math.cos(ego_yaw), math.sin(ego_yaw)
    dx, dy = x - ex, y - ey
    wx, wy = vx - evx, vy - evy
    rx, ry = dx * ce + dy * se, -dx * se + dy * ce  # other's centre
    qx, qy = wx * ce + wy * se, -wx * se + wy * ce  # its velocity relative to the ego
    ct, st = math.cos(yaw - ego_yaw), math.sin(yaw - ego_yaw)
    act, ast = abs(ct), abs(st)
    el, ew, ol, ow = ego_length / 2, ego_width / 2, length / 2, width / 2
    # per separating axis: the offset of the centres, its rate, and the sum of half extents; the
    # boxes overlap while every axis' interval does
    c = (rx, ry, rx * ct + ry * st, -rx * st + ry * ct)
    q = (qx, qy, qx * ct + qy * st, -qx * st + qy * ct)
    reach = (el + ol * act + ow * ast, ew + ol * ast + ow * act, ol + el * act + ew * ast, ow + el * ast + ew * act)
    enter, leave = -np.inf, np.inf
    for a in range(4):
        if abs(q[a]) < 1e-12:  # still along this axis: overlapping always or never
            inside = abs(c[a]) <= reach[a]
            lo, hi = (-np.inf, np.inf) if inside else (np.inf, -np.inf)
        else:
            t1, t2 = (-reach[a] - c[a]) / q[a], (reach[a] - c[a]) / q[a]
            lo, hi = np_min(t1, t2), np_max(t1, t2)
        enter, leave = np_max(enter, lo), np_min(leave, hi)
    if enter <= leave and leave >= 0 and enter <= horizon:
        return np_max(enter, 0.0)
    return np.inf


class TTCMetric:
    """Minimum TTC over an episode and the fraction of agent ticks with TTC below the bound.

    As nuPlan: no TTC while the ego is stopped, actors whose centre lies behind the ego (bearing
    beyond `behind_deg`) are ignored (they would run into the ego), and so are actors already in
    contact (collisions are scored by the collision criterion, which sets min TTC to 0 when the
    ego is at fault).
    """

    def __init__(self, horizon: float = 3.0, bound: float = 0.95, stopped_speed: float = 5e-3,
                 behind_deg: float = 150.0) -> None:
        self.horizon = horizon  # [s] nuPlan time_horizon
        self.bound = bound  # [s] nuPlan least_min_ttc
        self.stopped_speed = stopped_speed  # [m/s] nuPlan's TTC stopped_speed_threshold
        self.cos_behind = float(np.cos(np.radians(behind_deg)))  # nuPlan is_agent_behind: 150°
        self.min_ttc = np.inf
        self.ticks = 0
        self.below = 0

    def update(self, ego: EgoStep, others: Others) -> float:
        """TTC at this tick [s] (`inf` when nothing is on a collision course within the horizon)."""
        self.ticks += 1
        ttc = self.compute(ego, others)
        self.min_ttc = min(self.min_ttc, ttc)
        self.below += ttc < self.bound
        return ttc

    def compute(self, ego: EgoStep, others: Others) -> float:
        if ego.v <= self.stopped_speed or len(others.id) == 0:
            return np.inf
        return _min_ttc(float(ego.x), float(ego.y), float(ego.yaw), float(ego.v), float(ego.length), float(ego.width),
                        others.x, others.y, others.yaw, others.length, others.width, others.vx, others.vy,
                        self.horizon, self.cos_behind)

    @property
    def below_fraction(self) -> float:
        """Fraction of agent ticks with TTC below the bound."""
        return self.below / self.ticks if self.ticks else 0.0


@njit(cache=True)
def _min_ttc(ex, ey, ego_yaw, ego_v, ego_length, ego_width, x, y, yaw, length, width, vx, vy, horizon, cos_behind):
    """`TTCMetric.compute` past its stopped-ego test: the least positive TTC [s], or inf."""
    ce, se = math.cos(ego_yaw), math.sin(ego_yaw)
    evx, evy = ego_v * ce, ego_v * se
    ego_reach = math.hypot(ego_length, ego_width)
    best = np.inf
    for k in range(len(x)):
        dx, dy = x[k] - ex, y[k] - ey
        wx, wy = vx[k] - evx, vy[k] - evy
        # broad phase: the circles around both boxes come within touching distance in the horizon
        # (closest approach of the centres), and the actor is not behind the ego
        w2 = np_max(wx * wx + wy * wy, 1e-12)
        t_star = np_min(np_max(-(dx * wx + dy * wy) / w2, 0.0), horizon)
        gx, gy = dx + wx * t_star, dy + wy * t_star
        reach = 0.5 * (ego_reach + math.hypot(length[k], width[k]))
        if not gx * gx + gy * gy < reach * reach or not dx * ce + dy * se > cos_behind * math.hypot(dx, dy):
            continue
        ttc = _ttc(ex, ey, ego_yaw, ego_length, ego_width, evx, evy, x[k], y[k], yaw[k], length[k], width[k], vx[k],
                   vy[k], horizon)
        if ttc > 0:  # in contact now: a collision, not a TTC
            best = np_min(best, ttc)
    return best
