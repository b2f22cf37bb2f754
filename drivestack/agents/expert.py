"""`expert`: ground-truth objects and light states → the planner → the tracking controller.

The upper bound of the modular stack and the teacher of the end-to-end policy. It shares the
planner and controller with `modular`; only where the objects come from differs.
"""
from __future__ import annotations

import time

from control.pure_pursuit import PurePursuitPID
from drivestack.errors import UserError
from planning.planner import Planner, PlannerInput, PlannerOutput
from sim.map import RoadMap
from sim.route import Route
from sim.types import Control, Observation


class ExpertAgent:
    name = "expert"
    privileged = True
    uses_traffic_manager = False

    CONTROLLERS = ("mpc", "pid")

    def __init__(self, controller: str = "mpc") -> None:
        """`controller`: "mpc" (control/mpc.py, pure pursuit + PID as its fallback) or "pid"."""
        if controller not in self.CONTROLLERS:
            raise UserError(f"--controller: unknown controller {controller!r}; available: {', '.join(self.CONTROLLERS)}")
        self.planner: Planner | None = None
        if controller == "mpc":
            from control.mpc import MPCController

            self.controller = MPCController()
        else:
            self.controller = PurePursuitPID()
        self.controller_name = controller
        self.last: PlannerOutput | None = None
        self.timing: dict[str, float] = {}  # this tick's stage times [ms], for `bench stack`

    @property
    def fallback_steps(self) -> int:
        """Ticks on which the MPC fell back (pure pursuit or brake); 0 for the PID tracker."""
        return int(getattr(self.controller, "fallback_steps", 0))

    @property
    def emergency(self) -> bool:
        """Whether this tick's plan is an emergency stop (the runner leaves those out of comfort)."""
        return bool(self.last is not None and self.last.emergency)

    def sensors(self) -> list:
        return []

    def reset(self, route: Route, road_map: RoadMap) -> None:
        self.planner = Planner(road_map, route)
        self.controller.reset()

    def act(self, obs: Observation) -> Control:
        t0 = time.perf_counter()
        world = obs.privileged
        inp = PlannerInput(obs.t, obs.ego, tuple(world.ground_truth_objects()), tuple(world.stop_line_states()))
        t1 = time.perf_counter()
        self.last = self.planner.plan(inp)
        t2 = time.perf_counter()
        control = self.controller.control(obs.ego, self.last.trajectory, obs.t)
        t3 = time.perf_counter()
        # ground truth stands in for perception here: its cost is the lookup
        self.timing = {"perception": (t1 - t0) * 1e3, "planning": (t2 - t1) * 1e3, "control": (t3 - t2) * 1e3}
        return control
