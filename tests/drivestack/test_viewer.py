"""The pygame viewer, headless (SDL_VIDEODRIVER=dummy): its frame, its keys, closing it mid-episode."""
from __future__ import annotations

import os
import sys

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import numpy as np  # noqa: E402
import pygame  # noqa: E402
import pytest  # noqa: E402

from drivestack.compose import CAM_RECT, MAP_RECT, SIZE, Layers  # noqa: E402
from drivestack.errors import UserError  # noqa: E402
from drivestack.overlays import agent_overlay  # noqa: E402
from drivestack.viewer import Viewer  # noqa: E402
from test_cli import drivestack, one_line_error  # noqa: E402


@pytest.fixture
def scenario(make_scenario, tiny_dict):
    tiny_dict["duration_s"] = 1.0  # 10 agent ticks
    tiny_dict["ego"]["speed"] = 5.0
    tiny_dict["actors"] = [{"type": "vehicle", "start": {"lane": "fwd.0", "s": 40}, "speed": 3}]
    return make_scenario(tiny_dict)


def post_keys(*keys: int) -> None:
    pygame.display.init()  # the queue needs the video subsystem; the viewer keeps it initialised
    for k in keys:
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=k, mod=0, unicode="", scancode=0))


def test_headless_frame_has_the_layout_size_and_shows_the_scene(scenario):
    v = Viewer(scenario, "expert", seed=0, fps=0, hold=False)
    record = v.run()
    assert record is not None and record["sim_steps"] == 20
    assert v.ticks == 10 and v.episodes == 1
    frame = v.last_frame()
    assert frame.shape == (SIZE[1], SIZE[0], 3) and frame.dtype == np.uint8
    map_px = frame[MAP_RECT.top:MAP_RECT.bottom, MAP_RECT.left:MAP_RECT.right].reshape(-1, 3)
    cam_px = frame[CAM_RECT.top:CAM_RECT.bottom, CAM_RECT.left:CAM_RECT.right].reshape(-1, 3)
    # the map has road, lines, actors, route and plan; the camera a rendered image: many colours each
    assert len(np.unique(map_px, axis=0)) > 20
    assert len(np.unique(cam_px, axis=0)) > 500
    assert np.any(np.all(map_px == (245, 245, 255), axis=1)), "the ego is not drawn"


def test_closing_the_window_mid_episode_returns_cleanly(scenario):
    post = pygame.event.Event(pygame.QUIT)
    pygame.display.init()
    pygame.event.post(post)
    v = Viewer(scenario, "autopilot", seed=0, fps=0)
    assert v.run() is None  # no record: the episode did not finish
    assert v.ticks == 1
    assert not pygame.display.get_init()  # the window is gone


def test_keys_pause_step_restart_and_quit(scenario):
    # SPACE pauses, N steps one tick, R restarts (the episode starts over), Q quits
    post_keys(pygame.K_SPACE, pygame.K_n, pygame.K_r, pygame.K_4, pygame.K_d, pygame.K_q)
    v = Viewer(scenario, "autopilot", seed=0, fps=0)
    assert v.run() is None
    assert v.episodes == 2 and v.ticks == 1  # restarted after the step; quit on the new episode's first tick
    assert v.paused and not v.layers.horizon and v.layers.detections


def test_overlay_reads_what_an_agent_exposes():
    class Plan:
        state = type("S", (), {"value": "follow_lead"})()
        candidates = [np.zeros((5, 2)), np.ones((4, 2))]
        trajectory = type("T", (), {"x": np.arange(5.0), "y": np.zeros(5)})()

    class Agent:
        last = Plan()
        controller = type("C", (), {"last_status": "Solve_Succeeded", "last_plan": np.ones((21, 6))})()
        detections = [{"xyxy": [1, 2, 30, 40], "cls": "car", "conf": 0.9}]

    o = agent_overlay(Agent())
    assert o.behaviour == "follow_lead" and len(o.candidates) == 2 and o.trajectory.shape == (5, 2)
    assert o.horizon.shape == (21, 2) and not o.fallback
    assert o.detections[0].label == "car" and o.detections[0].x2 == 30 and o.detections[0].score == 0.9
    Agent.controller.last_status = "fallback: TimeoutError"
    assert agent_overlay(Agent()).horizon is None  # a stale horizon is not shown
    assert agent_overlay(object()).detections is None


class CameraCruise:
    """Declares a camera and exposes a 'detector' box: what the viewer must show without knowing it."""

    name, privileged, uses_traffic_manager = "camera_cruise", False, False

    def sensors(self):
        from sim.sensors.specs import CameraSpec

        return [CameraSpec(name="front")]

    def reset(self, route, road_map):
        self.detections = []

    def act(self, obs):
        from sim.types import Control

        self.seen = obs.sensors["front"]
        self.detections = [{"x1": 100, "y1": 40, "x2": 220, "y2": 120, "label": "car", "score": 0.8}]
        return Control(0.0, 1.0)


def test_agent_camera_and_detections_are_shown(scenario):
    from drivestack.compose import EpisodeView
    from drivestack.runner import run_episode

    agent = CameraCruise()
    view = EpisodeView(agent, layers=Layers(detections=True))
    run_episode(scenario, view.agent, 0, on_tick=view.tick)
    cam = view.frame()[CAM_RECT.top:CAM_RECT.bottom, CAM_RECT.left:CAM_RECT.right]
    assert np.all(cam == (255, 230, 0), axis=-1).sum() > 300  # the detector's box outline and label
    assert view.sensors._missing == ("lidar", "radar")  # the agent's own camera frame, not a display one
    shown = view.sensors.frames(view.world, view.agent.obs.sensors).camera
    assert shown is agent.seen


def test_view_cli_bad_input_is_one_line(monkeypatch):
    assert "no_such_scenario" in one_line_error(drivestack("view", "no_such_scenario"))
    with pytest.raises(UserError, match="unknown agent 'pilot'"):
        Viewer("town_loop", "pilot")  # before any window opens
    if sys.platform.startswith("linux"):  # no display and no SDL_VIDEODRIVER: say so, don't open an invisible window
        for var in ("SDL_VIDEODRIVER", "DISPLAY", "WAYLAND_DISPLAY"):
            monkeypatch.delenv(var, raising=False)
        assert "no display" in one_line_error(drivestack("view", "town_loop"))
