"""Shared fixtures: scenarios built from dicts (never from the shipped YAML files)."""
from __future__ import annotations

import copy

import pytest

from sim.scenario import Scenario, parse_scenario

# A short, cheap scenario on a straight road; tests copy and tweak it.
TINY = {
    "description": "tiny straight-road episode for tests",
    "map": {"type": "straight", "length": 150},
    "duration_s": 4,
    "ego": {"start": {"lane": "fwd.0", "s": 5}, "goal": {"lane": "fwd.0", "s": 120}},
}


@pytest.fixture
def make_scenario():
    """Build a validated Scenario from a plain dict (deep-copied, so callers may reuse it)."""

    def build(data: dict, source: str = "test.yaml") -> Scenario:
        return parse_scenario(copy.deepcopy(data), source)

    return build


@pytest.fixture
def tiny_dict() -> dict:
    return copy.deepcopy(TINY)
