"""The /coverage page on the demo district: tables, compliance lists, siting form, roles, escaping."""

from __future__ import annotations

import re
import shutil

import pytest

from tests.demo_support import copy_demo
from webmap import create_app

DEMO_PASSWORD = "civicmap-demo"


@pytest.fixture(scope="module")
def demo_copy(demo_workspace, tmp_path_factory):
    """A private copy of the demo workspace (signing in writes to its audit log)."""
    return copy_demo(demo_workspace, tmp_path_factory.mktemp("coverage"))


@pytest.fixture(scope="module")
def cov_app(demo_copy):
    return create_app(
        {"TESTING": True, "WORKSPACE": str(demo_copy), "SECRET_KEY": "cov-test", "WTF_CSRF_ENABLED": False}
    )


def _client(app, name):
    client = app.test_client()
    assert client.post("/login", data={"name": name, "password": DEMO_PASSWORD}).status_code == 302
    return client


def _table_rows(html: str) -> dict[str, list[str]]:
    body = html.split('id="cm-cov-table"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr[^>]*>\s*<td>(.*?)</td>(.*?)</tr>", body, flags=re.S)
    return {name: re.findall(r'class="num">(?:<span[^>]*></span>)?([^<]*)</td>', rest) for name, rest in rows}


def test_sign_in_required(cov_app):
    page = cov_app.test_client().get("/coverage/")
    assert page.status_code == 302 and "/login" in page.headers["Location"]


def test_page_shows_tables_lists_and_map(cov_app, demo_design):
    html = (
        _client(cov_app, "viewer")
        .get("/coverage/?type=any&method=straight&cutoff=15+min")
        .get_data(as_text=True)
    )
    rows = _table_rows(html)
    for name, population in demo_design["residential_population"].items():
        assert rows[name][0].replace(",", "") == str(population)
    facts = demo_design["facilities"]
    compliance = html.split('id="cm-cov-compliance"', 1)[1].split("</div>", 1)[0]
    assert facts["subdistrict_without_station_or_service_point"] in compliance
    for fid in facts["must_be_free_but_marked_false"]:
        assert fid in compliance
    assert 'href="/coverage/"' in html  # the navigation entry
    assert "folium" in html.lower() and "cm-cov-access" in html
    assert "文化覆盖" in html  # Chinese by default


def test_walking_cutoff_and_bad_query(cov_app):
    client = _client(cov_app, "viewer")
    html = client.get("/coverage/?type=service_point&method=walk&cutoff=5+min").get_data(as_text=True)
    assert _table_rows(html)["白沙乡"][1] == "0"
    assert client.get("/coverage/?type=rocket").status_code == 400
    assert client.get("/coverage/?cutoff=7+min").status_code == 400


def test_siting_needs_analyst(cov_app):
    viewer = _client(cov_app, "viewer")
    assert (
        viewer.post("/coverage/site", data={"type": "service_point", "goal": "p", "p": "2"}).status_code
        == 403
    )
    analyst = _client(cov_app, "analyst")
    page = analyst.post(
        "/coverage/site", data={"type": "service_point", "method": "straight", "goal": "p", "p": "2"}
    )
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    siting = html.split('id="cm-cov-siting"', 1)[1].split("</table>", 1)[0]
    orders = re.findall(r"<tr><td>(\d+)</td>", siting)
    assert orders == ["1", "2"]
    bad = analyst.post("/coverage/site", data={"type": "service_point", "goal": "p", "p": "many"})
    assert bad.status_code == 400 and 'id="cm-cov-site-error"' in bad.get_data(as_text=True)


@pytest.mark.slow  # copies the demo workspace and builds an app
def test_user_text_is_escaped(tmp_path, demo_workspace):
    path = tmp_path / "ws"
    shutil.copytree(demo_workspace.path, path)
    from layers.store import Workspace

    ws = Workspace.open(path)
    layers = ws.read_all()
    res = layers["residential"]
    fac = layers["cultural_facilities"]
    far = res["subdistrict"] == "白沙乡"  # uncovered, so the name is listed in the page and on the map
    res.loc[far, "name"] = "<img src=x onerror=alert(1)>"
    fac.loc[fac["id"] == "cf-049", "name"] = "<b>museum</b>"  # in the not-free list
    for kind, frame in (("residential", res), ("cultural_facilities", fac)):
        ws.write(
            kind,
            frame,
            user="pytest",
            source_name="evil.geojson",
            source_sha256="0" * 64,
            crs="wgs84",
            rows_read=len(frame),
            rows_rejected=0,
        )
    app = create_app({"TESTING": True, "WORKSPACE": str(path), "SECRET_KEY": "x", "WTF_CSRF_ENABLED": False})
    html = _client(app, "viewer").get("/coverage/").get_data(as_text=True)
    assert "<img src=x" not in html and "<b>museum" not in html
    assert "&lt;img src=x" in html and "&lt;b&gt;museum" in html
