"""The Kalman + Hungarian tracker on constructed tracks."""
from __future__ import annotations

import numpy as np

from perception.tracker import Measurement, Tracker


def _ids_at(tracks, xy):
    """The id of the confirmed track nearest each point."""
    return [min(tracks, key=lambda tr: np.hypot(tr.x[0] - x, tr.x[1] - y)).id for x, y in xy]


def test_keeps_the_id_through_a_short_occlusion():
    tr = Tracker()
    ids = set()
    for k in range(30):
        t = 0.1 * k
        x = 10.0 + 8.0 * t  # a car at 8 m/s along x
        occluded = 10 <= k < 16  # 0.6 s without a measurement
        tracks = tr.update(t, [] if occluded else [Measurement("car", x, 2.0, 0.2)])
        if not occluded and k > 2:
            assert len(tracks) == 1
            ids.add(tracks[0].id)
            assert abs(tracks[0].x[2] - 8.0) < 1.0  # the velocity is estimated
    assert len(ids) == 1


def test_a_long_occlusion_ends_the_track():
    tr = Tracker()
    for k in range(5):
        tr.update(0.1 * k, [Measurement("car", 10.0, 0.0, 0.2)])
    for k in range(5, 20):
        tracks = tr.update(0.1 * k, [])
    assert tracks == []


def test_no_id_switch_on_crossing_tracks():
    """Two pedestrians cross each other's path; each keeps its id."""
    tr = Tracker()
    first = None
    for k in range(40):
        t = 0.1 * k
        a = (-4.0 + 1.5 * t, 0.0)  # walks +x
        b = (4.0 - 1.5 * t, 0.3)  # walks −x, 0.3 m apart laterally
        tracks = tr.update(t, [Measurement("pedestrian", *a, 0.1), Measurement("pedestrian", *b, 0.1)])
        if k >= 2:
            assert len(tracks) == 2
            ids = _ids_at(tracks, [a, b])
            first = first or ids
            assert ids == first
    assert first[0] != first[1]


def test_radial_speed_measurement_sets_the_velocity_at_once():
    """A new track's speed along the radar ray comes from the radar, not from differencing."""
    tr = Tracker()
    tr.update(0.0, [Measurement("car", 30.0, 0.0, 0.3, radial=(1.0, 0.0, -5.0))])
    (track,) = tr.tracks
    assert abs(track.x[2] + 5.0) < 0.1 and abs(track.x[3]) < 1e-6


def test_classes_are_tracked_apart():
    tr = Tracker()
    for k in range(3):
        tracks = tr.update(0.1 * k, [Measurement("car", 5.0, 0.0, 0.2), Measurement("pedestrian", 5.2, 0.0, 0.2)])
    assert sorted(t.cls for t in tracks) == ["car", "pedestrian"]


def test_a_car_keeps_its_heading_while_it_slows_to_a_stop():
    """A car turns only while it moves: once slow, its noisy velocity must not swing its heading.

    It drives along the diagonal at 6 m/s, brakes to a stop, and stands with 0.3 m of position
    noise; the heading stays the diagonal's. A car never seen moving has no heading.
    """
    rng = np.random.default_rng(0)
    tr = Tracker()
    u = np.array([1.0, 1.0]) / np.sqrt(2)
    s, v = 0.0, 6.0
    for k in range(80):
        t = 0.1 * k
        if k >= 20:
            v = max(v - 0.4, 0.0)  # 4 m/s² from 2 s on: standing from 3.5 s
        s += v * 0.1
        xy = s * u + (rng.normal(0, 0.3, 2) if v == 0.0 else 0.0)
        tracks = tr.update(t, [Measurement("car", *xy, 0.3)])
        if k >= 10:
            (track,) = tracks
            assert track.heading is not None and abs(track.heading - np.pi / 4) < 0.2, (t, track.heading)
    standing = Tracker()
    for k in range(20):
        (track,) = standing.update(0.1 * k, [Measurement("car", 5.0 + rng.normal(0, 0.05), 2.0, 0.3)]) or [None]
    assert track is not None and track.heading is None
