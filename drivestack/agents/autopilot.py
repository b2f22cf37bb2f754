"""`autopilot`: the traffic manager's own rule-based driver at the ego's wheel (like CARLA's).

Privileged: the runner passes it a handle on the world, whose traffic manager computes the ego's
control with the same IDM, pure pursuit and junction rules that every NPC uses.
"""
from __future__ import annotations

from sim.map import RoadMap
from sim.route import Route
from sim.types import Control, Observation


class AutopilotAgent:
    name = "autopilot"
    privileged = True
    uses_traffic_manager = True

    def sensors(self) -> list:
        return []  # privileged: it sees the world, so it needs no sensors

    def reset(self, route: Route, road_map: RoadMap) -> None:
        pass

    def act(self, obs: Observation) -> Control:
        return obs.privileged.autopilot_control()
