"""`drivestack render` and `drivestack bench sensors`, through the installed entry point."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

BIN = Path(sys.executable).parent / "drivestack"
JUNCTION = {
    "description": "a small signalised junction",
    "map": {"type": "four_way", "control": "signal", "arm_length": 60},
    "duration_s": 5,
    "ego": {"start": {"lane": "S>J.0", "s": 15}, "goal": {"lane": "J>N.0", "s": 30}, "speed": 5},
    "traffic": {"vehicles": 3, "pedestrians": 2},
}


def drivestack(*args) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "FORCE_COLOR")}
    env["MPLBACKEND"] = "Agg"
    return subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True, env=env, timeout=300)


def test_render_writes_every_view(tmp_path):
    sc = tmp_path / "junction.yaml"
    sc.write_text(yaml.safe_dump(JUNCTION))
    out = tmp_path / "png"
    proc = drivestack("render", sc, "--seed", 1, "--frames", 2, "--every", 1, "--out", out, "--weather", "dusk")
    assert proc.returncode == 0, proc.stderr
    files = sorted(out.glob("*.png"))
    views = {"camera", "depth", "semantic", "lidar", "radar", "fusion"}
    assert {f.stem.rsplit("_", 1)[1] for f in files} == views and len(files) == 12
    cam = np.asarray(Image.open(out / "junction_s1_f000_camera.png"))
    assert cam.shape == (480, 960, 3) and cam.std() > 10  # a picture, not a flat fill
    assert all(str(f) in proc.stdout for f in files)


def test_render_rejects_an_unknown_weather(tmp_path):
    proc = drivestack("render", "town_loop", "--weather", "snow", "--out", tmp_path)
    assert proc.returncode == 2 and "--weather" in proc.stderr and "Traceback" not in proc.stderr


def test_bench_sensors_prints_one_json_object():
    proc = drivestack("bench", "sensors", "--json", "--frames", 10, "--scenario", "signal_straight")
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    for k in ("camera_ms", "lidar_ms", "radar_ms", "steps_per_s"):
        assert isinstance(r[k], (int, float)) and r[k] > 0
