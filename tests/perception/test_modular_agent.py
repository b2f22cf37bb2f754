"""The modular agent with the shipped detector drives a shipped scenario, from sensors alone."""
from __future__ import annotations

import pytest

from drivestack.agents import make_agent
from drivestack.errors import UserError
from drivestack.runner import run_episode


def test_modular_agent_completes_a_scenario_without_infractions():
    agent = make_agent("modular")
    assert agent.privileged is False  # it never gets the world
    r = run_episode("curve_lane_keeping", agent, 0)
    assert r["outcome"] == "goal_reached"
    assert r["collisions"] == [] and r["red_light_violations"] == 0 and r["stop_sign_violations"] == 0
    assert r["driving_score"] > 95
    assert agent.timing["detector"] > 0  # the detector ran on the last tick


def test_modular_agent_tracks_the_lead_car(monkeypatch):
    """On lead_hard_brake the tracker holds the lead car ahead of the ego for long stretches.

    With the shipped (under-trained) detector the lead is lost and re-acquired a few times, so
    this asks for one id over ≥ 10 s, not one id for the whole episode (README, Known gaps)."""
    agent = make_agent("modular")
    ids = []
    act = agent.act

    def spy(obs):
        control = act(obs)
        ids.extend(tr.id for tr in agent.tracks  # in the ego's lane (the road runs along x), ahead
                   if tr.cls == "car" and 5 < tr.x[0] - obs.ego.x < 60 and abs(tr.x[1] - obs.ego.y) < 1.5)
        return control

    monkeypatch.setattr(agent, "act", spy)
    run_episode("lead_hard_brake", agent, 0)
    assert len(ids) > 50  # seen on most ticks
    assert max(ids.count(i) for i in set(ids)) >= 100  # one id for 100 ticks (10 s)


def test_missing_weights_is_a_user_error(tmp_path):
    from drivestack.agents.modular import ModularAgent

    with pytest.raises(UserError, match="drivestack train detector"):
        ModularAgent(weights=str(tmp_path / "missing.pt"))


def test_the_detector_backend_comes_from_the_environment_and_is_checked(monkeypatch):
    from drivestack.agents.modular import ModularAgent

    monkeypatch.delenv("DRIVESTACK_DETECTOR_BACKEND", raising=False)
    assert ModularAgent().detector.backend == "onnx"
    monkeypatch.setenv("DRIVESTACK_DETECTOR_BACKEND", "torch")  # spawned eval workers inherit it
    assert ModularAgent().detector.backend == "torch"
    assert ModularAgent(backend="onnx").detector.backend == "onnx"
    monkeypatch.setenv("DRIVESTACK_DETECTOR_BACKEND", "tensorrt")
    with pytest.raises(UserError, match="unknown 'tensorrt'; use one of torch, onnx"):
        ModularAgent()


def test_the_zoom_pass_is_off_unless_the_environment_turns_it_on(monkeypatch):
    from drivestack.agents.modular import ModularAgent

    monkeypatch.delenv("DRIVESTACK_DETECTOR_ZOOM", raising=False)
    assert not ModularAgent().detector.zoom
    monkeypatch.setenv("DRIVESTACK_DETECTOR_ZOOM", "1")  # spawned eval workers inherit it
    assert ModularAgent().detector.zoom
    assert not ModularAgent(zoom=False).detector.zoom


def test_the_detector_sees_the_image_upscaled_unless_the_environment_says_otherwise(monkeypatch):
    from drivestack.agents.modular import ModularAgent
    from perception.detector import IMGSZ

    monkeypatch.delenv("DRIVESTACK_DETECTOR_IMGSZ", raising=False)
    assert ModularAgent().detector.imgsz == IMGSZ == 448
    monkeypatch.setenv("DRIVESTACK_DETECTOR_IMGSZ", "320")  # the camera's own size, for an A/B eval
    assert ModularAgent().detector.imgsz == 320
    assert ModularAgent(imgsz=480).detector.imgsz == 480
    monkeypatch.setenv("DRIVESTACK_DETECTOR_IMGSZ", "big")
    with pytest.raises(UserError, match="DRIVESTACK_DETECTOR_IMGSZ: 'big' is not a whole number"):
        ModularAgent()


def test_the_lidar_outline_fit_is_on_unless_the_environment_turns_it_off(monkeypatch):
    from drivestack.agents.modular import ModularAgent

    monkeypatch.delenv("DRIVESTACK_LIFT_OUTLINE", raising=False)
    assert ModularAgent().outline
    monkeypatch.setenv("DRIVESTACK_LIFT_OUTLINE", "0")
    assert not ModularAgent().outline and ModularAgent(outline=True).outline


def test_the_detector_weights_come_from_the_environment(monkeypatch, tmp_path):
    from drivestack.agents.modular import ModularAgent
    from perception.detector import DEFAULT_WEIGHTS

    monkeypatch.delenv("DRIVESTACK_DETECTOR_WEIGHTS", raising=False)
    default = ModularAgent().detector
    assert default.path.name == "detector.pt"
    assert len(default.model.model.stride) == 4  # the P2: a stride-4 output besides 8, 16 and 32
    yolo11n = DEFAULT_WEIGHTS["fused"].with_name("detector_yolo11n.pt")
    monkeypatch.setenv("DRIVESTACK_DETECTOR_WEIGHTS", str(yolo11n))  # spawned eval workers inherit it
    assert len(ModularAgent().detector.model.model.stride) == 3
    monkeypatch.setenv("DRIVESTACK_DETECTOR_WEIGHTS", str(tmp_path / "missing.pt"))
    with pytest.raises(UserError, match="missing.pt: detector weights not found"):
        ModularAgent()


def test_the_lidar_branch_runs_on_its_own_thread_while_the_network_runs(monkeypatch):
    """The lidar-only work (rear and side view, the points' projection) needs no detection, so it
    starts before the network and runs beside it: the network here waits until it has begun."""
    import threading

    from sim.scenario import load_scenario
    from sim.sensors.rig import build_rig
    from sim.world import World

    agent = make_agent("modular")
    begun, threads = threading.Event(), []
    view, detect = agent._lidar_view, agent.detector

    def lidar_view(*args):
        threads.append(threading.current_thread())
        begun.set()
        return view(*args)

    def detector(image):
        assert begun.wait(10), "the lidar branch had not begun while the network ran"
        return detect(image)

    monkeypatch.setattr(agent, "_lidar_view", lidar_view)
    monkeypatch.setattr(agent, "detector", detector)
    world = World(load_scenario("curve_lane_keeping"), 0)
    agent.reset(world.route, world.map)
    rig = build_rig(agent.sensors(), world)
    for _ in range(3):
        begun.clear()
        world.step(agent.act(rig.observe(world, world.observe())))
    assert len(threads) == 3 and threading.main_thread() not in threads
    assert agent.timing["lidar_branch"] > 0  # its time is reported apart: it is not on the tick's path
