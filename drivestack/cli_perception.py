"""CLI commands of the perception stack: `data detector`, `train detector`, `train lights`, `bench perception`,
`bench train`, `bench detectors`, `bench networks`."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from drivestack.errors import UserError

console = Console(stderr=True)
out = Console()
T = TypeVar("T")


def _bar() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=console)


def _once_inputs_pass(title: str, total: int, work: Callable[[Callable[[int], None]], T]) -> T:
    """`work(progress)` under a bar that shows from its first `progress` call, which `work` makes
    once its inputs have passed: a bad input stays one line, its error turned into that line."""
    bar = _bar()
    task = bar.add_task(title, total=total, info="")

    def progress(done: int) -> None:
        bar.start()
        bar.update(task, completed=done)

    try:
        return work(progress)
    except (FileNotFoundError, ValueError) as e:
        raise UserError(str(e)) from None
    finally:
        bar.stop()


def data_detector_cmd(
    frames: int = typer.Option(4000, "--frames", "-n", min=8, help="Frames to render over all four splits."),
    out_dir: Path = typer.Option(Path("data/detector"), "--out", "-o", help="Dataset directory (created)."),
    seed: int = typer.Option(0, help="Seed of the episode plan (scenarios, seeds, weather)."),
    workers: int = typer.Option(2, min=1, help="Processes that render episodes."),
    frames_per_episode: int = typer.Option(20, min=1, help="At most this many frames from one episode."),
) -> None:
    """Render a labelled detector dataset (YOLO format; rgb and fused images) from randomised scenarios.

    Splits: train / training-dev on the shipped scenarios, dev / test on held-out towns and seeds.
    Writes DIR/manifest.json with the seeds, weather, scenario mix, class counts and the label rule."""
    from drivestack.detector_data import build_dataset

    with _bar() as bar:
        task = bar.add_task(f"rendering {out_dir}", total=frames, info="")
        manifest = build_dataset(out_dir, frames, seed, workers, frames_per_episode,
                                 progress=lambda done, total: bar.update(task, completed=done))
    for split, s in manifest["splits"].items():
        out.print(f"{split:>12}: {s['frames']:5d} frames  {s['class_counts']}")
    out.print(f"wrote {out_dir / 'manifest.json'}")


def train_detector_cmd(
    data: Path = typer.Option(Path("data/detector"), "--data", "-d", help="Dataset from `drivestack data detector`."),
    mode: str = typer.Option("fused", "--input", "-i", help="rgb (3 channels) or fused (RGB + lidar depth + radar)."),
    epochs: int = typer.Option(24, "--epochs", "-e", min=1, help="Training epochs. The shipped detector.pt is two runs: 24 epochs from scratch at 320 (detector_320.pt), then 8 with --init at --imgsz 416. An epoch at 320 takes about 3 min on 2 idle cores with native bf16 (AVX512-BF16, Zen 5) and 10 min in fp32 on a CPU without it (Zen 3); one at 416 1.6–1.7 times that."),
    imgsz: int = typer.Option(320, help="Training image size (the camera is 320×160)."),
    batch: int = typer.Option(16, min=1, help="Batch size."),
    model: str = typer.Option("yolo26n-p2.yaml", "--model", "-m", help="Ultralytics model yaml, built untrained (nothing is downloaded). yolo26n-p2.yaml has a stride-4 output for 5–10 px objects (the shipped detectors); yolo11n.yaml is models/detector_yolo11n.pt's."),
    out_path: Path = typer.Option(None, "--out", "-o", help="Weights to write \\[default: models/detector.pt, or models/detector_rgb.pt for rgb]; the metrics JSON goes beside them."),
    workers: int = typer.Option(2, min=0, help="Data-loading processes."),
    seed: int = typer.Option(0, help="Training seed."),
    threads: int = typer.Option(2, min=1, help="torch threads (1 leaves a core free for other work)."),
    resume: bool = typer.Option(False, "--resume", help="Continue this --input's interrupted run (runs/detector/INPUT/train) from its last epoch, with the epochs, model, image size, batch, seed and precision it was started with."),
    precision: str = typer.Option("auto", help="auto, fp32 or bf16: bf16 autocast trains about 1.5× faster on CPUs with native bf16 (AVX512-BF16 or AMX), where auto picks it; weights stay fp32."),
    init: Path = typer.Option(None, "--init", help="Fine-tune these trained weights (their architecture; --model is ignored) instead of starting from scratch, e.g. at a new --imgsz."),
    lr0: float = typer.Option(None, "--lr0", help="AdamW's starting learning rate \\[default: Ultralytics' auto choice, AdamW at 0.001 for six classes]. It falls linearly over the run toward a hundredth of itself (Ultralytics' lrf); a one-epoch fine-tune holds it throughout, so polish with a low one (e.g. 0.0001)."),
) -> None:
    """Train the multitask YOLO detector from scratch (or fine-tune one with --init), offline, then score it on training-dev, dev and test.

    Every epoch is checkpointed under runs/detector/INPUT/train: if the run stops, --resume carries it on."""
    from perception.train import train_detector

    out_path = out_path or Path("models/detector.pt" if mode == "fused" else "models/detector_rgb.pt")
    try:
        with _bar() as bar:
            task = bar.add_task(f"training {mode} detector", total=None if resume else epochs, info="")
            seen = {"epoch": -1, "batches": 0}

            def on_batch(tr) -> None:  # epochs take minutes on a CPU: move the bar every batch
                if tr.epoch != seen["epoch"]:
                    seen.update(epoch=tr.epoch, batches=0)
                seen["batches"] += 1
                bar.update(task, total=tr.epochs, completed=tr.epoch + seen["batches"] / len(tr.train_loader))

            def progress(epoch: int, total: int, m: dict) -> None:
                bar.update(task, completed=min(epoch, total), info=f"training-dev mAP50 {m.get('metrics/mAP50(B)', 0):.3f}")

            metrics = train_detector(data, mode, epochs, imgsz, batch, out_path, model, seed, workers,
                                     threads=threads, progress=progress, batch_progress=on_batch, resume=resume,
                                     precision=precision, init=init, lr0=lr0)
    except ValueError as e:
        raise UserError(str(e)) from None
    for split, m in metrics["splits"].items():
        out.print(f"{split:>12}: mAP50 {m['map50']:.3f}  mAP50-95 {m['map50_95']:.3f}  {m['per_class_ap50']}")
    out.print(f"wrote {out_path} and {out_path.with_suffix('.json')}")


def train_lights_cmd(
    data: Path = typer.Option(Path("data/detector"), "--data", "-d", help="Dataset from `drivestack data detector` (its head boxes are the training crops)."),
    out_path: Path = typer.Option(Path("models/light_state.pt"), "--out", "-o", help="Weights to write; the metrics JSON goes beside them."),
    epochs: int = typer.Option(40, "--epochs", "-e", min=1, help="Training epochs (one is about 0.3 s per 1,000 heads)."),
    seed: int = typer.Option(0, help="Training seed."),
) -> None:
    """Train the light-state reader: a small CNN that reads red / yellow / green from a crop of a
    signal head found by the detector. Scores it on training-dev, dev and test (ground-truth boxes)."""
    from perception.light_state import train_light_state

    try:
        with _bar() as bar:
            task = bar.add_task("training light-state reader", total=epochs, info="")
            metrics = train_light_state(data, out_path, epochs, seed=seed, progress=lambda e, n, acc: bar.update(
                task, completed=e, info=f"training-dev accuracy {acc:.3f}"))
    except ValueError as e:
        raise UserError(str(e)) from None
    out.print(f"train heads: {metrics['train_heads']}  ({metrics['train_s']} s)")
    for split, m in metrics["splits"].items():
        out.print(f"{split:>12}: {m['heads']:4d} heads  accuracy {m['accuracy']}  recall {m['recall']}")
    out.print(f"wrote {out_path} and {out_path.with_suffix('.json')}")


def bench_perception_cmd(
    data: Path = typer.Option(Path("data/detector"), "--data", "-d", help="Dataset whose test split is scored."),
    weights: Path = typer.Option(None, help="Fused weights \\[default: models/detector.pt]."),
    rgb_weights: Path = typer.Option(None, "--rgb-weights", help="Camera-only weights \\[default: models/detector_rgb.pt]; scored side by side if present."),
    split: str = typer.Option("test", help="Split to score: training-dev, dev or test."),
    out_dir: Path = typer.Option(Path("runs/bench_perception"), "--out", "-o", help="Where the per-bin tables and plot go."),
    light_weights: Path = typer.Option(None, "--light-weights", help="Light-state reader \\[default: models/light_state.pt]."),
    imgsz: int = typer.Option(None, "--imgsz", help="Width in pixels that the network sees the 320×160 camera image at, a multiple of 32 \\[default: 448, as the modular agent runs it; 320 is the camera's own]."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Detector quality and speed: mAP, per-class AP50, AP by distance, box height, image-side cut and
    weather (fused vs camera-only), 3D position error of lifting, and detector latency on one
    thread. map50, map50_95 and per_class_ap50 score the detector as the modular agent runs it:
    the YOLO, then the light-state reader's colours on its light boxes, over every box from score
    0.001 (the whole precision-recall curve, as Ultralytics' val); *_ci90 are their 90 % intervals
    over 1,000 draws of the split's frames with replacement (seeded), per_class_boxes the boxes
    each class has in the split (test: 10 yellow lights); yolo_* are Ultralytics' val of
    the network alone; *_from_light_conf keep only the boxes from 0.1, the agent's light threshold;
    zoom_* add the zoom pass on the image's middle band upscaled 2× (a second network pass); rgb_*
    are the camera-only twin.
    latency_ms is the network on ONNX Runtime, as the agent runs it (reader_ms comes on top);
    torch_latency_ms is PyTorch's, and onnx_same_detections / onnx_max_abs_diff say how far the two
    backends' detections agree."""
    from perception.detector import IMGSZ
    from perception.evaluate import bench_perception

    try:
        result = bench_perception(data, weights, rgb_weights, split, out_dir, light_weights, imgsz or IMGSZ)
    except (FileNotFoundError, ValueError) as e:
        raise UserError(str(e)) from None
    if as_json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            out.print(f"{k}: {v}")


def bench_train_cmd(
    data: Path = typer.Option(Path("data/detector"), "--data", "-d", help="Dataset from `drivestack data detector`."),
    mode: str = typer.Option("fused", "--input", "-i", help="rgb or fused."),
    sizes: str = typer.Option("320,416", help="Training image sizes to time, comma-separated (the recipes use 320 and 416)."),
    model: str = typer.Option("yolo26n-p2.yaml", "--model", "-m", help="Ultralytics model yaml to time, as `train detector --model` (the shipped detectors' is yolo26n-p2.yaml); the recipes' minutes are then for that network."),
    batches: int = typer.Option(8, min=1, help="Batches timed at each size, after two to warm up."),
    threads: int = typer.Option(2, min=1, help="torch threads, as `train detector --threads`."),
    precision: str = typer.Option("auto", help="auto, fp32 or bf16, as `train detector --precision`."),
    out_dir: Path = typer.Option(Path("runs/bench_train"), "--out", "-o", help="Where Ultralytics' short runs go."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """How long the detector's training takes on this machine, in a few minutes: seconds per batch
    and per epoch at each image size, and each shipped recipe's minutes against the issue's 90.

    Runs Ultralytics' own trainer as `train detector` does (same arguments) for two short epochs
    per size, with mosaic and without (a run's last fifth), then scales to the train split. The
    CPU decides: an epoch at 320 took 187 s on a Zen 5 with native bf16, 602 s on a Zen 3 in fp32."""
    from perception.train import time_training

    try:
        size_list = tuple(int(s) for s in sizes.split(","))
    except ValueError:
        raise UserError(f"--sizes: {sizes!r} is not a comma-separated list of image sizes, e.g. 320,416") from None
    result = _once_inputs_pass("timing training", len(size_list), lambda progress: time_training(
        data, mode, size_list, batches, model_cfg=model, threads=threads, precision=precision, runs=out_dir,
        progress=progress))
    if as_json:
        print(json.dumps(result))
        return
    out.print(f"{result['model']}, {result['input']}, {result['precision']} (native bf16: {result['native_bf16']}), "
              f"{result['threads']} threads, batch {result['batch']}, {result['train_frames']} train frames "
              f"= {result['batches_per_epoch']} batches an epoch")
    t = Table("size", "s / batch", "without mosaic", "validation s", "epoch min", "without mosaic", "closing scoring min")
    for size, v in result["sizes"].items():
        t.add_row(str(size), f"{v['batch_s']:.2f}", f"{v['batch_s_no_mosaic']:.2f}", f"{v['val_s']:.0f}",
                  f"{v['epoch_s'] / 60:.1f}", f"{v['epoch_s_no_mosaic'] / 60:.1f}", f"{v['scoring_s'] / 60:.1f}")
    out.print(t)
    t = Table("recipe", "runs", "minutes (estimate)", f"≤ {result['budget_minutes']} min")
    for name, r in result["recipes"].items():
        t.add_row(name, r["runs"], f"{r['minutes']:.0f}", "yes" if r["minutes"] <= result["budget_minutes"] else "no")
    out.print(t)


def bench_detectors_cmd(
    weights: list[Path] = typer.Argument(..., help="Detector weights; every one after the first is compared with the first."),
    data: Path = typer.Option(Path("data/detector"), "--data", "-d", help="Dataset from `drivestack data detector`."),
    split: str = typer.Option("dev", help="Split to score: training-dev, dev or test (choose on dev; read test once)."),
    mode: str = typer.Option("fused", "--input", "-i", help="rgb or fused: the weights' input."),
    imgsz: int = typer.Option(None, "--imgsz", help="Width the network sees the camera image at, a multiple of 32 \\[default: 448, as the agent runs it]."),
    light_weights: Path = typer.Option(None, "--light-weights", help="Light-state reader \\[default: models/light_state.pt]."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON list."),
) -> None:
    """Score detectors side by side as the agent runs them, with 90 % intervals: for choosing a recipe.

    Each is scored as `bench perception`'s headline (the YOLO over the whole precision-recall curve,
    then the light-state reader; COCO AP50), with the 5th–95th percentile over 1,000 draws of the
    split's frames. Each after the first is compared with the first on the same draws (a paired
    bootstrap): the difference's interval and the share of draws where it scores higher. About
    half a minute a detector on dev (250 frames) on 2 cores."""
    from perception.detector import IMGSZ
    from perception.evaluate import score_detectors

    result = _once_inputs_pass(f"detectors scored on {split}", len(weights), lambda progress: (
        score_detectors(data, weights, split, mode, imgsz or IMGSZ, light_weights, progress)))
    if as_json:
        print(json.dumps(result))
        return
    first = result[0]
    classes = list(first["per_class_ap50"])
    short = [c.removeprefix("traffic_light_").replace("pedestrian", "ped").replace("stop_sign", "stop") for c in classes]
    interval = lambda ci: "" if ci is None else f" [{ci[0]:.3f}, {ci[1]:.3f}]"  # noqa: E731
    value = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
    t = Table("weights", "mAP50 [90 %]", *short, title=f"{first['split']}, {first['imgsz']} px, two-stage AP50")
    for r in result:
        t.add_row(r["weights"], value(r["map50"]) + interval(r["map50_ci90"]),
                  *(value(r["per_class_ap50"][c]) for c in classes))
    t.add_row("boxes", "", *(str(first["per_class_boxes"][c]) for c in classes))
    out.print(t)
    if len(result) > 1:
        t = Table("weights", "Δ mAP50 [90 %], P(higher)", *short, title=f"against {first['weights']}, paired")
        for r in result[1:]:
            cmp_ = r["against_first"]
            cell = lambda d: "–" if d is None else f"{d['diff']:+.3f}{interval(d['ci90'])}, {d['p_higher']:.2f}"  # noqa: E731
            t.add_row(r["weights"], cell(cmp_["map50"]), *(cell(cmp_[c]) for c in classes))
        out.print(t)


def bench_networks_cmd(
    models: str = typer.Option("yolo26n-p2.yaml,yolo26n.yaml,yolo11n.yaml", "--model", "-m",
                               help="Ultralytics model yamls to time, comma-separated (the agent's is yolo26n-p2.yaml)."),
    sizes: str = typer.Option("320,384,448", help="Widths the camera image is scaled to, comma-separated multiples of 32 (the agent's is 448)."),
    mode: str = typer.Option("fused", "--input", "-i", help="rgb or fused: the input's channels."),
    runs: int = typer.Option(100, min=1, help="Timed runs of each network, after 10 to warm up."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Which detector network fits the 20 ms budget on this CPU, in a minute and before any training.

    Builds each network untrained (a network's speed does not depend on its weights), exports it to
    ONNX as the agent's detector is, at the size the agent's letterbox gives the 320 × 160 camera
    image, and times it on one ONNX Runtime thread: the network alone, and the whole detector call
    (letterbox, network, NMS), which the 20 ms target counts. An untrained net finds no boxes, so
    its NMS has nothing to do: the call is a lower bound of a trained one's (`bench perception`
    times the shipped weights). The CPU decides: the agent's P2 at 448 took 14.4 ms a frame on a
    Zen 5 and 35.7 ms on a Zen 3."""
    from perception.latency import time_networks

    model_list = [m.strip() for m in models.split(",") if m.strip()]
    try:
        size_list = [int(s) for s in sizes.split(",")]
    except ValueError:
        raise UserError(f"--sizes: {sizes!r} is not a comma-separated list of widths, e.g. 320,384,448") from None
    result = _once_inputs_pass("timing networks", len(model_list) * len(size_list), lambda progress: time_networks(
        model_list, size_list, mode, runs, progress))
    if as_json:
        print(json.dumps(result))
        return
    t = Table(title=f"{mode} input, one ONNX Runtime thread, median of {runs} runs (p90: the detector's)")
    t.add_column("network", no_wrap=True)
    for name in ("h × w", "params", "network ms", "detector ms", "p90", f"≤ {result['target_ms']:.0f} ms"):
        t.add_column(name, justify="right")
    for r in result["networks"]:
        h, w = r["input_hw"]
        t.add_row(r["model"], f"{h} × {w}", f"{r['params_m']:.1f} M", f"{r['network_ms']:.1f}", f"{r['detector_ms']:.1f}",
                  f"{r['detector_ms_p90']:.1f}", "yes" if r["detector_ms"] <= result["target_ms"] else "no")
    out.print(t)
