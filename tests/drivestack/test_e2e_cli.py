"""`drivestack data e2e`, `train e2e` and `--agent e2e` through the installed entry point."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent / "drivestack"


def drivestack(*args, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "FORCE_COLOR")}
    env.update(env_extra or {})
    return subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True, env=env, timeout=300)


def test_missing_weights_stop_the_run_with_one_line_naming_the_train_command(tmp_path):
    r = drivestack("run", "curve_lane_keeping", "--agent", "e2e", "--out", tmp_path,
                   env_extra={"DRIVESTACK_E2E_WEIGHTS": str(tmp_path / "e2e.pt")})
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert "no weights at" in lines[0] and "drivestack train e2e" in lines[0]
    assert not (tmp_path / "episode.json").exists()


def test_train_without_a_dataset_is_one_line(tmp_path):
    r = drivestack("train", "e2e", "--data", tmp_path / "nope", "--out", tmp_path / "e2e.pt")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "drivestack data e2e" in r.stderr


def test_data_e2e_records_a_dataset(tmp_path):
    r = drivestack("data", "e2e", "--episodes", "1", "--max-seconds", "1", "--out", tmp_path / "d")
    assert r.returncode == 0, r.stderr
    manifest = json.loads((tmp_path / "d" / "manifest.json").read_text())
    assert manifest["camera"]["width"] == 320 and manifest["episodes"][0]["frames"] == 5
    assert (tmp_path / "d" / manifest["episodes"][0]["file"]).exists() and "5 frames" in r.stdout
