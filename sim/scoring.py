"""Scoring as a pure function of an episode's events (CARLA leaderboard 2.0)."""
from __future__ import annotations

import math

from sim.infractions import Event, EventKind

# CARLA leaderboard 2.0 penalty coefficients, multiplied once per event.
PENALTIES: dict[EventKind, float] = {
    EventKind.COLLISION_PEDESTRIAN: 0.50,
    EventKind.COLLISION_VEHICLE: 0.60,
    EventKind.COLLISION_STATIC: 0.65,
    EventKind.RED_LIGHT: 0.70,
    EventKind.STOP_SIGN: 0.80,
    EventKind.TIMEOUT: 0.70,
}


def infraction_penalty(events: list[Event], table: dict[EventKind, float] = PENALTIES) -> float:
    """Product of the coefficients of the penalised events; collisions count only when at fault."""
    return math.prod((table[e.kind] for e in events if e.kind in table and e.at_fault), start=1.0)


def route_completion(progress: float, offroad_fraction: float) -> float:
    """Fraction of the route completed, less the fraction driven off-road (CARLA 2.0)."""
    return max(0.0, min(1.0, progress) - offroad_fraction)


def driving_score(completion: float, penalty: float) -> float:
    """CARLA's driving score in 0–100."""
    return 100.0 * completion * penalty
