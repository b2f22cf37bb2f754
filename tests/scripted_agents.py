"""Scripted drivers for tests: fixed steering and a speed hold, so the answer is known in advance.

Used as `--agent tests/scripted_agents.py:Cruise` (or `make_agent(...)` with the same spec); the
spec is a string, so worker processes and Ray tasks import them too.
"""
from __future__ import annotations

import numpy as np

from sim.types import Control, Observation


class Cruise:
    """Steer `steer` [rad] and hold `target` [m/s] (proportional on speed); sees nothing."""

    name = "cruise"
    privileged = False
    uses_traffic_manager = False
    target = 8.0  # [m/s]
    steer = 0.0  # [rad]

    def sensors(self) -> list[dict]:
        return []

    def reset(self, route, road_map) -> None:
        pass

    def act(self, obs: Observation) -> Control:
        return Control(self.steer, float(np.clip(1.5 * (self.target - obs.ego.v), -8.0, 3.0)))


class Stand(Cruise):
    name = "stand"
    target = 0.0


class DriftRight(Cruise):
    """Holds 8 m/s with a little right steer: it leaves its lane, then the road."""

    name = "drift_right"
    steer = -0.03


class CrashAfter1s(Cruise):
    """Raises from `act` once sim time reaches 1 s, like a buggy stack."""

    name = "crash_after_1s"

    def act(self, obs: Observation) -> Control:
        if obs.t >= 1.0:
            raise RuntimeError("scripted failure in act()\nsecond line of the message")
        return super().act(obs)
