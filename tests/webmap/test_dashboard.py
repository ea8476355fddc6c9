"""The dashboard on the demo district: every number equals an independent count and links to
a list with exactly that many rows; names are escaped; sign-in required.

Expected layer and status counts are read from the store with pandas; expected findings are
counted with pandas on :func:`webmap.analysis.get_violations` (the engine is tested elsewhere).
"""

from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from layers.schema import VENUE_KINDS
from layers.store import Workspace
from webmap import create_app

HOSTILE = "<img src=x onerror=alert(1)>"
DEMO_PASSWORD = "civicmap-demo"


class _Links(HTMLParser):
    """Every ``<a href>`` of a page with its ``data-*`` attributes and text."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[dict] = []
        self._open: dict | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._open = {**dict(attrs), "text": ""}

    def handle_data(self, data):
        if self._open is not None:
            self._open["text"] += data

    def handle_endtag(self, tag):
        if tag == "a" and self._open is not None:
            self.links.append(self._open)
            self._open = None


def _links(html: str) -> list[dict]:
    parser = _Links()
    parser.feed(html)
    return parser.links


def _number(text: str) -> int:
    return int(text.strip().replace(",", ""))


@pytest.fixture(scope="module")
def ws(demo_workspace, tmp_path_factory) -> Workspace:
    """A copy of the demo workspace with one more unlicensed net café whose name is hostile markup."""
    path = tmp_path_factory.mktemp("dashboard") / "ws"
    shutil.copytree(demo_workspace.path, path)
    copy = Workspace.open(path)
    cafes = copy.read("net_cafes")
    extra = cafes.iloc[[0]].copy()
    extra["id"], extra["name"], extra["status"], extra["licence_no"] = "nc-999", HOSTILE, "unlicensed", ""
    extra = extra.set_geometry([shapely.Point(114.33, 30.53)], crs="EPSG:4326")
    both = gpd.GeoDataFrame(pd.concat([cafes, extra], ignore_index=True), crs="EPSG:4326")
    copy.write("net_cafes", both, user="pytest", source_name="hostile.geojson", source_sha256="0" * 64,
               crs="wgs84", rows_read=len(both), rows_rejected=0)  # fmt: skip
    return copy


@pytest.fixture(scope="module")
def dash_app(ws):
    return create_app(
        {"TESTING": True, "WORKSPACE": str(ws.path), "SECRET_KEY": "dash", "WTF_CSRF_ENABLED": False}
    )


@pytest.fixture(scope="module")
def dash(dash_app):
    client = dash_app.test_client()
    assert client.post("/login", data={"name": "viewer", "password": DEMO_PASSWORD}).status_code == 302
    return client


@pytest.fixture(scope="module")
def found(dash_app, dash):
    from webmap.analysis import get_violations

    with dash_app.test_request_context():
        return {name: get_violations(name) for name in ("national", "local-examples")}


@pytest.fixture(scope="module")
def page(dash) -> str:
    response = dash.get("/")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_sign_in_required(dash_app):
    anonymous = dash_app.test_client()
    for url in ("/", "/list?layer=net_cafes", "/list?profile=national"):
        response = anonymous.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_layer_and_status_counts_equal_the_store(ws, page):
    links = _links(page)
    for kind, count in ws.counts().items():
        shown = [a for a in links if a.get("data-layer") == kind and "data-status" not in a]
        assert len(shown) == 1 and _number(shown[0]["text"]) == len(ws.read(kind)) == count
    for kind in VENUE_KINDS:
        tally = ws.read(kind)["status"].astype(str).value_counts()
        statuses = {
            a["data-status"]: _number(a["text"])
            for a in links
            if a.get("data-layer") == kind and "data-status" in a
        }
        assert statuses == {
            s: int(tally.get(s, 0)) for s in ("licensed", "suspended", "revoked", "unlicensed")
        }
    unlicensed = sum(int((ws.read(k)["status"] == "unlicensed").sum()) for k in VENUE_KINDS)
    assert unlicensed == 8  # 7 designed + the hostile one
    assert _number(re.search(r'id="kpi-unlicensed"[^>]*>([\d,]+)<', page).group(1)) == unlicensed
    total = sum(len(ws.read(k)) for k in VENUE_KINDS)
    assert _number(re.search(r'id="kpi-total"[^>]*>([\d,]+)<', page).group(1)) == total


def test_findings_by_rule_and_subdistrict_equal_pandas_counts(page, found):
    frame = found["national"]
    violations = frame[frame["violation"]]
    by_rule = violations.groupby("rule").size()
    by_sub = violations.groupby("subdistrict").size()
    links = _links(page)
    rule_links = {a["data-rule"]: _number(a["text"]) for a in links if "data-rule" in a}
    assert set(rule_links) == {"net_cafe_school", "game_venue_school", "net_cafe_residential",
                               "entertainment_residential"}  # fmt: skip
    assert rule_links == {rule: int(by_rule.get(rule, 0)) for rule in rule_links}
    sub_links = {a["data-subdistrict"]: _number(a["text"]) for a in links if "data-subdistrict" in a}
    assert len(sub_links) == 8 and sum(sub_links.values()) == len(violations)
    assert sub_links == {name: int(by_sub.get(name, 0)) for name in sub_links}
    venues = violations[["venue_kind", "venue_id"]].drop_duplicates()
    assert _number(re.search(r'id="kpi-venues"[^>]*>([\d,]+)<', page).group(1)) == len(venues)
    assert _number(re.search(r'id="kpi-findings"[^>]*>([\d,]+)<', page).group(1)) == len(violations)
    assert _number(re.search(r'id="kpi-recheck"[^>]*>([\d,]+)<', page).group(1)) == int(
        frame["recheck"].sum()
    )


@pytest.mark.slow
def test_every_number_links_to_a_list_with_that_many_rows(dash, page):
    checked = 0
    for a in _links(page):
        href = a["href"].replace("&amp;", "&")
        if not href.startswith("/list") or not re.fullmatch(r"[\d,]+", a["text"].strip()):
            continue
        html = dash.get(href).get_data(as_text=True)
        total = int(re.search(r'data-total="(\d+)"', html).group(1))
        assert total == _number(a["text"]), href
        assert html.count('class="cm-row"') == total, href
        checked += 1
    # 4 headline figures + 3 recheck/findings details + 4 rules + 8 sub-districts + 8 × 4 matrix cells
    # + 13 layers + 4 venue kinds × 4 statuses
    assert checked == 4 + 3 + 4 + 8 + 32 + 13 + 16


def test_other_profile_is_selectable(dash, found):
    html = dash.get("/?profile=local-examples").get_data(as_text=True)
    frame = found["local-examples"]
    spacing = int((frame["violation"] & (frame["rule"] == "game_venue_spacing")).sum())
    assert spacing == 3  # the designed pairs at 45, 78.5 and 99.5 m
    link = next(a for a in _links(html) if a.get("data-rule") == "game_venue_spacing")
    assert _number(link["text"]) == spacing
    assert dash.get("/?profile=atlantis").status_code == 404
    assert dash.get("/list?profile=national&rule=no_such_rule").status_code == 404
    assert dash.get("/list?layer=no_such_layer").status_code == 404


def test_legal_basis_available_for_each_rule(page):
    assert page.count('<details class="cm-basis">') == 4
    assert "国务院令第363号" in page


def test_hostile_venue_name_is_escaped(dash):
    escaped = "&lt;img src=x onerror=alert(1)&gt;"
    for url in (
        "/list?layer=net_cafes",
        "/list?status=unlicensed",
        "/list?layer=net_cafes&status=unlicensed",
    ):
        html = dash.get(url).get_data(as_text=True)
        assert escaped in html, url
        assert HOSTILE not in html and "<img" not in html, url
