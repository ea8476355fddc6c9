"""Enforcement pages on the demo district: target list and filters, exports, case page and roles, route, dashboard."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from datetime import date, timedelta

import pytest
from openpyxl import load_workbook

from geo.leads import leads_from_layers
from geo.rules import load_profile
from geo.violations import RuleEngine
from layers.cases import CaseBook
from layers.store import Workspace
from tests.webmap.browser_support import CHROMIUM, open_page, serve
from webmap import accounts, create_app

DEMO_PASSWORD = "civicmap-demo"


@pytest.fixture(scope="module")
def expected(demo_layers) -> dict:
    """The targets expected under the national profile, by an independent path: the engine's
    violating venues, plus the observed-but-unlicensed cafés and the suspended/revoked cafés seen
    operating that the lead reconciliation reports (grouped here, not by geo.targets)."""
    found = RuleEngine(demo_layers, load_profile("national")).violations()
    names = {
        (k, i): n for k, i, n in zip(found["venue_kind"], found["venue_id"], found["venue_name"], strict=True)
    }
    leads = leads_from_layers(demo_layers)
    for row in leads[leads["status"] == "unlicensed"].itertuples():
        names[("net_cafes", row.observed_id)] = row.observed_name
    barred = leads[(leads["status"] == "matched") & leads["register_status"].isin(["suspended", "revoked"])]
    for row in barred.itertuples():
        names[("net_cafes", row.register_id)] = row.register_name
    assert len(barred) > 0 and (leads["status"] == "unlicensed").sum() > 0  # the demo exercises both
    return {"names": set(names.values()), "count": len(names)}


def _app(path):
    return create_app(
        {"TESTING": True, "WORKSPACE": str(path), "SECRET_KEY": "enf-test", "WTF_CSRF_ENABLED": False}
    )


@pytest.fixture
def app(demo_copy):
    """An app on a private copy of the demo (for tests that change cases)."""
    return _app(demo_copy)


@pytest.fixture(scope="module")
def shared_copy(demo_workspace, tmp_path_factory):
    path = tmp_path_factory.mktemp("enforcement") / "ws"
    shutil.copytree(demo_workspace.path, path)
    return path


@pytest.fixture(scope="module")
def shared(shared_copy):
    """One app for the tests that only read (the analysis runs once for all of them)."""
    return _app(shared_copy)


def signed_in(app, name: str):
    client = app.test_client()
    response = client.post("/login", data={"name": name, "password": DEMO_PASSWORD})
    assert response.status_code == 302
    return client


def cases_of(demo_copy) -> dict:
    return CaseBook(Workspace.open(demo_copy)).cases()


def test_sign_in_required(shared):
    response = shared.test_client().get("/enforcement/")
    assert response.status_code in (302, 401)


def test_list_has_one_row_per_violating_venue_and_explains_scores(shared, expected):
    html = signed_in(shared, "viewer").get("/enforcement/").get_data(as_text=True)
    assert html.count('<tr data-venue="') == expected["count"]
    for name in expected["names"]:
        assert name in html
    assert 'id="why-score"' in html and "评分依据" in html and "基础分 +10.0" in html
    # the rows come ranked: the first row is rank 1
    first = html.split('<tr data-venue="', 1)[1]
    assert '<td class="num">1</td>' in first.split("</tr>", 1)[0]


def test_english_users_read_findings_and_reasons_in_english(shared, shared_copy):
    ws = Workspace.open(shared_copy)
    if "eng" not in {u.name for u in accounts.list_users(ws)}:
        accounts.add_user(ws, "eng", "viewer", DEMO_PASSWORD, locale="en")
    html = signed_in(shared, "eng").get("/enforcement/").get_data(as_text=True)
    findings = re.findall(r'<td class="cm-enf-summary">(.*?)</td>', html, re.S)
    assert findings and all("限值" not in f and "米" not in f for f in findings)
    assert any(re.search(r"\d+\.\d m from .+, limit 200 m \(nearest boundary\)", f) for f in findings)
    assert "base +10.0" in html and "基础分" not in html
    first_case = re.search(r'href="(/enforcement/case/\d+[^"]*)"', html).group(1).replace("&amp;", "&")
    case_page = signed_in(shared, "eng").get(first_case).get_data(as_text=True)
    assert re.search(r"<strong>Less than 200 m from a [a-z -]+</strong>", case_page)
    assert "不足" not in case_page


def test_filters_narrow_the_list(shared, shared_copy):
    client = signed_in(shared, "viewer")
    client.get("/enforcement/")
    cases = cases_of(shared_copy)
    html = client.get("/enforcement/?team=三中队").get_data(as_text=True)
    assert html.count('<tr data-venue="') >= 1
    assert "<td>三中队</td>" in html and "<td>一中队</td>" not in html and "<td>二中队</td>" not in html
    residential = client.get("/enforcement/?rule=net_cafe_residential").get_data(as_text=True)
    assert "居民住宅" in residential and "限值 200 米" not in residential
    assert client.get("/enforcement/?min=abc").status_code == 400
    none = client.get("/enforcement/?min=1000").get_data(as_text=True)
    assert '<tr data-venue="' not in none and "没有符合筛选条件的目标" in none
    assert cases == cases_of(shared_copy)  # browsing changes no case


def test_exports_read_back(shared, expected):
    client = signed_in(shared, "viewer")
    response = client.get("/enforcement/export.xlsx")
    assert response.status_code == 200 and response.mimetype.endswith("spreadsheetml.sheet")
    book = load_workbook(io.BytesIO(response.data))
    assert book.sheetnames[0] == "汇总" and book["全部目标"].max_row == expected["count"] + 1
    assert book["全部目标"]["A1"].value == "序号" and book["全部目标"].freeze_panes == "A2"
    csv_bytes = client.get("/enforcement/export.csv?team=二中队").data
    assert csv_bytes.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(csv_bytes.decode("utf-8-sig"))))
    assert {r[13] for r in rows[1:]} == {"二中队"}
    features = json.loads(client.get("/enforcement/export.geojson").data)["features"]
    assert {f["properties"]["name"] for f in features} == expected["names"]
    assert client.get("/enforcement/export.txt").status_code == 404
    log = accounts.list_audit(Workspace.open(shared.config["WORKSPACE"]), action="targets.export")
    assert len(log) >= 3 and log[0].user == "viewer"


def test_case_page_shows_map_findings_and_history(shared, shared_copy):
    client = signed_in(shared, "viewer")
    client.get("/enforcement/")
    case = next(c for c in cases_of(shared_copy).values() if c.case_id == 1)
    html = client.get("/enforcement/case/1").get_data(as_text=True)
    assert case.venue_name in html and 'id="history"' in html and "分析发现违规，立案" in html
    assert "L.map(" in html and '"LineString"' in html  # the measured line is on the map
    assert 'id="read-only"' in html and 'id="case-form"' not in html
    assert client.get("/enforcement/case/9999").status_code == 404
    assert client.get("/enforcement/case/abc").status_code == 404


@pytest.mark.parametrize("role", ["viewer", "analyst"])
def test_only_inspectors_change_cases(shared, shared_copy, role):
    client = signed_in(shared, role)
    client.get("/enforcement/")
    before = cases_of(shared_copy)
    response = client.post("/enforcement/case/1", data={"status": "assigned", "note": "x"})
    assert response.status_code == 403
    assert cases_of(shared_copy) == before


@pytest.mark.slow
def test_inspector_updates_a_case_and_it_is_audited(app, demo_copy):
    client = signed_in(app, "inspector")
    client.get("/enforcement/")
    assert 'id="case-form"' in client.get("/enforcement/case/1").get_data(as_text=True)
    response = client.post("/enforcement/case/1", data={"status": "assigned", "note": "派给二中队"})
    assert response.status_code == 303
    response = client.post(
        "/enforcement/case/1",
        data={"status": "inspected", "note": "现场测量", "surveyed_m": "160", "report": "测-2026-5"},
    )
    assert response.status_code == 303
    book = CaseBook(Workspace.open(demo_copy))
    case = book.get(1)
    assert case.status == "inspected" and case.survey_report == "测-2026-5"
    assert [(e.user, e.to_status) for e in book.history(1)[1:]] == [
        ("inspector", "assigned"),
        ("inspector", "inspected"),
    ]
    log = accounts.list_audit(Workspace.open(demo_copy), action="case.update")
    assert len(log) == 2 and log[0].user == "inspector" and "测-2026-5" in log[0].detail
    html = client.get("/enforcement/case/1").get_data(as_text=True)
    assert "派给二中队" in html and "测-2026-5" in html and "实地测量" in html  # surveyed distance used


def test_a_refused_update_says_why_and_changes_nothing(shared, shared_copy):
    client = signed_in(shared, "inspector")
    client.get("/enforcement/")
    response = client.post("/enforcement/case/1", data={"status": "dismissed", "note": "n"})
    assert response.status_code == 400
    assert "dismissing needs a reason" in response.get_data(as_text=True)
    assert CaseBook(Workspace.open(shared_copy)).get(1).status == "new"
    assert not accounts.list_audit(Workspace.open(shared_copy), action="case.update")


def test_route_page_lists_the_day_in_visiting_order(shared):
    client = signed_in(shared, "viewer")
    html = client.get("/enforcement/route?team=一中队&day=1").get_data(as_text=True)
    stops = html.split('id="stops"', 1)[1].split("</ol>", 1)[0]
    numbers = [int(part.split("</span>", 1)[0]) for part in stops.split('<span class="cm-route-no">')[1:]]
    assert numbers == list(range(1, len(numbers) + 1)) and 1 <= len(numbers) <= 8
    assert client.get("/enforcement/route?team=九中队").status_code == 404
    assert client.get("/enforcement/route?team=一中队&day=x").status_code == 404


@pytest.mark.slow
def test_dashboard_shows_open_cases_and_overdue_revisits(app, demo_copy):
    client = signed_in(app, "inspector")
    client.get("/enforcement/")
    book = CaseBook(Workspace.open(demo_copy))
    lead = next(c for c in book.cases().values() if c.licence_status == "unlicensed")
    long_ago = date.today() - timedelta(days=200)
    book.update(lead.case_id, "inspected", user="u", today=long_ago)
    book.update(lead.case_id, "closed", user="u", today=long_ago)
    html = client.get("/").get_data(as_text=True)
    total = len(book.cases())
    assert f'id="kpi-open-cases" href="/enforcement/">{total - 1}</a>' in html
    overdue = html.split('id="overdue-revisits"', 1)[1].split("</ul>", 1)[0]
    assert lead.venue_name in overdue and f"/enforcement/case/{lead.case_id}" in overdue


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
def test_route_map_draws_numbered_stops_in_a_browser(shared_copy):
    """The route map is drawn by Leaflet: every stop number shows, no console error, nothing fetched outside."""
    app = create_app({"WORKSPACE": str(shared_copy), "SECRET_KEY": "browser-test", "TILE_HOSTS": []})
    with serve(app) as base, open_page() as page:
        page.goto(f"{base}/login")
        page.fill("input[name=name]", "viewer")
        page.fill("input[name=password]", DEMO_PASSWORD)
        page.click("button[type=submit]")
        page.goto(f"{base}/enforcement/route?team=一中队&day=1")
        page.wait_for_selector(".cm-stop-no")
        listed = page.locator(".cm-route-no").count()
        drawn = sorted(int(t) for t in page.locator(".cm-stop-no").all_inner_texts())
        assert listed >= 1 and drawn == list(range(1, listed + 1))
        assert page.locator(".cm-legend").count() == 1
        assert page.problems == {"console": [], "outside": [], "dialogs": []}


def test_dashboard_opens_the_cases_and_other_profiles_only_preview(app, demo_copy, expected):
    assert cases_of(demo_copy) == {}
    signed_in(app, "viewer").get("/")  # a leader opens the dashboard first
    opened = cases_of(demo_copy)
    assert len(opened) == expected["count"]
    assert {case.status for case in opened.values()} == {"new"}
    # pilot-2014 measures on foot: some national findings disappear, but a preview resolves nothing
    page = signed_in(app, "analyst").get("/enforcement/?profile=pilot-2014")
    assert page.status_code == 200
    assert {k: c.status for k, c in cases_of(demo_copy).items()} == {k: c.status for k, c in opened.items()}
