"""Exact straight-line distances, checked against pyproj.Geod and a brute-force geodesic."""

from __future__ import annotations

import itertools
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Geod

from geo import distance
from geo.distance import PAIR_COLUMNS, SiteIndex, distances_from, nearest_site, pair_distances, pairs_within
from layers.errors import CRSError, RuleError

GEOD = Geod(ellps="WGS84")
MM = 1e-3  # distances must agree to 0.1 m; these inputs let us hold them to 1 mm

# The corners of China (and Wuhan), (lon, lat)
PLACES = {
    "wuhan": (114.30, 30.59),
    "mohe": (122.40, 53.50),
    "kashgar": (76.00, 39.50),
    "sanya": (109.50, 18.25),
    "fuyuan": (134.30, 48.40),
    "lhasa": (91.10, 29.65),
}


def fwd(lon: float, lat: float, az: float, dist_m: float) -> tuple[float, float]:
    lon2, lat2, _ = GEOD.fwd(lon, lat, az, dist_m)
    return float(lon2), float(lat2)


def campus(mid: tuple[float, float], az: float = 0.0, edge_m: float = 200.0, depth_m: float = 150.0):
    """A rectangle whose east side (seen along ``az``) is a ``edge_m`` edge centred on ``mid``.

    The campus lies to the left of the edge; a point ``d`` metres from ``mid`` at azimuth
    ``az + 90`` is then exactly ``d`` from the campus, its nearest point being ``mid``.
    """
    a = fwd(*mid, az, edge_m / 2)
    b = fwd(*mid, az + 180, edge_m / 2)
    return shapely.Polygon([a, b, fwd(*b, az - 90, depth_m), fwd(*a, az - 90, depth_m)])


def frame(geoms) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"id": [f"x{i}" for i in range(len(geoms))]}, geometry=list(geoms), crs="EPSG:4326"
    )


def geod_m(lon1, lat1, lon2, lat2) -> np.ndarray:
    return np.asarray(GEOD.inv(lon1, lat1, lon2, lat2)[2])


# ------------------------------------------------------------------ brute force (independent method)
def boundary_points(poly: shapely.Geometry, step_m: float = 1.0) -> np.ndarray:
    """Every ring of ``poly`` densified along geodesics every ``step_m`` (lon, lat rows)."""
    out = []
    for part in shapely.get_parts(poly):
        for ring in [part.exterior, *part.interiors]:
            xy = np.asarray(ring.coords)
            for (x1, y1), (x2, y2) in itertools.pairwise(xy):
                n = max(1, int(np.ceil(GEOD.inv(x1, y1, x2, y2)[2] / step_m)))
                mid = GEOD.npts(x1, y1, x2, y2, n - 1) if n > 1 else []
                out.append(np.array([(x1, y1), *mid]).reshape(-1, 2))
    return np.concatenate(out)


def brute_distance_m(lon: float, lat: float, site: shapely.Geometry) -> float:
    """Smallest Geod distance from (lon, lat) to a densified boundary, refined around the minimum."""
    if site.geom_type == "Point":
        return float(geod_m(lon, lat, site.x, site.y))
    if site.covers(shapely.Point(lon, lat)):
        return 0.0
    pts = boundary_points(site)
    d = geod_m(np.full(len(pts), lon), np.full(len(pts), lat), pts[:, 0], pts[:, 1])
    j = int(np.argmin(d))
    a, b = pts[max(j - 1, 0)], pts[min(j + 1, len(pts) - 1)]
    fine = np.array(GEOD.npts(a[0], a[1], b[0], b[1], 400))
    return float(min(d.min(), geod_m(np.full(400, lon), np.full(400, lat), fine[:, 0], fine[:, 1]).min()))


# ------------------------------------------------------------------ the 200 m edge
@pytest.mark.parametrize("place", sorted(PLACES))
@pytest.mark.parametrize("az", [0.0, 37.0, 90.0])
def test_199_9_m_is_in_and_200_1_m_is_out(place, az):
    mid = PLACES[place]
    sites = frame([campus(mid, az)])
    venues = frame([shapely.Point(fwd(*mid, az + 90, d)) for d in (199.9, 200.1)])
    out = pairs_within(venues, sites, 200)
    assert out["venue_index"].tolist() == [0]
    assert out["distance_m"].iloc[0] == pytest.approx(199.9, abs=MM)
    # the nearest campus point is the middle of the edge
    assert geod_m(out["site_lon"].iloc[0], out["site_lat"].iloc[0], *mid) < MM
    near = pairs_within(venues, sites, 200, margin_m=1)
    assert near["distance_m"].tolist() == pytest.approx([199.9, 200.1], abs=MM)


def test_venue_inside_campus_is_at_zero_with_itself_as_nearest_point():
    mid = PLACES["wuhan"]
    inside = fwd(*mid, 270, 50)
    out = pairs_within(frame([shapely.Point(inside)]), frame([campus(mid)]), 200)
    assert out[["venue_index", "site_index", "distance_m"]].values.tolist() == [[0, 0, 0.0]]
    assert (out["site_lon"].iloc[0], out["site_lat"].iloc[0]) == inside
    assert (out["venue_lon"].iloc[0], out["venue_lat"].iloc[0]) == inside


def test_footprint_polygon_venue_measures_between_boundaries():
    mid = PLACES["lhasa"]
    tip = fwd(*mid, 90, 150)  # the footprint's westmost corner, 150 m east of the campus edge
    footprint = shapely.Polygon([tip, fwd(*tip, 45, 20), fwd(*tip, 90, 28), fwd(*tip, 135, 20)])
    overlapping = campus(fwd(*mid, 270, 5), 180, edge_m=20, depth_m=20)  # reaches 5 m into the campus
    out = pairs_within(frame([footprint, overlapping]), frame([campus(mid)]), 200)
    assert out["venue_index"].tolist() == [0, 1]
    assert out["distance_m"].tolist() == pytest.approx([150.0, 0.0], abs=MM)
    row = out.iloc[0]  # the nearest points: the footprint's corner and the campus edge's middle
    assert geod_m(row["venue_lon"], row["venue_lat"], *tip) < MM
    assert geod_m(row["site_lon"], row["site_lat"], *mid) < MM


def test_point_sites_measure_point_to_point():
    a = PLACES["sanya"]
    sites = frame([shapely.Point(fwd(*a, 10, 120.0)), shapely.Point(fwd(*a, 200, 250.0))])
    out = pairs_within(frame([shapely.Point(a)]), sites, 200, margin_m=100)
    assert out["site_index"].tolist() == [0, 1]
    assert out["distance_m"].tolist() == pytest.approx([120.0, 250.0], abs=MM)
    assert (out["site_lon"].iloc[1], out["site_lat"].iloc[1]) == sites.geometry.iloc[1].coords[0]


def test_the_corners_of_china_in_one_call():
    sites, venues, expected = [], [], []
    for k, place in enumerate(["mohe", "kashgar", "sanya", "fuyuan", "lhasa"]):
        mid = PLACES[place]
        sites.append(campus(mid, 20.0 * k))
        for d in (0.5, 60.0, 199.95, 200.05, 260.0):
            venues.append(shapely.Point(fwd(*mid, 20.0 * k + 90, d)))
            expected.append((len(venues) - 1, k, d))
    out = pairs_within(frame(venues), frame(sites), 200, margin_m=100)
    assert out[["venue_index", "site_index"]].values.tolist() == [[v, s] for v, s, _ in expected]
    assert out["distance_m"].to_numpy() == pytest.approx([d for *_, d in expected], abs=MM)
    within = pairs_within(frame(venues), frame(sites), 200)
    assert len(within) == 3 * 5


@pytest.mark.parametrize("wide", [False, True], ids=["one-projection", "bands"])
def test_pair_straddling_a_band_boundary(wide):
    mid = (114.0 - 1e-5, 35.0)  # campus edge just west of 114°E, venues east of it
    venues = [shapely.Point(fwd(*mid, 90, d)) for d in (199.9, 200.1)]
    assert np.floor(venues[0].x) == 114 and np.floor(mid[0]) == 113
    sites = [campus(mid)]
    if wide:  # a far campus and venue force 1° bands instead of one projection
        sites.append(campus(PLACES["kashgar"]))
        venues.append(shapely.Point(fwd(*PLACES["kashgar"], 90, 10.0)))
    out = pairs_within(frame(venues), frame(sites), 200)
    assert out[["venue_index", "site_index"]].values.tolist() == ([[0, 0], [2, 1]] if wide else [[0, 0]])
    assert out["distance_m"].iloc[0] == pytest.approx(199.9, abs=MM)


def test_6000_km_wide_dataset():
    lons = np.linspace(73.5, 134.5, 62)  # 73.5°E … 134.5°E along 20°N: 6,300 km
    assert geod_m(lons[0], 20, lons[-1], 20) > 6_000_000
    rng = np.random.default_rng(3)
    sites, venues, dists = [], [], rng.uniform(0.0, 400.0, lons.size)
    for lon, d in zip(lons, dists, strict=True):
        az = float(rng.uniform(0, 360))
        sites.append(campus((lon, 20.0), az))
        venues.append(shapely.Point(fwd(lon, 20.0, az + 90, d)))
    out = pairs_within(frame(venues), frame(sites), 200, margin_m=250)
    assert out["venue_index"].tolist() == list(range(lons.size))
    assert (out["venue_index"] == out["site_index"]).all()
    assert out["distance_m"].to_numpy() == pytest.approx(dists, abs=MM)
    assert pairs_within(frame(venues), frame(sites), 200)["venue_index"].tolist() == list(
        np.flatnonzero(dists <= 200)
    )


def test_empty_inputs_give_an_empty_table_with_the_columns():
    some = frame([campus(PLACES["wuhan"])])
    none = frame([])
    for venues, sites in [(none, some), (some, none), (none, none)]:
        out = pairs_within(venues, sites, 200)
        assert list(out.columns) == PAIR_COLUMNS and len(out) == 0
        assert out["venue_index"].dtype == np.int64 and out["distance_m"].dtype == np.float64


def test_missing_and_empty_geometries_are_skipped_but_positions_kept():
    mid = PLACES["wuhan"]
    venues = gpd.GeoDataFrame(
        geometry=[None, shapely.Point(), shapely.Point(fwd(*mid, 90, 100.0))], crs="EPSG:4326"
    )
    sites = gpd.GeoDataFrame(geometry=[shapely.Polygon(), campus(mid)], crs="EPSG:4326")
    out = pairs_within(venues, sites, 200)
    assert out[["venue_index", "site_index"]].values.tolist() == [[2, 1]]


def test_nearest_points_lie_on_the_campus_boundary():
    rng = np.random.default_rng(11)
    mid = PLACES["fuyuan"]
    site = campus(mid, 33.0)
    pts = [
        shapely.Point(fwd(*mid, float(az), float(d))) for az, d in rng.uniform([0, 1], [360, 300], (50, 2))
    ]
    out = pairs_within(frame(pts), frame([site]), 300)
    outside = out["distance_m"] > 0
    assert outside.sum() > 20
    boundary = boundary_points(site, step_m=0.05)
    for lon, lat in out.loc[outside, ["site_lon", "site_lat"]].to_numpy():
        off = geod_m(np.full(len(boundary), lon), np.full(len(boundary), lat), *boundary.T).min()
        assert off < 0.03  # half the densification step: the point is on the boundary
        # and its distance to the venue is the reported one (independent Geod)
    d = geod_m(*out.loc[outside, ["venue_lon", "venue_lat", "site_lon", "site_lat"]].to_numpy().T)
    assert d == pytest.approx(out.loc[outside, "distance_m"].to_numpy(), abs=MM)


def test_polygon_with_hole_and_multipolygon():
    mid = PLACES["kashgar"]
    outer = campus(mid, 0.0, edge_m=400, depth_m=400)
    hole_mid = fwd(*mid, 270, 200)
    hole = campus(fwd(*hole_mid, 90, 50), 0.0, edge_m=100, depth_m=100)  # 100 m square hole
    ring = shapely.Polygon(outer.exterior.coords, [hole.exterior.coords])
    multi = shapely.MultiPolygon([campus(fwd(*mid, 0, 2000)), campus(fwd(*mid, 180, 2000))])
    venues = [
        shapely.Point(hole_mid),
        shapely.Point(fwd(*mid, 180, 1900)),
        shapely.Point(fwd(*mid, 270, 100)),
    ]
    out = pairs_within(frame(venues), frame([ring, multi]), 200)
    got = {(v, s): d for v, s, d in out[["venue_index", "site_index", "distance_m"]].to_numpy()}
    assert set(got) == {(0, 0), (1, 1), (2, 0)}
    assert got[(0, 0)] == pytest.approx(brute_distance_m(*venues[0].coords[0], ring), abs=MM)
    assert got[(0, 0)] == pytest.approx(50.0, abs=0.01)  # centre of the hole, 50 m from its walls
    assert got[(1, 1)] == pytest.approx(brute_distance_m(*venues[1].coords[0], multi), abs=MM)
    assert got[(2, 0)] == 0.0


# ------------------------------------------------------------------ against brute force, random cases
def random_layers(seed: int, n_sites: int = 12, n_venues: int = 160):
    """Random rotated rectangles, L shapes, holes and points around the corners of China."""
    rng = np.random.default_rng(seed)
    centres = np.array(list(PLACES.values()))
    sites = []
    for k in range(n_sites):
        c = tuple(centres[k % len(centres)] + rng.normal(0, 0.004, 2))
        shape = k % 4
        if shape == 3:
            sites.append(shapely.Point(c))
            continue
        poly = campus(c, float(rng.uniform(0, 360)), *rng.uniform(60, 300, 2))
        if shape == 1:  # L shape
            poly = poly.difference(campus(c, float(rng.uniform(0, 360)), 60, 60))
        if shape == 2:  # a hole
            poly = poly.difference(shapely.Point(poly.centroid).buffer(0.0002))
        sites.append(poly)
    pick = centres[rng.integers(0, len(centres), n_venues)] + rng.normal(0, 0.003, (n_venues, 2))
    return sites, [shapely.Point(p) for p in pick]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_cases_agree_with_brute_force_geodesic(seed):
    sites, venues = random_layers(seed)
    out = pairs_within(frame(venues), frame(sites), 200, margin_m=100)
    got = {(v, s): d for v, s, d in out[["venue_index", "site_index", "distance_m"]].to_numpy()}
    expected = {}
    for v, p in enumerate(venues):
        for s, site in enumerate(sites):
            if geod_m(p.x, p.y, site.centroid.x, site.centroid.y) < 800:
                d = brute_distance_m(p.x, p.y, site)
                if d <= 300:
                    expected[(v, s)] = d
    assert len(expected) > 40
    assert set(got) == set(expected)
    assert np.array([got[k] - expected[k] for k in expected]) == pytest.approx(0.0, abs=MM)


@pytest.mark.parametrize("seed", [4, 5])
def test_numpy_kernel_matches_geos(seed, monkeypatch):
    sites, venues = random_layers(seed, 40, 600)
    kernel = pairs_within(frame(venues), frame(sites), 200, margin_m=100)
    monkeypatch.setattr(SiteIndex, "_kernel_edges", lambda self: None)
    geos = pairs_within(frame(venues), frame(sites), 200, margin_m=100)
    assert len(kernel) > 100
    pd.testing.assert_frame_equal(kernel, geos, check_exact=False, atol=1e-6, rtol=0)


def test_projected_length_matches_geod():
    rng = np.random.default_rng(8)
    for key in (75, 91, 109, 122, 134):
        fwd_tm = distance._pipeline(distance.zone_crs(key))
        lon, lat = rng.uniform(key - 0.2, key + 1.2, 2000), rng.uniform(18, 54, 2000)
        for length_m in (200.0, 50_000.0):
            lon2, lat2, _ = GEOD.fwd(lon, lat, rng.uniform(0, 360, 2000), np.full(2000, length_m))
            x1, y1 = fwd_tm.transform(lon, lat)
            x2, y2 = fwd_tm.transform(lon2, lat2)
            got = distance._tm_length_m(x1, y1, x2, y2, lat, lat2)
            assert np.abs(got - length_m).max() < (1e-6 if length_m < 1000 else 1e-3)


def test_pair_distances_for_given_pairs_however_far():
    mid = PLACES["mohe"]
    sites = frame([campus(mid), shapely.Point(fwd(*mid, 45, 30_000.0))])
    venues = frame([shapely.Point(fwd(*mid, 90, 1234.5)), shapely.Point(mid)])
    out = pair_distances(venues, sites, [0, 1, 0], [0, 1, 1])
    assert out[["venue_index", "site_index"]].values.tolist() == [[0, 0], [0, 1], [1, 1]]
    assert out["distance_m"].iloc[0] == pytest.approx(1234.5, abs=MM)
    assert out["distance_m"].iloc[2] == pytest.approx(30_000.0, abs=MM)
    with pytest.raises(ValueError, match="site_index: position 5"):
        pair_distances(venues, sites, [0], [5])


# ------------------------------------------------------------------ one location (the pre-check)
def district(seed: int = 0, n_sites: int = 60):
    rng = np.random.default_rng(seed)
    centre = PLACES["wuhan"]
    return [
        campus(fwd(*centre, float(az), float(r)), float(rng.uniform(0, 90)), *rng.uniform(80, 300, 2))
        for az, r in rng.uniform([0, 0], [360, 6000], (n_sites, 2))
    ]


def test_distances_from_and_nearest_site_agree_with_brute_force():
    sites = district()
    rng = np.random.default_rng(5)
    centre = PLACES["wuhan"]
    for az, r in rng.uniform([0, 0], [360, 5000], (5, 2)):
        lon, lat = fwd(*centre, float(az), float(r))
        brute = np.array([brute_distance_m(lon, lat, s) for s in sites])
        near = nearest_site(lon, lat, frame(sites))
        assert near["site_index"].tolist() == [int(np.argmin(brute))]
        assert near["distance_m"].iloc[0] == pytest.approx(brute.min(), abs=MM)
        within = distances_from(lon, lat, frame(sites), within_m=800)
        assert within["site_index"].tolist() == [int(i) for i in np.argsort(brute) if brute[i] <= 800]
        assert within["distance_m"].to_numpy() == pytest.approx(np.sort(brute[brute <= 800]), abs=MM)


def test_pre_check_answers_well_under_100_ms():
    sites = frame(district())
    index = SiteIndex(sites)
    index.distances_from(*PLACES["wuhan"], within_m=200)  # warm-up (PROJ database)
    start = time.perf_counter()
    for _ in range(10):
        lon, lat = fwd(*PLACES["wuhan"], 45.0, 1000.0)
        SiteIndex(sites).distances_from(np.float64(lon), np.float64(lat), within_m=200)
        index.nearest(lon, lat)
    assert (time.perf_counter() - start) / 10 < 0.05


# ------------------------------------------------------------------ refusals
def test_refuses_a_projected_crs_naming_it():
    venues = frame([shapely.Point(PLACES["wuhan"])]).to_crs(32650)
    with pytest.raises(CRSError, match="venues: CRS EPSG:32650 is not WGS84"):
        pairs_within(venues, frame([campus(PLACES["wuhan"])]), 200)


def test_refuses_metres_given_without_a_crs():
    with pytest.raises(CRSError, match=r"sites: coordinates up to 3400000\.0 are not lon/lat"):
        pairs_within([shapely.Point(0, 0)], [shapely.Point(500000, 3400000)], 200)


@pytest.mark.parametrize("limit", [-1, float("nan"), float("inf"), "200", True, 60_000])
def test_refuses_bad_limits(limit):
    with pytest.raises(RuleError, match="limit_m"):
        pairs_within(frame([]), frame([]), limit)


def test_refuses_things_that_are_not_geometries():
    with pytest.raises(CRSError, match="venues: expected shapely geometries, got str"):
        pairs_within(["POINT (1 2)"], [shapely.Point(1, 2)], 200)


def test_forked_workers_give_the_same_table(monkeypatch):
    monkeypatch.setattr(distance, "MIN_VENUES_TO_FORK", 0)
    sites, venues = random_layers(9, 40, 400)
    serial = pairs_within(frame(venues), frame(sites), 200, margin_m=100)
    forked = pairs_within(frame(venues), frame(sites), 200, margin_m=100, workers=2)
    assert len(serial) > 50
    pd.testing.assert_frame_equal(serial, forked)
