"""The detector dataset: labels, the 5-channel TIFFs, the manifest, and one epoch of training."""
from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from drivestack.detector_data import build_dataset, plan
from perception.dataset import LabelRule, load_manifest
from perception.fusion import CHANNELS
from sim.sensors.frames import Box2D


def test_yolo_box_round_trips():
    b = Box2D("traffic_light_green", 7, 100.5, 20.25, 110.0, 52.0, 0.9, 0.0, 200, 12.0, (12.0, 1.0, 2.9), (0.3, 0.3, 1.0), 0.0)
    cls, cx, cy, w, h = b.yolo(320, 160)
    assert cls == 5
    x1, y1, x2, y2 = (cx - w / 2) * 320, (cy - h / 2) * 160, (cx + w / 2) * 320, (cy + h / 2) * 160
    assert np.allclose([x1, y1, x2, y2], [b.x1, b.y1, b.x2, b.y2])


def test_label_rule_drops_small_and_hidden_boxes():
    rule = LabelRule()
    box = lambda x2, y2, vis: Box2D("car", 1, 0, 0, x2, y2, vis, 0.0, 50, 30.0, (30, 0, 0.7), (4.6, 1.9, 1.5), 0.0)  # noqa: E731
    assert rule.keep(box(10, 8, 0.5))
    assert not rule.keep(box(10, 4, 0.5))  # too short
    assert not rule.keep(box(1.5, 8, 0.5))  # too narrow
    assert not rule.keep(box(10, 8, 0.1))  # mostly hidden


def test_the_held_out_splits_stay_those_the_readme_numbers_were_measured_on():
    """The train mix may change; dev and test (every test number in the README) must not."""
    import hashlib

    from drivestack.detector_data import HELD_OUT

    held = [(e.split, e.scenario, e.seed, e.weather, e.frames) for e in plan(5000) if e.split in ("dev", "test")]
    assert held[:3] == [("dev", "heldout_town_3x5", 300000, "day", 20), ("dev", "heldout_town_5x3", 300001, "day", 20),
                        ("dev", "heldout_town_3x5_allway", 300002, "fog", 20)]
    assert hashlib.sha256(repr((held, HELD_OUT)).encode()).hexdigest()[:16] == "6eba91fa152c8d81"


def test_a_held_out_route_meets_an_all_way_stop_within_its_frames(tmp_path):
    """Without it the test split holds no stop sign, and stop-sign AP cannot be scored."""
    from drivestack.detector_data import render_episode

    ep = next(e for e in plan(5000) if e.split == "test" and e.scenario == "heldout_town_3x5_allway")
    (tmp_path / "labels" / "test").mkdir(parents=True)
    for sub in ("rgb/images/test", "fused/images/test", "sensors/test"):
        (tmp_path / sub).mkdir(parents=True)
    metas = render_episode(ep, tmp_path)
    assert len(metas) == ep.frames
    signs = [b for m in metas for b in m["boxes"] if b["cls"] == "stop_sign"]
    assert sum(b["xyxy"][3] - b["xyxy"][1] >= 8 for b in signs) >= 5


def test_busy_towns_are_a_quarter_of_train_and_never_a_held_out_layout():
    from drivestack.detector_data import HELD_OUT, _scenario

    train = [e.scenario for e in plan(5000) if e.split == "train"]
    busy = [name for name in train if name.startswith("busy_town-")]
    assert 0.15 < len(busy) / len(train) < 0.35
    held = {(h["map"]["rows"], h["map"]["cols"]) for h in HELD_OUT}
    maps = [_scenario(name) for name in busy]
    assert not {(sc.map.rows, sc.map.cols) for sc in maps} & held
    assert {sc.map.lanes for sc in maps} == {1, 2}
    assert all(sc.traffic.pedestrians == (8.0, 16.0) and sc.traffic.vehicles == (10.0, 22.0) for sc in maps)


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("det")
    manifest = build_dataset(out, frames=24, workers=1, frames_per_episode=6)
    return out, manifest


def test_dataset_layout_and_manifest(tiny_dataset):
    out, manifest = tiny_dataset
    assert set(manifest["splits"]) == {"train", "training-dev", "dev", "test"}
    assert manifest["label_rule"] == {"min_height_px": 5.0, "min_width_px": 2.0, "min_visible_fraction": 0.2,
                                      "light_facing_max_deg": 45.6, "sign_facing_max_deg": 72.5}
    train = manifest["splits"]["train"]
    assert train["frames"] > 0 and sum(train["class_counts"].values()) > 0
    # dev and test come from held-out towns with their own seeds
    held = {e["scenario"] for s in ("dev", "test") for e in manifest["splits"][s]["episodes"]}
    assert held and all(name.startswith("heldout_") for name in held)
    seeds = {s: {e["seed"] for e in manifest["splits"][s]["episodes"]} for s in manifest["splits"]}
    assert not seeds["train"] & (seeds["training-dev"] | seeds["dev"] | seeds["test"])
    metas = [json.loads(line) for line in (out / "meta" / "train.jsonl").read_text().splitlines()]
    for m in metas:
        labels = (out / "labels" / "train" / f"{m['name']}.txt").read_text().split("\n")[:-1]
        assert len(labels) == len(m["boxes"])
        assert (out / "rgb" / "images" / "train" / f"{m['name']}.png").is_file()


def test_fused_tiff_loads_in_channel_order(tiny_dataset):
    """Ultralytics' reader stacks the TIFF pages in the order written: R, G, B, lidar depth, radar."""
    import cv2

    from perception.yolo import ultralytics

    out, _ = tiny_dataset
    ultralytics()
    from ultralytics.utils.patches import imread

    name = sorted((out / "rgb" / "images" / "train").glob("*.png"))[0].stem
    tiff = imread(str(out / "fused" / "images" / "train" / f"{name}.tiff"), cv2.IMREAD_UNCHANGED)
    rgb = cv2.imread(str(out / "rgb" / "images" / "train" / f"{name}.png"))[..., ::-1]
    assert tiff.shape == (160, 320, len(CHANNELS["fused"]))
    assert np.array_equal(tiff[..., :3], rgb)
    assert tiff[..., 3].any()  # lidar hits the road ahead in every frame
    assert not np.array_equal(tiff[..., 3], tiff[..., 4])


def test_one_epoch_trains_and_the_weights_check_their_input(tiny_dataset, tmp_path):
    from perception.detector import Detector
    from perception.train import train_detector

    out, _ = tiny_dataset
    weights = tmp_path / "det.pt"
    metrics = train_detector(out, "fused", epochs=1, imgsz=96, batch=4, out=weights, workers=0, runs=tmp_path / "runs",
                             threads=1)
    assert weights.is_file() and weights.with_suffix(".json").is_file()
    assert metrics["channels"] == 5 and set(metrics["splits"]) == {"training-dev", "dev", "test"}
    det = Detector(weights, "fused", imgsz=96)
    assert isinstance(det(np.zeros((160, 320, 5), np.uint8)), list)
    with pytest.raises(ValueError, match="5 input channels but --input rgb gives 3"):
        Detector(weights, "rgb")
    with pytest.raises(ValueError, match="needs an H×W×5 uint8"):
        det(np.zeros((160, 320, 3), np.uint8))


def test_init_fine_tunes_trained_weights_at_another_size(tiny_dataset, tmp_path):
    import torch

    from perception.train import train_detector

    out, _ = tiny_dataset
    base, tuned = tmp_path / "base.pt", tmp_path / "tuned.pt"
    # another seed than the fine-tune's: Ultralytics draws a fresh network from the training seed
    train_detector(out, "fused", epochs=1, imgsz=96, batch=4, out=base, workers=0, runs=tmp_path / "r1", threads=1,
                   seed=1)
    metrics = train_detector(out, "fused", epochs=1, imgsz=128, batch=4, out=tuned, workers=0, runs=tmp_path / "r2",
                             threads=1, model_cfg="yolo11n.yaml", init=base)
    assert (metrics["init"], metrics["imgsz"], metrics["model"]) == (str(base), 128, "yolo26n-p2.yaml")

    def flat(path):  # every convolution kernel of the saved network, in one vector (BN scales all start at 1)
        net = torch.load(path, map_location="cpu", weights_only=False)["model"].float()
        return torch.cat([v.flatten() for v in net.state_dict().values() if v.ndim == 4])

    # the tuned network grew from base's weights, not from a fresh random draw of the same yaml
    auto_corr = torch.corrcoef(torch.stack([flat(base), flat(tuned)]))[0, 1]
    assert auto_corr > 0.9
    # --lr0 trains with auto's AdamW at that rate: a tiny one barely moves the weights
    gentle = tmp_path / "gentle.pt"
    metrics = train_detector(out, "fused", epochs=1, imgsz=128, batch=4, out=gentle, workers=0, runs=tmp_path / "r3",
                             threads=1, init=base, lr0=1e-7)
    args = torch.load(gentle, map_location="cpu", weights_only=False)["train_args"]
    assert (metrics["lr0"], args["optimizer"], args["lr0"], args["momentum"]) == (1e-7, "AdamW", 1e-7, 0.9)
    assert torch.corrcoef(torch.stack([flat(base), flat(gentle)]))[0, 1] > max(auto_corr, 0.9999)
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match=f"--lr0 {bad}: a learning rate is above 0 and below 1"):
            train_detector(out, "fused", out=gentle, init=base, lr0=bad)
    with pytest.raises(ValueError, match="--lr0 and --resume"):
        train_detector(out, "fused", out=gentle, lr0=1e-4, resume=True)
    with pytest.raises(ValueError, match="--init: .*nope.pt is missing"):
        train_detector(out, "fused", out=tuned, init=tmp_path / "nope.pt")
    with pytest.raises(ValueError, match="takes 5 input channels, --input rgb has 3"):
        train_detector(out, "rgb", out=tuned, init=base)
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt is not an Ultralytics detector checkpoint"):
        train_detector(out, "fused", out=tuned, init=tmp_path / "junk.pt")
    with pytest.raises(ValueError, match="--init and --resume"):
        train_detector(out, "fused", out=tuned, init=base, resume=True)


def test_an_interrupted_training_resumes_with_its_own_recipe(tiny_dataset, tmp_path):
    from perception.train import train_detector

    out, _ = tiny_dataset
    runs, weights = tmp_path / "runs", tmp_path / "det.pt"
    with pytest.raises(ValueError, match="no interrupted fused run to resume"):
        train_detector(out, "fused", out=weights, runs=runs, resume=True)

    class Stop(Exception):
        pass

    def stop_after_first(epoch, total, metrics):
        if epoch == 1:
            raise Stop

    with pytest.raises(Stop):
        train_detector(out, "fused", epochs=2, imgsz=96, batch=4, out=weights, workers=0, runs=runs, threads=1,
                       progress=stop_after_first, precision="bf16")
    assert not weights.exists()
    other = tmp_path / "other"  # another dataset
    other.mkdir()
    (other / "manifest.json").write_text((out / "manifest.json").read_text())
    with pytest.raises(ValueError, match=f"pass --data {out}"):
        train_detector(other, "fused", out=weights, runs=runs, resume=True)
    seen = []
    metrics = train_detector(out, "fused", epochs=9, imgsz=320, out=weights, workers=0, runs=runs, threads=1,
                             progress=lambda epoch, total, m: seen.append((epoch, total)), resume=True)
    # from the second epoch, to the checkpoint's 2, not 9 (Ultralytics reports its final validation as one more)
    assert seen[0] == (2, 2) and {total for _, total in seen} == {2}
    assert (metrics["epochs"], metrics["imgsz"], metrics["batch"], metrics["resumed"]) == (2, 96, 4, True)
    assert metrics["precision"] == "bf16"  # the checkpoint's, not the call's default
    assert weights.is_file() and json.loads(weights.with_suffix(".json").read_text())["epochs"] == 2
    with pytest.raises(ValueError, match="has finished"):
        train_detector(out, "fused", out=weights, runs=runs, resume=True)


def test_bf16_training_autocasts_on_the_cpu_and_an_unknown_precision_is_refused(tiny_dataset, tmp_path):
    import torch

    from perception.train import _cpu_autocast, resolve_precision, train_detector
    from perception.yolo import ultralytics

    ultralytics()
    import ultralytics.engine.trainer as trainer

    _cpu_autocast()
    with trainer.autocast(torch.bfloat16, device="cpu"):  # Ultralytics' own refuses bf16 off CUDA
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    with trainer.autocast(False, device="cpu"):
        assert not torch.is_autocast_enabled("cpu")
    assert resolve_precision("fp32") == "fp32" and resolve_precision("auto") in ("fp32", "bf16")
    with pytest.raises(ValueError, match="--precision: unknown 'fp16'"):
        train_detector(tiny_dataset[0], "fused", out=tmp_path / "det.pt", precision="fp16")


@pytest.mark.parametrize("model", ["yolo99q.yaml", "models/detector.pt"])
def test_a_bad_model_is_named_before_training(tiny_dataset, tmp_path, model):
    from perception.train import train_detector

    out, _ = tiny_dataset
    with pytest.raises(ValueError, match="^--model: "):
        train_detector(out, "fused", epochs=1, imgsz=64, model_cfg=model, out=tmp_path / "w.pt", runs=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


def test_missing_weights_name_the_train_command(tmp_path):
    from perception.detector import Detector

    with pytest.raises(FileNotFoundError, match="--init models/detector_320.pt --imgsz 416 --epochs 8 --out models/detector.pt"):
        Detector(tmp_path / "nope.pt", "fused")
    with pytest.raises(FileNotFoundError, match="--init models/detector_rgb_320.pt --imgsz 416 --epochs 8 --out models/detector_rgb.pt"):
        Detector(tmp_path / "nope.pt", "rgb")


def test_an_empty_dataset_directory_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no manifest.json.*drivestack data detector"):
        load_manifest(tmp_path)


def test_bench_perception_scores_the_yolo_and_the_two_stage_detector(tiny_dataset, tmp_path, monkeypatch):
    import perception.detector
    import perception.evaluate
    from perception.evaluate import bench_perception
    from perception.light_state import LIGHT_CLASSES
    from perception.train import train_detector
    from sim.sensors.frames import DETECTION_CLASSES

    out, _ = tiny_dataset
    weights = tmp_path / "det.pt"
    train_detector(out, "fused", epochs=1, imgsz=96, batch=4, out=weights, workers=0, runs=tmp_path / "runs", threads=1)
    monkeypatch.setitem(perception.evaluate.DEFAULT_WEIGHTS, "rgb", tmp_path / "no_twin.pt")  # no twin here
    monkeypatch.setattr(perception.detector, "ONNX_CACHE", tmp_path / "onnx")
    r = bench_perception(out, weights, None, "test", tmp_path / "bench")
    assert r["frames"] > 0 and r["latency_ms"] > 0 and r["reader_ms"] >= 0
    assert r["torch_latency_ms"] > 0 and r["onnx_same_detections"] and r["onnx_max_abs_diff"] < 1e-2
    assert set(r["light_ap50_without_reader"]) == set(LIGHT_CLASSES)
    assert 0 <= r["zoom_map50"] <= 1 and r["zoom_latency_ms"] > 0
    assert set(r["zoom_per_class_ap50"]) == set(DETECTION_CLASSES)
    # the headline is the detector as the agent runs it: YOLO, then the light-state reader
    tables = json.loads((tmp_path / "bench" / "perception.json").read_text())
    assert r["map50"] == tables["fused+reader"]["overall"]["map50"] and set(r["per_class_ap50"]) == set(DETECTION_CLASSES)
    assert 0 <= r["map50_95"] <= r["map50"] and 0 <= r["yolo_map50_95"] <= r["yolo_map50"] <= 1
    # the intervals come with the boxes they rest on: each class's labels in the split
    counts = json.loads((out / "manifest.json").read_text())["splits"]["test"]["class_counts"]
    assert r["per_class_boxes"] == {c: counts.get(c, 0) for c in DETECTION_CLASSES}
    assert r["map50_ci90"][0] <= r["map50"] <= r["map50_ci90"][1]
    assert set(r["per_class_ap50_ci90"]) == set(DETECTION_CLASSES)
    # the whole curve scores at least what its head does (boxes below a score only add recall)
    assert r["map50"] >= r["map50_from_light_conf"]
    assert set(r["per_class_ap50"]) == set(r["per_class_ap50_from_light_conf"])
    assert set(tables) == {"fused", "fused+reader"}  # without the twin's weights it is left out
    assert (tmp_path / "bench" / "perception_breakdown.png").is_file()


def test_boxes_above_a_score_keep_the_matches_a_pass_at_that_score_gives(tiny_dataset, tmp_path):
    from perception.detector import Detection, Detector
    from perception.evaluate import AP_CONF, _above, match, run_split
    from perception.train import train_detector

    # matching is greedy by score: dropping the low scores changes no kept detection's match
    rng = np.random.default_rng(0)
    gts = [{"cls": "car", "xyxy": [x, 50.0, x + 20.0, 70.0]} for x in range(0, 300, 25)]
    dets = [Detection("car", float(s), x, 50.0 + dy, x + 20.0, 70.0 + dy)
            for s, x, dy in zip(rng.random(60), rng.uniform(0, 300, 60), rng.uniform(-6, 6, 60))]
    rows = [{"dets": dets, "match": match(dets, gts), "lifted": [None] * len(dets)}]
    kept = _above(rows, 0.5)[0]
    high = [d for d in dets if d.score >= 0.5]
    assert kept["dets"] == high and kept["match"] == match(high, gts)
    assert 0 < sum(j >= 0 for j in kept["match"]) < sum(j >= 0 for j in rows[0]["match"])

    # and the detector's own score cut only drops boxes, so a pass at AP_CONF holds the pass at any score
    out, _ = tiny_dataset
    weights = tmp_path / "det.pt"
    train_detector(out, "fused", epochs=1, imgsz=96, batch=4, out=weights, workers=0, runs=tmp_path / "runs", threads=1)
    every = run_split(out, "test", Detector(weights, "fused", conf=AP_CONF, imgsz=96))
    scores = sorted({d.score for r in every for d in r["dets"]})
    assert len(scores) >= 2  # a one-epoch network scores little above AP_CONF
    cut = (scores[0] + scores[1]) / 2  # between two scores: a > and a ≥ cut agree
    at_cut = run_split(out, "test", Detector(weights, "fused", conf=cut, imgsz=96))
    for a, b in zip(_above(every, cut), at_cut, strict=True):
        assert [(d.cls, d.score, d.x1) for d in a["dets"]] == [(d.cls, d.score, d.x1) for d in b["dets"]]
        assert a["match"] == b["match"]


def test_a_pass_with_the_light_reader_keeps_the_same_pass_without_it(tiny_dataset, tmp_path):
    from perception.detector import Detector
    from perception.evaluate import AP_CONF, run_split
    from perception.light_state import LightStateReader
    from perception.train import train_detector

    out, _ = tiny_dataset
    weights = tmp_path / "det.pt"
    train_detector(out, "fused", epochs=1, imgsz=96, batch=4, out=weights, workers=0, runs=tmp_path / "runs", threads=1)
    plain = run_split(out, "test", Detector(weights, "fused", conf=AP_CONF, imgsz=96))
    two = run_split(out, "test", Detector(weights, "fused", conf=AP_CONF, imgsz=96), LightStateReader())
    key = lambda r: [(d.cls, d.score, d.x1, d.y1) for d in r["dets"]]  # noqa: E731
    where = lambda r: [None if p is None else (p.x, p.y) for p in r["lifted"]]  # noqa: E731
    assert sum(len(r["dets"]) for r in plain) > 0
    for r, p in zip(two, plain, strict=True):
        assert key(r["raw"]) == key(p) and r["raw"]["match"] == p["match"] and where(r["raw"]) == where(p)
        assert "raw" not in p and r["ms"] == r["raw"]["ms"]


def test_time_training_scales_timed_batches_to_epochs_and_recipes(tiny_dataset, tmp_path, monkeypatch):
    import perception.train as train

    out, manifest = tiny_dataset
    monkeypatch.setattr(train, "RECIPES", {"two runs": ((96, 3), (128, 2)), "needs 320": ((320, 1),)})
    r = train.time_training(out, "fused", sizes=(96, 128), batches=1, batch=4, model_cfg="yolo26n.yaml", workers=0,
                            threads=1, runs=tmp_path / "runs")
    frames = {s: manifest["splits"][s]["frames"] for s in ("train", "training-dev", "dev", "test")}
    assert r["batches_per_epoch"] == -(-frames["train"] // 4) and r["precision"] in ("fp32", "bf16")
    for v in r["sizes"].values():
        assert v["batch_s"] > 0 and v["batch_s_no_mosaic"] > 0 and v["val_s"] > 0
        assert v["epoch_s"] == pytest.approx(v["batch_s"] * r["batches_per_epoch"] + v["val_s"], abs=0.2)
        assert v["epoch_s_no_mosaic"] == pytest.approx(v["batch_s_no_mosaic"] * r["batches_per_epoch"] + v["val_s"],
                                                       abs=0.2)
        ratio = (frames["training-dev"] + frames["dev"] + frames["test"]) / frames["training-dev"]
        # val_s is rounded to 0.1 s; scoring_s scales the unrounded one
        assert v["scoring_s"] == pytest.approx(v["val_s"] * ratio, abs=0.05 * ratio + 0.05)
    a, b = r["sizes"][96], r["sizes"][128]
    # each run's last fifth (at least one epoch) trains without mosaic, as train_detector's
    want = (2 * a["epoch_s"] + a["epoch_s_no_mosaic"] + a["scoring_s"]
            + b["epoch_s"] + b["epoch_s_no_mosaic"] + b["scoring_s"]) / 60
    assert r["recipes"] == {"two runs": {"runs": "3 at 96 + 2 at 128", "minutes": pytest.approx(want, abs=0.06)}}
    assert (tmp_path / "runs" / "fused" / "size96").is_dir()  # Ultralytics' runs stay where they were sent
    args = yaml.safe_load((tmp_path / "runs" / "fused" / "size128" / "args.yaml").read_text())
    assert r["model"] == "yolo26n.yaml" and args["model"] == "yolo26n.yaml"  # the network asked for is the one timed
    # the timed frames are linked from across the train split, its first and its last among them
    linked = sorted((tmp_path / "runs" / "fused" / "sample" / "images" / "train").iterdir())
    split = sorted((out / "fused" / "images" / "train").iterdir())
    assert len(linked) == 12 and {p.resolve() for p in linked} >= {split[0].resolve(), split[-1].resolve()}
    assert len(list((tmp_path / "runs" / "fused" / "sample" / "labels" / "train").iterdir())) <= 12
    with pytest.raises(ValueError, match="pass fewer --batches"):
        train.time_training(out, "fused", sizes=(96,), batches=100, batch=4, runs=tmp_path / "runs")
