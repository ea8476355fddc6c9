"""The policy tester: scenarios against hand-worked answers and the violation engine's own results."""

from __future__ import annotations

import math

import pytest

from geo.permissible import permissible_zones
from geo.quota import violating_ids
from geo.rules import load_profile
from geo.scenarios import (
    Scenario,
    ScenarioRunner,
    apply_scenario,
    attrition,
    limit_scenarios,
    per_subdistrict,
    run_scenario,
    sensitivity_chart,
    sweep,
)
from geo.violations import RuleEngine
from layers.errors import CivicmapError
from tests.geo.test_permissible import CAMPUS_BUFFER_M2, hand_built_layers

ALL_LEVELS = ("primary", "junior", "senior", "nine_year", "complete", "vocational", "special", "kindergarten")


@pytest.fixture(scope="module")
def hand_runner() -> ScenarioRunner:
    return ScenarioRunner(hand_built_layers(), load_profile("national"))


def test_baseline_reproduces_the_engine_on_the_hand_built_district(hand_runner):
    result = hand_runner.run(Scenario())
    assert result.affected == ["c1", "c3", "c4"]  # 150 m from the school, in the building, in the compound
    assert result.newly_affected == [] and result.no_longer_affected == []
    area = result.table.set_index("subdistrict")["permissible_km2"]
    assert area["甲街道"] * 1e6 == pytest.approx(1e6 - CAMPUS_BUFFER_M2 - 2000, abs=0.5)


@pytest.mark.parametrize(
    ("limit_m", "affected"), [(100, ["c3", "c4"]), (200, ["c1", "c3", "c4"]), (300, ["c1", "c2", "c3", "c4"])]
)
def test_limit_changes_who_is_affected_and_the_land(hand_runner, limit_m, affected):
    result = hand_runner.run(Scenario(name=f"{limit_m}", limit_m=limit_m))
    assert result.affected == affected
    protected = 100**2 + 4 * 100 * limit_m + math.pi * limit_m**2
    area = result.table.set_index("subdistrict")["permissible_km2"]
    assert area["甲街道"] * 1e6 == pytest.approx(1e6 - protected - 2000, abs=0.5)


def test_kindergartens_residential_rule_and_cap(hand_runner):
    kg = hand_runner.run(Scenario(name="kg", levels=ALL_LEVELS))
    assert kg.newly_affected == ["c5"]  # 150 m west of the kindergarten
    area = kg.table.set_index("subdistrict")["permissible_km2"]
    assert area["乙街道"] * 1e6 == pytest.approx(1e6 - CAMPUS_BUFFER_M2 - 10_000, abs=0.5)
    building = hand_runner.run(Scenario(name="building", residential_scope="building"))
    assert building.no_longer_affected == ["c4"]  # a compound is allowed under the 2014 pilots
    assert building.table.set_index("subdistrict")["permissible_km2"]["乙街道"] == pytest.approx(
        1.0, abs=1e-6
    )
    none = hand_runner.run(Scenario(name="none", residential_scope="none"))
    assert none.affected == ["c1"]
    capped = hand_runner.run(Scenario(name="cap", cap=5))
    assert capped.table["quota"].iloc[:-1].tolist() == [4, 1] and capped.row()["quota"] == 5


def test_apply_scenario_changes_only_the_kind_asked_for():
    national = load_profile("national")
    changed = apply_scenario(national, Scenario(limit_m=300, method="gate-walk", spacing_m=150))
    rules = {r.id: r for r in changed.rules}
    assert rules["net_cafe_school"].limit_m == 300 and rules["net_cafe_school"].method == "gate-walk"
    assert rules["game_venue_school"].limit_m == 200 and rules["game_venue_school"].method == "boundary"
    assert rules["net_cafes_spacing"].type == "spacing" and rules["net_cafes_spacing"].limit_m == 150
    assert national.rule("net_cafe_school").limit_m == 200  # the loaded profile is untouched
    with pytest.raises(CivicmapError):
        Scenario(limit_m=-5)
    with pytest.raises(CivicmapError):
        Scenario(cap=3, per_residents=1000)
    assert Scenario.from_dict(Scenario(levels=ALL_LEVELS).to_dict()) == Scenario(levels=ALL_LEVELS)


@pytest.mark.slow
@pytest.mark.parametrize("profile_name", ["national", "local-examples"])
def test_baseline_reproduces_the_violation_engine_on_the_demo(demo_layers, profile_name):
    profile = load_profile(profile_name)
    engine = RuleEngine(demo_layers, profile)
    result = run_scenario(demo_layers, profile, Scenario())
    licensed = engine.layer("net_cafes")
    licensed = set(licensed.loc[licensed["status"] == "licensed", "id"])
    assert set(result.affected) == set(engine.violations(kinds={"net_cafes"})["venue_id"]) & licensed
    assert result.permissible_km2 == pytest.approx(permissible_zones(engine).total_permissible_km2, abs=1e-9)
    same = run_scenario(demo_layers, profile, Scenario(name="200", limit_m=200))
    assert same.affected == result.affected and same.newly_affected == []


@pytest.mark.slow
def test_walking_scenario_reproduces_the_pilot_profile(demo_layers):
    """Switching the national profile to gate-walk gives the pilot profile's school findings."""
    pilot = RuleEngine(demo_layers, load_profile("pilot-2014"))
    found = pilot.violations(kinds={"net_cafes"})
    school = set(found.loc[found["rule"] == "net_cafe_school", "venue_id"])
    result = run_scenario(
        demo_layers, load_profile("national"), Scenario(method="gate-walk", residential_scope="none")
    )
    licensed = pilot.layer("net_cafes")
    assert set(result.affected) == school & set(licensed.loc[licensed["status"] == "licensed", "id"])


@pytest.mark.slow
def test_sweep_of_limits_is_monotonic_on_the_demo(demo_layers):
    runner = ScenarioRunner(demo_layers, load_profile("national"))
    frame, results = sweep(runner, limit_scenarios([100, 200, 300, 400]))
    assert frame["affected"].is_monotonic_increasing
    assert frame["permissible_km2"].is_monotonic_decreasing
    assert frame.loc[frame["limit_m"] == 200, "affected"].item() == len(violating_ids(runner.base))
    by_sub = per_subdistrict(results, "permissible_km2")
    assert list(by_sub.columns) == ["100 m", "200 m", "300 m", "400 m"] and len(by_sub) == 8
    assert by_sub.sum().to_numpy() == pytest.approx(frame["permissible_km2"].to_numpy(), abs=1e-3)


def test_attrition_lottery_and_rule_based(hand_runner):
    out = attrition(hand_runner.base, cap=3)  # stock 5 (c1..c5), violators c1, c3, c4
    assert (out["stock"], out["to_close"], out["violating"]) == (5, 2, 3)
    assert out["lottery"]["violators_left_mean"] == pytest.approx(3 * 3 / 5)
    # hypergeometric: 3 survivors of 5 with 3 violators → at least 1 violator survives
    assert out["lottery"]["violators_left_p5"] == 1 and out["lottery"]["violators_left_p95"] == 3
    # rule-based closes violators first, the fewest terminals first: c4 (50), c3 (60)
    assert out["rule_based"]["closed"] == ["c4", "c3"]
    assert out["rule_based"]["violators_left"] == 1 and out["rule_based"]["terminals_lost"] == 110
    assert attrition(hand_runner.base, cap=10)["to_close"] == 0


def test_sensitivity_chart_svg_and_png(hand_runner):
    frame, _results = sweep(hand_runner, limit_scenarios([100, 200, 300]))
    svg = sensitivity_chart(frame)
    assert svg.lstrip().startswith(b"<?xml") and b"<svg" in svg
    png = sensitivity_chart(frame, fmt="png", labels={"title": "敏感性"})
    assert png.startswith(b"\x89PNG")
