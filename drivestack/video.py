"""Videos of episodes: the composed view of `drivestack.compose` (the viewer's picture), one frame
per agent tick (10 Hz, so real time at 10 fps) plus the final frame.

MP4 is H.264 through imageio with imageio-ffmpeg (its own ffmpeg binary, from the wheel), written
as it goes. GIF goes through pillow, which needs every frame at the end: each is quantised to 256
colours as it arrives (a byte per pixel) and the file is written on close, so GIFs suit short
clips; by default they are half size.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from drivestack.errors import UserError
from sim.world import AGENT_EVERY, DT

SUFFIXES = (".mp4", ".gif")
DEFAULT_SCALE = {".mp4": 1.0, ".gif": 0.5}
AGENT_HZ = 1.0 / (DT * AGENT_EVERY)


def check_video(path: Path | str, scale: float | None = None) -> tuple[Path, float]:
    """The path (it must end in .mp4 or .gif) and the frame scale (default by format)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise UserError(f"--video: {path}: the file must end in .mp4 or .gif")
    scale = DEFAULT_SCALE[suffix] if scale is None else float(scale)
    if not 0.05 <= scale <= 4.0:
        raise UserError(f"--video-scale: {scale} is out of range; use 0.05 to 4")
    return path, scale


class VideoWriter:
    """Frames (H×W×3 uint8) to an MP4 or a GIF, chosen by the file's suffix; `scale` resizes them
    (default 1 for MP4, 0.5 for GIF). A context manager; `frames` counts what was written."""

    def __init__(self, path: Path | str, fps: float = AGENT_HZ, scale: float | None = None) -> None:
        self.path, self.scale = check_video(path, scale)
        self.suffix = self.path.suffix.lower()
        self.fps = fps
        self.frames = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._gif: list[Image.Image] = []
        self._mp4 = None
        if self.suffix == ".mp4":
            import imageio.v2 as imageio

            # macro_block_size 2: H.264 with yuv420p needs even sides, which `_resize` guarantees
            self._mp4 = imageio.get_writer(self.path, format="FFMPEG", mode="I", fps=fps, codec="libx264",
                                           pixelformat="yuv420p", quality=5, macro_block_size=2,
                                           ffmpeg_log_level="error")

    def _resize(self, frame: np.ndarray) -> Image.Image:
        img = Image.fromarray(frame)
        w, h = (2 * max(1, round(d * self.scale / 2)) for d in img.size)  # even sides
        return img if (w, h) == img.size else img.resize((w, h), Image.Resampling.LANCZOS)

    def write(self, frame: np.ndarray) -> None:
        img = self._resize(np.asarray(frame, dtype=np.uint8))
        if self._mp4 is not None:
            self._mp4.append_data(np.asarray(img))
        else:
            self._gif.append(img.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE))
        self.frames += 1

    def close(self) -> None:
        if self._mp4 is not None:
            self._mp4.close()
            self._mp4 = None
        elif self._gif:
            first, *rest = self._gif
            first.save(self.path, save_all=True, append_images=rest, duration=round(1000 / self.fps), loop=0)
            self._gif = []

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def record_episode(scenario, agent, seed: int, path: Path | str, *, controller: str | None = None,
                   scale: float | None = None, every: int = 1, start_s: float = 0.0, end_s: float | None = None,
                   on_tick: Callable | None = None) -> tuple[dict, int]:
    """Run one episode (as `run_episode` does) and record its view to `path` (.mp4 or .gif).

    Frames are the agent ticks with `start_s` ≤ t ≤ `end_s`, every `every`-th one (the video plays
    in real time), then the final frame if the episode ended inside that window.
    Returns the episode's record and the number of frames written."""
    from drivestack.agents import make_agent
    from drivestack.compose import EpisodeView
    from drivestack.runner import run_episode
    from sim.scenario import load_scenario

    if every < 1:
        raise UserError(f"every: {every} must be ≥ 1")
    check_video(path, scale)
    sc = load_scenario(scenario) if isinstance(scenario, (str, Path)) else scenario
    ag = make_agent(agent, controller) if isinstance(agent, str) else agent
    view = EpisodeView(ag, f"{sc.name} · {getattr(ag, 'name', type(ag).__name__)} · seed {seed}")
    in_window = 0

    def tick(world) -> None:
        nonlocal in_window
        view.tick(world)
        if world.t >= start_s - 1e-9 and (end_s is None or world.t <= end_s + 1e-9):
            if in_window % every == 0:
                out.write(view.frame())
            in_window += 1
        if on_tick is not None:
            on_tick(world)

    with VideoWriter(path, AGENT_HZ / every, scale) as out:
        record = run_episode(sc, view.agent, seed, on_tick=tick)
        if end_s is None or record["duration_s"] <= end_s + 1e-9:
            out.write(view.frame(f"{record['outcome']} · score {record['driving_score']:.1f}"))
    return record, out.frames


def parse_videos(spec: str | None) -> int:
    """`worst:K` → K (0 for None)."""
    if spec is None:
        return 0
    m = re.fullmatch(r"worst:(\d+)", spec.strip())
    if not m or int(m.group(1)) < 1:
        raise UserError(f"--videos: expected worst:K with K ≥ 1 (e.g. worst:3), got {spec!r}")
    return int(m.group(1))


def record_worst(records: list[dict], tasks: list, k: int, folder: Path,
                 on_video: Callable[[dict], None] | None = None) -> list[dict]:
    """Replay and record (MP4) the `k` worst episodes of each agent, by driving score as in
    report.md (episodes that ended in an error are left out). Returns one row per video, with its
    path relative to the folder above `folder` and whether the replay scored as the original did."""
    from drivestack.agents import make_agent
    from sim.scenario import parse_scenario

    by_key = {t.key: t for t in tasks}
    agents = list(dict.fromkeys(r["agent"] for r in records))
    rows = []
    for agent in agents:
        mine = sorted((r for r in records if r["agent"] == agent and r["outcome"] != "error"),
                      key=lambda r: (r["driving_score"], r["scenario"], r["seed"]))
        for r in mine[:k]:
            task = by_key[(r["scenario"], agent, r["seed"])]
            sc = parse_scenario(dict(task.scenario.data), task.scenario.source)
            name = f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', agent)}-{r['scenario']}-s{r['seed']}.mp4"
            replay, frames = record_episode(sc, make_agent(task.agent_spec), r["seed"], folder / name)
            row = {"agent": agent, "scenario": r["scenario"], "seed": r["seed"], "outcome": r["outcome"],
                   "driving_score": r["driving_score"], "video": f"{folder.name}/{name}", "frames": frames,
                   "replay_matches": (replay["outcome"], replay["driving_score"]) == (r["outcome"], r["driving_score"])}
            rows.append(row)
            if on_video is not None:
                on_video(row)
    return rows
