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

    from sim.sensors.rig import build_rig

    ag = make_agent(agent)
    world = World(load_scenario(scenario), seed, ego_autopilot=getattr(ag, "uses_traffic_manager", False))
    ag.reset(world.route, world.map)
    rig = build_rig(ag.sensors(), world)
    ticks, stages = [], {"perception": [], "planning": [], "control": [], "sensors": []}
    control = Control(0.0, 0.0)
    done = False
    while world.t < seconds and not done:
        if world.steps % AGENT_EVERY == 0:
            obs = world.observe()
            if rig is not None:  # rendering is the simulator's cost, not the agent's: timed apart
                t0 = time.perf_counter()
                obs = rig.observe(world, obs)
                stages["sensors"].append((time.perf_counter() - t0) * 1e3)
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
        "sensors_ms": med.get("sensors"),
        **{f"{k}_ms": v for k, v in med.items() if k not in ("perception", "planning", "control", "sensors")},
    }


# ---------------------------------------------------------------- bench mpc: closed-loop manoeuvres
def _path_trajectory(px, py, v_of_t, seconds: float, dt: float = 0.1):
    """A Trajectory along the polyline (px, py) (dense) with speed v_of_t(t) [m/s] from t = 0."""
    import numpy as np

    from sim.geometry import arc_length
    from sim.types import Trajectory

    s_path = arc_length(np.column_stack([px, py]))
    t = np.arange(0.0, seconds + 1e-9, dt)
    v = np.array([v_of_t(ti) for ti in t])
    s = np.concatenate([[0.0], np.cumsum(0.5 * (v[1:] + v[:-1]) * dt)])
    s = np.minimum(s, s_path[-1])
    hx, hy = np.gradient(px, s_path), np.gradient(py, s_path)
    yaw_path = np.unwrap(np.arctan2(hy, hx))
    kappa_path = np.gradient(yaw_path, s_path)
    a = np.gradient(v, t)
    return Trajectory(t, np.interp(s, s_path, px), np.interp(s, s_path, py), np.interp(s, s_path, yaw_path), v, a,
                      np.interp(s, s_path, kappa_path))


def mpc_manoeuvres() -> dict:
    """{name: (Trajectory, seconds, dense path (x, y))}: the closed-loop cases of `bench mpc`."""
    import numpy as np

    def smooth_step(x, x0, length, height):  # cosine ramp from 0 to height over [x0, x0 + length]
        u = np.clip((x - x0) / length, 0.0, 1.0)
        return height * 0.5 * (1.0 - np.cos(np.pi * u))

    out = {}
    # lane change at 15 m/s: 3.5 m over 45 m (3 s)
    x = np.arange(0.0, 250.0, 0.05)
    y = smooth_step(x, 30.0, 45.0, 3.5)
    out["lane_change_15"] = (_path_trajectory(x, y, lambda t: 15.0, 10.0), 10.0, (x, y))
    # ISO 3888-1-style double lane change at 60 km/h: 15 m entry, 30 m out by 3.5 m, 25 m offset,
    # 25 m back, 30 m exit (cosine transitions in place of the cone gates)
    v60 = 60 / 3.6
    x = np.arange(0.0, 220.0, 0.05)
    y = smooth_step(x, 15.0, 30.0, 3.5) - smooth_step(x, 70.0, 25.0, 3.5)
    out["double_lane_change_60kmh"] = (_path_trajectory(x, y, lambda t: v60, 9.0), 9.0, (x, y))
    # stop from 15 m/s at a stop line 60 m ahead (constant deceleration 1.875 m/s²), then hold
    x = np.arange(0.0, 200.0, 0.05)
    y = np.zeros_like(x)
    dec, t_stop = 15.0 ** 2 / (2 * 60.0), 15.0 / (15.0 ** 2 / (2 * 60.0))
    out["stop_line_15"] = (_path_trajectory(x, y, lambda t: max(15.0 - dec * t, 0.0), t_stop + 3.0), t_stop + 3.0, (x, y))
    # tight urban turn: 20 m straight, a 90° left arc of radius 8 m, 30 m straight, at 5 m/s
    r = 8.0
    a1 = np.arange(0.0, 20.0, 0.05)
    th = np.arange(0.0, np.pi / 2, 0.05 / r)
    a3 = np.arange(0.05, 30.0, 0.05)
    x = np.concatenate([a1, 20.0 + r * np.sin(th), np.full_like(a3, 20.0 + r)])
    y = np.concatenate([np.zeros_like(a1), r * (1.0 - np.cos(th)), r + a3])
    out["urban_turn_r8"] = (_path_trajectory(x, y, lambda t: 5.0, 12.0), 11.0, (x, y))
    return out


def _cross_track(px, py, x: float, y: float) -> float:
    """Distance [m] from (x, y) to the polyline (px, py), exact on its segments."""
    import numpy as np

    ax, ay, dx, dy = px[:-1], py[:-1], np.diff(px), np.diff(py)
    u = np.clip(((x - ax) * dx + (y - ay) * dy) / np.maximum(dx * dx + dy * dy, 1e-12), 0.0, 1.0)
    return float(np.min(np.hypot(ax + u * dx - x, ay + u * dy - y)))


def run_manoeuvre(ctrl, traj, seconds: float, path, start=None) -> dict:
    """Close the loop on sim.vehicle_model.step (20 Hz) with `ctrl` at 10 Hz from the reference's start
    (or from `start`, a VehicleState).

    Returns the controller call times [ms], the cross-track errors [m] and the applied commands."""
    import numpy as np

    from sim.types import VehicleState
    from sim.vehicle_model import VehicleParams, step

    vp = VehicleParams()
    px, py = path
    s = [float(traj.x[0]), float(traj.y[0]), float(traj.yaw[0]), float(traj.v[0]), 0.0, 0.0]
    if start is not None:
        s = [start.x, start.y, start.yaw, start.v, start.steer, start.accel]
    ms, lat, cmds, states = [], [], [], []
    cmd = None
    for k in range(int(round(seconds / 0.05))):
        t = k * 0.05
        if k % 2 == 0:
            t0 = time.perf_counter()
            cmd = ctrl.control(VehicleState(*s), traj, t, 0.1)
            ms.append((time.perf_counter() - t0) * 1e3)
            cmds.append((cmd.steer, cmd.accel))
        s = [float(q) for q in step(*s, cmd.steer, cmd.accel, vp, 0.05)]
        states.append(s)
        lat.append(_cross_track(px, py, s[0], s[1]))
    return {"ms": np.array(ms), "lat": np.array(lat), "cmds": np.array(cmds), "states": np.array(states)}


def bench_mpc(solver: str = "fatrop", horizon: int = 20, dt: float = 0.1, time_budget_ms: float = 20.0) -> dict:
    """Closed-loop manoeuvres for the MPC and the pure-pursuit + PID baseline: controller call time
    (median / p95 / p99 [ms]), solver failures, fallback ticks and lateral RMS error [m]."""
    import numpy as np

    from control.mpc import MPCController, MPCParams
    from control.pure_pursuit import PurePursuitPID

    def summarise(make) -> dict:
        per, all_ms, all_lat = {}, [], []
        fails = falls = 0
        for name, (traj, seconds, path) in mpc_manoeuvres().items():
            ctrl = make()
            r = run_manoeuvre(ctrl, traj, seconds, path)
            f, fb = int(getattr(ctrl, "failures", 0)), int(getattr(ctrl, "fallback_steps", 0))
            fails, falls = fails + f, falls + fb
            all_ms.append(r["ms"])
            all_lat.append(r["lat"])
            per[name] = {"median_ms": round(float(np.median(r["ms"])), 3), "p95_ms": round(float(np.percentile(r["ms"], 95)), 3),
                         "p99_ms": round(float(np.percentile(r["ms"], 99)), 3), "failures": f, "fallback_steps": fb,
                         "lateral_rms_m": round(float(np.sqrt(np.mean(r["lat"] ** 2))), 4),
                         "lateral_max_m": round(float(np.max(r["lat"])), 4)}
            if name.startswith("stop"):  # where it came to rest against the line (+: past it)
                per[name]["stop_error_m"] = round(float(r["states"][-1][0] - traj.x[-1]), 3)
                per[name]["final_speed"] = round(float(r["states"][-1][3]), 3)
        ms, lat = np.concatenate(all_ms), np.concatenate(all_lat)
        return {"median_ms": round(float(np.median(ms)), 3), "p95_ms": round(float(np.percentile(ms, 95)), 3),
                "p99_ms": round(float(np.percentile(ms, 99)), 3), "failures": fails, "fallback_steps": falls,
                "lateral_rms_m": round(float(np.sqrt(np.mean(lat ** 2))), 4), "manoeuvres": per}

    params = MPCParams(horizon=horizon, dt=dt, solver=solver, time_budget_ms=time_budget_ms)
    mpc = summarise(lambda: MPCController(params=params))
    compiled = MPCController(params=params).compiled  # NLP functions compiled to C (control/mpc.py); cached, so cheap
    return {"solver": solver, "horizon": horizon, "dt": dt, "time_budget_ms": time_budget_ms, "compiled": compiled, **mpc,
            "baseline": {"controller": "pure_pursuit_pid", **summarise(PurePursuitPID)}}
