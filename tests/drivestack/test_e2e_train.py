"""Training the e2e policy: one epoch on a tiny dataset, --frames, the camera check, DAgger, shipped weights."""
from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from drivestack.e2e import dataset, record
from drivestack.e2e.dataset import Episode
from drivestack.e2e.model import InputSpec, PilotNet, Policy, camera_config, decode, load_policy
from drivestack.e2e.scenarios import Draw
from drivestack.e2e.train import TrainConfig, _progress, dagger_round, train
from drivestack.errors import UserError
from drivestack.runner import run_episode
from sim.scenario import load_scenario
from sim.sensors.specs import CameraSpec

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "e2e.pt"
QUICK = TrainConfig(epochs=1, batch_size=16, eval_seeds=0)


def synthetic(root: Path, episodes: int = 4, frames: int = 30, camera: CameraSpec = CameraSpec()) -> Path:
    """A dataset of random pictures whose labels depend on the command: enough to train on, instantly."""
    rng = np.random.default_rng(0)
    dataset.create(root, camera_config(camera), InputSpec(), {"seed": 0})
    manifest = dataset.read_manifest(root)
    for i in range(episodes):
        command = rng.integers(0, 4, frames)
        steer = np.float32(0.1 * (command == 1) - 0.1 * (command == 2) + 0.01 * rng.standard_normal(frames))
        speed, target = np.float32(rng.uniform(0, 12, frames)), np.float32(rng.uniform(0, 12, frames))
        ep = Episode(rng.integers(0, 256, (frames, 3, 66, 200), dtype=np.uint8), speed, command, steer, target,
                     target - speed, steer, target - speed, np.zeros(frames, bool),
                     {"scenario": f"synthetic{i}", "seed": i, "family": "test", "source": "expert", "outcome": "cut"})
        manifest["episodes"].append(dataset.save_episode(root, i, ep))
    dataset.write_manifest(root, manifest)
    return root


@pytest.fixture
def tiny_draws(make_scenario, tiny_dict):
    tiny_dict["ego"]["speed"] = 6.0
    sc = make_scenario(tiny_dict)
    return lambda seed, i: Draw(sc, i, "test")


def test_a_tiny_dataset_trains_one_epoch_deterministically(tmp_path):
    data = synthetic(tmp_path / "data")
    m = train(data, tmp_path / "a.pt", QUICK, progress=False)
    assert m["frames"]["held_out_episodes"] == 1 and m["frames"]["expert_train"] == 90 and m["frames"]["held_out"] == 30
    assert len(m["rounds"]) == 1 and len(m["rounds"][0]["train_loss"]) == 1 and np.isfinite(m["rounds"][0]["train_loss"][0])
    ol = m["open_loop"]
    assert ol["frames"] == 30 and np.isfinite(ol["steer_mae_rad"]) and np.isfinite(ol["accel_mae_mps2"])
    assert m["closed_loop"] is None and m["inference_ms"]["wall"] > 0 and m["inference_ms"]["cpu"] > 0
    assert json.loads((tmp_path / "a.json").read_text())["open_loop"] == ol
    trained = load_policy(tmp_path / "a.pt").net.state_dict()
    torch.manual_seed(0)
    untrained = PilotNet().state_dict()
    assert any(not torch.equal(trained[k], untrained[k]) for k in trained)  # it learnt something
    train(data, tmp_path / "b.pt", QUICK, progress=False)
    again = load_policy(tmp_path / "b.pt").net.state_dict()
    assert all(torch.equal(trained[k], again[k]) for k in trained)  # same seed, same weights


def test_frames_subsamples_the_training_set(tmp_path):
    data = synthetic(tmp_path / "data")
    assert train(data, tmp_path / "p.pt", TrainConfig(**{**QUICK.__dict__, "frames": 40}), progress=False)["frames"]["expert_train"] == 40
    with pytest.raises(UserError, match="--frames 500: .* holds only 90 training frames"):
        train(data, tmp_path / "p.pt", TrainConfig(**{**QUICK.__dict__, "frames": 500}), progress=False)


def test_a_dataset_from_another_camera_is_refused(tmp_path):
    data = synthetic(tmp_path / "data", camera=CameraSpec(fov_deg=60.0))
    with pytest.raises(UserError, match=r"another camera: fov_deg 60\.0 \(expected 90\.0\).*drivestack data e2e"):
        train(data, tmp_path / "p.pt", QUICK, progress=False)
    with pytest.raises(UserError, match="not an e2e dataset"):
        train(tmp_path, tmp_path / "p.pt", QUICK, progress=False)


def test_a_dagger_round_labels_the_policys_own_states_with_the_expert(tmp_path, tiny_draws, monkeypatch):
    labels = []
    real = record.shadow_expert

    def spy():
        expert = real()
        act = expert.act
        expert.act = lambda obs: labels.append(act(obs)) or labels[-1]
        return expert

    monkeypatch.setattr(record, "shadow_expert", spy)
    torch.manual_seed(0)
    policy = Policy(PilotNet())
    cfg = TrainConfig(dagger_episodes=1, dagger_max_s=2.0)
    new = dagger_round(policy, 1, tmp_path, cfg, _progress(False), tiny_draws)
    manifest = dataset.read_manifest(tmp_path / "dagger-1")
    ep = dataset.load_episode(tmp_path / "dagger-1", manifest["episodes"][0])
    assert len(new) == len(ep) == 10 and ep.info["source"] == "dagger1" and not ep.noisy.any()
    # the executed control is the policy's own output on the recorded input ...
    policy.net.eval()
    with torch.inference_mode():
        action, _ = policy.net(torch.from_numpy(ep.image), torch.from_numpy(ep.speed), torch.from_numpy(ep.command))
    steer, accel = decode(action, ep.speed)
    np.testing.assert_allclose(ep.exec_steer, steer, atol=1e-5)
    np.testing.assert_allclose(ep.exec_accel, accel, atol=1e-5)
    # ... and the label is the shadow expert's, on every tick (the recorded ones are every second)
    assert len(labels) == 20
    np.testing.assert_array_equal(ep.steer, np.float32([c.steer for c in labels[::2]]))
    assert not np.allclose(ep.steer, ep.exec_steer)


def test_dagger_aggregates_and_retrains(tmp_path, tiny_draws):
    data = synthetic(tmp_path / "data")
    cfg = TrainConfig(**{**QUICK.__dict__, "dagger_rounds": 1, "dagger_episodes": 1, "dagger_max_s": 2.0, "dagger_epochs": 1})
    m = train(data, tmp_path / "p.pt", cfg, work=tmp_path / "work", progress=False, draws=tiny_draws)
    assert [r["round"] for r in m["rounds"]] == [0, 1]
    assert m["rounds"][1]["new_frames"] == 10 and m["frames"]["train_total"] == 90 + 10
    assert dataset.read_manifest(tmp_path / "work" / "dagger-1")["episodes"][0]["source"] == "dagger1"
    assert m["rounds"][1]["train_loss"] and m["rounds"][1]["open_loop"]["frames"] == 30


@pytest.mark.skipif(not SHIPPED.exists(), reason="models/e2e.pt is not trained yet (see README: End-to-end baseline)")
@pytest.mark.parametrize("agent", ["e2e", "e2e-mean"])
def test_the_shipped_weights_load_and_drive_a_scenario(agent, monkeypatch):
    monkeypatch.delenv("DRIVESTACK_E2E_WEIGHTS", raising=False)
    sc = load_scenario("curve_lane_keeping").model_copy(update={"duration_s": 8.0})
    rec = run_episode(sc, agent, 0)
    assert rec["agent"] == agent and rec["sim_steps"] > 0 and rec["distance_m"] > 1.0
    assert rec["outcome"] in {"goal_reached", "collision", "timeout", "blocked", "route_deviation"}


def test_augmentation_changes_light_not_geometry():
    from drivestack.e2e.train import augment

    image = torch.zeros(8, 3, 66, 200, dtype=torch.uint8)
    image[..., 100:] = 200  # a vertical edge
    out = augment(image, torch.Generator().manual_seed(0))
    assert out.dtype == torch.float32 and out.shape == image.shape and 0 <= float(out.min()) and float(out.max()) <= 255
    assert len({round(float(o[0, 0, 150]), 3) for o in out}) == 8  # every frame lit differently
    edge = (out[..., 101:] - out[..., :99].mean(-1, keepdim=True)).amin(-1)
    assert bool((edge > 50).all()) and bool((out[..., :99].std(-1) < 1e-4).all())  # the edge stays where it was


@pytest.mark.parametrize("balance, rare_share", [(0.0, 0.1), (0.5, 0.25), (1.0, 0.5)])
def test_balanced_epochs_show_rare_commands_more_often(balance, rare_share):
    """9:1 frames of two commands, each frame drawn with weight n^−b: the rare command gets
    1000^(1−b) / (9000^(1−b) + 1000^(1−b)) of the draws (0.1, 0.25, 0.5)."""
    from drivestack.e2e.train import epoch_order

    command = torch.tensor([0] * 9000 + [2] * 1000)
    order = epoch_order(command, balance, torch.Generator().manual_seed(0))  # the stratum is the command here
    assert len(order) == len(command)
    share = float((command[order] == 2).float().mean())
    assert share == pytest.approx(rare_share, abs=0.02)
    if balance == 0.0:
        assert sorted(order.tolist()) == list(range(len(command)))  # a plain permutation


def test_strata_split_a_command_by_steer_and_braking_so_rare_moments_are_not_drowned():
    """Under one turn command, 800 straight approach frames, 100 in the turn and 100 braking: balanced
    by command alone each gets 10 % of draws; by stratum, sqrt(100) / (sqrt(800) + 2 sqrt(100)) at b = 0.5."""
    from drivestack.e2e.train import epoch_order, strata

    command = torch.full((1000,), 1)
    steer = torch.tensor([0.0] * 800 + [0.15] * 100 + [0.0] * 100)
    dv = torch.tensor([0.0] * 900 + [-3.0] * 100)  # target − current speed [m/s]
    s = strata(command, steer, dv)
    assert len(set(s[:800].tolist())) == len(set(s[800:900].tolist())) == len(set(s[900:].tolist())) == 1
    assert len({int(s[0]), int(s[850]), int(s[950])}) == 3
    assert strata(torch.tensor([1]), torch.tensor([-0.15]), torch.tensor([0.0])) == s[850]  # left and right bin by magnitude
    assert strata(torch.tensor([2]), torch.tensor([0.15]), torch.tensor([0.0])) != s[850]  # another command, another stratum
    assert strata(torch.tensor([1]), torch.tensor([0.0]), torch.tensor([2.0])) not in set(s.tolist())  # speeding up
    order = epoch_order(s, 0.5, torch.Generator().manual_seed(0))
    share = 10 / (800 ** 0.5 + 20)
    assert float((steer[order] > 0.1).float().mean()) == pytest.approx(share, abs=0.02)
    assert float((dv[order] < 0).float().mean()) == pytest.approx(share, abs=0.02)
