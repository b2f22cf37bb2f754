"""The trained YOLO as a plain function from a fused (or RGB) image to 2D detections."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from perception.fusion import CHANNELS
from perception.yolo import PROJECT, ultralytics
from sim.sensors.frames import DETECTION_CLASSES

NMS_IOU = 0.7  # Ultralytics' own NMS threshold
DEFAULT_WEIGHTS = {"fused": PROJECT / "models" / "detector.pt", "rgb": PROJECT / "models" / "detector_rgb.pt"}


@dataclass(frozen=True)
class Detection:
    cls: str  # one of DETECTION_CLASSES
    score: float  # 0–1
    x1: float  # [px], continuous image coordinates like Box2D
    y1: float
    x2: float
    y2: float


def train_command(mode: str) -> str:
    out = "models/detector.pt" if mode == "fused" else "models/detector_rgb.pt"
    return (f"drivestack data detector --frames 5000 --out data/detector && "
            f"drivestack train detector --data data/detector --input {mode} --out {out}")


class Detector:
    """Loads weights, checks they match the input mode, and runs on one thread.

    `predict` takes uint8 images; for 3 channels Ultralytics expects BGR, so RGB is flipped here,
    and a 5-channel image is passed in CHANNELS["fused"] order, exactly as the TIFFs were written.
    """

    def __init__(self, weights: Path | str | None = None, mode: str = "fused", conf: float = 0.25,
                 imgsz: int = 320, threads: int = 1) -> None:
        if mode not in CHANNELS:
            raise ValueError(f"input mode: unknown {mode!r}; use one of {', '.join(CHANNELS)}")
        path = Path(weights) if weights is not None else DEFAULT_WEIGHTS[mode]
        if not path.is_file():
            raise FileNotFoundError(f"{path}: detector weights not found; train them with `{train_command(mode)}`")
        import torch

        torch.set_num_threads(threads)
        self.model = ultralytics().YOLO(str(path), task="detect")
        first = next(m for m in self.model.model.modules() if isinstance(m, torch.nn.Conv2d))
        want = len(CHANNELS[mode])
        if first.in_channels != want:
            raise ValueError(f"{path}: weights take {first.in_channels} input channels but --input {mode} gives {want}; "
                             f"use weights trained with `--input {'fused' if first.in_channels == 5 else 'rgb'}` "
                             f"or retrain with `{train_command(mode)}`")
        names = self.model.names
        if [names[i] for i in range(len(names))] != list(DETECTION_CLASSES):
            raise ValueError(f"{path}: classes {list(names.values())} differ from {list(DETECTION_CLASSES)}")
        self.mode, self.conf, self.imgsz = mode, conf, imgsz

    def __call__(self, image: np.ndarray) -> list[Detection]:
        if image.ndim != 3 or image.shape[2] != len(CHANNELS[self.mode]) or image.dtype != np.uint8:
            raise ValueError(f"detector ({self.mode}) needs an H×W×{len(CHANNELS[self.mode])} uint8 image, "
                             f"got {image.shape} {image.dtype}")
        from torchvision.ops import batched_nms

        x = np.ascontiguousarray(image[..., ::-1]) if self.mode == "rgb" else image
        r = self.model.predict(x, imgsz=self.imgsz, conf=self.conf, device="cpu", verbose=False)[0]
        b = r.boxes
        # NMS-free heads (YOLO26) can give one object two near-identical boxes; the agent would
        # lift both. Per-class NMS is a no-op on YOLO11's already-suppressed output.
        keep = np.sort(batched_nms(b.xyxy, b.conf, b.cls, NMS_IOU).numpy())
        xyxy, cls, score = b.xyxy.numpy()[keep], b.cls.numpy().astype(int)[keep], b.conf.numpy()[keep]
        return [Detection(DETECTION_CLASSES[c], float(s), *map(float, q)) for q, c, s in zip(xyxy, cls, score)]
