"""The world tick: actors, traffic, scripted behaviours and infraction criteria at a fixed dt.

Physics runs at `DT` (20 Hz); the traffic manager and agents run every `AGENT_EVERY` steps (10 Hz).
Everything random comes from one generator seeded by (scenario name, seed), so a rerun is
bit-identical.
"""
from __future__ import annotations

import difflib
import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from sim import world_kernels as wk
from sim.actors import EGO, NPC, PARKED, Pedestrians, Vehicles
from sim.geometry import arc_length
from sim.infractions import (
    BlockedCriterion, CollisionCriterion, Criteria, EgoStep, Event, EventKind, OffroadCriterion, Others,
    ProgressCriterion, RedLightCriterion, StopSignCriterion,
)
from sim.map import RoadMap, SignalPlan
from sim.metrics.at_fault import LaneContext
from sim.metrics.drivable_area import outside_distance
from sim.metrics.step import StepMetrics
from sim.route import Route, build_route, route_stop_lines, route_through
from sim.scenario import (
    CutIn, HardBrake, ParkedActor, PedestrianActor, Place, RedLightRunner, Scenario, ScenarioError, Trigger,
    VehicleActor, sample, sample_int,
)
from sim.traffic import Driver, TrafficManager
from sim.types import (
    ActorType, Command, Control, EgoOdometry, LightState, ObjectState, Observation, StopLineState, VehicleState,
)
from sim.vehicle_model import VehicleParams, step_many

DT = 0.05  # physics step [s]
AGENT_EVERY = 2  # agents and traffic run every 2 physics steps (10 Hz)
WALKER_GAP_S = 4.0  # a waiting walker crosses only if no moving car is nearer than this in time (or 25 m)
PED_MAX_PAUSE = 3.0  # a walker waits this long for a standing car in its way before going round it [s]
EGO_PARAMS = VehicleParams()
CAR_SIZES = np.array([[4.2, 1.8], [4.6, 1.9], [4.9, 2.0], [5.2, 2.1]])  # compact, sedan, SUV, van [m]


@lru_cache(maxsize=16)
def _cached_map(scenario_json: str, signal: SignalPlan) -> RoadMap:
    """Maps are rebuilt only when the scenario or its sampled signal timing changes."""
    return Scenario.model_validate_json(scenario_json).build_map(signal)


@dataclass
class Script:
    """A scripted behaviour waiting for its trigger."""

    row: int  # vehicle row, or pedestrian index for walkers
    kind: str  # "cut_in" | "hard_brake" | "walk"
    time: float | None  # fires at this sim time [s] ...
    ego_distance: float | None  # ... or when the ego comes this close [m]
    params: dict
    fired: bool = False


class World:
    def __init__(self, scenario: Scenario, seed: int, ego_autopilot: bool = False) -> None:
        self.scenario, self.seed = scenario, seed
        ss = np.random.SeedSequence([seed, zlib.crc32(scenario.name.encode())])
        self.rng = np.random.default_rng(ss)
        rng = self.rng
        self.map = _cached_map(scenario.model_dump_json(), scenario.sample_signals(rng))
        self.weather = scenario.pick_weather(rng)
        self.t, self.steps = 0.0, 0
        m = self.map

        # ego and its route
        places = [self._resolve(p, f"ego.{k}") for k, p in
                  [("start", scenario.ego.start), *[(f"via.{i}", v) for i, v in enumerate(scenario.ego.via)],
                   ("goal", scenario.ego.goal)]]
        try:
            self.route: Route = route_through(m, [(lane, s) for lane, s, _ in places])
        except ValueError as e:
            raise ScenarioError(f"{scenario.source}: ego: {e}; check ego.start, ego.via and ego.goal") from None
        rows: list[dict] = [self._vehicle_row(EGO, *places[0], sample(scenario.ego.speed, rng), EGO_PARAMS.length,
                                              EGO_PARAMS.width, colour=np.array([0.9, 0.9, 0.95]))]
        drivers: dict[int, Driver] = {}
        self.scripts: list[Script] = []
        peds: list[dict] = []
        for i, actor in enumerate(scenario.actors):
            where = f"actors.{i}"
            if isinstance(actor, ParkedActor):
                lane, s, d = self._resolve(actor.at, where + ".at")
                rows.append(self._vehicle_row(PARKED, lane, s, d, 0.0, actor.length, actor.width))
            elif isinstance(actor, VehicleActor):
                lane, s, d = self._resolve(actor.start, where + ".start")
                size = CAR_SIZES[rng.integers(len(CAR_SIZES))]
                rows.append(self._vehicle_row(NPC, lane, s, d, sample(actor.speed, rng), *size))
                lanes = [lane]
                for j, via in enumerate(actor.via):
                    vl, _, _ = self._resolve(via, f"{where}.via.{j}")
                    lanes += m.route_lanes(lanes[-1], vl)[1:]
                desired = sample(actor.desired_speed, rng) if actor.desired_speed is not None else m.lanes[lane].speed_limit
                drv = Driver(build_route(m, lanes, s), desired)
                b = actor.behavior
                if isinstance(b, RedLightRunner):
                    drv.ignore_lights = True
                elif isinstance(b, CutIn):
                    self.scripts.append(Script(len(rows) - 1, "cut_in", *self._trigger(b.trigger),
                                               {"side": b.side, "change_length": sample(b.change_length, rng)}))
                elif isinstance(b, HardBrake):
                    self.scripts.append(Script(len(rows) - 1, "hard_brake", *self._trigger(b.trigger),
                                               {"decel": sample(b.decel, rng), "hold_s": sample(b.hold_s, rng)}))
                drivers[len(rows) - 1] = drv
            elif isinstance(actor, PedestrianActor):
                peds.append({"path": np.array(actor.path, dtype=float), "cw": np.full(len(actor.path) - 1, -1),
                             "loop": False, "s": 0.0, "speed": sample(actor.speed, rng), "go": actor.trigger is None})
                if actor.trigger is not None:
                    self.scripts.append(Script(len(peds) - 1, "walk", *self._trigger(actor.trigger), {}))
        self._spawn_traffic(rows, drivers, sample_int(scenario.traffic.vehicles, rng), scenario.traffic.speed_factor)
        self._spawn_walkers(peds, sample_int(scenario.traffic.pedestrians, rng))

        n = len(rows)
        cols = {k: np.array([r[k] for r in rows]) for k in rows[0]}
        self.vehicles = Vehicles(id=np.arange(n), **cols)
        self.peds = Pedestrians(
            id=np.arange(n, n + len(peds)), path=[p["path"] for p in peds], crosswalk=[p["cw"] for p in peds],
            loop=np.array([p["loop"] for p in peds], dtype=bool), s=np.array([p["s"] for p in peds], dtype=float),
            speed=np.array([p["speed"] for p in peds], dtype=float), go=np.array([p["go"] for p in peds], dtype=bool))
        self.prop_id = np.arange(n + len(peds), n + len(peds) + len(m.props))
        self.traffic = TrafficManager(m, self.vehicles, self.peds, rng)
        self.ego_autopilot = ego_autopilot
        if ego_autopilot:
            drivers[0] = Driver(self.route, m.lanes[places[0][0]].speed_limit, wander=False, stop_at_end=True)
        for row, drv in drivers.items():
            self.traffic.add(row, drv)
        self._prop_x, self._prop_y, self._prop_l, self._prop_w = (
            np.array([getattr(q, k) for q in m.props], dtype=float) for k in ("x", "y", "length", "width"))
        # no two boxes can touch with centres farther apart than the sum of their half-diagonals
        self._reach = float(np.hypot(self.vehicles.length, self.vehicles.width).max()) + 0.5
        self._others: tuple[int, Others] | None = None
        self._ped_blocked = np.zeros(len(self.peds), dtype=bool)
        self._ped_paused = np.zeros(len(self.peds))  # how long each walker has been held by a car [s]
        self._crosswalk_boxes: dict[str, tuple[float, ...]] = {}  # id → (centre, axis, half extents)
        self._others_static: tuple[bytes, dict] | None = None
        self._init_criteria()
        self.S, self.d = self.route.project(np.array([self.vehicles.x[0], self.vehicles.y[0]]), hint=0.0)
        self.traffic.update(0.0)

    # ---- construction helpers ------------------------------------------------------------
    def _resolve(self, place: Place, where: str) -> tuple[str, float, float]:
        m = self.map
        if place.lane is not None:
            if place.lane not in m.lanes:
                close = difflib.get_close_matches(place.lane, m.lane_ids, n=1)
                hint = f"; did you mean `{close[0]}`?" if close else ""
                raise ScenarioError(f"{self.scenario.source}: {where}.lane: no lane {place.lane!r} on this map{hint}")
            lane = m.lanes[place.lane]
            return place.lane, float(np.clip(sample(place.s, self.rng), 0, lane.length)), sample(place.d, self.rng)
        heading = None if place.heading_deg is None else np.radians(place.heading_deg)
        li, s, dist = m.nearest_lane(np.array([place.x, place.y]), None if heading is None else np.array([heading]))
        if dist[0] > 10.0:
            raise ScenarioError(f"{self.scenario.source}: {where}: ({place.x}, {place.y}) is {dist[0]:.0f} m from any lane")
        return m.lane_ids[int(li[0])], float(s[0]), sample(place.d, self.rng)

    def _trigger(self, trig: Trigger) -> tuple[float | None, float | None]:
        t = None if trig.time is None else sample(trig.time, self.rng)
        return t, None if trig.ego_distance is None else sample(trig.ego_distance, self.rng)

    def _vehicle_row(self, role, lane_id, s, d, v, length, width, colour=None) -> dict:
        lane = self.map.lanes[lane_id]
        x, y = lane.position(s, d)
        return dict(role=role, x=float(x), y=float(y), yaw=float(lane.heading_at(s)), v=float(v), steer=0.0,
                    accel=0.0, length=float(length), width=float(width),
                    colour=self.rng.uniform(0.05, 0.95, 3) if colour is None else colour)

    def _spawn_traffic(self, rows: list[dict], drivers: dict, count: int, speed_factor) -> None:
        m, rng = self.map, self.rng
        roads = [lid for lid in m.lane_ids if m.lanes[lid].junction is None and m.lanes[lid].length > 25]
        taken = np.array([[r["x"], r["y"]] for r in rows])
        ego_xy = taken[0]
        for _ in range(count):
            for _attempt in range(60):
                lane = m.lanes[roads[rng.integers(len(roads))]]
                s = float(rng.uniform(5.0, lane.length - 12.0))
                xy = lane.position(s)
                if np.min(np.linalg.norm(taken - xy, axis=1)) > 14.0 and np.linalg.norm(xy - ego_xy) > 30.0:
                    break
            else:
                continue
            desired = lane.speed_limit * sample(speed_factor, rng)
            size = CAR_SIZES[rng.integers(len(CAR_SIZES))]
            rows.append(self._vehicle_row(NPC, lane.id, s, 0.0, desired * 0.7, *size))
            drivers[len(rows) - 1] = Driver(build_route(m, [lane.id], s), desired)
            taken = np.vstack([taken, xy])

    def _spawn_walkers(self, peds: list[dict], count: int) -> None:
        paths = self.map.ped_paths
        if not paths:
            return
        for _ in range(count):
            p = paths[self.rng.integers(len(paths))]
            s_path = arc_length(p.points)
            sidewalk = np.nonzero(p.crosswalk < 0)[0]  # start on a sidewalk segment, never mid-crossing
            k = sidewalk[self.rng.integers(len(sidewalk))]
            peds.append({"path": p.points, "cw": p.crosswalk, "loop": True,
                         "s": float(self.rng.uniform(s_path[k], s_path[k + 1])),
                         "speed": float(self.rng.uniform(1.1, 1.6)), "go": True})

    def _init_criteria(self) -> None:
        m, r = self.map, self.route
        self.stop_lines = lines = route_stop_lines(m, r)
        self.criteria = Criteria(
            CollisionCriterion(LaneContext(m)), RedLightCriterion(lines, self.light_state), StopSignCriterion(lines),
            OffroadCriterion(m.is_drivable, outside_distance(m)), ProgressCriterion(r.length),
            BlockedCriterion(self.scenario.blocked_s))
        self.metrics = StepMetrics.for_route(m, r, DT * AGENT_EVERY)  # nuPlan terms at the agent rate

    # ---- queries ---------------------------------------------------------------------------
    def light_state(self, junction: str, group: int | None, t: float | None = None) -> LightState:
        return self.map.junctions[junction].signal.state(group, self.t if t is None else t)

    @property
    def ego_state(self) -> VehicleState:
        v = self.vehicles
        return VehicleState(float(v.x[0]), float(v.y[0]), float(v.yaw[0]), float(v.v[0]), float(v.steer[0]), float(v.accel[0]))

    @property
    def command(self) -> Command:
        return self.route.command_at(self.S)

    def observe(self) -> Observation:
        v = self.vehicles
        odo = EgoOdometry(self.t, float(v.v[0]), float(v.v[0] * np.tan(v.steer[0]) / EGO_PARAMS.wheelbase), float(v.accel[0]))
        return Observation(self.t, self.ego_state, odo, self.command)

    def others(self) -> Others:
        """Boxes of every active actor but the ego, then the props (built once per step)."""
        if self._others is not None and self._others[0] == self.steps:
            return self._others[1]
        v, p, m = self.vehicles, self.peds, self.map
        key = v.active.tobytes()
        if self._others_static is None or self._others_static[0] != key:
            props = m.props
            act = np.nonzero(v.active)[0]
            act = act[act != 0]
            self._others_static = (key, dict(
                act=act,
                id=np.concatenate([v.id[act], p.id, self.prop_id]),
                type=np.array([ActorType.VEHICLE.value] * len(act) + [ActorType.PEDESTRIAN.value] * len(p)
                              + [ActorType.STATIC.value] * len(props)),
                length=np.concatenate([v.length[act], p.length, [q.length for q in props]]),
                width=np.concatenate([v.width[act], p.width, [q.width for q in props]]),
                props=np.array([[q.x, q.y, q.yaw] for q in props]).reshape(-1, 3)))
            st = self._others_static[1]
            st["moving"] = st["type"] != ActorType.STATIC.value  # actors, not props
        st = self._others_static[1]
        x, y, yaw, vx, vy = wk.others(st["act"], v.x, v.y, v.yaw, v.v, p.x, p.y, p.yaw, p.v, st["props"])
        others = Others(id=st["id"], type=st["type"], length=st["length"], width=st["width"], x=x, y=y, yaw=yaw,
                        vx=vx, vy=vy)
        self._others = (self.steps, others)
        return others

    def autopilot_control(self) -> Control:
        """The traffic manager's command for the ego (only meaningful with ego_autopilot)."""
        return Control(float(self.vehicles.cmd_steer[0]), float(self.vehicles.cmd_accel[0]))

    def ground_truth_objects(self) -> list[ObjectState]:
        """Every active vehicle (but the ego) and pedestrian as the planner's object type.

        For privileged agents only: the runner hands them the world.
        """
        v, p = self.vehicles, self.peds
        out = [ObjectState(int(v.id[i]), ActorType.VEHICLE, float(v.x[i]), float(v.y[i]), float(v.yaw[i]),
                           float(v.v[i] * np.cos(v.yaw[i])), float(v.v[i] * np.sin(v.yaw[i])),
                           float(v.length[i]), float(v.width[i]))
               for i in np.nonzero(v.active)[0] if i != 0]
        out += [ObjectState(int(p.id[i]), ActorType.PEDESTRIAN, float(p.x[i]), float(p.y[i]), float(p.yaw[i]),
                            float(p.v[i] * np.cos(p.yaw[i])), float(p.v[i] * np.sin(p.yaw[i])),
                            float(p.length[i]), float(p.width[i])) for i in range(len(p))]
        return out

    def stop_line_states(self) -> list[StopLineState]:
        """The controlled stop lines on the ego's route with their true light states."""
        return [StopLineState(line.S, line.kind,
                              self.light_state(line.junction, line.signal_group) if line.kind == "light" else None,
                              line.junction) for line in self.stop_lines]

    # ---- the tick ------------------------------------------------------------------------------
    def step(self, control: Control | None = None) -> list[Event]:
        """Advance one physics step with the ego's control; return this step's events."""
        v = self.vehicles
        if control is not None:
            v.cmd_steer[0], v.cmd_accel[0] = control.steer, control.accel
        # parked cars have zero speed and commands, so they stay put without masking
        v.x, v.y, v.yaw, v.v, v.steer, v.accel = step_many(
            v.x, v.y, v.yaw, v.v, v.steer, v.accel, v.cmd_steer, v.cmd_accel, EGO_PARAMS, DT)
        p = self.peds
        p.advance(DT, self._ped_blocked)
        self.t = round(self.t + DT, 9)
        self.steps += 1
        events = self._check_ego()
        if self.steps % AGENT_EVERY == 0:
            self._fire_scripts()
            self._walkers_wait()
            self.traffic.update(self.t)
        self.criteria.events += events
        return events

    def _check_ego(self) -> list[Event]:
        v, c = self.vehicles, self.criteria
        xy = (v.x[0], v.y[0])
        self.S, self.d = self.route.track(xy, self.S)
        if abs(self.d) > 2.0:  # off the route or cutting a corner: search properly
            self.S, self.d = self.route.project(np.array(xy), hint=self.S, window=10.0)
        ego = EgoStep(self.t, float(v.x[0]), float(v.y[0]), float(v.yaw[0]), float(v.v[0]), float(v.length[0]),
                      float(v.width[0]), self.S, self.d)
        events = c.collision.update(ego, self.others()) if self._anything_near() else []
        events += c.red_light.update(ego) + c.stop_sign.update(ego) + c.progress.update(ego)
        if self.steps % AGENT_EVERY == 0:
            c.offroad.update(ego)
            self.metrics.update(ego, self.others())
            # whether anything is ahead matters only to a standing ego
            events += c.blocked.update(ego, ego.v < 0.1 and self._something_ahead())
        if self.t >= self.scenario.duration_s - 1e-9:
            events.append(Event(self.t, EventKind.TIMEOUT))
        return events

    def _anything_near(self) -> bool:
        """Broad phase for the ego's collision test, straight from the actor arrays: within the
        largest vehicle's reach, and within the collision criterion's own (so it would test boxes)."""
        v, p = self.vehicles, self.peds
        return wk.any_near(v.x, v.y, v.length, v.width, v.active, p.x, p.y, p.length, p.width, self._prop_x, self._prop_y,
                         self._prop_l, self._prop_w, self._reach**2)

    def _something_ahead(self, reach: float = 15.0) -> bool:
        """An actor in a ±30° cone within `reach` m, or a red light / stop line just ahead."""
        o = self.others()
        v = self.vehicles
        if wk.any_in_cone(o.x, o.y, self._others_static[1]["moving"], v.x[0], v.y[0], v.yaw[0], reach):
            return True
        for line in self.stop_lines:
            if 0 <= line.S - self.S < reach and (line.kind == "stop" or self.light_state(line.junction, line.signal_group) is not LightState.GREEN):
                return True
        return False

    def _fire_scripts(self) -> None:
        v = self.vehicles
        for sc in self.scripts:
            if sc.fired:
                continue
            if sc.time is not None:
                due = self.t >= sc.time
            else:
                xy = (self.peds.x[sc.row], self.peds.y[sc.row]) if sc.kind == "walk" else (v.x[sc.row], v.y[sc.row])
                due = np.hypot(xy[0] - v.x[0], xy[1] - v.y[0]) <= sc.ego_distance
            if not due:
                continue
            sc.fired = True
            if sc.kind == "walk":
                self.peds.go[sc.row] = True
            elif sc.kind == "hard_brake" and sc.row in self.traffic.drivers:
                drv = self.traffic.drivers[sc.row]
                drv.brake = sc.params["decel"]
                drv.brake_until = self.t + v.v[sc.row] / sc.params["decel"] + sc.params["hold_s"]
            elif sc.kind == "cut_in" and sc.row in self.traffic.drivers:
                self._change_lane(sc.row, sc.params["side"], sc.params["change_length"])

    def _change_lane(self, row: int, side: str, length: float) -> None:
        drv = self.traffic.drivers[row]
        r = drv.route
        lane = self.map.lanes[r.lane_ids[r.piece_at(drv.S)]]
        target = lane.left if side == "left" else lane.right
        if target is None:
            return
        s_now, _ = lane.frenet(np.array([self.vehicles.x[row], self.vehicles.y[row]]))
        new = build_route(self.map, [lane.id, target], float(s_now[0]), change_length=length)
        self.traffic.set_route(row, new, 0.0)

    def _walkers_wait(self) -> None:
        """Background walkers stop at the kerb until their crosswalk is safe to use."""
        p, m = self.peds, self.map
        if not len(p):
            return
        clear: dict[int, bool] = {}  # per crosswalk, this tick
        for i, k in p.at_kerb(1.0):
            if k not in clear:
                clear[k] = self._crosswalk_clear(m.crosswalks[k])
            p.go[i] = clear[k]
        # a walker waits for a moving car as long as it takes; after PED_MAX_PAUSE for a standing
        # one it steps aside past the car's end (its rear if it can), walks past and returns to its
        # path (a car and walkers waiting for each other would otherwise wait forever). It never
        # walks through a car: boxed in on both sides, it waits
        v = self.vehicles
        self._ped_blocked, self._ped_paused = wk.walkers_held(
            p.path_x, p.path_y, p.path_yaw, p.x, p.y, p.go, p.off, p.off_goal, v.x, v.y, v.yaw, v.v, v.length,
            v.width, v.active, self._ped_paused, AGENT_EVERY * DT, PED_MAX_PAUSE)

    def _crosswalk_clear(self, cw) -> bool:
        # a car standing on the crossing (turning, held there by walkers) goes first: walkers stepping
        # round it one after another held it there for good (dense_urban seed 1, an NPC for 80 s)
        if self._crosswalk_occupied(cw):
            return False
        if cw.signal_group is not None and self.map.junctions[cw.junction].signal is not None:
            plan = self.map.junctions[cw.junction].signal
            return plan.state(cw.signal_group, self.t) is LightState.GREEN and plan.time_to_change(self.t) > 6.0
        v = self.vehicles
        centre = (cw.a + cw.b) / 2
        # a gap a careful driver can stop for: 25 m, or 4 s at the car's speed (a walker stepping
        # out 2.5 s ahead of a car at 10 m/s would leave it less than a comfortable stop)
        return not wk.moving_within(v.x, v.y, v.v, v.active, float(centre[0]), float(centre[1]), 25.0, 0.5,
                                    WALKER_GAP_S)

    def _crosswalk_occupied(self, cw) -> bool:
        """Does a vehicle's body (grown by the walkers' clearance) overlap the crosswalk?"""
        box = self._crosswalk_boxes.get(cw.id)
        if box is None:  # the crosswalk as an oriented box, once: its geometry costs more than the test
            u = (cw.b - cw.a) / np.hypot(*(cw.b - cw.a))
            centre = cw.polygon.mean(axis=0)
            rel = cw.polygon - centre
            box = self._crosswalk_boxes[cw.id] = (float(centre[0]), float(centre[1]), float(u[0]), float(u[1]),
                                                  float(np.abs(rel @ u).max()), float(np.abs(rel @ [-u[1], u[0]]).max()))
        v = self.vehicles
        return wk.box_hits(*box, v.x, v.y, v.yaw, v.length, v.width, v.active) >= 0
