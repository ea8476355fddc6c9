"""The licence pre-check counter on the demo district: verdicts, datums, bad input, CSRF.

Expected distances come from ``data/demo/design.json`` (recorded when the district was built),
not from the engine; a location in BD-09, GCJ-02 or a Gauss–Krüger zone is produced with the
forward formulas of :mod:`geo.crs` and pyproj, and must give the WGS84 answer.
"""

from __future__ import annotations

import re

import pytest
from pyproj import Transformer

from geo.crs import wgs84_to_bd09, wgs84_to_gcj02
from tests.demo_support import copy_demo
from webmap import create_app

DEMO_PASSWORD = "civicmap-demo"
SCHOOL_RULE = "net_cafe_school"


@pytest.fixture(scope="module")
def demo_copy(demo_workspace, tmp_path_factory):
    """A private copy of the demo workspace (signing in writes to its audit log)."""
    return copy_demo(demo_workspace, tmp_path_factory.mktemp("precheck"))


@pytest.fixture(scope="module")
def pc_app(demo_copy):
    return create_app(
        {"TESTING": True, "WORKSPACE": str(demo_copy), "SECRET_KEY": "pc-test", "WTF_CSRF_ENABLED": False}
    )


@pytest.fixture(scope="module")
def pc(pc_app):
    client = pc_app.test_client()
    assert client.post("/login", data={"name": "viewer", "password": DEMO_PASSWORD}).status_code == 302
    return client


@pytest.fixture(scope="module")
def cafes(demo_layers):
    return demo_layers["net_cafes"].set_index("id")


def _check(client, x, y, datum="wgs84", **extra) -> dict:
    response = client.post(
        "/precheck/check", json={"x": str(x), "y": str(y), "datum": datum, "kind": "net_cafes", "profile": "national",
                                 **extra},
    )  # fmt: skip
    assert response.status_code == 200, response.get_json()
    return response.get_json()["result"]


def _school_rule(result: dict) -> dict:
    return next(r for r in result["rules"] if r["id"] == SCHOOL_RULE)


def test_sign_in_required(pc_app):
    anonymous = pc_app.test_client()
    page = anonymous.get("/precheck/")
    assert page.status_code == 302 and "/login" in page.headers["Location"]
    answer = anonymous.post("/precheck/check", json={"x": "114.3", "y": "30.55"})
    assert answer.status_code in (302, 401)


def test_counter_page_renders_form_and_map(pc):
    html = pc.get("/precheck/").get_data(as_text=True)
    assert '<form method="post" action="/precheck/"' in html
    assert 'name="csrf_token"' in html and 'id="cm-pc-data"' in html
    for datum in ("wgs84", "cgcs2000", "gcj02", "bd09", "epsg"):
        assert f'<option value="{datum}"' in html
    assert "许可选址预审" in html


@pytest.mark.parametrize("index", range(5))
def test_designed_violation_gives_not_compliant_with_the_school_and_distance(pc, cafes, demo_design, index):
    case = demo_design["near_school"][index]
    point = cafes.loc[case["venue_id"]].geometry
    result = _check(pc, point.x, point.y)
    assert result["verdict"] == "violation"
    rule = _school_rule(result)
    assert rule["verdict"] == "violation"
    nearest = rule["conflicts"][0]
    assert nearest["site_id"] == case["school_id"]
    assert nearest["distance_m"] == pytest.approx(case["distance_m"], abs=0.05)
    assert result["shortfall_m"] == pytest.approx(200.0 - case["distance_m"], abs=0.05)
    # the drawing: candidate, one evidence line per conflict, the school highlighted
    assert len(result["draw"]["lines"]) == len(rule["conflicts"])
    assert any(s["state"] == "violation" for s in result["draw"]["sites"])


def test_form_post_renders_verdict_without_javascript(pc, cafes, demo_design):
    case = demo_design["near_school"][0]
    point = cafes.loc[case["venue_id"]].geometry
    response = pc.post(
        "/precheck/", data={"x": f"{point.x:.7f}", "y": f"{point.y:.7f}", "datum": "wgs84", "kind": "net_cafes",
                            "profile": "national"},
    )  # fmt: skip
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert re.search(r'id="cm-pc-verdict">不合格<', html)
    assert f"{case['distance_m']:.1f} 米" in html
    assert "国务院令第363号" in html  # profile title and legal basis for the printout
    assert "WGS84（GPS）" in html


def _far_cafe(demo_design) -> str:
    listed = {c["venue_id"] for key in ("near_school", "near_limit", "near_kindergarten", "near_point_school",
                                        "in_residential") for c in demo_design[key]}  # fmt: skip
    listed |= {demo_design["far_door"]["venue_id"], demo_design["detour"]["venue_id"]}
    return next(f"nc-{n:03d}" for n in range(1, 200) if f"nc-{n:03d}" not in listed)


def test_location_far_from_every_school_is_compliant(pc, cafes, demo_design):
    point = cafes.loc[_far_cafe(demo_design)].geometry
    result = _check(pc, point.x, point.y)
    assert result["verdict"] == "ok"
    rule = _school_rule(result)
    assert rule["conflicts"] == [] and rule["nearest"]["straight_m"] > 215.0
    assert result["shortfall_m"] == 0.0
    # drawn: only the nearest school, dashed, labelled with its straight-line distance
    assert [(line["state"], line["distance_m"]) for line in result["draw"]["lines"]] == [
        ("nearest", rule["nearest"]["straight_m"])
    ]


@pytest.mark.parametrize("datum", ["bd09", "gcj02", "EPSG:4547", "cgcs2000"])
def test_same_answer_in_every_datum(pc, cafes, demo_design, datum):
    case = demo_design["near_school"][1]
    point = cafes.loc[case["venue_id"]].geometry
    if datum == "bd09":
        (x,), (y,) = wgs84_to_bd09([point.x], [point.y])
    elif datum == "gcj02":
        (x,), (y,) = wgs84_to_gcj02([point.x], [point.y])
    elif datum == "cgcs2000":
        x, y = point.x, point.y
    else:
        x, y = Transformer.from_crs("EPSG:4326", datum, always_xy=True).transform(point.x, point.y)
    form_datum = "epsg" if datum.startswith("EPSG") else datum
    result = _check(pc, repr(float(x)), repr(float(y)), datum=form_datum, epsg=datum.removeprefix("EPSG:"))
    assert result["verdict"] == "violation"
    nearest = _school_rule(result)["conflicts"][0]
    assert nearest["site_id"] == case["school_id"]
    assert nearest["distance_m"] == pytest.approx(case["distance_m"], abs=0.05)
    assert result["lon"] == pytest.approx(point.x, abs=1e-7) and result["lat"] == pytest.approx(
        point.y, abs=1e-7
    )


BAD_INPUTS = [
    ({"x": "abc", "y": "30.55"}, "不是数字"),
    ({"x": "114.3", "y": ""}, "请填写两个坐标"),
    ({"x": "0", "y": "0"}, "不在中国境内"),
    ({"x": "30.55", "y": "114.30"}, "经度和纬度似乎填反了"),
    ({"x": "114.3", "y": "30.55", "datum": "epsg", "epsg": "99999"}, "无法识别坐标系"),
    ({"x": "114.3", "y": "30.55", "datum": "mars"}, "无法识别的坐标系"),
    ({"x": "114.3", "y": "30.55", "kind": "cinemas"}, "没有规定"),
    ({"x": "114.3", "y": "30.55", "profile": "atlantis"}, "无此执行标准"),
    ({"x": "nan", "y": "30.55"}, "不是数字"),
]


@pytest.mark.parametrize(("values", "message"), BAD_INPUTS)
def test_bad_input_gives_a_message_not_an_error(pc, values, message):
    data = {"kind": "net_cafes", "profile": "national", "datum": "wgs84", **values}
    answer = pc.post("/precheck/check", json=data)
    assert answer.status_code == 400
    assert message in answer.get_json()["error"]
    page = pc.post("/precheck/", data=data)
    assert page.status_code == 400
    html = page.get_data(as_text=True)
    assert 'id="cm-pc-error"' in html and message in html


def test_json_check_needs_the_csrf_header(demo_copy, pc_app, cafes, demo_design):
    app = create_app({"TESTING": True, "WORKSPACE": str(demo_copy), "SECRET_KEY": "pc-test"})
    client = app.test_client()
    login_page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', login_page).group(1)
    client.post("/login", data={"name": "viewer", "password": DEMO_PASSWORD, "csrf_token": token})
    page = client.get("/precheck/").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    point = cafes.loc[demo_design["near_school"][0]["venue_id"]].geometry
    body = {
        "x": str(point.x),
        "y": str(point.y),
        "datum": "wgs84",
        "kind": "net_cafes",
        "profile": "national",
    }
    assert client.post("/precheck/check", json=body).status_code == 400
    answer = client.post("/precheck/check", json=body, headers={"X-CSRFToken": token})
    assert answer.status_code == 200
    assert answer.get_json()["result"]["verdict"] == "violation"
    assert 'data-verdict="violation"' in answer.get_json()["html"]
