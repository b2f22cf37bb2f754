"""Benchmarks that print numbers; targets are checked by reading them, never in timed tests."""
from __future__ import annotations

import time

from sim.scenario import load_scenario
from sim.world import World


def bench_sim(scenario: str = "town_loop", steps: int = 4000, seed: int = 0, warmup: int = 200) -> dict:
    """Physics steps per second of the whole world (traffic manager at 10 Hz, ego on autopilot).

    No sensors, no rendering: what the simulator itself costs.
    """
    world = World(load_scenario(scenario), seed, ego_autopilot=True)
    for _ in range(warmup):
        world.step(world.autopilot_control())
    t0 = time.perf_counter()
    for _ in range(steps):
        world.step(world.autopilot_control())
    wall = time.perf_counter() - t0
    vehicles = int(world.vehicles.active.sum())
    return {
        "scenario": scenario,
        "steps": steps,
        "steps_per_s": round(steps / wall, 1),
        "realtime_factor": round(steps * 0.05 / wall, 1),
        "actors": vehicles + len(world.peds),
        "vehicles": vehicles,
        "pedestrians": len(world.peds),
    }
