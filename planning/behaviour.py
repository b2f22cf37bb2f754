"""The behaviour layer: a small explicit state machine that turns the scene into a goal.

States: lane follow, follow lead, stop for red or yellow, stop sign (stop, wait by right of way,
go), yield to a pedestrian, yield on an unprotected left, nudge around a parked car, emergency
stop (set by the planner when nothing is safe). The state is logged every tick.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property

import numpy as np

from planning.lattice import Goal, LatticeParams, comfortable_stop_time, stop_distance
from planning.prediction import Prediction
from sim.map import RoadMap
from sim.route import Route
from sim.types import ActorType, Command, LightState, ObjectState, StopLineState, VehicleState


class State(str, Enum):
    LANE_FOLLOW = "lane_follow"
    FOLLOW_LEAD = "follow_lead"
    STOP_LIGHT = "stop_light"
    STOP_SIGN = "stop_sign"
    WAIT_STOP_SIGN = "wait_stop_sign"
    YIELD_PEDESTRIAN = "yield_pedestrian"
    YIELD_LEFT_TURN = "yield_left_turn"
    NUDGE = "nudge"
    EMERGENCY_STOP = "emergency_stop"


@dataclass(frozen=True)
class BehaviourParams:
    lookahead: float = 80.0  # stop lines and leads this far ahead count [m]
    comfort_decel: float = 3.0  # braking for yellow, "able to stop" [m/s²]
    max_lat_accel: float = 3.0  # curve speed [m/s²]
    corridor: float = 1.7  # half-width of the path that an object must enter to matter [m]
    ped_corridor: float = 1.8  # the same for pedestrians (half the car's width and 0.85 m) [m]
    ped_horizon: float = 3.0  # pedestrians' predicted positions this far ahead count [s]
    ped_stop_gap: float = 3.0  # stop this far short of a pedestrian's crossing [m]
    gap_acceptance: float = 5.0  # time gap to cross oncoming or priority traffic [s]
    # the map's conflict point is where our path comes within 0.9 lane widths of another's; bodies
    # touch about 1.5 m later (sim.traffic.CONTACT). A left-turner waiting inside the junction holds
    # its front bumper 1 m short of that
    left_hold_past_conflict: float = 0.5  # [m]
    full_stop: float = 0.1  # [m/s], as CARLA's stop-sign test
    stop_zone: float = 3.0  # a full stop counts within this of the line [m]
    max_wait: float = 6.0  # at an all-way stop, stop deferring to others after waiting this long [s]
    # after the full stop, the junction must look clear this long: a car coming fast from the side
    # enters the lidar's range and needs a few ticks to become a track
    look_s: float = 1.0  # [s]
    hold_over_line_speed: float = 1.0  # slower than this, a nose over the line is not yet committed [m/s]
    # a tracked car this slow may be standing: a standing car's tracked speed flickers
    standing_speed: float = 1.0  # [m/s]
    # slower than this a tracked car has stopped: arrived at its line, or not crossing the junction
    stopped_speed: float = 0.3  # [m/s]
    line_queue: float = 6.0  # a car whose centre is this close to its stop line is waiting at it [m]
    line_grace: float = 1.0  # a waiting car keeps its turn through gaps in its track this long [s]
    # passing a standing car that reaches into our path: a walker hidden behind it may step out at its front
    occlusion_pass_speed: float = 3.0  # speed at the standing car's front end [m/s]
    occlusion_decel: float = 1.5  # slowing down to it, gentle because the lattice reaches a target speed late [m/s²]


@dataclass
class Decision:
    state: State
    goal: Goal
    lead_id: int | None = None


@dataclass
class _StopMemory:
    stopped_at: float | None = None
    clear_since: float | None = None  # the junction has looked clear since [s]
    cleared: bool = False


@dataclass
class BehaviourLayer:
    road_map: RoadMap
    route: Route
    length: float = 4.6  # ego length [m]
    params: BehaviourParams = BehaviourParams()
    _stops: dict[float, _StopMemory] = field(default_factory=dict)
    _yellow_go: set[float] = field(default_factory=set)
    # other vehicles waiting at a stop line: (since [s], the line's lane, last seen there [s])
    _waiting_since: dict[int, tuple[float, str, float]] = field(default_factory=dict)

    def decide(self, t: float, ego: VehicleState, S: float, objects: list[ObjectState], pred: Prediction,
               stop_lines: list[StopLineState]) -> Decision:
        p, r = self.params, self.route
        half = self.length / 2
        front = S + half
        target = min(self._target_speed(S), self._occlusion_speed(front, objects))
        stops: list[tuple[float, State]] = [(r.length + half - 1.0, State.LANE_FOLLOW)]  # the goal
        self._track_waiting(t, objects)

        for line in stop_lines:
            if line.S - front > p.lookahead or line.S < S:
                continue
            if line.S < front - 0.5:
                # The nose is over the line (crept there while waiting to turn), the centre is not:
                # the red-light rule counts the centre crossing, so a slow car holds where it is
                # until green. A faster one is committed.
                stop = line.state in (LightState.RED, None) or (line.state is LightState.YELLOW
                                                                  and line.S not in self._yellow_go)
                if line.kind == "light" and stop and ego.v < p.hold_over_line_speed:
                    stops.append((front, State.STOP_LIGHT))
                    break
                continue
            dist = line.S - front
            if line.kind == "light":
                if line.state in (LightState.RED, None):
                    stops.append((line.S, State.STOP_LIGHT))
                elif line.state is LightState.YELLOW:
                    # a slow car can stop where it is, even with its nose just over the line: the
                    # red-light rule counts the centre (town_loop seed 1 went from standing)
                    slow = ego.v < p.hold_over_line_speed
                    if line.S not in self._yellow_go and (slow or self._can_stop_comfortably(ego, dist)):
                        stops.append((max(line.S, front), State.STOP_LIGHT))
                    else:
                        self._yellow_go.add(line.S)
                elif self._left_turn_after(line.S) and self._oncoming_within_gap(line.S, objects):
                    stops.append((line.S, State.YIELD_LEFT_TURN))
            else:
                mem = self._stops.setdefault(line.S, _StopMemory())
                if mem.cleared:
                    continue
                if mem.stopped_at is None and ego.v < p.full_stop and dist < p.stop_zone:
                    mem.stopped_at = t
                if mem.stopped_at is None:
                    stops.append((line.S, State.STOP_SIGN))
                elif not self._stop_sign_clear(t, line, mem.stopped_at, objects):
                    mem.clear_since = None
                    stops.append((line.S, State.WAIT_STOP_SIGN))
                else:
                    # looking both ways: town_loop seed 1 went the tick it stopped, before the car
                    # coming at 10 m/s on the priority road was tracked, and stopped in its path
                    if mem.clear_since is None:
                        mem.clear_since = t
                    if t - mem.clear_since < p.look_s - 1e-9:
                        stops.append((line.S, State.WAIT_STOP_SIGN))
                    else:
                        mem.cleared = True
            break  # only the nearest stop line governs

        left_stop = self._unprotected_left(ego, front, objects)
        if left_stop is not None:
            stops.append((left_stop, State.YIELD_LEFT_TURN))
        ped_stop = self._pedestrian_stop(S, pred)
        if ped_stop is not None:
            stops.append((ped_stop, State.YIELD_PEDESTRIAN))

        stop_at, state = min(stops, key=lambda x: x[0])
        if state is State.LANE_FOLLOW and stop_at - front > 30.0:
            stop_at = None if stop_at - front > 3 * max(ego.v, 5.0) ** 2 / (2 * p.comfort_decel) + 10 else stop_at
        lead = self._lead(S, objects)
        goal = Goal(target_speed=target, stop_at=stop_at)
        lead_id = None
        if lead is not None:
            obj, s_rear, static = lead
            if static:
                goal = Goal(target, stop_at, allow_offset=True, hold_at=s_rear - 3.0)
                state = State.NUDGE if state is State.LANE_FOLLOW else state
            else:
                goal = Goal(target, stop_at, lead_s=s_rear, lead_speed=float(np.hypot(obj.vx, obj.vy)))
                state = State.FOLLOW_LEAD if state is State.LANE_FOLLOW else state
            lead_id = obj.id
        return Decision(state, goal, lead_id)

    # ---- pieces ------------------------------------------------------------------------------
    def _can_stop_comfortably(self, ego: VehicleState, dist: float) -> bool:
        """Within `comfort_decel`, and as the lattice's comfortable stops (the jerk bound, from the
        current acceleration): a yellow at 3 m/s while still pulling away is not a stop at 3 m/s²
        but a 6 m/s³ one (town_loop seed 4)."""
        v = max(ego.v, 0.0)
        T = comfortable_stop_time(v, ego.accel, LatticeParams.stop_jerk)
        return v**2 / (2 * self.params.comfort_decel) < dist and float(stop_distance(v, ego.accel, T)) < dist

    def _target_speed(self, S: float) -> float:
        r, p = self.route, self.params
        ahead = np.linspace(S, S + 60.0, 31)  # 2 m apart: no short turn falls between samples
        kappa = np.abs(np.interp(ahead, r.s, r.curvature))
        limit = float(np.interp(S, r.s, r.speed_limit))
        cap = np.sqrt(p.max_lat_accel / np.maximum(kappa, 1e-4))
        # brake comfortably for the tightest curve ahead
        reach = np.sqrt(cap**2 + 2 * p.comfort_decel * np.maximum(ahead - S - 3.0, 0.0))
        return float(min(limit, reach.min()))

    def _occlusion_speed(self, front: float, objects: list[ObjectState]) -> float:
        """Slow down, as for a curve, to pass the front end of a standing car that reaches into our
        path no faster than `occlusion_pass_speed`: a walker hidden behind it steps out there
        (jaywalker_parked_car; the idea of Autoware's occlusion-spot module)."""
        p, r = self.params, self.route
        cap = np.inf
        for o in objects:
            if o.type is not ActorType.VEHICLE or np.hypot(o.vx, o.vy) > p.standing_speed:
                continue
            s_o, d_o = r.project(np.array([o.x, o.y]), hint=front + 20.0, window=70.0)
            gap = s_o + o.length / 2 - front
            # in our lane it is a lead that we stop behind; clear of our path it hides no one in it
            if not 0.0 < gap < p.lookahead or not 0.6 < abs(d_o) < p.corridor + o.width / 2:
                continue
            if abs(np.cos(o.yaw - float(np.interp(s_o, r.s, r.heading)))) < 0.5:
                continue  # crossing: a junction's business
            cap = min(cap, float(np.sqrt(p.occlusion_pass_speed**2 + 2 * p.occlusion_decel * gap)))
        return cap

    def _left_turn_after(self, S_line: float) -> bool:
        k = self.route.piece_at(S_line + 0.5)
        return self.route.command_at(S_line + 0.5) is Command.LEFT and self.road_map.lanes[self.route.lane_ids[k]].junction is not None

    def _junction_after(self, S_line: float):
        lane = self.road_map.lanes[self.route.lane_ids[self.route.piece_at(S_line + 0.5)]]
        return self.road_map.junctions.get(lane.junction) if lane.junction else None

    def _unprotected_left(self, ego: VehicleState, front: float, objects: list[ObjectState]) -> float | None:
        """Where to wait for oncoming traffic before turning left across it where no stop line is
        ours (the priority road of a two-way stop): left-turners give way, as on a green light. A
        nose already past the entry holds short of the oncoming lanes while it can still stop
        there comfortably (town_loop seed 0: creeping in behind a walker, the ego sped up into the
        turn as a car came at 8 m/s; the car braked for it, and its track still had it driving on)."""
        for S_in, S_hold in self._left_entries:  # in route order
            if S_in - front > self.params.lookahead:
                return None
            if front > S_hold:
                continue  # passed
            if front > S_in and not self._can_stop_comfortably(ego, S_hold - front):
                continue  # committed
            return (S_in if front <= S_in else S_hold) if self._oncoming_within_gap(S_in, objects) else None
        return None

    @cached_property
    def _left_entries(self) -> list[tuple[float, float]]:
        """(route S of the entry, of the front bumper's last stop short of the oncoming lanes) for
        each left turn into a junction with no stop line for the route (static per route)."""
        r, m, out = self.route, self.road_map, []
        for k in range(1, len(r.lane_ids)):
            c, entry = m.lanes[r.lane_ids[k]], m.lanes[r.lane_ids[k - 1]]
            S_in = float(r.piece_start[k])
            if c.junction is None or entry.control or r.command_at(S_in + 0.5) is not Command.LEFT:
                continue
            h = float(c.heading[0])
            # conflicts with connectors entering against our heading: the oncoming lanes
            s_c = [s for c2, (s, _) in m.junctions[c.junction].conflicts.get(c.id, {}).items()
                   if np.cos(float(m.lanes[c2].heading[0]) - h) < -0.7]
            if s_c:
                out.append((S_in, S_in + min(s_c) + self.params.left_hold_past_conflict))
        return out

    def _oncoming_within_gap(self, S_line: float, objects: list[ObjectState]) -> bool:
        """Oncoming vehicles that would reach the junction within the accepted gap."""
        j = self._junction_after(S_line)
        if j is None:
            return False
        h = float(np.interp(S_line, self.route.s, self.route.heading))
        fwd = np.array([np.cos(h), np.sin(h)])
        for o in objects:
            if o.type is not ActorType.VEHICLE:
                continue
            v = np.array([o.vx, o.vy])
            rel = j.center - np.array([o.x, o.y])
            dist = float(np.linalg.norm(rel))
            opposite = float(np.array([np.cos(o.yaw), np.sin(o.yaw)]) @ fwd) < -0.7
            closing = float(v @ rel) > 0
            if opposite and closing and dist < 70 and dist / max(float(np.linalg.norm(v)), 0.5) < self.params.gap_acceptance:
                return True
        return False

    def _track_waiting(self, t: float, objects: list[ObjectState]) -> None:
        """When each vehicle stopped (below `stopped_speed`) at a stop line, kept until it has been
        away from that line for `line_grace`.

        At the line by the map, and through short gaps: a standing car's track jumps when a
        crossing car hides part of it (dense_urban seed 2: a car waiting first seemed to back
        away 1.7 m at 2 m/s; the ego took it for newly arrived, went out of turn, and three cars
        and the ego stood in the junction, each in another's path, for 95 s)."""
        p, m = self.params, self.road_map
        cars = [o for o in objects if o.type is ActorType.VEHICLE]
        if cars:
            idx, s, dist = m.nearest_lane(np.array([[o.x, o.y] for o in cars]))
            for o, i, s_i, d_i in zip(cars, idx.tolist(), s.tolist(), dist.tolist()):
                lane = m.lanes[m.lane_ids[i]]
                if lane.control != "stop" or s_i < lane.length - p.line_queue or d_i > lane.width / 2:
                    continue
                since, lane_id, _ = self._waiting_since.get(o.id, (None, lane.id, t))
                if since is None and np.hypot(o.vx, o.vy) < p.stopped_speed:
                    since = t
                if since is not None and lane_id == lane.id:
                    self._waiting_since[o.id] = (since, lane_id, t)
        for oid in [k for k, (_, _, seen) in self._waiting_since.items() if t - seen > p.line_grace]:
            del self._waiting_since[oid]

    def _stop_sign_clear(self, t: float, line: StopLineState, stopped_at: float, objects: list[ObjectState]) -> bool:
        """After a full stop: go when the junction is empty, no one who arrived earlier is waiting
        (all-way stop), and no priority traffic is within the accepted gap (two-way stop)."""
        j = self._junction_after(line.S)
        if j is None:
            return True
        reach = max(float(np.max(np.linalg.norm(np.asarray(j.polygon.exterior.coords) - j.center, axis=1))), 8.0)
        entries = {self.road_map.lanes[c].entry for c in j.connectors}
        for o in objects:
            if o.type is not ActorType.VEHICLE:
                continue
            pos = np.array([o.x, o.y])
            dist = float(np.linalg.norm(pos - j.center))
            speed = float(np.hypot(o.vx, o.vy))
            if dist < reach - 1.0 and speed > self.params.stopped_speed:
                return False  # someone is crossing
            toward = float(np.array([o.vx, o.vy]) @ (j.center - pos)) > 0
            if j.kind == "allway_stop":
                since, lane_id, _ = self._waiting_since.get(o.id, (None, None, None))
                if lane_id in entries and toward and speed > self.params.standing_speed:
                    return False  # pulling away from its line: it is entering, let it
                if since is not None and since < stopped_at and lane_id in entries and t - stopped_at < self.params.max_wait:
                    return False  # arrived first
                if toward and dist < reach + 6.0 and speed > 2.0:
                    return False  # about to enter without stopping: let it
            elif toward and speed > 0.5 and (dist - reach) / speed < self.params.gap_acceptance and dist < 80:
                return False  # priority traffic coming
        return True

    def _pedestrian_stop(self, S: float, pred: Prediction) -> float | None:
        """Route S to stop the front bumper at, short of where a pedestrian is or will be in our path."""
        peds = [i for i, ty in enumerate(pred.types) if ty is ActorType.PEDESTRIAN]
        if not peds:
            return None
        r, p = self.route, self.params
        lo = np.searchsorted(r.s, S)
        hi = np.searchsorted(r.s, S + 50.0)
        path = r.points[lo:hi:2]
        if len(path) == 0:
            return None
        path_s = r.s[lo:hi:2]
        best = None
        front = S + self.length / 2
        k = pred.t <= p.ped_horizon + 1e-9
        for i in peds:
            pts = np.stack([pred.x[i, k][::5], pred.y[i, k][::5]], -1)  # every 0.5 s
            d = np.linalg.norm(pts[:, None, :] - path[None, :, :], axis=-1)
            inside = d < p.ped_corridor + pred.margin[i, k][::5, None]
            if not inside.any():
                continue
            s_cross = float(path_s[np.argmax(inside.any(axis=0))])
            if s_cross < S - self.length / 2:
                continue  # behind us
            # short of the crossing; if we have already crept past that point, hold where we are
            stop = max(s_cross - p.ped_stop_gap, front) if s_cross > front else front
            best = stop if best is None else min(best, stop)
        return best

    def _lead(self, S: float, objects: list[ObjectState]):
        """The nearest vehicle in our path ahead: (object, route S of its rear, is it standing still)."""
        r, p = self.route, self.params
        best = None
        for o in objects:
            if o.type is not ActorType.VEHICLE:
                continue
            s_o, d_o = r.project(np.array([o.x, o.y]), hint=S + 20.0, window=70.0)
            if not (S < s_o < S + p.lookahead) or abs(d_o) > p.corridor + o.width / 2 - 0.2:
                continue
            h = float(np.interp(s_o, r.s, r.heading))
            if np.cos(o.yaw - h) < 0.5:
                continue  # crossing or oncoming: prediction and the lattice's checks handle it
            s_rear = s_o - o.length / 2
            if best is None or s_rear < best[1]:
                best = (o, s_rear, bool(np.hypot(o.vx, o.vy) < 0.2 and abs(d_o) > 0.6))
        return best
