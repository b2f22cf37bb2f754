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


PROBE, CLEARANCE = 0.9, 0.3  # a walker's next step ahead; the room it keeps from a car's body [m]
HALF = 0.3  # a walker's half width [m]
DETOUR_MAX, DETOUR_EPS = 6.0, 0.1  # the farthest a walker goes aside; its margin past a car's end [m]


@njit(cache=True)
def walkers_held(bx, by, byaw, px, py, go, off, off_goal, vx, vy, vyaw, vv, length, width, active, paused, dt,
                 max_pause):
    """(held, paused [s]) per walker, and its `off_goal` (set in place): where to stand beside its
    path point (bx, by, heading byaw); (px, py) is where it stands now, `off` from that point.

    A walker is held while its next step (`PROBE` ahead) would be inside a car's body grown by
    `CLEARANCE`, and while it steps aside. Held by a standing car (and no moving one) for
    `max_pause`, it goes round it: aside just past the car's end, the rear first (see `_detour`),
    and on along its path from there. If neither end can be reached it waits. Off its path and
    not held, it heads back once its path point is clear (`_back_clear`), else keeps its offset.
    """
    n = len(px)
    held, paused_o = np.zeros(n, np.bool_), np.empty(n)
    for i in range(n):
        qx = px[i] + PROBE * math.cos(byaw[i])
        qy = py[i] + PROBE * math.sin(byaw[i])
        blocked, by_moving = False, False
        for j in range(len(vx)):
            if active[j] and _in_body(qx, qy, j, vx, vy, vyaw, length, width):
                blocked = True
                by_moving = by_moving or vv[j] > 0.2
        paused_o[i] = paused[i] + dt if blocked else 0.0
        held[i] = blocked
        ox, oy = off[i, 0], off[i, 1]
        gx, gy = off_goal[i, 0], off_goal[i, 1]
        if gx != ox or gy != oy:
            if (gx != 0.0 or gy != 0.0) and _aside_clear(bx[i] + gx, by[i] + gy, byaw[i], px[i], py[i], vx, vy, vyaw,
                                                          length, width, active):
                held[i] = True  # stepping aside: on once there
                continue
            off_goal[i, 0], off_goal[i, 1] = ox, oy  # an aside no longer clear, or a way back: stop here
        if blocked:
            if go[i] and not by_moving and paused_o[i] >= max_pause:
                ok, g = _detour(bx[i], by[i], byaw[i], px[i], py[i], qx, qy, vx, vy, vyaw, length, width, active)
                if ok:
                    off_goal[i, 0], off_goal[i, 1] = g * -math.sin(byaw[i]), g * math.cos(byaw[i])
        elif (ox != 0.0 or oy != 0.0) and _back_clear(bx[i], by[i], byaw[i], px[i], py[i], vx, vy, vyaw, length,
                                                       width, active):
            off_goal[i, 0], off_goal[i, 1] = 0.0, 0.0
    return held, paused_o


@njit(cache=True)
def _in_body(x, y, j, vx, vy, vyaw, length, width) -> bool:
    """Is (x, y) inside vehicle j's body grown by `CLEARANCE`?"""
    dx, dy = x - vx[j], y - vy[j]
    c, s = math.cos(vyaw[j]), math.sin(vyaw[j])
    return abs(dx * c + dy * s) < length[j] / 2 + CLEARANCE and abs(-dx * s + dy * c) < width[j] / 2 + CLEARANCE


@njit(cache=True)
def box_hits(cx, cy, ux, uy, hl, hw, vx, vy, vyaw, length, width, active) -> int:
    """The first active vehicle whose body grown by `CLEARANCE` overlaps the box at (cx, cy) with
    unit axis (ux, uy) and half extents hl along it, hw across it; −1 if none (separating axes)."""
    for j in range(len(vx)):
        if not active[j]:
            continue
        bl, bw = length[j] / 2 + CLEARANCE, width[j] / 2 + CLEARANCE
        dx, dy = vx[j] - cx, vy[j] - cy
        if math.hypot(dx, dy) >= math.hypot(hl, hw) + math.hypot(bl, bw):
            continue
        c, s = math.cos(vyaw[j]), math.sin(vyaw[j])
        a1b1, a1b2 = abs(ux * c + uy * s), abs(-ux * s + uy * c)  # |axis of A · axis of B|
        a2b1, a2b2 = abs(-uy * c + ux * s), abs(uy * s + ux * c)
        if (abs(dx * ux + dy * uy) >= hl + bl * a1b1 + bw * a1b2
                or abs(-dx * uy + dy * ux) >= hw + bl * a2b1 + bw * a2b2
                or abs(dx * c + dy * s) >= bl + hl * a1b1 + hw * a2b1
                or abs(-dx * s + dy * c) >= bw + hl * a1b2 + hw * a2b2):
            continue
        return j
    return -1


@njit(cache=True)
def _walk_hits(x0, y0, x1, y1, vx, vy, vyaw, length, width, active) -> int:
    """`box_hits` for a walker's body going from (x0, y0) to (x1, y1)."""
    d = math.hypot(x1 - x0, y1 - y0)
    if d == 0.0:
        return box_hits(x0, y0, 1.0, 0.0, HALF, HALF, vx, vy, vyaw, length, width, active)
    return box_hits((x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / d, (y1 - y0) / d, d / 2 + HALF, HALF, vx, vy,
                    vyaw, length, width, active)


@njit(cache=True)
def _spot_hits(x, y, yaw, vx, vy, vyaw, length, width, active) -> int:
    """`box_hits` for a walker standing at (x, y) with its next step (heading yaw)."""
    c, s = math.cos(yaw), math.sin(yaw)
    return _walk_hits(x, y, x + PROBE * c, y + PROBE * s, vx, vy, vyaw, length, width, active)


@njit(cache=True)
def _aside_clear(gx, gy, yaw, px, py, vx, vy, vyaw, length, width, active) -> bool:
    """Can a walker at (px, py) step aside to (gx, gy) and walk on (heading yaw) from there?"""
    return (_spot_hits(gx, gy, yaw, vx, vy, vyaw, length, width, active) < 0
            and _walk_hits(px, py, gx, gy, vx, vy, vyaw, length, width, active) < 0)


@njit(cache=True)
def _back_clear(bx, by, yaw, px, py, vx, vy, vyaw, length, width, active) -> bool:
    """Can a walker at (px, py) go back to its path point (bx, by) and walk on from there?"""
    return (_spot_hits(bx, by, yaw, vx, vy, vyaw, length, width, active) < 0
            and _walk_hits(px, py, bx, by, vx, vy, vyaw, length, width, active) < 0)


@njit(cache=True)
def _extent(bx, by, nx, ny, j, grow, vx, vy, vyaw, length, width):
    """(lo, hi): vehicle j's body grown by `grow` [m] projected on the axis (nx, ny) through (bx, by)."""
    c, s = math.cos(vyaw[j]), math.sin(vyaw[j])
    mid = (vx[j] - bx) * nx + (vy[j] - by) * ny
    ext = (length[j] / 2 + grow) * abs(c * nx + s * ny) + (width[j] / 2 + grow) * abs(-s * nx + c * ny)
    return mid - ext, mid + ext


@njit(cache=True)
def _detour(bx, by, byaw, px, py, qx, qy, vx, vy, vyaw, length, width, active):
    """(found, g): the offset g [m, left of the path] beside the path point (bx, by) from which a
    walker at (px, py), its next step (qx, qy) blocked by standing cars, can walk past them.

    Candidates are just past either end of the blocking cars' bodies grown by `CLEARANCE` and the
    walker's half width, across the path: on the side of the (first) car's rear first (it leaves
    the car free to drive off), else the front; for a car lying along the path, the nearer end
    first. A candidate that another car covers moves past that car too, up to `DETOUR_MAX`. One
    is usable if the walker can step there and walk on (`_aside_clear`)."""
    c, s = math.cos(byaw), math.sin(byaw)
    nx, ny = -s, c
    lo, hi, across = np.inf, -np.inf, 0.0
    for j in range(len(vx)):
        if active[j] and _in_body(qx, qy, j, vx, vy, vyaw, length, width):
            a, b = _extent(bx, by, nx, ny, j, CLEARANCE + HALF, vx, vy, vyaw, length, width)
            lo, hi = min(lo, a), max(hi, b)
            if across == 0.0:  # the car's heading across the path: + its front on the left
                across = math.cos(vyaw[j]) * nx + math.sin(vyaw[j]) * ny
    if lo > hi:
        return False, 0.0
    first = -1.0 if across > 0.5 else (1.0 if across < -0.5 else (-1.0 if -lo < hi else 1.0))
    for side in (first, -first):
        g = lo - DETOUR_EPS if side < 0 else hi + DETOUR_EPS
        for _ in range(len(vx) + 1):
            if abs(g) > DETOUR_MAX:
                break
            gx, gy = bx + g * nx, by + g * ny
            j = _spot_hits(gx, gy, byaw, vx, vy, vyaw, length, width, active)
            if j < 0:
                if _walk_hits(px, py, gx, gy, vx, vy, vyaw, length, width, active) < 0:
                    return True, g
                break
            a, b = _extent(bx, by, nx, ny, j, CLEARANCE + HALF, vx, vy, vyaw, length, width)
            g_next = min(g, a - DETOUR_EPS) if side < 0 else max(g, b + DETOUR_EPS)
            if g_next == g:
                break
            g = g_next
    return False, 0.0


@njit(cache=True)
def moving_within(vx, vy, vv, active, x, y, radius, min_speed, time_gap) -> bool:
    """Is an active vehicle faster than `min_speed` [m/s] within `radius` [m] of (x, y), or
    within `time_gap` [s] of it at its speed?"""
    for i in range(len(vx)):
        if active[i] and vv[i] > min_speed and math.hypot(vx[i] - x, vy[i] - y) < max(radius, vv[i] * time_gap):
            return True
    return False
