"""Scoring: CARLA leaderboard 2.0 penalties, route completion and driving score."""
from __future__ import annotations

import pytest

from sim.infractions import Event, EventKind
from sim.scoring import PENALTIES, driving_score, infraction_penalty, route_completion


def ev(kind, at_fault=True, t=1.0):
    return Event(t, kind, other_id=3, other_type="vehicle", at_fault=at_fault)


def test_no_events_no_penalty():
    assert infraction_penalty([]) == 1.0


def test_one_red_light_is_exactly_070():
    assert infraction_penalty([ev(EventKind.RED_LIGHT)]) == 0.70


def test_pedestrian_collision_and_stop_sign_multiply():
    assert infraction_penalty([ev(EventKind.COLLISION_PEDESTRIAN), ev(EventKind.STOP_SIGN)]) == 0.50 * 0.80


def test_penalties_multiply_once_per_event():
    events = [ev(EventKind.RED_LIGHT), ev(EventKind.RED_LIGHT), ev(EventKind.COLLISION_VEHICLE),
              ev(EventKind.COLLISION_STATIC)]
    assert infraction_penalty(events) == pytest.approx(0.70 * 0.70 * 0.60 * 0.65, abs=1e-12)


def test_not_at_fault_collision_is_not_penalised():
    assert infraction_penalty([ev(EventKind.COLLISION_VEHICLE, at_fault=False)]) == 1.0
    assert infraction_penalty([ev(EventKind.COLLISION_VEHICLE, at_fault=False), ev(EventKind.RED_LIGHT)]) == 0.70


def test_unpenalised_kinds():
    events = [ev(EventKind.GOAL), ev(EventKind.BLOCKED), ev(EventKind.ROUTE_DEVIATION)]
    assert infraction_penalty(events) == 1.0


def test_carla_coefficients():
    assert PENALTIES[EventKind.COLLISION_PEDESTRIAN] == 0.50
    assert PENALTIES[EventKind.COLLISION_VEHICLE] == 0.60
    assert PENALTIES[EventKind.COLLISION_STATIC] == 0.65
    assert PENALTIES[EventKind.RED_LIGHT] == 0.70
    assert PENALTIES[EventKind.STOP_SIGN] == 0.80


def test_route_completion_less_offroad_and_clipped():
    assert route_completion(0.9, 0.1) == pytest.approx(0.8)
    assert route_completion(1.0, 0.0) == 1.0
    assert route_completion(1.2, 0.0) == 1.0
    assert route_completion(0.1, 0.3) == 0.0


def test_driving_score():
    assert driving_score(1.0, 1.0) == 100.0
    assert driving_score(0.5, 0.7) == pytest.approx(35.0)
    assert driving_score(0.8, infraction_penalty([ev(EventKind.RED_LIGHT)])) == pytest.approx(56.0)
    assert driving_score(0.0, 0.7) == 0.0
