"""Batch evaluation: identical results across backends and worker counts, errors, resume, outputs."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from drivestack.errors import UserError
from drivestack.evaluate import CONTRACT, evaluate

AGENTS = Path(__file__).resolve().parents[1] / "scripted_agents.py"
CRUISE, CRASH = f"{AGENTS}:Cruise", f"{AGENTS}:CrashAfter1s"

SCENARIOS = {
    "town": {  # traffic, walkers, junctions: exercises TTC and every criterion
        "description": "small town with traffic and walkers",
        "map": {"type": "grid_town", "rows": 3, "cols": 3, "block": 60},
        "ego": {"start": {"lane": "r0c0>r0c1.0", "s": 5}, "goal": {"lane": "r1c1>r2c1.0", "s": 20}},
        "traffic": {"vehicles": [4, 6], "pedestrians": [3, 5]},
        "duration_s": 8,
    },
    "road": {
        "description": "a short straight road with a slower car ahead",
        "map": {"type": "straight", "length": 200},
        "ego": {"start": {"lane": "fwd.0", "s": 5}, "goal": {"lane": "fwd.0", "s": 150}, "speed": 8},
        "actors": [{"type": "vehicle", "start": {"lane": "fwd.0", "s": 40}, "speed": [3, 5]}],
        "traffic": {"vehicles": 0, "pedestrians": 0},
        "duration_s": 6,
    },
}


@pytest.fixture(scope="module")
def scenario_files(tmp_path_factory) -> list[str]:
    d = tmp_path_factory.mktemp("scenarios")
    paths = []
    for name, data in SCENARIOS.items():
        (d / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        paths.append(str(d / f"{name}.yaml"))
    return paths


def rows_without_wall(path: Path) -> list[dict]:
    rows = list(csv.DictReader(open(path)))
    for r in rows:
        r.pop("wall_s")
    return rows


@pytest.fixture(scope="module")
def local_one(scenario_files, tmp_path_factory):
    out = tmp_path_factory.mktemp("w1")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DRIVESTACK_DETECTOR_ZOOM", "1")
        return evaluate(scenario_files, ["autopilot", CRUISE], 2, workers=1, out=out)


def test_outputs_and_contract(local_one):
    out = local_one.out
    for name in ("results.csv", "summary.json", "report.md", "episodes.jsonl", "config.json",
                 "driving_score.png", "infractions.png", "scenarios/town.yaml"):
        assert (out / name).exists(), name
    assert (out / "driving_score.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "config.json").read_text())["environment"]["DRIVESTACK_DETECTOR_ZOOM"] == "1"
    header = next(csv.reader(open(out / "results.csv")))
    assert header[:len(CONTRACT)] == CONTRACT and "error" in header
    rows = list(csv.DictReader(open(out / "results.csv")))
    # 2 agents × 2 scenarios × 2 seeds, in the order given: agent, scenario, seed
    assert [(r["agent"], r["scenario"], r["seed"]) for r in rows] == [
        (a, s, str(k)) for a in ("autopilot", CRUISE) for s in ("town", "road") for k in (0, 1)]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["agents"]) == {"autopilot", CRUISE}
    assert set(summary["agents"]["autopilot"]["scenarios"]) == {"town", "road"}
    report = (out / "report.md").read_text()
    for text in ("## Agent `autopilot`", "## Infractions", "## nuPlan-style terms", "## Worst episodes",
                 "drivestack run ", "--seed ", "driving_score.png", "infractions.png"):
        assert text in report, text


def test_identical_across_worker_counts_and_backends(local_one, scenario_files, tmp_path):
    expected = rows_without_wall(local_one.out / "results.csv")
    two = evaluate(scenario_files, ["autopilot", CRUISE], 2, workers=2, out=tmp_path / "w2")
    assert rows_without_wall(two.out / "results.csv") == expected
    ray = evaluate(scenario_files, ["autopilot", CRUISE], 2, workers=2, backend="ray", out=tmp_path / "ray")
    assert rows_without_wall(ray.out / "results.csv") == expected
    assert (two.out / "summary.json").read_text() == (local_one.out / "summary.json").read_text()
    assert (ray.out / "summary.json").read_text() == (local_one.out / "summary.json").read_text()


def test_a_crashing_agent_is_an_error_and_the_batch_goes_on(scenario_files, tmp_path):
    res = evaluate(scenario_files[1:], [CRASH, "autopilot"], 2, workers=1, out=tmp_path, report=False)
    crashed = [r for r in res.records if r["agent"] == CRASH]
    assert [r["outcome"] for r in crashed] == ["error", "error"]
    assert crashed[0]["error"] == "RuntimeError: scripted failure in act() second line of the message"
    assert crashed[0]["driving_score"] == 0.0 and crashed[0]["route_completion"] == 0.0
    assert all(r["outcome"] != "error" for r in res.records if r["agent"] == "autopilot")
    assert res.summary["agents"][CRASH]["errors"] == 2


def test_resume_skips_done_episodes_and_reruns_errors(scenario_files, tmp_path):
    first = evaluate(scenario_files[1:], ["autopilot", CRASH], 1, workers=1, out=tmp_path, report=False)
    assert first.ran == 2
    again = evaluate(scenario_files[1:], ["autopilot", CRASH], 2, workers=1, resume=tmp_path, report=False)
    # seed 0 of autopilot is done; the error and both seed-1 episodes run
    assert again.ran == 3
    assert again.records[0] == first.records[0]
    assert [(r["agent"], r["seed"]) for r in again.records] == [("autopilot", 0), ("autopilot", 1), (CRASH, 0), (CRASH, 1)]
    lines = (tmp_path / "episodes.jsonl").read_text().splitlines()
    assert len(lines) == 5


@pytest.mark.parametrize("kwargs, message", [
    (dict(agents="pilot"), "unknown agent 'pilot'"),
    (dict(workers=0), "--workers: 0 is out of range"),
    (dict(workers=65), "--workers: 65 is out of range"),
    (dict(seeds=0), "--seeds: 0 is out of range"),
    (dict(backend="spark"), "--backend"),
    (dict(backend="ray", ray_address="127.0.0.1:1"), "cannot reach Ray at 127.0.0.1:1"),
    (dict(agents=f"{AGENTS}:Nope"), "has no Nope"),
    (dict(resume="/nonexistent/eval"), "--resume"),
])
def test_bad_input_is_a_user_error(scenario_files, tmp_path, kwargs, message):
    args = dict(agents="autopilot", seeds=1, workers=1, out=tmp_path)
    args.update(kwargs)
    if "resume" in kwargs:
        args.pop("out")
    with pytest.raises(UserError, match=message):
        evaluate(scenario_files, args.pop("agents"), args.pop("seeds"), **args)
    assert not (tmp_path / "results.csv").exists()
