"""`drivestack train detector`: a nano YOLO built from yaml, trained from scratch on a rendered dataset.

Everything it writes stays in the project (runs go under `--runs`, settings under `.yolo/`). The
weights land at `--out` with a metrics JSON beside them (`detector.pt` → `detector.json`).
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Callable

import yaml

from perception.dataset import SPLITS, load_manifest
from perception.fusion import CHANNELS
from perception.yolo import ultralytics

PRECISIONS = ("auto", "fp32", "bf16")


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
                   precision: str = "auto", init: Path | None = None) -> dict:
    """Train, copy the best weights to `out`, score them on every held-out split, write the JSON.

    `resume` continues this input mode's interrupted run from its last epoch, with the recipe
    (epochs, model, image size, batch, seed, precision) its checkpoint holds: a recipe can take
    hours here. `precision` "auto" is bf16 autocast where the CPU has native bf16, else fp32. `init`
    fine-tunes trained weights (their architecture; `model_cfg` is ignored) instead of starting from
    scratch: how a detector trained at one image size learns another in a few epochs."""
    manifest = load_manifest(data)
    if init is not None and resume:
        raise ValueError("--init and --resume: a resumed run continues its own weights; pass one of them")
    if init is not None:
        model_cfg = _init_arch(Path(init), mode)
    precision = resolve_precision(precision)
    u = ultralytics()
    _cpu_autocast()
    run_dir = Path(runs).resolve() / mode
    if resume:
        last = run_dir / "train" / "weights" / "last.pt"
        model_cfg, epochs, imgsz, batch, seed, precision = _resumable(last, data, mode, run_dir)
    data_yaml = run_yaml(data, mode, run_dir)
    model = u.YOLO(str(last) if resume else str(init) if init is not None else model_cfg)
    import torch

    # Ultralytics pins torch to cpu_count − 1 threads (1 here) and re-pins it whenever it selects a
    # device (every validation); training owns the machine, so take `threads` at every epoch start
    for event in ("on_pretrain_routine_end", "on_train_epoch_start"):
        model.add_callback(event, lambda tr: torch.set_num_threads(threads))
    if batch_progress is not None:
        model.add_callback("on_train_batch_end", batch_progress)
    if progress is not None:
        model.add_callback("on_fit_epoch_end", lambda tr: progress(tr.epoch + 1, tr.epochs, dict(tr.metrics)))
    t0 = time.perf_counter()
    if resume:
        model.train(resume=True, data=str(data_yaml), workers=workers)
    else:
        model.train(data=str(data_yaml), epochs=epochs, imgsz=imgsz, batch=batch, device="cpu", workers=workers,
                    seed=seed, deterministic=True, plots=False, amp="bf16" if precision == "bf16" else False,
                    project=str(run_dir), name="train",
                    exist_ok=True, close_mosaic=max(1, epochs // 5), warmup_epochs=min(3.0, epochs / 10),
                    patience=max(epochs, 100), verbose=False)
    train_s = time.perf_counter() - t0
    best = Path(model.trainer.best)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(best, out)
    metrics = {"input": mode, "channels": len(CHANNELS[mode]), "model": model_cfg, "epochs": epochs, "imgsz": imgsz,
               "batch": batch, "seed": seed, "precision": precision, "train_s": round(train_s, 1),
               "resumed": resume,  # then train_s is this process's part
               "init": str(init) if init is not None else None,
               "frames": {s: manifest["splits"][s]["frames"] for s in SPLITS}, "splits": {}}
    for split in ("training-dev", "dev", "test"):
        metrics["splits"][split] = evaluate_split(out, data_yaml, split, imgsz)
    out.with_suffix(".json").write_text(json.dumps(metrics, indent=2))
    return metrics


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
