"""`bench networks`: untrained nets timed as the agent runs its detector, without touching its cache."""
from __future__ import annotations

import pytest

import perception.detector as detector
from perception.latency import time_networks


def test_a_network_is_timed_at_the_size_the_agents_letterbox_gives(tmp_path, monkeypatch):
    monkeypatch.setattr(detector, "ONNX_CACHE", tmp_path / "onnx")
    seen = []
    result = time_networks(["yolo26n.yaml"], [96], "rgb", runs=3, progress=seen.append)
    (row,) = result["networks"]
    # 320 × 160 scaled to 96 wide is 48 tall, padded up to the stride: 64
    assert row["input_hw"] == [64, 96] and row["imgsz"] == 96 and row["model"] == "yolo26n.yaml"
    assert 2.0 < row["params_m"] < 3.0  # YOLO26n: about 2.5 M
    assert 0 < row["network_ms"] <= row["network_ms_p90"] and 0 < row["detector_ms"] <= row["detector_ms_p90"]
    assert seen == [0, 1] and result["target_ms"] == 20.0 and result["threads"] == 1
    assert not (tmp_path / "onnx").exists()  # the untrained graphs stay out of the agent's ONNX cache


@pytest.mark.parametrize("models, sizes, mode, field", [
    (["nope.yaml"], [96], "fused", "--model"),
    (["yolo26n.pt"], [96], "fused", "--model"),  # weights, not a network's yaml
    (["coco8.yaml"], [96], "fused", "--model"),  # a dataset's yaml
    (["yolo26n-seg.yaml"], [96], "fused", "--model"),  # no detect head
    ([], [96], "fused", "--model"),
    (["yolo26n.yaml"], [100], "fused", "--sizes"),
    (["yolo26n.yaml"], [96], "lidar", "--input"),
])
def test_bad_networks_sizes_or_inputs_are_named_before_any_timing(models, sizes, mode, field):
    with pytest.raises(ValueError, match=f"^{field}: "):
        time_networks(models, sizes, mode, runs=1, progress=lambda done: pytest.fail("timed a bad input"))
