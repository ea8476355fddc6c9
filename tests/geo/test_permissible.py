"""Permissible zones: areas on a hand-built district, exact buffers, and agreement with the pre-check.

The hand-built district (:func:`hand_built_layers`) is drawn in metres in a transverse Mercator
centred on it and converted to WGS84, so every area below is worked out by hand:
a 100 m × 100 m campus buffered by 200 m is ``100² + 4·100·200 + π·200²`` m².
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Transformer

from geo.nearest_segment import _junction_half_planes, closer_region, nearest_road_only
from geo.permissible import exact_buffer, nearest_permissible, permissible_zones
from geo.precheck import check_site
from geo.rules import load_profile
from geo.violations import RuleEngine
from geo.walk_area import road_cover_area, segment_tent

LON0, LAT0 = 114.3, 30.55
TM = f"+proj=tmerc +lat_0={LAT0} +lon_0={LON0} +k=1 +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs"
TO_WGS84 = Transformer.from_crs(TM, "EPSG:4326", always_xy=True)
CAMPUS_BUFFER_M2 = 100**2 + 4 * 100 * 200 + math.pi * 200**2  # 215,663.706 m²
NATIONAL_LEVELS = ["primary", "junior", "senior", "nine_year", "complete", "vocational", "special"]


def box(x0, y0, x1, y1):
    return shapely.box(x0, y0, x1, y1)


def to_wgs84(geoms):
    return [
        shapely.transform(g, lambda xy: np.column_stack(TO_WGS84.transform(xy[:, 0], xy[:, 1])))
        for g in geoms
    ]


def frame(rows: list[dict], geoms) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(rows, geometry=to_wgs84(geoms), crs="EPSG:4326")


def point(x, y):
    return shapely.Point(x, y)


def hand_built_layers() -> dict[str, gpd.GeoDataFrame]:
    """Two 1 km² sub-districts A (west, 30,000 residents) and B (east, 10,000), in metres.

    A: a complete school [-550,-450]×[-50,50]; a residential building [-950,-900]×[400,440];
    B: a kindergarten [450,550]×[-50,50]; a residential compound [700,800]×[300,400].
    Cafés: c1 150 m north of the school, c2 250 m north, c3 in the building, c4 in the compound,
    c5 150 m west of the kindergarten (chain), c6 revoked.
    """
    subs = frame(
        [
            {"id": "sd-a", "name": "甲街道", "population": 30000},
            {"id": "sd-b", "name": "乙街道", "population": 10000},
        ],
        [box(-1000, -500, 0, 500), box(0, -500, 1000, 500)],
    )
    schools = frame(
        [{"id": "s1", "name": "一中", "level": "complete", "approximate": False},
         {"id": "k1", "name": "幼儿园", "level": "kindergarten", "approximate": False}],
        [box(-550, -50, -450, 50), box(450, -50, 550, 50)],
    )  # fmt: skip
    residential = frame(
        [{"id": "r1", "name": "住宅楼", "form": "building", "mixed_use": False},
         {"id": "r2", "name": "小区", "form": "compound", "mixed_use": False}],
        [box(-950, 400, -900, 440), box(700, 300, 800, 400)],
    )  # fmt: skip
    cafe_rows = [
        ("c1", "licensed", 100, "", (-500, 200)),
        ("c2", "licensed", 80, "", (-500, 300)),
        ("c3", "licensed", 60, "", (-925, 430)),
        ("c4", "licensed", 50, "", (760, 350)),
        ("c5", "licensed", 120, "连锁", (300, 0)),
        ("c6", "revoked", 90, "", (300, -300)),
    ]
    cafes = frame(
        [{"id": i, "name": f"网吧{i}", "status": s, "terminals": t, "chain": c, "licence_no": f"L{i}"}
         for i, s, t, c, _xy in cafe_rows],
        [point(*xy) for *_rest, xy in cafe_rows],
    )  # fmt: skip
    games = frame(
        [{"id": "g1", "name": "游艺厅", "status": "licensed", "licence_no": "G1"}], [point(-200, -200)]
    )
    pois = frame(
        [{"id": "p1", "name": "网吧c5", "category": "网吧"}, {"id": "p2", "name": "无名网吧", "category": "网吧"},
         {"id": "p3", "name": "培训班", "category": "培训机构"}],
        [point(305, 0), point(-200, -400), point(-100, -400)],
    )  # fmt: skip
    return {"subdistricts": subs, "schools": schools, "residential": residential, "net_cafes": cafes,
            "game_venues": games, "pois": pois}  # fmt: skip


@pytest.fixture(scope="module")
def hand_engine() -> RuleEngine:
    return RuleEngine(hand_built_layers(), load_profile("national"))


def test_areas_of_a_hand_built_district(hand_engine):
    zones = permissible_zones(hand_engine)
    table = zones.table.set_index("subdistrict")
    assert table.loc["甲街道", "area_km2"] == pytest.approx(1.0, abs=1e-6)
    assert table.loc["甲街道", "permissible_km2"] * 1e6 == pytest.approx(
        1e6 - CAMPUS_BUFFER_M2 - 2000, abs=0.5
    )
    # the kindergarten is not protected by the national profile; the compound counts
    assert table.loc["乙街道", "permissible_km2"] * 1e6 == pytest.approx(1e6 - 10_000, abs=0.5)
    assert table.loc["乙街道", "permissible_share"] == pytest.approx(0.99, abs=1e-6)
    assert set(zones.excluded) == {"net_cafe_school", "net_cafe_residential"}


def test_policy_spacing_removes_discs_around_every_existing_cafe(hand_engine):
    plain = permissible_zones(hand_engine).table.set_index("subdistrict")["permissible_km2"]
    spaced = permissible_zones(hand_engine, spacing_m=30).table.set_index("subdistrict")["permissible_km2"]
    disc = math.pi * 30**2
    # B: c5 and c6 discs lie in free land; c4's disc overlaps its compound (a 40 m-inset point):
    # the part outside the compound is the disc minus the 30 m × 60 m lens inside... computed independently:
    c4_outside = shapely.Point(760, 350).buffer(30, quad_segs=2048).difference(box(700, 300, 800, 400)).area
    assert (plain["乙街道"] - spaced["乙街道"]) * 1e6 == pytest.approx(2 * disc + c4_outside, abs=0.5)


def test_exact_buffer_straddles_the_true_circle():
    ring = exact_buffer([shapely.Point(0, 0)], 200.0)[0].exterior
    xy = shapely.get_coordinates(ring)
    vertex_r = np.hypot(*xy.T)
    mid_r = np.hypot(*((xy[1:] + xy[:-1]) / 2).T)
    assert vertex_r.max() - 200 <= 2.5e-4 and 200 - mid_r.min() <= 2.5e-4
    assert vertex_r.max() > 200 > mid_r.min()


def test_geojson_export(hand_engine, tmp_path):
    zones = permissible_zones(hand_engine)
    path = tmp_path / "zones.geojson"
    zones.to_geojson(path)
    back = gpd.read_file(path)
    assert list(back["subdistrict"]) == ["甲街道", "乙街道"]
    assert set(back["profile"]) == {"national"}
    assert back.to_crs(TM).area.sum() == pytest.approx(2e6 - CAMPUS_BUFFER_M2 - 12_000, abs=1.0)


@pytest.mark.parametrize(("xy", "subdistrict", "expected_m"), [((-500, 200), "甲街道", 50.5), ((-925, 430), "甲街道", 10.5),
                                                              ((760, 350), "乙街道", 40.5), ((300, 0), "乙街道", 0.0)])  # fmt: skip
def test_nearest_permissible_point(hand_engine, xy, subdistrict, expected_m):
    zones = permissible_zones(hand_engine)
    lon, lat = TO_WGS84.transform(*xy)
    found = nearest_permissible(zones, lon, lat, subdistrict)
    assert found[2] == pytest.approx(expected_m, abs=0.01)
    assert check_site(hand_engine, found[0], found[1], kind="net_cafes").verdict != "violation"


def test_segment_tent_area_worked_by_hand():
    # road (0,0)→(1000,0), gate 10 m off its start: walk = 10 + t + offset; limit 200, snap cap 50.
    pieces = segment_tent(np.array([0.0, 0.0]), np.array([1000.0, 0.0]), 10.0, np.inf, [], 200.0, 50.0)
    area = shapely.union_all(pieces).area
    # the end cap is drawn to SNAP_EDGE_TOLERANCE_M (2 mm): at most π·50 m·2 mm = 0.31 m² off
    assert area == pytest.approx(2 * 50 * 140 + 50 * 50 + math.pi * 50**2 / 2, abs=0.31)


# ------------------------------------------------------------------ agreement with the pre-check
def _sample(zones, engine, lon, lat, kind):
    inside = zones.contains(lon, lat)
    near_edge = zones.boundary_distance_m(lon, lat) < 1e-3
    bad = []
    for i in np.flatnonzero(~near_edge):
        verdict = check_site(engine, float(lon[i]), float(lat[i]), kind=kind).verdict
        if (verdict != "violation") != bool(inside[i]):
            bad.append((float(lon[i]), float(lat[i]), verdict))
    return bad, int((~near_edge).sum())


def _district_points(engine, n, seed):
    subs = engine.layer("subdistricts")
    minx, miny, maxx, maxy = subs.total_bounds
    rng = np.random.default_rng(seed)
    lon, lat = rng.uniform(minx, maxx, n), rng.uniform(miny, maxy, n)
    keep = shapely.contains_xy(subs.union_all(), lon, lat)
    return lon[keep], lat[keep]


def _rings(engine, rule_levels, limit_m, offsets_m, per_site=4):
    """Points just inside and outside each campus buffer (offsets in metres), for the sharp edge."""
    schools = engine.layer("schools")
    schools = schools[schools["level"].isin(rule_levels)]
    from geo.crs import metric_crs

    crs = metric_crs(engine.layer("subdistricts").geometry)
    metric = schools.to_crs(crs).geometry.values
    back = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    lon, lat = [], []
    for g in metric[:8]:
        for off in offsets_m:
            ring = g.buffer(limit_m + off, quad_segs=64).exterior
            for k in range(per_site):
                p = ring.interpolate(k / per_site, normalized=True)
                x, y = back.transform(p.x, p.y)
                lon.append(x)
                lat.append(y)
    lon, lat = np.array(lon), np.array(lat)
    keep = shapely.contains_xy(engine.layer("subdistricts").union_all(), lon, lat)
    return lon[keep], lat[keep]


@pytest.mark.slow
def test_zone_agrees_with_precheck_national(demo_layers):
    """Random points and points 1 cm / 50 cm either side of campus buffers (~220 pre-checks)."""
    engine = RuleEngine(demo_layers, load_profile("national"))
    zones = permissible_zones(engine)
    lon, lat = _district_points(engine, 130, seed=7)
    ring_lon, ring_lat = _rings(engine, NATIONAL_LEVELS, 200.0, (-0.01, 0.01, -0.5, 0.5))
    bad, checked = _sample(zones, engine, np.r_[lon, ring_lon], np.r_[lat, ring_lat], "net_cafes")
    assert checked > 200
    assert bad == []


@pytest.mark.slow
def test_zone_agrees_with_precheck_for_spacing_and_zone_rules(demo_layers):
    """Game venues under local-examples: school distance, 100 m spacing, heritage zones, buildings."""
    engine = RuleEngine(demo_layers, load_profile("local-examples"))
    zones = permissible_zones(engine, "game_venues")
    assert {"game_venue_spacing", "venue_heritage_zone", "entertainment_residential"} <= set(zones.excluded)
    venues = engine.layer("game_venues").to_crs(zones.crs).geometry.values
    back = Transformer.from_crs(zones.crs, "EPSG:4326", always_xy=True)
    near = [back.transform(v.x + dx, v.y) for v in venues[:10] for dx in (99.99, 100.01, 60.0)]
    lon, lat = _district_points(engine, 100, seed=11)
    lon = np.r_[lon, [p[0] for p in near]]
    lat = np.r_[lat, [p[1] for p in near]]
    bad, checked = _sample(zones, engine, lon, lat, "game_venues")
    assert checked > 100
    assert bad == []


@pytest.mark.slow
@pytest.mark.parametrize(("profile", "seed"), [("pilot-2014", 5), ("guangdong-2023", 9)])
def test_walking_zone_agrees_with_precheck(demo_layers, profile, seed):
    """gate-walk / door-walk: each place takes its nearest road, as the pre-check's snap does.

    Before the zone followed the nearest road (it took the best road within the snap distance)
    2 of 150 such points disagreed; now none may.  Points where two roads compete are counted
    so that the test is known to cover them.
    """
    engine = RuleEngine(demo_layers, load_profile(profile))
    zones = permissible_zones(engine)
    lon, lat = _district_points(engine, 150, seed=seed)
    bad, checked = _sample(zones, engine, lon, lat, "net_cafes")
    assert checked > 120
    assert bad == []


def test_closer_region_parallel_roads_and_a_parabola():
    """Where a rival segment is strictly nearer, worked by hand."""
    s = (np.array([0.0, 0.0]), np.array([100.0, 0.0]))
    parallel = (np.array([0.0, 40.0]), np.array([100.0, 40.0]))
    region = shapely.union_all(closer_region(s, parallel, (0, 0, 100, 40)))
    assert region.area == pytest.approx(100 * 20, abs=1e-9)  # the half of the strip above y = 20
    # a road ending 30 m above the middle of s: nearer where |P − (50,30)| < y, inside the
    # parabola y = ((x−50)² + 900) / 60; within y ≤ 30: ∫_{−30}^{30} (15 − u²/60) du = 600 m²
    above = (np.array([50.0, 30.0]), np.array([50.0, 100.0]))
    region = shapely.union_all(closer_region(s, above, (0, 0, 100, 30)))
    assert region.area == pytest.approx(600, abs=0.02)  # chords inscribed within 0.1 mm
    # and against exact distances on a grid (an independent method), away from the bisector
    x, y = np.meshgrid(np.linspace(0.5, 99.5, 100), np.linspace(0.25, 29.75, 60))
    p = shapely.points(x.ravel(), y.ravel())
    gap = shapely.distance(p, shapely.LineString(above)) - shapely.distance(p, shapely.LineString(s))
    clear = np.abs(gap) > 1e-3
    inside = shapely.contains_xy(region, x.ravel(), y.ravel())
    assert (inside[clear] == (gap[clear] < 0)).all() and (gap < 0).sum() > 100


def test_nearest_road_only_keeps_each_place_with_its_nearest_road():
    """Two parallel roads 60 m apart: the south one protects a 50 m strip, the north one nothing.

    Between them the south road is the nearest only up to y = 30, so the strip stops there.
    """
    lines = np.array([shapely.LineString([(0, 0), (100, 0)]), shapely.LineString([(0, 60), (100, 60)])])
    capsules = shapely.buffer(lines, 50.0)
    regions = np.array([shapely.box(0, -50, 100, 50), shapely.Polygon()], dtype=object)
    out = nearest_road_only(lines, regions, capsules, 50.0)
    assert out[0].area == pytest.approx(100 * 80, abs=1e-6) and out[1].is_empty
    assert out[0].bounds == pytest.approx((0, -50, 100, 30), abs=1e-9)


def test_zone_agrees_with_precheck_on_the_hand_built_district(hand_engine):
    """1 cm either side of the campus buffer and of the building, plus random points."""
    xy = []
    for r in (199.99, 200.01):  # beside each side, and diagonally off each corner
        xy += [(-500, 50 + r), (-500, -50 - r), (-450 + r, 0), (-550 - r, 0)]
        xy += [(cx + sx * r / math.sqrt(2), cy + sy * r / math.sqrt(2)) for cx, sx in ((-450, 1), (-550, -1))
               for cy, sy in ((50, 1), (-50, -1))]  # fmt: skip
    xy += [(-925, 439.99), (-925, 440.01), (-899.99, 420), (-900.01, 420)]
    rng = np.random.default_rng(3)
    xy += list(zip(rng.uniform(-999, 999, 16), rng.uniform(-499, 499, 16), strict=True))
    lon, lat = TO_WGS84.transform(*np.array(xy).T)
    zones = permissible_zones(hand_engine)
    bad, checked = _sample(zones, hand_engine, np.asarray(lon), np.asarray(lat), "net_cafes")
    assert checked == len(xy)
    assert bad == []
    inside = zones.contains(np.asarray(lon[:16]), np.asarray(lat[:16]))
    assert list(inside) == [False] * 8 + [True] * 8


def test_junction_half_planes_worked_by_hand():
    """Roads meeting at a node split along the bisector; otherwise (or too short) no half-plane."""
    east = [[0.0, 0.0], [100.0, 0.0]]
    mine = np.array([east, east, [[0.0, 0.0], [5.0, 0.0]]])
    rival = np.array([[[0.0, 100.0], [0.0, 0.0]], [[0.0, 50.0], [0.0, 100.0]], [[0.0, 0.0], [0.0, 100.0]]])
    normals, offsets = _junction_half_planes(mine, rival, 10.0)
    # a right angle at the origin: the north road is nearer where y > x, i.e. (1, −1) · P <= 0
    assert normals[0] == pytest.approx([1.0, -1.0]) and offsets[0] == pytest.approx(0.0, abs=1e-12)
    # no shared node; and a 5 m stub whose far end is 5 m from the other road (< 10 m cap): NaN
    assert np.isnan(offsets[1]) and np.isnan(offsets[2])


def test_road_cover_area_of_an_l_shaped_junction():
    """Two 100 m roads at a right angle, 10 m either side: 2·(100·20 + π·10²) − (10² + ¾·π·10²).

    Like the per-segment capsules it replaces (``exact_buffer`` of each segment), the straight
    sides sit 2 mm out (the radius scaled for the arcs): + 380 m × 2 mm ≈ 0.75 m².
    """
    lines = np.array([shapely.LineString([(0, 0), (100, 0)]), shapely.LineString([(0, 0), (0, 100)])])
    cover = road_cover_area(lines, 10.0)
    assert cover.area == pytest.approx(3900 + 125 * math.pi + 0.75, abs=0.1)
    capsules = shapely.union_all(exact_buffer(lines, 10.0, tolerance_m=2e-3))  # the former construction
    assert shapely.symmetric_difference(cover, capsules).area < 0.01
    assert cover.geom_type == "Polygon" and road_cover_area(lines[:0], 10.0).is_empty
