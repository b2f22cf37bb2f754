"""Scenario files: a validated YAML schema, and per-seed sampling of its parameter ranges.

A number anywhere below may be written as a range `[lo, hi]`, sampled uniformly per seed; a
weather may be a list, chosen per seed. Unknown keys are rejected with the closest valid key.
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Literal, Union

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from sim.map import RoadMap, SignalPlan
from sim.map_builders import RoadStyle, curved, four_way, grid_town, straight, t_junction

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"
WEATHERS = ("day", "dusk", "night", "fog", "rain")


class ScenarioError(ValueError):
    """A scenario that cannot be used; the message is one line naming the file, field and fix."""


Sampled = Union[float, tuple[float, float]]


def sample(value: Sampled, rng: np.random.Generator) -> float:
    if isinstance(value, tuple):
        return float(rng.uniform(*value))
    return float(value)


def sample_int(value: Sampled, rng: np.random.Generator) -> int:
    if isinstance(value, tuple):
        return int(rng.integers(int(value[0]), int(value[1]) + 1))
    return int(value)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="after")
    def _ranges_ordered(self):
        for name in type(self).model_fields:
            v = getattr(self, name)
            if isinstance(v, tuple) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v) and v[0] > v[1]:
                raise ValueError(f"range {name} [{v[0]}, {v[1]}] has lo > hi")
        return self


# ---- maps ----------------------------------------------------------------------------------------

class _MapBase(Strict):
    lanes: int = Field(1, ge=1, le=4, description="lanes per direction")
    lane_width: float = Field(3.5, ge=2.5, le=5.0)
    speed_limit: float = Field(11.1, gt=0, le=40, description="[m/s]")

    def style(self) -> RoadStyle:
        return RoadStyle(self.lanes, self.lane_width, self.speed_limit)


class StraightMap(_MapBase):
    type: Literal["straight"]
    lanes: int = Field(2, ge=1, le=4)
    speed_limit: float = Field(16.7, gt=0, le=40)
    length: float = Field(400.0, ge=50, le=5000)


class CurvedMap(_MapBase):
    type: Literal["curved"]
    speed_limit: float = Field(13.9, gt=0, le=40)
    segments: list[tuple[float, float]] = Field(
        default=[(60, 0), (80, 1 / 45), (40, 0), (70, -1 / 35), (60, 0)],
        description="pieces of (length [m], curvature [1/m], + left)")


class FourWayMap(_MapBase):
    type: Literal["four_way"]
    arm_length: float = Field(80.0, ge=30, le=500)
    control: Literal["signal", "allway_stop", "two_way_stop", "priority"] = "signal"


class TJunctionMap(_MapBase):
    type: Literal["t_junction"]
    arm_length: float = Field(80.0, ge=30, le=500)
    control: Literal["signal", "two_way_stop", "priority"] = "two_way_stop"


class GridTownMap(_MapBase):
    type: Literal["grid_town"]
    rows: int = Field(4, ge=2, le=8)
    cols: int = Field(4, ge=2, le=8)
    block: float = Field(70.0, ge=40, le=300)


MapSpec = Annotated[Union[StraightMap, CurvedMap, FourWayMap, TJunctionMap, GridTownMap], Field(discriminator="type")]


class Signals(Strict):
    green: Sampled = 12.0  # [s]
    yellow: Sampled = 3.0
    all_red: Sampled = 1.0
    offset: Sampled = 0.0


# ---- places, triggers, actors ----------------------------------------------------------------------

class Place(Strict):
    """A point on the map: on a lane (`lane`, `s`, optional lateral `d`), or at `x`, `y`."""

    lane: str | None = None
    s: Sampled = 0.0  # [m] along the lane
    d: Sampled = 0.0  # [m] left of the lane centre
    x: float | None = None
    y: float | None = None
    heading_deg: float | None = None  # disambiguates the lane for x/y places

    @model_validator(mode="after")
    def _one_form(self):
        if self.lane is None and (self.x is None or self.y is None):
            raise ValueError("a place needs either `lane` (with `s`) or both `x` and `y`")
        return self


class Trigger(Strict):
    """Fires when sim time reaches `time` [s], or the ego comes within `ego_distance` [m]."""

    time: Sampled | None = None
    ego_distance: Sampled | None = None

    @model_validator(mode="after")
    def _one(self):
        if (self.time is None) == (self.ego_distance is None):
            raise ValueError("a trigger needs exactly one of `time` or `ego_distance`")
        return self


class CutIn(Strict):
    type: Literal["cut_in"]
    side: Literal["left", "right"] = Field(description="the side of the lane the vehicle moves to")
    trigger: Trigger
    change_length: Sampled = 20.0  # [m]


class HardBrake(Strict):
    type: Literal["hard_brake"]
    trigger: Trigger
    decel: Sampled = 6.0  # [m/s²]
    hold_s: Sampled = 3.0  # stands still this long, then drives on [s]


class RedLightRunner(Strict):
    type: Literal["red_light_runner"]


Behaviour = Annotated[Union[CutIn, HardBrake, RedLightRunner], Field(discriminator="type")]


class VehicleActor(Strict):
    type: Literal["vehicle"]
    start: Place
    speed: Sampled = 0.0  # initial [m/s]
    desired_speed: Sampled | None = None  # default: the lane's limit [m/s]
    via: list[Place] = []  # route; without it, wanders the lane graph
    behavior: Behaviour | None = None


class ParkedActor(Strict):
    type: Literal["parked"]
    at: Place
    length: float = Field(4.6, gt=2, le=12)
    width: float = Field(1.9, gt=1, le=3)


class PedestrianActor(Strict):
    type: Literal["pedestrian"]
    path: list[tuple[float, float]] = Field(min_length=2, description="waypoints [m]")
    speed: Sampled = 1.4  # [m/s]
    trigger: Trigger | None = None  # without one, walks from the start


Actor = Annotated[Union[VehicleActor, ParkedActor, PedestrianActor], Field(discriminator="type")]


class Ego(Strict):
    start: Place
    goal: Place
    via: list[Place] = []
    speed: Sampled = 0.0  # initial [m/s]


class Traffic(Strict):
    vehicles: Sampled = 0  # background NPCs
    pedestrians: Sampled = 0
    speed_factor: Sampled = (0.8, 1.0)  # NPC desired speed as a fraction of the limit


class Scenario(Strict):
    name: str
    description: str = Field(min_length=1, description="one line")
    map: MapSpec
    signals: Signals = Signals()
    weather: str | list[str] = "day"
    duration_s: float = Field(60.0, gt=0, le=3600)
    blocked_s: float = Field(30.0, gt=0, description="standing still this long with nothing ahead ends the episode")
    ego: Ego
    traffic: Traffic = Traffic()
    actors: list[Actor] = []
    _source: str = PrivateAttr(default="")

    @field_validator("weather")
    @classmethod
    def _weather(cls, value):
        for w in [value] if isinstance(value, str) else value:
            if w not in WEATHERS:
                raise ValueError(f"unknown weather {w!r}; use one of {', '.join(WEATHERS)}")
        return value

    @property
    def source(self) -> str:
        """The file this scenario came from (its name if it was built in code)."""
        return self._source or self.name

    def sample_signals(self, rng: np.random.Generator) -> SignalPlan:
        """The signal timing for one seed; phases come from each junction's arms."""
        return SignalPlan(((0,), (1,)), *(sample(getattr(self.signals, k), rng) for k in ("green", "yellow", "all_red", "offset")))

    def build_map(self, sig: SignalPlan) -> RoadMap:
        spec, style = self.map, self.map.style()
        if isinstance(spec, StraightMap):
            return straight(spec.length, style)
        if isinstance(spec, CurvedMap):
            return curved(spec.segments, style)
        if isinstance(spec, FourWayMap):
            return four_way(spec.arm_length, spec.control, style, sig)
        if isinstance(spec, TJunctionMap):
            return t_junction(spec.arm_length, spec.control, style, sig)
        return grid_town(spec.rows, spec.cols, spec.block, style, sig)

    def pick_weather(self, rng: np.random.Generator) -> str:
        return self.weather if isinstance(self.weather, str) else str(rng.choice(self.weather))


# ---- loading --------------------------------------------------------------------------------------

def _field_path(loc: tuple) -> str:
    return ".".join(str(p) for p in loc if not (isinstance(p, str) and p in {
        "straight", "curved", "four_way", "t_junction", "grid_town", "vehicle", "parked", "pedestrian",
        "cut_in", "hard_brake", "red_light_runner", "tuple[float, float]", "float"}))


def _allowed_keys(loc: tuple) -> list[str]:
    """The valid keys at the place of an error, for 'did you mean' suggestions."""
    model: type[BaseModel] | None = Scenario
    for part in loc[:-1]:
        if model is None:
            break
        if isinstance(part, int):
            continue
        if part in model.model_fields:
            ann = model.model_fields[part].annotation
            model = _model_in(ann)
        else:
            model = {"straight": StraightMap, "curved": CurvedMap, "four_way": FourWayMap, "t_junction": TJunctionMap,
                     "grid_town": GridTownMap, "vehicle": VehicleActor, "parked": ParkedActor,
                     "pedestrian": PedestrianActor, "cut_in": CutIn, "hard_brake": HardBrake,
                     "red_light_runner": RedLightRunner}.get(part, None)
    return list(model.model_fields) if model is not None else []


def _model_in(ann) -> type[BaseModel] | None:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in getattr(ann, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _explain(err: dict) -> str:
    loc = tuple(err["loc"])
    path = _field_path(loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(loc)
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"; did you mean `{close[0]}`?" if close else (f"; allowed: {', '.join(allowed)}" if allowed else "")
        return f"{path}: unknown key{hint}"
    if err["type"] == "missing":
        return f"{path}: required field is missing"
    msg = err["msg"].removeprefix("Value error, ")
    return f"{path}: {msg}"


def parse_scenario(data: object, source: str) -> Scenario:
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: the file must hold a mapping of scenario fields, got {type(data).__name__}")
    data = {"name": Path(source).stem, **data}
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as e:
        errors = e.errors()
        # a union reports one error per member; the first is the most specific
        raise ScenarioError(f"{source}: {_explain(errors[0])}" + (f" (+{len(errors) - 1} more)" if len(errors) > 1 else "")) from None
    scenario._source = source
    return scenario


def resolve_path(name_or_path: str | Path) -> Path:
    """A scenario file from a path, or a shipped scenario's name."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml"):
        if not p.exists():
            raise ScenarioError(f"{p}: no such scenario file; `drivestack scenarios` lists the shipped ones")
        return p
    shipped = SCENARIO_DIR / f"{name_or_path}.yaml"
    if shipped.exists():
        return shipped
    names = [f.stem for f in sorted(SCENARIO_DIR.glob("*.yaml"))]
    close = difflib.get_close_matches(str(name_or_path), names, n=1)
    hint = f"did you mean `{close[0]}`?" if close else "`drivestack scenarios` lists them"
    raise ScenarioError(f"{name_or_path}: no such scenario; {hint}")


def load_scenario(name_or_path: str | Path) -> Scenario:
    path = resolve_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ScenarioError(f"{path}: not valid YAML{where}: {problem}") from None
    return parse_scenario(data, str(path))


def shipped_scenarios() -> list[Path]:
    return sorted(SCENARIO_DIR.glob("*.yaml"))
