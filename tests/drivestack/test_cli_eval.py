"""`drivestack eval` and `drivestack compare` through the installed entry point."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from test_cli import drivestack, one_line_error, write

AGENTS = Path(__file__).resolve().parents[1] / "scripted_agents.py"
CRASH = f"{AGENTS}:CrashAfter1s"

ROAD = {
    "description": "a short straight road",
    "map": {"type": "straight", "length": 150},
    "ego": {"start": {"lane": "fwd.0", "s": 5}, "goal": {"lane": "fwd.0", "s": 120}, "speed": 6},
    "traffic": {"vehicles": 0, "pedestrians": 0},
    "duration_s": 3,
}


@pytest.mark.parametrize("args, fragments", [
    (["eval", "town_loop", "--agent", "pilot"], ["--agent", "pilot", "did you mean `autopilot`"]),
    (["eval", "town_lop"], ["town_lop", "did you mean `town_loop`"]),
    (["eval", "absent.yaml"], ["absent.yaml", "no such scenario file"]),
    (["eval", "town_loop", "--workers", "0"], ["--workers", "out of range"]),
    (["eval", "town_loop", "--workers", "999"], ["--workers", "999", "out of range"]),
    (["eval", "town_loop", "--backend", "ray", "--ray-address", "127.0.0.1:1"], ["--ray-address", "cannot reach Ray"]),
    (["compare", "town_loop", "--agents", "autopilot"], ["--agents", "two or more different agents"]),
    (["compare", "town_loop", "--agents", "autopilot,autopilot"], ["--agents", "two or more different agents", "got 1"]),
])
def test_bad_input_one_line_exit_2(tmp_path, args, fragments):
    line = one_line_error(drivestack(*args, "--out", tmp_path / "out", cwd=tmp_path))
    for frag in fragments:
        assert frag in line, f"{frag!r} not in {line!r}"
    assert not (tmp_path / "out" / "results.csv").exists()


def test_eval_records_a_crash_and_resumes(tmp_path):
    scenario = write(tmp_path, "road.yaml", ROAD)
    out = tmp_path / "out"
    proc = drivestack("eval", scenario, "--agent", f"autopilot,{CRASH}", "--seeds", "2", "--workers", "2", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "2 episodes ended in error" in proc.stdout
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [r["outcome"] for r in rows] == ["timeout", "timeout", "error", "error"]
    assert rows[2]["error"].startswith("RuntimeError: scripted failure")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["agents"]["autopilot"]["episodes"] == 2 and summary["agents"][CRASH]["errors"] == 2
    assert "drivestack run" in (out / "report.md").read_text()
    # resume: the two good episodes are kept, the two errors run again
    proc = drivestack("eval", scenario, "--agent", f"autopilot,{CRASH}", "--seeds", "2", "--resume", out)
    assert proc.returncode == 0, proc.stderr
    assert "resuming: 2 of 4 episodes already done" in proc.stderr
    assert "(2 run now)" in proc.stdout.replace("\n", " ")


def test_compare_writes_the_side_by_side_table(tmp_path):
    """Three agents: each one's score, and each later one minus the first, paired by seed."""
    scenario = write(tmp_path, "road.yaml", ROAD)
    cruise, stand = f"{AGENTS}:Cruise", f"{AGENTS}:Stand"
    proc = drivestack("compare", scenario, "--agents", f"autopilot,{cruise},{stand}", "--seeds", "2", "--workers", "1",
                      "--out", tmp_path / "cmp")
    assert proc.returncode == 0, proc.stderr
    table = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert table["agents"] == ["autopilot", cruise, stand] and table["reference"] == "autopilot"
    [road, total] = table["driving_score"]
    assert road["scenario"] == "road" and total["scenario"] == "all" and total["pairs"] == 2
    assert list(total["diffs"]) == [cruise, stand]
    for ag in (cruise, stand):  # the difference is the agent's mean minus the reference's
        assert total["diffs"][ag]["mean"] == pytest.approx(total["agents"][ag]["mean"] - total["agents"]["autopilot"]["mean"])
    assert total["agents"][stand]["mean"] < total["agents"][cruise]["mean"]  # standing still completes less of the route
    md = (tmp_path / "cmp" / "compare.md").read_text()
    assert f"{cruise} − autopilot" in md and f"{stand} − autopilot" in md and "[95% CI]" in md
    assert "driving score" in proc.stdout
