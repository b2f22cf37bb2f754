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

import numpy as np

if TYPE_CHECKING:
    from sim.infractions import EgoStep, Others


def time_to_collision(ego_xy, ego_yaw: float, ego_length: float, ego_width: float, ego_vxy,
                      x, y, yaw, length, width, vx, vy, horizon: float = np.inf) -> np.ndarray:
    """TTC [s] of the ego's box against each other box, both moving at constant velocity.

    Returns one value per other actor: 0 if the boxes overlap now, `inf` if they never touch
    within `horizon` [s] (or are moving apart). Poses are box centres [m], yaws [rad], velocities
    [m/s] in the world frame.
    """
    x, y, yaw, length, width, vx, vy = (np.asarray(a, dtype=float).reshape(-1) for a in (x, y, yaw, length, width, vx, vy))
    if len(x) == 0:
        return np.zeros(0)
    # work in the ego's frame: its axes are (1, 0) and (0, 1); the other's are (cθ, sθ), (−sθ, cθ)
    ce, se = np.cos(ego_yaw), np.sin(ego_yaw)
    dx, dy = x - ego_xy[0], y - ego_xy[1]
    wx, wy = vx - ego_vxy[0], vy - ego_vxy[1]
    rx, ry = dx * ce + dy * se, -dx * se + dy * ce  # other's centre
    qx, qy = wx * ce + wy * se, -wx * se + wy * ce  # its velocity relative to the ego
    ct, st = np.cos(yaw - ego_yaw), np.sin(yaw - ego_yaw)
    act, ast = np.abs(ct), np.abs(st)
    el, ew, ol, ow = ego_length / 2, ego_width / 2, length / 2, width / 2
    # per separating axis (rows): the offset of the centres, its rate, and the sum of half extents
    c = np.array([rx, ry, rx * ct + ry * st, -rx * st + ry * ct])
    q = np.array([qx, qy, qx * ct + qy * st, -qx * st + qy * ct])
    reach = np.array([el + ol * act + ow * ast, ew + ol * ast + ow * act,
                      ol + el * act + ew * ast, ow + el * ast + ew * act])
    still = np.abs(q) < 1e-12
    q_safe = np.where(still, 1.0, q)
    t1, t2 = (-reach - c) / q_safe, (reach - c) / q_safe
    inside = np.abs(c) <= reach
    lo = np.where(still, np.where(inside, -np.inf, np.inf), np.minimum(t1, t2))
    hi = np.where(still, np.where(inside, np.inf, -np.inf), np.maximum(t1, t2))
    enter, leave = lo.max(0), hi.min(0)
    hit = (enter <= leave) & (leave >= 0) & (enter <= horizon)
    return np.where(hit, np.maximum(enter, 0.0), np.inf)


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
        ce, se = np.cos(ego.yaw), np.sin(ego.yaw)
        evx, evy = ego.v * ce, ego.v * se
        dx, dy = others.x - ego.x, others.y - ego.y
        wx, wy = others.vx - evx, others.vy - evy
        # broad phase: the circles around both boxes come within touching distance in the horizon
        # (closest approach of the centres), and the actor is not behind the ego
        w2 = np.maximum(wx * wx + wy * wy, 1e-12)
        t_star = np.clip(-(dx * wx + dy * wy) / w2, 0.0, self.horizon)
        gap2 = (dx + wx * t_star) ** 2 + (dy + wy * t_star) ** 2
        reach = 0.5 * (np.hypot(ego.length, ego.width) + np.hypot(others.length, others.width))
        k = np.nonzero(gap2 < reach * reach)[0]
        if len(k) == 0:
            return np.inf
        k = k[dx[k] * ce + dy[k] * se > self.cos_behind * np.hypot(dx[k], dy[k])]
        if len(k) == 0:
            return np.inf
        ttc = time_to_collision((ego.x, ego.y), ego.yaw, ego.length, ego.width, (evx, evy), others.x[k], others.y[k],
                                others.yaw[k], others.length[k], others.width[k], others.vx[k], others.vy[k],
                                self.horizon)
        ttc = ttc[ttc > 0]  # in contact now: a collision, not a TTC
        return float(ttc.min()) if len(ttc) else np.inf

    @property
    def below_fraction(self) -> float:
        """Fraction of agent ticks with TTC below the bound."""
        return self.below / self.ticks if self.ticks else 0.0
