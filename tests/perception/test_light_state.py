"""The light-state reader: it reads rendered heads, merges a head's boxes, trains, and fails clearly."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from perception.detector import Detection
from perception.light_state import LIGHT_CLASSES, LightStateReader, crop, train_light_state
from sim.map import Lane, Prop, RoadMap
from sim.sensors.calibration import Mount
from sim.sensors.camera import Camera
from sim.sensors.rig import sensor_rng
from sim.sensors.scene import FrameScene
from sim.sensors.specs import CameraSpec
from sim.sensors.state import LIGHT_CODE, Actors, EgoMotion, SceneState
from sim.sensors.static import static_world
from sim.types import LightState

CAMERA = CameraSpec(mount=Mount(x=1.0, z=1.5, pitch_deg=0.0))  # with the sensor noise the data has


def empty_map() -> RoadMap:
    """One lane far to the south: the area round the origin is empty grass for the head."""
    x = np.linspace(-60.0, 60.0, 121)
    return RoadMap([Lane("far.0", np.column_stack([x, np.full_like(x, -150.0)]), width=3.5, speed_limit=10.0)],
                   name="light_test")


def render_head(state: LightState, distance: float, weather: str = "day", seed: int = 0):
    """A camera frame looking straight at one signal head `distance` m away; (image, its box)."""
    m = empty_map()
    m.props = [Prop("traffic_light", 0.0, 0.0, yaw=0.0, length=0.3, width=0.3)]
    cam_x = distance
    ego = EgoMotion(cam_x + CAMERA.mount.x, 0.0, np.pi)  # behind the camera, looking back at the head
    snap = SceneState(0.0, weather, ego, Actors.make(), np.array([1000]), np.array([LIGHT_CODE[state]], np.int8))
    frame = Camera(CAMERA, sensor_rng(seed, "camera")).capture(FrameScene(static_world(m), snap), snap)
    (box,) = [b for b in frame.boxes if b.track_id == 1000]
    assert box.cls == f"traffic_light_{state.value}"
    return frame.image, np.array([box.x1, box.y1, box.x2, box.y2])


@pytest.mark.parametrize("weather", ["day", "night", "fog"])
@pytest.mark.parametrize("distance", [8.0, 18.0])
def test_shipped_reader_reads_each_state_of_a_rendered_head(distance, weather):
    """At 18 m the head is about 8 px tall: the case the YOLO itself gets wrong (module docstring)."""
    reader = LightStateReader()
    for i, state in enumerate((LightState.RED, LightState.YELLOW, LightState.GREEN)):
        image, box = render_head(state, distance, weather)
        p = reader(image, box[None])
        assert p.shape == (1, 3) and np.isclose(p.sum(), 1.0, atol=1e-5)
        assert LIGHT_CLASSES[int(np.argmax(p))] == f"traffic_light_{state.value}", (state, p)


def test_relabel_reads_the_state_and_keeps_one_box_per_head():
    reader = LightStateReader()
    image, (x1, y1, x2, y2) = render_head(LightState.GREEN, 18.0)
    car = Detection("car", 0.9, 10, 100, 60, 140)
    dets = [car, Detection("traffic_light_red", 0.5, x1, y1, x2, y2),  # the YOLO's two colours on one head
            Detection("traffic_light_yellow", 0.4, x1 + 0.3, y1, x2 + 0.3, y2 + 0.5)]
    out = reader.relabel(image, dets)
    assert out[0] == car
    (light,) = out[1:]
    assert light.cls == "traffic_light_green" and (light.x1, light.y1) == (x1, y1)
    assert 0.4 < light.score <= 0.5  # the head's score times the reader's confidence
    assert reader.relabel(image, [car]) == [car]


def test_crop_frames_a_head_the_same_at_any_size():
    """A lit lamp in the top third of a box stays in the top third of the crop, big or small."""
    for h in (9, 36):
        image = np.zeros((160, 320, 3), np.uint8)
        y1, x1, w = 40, 150, h // 3
        image[y1:y1 + h, x1:x1 + w] = 30
        image[y1:y1 + h // 3, x1:x1 + w] = (255, 0, 0)
        (c,) = crop(image, np.array([[x1, y1, x1 + w, y1 + h]]))
        rows = c[..., 0].mean(axis=1)
        top, bottom = rows[: len(rows) // 2].sum(), rows[len(rows) // 2:].sum()
        assert top > 3 * bottom


@pytest.fixture(scope="module")
def head_dataset(tmp_path_factory):
    """A detector-format dataset of rendered heads: enough to train and score, in seconds."""
    out = tmp_path_factory.mktemp("heads")
    rng = np.random.default_rng(0)
    states = (LightState.RED, LightState.YELLOW, LightState.GREEN)
    splits = {}
    for split, n in (("train", 12), ("training-dev", 3), ("dev", 3), ("test", 3)):
        (out / "rgb" / "images" / split).mkdir(parents=True)
        lines = []
        for k in range(n):
            state = states[k % 3]
            image, box = render_head(state, float(rng.uniform(6, 20)), seed=k)
            name = f"{split}_{k}"
            cv2.imwrite(str(out / "rgb" / "images" / split / f"{name}.png"), image[..., ::-1])
            lines.append(json.dumps({"name": name, "weather": "day", "boxes": [
                {"cls": f"traffic_light_{state.value}", "xyxy": box.tolist()}]}))
        (out / "meta").mkdir(exist_ok=True)
        (out / "meta" / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
        splits[split] = {"frames": n}
    (out / "manifest.json").write_text(json.dumps({"splits": splits}))
    return out


def test_training_writes_weights_the_reader_loads_and_scores_every_split(head_dataset, tmp_path):
    weights = tmp_path / "ls.pt"
    m = train_light_state(head_dataset, weights, epochs=3, batch=8)
    assert weights.is_file() and json.loads(weights.with_suffix(".json").read_text()) == m
    assert m["train_heads"] == {c: 4 for c in LIGHT_CLASSES}
    assert set(m["splits"]) == {"training-dev", "dev", "test"}
    assert all(s["heads"] == 3 and np.sum(s["confusion"]) == 3 for s in m["splits"].values())
    image, box = render_head(LightState.RED, 10.0)
    assert LightStateReader(weights)(image, box[None]).shape == (1, 3)
    assert train_light_state(head_dataset, tmp_path / "again.pt", epochs=3, batch=8)["splits"] == m["splits"]


def test_bad_weights_and_data_are_clear_errors(tmp_path, head_dataset):
    with pytest.raises(FileNotFoundError, match="drivestack train lights --data data/detector"):
        LightStateReader(tmp_path / "missing.pt")
    import torch

    torch.save({"state_dict": {}, "classes": ["car"], "crop": [32, 16, 1.3]}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not light-state weights"):
        LightStateReader(tmp_path / "other.pt")
    empty = tmp_path / "empty"
    (empty / "meta").mkdir(parents=True)
    (empty / "manifest.json").write_text(json.dumps({"splits": {s: {"frames": 1} for s in
                                                                ("train", "training-dev", "dev", "test")}}))
    for s in ("train", "training-dev", "dev", "test"):
        (empty / "meta" / f"{s}.jsonl").write_text(json.dumps({"name": "x", "weather": "day", "boxes": []}) + "\n")
    with pytest.raises(ValueError, match="no traffic-light labels"):
        train_light_state(empty, tmp_path / "x.pt", epochs=1)
