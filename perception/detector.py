"""The trained YOLO as a plain function from a fused (or RGB) image to 2D detections.

Two backends run the same weights: PyTorch through Ultralytics' predictor, or ONNX Runtime on a
graph exported from them (1.6–1.8× faster a call on one CPU thread here) between the very same
Ultralytics pre- and post-processing steps, so the detections agree to float rounding.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from perception.fusion import CHANNELS
from perception.train import RECIPES
from perception.yolo import PROJECT, ultralytics
from sim.sensors.frames import DETECTION_CLASSES

NMS_IOU = 0.7  # Ultralytics' own NMS threshold
# The network runs on the camera image upscaled 1.4× (320 × 160 → 448 × 224, on the stride grid).
# Far cars, walkers and light heads are a few px tall at 320 × 160 and cover more of the stride-4 and
# stride-8 cells upscaled. The shipped detector was trained at 320, then fine-tuned at 416, with
# Ultralytics' 0.5–1.5× scale augmentation. Chosen on the dev split, two-stage mAP50 by width: 384
# 0.888, 416 0.890, 448 0.920, 480 0.911, 512 0.921; 448 for 1.2× the time of 416 (README,
# "Inference size").
IMGSZ = 448
# The zoom pass: the middle of the image (half its width and height, where the horizon and the far
# road are) upscaled 2× to the full size, so the same graph runs on it. Far cars, walkers and light
# heads are a few px tall there; at twice the size the detector finds many more (README, "Zoom pass").
ZOOM = 2
ZOOM_MERGE_IOU = 0.5  # a box seen by both passes is kept once, the better-scored
ZOOM_EDGE_PX = 2.0  # a zoomed box this close to the band's side is cut by it; the full pass has it
MAX_DET = 300  # Ultralytics' default
BACKENDS = ("torch", "onnx")
ONNX_CACHE = PROJECT / ".cache" / "onnx"
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
    """The commands that reproduce the shipped weights of `mode`, from RECIPES["detector.pt"]: from
    scratch at the first size, then fine-tuned at the second (models/README.md)."""
    out = "models/detector" if mode == "fused" else "models/detector_rgb"
    (size, epochs), (tune_size, tune_epochs) = RECIPES["detector.pt"]
    train = f"drivestack train detector --data data/detector --input {mode}"
    return ("drivestack data detector --frames 5000 --out data/detector"
            f" && {train} --imgsz {size} --epochs {epochs} --out {out}_{size}.pt"
            f" && {train} --init {out}_{size}.pt --imgsz {tune_size} --epochs {tune_epochs} --out {out}.pt")


class Detector:
    """Loads weights, checks they match the input mode, and runs on one thread.

    `predict` takes uint8 images; for 3 channels Ultralytics expects BGR, so RGB is flipped here,
    and a 5-channel image is passed in CHANNELS["fused"] order, exactly as the TIFFs were written.
    """

    def __init__(self, weights: Path | str | None = None, mode: str = "fused", conf: float = 0.25,
                 imgsz: int = IMGSZ, threads: int = 1, backend: str = "torch", zoom: bool = False,
                 onnx_cache: Path | None = None) -> None:
        if mode not in CHANNELS:
            raise ValueError(f"input mode: unknown {mode!r}; use one of {', '.join(CHANNELS)}")
        if backend not in BACKENDS:
            raise ValueError(f"detector backend: unknown {backend!r}; use one of {', '.join(BACKENDS)}")
        if imgsz <= 0 or imgsz % 32:
            raise ValueError(f"detector image size: {imgsz} is not a positive multiple of 32 (the network's stride); "
                             f"the default is {IMGSZ}")
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
        self.path, self.threads, self.backend, self.zoom = path, threads, backend, zoom
        self.onnx_cache = onnx_cache  # None: .cache/onnx
        self._session = None  # ONNX Runtime's, made at the first image (its size fixes the graph's input)
        if backend == "onnx":
            from ultralytics.data.augment import LetterBox

            self._letterbox = LetterBox(imgsz, auto=True, stride=int(self.model.model.stride.max()))

    @property
    def session(self):
        """The ONNX Runtime session the detector runs (None before its first image)."""
        return self._session

    def __call__(self, image: np.ndarray) -> list[Detection]:
        if image.ndim != 3 or image.shape[2] != len(CHANNELS[self.mode]) or image.dtype != np.uint8:
            raise ValueError(f"detector ({self.mode}) needs an H×W×{len(CHANNELS[self.mode])} uint8 image, "
                             f"got {image.shape} {image.dtype}")
        xyxy, score, cls = self._pass(image)
        if self.zoom:
            import torch
            from torchvision.ops import batched_nms

            zoomed = self._zoom_pass(image)
            xyxy, score, cls = (torch.cat([a, b]) for a, b in zip((xyxy, score, cls), zoomed))
            keep = np.sort(batched_nms(xyxy, score, cls, ZOOM_MERGE_IOU).numpy())
            xyxy, score, cls = xyxy[keep], score[keep], cls[keep]
        return [Detection(DETECTION_CLASSES[c], float(s), *map(float, q))
                for q, c, s in zip(xyxy.numpy(), cls.numpy().astype(int), score.numpy())]

    def _pass(self, image: np.ndarray):
        """One network pass: xyxy, score and class tensors, after a per-class NMS."""
        from torchvision.ops import batched_nms

        x = np.ascontiguousarray(image[..., ::-1]) if self.mode == "rgb" else image
        if self.backend == "onnx":
            xyxy, score, cls = self._onnx(x)
        else:
            b = self.model.predict(x, imgsz=self.imgsz, conf=self.conf, device="cpu", verbose=False)[0].boxes
            xyxy, score, cls = b.xyxy, b.conf, b.cls
        # NMS-free heads (YOLO26) can give one object two near-identical boxes; the agent would
        # lift both. Per-class NMS is a no-op on YOLO11's already-suppressed output.
        keep = np.sort(batched_nms(xyxy, score, cls, NMS_IOU).numpy())
        return xyxy[keep], score[keep], cls[keep]

    def _zoom_pass(self, image: np.ndarray):
        """The pass on the image's middle band upscaled ZOOM×, its boxes in the image's pixels."""
        import cv2
        import torch

        h, w = image.shape[:2]
        bw, bh = w // ZOOM, h // ZOOM
        x0, y0 = (w - bw) // 2, (h - bh) // 2
        band = np.ascontiguousarray(image[y0:y0 + bh, x0:x0 + bw])
        up = cv2.resize(band[..., :3], (w, h), interpolation=cv2.INTER_LINEAR)
        if band.shape[2] > 3:  # lidar depth and radar are sparse measurements: never blend them
            extra = cv2.resize(band[..., 3:], (w, h), interpolation=cv2.INTER_NEAREST).reshape(h, w, -1)
            up = np.concatenate([up, extra], axis=2)
        xyxy, score, cls = self._pass(up)
        inside = ((xyxy[:, 0] > ZOOM_EDGE_PX) & (xyxy[:, 1] > ZOOM_EDGE_PX)
                  & (xyxy[:, 2] < w - ZOOM_EDGE_PX) & (xyxy[:, 3] < h - ZOOM_EDGE_PX))
        offset = torch.tensor([x0, y0, x0, y0], dtype=xyxy.dtype)
        return xyxy[inside] / ZOOM + offset, score[inside], cls[inside]

    def _onnx(self, x: np.ndarray):
        """Boxes, scores and classes from ONNX Runtime, with the steps of Ultralytics' predictor
        around it: its letterbox, its BGR→RGB flip for 3 channels, its NMS, its box rescaling."""
        import torch
        from ultralytics.utils import nms, ops

        im = self._letterbox(image=x)
        if self._session is None:
            self._session = onnx_session(self.path, im.shape[:2], self.threads, self.onnx_cache)
        t = im.transpose(2, 0, 1)[None]
        if t.shape[1] == 3:
            t = t[:, ::-1]
        feed = {self._session.get_inputs()[0].name: np.ascontiguousarray(t, np.float32) / 255}
        out = self._session.run(None, feed)[0]
        p = nms.non_max_suppression(torch.from_numpy(out), self.conf, NMS_IOU, max_det=MAX_DET,
                                    end2end=getattr(self.model.model, "end2end", False))[0]
        p[:, :4] = ops.scale_boxes(im.shape[:2], p[:, :4], x.shape[:2])
        return p[:, :4], p[:, 4], p[:, 5]


def onnx_session(weights: Path, shape: tuple[int, int], threads: int = 1, cache: Path | None = None):
    """An ONNX Runtime session on `threads` threads for `weights` exported at input size `shape`.

    The export (Ultralytics' own, a few seconds) is cached under `cache` (.cache/onnx) by the
    weights' hash and the size, and written by rename, so parallel workers never read half a file."""
    import onnxruntime

    cache = ONNX_CACHE if cache is None else cache
    cache.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(Path(weights).read_bytes()).hexdigest()[:16]
    path = cache / f"{Path(weights).stem}-{digest}-{shape[0]}x{shape[1]}.onnx"
    if not path.is_file():
        import torch

        work, threads_before = Path(tempfile.mkdtemp(dir=cache)), torch.get_num_threads()
        try:
            shutil.copyfile(weights, work / "model.pt")
            ultralytics().YOLO(str(work / "model.pt")).export(format="onnx", imgsz=list(shape), simplify=False,
                                                              dynamic=False, device="cpu", verbose=False)
            os.replace(work / "model.onnx", path)
        finally:
            shutil.rmtree(work, ignore_errors=True)
            torch.set_num_threads(threads_before)  # Ultralytics re-pins torch's threads; the light reader uses them
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
