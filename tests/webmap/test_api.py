"""The JSON API over the demo district: tokens, JSON errors, bbox and paging, filters, pre-check, import."""

from __future__ import annotations

import io
import json
import shutil

import pytest
import shapely

from geo.precheck import check_site
from geo.rules import load_profile
from geo.violations import RuleEngine
from layers.store import Workspace
from webmap import accounts, create_app

BBOX = (114.27, 30.53, 114.30, 30.56)
GOOD_SCHOOLS = "名称,学段,经度,纬度\n甲小学,小学,114.27,30.55\n乙中学,初中,114.28,30.56\n".encode()
BAD_SCHOOLS = "名称,学段,经度,纬度\n甲小学,小学,114.27,30.55\n丙学校,abc,abc,30.57\n".encode()


@pytest.fixture(scope="module")
def demo(demo_workspace, tmp_path_factory):
    """A copy of the demo district with a viewer and an analyst token, and the app over it."""
    path = tmp_path_factory.mktemp("api") / "ws"
    shutil.copytree(demo_workspace.path, path)
    ws = Workspace.open(path)
    tokens = {}
    for name, role in (("vic", "viewer"), ("ana", "analyst")):
        accounts.add_user(ws, name, role, "correct horse 1")
        tokens[role] = {"Authorization": f"Bearer {accounts.create_token(ws, name)}"}
    app = create_app({"TESTING": True, "WORKSPACE": str(path), "SECRET_KEY": "api-test"})
    return app.test_client(), tokens, ws


def test_token_auth_and_json_errors(demo):
    client, tokens, _ws = demo
    me = client.get("/api/v1/me", headers=tokens["viewer"])
    assert me.status_code == 200 and me.get_json() == {"name": "vic", "role": "viewer", "locale": "zh_CN"}
    for headers in ({}, {"Authorization": "Bearer cm_not-a-token"}, {"Authorization": "Basic dmljOng="}):
        response = client.get("/api/v1/layers", headers=headers)
        assert response.status_code == 401 and response.is_json
        assert response.get_json()["status"] == 401 and response.get_json()["error"]
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="civicmap"'
    files = {"file": (io.BytesIO(GOOD_SCHOOLS), "s.csv"), "crs": "wgs84"}
    forbidden = client.post("/api/v1/import/schools", headers=tokens["viewer"], data=files)
    assert forbidden.status_code == 403 and forbidden.get_json()["status"] == 403
    missing = client.get("/api/v1/layers/nope", headers=tokens["viewer"])
    assert missing.status_code == 404 and "unknown layer kind 'nope'" in missing.get_json()["error"]


def test_layers_lists_counts_and_versions(demo):
    client, tokens, ws = demo
    body = client.get("/api/v1/layers", headers=tokens["viewer"]).get_json()
    by_kind = {layer["kind"]: layer for layer in body["layers"]}
    assert by_kind["schools"]["count"] == 56 and by_kind["schools"]["label_zh"] == "学校"
    assert {k: v["count"] for k, v in by_kind.items()} == ws.counts()
    assert by_kind["schools"]["version"] == ws.current_versions()["schools"]
    assert by_kind["schools"]["versions"] == ws.versions("schools")


def test_bbox_filter_gives_the_features_that_intersect_it(demo):
    client, tokens, ws = demo
    schools = ws.read("schools")
    box = shapely.box(*BBOX)
    expected = sorted(i for i, g in zip(schools["id"], schools.geometry, strict=True) if g.intersects(box))
    assert 0 < len(expected) < len(schools)
    bbox = ",".join(map(str, BBOX))
    body = client.get(f"/api/v1/layers/schools?bbox={bbox}", headers=tokens["viewer"]).get_json()
    assert body["type"] == "FeatureCollection" and body["total"] == len(expected) and body["next"] is None
    assert sorted(f["id"] for f in body["features"]) == expected
    # geometry comes back as GeoJSON that round-trips to the stored shape
    first = body["features"][0]
    stored = schools.set_index("id").geometry[first["id"]]
    assert shapely.geometry.shape(first["geometry"]).equals_exact(stored, 1e-9)
    assert first["properties"]["name"] == schools.set_index("id")["name"][first["id"]]


def test_paging_walks_every_feature_once(demo):
    client, tokens, ws = demo
    expected = list(ws.read("net_cafes")["id"])
    seen, url, pages = [], "/api/v1/layers/net_cafes?limit=40", 0
    while url:
        body = client.get(url, headers=tokens["viewer"]).get_json()
        assert body["total"] == len(expected) and body["limit"] == 40
        seen += [f["id"] for f in body["features"]]
        url, pages = body["next"], pages + 1
    assert seen == expected and pages == 3  # 110 = 40 + 40 + 30
    last = client.get("/api/v1/layers/net_cafes?limit=40&offset=80", headers=tokens["viewer"]).get_json()
    assert last["returned"] == 30 and last["next"] is None


@pytest.mark.parametrize(
    "query",
    [
        "bbox=1,2,3",
        "bbox=114.3,30.5,114.2,30.6",
        "bbox=a,b,c,d",
        "limit=0",
        "limit=abc",
        "offset=-1",
        "limit=10001",
    ],
)
def test_bad_layer_parameters_are_400_json(demo, query):
    client, tokens, _ws = demo
    response = client.get(f"/api/v1/layers/schools?{query}", headers=tokens["viewer"])
    assert response.status_code == 400 and response.is_json
    assert query.split("=")[0] in response.get_json()["error"]


def test_violations_and_their_filters(demo):
    client, tokens, ws = demo
    found = RuleEngine(
        {k: ws.read(k) for k, n in ws.counts().items() if n}, load_profile("national")
    ).violations(include_near=True)

    def ids(frame):
        return sorted(zip(frame["venue_id"], frame["site_id"], frame["rule"], strict=True))

    def get(query):
        body = client.get(f"/api/v1/violations?format=rows&limit=10000&{query}", headers=tokens["viewer"])
        assert body.status_code == 200, body.get_json()
        return sorted((r["venue_id"], r["site_id"], r["rule"]) for r in body.get_json()["rows"])

    real = found[found["violation"]]
    assert get("profile=national") == ids(real) and len(real) > 0
    assert get("include_near=true") == ids(found)
    assert get("rule=net_cafe_school") == ids(real[real["rule"] == "net_cafe_school"])
    assert get("kind=game_venues") == ids(real[real["venue_kind"] == "game_venues"])
    sub = real["subdistrict"].iloc[0]
    assert get(f"subdistrict={sub}") == ids(real[real["subdistrict"] == sub])
    near = found[found["recheck"]]
    assert get("include_near=1&recheck=true") == ids(near) and len(near) > 0
    geo = client.get("/api/v1/violations?rule=game_venue_school", headers=tokens["viewer"]).get_json()
    assert geo["type"] == "FeatureCollection"
    assert {f["geometry"]["type"] for f in geo["features"]} == {"LineString"}
    assert client.get("/api/v1/violations?recheck=maybe", headers=tokens["viewer"]).status_code == 400
    assert client.get("/api/v1/violations?profile=nowhere", headers=tokens["viewer"]).status_code == 400


def test_check_site_agrees_with_the_precheck(demo, demo_design):
    client, tokens, ws = demo
    venue_id = demo_design["game_near_school"][0]["venue_id"]  # gv-001, 90 m from sch-020
    venue = ws.read("game_venues").set_index("id").geometry[venue_id]
    engine = RuleEngine({k: ws.read(k) for k, n in ws.counts().items() if n}, load_profile("national"))
    # JSON has lists where the dict has tuples (GeoJSON coordinates)
    expected = json.loads(json.dumps(check_site(engine, venue.x, venue.y, kind="game_venues").to_dict()))
    query = {"lon": venue.x, "lat": venue.y, "kind": "game_venues", "profile": "national"}
    got = client.get("/api/v1/check-site", query_string=query, headers=tokens["viewer"]).get_json()
    assert got == expected
    assert got["verdict"] == "violation"
    assert got["rules"][0]["conflicts"][0]["site_id"] == demo_design["game_near_school"][0]["school_id"]
    posted = client.post("/api/v1/check-site", json=query, headers=tokens["viewer"]).get_json()
    assert posted == expected
    assert client.post("/api/v1/check-site", json=[1, 2], headers=tokens["viewer"]).status_code == 400
    bad = client.get("/api/v1/check-site?lon=abc&lat=30", headers=tokens["viewer"])
    assert bad.status_code == 400 and bad.get_json()["error"] == "lon = 'abc': expected a number"
    outside = client.get("/api/v1/check-site?lon=2.35&lat=48.85", headers=tokens["viewer"])
    assert outside.status_code == 400 and "outside China" in outside.get_json()["error"]


def test_import_via_api(tmp_path):
    ws = Workspace.open(tmp_path / "ws", create=True)
    accounts.add_user(ws, "ana", "analyst", "correct horse 1")
    headers = {"Authorization": f"Bearer {accounts.create_token(ws, 'ana')}"}
    client = create_app({"TESTING": True, "WORKSPACE": str(ws.path), "SECRET_KEY": "k"}).test_client()

    refused = client.post(
        "/api/v1/import/schools",
        headers=headers,
        data={"file": (io.BytesIO(BAD_SCHOOLS), "bad.csv"), "crs": "wgs84"},
    )
    assert refused.status_code == 400
    problems = refused.get_json()["problems"]
    assert {
        "source": "bad.csv",
        "row": 2,
        "field": "经度",
        "value": "abc",
        "expected": "not a number",
        "template": "not a number",
        "params": {},
    } in problems
    assert {(p["row"], p["field"], p["value"]) for p in problems} == {(2, "经度", "abc"), (2, "学段", "abc")}
    assert ws.current_versions() == {}

    done = client.post(
        "/api/v1/import/schools",
        headers=headers,
        data={"file": (io.BytesIO(BAD_SCHOOLS), "bad.csv"), "crs": "wgs84", "partial": "true"},
    )
    assert done.status_code == 201
    report = done.get_json()
    assert (report["rows_read"], report["rows_valid"], report["rows_rejected"], report["version"]) == (
        2,
        1,
        1,
        1,
    )
    assert ws.counts()["schools"] == 1
    assert accounts.list_audit(ws, action="import")[0].user == "ana"
    assert not any((ws.path / "staging").iterdir())  # the API keeps no staged file

    history = client.get("/api/v1/history?kind=schools", headers=headers).get_json()
    assert history["total"] == 1 and history["history"][0]["file_name"] == "bad.csv"
    assert history["history"][0]["rows_rejected"] == 1

    wrong_type = client.post(
        "/api/v1/import/schools", headers=headers, data={"file": (io.BytesIO(b"x"), "a.exe")}
    )
    assert wrong_type.status_code == 400 and "'.exe' is not accepted" in wrong_type.get_json()["error"]
    no_file = client.post("/api/v1/import/schools", headers=headers, data={})
    assert no_file.status_code == 400 and no_file.get_json()["error"].startswith("file:")


def test_session_api_writes_need_the_csrf_header(tmp_path, csrf_from):
    ws = Workspace.open(tmp_path / "ws", create=True)
    accounts.add_user(ws, "ana", "analyst", "correct horse 1")
    client = create_app({"TESTING": True, "WORKSPACE": str(ws.path), "SECRET_KEY": "k"}).test_client()
    token = csrf_from(client.get("/login").get_data(as_text=True))
    client.post("/login", data={"name": "ana", "password": "correct horse 1", "csrf_token": token})
    data = {"file": (io.BytesIO(GOOD_SCHOOLS), "s.csv"), "crs": "wgs84"}
    assert client.post("/api/v1/import/schools", data=data).status_code == 400
    page = client.get("/data/").get_data(as_text=True)
    data = {"file": (io.BytesIO(GOOD_SCHOOLS), "s.csv"), "crs": "wgs84"}
    ok = client.post("/api/v1/import/schools", data=data, headers={"X-CSRFToken": csrf_from(page)})
    assert ok.status_code == 201 and ws.current_versions() == {"schools": 1}
