"""nuPlan's collision types and at-fault rule, case by case."""
from __future__ import annotations

import numpy as np
import pytest

from sim import map_builders as mb
from sim.metrics.at_fault import CollisionType, LaneContext, classify_collision, is_at_fault

L, W = 4.6, 1.9


def kind(ego_v, x, y, yaw=0.0, speed=5.0, length=L, width=W, ego_yaw=0.0):
    return classify_collision(0.0, 0.0, ego_yaw, ego_v, L, W, x, y, yaw, length, width, speed)


@pytest.mark.parametrize("case, ego_v, x, y, yaw, speed, expected", [
    ("stopped ego rear-ended", 0.0, -4.4, 0.0, 0.0, 6.0, CollisionType.STOPPED_EGO),
    ("stopped ego hit in the side", 0.0, 0.0, 1.8, -np.pi / 2, 6.0, CollisionType.STOPPED_EGO),
    ("0.05 m/s is still stopped", 0.05, -4.4, 0.0, 0.0, 6.0, CollisionType.STOPPED_EGO),
    ("moving ego into a parked car", 3.0, 4.4, 0.0, 0.0, 0.0, CollisionType.STOPPED_TRACK),
    ("moving ego into a standing walker", 3.0, 2.5, 0.5, 0.0, 0.0, CollisionType.STOPPED_TRACK),
    ("moving ego rear-ended", 3.0, -4.4, 0.0, 0.0, 6.0, CollisionType.ACTIVE_REAR),
    ("moving ego into a slower car", 6.0, 4.4, 0.0, 0.0, 3.0, CollisionType.ACTIVE_FRONT),
    ("front corner clips a crossing car", 6.0, 3.0, 2.0, -np.pi / 2, 5.0, CollisionType.ACTIVE_FRONT),
    ("a car swerves into the ego's side", 6.0, 0.5, 1.8, 0.3, 7.0, CollisionType.ACTIVE_LATERAL),
])
def test_collision_types(case, ego_v, x, y, yaw, speed, expected):
    assert kind(ego_v, x, y, yaw, speed) is expected, case


def test_behind_means_beyond_150_degrees():
    # a car touching the ego's rear-left corner from 140° is not "behind": a side impact
    b = np.radians(140.0)
    assert kind(3.0, 4.0 * np.cos(b), 4.0 * np.sin(b), 0.0, 6.0) is CollisionType.ACTIVE_LATERAL
    b = np.radians(160.0)
    assert kind(3.0, 4.5 * np.cos(b), 4.5 * np.sin(b), 0.0, 6.0) is CollisionType.ACTIVE_REAR


def test_at_fault_rule():
    assert is_at_fault(CollisionType.ACTIVE_FRONT, False) and is_at_fault(CollisionType.STOPPED_TRACK, False)
    assert not is_at_fault(CollisionType.STOPPED_EGO, True) and not is_at_fault(CollisionType.ACTIVE_REAR, True)
    assert not is_at_fault(CollisionType.ACTIVE_LATERAL, False)
    assert is_at_fault(CollisionType.ACTIVE_LATERAL, True)  # straddling lanes or off the road


def test_lane_context_on_a_two_lane_road():
    ctx = LaneContext(mb.straight())  # lanes fwd.0 at y = −5.25, fwd.1 at −1.75, rev.* above; kerbs at ±7
    assert ctx(50.0, -5.25, 0.0, L, W) is False  # centred in its lane
    assert ctx(50.0, -4.6, 0.0, L, W) is False  # off-centre but inside it
    assert ctx(50.0, -3.5, 0.0, L, W) is True  # on the line between fwd.0 and fwd.1
    assert ctx(50.0, 0.0, 0.0, L, W) is True  # over the centre line
    assert ctx(50.0, -6.5, 0.0, L, W) is True  # over the kerb
