"""The `drivestack` command line."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from drivestack import cli_e2e, cli_eval, cli_perception, cli_view
from drivestack.errors import UserError
from sim.scenario import ScenarioError

app = typer.Typer(
    help="drivestack: perception, planning and control for autonomous driving, scored in closed loop.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode="rich")
bench_app = typer.Typer(help="Speed benchmarks; each prints its numbers (`--json`: one JSON object).",
                        no_args_is_help=True)
app.add_typer(bench_app, name="bench")
data_app = typer.Typer(help="Render datasets: `data detector` (YOLO frames), `data e2e` (expert driving).", no_args_is_help=True)
train_app = typer.Typer(help="Train models from scratch, offline: `train detector`, `train lights`, `train e2e`.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(train_app, name="train")
console = Console(stderr=True)
out = Console()

DEFAULT_SCENARIO = "town_loop"
DEFAULT_AGENT = "modular"  # the mission's main job: the modular stack driving (README, "Perception")


@app.command()
def run(
    scenario: str = typer.Argument(DEFAULT_SCENARIO, help="A shipped scenario's name or a YAML file."),
    agent: str = typer.Option(DEFAULT_AGENT, "--agent", "-a", help="Who drives: modular (sensors → detector → tracker → planner → MPC; the default), expert (planner + MPC on ground truth), autopilot (the traffic rules, privileged) or e2e (one network from pixels)."),
    seed: int = typer.Option(0, "--seed", "-s", help="Seed for everything random in the episode."),
    out_dir: Optional[Path] = typer.Option(None, "--out", "-o", help="Where to write episode.json \\[default: runs/SCENARIO-AGENT-sSEED]."),
    controller: Optional[str] = typer.Option(None, "--controller", "-c", help="The expert's tracker: mpc (default) or pid (pure pursuit + PID)."),
    video: Optional[Path] = typer.Option(None, "--video", help="Record the viewer's picture to FILE.mp4 or FILE.gif (10 fps, real time)."),
    video_scale: Optional[float] = typer.Option(None, "--video-scale", help="Resize the video's 1280×720 frames \\[default: 1 for MP4, 0.5 for GIF]."),
) -> None:
    """Run one closed-loop episode, print its score and write episode.json."""
    from drivestack.runner import run_episode, write_episode
    from sim.scenario import load_scenario

    sc = load_scenario(scenario)
    if video is not None:
        from drivestack.video import check_video

        check_video(video, video_scale)  # a bad name or scale fails before the episode runs
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed:.0f}/{task.total:.0f} s sim"),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task(f"{sc.name} · {agent} · seed {seed}", total=sc.duration_s)
        if video is None:
            record = run_episode(sc, agent, seed, on_tick=lambda w: bar.update(task, completed=w.t), controller=controller)
        else:
            from drivestack.video import record_episode

            record, frames = record_episode(sc, agent, seed, video, controller=controller, scale=video_scale,
                                            on_tick=lambda w: bar.update(task, completed=w.t))
    path = write_episode(record, sc, out_dir or Path("runs") / f"{sc.name}-{agent}-s{seed}")
    _print_episode(record)
    out.print(f"wrote {path}")
    if video is not None:
        out.print(f"wrote {video} ({frames} frames)")


def _print_episode(r: dict) -> None:
    t = Table(title=f"{r['scenario']} · {r['agent']} · seed {r['seed']}", show_header=False)
    colour = "green" if r["outcome"] == "goal_reached" else "red"
    rows = [
        ("outcome", f"[{colour}]{r['outcome']}[/]"),
        ("driving score", f"{r['driving_score']:.1f}"),
        ("route completion", f"{r['route_completion']:.3f}"),
        ("infraction penalty", f"{r['infraction_penalty']:.3f}"),
        ("collisions", str(len(r["collisions"]))),
        ("red lights / stop signs", f"{r['red_light_violations']} / {r['stop_sign_violations']}"),
        ("off-road fraction", f"{r['offroad_fraction']:.3f}"),
        ("comfort violations", str(r["comfort_violations"])),
        ("distance / sim time", f"{r['distance_m']:.0f} m / {r['duration_s']:.1f} s"),
        ("wall time", f"{r['wall_s']:.1f} s ({r['duration_s'] / max(r['wall_s'], 1e-9):.1f}× real time)"),
    ]
    for k, v in rows:
        t.add_row(k, v)
    out.print(t)


@app.command()
def scenarios() -> None:
    """List the shipped scenarios with their descriptions."""
    from sim.scenario import load_scenario, shipped_scenarios

    t = Table("scenario", "map", "description")
    for path in shipped_scenarios():
        sc = load_scenario(path)
        t.add_row(sc.name, sc.map.type, sc.description)
    out.print(t)


@app.command()
def validate(files: list[Path] = typer.Argument(..., help="Scenario YAML files to check.")) -> None:
    """Check scenario files: schema, lanes, places and routes. Exit 2 on the first bad file."""
    from sim.scenario import load_scenario
    from sim.world import World

    for f in files:
        World(load_scenario(f), 0)  # builds the map and resolves every place and route
        out.print(f"[green]ok[/] {f}")


# batch evaluation: the commands live in drivestack/cli_eval.py
app.command("eval")(cli_eval.eval_cmd)
app.command("compare")(cli_eval.compare_cmd)
app.command("view")(cli_view.view_cmd)  # the pygame viewer: drivestack/cli_view.py
# perception: drivestack/cli_perception.py
data_app.command("detector")(cli_perception.data_detector_cmd)
train_app.command("detector")(cli_perception.train_detector_cmd)
train_app.command("lights")(cli_perception.train_lights_cmd)
data_app.command("e2e")(cli_e2e.data_e2e_cmd)
train_app.command("e2e")(cli_e2e.train_e2e_cmd)
bench_app.command("perception")(cli_perception.bench_perception_cmd)
bench_app.command("train")(cli_perception.bench_train_cmd)
bench_app.command("detectors")(cli_perception.bench_detectors_cmd)
bench_app.command("networks")(cli_perception.bench_networks_cmd)


@bench_app.command("sim")
def bench_sim_cmd(
    scenario: str = typer.Option(DEFAULT_SCENARIO, help="Scenario to step."),
    steps: int = typer.Option(4000, min=100, help="Physics steps to time."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """World steps per second: traffic, pedestrians and scoring, no sensors, headless."""
    from drivestack.bench import bench_sim

    _report(bench_sim(scenario, steps), as_json)


@bench_app.command("stack")
def bench_stack_cmd(
    agent: str = typer.Option("expert", "--agent", "-a", help="Agent to time: expert, modular, e2e or autopilot."),
    scenario: str = typer.Option(DEFAULT_SCENARIO, help="Scenario to drive."),
    seconds: float = typer.Option(60.0, min=1.0, help="Sim time to drive \\[s]."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Agent tick time in closed loop (median, p95) with the perception / planning / control split."""
    from drivestack.bench import bench_stack

    _report(bench_stack(agent, scenario, seconds=seconds), as_json)


@bench_app.command("mpc")
def bench_mpc_cmd(
    solver: str = typer.Option("fatrop", help="NLP solver: fatrop or ipopt."),
    horizon: int = typer.Option(20, min=2, help="MPC stages N."),
    dt: float = typer.Option(0.1, min=0.01, help="MPC stage length \\[s]."),
    budget: float = typer.Option(20.0, min=0.0, help="Time budget per solve \\[ms]; slower solves use the fallback."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """MPC vs pure pursuit + PID on closed-loop manoeuvres: solve time, failures, lateral RMS error."""
    from drivestack.bench import bench_mpc

    if solver not in ("fatrop", "ipopt"):
        raise UserError(f"--solver: unknown solver {solver!r}; available: fatrop, ipopt")
    _report(bench_mpc(solver, horizon, dt, budget), as_json)


@bench_app.command("sensors")
def bench_sensors_cmd(
    scenario: str = typer.Option(DEFAULT_SCENARIO, help="Scenario to drive (ego on autopilot)."),
    frames: int = typer.Option(100, min=10, help="Sensor captures to time (10 Hz, so 2 physics steps each)."),
    seed: int = typer.Option(0, "--seed", "-s"),
    threads: Optional[int] = typer.Option(None, min=0, help="Ray-casting threads (0: every core) \\[default: $DRIVESTACK_RAY_THREADS or 0]."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Camera, lidar and radar cost (median ms per frame) and world steps/s with them at 10 Hz."""
    from drivestack.bench import bench_sensors

    _report(bench_sensors(scenario, frames, seed, threads=threads), as_json)


@app.command()
def render(
    scenario: str = typer.Argument(DEFAULT_SCENARIO, help="A shipped scenario's name or a YAML file."),
    seed: int = typer.Option(0, "--seed", "-s", help="Episode seed."),
    frames: int = typer.Option(3, "--frames", "-k", min=1, help="How many captures to write."),
    out_dir: Path = typer.Option(Path("renders"), "--out", "-o", help="Folder for the PNGs."),
    every: float = typer.Option(2.0, "--every", min=0.1, help="Sim seconds between captures."),
    start: float = typer.Option(0.0, "--start", min=0.0, help="Sim time of the first capture \\[s]."),
    weather: Optional[str] = typer.Option(None, "--weather", help="Override: day, dusk, night, fog or rain."),
) -> None:
    """Drive a scenario on autopilot and write PNGs of what the sensors see: the camera with its
    2D labels, depth, the semantic mask, lidar from above coloured by class, radar returns, and
    lidar + radar projected into the camera."""
    from drivestack.render import render_frames
    from sim.sensors.weather import WEATHERS

    if weather is not None and weather not in WEATHERS:
        raise UserError(f"--weather: unknown weather {weather!r}; use one of {', '.join(WEATHERS)}")
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task(f"render {scenario} · seed {seed}", total=frames)
        paths = render_frames(scenario, seed, frames, out_dir, every, start, weather,
                              progress=lambda k: bar.update(task, completed=k))
    for p in paths:
        out.print(str(p), soft_wrap=True, highlight=False)


def _report(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result))
        return
    t = Table("metric", "value")
    for k, v in result.items():
        t.add_row(k, str(v))
    out.print(t)


def _paragraphs(group: typer.Typer) -> None:
    """Typer (0.29, rich mode) keeps a docstring's line breaks (in the command lists, and in a
    command's help after its first paragraph), and rich then wraps each source line on its own, so
    `--help` came out ragged. Each command's help becomes its docstring with every paragraph on
    one line; the terminal wraps it."""
    import inspect

    for info in group.registered_commands:
        if info.help is None and info.callback is not None:
            doc = inspect.getdoc(info.callback) or ""
            info.help = "\n\n".join(" ".join(p.split()) for p in doc.split("\n\n"))
    for sub in group.registered_groups:
        _paragraphs(sub.typer_instance)


_paragraphs(app)


def main() -> None:
    try:
        app()
    except (UserError, ScenarioError) as e:
        console.print(f"[red]error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
