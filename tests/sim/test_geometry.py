"""Oriented boxes and polyline helpers."""
from __future__ import annotations

import numpy as np
import pytest

from sim.geometry import arc_length, box_corners, boxes_overlap, point_segment_distance, resample, wrap_angle


def overlap(a, b) -> bool:
    return bool(boxes_overlap(box_corners(*a), box_corners(*b)))


def test_box_corners_axis_aligned_and_rotated():
    c = box_corners(1.0, 2.0, 0.0, 4.0, 2.0)
    np.testing.assert_allclose(c, [[3, 3], [-1, 3], [-1, 1], [3, 1]])
    c = box_corners(0.0, 0.0, np.pi / 2, 4.0, 2.0)  # front now points +y
    np.testing.assert_allclose(c, [[-1, 2], [-1, -2], [1, -2], [1, 2]], atol=1e-12)


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ((0, 0, 0, 4, 2), (3, 0, 0, 4, 2), True),  # overlapping by 1 m
        ((0, 0, 0, 4, 2), (4, 0, 0, 4, 2), True),  # touching end to end
        ((0, 0, 0, 4, 2), (0, 2, 0, 4, 2), True),  # touching side by side
        ((0, 0, 0, 4, 2), (4.01, 0, 0, 4, 2), False),  # 1 cm apart
        ((0, 0, 0, 4, 2), (0, 2.01, 0, 4, 2), False),
        ((0, 0, 0, 4, 2), (0, 0, 0, 1, 1), True),  # one inside the other
        ((0, 0, 0, 4, 2), (10, 10, 0.3, 4, 2), False),  # far away
    ],
)
def test_boxes_overlap_axis_aligned(a, b, expected):
    assert overlap(a, b) is expected
    assert overlap(b, a) is expected


def test_boxes_overlap_rotated_needs_the_rotated_axes():
    # A unit square rotated by 45° has its tip at x = √2/2 ≈ 0.707 from its centre. Their
    # bounding boxes overlap in both cases, so only the diamond's own axes separate them.
    sq = (0, 0, 0, 2, 2)  # spans x ∈ [−1, 1]
    assert overlap(sq, (1.0 + 0.70, 0, np.pi / 4, 1, 1))  # tip 1 cm inside
    assert not overlap(sq, (1.0 + 0.72, 0, np.pi / 4, 1, 1))  # tip 1 cm outside
    # Diagonal near-miss: the square's corner (1, 1) faces a 45°-rotated box's flat side.
    d = 2.0 ** 0.5 + 0.5 + 0.01  # corner distance + half width + 1 cm, along the diagonal
    # (yaw −45°: the long side runs along (1, −1), so its half width 0.5 lies along the diagonal)
    assert not overlap(sq, (d / 2 ** 0.5, d / 2 ** 0.5, -np.pi / 4, 4, 1))
    d = 2.0 ** 0.5 + 0.5 - 0.01
    assert overlap(sq, (d / 2 ** 0.5, d / 2 ** 0.5, -np.pi / 4, 4, 1))


def test_boxes_overlap_vectorised():
    a = box_corners(np.zeros(3), np.zeros(3), np.zeros(3), np.full(3, 4.0), np.full(3, 2.0))
    b = box_corners(np.array([3.0, 5.0, 0.0]), np.array([0.0, 0.0, 1.5]), np.array([0.0, 0.0, 0.5]),
                    np.full(3, 4.0), np.full(3, 2.0))
    assert boxes_overlap(a, b).tolist() == [True, False, True]


def test_wrap_angle_range():
    a = np.array([-7.0, -np.pi, 0.0, np.pi, 7.0, 100.0])
    w = wrap_angle(a)
    assert np.all(w >= -np.pi) and np.all(w < np.pi)
    np.testing.assert_allclose(np.cos(w), np.cos(a), atol=1e-12)
    np.testing.assert_allclose(np.sin(w), np.sin(a), atol=1e-12)


def test_arc_length_resample_and_segment_distance():
    pts = np.array([[0.0, 0.0], [3.0, 0.0], [3.0, 4.0]])
    np.testing.assert_allclose(arc_length(pts), [0, 3, 7])
    r = resample(pts, 0.5)
    np.testing.assert_allclose(r[[0, -1]], pts[[0, -1]])
    np.testing.assert_allclose(arc_length(r)[-1], 7.0, atol=0.2)  # the corner is cut a little
    assert np.max(np.linalg.norm(np.diff(r, axis=0), axis=1)) <= 0.5 + 1e-9
    dist, t = point_segment_distance(np.array([[1.0, 2.0], [-1.0, 0.0]]), np.array([0.0, 0.0]), np.array([3.0, 0.0]))
    np.testing.assert_allclose(dist, [2.0, 1.0])
    np.testing.assert_allclose(t, [1 / 3, 0.0])
