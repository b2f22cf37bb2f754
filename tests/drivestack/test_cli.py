"""The `drivestack` command line, through the installed entry point (one subprocess per case)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent / "drivestack"
SHIPPED = sorted((ROOT / "scenarios").glob("*.yaml"))

EPISODE_KEYS = ["scenario", "agent", "seed", "outcome", "route_completion", "infraction_penalty", "driving_score",
                "collisions", "red_light_violations", "stop_sign_violations", "offroad_fraction", "min_ttc_s",
                "max_abs_jerk", "comfort_violations", "distance_m", "duration_s", "sim_steps", "wall_s",
                "fallback_steps"]

GOOD = {
    "description": "tiny straight-road episode",
    "map": {"type": "straight", "length": 120},
    "duration_s": 3,
    "ego": {"start": {"lane": "fwd.0", "s": 5}, "goal": {"lane": "fwd.0", "s": 100}, "speed": 5},
}


def drivestack(*args, cwd=None) -> subprocess.CompletedProcess:
    # a plain 80-column, non-interactive environment, as in CI
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "FORCE_COLOR")}
    env["MPLBACKEND"] = "Agg"
    return subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


def write(tmp_path: Path, name: str, data) -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """Exit 2, no traceback, and exactly one non-blank line on stderr; returns that line."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got {len(lines)}:\n{proc.stderr}"
    assert lines[0].startswith("error: ")
    return lines[0]


def mutated(**changes) -> dict:
    data = json.loads(json.dumps(GOOD))
    for path, value in changes.items():
        node, keys = data, path.split("__")
        for k in keys[:-1]:
            node = node[k]
        if value is None:
            node.pop(keys[-1])
        else:
            node[keys[-1]] = value
    return data


BROKEN = {
    # file name: (content, fragments the one error line must contain besides the file name)
    "not_yaml.yaml": ("description: x\nmap: {type: straight\nego: [\n", ["not valid YAML", "line"]),
    "unknown_key.yaml": (mutated(ego__sped=3), ["ego.sped", "did you mean `speed`"]),
    "missing_field.yaml": (mutated(description=None), ["description", "required"]),
    "wrong_type.yaml": (mutated(duration_s="forever"), ["duration_s", "number"]),
    "bad_map_type.yaml": (mutated(map__type="roundabout"), ["map", "roundabout"]),
    "bad_control.yaml": (mutated(map={"type": "four_way", "control": "yield"}), ["map.control", "allway_stop"]),
    "range_lo_hi.yaml": (mutated(ego__speed=[9, 3]), ["ego", "speed", "lo > hi"]),
    "bad_lane.yaml": (mutated(ego__goal={"lane": "fwd.5", "s": 50}), ["ego.goal.lane", "fwd.5"]),
    "not_a_mapping.yaml": ("- just\n- a list\n", ["mapping"]),
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_validate_broken_file(tmp_path, name):
    content, fragments = BROKEN[name]
    path = write(tmp_path, name, content)
    line = one_line_error(drivestack("validate", path))
    assert name in line, f"the error does not name the file {name}: {line!r}"
    for frag in fragments:
        assert frag in line, f"{frag!r} not in {line!r}"


def test_validate_good_file_and_stops_at_the_first_bad_one(tmp_path):
    good = write(tmp_path, "good.yaml", GOOD)
    proc = drivestack("validate", good)
    assert proc.returncode == 0, proc.stderr
    assert "ok" in proc.stdout and "good.yaml" in proc.stdout
    bad = write(tmp_path, "bad.yaml", mutated(ego__sped=1))
    proc = drivestack("validate", good, bad)
    assert "good.yaml" in proc.stdout
    assert "bad.yaml" in one_line_error(proc)


def test_run_unknown_scenario_name(tmp_path):
    line = one_line_error(drivestack("run", "town_lop", "--agent", "autopilot", cwd=tmp_path))
    assert "town_lop" in line and "did you mean `town_loop`" in line
    line = one_line_error(drivestack("run", "no_such_scenario_at_all", cwd=tmp_path))
    assert "no_such_scenario_at_all" in line and "no such scenario" in line


def test_run_missing_file(tmp_path):
    line = one_line_error(drivestack("run", tmp_path / "absent.yaml", cwd=tmp_path))
    assert "absent.yaml" in line


def test_run_unknown_agent(tmp_path):
    path = write(tmp_path, "tiny.yaml", GOOD)
    line = one_line_error(drivestack("run", path, "--agent", "nosuch", "--out", tmp_path / "out"))
    assert "--agent" in line and "nosuch" in line and "autopilot" in line
    assert not (tmp_path / "out" / "episode.json").exists()


def test_bench_train_bad_sizes_or_dataset_get_one_line(tmp_path):
    line = one_line_error(drivestack("bench", "train", "--sizes", "320x416", cwd=tmp_path))
    assert "--sizes" in line and "320,416" in line
    line = one_line_error(drivestack("bench", "train", "--data", tmp_path / "nodata", cwd=tmp_path))
    assert "nodata" in line and "drivestack data detector" in line
    line = one_line_error(drivestack("bench", "train", "--model", "yolo99q.yaml", cwd=tmp_path))
    assert "--model" in line and "yolo99q.yaml" in line and "yolo26n-p2.yaml" in line


def test_bench_detectors_bad_split_or_weights_get_one_line(tmp_path):
    line = one_line_error(drivestack("bench", "detectors", "w.pt", "--data", tmp_path / "nodata", cwd=tmp_path))
    assert "nodata" in line and "drivestack data detector" in line
    data = tmp_path / "ds"
    data.mkdir()
    (data / "manifest.json").write_text(json.dumps({"splits": {"train": {"frames": 8}}}))
    line = one_line_error(drivestack("bench", "detectors", "w.pt", "--data", data, "--split", "train", cwd=tmp_path))
    assert "--split train" in line and "dev" in line
    line = one_line_error(drivestack("bench", "detectors", "nope.pt", "--data", data, cwd=tmp_path))
    assert "nope.pt" in line and "drivestack train detector" in line


def test_run_writes_episode_json(tmp_path):
    path = write(tmp_path, "tiny.yaml", GOOD)
    out = tmp_path / "out"
    proc = drivestack("run", path, "--agent", "autopilot", "--seed", "0", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    rec = json.loads((out / "episode.json").read_text())
    missing = [k for k in EPISODE_KEYS if k not in rec]
    assert missing == []
    assert rec["scenario"] == "tiny" and rec["agent"] == "autopilot" and rec["seed"] == 0
    assert rec["outcome"] == "timeout"  # 3 s is not enough for 95 m
    assert rec["duration_s"] == pytest.approx(3.0) and rec["sim_steps"] == 60
    assert 0 < rec["route_completion"] < 1 and rec["distance_m"] > 10.0
    assert rec["collisions"] == [] and rec["fallback_steps"] == 0
    # the resolved scenario is saved beside it and loads again
    saved = yaml.safe_load((out / "scenario.yaml").read_text())
    assert saved["name"] == "tiny" and saved["map"]["type"] == "straight"
    assert str(out / "episode.json") in proc.stdout.replace("\n", "")


def test_scenarios_lists_the_shipped_names(tmp_path):
    proc = drivestack("scenarios", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert SHIPPED
    for path in SHIPPED:
        assert path.stem in proc.stdout, f"{path.stem} missing from:\n{proc.stdout}"


def test_no_arguments_shows_help():
    proc = drivestack()
    text = proc.stdout + proc.stderr
    for cmd in ("run", "scenarios", "validate"):
        assert cmd in text


def test_every_help_text_survives_rich_markup():
    """Typer renders help through rich, which eats an unescaped `[s]` as a markup tag ("Sim time
    to drive ."): every command's and option's help must print as written."""
    import typer.main
    from rich.text import Text

    from drivestack.cli import app

    def commands(cmd, path=()):
        yield path, cmd
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from commands(sub, path + (name,))

    seen = 0
    for path, cmd in commands(typer.main.get_command(app)):
        assert Text.from_markup(cmd.help or "").plain == (cmd.help or "").replace("\\[", "["), path
        for p in cmd.params:
            text = getattr(p, "help", None) or ""
            seen += bool(text)
            assert Text.from_markup(text).plain == text.replace("\\[", "["), (path, p.name, text)
    assert seen > 50


def test_help_paragraphs_are_wrapped_by_the_terminal_not_by_the_source():
    """Typer kept a docstring's line breaks after its first paragraph, so rich wrapped each source
    line on its own and `--help` came out ragged. On a wide terminal a paragraph is one line."""
    env = {**os.environ, "COLUMNS": "1000", "TERMINAL_WIDTH": "1000"}
    proc = subprocess.run([str(BIN), "bench", "detectors", "--help"], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = [ln.strip() for ln in proc.stdout.splitlines()]
    assert any(ln.startswith("Each is scored as") and ln.endswith("on 2 cores.") for ln in lines), proc.stdout


def test_bench_networks_bad_model_gets_one_line(tmp_path):
    line = one_line_error(drivestack("bench", "networks", "--model", "yolo26n.yaml,nope.yaml", "--sizes", "96", cwd=tmp_path))
    assert "--model" in line and "nope.yaml" in line and "yolo26n-p2.yaml" in line
    line = one_line_error(drivestack("bench", "networks", "--model", "models/detector.pt", cwd=tmp_path))
    assert "--model" in line and "--init" in line
