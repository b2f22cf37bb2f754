"""The world tick's compiled loops (see sim.kernels: bit-identical to the numpy they replace)."""
from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def any_near(vx, vy, vl, vw, active, px, py, pl, pw, qx, qy, ql, qw, reach2) -> bool:
    """Is any active vehicle but the ego (row 0), walker or prop centre within sqrt(reach2) [m] of
    the ego, and within the sum of the two boxes' half-diagonals?"""
    x, y = vx[0], vy[0]
    ego_reach = math.hypot(vl[0], vw[0]) / 2
    for xs, ys, ls, ws, first in ((vx, vy, vl, vw, 1), (px, py, pl, pw, 0), (qx, qy, ql, qw, 0)):
        for i in range(first, len(xs)):
            if ((xs[i] - x) * (xs[i] - x) + (ys[i] - y) * (ys[i] - y) < reach2 and (first == 0 or active[i])
                    and math.hypot(xs[i] - x, ys[i] - y) < ego_reach + math.hypot(ls[i], ws[i]) / 2):
                return True
    return False


@njit(cache=True)
def others(act, vx, vy, vyaw, vv, px, py, pyaw, pv, props):
    """Poses and velocities of the active vehicles in `act`, then the walkers, then the props."""
    n = len(act) + len(px) + len(props)
    x, y, yaw, ux, uy = np.empty(n), np.empty(n), np.empty(n), np.zeros(n), np.zeros(n)
    for k in range(len(act)):
        i = act[k]
        x[k], y[k], yaw[k] = vx[i], vy[i], vyaw[i]
        ux[k], uy[k] = vv[i] * math.cos(vyaw[i]), vv[i] * math.sin(vyaw[i])
    for i in range(len(px)):
        k = len(act) + i
        x[k], y[k], yaw[k] = px[i], py[i], pyaw[i]
        ux[k], uy[k] = pv[i] * math.cos(pyaw[i]), pv[i] * math.sin(pyaw[i])
    for i in range(len(props)):
        k = len(act) + len(px) + i
        x[k], y[k], yaw[k] = props[i, 0], props[i, 1], props[i, 2]
    return x, y, yaw, ux, uy


@njit(cache=True)
def any_in_cone(x, y, mask, x0, y0, yaw0, reach) -> bool:
    """Is a masked point ahead of (x0, y0, yaw0) within `reach` [m] and a ±30°-ish cone (1.5 m wide at 0)?"""
    c, s = math.cos(yaw0), math.sin(yaw0)
    for i in range(len(x)):
        dx, dy = x[i] - x0, y[i] - y0
        fwd = dx * c + dy * s
        if mask[i] and fwd > 0 and fwd < reach and abs(-dx * s + dy * c) < 0.6 * fwd + 1.5:
            return True
    return False


@njit(cache=True)
def walkers_held(px, py, pyaw, vx, vy, vyaw, vv, length, width, active, paused, dt, max_pause):
    """(held, paused [s]) per walker: its next step would be inside a car's body (with a margin);
    a standing car holds it for at most `max_pause` [s]."""
    probe, clearance = 0.9, 0.3  # [m]
    n = len(px)
    held, paused_o = np.zeros(n, np.bool_), np.empty(n)
    for i in range(n):
        qx = px[i] + probe * math.cos(pyaw[i])
        qy = py[i] + probe * math.sin(pyaw[i])
        blocked, by_moving = False, False
        for j in range(len(vx)):
            if not active[j]:
                continue
            dx, dy = qx - vx[j], qy - vy[j]
            c, s = math.cos(vyaw[j]), math.sin(vyaw[j])
            if abs(dx * c + dy * s) < length[j] / 2 + clearance and abs(-dx * s + dy * c) < width[j] / 2 + clearance:
                blocked = True
                by_moving = by_moving or vv[j] > 0.2
        paused_o[i] = paused[i] + dt if blocked else 0.0
        held[i] = blocked and (by_moving or paused_o[i] < max_pause)
    return held, paused_o


@njit(cache=True)
def moving_within(vx, vy, vv, active, x, y, radius, min_speed) -> bool:
    """Is an active vehicle faster than `min_speed` [m/s] within `radius` [m] of (x, y)?"""
    for i in range(len(vx)):
        if active[i] and math.hypot(vx[i] - x, vy[i] - y) < radius and vv[i] > min_speed:
            return True
    return False
