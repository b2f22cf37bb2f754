"""`drivestack bench perception`: detection quality and speed on a dataset split, fused vs camera-only.

The headline mAP scores the detector as the modular agent runs it: the YOLO, then the light-state
reader relabelling its light boxes (two stages). It uses the COCO-style matching and AP implemented
here, because the reader's colours are not the network's own and because the breakdowns by
distance and weather and the 3D position error of lifting need each match's ground truth and the
frame's lidar points. The network alone is scored by Ultralytics' validator beside it (`yolo_*`).
"""
from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from perception.dataset import SPLITS, load_manifest
from perception.detector import DEFAULT_WEIGHTS, IMGSZ, Detection, Detector
from perception.lifting import RadarReturns, lift
from perception.light_state import LIGHT_CLASSES, LightStateReader
from perception.train import evaluate_split, run_yaml
from sim.sensors.calibration import CameraCalib
from sim.sensors.frames import DETECTION_CLASSES
from sim.sensors.specs import CameraSpec, RadarSpec

DISTANCE_BINS = ((0.0, 20.0), (20.0, 40.0), (40.0, np.inf))
# box height [px]; COCO's small / medium / large, scaled to this 320 × 160 camera: most of what the
# detector misses is under 8 px (a light head across a junction, a car beyond 40 m)
HEIGHT_BINS = ((0.0, 8.0), (8.0, 16.0), (16.0, np.inf))
LIGHT_CONF = 0.1  # the modular agent keeps light boxes from this score (drivestack/agents/modular.py)
# AP is the area under the whole precision-recall curve, so the two-stage passes keep every box from
# here, as Ultralytics' val does; a cut at the agent's LIGHT_CONF ends the curve early (`_above`)
AP_CONF = 0.001
# a box within this of the image's side is cut by it: the object goes on out of view (the labels
# keep every truncation, where KITTI's moderate level drops boxes more than 30 % truncated)
SIDE_PX = 1.0
POS_ERR_RANGE_M = 40.0


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a (N×4) with every box in b (M×4), xyxy."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None] - inter, 1e-9)


def match(dets: list[Detection], gts: list[dict], iou_min: float = 0.5) -> list[int]:
    """Greedy by score, same class: the index of each detection's ground truth, or −1."""
    out = [-1] * len(dets)
    if not dets or not gts:
        return out
    iou = _iou(np.array([[d.x1, d.y1, d.x2, d.y2] for d in dets]), np.array([g["xyxy"] for g in gts]))
    taken = set()
    for i in np.argsort([-d.score for d in dets], kind="stable"):
        for j in np.argsort(-iou[i], kind="stable"):
            if iou[i, j] < iou_min:
                break
            if j not in taken and gts[j]["cls"] == dets[i].cls:
                out[i] = int(j)
                taken.add(int(j))
                break
    return out


def average_precision(scores: np.ndarray, tp: np.ndarray, n_gt: int) -> float:
    """COCO's 101-point interpolated AP of one class; NaN with no ground truth."""
    if n_gt == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    tps = np.cumsum(tp[order])
    fps = np.cumsum(~tp[order])
    recall = tps / n_gt
    precision = tps / np.maximum(tps + fps, 1e-9)
    precision = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
    grid = np.linspace(0, 1, 101)
    k = np.searchsorted(recall, grid, side="left")
    return float(np.mean([precision[i] if i < len(precision) else 0.0 for i in k]))


def bootstrap_scores(passes: list[list[dict]], resamples: int = 1000, level: float = 0.9, seed: int = 0) -> list[dict]:
    """How far each pass's AP50s and mAP could move on another split drawn like this one, and how
    each pass after the first differs from the first. The frames are drawn again with replacement
    `resamples` times (a seeded percentile bootstrap) and every pass is scored on each draw as
    `_ap_table` scores the whole split. A class with few boxes (the test split holds 10 yellow
    lights) gets a wide interval, so a target missed by a hair lies well inside it; on the same
    draws (paired) the frames every pass finds hard cancel, so a real difference shows where two
    separate intervals would overlap."""
    counts = _draws(len(passes[0]), resamples, seed)
    draws = [_draw_scores(rows, counts) for rows in passes]
    out = []
    for i, (rows, d) in enumerate(zip(passes, draws)):
        out.append({"map50": _percentiles(d["map50"], level),
                    "per_class_ap50": {c: _percentiles(d[c], level) for c in DETECTION_CLASSES},
                    "boxes": {c: sum(g["cls"] == c for r in rows for g in r["meta"]["boxes"]) for c in DETECTION_CLASSES},
                    **({"against_first": _paired(passes[0], draws[0], rows, d, level)} if i else {})})
    return out


def _paired(base: list[dict], a: dict[str, np.ndarray], rows: list[dict], b: dict[str, np.ndarray],
            level: float) -> dict:
    """`rows`' AP50 minus `base`'s, from both passes' scores on the same draws: the difference, its
    interval, and the share of draws in which `rows` scores higher."""
    if [r["meta"]["name"] for r in base] != [r["meta"]["name"] for r in rows]:
        raise ValueError("bootstrap_scores: the passes scored different frames")
    point_a, point_b = _ap_table(base), _ap_table(rows)
    point_a["map50"], point_b["map50"] = _summary(point_a)["map50"], _summary(point_b)["map50"]
    out = {}
    for k in ("map50", *DETECTION_CLASSES):
        d = b[k] - a[k]
        seen = ~np.isnan(d)
        out[k] = None if not seen.any() else {
            "diff": round(float(point_b[k] - point_a[k]), 4), f"ci{round(100 * level)}": _percentiles(d, level),
            "p_higher": round(float((d[seen] > 0).mean()), 3)}
    return out


def _draws(frames: int, resamples: int, seed: int) -> np.ndarray:
    """How often each frame is drawn, per draw (resamples × frames): a seeded bootstrap of the split."""
    return np.random.default_rng(seed).multinomial(frames, np.full(frames, 1 / frames), size=resamples)


def _draw_scores(rows: list[dict], counts: np.ndarray) -> dict[str, np.ndarray]:
    """Each class's AP50 in every draw of `counts` (NaN in a draw without its boxes), and under
    "map50" each draw's mean over the classes it has boxes of, as `_summary` leaves a class out."""
    aps = {}
    for c in DETECTION_CLASSES:
        n_gt = np.array([sum(g["cls"] == c for g in r["meta"]["boxes"]) for r in rows])
        found = [(d.score, j >= 0, f) for f, r in enumerate(rows) for d, j in zip(r["dets"], r["match"]) if d.cls == c]
        score, tp, frame = (np.array(x) for x in zip(*found)) if found else (np.zeros(0),) * 3
        order = np.argsort(-score, kind="stable")
        aps[c] = _weighted_ap(tp[order].astype(bool), frame[order].astype(int), counts, n_gt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a draw with no class at all: NaN
        aps["map50"] = np.nanmean(np.stack(list(aps.values())), axis=0)
    return aps


def _percentiles(v: np.ndarray, level: float) -> list[float] | None:
    if np.isnan(v).all():
        return None
    return [round(float(x), 4) for x in np.nanpercentile(v, [50 * (1 - level), 50 * (1 + level)])]


def _weighted_ap(tp: np.ndarray, frame: np.ndarray, counts: np.ndarray, n_gt: np.ndarray) -> np.ndarray:
    """`average_precision` of each draw (a row of `counts`: how often each frame was drawn), for
    detections already sorted by score. An undrawn frame's detections add nothing to the sums, which
    leaves every point of the curve where the draw's own list would put it."""
    w = counts[:, frame]
    tps, fps = np.cumsum(w * tp, axis=1), np.cumsum(w * ~tp, axis=1)
    n = counts @ n_gt
    precision = tps / np.maximum(tps + fps, 1e-9)
    precision = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
    precision = np.hstack([precision, np.zeros((len(counts), 1))])  # past the curve's end: 0
    grid = np.linspace(0, 1, 101)
    out = np.full(len(counts), np.nan)
    for b in np.flatnonzero(n):
        out[b] = precision[b, np.searchsorted(tps[b] / n[b], grid, side="left")].mean()
    return out


def _read(path: Path, mode: str) -> np.ndarray:
    if mode == "rgb":
        return cv2.imread(str(path))[..., ::-1]
    ok, pages = cv2.imreadmulti(str(path), flags=cv2.IMREAD_UNCHANGED)
    return np.dstack(pages)


def run_split(data: Path, split: str, detector: Detector, reader: LightStateReader | None = None) -> list[dict]:
    """Detect every frame of a split; per frame: meta, detections, their GT match, lifted positions.
    With a `reader`, light boxes are relabelled by it (`read_ms` is its time, `ms` the detector's)
    and each row keeps the same pass without the reader under "raw": one network pass, both scores."""
    data = Path(data)
    metas = [json.loads(line) for line in (data / "meta" / f"{split}.jsonl").read_text().splitlines()]
    cam = CameraSpec().calib()
    radar_calib = RadarSpec().calib()
    ext = "png" if detector.mode == "rgb" else "tiff"
    rows = []
    for m in metas:
        image = _read(data / detector.mode / "images" / split / f"{m['name']}.{ext}", detector.mode)
        t0 = time.perf_counter()
        dets = detector(image)
        ms = (time.perf_counter() - t0) * 1e3
        npz = data / "sensors" / split / f"{m['name']}.npz"
        sensors = None
        if npz.is_file():
            s = np.load(npz)
            radar = RadarReturns.build(s["radar_range"], s["radar_azimuth"], s["radar_range_rate"], radar_calib, cam)
            sensors = (s["lidar_vehicle"], radar)
        row = _scored(m, dets, sensors, cam, ms=ms, read_ms=0.0)
        if reader is not None:
            t0 = time.perf_counter()
            read = reader.relabel(np.ascontiguousarray(image[..., :3]), dets)  # both modes start with R, G, B
            read_ms = (time.perf_counter() - t0) * 1e3
            row = {**_scored(m, read, sensors, cam, ms=ms, read_ms=read_ms), "raw": row}
        rows.append(row)
    return rows


def _scored(meta: dict, dets: list[Detection], sensors: tuple[np.ndarray, RadarReturns] | None, cam: CameraCalib,
            **times: float) -> dict:
    """One frame's row: its detections matched to the ground truth and lifted from its sensors."""
    lifted = {}
    if sensors is not None:
        lifted = {id(d.det): d for d in lift(dets, sensors[0], cam, sensors[1])}
    return {"meta": meta, "dets": dets, "match": match(dets, meta["boxes"]), **times,
            "lifted": [lifted.get(id(d)) for d in dets]}


def _ap_table(rows: list[dict], frame_ok=lambda m: True, gt_ok=lambda g: True, det_ok=lambda d, l: True) -> dict:
    """Per-class AP50 over the frames and boxes selected; detections matched to a GT outside the
    selection are ignored, unmatched ones count where `det_ok` places them."""
    per = {}
    for c in DETECTION_CLASSES:
        scores, tps, n_gt = [], [], 0
        for r in rows:
            m = r["meta"]
            if not frame_ok(m):
                continue
            n_gt += sum(1 for g in m["boxes"] if g["cls"] == c and gt_ok(g))
            for d, j, lifted in zip(r["dets"], r["match"], r["lifted"]):
                if d.cls != c:
                    continue
                if j >= 0:
                    if not gt_ok(m["boxes"][j]):
                        continue
                elif not det_ok(d, lifted):
                    continue
                scores.append(d.score)
                tps.append(j >= 0)
        per[c] = average_precision(np.array(scores), np.array(tps, dtype=bool), n_gt)
    return per


def _above(rows: list[dict], conf: float) -> list[dict]:
    """The rows with only the detections scoring from `conf`. Matching is greedy by score, so each
    kept detection keeps its match: the same as a pass run at `conf`, without running it."""
    out = []
    for r in rows:
        keep = [i for i, d in enumerate(r["dets"]) if d.score >= conf]
        out.append({**r, **{k: [r[k][i] for i in keep] for k in ("dets", "match", "lifted")}})
    return out


def map50_95(rows: list[dict]) -> float | None:
    """COCO's mAP over IoU 0.50:0.95: the rows matched again at each threshold."""
    maps = [_summary(_ap_table([{**r, "match": match(r["dets"], r["meta"]["boxes"], iou)} for r in rows]))["map50"]
            for iou in np.linspace(0.5, 0.95, 10)]
    return None if maps[0] is None else round(float(np.mean(maps)), 4)


def _summary(per: dict) -> dict:
    vals = [v for v in per.values() if not np.isnan(v)]
    return {"map50": round(float(np.mean(vals)), 4) if vals else None,
            "per_class_ap50": {k: (None if np.isnan(v) else round(v, 4)) for k, v in per.items()}}


def _binned(rows: list[dict], bins, unit: str, gt_value, det_value) -> dict:
    """AP50 per bin of a value: a ground truth counts in its own bin, an unmatched detection in the
    bin of its own value (`det_value(detection, lifted)`; None places it in none)."""
    out = {}
    for lo, hi in bins:
        in_bin = lambda x: x is not None and lo <= x < hi  # noqa: E731
        label = f"{lo:.0f}-{hi:.0f}{unit}" if np.isfinite(hi) else f"{lo:.0f}+{unit}"
        out[label] = _summary(_ap_table(rows, gt_ok=lambda g: in_bin(gt_value(g)),
                                        det_ok=lambda d, lifted: in_bin(det_value(d, lifted))))
    return out


def breakdown(rows: list[dict]) -> dict:
    """AP50 by ground-truth distance, box height, whether the image's side cuts the box, and
    weather, and the lifting error."""
    by_dist = _binned(rows, DISTANCE_BINS, "m", lambda g: g["depth"],
                      lambda d, lifted: None if lifted is None else lifted.x)
    by_height = _binned(rows, HEIGHT_BINS, "px", lambda g: g["xyxy"][3] - g["xyxy"][1], lambda d, lifted: d.y2 - d.y1)
    width = CameraSpec().width
    cut = lambda x1, x2: x1 <= SIDE_PX or x2 >= width - SIDE_PX  # noqa: E731
    by_side = {name: _summary(_ap_table(rows, gt_ok=lambda g, w=want: cut(g["xyxy"][0], g["xyxy"][2]) == w,
                                        det_ok=lambda d, lifted, w=want: cut(d.x1, d.x2) == w))
               for name, want in (("cut", True), ("whole", False))}
    weathers = sorted({r["meta"]["weather"] for r in rows})
    by_weather = {w: _summary(_ap_table(rows, frame_ok=lambda m, w=w: m["weather"] == w)) for w in weathers}
    errs = {c: [] for c in DETECTION_CLASSES}
    for r in rows:
        for d, j, lifted in zip(r["dets"], r["match"], r["lifted"]):
            g = r["meta"]["boxes"][j] if j >= 0 else None
            if g is None or lifted is None or np.hypot(*g["center"][:2]) > POS_ERR_RANGE_M:
                continue
            errs[d.cls].append(float(np.hypot(lifted.x - g["center"][0], lifted.y - g["center"][1])))
    every = [e for v in errs.values() for e in v]
    return {"overall": _summary(_ap_table(rows)), "by_distance": by_dist, "by_height": by_height, "by_side": by_side,
            "by_weather": by_weather,
            "pos_err_median_m": round(float(np.median(every)), 3) if every else None,
            "pos_err_median_by_class_m": {c: round(float(np.median(v)), 3) for c, v in errs.items() if v},
            "latency_ms": round(float(np.median([r["ms"] for r in rows[5:] or rows])), 3)}


def bench_perception(data: Path, weights: Path | None = None, rgb_weights: Path | None = None, split: str = "test",
                     out: Path = Path("runs/bench_perception"), light_weights: Path | None = None,
                     imgsz: int = IMGSZ) -> dict:
    """The `bench perception` numbers for the fused two-stage detector (YOLO, then the light-state
    reader), with the camera-only twin beside it, and each network alone by Ultralytics' val.
    The fused detector is scored once more with the zoom pass, its gain beside its cost.
    Every pass, Ultralytics' val too, sees the images at `imgsz`, as the modular agent does."""
    load_manifest(data)
    reader = LightStateReader(light_weights)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result, tables = {}, {}
    for mode, w in (("fused", weights or DEFAULT_WEIGHTS["fused"]), ("rgb", rgb_weights or DEFAULT_WEIGHTS["rgb"])):
        if mode == "rgb" and not Path(w).is_file() and rgb_weights is None:
            continue  # the twin is optional
        det = Detector(w, mode, imgsz=imgsz)
        rows = run_split(data, split, det)
        b = breakdown(rows)
        ultra = evaluate_split(Path(w), run_yaml(data, mode, out / "yaml"), split, imgsz)
        tables[mode] = {**ultra, **b}
        # every box down to AP_CONF (the whole curve), with and without the reader's colours
        low = Detector(w, mode, conf=AP_CONF, imgsz=imgsz)
        two = run_split(data, split, low, reader)
        tables[f"{mode}+reader"] = {**breakdown(two), "read_ms": round(float(np.median([r["read_ms"] for r in two])), 3)}
        if mode == "fused":
            raw = _summary(_ap_table([r["raw"] for r in two]))["per_class_ap50"]
            onnx = backend_agreement(rows, run_split(data, split, Detector(w, mode, imgsz=imgsz, backend="onnx")))
            zoomed = run_split(data, split, Detector(w, mode, conf=AP_CONF, imgsz=imgsz, backend="onnx", zoom=True), reader)
            zoom_ap = _summary(_ap_table(zoomed))
            cut = _summary(_ap_table(_above(two, LIGHT_CONF)))  # the curve ended at the agent's light score
            ci = bootstrap_scores([two])[0]
            result = {"map50": tables["fused+reader"]["overall"]["map50"], "map50_95": map50_95(two),
                      "per_class_ap50": tables["fused+reader"]["overall"]["per_class_ap50"],
                      # 90 % intervals over draws of the split's frames, and the boxes each class has
                      "map50_ci90": ci["map50"], "per_class_ap50_ci90": ci["per_class_ap50"],
                      "per_class_boxes": ci["boxes"],
                      "pos_err_median_m": b["pos_err_median_m"], "split": split, "imgsz": imgsz,
                      # ONNX Runtime, as the modular agent runs it, timed in this run beside PyTorch
                      "latency_ms": onnx["latency_ms"], "torch_latency_ms": b["latency_ms"],
                      "onnx_same_detections": onnx["same_detections"], "onnx_max_abs_diff": onnx["max_abs_diff"],
                      "reader_ms": tables["fused+reader"]["read_ms"], "frames": len(two),
                      # the network alone, by Ultralytics' val
                      "yolo_map50": ultra["map50"], "yolo_map50_95": ultra["map50_95"],
                      "yolo_per_class_ap50": ultra["per_class_ap50"],
                      # the lights without the reader, by the same AP code: the reader's gain, like for like
                      "light_ap50_without_reader": {c: raw[c] for c in LIGHT_CLASSES},
                      # sessions 12–22 reported this one: every box below LIGHT_CONF left out
                      "map50_from_light_conf": cut["map50"], "per_class_ap50_from_light_conf": cut["per_class_ap50"],
                      "zoom_map50": zoom_ap["map50"], "zoom_per_class_ap50": zoom_ap["per_class_ap50"],
                      "zoom_latency_ms": round(float(np.median([r["ms"] for r in zoomed[5:] or zoomed])), 3)}
        else:
            result["rgb_map50"] = tables["rgb+reader"]["overall"]["map50"]
            result["rgb_per_class_ap50"] = tables["rgb+reader"]["overall"]["per_class_ap50"]
            result["rgb_yolo_map50"], result["rgb_yolo_per_class_ap50"] = ultra["map50"], ultra["per_class_ap50"]
    (out / "perception.json").write_text(json.dumps(tables, indent=2))
    _plot(tables, out / "perception_breakdown.png")
    result["breakdown"] = str(out / "perception.json")
    return result


def score_detectors(data: Path, weights: list[Path], split: str = "dev", mode: str = "fused", imgsz: int = IMGSZ,
                    light_weights: Path | None = None, progress: Callable[[int], None] | None = None) -> list[dict]:
    """Each detector scored as `bench perception`'s headline scores it (the YOLO over the whole
    curve, then the light-state reader) with 90 % intervals, and each after the first against the
    first, draw by draw: how a recipe is chosen on dev without reading test, in about half a minute
    a detector instead of `bench perception`'s many passes."""
    load_manifest(data)
    if split not in SPLITS[1:]:
        raise ValueError(f"--split {split}: not a held-out split; use one of {', '.join(SPLITS[1:])}")
    detectors = [Detector(w, mode, conf=AP_CONF, imgsz=imgsz) for w in weights]  # every file checked first
    reader = LightStateReader(light_weights)
    if progress is not None:
        progress(0)
    passes = []
    for i, det in enumerate(detectors):
        passes.append(run_split(data, split, det, reader))
        if progress is not None:
            progress(i + 1)
    return [{"weights": str(det.path), "split": split, "imgsz": imgsz, **_summary(_ap_table(rows)),
             "map50_ci90": ci["map50"], "per_class_ap50_ci90": ci["per_class_ap50"], "per_class_boxes": ci["boxes"],
             **({"against_first": ci["against_first"]} if "against_first" in ci else {})}
            for det, rows, ci in zip(detectors, passes, bootstrap_scores(passes))]


def backend_agreement(ref: list[dict], other: list[dict]) -> dict:
    """`other`'s latency, whether every frame has the same detections in the same order and
    classes as in `ref`, and the largest difference of a box corner [px] or score between them."""
    same, worst = True, 0.0
    for r, o in zip(ref, other, strict=True):
        if [d.cls for d in r["dets"]] != [d.cls for d in o["dets"]]:
            same = False
            continue
        for a, b in zip(r["dets"], o["dets"]):
            worst = max(worst, abs(a.score - b.score),
                        *(abs(getattr(a, k) - getattr(b, k)) for k in ("x1", "y1", "x2", "y2")))
    return {"latency_ms": round(float(np.median([r["ms"] for r in other[5:] or other])), 3), "same_detections": same,
            "max_abs_diff": float(f"{worst:.3g}")}


def _plot(tables: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 3.6))
    for ax, key, title in ((axes[0], "by_distance", "AP50 by distance"), (axes[1], "by_height", "AP50 by box height"),
                           (axes[2], "by_weather", "AP50 by weather")):
        groups = list(next(iter(tables.values()))[key])
        width = 0.8 / max(len(tables), 1)
        for i, (mode, t) in enumerate(tables.items()):
            vals = [t[key][g]["map50"] or 0.0 for g in groups]
            ax.bar(np.arange(len(groups)) + i * width, vals, width, label=mode)
        ax.set_xticks(np.arange(len(groups)) + width * (len(tables) - 1) / 2, groups)
        ax.set_ylim(0, 1)
        ax.set_title(title)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
