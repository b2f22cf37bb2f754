"""The Frenét lattice trajectory planner (Werling, Ziegler, Kammel & Thrun, ICRA 2010).

A pipeline of pure steps: lateral quintics × longitudinal quartics/quintics → costs → checks in
order of cost (kinematic limits, drivable area, predicted obstacles) → the cheapest valid one. If
none is valid, the best emergency stop.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from planning.frenet import evaluate, quartic, quintic
from planning.prediction import Prediction
from sim.map import RoadMap
from sim.route import Route
from sim.types import Trajectory


@dataclass(frozen=True)
class LatticeParams:
    horizon: float = 5.0  # [s]
    dt: float = 0.1  # [s]
    lat_offsets: tuple[float, ...] = (0.0, -0.5, 0.5, 1.0, 1.6, 2.4, 3.2)  # target d [m], + left
    lat_times: tuple[float, ...] = (2.5, 4.0)  # [s]
    lon_times: tuple[float, ...] = (2.0, 3.5, 5.0)  # [s]
    speed_fractions: tuple[float, ...] = (1.0, 0.75, 0.5, 0.25, 0.0)  # of the target speed
    stop_times: tuple[float, ...] = (2.0, 3.0, 4.0, 5.0, 6.5, 8.0, 10.0)  # [s]
    max_accel: float = 2.3  # comfort [m/s²] (nuPlan bound: 2.40)
    max_decel: float = 4.0  # comfort braking [m/s²]
    stop_jerk: float = 3.0  # peak jerk of the unasked-for comfortable stops [m/s³] (nuPlan bound: 4.13)
    emergency_decel: float = 8.0  # [m/s²]
    max_curvature: float = 0.25  # [1/m]
    max_lat_accel: float = 3.5  # along the route's curves [m/s²] (nuPlan's comfort bound: 4.89)
    max_yaw_rate: float = 0.85  # along the route's curves [rad/s] (nuPlan's comfort bound: 0.95)
    speed_tolerance: float = 1.05  # × the target speed
    k_jerk: float = 0.1
    k_time: float = 0.5
    k_lat: float = 3.0  # final lateral offset² cost
    k_speed: float = 1.0
    k_stop: float = 1.0
    vehicle_margin: float = 0.35  # clearance kept to vehicles [m]
    max_checks: int = 250  # candidates checked, cheapest first, before giving up
    k_gap: float = 2.0  # following closer than 4 m + 1.5 s behind a lead [per m²]
    k_optional_stop: float = 0.5  # × target speed²: stopping when nobody asked for it


@dataclass(frozen=True)
class PlanResult:
    trajectory: Trajectory
    emergency: bool
    checked: int  # candidates checked
    candidates: list[np.ndarray] = field(default_factory=list)  # (M×2) xy of checked candidates, for the viewer


@dataclass(frozen=True)
class Goal:
    """What the behaviour layer asks of this cycle."""

    target_speed: float  # [m/s]
    stop_at: float | None = None  # route S the front bumper must not pass [m]
    lead_s: float | None = None  # route S of the followed object's rear [m], and its speed
    lead_speed: float = 0.0
    allow_offset: bool = False  # nudge sideways (around a parked car)
    hold_at: float | None = None  # route S where the front may wait (behind a standing car) [m]


class LatticePlanner:
    def __init__(self, road_map: RoadMap, params: LatticeParams = LatticeParams(), length: float = 4.6,
                 width: float = 1.9) -> None:
        self.m, self.p = road_map, params
        self.length, self.width = length, width
        self.t = np.arange(0.0, params.horizon + 1e-9, params.dt)
        self._prev: tuple[float, np.ndarray] | None = None  # (t0, 6×M Frénet states of the last plan)

    def _start_state(self, t_now: float, s: tuple, d: tuple) -> tuple[tuple, tuple]:
        """Plan from where the last plan says we are now, unless tracking has drifted from it.

        Replanning from the measured state feeds tracking error back into the plan (a car that
        lags in a curve gets a plan that lags too); the controller corrects tracking error, the
        planner keeps its plan consistent (Werling et al. 2010, Sec. IV).
        """
        p = self.p
        if self._prev is not None:
            t0, st = self._prev
            k = (t_now - t0) / p.dt
            if 0 <= k <= len(self.t) - 1:
                ps = [float(np.interp(t_now - t0, self.t, row)) for row in st]
                if abs(ps[3] - d[0]) < 0.5 and abs(ps[1] - s[1]) < 1.5:
                    # position along the route is always measured: a car that lags its plan must
                    # not be planned as if it had arrived
                    return (s[0], ps[1], ps[2]), (ps[3], ps[4], ps[5])
        # from measurement: the measured acceleration is noisy and may sit outside the comfort box
        a0 = float(np.clip(s[2], -p.max_decel, p.max_accel))
        return (s[0], max(s[1], 0.0), max(a0, 0.0) if s[1] < 0.5 else a0), (d[0], d[1], 0.0)

    def plan(self, t_now: float, route: Route, s: tuple[float, float, float], d: tuple[float, float, float],
             goal: Goal, prediction: Prediction, heading_error: float = 0.0) -> PlanResult:
        """Plan from Frenét state s=(s, ṡ, s̈), d=(d, ḋ, d̈) of the ego's centre on `route`, whose
        heading is `heading_error` [rad] off the route's there."""
        p, t = self.p, self.t
        half = self.length / 2
        s, d = self._start_state(t_now, s, d)
        # ---- longitudinal primitives ----
        vt = max(goal.target_speed, 0.0)
        lon_c, lon_T, lon_cost = [], [], []
        v_targets = np.array([f * vt for f in p.speed_fractions])
        Tv = np.repeat(np.array(p.lon_times), len(v_targets))
        Vv = np.tile(v_targets, len(p.lon_times))
        q = quartic(s[0], s[1], s[2], Vv, 0.0, Tv)
        lon_c.append(np.pad(q, ((0, 0), (0, 1)))), lon_T.append(Tv)
        lon_cost.append(p.k_time * Tv + p.k_speed * (Vv - vt) ** 2)
        targets = []
        if goal.stop_at is not None:
            targets.append((goal.stop_at - half, 0.0))
        if goal.lead_s is not None:
            targets.append((goal.lead_s - half - 4.0 - 1.5 * goal.lead_speed, goal.lead_speed))
        for s_target, v_end in targets:
            Ts = np.array(p.stop_times)
            end = s_target if v_end == 0.0 else s_target + v_end * Ts  # a moving lead moves on
            qs = quintic(s[0], s[1], s[2], np.maximum(end, s[0]), v_end, 0.0, Ts)
            lon_c.append(qs), lon_T.append(Ts)
            lon_cost.append(p.k_time * Ts + p.k_stop * (v_end - vt) ** 2 * 0.1)  # stopping is asked for
        # stops nobody asked for, so that a safe stop is always among the candidates: comfortable
        # stops from the current speed and acceleration, and waiting behind a standing car
        # (a comfortable stop's duration follows from the speed, T = 1.5 v / a: a target that
        # recedes with every replan would never be reached, and no shorter than the jerk bound allows)
        v0, a0 = max(s[1], 0.0), s[2]
        Ta = np.maximum(1.5 * v0 / np.array([2.0, 3.0, 3.9]), comfortable_stop_time(v0, a0, p.stop_jerk))
        qs = quintic(s[0], s[1], s[2], s[0] + stop_distance(v0, a0, Ta), 0.0, 0.0, Ta)
        lon_c.append(qs), lon_T.append(Ta)
        lon_cost.append(p.k_time * Ta + p.k_optional_stop * vt**2 + 1.0)
        if goal.hold_at is not None:
            Ts = np.array(p.stop_times)
            qs = quintic(s[0], s[1], s[2], max(goal.hold_at - half, s[0]), 0.0, 0.0, Ts)
            lon_c.append(qs), lon_T.append(Ts)
            lon_cost.append(p.k_time * Ts + p.k_optional_stop * vt**2 + 1.0)
        lon_c, lon_T, lon_cost = np.vstack(lon_c), np.concatenate(lon_T), np.concatenate(lon_cost)
        S, Sd, Sdd, Sddd = evaluate(lon_c, lon_T, t)
        lon_cost = lon_cost + p.k_jerk * np.sum(Sddd**2, axis=1) * p.dt
        if goal.lead_s is not None:  # keep a time gap behind a moving lead, not just clear of it
            lead_rear = goal.lead_s + goal.lead_speed * t
            short = np.maximum(0.0, 4.0 + 1.5 * Sd - (lead_rear - S - half))
            lon_cost = lon_cost + p.k_gap * np.mean(short**2, axis=1)
        ok = (Sd.min(1) > -0.1) & (Sdd.max(1) <= p.max_accel + 1e-6) & (Sdd.min(1) >= -p.max_decel - 1e-6)
        # above the target, no faster than now, but for the rise that easing off the accelerator
        # takes within the jerk bound (a0² / 2j): without it only jerky speed changes are left
        ok &= Sd.max(1) <= max(vt * p.speed_tolerance, s[1] + 0.1 + max(s[2], 0.0) ** 2 / (2 * p.stop_jerk))
        cruise = np.zeros(len(lon_T), bool)
        cruise[: len(Tv)] = Vv > 0.0  # speed changes; a quick change to standstill is a stop
        asked = np.zeros(len(lon_T), bool)
        if goal.stop_at is not None:
            asked[len(Tv): len(Tv) + len(p.stop_times)] = True
        if goal.stop_at is not None:
            ok &= (S + half).max(1) <= goal.stop_at + 0.3
        # slow enough for the route's curves along the whole horizon (the behaviour's target speed
        # only looks at the curve ahead of where the car is now); soft if no candidate can manage it
        kappa = np.abs(np.interp(S, route.s, route.curvature))
        curve_ok = ((Sd**2 * kappa).max(1) <= p.max_lat_accel) & ((Sd * kappa).max(1) <= p.max_yaw_rate)
        if np.any(ok & curve_ok):
            ok &= curve_ok
        # speed changes within the jerk bound of the comfortable stops when one can do: the jerk
        # cost alone lets a 2 s change of target speed win from full acceleration (town_loop s3).
        # Stops keep all their durations: a crossing car may leave only a quick one
        jerky = cruise & (np.abs(Sddd).max(1) > p.stop_jerk)
        if np.any(ok & cruise & ~jerky):
            ok &= ~jerky
        jerky = asked & (np.abs(Sddd).max(1) > p.stop_jerk)
        if np.any(ok & asked & ~jerky):
            ok &= ~jerky
        # ---- lateral primitives, then check cheapest first ----
        offsets = p.lat_offsets if goal.allow_offset else (0.0,) + tuple(o for o in p.lat_offsets if abs(o) <= 0.5 and o != 0.0)
        # a car already off the drivable area (pushed there by noise, or by a policy the expert
        # shadows) may stay off it while it returns; otherwise no candidate would ever be valid
        h = route.heading_at(np.array([s[0]]))
        (x0, y0), left = route.position(s[0]), np.column_stack([-np.sin(h), np.cos(h)])[0]
        now = _corners(np.array([x0 + left[0] * d[0]]), np.array([y0 + left[1] * d[0]]), h, self.length, self.width)
        off_now = None if self.m.is_drivable(now[0]).all() else d[0]
        drawn: list[np.ndarray] = []
        # If none is valid, try once more holding the lateral offset the car has, from the heading
        # it has: a car stopped askew beside a parked car (after an emergency stop mid-nudge) can
        # only pull away straight before it returns. Standing, the Frénet state has no heading
        # (ḋ = v sin Δψ = 0), so the candidates would start along the lane and their first pose
        # would touch the parked car; there the car's own heading fades out over one car length.
        # Only the fallback does this, so every plan found by the first pass stays as it was.
        held = heading_error - float(np.arctan2(d[1], max(s[1], 1e-3)))  # the car's heading off the Frénet one
        for targets, lag in ((offsets, 0.0), ((d[0],), held)):
            found = self._search(t_now, route, s, d, np.array(targets), S, Sd, Sdd, lon_cost, ok, prediction, off_now,
                                 drawn, lag)
            if found is not None:
                return PlanResult(found, False, len(drawn), drawn)
        self._prev = None
        return PlanResult(self._emergency(t_now, route, s, d), True, len(drawn), drawn)

    def _search(self, t_now, route, s, d, offsets, S, Sd, Sdd, lon_cost, ok, prediction, off_now,
                drawn: list, lag: float) -> Trajectory | None:
        """The cheapest valid combination of the longitudinal candidates `ok` with lateral quintics
        to `offsets`, or None; every checked candidate is appended to `drawn`."""
        p, t = self.p, self.t
        Tl = np.repeat(np.array(p.lat_times), len(offsets))
        Dl = np.tile(offsets, len(p.lat_times))
        lat_c = quintic(d[0], d[1], d[2], Dl, 0.0, 0.0, Tl)
        D, Dd, Ddd, Dddd = evaluate(lat_c, Tl, t)
        lat_cost = p.k_jerk * np.sum(Dddd**2, axis=1) * p.dt + p.k_time * Tl + p.k_lat * Dl**2
        lon_idx = np.nonzero(ok)[0]
        total = lat_cost[:, None] + lon_cost[None, lon_idx]
        order = np.argsort(total, axis=None, kind="stable")
        for flat in order[: p.max_checks]:
            i, j = np.unravel_index(flat, total.shape)
            k = lon_idx[j]
            traj = self._to_world(t_now, route, S[k], Sd[k], Sdd[k], D[i], Dd[i], lag)
            drawn.append(np.column_stack([traj.x, traj.y]))
            if self._valid(traj, prediction, D[i], off_now):
                self._prev = (t_now, np.stack([S[k], Sd[k], Sdd[k], D[i], Dd[i], Ddd[i]]))
                return traj
        return None

    # ---- steps ---------------------------------------------------------------------------------
    def _to_world(self, t_now, route: Route, S, Sd, Sdd, D, Dd, lag: float = 0.0) -> Trajectory:
        """`lag`: how far the car's heading is off the candidate's at the start [rad]; it fades out
        over the first car length travelled."""
        kappa = np.interp(S, route.s, route.curvature)
        h = np.interp(S, route.s, route.heading)
        px, py = np.interp(S, route.s, route.points[:, 0]), np.interp(S, route.s, route.points[:, 1])
        x, y = px - np.sin(h) * D, py + np.cos(h) * D
        along = Sd * (1 - kappa * D)
        yaw = h + np.arctan2(Dd, np.maximum(along, 1e-3)) + lag * np.clip(1.0 - (S - S[0]) / self.length, 0.0, 1.0)
        v = np.hypot(along, Dd)
        # heading change per metre travelled; below 1 m/s that is noise, so take the route's
        curv = np.gradient(np.unwrap(yaw), self.p.dt) / np.maximum(v, 1e-3)
        curv = np.where(v > 1.0, curv, kappa)
        return Trajectory(t_now + self.t, x, y, yaw, v, Sdd, curv)

    def _valid(self, traj: Trajectory, pred: Prediction, D: np.ndarray, off_now: float | None) -> bool:
        """Within curvature, inside the drivable area from 1 s on, clear of the predicted obstacles.

        `off_now`: the ego's (signed) lateral offset [m] when it is off the drivable area now. Then
        a sample outside is allowed while it is no farther out than that on the same side (the
        candidate returns), as long as the candidate ends inside."""
        if np.abs(traj.curvature).max() > self.p.max_curvature:
            return False
        step = slice(10, None, 5)  # from 1 s on: where the ego is now is not the candidate's fault
        corners = _corners(traj.x[step], traj.y[step], traj.yaw[step], self.length, self.width).reshape(-1, 2)
        inside = self.m.is_drivable(corners).reshape(-1, 4).all(1)
        if off_now is not None:
            out = np.sign(off_now) * D[step]  # how far out on the side the car is off [m]
            if not inside[-1] or not np.all(inside | ((out >= 0.0) & (out <= abs(off_now) + 1e-6))):
                return False
        elif not np.all(inside):
            return False
        return not collides(traj, pred, self.length, self.width, self.p.vehicle_margin)

    def _emergency(self, t_now, route: Route, s, d) -> Trajectory:
        """Brake as hard as allowed along the current lateral offset."""
        t = self.t
        v0 = max(s[1], 0.0)
        t_stop = v0 / self.p.emergency_decel
        tc = np.minimum(t, t_stop)
        S = s[0] + v0 * tc - 0.5 * self.p.emergency_decel * tc**2
        Sd = np.maximum(v0 - self.p.emergency_decel * t, 0.0)
        Sdd = np.where(t < t_stop, -self.p.emergency_decel, 0.0)
        D = np.full_like(t, d[0])
        return self._to_world(t_now, route, S, Sd, Sdd, D, np.zeros_like(t))


def stop_distance(v0: float, a0: float, T):
    """Where the minimum-jerk stop from (v0, a0) over T ends [m]: the quartic to (v, a) = (0, 0),
    whose jerk is linear in time, from −(4 a0 / T + 6 v0 / T²) at the start to 2 a0 / T + 6 v0 / T²."""
    return v0 * T / 2 + a0 * np.square(T) / 12


def comfortable_stop_time(v0: float, a0: float, jerk: float) -> float:
    """The shortest minimum-jerk stop from (v0, a0) whose jerk stays within ±`jerk` and that never
    reverses [s]. At a0 = 0 it is √(6 v0 / jerk); a car still accelerating needs longer (from
    +1.8 m/s² at 1.6 m/s, 3.4 s instead of 1.8 at 3 m/s³)."""
    T = np.arange(0.3, 12.0, 0.05)
    peak = np.maximum(np.abs(4 * a0 / T + 6 * v0 / T**2), np.abs(2 * a0 / T + 6 * v0 / T**2))
    # speed along the stop, v(t) = v0 + a0 t + 3 c3 t² + 4 c4 t³, sampled at 20 points
    c4 = (v0 + a0 * T / 2) / (2 * T**3)
    c3 = -a0 / (6 * T) - (v0 + a0 * T / 2) / T**2
    tt = T[:, None] * np.linspace(0.0, 1.0, 20)[None, :]
    forward = (v0 + a0 * tt + 3 * c3[:, None] * tt**2 + 4 * c4[:, None] * tt**3).min(1) >= -0.05
    if np.any(forward & (peak <= jerk)):
        return float(T[np.argmax(forward & (peak <= jerk))])
    if np.any(forward):
        return float(T[forward][np.argmin(peak[forward])])  # braking hard already: the gentlest there is
    return float(T[0])  # braking so hard at so low a speed that it stops at once


def _corners(x, y, yaw, length, width) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    hl, hw = length / 2, width / 2
    ox = np.array([hl, -hl, -hl, hl])
    oy = np.array([hw, hw, -hw, -hw])
    return np.stack([x[:, None] + ox * c[:, None] - oy * s[:, None], y[:, None] + ox * s[:, None] + oy * c[:, None]], -1)


def collides(traj: Trajectory, pred: Prediction, length: float, width: float, margin: float) -> bool:
    """Does the ego, covered by three discs along its body, touch any predicted obstacle's discs?"""
    if len(pred) == 0:
        return False
    k = min(len(traj.t), pred.x.shape[1])
    # ego discs at −L/3, 0, +L/3 along the body: radius covers the half-width and a sixth of the length
    r_e = np.hypot(length / 6, width / 2)
    off = np.array([-length / 3, 0.0, length / 3])
    ex = traj.x[:k, None] + np.cos(traj.yaw[:k, None]) * off  # (k, 3)
    ey = traj.y[:k, None] + np.sin(traj.yaw[:k, None]) * off
    # obstacle discs: three along vehicles, one on pedestrians (offset 0 repeated)
    n_disc = np.where(pred.length > 2.0, 3, 1)
    ooff = np.stack([-pred.length / 3, np.zeros(len(pred)), pred.length / 3], 1) * (n_disc[:, None] == 3)
    r_o = np.where(n_disc == 3, np.hypot(pred.length / 6, pred.width / 2), np.hypot(pred.length, pred.width) / 2)
    ox = pred.x[:, None, :k] + np.cos(pred.yaw[:, None, :k]) * ooff[:, :, None]  # (N, 3, k)
    oy = pred.y[:, None, :k] + np.sin(pred.yaw[:, None, :k]) * ooff[:, :, None]
    dx = ex.T[None, :, None, :] - ox[:, None, :, :]  # (N, 3e, 3o, k)
    dy = ey.T[None, :, None, :] - oy[:, None, :, :]
    # vehicles keep `margin`; one that is about that close already (the ego squeezing past a parked
    # car) gets it back as the two move apart or past each other, over both their lengths, or every
    # candidate would be blocked as the bodies slide past. By distance, not time: an ego stopped
    # beside a parked car pulls away slowly, and a second was too short for it to get clear of the
    # car (parked_car_blocking seed 0 stood there to the end). Pedestrians carry their own growing
    # uncertainty margin instead.
    base = r_e + r_o[:, None, None, None] + pred.margin[:, None, None, :k]
    close_now = np.any(dx[..., 0] ** 2 + dy[..., 0] ** 2 < (base[..., 0] + 2 * margin) ** 2, axis=(1, 2))
    moved = np.hypot(traj.x[None, :k] - traj.x[0] - (pred.x[:, :k] - pred.x[:, :1]),
                     traj.y[None, :k] - traj.y[0] - (pred.y[:, :k] - pred.y[:, :1]))  # (N, k) relative travel
    ramp = np.where(close_now[:, None], np.minimum(moved / (length + pred.length)[:, None], 1.0), 1.0)
    extra = np.where((pred.length > 2.0)[:, None], margin * ramp, 0.0)
    reach = base + extra[:, None, None, :]
    return bool(np.any(dx * dx + dy * dy < reach * reach))
