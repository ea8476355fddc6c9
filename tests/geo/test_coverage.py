"""Coverage on hand-built districts whose answers are worked out by hand (see coverage_helpers)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from coverage_helpers import LOCAL, facilities, frame, line, rect, residential

from geo.coverage import (
    ANY,
    DISTRICT_TOTAL,
    compute_coverage,
    free_for_minors_violations,
    load_standards,
    subdistricts_without_centre,
)
from geo.network import WalkNetwork
from geo.service_areas import nearest_walk_m, service_area_lines
from layers.errors import CivicmapError


def _subdistricts():
    # A (urban) west of x = 700 m, B (rural) east of it
    return frame(
        [
            {
                "id": "sd-1",
                "name": "A",
                "population": 600,
                "urban": True,
                "geometry": rect(-500, -500, 700, 1500),
            },
            {
                "id": "sd-2",
                "name": "B",
                "population": 400,
                "urban": False,
                "geometry": rect(700, -500, 2000, 1500),
            },
        ]
    )


@pytest.fixture
def straight_layers():
    units = residential(
        ("u1", 0, 250, 100, "A"),
        ("u2", 0, 800, 200, "A"),
        ("u3", 0, 1200, 300, "A"),
        ("u4", 1400, 0, 400, "B"),
    )
    facs = facilities(("st", "cultural_station", 0, 0), ("cin", "cinema", 0, 1200))
    return {"residential": units, "cultural_facilities": facs, "subdistricts": _subdistricts()}


def _shares(result, type_name, cutoff):
    table = result.table(type_name, cutoff).set_index("subdistrict")
    return {k: (int(r.covered), int(r.population)) for k, r in table.iterrows()}


def test_straight_line_cutoffs_by_hand(straight_layers):
    result = compute_coverage(straight_layers, method="straight")
    assert [c.label for c in result.cutoffs] == ["5 min", "10 min", "15 min", "standard"]
    # 5 min: urban 300 m, rural 500 m -> only u1 (250 m)
    assert _shares(result, "cultural_station", "5 min") == {
        "A": (100, 600),
        "B": (0, 400),
        DISTRICT_TOTAL: (100, 1000),
    }
    assert _shares(result, "cultural_station", "10 min") == {
        "A": (100, 600),
        "B": (0, 400),
        DISTRICT_TOTAL: (100, 1000),
    }
    # 15 min: urban 1000 m (u1 250, u2 800), rural 1500 m (u4 1400)
    assert _shares(result, "cultural_station", "15 min") == {
        "A": (300, 600),
        "B": (400, 400),
        DISTRICT_TOTAL: (700, 1000),
    }
    # the cinema covers u3 (0 m), u2 (400 m) and u1 (950 m) but does not count for "any"
    assert _shares(result, "cinema", "15 min")["A"] == (600, 600)
    assert _shares(result, ANY, "15 min") == _shares(result, "cultural_station", "15 min")
    left = result.uncovered(ANY, "15 min")
    assert left["id"].tolist() == ["u3"]
    assert left["distance_m"].iloc[0] == pytest.approx(1200.0, abs=0.05)
    table = result.table(ANY, "15 min")
    assert table["share"].iloc[-1] == pytest.approx(0.7)


def test_one_radius_for_all(straight_layers):
    result = compute_coverage(straight_layers, radius_m=1300)
    assert [c.label for c in result.cutoffs] == ["1300 m"]
    assert _shares(result, "cultural_station", None) == {
        "A": (600, 600),
        "B": (0, 400),
        DISTRICT_TOTAL: (600, 1000),
    }
    assert result.uncovered("cultural_station")["distance_m"].tolist() == pytest.approx([1400.0], abs=0.05)


def test_summary_has_every_type_and_cutoff(straight_layers):
    summary = compute_coverage(straight_layers).summary()
    assert set(summary["type"]) == {"cinema", "cultural_station", ANY}
    assert len(summary) == 3 * 4 * 3  # types x cutoffs x (A, B, district)


def test_bad_inputs_raise(straight_layers):
    with pytest.raises(CivicmapError, match="method"):
        compute_coverage(straight_layers, method="car")
    with pytest.raises(CivicmapError, match="bogus"):
        compute_coverage(straight_layers, types=["bogus"])
    with pytest.raises(CivicmapError, match="cutoff '7 min'"):
        compute_coverage(straight_layers).table(ANY, "7 min")


def test_standards_override(tmp_path, straight_layers):
    path = tmp_path / "mine.toml"
    path.write_text("[walking]\nspeed_m_per_min = 60.0\n[circle.urban]\n15 = 850.0\n", encoding="utf-8")
    standards = load_standards(path)
    assert standards.speed_m_per_min == 60.0
    assert standards.radius_m["library"]["urban"] == 2500.0  # untouched defaults kept
    result = compute_coverage(straight_layers, standards=standards)
    assert _shares(result, "cultural_station", "15 min")["A"] == (300, 600)  # 800 m still within 850
    path.write_text("[types.spaceport]\nradius_m = {urban = 1.0, rural = 1.0}\n", encoding="utf-8")
    with pytest.raises(CivicmapError, match="spaceport"):
        load_standards(path)


# ------------------------------------------------------------------ walking
@pytest.fixture
def walk_layers():
    # road 1 along y = 0 from x = -100 to 1000; road 2 north from (1000, 0) to (1000, 800)
    roads = frame(
        [
            {"id": "r1", "walkable": True, "geometry": line((-100, 0), (1000, 0))},
            {"id": "r2", "walkable": True, "geometry": line((1000, 0), (1000, 800))},
        ]
    )
    units = residential(
        ("round", 990, 600, 100, "A"), ("near", 500, -20, 200, "A"), ("field", 500, 400, 300, "A")
    )
    facs = facilities(("st", "cultural_station", 0, 10))
    subs = frame(
        [
            {
                "id": "sd-1",
                "name": "A",
                "population": 600,
                "urban": True,
                "geometry": rect(-500, -500, 1500, 1500),
            }
        ]
    )
    return {"residential": units, "cultural_facilities": facs, "subdistricts": subs, "roads": roads}


def test_walks_against_hand_computed_routes(walk_layers):
    net = WalkNetwork.from_roads(walk_layers["roads"], max_snap_m=150)
    centres = walk_layers["residential"].geometry
    dist, routable = nearest_walk_m(net, walk_layers["cultural_facilities"].geometry, centres)
    # round: 10 (snap) + 1000 (east) + 600 (north) + 10 (snap); near: 10 + 500 + 20
    assert dist[:2] == pytest.approx([1620.0, 530.0], abs=0.05)
    # field is 400 m from road 1 and 500 m from road 2: off the network, no distance invented
    assert np.isnan(dist[2]) and routable.tolist() == [True, True, False]
    bounded, _ = nearest_walk_m(net, walk_layers["cultural_facilities"].geometry, centres, limit_m=1000)
    assert np.isinf(bounded[0]) and bounded[1] == pytest.approx(530.0, abs=0.05)


def test_nearest_of_several_facilities(walk_layers):
    net = WalkNetwork.from_roads(walk_layers["roads"], max_snap_m=150)
    two = facilities(("a", "service_point", 0, 10), ("b", "service_point", 1030, 700))
    dist, _ = nearest_walk_m(net, two.geometry, walk_layers["residential"].geometry)
    # round from b: 30 (snap) + 100 (south) + 10 (snap) = 140; near from a: 530
    assert dist[:2] == pytest.approx([140.0, 530.0], abs=0.05)


def test_walking_coverage(walk_layers):
    result = compute_coverage(walk_layers, method="walk")
    # 15 min at 75 m/min = 1125 m: near (530) in, round (1620) out, field off the network
    assert _shares(result, "cultural_station", "15 min")["A"] == (200, 600)
    left = result.uncovered("cultural_station", "15 min").set_index("id")
    assert left.loc["round", "distance_m"] == pytest.approx(1620.0, abs=0.05)
    assert left.loc["field", "note"] == "off_network" and np.isnan(left.loc["field", "distance_m"])
    # standard: urban 15 walking minutes -> same as the 15-minute cutoff
    assert _shares(result, "cultural_station", "standard")["A"] == (200, 600)


@pytest.mark.parametrize(("limit_m", "length_m"), [(500, 100 + 490), (1300, 100 + 1000 + 290)])
def test_service_area_lengths(walk_layers, limit_m, length_m):
    net = WalkNetwork.from_roads(walk_layers["roads"], max_snap_m=150)
    area = service_area_lines(net, walk_layers["cultural_facilities"].geometry, limit_m)
    metric = gpd.GeoSeries([area], crs="EPSG:4326").to_crs(LOCAL).iloc[0]
    assert metric.length == pytest.approx(length_m, abs=0.1)
    assert shapely.get_num_geometries(area) >= 1


# ------------------------------------------------------------------ compliance
def test_compliance_lists():
    facs = facilities(
        ("lib", "library", 0, 0),
        ("mus", "museum", 100, 0),
        ("pb", "patriotic_base", 200, 0),
        ("cin", "cinema", 300, 0),
        ("st", "cultural_station", 0, 100),
    )
    facs.loc[facs["id"] == "mus", "free_for_minors"] = False
    facs["free_for_minors"] = facs["free_for_minors"].astype("boolean")
    facs.loc[facs["id"] == "pb", "free_for_minors"] = None
    facs.loc[facs["id"] == "cin", "free_for_minors"] = False
    bad = free_for_minors_violations(facs)
    assert bad["id"].tolist() == ["mus", "pb"]
    assert subdistricts_without_centre(facs, _subdistricts()) == ["B"]


def test_demo_compliance_and_population(demo_layers, demo_design):
    facts = demo_design["facilities"]
    bad = free_for_minors_violations(demo_layers["cultural_facilities"])
    assert bad["id"].tolist() == facts["must_be_free_but_marked_false"]
    assert set(load_standards().must_be_free) == set(facts["must_be_free_types"])
    missing = subdistricts_without_centre(demo_layers["cultural_facilities"], demo_layers["subdistricts"])
    assert missing == [facts["subdistrict_without_station_or_service_point"]]
    table = compute_coverage(demo_layers).table(ANY).set_index("subdistrict")
    expected = demo_design["residential_population"]
    assert {k: int(table.loc[k, "population"]) for k in expected} == expected
    assert table.loc[DISTRICT_TOTAL, "population"] == sum(expected.values())


def test_demo_walking_no_service_point_in_baisha(demo_layers, demo_design):
    result = compute_coverage(demo_layers, method="walk", types=["service_point", "cultural_station"])
    baisha = demo_design["facilities"]["subdistrict_without_station_or_service_point"]
    walk = result.table("service_point", "5 min").set_index("subdistrict")
    assert walk.loc[baisha, "covered"] == 0
    # a walk is never shorter than the straight line: walking coverage <= straight coverage
    straight = compute_coverage(demo_layers, types=["service_point"], radius_m=1125.0)
    walk_r = compute_coverage(demo_layers, method="walk", types=["service_point"], radius_m=1125.0)
    assert (
        walk_r.table("service_point")["covered"].iloc[-1]
        <= straight.table("service_point")["covered"].iloc[-1]
    )
    both = (
        walk_r.units["nearest_m:service_point"].to_numpy()
        >= straight.units["nearest_m:service_point"].to_numpy() - 0.01
    )
    assert both[np.isfinite(walk_r.units["nearest_m:service_point"].to_numpy())].all()


# ------------------------------------------------------------------ levels (libraries, 建标108-2008)
def _one_district(x0: float, x1: float):
    return frame(
        [{"id": "sd-1", "name": "A", "population": 0, "urban": True, "geometry": rect(x0, -500, x1, 500)}]
    )


def test_library_levels_straight_line_by_hand():
    # every point on y = 0, a geodesic of the aeqd frame: distances are differences of x
    libs = facilities(
        ("big", "library", 0, 0, "大型"),  # 9,000 m
        ("mid", "library", 20000, 0, " Medium "),  # 6,500 m (name, case and blanks ignored)
        ("dist", "library", 40000, 0, "区级"),  # not a level of the standard: default 2,500 m
        ("none", "library", 60000, 0, None),  # missing: default 2,500 m
    )
    units = residential(
        ("a", -8000, 0, 1, "A"),  # 8,000 from big: in
        ("b", -9500, 0, 2, "A"),  # 9,500 from big: out
        ("c", 26000, 0, 4, "A"),  # 6,000 from mid: in
        ("d", 27000, 0, 8, "A"),  # 7,000 from mid, 13,000 from dist: out
        ("e", 42000, 0, 16, "A"),  # 2,000 from dist: in
        ("f", 43000, 0, 32, "A"),  # 3,000 from dist: out (would be in at 6,500 or 9,000)
        ("g", 62400, 0, 64, "A"),  # 2,400 from none: in
        ("h", 57000, 0, 128, "A"),  # 3,000 from none: out
    )
    layers = {"residential": units, "cultural_facilities": libs, "subdistricts": _one_district(-10000, 64000)}
    result = compute_coverage(layers)
    assert _shares(result, "library", "standard")["A"] == (1 + 4 + 16 + 64, 255)
    assert _shares(result, ANY, "standard")["A"] == (85, 255)
    # the minute circles ignore levels: 15 min = 1,000 m urban reaches nobody
    assert _shares(result, "library", "15 min")["A"] == (0, 255)
    assert sorted(result.uncovered("library", "standard")["id"]) == ["b", "d", "f", "h"]
    reach = result.facilities.set_index("id")
    assert reach["reach_m"].to_dict() == {"big": 9000.0, "mid": 6500.0, "dist": 2500.0, "none": 2500.0}
    assert reach["level"].to_dict() == {"big": "large", "mid": "medium", "dist": "", "none": ""}
    assert reach.loc["dist", "facility_level"] == "区级"


def test_library_levels_walking_by_hand():
    # a road along y = 0 (vertices every km, so it follows the geodesic); facilities 10 m north,
    # units 20 m south: a walk is 10 + |dx| + 20
    roads = frame(
        [{"id": "r", "walkable": True, "geometry": line(*[(x, 0) for x in range(-1000, 25000, 1000)])}]
    )
    libs = facilities(
        ("big", "library", 0, 10, "large"),  # 9,000 m along the network
        ("dist", "library", 12000, 10, "区级"),  # default: 15 min x 75 m/min = 1,125 m
        ("small", "library", 20000, 10, "小型"),  # small level: walking minutes as the default
    )
    units = residential(
        ("p", 8000, -20, 1, "A"),  # big 8,030: in
        ("q", 9500, -20, 2, "A"),  # big 9,530, dist 2,530: out
        ("r", 11000, -20, 4, "A"),  # dist 1,030: in
        ("s", 21000, -20, 8, "A"),  # small 1,030: in
        ("w", 21800, -20, 16, "A"),  # small 1,830: out (inside its 2,500 m straight radius)
    )
    layers = {
        "residential": units,
        "cultural_facilities": libs,
        "subdistricts": _one_district(-2000, 26000),
        "roads": roads,
    }
    result = compute_coverage(layers, method="walk")
    dist = dict(zip(result.units["id"], result.units["nearest_m:library"], strict=True))
    assert dist["q"] == pytest.approx(2530.0, abs=0.5) and dist["w"] == pytest.approx(1830.0, abs=0.5)
    assert _shares(result, "library", "standard")["A"] == (1 + 4 + 8, 31)
    assert _shares(result, "library", "15 min")["A"] == (4 + 8, 31)
    reach = result.facilities.set_index("id")["reach_m"].to_dict()
    assert reach == {"big": 9000.0, "dist": 1125.0, "small": 1125.0}


def test_level_overrides_and_thresholds(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(
        "[types.library.levels.medium]\nradius_m = 3000.0\n"
        '[types.cultural_centre.levels.provincial]\naliases = ["省级"]\n'
        "radius_m = { urban = 4000.0, rural = 5000.0 }\nwalk_minutes = { urban = 30.0, rural = 40.0 }\n",
        encoding="utf-8",
    )
    standards = load_standards(path)
    standard = standards.cutoffs()[-1]
    urban = np.array([True, False])
    assert standards.level_of("library", "中型") == "medium"  # shipped alias kept by the override
    assert standards.threshold_m(standard, "library", urban, "straight", facility_level="中型").tolist() == [
        3000.0,
        3000.0,
    ]
    centre = standards.threshold_m(standard, "cultural_centre", urban, "walk", facility_level="省级")
    assert centre.tolist() == [30 * 75.0, 40 * 75.0]
    assert standards.threshold_m(standard, "cultural_centre", urban, "straight").tolist() == [1000.0, 1500.0]
    # levels never change the minute circles; a level of another type is not matched
    assert standards.threshold_m(
        standards.cutoffs()[2], "library", urban, "straight", facility_level="大型"
    ).tolist() == [1000.0, 1500.0]
    assert standards.level_of("museum", "大型") is None
    path.write_text("[types.library.levels.huge]\naliases = ['巨型']\n", encoding="utf-8")
    with pytest.raises(CivicmapError, match="radius_m"):
        load_standards(path)
