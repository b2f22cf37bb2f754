"""Videos: MP4 and GIF frame counts, `run --video`, `eval --videos worst:K` and its report links."""
from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

from pathlib import Path  # noqa: E402

import imageio.v2 as imageio  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from drivestack.errors import UserError  # noqa: E402
from drivestack.video import VideoWriter, record_episode  # noqa: E402
from test_cli import drivestack, one_line_error, write  # noqa: E402

CRUISE = f"{Path(__file__).resolve().parents[1] / 'scripted_agents.py'}:Cruise"
TICKS = 10  # a 1 s episode has 10 agent ticks (10 Hz)


@pytest.fixture
def scenario(make_scenario, tiny_dict):
    tiny_dict["duration_s"] = 1.0
    return make_scenario(tiny_dict)


def test_mp4_has_a_frame_per_tick_plus_the_final_one(scenario, tmp_path):
    record, frames = record_episode(scenario, CRUISE, 0, tmp_path / "ep.mp4")
    assert record["outcome"] == "timeout" and frames == TICKS + 1
    reader = imageio.get_reader(tmp_path / "ep.mp4")
    assert reader.count_frames() == TICKS + 1
    assert reader.get_meta_data()["size"] == (1280, 720) and reader.get_meta_data()["fps"] == 10
    assert reader.get_data(TICKS).std() > 10  # a picture, not a blank frame


def test_recording_does_not_change_the_episode(make_scenario, tiny_dict, tmp_path):
    from drivestack.runner import run_episode

    tiny_dict["traffic"] = {"vehicles": 3, "pedestrians": 0}
    sc = make_scenario(tiny_dict)
    plain = run_episode(sc, CRUISE, 4)
    recorded, _ = record_episode(sc, CRUISE, 4, tmp_path / "ep.gif", scale=0.1)
    plain.pop("wall_s"), recorded.pop("wall_s")
    assert recorded == plain  # the display rig has its own noise; the traffic never sees the viewer


def test_gif_frames_stride_and_window(scenario, tmp_path):
    _, frames = record_episode(scenario, CRUISE, 0, tmp_path / "all.gif")
    with Image.open(tmp_path / "all.gif") as im:
        assert (im.n_frames, im.size, im.info["duration"]) == (TICKS + 1, (640, 360), 100)
    # every 2nd tick: 5 frames at 5 fps, then the final one
    _, frames = record_episode(scenario, CRUISE, 0, tmp_path / "half.gif", every=2, scale=0.25)
    with Image.open(tmp_path / "half.gif") as im:
        assert (im.n_frames, im.size, im.info["duration"]) == (TICKS // 2 + 1, (320, 180), 200)
    # a window inside the episode: ticks at 0.5 … 0.8 s, and no final frame
    _, frames = record_episode(scenario, CRUISE, 0, tmp_path / "win.gif", start_s=0.5, end_s=0.8)
    with Image.open(tmp_path / "win.gif") as im:
        assert im.n_frames == frames == 4


def test_video_name_and_scale_are_checked(tmp_path):
    with pytest.raises(UserError, match=r"\.mp4 or \.gif"):
        VideoWriter(tmp_path / "x.avi")
    with pytest.raises(UserError, match="--video-scale"):
        VideoWriter(tmp_path / "x.mp4", scale=0)
    line = one_line_error(drivestack("run", "town_loop", "--video", tmp_path / "x.avi"))
    assert "x.avi" in line and ".mp4 or .gif" in line
    assert "worst:K" in one_line_error(drivestack("eval", "town_loop", "--videos", "best:2"))


def test_run_video_and_eval_videos_of_the_worst(tiny_dict, tmp_path):
    tiny_dict["duration_s"] = 1.0
    scen = write(tmp_path, "tiny.yaml", tiny_dict)
    proc = drivestack("run", scen, "--agent", CRUISE, "--video", tmp_path / "run.gif", "--out", tmp_path / "run")
    assert proc.returncode == 0, proc.stderr
    with Image.open(tmp_path / "run.gif") as im:
        assert im.n_frames == TICKS + 1
    assert (tmp_path / "run" / "episode.json").exists()

    from drivestack.evaluate import evaluate

    result = evaluate([str(scen)], f"autopilot,{CRUISE}", 2, workers=1, out=tmp_path / "ev", videos=1)
    assert len(result.videos) == 2  # one per agent
    report = (tmp_path / "ev" / "report.md").read_text()
    for v in result.videos:
        mine = [r for r in result.records if r["agent"] == v["agent"]]
        worst = min(mine, key=lambda r: (r["driving_score"], r["seed"]))
        assert (v["scenario"], v["seed"]) == (worst["scenario"], worst["seed"])
        assert v["replay_matches"] and v["frames"] == TICKS + 1
        assert imageio.get_reader(tmp_path / "ev" / v["video"]).count_frames() == TICKS + 1
        assert f"]({v['video']})" in report
