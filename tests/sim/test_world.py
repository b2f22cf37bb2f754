"""The world tick: construction, determinism, traffic behaviour and the shipped scenarios."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim.infractions import EventKind
from sim.scenario import load_scenario
from sim.types import Command, Control, LightState
from sim.world import DT, World

SHIPPED = sorted(Path(__file__).resolve().parents[2].glob("scenarios/*.yaml"))
COLLISIONS = {EventKind.COLLISION_VEHICLE, EventKind.COLLISION_PEDESTRIAN, EventKind.COLLISION_STATIC}


def straight(start: float, goal: float, actors=(), **extra) -> dict:
    return {
        "description": "straight road", "map": {"type": "straight", "length": 300},
        "ego": {"start": {"lane": "fwd.0", "s": start}, "goal": {"lane": "fwd.0", "s": goal}},
        "actors": list(actors), **extra,
    }


def run(world: World, seconds: float, autopilot: bool = False) -> list:
    events = []
    for _ in range(int(round(seconds / DT))):
        events += world.step(world.autopilot_control() if autopilot else None)
    return events


# ---- shipped scenarios ---------------------------------------------------------------------------

@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_scenario_runs_5s_with_autopilot(path):
    world = World(load_scenario(path), 0, ego_autopilot=True)
    events = run(world, 5.0, autopilot=True)
    assert world.t == pytest.approx(5.0)
    assert world.steps == 100
    collisions = [e for e in events if e.kind in COLLISIONS]
    assert collisions == [], f"{path.stem}: {collisions}"
    v = world.vehicles
    assert np.all(np.isfinite(v.x[v.active])) and np.all(v.v >= 0)
    assert world.criteria.offroad.offroad_m == 0.0


# ---- construction --------------------------------------------------------------------------------

def test_ego_placed_at_its_start(make_scenario):
    world = World(make_scenario(straight(20.0, 250.0)), 0)
    lane = world.map.lanes["fwd.0"]
    np.testing.assert_allclose([world.vehicles.x[0], world.vehicles.y[0]], lane.position(20.0), atol=1e-9)
    assert world.vehicles.yaw[0] == pytest.approx(0.0)
    assert world.route.length == pytest.approx(230.0, abs=0.5)
    obs = world.observe()
    assert obs.t == 0.0 and obs.ego.x == world.vehicles.x[0] and obs.command is Command.FOLLOW


def test_initial_progress_is_zero_at_the_start(make_scenario):
    """The ego starts at route S = 0 whatever lane s it starts at."""
    world = World(make_scenario(straight(50.0, 250.0)), 0)
    assert world.S == pytest.approx(0.0, abs=0.1)
    assert world.d == pytest.approx(0.0, abs=1e-6)


def test_short_route_far_along_its_lane(make_scenario):
    """A 10 m route that starts 60 m along its lane builds and can be driven to its goal."""
    world = World(make_scenario(straight(60.0, 70.0)), 0)
    assert world.route.length == pytest.approx(10.0, abs=0.1)
    assert world.S == pytest.approx(0.0, abs=0.1)


def test_unknown_lane_is_a_scenario_error(make_scenario):
    from sim.scenario import ScenarioError

    data = straight(5.0, 100.0)
    data["ego"]["start"]["lane"] = "fwd.7"
    with pytest.raises(ScenarioError, match=r"ego\.start\.lane.*fwd\.7"):
        World(make_scenario(data), 0)


# ---- determinism ---------------------------------------------------------------------------------

TOWN = {
    "description": "small town with traffic",
    "map": {"type": "grid_town", "rows": 3, "cols": 3, "block": 60},
    "ego": {"start": {"lane": "r0c0>r0c1.0", "s": 5}, "goal": {"lane": "r1c1>r2c1.0", "s": 20}},
    "traffic": {"vehicles": [6, 8], "pedestrians": [4, 6], "speed_factor": [0.7, 1.0]},
    "signals": {"green": [8, 12], "offset": [0, 5]},
    "duration_s": 30,
}


def snapshot(world: World) -> np.ndarray:
    v, p = world.vehicles, world.peds
    return np.concatenate([v.x, v.y, v.yaw, v.v, p.x, p.y])


def test_world_reruns_are_bit_identical(make_scenario):
    a, b = World(make_scenario(TOWN), 4, ego_autopilot=True), World(make_scenario(TOWN), 4, ego_autopilot=True)
    assert np.array_equal(snapshot(a), snapshot(b))
    for _ in range(100):
        ea, eb = a.step(a.autopilot_control()), b.step(b.autopilot_control())
        assert ea == eb
    assert np.array_equal(snapshot(a), snapshot(b))
    c = World(make_scenario(TOWN), 5, ego_autopilot=True)  # another seed: other traffic
    run(c, 5.0, autopilot=True)
    sa, sc = snapshot(a), snapshot(c)
    assert sa.shape != sc.shape or not np.array_equal(sa, sc)


# ---- traffic in the world ------------------------------------------------------------------------

def test_last_npc_leaving_the_map_does_not_stop_the_world(make_scenario):
    """An NPC drives off the end of the road; the world keeps stepping without it."""
    data = straight(5.0, 250.0, [{"type": "vehicle", "start": {"lane": "rev.0", "s": 270}, "speed": 10}])
    world = World(make_scenario(data), 0)
    run(world, 8.0)
    assert not world.vehicles.active[1]
    assert world.t == pytest.approx(8.0)


def test_signal_stops_npcs_on_red_and_runners_go(make_scenario):
    # group 0 (N–S) is green first; the E–W approaches are red for the first 16 s
    data = {
        "description": "one car waits at the red, one runs it",
        "map": {"type": "four_way", "control": "signal"},
        "ego": {"start": {"lane": "J>N.0", "s": 10}, "goal": {"lane": "J>N.0", "s": 70}},
        "actors": [
            {"type": "vehicle", "start": {"lane": "E>J.0", "s": 30}, "speed": 8, "via": [{"lane": "J>W.0", "s": 50}]},
            {"type": "vehicle", "start": {"lane": "W>J.0", "s": 30}, "speed": 8, "via": [{"lane": "J>E.0", "s": 50}],
             "behavior": {"type": "red_light_runner"}},
        ],
    }
    world = World(make_scenario(data), 0)
    assert world.light_state("J", world.map.lanes["E>J.0"].signal_group, 0.0) is LightState.RED
    run(world, 12.0)
    v, m = world.vehicles, world.map
    waiting = m.lanes["E>J.0"]
    s, d = waiting.frenet(np.array([v.x[1], v.y[1]]))
    assert v.v[1] < 0.1  # stopped at the red ...
    assert waiting.length - 8.0 < s[0] < waiting.length  # ... just before the stop line
    assert v.x[2] > 20.0  # the runner crossed (it started at x ≈ −50, eastbound)


def test_hard_brake_script_stops_the_lead_car(make_scenario):
    data = straight(5.0, 250.0, [
        {"type": "vehicle", "start": {"lane": "fwd.1", "s": 40}, "speed": 10, "desired_speed": 10,
         "behavior": {"type": "hard_brake", "trigger": {"time": 2.0}, "decel": 6.0, "hold_s": 3.0}}])
    world = World(make_scenario(data), 0)
    run(world, 2.0)
    assert world.vehicles.v[1] > 8.0
    run(world, 2.5)  # 10 m/s at 6 m/s² stops in 1.7 s (plus the jerk-limited ramp)
    assert world.vehicles.v[1] < 0.1
    run(world, 6.0)  # the hold is over: it drives on
    assert world.vehicles.v[1] > 3.0


def test_ego_without_control_stays_put(make_scenario):
    world = World(make_scenario(straight(20.0, 250.0)), 0)
    x0 = world.vehicles.x[0]
    run(world, 2.0)
    assert world.vehicles.x[0] == x0 and world.vehicles.v[0] == 0.0
    events = []
    for _ in range(40):
        events += world.step(Control(0.0, 2.0))
    assert world.vehicles.x[0] > x0 + 1.0
    assert abs(world.vehicles.y[0] - (-5.25)) < 1e-9  # straight ahead on its lane
    assert world.S > 1.0
