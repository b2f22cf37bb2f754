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

from sim import traffic_kernels as tk
from sim.actors import Pedestrians, Vehicles
from sim.map import RoadMap
from sim.route import Route, build_route
from sim.types import Command, LightState

PACK = 1e5  # route arc-length offset between vehicles in the packed arrays [m]
CONTACT = 1.5  # from a conflict point to where two cars' bodies can first touch [m]
REAR_RADIUS = 2.0  # a rear bumper this close to a lane's centre line is on it, as a centre is [m]
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
    stopped_lane: str | None = None  # the lane that ends at that line
    offsets: dict[int, float] = field(default_factory=dict)  # lane index → route S at lane s=0
    moved: bool = False  # S was set directly since the last packing
    pack: dict | None = None  # cached per-route arrays for the traffic manager


@dataclass(frozen=True, slots=True)
class Conflict:
    """What `_threat` needs of one conflicting connector c2 of a connector c (static per map)."""

    s_c: float  # conflict point on c [m]
    s_c2: float  # ... and on c2 [m]
    c2: str
    lane: int  # c2's lane index
    entry: int  # lane index of c2's approach lane
    entry_length: float  # [m]
    entry_stop: bool  # c2's approach ends at a stop sign
    entry_light: bool  # ... or at a light
    junction: str
    group: int | None  # the light's signal group
    has_priority: bool  # c2's traffic has right of way over c


def conflict_table(m: RoadMap) -> dict[str, list[Conflict]]:
    """Per connector, its conflicts nearest first."""
    table: dict[str, list[Conflict]] = {}
    for junction in m.junctions.values():
        for c in junction.connectors:
            conn, rows = m.lanes[c], []
            entry = m.lanes[conn.entry]
            for c2, (s_c, s_c2) in junction.conflicts.get(c, {}).items():
                lane2 = m.lanes[c2]
                entry2 = m.lanes[lane2.entry]
                has_priority = (entry.control == "stop" and entry2.control is None) or (
                    entry.control == entry2.control and conn.turn is Command.LEFT and lane2.turn is not Command.LEFT
                    and junction.kind != "allway_stop")
                rows.append(Conflict(s_c, s_c2, c2, m.lane_index[c2], m.lane_index[entry2.id], entry2.length,
                                     entry2.control == "stop", entry2.control == "light", junction.id,
                                     entry2.signal_group, has_priority))
            table[c] = sorted(rows, key=lambda cf: cf.s_c)
    return table


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
        # curve speed limits: looked up this far ahead [m], reachable from the speed that braking
        # comfortably over the room before them allows (v² = cap² + 2·b·room)
        self._curve_ahead = np.array([0.0, 10.0, 25.0])
        self._curve_room = np.array([2 * params.comfort_decel * max(a - 3.0, 0.0) for a in self._curve_ahead.tolist()])
        self._conflicts = conflict_table(m)
        self._compatible_memo: dict[str, frozenset[str]] = {}
        self._states: dict[tuple[str, int], LightState] = {}
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
        self.rows, self._rows = np.array(rows, dtype=int), rows
        drivers = self._in_rows = [self.drivers[r] for r in rows]
        self._pos = {r: i for i, r in enumerate(rows)}
        self.half = self.veh.length[self.rows] / 2
        self._steer_gain = 2 * 0.61 * self.veh.length[self.rows]  # pure pursuit: 2·wheelbase
        for d in drivers:
            d.moved = False
        self.S = np.array([d.S for d in drivers], dtype=float)
        self.base = np.arange(len(rows)) * PACK
        packs = [self._route_pack(d) for d in drivers]
        n_points = [len(d.route.s) for d in drivers]
        n_pieces = [len(d.route.lane_ids) for d in drivers]
        p_first = np.cumsum([0] + n_pieces)[:-1]
        self.k_keys = np.concatenate([d.route.s for d in drivers]) + np.repeat(self.base, n_points)
        self.k_x, self.k_y = (np.concatenate([d.route.points[:, k] for d in drivers]) for k in (0, 1))
        self.k_tx, self.k_ty, self.k_cap = (np.concatenate([pk[k] for pk in packs]) for k in ("tx", "ty", "cap"))
        piece_base = np.repeat(self.base, n_pieces)
        self.p_keys = np.concatenate([d.route.piece_start for d in drivers]) + piece_base
        self.p_start = self.p_keys - piece_base  # as rounded in the packed keys
        local_next = np.concatenate([pk["next"] for pk in packs])
        self.p_next = np.where(local_next > 0, local_next + np.repeat(p_first, n_pieces), -1)
        self.p_lane = [lid for d in drivers for lid in d.route.lane_ids]
        self.p_first = p_first
        self.length = np.array([d.route.length for d in drivers])
        self.desired = np.array([d.desired_speed for d in drivers])
        # the goal: IDM keeps its minimum gap to a stop target, so put the target that far beyond
        # the route's end, and the centre comes to rest on the goal
        self.end_stop = np.array([d.route.length + h + self.p.min_gap if (d.stop_at_end or not d.wander) else np.inf
                                  for d, h in zip(drivers, self.half.tolist())])
        self.ignore = np.array([d.ignore_lights for d in drivers], dtype=bool)
        self.offsets = np.full((len(rows), len(self.m.lane_ids)), np.nan)
        at = [(i, li, off) for i, d in enumerate(drivers) for li, off in d.offsets.items()]
        if at:
            i, li, off = zip(*at)
            self.offsets[list(i), list(li)] = off
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

    # ---- occupancy -----------------------------------------------------------------------
    def occupancy(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(actor, lane, s, speed along the lane, half length, role) for each actor–lane overlap.

        Actors are vehicle rows 0..Nv−1, then pedestrians Nv.. (now, and 1.5 s ahead if walking).
        Role 0 is a body; 1 a vehicle's rear bumper on a lane it points along, which only car
        following counts: a car standing a few metres into a junction has its centre on its own
        connector but its rear still on a sibling's (they overlap where they start), where a car
        turning off behind it would otherwise drive into it (town_loop seed 1); 2 is neither.
        """
        v, p = self.veh, self.peds
        n_v = len(v)
        xy, radius, who, first_rear = tk.occupancy_points(v.x, v.y, v.yaw, v.length, v.active, p.x, p.y, p.v, p.yaw,
                                                          REAR_RADIUS)
        pt, lane, s, lane_h = self.m.lanes_near(xy, radius)
        actor, along, half, role = tk.occupancy(who, pt, lane_h, n_v, v.yaw, v.v, v.length, p.yaw, p.v, first_rear)
        return actor, lane, s, along, half, role

    # ---- the tick ------------------------------------------------------------------------
    def update(self, t: float) -> None:
        self.t = t
        if not self.drivers:
            return
        if self._dirty:
            self._pack()
        v = self.veh
        # progress: one Newton step of projection onto the route (moves are < 2 m per tick)
        self.S, piece = tk.progress(v.x, v.y, self.rows, self.S, self.base, self.length, self.k_keys, self.k_x,
                                  self.k_y, self.k_tx, self.k_ty, self.p_keys)
        S = self.S
        busy = (piece != self.last_piece) | (self.length - S < 60.0)
        busy[[i for i, d in enumerate(self._in_rows) if d.reserved is not None]] = True
        self.last_piece = piece
        if busy.any():
            self._housekeeping(np.nonzero(busy)[0], piece)
        if not self.drivers:  # the last managed vehicle has left the map
            return
        if self._dirty:
            self._pack()
            piece = np.searchsorted(self.p_keys, self.base + self.S, side="right") - 1
            self.last_piece = piece
        rows, S, half = self.rows, self.S, self.half
        speed = v.v[rows]

        # leaders from lane occupancy
        actor, lane, s, along, ohalf, role = self.occupancy()
        # two holders of reservations in one junction have conflict-free paths by construction:
        # near misses of their lane corridors must not make them wait for each other
        ignored = np.zeros((len(rows), len(v) + len(self.peds)), dtype=bool)
        if len(self.reservations) > 1:
            pos = self._pos
            held = list(self.reservations.items())
            for c, row in held:
                if row in pos:
                    compatible = self._compatible(c)
                    for c2, r2 in held:
                        if r2 != row and c2 in compatible:
                            ignored[pos[row], r2] = True
        gap, v_lead = tk.leaders(self.offsets, lane, s, actor, along, ohalf, role, rows, S, half, self.p.lookahead,
                                 ignored)

        # stop targets: junction stop lines without a reservation, the ego's goal
        body = slice(0, int(np.searchsorted(role, 1)))  # the rear bumpers' pairs come last
        stop = self._junction_rules(piece, speed, half, actor[body], lane[body], s[body], along[body])
        # IDM's minimum gap keeps the bumper 2 m short of a stop line; the desired speed is the
        # route's limit, braking comfortably for the curves ahead; pure pursuit looks ld ahead
        gap, v_lead, v0, gx, gy = tk.targets(
            stop, self.end_stop, gap, v_lead, S, half, speed, self.desired, self._curve_ahead, self._curve_room,
            self.base, self.length, self.k_keys, self.k_cap, self.k_x, self.k_y, v.x, v.y, rows)
        acc = idm(speed, v0, gap, v_lead, self.p)
        for i, d in enumerate(self._in_rows):
            if d.brake is not None:
                if d.brake_until is not None and t >= d.brake_until:
                    d.brake = d.brake_until = None
                else:
                    acc[i] = -d.brake

        # pure pursuit on the route
        v.cmd_accel[rows] = acc
        v.cmd_steer[rows] = np.arctan2(*tk.pursuit(np.arctan2(gy, gx), v.yaw, rows, self._steer_gain, gx, gy))

    # ---- routes ----------------------------------------------------------------------------
    def _housekeeping(self, idx: np.ndarray, piece: np.ndarray) -> None:
        """Reservations, stop memory and route extension for the vehicles whose situation changed."""
        S, local_piece = self.S.tolist(), (piece - self.p_first).tolist()
        for i in idx.tolist():
            row, d = self._rows[i], self._in_rows[i]
            d.S = S[i]
            r = d.route
            local = local_piece[i]
            lane_id = r.lane_ids[local]
            if d.reserved is not None:
                if lane_id == d.reserved:
                    d.seen_reserved = True
                elif d.seen_reserved or d.reserved not in r.lane_ids[local:]:
                    self.reservations.pop(d.reserved, None)
                    d.reserved, d.seen_reserved = None, False
            if d.stopped_at is not None and lane_id != d.stopped_lane:  # past the line it stopped at
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
        p = self.p
        nxt, line_S, to_line, asking, sel = tk.junction_inputs(
            piece, self.p_next, self.p_start, self.S, half, speed, self.ignore, 2 * p.comfort_decel, actor, lane, s,
            len(self.veh), self._near_line_from, BOX_ROOM + 8.0)
        if not len(asking) and not self._allway_lanes:
            return np.full(len(self.rows), np.inf)
        m, t = self.m, self.t
        self._states = {}
        # vehicles on connectors, or within 60 m of a stop line: all that junction rules look at
        by_lane: dict[int, list[tuple[int, float, float]]] = {}
        for a, li, si, vi in zip(actor[sel].tolist(), lane[sel].tolist(), s[sel].tolist(), along[sel].tolist()):
            by_lane.setdefault(li, []).append((a, si, vi))
        self._record_waiting(by_lane)
        stop = [np.inf] * len(self.rows)
        rows, drivers, p_lane = self._rows, self._in_rows, self.p_lane
        nxt, piece, line_S, to_line = nxt.tolist(), piece.tolist(), line_S.tolist(), to_line.tolist()
        S, half, speed = self.S.tolist(), half.tolist(), speed.tolist()
        for i in asking.tolist():
            row, d, c, v = rows[i], drivers[i], p_lane[nxt[i]], speed[i]
            if nxt[i] == piece[i]:  # already inside: it holds the junction, and watches for runners
                if d.reserved != c:
                    self._reserve(row, d, c)
                # conflict points mark where centre lines come within 0.9 lane widths; bodies touch
                # about CONTACT metres later. Past that, the only way out is through.
                on_c = S[i] - line_S[i] + half[i]  # front bumper's s on the connector
                hit = self._threat(row, c, by_lane, yield_to_priority=False, passed=on_c - CONTACT)
                if hit is not None:
                    stop[i] = line_S[i] + hit + 0.5 + p.min_gap
                continue
            if d.reserved == c:
                hit = self._threat(row, c, by_lane, yield_to_priority=False)
                if hit is not None:  # someone will not stop: wait at the line, or short of the conflict
                    can_stop_at_line = to_line[i] > v * v / (2 * p.runner_decel)
                    stop[i] = line_S[i] if can_stop_at_line else line_S[i] + hit + 0.5 + p.min_gap
                continue
            entry = m.lanes[p_lane[nxt[i] - 1]]
            go = True
            if entry.control == "light":
                state = self._light(m.lanes[c].junction, entry.signal_group)
                committed = to_line[i] < v * v / (2 * p.comfort_decel) - 1.0
                go = state is LightState.GREEN or (state is LightState.YELLOW and committed)
            elif entry.control == "stop":
                if d.stopped_at is None and v < p.stop_speed and to_line[i] < 3.0:
                    d.stopped_at, d.stopped_lane = t, entry.id
                    self.waiting[m.lanes[c].junction][row] = (t, c)
                go = d.stopped_at is not None
            if not (go and self._may_enter(row, d, c, by_lane)):
                stop[i] = line_S[i]
        return np.array(stop)

    def _light(self, junction: str, group: int) -> LightState:
        """A signal's state at this tick, looked up once per tick."""
        key = (junction, group)
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = self.m.junctions[junction].signal.state(group, self.t)
        return state

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
            for a in list(waiting) if waiting else ():
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
        p, drivers = self.p, self.drivers
        for cf in self._conflicts[c]:  # nearest conflict first: the first threat is the answer
            on_c2, on_entry = by_lane.get(cf.lane, ()), by_lane.get(cf.entry, ())
            if cf.s_c < passed or not (on_c2 or on_entry):
                continue
            must_stop = cf.entry_stop or (cf.entry_light and self._light(cf.junction, cf.group) is not LightState.GREEN)
            if not must_stop and not (yield_to_priority and cf.has_priority):
                continue
            # already on the conflicting connector, short of the conflict and moving: it will not
            # stop now.
            # Connectors from one entry overlap where they start, so lane matching may put a car
            # on a sibling of its own connector: a managed car counts only on its route's
            # (two cars crossing on compatible connectors once waited for each other for good)
            for a, si, vi in on_c2:
                other = drivers.get(a)
                if other is not None and cf.c2 not in other.route.lane_ids:
                    continue
                if vi < p.stop_speed and si < cf.s_c2 - 2.0:
                    continue  # standing well short of the conflict: it waits (often for us)
                if a != row and si < cf.s_c2 + 1.0 and (cf.s_c2 - si) / max(vi, 1.0) < p.gap_acceptance:
                    return cf.s_c
            for a, si, vi in on_entry:
                if a == row:
                    continue
                other = drivers.get(a)
                if other is not None and cf.c2 not in other.route.lane_ids:
                    continue
                to_line = cf.entry_length - si - self.veh.length[a] / 2
                if must_stop and vi * vi / (2 * max(to_line, 0.1)) < p.runner_decel:
                    continue  # it can still stop, so it will
                if (to_line + cf.s_c2) / max(vi, 1.0) < p.gap_acceptance:
                    return cf.s_c
        return None

    def _compatible(self, c: str) -> frozenset[str]:
        """Connectors of c's junction whose paths never meet c's: no conflict, no shared entry or exit."""
        ok = self._compatible_memo.get(c)
        if ok is None:
            m, a = self.m, self.m.lanes[c]
            junction = m.junctions[a.junction]
            ok = self._compatible_memo[c] = frozenset(
                c2 for c2 in junction.connectors if c2 not in junction.conflicts[c]
                and a.entry != m.lanes[c2].entry and a.successors != m.lanes[c2].successors)
        return ok

    def _reserve(self, row: int, d: Driver, c: str) -> None:
        if d.reserved and d.reserved != c:
            self.reservations.pop(d.reserved, None)
        self.reservations[c] = row
        d.reserved, d.seen_reserved = c, False
        self.waiting[self.m.lanes[c].junction].pop(row, None)


def idm(v: np.ndarray, v0: np.ndarray, gap: np.ndarray, v_lead: np.ndarray, p: DriverParams) -> np.ndarray:
    """Intelligent Driver Model acceleration [m/s²] (Treiber, Hennecke & Helbing 2000)."""
    free = 1.0 - (v / np.maximum(v0, 0.1)) ** p.delta  # numpy's power: see sim.kernels
    return tk.idm_rest(np.asarray(v, dtype=float), free, np.asarray(gap, dtype=float), np.asarray(v_lead, dtype=float),
                p.min_gap, p.time_headway, float(2 * np.sqrt(p.max_accel * p.comfort_decel)), p.max_accel, p.max_decel)
