"""`drivestack train detector`: a nano YOLO built from yaml, trained from scratch on a rendered dataset.

Everything it writes stays in the project (runs go under `--runs`, settings under `.yolo/`). The
weights land at `--out` with a metrics JSON beside them (`detector.pt` → `detector.json`).
"""
from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path
from typing import Callable

import numpy as np
import yaml

from perception.dataset import SPLITS, load_manifest
from perception.fusion import CHANNELS
from perception.yolo import check_model_yaml, ultralytics

PRECISIONS = ("auto", "fp32", "bf16")
# (image size, epochs) of each run of a shipped detector's recipe: the first from scratch, the
# next fine-tuned from it (`--init`); `train_command` and `bench train` both read them
RECIPES = {"detector.pt": ((320, 24), (416, 8)), "detector_r90.pt": ((320, 14), (416, 8))}
RECIPE_BUDGET_MIN = 90  # the "about 90 minutes" on a 2-core CPU


def native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX): there bf16 autocast
    trains about 1.5× faster than fp32 (session 19, Zen 5); elsewhere it is emulated and slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"--precision: unknown {precision!r}; use one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if native_bf16() else "fp32"
    return precision


def _cpu_autocast() -> None:
    """Let Ultralytics' `amp="bf16"` autocast on the CPU. Its trainer refuses bf16 off CUDA; the
    weights, the optimiser and validation stay fp32 (the validator never autocasts on a CPU)."""
    import torch
    import ultralytics.engine.trainer as trainer

    own = trainer.autocast
    if getattr(own, "cpu_bf16", False):
        return  # already wrapped: every training in this process would wrap it again

    def autocast(enabled, device: str = "cuda"):
        if device == "cpu" and enabled is torch.bfloat16:
            return torch.amp.autocast("cpu", dtype=torch.bfloat16)
        return own(enabled, device)

    autocast.cpu_bf16 = True
    trainer.autocast = autocast


def run_yaml(data: Path, mode: str, where: Path) -> Path:
    """The dataset's Ultralytics yaml for `mode` with an absolute path, so the dataset can move."""
    data = Path(data).resolve()
    src = data / f"{mode}.yaml"
    if mode not in CHANNELS:
        raise ValueError(f"--input: unknown input mode {mode!r}; use one of {', '.join(CHANNELS)}")
    cfg = yaml.safe_load(src.read_text())
    cfg["path"] = str(data / mode)
    where.mkdir(parents=True, exist_ok=True)
    out = where / f"{mode}.yaml"
    out.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return out


def train_detector(data: Path, mode: str = "fused", epochs: int = 24, imgsz: int = 320, batch: int = 16,
                   out: Path = Path("models/detector.pt"), model_cfg: str = "yolo26n-p2.yaml", seed: int = 0,
                   workers: int = 2, runs: Path = Path("runs/detector"), threads: int = 2,
                   progress: Callable[[int, int, dict], None] | None = None,
                   batch_progress: Callable[[object], None] | None = None, resume: bool = False,
                   precision: str = "auto", init: Path | None = None, lr0: float | None = None) -> dict:
    """Train, copy the best weights to `out`, score them on every held-out split, write the JSON.

    `resume` continues this input mode's interrupted run from its last epoch, with the recipe
    (epochs, model, image size, batch, seed, precision) its checkpoint holds: a recipe can take
    hours here. `precision` "auto" is bf16 autocast where the CPU has native bf16, else fp32. `init`
    fine-tunes trained weights (their architecture; `model_cfg` is ignored) instead of starting from
    scratch: how a detector trained at one image size learns another in a few epochs. `lr0` sets
    AdamW's starting rate in place of Ultralytics' auto choice (AdamW at 0.002·5/(4+nc), 0.001 for
    six classes), which a one-epoch fine-tune would hold throughout: too high to polish with."""
    manifest = load_manifest(data)
    if init is not None and resume:
        raise ValueError("--init and --resume: a resumed run continues its own weights; pass one of them")
    if init is not None:
        model_cfg = _init_arch(Path(init), mode)
    elif not resume:
        check_model_yaml(model_cfg)
    if lr0 is not None and not 0 < lr0 < 1:
        raise ValueError(f"--lr0 {lr0}: a learning rate is above 0 and below 1, e.g. 0.0001")
    if lr0 is not None and resume:
        raise ValueError("--lr0 and --resume: a resumed run keeps its own rate; pass one of them")
    precision = resolve_precision(precision)
    u = ultralytics()
    _cpu_autocast()
    run_dir = Path(runs).resolve() / mode
    if resume:
        last = run_dir / "train" / "weights" / "last.pt"
        model_cfg, epochs, imgsz, batch, seed, precision = _resumable(last, data, mode, run_dir)
    data_yaml = run_yaml(data, mode, run_dir)
    model = u.YOLO(str(last) if resume else str(init) if init is not None else model_cfg)
    _pin_threads(model, threads)
    if batch_progress is not None:
        model.add_callback("on_train_batch_end", batch_progress)
    if progress is not None:
        model.add_callback("on_fit_epoch_end", lambda tr: progress(tr.epoch + 1, tr.epochs, dict(tr.metrics)))
    t0 = time.perf_counter()
    if resume:
        model.train(resume=True, data=str(data_yaml), workers=workers)
    else:
        model.train(**_fit_args(data_yaml, imgsz, batch, workers, seed, precision, run_dir), epochs=epochs,
                    close_mosaic=_plain_epochs(epochs), warmup_epochs=min(3.0, epochs / 10),
                    patience=max(epochs, 100), **_rate_args(lr0))
    train_s = time.perf_counter() - t0
    best = Path(model.trainer.best)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(best, out)
    metrics = {"input": mode, "channels": len(CHANNELS[mode]), "model": model_cfg, "epochs": epochs, "imgsz": imgsz,
               "batch": batch, "seed": seed, "precision": precision, "train_s": round(train_s, 1),
               "resumed": resume,  # then train_s is this process's part
               "init": str(init) if init is not None else None, "lr0": lr0,  # None: Ultralytics' auto
               "frames": {s: manifest["splits"][s]["frames"] for s in SPLITS}, "splits": {}}
    for split in ("training-dev", "dev", "test"):
        metrics["splits"][split] = evaluate_split(out, data_yaml, split, imgsz)
    out.with_suffix(".json").write_text(json.dumps(metrics, indent=2))
    return metrics


def _rate_args(lr0: float | None) -> dict:
    """Ultralytics' optimizer arguments: its auto choice, or auto's AdamW (momentum 0.9, bias warm-up
    from zero) at `lr0` (an explicit optimizer would take momentum 0.937 and warm biases from 0.1)."""
    return {} if lr0 is None else dict(optimizer="AdamW", lr0=lr0, momentum=0.9, warmup_bias_lr=0.0)


def _plain_epochs(epochs: int) -> int:
    """A run's last epochs without mosaic (Ultralytics' close_mosaic): a fifth, at least one, so the
    network ends on whole frames as the agent sees them."""
    return max(1, epochs // 5)


def _fit_args(data_yaml: Path, imgsz: int, batch: int, workers: int, seed: int, precision: str, project: Path,
              name: str = "train") -> dict:
    """Ultralytics' train arguments shared by a training and its timing (`time_training`)."""
    return dict(data=str(data_yaml), imgsz=imgsz, batch=batch, device="cpu", workers=workers, seed=seed,
                deterministic=True, plots=False, amp="bf16" if precision == "bf16" else False, project=str(project),
                name=name, exist_ok=True, verbose=False)


def _pin_threads(model, threads: int) -> None:
    """Ultralytics pins torch to cpu_count − 1 threads (1 here) and re-pins it whenever it selects a
    device (every validation); training owns the machine, so take `threads` at every epoch start."""
    import torch

    for event in ("on_pretrain_routine_end", "on_train_epoch_start"):
        model.add_callback(event, lambda tr: torch.set_num_threads(threads))


def time_training(data: Path, mode: str = "fused", sizes: tuple[int, ...] = (320, 416), batches: int = 8,
                  batch: int = 16, model_cfg: str = "yolo26n-p2.yaml", workers: int = 2, threads: int = 2,
                  precision: str = "auto", runs: Path = Path("runs/bench_train"),
                  progress: Callable[[int], None] | None = None) -> dict:
    """What a training epoch costs on this machine at each image size, and so each recipe in RECIPES.

    A recipe's time depends on the CPU more than anything (an epoch at 320 took 187 s on a Zen 5
    with native bf16 and 602 s on a Zen 3 in fp32), and timing one takes hours. Here Ultralytics'
    own trainer, with `train_detector`'s arguments, runs two short epochs at each size over frames
    spread across the train split, the first with mosaic and the second without (as a run's last
    fifth), each `batches` batches after two to warm up and one validation of training-dev. An
    epoch is the median batch times the train split's batches plus that validation; a run adds the
    scoring of its three held-out splits, as `train_detector` ends. An estimate, in minutes
    instead of hours."""
    check_model_yaml(model_cfg)
    manifest = load_manifest(data)
    precision = resolve_precision(precision)
    frames = {s: manifest["splits"][s]["frames"] for s in SPLITS}
    u = ultralytics()
    _cpu_autocast()
    run_dir = Path(runs).resolve() / mode
    warm = 2
    per_epoch = math.ceil(frames["train"] / batch)
    need = (batches + warm) * batch
    if frames["train"] < need:
        raise ValueError(f"{data}: its train split has {frames['train']} frames, and timing {batches} batches of "
                         f"{batch} after {warm} to warm up needs {need}; pass fewer --batches or a smaller --batch")
    data_yaml = _sample_yaml(run_yaml(data, mode, run_dir), need, run_dir)
    if progress is not None:
        progress(0)
    timed = {}
    for i, imgsz in enumerate(sizes):
        stamps, val = ([], []), ([], [])  # per epoch: batch ends; validation start and end
        model = u.YOLO(model_cfg)
        _pin_threads(model, threads)
        model.add_callback("on_train_batch_end", lambda tr: stamps[tr.epoch].append(time.perf_counter()))
        model.add_callback("on_train_epoch_end", lambda tr: val[0].append(time.perf_counter()))
        model.add_callback("on_fit_epoch_end", lambda tr: val[1].append(time.perf_counter()))
        # the trainer's closing validation of best.pt is not timed (scoring_s stands for it): skip it
        model.add_callback("on_pretrain_routine_end", lambda tr: setattr(tr, "final_eval", lambda: None))
        model.train(**_fit_args(data_yaml, imgsz, batch, workers, 0, precision, run_dir, name=f"size{imgsz}"),
                    epochs=2, close_mosaic=1)
        batch_s = [float(np.median(np.diff(s[warm - 1:]))) for s in stamps]  # batch `warm` + 1 onwards
        val_s = float(np.mean(np.subtract(val[1], val[0])))
        timed[imgsz] = {"batch_s": round(batch_s[0], 3), "batch_s_no_mosaic": round(batch_s[1], 3),
                        "epoch_s": round(batch_s[0] * per_epoch + val_s, 1),
                        "epoch_s_no_mosaic": round(batch_s[1] * per_epoch + val_s, 1), "val_s": round(val_s, 1),
                        # a run ends by scoring training-dev, dev and test at its size
                        "scoring_s": round(val_s * sum(frames[s] for s in SPLITS[1:]) / frames["training-dev"], 1)}
        if progress is not None:
            progress(i + 1)
    recipes = {}
    for name, runs_ in RECIPES.items():
        if all(size in timed for size, _ in runs_):
            s = 0.0
            for size, epochs in runs_:
                plain = _plain_epochs(epochs)
                t = timed[size]
                s += (epochs - plain) * t["epoch_s"] + plain * t["epoch_s_no_mosaic"] + t["scoring_s"]
            recipes[name] = {"runs": " + ".join(f"{e} at {size}" for size, e in runs_), "minutes": round(s / 60, 1)}
    return {"input": mode, "model": model_cfg, "precision": precision, "native_bf16": native_bf16(), "threads": threads,
            "batch": batch, "batches_timed": batches, "train_frames": frames["train"], "batches_per_epoch": per_epoch,
            "sizes": timed, "recipes": recipes, "budget_minutes": RECIPE_BUDGET_MIN}


def _sample_yaml(data_yaml: Path, n: int, where: Path) -> Path:
    """The dataset's yaml with a train split of `n` frames spread evenly over the real one (linked,
    under `where`): a few timed batches then see the split's mix of towns and crowds, where
    Ultralytics' `fraction` would take its first episodes."""
    cfg = yaml.safe_load(data_yaml.read_text())
    root, sample = Path(cfg["path"]), Path(where) / "sample"
    images = sorted((root / cfg["train"]).iterdir())
    shutil.rmtree(sample, ignore_errors=True)
    for kind in ("images", "labels"):
        (sample / kind / "train").mkdir(parents=True)
    for i in np.linspace(0, len(images) - 1, n).round().astype(int):
        image = images[i]
        label = root / "labels" / "train" / f"{image.stem}.txt"
        (sample / "images" / "train" / image.name).symlink_to(image)
        if label.is_file():
            (sample / "labels" / "train" / label.name).symlink_to(label)
    cfg.update(path=str(sample), train="images/train", val=str(root / cfg["val"]))
    for split in ("test", "dev"):  # not read by a training; the sample has no such folders
        cfg.pop(split, None)
    out = Path(where) / f"{data_yaml.stem}-sample.yaml"
    out.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return out


def _init_arch(init: Path, mode: str) -> str:
    """The model yaml of the weights to fine-tune, or a ValueError that says why they cannot be."""
    import torch

    if not init.is_file():
        raise ValueError(f"--init: {init} is missing; pass trained detector weights (e.g. models/detector.pt)")
    try:
        net = torch.load(init, map_location="cpu", weights_only=False)
        net = net.get("ema") or net["model"]
        cfg = net.yaml
    except Exception:  # noqa: BLE001 - any unreadable file gets the same one line
        raise ValueError(f"--init: {init} is not an Ultralytics detector checkpoint; pass a .pt written by "
                         f"`drivestack train detector`") from None
    want = len(CHANNELS[mode])
    if cfg.get("channels", 3) != want:
        raise ValueError(f"--init: {init} takes {cfg.get('channels', 3)} input channels, --input {mode} has {want}; "
                         f"pass weights trained with --input {mode}")
    return Path(cfg.get("yaml_file", "?")).name


def _resumable(last: Path, data: Path, mode: str, run_dir: Path) -> tuple[str, int, int, int, int, str]:
    """The interrupted run's recipe, or a ValueError that says why it cannot go on."""
    import torch

    if not last.is_file():
        raise ValueError(f"--resume: no interrupted {mode} run to resume ({last} is missing); "
                         f"start one without --resume")
    ckpt = torch.load(last, map_location="cpu", weights_only=False)
    if ckpt.get("epoch", -1) < 0:
        raise ValueError(f"--resume: the {mode} run in {run_dir / 'train'} has finished; "
                         f"start a new one without --resume")
    a, run_yaml_file = ckpt["train_args"], Path(ckpt["train_args"]["data"])
    trained_on = Path(yaml.safe_load(run_yaml_file.read_text())["path"]).parent if run_yaml_file.is_file() else None
    if trained_on is not None and trained_on != Path(data).resolve():
        raise ValueError(f"--resume: the {mode} run was training on {trained_on}; pass --data {trained_on}")
    cfg = (ckpt.get("ema") or ckpt["model"]).yaml.get("yaml_file", a["model"])  # a resumed run's args name last.pt
    precision = "bf16" if a.get("amp") == "bf16" else "fp32"
    return Path(cfg).name, int(a["epochs"]), int(a["imgsz"]), int(a["batch"]), int(a["seed"]), precision


def evaluate_split(weights: Path, data_yaml: Path, split: str, imgsz: int = 320) -> dict:
    """mAP50, mAP50-95 and per-class AP50 of `weights` on one split (Ultralytics' COCO-style AP)."""
    u = ultralytics()
    model = u.YOLO(str(weights))
    cfg = yaml.safe_load(Path(data_yaml).read_text())
    if split not in ("train", "val", "test"):  # Ultralytics knows three names; point "test" at the others
        cfg["test"] = f"images/{split}"
        alt = Path(data_yaml).with_name(f"{Path(data_yaml).stem}-{split}.yaml")
        alt.write_text(yaml.safe_dump(cfg, sort_keys=False))
        data_yaml, split = alt, "test"
    r = model.val(data=str(data_yaml), split=split, imgsz=imgsz, batch=16, device="cpu", plots=False, verbose=False,
                  workers=0, project=str(Path(data_yaml).parent), name="val", exist_ok=True)
    names = r.names
    per_class = {names[int(c)]: round(float(r.box.ap50[i]), 4) for i, c in enumerate(r.box.ap_class_index)}
    return {"map50": round(float(r.box.map50), 4), "map50_95": round(float(r.box.map), 4), "per_class_ap50": per_class}
