"""`drivestack render`: drive a scenario on autopilot and write what the sensors see as PNGs."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from sim.scenario import load_scenario
from sim.sensors.specs import default_rig
from sim.world import AGENT_EVERY, DT, World

VIEWS = ("camera", "depth", "semantic", "lidar", "radar", "fusion")


def render_frames(scenario: str, seed: int = 0, frames: int = 3, out: Path = Path("renders"), every_s: float = 2.0,
                  start_s: float = 0.0, weather: str | None = None,
                  progress: Callable[[int], None] | None = None) -> list[Path]:
    """Step the scenario with the ego on autopilot; every `every_s` seconds from `start_s`, capture
    the default rig and write one PNG per view. Returns the written paths."""
    from sim.sensors import render as R
    from sim.sensors.rig import SensorRig

    sc = load_scenario(scenario)
    if weather is not None:
        sc = sc.model_copy(update={"weather": weather})
    world = World(sc, seed, ego_autopilot=True)
    rig = SensorRig(default_rig(), world.map, seed)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    every = max(AGENT_EVERY, int(round(every_s / DT / AGENT_EVERY)) * AGENT_EVERY)
    first = int(round(start_s / DT / AGENT_EVERY)) * AGENT_EVERY
    k = 0
    while k < frames:
        if world.steps >= first and (world.steps - first) % every == 0:
            f = rig.capture_world(world)
            cam, lidar, radar = f["camera"], f["lidar"], f["radar"]
            views = {
                "camera": R.camera_boxes(cam),
                "depth": R.depth_image(cam),
                "semantic": np.vstack([R.semantic_image(cam), R.legend(2 * cam.image.shape[1])]),
                "lidar": R.lidar_bev(lidar),
                "radar": R.radar_bev(radar, lidar),
                "fusion": R.fusion_overlay(cam, lidar, radar),
            }
            for name in VIEWS:
                path = out / f"{sc.name}_s{seed}_f{k:03d}_{name}.png"
                Image.fromarray(views[name]).save(path)
                written.append(path)
            k += 1
            if progress is not None:
                progress(k)
        if world.t >= sc.duration_s - 1e-9:
            break
        if world.steps % AGENT_EVERY == 0:
            control = world.autopilot_control()
        world.step(control)
    return written
