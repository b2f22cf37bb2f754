"""Polynomial motion primitives of the Frenét lattice (Werling et al. 2010), vectorised over candidates.

Coefficients are stored lowest order first: p(t) = c0 + c1 t + c2 t² + …
"""
from __future__ import annotations

import numpy as np


def quintic(x0, v0, a0, x1, v1, a1, T) -> np.ndarray:
    """Quintics (K×6) from (x0, v0, a0) at t=0 to (x1, v1, a1) at t=T; arguments broadcast to K."""
    x0, v0, a0, x1, v1, a1, T = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (x0, v0, a0, x1, v1, a1, T)))
    T2, T3 = T * T, T**3
    A = np.stack([np.stack([T3, T**4, T**5], -1), np.stack([3 * T2, 4 * T3, 5 * T**4], -1),
                  np.stack([6 * T, 12 * T2, 20 * T3], -1)], -2)
    b = np.stack([x1 - (x0 + v0 * T + a0 * T2 / 2), v1 - (v0 + a0 * T), a1 - a0], -1)
    c345 = np.linalg.solve(A, b[..., None])[..., 0]
    return np.concatenate([np.stack([x0, v0, a0 / 2], -1), c345], -1)


def quartic(x0, v0, a0, v1, a1, T) -> np.ndarray:
    """Quartics (K×5) from (x0, v0, a0) reaching speed v1 and acceleration a1 at t=T (free position)."""
    x0, v0, a0, v1, a1, T = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (x0, v0, a0, v1, a1, T)))
    T2 = T * T
    A = np.stack([np.stack([3 * T2, 4 * T**3], -1), np.stack([6 * T, 12 * T2], -1)], -2)
    b = np.stack([v1 - v0 - a0 * T, a1 - a0], -1)
    c34 = np.linalg.solve(A, b[..., None])[..., 0]
    return np.concatenate([np.stack([x0, v0, a0 / 2], -1), c34], -1)


def evaluate(coeffs: np.ndarray, T: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, ...]:
    """Position, speed, acceleration and jerk (each K×M) of polynomials at times t (M,).

    After its end time T a primitive continues at its final speed with zero acceleration, so every
    candidate covers the whole horizon.
    """
    coeffs = np.asarray(coeffs, dtype=float)
    order = coeffs.shape[-1]
    T = np.asarray(T, dtype=float)[:, None]
    tc = np.minimum(t[None, :], T)
    powers = tc[..., None] ** np.arange(order)  # K×M×order
    k = np.arange(order)
    d1 = np.zeros_like(coeffs)
    d1[:, :-1] = coeffs[:, 1:] * k[1:]
    d2 = np.zeros_like(coeffs)
    d2[:, :-1] = d1[:, 1:] * k[1:]
    d3 = np.zeros_like(coeffs)
    d3[:, :-1] = d2[:, 1:] * k[1:]
    pos = np.einsum("kmo,ko->km", powers, coeffs)
    vel = np.einsum("kmo,ko->km", powers, d1)
    acc = np.einsum("kmo,ko->km", powers, d2)
    jerk = np.einsum("kmo,ko->km", powers, d3)
    beyond = t[None, :] > T  # there tc = T, so vel already holds the final speed
    pos = np.where(beyond, pos + vel * (t[None, :] - T), pos)
    acc = np.where(beyond, 0.0, acc)
    jerk = np.where(beyond, 0.0, jerk)
    return pos, vel, acc, jerk
