"""The map pages in a real browser: Debian's Chromium driven by Playwright, app under waitress.

Checks: the violation map and the layers map load with no console error and no request to
any host but 127.0.0.1; unticking a layer in the layer control removes it and its distance
labels; a venue named ``<img src=x onerror=alert(1)>`` shows as text (table, search, popup)
and no dialog fires; Chinese and English render.  Screenshots go to ``$SCREENSHOT_DIR`` when
set, else the test's temp folder.
"""

from __future__ import annotations

import shutil

import geopandas as gpd
import pytest
import shapely

from layers.importer import import_file
from layers.store import Workspace
from tests.webmap.browser_support import BROWSER_MARKS, open_page, screenshot_folder, serve
from webmap import accounts, create_app

HOSTILE = "<img src=x onerror=alert(1)>"
PASSWORD = "correct horse 1"

pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def live_server(demo_workspace, tmp_path_factory):
    path = tmp_path_factory.mktemp("maps-browser") / "ws"
    shutil.copytree(demo_workspace.path, path)
    ws = Workspace.open(path)
    cafes = ws.read("net_cafes").drop(columns=["source_row"])
    extra = cafes.iloc[[0]].copy()
    extra["id"], extra["name"], extra["licence_no"] = "nc-900", HOSTILE, "4299011099900"
    extra["geometry"] = [shapely.Point(cafes.geometry.iloc[0].x + 1e-4, cafes.geometry.iloc[0].y)]
    source = path.parent / "net_cafes_plus.geojson"
    gpd.GeoDataFrame(gpd.pd.concat([cafes, extra], ignore_index=True), crs=4326).to_file(source)
    import_file(ws, "net_cafes", source, user="pytest")
    accounts.add_user(ws, "map-zh", "viewer", PASSWORD)
    accounts.add_user(ws, "map-en", "viewer", PASSWORD, locale="en")
    app = create_app({"WORKSPACE": str(path), "SECRET_KEY": "browser-maps"})
    with serve(app) as base:
        yield base


@pytest.fixture
def page():
    with open_page(height=800) as page:
        yield page


def _sign_in(page, base: str, name: str, path: str) -> None:
    page.goto(f"{base}{path}")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}{path}")
    page.wait_for_selector(".leaflet-control-layers")


#: the layer-control entry (folium's ``layer_control_…_layers``) whose label starts with ``prefix`` → whether its layer is on the map
LAYER_ON_MAP = """(prefix) => {
  const map = window[document.querySelector('table.cm-findings, .cm-search').dataset.map];
  const layers = Object.values(window).find(v => v && v.overlays && v.base_layers);
  const name = Object.keys(layers.overlays).find(n => n.startsWith(prefix));
  return map.hasLayer(layers.overlays[name]);
}"""

#: click the venue whose (escaped) name is given: the popup opens for that feature
CLICK_VENUE = """(escaped) => {
  for (const v of Object.values(window)) {
    if (!v || !v.eachLayer || !v.getPopup || !v.getPopup()) continue;
    let hit = null;
    v.eachLayer(l => { if (l.feature && l.feature.properties.name === escaped) hit = l; });
    if (hit) { hit.fire('click', {latlng: hit.getLatLng()}, true); return true; }
  }
  return false;
}"""


#: container pixel of the first point of the canvas layer whose control label starts with ``prefix``
FIRST_POINT = """(prefix) => {
  const layers = Object.values(window).find(v => v && v.overlays && v.base_layers);
  const cloud = layers.overlays[Object.keys(layers.overlays).find(n => n.startsWith(prefix))];
  const p = cloud._map.latLngToContainerPoint([cloud._d.y[0], cloud._d.x[0]]);
  return [p.x, p.y];
}"""


def test_violation_map_in_chinese(live_server, page, tmp_path):
    shots = screenshot_folder(tmp_path)
    _sign_in(page, live_server, "map-zh", "/violations/")
    page.wait_for_load_state("networkidle")
    assert page.locator("h1.cm-side-title").inner_text() == "违规地图"
    labels = page.locator(".cm-dist-label")
    assert labels.count() > 10
    page.screenshot(path=str(shots / "violations-zh.png"))

    # untick the findings layer: it leaves the map with its distance labels; tick it again
    findings = page.locator(".leaflet-control-layers-overlays label", has_text="违规与临界结果")
    assert page.evaluate(LAYER_ON_MAP, "违规与临界结果") is True
    findings.locator("input").uncheck()
    assert page.evaluate(LAYER_ON_MAP, "违规与临界结果") is False
    assert labels.count() == 0
    findings.locator("input").check()
    assert labels.count() > 10
    # buffers start hidden and can be switched on
    assert page.evaluate(LAYER_ON_MAP, "限制距离范围") is False
    page.locator(".leaflet-control-layers-overlays label", has_text="限制距离范围").locator("input").check()
    assert page.evaluate(LAYER_ON_MAP, "限制距离范围") is True

    # the hostile venue: text in the table, in the search hits and in its popup; nothing runs
    row = page.locator("table.cm-findings tbody tr", has_text=HOSTILE)
    assert row.count() == 1
    assert row.locator(".cm-venue").inner_text() == HOSTILE
    row.click()
    page.fill("#cm-search-input", "onerror")
    hit = page.locator(".cm-search-hits button").first
    assert hit.inner_text().startswith(HOSTILE)
    hit.click()
    page.wait_for_timeout(900)
    assert page.evaluate(CLICK_VENUE, "&lt;img src=x onerror=alert(1)&gt;") is True
    popup = page.wait_for_selector(".leaflet-popup-content")
    assert HOSTILE in popup.inner_text()
    assert page.evaluate("document.querySelectorAll('.leaflet-popup img, .cm-map-side img').length") == 0
    page.screenshot(path=str(shots / "violations-zh-popup.png"))
    assert page.problems == {"console": [], "outside": [], "dialogs": []}


def test_layers_map_and_english(live_server, page, tmp_path):
    shots = screenshot_folder(tmp_path)
    _sign_in(page, live_server, "map-en", "/layers/")
    page.wait_for_load_state("networkidle")
    assert page.locator("h1.cm-side-title").inner_text() == "Layers map"
    assert page.locator(".leaflet-control-layers-overlays label").count() == 13
    assert page.locator("canvas.cm-points").count() >= 4
    # click the first net café drawn on the canvas: its popup shows the name, then fetched details
    x, y = page.evaluate(FIRST_POINT, "Net cafés")
    box = page.locator(".folium-map").bounding_box()
    page.mouse.click(box["x"] + x, box["y"] + y)
    popup = page.locator(".leaflet-popup-content", has_text="星海网咖(东湖店)")
    popup.locator("tr", has_text="4299011011001").wait_for()
    page.wait_for_timeout(300)  # the polygon popup the click also opened fades out
    assert page.locator(".leaflet-popup-content").count() == 1
    page.screenshot(path=str(shots / "layers-en.png"))
    page.goto(f"{live_server}/violations/")
    page.wait_for_selector(".leaflet-control-layers")
    assert page.locator("h1.cm-side-title").inner_text() == "Violation map"
    assert page.locator(".leaflet-control-layers-overlays label", has_text="Findings").count() == 1
    assert " m" in page.locator("table.cm-findings .cm-dist").first.inner_text()
    page.screenshot(path=str(shots / "violations-en.png"))
    assert page.problems == {"console": [], "outside": [], "dialogs": []}
