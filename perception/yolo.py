"""Ultralytics, offline and contained: call `ultralytics()` instead of importing it directly.

Before the first import it points Ultralytics' settings at a folder inside the project, turns off
downloads, auto-install, telemetry and chatty logs, and puts matplotlib's DejaVuSans where
Ultralytics looks for Arial.ttf (otherwise its dataset check fetches the font). See DESIGN.md.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
CONFIG_DIR = PROJECT / ".yolo"


def ultralytics():
    """The configured `ultralytics` module."""
    os.environ.setdefault("YOLO_CONFIG_DIR", str(CONFIG_DIR))
    os.environ.setdefault("OMP_NUM_THREADS", "2")  # else Ultralytics sets 1 on import; callers pick threads
    os.environ.update(YOLO_OFFLINE="1", YOLO_AUTOINSTALL="False", YOLO_VERBOSE=os.environ.get("YOLO_VERBOSE", "False"))
    fonts = Path(os.environ["YOLO_CONFIG_DIR"]) / "Ultralytics"
    if not (fonts / "Arial.ttf").exists():
        import matplotlib

        fonts.mkdir(parents=True, exist_ok=True)
        src = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        for name in ("Arial.ttf", "Arial.Unicode.ttf"):
            shutil.copyfile(src, fonts / name)
    import ultralytics as u
    from ultralytics.utils import SETTINGS

    if SETTINGS.get("sync", False):
        SETTINGS.update({"sync": False})  # no telemetry
    return u


def check_model_yaml(cfg: str) -> None:
    """A ValueError naming --model unless `cfg` is a detection model's yaml Ultralytics can build
    (offline: its yamls ship with it). Weights (.pt) belong to --init; a dataset yaml has no layers."""
    ultralytics()
    from ultralytics.nn.tasks import yaml_model_load

    fix = "use e.g. yolo26n-p2.yaml, yolo26n.yaml or yolo11n.yaml, or the path of your own"
    if Path(cfg).suffix not in (".yaml", ".yml"):
        raise ValueError(f"--model: {cfg!r} is not a model yaml; {fix} (trained weights go to --init)")
    try:
        layers = yaml_model_load(cfg)  # as DetectionModel finds it: yolo26n-p2.yaml is yolo26-p2.yaml at scale n
    except FileNotFoundError:
        raise ValueError(f"--model: {cfg!r} is not an Ultralytics model yaml; {fix}") from None
    if not {"backbone", "head"} <= set(layers) or layers["head"][-1][2] != "Detect":
        raise ValueError(f"--model: {cfg!r} does not describe a detection network (a backbone and a detect head); {fix}")
