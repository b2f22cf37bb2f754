"""`drivestack bench networks`: what a detector network costs on this CPU before any training.

A network's latency does not depend on its weights, so untrained nets built from Ultralytics' yaml
answer in a minute which network and image size fit the detector's 20 ms budget here, where a
training takes hours and the CPU decides (README, "Known gaps": the agent's P2 at 448 px took
14.4 ms a frame on a Zen 5 and 35.7 ms on a Zen 3, by `bench perception`). Each runs as the agent
runs its detector: `Detector` on ONNX Runtime, one thread, the graph exported at the size its
letterbox gives the camera image. An untrained net finds no boxes, so the NMS after it has nothing
to do and the whole call is a lower bound of a trained one's (33.1 against 35.7 ms there).
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from perception.detector import Detector
from perception.evaluate import LIGHT_CONF
from perception.fusion import CHANNELS
from perception.yolo import check_model_yaml
from sim.sensors.frames import DETECTION_CLASSES
from sim.sensors.specs import CameraSpec

LATENCY_TARGET_MS = 20.0  # the detector latency on one thread
WARMUP = 10  # runs before timing: the first ones allocate ONNX Runtime's buffers


def time_networks(models: list[str], widths: list[int], mode: str = "fused", runs: int = 100,
                  progress: Callable[[int], None] | None = None) -> dict:
    """Every model at every width, after checking all the inputs (so a typo fails at once)."""
    if not models:
        raise ValueError("--model: no network given; name one or more, e.g. yolo26n-p2.yaml,yolo26n.yaml")
    if not widths:
        raise ValueError("--sizes: no width given; name one or more, e.g. 320,448")
    if runs < 1:
        raise ValueError(f"--runs: {runs}; time each network at least once")
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
        # from the agent's lowest score (its light boxes'), though an untrained net scores none that high
        detector = Detector(weights, mode, conf=LIGHT_CONF, imgsz=width, backend="onnx", onnx_cache=Path(work))
        whole = _median_p90(lambda: detector(image), runs)
        graph_input = detector.session.get_inputs()[0]
        shape = tuple(graph_input.shape[2:])
        feed = {graph_input.name: np.random.default_rng(seed).random((1, channels, *shape), dtype=np.float32)}
        alone = _median_p90(lambda: detector.session.run(None, feed), runs)
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

