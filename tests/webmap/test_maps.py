"""The map pages (/violations/, /layers/) and base maps, through the Flask test client.

The demo district is copied per module (the session fixture stays untouched); a venue with a
hostile name is imported through the real import path.  Expected distances come from
data/demo/design.json; GCJ-02 display offsets are checked against pyproj.Geod.
"""

from __future__ import annotations

import json
import re
import shutil

import geopandas as gpd
import pyproj
import pytest
import shapely

from geo.crs import wgs84_to_gcj02
from geo.rules import load_profile
from layers.importer import import_file
from layers.store import Workspace
from webmap import accounts, create_app
from webmap.basemaps import active_basemap, basemap_choices, make_map, to_display
from webmap.maps.buffers import limit_buffers

HOSTILE = "<img src=x onerror=alert(1)>"
PASSWORD = "correct horse 1"
GEOD = pyproj.Geod(ellps="WGS84")
URL = re.compile(r"https?://[^\s\"'<>)\\]+")


@pytest.fixture(scope="module")
def map_workspace(demo_workspace, tmp_path_factory) -> Workspace:
    """A copy of the demo district plus a net café with a hostile name 10 m east of nc-001."""
    path = tmp_path_factory.mktemp("maps") / "ws"
    shutil.copytree(demo_workspace.path, path)
    ws = Workspace.open(path)
    cafes = ws.read("net_cafes").drop(columns=["source_row"])
    first = cafes.iloc[0]
    extra = cafes.iloc[[0]].copy()
    extra["id"] = "nc-900"
    extra["name"] = HOSTILE
    extra["licence_no"] = "4299011099900"
    extra["geometry"] = [shapely.Point(first.geometry.x + 1e-4, first.geometry.y)]
    frame = gpd.GeoDataFrame(gpd.pd.concat([cafes, extra], ignore_index=True), geometry="geometry", crs=4326)
    source = path.parent / "net_cafes_plus.geojson"
    frame.to_file(source, driver="GeoJSON")
    import_file(ws, "net_cafes", source, user="pytest")
    accounts.add_user(ws, "map-viewer", "viewer", PASSWORD)
    accounts.add_user(ws, "map-reader-en", "viewer", PASSWORD, locale="en")
    return ws


def _client(ws: Workspace, user: str | None = "map-viewer", **config):
    app = create_app(
        {"TESTING": True, "WORKSPACE": str(ws.path), "SECRET_KEY": "k", "WTF_CSRF_ENABLED": False, **config}
    )
    client = app.test_client()
    if user:
        assert client.post("/login", data={"name": user, "password": PASSWORD}).status_code == 302
    return client


@pytest.fixture(scope="module")
def client(map_workspace):
    return _client(map_workspace)


@pytest.fixture(scope="module")
def violation_page(client) -> str:
    response = client.get("/violations/")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _rows(html: str) -> list[str]:
    return re.findall(r"<tr data-lat=.*?</tr>", html, re.S)


def _search_index(html: str) -> list[dict]:
    raw = re.search(r'<script type="application/json" id="cm-search-index">(.*?)</script>', html, re.S)
    return json.loads(raw.group(1))


@pytest.mark.parametrize("path", ["/violations/", "/layers/"])
def test_map_pages_need_sign_in(map_workspace, path):
    response = _client(map_workspace, user=None).get(path)
    assert response.status_code == 302
    assert "/login?next=" in response.headers["Location"]


def test_violation_map_shows_the_designed_distances(violation_page, demo_design, map_workspace):
    names = dict(zip(*map_workspace.read("net_cafes")[["id", "name"]].T.values, strict=True))
    names.update(zip(*map_workspace.read("game_venues")[["id", "name"]].T.values, strict=True))
    cases = demo_design["near_school"] + demo_design["near_limit"] + demo_design["game_near_school"]
    rows = _rows(violation_page)
    checked = 0
    for case in cases:
        if case.get("level") == "kindergarten" or case["distance_m"] > 220:
            continue
        row = [r for r in rows if f">{names[case['venue_id']]}<" in r]
        assert row, case
        assert f"{case['distance_m']:.1f} 米" in row[0], (case, row[0])
        checked += 1
    assert checked >= 15
    # the map data carry the same labels; near misses are in the table, styled as recheck
    assert "200.1 米" in violation_page
    assert "cm-row-near" in violation_page and "cm-row-violation" in violation_page


def test_hostile_venue_name_appears_only_escaped(violation_page, client):
    assert HOSTILE not in violation_page
    assert "&lt;img src=x onerror=alert(1)&gt;" in violation_page
    assert any(e["n"] == HOSTILE for e in _search_index(violation_page))  # parsed from escaped JSON
    layers = client.get("/layers/").get_data(as_text=True)
    assert HOSTILE not in layers and "\\u003cimg src=x onerror=alert(1)\\u003e" in layers


def test_no_outside_url_but_the_configured_tiles(map_workspace):
    assert URL.findall(_client(map_workspace).get("/violations/").get_data(as_text=True)) == []
    assert URL.findall(_client(map_workspace).get("/layers/").get_data(as_text=True)) == []
    tiles = "https://tiles.bureau.example/{z}/{x}/{y}.png"
    client = _client(map_workspace, TILE_URL=tiles)
    response = client.get("/violations/?basemap=custom")
    assert set(URL.findall(response.get_data(as_text=True))) == {tiles}
    assert "https://tiles.bureau.example" in response.headers["Content-Security-Policy"]
    osm = client.get("/layers/?basemap=osm").headers["Content-Security-Policy"]
    assert "https://tile.openstreetmap.org" in osm and "tiles.bureau.example" not in osm
    config = {"TILE_HOSTS": [], "TIANDITU_KEY": "k"}
    csp = (
        _client(map_workspace, **config)
        .get("/violations/?basemap=tianditu-img")
        .headers["Content-Security-Policy"]
    )
    assert "img-src 'self' data: https://*.tianditu.gov.cn;" in csp


def test_gcj02_base_map_shifts_display_only(client, violation_page, map_workspace):
    amap = client.get("/violations/?basemap=amap").get_data(as_text=True)
    venue = map_workspace.read("net_cafes").iloc[0]
    lon, lat = venue.geometry.x, venue.geometry.y
    plain = next(e for e in _search_index(violation_page) if e["n"] == venue["name"])
    shifted = next(e for e in _search_index(amap) if e["n"] == venue["name"])
    assert (plain["lon"], plain["lat"]) == (round(lon, 6), round(lat, 6))
    glon, glat = wgs84_to_gcj02(lon, lat)
    assert shifted["lon"] == pytest.approx(float(glon), abs=1e-6)
    assert shifted["lat"] == pytest.approx(float(glat), abs=1e-6)
    _az, _baz, offset_m = GEOD.inv(lon, lat, shifted["lon"], shifted["lat"])
    assert 100 < offset_m < 800
    # the analysis is untouched: the same distances in the same order
    dist = re.compile(r'<span class="cm-dist">(.*?)</span>')
    assert dist.findall(amap) == dist.findall(violation_page) != []


def test_filters_narrow_the_table(client, violation_page):
    all_rows = len(_rows(violation_page))
    recheck = client.get("/violations/?recheck=1").get_data(as_text=True)
    games = client.get("/violations/?kind=game_venues").get_data(as_text=True)
    assert 0 < len(_rows(recheck)) < all_rows
    assert all("recheck" in r or "复核" in r for r in _rows(recheck))
    assert len(_rows(games)) == 3  # design.json: game_near_school
    assert "游艺娱乐场所" in games


def test_english_user_sees_english_pages(map_workspace):
    client = _client(map_workspace, user="map-reader-en")
    html = client.get("/violations/").get_data(as_text=True)
    assert "Violation map" in html and "Findings (" in html and " m<" in html
    assert "Net cafés</td>" in client.get("/layers/").get_data(as_text=True)


def test_layers_map_lists_every_layer_with_counts(client, map_workspace):
    html = client.get("/layers/").get_data(as_text=True)
    for kind, count in map_workspace.counts().items():
        if count:
            assert f">{count:,}</td>" in html, kind
    assert "L.civicPoints(" in html
    assert html.count("<select") == 1


# ------------------------------------------------------------------ base maps
def test_basemap_choices_from_configuration():
    names = [b.name for b in basemap_choices({})]
    assert names[0] == "none" and "osm" in names and "amap" in names
    assert not any(n.startswith("tianditu") for n in names)  # no key, not offered
    keyed = {
        b.name: b for b in basemap_choices({"TIANDITU_KEY": "abc123", "BASEMAP_DEFAULT": "tianditu-img"})
    }
    assert next(iter(keyed)) == "tianditu-img"
    assert all("tk=abc123" in layer.url for layer in keyed["tianditu-vec"].layers)
    assert [u.url.split("/")[3] for u in keyed["tianditu-img"].layers] == ["img_w", "cia_w"]
    assert keyed["tianditu-vec"].tile_hosts == ("https://*.tianditu.gov.cn",)
    assert keyed["amap"].is_gcj02 and not keyed["osm"].is_gcj02
    only = basemap_choices({"BASEMAPS": ["osm"], "TILE_URL": "/tiles/{z}/{x}/{y}.png"})
    assert [b.name for b in only] == ["none", "osm", "custom"]
    assert only[2].tile_hosts == ()  # served by the app itself
    assert active_basemap({}, "no-such-map").name == "none"


def test_tianditu_map_shows_source_and_approval_number(map_workspace):
    app = create_app({"TESTING": True, "WORKSPACE": str(map_workspace.path), "SECRET_KEY": "k"})
    with app.test_request_context():
        _tianditu_map_checks()


def _tianditu_map_checks():
    basemap = active_basemap({"TIANDITU_KEY": "k", "MAP_APPROVAL_NO": "GS(2024)0650号"}, "tianditu-vec")
    html = make_map(bounds=(114.2, 30.5, 114.3, 30.6), basemap=basemap).get_root().render()
    assert json.dumps("地图来源：天地图") in html and json.dumps("审图号：GS(2024)0650号") in html
    assert '"bottomleft"' in html and html.count("L.tileLayer(") == 2
    empty = make_map(bounds=(114.2, 30.5, 114.3, 30.6), basemap=active_basemap({}))
    assert "L.tileLayer(" not in empty.get_root().render()


def test_to_display_is_identity_except_for_gcj02():
    frame = gpd.GeoDataFrame(geometry=[shapely.Point(114.3, 30.55)], crs=4326)
    assert to_display(frame, active_basemap({}, "osm")) is frame
    shifted = to_display(frame, active_basemap({}, "amap"))
    glon, glat = wgs84_to_gcj02(114.3, 30.55)
    assert (shifted.geometry.x[0], shifted.geometry.y[0]) == (
        pytest.approx(float(glon)),
        pytest.approx(float(glat)),
    )
    assert frame.geometry.x[0] == 114.3  # the input is not modified


def test_limit_buffers_are_exact_in_metres():
    school = gpd.GeoDataFrame(
        {"id": ["s1"], "name": ["一小"], "level": ["primary"]},
        geometry=[shapely.Point(114.3, 30.55)],
        crs=4326,
    )
    buffers = limit_buffers({"schools": school}, load_profile("national"))
    assert len(buffers) == 1 and buffers["limit_m"][0] == 200.0  # two 200 m rules share one buffer
    assert sorted(buffers["rule"][0]) == ["game_venue_school", "net_cafe_school"]
    ring = shapely.get_coordinates(buffers.geometry[0].exterior)
    _a, _b, d = GEOD.inv([114.3] * len(ring), [30.55] * len(ring), ring[:, 0], ring[:, 1])
    assert d.max() == pytest.approx(200.0, abs=0.02)
    # chords between vertices fall at most 200·(1 − cos(π/48)) = 0.428 m inside
    mids = (ring[1:] + ring[:-1]) / 2
    _a, _b, dm = GEOD.inv([114.3] * len(mids), [30.55] * len(mids), mids[:, 0], mids[:, 1])
    assert 200 - 0.428 - 0.02 < dm.min() < 200 - 0.428 + 0.02


@pytest.mark.parametrize("page", ["/coverage/", "/precheck/", "/enforcement/"])
def test_every_map_page_lets_its_base_map_tiles_in(map_workspace, page):
    """The CSP follows the base map a page shows, whichever area the page belongs to."""
    client = _client(map_workspace, TILE_URL="https://tiles.bureau.example/{z}/{x}/{y}.png")
    custom = client.get(f"{page}?basemap=custom")
    assert custom.status_code == 200
    assert "https://tiles.bureau.example" in custom.headers["Content-Security-Policy"]
    assert "tiles.bureau.example" not in client.get(f"{page}?basemap=none").headers["Content-Security-Policy"]
