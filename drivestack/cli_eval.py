"""The `eval` and `compare` commands (registered on the app in drivestack/cli.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from drivestack.errors import UserError

console = Console(stderr=True)
out = Console()

SCENARIOS_ARG = typer.Argument(None, show_default=False,
                               help="Shipped scenario names or YAML files; `all` means every shipped scenario.")
SEEDS_OPT = typer.Option(3, "--seeds", "-k", help="Seeds per scenario and agent: 0 … K−1.")
WORKERS_OPT = typer.Option(None, "--workers", "-w", show_default=False,
                           help="Episodes run at once \\[default: one per CPU core]; 1 runs in this process.")
BACKEND_OPT = typer.Option("local", "--backend", "-b", help="`local` (worker processes) or `ray` (Ray tasks).")
RAY_OPT = typer.Option(None, "--ray-address", show_default=False,
                       help="Ray cluster to join (HOST:PORT, ray://HOST:PORT or auto); without it, --backend ray "
                            "starts a local Ray with --workers CPUs.")
OUT_OPT = typer.Option(None, "--out", "-o", show_default=False,
                       help="Output folder \\[default: runs/eval-DATE-TIME].")
RESUME_OPT = typer.Option(None, "--resume", show_default=False,
                          help="An earlier output folder: skip the episodes it already holds (errors run again) "
                               "and write there.")


def _run(scenarios: list[str] | None, agents: str, seeds: int, workers: int | None, backend: str,
         ray_address: str | None, out_dir: Path | None, resume: Path | None, videos: int = 0):
    from drivestack.evaluate import evaluate

    if not scenarios:
        raise UserError("scenarios: name at least one scenario or `all` (`drivestack scenarios` lists them)")
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("episodes"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                        console=console, transient=True)
    task = progress.add_task("eval", total=None)

    def on_plan(total: int, done: int) -> None:
        progress.start()  # only once the inputs are valid: a bad one gets its error line alone
        progress.update(task, total=total, completed=done)
        if done:
            console.print(f"resuming: {done} of {total} episodes already done", highlight=False)

    def on_result(r: dict) -> None:
        progress.update(task, advance=1, description=f"{r['scenario']} · {r['agent']} · seed {r['seed']}")

    def on_video(v: dict) -> None:
        console.print(f"recorded {v['video']} ({v['frames']} frames)", highlight=False)

    try:
        return evaluate(scenarios, agents, seeds, workers=workers, backend=backend, out=out_dir, resume=resume,
                        ray_address=ray_address, on_plan=on_plan, on_result=on_result, videos=videos,
                        on_video=on_video)
    finally:
        progress.stop()


def _ci(b: dict, nd: int = 1) -> str:
    from drivestack.report import fmt_ci

    return fmt_ci(b["driving_score_mean"], b["driving_score_ci95"], nd)


def _print_summary(result) -> None:
    for agent, blk in result.summary["agents"].items():
        t = Table("scenario", "n", "score [95% CI]", "compl.", "coll. (fault)", "red/stop", "goal", "ends",
                  title=f"agent {agent}", box=box.SIMPLE_HEAD, pad_edge=False)
        for name, b in [*blk["scenarios"].items(), ("all", blk)]:
            ends = ", ".join(f"{v} {k}" for k, v in b["outcomes"].items() if k != "goal_reached")
            t.add_row(name, str(b["episodes"]), _ci(b), f"{b['route_completion_mean']:.2f}",
                      f"{b['collisions']} ({b['at_fault_collisions']})",
                      f"{b['red_light_violations']}/{b['stop_sign_violations']}", str(b["goal_reached"]), ends or "–")
        out.print(t)
    errors = sum(b["errors"] for b in result.summary["agents"].values())
    if errors:
        out.print(f"[yellow]{errors} episodes ended in error[/]; their messages are in results.csv and report.md")
    out.print(f"{len(result.records)} episodes ({result.ran} run now) in {result.wall_s:.1f} s; wrote "
              f"{result.out / 'results.csv'}, summary.json, report.md")
    if result.videos:
        out.print(f"{len(result.videos)} videos of the worst episodes in {result.out / 'videos'}, linked from report.md")


def eval_cmd(
    scenarios: Optional[list[str]] = SCENARIOS_ARG,
    agent: str = typer.Option("autopilot", "--agent", "--agents", "-a",
                              help="Agents to score, comma-separated: registered names or `module:Class` / "
                                   "`file.py:Class`."),
    seeds: int = SEEDS_OPT,
    workers: Optional[int] = WORKERS_OPT,
    backend: str = BACKEND_OPT,
    ray_address: Optional[str] = RAY_OPT,
    out_dir: Optional[Path] = OUT_OPT,
    resume: Optional[Path] = RESUME_OPT,
    videos: Optional[str] = typer.Option(None, "--videos", show_default=False,
                                         help="worst:K — replay the K worst episodes of each agent and record them "
                                              "to OUT/videos/*.mp4; report.md links them."),
) -> None:
    """Score agents on scenarios over seeds: every (scenario, seed, agent) episode, in parallel.

    Writes results.csv (a row per episode), summary.json (means, 95% intervals) and report.md.

    Results do not depend on --backend or --workers; --resume continues a stopped run.
    """
    from drivestack.video import parse_videos

    k = parse_videos(videos)  # a bad spec fails before anything runs
    _print_summary(_run(scenarios, agent, seeds, workers, backend, ray_address, out_dir, resume, k))


def compare_cmd(
    scenarios: Optional[list[str]] = SCENARIOS_ARG,
    agents: str = typer.Option(..., "--agents", "--agent", "-a", show_default=False,
                               help="Two or more agents, A,B[,C…]; each later one is compared with A (B − A, C − A)."),
    seeds: int = SEEDS_OPT,
    workers: Optional[int] = WORKERS_OPT,
    backend: str = BACKEND_OPT,
    ray_address: Optional[str] = RAY_OPT,
    out_dir: Optional[Path] = OUT_OPT,
    resume: Optional[Path] = RESUME_OPT,
) -> None:
    """Agents side by side on the same scenarios and seeds: each one's driving score, and each later
    agent minus the first (B − A, C − A …) with its 95% interval.

    Runs `eval` for all of them (same outputs), then prints the table and writes compare.md and compare.json.

    Differences are paired by scenario and seed.
    """
    from drivestack.report import compare_rows, compare_table, write_compare

    names = list(dict.fromkeys(a.strip() for a in agents.split(",") if a.strip()))
    if len(names) < 2:
        raise UserError(f"--agents: compare takes two or more different agents as A,B[,C…]; got {len(names)} ({agents!r})")
    result = _run(scenarios, ",".join(names), seeds, workers, backend, ray_address, out_dir, resume)
    table = compare_table(result.records, result.summary, names)
    score_head, score, terms_head, terms = compare_rows(table)
    for title, head, rows in (("driving score", score_head, score), ("other terms, all scenarios", terms_head, terms)):
        t = Table(*head, title=title)
        for row in rows:
            t.add_row(*row)
        out.print(t)
    path = write_compare(result.out, table)
    out.print(f"wrote {path} and compare.json beside results.csv, summary.json, report.md")

