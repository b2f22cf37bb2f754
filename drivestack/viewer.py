"""`drivestack view`: watch an episode in a pygame window, with pause, single step, layer toggles,
restart and quit. The picture is `drivestack.compose`'s, the same as in the videos.

Runs headless with `SDL_VIDEODRIVER=dummy` (the tests do). Closing the window or pressing Q ends
the viewer cleanly at any moment; the episode is then simply not finished.
"""
from __future__ import annotations

import os
import sys

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import numpy as np  # noqa: E402
import pygame  # noqa: E402

from drivestack.agents import make_agent  # noqa: E402
from drivestack.compose import SIZE, EpisodeView, Layers  # noqa: E402
from drivestack.errors import UserError  # noqa: E402
from drivestack.runner import run_episode  # noqa: E402
from sim.scenario import Scenario, load_scenario  # noqa: E402

KEYS_HELP = "SPACE pause  N step  R restart  Q quit  D detector/GT  1 route 2 cand. 3 plan 4 MPC 5 ids  +/- zoom"
LAYER_KEYS = {pygame.K_1: "route", pygame.K_2: "candidates", pygame.K_3: "trajectory", pygame.K_4: "horizon",
              pygame.K_5: "ids", pygame.K_d: "detections"}
ZOOM = 1.25
HEADLESS_DRIVERS = ("dummy", "offscreen")
NO_DISPLAY = ("view: no display to open a window on; set SDL_VIDEODRIVER=dummy to run headless, or record the "
              "same picture with `drivestack run ... --video FILE.mp4`")


class _Quit(Exception):
    """The window was closed or Q pressed."""


class _Restart(Exception):
    """R pressed: run the episode again from the start."""


class Viewer:
    """An interactive window over `run_episode`; `run()` returns the last finished episode's record
    (None if the viewer was closed before an episode finished)."""

    def __init__(self, scenario: Scenario | str, agent: str = "autopilot", seed: int = 0,
                 controller: str | None = None, fps: float = 10.0, paused: bool = False, hold: bool = True) -> None:
        self.scenario = load_scenario(scenario) if isinstance(scenario, str) else scenario
        self.agent_name, self.controller, self.seed = agent, controller, seed
        make_agent(agent, controller)  # a bad agent or controller fails here, before a window opens
        self.fps, self.paused, self.hold = fps, paused, hold
        self.layers = Layers()
        self.ppm = 7.0  # map zoom [px/m], kept across restarts
        self.view: EpisodeView | None = None
        self.ticks = 0  # agent ticks shown in the current episode
        self.episodes = 0  # episodes started (restarts included)
        self._step = False
        self._dirty = False
        self.window: pygame.Surface | None = None

    # ---- the loop -----------------------------------------------------------------------------------
    def _open_window(self) -> None:
        """Open the window; a machine without a display is an error unless headless was asked for
        (SDL would otherwise fall back to an invisible window and wait for keys forever)."""
        asked = os.environ.get("SDL_VIDEODRIVER")
        if not asked and sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                                   or os.environ.get("WAYLAND_DISPLAY")):
            raise UserError(NO_DISPLAY)
        try:
            pygame.display.init()
            self.window = pygame.display.set_mode(SIZE)
        except pygame.error as e:
            pygame.display.quit()
            raise UserError(f"{NO_DISPLAY} ({e})") from None
        self.headless = pygame.display.get_driver() in HEADLESS_DRIVERS
        if self.headless and not asked:
            pygame.display.quit()
            raise UserError(NO_DISPLAY)
        if self.headless:  # nobody can press a key: neither start paused nor hold the final frame
            self.paused = self.hold = False

    def run(self) -> dict | None:
        self._open_window()
        pygame.display.set_caption(f"drivestack · {self.scenario.name} · {self.agent_name} · seed {self.seed}")
        self.clock = pygame.time.Clock()
        record = None
        try:
            while True:
                try:
                    record = self._episode()
                except _Restart:
                    continue
                if not self.hold or not self._hold_end(record):
                    return record
        except _Quit:
            return record
        finally:
            pygame.display.quit()

    def _episode(self) -> dict:
        self.episodes += 1
        self.ticks = 0
        self.view = EpisodeView(make_agent(self.agent_name, self.controller),
                                f"{self.scenario.name} · {self.agent_name} · seed {self.seed}", self.layers, KEYS_HELP)
        return run_episode(self.scenario, self.view.agent, self.seed, on_tick=self._on_tick)

    def _on_tick(self, world) -> None:
        self.view.tick(world)
        self.view.composer.ppm = self.ppm
        self.ticks += 1
        self._show()
        self._events()
        while self.paused and not self._step:
            self.clock.tick(30)
            self._events()
            if self._dirty:
                self._show()
        self._step = False
        if self.fps > 0:
            self.clock.tick(self.fps)

    def _hold_end(self, record: dict) -> bool:
        """Show the final frame until R (True: run again) or Q / closing the window (False)."""
        self._show(f"{record['outcome']} · score {record['driving_score']:.1f}")
        while True:
            try:
                self._events()
            except _Restart:
                return True
            if self._dirty:
                self._show(f"{record['outcome']} · score {record['driving_score']:.1f}")
            self.clock.tick(30)

    # ---- drawing and keys -------------------------------------------------------------------------------
    def _show(self, status: str | None = None) -> None:
        if status is None:
            status = "PAUSED" if self.paused else ""
        self.window.blit(self.view.draw(status), (0, 0))
        pygame.display.flip()
        self._dirty = False

    def _events(self) -> None:
        """Handle queued events one at a time (so that the ones after a restart stay queued)."""
        while True:
            e = pygame.event.poll()
            if e.type == pygame.NOEVENT:
                return
            if e.type == pygame.QUIT:
                raise _Quit
            if e.type == pygame.KEYDOWN:
                self._key(e.key)

    def _key(self, key: int) -> None:
        if key in (pygame.K_q, pygame.K_ESCAPE):
            raise _Quit
        if key == pygame.K_r:
            raise _Restart
        if key == pygame.K_SPACE:
            self.paused = not self.paused
        elif key in (pygame.K_n, pygame.K_RIGHT):
            self.paused, self._step = True, True
        elif key in LAYER_KEYS:
            name = LAYER_KEYS[key]
            setattr(self.layers, name, not getattr(self.layers, name))
        elif key in (pygame.K_PLUS, pygame.K_EQUALS, pygame.K_KP_PLUS, pygame.K_MINUS, pygame.K_KP_MINUS):
            zoom_in = key in (pygame.K_PLUS, pygame.K_EQUALS, pygame.K_KP_PLUS)
            self.ppm = float(np.clip(self.ppm * (ZOOM if zoom_in else 1 / ZOOM), 1.0, 40.0))
            self.view.composer.ppm = self.ppm
        self._dirty = True

    def last_frame(self) -> np.ndarray | None:
        """The last picture shown, H×W×3 uint8 (also after the window has closed)."""
        return None if self.view is None or self.view.composer is None else self.view.composer.array()


def view(scenario: Scenario | str, agent: str = "autopilot", seed: int = 0, controller: str | None = None,
         fps: float = 10.0, paused: bool = False, hold: bool = True) -> dict | None:
    """Open the viewer; returns the last finished episode's record, or None if closed before the end."""
    return Viewer(scenario, agent, seed, controller, fps, paused, hold).run()
