"""Behaviour cloning, then DAgger rounds, then open-loop and closed-loop metrics.

Deterministic: one seed fixes the split, the subsample, the initial weights, the batch order and
dropout; training runs on a fixed number of threads with torch's deterministic algorithms, and the
DAgger rollouts are pure functions of (scenario, seed, weights).
"""
from __future__ import annotations

import json
import os
import shutil
import time
from concurrent.futures import as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from drivestack.e2e import dataset
from drivestack.e2e.dataset import Frames
from drivestack.e2e.model import SPEED_SCALE, STEER_SCALE, InputSpec, PilotNet, Policy, camera_config, decode
from drivestack.e2e.scenarios import Draw, draw
from drivestack.errors import UserError
from drivestack.workers import process_pool
from sim.route import COMMANDS
from sim.sensors.specs import CameraSpec

STEER_BINS = (0.03, 0.1, 0.2)  # |steer| bin edges [rad] for balanced epochs: straight, gentle, turning, sharp
SPEED_CHANGE_BINS = (-1.5, 1.5)  # target − current speed [m/s]: braking (7 % of expert frames), holding, speeding up


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 8  # behaviour-cloning epochs
    batch_size: int = 64
    lr: float = 1e-3  # AdamW, cosine decay to 0 over each fit
    weight_decay: float = 1e-4
    speed_loss: float = 0.1  # weight of the CILRS speed-prediction loss
    # Frames are drawn with weight count(stratum)^−balance, a stratum being (command, |steer| bin, speed
    # change bin): turns are a minority of driving (right turns 18 % of frames), under a turn command most
    # frames are the straight approach, and braking for a hazard is 7 % of frames; the rare frames are
    # the ones a policy gets wrong in closed loop (`strata`). 0: uniform epochs.
    balance: float = 0.5
    augment: bool = True  # photometric jitter (see `augment`)
    frames: int | None = None  # subsample the expert training frames to this many (None: all)
    val_fraction: float = 0.1  # episodes held out for the open-loop metrics
    dagger_rounds: int = 0
    dagger_episodes: int = 6  # policy rollouts per round
    dagger_epochs: int = 2  # retraining epochs on the aggregate, warm-started, per round
    dagger_max_s: float = 45.0  # sim seconds per rollout at most
    workers: int = 1  # processes for the DAgger rollouts (training itself uses `threads`)
    eval_scenarios: tuple[str, ...] = ("curve_lane_keeping", "town_loop")
    eval_seeds: int = 1  # closed-loop seeds 0 … K−1 per scenario (0: no closed-loop evaluation)
    seed: int = 0
    threads: int = 1  # torch threads for training: 1 unless the machine is idle (DESIGN.md)


def _progress(enabled: bool) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("eta"), TimeRemainingColumn(), console=Console(stderr=True), transient=True,
                    disable=not enabled)


def _targets(f: Frames) -> torch.Tensor:
    return torch.from_numpy(np.stack([f.steer / STEER_SCALE, f.target_speed / SPEED_SCALE], 1).astype(np.float32))


def augment(image: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Photometric jitter per frame: brightness gain 0.75–1.25, tint ±5% per channel, offset ±20
    (of 255). The weathers differ mostly in light, and this keeps the network on shapes rather than
    one weather's brightness. Nothing geometric: a shifted or flipped picture needs another steer."""
    n = len(image)
    gain = torch.empty(n, 1, 1, 1).uniform_(0.75, 1.25, generator=g) * torch.empty(n, 3, 1, 1).uniform_(0.95, 1.05, generator=g)
    return (image.float() * gain + torch.empty(n, 1, 1, 1).uniform_(-20, 20, generator=g)).clamp_(0, 255)


def strata(command: torch.Tensor, steer: torch.Tensor, speed_change: torch.Tensor) -> torch.Tensor:
    """Each frame's stratum for balancing: its command, the bin of |steer| (STEER_BINS) and the bin
    of target speed − speed (SPEED_CHANGE_BINS: braking, holding, speeding up)."""
    s = torch.bucketize(steer.abs(), torch.tensor(STEER_BINS, dtype=steer.dtype))
    dv = torch.bucketize(speed_change, torch.tensor(SPEED_CHANGE_BINS, dtype=speed_change.dtype))
    return (command * (len(STEER_BINS) + 1) + s) * (len(SPEED_CHANGE_BINS) + 1) + dv


def epoch_order(stratum: torch.Tensor, balance: float, g: torch.Generator) -> torch.Tensor:
    """One epoch's frame indices: a permutation, or (balance > 0) len(stratum) draws with
    replacement, weighted count(stratum)^−balance, so that rare strata are seen more often."""
    if not balance:
        return torch.randperm(len(stratum), generator=g)
    counts = torch.bincount(stratum).clamp(min=1).double()
    return torch.multinomial(counts[stratum] ** -balance, len(stratum), replacement=True, generator=g)


def fit(net: PilotNet, frames: Frames, cfg: TrainConfig, epochs: int, bar: Progress, label: str, seed: int) -> list[float]:
    """Train `net` in place on `frames` for `epochs`; returns the mean training loss of each epoch."""
    g = torch.Generator().manual_seed(seed)
    image, speed = torch.from_numpy(frames.image), torch.from_numpy(frames.speed.astype(np.float32))
    command, target = torch.from_numpy(frames.command.astype(np.int64)), _targets(frames)
    groups = strata(command, torch.from_numpy(frames.steer.astype(np.float32)),
                    torch.from_numpy((frames.target_speed - frames.speed).astype(np.float32)))
    steps = -(-len(frames) // cfg.batch_size)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs * steps))
    task = bar.add_task(label, total=epochs * steps)
    losses = []
    net.train()
    for _ in range(epochs):
        order, total = epoch_order(groups, cfg.balance, g), 0.0
        for k in range(steps):
            b = order[k * cfg.batch_size:(k + 1) * cfg.batch_size]
            action, speed_pred = net(augment(image[b], g) if cfg.augment else image[b], speed[b], command[b])
            loss = F.l1_loss(action, target[b]) + cfg.speed_loss * F.l1_loss(speed_pred, speed[b] / SPEED_SCALE)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(b)
            bar.advance(task)
        losses.append(round(total / len(frames), 5))
    bar.remove_task(task)
    return losses


def training_stats(f: Frames) -> dict:
    """What the trivial baseline drives on: mean steer per command, mean speed; and the label means."""
    steer = [float(f.steer[f.command == k].mean()) if np.any(f.command == k) else float(f.steer.mean())
             for k in range(len(COMMANDS))]
    return {"steer_mean": steer, "target_speed_mean": float(f.target_speed.mean()), "accel_mean": float(f.accel.mean()),
            "speed_mean": float(f.speed.mean()),
            "frames_per_command": {c.value: int(np.sum(f.command == k)) for k, c in enumerate(COMMANDS)}}


@torch.inference_mode()
def open_loop(net: PilotNet, f: Frames, stats: dict, batch: int = 256) -> dict:
    """Mean absolute error on `f` of the steer, the target speed and the accel that the low-level
    step makes of it (against the expert's accel), for the network and for the training means."""
    net.eval()
    out = [net(torch.from_numpy(f.image[i:i + batch]), torch.from_numpy(f.speed[i:i + batch].astype(np.float32)),
               torch.from_numpy(f.command[i:i + batch].astype(np.int64)))[0] for i in range(0, len(f), batch)]
    pred = torch.cat(out).numpy()
    steer, accel = decode(pred, f.speed)
    err = {"steer_mae_rad": np.abs(steer - f.steer), "target_speed_mae_mps": np.abs(pred[:, 1] * SPEED_SCALE - f.target_speed),
           "accel_mae_mps2": np.abs(accel - f.accel)}
    result = {"frames": len(f), **{k: float(v.mean()) for k, v in err.items()},
              "mean_baseline_steer_mae_rad": float(np.abs(np.asarray(stats["steer_mean"])[f.command] - f.steer).mean()),
              "mean_baseline_target_speed_mae_mps": float(np.abs(stats["target_speed_mean"] - f.target_speed).mean()),
              "mean_baseline_accel_mae_mps2": float(np.abs(stats["accel_mean"] - f.accel).mean()), "per_command": {}}
    for k, c in enumerate(COMMANDS):
        m = f.command == k
        if m.any():
            result["per_command"][c.value] = {"frames": int(m.sum()), **{n: float(v[m].mean()) for n, v in err.items()}}
    return json.loads(json.dumps(result), parse_float=lambda x: round(float(x), 5))


def closed_loop(policy: Policy, scenarios: tuple[str, ...], seeds: int, bar: Progress) -> dict:
    """Driving score of the policy and of the trivial baseline (`e2e-mean`) on a short evaluation."""
    from drivestack.agents.e2e import E2EAgent, E2EMeanAgent
    from drivestack.runner import run_episode

    runs = [(sc, s) for sc in scenarios for s in range(seeds)]
    task = bar.add_task("closed-loop evaluation", total=2 * len(runs))
    result = {}
    for name, make in (("e2e", E2EAgent), ("e2e-mean", E2EMeanAgent)):
        episodes = []
        for sc, s in runs:
            r = run_episode(sc, make(policy), s)
            episodes.append({k: r[k] for k in ("scenario", "seed", "outcome", "driving_score", "route_completion",
                                               "infraction_penalty", "wall_s")})
            bar.advance(task)
        result[name] = {"driving_score_mean": round(float(np.mean([e["driving_score"] for e in episodes])), 3),
                        "route_completion_mean": round(float(np.mean([e["route_completion"] for e in episodes])), 4),
                        "episodes": episodes}
    bar.remove_task(task)
    return result


def inference_ms(policy: Policy, image: np.ndarray, n: int = 100) -> dict[str, float]:
    """Median cost of one `Policy.act` (crop, resize, network, decode) on one thread: wall time,
    and this thread's CPU time, which a busy machine inflates less (it excludes waiting for a core)."""
    torch.set_num_threads(1)
    wall, cpu = [], []
    for _ in range(n + 5):
        t0, c0 = time.perf_counter(), time.thread_time()
        policy.act(image, 8.0, COMMANDS[0])
        wall.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.thread_time() - c0) * 1e3)
    return {"wall": round(float(np.median(wall[5:])), 3), "cpu": round(float(np.median(cpu[5:])), 3)}


def _subsample(f: Frames, n: int | None, seed: int, root: Path) -> Frames:
    if n is None or n == len(f):
        return f
    if n > len(f):
        raise UserError(f"--frames {n}: {root} holds only {len(f)} training frames (after holding out episodes for "
                        f"validation); record more episodes with `drivestack data e2e`")
    return f.take(np.sort(np.random.default_rng([seed, 1]).choice(len(f), n, replace=False)))


def _rollout(root: str, policy: Policy, draws: Callable[[int, int], Draw], seed: int, i: int, r: int,
             rec) -> dict:
    """One DAgger rollout, saved as episode `i` of `root`; returns its manifest entry (a worker body)."""
    from drivestack.agents.e2e import E2EAgent
    from drivestack.e2e.record import drive

    return dataset.save_episode(Path(root), i, drive(draws(seed, i), rec, driver=E2EAgent(policy), source=f"dagger{r}"))


def dagger_round(policy: Policy, r: int, work: Path, cfg: TrainConfig, bar: Progress,
                 draws: Callable[[int, int], Draw] = draw) -> Frames:
    """Roll the policy out on fresh scenario draws (`draws(seed, index)`); the expert labels the
    states it visits in shadow mode. Returns the new frames, also written to `work/dagger-R/`.

    With `cfg.workers` > 1 the rollouts run in that many processes (spawned, one thread each);
    each is a pure function of (draw, weights), so the frames are the same as with one."""
    from drivestack.e2e.record import RecordConfig

    root = work / f"dagger-{r}"
    if (root / dataset.MANIFEST).exists():
        shutil.rmtree(root)  # this run's own output from an earlier run
    rec = RecordConfig(noise=None, max_s=cfg.dagger_max_s)
    dataset.create(root, camera_config(rec.camera), rec.spec, {"seed": cfg.seed, "source": f"dagger{r}"})
    manifest = dataset.read_manifest(root)
    task = bar.add_task(f"DAgger round {r}: policy rollouts", total=cfg.dagger_episodes)
    seed = 1_000 * (cfg.seed + 1) + r  # draws unlike the recorded dataset's (its seed is small by default)
    args = [(str(root), policy, draws, seed, i, r, rec) for i in range(cfg.dagger_episodes)]
    if cfg.workers <= 1:
        entries = []
        for a in args:
            entries.append(_rollout(*a))
            bar.advance(task)
    else:
        os.environ.setdefault("DRIVESTACK_RAY_THREADS", "1")  # one ray thread per worker; inherited when spawned
        with process_pool(cfg.workers) as pool:
            futures = [pool.submit(_rollout, *a) for a in args]
            for f in as_completed(futures):
                bar.advance(task)
            entries = [f.result() for f in futures]
    manifest["episodes"] = entries
    dataset.write_manifest(root, manifest)
    bar.remove_task(task)
    torch.set_num_threads(cfg.threads)  # the agent pinned one thread for driving
    return dataset.load_frames(root, manifest["camera"], rec.spec)


def train(data: Path, out: Path, cfg: TrainConfig = TrainConfig(), work: Path | None = None,
          progress: bool = True, draws: Callable[[int, int], Draw] = draw) -> dict:
    """Train the e2e policy on the dataset in `data`, save it to `out`, and return (and write
    beside it, as `out` with suffix .json) the metrics. `draws` picks the DAgger scenarios;
    DAgger's rollouts go to `work` (default: runs/OUTNAME-dagger/, out of the models folder)."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    try:
        return _train(data, out, cfg, work or Path("runs") / f"{out.stem}-dagger", progress, draws)
    finally:  # the process's torch settings are shared (the CLI's, a test session's): put them back
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def _train(data: Path, out: Path, cfg: TrainConfig, work: Path, progress: bool, draws) -> dict:
    wall0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True)
    camera, spec = camera_config(CameraSpec()), InputSpec()
    manifest = dataset.read_manifest(data)
    dataset.check_compatible(data, manifest, camera, spec)
    entries = [e for e in manifest["episodes"] if e["frames"] > 0]
    train_entries, val_entries = dataset.split_episodes(entries, cfg.val_fraction, cfg.seed)
    train_f = _subsample(dataset.load_frames(data, camera, spec, train_entries), cfg.frames, cfg.seed, data)
    val_f = dataset.load_frames(data, camera, spec, val_entries) if val_entries else None
    stats = training_stats(train_f)
    policy = Policy(PilotNet(spec), camera, spec, stats)
    rounds = []
    with _progress(progress) as bar:
        t0 = time.perf_counter()
        losses = fit(policy.net, train_f, cfg, cfg.epochs, bar, f"behaviour cloning ({len(train_f)} frames)", cfg.seed)
        fps = cfg.epochs * len(train_f) / (time.perf_counter() - t0)
        rounds.append({"round": 0, "frames": len(train_f), "train_loss": losses,
                       "open_loop": open_loop(policy.net, val_f, stats) if val_f is not None else None})
        for r in range(1, cfg.dagger_rounds + 1):
            new = dagger_round(policy, r, work, cfg, bar, draws)
            train_f = Frames.concat([train_f, new])
            losses = fit(policy.net, train_f, cfg, cfg.dagger_epochs, bar,
                         f"DAgger round {r}: retrain ({len(train_f)} frames)", cfg.seed + r)
            rounds.append({"round": r, "frames": len(train_f), "new_frames": len(new), "train_loss": losses,
                           "open_loop": open_loop(policy.net, val_f, stats) if val_f is not None else None})
        policy.meta = {"config": asdict(cfg), "data": str(data), "frames": len(train_f), "dagger_rounds": cfg.dagger_rounds}
        policy.save(out)
        closed = closed_loop(policy, cfg.eval_scenarios, cfg.eval_seeds, bar) if cfg.eval_seeds else None
    metrics = {
        "weights": str(out),
        "config": asdict(cfg),
        "data": str(data),
        "frames": {"expert_train": rounds[0]["frames"], "train_total": len(train_f),
                   "held_out": len(val_f) if val_f is not None else 0, "episodes": len(entries),
                   "held_out_episodes": len(val_entries)},
        "open_loop": rounds[-1]["open_loop"],
        "closed_loop": closed,
        "rounds": rounds,
        "stats": stats,
        "train_frames_per_s": round(fps, 1),
        "inference_ms": inference_ms(policy, np.zeros((CameraSpec().height, CameraSpec().width, 3), np.uint8)),  # wall, cpu
        "wall_s": round(time.perf_counter() - wall0, 1),
    }
    out.with_suffix(".json").write_text(json.dumps(metrics, indent=1))
    return metrics
