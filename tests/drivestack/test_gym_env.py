"""The Gymnasium env: registration, check_env, determinism, reward, vector envs, bad input."""
from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import warnings  # noqa: E402

import gymnasium  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from gymnasium.utils.env_checker import check_env  # noqa: E402

import drivestack  # noqa: E402,F401  (registers drivestack/Drive-v0)
from drivestack.errors import UserError  # noqa: E402
from drivestack.gym_env import DriveEnv  # noqa: E402
from sim.scenario import ScenarioError  # noqa: E402
from sim.world import World  # noqa: E402

ENV = "drivestack/Drive-v0"


@pytest.fixture
def scenario(make_scenario, tiny_dict):
    tiny_dict["traffic"] = {"vehicles": 2, "pedestrians": 0}
    return make_scenario(tiny_dict)


def test_check_env_passes_without_warnings(scenario):
    env = gymnasium.make(ENV, scenario=scenario, seed=1, render_mode="rgb_array")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)  # spaces, seeding, determinism, data reuse, both render modes, close
    assert [str(w.message) for w in caught] == []
    assert set(env.observation_space.spaces) == {"camera", "lidar", "radar", "ego", "command"}
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (720, 1280, 3) and frame.std() > 10
    env.close()


def test_reset_is_deterministic_and_matches_drivestack_run(scenario):
    env = gymnasium.make(ENV, scenario=scenario)
    actions = np.array([[0.0, 1.0], [0.05, 0.5], [0.0, -0.2]], np.float32)

    def rollout(seed):
        obs, _ = env.reset(seed=seed)
        out = [obs]
        for a in actions:
            obs, reward, *_ = env.step(a)
            out.append((obs, reward))
        return out

    a, b = rollout(7), rollout(7)
    from gymnasium.utils.env_checker import data_equivalence

    assert data_equivalence(a, b, exact=True)
    c = rollout(8)
    assert not np.array_equal(a[0]["camera"], c[0]["camera"])  # another seed: other noise and traffic
    # reset(seed=s) is the episode of `drivestack run --seed s`: the same world at t = 0
    env.reset(seed=8)
    mine, ref = env.unwrapped.world.vehicles, World(scenario, 8).vehicles
    assert np.array_equal(mine.x, ref.x) and np.array_equal(mine.y, ref.y) and len(mine.x) > 1
    # reset() without a seed after a seeded one continues deterministically, and differs from it
    env.reset(seed=3)
    s1 = env.reset()[1]["world_seed"]
    env.reset(seed=3)
    assert env.reset()[1]["world_seed"] == s1 != 3
    env.close()


def test_reward_is_negative_on_a_collision(make_scenario, tiny_dict):
    tiny_dict["ego"]["speed"] = 8.0
    tiny_dict["actors"] = [{"type": "parked", "at": {"lane": "fwd.0", "s": 25}}]
    env = gymnasium.make(ENV, scenario=make_scenario(tiny_dict), observations=["ego"])
    env.reset(seed=0)
    rewards, terminated, truncated = [], False, False
    while not (terminated or truncated):
        _, reward, terminated, truncated, info = env.step(np.array([0.0, 1.0], np.float32))
        rewards.append(reward)
    assert terminated and not truncated and info["outcome"] == "collision_vehicle"
    assert rewards[-1] < 0 and all(r > 0 for r in rewards[:-1])  # progress, then the at-fault crash
    # the return telescopes: 100 × route completion − 100 × (1 − 0.60) for the vehicle
    assert sum(rewards) == pytest.approx(100 * info["route_completion"] - 40.0)
    env.close()


def test_actions_map_to_the_vehicle_limits(scenario):
    env = gymnasium.make(ENV, scenario=scenario, observations=("ego", "command")).unwrapped
    assert env.action_to_control([1, 1]) == env.action_to_control([5, 5])  # clipped to the space
    c = env.action_to_control([1, 1])
    assert (c.steer, c.accel) == pytest.approx((0.61, 3.0))
    c = env.action_to_control([-1, -1])
    assert (c.steer, c.accel) == pytest.approx((-0.61, -8.0))
    phys = gymnasium.make(ENV, scenario=scenario, observations="ego", physical_actions=True).unwrapped
    assert phys.action_space.low.tolist() == pytest.approx([-0.61, -8.0])


def test_vector_env_steps(scenario):
    # spawned workers: nothing is inherited, so the env must be importable and picklable on its own
    venv = gymnasium.make_vec(ENV, num_envs=2, vectorization_mode="async", vector_kwargs={"context": "spawn"},
                              scenario=scenario, observations=("camera", "ego", "command"))
    try:
        obs, info = venv.reset(seed=[0, 1])
        assert obs["camera"].shape == (2, 160, 320, 3) and list(info["world_seed"]) == [0, 1]
        for _ in range(3):
            obs, reward, terminated, truncated, info = venv.step(np.tile([0.0, 1.0], (2, 1)).astype(np.float32))
        assert reward.shape == (2,) and np.all(reward > 0)
        assert np.all(obs["ego"][:, 3] > 0.5)  # speed after 0.3 s of full throttle
        assert info["t"].tolist() == pytest.approx([0.3, 0.3])
    finally:
        venv.close()


def test_bad_keys_and_scenarios_are_one_line_errors(scenario):
    with pytest.raises(UserError, match="unknown key 'camra'; did you mean `camera`") as e:
        gymnasium.make(ENV, scenario=scenario, observations=("camra", "ego"))
    assert "\n" not in str(e.value)
    with pytest.raises(ScenarioError, match="no_such_place: no such scenario") as e:
        gymnasium.make(ENV, scenario="no_such_place")
    assert "\n" not in str(e.value)
    with pytest.raises(UserError, match="render_mode"):
        DriveEnv(scenario, render_mode="rgb")
