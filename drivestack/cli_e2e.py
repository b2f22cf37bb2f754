"""`drivestack data e2e` and `drivestack train e2e` (registered on the app in drivestack/cli.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from drivestack.errors import UserError

console = Console(stderr=True)
out = Console()


def data_e2e_cmd(
    episodes: int = typer.Option(..., "--episodes", "-n", min=1, help="Expert episodes to record."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="A new folder for the dataset."),
    seed: int = typer.Option(0, "--seed", "-s", help="Seed of the scenario draws and the noise."),
    every: int = typer.Option(2, "--every", min=1, help="Keep every k-th 10 Hz agent tick."),
    max_seconds: float = typer.Option(45.0, "--max-seconds", min=1.0, help="Sim seconds per episode at most."),
    noise: bool = typer.Option(True, "--noise/--no-noise", help="DART-style perturbation of the executed control."),
    workers: int = typer.Option(1, "--workers", "-w", min=1, max=64, help="Episodes recorded at once (processes)."),
) -> None:
    """Record expert demonstrations for the end-to-end policy: camera input, speed, command and the
    expert's clean control, with the executed control perturbed (DART) so the data shows recoveries."""
    from drivestack.e2e.record import Noise, RecordConfig, record_dataset

    cfg = RecordConfig(every=every, max_s=max_seconds, noise=Noise() if noise else None)
    frames = 0
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("episodes"),
                  TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=console, transient=True) as bar:
        task = bar.add_task("recording", total=episodes)

        def on_episode(entry: dict) -> None:
            nonlocal frames
            frames += entry["frames"]
            bar.update(task, advance=1, description=f"recording · {frames} frames · {entry['scenario']}")

        manifest = record_dataset(out_dir, episodes, seed, cfg, workers, on_episode)
    outcomes: dict[str, int] = {}
    for e in manifest["episodes"]:
        outcomes[e["outcome"]] = outcomes.get(e["outcome"], 0) + 1
    out.print(f"{len(manifest['episodes'])} episodes, {frames} frames → {out_dir} "
              f"(ends: {', '.join(f'{v} {k}' for k, v in sorted(outcomes.items()))})", highlight=False)


def train_e2e_cmd(
    data: Path = typer.Option(..., "--data", "-d", help="A dataset folder from `drivestack data e2e`."),
    out_path: Path = typer.Option(Path("models/e2e.pt"), "--out", "-o", help="Where to save the weights; the metrics go beside them (.json)."),
    frames: Optional[int] = typer.Option(None, "--frames", min=1, help="Subsample the expert training frames to N (a data-size study)."),
    dagger_rounds: int = typer.Option(0, "--dagger-rounds", min=0, help="DAgger rounds after behaviour cloning."),
    dagger_episodes: int = typer.Option(6, "--dagger-episodes", min=1, help="Policy rollouts per DAgger round."),
    epochs: int = typer.Option(8, "--epochs", min=1, help="Behaviour-cloning epochs."),
    dagger_epochs: int = typer.Option(2, "--dagger-epochs", min=1, help="Retraining epochs per DAgger round."),
    batch_size: int = typer.Option(64, "--batch-size", min=1),
    lr: float = typer.Option(1e-3, "--lr", min=0.0, help="AdamW learning rate (cosine decay)."),
    balance: float = typer.Option(0.5, "--balance", min=0.0, max=1.0, help="Sample frames with weight count(stratum)^-B, a stratum being the command, the |steer| bin and the speed-change bin (0: uniform; 1: every stratum equally)."),
    eval_scenarios: str = typer.Option("curve_lane_keeping,town_loop", "--eval-scenarios", help="Closed-loop evaluation scenarios, comma-separated."),
    eval_seeds: int = typer.Option(1, "--eval-seeds", min=0, help="Closed-loop seeds per scenario (0: skip)."),
    seed: int = typer.Option(0, "--seed", "-s", help="Seed of the split, subsample, initial weights and batch order."),
    threads: int = typer.Option(1, "--threads", min=1, max=64, help="torch threads (1 unless the machine is idle)."),
    workers: int = typer.Option(1, "--workers", "-w", min=1, max=64, help="Processes for the DAgger rollouts (same frames as with one)."),
    work: Optional[Path] = typer.Option(None, "--work", help="Folder for the DAgger rollouts \\[default: runs/OUTNAME-dagger/]."),
) -> None:
    """Train the end-to-end policy: behaviour cloning, then DAgger rounds (the policy drives, the
    expert labels in shadow mode, the data is aggregated, the policy retrained); writes the weights
    and a metrics JSON (open-loop error on held-out episodes, closed-loop driving score)."""
    from drivestack.e2e.train import TrainConfig, train
    from sim.scenario import resolve_path

    scenarios = tuple(s.strip() for s in eval_scenarios.split(",") if s.strip())
    for s in scenarios:
        resolve_path(s)  # a bad name fails now, not after training
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, balance=balance, frames=frames, dagger_rounds=dagger_rounds,
                      dagger_episodes=dagger_episodes, dagger_epochs=dagger_epochs, eval_scenarios=scenarios,
                      eval_seeds=eval_seeds, seed=seed, threads=threads, workers=workers)
    if not data.is_dir():
        raise UserError(f"--data {data}: no such folder; record one with `drivestack data e2e --episodes N --out {data}`")
    m = train(data, out_path, cfg, work)
    ol, cl = m["open_loop"] or {}, m["closed_loop"] or {}
    lines = [f"saved {out_path} ({m['frames']['train_total']} training frames, {m['wall_s']:.0f} s)"]
    if ol:
        lines.append(f"held-out open loop: steer MAE {ol['steer_mae_rad']:.4f} rad, target speed MAE "
                     f"{ol['target_speed_mae_mps']:.2f} m/s, accel MAE {ol['accel_mae_mps2']:.2f} m/s² (training means: "
                     f"{ol['mean_baseline_steer_mae_rad']:.4f} rad, {ol['mean_baseline_target_speed_mae_mps']:.2f} m/s, "
                     f"{ol['mean_baseline_accel_mae_mps2']:.2f} m/s²)")
    if cl:
        lines.append(f"closed loop: driving score {cl['e2e']['driving_score_mean']:.1f} "
                     f"(e2e-mean baseline {cl['e2e-mean']['driving_score_mean']:.1f}), route completion "
                     f"{cl['e2e']['route_completion_mean']:.2f}")
    ms = m["inference_ms"]
    lines.append(f"inference {ms['wall']:.2f} ms/frame ({ms['cpu']:.2f} ms CPU); metrics → {out_path.with_suffix('.json')}")
    for line in lines:
        out.print(line, highlight=False, soft_wrap=True)
