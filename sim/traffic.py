"""The traffic manager: the rule-based driver of NPC vehicles, and of the ego under `autopilot`.

Per tick (10 Hz), for all managed vehicles at once:
- progress along each route, from packed route polylines (one `np.interp` for everyone);
- who is in front: every actor is matched to every lane it physically occupies, so a car crossing
  a junction or a pedestrian on a crosswalk is a leader for whoever's route runs through it;
- IDM car following (Treiber et al. 2000) with curve-speed limits and stop targets;
- pure-pursuit steering;
- junctions by reservation of conflicting connectors, after the light, stop-sign, arrival-order
  and gap-acceptance rules allow it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim.actors import Pedestrians, Vehicles
from sim.map import RoadMap
from sim.route import Route, build_route
from sim.types import Command, LightState

PACK = 1e5  # route arc-length offset between vehicles in the packed arrays [m]
CONTACT = 1.5  # from a conflict point to where two cars' bodies can first touch [m]
BOX_ROOM = 3.0  # free length, beyond a car's own, needed on the exit lane to enter a junction [m]


@dataclass(frozen=True)
class DriverParams:
    """IDM and rule parameters (IDM values from Treiber & Kesting, urban traffic)."""

    time_headway: float = 1.5  # [s]
    min_gap: float = 2.0  # [m]
    max_accel: float = 2.0  # [m/s²]
    comfort_decel: float = 3.0  # [m/s²]
    max_decel: float = 8.0  # [m/s²]
    delta: float = 4.0
    max_lat_accel: float = 3.0  # curve speed limit [m/s²]
    gap_acceptance: float = 4.5  # time gap needed before crossing priority traffic [s]
    stop_speed: float = 0.1  # a full stop, as CARLA's stop-sign test [m/s]
    lookahead: float = 80.0  # leader search range [m]
    runner_decel: float = 4.5  # braking a driver facing red needs beyond which it will not stop [m/s²]
    stale_wait: float = 10.0  # at an all-way stop, stop deferring to a waiting ego after this [s]


@dataclass
class Driver:
    """Per-vehicle state of the rule-based driver."""

    route: Route
    desired_speed: float  # [m/s]
    ignore_lights: bool = False  # red-light runners
    wander: bool = True  # extend the route at random when it runs out
    stop_at_end: bool = False  # come to a stop at the route's end (the ego's goal)
    brake: float | None = None  # scripted hard brake [m/s²] while set
    brake_until: float | None = None  # [s]
    S: float = 0.0  # progress along the route [m]
    reserved: str | None = None  # connector lane held
    seen_reserved: bool = False
    stopped_at: float | None = None  # time of the full stop at the current stop line [s]
    offsets: dict[int, float] = field(default_factory=dict)  # lane index → route S at lane s=0
    moved: bool = False  # S was set directly since the last packing
    pack: dict | None = None  # cached per-route arrays for the traffic manager


class TrafficManager:
    def __init__(self, m: RoadMap, vehicles: Vehicles, peds: Pedestrians, rng: np.random.Generator,
                 params: DriverParams = DriverParams()) -> None:
        self.m, self.veh, self.peds, self.rng, self.p = m, vehicles, peds, rng, params
        self.drivers: dict[int, Driver] = {}
        self.rows, self.S = np.zeros(0, dtype=int), np.zeros(0)
        self.reservations: dict[str, int] = {}  # connector → vehicle row
        self.waiting: dict[str, dict[int, tuple[float, str | None]]] = {j: {} for j in m.junctions}
        # lane s beyond which a vehicle matters to junction rules: all of a connector, the last 60 m
        # of a lane that enters a junction, none of other lanes
        self._near_line_from = np.array([
            0.0 if m.lanes[lid].junction else (m.lanes[lid].length - 60.0 if any(
                m.lanes[c].junction for c in m.lanes[lid].successors) else np.inf) for lid in m.lane_ids])
        self._left_stop: set[int] = set()  # vehicles near an all-way stop line that have stopped there
        # approach lanes of all-way stops: lane index → (junction, lane length)
        self._allway_lanes = {m.lane_index[m.lanes[c].entry]: (j.id, m.lanes[m.lanes[c].entry].length)
                              for j in m.junctions.values() if j.kind == "allway_stop" for c in j.connectors}
        self._dirty = True
        self.t = 0.0

    # ---- bookkeeping ---------------------------------------------------------------------
    def _sync(self) -> None:
        """Write the packed progress back into the drivers before the packing changes."""
        for row, S in zip(self.rows.tolist(), self.S.tolist()):
            if row in self.drivers and not self.drivers[row].moved:
                self.drivers[row].S = S

    def add(self, row: int, driver: Driver) -> None:
        self._sync()
        self.drivers[row] = driver
        self._index(driver)
        self._dirty = True

    def set_route(self, row: int, route: Route, S: float) -> None:
        self._sync()
        d = self.drivers[row]
        d.route, d.S, d.moved = route, S, True
        self._index(d)
        self._dirty = True

    def _index(self, d: Driver) -> None:
        """Route S of each lane's s=0, for the lanes from the current piece on (first visit wins)."""
        r = d.route
        d.offsets = {}
        for k in range(r.piece_at(d.S), len(r.lane_ids)):
            li = self.m.lane_index[r.lane_ids[k]]
            d.offsets.setdefault(li, float(r.piece_start[k] - r.piece_s0[k]))

    def _pack(self) -> None:
        """Pack every route into flat arrays keyed by (vehicle position i)·PACK + route S."""
        rows = list(self.drivers)
        self.rows = np.array(rows, dtype=int)
        drivers = [self.drivers[r] for r in rows]
        for d in drivers:
            d.moved = False
        self.S = np.array([d.S for d in drivers], dtype=float)
        self.base = np.arange(len(rows)) * PACK
        packs = [self._route_pack(d) for d in drivers]
        keys = [i * PACK + d.route.s for i, d in enumerate(drivers)]
        p_keys = [i * PACK + d.route.piece_start for i, d in enumerate(drivers)]
        p_first = np.cumsum([0] + [len(d.route.lane_ids) for d in drivers])[:-1]
        p_next = [np.where(pk["next"] > 0, pk["next"] + first, -1) for pk, first in zip(packs, p_first)]
        p_lane = [lid for d in drivers for lid in d.route.lane_ids]
        xs = [d.route.points[:, 0] for d in drivers]
        ys = [d.route.points[:, 1] for d in drivers]
        tx, ty, caps = [pk["tx"] for pk in packs], [pk["ty"] for pk in packs], [pk["cap"] for pk in packs]
        self.k_keys = np.concatenate(keys)
        self.k_x, self.k_y = np.concatenate(xs), np.concatenate(ys)
        self.k_tx, self.k_ty, self.k_cap = np.concatenate(tx), np.concatenate(ty), np.concatenate(caps)
        self.p_keys = np.concatenate(p_keys)
        self.p_lane = p_lane
        self.p_first = p_first
        self.p_next = np.concatenate(p_next)
        self.p_start = self.p_keys - np.repeat(self.base, [len(d.route.lane_ids) for d in drivers])
        self.length = np.array([d.route.length for d in drivers])
        self.desired = np.array([d.desired_speed for d in drivers])
        # the goal: IDM keeps its minimum gap to a stop target, so put the target that far beyond
        # the route's end, and the centre comes to rest on the goal
        self.end_stop = np.array([d.route.length + self.veh.length[r] / 2 + self.p.min_gap if (d.stop_at_end or not d.wander) else np.inf
                                  for r, d in zip(rows, drivers)])
        self.ignore = np.array([d.ignore_lights for d in drivers], dtype=bool)
        self.offsets = np.full((len(rows), len(self.m.lane_ids)), np.nan)
        for i, d in enumerate(drivers):
            for li, off in d.offsets.items():
                self.offsets[i, li] = off
        self.last_piece = np.full(len(rows), -1)
        self._dirty = False

    def _route_pack(self, d: Driver) -> dict[str, np.ndarray]:
        """Per-route arrays for packing, computed once per route."""
        r = d.route
        if d.pack is None or d.pack["route"] is not r:
            conn = [self.m.lanes[lid].junction is not None for lid in r.lane_ids]
            nxt, local_next = -1, np.zeros(len(conn), dtype=int)
            for k in range(len(conn) - 1, -1, -1):
                nxt = k if conn[k] else nxt
                local_next[k] = nxt
            speeding = max(1.0, d.desired_speed / float(r.speed_limit[0]))  # a scripted speeder keeps speeding
            cap = np.minimum(r.speed_limit * speeding, np.sqrt(self.p.max_lat_accel / np.maximum(np.abs(r.curvature), 1e-4)))
            d.pack = {"route": r, "tx": np.cos(r.heading), "ty": np.sin(r.heading), "cap": cap, "next": local_next}
        return d.pack

    def _interp(self, S: np.ndarray, arr: np.ndarray) -> np.ndarray:
        return np.interp(self.base + np.minimum(np.maximum(S, 0.0), self.length), self.k_keys, arr)

    # ---- occupancy -----------------------------------------------------------------------
    def occupancy(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(actor, lane, s, speed along the lane, half length) for each actor–lane overlap.

        Actors are vehicle rows 0..Nv−1, then pedestrians Nv.. (now, and 1.5 s ahead if walking).
        """
        v, p = self.veh, self.peds
        n_v = len(v)
        act = np.nonzero(v.active)[0]
        xy = [np.column_stack([v.x[act], v.y[act]])]
        who = [act]
        radius = [np.full(len(act), 2.0)]
        if len(p):
            walking = np.nonzero(p.v > 0)[0]
            xy += [np.column_stack([p.x, p.y]),
                   np.column_stack([p.x[walking] + 1.5 * p.v[walking] * np.cos(p.yaw[walking]),
                                    p.y[walking] + 1.5 * p.v[walking] * np.sin(p.yaw[walking])])]
            who += [n_v + np.arange(len(p)), n_v + walking]
            radius += [np.full(len(p), 2.6), np.full(len(walking), 2.6)]
        who = np.concatenate(who)
        pt, lane, s, lane_h = self.m.lanes_at(np.concatenate(xy), np.concatenate(radius))
        actor = who[pt]
        is_v = actor < n_v
        vi = np.where(is_v, actor, 0)
        pi = np.where(is_v, 0, actor - n_v)
        if len(p):
            yaw = np.where(is_v, v.yaw[vi], p.yaw[pi])
            speed = np.where(is_v, v.v[vi], p.v[pi])
        else:
            yaw, speed = v.yaw[vi], v.v[vi]
        along = speed * np.cos(yaw - lane_h)
        half = np.where(is_v, v.length[vi] / 2, 0.3)
        return actor, lane, s, along, half

    # ---- the tick ------------------------------------------------------------------------
    def update(self, t: float) -> None:
        self.t = t
        if not self.drivers:
            return
        if self._dirty:
            self._pack()
        v = self.veh
        # progress: one Newton step of projection onto the route (moves are < 2 m per tick)
        x, y = v.x[self.rows], v.y[self.rows]
        S = self.S
        dx, dy = x - self._interp(S, self.k_x), y - self._interp(S, self.k_y)
        S = np.minimum(np.maximum(S + dx * self._interp(S, self.k_tx) + dy * self._interp(S, self.k_ty), 0.0), self.length)
        self.S = S
        piece = np.searchsorted(self.p_keys, self.base + S, side="right") - 1
        busy = (piece != self.last_piece) | (self.length - S < 60.0)
        busy[[i for i, r in enumerate(self.rows) if self.drivers[r].reserved is not None]] = True
        self.last_piece = piece
        if busy.any():
            self._housekeeping(np.nonzero(busy)[0], piece)
        if not self.drivers:  # the last managed vehicle has left the map
            return
        if self._dirty:
            self._pack()
            piece = np.searchsorted(self.p_keys, self.base + self.S, side="right") - 1
            self.last_piece = piece
        rows, S = self.rows, self.S
        x, y = v.x[rows], v.y[rows]
        speed = v.v[rows]
        half = v.length[rows] / 2

        # leaders from lane occupancy
        actor, lane, s, along, ohalf = self.occupancy()
        dist = self.offsets[:, lane] + s[None, :] - S[:, None]  # centre-to-centre along the route
        valid = (dist > 0) & (dist < self.p.lookahead) & (actor[None, :] != rows[:, None])
        # two holders of reservations in one junction have conflict-free paths by construction:
        # near misses of their lane corridors must not make them wait for each other
        if len(self.reservations) > 1:
            pos = {int(r): i for i, r in enumerate(rows)}
            held = list(self.reservations.items())
            for c, row in held:
                if row not in pos:
                    continue
                others = [r2 for c2, r2 in held if r2 != row and self._compatible(c, c2)]
                if others:
                    valid[pos[row]] &= ~np.isin(actor, others)
        gap_all = np.where(valid, dist - half[:, None] - ohalf[None, :], np.inf)
        k = np.argmin(gap_all, axis=1)
        gap = gap_all[np.arange(len(rows)), k]
        v_lead = np.where(np.isfinite(gap), along[k], 0.0)

        # stop targets: junction stop lines without a reservation, the ego's goal
        stop = np.minimum(self.end_stop, self._junction_rules(piece, speed, half, actor, lane, s, along))
        stop_gap = stop - S - half  # IDM's minimum gap keeps the bumper 2 m short of a stop line
        use_stop = stop_gap < gap
        gap = np.where(use_stop, stop_gap, gap)
        v_lead = np.where(use_stop, 0.0, v_lead)

        # desired speed: the route's limits, braking comfortably for the curves ahead
        v0 = self.desired
        for ahead in (0.0, 10.0, 25.0):
            cap = self._interp(S + ahead, self.k_cap)
            v0 = np.minimum(v0, np.sqrt(cap**2 + 2 * self.p.comfort_decel * max(ahead - 3.0, 0.0)))
        acc = idm(speed, v0, gap, v_lead, self.p)
        for i in [i for i, r in enumerate(rows) if self.drivers[r].brake is not None]:
            d = self.drivers[rows[i]]
            if d.brake_until is not None and t >= d.brake_until:
                d.brake = d.brake_until = None
            else:
                acc[i] = -d.brake

        # pure pursuit on the route
        ld = np.minimum(np.maximum(2.5 + 0.5 * speed, 4.0), 15.0)
        gx, gy = self._interp(S + ld, self.k_x) - x, self._interp(S + ld, self.k_y) - y
        alpha = np.arctan2(gy, gx) - v.yaw[rows]
        v.cmd_accel[rows] = acc
        v.cmd_steer[rows] = np.arctan2(2 * 0.61 * v.length[rows] * np.sin(alpha), np.maximum(np.hypot(gx, gy), 1.0))

    # ---- routes ----------------------------------------------------------------------------
    def _housekeeping(self, idx: np.ndarray, piece: np.ndarray) -> None:
        """Reservations, stop memory and route extension for the vehicles whose situation changed."""
        for i in idx.tolist():
            row = int(self.rows[i])
            d = self.drivers[row]
            d.S = float(self.S[i])
            r = d.route
            local = int(piece[i] - self.p_first[i])
            lane_id = r.lane_ids[local]
            if d.reserved is not None:
                if lane_id == d.reserved:
                    d.seen_reserved = True
                elif d.seen_reserved or d.reserved not in r.lane_ids[local:]:
                    self.reservations.pop(d.reserved, None)
                    d.reserved, d.seen_reserved = None, False
            if local > 0 and self.m.lanes[r.lane_ids[local - 1]].control is None:
                d.stopped_at = None
            if d.wander and r.length - d.S < 60.0:
                self._extend(row, d, local)

    def _extend(self, row: int, d: Driver, piece: int) -> None:
        r = d.route
        lanes = list(r.lane_ids[piece:])
        ahead = r.length - d.S
        while ahead < 200.0:  # extend well ahead: every extension repacks all routes
            succ = self.m.lanes[lanes[-1]].successors
            if not succ:
                break
            lanes.append(succ[int(self.rng.integers(len(succ)))])
            ahead += self.m.lanes[lanes[-1]].length
        if len(lanes) == len(r.lane_ids) - piece:
            if r.length - d.S < 1.0:
                self._despawn(row)
            return
        new = build_route(self.m, lanes, float(r.piece_s0[piece]))
        self.set_route(row, new, d.S - float(r.piece_start[piece]))

    def _despawn(self, row: int) -> None:
        self._sync()
        d = self.drivers.pop(row)
        if d.reserved:
            self.reservations.pop(d.reserved, None)
        for w in self.waiting.values():
            w.pop(row, None)
        self.veh.active[row] = False
        self.veh.v[row] = self.veh.accel[row] = self.veh.steer[row] = 0.0
        self.veh.cmd_accel[row] = self.veh.cmd_steer[row] = 0.0
        self.veh.x[row] = self.veh.y[row] = 1e6 + row * 100.0
        self._dirty = True

    # ---- junctions ---------------------------------------------------------------------------
    def _junction_rules(self, piece, speed, half, actor, lane, s, along) -> np.ndarray:
        """Stop-line targets [route S] for vehicles that may not enter their next junction yet."""
        stop = np.full(len(self.rows), np.inf)
        nxt = self.p_next[piece]
        line_S = np.where(nxt >= 0, self.p_start[np.maximum(nxt, 0)], np.inf)
        to_line = line_S - self.S - half
        asking = (nxt >= 0) & ~self.ignore & ((nxt == piece) | (to_line < np.maximum(20.0, speed**2 / (2 * self.p.comfort_decel) + 15.0)))
        if not asking.any() and not self._allway_lanes:
            return stop
        m, t = self.m, self.t
        n_v = len(self.veh)
        # vehicles on connectors, or within 60 m of a stop line: all that junction rules look at
        keep = (actor < n_v) & ((self._near_line_from[lane] <= s) | (s < BOX_ROOM + 8.0))
        _, first = np.unique(actor[keep] * len(m.lane_ids) + lane[keep], return_index=True)
        sel = np.nonzero(keep)[0][first]
        by_lane: dict[int, list[tuple[int, float, float]]] = {}
        for a, li, si, vi in zip(actor[sel].tolist(), lane[sel].tolist(), s[sel].tolist(), along[sel].tolist()):
            by_lane.setdefault(li, []).append((a, si, vi))
        self._record_waiting(by_lane)
        for i in np.nonzero(asking)[0].tolist():
            row = int(self.rows[i])
            d = self.drivers[row]
            c = self.p_lane[nxt[i]]
            v = float(speed[i])
            if nxt[i] == piece[i]:  # already inside: it holds the junction, and watches for runners
                if d.reserved != c:
                    self._reserve(row, d, c)
                # conflict points mark where centre lines come within 0.9 lane widths; bodies touch
                # about CONTACT metres later. Past that, the only way out is through.
                on_c = self.S[i] - line_S[i] + half[i]  # front bumper's s on the connector
                hit = self._threat(row, c, by_lane, yield_to_priority=False, passed=on_c - CONTACT)
                if hit is not None:
                    stop[i] = line_S[i] + hit + 0.5 + self.p.min_gap
                continue
            if d.reserved == c:
                hit = self._threat(row, c, by_lane, yield_to_priority=False)
                if hit is not None:  # someone will not stop: wait at the line, or short of the conflict
                    can_stop_at_line = to_line[i] > v * v / (2 * self.p.runner_decel)
                    stop[i] = line_S[i] if can_stop_at_line else line_S[i] + hit + 0.5 + self.p.min_gap
                continue
            entry = m.lanes[self.p_lane[nxt[i] - 1]]
            go = True
            if entry.control == "light":
                state = m.junctions[m.lanes[c].junction].signal.state(entry.signal_group, t)
                committed = to_line[i] < v * v / (2 * self.p.comfort_decel) - 1.0
                go = state is LightState.GREEN or (state is LightState.YELLOW and committed)
            elif entry.control == "stop":
                if d.stopped_at is None and v < self.p.stop_speed and to_line[i] < 3.0:
                    d.stopped_at = t
                    self.waiting[m.lanes[c].junction][row] = (t, c)
                go = d.stopped_at is not None
            if not (go and self._may_enter(row, d, c, by_lane)):
                stop[i] = line_S[i]
        return stop

    def _record_waiting(self, by_lane) -> None:
        """Arrival order at all-way stops for vehicles the manager does not drive (the ego)."""
        t = self.t
        here: dict[str, set[int]] = {}
        for li, (jid, length) in self._allway_lanes.items():
            for a, si, vi in by_lane.get(li, ()):
                if si > length - 5.0:
                    here.setdefault(jid, set()).add(a)
                    if abs(vi) < self.p.stop_speed:
                        self._left_stop.add(a)  # it has stopped here: moving on means entering
                        if a not in self.drivers and a not in self.waiting[jid]:
                            self.waiting[jid][a] = (t, None)
        self._left_stop &= set().union(*here.values()) if here else set()
        for jid, waiting in self.waiting.items():
            for a in list(waiting):
                managed = a in self.drivers
                if (not managed and a not in here.get(jid, ())) or (managed and self.drivers[a].stopped_at is None):
                    waiting.pop(a)

    def _may_enter(self, row: int, d: Driver, c: str, by_lane) -> bool:
        """Reserve connector c if no conflicting connector is held or occupied, no one who has
        right of way (or who cannot stop) is about to arrive, and, at an all-way stop, no one
        waiting with a conflicting path arrived earlier."""
        m = self.m
        junction = m.junctions[m.lanes[c].junction]
        for c2, (_, s_c2) in junction.conflicts[c].items():
            holder = self.reservations.get(c2)
            if holder is not None and holder != row:
                return False
            for a, si, _ in by_lane.get(m.lane_index[c2], []):
                if a != row and si < s_c2 + 6.0:
                    return False
        if self._threat(row, c, by_lane, yield_to_priority=True) is not None:
            return False
        # don't block the box: enter only if the exit lane has room beyond the junction
        room = self.veh.length[row] + BOX_ROOM
        for exit_id in m.lanes[c].successors:
            for a, si, vi in by_lane.get(m.lane_index[exit_id], []):
                if a != row and si - self.veh.length[a] / 2 < room and vi < 2.0:
                    return False
        if junction.kind == "allway_stop":
            # someone pulling away from a conflicting stop line is entering: let it
            for c2 in junction.conflicts[c]:
                entry2 = m.lanes[m.lanes[c2].entry]
                for a, si, vi in by_lane.get(m.lane_index[entry2.id], []):
                    if a != row and si > entry2.length - 6.0 and vi > 0.3 and a in self._left_stop:
                        return False
            mine = self.waiting[junction.id].get(row, (self.t, c))[0]
            for a, (t_arr, c_other) in self.waiting[junction.id].items():
                if a == row or t_arr >= mine:
                    continue
                # an unmanaged driver (the ego) that never goes must not block the junction forever
                unmanaged_stale = c_other is None and self.t - t_arr > self.p.stale_wait
                if not unmanaged_stale and (c_other is None or c_other in junction.conflicts[c]):
                    return False
        self._reserve(row, d, c)
        return True

    def _threat(self, row: int, c: str, by_lane, yield_to_priority: bool, passed: float = -np.inf) -> float | None:
        """Where on c [m] the first conflict lies that someone will reach within the accepted gap.

        Conflicts whose point on c is behind `passed` [m] are ignored; None means no threat.

        A vehicle facing red, yellow or a stop sign counts only if it can no longer stop
        comfortably: that is what a driver sees of a red-light runner. With `yield_to_priority`,
        vehicles with right of way over c count too (priority roads over stop signs, oncoming
        traffic over a permissive left turn).
        """
        m, p, t = self.m, self.p, self.t
        conn = m.lanes[c]
        junction = m.junctions[conn.junction]
        entry = m.lanes[conn.entry]
        first = None
        for c2, (s_c, s_c2) in junction.conflicts[c].items():
            if s_c < passed or (first is not None and s_c >= first):
                continue
            lane2 = m.lanes[c2]
            entry2 = m.lanes[lane2.entry]
            has_priority = (entry.control == "stop" and entry2.control is None) or (
                entry.control == entry2.control and conn.turn is Command.LEFT and lane2.turn is not Command.LEFT
                and junction.kind != "allway_stop")
            must_stop = entry2.control == "stop" or (
                entry2.control == "light" and junction.signal.state(entry2.signal_group, t) is not LightState.GREEN)
            if not must_stop and not (yield_to_priority and has_priority):
                continue
            # already on the conflicting connector, short of the conflict: it will not stop now
            for a, si, vi in by_lane.get(m.lane_index[c2], []):
                if a != row and si < s_c2 + 1.0 and (s_c2 - si) / max(vi, 1.0) < p.gap_acceptance:
                    first = s_c
                    break
            else:
                for a, si, vi in by_lane.get(m.lane_index[entry2.id], []):
                    if a == row:
                        continue
                    other = self.drivers.get(a)
                    if other is not None and c2 not in other.route.lane_ids:
                        continue
                    to_line = entry2.length - si - self.veh.length[a] / 2
                    if must_stop and vi * vi / (2 * max(to_line, 0.1)) < p.runner_decel:
                        continue  # it can still stop, so it will
                    if (to_line + s_c2) / max(vi, 1.0) < p.gap_acceptance:
                        first = s_c
                        break
        return first

    def _compatible(self, c: str, c2: str) -> bool:
        """Connectors of one junction whose paths never meet: no conflict, no shared entry or exit."""
        a, b = self.m.lanes[c], self.m.lanes[c2]
        return (a.junction == b.junction and c2 not in self.m.junctions[a.junction].conflicts[c]
                and a.entry != b.entry and a.successors != b.successors)

    def _reserve(self, row: int, d: Driver, c: str) -> None:
        if d.reserved and d.reserved != c:
            self.reservations.pop(d.reserved, None)
        self.reservations[c] = row
        d.reserved, d.seen_reserved = c, False
        self.waiting[self.m.lanes[c].junction].pop(row, None)


def idm(v: np.ndarray, v0: np.ndarray, gap: np.ndarray, v_lead: np.ndarray, p: DriverParams) -> np.ndarray:
    """Intelligent Driver Model acceleration [m/s²] (Treiber, Hennecke & Helbing 2000)."""
    dv = v - v_lead
    s_star = p.min_gap + np.maximum(0.0, v * p.time_headway + v * dv / (2 * np.sqrt(p.max_accel * p.comfort_decel)))
    free = 1.0 - (v / np.maximum(v0, 0.1)) ** p.delta
    interaction = np.where(np.isfinite(gap), (s_star / np.maximum(gap, 0.1)) ** 2, 0.0)
    acc = p.max_accel * (free - interaction)
    # IDM only creeps towards a standing obstacle; close in, brake kinematically to rest at s0
    to_rest = gap - p.min_gap + 0.3
    near = (v_lead < 0.5) & (to_rest < 3.0) & (v < 3.0)
    acc = np.where(near, np.minimum(acc, -v * v / (2 * np.maximum(to_rest, 0.05))), acc)
    return np.minimum(np.maximum(acc, -p.max_decel), p.max_accel)
