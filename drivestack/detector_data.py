"""`drivestack data detector`: drive randomised episodes on autopilot and write what the sensors
see as a detector dataset, in the format of perception/dataset.py.

This drives the world (ground truth labels come from the simulator), so it lives with the
application, not in perception/, which may only read the frames' public types.
"""
from __future__ import annotations

import json
import math
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np
import yaml

from drivestack.workers import process_pool
from perception.dataset import SPLITS, LabelRule
from perception.fusion import CHANNELS, fused_image
from sim.sensors.calibration import transform
from sim.sensors.camera import LIGHT_FACING_COS, SIGN_FACING_COS
from sim.sensors.frames import DETECTION_CLASSES

SPLIT_FRACTIONS = {"train": 0.80, "training-dev": 0.05, "dev": 0.05, "test": 0.10}
SEED_BASE = {"train": 100_000, "training-dev": 200_000, "dev": 300_000, "test": 400_000}
# Faster signal cycles than the driving suite's: every light state shows up often (yellow is short).
DATA_SIGNALS = {"green": (4.0, 10.0), "yellow": (3.0, 6.0), "all_red": 1.0, "offset": (0.0, 20.0)}
WEATHER_MIX = {"day": 0.35, "dusk": 0.2, "night": 0.15, "fog": 0.15, "rain": 0.15}
# Share of train / training-dev episodes on procedural layouts rather than the shipped scenarios:
# many layouts, so the detector learns streets, not a suite.
PROCEDURAL_SHARE = 0.5
# One uniform integer draw picks a procedural family, so busy towns are half of them. It takes from
# the random stream what the earlier two-family draw took, so dev and test are unchanged (a test pins them).
PROCEDURAL_DRAW = ("town", "junction", "busy_town", "busy_town")

# Held-out towns for dev and test: layouts that no training scenario uses. Two routes meet a
# signal first and one an all-way stop first, so every class is in dev and test: an episode's 20
# frames, 0.4 s apart near props, run out before the ego is past its first junction.
HELD_OUT = [
    {"name": "heldout_town_3x5", "description": "held-out town for detector dev/test",
     "map": {"type": "grid_town", "rows": 3, "cols": 5, "block": 60}, "duration_s": 120,
     "ego": {"start": {"lane": "r0c0>r0c1.0", "s": 5}, "via": [{"lane": "r1c1>r1c2.0", "s": 10}],
             "goal": {"lane": "r1c3>r2c3.0", "s": 30}},
     "traffic": {"vehicles": [14, 20], "pedestrians": [10, 16]}},
    {"name": "heldout_town_5x3", "description": "held-out town for detector dev/test",
     "map": {"type": "grid_town", "rows": 5, "cols": 3, "block": 85, "lanes": 2}, "duration_s": 120,
     "ego": {"start": {"lane": "r0c2>r1c2.0", "s": 5}, "via": [{"lane": "r1c1>r2c1.0", "s": 10}],
             "goal": {"lane": "r3c1>r4c1.0", "s": 30}},
     "traffic": {"vehicles": [16, 22], "pedestrians": [8, 14]}},
    {"name": "heldout_town_3x5_allway", "description": "held-out town for detector dev/test, stop first",
     "map": {"type": "grid_town", "rows": 3, "cols": 5, "block": 60}, "duration_s": 120,
     "ego": {"start": {"lane": "r0c2>r1c2.0", "s": 5}, "via": [{"lane": "r1c2>r1c3.0", "s": 10}],
             "goal": {"lane": "r1c3>r2c3.0", "s": 30}},
     "traffic": {"vehicles": [14, 20], "pedestrians": [10, 16]}},
]


@dataclass(frozen=True)
class Episode:
    """One episode of the plan: which scenario, seed and weather, and how many frames to take."""

    split: str
    scenario: str
    seed: int
    weather: str
    frames: int
    every_s: float = 1.5  # between frames in open road
    near_every_s: float = 0.4  # between frames with a sign or light ahead (they are rare otherwise)
    rule: LabelRule = field(default_factory=LabelRule)


def plan(frames: int, frames_per_episode: int = 20, seed: int = 0,
         train_scenarios: Iterable[str] | None = None) -> list[Episode]:
    """The deterministic list of episodes that yields about `frames` frames over the four splits."""
    from sim.scenario import shipped_scenarios

    train_pool = sorted(train_scenarios or [p.stem for p in shipped_scenarios()])
    held_pool = [h["name"] for h in HELD_OUT]
    rng = np.random.default_rng(seed)
    weathers, probs = list(WEATHER_MIX), np.array(list(WEATHER_MIX.values()))
    out = []
    for split in SPLITS:
        quota = max(1, round(frames * SPLIT_FRACTIONS[split]))
        held = split in ("dev", "test")
        n = math.ceil(quota / frames_per_episode)
        for i in range(n):
            take = min(frames_per_episode, quota - i * frames_per_episode)
            ep_seed = SEED_BASE[split] + seed * 10_000 + i
            if held:
                name = held_pool[i % len(held_pool)]
            elif rng.random() < PROCEDURAL_SHARE:
                name = f"{PROCEDURAL_DRAW[int(rng.integers(len(PROCEDURAL_DRAW)))]}-{ep_seed}"
            else:
                name = train_pool[i % len(train_pool)]
            out.append(Episode(split, name, ep_seed, str(rng.choice(weathers, p=probs / probs.sum())), take))
    return out


def _scenario(name: str):
    """A held-out town, a procedural draw (`FAMILY-SEED`), or a shipped scenario, by name."""
    from drivestack.e2e.scenarios import procedural
    from sim.scenario import Scenario, load_scenario, parse_scenario

    held = {h["name"]: h for h in HELD_OUT}
    if name in held:
        return Scenario.model_validate(held[name])
    family, _, seed = name.rpartition("-")
    if family == "busy_town":
        return parse_scenario({"description": "procedural busy town", "duration_s": 120,
                               **busy_town(np.random.default_rng(int(seed)))}, name)
    if family in PROCEDURAL_DRAW:
        return procedural(family, np.random.default_rng(int(seed)), name)
    return load_scenario(name)


def busy_town(rng: np.random.Generator) -> dict:
    """A procedural town as busy as the held-out ones: one or two lanes, 10–22 cars and 8–16 walkers.

    Test walkers and lights are seen down town streets, past parked and waiting cars and in front
    of facades; the suite's open roads show few of those. The grid stays 3–4 × 3–4 blocks, so a
    held-out 3 × 5 or 5 × 3 layout is never drawn."""
    from drivestack.e2e.scenarios import FAMILIES

    data = FAMILIES["town"](rng)
    data["map"]["lanes"] = int(rng.integers(1, 3))
    data["traffic"] = {"vehicles": [10, 22], "pedestrians": [8, 16]}
    return data


def render_episode(ep: Episode, out: Path) -> list[dict]:
    """Drive `ep` on autopilot, write its frames and labels, return their metadata."""
    from sim.sensors.rig import SensorRig
    from sim.sensors.specs import default_rig
    from sim.world import AGENT_EVERY, World

    sc = _scenario(ep.scenario)
    sc = sc.model_copy(update={"weather": ep.weather, "signals": sc.signals.model_copy(update=DATA_SIGNALS)})
    world = World(sc, ep.seed, ego_autopilot=True)
    rig = SensorRig([s for s in default_rig() if type(s).__name__ != "OdometrySpec"], world.map, ep.seed)
    props = np.array([(p.x, p.y) for p in world.map.props if p.kind in ("stop_sign", "traffic_light")]).reshape(-1, 2)
    metas, control, last = [], None, -1e9
    while len(metas) < ep.frames and world.t < sc.duration_s - 1e-9:
        if world.steps % AGENT_EVERY == 0 and world.t >= 0.5:  # 0.5 s in: the traffic has started moving
            gap = ep.near_every_s if _prop_ahead(world, props) else ep.every_s
            if world.t - last >= gap - 1e-9:
                metas.append(_write_frame(ep, len(metas), rig.capture_world(world), world, out))
                last = world.t
        if world.steps % AGENT_EVERY == 0:
            control = world.autopilot_control()
        if any(e.kind.value in ("goal", "collision_vehicle", "collision_pedestrian", "collision_static")
               for e in world.step(control)):
            break
    return metas


def _prop_ahead(world, props: np.ndarray, reach: float = 35.0, half_fov: float = np.radians(45)) -> bool:
    v = world.vehicles
    rel = props - (v.x[0], v.y[0])
    dist = np.hypot(rel[:, 0], rel[:, 1])
    bearing = np.arctan2(rel[:, 1], rel[:, 0]) - v.yaw[0]
    return bool(np.any((dist < reach) & (np.cos(bearing) > np.cos(half_fov))))


def _write_frame(ep: Episode, k: int, frames: dict, world, out: Path) -> dict:
    cam, lidar, radar = frames["camera"], frames["lidar"], frames["radar"]
    name = f"{ep.scenario}_s{ep.seed}_f{k:02d}"
    h, w = cam.image.shape[:2]
    boxes = [b for b in cam.boxes if ep.rule.keep(b)]
    (out / "labels" / ep.split / f"{name}.txt").write_text(
        "".join("%d %.6f %.6f %.6f %.6f\n" % b.yolo(w, h) for b in boxes))
    cv2.imwrite(str(out / "rgb" / "images" / ep.split / f"{name}.png"), cam.image[..., ::-1])
    fused = fused_image(cam, lidar, radar)
    cv2.imwritemulti(str(out / "fused" / "images" / ep.split / f"{name}.tiff"),
                     [np.ascontiguousarray(fused[..., c]) for c in range(fused.shape[2])])
    if ep.split in ("dev", "test"):
        pts = transform(lidar.calib.T_vehicle_lidar, np.asarray(lidar.points))
        np.savez_compressed(out / "sensors" / ep.split / f"{name}.npz", lidar_vehicle=pts.astype(np.float32),
                            radar_range=radar.range, radar_azimuth=radar.azimuth, radar_range_rate=radar.range_rate)
    return {"name": name, "split": ep.split, "scenario": ep.scenario, "seed": ep.seed, "t": world.t,
            "weather": ep.weather, "ego_speed": float(world.vehicles.v[0]),
            "boxes": [{"cls": b.cls, "track_id": b.track_id, "xyxy": [b.x1, b.y1, b.x2, b.y2], "depth": b.depth,
                       "center": list(b.center), "visible_fraction": b.visible_fraction} for b in boxes]}


def _render_job(args: tuple[Episode, str]) -> list[dict]:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return render_episode(args[0], Path(args[1]))


def build_dataset(out: Path, frames: int, seed: int = 0, workers: int = 2, frames_per_episode: int = 20,
                  progress: Callable[[int, int], None] | None = None) -> dict:
    """Render the whole dataset into `out` and return its manifest. Same arguments, same files."""
    out = Path(out)
    episodes = plan(frames, frames_per_episode, seed)
    for split in SPLITS:
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        for mode in CHANNELS:
            (out / mode / "images" / split).mkdir(parents=True, exist_ok=True)
        if split in ("dev", "test"):
            (out / "sensors" / split).mkdir(parents=True, exist_ok=True)
    for mode in CHANNELS:
        link = out / mode / "labels"
        if not link.exists():
            link.symlink_to(Path("..") / "labels", target_is_directory=True)
    jobs = [(ep, str(out)) for ep in episodes]
    results: list[list[dict]] = []
    done = 0
    if workers <= 1:
        for job in jobs:
            results.append(_render_job(job))
            done += len(results[-1])
            if progress:
                progress(done, frames)
    else:
        with process_pool(workers, None) as pool:
            for metas in pool.map(_render_job, jobs):  # in plan order: deterministic files and manifest
                results.append(metas)
                done += len(metas)
                if progress:
                    progress(done, frames)
    return _finish(out, episodes, results, frames, seed)


def _finish(out: Path, episodes: list[Episode], results: list[list[dict]], frames: int, seed: int) -> dict:
    from sim.sensors.specs import default_rig

    splits: dict[str, dict] = {}
    (out / "meta").mkdir(exist_ok=True)
    for split in SPLITS:
        metas = [m for ep, ms in zip(episodes, results) if ep.split == split for m in ms]
        (out / "meta" / f"{split}.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metas))
        splits[split] = {
            "frames": len(metas),
            "scenarios": sorted({m["scenario"] for m in metas}),
            "episodes": [{"scenario": ep.scenario, "seed": ep.seed, "weather": ep.weather, "frames": len(ms)}
                         for ep, ms in zip(episodes, results) if ep.split == split],
            "class_counts": dict(Counter(b["cls"] for m in metas for b in m["boxes"])),
            "weather_counts": dict(Counter(m["weather"] for m in metas)),
        }
    names = dict(enumerate(DETECTION_CLASSES))
    for mode, chans in CHANNELS.items():
        (out / f"{mode}.yaml").write_text(yaml.safe_dump(
            {"path": mode, "train": "images/train", "val": "images/training-dev", "test": "images/test",
             "dev": "images/dev", "channels": len(chans), "names": names}, sort_keys=False))
    manifest = {
        "frames_requested": frames, "seed": seed, "classes": list(DETECTION_CLASSES),
        "channels": {m: list(c) for m, c in CHANNELS.items()},
        "label_rule": {**asdict(LabelRule()), "light_facing_max_deg": round(math.degrees(math.acos(LIGHT_FACING_COS)), 1),
                       "sign_facing_max_deg": round(math.degrees(math.acos(SIGN_FACING_COS)), 1)},
        "weather_mix": WEATHER_MIX, "held_out_towns": HELD_OUT,
        "sensors": [{"type": type(s).__name__, **{k: v for k, v in asdict(s).items() if k != "mount"}}
                    for s in default_rig() if type(s).__name__ in ("CameraSpec", "LidarSpec", "RadarSpec")],
        "splits": splits,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


