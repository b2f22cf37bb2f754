"""Compiled kernels for the world tick (numba `njit`, cached in __pycache__, no fastmath).

With about 30 actors a tick costs the per-call overhead of many small numpy operations, not
arithmetic; each kernel here fuses a run of them into one call. Each keeps numpy's order of
operations, so its results are bit-identical to the numpy expressions it replaces (and a rerun is
bit-identical). numpy's tan, arctan, arctan2 and power use SIMD code whose last bit can differ
from libm's, so those stay numpy calls between kernels; sin, cos, hypot and sqrt agree.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

INF = np.inf


@njit(cache=True)
def np_max(a: float, b: float) -> float:
    """np.maximum for scalars (NaN propagates)."""
    return a if (a >= b or a != a) else b


@njit(cache=True)
def np_min(a: float, b: float) -> float:
    """np.minimum for scalars (NaN propagates)."""
    return a if (a <= b or a != a) else b


@njit(cache=True)
def bisect_right(xp: np.ndarray, x: float) -> int:
    """np.searchsorted(xp, x, side="right") for one x."""
    lo, hi = 0, len(xp)
    while lo < hi:
        mid = lo + ((hi - lo) >> 1)
        if x >= xp[mid]:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def locate(x: float, xp: np.ndarray) -> int:
    """Index j with xp[j] <= x < xp[j+1] (−1 below, len(xp) above): numpy interp's search."""
    n = len(xp)
    if x > xp[n - 1]:
        return n
    if x < xp[0]:
        return -1
    return bisect_right(xp, x) - 1


@njit(cache=True)
def interp_at(x: float, xp: np.ndarray, fp: np.ndarray, j: int) -> float:
    """np.interp(x, xp, fp) given j = locate(x, xp), so that several fp share one search."""
    n = len(xp)
    if x != x:
        return x
    if j < 0:
        return fp[0]
    if j >= n - 1:
        return fp[n - 1]
    if xp[j] == x:
        return fp[j]
    slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j])
    r = slope * (x - xp[j]) + fp[j]
    if r != r:
        r = slope * (x - xp[j + 1]) + fp[j + 1]
        if r != r and fp[j] == fp[j + 1]:
            r = fp[j]
    return r


@njit(cache=True)
def interp(x: float, xp: np.ndarray, fp: np.ndarray) -> float:
    """np.interp for one x."""
    return interp_at(x, xp, fp, locate(x, xp))

