"""`drivestack bench networks`: what a detector network costs on this CPU before any training.

A network's latency does not depend on its weights, so untrained nets built from Ultralytics' yaml
answer in a minute which network and image size fit the detector's 20 ms budget here, where a
training takes hours and the CPU decides (README, "Known gaps": the agent's P2 took 14.4 ms at 448
px on a Zen 5 and 31 ms on a Zen 3). Each runs as the agent runs its detector: `Detector` on ONNX
Runtime, one thread, the graph exported at the size its letterbox gives the camera image.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from perception.detector import Detector, onnx_session
from perception.fusion import CHANNELS
from perception.yolo import check_model_yaml, ultralytics
from sim.sensors.frames import DETECTION_CLASSES
from sim.sensors.specs import CameraSpec

LATENCY_TARGET_MS = 20.0  # the detector latency on one thread
WARMUP = 10  # runs before timing: the first ones allocate ONNX Runtime's buffers
AGENT_CONF = 0.1  # the agent's lowest score (its light boxes'): what the NMS after the network sees


def time_networks(models: list[str], widths: list[int], mode: str = "fused", runs: int = 100,
                  progress: Callable[[int], None] | None = None) -> dict:
    """Every model at every width, after checking all the inputs (so a typo fails at once)."""
    ultralytics()
    if mode not in CHANNELS:
        raise ValueError(f"--input: {mode!r} is not an input mode; use {' or '.join(CHANNELS)}")
    for width in widths:
        if width <= 0 or width % 32:
            raise ValueError(f"--sizes: {width} is not a positive multiple of 32 (the network's stride), e.g. 448")
    for cfg in models:
        check_model_yaml(cfg)
    rows = []
    if progress is not None:
        progress(0)
    for cfg in models:
        for width in widths:
            rows.append(network_latency(cfg, width, mode, runs))
            if progress is not None:
                progress(len(rows))
    return {"input": mode, "threads": 1, "runs": runs, "target_ms": LATENCY_TARGET_MS, "networks": rows}


def network_latency(model_cfg: str, width: int, mode: str = "fused", runs: int = 100, seed: int = 0) -> dict:
    """The untrained `model_cfg` at `width`: median and 90th percentile of the network's ONNX
    Runtime run and of the whole detector call around it (letterbox, NMS) [ms]."""
    import torch
    from ultralytics.data.augment import LetterBox
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(seed)
    channels = len(CHANNELS[mode])
    net = DetectionModel(model_cfg, ch=channels, nc=len(DETECTION_CLASSES), verbose=False)
    net.names = dict(enumerate(DETECTION_CLASSES))
    cam = CameraSpec()
    image = np.random.default_rng(seed).integers(0, 256, (cam.height, cam.width, channels), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as work:
        weights = Path(work) / f"{Path(model_cfg).stem}.pt"
        torch.save({"model": net}, weights)
        detector = Detector(weights, mode, conf=AGENT_CONF, imgsz=width, backend="onnx", onnx_cache=Path(work))
        whole = _median_p90(lambda: detector(image), runs)
        shape = LetterBox(width, auto=True, stride=int(net.stride.max()))(image=image).shape[:2]  # the detector's
        session = onnx_session(weights, shape, threads=1, cache=Path(work))  # the export the detector made
        feed = {session.get_inputs()[0].name: np.random.default_rng(seed).random((1, channels, *shape), dtype=np.float32)}
        alone = _median_p90(lambda: session.run(None, feed), runs)
    return {"model": model_cfg, "imgsz": width, "input_hw": list(shape),
            "params_m": round(sum(p.numel() for p in net.parameters()) / 1e6, 3),
            "network_ms": alone[0], "network_ms_p90": alone[1], "detector_ms": whole[0], "detector_ms_p90": whole[1]}


def _median_p90(call: Callable[[], object], runs: int) -> tuple[float, float]:
    times = []
    for i in range(WARMUP + runs):
        t0 = time.perf_counter()
        call()
        if i >= WARMUP:
            times.append((time.perf_counter() - t0) * 1e3)
    return round(float(np.median(times)), 3), round(float(np.percentile(times, 90)), 3)

