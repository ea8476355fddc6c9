"""Enforcement targets: one per venue, scores worked out by hand, ranks, leads, surveys, teams, config."""

from __future__ import annotations

import math
from types import SimpleNamespace

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from geo.targets import (
    BARRED_RULE,
    COLUMNS,
    LEAD_RULE,
    UNASSIGNED_TEAM,
    EnforcementConfig,
    build_targets,
    filter_targets,
    load_config,
    score,
)
from geo.violations import COLUMNS as VIOLATION_COLUMNS
from layers.errors import RuleError

#: round numbers so every score below can be added up by hand
CONFIG = EnforcementConfig(
    score={"base": 10.0, "per_shortfall_m": 0.25, "shortfall_cap": 40.0, "per_extra_site": 8.0,
           "unlicensed": 40.0, "operating_while_barred": 35.0, "earlier_finding": 15.0, "open_case": 5.0,
           "reopened": 20.0, "recheck": -10.0, "approximate": -5.0},
    level={"primary": 30.0, "kindergarten": 30.0, "senior": 15.0},
    rule_type={"residential": 25.0, "spacing": 10.0, "zone": 15.0},
    deadline_days=30, revisit_days=90, stops_per_day=8, walking=False,
    teams={"一中队": ("东湖街道",), "二中队": ("星海街道",)},
)  # fmt: skip


def finding(venue_id, site_id, distance_m, *, level="primary", limit_m=200.0, rule_type="distance",
            kind="net_cafes", subdistrict="东湖街道", recheck=False, approximate=False, violation=True,
            status="licensed", x=114.30):  # fmt: skip
    """One row of a RuleEngine violation table, built by hand."""
    shortfall = math.nan if rule_type == "residential" else max(limit_m - distance_m, 0.0)
    row = dict.fromkeys(VIOLATION_COLUMNS, "")
    row.update(
        venue_id=venue_id, venue_name=f"name-{venue_id}", venue_kind=kind, venue_status=status,
        licence_no=f"L-{venue_id}", site_id=site_id, site_name=f"school-{site_id}",
        site_kind="schools" if rule_type == "distance" else "residential", site_level=level,
        rule=f"rule-{rule_type}", rule_type=rule_type, limit_m=limit_m, distance_m=distance_m,
        straight_m=distance_m, shortfall_m=shortfall, method="boundary" if rule_type == "distance" else "inside",
        approximate=approximate, recheck=recheck, violation=violation, subdistrict=subdistrict,
        geometry=shapely.LineString([(x, 30.5), (x, 30.5 + distance_m / 111_000)]),
    )  # fmt: skip
    return row


def frame(*rows) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(pd.DataFrame(list(rows)), geometry="geometry", crs="EPSG:4326")


def by_id(targets) -> dict:
    return {t["venue_id"]: t for t in targets.to_dict(orient="records")}


def test_one_target_per_venue_with_every_finding_and_hand_worked_scores():
    found = frame(
        finding("a", "s1", 50.0),                              # primary, 150 m short
        finding("a", "s2", 120.0, level="senior"),             # a second site
        finding("b", "s3", 50.0, level="senior"),              # same shortfall, senior only
        finding("c", "r1", 0.0, rule_type="residential", level="building"),
        finding("d", "s4", 190.0, recheck=True),               # 10 m short, in the recheck band
        finding("e", "s5", 250.0, violation=False),            # a near miss: not a target
    )  # fmt: skip
    targets = build_targets(found, config=CONFIG)
    assert list(targets.columns) == [*COLUMNS, "geometry"]
    t = by_id(targets)
    assert set(t) == {"a", "b", "c", "d"}
    assert len(t["a"]["findings"]) == 2
    # a: 10 + min(40, 0.25 × 150) + 30 (primary) + 8 (second site) = 85.5
    assert t["a"]["priority"] == pytest.approx(85.5)
    # b: 10 + 37.5 + 15 (senior) = 62.5
    assert t["b"]["priority"] == pytest.approx(62.5)
    # c: 10 + 25 (residential) = 35
    assert t["c"]["priority"] == pytest.approx(35.0)
    # d: 10 + 2.5 + 30 − 10 (recheck) = 32.5
    assert t["d"]["priority"] == pytest.approx(32.5)
    assert list(targets["venue_id"]) == ["a", "b", "c", "d"]
    assert list(targets["rank"]) == [1, 2, 3, 4]
    # the worst finding gives distance, limit and method; the summary explains it in Chinese
    assert t["a"]["distance_m"] == pytest.approx(50.0) and t["a"]["limit_m"] == 200.0
    assert t["a"]["summary"].startswith("距school-s1 50.0 米，限值 200 米（边界最近距离）")
    assert t["a"]["protected"] == "school-s1；school-s2"
    assert "涉及小学 +30.0" in t["a"]["priority_reasons"]
    assert "接近限值，需现场复核 -10.0" in t["d"]["priority_reasons"]
    # the same in English, for English pages
    assert t["a"]["summary_en"] == (
        "50.0 m from school-s1, limit 200 m (nearest boundary); 120.0 m from school-s2, limit 200 m (nearest boundary)"
    )
    assert t["c"]["summary_en"] == "inside school-r1 (residential)"
    labels = [(f["rule_label"], f["rule_label_en"]) for f in t["a"]["findings"]]
    assert labels == [("距小学不足 200 米", "Less than 200 m from a primary school"),
                      ("距高中不足 200 米", "Less than 200 m from a senior secondary school")]  # fmt: skip
    assert [f["rule_label_en"] for f in t["c"]["findings"]] == ["Inside a residential building or compound"]
    assert (
        t["a"]["priority_reasons_en"]
        == "base +10.0; 150.0 m short +37.5; near a primary school +30.0; 2 protected sites +8.0"
    )
    assert "near the limit: measure on site -10.0" in t["d"]["priority_reasons_en"]
    assert t["a"]["geometry"].equals(shapely.Point(114.30, 30.5))
    assert t["a"]["findings"][0]["evidence"].startswith("LINESTRING")
    assert t["a"]["team"] == "一中队"


def test_shortfall_points_are_capped():
    # 195 m short × 0.25 = 48.75, capped at 40: 10 + 40 + 30 = 80
    targets = build_targets(frame(finding("a", "s1", 5.0)), config=CONFIG)
    assert targets.iloc[0]["priority"] == pytest.approx(80.0)


def test_primary_and_kindergarten_rank_above_senior_in_the_shipped_weights():
    shipped = load_config()
    assert shipped.level["primary"] > shipped.level["senior"]
    assert shipped.level["kindergarten"] > shipped.level["senior"]
    targets = build_targets(
        frame(
            finding("senior", "s1", 100.0, level="senior"), finding("kg", "s2", 100.0, level="kindergarten")
        ),
        config=shipped,
    )
    assert list(targets["venue_id"]) == ["kg", "senior"]


def test_ties_break_on_shortfall_then_id():
    # both 10 + 30 + 0.25 × shortfall; equal priority needs equal shortfall, so use the cap
    targets = build_targets(frame(finding("z", "s1", 10.0), finding("y", "s2", 20.0)), config=CONFIG)
    assert targets["priority"].tolist() == [80.0, 80.0]
    assert list(targets["venue_id"]) == ["z", "y"]  # z is 190 m short, y 180 m


def test_case_history_terms():
    case = SimpleNamespace(case_id=7, status="new", closures=1, reopen_count=2, surveyed_distance_m=None,
                           survey_report="")  # fmt: skip
    targets = build_targets(frame(finding("a", "s1", 100.0)), cases={("net_cafes", "a"): case}, config=CONFIG)
    # 10 + 25 + 30 + 15 (closed before) + 5 (open) + 2 × 20 (reopened twice) = 125
    t = targets.iloc[0]
    assert t["priority"] == pytest.approx(125.0)
    assert t["case_id"] == 7 and t["case_status"] == "new"


def test_surveyed_distance_overrides_the_computed_one():
    near = SimpleNamespace(case_id=1, status="inspected", closures=0, reopen_count=0,
                           surveyed_distance_m=160.0, survey_report="测-2026-01")  # fmt: skip
    far = SimpleNamespace(case_id=2, status="inspected", closures=0, reopen_count=0,
                          surveyed_distance_m=205.0, survey_report="测-2026-02")  # fmt: skip
    found = frame(finding("a", "s1", 150.0, recheck=False), finding("b", "s2", 190.0, recheck=True))
    targets = build_targets(found, cases={("net_cafes", "a"): near, ("net_cafes", "b"): far}, config=CONFIG)
    assert list(targets["venue_id"]) == ["a"]  # b measured 205 m on site: no longer a violation
    t = targets.iloc[0]
    assert t["distance_m"] == 160.0 and t["method"] == "surveyed"
    assert t["findings"][0]["survey_report"] == "测-2026-01"
    # 10 + 0.25 × 40 + 30 + 5 (open case) = 55
    assert t["priority"] == pytest.approx(55.0)
    assert "实地测量" in t["summary"]


def leads_frame(rows) -> gpd.GeoDataFrame:
    base = {"observed_id": "", "observed_name": "", "observed_source": "网格员", "observed_at": "2026-05-01",
            "address": "", "register_id": None, "register_name": None, "licence_no": None,
            "register_status": None, "score": math.nan, "distance_m": math.nan, "candidate_id": None,
            "candidate_name": None}  # fmt: skip
    return gpd.GeoDataFrame(
        [{**base, **r} for r in rows], geometry=[shapely.Point(114.31, 30.51)] * len(rows), crs="EPSG:4326"
    )


def test_leads_become_targets_and_barred_venues_get_a_finding():
    leads = leads_frame([
        {"status": "unlicensed", "observed_id": "poi-9", "observed_name": "无名网吧", "address": "纬一路1号",
         "candidate_name": "星海网咖", "score": 62.0, "distance_m": 340.0},
        {"status": "matched", "observed_id": "poi-1", "observed_name": "蓝天网咖", "register_id": "b",
         "register_name": "蓝天网咖", "licence_no": "L-b", "register_status": "suspended", "score": 96.0,
         "distance_m": 12.0},
        {"status": "matched", "observed_id": "poi-2", "observed_name": "正常网吧", "register_id": "x",
         "register_status": "licensed", "score": 99.0, "distance_m": 3.0},
        {"status": "not_observed", "register_id": "y", "register_name": "关了的网吧", "register_status": "licensed"},
    ])  # fmt: skip
    targets = build_targets(frame(finding("b", "s1", 100.0)), leads=leads, config=CONFIG)
    t = by_id(targets)
    assert set(t) == {"poi-9", "b"}
    lead = t["poi-9"]
    assert lead["kind"] == "net_cafes" and lead["status"] == "unlicensed" and lead["name"] == "无名网吧"
    assert lead["rules"] == [LEAD_RULE]
    assert "无名网吧" in lead["summary"] and "星海网咖" in lead["summary"] and "340 米" in lead["summary"]
    assert lead["priority"] == pytest.approx(50.0)  # 10 + 40
    assert lead["address"] == "纬一路1号"
    assert lead["subdistrict"] == "" and lead["team"] == UNASSIGNED_TEAM
    barred = t["b"]
    assert set(barred["rules"]) == {"rule-distance", BARRED_RULE}
    # 10 + 25 + 30 + 35 (suspended but operating) = 100
    assert barred["priority"] == pytest.approx(100.0)
    assert "停业整顿期间仍在经营" in barred["summary"]
    assert lead["summary_en"] == (
        "Unlicensed lead: “无名网吧” seen on 2026-05-01 (网格员), no match in the register (closest: 星海网咖, similarity 62, 340 m apart)"
    )
    assert (
        "Operating while suspended: “蓝天网咖” seen on 2026-05-01 (网格员), name match 96"
        in barred["summary_en"]
    )


def test_lead_subdistrict_from_the_layer():
    subs = gpd.GeoDataFrame({"id": ["sd"], "name": ["星海街道"]}, geometry=[shapely.box(114.3, 30.5, 114.32, 30.52)],
                            crs="EPSG:4326")  # fmt: skip
    leads = leads_frame([{"status": "unlicensed", "observed_id": "p", "observed_name": "n"}])
    t = build_targets(None, leads=leads, layers={"subdistricts": subs}, config=CONFIG).iloc[0]
    assert t["subdistrict"] == "星海街道" and t["team"] == "二中队"


def test_venue_point_and_address_come_from_the_layer():
    cafes = gpd.GeoDataFrame({"id": ["a"], "name": ["层里的名字"], "address": ["纬八路30号"], "licence_no": ["L"],
                              "status": ["licensed"]}, geometry=[shapely.Point(114.4, 30.6)], crs="EPSG:4326")  # fmt: skip
    t = build_targets(frame(finding("a", "s1", 50.0)), layers={"net_cafes": cafes}, config=CONFIG).iloc[0]
    assert t["address"] == "纬八路30号" and t["name"] == "层里的名字"
    assert t["geometry"].equals(shapely.Point(114.4, 30.6))


def test_filters():
    found = frame(
        finding("a", "s1", 50.0), finding("b", "s2", 150.0, subdistrict="星海街道", kind="game_venues"),
        finding("c", "r", 0.0, rule_type="residential", subdistrict="白沙乡"),
    )  # fmt: skip
    targets = build_targets(found, config=CONFIG)
    assert list(filter_targets(targets, team="二中队")["venue_id"]) == ["b"]
    assert list(filter_targets(targets, subdistrict="东湖街道")["venue_id"]) == ["a"]
    assert list(filter_targets(targets, rule="rule-residential")["venue_id"]) == ["c"]
    assert list(filter_targets(targets, kind="game_venues")["venue_id"]) == ["b"]
    assert list(filter_targets(targets, min_priority=60)["venue_id"]) == ["a"]
    assert list(filter_targets(targets, team=UNASSIGNED_TEAM)["venue_id"]) == ["c"]


def test_no_findings_gives_an_empty_table_with_the_columns():
    targets = build_targets(frame(finding("e", "s", 250.0, violation=False)), config=CONFIG)
    assert targets.empty and list(targets.columns) == [*COLUMNS, "geometry"]


def test_workspace_file_overrides_the_shipped_weights(tmp_path):
    (tmp_path / "enforcement.toml").write_text(
        '[score]\nper_shortfall_m = 1.0\n[score.level]\nsenior = 1.0\n[teams]\n"独立队" = ["东湖街道"]\n',
        encoding="utf-8",
    )
    config = load_config(tmp_path)
    assert config.score["per_shortfall_m"] == 1.0 and config.score["base"] == load_config().score["base"]
    assert config.level["senior"] == 1.0 and config.level["primary"] == load_config().level["primary"]
    assert config.teams == {"独立队": ("东湖街道",)}
    assert str(tmp_path) in config.source


@pytest.mark.parametrize(
    ("text", "message"),
    [("[score]\nbase = 'ten'\n", "base = 'ten' is not a number"),
     ("[teams]\nA = 'x'\n", "is not a list of sub-district names"),
     ("[score\n", "not a valid TOML file")],
)  # fmt: skip
def test_bad_workspace_settings_are_refused_with_the_key(tmp_path, text, message):
    (tmp_path / "enforcement.toml").write_text(text, encoding="utf-8")
    with pytest.raises(RuleError, match=message):
        load_config(tmp_path)


def test_score_reasons_add_up_to_the_priority():
    found = frame(finding("a", "s1", 120.0), finding("a", "s2", 150.0, level="kindergarten"))
    t = build_targets(found, config=CONFIG).iloc[0]
    points = [float(part.rsplit(" ", 1)[1]) for part in t["priority_reasons"].split("；")]
    assert sum(points) == pytest.approx(t["priority"])
    total, reasons = score(t["findings"], CONFIG)
    assert total == t["priority"] and len(reasons) == 4  # base, shortfall, level, second site
    english = score(t["findings"], CONFIG, language="en")
    assert english[0] == total  # the language changes the words, not the points
    assert [r.rsplit(" ", 1)[1] for r in english[1]] == [r.rsplit(" ", 1)[1] for r in reasons]
