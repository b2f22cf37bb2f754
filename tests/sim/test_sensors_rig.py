"""The sensor rig in a running world: determinism, independence from traffic, the runner's wiring,
spec validation, odometry noise and weather."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from drivestack.agents.autopilot import AutopilotAgent
from drivestack.errors import UserError
from drivestack.runner import run_episode
from sim.sensors.calibration import Mount
from sim.sensors.frames import DETECTION_CLASSES, CameraFrame, LidarFrame, RadarFrame
from sim.sensors.rig import SensorRig
from sim.sensors.specs import CameraSpec, LidarSpec, OdometrySpec, RadarSpec, check_rig
from sim.types import EgoOdometry
from sim.world import AGENT_EVERY, World

SMALL = [CameraSpec(width=96, height=48), LidarSpec(channels=8, horizontal=256), RadarSpec(), OdometrySpec()]

JUNCTION = {
    "description": "a signalised junction with traffic, for sensor tests",
    "map": {"type": "four_way", "control": "signal", "arm_length": 70},
    "weather": ["day", "dusk", "night", "fog", "rain"],
    "duration_s": 6,
    "ego": {"start": {"lane": "S>J.0", "s": 20}, "goal": {"lane": "J>N.0", "s": 40}, "speed": 6},
    "traffic": {"vehicles": 6, "pedestrians": 4},
}


def drive(world: World, steps: int, rig: SensorRig | None = None) -> list[dict]:
    frames = []
    for _ in range(steps):
        if rig is not None and world.steps % AGENT_EVERY == 0:
            frames.append(rig.capture_world(world))
        world.step(world.autopilot_control())
    return frames


def same(a, b) -> bool:
    if isinstance(a, CameraFrame):
        return (np.array_equal(a.image, b.image) and np.array_equal(a.depth, b.depth)
                and np.array_equal(a.instance, b.instance) and a.boxes == b.boxes)
    if isinstance(a, LidarFrame):
        return np.array_equal(a.points, b.points) and np.array_equal(a.intensity, b.intensity)
    if isinstance(a, RadarFrame):
        return np.array_equal(a.range, b.range) and np.array_equal(a.range_rate, b.range_rate)
    return a == b


def test_same_seed_gives_identical_frames_and_sensors_leave_traffic_alone(make_scenario):
    sc = make_scenario(JUNCTION)
    runs = []
    for _ in range(2):
        w = World(sc, 3, ego_autopilot=True)
        runs.append((w, drive(w, 30, SensorRig(SMALL, w.map, 3))))
    (w1, f1), (w2, f2) = runs
    assert len(f1) == 15
    for a, b in zip(f1, f2):
        assert a.keys() == b.keys() == {"camera", "lidar", "radar", "odometry"}
        assert all(same(a[k], b[k]) for k in a)
    assert not np.array_equal(f1[0]["camera"].image, f1[-1]["camera"].image)
    # the same episode without sensors: the traffic evolves bit for bit the same
    w0 = World(sc, 3, ego_autopilot=True)
    drive(w0, 30)
    for k in ("x", "y", "yaw", "v"):
        assert np.array_equal(getattr(w0.vehicles, k), getattr(w1.vehicles, k))
    assert np.array_equal(w0.peds.x, w1.peds.x)
    # another seed, other noise
    w3 = World(sc, 3, ego_autopilot=True)
    f3 = drive(w3, 2, SensorRig(SMALL, w3.map, 4))
    assert not np.array_equal(f3[0]["camera"].image, f1[0]["camera"].image)


def test_every_weather_renders_and_night_is_darkest(make_scenario):
    mean = {}
    for weather in ("day", "dusk", "night", "fog", "rain"):
        w = World(make_scenario({**JUNCTION, "weather": weather}), 1, ego_autopilot=True)
        f = SensorRig([CameraSpec(width=96, height=48)], w.map, 1).capture_world(w)["camera"]
        assert f.weather == weather and f.image.dtype == np.uint8 and f.image.shape == (48, 96, 3)
        assert all(b.cls in DETECTION_CLASSES for b in f.boxes)
        mean[weather] = f.image.mean()
    assert 15 < mean["night"] < mean["dusk"] < mean["day"] < mean["fog"] < 230
    assert abs(mean["rain"] - mean["day"]) < 40


def test_frames_are_read_only_and_carry_calibration(make_scenario):
    w = World(make_scenario(JUNCTION), 0, ego_autopilot=True)
    f = SensorRig(SMALL, w.map, 0).capture_world(w)
    with pytest.raises(ValueError):
        f["camera"].image[0, 0, 0] = 1
    cam = f["camera"].calib
    assert (cam.width, cam.height) == (96, 48) and cam.fx == pytest.approx(48.0)
    assert f["lidar"].calib.elevations.shape == (8,) and f["lidar"].ring.max() <= 7
    assert isinstance(f["odometry"], EgoOdometry)


def test_odometry_is_noisy_but_unbiased_per_step(make_scenario):
    w = World(make_scenario(JUNCTION), 0, ego_autopilot=True)
    rig = SensorRig([OdometrySpec()], w.map, 0)
    err = []
    for _ in range(200):
        odo = rig.capture_world(w)["odometry"]
        err.append(odo.speed - w.vehicles.v[0] * rig.sensors["odometry"].scale)
    err = np.array(err)
    assert 0.02 < err.std() < 0.1 and abs(err.mean()) < 0.02
    exact = SensorRig([OdometrySpec().noiseless()], w.map, 0).capture_world(w)["odometry"]
    assert exact.speed == pytest.approx(w.vehicles.v[0])


def test_specs_are_validated():
    with pytest.raises(ValueError, match="width"):
        CameraSpec(width=2)
    with pytest.raises(ValueError, match="fov_down_deg"):
        LidarSpec(fov_up_deg=-30)
    with pytest.raises(ValueError, match="duplicate"):
        check_rig([CameraSpec(), CameraSpec()])
    with pytest.raises(ValueError, match="CameraSpec"):
        check_rig([{"type": "camera"}])
    assert CameraSpec(mount=Mount(x=2.0)).calib().T_vehicle_camera[0, 3] == 2.0


class SensingAutopilot(AutopilotAgent):
    """The autopilot's driving, with a rig declared: records what the runner hands it."""

    name = "sensing"

    def __init__(self, specs=SMALL) -> None:
        self.specs, self.seen = specs, []

    def sensors(self):
        return list(self.specs)

    def act(self, obs):
        self.seen.append(obs)
        return super().act(obs)


def test_runner_builds_the_rig_from_the_agent_and_fills_observations(make_scenario, tiny_dict):
    agent = SensingAutopilot()
    record = run_episode(make_scenario(tiny_dict), agent, seed=2)
    assert record["sim_steps"] == len(agent.seen) * AGENT_EVERY
    for obs in agent.seen:
        assert set(obs.sensors) == {"camera", "lidar", "radar"}
        assert obs.sensors["camera"].t == obs.sensors["lidar"].t == obs.t
    # odometry declared: the observation's odometry is the noisy reading, close to the true speed
    err = np.array([o.odometry.speed - o.ego.v for o in agent.seen])
    assert np.all(err != 0) and np.abs(err).max() < 0.3
    with pytest.raises(UserError, match="sensing"):
        run_episode(make_scenario(tiny_dict), SensingAutopilot([CameraSpec(), CameraSpec()]), seed=2)


def test_runs_without_sensors_never_import_open3d(tmp_path):
    code = ("import sys, yaml; from drivestack.runner import run_episode; from sim.scenario import parse_scenario;"
            "sc = parse_scenario({'description': 'x', 'map': {'type': 'straight', 'length': 120}, 'duration_s': 1,"
            "'ego': {'start': {'lane': 'fwd.0', 's': 5}, 'goal': {'lane': 'fwd.0', 's': 100}}}, 'x.yaml');"
            "run_episode(sc, 'autopilot', 0); print('open3d' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
