"""Recording for the e2e policy: DART noise keeps the clean label; reruns are identical."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from drivestack.e2e import dataset, record
from drivestack.e2e.model import InputSpec
from drivestack.e2e.record import Noise, RecordConfig
from drivestack.e2e.scenarios import MIX, Draw, draw
from drivestack.errors import UserError


@pytest.fixture
def tiny_draw(make_scenario, tiny_dict):
    tiny_dict["ego"]["speed"] = 6.0
    return Draw(make_scenario(tiny_dict), 0, "test")


@pytest.fixture
def expert_log(monkeypatch):
    """Every control the shadow expert returns, in order."""
    log = []
    real = record.shadow_expert

    def spy():
        expert = real()
        act = expert.act

        def logged(obs):
            control = act(obs)
            log.append((control, expert.last.trajectory.at(obs.t + 1.0)[3]))  # and its planned speed in 1 s
            return control

        expert.act = logged
        return expert

    monkeypatch.setattr(record, "shadow_expert", spy)
    return log


def test_dart_noise_perturbs_the_executed_control_and_records_the_clean_label(tiny_draw, expert_log):
    cfg = RecordConfig(every=1, max_s=3.0, noise=Noise(episode_share=1.0))
    ep = record.drive(tiny_draw, cfg)
    assert len(ep) == len(expert_log) == 30 and ep.noisy.all() and ep.info["noise"]
    # the label is exactly what the expert asked for ...
    np.testing.assert_array_equal(ep.steer, np.float32([c.steer for c, _ in expert_log]))
    np.testing.assert_array_equal(ep.accel, np.float32([c.accel for c, _ in expert_log]))
    np.testing.assert_array_equal(ep.target_speed, np.float32([v for _, v in expert_log]))
    assert np.abs(ep.target_speed - ep.speed).max() > 0.1  # a target, not a copy of the speed
    # ... while the car executed something else: correlated pushes of about the configured size
    push = ep.exec_steer - ep.steer
    assert 0.005 < push.std() < 0.05 and np.abs(ep.exec_accel - ep.accel).max() > 0.1
    assert np.corrcoef(push[:-1], push[1:])[0, 1] > 0.3

    expert_log.clear()
    clean = record.drive(tiny_draw, replace(cfg, noise=None))
    np.testing.assert_array_equal(clean.exec_steer, clean.steer)
    np.testing.assert_array_equal(clean.exec_accel, clean.accel)
    assert not clean.noisy.any()
    assert not np.allclose(clean.steer, ep.steer)  # the noise moved the car, so the expert had to correct


def test_recorded_frames_are_the_network_input_and_reruns_are_identical(tiny_draw):
    cfg = RecordConfig(every=3, max_s=2.0)
    a, b = record.drive(tiny_draw, cfg), record.drive(tiny_draw, cfg)
    assert len(a) == 7 and a.image.shape == (7, 3, 66, 200) and a.image.dtype == np.uint8
    assert a.image.std() > 5  # a real picture, not a blank
    for k in dataset.Episode.ARRAYS:
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))


def test_no_frames_near_the_goal(tiny_draw):
    """The expert brakes for a goal the camera cannot see: frames closer than `goal_margin` to it
    would teach stopping for nothing. The tiny route is 115 m; at 6 m/s the car comes within 100 m
    of the goal after about 2.5 s."""
    cfg = RecordConfig(every=1, max_s=3.0, noise=None, goal_margin=0.0)
    full, cut = record.drive(tiny_draw, cfg), record.drive(tiny_draw, replace(cfg, goal_margin=100.0))
    assert len(full) == 30 and 15 < len(cut) < 28
    np.testing.assert_array_equal(cut.steer, full.steer[:len(cut)])  # the first frames, the same ones


def test_dataset_manifest_records_the_camera_and_round_trips(tmp_path, tiny_draw, monkeypatch):
    monkeypatch.setattr(record, "draw", lambda seed, i: tiny_draw)
    manifest = record.record_dataset(tmp_path / "d", 2, cfg=RecordConfig(max_s=1.0))
    assert manifest["camera"]["width"] == 320 and manifest["camera"]["height"] == 160
    assert manifest["input"] == {"crop_top": 40, "crop_bottom": 146, "height": 66, "width": 200}
    assert [e["frames"] for e in manifest["episodes"]] == [5, 5]
    f = dataset.load_frames(tmp_path / "d", manifest["camera"], InputSpec())
    assert len(f) == 10 and f.episode.tolist() == [0] * 5 + [1] * 5
    with pytest.raises(UserError, match="already holds an e2e dataset"):
        record.record_dataset(tmp_path / "d", 1)


def test_scenario_draws_are_deterministic_and_cover_every_family():
    draws = [draw(0, i) for i in range(40)]
    assert {d.family for d in draws} == set(MIX)
    again = draw(0, 7)
    assert again.scenario == draws[7].scenario and again.seed == draws[7].seed
    assert draw(1, 7).scenario != draws[7].scenario or draw(1, 7).seed != draws[7].seed
    assert all(d.seed >= 10_000 for d in draws if d.family == "shipped")  # never an evaluation seed


class GivesUp:
    """A stand-in expert that brakes to a standstill and declares an emergency stop from t = 0.5 s,
    `d` metres off the route."""

    def __init__(self, d: float) -> None:
        self.d, self.last = d, None

    def reset(self, route, road_map) -> None:
        pass

    def act(self, obs):
        from types import SimpleNamespace

        from sim.types import Control

        stop = SimpleNamespace(at=lambda t: (0.0, 0.0, 0.0, 0.0, 0.0))  # a plan to stand still
        self.last = SimpleNamespace(emergency=obs.t >= 0.5 - 1e-9, d=self.d, S=0.0, trajectory=stop)
        return Control(0.0, -3.0)


def test_an_expert_stuck_off_its_lane_ends_the_episode_and_loses_the_stop(tiny_draw, monkeypatch):
    cfg = RecordConfig(every=1, max_s=3.0, noise=None, stuck_s=1.0)
    monkeypatch.setattr(record, "shadow_expert", lambda: GivesUp(d=1.2))
    ep = record.drive(tiny_draw, cfg)
    assert ep.info["outcome"] == "expert_stuck" and len(ep) == 5  # ticks before the emergency began
    monkeypatch.setattr(record, "shadow_expert", lambda: GivesUp(d=0.0))  # on its lane: waiting, kept
    ep = record.drive(tiny_draw, cfg)
    assert ep.info["outcome"] == "cut" and len(ep) == 30
