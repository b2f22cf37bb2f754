"""Randomised training scenarios for the end-to-end policy.

The policy must learn driving, not the evaluation suite, so most episodes are drawn from
procedural families: winding roads, single junctions (every turn and control type), random
routes through grid towns, and car following with braking leads. A share of episodes replays the
shipped scenarios at seeds from `SHIPPED_SEED0` up, which evaluation (seeds 0 … K−1) never uses.
Every draw is a pure function of (seed, episode index).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.scenario import Scenario, load_scenario, parse_scenario, shipped_scenarios

WEATHER = ["day", "dusk", "night", "rain"]  # the suite's weathers
SHIPPED_SEED0 = 10_000
# family → share of episodes
MIX: dict[str, float] = {"curved": 0.15, "junction": 0.3, "town": 0.3, "follow": 0.1, "shipped": 0.15}


@dataclass(frozen=True)
class Draw:
    """One training episode: the scenario, the world seed and the family it came from."""

    scenario: Scenario
    seed: int
    family: str


def _curved(rng: np.random.Generator) -> dict:
    segments, heading = [], 0.0
    for _ in range(int(rng.integers(4, 8))):
        length = float(rng.uniform(30, 80))
        kappa = 0.0 if rng.random() < 0.3 else float(rng.uniform(1 / 120, 1 / 30))
        kappa *= -np.sign(heading) if abs(heading) > 1.0 else rng.choice([-1.0, 1.0])  # no road crosses itself
        heading += kappa * length
        segments.append([round(length, 1), round(kappa, 5)])
    length = sum(s[0] for s in segments)
    limit = float(rng.choice([8.3, 11.1, 13.9]))
    return {"map": {"type": "curved", "lanes": int(rng.integers(1, 3)), "speed_limit": limit, "segments": segments},
            "ego": {"start": {"lane": "fwd.0", "s": 5}, "goal": {"lane": "fwd.0", "s": round(length - 15, 1)},
                    "speed": [0.0, limit]},
            "traffic": {"vehicles": [0, 3]}}


def _junction(rng: np.random.Generator) -> dict:
    four = rng.random() < 0.6
    arm = float(rng.uniform(60, 120))
    control = str(rng.choice(["signal", "allway_stop", "two_way_stop", "priority"] if four else
                             ["signal", "two_way_stop", "priority"]))
    exits = ["J>N.0", "J>W.0", "J>E.0"] if four else ["J>W.0", "J>E.0"]  # straight, left, right from the south
    return {"map": {"type": "four_way" if four else "t_junction", "arm_length": round(arm, 1), "control": control},
            "signals": {"green": [10, 18], "yellow": 3, "all_red": 1, "offset": [0, 15]},
            "ego": {"start": {"lane": "S>J.0", "s": [10, round(arm - 35, 1)]}, "goal": {"lane": str(rng.choice(exits)), "s": 40},
                    "speed": [0, 10]},
            "traffic": {"vehicles": [0, 5], "pedestrians": [0, 5]}}


def _town(rng: np.random.Generator) -> dict:
    rows, cols = int(rng.integers(3, 5)), int(rng.integers(3, 5))
    node = (int(rng.integers(rows)), int(rng.integers(cols)))
    path = [node]
    while len(path) < int(rng.integers(4, 7)):  # a random walk of 3–5 blocks, never straight back
        i, j = path[-1]
        nbrs = [(a, b) for a, b in ((i + 1, j), (i - 1, j), (i, j + 1), (i, j - 1))
                if 0 <= a < rows and 0 <= b < cols and (len(path) < 2 or (a, b) != path[-2])]
        path.append(nbrs[int(rng.integers(len(nbrs)))])
    lanes = [f"r{a}c{b}>r{c}c{d}.0" for (a, b), (c, d) in zip(path[:-1], path[1:])]
    # one lane: the route names lane .0 everywhere, and with two lanes a left turn (which connects the
    # leftmost lanes) would force two lane changes on one block
    return {"map": {"type": "grid_town", "rows": rows, "cols": cols, "block": int(rng.integers(60, 86))},
            "ego": {"start": {"lane": lanes[0], "s": 10}, "via": [{"lane": ln, "s": 25} for ln in lanes[1:-1]],
                    "goal": {"lane": lanes[-1], "s": 35}},
            "traffic": {"vehicles": [6, 20], "pedestrians": [4, 14]}}


def _follow(rng: np.random.Generator) -> dict:
    brake = {"type": "hard_brake", "trigger": {"time": [4, 12]}, "decel": [3, 7], "hold_s": [1, 4]}
    lead = {"type": "vehicle", "start": {"lane": "fwd.0", "s": [30, 60]}, "speed": [6, 12], "desired_speed": [7, 13]}
    return {"map": {"type": "straight", "lanes": 2, "length": 450, "speed_limit": 13.9},
            "ego": {"start": {"lane": "fwd.0", "s": 10}, "goal": {"lane": "fwd.0", "s": 400}, "speed": [6, 12]},
            "actors": [{**lead, "behavior": brake} if rng.random() < 0.7 else lead],
            "traffic": {"vehicles": [0, 3]}}


FAMILIES = {"curved": _curved, "junction": _junction, "town": _town, "follow": _follow}


def draw(seed: int, index: int, mix: dict[str, float] = MIX) -> Draw:
    """Training episode `index` of the dataset seeded `seed`."""
    rng = np.random.default_rng([seed, index])
    names = list(mix)
    family = names[int(rng.choice(len(names), p=np.array([mix[n] for n in names]) / sum(mix.values())))]
    if family == "shipped":
        paths = shipped_scenarios()
        return Draw(load_scenario(paths[int(rng.integers(len(paths)))]), SHIPPED_SEED0 + index, family)
    return Draw(procedural(family, rng, f"e2e_{family}_{seed}_{index}"), index, family)


def procedural(family: str, rng: np.random.Generator, name: str) -> Scenario:
    """A scenario of one procedural family, drawn with `rng` (the detector's dataset uses these too)."""
    data = {"description": f"procedural {family}", "weather": WEATHER, "duration_s": 120, **FAMILIES[family](rng)}
    return parse_scenario(data, name)
