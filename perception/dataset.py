"""The detector dataset's format: its splits, the label rule, and reading its manifest.

Layout of a dataset directory (one label set, two image sets, so camera-only and fused train on
the same frames); `drivestack data detector` (drivestack/detector_data.py) renders it:

    labels/{split}/NAME.txt           YOLO boxes: class cx cy w h, normalised
    rgb/images/{split}/NAME.png       3 channels
    fused/images/{split}/NAME.tiff    5 pages, in perception.fusion.CHANNELS["fused"] order
    rgb/labels, fused/labels          symlinks to ../labels (Ultralytics finds labels beside images)
    rgb.yaml, fused.yaml              Ultralytics data files
    meta/{split}.jsonl                per frame: scenario, seed, t, weather, every 2D box with its 3D centre
    sensors/{split}/NAME.npz          dev and test only: lidar points and radar returns, to score 3D lifting
    manifest.json                     seeds, weather, scenario mix, per-class counts, the label rule

Splits (DESIGN.md): train and training-dev share the training towns and weather mix but not seeds;
dev and test come from held-out towns with held-out seeds, so training-dev → dev measures mismatch.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sim.sensors.frames import Box2D

SPLITS = ("train", "training-dev", "dev", "test")


@dataclass(frozen=True)
class LabelRule:
    """Which rendered boxes become labels. A box below this is dropped from the labels (and so is
    background to the detector); the same rule scores the detector, so both sides agree."""

    min_height_px: float = 5.0
    min_width_px: float = 2.0
    min_visible_fraction: float = 0.2

    def keep(self, b: Box2D) -> bool:
        return (b.y2 - b.y1 >= self.min_height_px and b.x2 - b.x1 >= self.min_width_px
                and b.visible_fraction >= self.min_visible_fraction)


def load_manifest(data: Path) -> dict:
    """The manifest of a dataset directory, or a UserError-ready ValueError naming the fix."""
    path = Path(data) / "manifest.json"
    if not path.is_file():
        raise ValueError(f"{data}: no manifest.json — not a drivestack detector dataset; make one with "
                         f"`drivestack data detector --frames N --out {data}`")
    manifest = json.loads(path.read_text())
    if not manifest["splits"]["train"]["frames"]:
        raise ValueError(f"{path}: the train split is empty; render more frames with `drivestack data detector`")
    return manifest
