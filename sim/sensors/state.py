"""A snapshot of what the sensors see at one instant, taken from the world or built by hand (tests).

Sensors never read the world directly: `snapshot(world)` copies the actor arrays they need, so a
sensor is a function of (map, snapshot, its own random generator).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.map import RoadMap
from sim.sensors.meshes import LABELLED_TYPES, PED_HEIGHT, car_type
from sim.types import LightState

KIND = {name: i for i, name in enumerate(LABELLED_TYPES)}
LIGHT_CODE = {LightState.RED: 2, LightState.YELLOW: 3, LightState.GREEN: 4}  # = Material.lit codes
CODE_STATE = {2: "red", 3: "yellow", 4: "green"}

SHIRTS = np.array([[0.8, 0.1, 0.1], [0.1, 0.3, 0.7], [0.9, 0.8, 0.2], [0.2, 0.6, 0.3], [0.9, 0.9, 0.9],
                   [0.15, 0.15, 0.15], [0.9, 0.45, 0.1], [0.5, 0.2, 0.6], [0.4, 0.7, 0.9], [0.75, 0.5, 0.55]],
                  dtype=np.float32)
TROUSERS = np.array([[0.1, 0.12, 0.3], [0.08, 0.08, 0.08], [0.35, 0.35, 0.38], [0.55, 0.48, 0.33],
                     [0.25, 0.2, 0.15], [0.2, 0.25, 0.45]], dtype=np.float32)
SKIN = np.array([[0.93, 0.76, 0.65], [0.8, 0.6, 0.47], [0.6, 0.42, 0.3], [0.42, 0.28, 0.2], [0.3, 0.2, 0.14]],
                dtype=np.float32)


def _hash(ids: np.ndarray, salt: int) -> np.ndarray:
    """A fixed pseudo-random integer per id (Knuth's multiplicative hash)."""
    return ((ids.astype(np.uint64) * np.uint64(2654435761) + np.uint64(salt * 40503)) % np.uint64(2**32)) >> np.uint64(8)


@dataclass(eq=False)
class Actors:
    """The moving (and parked) actors that sensors see, the ego excluded. World frame, SI."""

    id: np.ndarray  # int actor ids
    kind: np.ndarray  # int index into meshes.LABELLED_TYPES
    x: np.ndarray  # centre [m]
    y: np.ndarray
    yaw: np.ndarray  # [rad]
    vx: np.ndarray  # [m/s]
    vy: np.ndarray
    length: np.ndarray  # [m]
    width: np.ndarray
    colour: np.ndarray  # n×3: car paint, or a pedestrian's shirt
    colour2: np.ndarray  # n×3: trousers
    skin: np.ndarray  # n×3
    scale: np.ndarray  # n×3 mesh scale (cars: length, width, 1; pedestrians: 1, 1, height/1.75)

    def __len__(self) -> int:
        return len(self.id)

    @staticmethod
    def make(vehicles: dict | None = None, pedestrians: dict | None = None) -> "Actors":
        """From column dicts: vehicles {id, x, y, yaw, v, length, width, colour, [vx, vy]};
        pedestrians {id, x, y, yaw, v}."""
        parts = []
        if vehicles is not None and len(vehicles["id"]):
            vh = {k: np.asarray(val, dtype=float) for k, val in vehicles.items()}
            n = len(vh["id"])
            kinds = np.array([KIND[car_type(length)] for length in vh["length"]])
            vx = vh.get("vx", vh.get("v", np.zeros(n)) * np.cos(vh["yaw"]))
            vy = vh.get("vy", vh.get("v", np.zeros(n)) * np.sin(vh["yaw"]))
            colour = vh.get("colour", np.full((n, 3), 0.6))
            parts.append(dict(id=vh["id"].astype(int), kind=kinds, x=vh["x"], y=vh["y"], yaw=vh["yaw"], vx=vx, vy=vy,
                              length=vh["length"], width=vh["width"], colour=colour.reshape(n, 3),
                              colour2=np.zeros((n, 3)), skin=np.zeros((n, 3)),
                              scale=np.column_stack([vh["length"], vh["width"], np.ones(n)])))
        if pedestrians is not None and len(pedestrians["id"]):
            p = {k: np.asarray(val, dtype=float) for k, val in pedestrians.items()}
            ids = p["id"].astype(int)
            n = len(ids)
            height = 1.55 + 0.35 * (_hash(ids, 3) % np.uint64(1000)).astype(float) / 1000
            v = p.get("v", np.zeros(n))
            parts.append(dict(id=ids, kind=np.full(n, KIND["pedestrian"]), x=p["x"], y=p["y"], yaw=p["yaw"],
                              vx=v * np.cos(p["yaw"]), vy=v * np.sin(p["yaw"]), length=np.full(n, 0.3),
                              width=np.full(n, 0.45), colour=SHIRTS[_hash(ids, 1) % np.uint64(len(SHIRTS))],
                              colour2=TROUSERS[_hash(ids, 2) % np.uint64(len(TROUSERS))],
                              skin=SKIN[_hash(ids, 4) % np.uint64(len(SKIN))],
                              scale=np.column_stack([np.ones(n), np.ones(n), height / PED_HEIGHT])))
        if not parts:
            z = np.zeros(0)
            return Actors(np.zeros(0, int), np.zeros(0, int), z, z, z, z, z, z, z, np.zeros((0, 3)),
                          np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 3)))
        cols = {k: np.concatenate([q[k] for q in parts]) for k in parts[0]}
        for k in ("colour", "colour2", "skin", "scale"):
            cols[k] = cols[k].astype(np.float32)
        return Actors(**cols)


@dataclass(eq=False)
class EgoMotion:
    x: float  # [m]
    y: float
    yaw: float  # [rad]
    v: float = 0.0  # speed [m/s]
    vx: float = 0.0  # world-frame velocity of the centre [m/s]
    vy: float = 0.0
    yaw_rate: float = 0.0  # [rad/s]
    accel: float = 0.0  # [m/s²]


@dataclass(eq=False)
class SceneState:
    t: float  # sim time [s]
    weather: str
    ego: EgoMotion
    actors: Actors
    prop_ids: np.ndarray  # actor id per map prop
    light_code: np.ndarray  # per map prop: 0, or 2/3/4 for a traffic light showing red/yellow/green

    @staticmethod
    def build(road_map: RoadMap, ego: EgoMotion, actors: Actors | None = None, t: float = 0.0,
              weather: str = "day", prop_id_start: int = 1000) -> "SceneState":
        """A hand-made snapshot (tests, tools); light states come from the map's signal plans at t."""
        ids = np.arange(prop_id_start, prop_id_start + len(road_map.props))
        return SceneState(t, weather, ego, actors if actors is not None else Actors.make(), ids,
                          light_codes(road_map, t))


def light_codes(road_map: RoadMap, t: float) -> np.ndarray:
    out = np.zeros(len(road_map.props), dtype=np.int8)
    for i, p in enumerate(road_map.props):
        if p.kind == "traffic_light" and p.junction is not None and p.signal_group is not None:
            plan = road_map.junctions[p.junction].signal
            if plan is not None:
                out[i] = LIGHT_CODE[plan.state(p.signal_group, t)]
    return out


def snapshot(world) -> SceneState:
    """What the ego's sensors can see now: every active vehicle but the ego, every pedestrian."""
    from sim.vehicle_model import derivatives
    from sim.world import EGO_PARAMS

    v, p = world.vehicles, world.peds
    rows = np.nonzero(v.active)[0]
    rows = rows[rows != 0]
    beta = np.arctan(0.5 * np.tan(v.steer[rows]))
    veh = dict(id=v.id[rows], x=v.x[rows], y=v.y[rows], yaw=v.yaw[rows], length=v.length[rows], width=v.width[rows],
               colour=v.colour[rows], vx=v.v[rows] * np.cos(v.yaw[rows] + beta),
               vy=v.v[rows] * np.sin(v.yaw[rows] + beta))
    peds = dict(id=p.id, x=p.x, y=p.y, yaw=p.yaw, v=p.v) if len(p) else None
    dx, dy, yaw_rate = derivatives(v.yaw[0], v.v[0], v.steer[0], EGO_PARAMS.wheelbase)
    ego = EgoMotion(float(v.x[0]), float(v.y[0]), float(v.yaw[0]), float(v.v[0]), float(dx), float(dy),
                    float(yaw_rate), float(v.accel[0]))
    return SceneState(world.t, world.weather, ego, Actors.make(veh, peds), np.asarray(world.prop_id),
                      light_codes(world.map, world.t))
