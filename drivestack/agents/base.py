"""The agent protocol, shaped like CARLA's AutonomousAgent: declare sensors, reset, act."""
from __future__ import annotations

from typing import Protocol, runtime_checkable

from sim.map import RoadMap
from sim.route import Route
from sim.sensors.specs import SensorSpec
from sim.types import Control, Observation


@runtime_checkable
class Agent(Protocol):
    name: str
    # Privileged agents get `obs.privileged` from the runner; the stack's agents never do.
    privileged: bool
    # An agent driven by the simulator's own traffic manager (the autopilot).
    uses_traffic_manager: bool

    def sensors(self) -> list[SensorSpec]:
        """The sensor rig this agent needs (CameraSpec, LidarSpec, RadarSpec, OdometrySpec from
        sim.sensors.specs); the runner builds and checks it and puts the frames, keyed by sensor
        name, in `Observation.sensors` every agent tick. An empty list: no sensors, no cost."""
        ...

    def reset(self, route: Route, road_map: RoadMap) -> None:
        """Start of an episode: the route to drive and the HD map."""
        ...

    def act(self, obs: Observation) -> Control:
        """One control per agent tick (10 Hz)."""
        ...
