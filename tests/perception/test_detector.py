"""The detector wrapper: its output, whatever head made it, has one box per object."""
from __future__ import annotations

import numpy as np
import pytest

from perception.detector import Detector


def test_near_duplicate_boxes_of_one_class_are_merged(monkeypatch):
    import torch

    from perception.yolo import ultralytics

    det = Detector()
    rows = [[100, 50, 140, 80, 0.60, 0],  # a car …
            [104, 52, 142, 80, 0.15, 0],  # … and a near-duplicate of it (IoU 0.80), as YOLO26 heads give
            [101, 50, 140, 80, 0.40, 1],  # another class on the same pixels stays
            [200, 40, 210, 60, 0.30, 0]]  # a second car stays

    def predict(x, **kw):
        return [ultralytics().engine.results.Results(np.zeros((160, 320, 3), np.uint8), "", det.model.names,
                                                     boxes=torch.tensor(rows, dtype=torch.float32))]

    monkeypatch.setattr(det.model, "predict", predict)
    out = det(np.zeros((160, 320, 5), np.uint8))
    assert [(d.cls, round(d.score, 2), d.x1) for d in out] == [("car", 0.6, 100.0), ("pedestrian", 0.4, 101.0),
                                                               ("car", 0.3, 200.0)]



@pytest.fixture(scope="module")
def town_frame():
    """A camera, lidar and radar capture 2 s into dense_urban (cars, walkers and lights in view)."""
    from sim.scenario import load_scenario
    from sim.sensors.rig import SensorRig
    from sim.sensors.specs import default_rig
    from sim.world import World

    world = World(load_scenario("dense_urban"), 0, ego_autopilot=True)
    while world.t < 2.0:
        world.step(world.autopilot_control())
    rig = SensorRig([s for s in default_rig() if type(s).__name__ != "OdometrySpec"], world.map, 0)
    return rig.capture_world(world)


@pytest.mark.parametrize("mode", ["fused", "rgb"])
def test_the_onnx_backend_gives_the_torch_backends_detections(town_frame, mode, tmp_path, monkeypatch):
    import perception.detector as detector
    from perception.fusion import fused_image

    monkeypatch.setattr(detector, "ONNX_CACHE", tmp_path)
    f = town_frame
    image = fused_image(f["camera"], f["lidar"], f["radar"]) if mode == "fused" else f["camera"].image
    ref = Detector(mode=mode, conf=0.01)(image)
    out = Detector(mode=mode, conf=0.01, backend="onnx")(image)
    assert len(ref) >= 3 and [d.cls for d in out] == [d.cls for d in ref]
    for a, b in zip(ref, out):
        assert abs(a.score - b.score) < 1e-3
        assert np.allclose([a.x1, a.y1, a.x2, a.y2], [b.x1, b.y1, b.x2, b.y2], atol=1e-2)
    (graph,) = tmp_path.glob("*.onnx")  # exported once, by the weights' hash and the image size
    assert graph.name.endswith("-224x448.onnx")  # the 320 × 160 image upscaled to IMGSZ, padded to the stride
    stamp = graph.stat().st_mtime_ns
    Detector(mode=mode, conf=0.01, backend="onnx")(image)
    assert graph.stat().st_mtime_ns == stamp  # the second detector reused it


def test_the_zoom_pass_sees_the_middle_band_at_twice_the_size_and_maps_its_boxes_back(monkeypatch):
    import cv2
    import torch

    det = Detector(zoom=True)
    image = np.random.default_rng(0).integers(0, 256, (160, 320, 5), dtype=np.uint8)
    seen = []

    def one_pass(x):
        seen.append(x)
        rows = ([[128, 64, 141, 86, 0.5, 0], [10, 10, 20, 40, 0.4, 1]] if len(seen) == 1 else  # the full image
                [[100, 50, 120, 90, 0.9, 0],  # a car in the band → (130, 65, 140, 85), over the full pass's
                 [0, 50, 20, 90, 0.9, 0]])  # cut by the band's side: dropped, the full pass sees it whole
        t = torch.tensor(rows, dtype=torch.float32)
        return t[:, :4], t[:, 4], t[:, 5]

    monkeypatch.setattr(det, "_pass", one_pass)
    out = det(image)
    assert [(d.cls, round(d.score, 2), (d.x1, d.y1, d.x2, d.y2)) for d in out] == [
        ("pedestrian", 0.4, (10, 10, 20, 40)), ("car", 0.9, (130, 65, 140, 85))]
    full, up = seen
    assert full is image and up.shape == image.shape and up.dtype == np.uint8
    band = image[40:120, 80:240]
    assert np.array_equal(up[::2, ::2, 3:], band[..., 3:])  # depth and radar are sampled, never blended
    assert np.array_equal(up[..., :3], cv2.resize(band[..., :3], (320, 160), interpolation=cv2.INTER_LINEAR))


def test_the_zoom_pass_adds_far_boxes_only_inside_the_band(town_frame):
    from perception.fusion import fused_image

    f = town_frame
    image = fused_image(f["camera"], f["lidar"], f["radar"])
    key = lambda d: (d.cls, round(d.x1, 1), round(d.y1, 1))  # noqa: E731
    single = {key(d) for d in Detector(conf=0.05)(image)}
    added = [d for d in Detector(conf=0.05, zoom=True)(image) if key(d) not in single]
    assert added
    assert all(80 <= d.x1 and d.x2 <= 240 and 40 <= d.y1 and d.y2 <= 120 for d in added)


def test_an_unknown_backend_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown 'tensorrt'; use one of torch, onnx"):
        Detector(backend="tensorrt")


def test_an_image_size_off_the_networks_stride_is_a_clear_error():
    with pytest.raises(ValueError, match="image size: 400 is not a positive multiple of 32"):
        Detector(imgsz=400)


def test_the_depth_channel_is_the_dilation_the_shipped_detectors_were_trained_on(town_frame):
    """The shipped weights were trained on depth rendered with scipy's grey_dilation; OpenCV's must
    give every pixel the same value, or the agent would see other images than training did."""
    from scipy.ndimage import grey_dilation

    from perception.fusion import DEPTH_MAX_M, depth_channel
    from sim.sensors.calibration import lidar_to_camera

    cam, lidar = town_frame["camera"], town_frame["lidar"]
    h, w = cam.calib.height, cam.calib.width
    proj = lidar_to_camera(np.asarray(lidar.points), lidar.calib, cam.calib)
    raw = np.zeros(h * w, dtype=np.uint8)
    np.maximum.at(raw, proj.uv[:, 1].astype(int) * w + proj.uv[:, 0].astype(int),
                  np.clip(255.0 * (1.0 - proj.depth / DEPTH_MAX_M), 1, 255).astype(np.uint8))
    raw = raw.reshape(h, w)
    depth = depth_channel(lidar, cam)
    assert np.count_nonzero(depth) > 2 * np.count_nonzero(raw) > 0  # the rings are dilated into a surface
    assert np.array_equal(depth, grey_dilation(raw, size=(4, 1)))
    assert np.array_equal(depth[0], np.maximum(raw[0], np.maximum(raw[1], raw[2])))  # the top row reaches two rows down
