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


def bench_sensors(scenario: str = "town_loop", frames: int = 100, seed: int = 0, warmup_s: float = 3.0,
                  threads: int | None = None) -> dict:
    """Sensor cost on a moving ego (the autopilot drives): medians over `frames` captures at 10 Hz
    interleaved with 20 Hz physics.

    steps_per_s is the issue's measure: world steps per wall second with the default camera and
    lidar at 10 Hz (scene build included). The radar is captured on the same frames and timed,
    but its time is left out of steps_per_s; steps_per_s_with_radar puts it back.
    `threads`: ray-casting threads (DRIVESTACK_RAY_THREADS; 0 = every core)."""
    import os

    import numpy as np

    from sim.sensors.radar import Radar
    from sim.sensors.rig import SensorRig, sensor_rng
    from sim.sensors.scene import cast_threads
    from sim.sensors.state import snapshot
    from sim.sensors.specs import CameraSpec, LidarSpec, RadarSpec
    from sim.world import AGENT_EVERY

    if threads is not None:
        os.environ["DRIVESTACK_RAY_THREADS"] = str(threads)
    world = World(load_scenario(scenario), seed, ego_autopilot=True)
    rig = SensorRig([CameraSpec(), LidarSpec()], world.map, seed)
    radar = Radar(RadarSpec(), sensor_rng(seed, "radar"))
    timing: dict[str, list[float]] = {"radar": []}
    labels = 0
    warm = int(warmup_s / 0.05)  # warm-up: caches, first builds, the ego under way
    steps = 0
    radar_s = 0.0
    t0 = time.perf_counter()
    while steps < warm + frames * AGENT_EVERY:
        if steps == warm:
            t0, radar_s, timing = time.perf_counter(), 0.0, {"radar": []}
            labels = 0
        if world.steps % AGENT_EVERY == 0:
            state = snapshot(world)
            f = rig.capture(state)
            labels += len(f["camera"].boxes)
            for k, v in rig.timing.items():
                timing.setdefault(k, []).append(v)
            r0 = time.perf_counter()
            radar.capture(rig.last_scene, state)
            dt = time.perf_counter() - r0
            radar_s += dt
            timing["radar"].append(dt * 1e3)
        world.step(world.autopilot_control())
        steps += 1
    wall = time.perf_counter() - t0
    n = frames * AGENT_EVERY
    med = {k: round(float(np.median(v)), 3) for k, v in timing.items()}
    probe = _cast_probe()
    return {
        "scenario": scenario,
        "frames": frames,
        "camera_ms": med["camera"],
        "lidar_ms": med["lidar"],
        "radar_ms": med["radar"],
        "scene_ms": med["scene"],
        "camera_p95_ms": round(float(np.percentile(timing["camera"], 95)), 3),
        "lidar_p95_ms": round(float(np.percentile(timing["lidar"], 95)), 3),
        "steps_per_s": round(n / (wall - radar_s), 1),
        "steps_per_s_with_radar": round(n / wall, 1),
        "camera": "320x160",
        "lidar": "32x1024",
        "labels_per_frame": round(labels / frames, 2),
        "weather": world.weather,
        "ray_threads": cast_threads(),
        "probe_cast_ms": probe,
        "load_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }


def _cast_probe(n: int = 30) -> float:
    """Median time [ms] to cast 320×160 rays at 60 boxes: the reference in DESIGN.md (about 2 ms on
    an idle machine). Compare it with the sensor numbers when the machine is shared."""
    import numpy as np

    from sim.sensors.scene import o3d

    lib = o3d()
    rng = np.random.default_rng(0)
    cube = np.array([[x, y, z] for x in (-.5, .5) for y in (-.5, .5) for z in (0, 1)], np.float32)
    faces = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1], [2, 3, 7], [2, 7, 6],
                      [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]], np.uint32)
    centres = rng.uniform(-60, 60, (60, 3)).astype(np.float32) * [1, 1, 0]
    v = (cube[None] * np.array([4.5, 1.9, 1.5], np.float32) + centres[:, None]).reshape(-1, 3)
    f = (faces[None] + 8 * np.arange(60, dtype=np.uint32)[:, None, None]).reshape(-1, 3)
    scene = lib.t.geometry.RaycastingScene()
    scene.add_triangles(lib.core.Tensor(v.astype(np.float32)), lib.core.Tensor(f.astype(np.uint32)))
    u, w = np.meshgrid(np.arange(320) + 0.5, np.arange(160) + 0.5)
    d = np.stack([np.ones_like(u), -(u - 160) / 160, -(w - 80) / 160], -1).reshape(-1, 3)
    rays = lib.core.Tensor(np.concatenate([np.tile([0, 0, 1.5], (len(d), 1)), d], 1).astype(np.float32))
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        scene.cast_rays(rays)
        ts.append(time.perf_counter() - t0)
    return round(float(np.median(ts)) * 1e3, 3)


def bench_stack(agent: str = "expert", scenario: str = "town_loop", seed: int = 0, seconds: float = 60.0) -> dict:
    """Agent tick time in closed loop, split by stage where the agent reports it (`agent.timing`)."""
    from dataclasses import replace

    import numpy as np

    from drivestack.agents import make_agent
    from sim.types import Control
    from sim.world import AGENT_EVERY

    ag = make_agent(agent)
    world = World(load_scenario(scenario), seed, ego_autopilot=getattr(ag, "uses_traffic_manager", False))
    ag.reset(world.route, world.map)
    ticks, stages = [], {"perception": [], "planning": [], "control": []}
    control = Control(0.0, 0.0)
    done = False
    while world.t < seconds and not done:
        if world.steps % AGENT_EVERY == 0:
            obs = world.observe()
            t0 = time.perf_counter()
            control = ag.act(replace(obs, privileged=world) if ag.privileged else obs)
            ticks.append((time.perf_counter() - t0) * 1e3)
            for k, v in getattr(ag, "timing", {}).items():
                stages.setdefault(k, []).append(v)
        done = any(e.kind.value in ("goal_reached", "blocked", "route_deviation") or e.kind.value.startswith("collision")
                   for e in world.step(control))
    med = {k: round(float(np.median(v)), 3) if v else None for k, v in stages.items()}
    return {
        "agent": agent,
        "scenario": scenario,
        "ticks": len(ticks),
        "tick_ms_median": round(float(np.median(ticks)), 3),
        "tick_ms_p95": round(float(np.percentile(ticks, 95)), 3),
        "perception_ms": med.get("perception"),
        "planning_ms": med.get("planning"),
        "planning_ms_p95": round(float(np.percentile(stages["planning"], 95)), 3) if stages["planning"] else None,
        "control_ms": med.get("control"),
    }
