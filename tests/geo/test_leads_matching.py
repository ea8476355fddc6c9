"""Unlicensed-café leads: names, one-to-one matching, evidence, on hand-built layers and the demo.

Points are laid out in metres on a local transverse Mercator (scale 1 at its centre) and
converted to WGS84; expected distances come from pyproj.Geod, never from civicmap.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Geod, Transformer

from geo import names
from geo.leads import (
    LEAD_COLUMNS,
    LeadOptions,
    branch_of,
    name_score,
    normalise_name,
    reconcile,
    select_observed_cafes,
)
from layers.errors import CRSError

GEOD = Geod(ellps="WGS84")
LON0, LAT0 = 114.30, 30.55
_TO_LL = Transformer.from_crs(
    f"+proj=tmerc +lon_0={LON0} +lat_0={LAT0} +k=1 +ellps=WGS84 +units=m", "EPSG:4326", always_xy=True
)


def ll(x: float, y: float = 0.0) -> shapely.Point:
    return shapely.Point(*_TO_LL.transform(x, y))


def layer(rows: list[dict]) -> gpd.GeoDataFrame:
    records = [{k: v for k, v in r.items() if k != "xy"} for r in rows]
    return gpd.GeoDataFrame(records, geometry=[ll(*r["xy"]) for r in rows], crs="EPSG:4326")


def geod_m(a: shapely.Point, b: shapely.Point) -> float:
    return GEOD.inv(a.x, a.y, b.x, b.y)[2]


def by(result: gpd.GeoDataFrame, column: str, value: str) -> dict:
    rows = result[result[column] == value]
    assert len(rows) == 1, rows
    return rows.iloc[0].to_dict()


# ------------------------------------------------------------------ names
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("星海网咖（东湖店）", "星海"),
        ("星海网咖(东湖店)", "星海"),
        ("星海网吧[东湖分店]", "星海"),
        ("星海 网络会所", "星海"),
        ("极光电竞馆", "极光"),
        ("星海网咖东湖店", "星海东湖"),
        ("西安市星海网络有限公司", "星海"),  # a company name: the division prefix goes
        ("陕西省西安市雁塔区星海网络有限公司", "星海"),
        ("雁塔区星海网络有限公司", "星海"),
        ("西安市网络有限公司", "西安市"),  # nothing but the division: keep it
        ("城市之光网吧", "城市之光"),  # not a company name: no prefix stripped
        ("西安市民网吧", "西安市民"),
        ("电竞网咖(钟楼分店)", "电竞网咖"),  # generic words only: the branch still goes
        ("电竞网咖", "电竞网咖"),
        ("ＡＢＣ网咖", "abc"),  # full-width letters
        ("E·时代 网吧!", "e时代"),
        ("【网鱼】网咖", "网鱼"),  # the brand in brackets is kept when nothing else is left
        ("网吧", "网吧"),  # nothing distinctive: keep the word rather than ""
        ("", ""),
    ],
)
def test_normalise_name(name, expected):
    assert normalise_name(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("星海网咖（东湖店）", "东湖"),
        ("星海网咖东湖店", "东湖"),
        ("星海网咖", ""),
        ("蓝鲸网络会所(和平路)", "和平路"),
    ],
)
def test_branch_of(name, expected):
    assert branch_of(name) == expected


def test_name_score_partial_branch_in_name_but_not_one_shared_character():
    assert name_score("星海", "星海") == 100.0
    assert name_score("星海", "星海东湖") == pytest.approx(90.0)  # 0.9 × partial ratio 100
    assert name_score("星海", "星空") < 75.0
    assert name_score("", "星海") == 0.0


# ------------------------------------------------------------------ matching
def test_assignment_is_one_to_one_and_beats_greedy_nearest():
    # R1 at 0 m, R2 at 85 m east; O1 at 10 m (10 from R1, 75 from R2); O2 at -20 m (20 from R1,
    # 105 from R2: too far).  Greedy nearest-first takes O1-R1 and leaves O2 a false lead; the
    # assignment pairs O2-R1 and O1-R2, both within 100 m.
    register = layer(
        [
            {
                "id": "nc-1",
                "name": "星海网咖(东门店)",
                "licence_no": "L1",
                "status": "licensed",
                "xy": (0, 0),
            },
            {
                "id": "nc-2",
                "name": "星海网咖(南门店)",
                "licence_no": "L2",
                "status": "licensed",
                "xy": (85, 0),
            },
        ]
    )
    observed = layer(
        [{"id": "o1", "name": "星海网咖", "xy": (10, 0)}, {"id": "o2", "name": "星海网吧", "xy": (-20, 0)}]
    )
    result = reconcile(register, observed)
    assert list(result.columns) == [*LEAD_COLUMNS, "geometry"]
    assert result.crs.to_epsg() == 4326
    assert result["status"].tolist() == ["matched", "matched"]
    assert result["register_id"].tolist() == ["nc-2", "nc-1"]
    assert result["licence_no"].tolist() == ["L2", "L1"]
    o1 = by(result, "observed_id", "o1")
    assert o1["distance_m"] == pytest.approx(geod_m(observed.geometry[0], register.geometry[1]), abs=1e-3)
    assert o1["distance_m"] == pytest.approx(75.0, abs=0.01)
    assert o1["score"] == 100.0


def test_lead_and_not_observed_carry_the_best_candidate_as_evidence():
    register = layer(
        [
            {"id": "nc-1", "name": "金手指网吧", "licence_no": "L1", "status": "licensed", "xy": (0, 0)},
            {"id": "nc-2", "name": "蓝鲸网络会所", "licence_no": "L2", "status": "licensed", "xy": (1000, 0)},
            {"id": "nc-3", "name": "远方网吧", "licence_no": "L3", "status": "revoked", "xy": (5000, 0)},
        ]
    )
    observed = layer(
        [
            {"id": "o1", "name": "纬八路网络会所", "source": "群众举报", "xy": (0, 30)},  # close, other name
            {"id": "o2", "name": "蓝鲸网咖", "xy": (1120, 0)},  # same name, 120 m away
        ]
    )
    plain = LeadOptions(name_confirmed_distance_m=None)  # the same-name rule off: 100 m for all
    result = reconcile(register, observed, options=plain)
    assert result["status"].tolist() == [
        "unlicensed",
        "unlicensed",
        "not_observed",
        "not_observed",
        "not_observed",
    ]
    o1 = by(result, "observed_id", "o1")
    assert (o1["candidate_id"], o1["candidate_name"], o1["observed_source"]) == (
        "nc-1",
        "金手指网吧",
        "群众举报",
    )
    assert o1["distance_m"] == pytest.approx(geod_m(observed.geometry[0], register.geometry[0]), abs=1e-3)
    assert o1["score"] < 75 and o1["register_id"] is None
    o2 = by(result, "observed_id", "o2")
    assert (o2["candidate_id"], o2["score"]) == ("nc-2", 100.0)
    assert o2["distance_m"] == pytest.approx(120.0, abs=0.01)
    far = by(result, "register_id", "nc-3")
    assert far["status"] == "not_observed" and far["register_status"] == "revoked"
    assert far["candidate_id"] is None and np.isnan(far["score"])
    assert far["geometry"].equals_exact(register.geometry[2], 1e-12)  # the register point
    # a wider limit turns the 120 m pair into a match
    wider = reconcile(register, observed, max_distance_m=150.0, options=plain)
    assert by(wider, "observed_id", "o2")["register_id"] == "nc-2"
    assert wider["status"].value_counts().to_dict() == {"not_observed": 2, "unlicensed": 1, "matched": 1}


def test_second_sighting_is_a_duplicate_unless_its_branch_differs():
    register = layer(
        [{"id": "nc-1", "name": "火狐网吧(新桥店)", "licence_no": "L1", "status": "licensed", "xy": (0, 0)}]
    )
    observed = layer(
        [
            {"id": "o1", "name": "火狐网吧", "xy": (0, 20)},
            {"id": "o2", "name": "火狐网咖(新桥店)", "xy": (10, 0)},
            {"id": "o3", "name": "火狐网咖(和平店)", "xy": (-15, 0)},
        ]
    )
    result = reconcile(register, observed)
    first = by(result, "observed_id", "o2")  # the closest sighting wins the assignment
    assert (first["status"], first["register_id"], first["duplicate_of"]) == ("matched", "nc-1", None)
    dup = by(result, "observed_id", "o1")
    assert (dup["status"], dup["register_id"], dup["duplicate_of"]) == ("matched", "nc-1", "o2")
    other = by(result, "observed_id", "o3")
    assert (other["status"], other["candidate_id"]) == ("unlicensed", "nc-1")
    plain = reconcile(register, observed, options=None, min_score=75.0)
    assert plain["status"].tolist() == ["matched", "matched", "unlicensed"]
    strict = reconcile(register, observed, options=LeadOptions(merge_duplicates=False))
    assert strict["status"].tolist() == ["unlicensed", "matched", "unlicensed"]


def test_polygon_register_entry_is_measured_to_its_footprint():
    footprint = shapely.Polygon([ll(0, 0), ll(20, 0), ll(20, 20), ll(0, 20)])
    register = gpd.GeoDataFrame(
        [{"id": "nc-1", "name": "云端网咖", "licence_no": "L1", "status": "licensed"}],
        geometry=[footprint],
        crs="EPSG:4326",
    )
    observed = layer([{"id": "o1", "name": "云端网吧", "xy": (20 + 95, 10)}])
    row = by(reconcile(register, observed), "observed_id", "o1")
    assert row["status"] == "matched"
    assert row["distance_m"] == pytest.approx(95.0, abs=0.01)


def test_empty_inputs_and_bad_crs():
    register = layer(
        [{"id": "nc-1", "name": "云端网咖", "licence_no": "L1", "status": "licensed", "xy": (0, 0)}]
    )
    none = register.iloc[0:0]
    assert reconcile(register, none)["status"].tolist() == ["not_observed"]
    assert reconcile(none, register)["status"].tolist() == ["unlicensed"]
    with pytest.raises(CRSError, match="not WGS84"):
        reconcile(register.to_crs(3857), register)
    with pytest.raises(ValueError, match="max_distance_m"):
        reconcile(register, register, max_distance_m=0)


def test_select_observed_cafes_by_category_or_name():
    pois = layer(
        [
            {"id": "p1", "name": "星海网咖", "category": "网吧", "xy": (0, 0)},
            {"id": "p2", "name": "经四路上网室", "category": "培训机构", "xy": (0, 0)},  # name reveals it
            {"id": "p3", "name": "童趣游戏厅网咖", "category": "游艺厅", "xy": (0, 0)},  # a game venue
            {"id": "p4", "name": "文华书店", "category": None, "xy": (0, 0)},
            {"id": "p5", "name": "无名小店", "category": "网吧", "xy": (0, 0)},
        ]
    )
    assert select_observed_cafes(pois)["id"].tolist() == ["p1", "p2", "p5"]
    register = layer(
        [{"id": "gv-1", "name": "童趣游戏厅", "licence_no": "G1", "status": "licensed", "xy": (0, 0)}]
    )
    assert reconcile(register, pois)["observed_id"].dropna().tolist() == ["p1", "p2", "p5"]
    assert reconcile(register, pois, filter_observed=False)["observed_id"].dropna().tolist() == [
        "p1",
        "p2",
        "p3",
        "p4",
        "p5",
    ]


# ------------------------------------------------------------------ the demo district
def test_demo_design_matches_and_leads(demo_layers, demo_design):
    result = reconcile(demo_layers["net_cafes"], demo_layers["pois"])  # filtered: it has a category column
    truth = {m["poi_id"]: m["venue_id"] for m in demo_design["pois"]["matched"]}
    cafes = {p: v for p, v in truth.items() if v.startswith("nc-")}
    observed = result[result["status"] != "not_observed"].set_index("observed_id")
    assert set(cafes) <= set(observed.index)
    assert not observed.index.isin([p for p, v in truth.items() if v.startswith("gv-")]).any()
    for poi, venue in cafes.items():
        assert (observed.at[poi, "status"], observed.at[poi, "register_id"]) == ("matched", venue), poi
    leads = set(observed.index[observed["status"] == "unlicensed"])
    designed = set(demo_design["pois"]["leads"])
    assert leads <= designed
    pois = demo_layers["pois"].set_index("id")
    net_category = {p for p in designed if pois.at[p, "category"] == "网吧"}
    assert net_category <= leads
    # every register entry is matched once, or listed as not observed
    matched_ids = result.loc[result["duplicate_of"].isna() & (result["status"] == "matched"), "register_id"]
    assert matched_ids.is_unique
    not_seen = set(result.loc[result["status"] == "not_observed", "register_id"])
    assert not_seen == set(demo_layers["net_cafes"]["id"]) - set(cafes.values())


def test_name_confirmed_distance_pairs_identical_names_farther_unless_branches_conflict():
    register = layer(
        [
            {"id": "nc-1", "name": "蓝鲸网络会所", "licence_no": "L1", "status": "licensed", "xy": (0, 0)},
            {
                "id": "nc-2",
                "name": "网鱼网咖(钟楼店)",
                "licence_no": "L2",
                "status": "licensed",
                "xy": (1000, 0),
            },
            {"id": "nc-3", "name": "星海网咖", "licence_no": "L3", "status": "licensed", "xy": (2000, 0)},
        ]
    )
    observed = layer(
        [
            {"id": "o1", "name": "蓝鲸网咖", "xy": (120, 0)},  # same name, 120 m: a geocoding error
            {"id": "o2", "name": "网鱼网咖(小寨店)", "xy": (1120, 0)},  # another branch of the chain
            {"id": "o3", "name": "星海网咖东湖店", "xy": (2120, 0)},  # score 90 < 95
            {"id": "o4", "name": "蓝鲸网咖", "xy": (0, 250)},  # beyond 200 m
        ]
    )
    for off in (None, 0.0):
        plain = reconcile(register, observed, options=LeadOptions(name_confirmed_distance_m=off))
        assert (plain["status"] == "matched").sum() == 0
    wide = reconcile(register, observed)  # on by default, up to 200 m
    assert LeadOptions().name_confirmed_distance_m == 200.0
    assert by(wide, "observed_id", "o1")["register_id"] == "nc-1"
    assert by(wide, "observed_id", "o1")["distance_m"] == pytest.approx(120.0, abs=0.01)
    assert wide.set_index("observed_id").loc[["o2", "o3", "o4"], "status"].tolist() == ["unlicensed"] * 3


def test_same_name_distance_is_its_own_setting():
    # 蓝鲸 at 150 m: pairs under the default 200 m rule, not with a 140 m one, while the ordinary
    # limit stays 100 m (a different name at 90 m still pairs, at 110 m does not).
    register = layer(
        [
            {"id": "nc-1", "name": "蓝鲸网络会所", "licence_no": "L1", "status": "licensed", "xy": (0, 0)},
            {"id": "nc-2", "name": "星海网吧", "licence_no": "L2", "status": "licensed", "xy": (5000, 0)},
            {"id": "nc-3", "name": "星河网吧", "licence_no": "L3", "status": "licensed", "xy": (9000, 0)},
        ]
    )
    observed = layer(
        [
            {"id": "o1", "name": "蓝鲸网咖", "xy": (150, 0)},
            {"id": "o2", "name": "星海网咖东湖店", "xy": (5090, 0)},  # score 90: ordinary rule
            {"id": "o3", "name": "星河网咖东湖店", "xy": (9110, 0)},  # score 90 at 110 m: no
        ]
    )
    default = reconcile(register, observed).set_index("observed_id")
    assert default.loc[["o1", "o2", "o3"], "status"].tolist() == ["matched", "matched", "unlicensed"]
    narrow = reconcile(register, observed, options=LeadOptions(name_confirmed_distance_m=140.0))
    narrow = narrow.set_index("observed_id")
    assert narrow.loc[["o1", "o2", "o3"], "status"].tolist() == ["unlicensed", "matched", "unlicensed"]


def test_company_names_of_the_register_pair_with_the_shop_sign():
    # the register writes the company name, the map the shop sign; 130 m apart (geocoded)
    register = layer(
        [
            {
                "id": "nc-1",
                "name": "西安市天彩网络有限公司",
                "licence_no": "L1",
                "status": "licensed",
                "xy": (0, 0),
            },
            {
                "id": "nc-2",
                "name": "电竞网咖 (钟楼分店)",
                "licence_no": "L2",
                "status": "licensed",
                "xy": (3000, 0),
            },
        ]
    )
    observed = layer(
        [{"id": "o1", "name": "天彩网吧", "xy": (130, 0)}, {"id": "o2", "name": "电竞网咖", "xy": (3000, 40)}]
    )
    result = reconcile(register, observed).set_index("observed_id")
    assert result.loc[["o1", "o2"], "register_id"].tolist() == ["nc-1", "nc-2"]
    assert result.loc["o1", "score"] == 100.0
    assert names.normalise_name is normalise_name  # geo.leads re-exports geo.names
