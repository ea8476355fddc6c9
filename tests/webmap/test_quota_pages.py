"""The planning desk pages on a copy of the demo district: roles, table, exports, scenarios, chart.

Plus one real-browser test: the Folium map draws the density and permissible-zone layers and the
legend, with no console error and no request leaving 127.0.0.1.
"""

from __future__ import annotations

import io
import json
import shutil

import openpyxl
import pytest

from tests.webmap.browser_support import BROWSER_MARKS, open_page, serve
from webmap import accounts, create_app

PASSWORD = "correct horse 1"


@pytest.fixture(scope="module")
def quota_ws(demo_workspace, tmp_path_factory):
    path = tmp_path_factory.mktemp("quota") / "ws"
    shutil.copytree(demo_workspace.path, path)
    return path


@pytest.fixture(scope="module")
def quota_app(quota_ws):
    from layers.store import Workspace

    ws = Workspace.open(quota_ws)
    accounts.add_user(ws, "ana", "analyst", PASSWORD)
    accounts.add_user(ws, "vic", "viewer", PASSWORD)
    return create_app(
        {"TESTING": True, "WORKSPACE": str(quota_ws), "SECRET_KEY": "q", "WTF_CSRF_ENABLED": False}
    )


def _client(app, name):
    client = app.test_client()
    assert client.post("/login", data={"name": name, "password": PASSWORD}).status_code == 302
    return client


@pytest.fixture(scope="module")
def analyst(quota_app):
    return _client(quota_app, "ana")


def test_viewer_gets_no_quota_pages_nor_nav_entry(quota_app):
    viewer = _client(quota_app, "vic")
    assert viewer.get("/quota/").status_code == 403
    assert viewer.get("/quota/scenarios").status_code == 403
    assert "/quota/" not in viewer.get("/").get_data(as_text=True)


def test_quota_page_shows_the_table_and_summary(analyst):
    page = analyst.get("/quota/?target=cap&cap=60")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'href="/quota/"' in html  # nav entry for analysts
    assert "总量规划" in html and "全区配额60家" in html
    assert html.count("<tr") >= 9 + 1  # 8 sub-districts + district row + header
    assert "全区合计" in html and "迁址建议" in html
    assert "网吧：距中小学 200 米" in html  # relocation rule, labelled


def test_the_quota_summary_is_in_the_users_language(quota_app, quota_ws):
    from layers.store import Workspace

    accounts.add_user(Workspace.open(quota_ws), "eve", "analyst", PASSWORD, locale="en")
    html = _client(quota_app, "eve").get("/quota/?target=cap&cap=60").get_data(as_text=True)
    assert "its quota is 60 café(s)" in html and "全区配额" not in html


def test_bad_input_is_a_400_with_the_message(analyst):
    page = analyst.get("/quota/?per_residents=abc")
    assert page.status_code == 400
    assert "不是数字" in page.get_data(as_text=True)
    assert analyst.get("/quota/sweep.svg?limits=0,x").status_code == 400


def test_exports(analyst):
    book = openpyxl.load_workbook(io.BytesIO(analyst.get("/quota/export.xlsx?target=cap&cap=60").data))
    assert book.sheetnames == ["配额", "迁址建议", "说明", "压减方案"]  # a cap: how to reach it
    header = [c.value for c in next(book["配额"].iter_rows(max_row=1))]
    for column in ("街道/乡镇", "常住人口", "面积(平方公里)", "网吧(家)", "终端(台)", "每万人网吧数",
                   "可设置面积(平方公里)", "配额(家)", "余量(家)"):  # fmt: skip
        assert column in header
    quota_col = header.index("配额(家)")
    values = [row[quota_col] for row in book["配额"].iter_rows(min_row=2, values_only=True)]
    assert sum(values[:-1]) == 60 == values[-1]
    zones = json.loads(analyst.get("/quota/zones.geojson").data)
    assert len(zones["features"]) == 8 and zones["features"][0]["properties"]["profile"] == "national"


def test_scenarios_are_saved_compared_and_deleted(analyst):
    page = analyst.get("/quota/scenarios")
    assert page.status_code == 200 and "现行规则" in page.get_data(as_text=True)
    answer = analyst.post("/quota/scenarios", data={"name": "<b>300米</b>", "profile": "national", "limit_m": "300",
                                                    "kindergartens": "1", "cap": "60"})  # fmt: skip
    assert answer.status_code == 302
    html = analyst.get("/quota/scenarios").get_data(as_text=True)
    assert "&lt;b&gt;300米&lt;/b&gt;" in html and "<b>300米</b>" not in html
    table = html[html.index('id="sc-compare"') :]
    assert "不合规的持证网吧" in table and ">17<" in table  # the current rules
    book = openpyxl.load_workbook(io.BytesIO(analyst.get("/quota/scenarios.xlsx").data))
    rows = list(
        book["方案对比"].iter_rows(values_only=True)
    )  # Chinese sheet and headers, as the bureau reads it
    header = rows[0]
    saved = dict(zip(header, rows[-1], strict=True))
    assert saved["方案"] == "<b>300米</b>" and saved["距离限值(米)"] == 300 and saved["配额(家)"] == 60
    assert saved["受影响场所(家)"] > 17
    scenario_id = saved["编号"]
    assert analyst.post(f"/quota/scenarios/{scenario_id}/delete").status_code == 302
    assert analyst.post(f"/quota/scenarios/{scenario_id}/delete").status_code == 404
    bad = analyst.post("/quota/scenarios", data={"profile": "national", "limit_m": "-3"})
    assert bad.status_code == 302 and "error=" in bad.headers["Location"]


def test_sensitivity_chart(analyst):
    svg = analyst.get("/quota/sweep.svg?profile=national&limits=100,200,300")
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml" and b"<svg" in svg.data
    png = analyst.get("/quota/sweep.png?profile=national&limits=100,200,300")
    assert png.data.startswith(b"\x89PNG")
    book = openpyxl.load_workbook(io.BytesIO(analyst.get("/quota/sweep.xlsx?limits=100,200,300").data))
    rows = list(book["敏感性分析"].iter_rows(values_only=True))
    column = rows[0].index("受影响场所(家)")
    affected = [r[column] for r in rows[1:]]
    assert affected == sorted(affected) and len(affected) == 3
    assert [r[rows[0].index("距离限值(米)")] for r in rows[1:]] == [100, 200, 300]


def browser(func):
    """The real-browser marks (slow; skipped without Debian's chromium)."""
    for mark in BROWSER_MARKS:
        func = mark(func)
    return func


@pytest.fixture
def live_server(quota_ws):
    app = create_app({"WORKSPACE": str(quota_ws), "SECRET_KEY": "browser-quota", "TILE_HOSTS": []})
    with serve(app) as base:
        yield base


@browser
def test_map_draws_density_and_zones_in_a_browser(live_server, quota_app):
    with open_page() as page:
        page.goto(live_server + "/login")
        page.fill("input[name=name]", "ana")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.goto(live_server + "/quota/", timeout=120_000)
        page.wait_for_selector(".cm-legend", timeout=60_000)
        controls = page.inner_text(".leaflet-control-layers")
        assert "网吧密度" in controls and "可设置区域" in controls
        assert page.locator(".cm-dist-label").count() == 8  # a density label per sub-district
        assert page.evaluate("document.querySelectorAll('canvas.leaflet-zoom-animated').length") >= 1
        assert page.problems == {"console": [], "outside": [], "dialogs": []}


def test_cap_compares_lottery_with_rule_based_closures(analyst, demo_layers):
    from geo.rules import load_profile
    from geo.violations import RuleEngine

    cafes = demo_layers["net_cafes"]
    licensed = cafes[cafes["status"] == "licensed"]
    found = RuleEngine(demo_layers, load_profile("national")).violations()
    bad = set(found.loc[found["venue_kind"] == "net_cafes", "venue_id"]) & set(licensed["id"])
    cap = len(licensed) - len(bad)  # closing exactly the violators reaches the cap
    page = analyst.get(f"/quota/?target=cap&cap={cap}").get_data(as_text=True)
    table = page.split('id="q-attrition"', 1)[1].split("</table>", 1)[0]
    cells = [c.strip() for c in table.split("<td>")[1:]]
    lottery_mean = len(bad) * cap / len(licensed)  # each café survives with probability cap / stock
    assert cells[0].startswith(f"{lottery_mean:.1f}")
    assert cells[1].startswith("0<")  # rule-based: every violator closes first
    closed = page.split('id="q-attrition"', 1)[1].split("<details", 1)[1].split("</details>", 1)[0]
    assert set(
        closed.split("</summary>", 1)[1].split('<p class="mb-0">')[1].split("</p>")[0].split("、")
    ) == set(licensed.loc[licensed["id"].isin(bad), "name"])
    book = openpyxl.load_workbook(io.BytesIO(analyst.get(f"/quota/export.xlsx?target=cap&cap={cap}").data))
    rows = list(book["压减方案"].iter_rows(values_only=True))
    assert rows[0][0] == "方式" and rows[2][0] == "按规则压减" and rows[2][4] == 0
