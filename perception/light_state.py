"""The light-state reader: a small CNN that reads red, yellow or green from a crop of a signal head.

Why a second stage: at 320×160 px a head across a junction is 6–10 px tall and its lit lamp a pixel
or two. The YOLO finds such heads well but confuses their colour (it reads most far green heads as
red, so the modular agent would wait at a green light for ever). Reading the state from the head's
own pixels, resampled to a fixed 32×16 crop, is an easier task with balanced classes, as in
detect-then-recognise traffic-light pipelines. The YOLO's box says *where* a head is; this says
*which lamp is lit*. Trained on the detector dataset's ground-truth head boxes, jittered like a
detector's boxes: `drivestack train lights`.
"""
from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from perception.dataset import SPLITS, load_manifest
from perception.detector import Detection
from perception.yolo import PROJECT

LIGHT_CLASSES = ("traffic_light_red", "traffic_light_yellow", "traffic_light_green")
CROP_H, CROP_W = 32, 16  # [px] the network's input: a head is about three times as tall as wide
CROP_SCALE = 1.3  # the crop spans this × the box height (and half that across), centred on the box
DEFAULT_WEIGHTS = PROJECT / "models" / "light_state.pt"
TRAIN_COMMAND = "drivestack train lights --data data/detector --out models/light_state.pt"


def crop(image: np.ndarray, boxes: np.ndarray, jitter: np.ndarray | None = None) -> np.ndarray:
    """N×CROP_H×CROP_W×3 float32 crops in [0, 1] of an RGB uint8 image around N xyxy boxes.

    One affine resample per box (sub-pixel exact, borders replicated), so a 7 px head and a 40 px
    head give the same framing. `jitter` (N×3: dx, dy as fractions of the box height, log scale)
    moves and scales the crop, as a detector's box would be off."""
    out = np.empty((len(boxes), CROP_H, CROP_W, 3), np.float32)
    for i, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, float).reshape(-1, 4)):
        h = max(y2 - y1, 1.0)
        cx, cy, size = (x1 + x2) / 2, (y1 + y2) / 2, CROP_SCALE * h
        if jitter is not None:
            cx, cy, size = cx + jitter[i, 0] * h, cy + jitter[i, 1] * h, size * np.exp(jitter[i, 2])
        s = CROP_H / size  # output px per image px, the same along both axes
        M = np.array([[s, 0.0, CROP_W / 2 - s * cx], [0.0, s, CROP_H / 2 - s * cy]])
        out[i] = cv2.warpAffine(image, M, (CROP_W, CROP_H), flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE) / 255.0
    return out


def network():
    """Three 3×3 conv stages down to 4×2 cells, then a small head: where in the crop the lit lamp
    sits matters (red top, green bottom), so the cells are flattened, not pooled away."""
    from torch import nn

    def stage(cin: int, cout: int, stride: int) -> list:
        return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    return nn.Sequential(*stage(3, 16, 1), *stage(16, 32, 2), *stage(32, 48, 2), *stage(48, 64, 2),
                         nn.Flatten(), nn.Linear(64 * 4 * 2, 64), nn.ReLU(), nn.Linear(64, len(LIGHT_CLASSES)))


class LightStateReader:
    """Loads the weights and reads head crops on one thread; `relabel` applies it to detections."""

    def __init__(self, weights: Path | str | None = None) -> None:
        import torch

        path = Path(weights) if weights is not None else DEFAULT_WEIGHTS
        if not path.is_file():
            raise FileNotFoundError(f"{path}: light-state weights not found; train them with `{TRAIN_COMMAND}`")
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        if ckpt.get("classes") != list(LIGHT_CLASSES) or ckpt.get("crop") != [CROP_H, CROP_W, CROP_SCALE]:
            raise ValueError(f"{path}: not light-state weights for classes {list(LIGHT_CLASSES)} and crop "
                             f"{CROP_H}×{CROP_W}; retrain with `{TRAIN_COMMAND}`")
        self.net = network()
        self.net.load_state_dict(ckpt["state_dict"])
        self.net.eval()

    def __call__(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """N×3 state probabilities (LIGHT_CLASSES order) for N xyxy boxes of an RGB uint8 image."""
        import torch

        if not len(boxes):
            return np.zeros((0, len(LIGHT_CLASSES)), np.float32)
        x = torch.from_numpy(crop(image, boxes)).permute(0, 3, 1, 2)
        with torch.inference_mode():
            return torch.softmax(self.net(x), 1).numpy()

    def relabel(self, image: np.ndarray, dets: list[Detection], iou_same: float = 0.5) -> list[Detection]:
        """The detections with every light box's state read from its pixels.

        A light's score becomes the detector's score (that a head is there) times the reader's
        probability of its state. The YOLO may put two colours on one head; once relabelled they
        are the same object, so among overlapping light boxes only the best is kept."""
        import torch
        from torchvision.ops import nms

        lights = [d for d in dets if d.cls in LIGHT_CLASSES]
        if not lights:
            return dets
        p = self(image, np.array([(d.x1, d.y1, d.x2, d.y2) for d in lights]))
        read = [replace(d, cls=LIGHT_CLASSES[int(np.argmax(q))], score=float(d.score * q.max()))
                for d, q in zip(lights, p)]
        keep = nms(torch.tensor([(d.x1, d.y1, d.x2, d.y2) for d in read], dtype=torch.float64),
                   torch.tensor([d.score for d in read], dtype=torch.float64), iou_same)
        return [d for d in dets if d.cls not in LIGHT_CLASSES] + [read[int(k)] for k in keep]


# ---- training -------------------------------------------------------------------------------------
def head_boxes(data: Path, split: str) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """The split's labelled heads: (images, image index per head, N×4 boxes, N labels 0–2)."""
    images, index, boxes, labels = [], [], [], []
    for line in (Path(data) / "meta" / f"{split}.jsonl").read_text().splitlines():
        m = json.loads(line)
        heads = [b for b in m["boxes"] if b["cls"] in LIGHT_CLASSES]
        if not heads:
            continue
        images.append(cv2.imread(str(Path(data) / "rgb" / "images" / split / f"{m['name']}.png"))[..., ::-1].copy())
        for b in heads:
            index.append(len(images) - 1)
            boxes.append(b["xyxy"])
            labels.append(LIGHT_CLASSES.index(b["cls"]))
    return images, np.array(index, int), np.array(boxes, float).reshape(-1, 4), np.array(labels, int)


def _crops(images, index, boxes, jitter=None) -> np.ndarray:
    out = np.empty((len(boxes), CROP_H, CROP_W, 3), np.float32)
    for k in np.unique(index):
        sel = np.nonzero(index == k)[0]
        out[sel] = crop(images[k], boxes[sel], None if jitter is None else jitter[sel])
    return out


def score(reader_net, crops: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy, per-class recall and the confusion matrix (rows: truth, columns: read)."""
    import torch

    with torch.inference_mode():
        pred = reader_net(torch.from_numpy(crops).permute(0, 3, 1, 2)).argmax(1).numpy() if len(crops) else np.zeros(0, int)
    conf = np.zeros((3, 3), int)
    np.add.at(conf, (labels, pred), 1)
    recall = {c: (round(float(conf[i, i] / conf[i].sum()), 4) if conf[i].sum() else None)
              for i, c in enumerate(LIGHT_CLASSES)}
    return {"heads": int(len(labels)), "accuracy": round(float(np.mean(pred == labels)), 4) if len(labels) else None,
            "recall": recall, "confusion": conf.tolist()}


def train_light_state(data: Path, out: Path = DEFAULT_WEIGHTS, epochs: int = 40, batch: int = 64, lr: float = 2e-3,
                      seed: int = 0, threads: int = 1,
                      progress: Callable[[int, int, float], None] | None = None) -> dict:
    """Train on the train split's heads with box jitter and brightness changes, keep the epoch with
    the best training-dev accuracy, score it on training-dev, dev and test, write weights and JSON."""
    import torch

    manifest = load_manifest(data)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    images, index, boxes, labels = head_boxes(data, "train")
    if not len(labels):
        raise ValueError(f"{data}: the train split has no traffic-light labels; render more frames with "
                         f"`drivestack data detector`")
    held = {s: head_boxes(data, s) for s in SPLITS if s != "train"}
    held_crops = {s: (_crops(*h[:3]), h[3]) for s, h in held.items()}
    counts = np.bincount(labels, minlength=3)
    weight = torch.tensor(counts.sum() / np.maximum(counts, 1) / 3, dtype=torch.float32)  # balanced classes
    net = network()
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=epochs * -(-len(labels) // batch))
    loss_fn = torch.nn.CrossEntropyLoss(weight=weight)
    best, best_acc, t0 = None, -1.0, time.perf_counter()
    y_all = torch.from_numpy(labels)
    for epoch in range(epochs):
        # a detector's box is off by a few pixels and a few percent in size; weather and exposure
        # change the brightness; a head seen in a mirror is the same head
        jitter = np.column_stack([rng.normal(0, 0.08, len(labels)), rng.normal(0, 0.08, len(labels)),
                                  rng.normal(0, 0.12, len(labels))])
        x = _crops(images, index, boxes, jitter)
        x *= rng.uniform(0.6, 1.4, (len(x), 1, 1, 1)).astype(np.float32)
        x += rng.normal(0, 0.02, x.shape).astype(np.float32)
        flip = rng.random(len(x)) < 0.5
        x[flip] = x[flip, :, ::-1]
        xt = torch.from_numpy(np.clip(x, 0, 1)).permute(0, 3, 1, 2)
        net.train()
        order = torch.from_numpy(rng.permutation(len(labels)))
        for k in range(0, len(order), batch):
            sel = order[k:k + batch]
            loss = loss_fn(net(xt[sel]), y_all[sel])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        net.eval()
        acc = score(net, *held_crops["training-dev"])["accuracy"] or 0.0
        if acc >= best_acc:  # ties go to the later, better-trained epoch
            best_acc, best = acc, {k: v.clone() for k, v in net.state_dict().items()}
        if progress:
            progress(epoch + 1, epochs, acc)
    net.load_state_dict(best)
    net.eval()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": best, "classes": list(LIGHT_CLASSES), "crop": [CROP_H, CROP_W, CROP_SCALE]}, out)
    metrics = {"epochs": epochs, "batch": batch, "lr": lr, "seed": seed, "train_s": round(time.perf_counter() - t0, 1),
               "data": str(data), "train_heads": {c: int(n) for c, n in zip(LIGHT_CLASSES, counts)},
               "frames": {s: manifest["splits"][s]["frames"] for s in SPLITS},
               "splits": {s: score(net, *held_crops[s]) for s in held_crops}}
    out.with_suffix(".json").write_text(json.dumps(metrics, indent=2))
    return metrics
