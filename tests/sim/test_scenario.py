"""Scenario schema: validation messages, defaults, sampling and the shipped files."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

from sim.scenario import (
    FourWayMap, Scenario, ScenarioError, StraightMap, load_scenario, parse_scenario, resolve_path, sample, sample_int,
    shipped_scenarios,
)

BASE = {
    "description": "a valid base for the error cases",
    "map": {"type": "straight"},
    "ego": {"start": {"lane": "fwd.0", "s": 5}, "goal": {"lane": "fwd.0", "s": 100}},
}


def error_of(mutate) -> str:
    data = copy.deepcopy(BASE)
    mutate(data)
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data, "scen/bad.yaml")
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith("scen/bad.yaml: ")
    return msg


def test_valid_scenario_defaults():
    sc = parse_scenario(copy.deepcopy(BASE), "dir/my_scene.yaml")
    assert isinstance(sc, Scenario)
    assert sc.name == "my_scene"  # from the file name
    assert isinstance(sc.map, StraightMap) and sc.map.lanes == 2 and sc.map.length == 400.0
    assert sc.duration_s == 60.0 and sc.weather == "day" and sc.actors == []
    named = parse_scenario({**copy.deepcopy(BASE), "name": "other"}, "dir/my_scene.yaml")
    assert named.name == "other"


@pytest.mark.parametrize(
    "mutate, expect",
    [
        (lambda d: d.update(mapp={"type": "straight"}), ["mapp", "unknown key", "did you mean `map`"]),
        (lambda d: d["ego"].update(sped=3), ["ego.sped", "did you mean `speed`"]),
        (lambda d: d.update(actors=[{"type": "vehicle", "start": {"lane": "fwd.0"}, "behaviour": {"type": "red_light_runner"}}]),
         ["actors.0.behaviour", "did you mean `behavior`"]),
        (lambda d: d["map"].update(lane_widht=3.0), ["map.lane_widht", "did you mean `lane_width`"]),
        (lambda d: d.pop("description"), ["description", "required field is missing"]),
        (lambda d: d["ego"].pop("goal"), ["ego.goal", "required field is missing"]),
        (lambda d: d.update(duration_s="long"), ["duration_s", "valid number"]),
        (lambda d: d["map"].update(lanes="two"), ["map.lanes", "integer"]),
        (lambda d: d["map"].update(lanes=9), ["map.lanes", "less than or equal to 4"]),
        (lambda d: d["map"].update(type="roundabout"), ["map", "roundabout", "four_way"]),
        (lambda d: d.update(map={"type": "four_way", "control": "yield"}), ["map.control", "allway_stop"]),
        (lambda d: d["ego"]["start"].update(s=[50, 5]), ["ego.start", "range s", "lo > hi"]),
        (lambda d: d.update(traffic={"vehicles": [5, 2]}), ["traffic", "range vehicles", "lo > hi"]),
        (lambda d: d.update(weather="snow"), ["weather", "snow"]),
        (lambda d: d["ego"].update(start={"s": 5}), ["ego.start", "lane"]),
        (lambda d: d.update(actors=[{"type": "pedestrian", "path": [[0, 0], [1, 1]],
                                     "trigger": {"time": 1, "ego_distance": 3}}]), ["actors.0.trigger", "exactly one"]),
    ],
)
def test_validation_errors_name_the_field(mutate, expect):
    msg = error_of(mutate)
    for part in expect:
        assert part in msg, f"{part!r} not in {msg!r}"


def test_not_a_mapping():
    with pytest.raises(ScenarioError, match=r"^x\.yaml: .*mapping.*list"):
        parse_scenario([1, 2], "x.yaml")


def test_load_scenario_bad_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("description: x\nmap: {type: straight\nego: [\n")
    with pytest.raises(ScenarioError, match=r"broken\.yaml: not valid YAML at line \d+"):
        load_scenario(bad)
    with pytest.raises(ScenarioError, match="no such scenario file"):
        load_scenario(tmp_path / "absent.yaml")
    with pytest.raises(ScenarioError, match="no such scenario"):
        resolve_path("surely_not_a_shipped_scenario")


def test_load_scenario_from_a_yaml_file(tmp_path):
    path = tmp_path / "four.yaml"
    path.write_text(yaml.safe_dump({**BASE, "map": {"type": "four_way", "control": "allway_stop"},
                                    "ego": {"start": {"lane": "S>J.0", "s": 5}, "goal": {"lane": "J>N.0", "s": 30}}}))
    sc = load_scenario(path)
    assert sc.name == "four" and isinstance(sc.map, FourWayMap) and sc.map.control == "allway_stop"
    assert resolve_path(path) == path


def test_ranges_are_sampled_per_seed():
    assert sample(3.0, np.random.default_rng(0)) == 3.0
    draws = [sample((2.0, 5.0), np.random.default_rng(s)) for s in range(50)]
    assert all(2.0 <= x <= 5.0 for x in draws) and len(set(draws)) > 40
    assert sample((2.0, 5.0), np.random.default_rng(7)) == sample((2.0, 5.0), np.random.default_rng(7))
    ints = {sample_int((1, 3), np.random.default_rng(s)) for s in range(60)}
    assert ints == {1, 2, 3}  # both ends included
    sc = parse_scenario({**copy.deepcopy(BASE), "weather": ["day", "fog"]}, "w.yaml")
    assert {sc.pick_weather(np.random.default_rng(s)) for s in range(30)} == {"day", "fog"}


def test_build_map_uses_the_map_spec():
    sc = parse_scenario({**copy.deepcopy(BASE), "map": {"type": "straight", "length": 120, "lanes": 1}}, "m.yaml")
    m = sc.build_map(sc.sample_signals(np.random.default_rng(0)))
    assert sorted(m.lanes) == ["fwd.0", "rev.0"]
    assert m.lanes["fwd.0"].length == pytest.approx(120.0)


SHIPPED = sorted(Path(__file__).resolve().parents[2].glob("scenarios/*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_scenario_validates(path):
    sc = load_scenario(path)
    assert sc.name == path.stem
    assert sc.description.strip() and "\n" not in sc.description.strip()


def test_shipped_scenarios_listing_matches_the_folder():
    assert [p.name for p in shipped_scenarios()] == [p.name for p in SHIPPED]
    assert "town_loop" in [p.stem for p in SHIPPED]


def test_signal_timing_samples_only_the_ranged_fields():
    """A fixed green with a ranged offset keeps its green, and the offset comes from its own range."""
    sc = parse_scenario({**copy.deepcopy(BASE), "signals": {"green": 12, "offset": [30, 40]}}, "x.yaml")
    for seed in range(5):
        plan = sc.sample_signals(np.random.default_rng(seed))
        assert (plan.green, plan.yellow, plan.all_red) == (12.0, 3.0, 1.0)
        assert 30.0 <= plan.offset <= 40.0
