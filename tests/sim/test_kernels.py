"""The compiled kernels give bit for bit what the numpy they replace gives."""
from __future__ import annotations

import numpy as np
import pytest

from sim.kernels import bisect_right, interp, locate
from sim.scenario import load_scenario
from sim.traffic import DriverParams, idm
from sim.vehicle_model import VehicleParams, step, step_many
from sim.world import World

RNG = np.random.default_rng(7)


def test_interp_and_search_match_numpy():
    xp = np.cumsum(RNG.uniform(0.1, 2.0, 200))
    fp = RNG.normal(size=200)
    xs = np.concatenate([RNG.uniform(xp[0] - 5, xp[-1] + 5, 2000), xp, [xp[0] - 1.0, xp[-1] + 1.0]])
    got = np.array([interp(float(x), xp, fp) for x in xs])
    assert np.array_equal(got, np.interp(xs, xp, fp))
    assert [bisect_right(xp, float(x)) for x in xs] == np.searchsorted(xp, xs, side="right").tolist()
    assert locate(float(xp[-1]) + 1.0, xp) == len(xp) and locate(float(xp[0]) - 1.0, xp) == -1
    assert np.isnan(interp(np.nan, xp, fp))


def test_step_many_is_the_bicycle_step():
    n, p, dt = 500, VehicleParams(), 0.05
    x, y, yaw = RNG.uniform(-100, 100, n), RNG.uniform(-100, 100, n), RNG.uniform(-4, 4, n)
    v, steer, accel = RNG.uniform(0, 20, n), RNG.uniform(-0.7, 0.7, n), RNG.uniform(-9, 4, n)
    cmd_steer, cmd_accel = RNG.uniform(-1, 1, n), RNG.uniform(-12, 6, n)
    v[:20] = 0.0
    cmd_accel[:20] = -5.0  # standing cars braking stay at 0
    ref = step(x, y, yaw, v, steer, accel, cmd_steer, cmd_accel, p, dt)
    got = step_many(x, y, yaw, v, steer, accel, cmd_steer, cmd_accel, p, dt)
    for a, b in zip(got, ref):
        assert np.array_equal(a, b)


def idm_numpy(v, v0, gap, v_lead, p):
    """The IDM as it was written in numpy."""
    dv = v - v_lead
    s_star = p.min_gap + np.maximum(0.0, v * p.time_headway + v * dv / (2 * np.sqrt(p.max_accel * p.comfort_decel)))
    free = 1.0 - (v / np.maximum(v0, 0.1)) ** p.delta
    interaction = np.where(np.isfinite(gap), (s_star / np.maximum(gap, 0.1)) ** 2, 0.0)
    acc = p.max_accel * (free - interaction)
    to_rest = gap - p.min_gap + 0.3
    near = (v_lead < 0.5) & (to_rest < 3.0) & (v < 3.0)
    acc = np.where(near, np.minimum(acc, -v * v / (2 * np.maximum(to_rest, 0.05))), acc)
    return np.minimum(np.maximum(acc, -p.max_decel), p.max_accel)


def test_idm_matches_its_numpy_form():
    n, p = 2000, DriverParams()
    v, v0, v_lead = RNG.uniform(0, 20, n), RNG.uniform(0, 20, n), RNG.uniform(0, 20, n)
    gap = RNG.uniform(-1, 60, n)
    gap[:100] = np.inf
    v[100:200], v_lead[100:200], gap[100:200] = RNG.uniform(0, 3, 100), 0.0, RNG.uniform(0, 5, 100)
    assert np.array_equal(idm(v, v0, gap, v_lead, p), idm_numpy(v, v0, gap, v_lead, p))


@pytest.fixture(scope="module")
def town():
    return World(load_scenario("town_loop"), 0).map


def test_lanes_at_matches_its_numpy_form(town):
    m = town
    xy = m.sample_xy[RNG.integers(len(m.sample_xy), size=300)] + RNG.normal(0, 1.5, (300, 2))
    radius = RNG.choice([2.0, 2.6], 300)
    got = m.lanes_at(xy, radius)
    dist, idx = m._tree.query(xy, k=24, distance_upper_bound=radius.max())
    ok = dist <= radius[:, None]
    pt, sidx = np.nonzero(ok)[0], idx[ok]
    h = m.sample_heading[sidx]
    rel = xy[pt] - m.sample_xy[sidx]
    ref = (pt, m.sample_lane[sidx], m.sample_s[sidx] + rel[:, 0] * np.cos(h) + rel[:, 1] * np.sin(h), h)
    assert len(pt) > 300
    for a, b in zip(got, ref):
        assert np.array_equal(a, b)
    assert all(len(a) == 0 for a in m.lanes_at(np.zeros((0, 2)), 2.0))
