"""Polyline and oriented-box geometry, vectorised with numpy."""
from __future__ import annotations

import numpy as np


def wrap_angle(a: np.ndarray | float) -> np.ndarray | float:
    """Wrap to [−π, π)."""
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi


def arc_length(points: np.ndarray) -> np.ndarray:
    """Cumulative length along a polyline (N×2) [m], starting at 0."""
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    return np.concatenate([[0.0], np.cumsum(seg)])


def resample(points: np.ndarray, step: float) -> np.ndarray:
    """Resample a polyline at a roughly even spacing [m], keeping both ends."""
    s = arc_length(points)
    n = max(2, int(np.ceil(s[-1] / step)) + 1)
    t = np.linspace(0.0, s[-1], n)
    return np.column_stack([np.interp(t, s, points[:, 0]), np.interp(t, s, points[:, 1])])


def headings(points: np.ndarray) -> np.ndarray:
    """Heading of each vertex [rad], from the central difference (ends use one side)."""
    d = np.gradient(points, axis=0)
    return np.arctan2(d[:, 1], d[:, 0])


def curvature(points: np.ndarray) -> np.ndarray:
    """Signed curvature at each vertex [1/m]."""
    s = arc_length(points)
    h = np.unwrap(headings(points))
    if len(s) < 3:
        return np.zeros(len(s))
    return np.gradient(h, s)


def box_corners(x, y, yaw, length, width) -> np.ndarray:
    """Corners of oriented boxes, (..., 4, 2), counter-clockwise from front-left."""
    x, y, yaw, length, width = np.broadcast_arrays(*map(np.asarray, (x, y, yaw, length, width)))
    c, s = np.cos(yaw), np.sin(yaw)
    hl, hw = length / 2, width / 2
    lx = np.stack([hl, -hl, -hl, hl], axis=-1)
    ly = np.stack([hw, hw, -hw, -hw], axis=-1)
    cx = x[..., None] + lx * c[..., None] - ly * s[..., None]
    cy = y[..., None] + lx * s[..., None] + ly * c[..., None]
    return np.stack([cx, cy], axis=-1)


def boxes_overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Separating-axis test for pairs of oriented rectangles given as corners (..., 4, 2).

    Returns a bool array over the leading dimensions: True where the boxes intersect.
    """
    # The two edge normals of each rectangle are the only candidate separating axes.
    axes = np.concatenate([a[..., 1:3, :] - a[..., 0:2, :], b[..., 1:3, :] - b[..., 0:2, :]], axis=-2)
    axes = np.stack([-axes[..., 1], axes[..., 0]], axis=-1)  # (..., 4, 2)
    pa = np.einsum("...kd,...cd->...kc", axes, a)  # (..., 4 axes, 4 corners)
    pb = np.einsum("...kd,...cd->...kc", axes, b)
    separated = (pa.max(-1) < pb.min(-1)) | (pb.max(-1) < pa.min(-1))
    return ~separated.any(-1)


def point_segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance from points to segments (broadcast), and the projection parameter t in [0, 1]."""
    ab = b - a
    denom = np.maximum(np.einsum("...d,...d->...", ab, ab), 1e-12)
    t = np.clip(np.einsum("...d,...d->...", p - a, ab) / denom, 0.0, 1.0)
    closest = a + t[..., None] * ab
    return np.linalg.norm(p - closest, axis=-1), t
