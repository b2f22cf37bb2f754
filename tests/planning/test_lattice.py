"""The lattice's collision check, its choice around a crossing obstacle, and the emergency stop."""
from __future__ import annotations

import numpy as np
import pytest

from planning.frenet import evaluate, quintic
from planning.lattice import Goal, LatticeParams, LatticePlanner, collides, comfortable_stop_time, stop_distance
from planning.planner import Planner, PlannerInput
from planning.behaviour import State
from planning.prediction import Prediction, predict
from sim.map_builders import RoadStyle, straight
from sim.route import build_route
from sim.types import ActorType, ObjectState, Trajectory, VehicleState

P = LatticeParams()
T = np.arange(0.0, P.horizon + 1e-9, P.dt)
L, W = 4.6, 1.9  # ego [m]


def straight_traj(x0=0.0, y=0.0, v=10.0) -> Trajectory:
    x = x0 + v * T
    n = len(T)
    return Trajectory(T.copy(), x, np.full(n, y), np.zeros(n), np.full(n, v), np.zeros(n), np.zeros(n))


def one_vehicle(x, y, yaw, speed, length=4.6, width=1.9) -> Prediction:
    """A hand-made prediction of one vehicle; x, y are (M,) arrays over T."""
    n = len(T)
    return Prediction(T, np.array([7]), (ActorType.VEHICLE,), np.asarray(x, float)[None], np.asarray(y, float)[None],
                      np.full((1, n), yaw), np.array([length]), np.array([width]), np.array([speed]),
                      np.zeros((1, n)))


# ---- collides() ---------------------------------------------------------------------------------
def test_crossing_vehicle_at_the_same_time_collides():
    ego = straight_traj()  # reaches x = 30 at t = 3 s
    crossing = one_vehicle(np.full(len(T), 30.0), -30.0 + 10.0 * T, np.pi / 2, 10.0)  # reaches y = 0 at t = 3 s
    assert collides(ego, crossing, L, W, P.vehicle_margin)


@pytest.mark.parametrize("t_cross", [1.0, 5.0])  # through the crossing point 2 s before / after the ego
def test_crossing_vehicle_offset_in_time_does_not_collide(t_cross):
    ego = straight_traj()
    crossing = one_vehicle(np.full(len(T), 30.0), 10.0 * (T - t_cross), np.pi / 2, 10.0)
    assert not collides(ego, crossing, L, W, P.vehicle_margin)


def test_collision_check_uses_the_body_and_margin():
    ego = straight_traj(v=0.0)  # standing at the origin
    # a parallel car beside us: clear at 3.0 m centre to centre, touching at 2.0 m
    for dy, hit in ((3.2, False), (2.0, True)):
        side = one_vehicle(np.zeros(len(T)), np.full(len(T), dy), 0.0, 0.0)
        assert collides(ego, side, L, W, P.vehicle_margin) is hit, dy
    # a car ahead in line: bumpers 1.5 m apart is clear, 0.2 m is not (the discs overhang the
    # bumpers by 0.45 m each, so the check keeps about 1.25 m)
    for gap, hit in ((1.5, False), (0.2, True)):
        ahead = one_vehicle(np.full(len(T), L + gap), np.zeros(len(T)), 0.0, 0.0)
        assert collides(ego, ahead, L, W, P.vehicle_margin) is hit, gap
    # a pedestrian's own margin counts, the vehicle margin does not
    n = len(T)
    ped = Prediction(T, np.array([8]), (ActorType.PEDESTRIAN,), np.full((1, n), 0.0), np.full((1, n), 1.8),
                     np.zeros((1, n)), np.array([0.5]), np.array([0.5]), np.array([0.0]), np.zeros((1, n)))
    assert not collides(ego, ped, L, W, P.vehicle_margin)
    ped_wide = Prediction(**{**ped.__dict__, "margin": np.full((1, n), 0.6)})
    assert collides(ego, ped_wide, L, W, P.vehicle_margin)


def test_no_obstacles_never_collides():
    empty = predict([], straight(100.0), T)
    assert len(empty) == 0
    assert not collides(straight_traj(), empty, L, W, P.vehicle_margin)


# ---- the planner's choice -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def road():
    return straight(250.0, RoadStyle(lanes=1, speed_limit=11.1))  # fwd.0 at y = −1.75


def test_plan_stops_short_of_a_slow_crossing_vehicle(road):
    """No stop target from behaviour (a crossing car is not a lead): the lattice alone must find the stop."""
    r = build_route(road, ["fwd.0"])
    # a long vehicle creeping across our lane at x = 40, 20 m ahead, for the whole horizon
    cross_x = 40.0
    blocker = one_vehicle(np.full(len(T), cross_x), -4.25 + 1.0 * T, np.pi / 2, 1.0, length=8.0, width=2.5)
    start = (20.0, 8.0, 0.0)  # 8 m/s: a comfortable stop takes 8 m at 4 m/s², 16 m at 2 m/s²
    res = LatticePlanner(road).plan(0.0, r, start, (0.0, 0.0, 0.0), Goal(target_speed=11.1), blocker)
    emergency = res.emergency
    assert not emergency, f"emergency stop after {res.checked} candidates, though a comfortable stop fits"
    traj = res.trajectory
    assert not collides(traj, blocker, L, W, P.vehicle_margin)
    assert traj.v[-1] < 0.3  # stopping, not driving through
    assert traj.x.max() + L / 2 < cross_x - 2.5 / 2  # short of the crossing
    assert np.all(np.diff(traj.x) >= -1e-6) and traj.a.min() >= -P.max_decel - 1e-6  # comfortable
    # without the crossing vehicle the same call drives through
    free = LatticePlanner(road).plan(0.0, r, start, (0.0, 0.0, 0.0), Goal(target_speed=11.1), predict([], road, T))
    assert not free.emergency and free.trajectory.v[-1] > 10.0 and free.trajectory.x.max() > cross_x + 10
    assert collides(free.trajectory, blocker, L, W, P.vehicle_margin)


def test_plan_honours_the_stop_target(road):
    r = build_route(road, ["fwd.0"])
    res = LatticePlanner(road).plan(0.0, r, (20.0, 8.0, 0.0), (0.0, 0.0, 0.0), Goal(11.1, stop_at=50.0),
                                    predict([], road, T))
    assert not res.emergency
    front = res.trajectory.x + L / 2
    assert front.max() <= 50.0 + 0.3
    assert res.trajectory.v[-1] < 0.5 or front[-1] > 45.0  # heading for the line, not stopping far short


# ---- emergency stop -----------------------------------------------------------------------------
def wall(x_ego: float, y_lane: float):
    """Stopped cars 3 m ahead of the front bumper and on both sides of the ego."""
    ahead = x_ego + L / 2 + 3.0 + L / 2
    return [ObjectState(1, ActorType.VEHICLE, ahead, y_lane, 0.0, 0.0, 0.0, L, W),
            ObjectState(2, ActorType.VEHICLE, ahead, y_lane + 3.5, 0.0, 0.0, 0.0, L, W),
            ObjectState(3, ActorType.VEHICLE, x_ego + 2.0, y_lane + 3.5, 0.0, 0.0, 0.0, L, W),
            ObjectState(4, ActorType.VEHICLE, x_ego + 2.0, y_lane - 3.0, 0.0, 0.0, 0.0, L, W)]


def check_emergency_trajectory(traj, v0: float, x0: float):
    decel = P.emergency_decel
    t_stop = v0 / decel
    braking = traj.t - traj.t[0] < t_stop - 1e-6
    np.testing.assert_allclose(traj.a[braking], -decel)
    np.testing.assert_allclose(traj.v, np.maximum(v0 - decel * (traj.t - traj.t[0]), 0.0), atol=1e-6)
    assert traj.v[-1] == 0.0
    assert traj.x[-1] - x0 == pytest.approx(v0**2 / (2 * decel), abs=0.05)


def test_boxed_in_gives_an_emergency_stop(road):
    r = build_route(road, ["fwd.0"])
    x0, v0 = 50.0, 10.0
    pred = predict(wall(x0, -1.75), road, T)
    res = LatticePlanner(road).plan(3.0, r, (x0, v0, 0.0), (0.0, 0.0, 0.0), Goal(11.1), pred)
    assert res.emergency
    assert res.checked > 0
    check_emergency_trajectory(res.trajectory, v0, x0)
    assert res.trajectory.t[0] == pytest.approx(3.0)
    np.testing.assert_allclose(res.trajectory.y, -1.75, atol=1e-6)  # straight on, no swerve


def test_planner_reports_the_emergency_state(road):
    r = build_route(road, ["fwd.0"])
    x0, v0 = 50.0, 10.0
    ego = VehicleState(x0, -1.75, 0.0, v0)
    out = Planner(road, r).plan(PlannerInput(0.0, ego, tuple(wall(x0, -1.75)), ()))
    assert out.emergency and out.state is State.EMERGENCY_STOP
    check_emergency_trajectory(out.trajectory, v0, x0)


@pytest.mark.parametrize("d0", [-1.0, -1.3])
def test_a_car_off_the_road_edge_plans_its_way_back(road, d0):
    """Pushed 1 m or more right of a one-lane road's centre, a corner is off the drivable area now;
    the plan must bring the car back rather than give up in an emergency stop."""
    r = build_route(road, ["fwd.0"])
    assert not road.is_drivable(np.array([[30.0 + L / 2, -1.75 + d0 - W / 2]]))[0]  # really off now
    res = LatticePlanner(road).plan(0.0, r, (30.0, 8.0, 0.0), (d0, 0.0, 0.0), Goal(11.1), predict([], road, T))
    assert not res.emergency
    y = res.trajectory.y
    assert abs(y[-1] + 1.75) < 0.1  # back on the lane centre
    assert np.all(np.diff(np.abs(y + 1.75)) <= 1e-6)  # never farther out than it started
    assert res.trajectory.v[-1] > 7.0  # and it keeps driving


def test_plan_slows_for_a_tight_curve_ahead():
    """Entering a 12 m-radius bend 25 m ahead at 11 m/s: the chosen plan keeps v²κ within the
    lattice's lateral-acceleration bound along its whole horizon (the target speed alone, taken
    where the car is now, would carry it into the bend at speed)."""
    from sim.map_builders import curved

    bend = curved(((60, 0.0), (40, 1 / 12), (60, 0.0)), RoadStyle(lanes=1, speed_limit=13.9))
    r = build_route(bend, ["fwd.0"])
    res = LatticePlanner(bend).plan(0.0, r, (35.0, 11.0, 0.0), (0.0, 0.0, 0.0), Goal(11.0), predict([], bend, T))
    assert not res.emergency
    traj = res.trajectory
    kappa = np.abs(np.interp(35.0 + np.cumsum(np.r_[0.0, np.hypot(np.diff(traj.x), np.diff(traj.y))]), r.s, r.curvature))
    assert np.max(traj.v**2 * kappa) <= P.max_lat_accel + 0.05
    assert kappa.max() > 0.08  # the horizon really reaches into the bend


def test_clearance_ramps_in_only_for_a_car_already_too_close():
    """2.6 m centre to centre beside a standing car is inside the clearance (contact ≈ 2.44 m, with
    the 0.35 m margin 2.79 m). Driving away from one that is beside us now is fine; driving up to
    one that is ahead is not. The margin comes back as the ego moves past, however slowly."""
    n = len(T)
    ego = straight_traj(v=10.0)  # from x = 0
    beside_now = one_vehicle(np.zeros(n), np.full(n, 2.6), 0.0, 0.0)
    ahead = one_vehicle(np.full(n, 10.0), np.full(n, 2.6), 0.0, 0.0)
    assert not collides(ego, beside_now, L, W, P.vehicle_margin)
    assert collides(ego, ahead, L, W, P.vehicle_margin)
    # pulling away at a walk, parallel, holding the gap: fine, though it takes 9 s to get clear
    assert not collides(straight_traj(v=1.0), beside_now, L, W, P.vehicle_margin)
    # ... but not closing in on the way: 0.15 m nearer, still clear of the bodies, inside the margin
    closing = straight_traj(v=1.0)
    closing.y[:] = np.where(T > 2.0, 0.15, 0.0)
    assert collides(closing, beside_now, L, W, P.vehicle_margin)


@pytest.mark.parametrize("v0, a0", [(1.57, 1.83), (8.0, 0.0), (10.0, 1.4), (5.0, -2.0), (3.0, -1.0)])
def test_comfortable_stops_keep_the_jerk_bound_even_while_accelerating(v0, a0):
    """A stop nobody asked for, planned while the car still accelerates (the town loop's case:
    +1.8 m/s² at 1.6 m/s), must not jerk beyond the bound, nor roll backwards."""
    jerk = P.stop_jerk
    T_stop = comfortable_stop_time(v0, a0, jerk)
    t = np.linspace(0.0, T_stop, 200)
    _, v, a, j = evaluate(quintic(0.0, v0, a0, stop_distance(v0, a0, T_stop), 0.0, 0.0, [T_stop]), [T_stop], t)
    assert np.abs(j).max() <= jerk + 1e-6
    assert v.min() >= -0.05 and abs(v[0, -1]) < 1e-9 and abs(a[0, -1]) < 1e-9
    # and it is the shortest such stop, on the 0.05 s grid: √(6 v / j) when not accelerating
    if a0 == 0.0:
        assert T_stop == pytest.approx(np.sqrt(6 * v0 / jerk), abs=0.05)
    shorter = T_stop - 0.05
    _, _, _, j2 = evaluate(quintic(0.0, v0, a0, stop_distance(v0, a0, shorter), 0.0, 0.0, [shorter]), [shorter],
                           np.linspace(0.0, shorter, 200))
    assert np.abs(j2).max() > jerk


def test_an_accelerating_car_gets_a_comfortable_stop_among_its_candidates(road):
    """The old stop ignored the current acceleration: from +1.8 m/s² it planned −1.7 m/s² within
    0.5 s (11 m/s³). Now, with the lane blocked ahead and no stop asked for, the stop it picks
    stays within the bound."""
    r = build_route(road, ["fwd.0"])
    blocker = one_vehicle(np.full(len(T), 32.0), -4.25 + 0.5 * T, np.pi / 2, 0.5, length=8.0, width=2.5)
    res = LatticePlanner(road).plan(0.0, r, (20.0, 1.6, 1.8), (0.0, 0.0, 0.0), Goal(target_speed=11.1), blocker)
    traj = res.trajectory
    assert not res.emergency and traj.v[-1] < 0.05
    assert not collides(traj, blocker, L, W, P.vehicle_margin)
    assert np.abs(np.diff(traj.a) / P.dt).max() <= P.stop_jerk + 0.05


def test_a_lower_target_speed_is_met_within_the_jerk_bound_while_accelerating(road):
    """town_loop seed 3: accelerating at +1 m/s² at 10.5 m/s when the curve ahead lowered the
    target speed, the cheapest candidate changed speed within 2 s, at 5–6 m/s³. A speed change
    within the comfortable stops' jerk bound is chosen when one exists."""
    r = build_route(road, ["fwd.0"])
    empty = predict([], road, T)
    res = LatticePlanner(road).plan(0.0, r, (20.0, 10.5, 1.0), (0.0, 0.0, 0.0), Goal(target_speed=7.0), empty)
    traj = res.trajectory
    assert not res.emergency and traj.v[-1] < 7.5
    assert np.abs(np.diff(traj.a) / P.dt).max() <= P.stop_jerk + 0.05



def test_a_car_stopped_beside_a_parked_car_pulls_away_holding_its_offset():
    """parked_car_blocking seed 2 with the P2 detector: stopped mid-return from a nudge, 0.7 m left
    of its lane's centre and 13° askew, a parked car 3.6 m behind and 2.4 m to the right. Every
    return towards the centre swings the rear at the parked car; holding the offset it has, the car
    can pull away straight and return later, rather than stand there for good."""
    road = straight(320.0, RoadStyle(lanes=2, speed_limit=11.1))
    r = build_route(road, ["fwd.0"])
    (x0, y0), = r.position(np.array([92.81]))
    parked = one_vehicle(np.full(len(T), x0 - 3.6), np.full(len(T), -6.9), 0.0, 0.0)
    res = LatticePlanner(road).plan(0.0, r, (92.81, 0.0, 0.0), (0.716, 0.0, 0.0), Goal(target_speed=11.1), parked,
                                    heading_error=-0.225)
    assert not res.emergency, f"no valid candidate among {res.checked}"
    traj = res.trajectory
    assert traj.x[-1] > x0 + 5.0  # drives off
    assert traj.yaw[0] == pytest.approx(-0.225)  # from the heading the car has
    assert not collides(traj, parked, L, W, P.vehicle_margin)
    # planned as if the car stood along its lane, no candidate is valid
    along = LatticePlanner(road).plan(0.0, r, (92.81, 0.0, 0.0), (0.716, 0.0, 0.0), Goal(target_speed=11.1), parked)
    assert along.emergency
