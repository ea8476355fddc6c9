"""Violations under each measuring regime, on tiny layers whose answers are worked out by hand.

Geometry is laid out in metres on a local transverse Mercator (scale 1 at its centre, error
< 1e-6 within a few hundred metres) and converted to WGS84; expected distances come from
the layout or from pyproj.Geod, never from civicmap itself.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Geod, Transformer

from geo.crs import wgs84_to_gcj02
from geo.precheck import check_site
from geo.rules import load_profile
from geo.violations import RuleEngine

GEOD = Geod(ellps="WGS84")
LON0, LAT0 = 114.30, 30.55
_TO_LL = Transformer.from_crs(
    f"+proj=tmerc +lon_0={LON0} +lat_0={LAT0} +k=1 +ellps=WGS84 +units=m", "EPSG:4326", always_xy=True
)


def ll(geom):
    """A shapely geometry in local metres → WGS84."""
    return shapely.transform(geom, lambda xy: np.column_stack(_TO_LL.transform(xy[:, 0], xy[:, 1])))


def frame(rows, **defaults):
    records = [{**defaults, **{k: v for k, v in r.items() if k != "geometry"}} for r in rows]
    return gpd.GeoDataFrame(records, geometry=[ll(r["geometry"]) for r in rows], crs="EPSG:4326")


def campus(x0, y0, size=100.0):
    return shapely.box(x0, y0, x0 + size, y0 + size)


def east_of_edge(distance_m, *, x_edge=100.0, y=50.0):
    """A WGS84 point exactly ``distance_m`` (geodesic) east of the edge point (x_edge, y)."""
    lon, lat = _TO_LL.transform(x_edge, y)
    lon2, lat2, _ = GEOD.fwd(lon, lat, 90.0, distance_m)
    return shapely.Point(lon2, lat2)


def school_layer(level="primary", **extra):
    return frame([{"id": "s1", "name": "第一小学", "level": level, "geometry": campus(0, 0), **extra}])


def venues_at(points, **extra):
    return gpd.GeoDataFrame(
        [
            {"id": f"v{i}", "name": f"网吧{i}", "status": "licensed", "licence_no": f"L{i}", **extra}
            for i in range(len(points))
        ],
        geometry=points,
        crs="EPSG:4326",
    )


NATIONAL = load_profile("national")


def test_boundary_rule_draws_the_line_at_the_limit():
    cafes = venues_at([east_of_edge(199.9), east_of_edge(200.1), east_of_edge(150.0)])
    found = RuleEngine({"schools": school_layer(), "net_cafes": cafes}, NATIONAL).violations()
    found = found[found["rule"] == "net_cafe_school"].set_index("venue_id")
    assert sorted(found.index) == ["v0", "v2"]
    assert found.loc["v0", "distance_m"] == pytest.approx(199.9, abs=0.01)
    assert found.loc["v2", "distance_m"] == pytest.approx(150.0, abs=0.01)
    assert found.loc["v2", "shortfall_m"] == pytest.approx(50.0, abs=0.01)
    assert found.loc["v0", "recheck"] and not found.loc["v2", "recheck"]
    assert set(found["method"]) == {"boundary"}
    # The evidence line runs from the venue to the campus boundary.
    line = found.loc["v0", "geometry"]
    _, _, length = GEOD.inv(*line.coords[0], *line.coords[-1])
    assert length == pytest.approx(199.9, abs=0.01)


def test_near_misses_come_back_only_when_asked():
    cafes = venues_at([east_of_edge(210.0)])
    engine = RuleEngine({"schools": school_layer(), "net_cafes": cafes}, NATIONAL)
    assert engine.violations().empty
    near = engine.violations(include_near=True)
    assert list(near["violation"]) == [False]
    assert list(near["recheck"]) == [True]


def test_venue_inside_campus_is_at_zero():
    cafes = venues_at([ll(shapely.Point(50, 50))])
    found = RuleEngine({"schools": school_layer(), "net_cafes": cafes}, NATIONAL).violations()
    assert found["distance_m"].tolist() == [0.0]
    assert found["shortfall_m"].tolist() == [200.0]


def test_kindergartens_and_universities_are_outside_the_national_rule():
    cafes = venues_at([east_of_edge(50.0)])
    for level in ("kindergarten",):
        found = RuleEngine({"schools": school_layer(level), "net_cafes": cafes}, NATIONAL).violations()
        assert found.empty


def test_school_given_as_a_point_is_approximate():
    schools = frame([{"id": "s1", "name": "点位小学", "level": "primary", "approximate": True,
                      "geometry": shapely.Point(100, 50)}])  # fmt: skip
    found = RuleEngine(
        {"schools": schools, "net_cafes": venues_at([east_of_edge(120.0)])}, NATIONAL
    ).violations()
    assert found["approximate"].tolist() == [True]
    assert "point" in found["approx_reason"].iloc[0]


def test_same_venues_in_gcj02_give_the_same_answer_after_conversion():
    from geo.crs import gcj02_to_wgs84

    points = [east_of_edge(d) for d in (20.0, 120.0, 199.0)]
    gx, gy = wgs84_to_gcj02([p.x for p in points], [p.y for p in points])
    # What an import does with a GCJ-02 file: convert back to WGS84 before any analysis.
    wx, wy = gcj02_to_wgs84(gx, gy)
    converted = venues_at(list(shapely.points(wx, wy)))
    raw_gcj = venues_at(list(shapely.points(gx, gy)))
    base = RuleEngine({"schools": school_layer(), "net_cafes": venues_at(points)}, NATIONAL).violations()
    again = RuleEngine({"schools": school_layer(), "net_cafes": converted}, NATIONAL).violations()
    np.testing.assert_allclose(again["distance_m"], base["distance_m"], atol=1e-3)
    # Unconverted GCJ-02 points would land hundreds of metres away: the trap the datum layer prevents.
    trap = RuleEngine({"schools": school_layer(), "net_cafes": raw_gcj}, NATIONAL).violations()
    assert len(trap) != len(base) or not np.allclose(trap["distance_m"], base["distance_m"], atol=1.0)


CORNERS = {"mohe": (122.37, 53.48), "kashgar": (75.99, 39.47), "sanya": (109.51, 18.25),
           "fuyuan": (134.29, 48.36), "lhasa": (91.11, 29.65)}  # fmt: skip


def test_corners_of_china_in_one_dataset_agree_with_geodesic_truth():
    schools, cafes, expected = [], [], {}
    for name, (lon, lat) in CORNERS.items():
        # A small campus polygon built with Geod, and a café 180 m north-east of its NE corner.
        ring = [GEOD.fwd(lon, lat, az, 80.0)[:2] for az in (45, 135, 225, 315)]
        schools.append({"id": name, "name": name, "level": "junior", "geometry": shapely.Polygon(ring)})
        ne = ring[0]
        clon, clat, _ = GEOD.fwd(ne[0], ne[1], 45.0, 180.0)
        cafes.append(
            {"id": f"c-{name}", "name": name, "status": "licensed", "geometry": shapely.Point(clon, clat)}
        )
        expected[f"c-{name}"] = 180.0
    s = gpd.GeoDataFrame(schools, crs="EPSG:4326")
    c = gpd.GeoDataFrame(cafes, crs="EPSG:4326")
    found = RuleEngine({"schools": s, "net_cafes": c}, NATIONAL).violations().set_index("venue_id")
    assert set(found.index) == set(expected)
    for vid, d in expected.items():
        # The NE corner is the nearest point (the café lies on the corner's outward diagonal).
        assert found.loc[vid, "distance_m"] == pytest.approx(d, abs=0.1)


# ------------------------------------------------------------------ walking regimes
def block_world():
    """A 100 m campus at (0,0)-(100,100) with its only gate on the south side at (50, 0).

    Streets: south y = -10 (x -20…400), east x = 300 (y -10…210), north y = 210 (x -20…300),
    and a 10 m lane from the gate down to the south street.  Nothing crosses the block west of
    x = 300, so anything north of the campus is reached by walking round by the east street.
    """
    roads = frame(
        [
            {
                "id": "r1",
                "name": "南街",
                "geometry": shapely.LineString([(-20, -10), (50, -10), (300, -10), (400, -10)]),
            },
            {"id": "r2", "name": "东街", "geometry": shapely.LineString([(300, -10), (300, 210)])},
            {
                "id": "r3",
                "name": "北街",
                "geometry": shapely.LineString([(300, 210), (130, 210), (-20, 210)]),
            },
            {"id": "r4", "name": "校门路", "geometry": shapely.LineString([(50, 0), (50, -10)])},
        ],
        walkable=True,
    )
    gates = frame([{"id": "g1", "school_id": "s1", "gate_type": "main", "geometry": shapely.Point(50, 0)}])
    return roads, gates


def test_gate_walk_follows_the_detour_around_the_block():
    roads, gates = block_world()
    cafe_xy = (130.0, 218.0)  # 8 m north of the north street, 118 m from the campus by straight line
    cafes = venues_at([ll(shapely.Point(*cafe_xy))])
    layers = {"schools": school_layer(), "school_gates": gates, "roads": roads, "net_cafes": cafes}
    straight = RuleEngine(layers, NATIONAL).violations()
    assert straight["distance_m"].iloc[0] == pytest.approx(np.hypot(30, 118), abs=0.05)
    # By hand: gate (50,0) → (50,-10) 10 m → east to (300,-10) 250 m → north to (300,210) 220 m
    # → west to (130,210) 170 m → snap leg 8 m: 658 m; far beyond 200 m, so no violation.
    walked = RuleEngine(layers, load_profile("pilot-2014")).violations(include_near=True)
    assert walked.empty
    # A 700 m rule sees the walk and its exact length.
    profile = _with_limit("pilot-2014", 700.0)
    found = RuleEngine(layers, profile).violations()
    assert found["method"].tolist() == ["gate-walk"]
    assert found["distance_m"].iloc[0] == pytest.approx(658.0, abs=0.05)
    assert found["straight_m"].iloc[0] == pytest.approx(np.hypot(30, 118), abs=0.05)
    assert found.geometry.iloc[0].geom_type == "LineString"


def _with_limit(name, limit_m, **changes):
    from dataclasses import replace

    profile = load_profile(name)
    rules = tuple(
        replace(r, limit_m=limit_m, **changes) if r.type == "distance" else r for r in profile.rules
    )
    return replace(profile, rules=rules)


def test_school_without_gates_falls_back_to_the_straight_line_marked_approximate():
    roads, _ = block_world()
    cafes = venues_at([east_of_edge(150.0)])
    layers = {"schools": school_layer(), "roads": roads, "net_cafes": cafes}
    found = RuleEngine(layers, load_profile("pilot-2014")).violations()
    assert found["method"].tolist() == ["boundary"]
    assert found["approximate"].tolist() == [True]
    assert "gate" in found["approx_reason"].iloc[0]


def test_venue_far_from_roads_is_unroutable_not_invented():
    roads, gates = block_world()
    cafes = venues_at([ll(shapely.Point(200, 100))])  # 110 m from the nearest street (x=300 / y=-10 / y=210)
    layers = {"schools": school_layer(), "school_gates": gates, "roads": roads, "net_cafes": cafes}
    found = RuleEngine(layers, load_profile("pilot-2014")).violations()
    assert found["approximate"].tolist() == [True]
    assert found["method"].tolist() == ["boundary"]
    assert found["distance_m"].iloc[0] == pytest.approx(100.0, abs=0.05)
    assert "100 m from any road" in found["approx_reason"].iloc[0]


def test_door_walk_takes_the_door_not_the_venue_point():
    roads, gates = block_world()
    # Venue point next to the south street at (120, -14); its only door faces east at (300-4, 60) — far side.
    cafes = venues_at([ll(shapely.Point(120, -14))])
    doors = frame([{"id": "d1", "venue_id": "v0", "venue_kind": "net_cafes", "floor": 1,
                    "geometry": shapely.Point(296, 60)}])  # fmt: skip
    layers = {"schools": school_layer(), "school_gates": gates, "roads": roads, "net_cafes": cafes,
              "venue_doors": doors}  # fmt: skip
    gd = _with_limit("guangdong-2023", 400.0)
    found = RuleEngine(layers, gd).violations()
    found = found[found["rule"] == "net_cafe_school"]
    # By hand: gate (50,0) → (50,-10) 10 → (300,-10) 250 → (300,60) 70 → door 4 m: 334 m.
    assert found["distance_m"].iloc[0] == pytest.approx(334.0, abs=0.05)
    assert found["method"].iloc[0] == "door-walk"
    # Without the door the venue point is used, and the result says so.
    no_door = RuleEngine({**layers, "venue_doors": doors.iloc[0:0]}, gd).violations()
    no_door = no_door[no_door["rule"] == "net_cafe_school"]
    # gate → (50,-10) 10 → (120,-10) 70 → venue 4 m: 84 m.
    assert no_door["distance_m"].iloc[0] == pytest.approx(84.0, abs=0.05)
    assert no_door["approximate"].iloc[0]
    assert "door" in no_door["approx_reason"].iloc[0]


# ------------------------------------------------------------------ other rule types
def residential(form, mixed=False):
    return frame([{"id": "b1", "name": "幸福小区1栋", "form": form, "mixed_use": mixed,
                   "geometry": shapely.box(500, 500, 540, 520)}])  # fmt: skip


@pytest.mark.parametrize(
    ("profile", "form", "expected"),
    [("national", "compound", 1), ("national", "building", 1), ("pilot-2014", "compound", 0),
     ("pilot-2014", "building", 1)],
)  # fmt: skip
def test_residential_rule_follows_the_profile_scope(profile, form, expected):
    cafes = venues_at([ll(shapely.Point(520, 510))])
    layers = {"residential": residential(form), "net_cafes": cafes}
    found = RuleEngine(layers, load_profile(profile)).violations()
    assert (found["rule"] == "net_cafe_residential").sum() == expected


def test_spacing_rule_reports_each_close_pair_once():
    lon, lat = LON0, LAT0
    pts = [shapely.Point(lon, lat), shapely.Point(*GEOD.fwd(lon, lat, 0, 80.0)[:2]),
           shapely.Point(*GEOD.fwd(lon, lat, 180, 150.0)[:2])]  # fmt: skip
    games = venues_at(pts)
    found = RuleEngine({"game_venues": games}, load_profile("local-examples")).violations()
    spacing = found[found["rule"] == "game_venue_spacing"]
    assert len(spacing) == 1
    assert spacing["distance_m"].iloc[0] == pytest.approx(80.0, abs=0.01)
    assert {spacing["venue_id"].iloc[0], spacing["site_id"].iloc[0]} == {"v0", "v1"}


def test_zone_rule_and_pois_by_category():
    zones = frame([{"id": "z1", "name": "古塔保护范围", "zone_type": "heritage_protection",
                    "geometry": shapely.box(1000, 1000, 1100, 1100)}])  # fmt: skip
    cafes = venues_at([ll(shapely.Point(1050, 1050)), ll(shapely.Point(1200, 1050))])
    pois = gpd.GeoDataFrame(
        [
            {"id": "p1", "name": "烟酒店", "category": "tobacco"},
            {"id": "p2", "name": "便利店", "category": "shop"},
        ],
        geometry=[east_of_edge(30.0), east_of_edge(20.0)],
        crs="EPSG:4326",
    )
    layers = {"zones": zones, "net_cafes": cafes, "pois": pois, "schools": school_layer()}
    found = RuleEngine(layers, load_profile("local-examples")).violations()
    assert found.loc[found["rule"] == "venue_heritage_zone", "venue_id"].tolist() == ["v0"]
    tobacco = found[found["rule"] == "tobacco_school"]
    assert tobacco["venue_id"].tolist() == ["p1"]
    assert tobacco["distance_m"].iloc[0] == pytest.approx(30.0, abs=0.01)


# ------------------------------------------------------------------ licence pre-check
def test_precheck_gives_verdict_conflicts_and_shortfall():
    engine = RuleEngine({"schools": school_layer()}, NATIONAL)
    p = east_of_edge(150.0)
    answer = check_site(engine, p.x, p.y, kind="net_cafes")
    assert answer.verdict == "violation"
    assert answer.shortfall_m == pytest.approx(50.0, abs=0.01)
    school_rule = next(v for v in answer.verdicts if v.rule.id == "net_cafe_school")
    assert school_rule.conflicts["site_id"].tolist() == ["s1"]
    far = east_of_edge(260.0)
    ok = check_site(engine, far.x, far.y, kind="net_cafes")
    assert ok.verdict == "ok"
    nearest = next(v for v in ok.verdicts if v.rule.id == "net_cafe_school").nearest
    assert nearest["straight_m"] == pytest.approx(260.0, abs=0.01)


def test_precheck_accepts_baidu_coordinates():
    engine = RuleEngine({"schools": school_layer()}, NATIONAL)
    from geo.crs import wgs84_to_bd09

    p = east_of_edge(150.0)
    bx, by = wgs84_to_bd09(p.x, p.y)
    answer = check_site(engine, float(bx), float(by), kind="net_cafes", crs="bd09")
    assert answer.shortfall_m == pytest.approx(50.0, abs=0.01)


def test_precheck_agrees_with_the_batch_list_on_random_points():
    rng = np.random.default_rng(5)
    roads, gates = block_world()
    pts = [ll(shapely.Point(x, y)) for x, y in rng.uniform(-250, 450, (40, 2))]
    layers = {"schools": school_layer(), "school_gates": gates, "roads": roads}
    for profile in (NATIONAL, load_profile("pilot-2014")):
        engine = RuleEngine({**layers, "net_cafes": venues_at(pts)}, profile)
        batch = set(engine.violations().query("rule == 'net_cafe_school'")["venue_id"])
        single = {f"v{i}" for i, p in enumerate(pts)
                  if any(v.verdict == "violation" and v.rule.id == "net_cafe_school"
                         for v in check_site(engine, p.x, p.y, kind="net_cafes").verdicts)}  # fmt: skip
        assert batch == single
