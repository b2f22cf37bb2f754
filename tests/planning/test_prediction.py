"""Prediction of other agents: a standing car stays put, a moving one goes on."""
from __future__ import annotations

import numpy as np
import pytest

from planning.prediction import PredictionParams, predict
from sim.map_builders import RoadStyle, straight
from sim.types import ActorType, ObjectState

T = np.arange(0.0, 5.0 + 1e-9, 0.1)


@pytest.fixture(scope="module")
def road():
    return straight(250.0, RoadStyle(lanes=1, speed_limit=11.1))  # fwd.0 at y = −1.75


def test_a_car_slower_than_the_standing_speed_stays_where_it_is(road):
    """A parked car's track drifts sideways at a few tenths of a m/s as the ego's view of it changes
    (lifting); predicted at that velocity for 5 s it would slide a metre into the ego's path."""
    drifting = ObjectState(1, ActorType.VEHICLE, 100.0, -3.2, 0.0, 0.05, 0.25, 4.6, 1.9)
    pred = predict([drifting], road, T)
    assert np.all(pred.x[0] == 100.0) and np.all(pred.y[0] == -3.2) and np.all(pred.yaw[0] == 0.0)
    crossing = ObjectState(2, ActorType.VEHICLE, 100.0, -6.0, np.pi / 2, 0.0, PredictionParams().standing_speed + 0.5,
                           4.6, 1.9)  # off the lane, pulling out across it
    pred = predict([crossing], road, T)
    assert pred.y[0, -1] == pytest.approx(-6.0 + 0.8 * T[-1])
    walker = ObjectState(3, ActorType.PEDESTRIAN, 100.0, -5.0, np.pi / 2, 0.0, 0.25, 0.5, 0.5)
    assert predict([walker], road, T).y[0, -1] == pytest.approx(-5.0 + 0.25 * T[-1])  # walkers step slowly


def test_a_slow_car_off_its_lane_keeps_the_heading_it_was_given(road):
    """A car creeping through a turn: its tracked velocity at under a m/s points anywhere, but its
    box must stay as the object's heading says, or its corner can reach into our path unseen."""
    creeping = ObjectState(1, ActorType.VEHICLE, 100.0, -6.0, 2.4, 0.6, -0.5, 4.6, 1.9)
    pred = predict([creeping], road, T)
    assert np.all(pred.yaw[0] == 2.4)
    assert pred.x[0, -1] == pytest.approx(100.0 + 0.6 * T[-1]) and pred.y[0, -1] == pytest.approx(-6.0 - 0.5 * T[-1])
