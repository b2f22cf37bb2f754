"""The traffic manager's compiled loops (see sim.kernels: bit-identical to the numpy they replace).

Vehicles are the manager's rows (i), actors are vehicle rows then walkers (`occupancy`), and
routes are packed into flat arrays keyed by i·PACK + route S (`TrafficManager._pack`).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from sim.kernels import INF, bisect_right, interp, interp_at, locate, np_max, np_min


@njit(cache=True)
def idm_rest(v, free, gap, v_lead, min_gap, headway, two_sqrt_ab, max_accel, max_decel):
    """`traffic.idm` after its free-road term."""
    acc = np.empty(len(v))
    for i in range(len(v)):
        s_star = min_gap + np_max(0.0, v[i] * headway + v[i] * (v[i] - v_lead[i]) / two_sqrt_ab)
        interaction = 0.0
        if math.isfinite(gap[i]):
            r = s_star / np_max(gap[i], 0.1)
            interaction = r * r
        a = max_accel * (free[i] - interaction)
        # IDM only creeps towards a standing obstacle; close in, brake kinematically to rest at s0
        to_rest = gap[i] - min_gap + 0.3
        if v_lead[i] < 0.5 and to_rest < 3.0 and v[i] < 3.0:
            a = np_min(a, -v[i] * v[i] / (2 * np_max(to_rest, 0.05)))
        acc[i] = np_min(np_max(a, -max_decel), max_accel)
    return acc


@njit(cache=True)
def progress(vx, vy, rows, S, base, length, k_keys, k_x, k_y, k_tx, k_ty, p_keys):
    """One Newton step of each vehicle's projection onto its packed route: (new S [m], piece)."""
    n = len(rows)
    S_new, piece = np.empty(n), np.empty(n, np.int64)
    for i in range(n):
        key = base[i] + np_min(np_max(S[i], 0.0), length[i])
        j = locate(key, k_keys)
        dx = vx[rows[i]] - interp_at(key, k_keys, k_x, j)
        dy = vy[rows[i]] - interp_at(key, k_keys, k_y, j)
        Si = S[i] + dx * interp_at(key, k_keys, k_tx, j) + dy * interp_at(key, k_keys, k_ty, j)
        S_new[i] = np_min(np_max(Si, 0.0), length[i])
        piece[i] = bisect_right(p_keys, base[i] + S_new[i]) - 1
    return S_new, piece


@njit(cache=True)
def occupancy_points(vx, vy, vyaw, vlength, active, px, py, pv, pyaw, rear_radius):
    """(points, radius [m], actor, index of the first rear bumper) for `occupancy`: active
    vehicles, walkers, walkers 1.5 s on, then the active vehicles' rear bumpers."""
    act = np.nonzero(active)[0]
    walking = np.nonzero(pv > 0)[0]
    n_a, n_p = len(act), len(px)
    first_rear = n_a + n_p + len(walking)
    n = first_rear + n_a
    xy, radius, who = np.empty((n, 2)), np.empty(n), np.empty(n, np.int64)
    for k in range(n_a):
        xy[k, 0], xy[k, 1], radius[k], who[k] = vx[act[k]], vy[act[k]], 2.0, act[k]
    for i in range(n_p):
        xy[n_a + i, 0], xy[n_a + i, 1], radius[n_a + i], who[n_a + i] = px[i], py[i], 2.6, len(vx) + i
    for k in range(len(walking)):
        i, m = walking[k], n_a + n_p + k
        xy[m, 0] = px[i] + 1.5 * pv[i] * math.cos(pyaw[i])
        xy[m, 1] = py[i] + 1.5 * pv[i] * math.sin(pyaw[i])
        radius[m], who[m] = 2.6, len(vx) + i
    for k in range(n_a):
        a, m = act[k], first_rear + k
        xy[m, 0] = vx[a] - vlength[a] / 2 * math.cos(vyaw[a])
        xy[m, 1] = vy[a] - vlength[a] / 2 * math.sin(vyaw[a])
        radius[m], who[m] = rear_radius, a
    return xy, radius, who, first_rear


@njit(cache=True)
def occupancy(who, pt, lane_h, n_v, v_yaw, v_speed, v_length, p_yaw, p_speed, first_rear):
    """(actor, speed along the lane [m/s], half length [m], role) of each `lanes_at` pair.

    role 0: a body (centre or walker); 1: a rear bumper on a lane it points along (half length
    0: the point is the bumper); 2: a rear bumper across a lane, which counts for nothing."""
    n = len(pt)
    actor, along, half, role = np.empty(n, np.int64), np.empty(n), np.empty(n), np.zeros(n, np.int64)
    for m in range(n):
        a = who[pt[m]]
        actor[m] = a
        if a < n_v:
            c = math.cos(v_yaw[a] - lane_h[m])
            along[m] = v_speed[a] * c
            half[m] = v_length[a] / 2
            if pt[m] >= first_rear:
                half[m] = 0.0
                role[m] = 1 if c > 0.9 else 2
        else:
            along[m] = p_speed[a - n_v] * math.cos(p_yaw[a - n_v] - lane_h[m])
            half[m] = 0.3
    return actor, along, half, role


@njit(cache=True)
def leaders(offsets, lane, s, actor, along, ohalf, role, rows, S, half, lookahead, ignored):
    """Bumper gap [m] to the nearest actor ahead on each route, and its speed along the lane [m/s].

    An actor is ahead when its lane is on the route ahead, centre to centre within (0, lookahead).
    Pairs of `occupancy`'s role 2 (a rear bumper across a lane) are skipped.
    """
    n = len(rows)
    gap, v_lead = np.empty(n), np.empty(n)
    for i in range(n):
        best, k = INF, 0
        for m in range(len(lane)):
            dist = offsets[i, lane[m]] + s[m] - S[i]  # centre to centre along the route
            if dist > 0 and dist < lookahead and role[m] != 2 and actor[m] != rows[i] and not ignored[i, actor[m]]:
                g = dist - half[i] - ohalf[m]
                if g < best:
                    best, k = g, m
        gap[i] = best
        v_lead[i] = along[k] if best < INF else 0.0
    return gap, v_lead


@njit(cache=True)
def targets(stop, end_stop, gap, v_lead, S, half, speed, desired, curve_ahead, curve_room, base, length, k_keys,
             k_cap, k_x, k_y, vx, vy, rows):
    """IDM inputs and the pure-pursuit goal per vehicle: (gap, v_lead, v0, goal dx, goal dy).

    The nearer of the leader and the stop target (junction line or goal) sets the gap; v0 is the
    desired speed capped by the curve limits `curve_ahead` metres on, reachable braking over
    `curve_room` metres.
    """
    n = len(rows)
    gap_o, lead_o, v0, gx, gy = np.empty(n), np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    for i in range(n):
        stop_gap = np_min(end_stop[i], stop[i]) - S[i] - half[i]
        if stop_gap < gap[i]:
            gap_o[i], lead_o[i] = stop_gap, 0.0
        else:
            gap_o[i], lead_o[i] = gap[i], v_lead[i]
        v = desired[i]
        for a in range(len(curve_ahead)):
            cap = interp(base[i] + np_min(np_max(S[i] + curve_ahead[a], 0.0), length[i]), k_keys, k_cap)
            v = np_min(v, math.sqrt(cap * cap + curve_room[a]))
        v0[i] = v
        ld = np_min(np_max(2.5 + 0.5 * speed[i], 4.0), 15.0)
        key = base[i] + np_min(np_max(S[i] + ld, 0.0), length[i])
        j = locate(key, k_keys)
        gx[i] = interp_at(key, k_keys, k_x, j) - vx[rows[i]]
        gy[i] = interp_at(key, k_keys, k_y, j) - vy[rows[i]]
    return gap_o, lead_o, v0, gx, gy


@njit(cache=True)
def pursuit(bearing, yaw, rows, gain, gx, gy):
    """Pure pursuit's (numerator, denominator) for arctan2, from the goal's bearing [rad] and
    offset [m]: the steer that puts the goal on the vehicle's arc."""
    n = len(rows)
    num, den = np.empty(n), np.empty(n)
    for i in range(n):
        num[i] = gain[i] * math.sin(bearing[i] - yaw[rows[i]])
        den[i] = np_max(math.hypot(gx[i], gy[i]), 1.0)
    return num, den


@njit(cache=True)
def junction_inputs(piece, p_next, p_start, S, half, speed, ignore, two_b, actor, lane, s, n_v, near_line_from,
                     box_s):
    """Per vehicle: next connector piece, its stop line [route S], bumper to line [m], and which
    vehicles ask the junction rules (near their line, or inside); and the first pair of each
    (vehicle, lane) that the rules look at: on a connector, or near a stop line, ordered by
    (actor, lane)."""
    n = len(piece)
    nxt, line_S, to_line = np.empty(n, np.int64), np.empty(n), np.empty(n)
    asking = []
    for i in range(n):
        nxt[i] = p_next[piece[i]]
        line_S[i] = p_start[nxt[i]] if nxt[i] >= 0 else INF
        to_line[i] = line_S[i] - S[i] - half[i]
        if nxt[i] >= 0 and not ignore[i] and (
                nxt[i] == piece[i] or to_line[i] < np_max(20.0, speed[i] * speed[i] / two_b + 15.0)):
            asking.append(i)
    keep = []
    for m in range(len(actor)):
        if actor[m] < n_v and (near_line_from[lane[m]] <= s[m] or s[m] < box_s):
            keep.append(m)
    keep_a = np.array(keep, dtype=np.int64)
    key = actor[keep_a] * len(near_line_from) + lane[keep_a]
    order = np.argsort(key, kind="mergesort")
    sel = []
    for q in range(len(order)):
        if q == 0 or key[order[q]] != key[order[q - 1]]:
            sel.append(keep_a[order[q]])
    return nxt, line_S, to_line, np.array(asking, dtype=np.int64), np.array(sel, dtype=np.int64)
