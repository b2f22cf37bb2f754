"""The e2e network: command branching, preprocessing, the low-level step, checkpoints, missing weights."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from drivestack.agents import make_agent
from drivestack.e2e.model import InputSpec, PilotNet, Policy, camera_config, camera_spec, decode, load_policy, preprocess
from drivestack.errors import UserError
from sim.route import COMMANDS
from sim.sensors.specs import CameraSpec
from sim.types import Command


def batch(n: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 66, 200), dtype=torch.uint8, generator=g), torch.full((n,), 6.0)


def test_each_command_is_routed_to_its_own_head():
    torch.manual_seed(0)
    net = PilotNet().eval()
    image, speed = batch(len(COMMANDS))
    command = torch.arange(len(COMMANDS))
    with torch.no_grad():
        base, _ = net(image, speed, command)
        for k in range(len(COMMANDS)):
            net.heads[k][-1].bias += 1.0  # change only head k
            out, _ = net(image, speed, command)
            changed = (out - base).abs().amax(1) > 1e-3
            assert changed.tolist() == [i == k for i in range(len(COMMANDS))], COMMANDS[k]
            net.heads[k][-1].bias -= 1.0
        # one frame under each command: each answer is that command's head
        same = image[:1].expand(len(COMMANDS), -1, -1, -1)
        out, _ = net(same, speed, command)
        for k in range(len(COMMANDS)):
            features = net.features(same[:1].float() / 127.5 - 1)
            joint = net.joint(torch.cat([features, net.speed_in(speed[:1, None] / 10.0)], 1))
            torch.testing.assert_close(out[k], net.heads[k](joint)[0])


def test_preprocess_crops_and_resizes_to_pilotnet_input():
    image = np.zeros((160, 320, 3), np.uint8)
    image[:40] = 255  # sky above the crop: must not reach the network
    image[146:] = 255  # under the crop
    image[40:146, :160] = 100
    x = preprocess(image, InputSpec())
    assert x.shape == (1, 3, 66, 200) and x.dtype == torch.uint8 and x.is_contiguous()
    assert int(x.max()) == 100 and int(x[..., :95].min()) == 100 and int(x[..., 105:].max()) == 0
    assert preprocess(np.stack([image] * 3), InputSpec()).shape == (3, 3, 66, 200)
    with pytest.raises(UserError, match="do not fit a 80-row camera"):
        preprocess(np.zeros((80, 160, 3), np.uint8), InputSpec())


def test_the_low_level_step_reaches_the_target_speed_in_one_second_within_the_vehicle_limits():
    assert decode(np.array([100.0, 100.0]), 0.0) == (0.61, 3.0)
    assert decode(np.array([-100.0, -100.0]), 5.0) == (-0.61, -8.0)
    steer, accel = decode(np.array([0.5, 0.6]), 7.0)  # 0.1 rad; target 6 m/s from 7 m/s
    assert steer == pytest.approx(0.1) and accel == pytest.approx(-1.0)
    steer, accel = decode(np.array([[0.5, 0.6], [-0.5, 0.9]]), np.array([7.0, 8.0]))
    np.testing.assert_allclose(steer, [0.1, -0.1]) and np.testing.assert_allclose(accel, [-1.0, 1.0])


def test_checkpoint_round_trip_gives_the_same_actions(tmp_path):
    torch.manual_seed(1)
    policy = Policy(PilotNet(), stats={"steer_mean": [0.0, 0.1, -0.1, 0.0], "speed_mean": 7.0})
    path = policy.save(tmp_path / "p.pt")
    loaded = load_policy(path)
    image = np.random.default_rng(0).integers(0, 256, (160, 320, 3), dtype=np.uint8)
    for c in Command:
        assert loaded.act(image, 5.0, c) == policy.act(image, 5.0, c)
    assert loaded.stats == policy.stats and loaded.camera == camera_config(CameraSpec())
    assert camera_spec(loaded.camera) == CameraSpec()


def test_missing_or_foreign_weights_are_one_line_errors_naming_the_train_command(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESTACK_E2E_WEIGHTS", str(tmp_path / "none.pt"))
    for name in ("e2e", "e2e-mean"):
        with pytest.raises(UserError) as e:
            make_agent(name)
        msg = str(e.value)
        assert "no weights at" in msg and "none.pt" in msg and "drivestack train e2e" in msg and "\n" not in msg
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    monkeypatch.setenv("DRIVESTACK_E2E_WEIGHTS", str(tmp_path / "junk.pt"))
    with pytest.raises(UserError, match="not a torch checkpoint.*drivestack train e2e"):
        make_agent("e2e")


def test_driving_one_frame_gives_what_the_batched_forward_gives():
    torch.manual_seed(2)
    net = PilotNet().eval()
    image, speed = batch(len(COMMANDS), seed=3)
    command = torch.tensor([3, 0, 2, 1])
    with torch.inference_mode():
        action, _ = net(image, speed, command)
        for i in range(len(COMMANDS)):
            torch.testing.assert_close(net.drive(image[i:i + 1], float(speed[i]), int(command[i])), action[i])
