"""The unlicensed-leads page on the demo district: roles, the three groups, CSV, escaping, the map.

Expected groups come from ``data/demo/design.json`` (which POI was placed beside which café,
which POIs are leads), not from :mod:`geo.leads`.
"""

from __future__ import annotations

import csv
import io
import re
import shutil

import geopandas as gpd
import pytest
import shapely

from tests.demo_support import copy_demo
from tests.webmap.browser_support import BROWSER_MARKS, open_page, serve
from webmap import create_app

DEMO_PASSWORD = "civicmap-demo"


@pytest.fixture(scope="module")
def demo_copy(demo_workspace, tmp_path_factory):
    """A private copy of the demo workspace (signing in writes to its audit log)."""
    return copy_demo(demo_workspace, tmp_path_factory.mktemp("leads"))


@pytest.fixture(scope="module")
def leads_app(demo_copy):
    return create_app(
        {"TESTING": True, "WORKSPACE": str(demo_copy), "SECRET_KEY": "leads-test", "WTF_CSRF_ENABLED": False}
    )


def _client(app, user: str):
    client = app.test_client()
    assert client.post("/login", data={"name": user, "password": DEMO_PASSWORD}).status_code == 302
    return client


@pytest.fixture(scope="module")
def inspector(leads_app):
    return _client(leads_app, "inspector")


def _section(html: str, group: str) -> str:
    match = re.search(rf'<details class="cm-leads-group" id="cm-group-{group}".*?</details>', html, re.S)
    assert match, group
    return match.group(0)


def _csv_rows(response) -> list[dict]:
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    body = response.data
    assert body.startswith("\ufeff".encode())  # BOM, so that Excel reads UTF-8
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


@pytest.mark.parametrize(
    ("user", "status"), [("viewer", 403), ("analyst", 200), ("inspector", 200), ("admin", 200)]
)
def test_market_staff_only_not_viewers(leads_app, user, status):
    client = _client(leads_app, user)
    assert client.get("/leads/").status_code == status
    assert client.get("/leads/export.csv").status_code == status
    nav = client.get("/precheck/").get_data(as_text=True)
    assert ('href="/leads/"' in nav) == (status == 200)


def test_signed_out_user_is_sent_to_login(leads_app):
    response = leads_app.test_client().get("/leads/")
    assert response.status_code in (302, 401)


def test_groups_follow_the_demo_design(inspector, demo_design, demo_layers):
    html = inspector.get("/leads/").get_data(as_text=True)
    assert "无证经营线索" in html  # Chinese by default
    pois = demo_layers["pois"].set_index("id")
    leads = _section(html, "unlicensed")
    matched = _section(html, "matched")
    not_observed = _section(html, "not_observed")
    for poi in demo_design["pois"]["leads"]:
        if pois.at[poi, "category"] == "网吧":
            assert f'data-id="{poi}"' in leads, poi
        assert f'data-id="{poi}"' not in matched
    cafes = {m["venue_id"] for m in demo_design["pois"]["matched"] if m["venue_id"].startswith("nc-")}
    for m in demo_design["pois"]["matched"]:
        if m["venue_id"].startswith("nc-"):
            assert f'data-id="{m["poi_id"]}"' in matched, m
    unseen = sorted(set(demo_layers["net_cafes"]["id"]) - cafes)
    assert sorted(re.findall(r'data-id="(nc-\d+)"', not_observed)) == unseen
    assert f'id="cm-n-not_observed">{len(unseen)}<' in html
    # evidence side by side: a designed pair shows both names and the normalised forms
    assert "星海网咖东湖店" in matched and "星海网咖(东湖店)" in matched and "星海东湖" in matched


def test_csv_export_and_matching_options(inspector, demo_design):
    rows = _csv_rows(inspector.get("/leads/export.csv"))
    assert list(rows[0])[:3] == ["比对结果", "观测编号", "观测名称"]
    by_poi = {r["观测编号"]: r for r in rows if r["观测编号"]}
    first = demo_design["pois"]["matched"][0]
    assert by_poi[first["poi_id"]]["比对结果"] == "已匹配"
    assert by_poi[first["poi_id"]]["登记编号"] == first["venue_id"]
    # "距离(米)" or "距离（米）": messages.po holds "Distance (m)" twice until the catalogue is de-duplicated
    distance = next(key for key in rows[0] if key.startswith("距离"))
    assert float(by_poi[first["poi_id"]][distance]) == pytest.approx(first["offset_m"], abs=0.1)
    assert by_poi["poi-136"]["比对结果"] == "观测到但无登记（线索）"
    # loosened options: any name within 150 m counts; the lead 125.5 m from the unobserved nc-032 pairs up
    loose = {
        r["观测编号"]: r for r in _csv_rows(inspector.get("/leads/export.csv?max_distance=150&min_score=0"))
    }
    assert (loose["poi-136"]["比对结果"], loose["poi-136"]["登记编号"]) == ("已匹配", "nc-032")
    # a designed lead 101.2 m from the café 金手指网吧 (nc-005): never paired, names differ
    wide = {r["观测编号"]: r for r in _csv_rows(inspector.get("/leads/export.csv?confirmed_distance=300"))}
    assert wide["poi-134"]["比对结果"] == "观测到但无登记（线索）"
    assert sum(r["比对结果"] == "已匹配" for r in wide.values()) >= sum(
        r["比对结果"] == "已匹配" for r in rows
    )
    page = inspector.get("/leads/?max_distance=abc&min_score=500").get_data(as_text=True)
    assert 'name="max_distance" type="number" min="5" max="1000" step="5" value="100"' in page
    assert 'name="min_score" type="number" min="0" max="100" step="5" value="100"' in page


def test_user_text_is_escaped_and_csv_formulas_defused(tmp_path, demo_workspace):
    from layers.store import Workspace

    path = tmp_path / "ws"
    shutil.copytree(demo_workspace.path, path)
    ws = Workspace.open(path)
    evil = "<img src=x onerror=alert(1)>网吧"
    pois = gpd.GeoDataFrame(
        {
            "id": ["poi-1"],
            "name": [evil],
            "category": ["网吧"],
            "source": ['=HYPERLINK("x")'],
            "address": [None],
        },
        geometry=[shapely.Point(114.2, 30.4)],
        crs="EPSG:4326",
    )
    pois["observed_at"] = None
    ws.write(
        "pois", pois, user="t", source_name="t", source_sha256="0", crs="wgs84", rows_read=1, rows_rejected=0
    )
    app = create_app({"TESTING": True, "WORKSPACE": str(path), "SECRET_KEY": "k", "WTF_CSRF_ENABLED": False})
    client = _client(app, "inspector")
    html = client.get("/leads/").get_data(as_text=True)
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;网吧" in html
    rows = _csv_rows(client.get("/leads/export.csv"))
    lead = next(r for r in rows if r["观测编号"] == "poi-1")
    assert lead["来源"] == '\'=HYPERLINK("x")'
    assert lead["观测名称"] == evil


def test_same_name_rule_on_by_default_shown_and_switchable(tmp_path, demo_workspace):
    from pyproj import Geod

    from layers.store import Workspace

    path = tmp_path / "ws"
    shutil.copytree(demo_workspace.path, path)
    ws = Workspace.open(path)
    cafe = ws.read("net_cafes").set_index("id").loc["nc-032"]  # 红蜻蜓网咖, not observed in the demo
    lon, lat, _ = Geod(ellps="WGS84").fwd(cafe.geometry.x, cafe.geometry.y, 90.0, 150.0)
    pois = gpd.GeoDataFrame(
        {
            "id": ["poi-1"],
            "name": ["红蜻蜓网吧"],
            "category": ["网吧"],
            "source": ["地图"],
            "address": [None],
        },
        geometry=[shapely.Point(lon, lat)],
        crs="EPSG:4326",
    )
    pois["observed_at"] = None
    ws.write(
        "pois", pois, user="t", source_name="t", source_sha256="0", crs="wgs84", rows_read=1, rows_rejected=0
    )
    app = create_app({"TESTING": True, "WORKSPACE": str(path), "SECRET_KEY": "k", "WTF_CSRF_ENABLED": False})
    client = _client(app, "inspector")

    def result(query: str) -> tuple[str, str]:
        row = next(r for r in _csv_rows(client.get("/leads/export.csv" + query)) if r["观测编号"] == "poi-1")
        return row["比对结果"], row["登记编号"]

    assert result("") == ("已匹配", "nc-032")  # 150 m, same name: the default 200 m rule pairs them
    for off in ("?confirmed_distance=", "?confirmed_distance=0", "?confirmed_distance=140"):
        assert result(off) == ("观测到但无登记（线索）", ""), off
    assert result("?confirmed_distance=abc") == ("已匹配", "nc-032")  # not a number: the default
    page = client.get("/leads/").get_data(as_text=True)
    assert (
        'name="confirmed_distance" type="number" min="0" max="1000" step="5" placeholder="不启用" value="200"'
        in page
    )
    assert "同名规则：名称几乎相同（相似度 95 及以上）且分店不冲突时，在 200 米内也视为匹配。" in page
    off_page = client.get("/leads/?confirmed_distance=").get_data(as_text=True)
    assert 'placeholder="不启用" value=""' in off_page and "同名规则未启用" in off_page


def browser_test(func):
    """Mark one test as a (slow) real-browser test, skipped without Chromium."""
    for mark in BROWSER_MARKS:
        func = mark(func)
    return func


@browser_test
def test_map_draws_in_a_browser(demo_workspace, tmp_path):
    path = tmp_path / "ws"
    shutil.copytree(demo_workspace.path, path)
    app = create_app({"WORKSPACE": str(path), "SECRET_KEY": "browser-test", "TILE_HOSTS": []})
    with serve(app) as base, open_page(height=800) as page:
        page.goto(base + "/login")
        page.fill("input[name=name]", "inspector")
        page.fill("input[name=password]", DEMO_PASSWORD)
        page.click("button[type=submit]")
        page.goto(base + "/leads/")
        page.wait_for_selector(".leaflet-container")
        controls = page.locator(".leaflet-control-layers-overlays label").all_inner_texts()
        assert any("(16)" in c for c in controls) and any("(110)" in c for c in controls), controls
        assert page.locator(".cm-legend").count() == 1
        map_name = page.locator("table.cm-findings").first.get_attribute("data-map")
        page.locator("#cm-group-unlicensed tbody tr").first.click()
        page.wait_for_timeout(900)
        zoom = page.evaluate(f"window['{map_name}'].getZoom()")
        assert zoom >= 17  # the row click flew to the lead
        assert page.problems == {"console": [], "outside": [], "dialogs": []}
