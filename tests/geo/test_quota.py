"""Density, stock and quotas: counts on the hand-built district, allocation worked by hand, the demo."""

from __future__ import annotations

import numpy as np
import pytest

from geo.leads import leads_from_layers
from geo.precheck import check_site
from geo.quota import (
    DISTRICT_ROW,
    QUOTA_COLUMNS,
    allocate_quotas,
    district_total,
    quota_summary,
    quota_table,
    relocation_suggestions,
    stock_table,
    unlicensed_leads,
)
from geo.rules import load_profile
from geo.violations import RuleEngine
from layers.errors import CivicmapError
from tests.geo.test_permissible import hand_built_layers


@pytest.fixture(scope="module")
def hand_engine() -> RuleEngine:
    return RuleEngine(hand_built_layers(), load_profile("national"))


@pytest.fixture(scope="module")
def demo_engine(demo_layers) -> RuleEngine:
    return RuleEngine(demo_layers, load_profile("national"))


def test_largest_remainder_worked_by_hand():
    # 10 × (61200, 52800, 68400) / 182400 = 3.355, 2.895, 3.750 → floors 3, 2, 3; two seats left
    # go to the largest remainders (.895, .750)
    assert allocate_quotas([61200, 52800, 68400], 10).tolist() == [3, 3, 4]


def test_no_quota_without_permissible_land_and_ties_to_the_earlier_area():
    assert allocate_quotas([100, 100, 100], 5, [True, False, True]).tolist() == [3, 0, 2]
    assert allocate_quotas([100, 300], 0).tolist() == [0, 0]
    assert allocate_quotas([0, 0], 3).tolist() == [0, 0]


def test_quotas_always_sum_to_the_total():
    rng = np.random.default_rng(0)
    for _ in range(200):
        pop = rng.integers(0, 100_000, rng.integers(1, 15))
        eligible = rng.random(len(pop)) < 0.8
        total = int(rng.integers(0, 500))
        out = allocate_quotas(pop, total, eligible)
        expected = total if (pop * eligible).sum() > 0 else 0
        assert out.sum() == expected
        assert (out[~eligible] == 0).all()
        share = total * pop * eligible / max((pop * eligible).sum(), 1)
        assert (np.abs(out - share) < 1).all()  # never more than one seat from the exact share


def test_district_total():
    assert district_total(350_000, per_residents=12_000) == 29
    assert district_total(350_000, cap=60) == 60
    with pytest.raises(CivicmapError):
        district_total(350_000)
    with pytest.raises(CivicmapError):
        district_total(350_000, per_residents=12_000, cap=60)
    with pytest.raises(CivicmapError):
        district_total(350_000, per_residents=0)


def test_stock_counts_on_the_hand_built_district(hand_engine):
    table = stock_table(hand_engine).set_index("subdistrict")
    a, b = table.loc["甲街道"], table.loc["乙街道"]
    assert (a["cafes"], a["terminals"], a["violating"], a["unlicensed_leads"], a["game_venues"]) == (
        3,
        240,
        2,
        1,
        1,
    )
    assert (b["cafes"], b["terminals"], b["violating"], b["unlicensed_leads"], b["game_venues"]) == (
        2,
        170,
        1,
        0,
        0,
    )
    assert a["cafes_per_10k"] == pytest.approx(1.0) and b["cafes_per_10k"] == pytest.approx(2.0)
    assert a["terminals_per_1k"] == pytest.approx(8.0) and b["terminals_per_1k"] == pytest.approx(17.0)
    assert a["chain_share"] == 0 and b["chain_share"] == pytest.approx(0.5)
    assert a["game_venues_per_10k"] == pytest.approx(1 / 3)
    # p1 "网吧c5" 5 m from café c5 "网吧c5" is matched; p3 is a training room, not a net café
    assert list(unlicensed_leads(hand_engine)["observed_id"]) == ["p2"]
    assert unlicensed_leads(hand_engine, "game_venues").empty  # only net cafés are reconciled


def test_stock_table_counts_the_leads_of_the_reconciliation(demo_engine, demo_layers, demo_design):
    """The quota table, the leads page and the enforcement list count one set of leads."""
    found = leads_from_layers(demo_layers)
    expected = set(found.loc[found["status"] == "unlicensed", "observed_id"])
    leads = unlicensed_leads(demo_engine)
    assert set(leads["observed_id"]) == expected
    assert expected <= set(demo_design["pois"]["leads"])  # every lead is one the demo planted
    assert len(expected) >= 0.75 * len(demo_design["pois"]["leads"])
    table = quota_table(demo_engine, cap=60)
    assert table.iloc[-1]["unlicensed_leads"] == len(expected)
    assert table.iloc[:-1]["unlicensed_leads"].sum() == len(expected)


def test_quota_table_by_ratio_and_by_cap(hand_engine):
    by_ratio = quota_table(hand_engine, per_residents=10_000)  # 40,000 residents → 4 cafés
    assert list(by_ratio.columns) == QUOTA_COLUMNS
    rows = by_ratio.set_index("subdistrict")
    assert rows.loc["甲街道", "quota"] == 3 and rows.loc["乙街道", "quota"] == 1
    assert rows.loc["甲街道", "headroom"] == 0 and rows.loc["乙街道", "headroom"] == -1
    district = rows.loc[DISTRICT_ROW]
    assert (district["population"], district["cafes"], district["quota"], district["headroom"]) == (
        40000,
        5,
        4,
        -1,
    )
    assert district["cafes_per_10k"] == pytest.approx(1.25)
    assert district["chain_share"] == pytest.approx(0.2)
    by_cap = quota_table(hand_engine, cap=5).set_index("subdistrict")  # 3.75 / 1.25 → 4 / 1
    assert by_cap.loc["甲街道", "quota"] == 4 and by_cap.loc["乙街道", "quota"] == 1


def test_summary_in_plain_chinese(hand_engine):
    text = quota_summary(quota_table(hand_engine, per_residents=10_000))
    assert "全区常住人口4.0万人" in text and "现有持证网吧5家" in text
    assert "全区配额4家" in text and "超出1家" in text
    assert "乙街道（超1家）" in text and "3家持证网吧不符合" in text and "1处疑似无证网吧" in text


def test_summary_in_plain_english_says_the_same(hand_engine):
    text = quota_summary(quota_table(hand_engine, per_residents=10_000), "en")
    assert text.startswith("The district has 40,000 residents and 5 licensed net cafés (1.25 per 10,000)")
    assert "At one café per 10,000 residents, its quota is 4 café(s): 1 over;" in text
    assert "Over quota: 乙街道 (1 over)." in text and "3 licensed café(s) break" in text
    assert "show 1 likely unlicensed café(s)" in text


def test_demo_quotas_sum_to_the_cap(demo_engine):
    table = quota_table(demo_engine, cap=60)
    subs = table[table["subdistrict"] != DISTRICT_ROW]
    assert subs["quota"].sum() == 60 == table.iloc[-1]["quota"]
    assert (subs["headroom"] == subs["quota"] - subs["cafes"]).all()
    assert subs["cafes"].sum() == 97  # licensed cafés of the demo (design: 110 rows, 13 not licensed)


def test_relocation_targets_pass_the_precheck(demo_engine):
    moves = relocation_suggestions(demo_engine)
    found = demo_engine.violations(kinds={"net_cafes"})
    licensed = demo_engine.layer("net_cafes")
    licensed = set(licensed.loc[licensed["status"] == "licensed", "id"])
    assert set(moves["venue_id"]) == set(found["venue_id"]) & licensed
    assert (moves["distance_m"] > 0).all()
    for row in moves.head(6).itertuples():
        assert (
            check_site(demo_engine, row.target_lon, row.target_lat, kind="net_cafes").verdict != "violation"
        )
