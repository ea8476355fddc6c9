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
