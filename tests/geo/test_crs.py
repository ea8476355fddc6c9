"""Datums and metric projections, checked against independent references."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from pyproj import Geod, Transformer

from geo import crs
from layers.errors import CRSError

GEOD = Geod(ellps="WGS84")

# Places spread over China: (lon, lat)
CHINA = {
    "mohe": (122.37, 53.48),
    "kashgar": (75.99, 39.47),
    "sanya": (109.51, 18.25),
    "fuyuan": (134.29, 48.36),
    "lhasa": (91.11, 29.65),
    "xian": (108.94, 34.26),
}


@pytest.mark.parametrize(
    ("spec", "name"),
    [
        ("wgs84", "wgs84"),
        ("WGS-84", "wgs84"),
        ("EPSG:4326", "wgs84"),
        (4326, "wgs84"),
        ("cgcs2000", "cgcs2000"),
        ("EPSG:4490", "cgcs2000"),
        ("gcj02", "gcj02"),
        ("GCJ-02", "gcj02"),
        ("bd09", "bd09"),
        ("Baidu", "bd09"),
        ("EPSG:4547", "EPSG:4547"),
    ],
)
def test_parse_crs_names(spec, name):
    assert crs.parse_crs(spec).name == name


@pytest.mark.parametrize("spec", ["", "mars", "EPSG:99999", None, 3.5])
def test_parse_crs_refuses_with_the_value(spec):
    with pytest.raises(CRSError) as err:
        crs.parse_crs(spec)
    assert repr(spec) in str(err.value) or str(spec) in str(err.value)


def test_gcj02_offset_has_the_documented_size():
    lon, lat = np.array([p[0] for p in CHINA.values()]), np.array([p[1] for p in CHINA.values()])
    glon, glat = crs.wgs84_to_gcj02(lon, lat)
    _, _, offset_m = GEOD.inv(lon, lat, glon, glat)
    # DOMAIN.md: the obfuscation is hundreds of metres, larger than the 200 m rule.
    assert np.all(offset_m > 50)
    assert np.all(offset_m < 1000)


def test_inverses_iterate_to_under_a_centimetre():
    rng = np.random.default_rng(7)
    lon = rng.uniform(74, 135, 2000)
    lat = rng.uniform(18, 53, 2000)
    for forward, inverse in [
        (crs.wgs84_to_gcj02, crs.gcj02_to_wgs84),
        (crs.gcj02_to_bd09, crs.bd09_to_gcj02),
        (crs.wgs84_to_bd09, crs.bd09_to_wgs84),
    ]:
        flon, flat = forward(lon, lat)
        blon, blat = inverse(flon, flat)
        _, _, err_m = GEOD.inv(lon, lat, blon, blat)
        assert err_m.max() < 0.01


def test_one_step_inverse_would_be_wrong_by_metres():
    # Guards the reason the inverse iterates: the naive inverse is off by ~1 m.
    lon, lat = np.array([116.39]), np.array([39.91])
    glon, glat = crs.wgs84_to_gcj02(lon, lat)
    dlon, dlat = crs.wgs84_to_gcj02(glon, glat)
    naive = glon - (dlon - glon), glat - (dlat - glat)
    _, _, naive_err = GEOD.inv(lon, lat, *naive)
    exact = crs.gcj02_to_wgs84(glon, glat)
    _, _, exact_err = GEOD.inv(lon, lat, *exact)
    assert naive_err[0] > 0.1
    assert exact_err[0] < 0.001


def test_baidu_bell_tower_matches_known_wgs84_position():
    # Xi'an Bell Tower: Baidu (108.953460, 34.265725); its WGS84 position is ≈ (108.94238, 34.26106).
    lon, lat = crs.bd09_to_wgs84(108.953460, 34.265725)
    _, _, d = GEOD.inv(lon, lat, 108.942383, 34.261058)
    assert d < 1.0


def test_to_wgs84_from_gauss_kruger_matches_pyproj():
    # CGCS2000 3-degree GK zone 38 (CM 114E), EPSG:4526 has the zone number prefix.
    lon, lat = 114.3, 30.6
    x, y = Transformer.from_crs(4326, 4526, always_xy=True).transform(lon, lat)
    back = crs.to_wgs84([x], [y], "EPSG:4526")
    assert back[0][0] == pytest.approx(lon, abs=1e-9)
    assert back[1][0] == pytest.approx(lat, abs=1e-9)
    again = crs.from_wgs84(*back, "EPSG:4526")
    assert again[0][0] == pytest.approx(x, abs=1e-4)


def test_geometry_round_trip_through_bd09():
    poly = shapely.Polygon([(108.94, 34.26), (108.95, 34.26), (108.95, 34.27), (108.94, 34.26)])
    there = crs.geometry_from_wgs84([poly], "bd09")
    back = crs.geometry_to_wgs84(there, "bd09")[0]
    assert shapely.hausdorff_distance(back, poly) < 1e-9
    assert shapely.hausdorff_distance(there[0], poly) > 0.005  # really moved


@pytest.mark.parametrize("place", list(CHINA))
def test_metric_crs_distances_match_geodesic(place):
    lon0, lat0 = CHINA[place]
    # A district-sized cloud (±0.8° lon) and segments of 200 m and 1 km in all directions.
    rng = np.random.default_rng(1)
    lon = lon0 + rng.uniform(-0.8, 0.8, 200)
    lat = lat0 + rng.uniform(-0.3, 0.3, 200)
    az = rng.uniform(0, 360, 200)
    dist = np.where(rng.random(200) < 0.5, 200.0, 1000.0)
    lon2, lat2, _ = GEOD.fwd(lon, lat, az, dist)
    pts = shapely.points(np.r_[lon, lon2], np.r_[lat, lat2])
    proj = Transformer.from_crs(4326, crs.metric_crs(pts), always_xy=True)
    x1, y1 = proj.transform(lon, lat)
    x2, y2 = proj.transform(lon2, lat2)
    projected = np.hypot(x2 - x1, y2 - y1)
    # 0.1 m per km at the very worst (Δλ = 0.8° at the equator); 200 m segments ≤ 0.02 m.
    assert np.max(np.abs(projected - dist) / dist) < 1.0e-4


def test_metric_crs_refuses_country_wide_data():
    pts = shapely.points([CHINA["kashgar"], CHINA["fuyuan"]])
    with pytest.raises(CRSError, match="metric_zone_keys"):
        crs.metric_crs(pts)


def test_zone_bands_keep_distances_exact_over_china():
    rng = np.random.default_rng(3)
    lon = rng.uniform(73.5, 135.0, 5000)
    lat = rng.uniform(18.0, 53.5, 5000)
    lon2, lat2, _ = GEOD.fwd(lon, lat, rng.uniform(0, 360, 5000), np.full(5000, 200.0))
    keys = crs.metric_zone_keys(lon)
    worst = 0.0
    for key in np.unique(keys):
        sel = keys == key
        proj = Transformer.from_crs(4326, crs.zone_crs(int(key)), always_xy=True)
        x1, y1 = proj.transform(lon[sel], lat[sel])
        x2, y2 = proj.transform(lon2[sel], lat2[sel])
        worst = max(worst, float(np.max(np.abs(np.hypot(x2 - x1, y2 - y1) - 200.0))))
    assert worst < 0.01


def test_geodesic_distance_is_pyproj_geod():
    d = crs.geodesic_distance_m([116.0], [40.0], [116.0], [41.0])
    # One degree of meridian at 40.5N from the radius of curvature M = a(1-e²)/(1-e² sin²φ)^1.5.
    a, e2 = 6378137.0, 0.0066943799901
    phi = np.radians(40.5)
    meridian_m = a * (1 - e2) / (1 - e2 * np.sin(phi) ** 2) ** 1.5 * np.radians(1.0)
    assert d[0] == pytest.approx(meridian_m, abs=1.0)


def test_long_arrays_convert_in_chunks_with_identical_results():
    rng = np.random.default_rng(11)
    n = crs.PARALLEL_MIN_POINTS + 12_345
    lon, lat = rng.uniform(74, 134, n), rng.uniform(19, 53, n)
    for name, serial in (("gcj02", crs.gcj02_to_wgs84), ("bd09", crs.bd09_to_wgs84)):
        chunked = crs.to_wgs84(lon, lat, name)
        expected = serial(lon, lat)
        np.testing.assert_array_equal(chunked[0], expected[0])
        np.testing.assert_array_equal(chunked[1], expected[1])
    there = crs.from_wgs84(lon, lat, "bd09")
    np.testing.assert_array_equal(there[0], crs.wgs84_to_bd09(lon, lat)[0])
