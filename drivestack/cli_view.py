"""The `view` command (registered on the app in drivestack/cli.py)."""
from __future__ import annotations

from typing import Optional

import typer
from rich.console import Console

out = Console()


def view_cmd(
    scenario: str = typer.Argument("town_loop", help="A shipped scenario's name or a YAML file."),
    agent: str = typer.Option("autopilot", "--agent", "-a", help="Who drives: a registered agent or `module:Class` / `file.py:Class`."),
    seed: int = typer.Option(0, "--seed", "-s", help="Episode seed."),
    controller: Optional[str] = typer.Option(None, "--controller", "-c", help="The expert's tracker: mpc (default) or pid."),
    fps: float = typer.Option(10.0, "--fps", min=0.0, help="Agent ticks per second; 10 is real time, 0 as fast as it goes."),
    paused: bool = typer.Option(False, "--paused", help="Start paused (N steps one tick)."),
    hold: bool = typer.Option(True, "--hold/--no-hold", help="Keep the window open on the final frame until R or Q."),
) -> None:
    """Watch an episode in a pygame window: the map with lanes, crosswalks, stop lines, lights,
    actors, the route, the planner's candidates and plan and the MPC horizon; the camera with
    ground-truth or detector boxes; lidar and radar from above; a HUD with speed, behaviour,
    command, running score and infractions.

    Keys: SPACE pause, N single step, R restart, Q or Esc quit, D ground-truth/detector boxes,
    1–5 layers (route, candidates, plan, MPC horizon, ids), +/- zoom. Headless: SDL_VIDEODRIVER=dummy.
    """
    from drivestack.viewer import view

    try:
        record = view(scenario, agent, seed, controller, fps, paused, hold)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    if record is None:
        out.print("viewer closed before the episode ended")
    else:
        out.print(f"{record['scenario']} · {record['agent']} · seed {record['seed']}: {record['outcome']}, "
                  f"driving score {record['driving_score']:.1f}")
