"""Frenét primitives meet their boundary conditions, vectorised over end times."""
from __future__ import annotations

import numpy as np
import pytest

from planning.frenet import evaluate, quartic, quintic

T = np.array([1.5, 2.0, 3.5, 5.0])  # end times of four candidates [s]


def values_at(coeffs, t_end, t):
    """(pos, vel, acc, jerk), each (K,), of candidate k at its own time t[k]."""
    out = []
    for k in range(len(t_end)):
        pos, vel, acc, jerk = evaluate(coeffs[k:k + 1], t_end[k:k + 1], np.array([t[k]]))
        out.append((pos[0, 0], vel[0, 0], acc[0, 0], jerk[0, 0]))
    return np.array(out).T


def test_quintic_hits_start_and_end_states():
    x0, v0, a0 = 3.0, 8.0, -1.0
    x1 = np.array([15.0, 20.0, 35.0, 40.0])
    v1 = np.array([6.0, 0.0, 9.0, 12.0])
    a1 = np.array([0.0, 0.5, -0.5, 0.0])
    c = quintic(x0, v0, a0, x1, v1, a1, T)
    assert c.shape == (4, 6)
    pos, vel, acc, _ = values_at(c, T, np.zeros(4))
    np.testing.assert_allclose(pos, x0, atol=1e-9)
    np.testing.assert_allclose(vel, v0, atol=1e-9)
    np.testing.assert_allclose(acc, a0, atol=1e-9)
    pos, vel, acc, _ = values_at(c, T, T)
    np.testing.assert_allclose(pos, x1, atol=1e-6)
    np.testing.assert_allclose(vel, v1, atol=1e-6)
    np.testing.assert_allclose(acc, a1, atol=1e-6)


def test_quartic_hits_start_speed_and_end_speed():
    x0, v0, a0 = -2.0, 10.0, 0.5
    v1 = np.array([0.0, 5.0, 10.0, 14.0])
    c = quartic(x0, v0, a0, v1, 0.0, T)
    assert c.shape == (4, 5)
    pos, vel, acc, _ = values_at(c, T, np.zeros(4))
    np.testing.assert_allclose([pos, vel, acc], [[x0] * 4, [v0] * 4, [a0] * 4], atol=1e-9)
    _, vel, acc, _ = values_at(c, T, T)
    np.testing.assert_allclose(vel, v1, atol=1e-6)
    np.testing.assert_allclose(acc, 0.0, atol=1e-6)


def test_derivatives_are_consistent_with_position():
    c = quintic(0.0, 5.0, 0.0, 30.0, 8.0, 0.0, T)
    t = np.linspace(0.0, 1.4, 1401)  # inside every candidate's T
    pos, vel, acc, jerk = evaluate(c, T, t)
    dt = t[1] - t[0]
    np.testing.assert_allclose(np.gradient(pos, dt, axis=1)[:, 1:-1], vel[:, 1:-1], atol=1e-3)
    np.testing.assert_allclose(np.gradient(vel, dt, axis=1)[:, 1:-1], acc[:, 1:-1], atol=1e-3)
    np.testing.assert_allclose(np.gradient(acc, dt, axis=1)[:, 1:-1], jerk[:, 1:-1], atol=1e-3)


def test_after_T_the_primitive_continues_at_constant_speed():
    x1, v1 = np.array([20.0, 25.0, 40.0, 60.0]), np.array([4.0, 6.0, 7.0, 9.0])
    c = quintic(0.0, 10.0, 0.0, x1, v1, 0.0, T)
    t = np.arange(0.0, 8.0 + 1e-9, 0.1)
    pos, vel, acc, jerk = evaluate(c, T, t)
    for k in range(len(T)):
        after = t > T[k] + 1e-9
        np.testing.assert_allclose(vel[k, after], v1[k], atol=1e-6)
        np.testing.assert_allclose(acc[k, after], 0.0)
        np.testing.assert_allclose(jerk[k, after], 0.0)
        np.testing.assert_allclose(pos[k, after], x1[k] + v1[k] * (t[after] - T[k]), atol=1e-6)
    # a quartic to a stop stays put
    q = quartic(0.0, 10.0, 0.0, 0.0, 0.0, np.array([5.0]))
    pos, vel, _, _ = evaluate(q, np.array([5.0]), t)
    assert vel[0, -1] == pytest.approx(0.0, abs=1e-9)
    assert pos[0, -1] == pytest.approx(pos[0, 50], abs=1e-9)
    assert pos[0, 50] == pytest.approx(25.0, abs=1e-6)  # symmetric speed profile: v0·T/2


def test_scalar_arguments_broadcast_over_candidates():
    c = quintic(1.0, 2.0, 0.0, 10.0, 0.0, 0.0, T)
    one = np.vstack([quintic(1.0, 2.0, 0.0, 10.0, 0.0, 0.0, np.array([Tk])) for Tk in T])
    np.testing.assert_allclose(c, one)
