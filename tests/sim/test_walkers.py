"""Walkers held by cars in their way: waiting, going round a standing car, never through one."""
from __future__ import annotations

import numpy as np
import pytest

from sim.world import DT, PED_MAX_PAUSE, World

CROSSING_X = 60.0  # the walker's path crosses the road here, northward from y = −12 to y = 12
CAR_Y = -1.75  # centre line of fwd.1, the lane the cars in its way stand on


def crossing(cars: list[float], start_y: float = -12.0) -> dict:
    """A straight road, the ego standing far off at x = 5, a walker crossing at CROSSING_X and
    parked cars (4.6 × 1.9 m, heading east) centred at the given x on fwd.1."""
    return {
        "description": "a walker crossing the road where cars stand",
        "map": {"type": "straight", "length": 150},
        "ego": {"start": {"lane": "fwd.0", "s": 5}, "goal": {"lane": "fwd.0", "s": 120}},
        "actors": [{"type": "parked", "at": {"lane": "fwd.1", "s": x}} for x in cars]
        + [{"type": "pedestrian", "path": [[CROSSING_X, start_y], [CROSSING_X, 12.0]], "speed": 1.4}],
        "duration_s": 120,
    }


def corners(x, y, yaw, length, width) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    local = np.array([[1, 1], [1, -1], [-1, -1], [-1, 1]]) * [length / 2, width / 2]
    return np.array([x, y]) + local @ np.array([[c, s], [-s, c]])


def overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Do two convex polygons (k×2 corners) overlap? (separating axes: their edge normals)"""
    for poly in (a, b):
        edges = np.roll(poly, -1, axis=0) - poly
        for nx, ny in np.column_stack([-edges[:, 1], edges[:, 0]]):
            pa, pb = a @ [nx, ny], b @ [nx, ny]
            if pa.max() <= pb.min() or pb.max() <= pa.min():
                return False
    return True


def walker_in_a_car(world: World) -> bool:
    p, v = world.peds, world.vehicles
    body = corners(p.x[0], p.y[0], p.yaw[0], p.length[0], p.width[0])
    return any(overlap(body, corners(v.x[j], v.y[j], v.yaw[j], v.length[j], v.width[j]))
               for j in np.nonzero(v.active)[0])


def on_its_path(world: World) -> bool:
    """Is every walker exactly where its path alone puts it (the pose before walkers could step aside)?"""
    p = world.peds
    L = np.maximum(p.path_len, 1e-9)
    key = p._base + np.where(p.loop, p.s % L, np.minimum(p.s, p.path_len))
    seg = np.searchsorted(p._keys, key, side="right") - 1
    return (np.array_equal(p.x, np.interp(key, p._keys, p._x)) and np.array_equal(p.y, np.interp(key, p._keys, p._y))
            and np.array_equal(p.yaw, p._yaw[seg]) and not p.off.any() and not p.off_goal.any())


def walk(world: World, seconds: float, each=None) -> None:
    for _ in range(int(round(seconds / DT))):
        world.step()
        if each is not None:
            each(world)


def test_walker_goes_round_a_standing_car_and_back_to_its_path(make_scenario):
    world = World(make_scenario(crossing([CROSSING_X])), 0)
    p = world.peds
    log = []

    def each(w):
        assert not walker_in_a_car(w), f"t={w.t}: the walker is in the car"
        log.append((w.t, p.s[0], p.x[0], p.y[0], p.off[0].copy(), p.v[0], p.yaw[0], p.path_yaw[0]))

    walk(world, 40.0, each)
    t, s, x, y = (np.array([r[k] for r in log]) for k in range(4))
    off = np.array([r[4] for r in log])
    aside = np.nonzero(np.abs(off).sum(axis=1) > 0)[0]
    assert len(aside), "the walker never stepped aside"
    walked = np.nonzero(np.diff(s[: aside[0]]) > 0)[0]
    assert t[aside[0]] - t[walked[-1] + 1] >= PED_MAX_PAUSE - 0.1 + 1e-9  # it waited for the car first (ticks of 0.1 s)
    # round the car's rear (x < 60 − 2.3) with room to spare, and on along its path past it
    assert x.min() < CROSSING_X - 2.3 - 0.6
    assert x.max() == pytest.approx(CROSSING_X)
    assert y[-1] == pytest.approx(12.0) and s[-1] >= 24.0
    # stepping aside it moves across its path at walking speed, and says so
    first = aside[0]
    assert log[first][5] == pytest.approx(1.4) and abs(np.cos(log[first][6] - log[first][7])) < 1e-6
    # back on its path: exactly
    assert not p.off.any() and p.x[0] == CROSSING_X
    assert on_its_path(world)


def test_walker_goes_round_the_front_when_the_rear_is_taken(make_scenario):
    """A second car 1 m behind the first: the rear side would need more than the longest detour."""
    world = World(make_scenario(crossing([CROSSING_X, CROSSING_X - 5.6])), 0)
    p = world.peds
    xs = []

    def each(w):
        assert not walker_in_a_car(w), f"t={w.t}: the walker is in a car"
        xs.append(p.x[0])

    walk(world, 40.0, each)
    assert max(xs) > CROSSING_X + 2.3 + 0.6 and min(xs) == pytest.approx(CROSSING_X)
    assert p.y[0] == pytest.approx(12.0) and on_its_path(world)


def test_walker_waits_for_a_moving_car_without_going_round(make_scenario):
    """A car creeping across the crossing at 0.4 m/s holds the walker some 13 s; it never detours."""
    world = World(make_scenario(crossing([CROSSING_X - 3.0], start_y=-6.0)), 0)
    v, p = world.vehicles, world.peds
    v.v[1] = 0.4  # the parked row: no driver, zero commands, so it keeps this speed
    held_for = []

    def each(w):
        assert not walker_in_a_car(w), f"t={w.t}: the walker is in the car"
        assert not p.off.any() and not p.off_goal.any(), f"t={w.t}: the walker goes round a moving car"
        held_for.append(w._ped_paused[0])

    walk(world, 28.0, each)
    assert max(held_for) > 3 * PED_MAX_PAUSE
    assert v.x[1] - v.length[1] / 2 > CROSSING_X  # the car has passed ...
    assert p.y[0] == pytest.approx(12.0)  # ... and so has the walker, straight along its path
    assert on_its_path(world)


def test_walker_boxed_in_waits_and_never_enters_a_car(make_scenario):
    """Cars bumper to bumper (0.5 m apart) on both sides of the one in the way: no detour fits."""
    world = World(make_scenario(crossing([CROSSING_X - 5.1, CROSSING_X, CROSSING_X + 5.1])), 0)
    p, v = world.peds, world.vehicles

    def each(w):
        assert not walker_in_a_car(w), f"t={w.t}: the walker is in a car"
        assert not p.off_goal.any(), f"t={w.t}: the walker found a way round"

    walk(world, 28.0, each)
    s_waiting = p.s[0]
    assert world._ped_paused[0] > 3 * PED_MAX_PAUSE and p.y[0] < CAR_Y - 0.95 - 0.3
    # the middle car leaves: the walker goes on through the gap it left, along its path
    v.active[2] = False
    walk(world, 20.0, lambda w: None if not walker_in_a_car(w) else pytest.fail("in a car"))
    assert p.s[0] > s_waiting and p.y[0] == pytest.approx(12.0) and on_its_path(world)


def test_walkers_nobody_holds_stay_exactly_on_their_paths(make_scenario):
    """Town traffic: while no walker has stepped aside, every pose is the path's, bit for bit."""
    town = {
        "description": "small town with walkers", "map": {"type": "grid_town", "rows": 3, "cols": 3, "block": 60},
        "ego": {"start": {"lane": "r0c0>r0c1.0", "s": 5}, "goal": {"lane": "r1c1>r2c1.0", "s": 20}},
        "traffic": {"vehicles": 6, "pedestrians": 8}, "duration_s": 30,
    }
    world = World(make_scenario(town), 1, ego_autopilot=True)
    assert on_its_path(world)
    for _ in range(200):
        world.step(world.autopilot_control())
        assert on_its_path(world), f"t={world.t}"


def test_a_waiting_walker_leaves_a_fast_car_the_time_to_stop():
    """A walker at the kerb crosses only if no moving car is within 25 m, or within 4 s at its
    speed: at 10 m/s, 35 m is 3.5 s, less than a comfortable stop needs (town_loop seed 1)."""
    from sim import world_kernels as wk
    from sim.world import WALKER_GAP_S

    def busy(distance: float, speed: float) -> bool:
        one = lambda v: np.array([v], float)  # noqa: E731
        return wk.moving_within(one(distance), one(0.0), one(speed), np.array([True]), 0.0, 0.0, 25.0, 0.5,
                                WALKER_GAP_S)

    assert busy(35.0, 10.0) and busy(20.0, 3.0)
    assert not busy(35.0, 5.0)  # 7 s away
    assert not busy(10.0, 0.0)  # standing


def test_walkers_at_the_kerb_wait_while_a_car_stands_on_the_crossing(make_scenario):
    """dense_urban seed 1: an NPC turning at a junction stopped on the crossing for walkers; the
    next walkers stepped out round it, one after another, and held it there for 80 s. A car
    standing on the crossing now goes first; standing short of it, it does not hold walkers up."""
    world = World(make_scenario({
        "description": "a four-way junction with crosswalks",
        "map": {"type": "four_way", "lanes": 1, "arm_length": 60, "control": "allway_stop"},
        "ego": {"start": {"lane": "S>J.0", "s": 10}, "goal": {"lane": "J>N.0", "s": 30}},
        "duration_s": 30,
    }), 0)
    v = world.vehicles
    start = v.x[0], v.y[0]  # on the south arm, 50 m short of the junction
    assert world.map.crosswalks
    for cw in world.map.crosswalks:
        assert world._crosswalk_clear(cw)
        v.x[0], v.y[0] = cw.polygon.mean(axis=0)  # the ego, standing on it
        assert not world._crosswalk_clear(cw)
        v.x[0], v.y[0] = start
