"""The e2e dataset on disk: `DIR/manifest.json` and one `DIR/episodes/NNNNN.npz` per episode.

Frames are stored as the network's input (the 66 × 200 crop, 40 KB a frame rather than 150 KB),
so the manifest records the camera and the crop they came from: training refuses a directory
recorded with another camera or crop, since the agent would then drive on images it never saw.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from drivestack.e2e.model import InputSpec
from drivestack.errors import UserError

FORMAT = "drivestack-e2e-data/1"
MANIFEST = "manifest.json"
RECORD_HINT = "record one with `drivestack data e2e --episodes N --out DIR`"


@dataclass
class Episode:
    """The frames of one episode, in tick order, with the expert's labels."""

    image: np.ndarray  # (N, 3, h, w) uint8, the network's input
    speed: np.ndarray  # (N,) [m/s], the odometry reading the agent sees
    command: np.ndarray  # (N,) index into sim.route.COMMANDS
    steer: np.ndarray  # (N,) the expert's steer label [rad]
    target_speed: np.ndarray  # (N,) the label: the expert's planned speed LOOKAHEAD_S ahead [m/s]
    accel: np.ndarray  # (N,) the expert's accel [m/s²] (for the open-loop accel error)
    exec_steer: np.ndarray  # (N,) what was executed: the label + DART noise, or the policy's control
    exec_accel: np.ndarray  # (N,)
    noisy: np.ndarray  # (N,) bool: the executed control was perturbed
    info: dict = field(default_factory=dict)  # scenario, seed, family, source, outcome, weather, sim_s

    ARRAYS = ("image", "speed", "command", "steer", "target_speed", "accel", "exec_steer", "exec_accel", "noisy")

    def __len__(self) -> int:
        return len(self.speed)

    @classmethod
    def from_rows(cls, rows: list[dict], info: dict, spec: InputSpec) -> "Episode":
        if not rows:
            return cls(np.zeros((0, 3, spec.height, spec.width), np.uint8), np.zeros(0, np.float32), np.zeros(0, np.int64),
                       *(np.zeros(0, np.float32) for _ in range(5)), np.zeros(0, bool), info)
        cols = {k: np.stack([r[k] for r in rows]) for k in cls.ARRAYS}
        return cls(cols["image"].astype(np.uint8), cols["speed"].astype(np.float32), cols["command"].astype(np.int64),
                   *(cols[k].astype(np.float32) for k in ("steer", "target_speed", "accel", "exec_steer", "exec_accel")),
                   cols["noisy"].astype(bool), info)


def create(root: Path, camera: dict, spec: InputSpec, meta: dict) -> None:
    """Start an empty dataset in `root`; refuses a directory that already holds one."""
    if (root / MANIFEST).exists():
        raise UserError(f"--out {root}: already holds an e2e dataset; choose another folder or delete it")
    (root / "episodes").mkdir(parents=True, exist_ok=True)
    write_manifest(root, {"format": FORMAT, "camera": camera, "input": asdict(spec), **meta, "episodes": []})


def write_manifest(root: Path, manifest: dict) -> None:
    tmp = root / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1))
    tmp.replace(root / MANIFEST)  # never a half-written manifest


def read_manifest(root: Path) -> dict:
    path = root / MANIFEST
    if not path.exists():
        raise UserError(f"--data {root}: no {MANIFEST}, not an e2e dataset; {RECORD_HINT}")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise UserError(f"--data {root}: {MANIFEST} is not a {FORMAT} manifest; {RECORD_HINT}")
    return manifest


def save_episode(root: Path, index: int, ep: Episode) -> dict:
    """Write one episode's arrays; returns its manifest entry."""
    name = f"episodes/{index:05d}.npz"
    np.savez(root / name, **{k: getattr(ep, k) for k in Episode.ARRAYS})
    return {"file": name, "frames": len(ep), **ep.info}


def load_episode(root: Path, entry: dict) -> Episode:
    with np.load(root / entry["file"]) as z:
        return Episode(*(z[k] for k in Episode.ARRAYS), info=entry)


def check_compatible(root: Path, manifest: dict, camera: dict, spec: InputSpec) -> None:
    """A clear error when `root` was recorded with another camera or crop than the policy uses."""
    for what, theirs, ours in (("camera", manifest["camera"], camera), ("input crop", manifest["input"], asdict(spec))):
        if theirs != ours:
            diff = ", ".join(f"{k} {theirs.get(k)!r} (expected {ours.get(k)!r})"
                             for k in sorted(set(theirs) | set(ours)) if theirs.get(k) != ours.get(k))
            raise UserError(f"--data {root}: recorded with another {what}: {diff}; the e2e policy drives with "
                            f"the default CameraSpec, so {RECORD_HINT}")


@dataclass
class Frames:
    """Frames of many episodes concatenated, ready to index into batches."""

    image: np.ndarray
    speed: np.ndarray
    command: np.ndarray
    steer: np.ndarray
    target_speed: np.ndarray
    accel: np.ndarray
    episode: np.ndarray  # (N,) index into `episodes`
    episodes: list[dict]  # manifest entries, with "root" added

    def __len__(self) -> int:
        return len(self.speed)

    def take(self, idx: np.ndarray) -> "Frames":
        return Frames(self.image[idx], self.speed[idx], self.command[idx], self.steer[idx], self.target_speed[idx],
                      self.accel[idx], self.episode[idx], self.episodes)

    @classmethod
    def concat(cls, parts: list["Frames"]) -> "Frames":
        episodes, offsets = [], []
        for p in parts:
            offsets.append(len(episodes))
            episodes += p.episodes
        cat = lambda k: np.concatenate([getattr(p, k) for p in parts])  # noqa: E731
        return cls(cat("image"), cat("speed"), cat("command"), cat("steer"), cat("target_speed"), cat("accel"),
                   np.concatenate([p.episode + o for p, o in zip(parts, offsets)]), episodes)


def load_frames(root: Path, camera: dict, spec: InputSpec, entries: list[dict] | None = None) -> Frames:
    """The frames of `entries` (default: every episode) of the dataset in `root`, checked against the policy's camera."""
    manifest = read_manifest(root)
    check_compatible(root, manifest, camera, spec)
    entries = manifest["episodes"] if entries is None else entries
    eps = [load_episode(root, e) for e in entries]
    if not eps or not sum(len(e) for e in eps):
        raise UserError(f"--data {root}: holds no frames; {RECORD_HINT}")
    cat = lambda k: np.concatenate([getattr(e, k) for e in eps])  # noqa: E731
    return Frames(cat("image"), cat("speed"), cat("command"), cat("steer"), cat("target_speed"), cat("accel"),
                  np.repeat(np.arange(len(eps)), [len(e) for e in eps]), [{**e.info, "root": str(root)} for e in eps])


def split_episodes(entries: list[dict], val_fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """(train, held-out) by whole episodes, so held-out frames are never near-copies of training ones."""
    if len(entries) < 2 or val_fraction <= 0:
        return list(entries), []
    order = np.random.default_rng(seed).permutation(len(entries))
    n_val = min(len(entries) - 1, max(1, round(val_fraction * len(entries))))
    val = set(order[:n_val].tolist())
    return [e for i, e in enumerate(entries) if i not in val], [e for i, e in enumerate(entries) if i in val]
