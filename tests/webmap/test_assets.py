"""Offline assets: a Folium map rendered by civicmap references no outside host but its tiles."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import folium
import pytest
from flask import Blueprint, render_template
from folium import plugins

from webmap import create_app
from webmap.assets import CDN_TO_LOCAL, UnknownAssetError, _guard_script, asset_url, localize, map_parts

TILES = "https://t{s}.tiles.example.org/{z}/{x}/{y}.png"
HOSTILE = "</script><script>alert(1)</script><img src=x onerror=alert(2)>"
URL = re.compile(r"(?i)\bhttps?://[^\s\"'<>()`]+")


def build_map() -> folium.Map:
    """A map using Leaflet, awesome markers (fa + glyphicon), clusters, heat and search."""
    m = folium.Map(location=[30.66, 104.06], zoom_start=14, tiles=None)
    folium.TileLayer(tiles=TILES, attr="test tiles", name="base").add_to(m)
    cluster = plugins.MarkerCluster(name="venues").add_to(m)
    points = [[30.66 + i * 1e-3, 104.06 + i * 1e-3] for i in range(5)]
    for i, point in enumerate(points):
        icon = folium.Icon(color="red", icon="desktop", prefix="fa", angle=45) if i % 2 else folium.Icon()
        folium.Marker(point, tooltip=HOSTILE, popup=folium.Popup(HOSTILE), icon=icon).add_to(cluster)
    plugins.FastMarkerCluster(points).add_to(m)
    plugins.HeatMap(points).add_to(m)
    geo = folium.GeoJson(
        {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "properties": {"name": HOSTILE},
                    "geometry": {"type": "Point", "coordinates": p[::-1]},
                }
                for p in points
            ],
        },
        name="schools",
    ).add_to(m)
    plugins.Search(layer=geo, search_label="name").add_to(m)
    folium.LayerControl().add_to(m)
    return m


@pytest.fixture
def map_app(config):
    app = create_app(config)
    bp = Blueprint("map_test", __name__)

    @bp.get("/test-map")
    def page():
        return render_template("map_page.html", map=map_parts(build_map()))

    app.register_blueprint(bp)
    return app


def test_only_the_tile_url_is_remote(app):
    with app.test_request_context():
        parts = map_parts(build_map(), nonce="n0nce")
    html = "\n".join([parts.header, parts.html, parts.script])
    remote = set(URL.findall(html))
    assert remote == {TILES}
    local = set(re.findall(r'(?:src|href)="(/vendor/[^"]+)"', parts.header))
    assert {
        "/vendor/leaflet/leaflet.js",
        "/vendor/leaflet/leaflet.css",
        "/vendor/jquery/jquery.min.js",
        "/vendor/leaflet.markercluster/leaflet.markercluster.js",
        "/vendor/leaflet.markercluster/MarkerCluster.Default.css",
        "/vendor/awesome-markers/js/leaflet.awesome-markers.js",
        "/vendor/font-awesome/css/all.min.css",
        "/vendor/glyphicons/css/glyphicons.min.css",
        "/vendor/civicmap/awesome-rotate.css",
        "/vendor/folium/leaflet_heat.min.js",
        "/vendor/leaflet-search/dist/leaflet-search.min.js",
    } <= local
    # the page template loads Bootstrap itself, so the map header leaves it out
    assert not any("bootstrap" in url for url in local)


def test_every_local_copy_is_served(app, client):
    with app.test_request_context():
        urls = {asset_url(package, filename) for package, filename in CDN_TO_LOCAL.values()}
    for url in sorted(urls):
        with client.get(url) as response:
            assert response.status_code == 200, url
            assert response.mimetype in {"text/javascript", "application/javascript", "text/css"}, url
            assert len(response.get_data()) > 100, url
    for broken in (
        "/vendor/nothing/x.js",
        "/vendor/leaflet/missing.js",
        "/vendor/leaflet/../../../../etc/passwd",
    ):
        with client.get(broken) as response:
            assert response.status_code == 404, broken
    # fonts and images the stylesheets pull in
    for url in (
        "/vendor/font-awesome/webfonts/fa-solid-900.woff2",
        "/vendor/glyphicons/fonts/glyphicons-halflings-regular.woff2",
        "/vendor/awesome-markers/css/images/markers-soft.png",
        "/vendor/leaflet/images/marker-icon.png",
    ):
        with client.get(url) as response:
            assert response.status_code == 200, url


def test_rotate_css(client):
    css = client.get("/vendor/civicmap/awesome-rotate.css").get_data(as_text=True)
    assert ".fa-rotate-45{transform:rotate(45deg)}" in css
    assert css.count("{") == 360


def test_localize_leaves_folium_defaults_alone(app):
    before = list(folium.Map.default_js)
    with app.test_request_context():
        m = localize(folium.Map(tiles=None))
    assert m.default_js[0] == ("leaflet", "/vendor/leaflet/leaflet.js")
    assert folium.Map.default_js == before
    assert before[0][1].startswith("https://")


def test_unknown_plugin_fails_loudly(app):
    m = folium.Map(tiles=None)
    plugins.Fullscreen().add_to(m)
    with app.test_request_context(), pytest.raises(UnknownAssetError, match=r"Control\.FullScreen\.min\.js"):
        map_parts(m, nonce="x")


def test_map_page_scripts_carry_the_nonce(map_app):
    from layers.store import Workspace
    from webmap import accounts

    accounts.add_user(Workspace.open(map_app.config["WORKSPACE"], create=True), "v", "viewer", "long-enough")
    client = map_app.test_client()
    client.post("/login", data={"name": "v", "password": "long-enough"})
    response = client.get("/test-map")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    nonce = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"]).group(1)
    elements = _elements(page)  # as a browser's HTML parser sees them
    scripts = [attrs for tag, attrs in elements if tag == "script"]
    inline = [attrs for attrs in scripts if "src" not in attrs]
    assert len(inline) == 2  # folium's L_NO_TOUCH switch and the map script
    assert all(attrs.get("nonce") == nonce for attrs in inline)
    assert all(attrs["src"].startswith("/vendor/") for attrs in scripts if "src" in attrs)
    # the hostile name stays inside the script's strings: it neither closes the script nor adds elements
    assert [tag for tag, _ in elements if tag == "img"] == []
    links = [attrs["href"] for tag, attrs in elements if tag == "link" and attrs.get("rel") == "stylesheet"]
    assert all(href.startswith(("/vendor/", "/static/")) for href in links)


def _elements(page: str) -> list[tuple[str, dict]]:
    found: list[tuple[str, dict]] = []

    class Collector(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, dict(attrs)))

    Collector().feed(page)
    return found


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("a = '</script>';", "a = '<\\/script>';"),
        ("a = `</SCRIPT >`;", "a = `<\\/SCRIPT >`;"),
        ("a = '<!-- x';", "a = '<\\!-- x';"),
        ("if (a < b) {}", "if (a < b) {}"),
    ],
)
def test_script_guard(code, expected):
    assert _guard_script(code) == expected
