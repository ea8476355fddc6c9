"""Real browser: Debian's Chromium driven by Playwright against the app under waitress.

Signs in through the form (CSRF on), opens a Folium map page and checks: no console
errors, no request to any host but 127.0.0.1, the map and its markers render, a hostile
venue name shows as text and runs nothing, both languages render.  Screenshots go to
``$SCREENSHOT_DIR`` when set (for a person to look at), else the test's temp folder.
"""

from __future__ import annotations

import html
import struct
import zlib
from pathlib import Path

import folium
import pytest
from flask import Blueprint, Response, render_template
from folium import plugins

from tests.webmap.browser_support import BROWSER_MARKS, open_page, screenshot_folder, serve
from webmap import accounts, create_app
from webmap.assets import map_parts

HOSTILE = "<img src=x onerror=alert(1)>"

pytestmark = BROWSER_MARKS


def _png(size: int, rgb: tuple[int, int, int]) -> bytes:
    """A plain square PNG (a stand-in map tile)."""
    rows = b"".join(b"\x00" + bytes(rgb) * size for _ in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


TILE = _png(256, (236, 240, 233))


def _test_pages() -> Blueprint:
    bp = Blueprint("browser_test", __name__)

    @bp.get("/test-tiles/<int:z>/<int:x>/<int:y>.png")
    def tile(z: int, x: int, y: int):
        return Response(TILE, mimetype="image/png")

    @bp.get("/test-map")
    def page():
        m = folium.Map(location=[30.6600, 104.0650], zoom_start=16, tiles=None, control_scale=True)
        folium.TileLayer("/test-tiles/{z}/{x}/{y}.png", attr="test tiles", name="底图").add_to(m)
        venues = plugins.MarkerCluster(name="网吧 venues").add_to(m)
        for i in range(12):
            name = HOSTILE if i == 0 else f"网吧 {i}"
            folium.Marker(
                [30.6600 + (i % 4) * 4e-4, 104.0650 + (i // 4) * 5e-4],
                tooltip=html.escape(name),
                popup=folium.Popup(html.escape(name)),
                icon=folium.Icon(color="red", icon="desktop", prefix="fa"),
            ).add_to(venues)
        school = folium.FeatureGroup(name="学校 schools").add_to(m)
        folium.Circle([30.6610, 104.0660], radius=200, color="#1d4f91", fill=True, fill_opacity=0.08).add_to(
            school
        )
        folium.Marker([30.6610, 104.0660], tooltip="第一小学", icon=folium.Icon(icon="info-sign")).add_to(
            school
        )
        folium.LayerControl(collapsed=False).add_to(m)
        return render_template("map_page.html", map=map_parts(m))

    return bp


@pytest.fixture
def live_server(tmp_path):
    from layers.store import Workspace

    app = create_app({"WORKSPACE": str(tmp_path / "ws"), "SECRET_KEY": "browser-test", "TILE_HOSTS": []})
    app.register_blueprint(_test_pages())
    ws = Workspace.open(app.config["WORKSPACE"], create=True)
    accounts.add_user(ws, "admin", "admin", "correct horse 1")
    accounts.add_user(ws, "inspector", "inspector", "correct horse 1", locale="en")
    accounts.add_user(ws, HOSTILE, "viewer", "correct horse 1")
    with serve(app) as base:
        yield base


@pytest.fixture
def browser_page():
    with open_page(height=820) as page:
        yield page


def _sign_in(page, base: str, name: str, path: str, *, title: str, shot: Path, lang: str = "") -> None:
    """Check the login page's title, take its screenshot, then sign in through the form to ``path``."""
    page.goto(f"{base}/login{lang}")
    assert page.locator("h1").inner_text() == title
    page.screenshot(path=str(shot))
    page.goto(f"{base}{path}")
    assert "/login?next=" in page.url
    page.fill("#name", name)
    page.fill("#password", "correct horse 1")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}{path}")
    page.wait_for_selector(".leaflet-tile-loaded")


OPEN_HOSTILE_POPUP = """(name) => {
  for (const key in window) {
    const layer = window[key];
    if (layer && layer._latlng && layer._popup && layer._popup._content
        && layer._popup._content.textContent === name) {
      layer._map ? layer.openPopup() : null;
      return Boolean(layer._map);
    }
  }
  return null;
}"""


def test_map_page_offline_and_clean(live_server, browser_page, tmp_path):
    page, shots = browser_page, screenshot_folder(tmp_path)
    _sign_in(page, live_server, "admin", "/test-map", title="文化市场监管地图", shot=shots / "login-zh.png")
    page.wait_for_selector(".marker-cluster")
    page.wait_for_load_state("networkidle")
    assert page.locator(".cm-topbar .nav-link", has_text="总览").count() == 1
    assert page.locator(".leaflet-control-layers-overlays label").count() == 2
    # zoom into the cluster, open the hostile venue's popup: its name shows as text and runs nothing
    page.locator(".marker-cluster").first.click()
    page.wait_for_timeout(800)
    assert page.evaluate(OPEN_HOSTILE_POPUP, HOSTILE) is True
    popup = page.wait_for_selector(".leaflet-popup-content")
    assert popup.inner_text() == HOSTILE
    assert page.evaluate("document.querySelectorAll('.leaflet-popup img, .leaflet-tooltip img').length") == 0
    page.screenshot(path=str(shots / "map-zh.png"))

    page.goto(f"{live_server}/admin/users")
    assert page.locator("td.cm-user-name", has_text=HOSTILE).count() == 1
    page.screenshot(path=str(shots / "users-zh.png"), full_page=True)
    assert page.problems == {"console": [], "outside": [], "dialogs": []}


def test_english_user_and_login_switch(live_server, browser_page, tmp_path):
    page, shots = browser_page, screenshot_folder(tmp_path)
    title = "Culture Market Supervision Map"
    _sign_in(
        page, live_server, "inspector", "/test-map", title=title, shot=shots / "login-en.png", lang="?lang=en"
    )
    assert page.locator(".cm-topbar .nav-link", has_text="Dashboard").count() == 1
    page.goto(f"{live_server}/account")
    page.screenshot(path=str(shots / "account-en.png"))
    assert page.problems == {"console": [], "outside": [], "dialogs": []}
