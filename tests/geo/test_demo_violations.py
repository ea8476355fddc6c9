"""The demo district's designed cases, found by the engine after the real import path.

data/make_demo.py records each case's distance as constructed (design.json); the engine
measures the imported layers independently.
"""

from __future__ import annotations

import pytest

from geo.precheck import check_site
from geo.rules import load_profile
from geo.violations import RuleEngine


@pytest.fixture(scope="module")
def national(demo_layers):
    return RuleEngine(demo_layers, load_profile("national")).violations(include_near=True)


def _row(found, rule, venue_id, site_id):
    rows = found[(found["rule"] == rule) & (found["venue_id"] == venue_id) & (found["site_id"] == site_id)]
    assert len(rows) == 1, f"{rule}: expected one row for {venue_id} / {site_id}, got {len(rows)}"
    return rows.iloc[0]


def test_designed_school_cases_are_measured_exactly(national, demo_design):
    for case in demo_design["near_school"] + demo_design["near_limit"]:
        row = _row(national, "net_cafe_school", case["venue_id"], case["school_id"])
        assert row["distance_m"] == pytest.approx(case["distance_m"], abs=0.05)
        assert bool(row["violation"]) == (case["distance_m"] <= 200.0)
        assert bool(row["recheck"]) == (abs(case["distance_m"] - 200.0) <= 20.0)


def test_kindergartens_only_count_where_the_profile_says(national, demo_design):
    for case in demo_design["near_kindergarten"]:
        hits = national[
            (national["venue_id"] == case["venue_id"]) & (national["site_id"] == case["school_id"])
        ]
        assert hits.empty


def test_point_school_is_approximate(national, demo_design):
    for case in demo_design["near_point_school"]:
        row = _row(national, "net_cafe_school", case["venue_id"], case["school_id"])
        assert row["approximate"]
        assert row["distance_m"] == pytest.approx(case["distance_m"], abs=0.05)


def test_game_venues_near_schools(national, demo_design):
    for case in demo_design["game_near_school"]:
        row = _row(national, "game_venue_school", case["venue_id"], case["school_id"])
        assert row["distance_m"] == pytest.approx(case["distance_m"], abs=0.05)


def test_spacing_pairs(demo_layers, demo_design):
    found = RuleEngine(demo_layers, load_profile("local-examples")).violations()
    spacing = found[found["rule"] == "game_venue_spacing"]
    got = {frozenset((r.venue_id, r.site_id)): r.distance_m for r in spacing.itertuples()}
    for case in demo_design["game_pairs"]:
        key = frozenset((case["a"], case["b"]))
        if case["distance_m"] < 100.0:
            assert got[key] == pytest.approx(case["distance_m"], abs=0.05)
        else:
            assert key not in got


def test_residential_scope(demo_layers, demo_design):
    cases = {c["venue_id"]: c for c in demo_design["in_residential"]}
    for profile, counted in (("national", {"building", "compound"}), ("pilot-2014", {"building"})):
        found = RuleEngine(demo_layers, load_profile(profile)).violations()
        found = found[(found["rule"] == "net_cafe_residential") & found["venue_id"].isin(cases)]
        expected = {v for v, c in cases.items() if c["form"] in counted}
        assert set(found["venue_id"]) == expected


def test_walking_cases_match_the_designed_routes(demo_layers, demo_design):
    detour = demo_design["detour"]
    far = demo_design["far_door"]
    from dataclasses import replace

    for name, case, limit in (("pilot-2014", detour, 2000.0), ("guangdong-2023", far, 500.0)):
        profile = load_profile(name)
        rules = tuple(replace(r, limit_m=limit) if r.id == "net_cafe_school" else r for r in profile.rules)
        found = RuleEngine(demo_layers, replace(profile, rules=rules)).violations()
        row = _row(found, "net_cafe_school", case["venue_id"], case["school_id"])
        assert row["distance_m"] == pytest.approx(case["walk_m"], abs=0.05)
        assert row["straight_m"] == pytest.approx(case["boundary_m"], abs=0.05)


def test_precheck_at_a_designed_violation(demo_layers, demo_design):
    engine = RuleEngine(demo_layers, load_profile("national"))
    case = demo_design["near_school"][0]
    cafes = demo_layers["net_cafes"].set_index("id")
    p = cafes.loc[case["venue_id"], "geometry"]
    answer = check_site(engine, p.x, p.y, kind="net_cafes")
    assert answer.verdict == "violation"
    assert answer.shortfall_m >= 200.0 - case["distance_m"] - 0.05
