"""Sign-in everywhere, roles, CSRF, rate limits, tokens, JSON errors, headers, escaping, audit."""

from __future__ import annotations

import re

import pytest
from flask import Blueprint, abort, request

from layers.errors import LayerError
from webmap import accounts, create_app
from webmap.security import csp_sources, require_role, safe_next

PUBLIC = {"health", "auth.login", "static", "assets.file", "assets.rotate_css"}


def _fill(rule) -> str:
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", "x", rule.rule)


def test_every_page_and_api_needs_sign_in(app, client):
    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC:
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            response = client.open(_fill(rule), method=method)
            if rule.rule.startswith("/api/"):
                assert response.status_code == 401, rule.rule
                assert response.is_json and response.json["status"] == 401
            else:
                assert response.status_code == 302, (method, rule.rule)
                assert response.headers["Location"].startswith("/login?next="), rule.rule
            checked += 1
    assert checked >= 9


def test_public_endpoints(client):
    assert client.get("/healthz").json == {"status": "ok"}
    assert client.get("/login").status_code == 200
    for path in ("/static/civicmap.css", "/vendor/leaflet/leaflet.js"):
        with client.get(path) as response:
            assert response.status_code == 200, path


def test_login_redirects_to_next_and_sets_safe_cookie(client, make_user, login):
    make_user("wang")
    response = login("wang", next="/admin/audit")
    assert response.status_code == 302 and response.headers["Location"] == "/admin/audit"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert client.get("/account").status_code == 200


def test_session_cookie_secure_over_https(app, make_user):
    make_user("wang")
    client = app.test_client()
    response = client.post(
        "/login", data={"name": "wang", "password": "correct horse 1"}, base_url="https://localhost"
    )
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/layers?x=1", "/layers?x=1"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil", "/"),
        (None, "/"),
    ],
)
def test_no_open_redirect(target, expected):
    assert safe_next(target, "/") == expected


def test_wrong_password(client, make_user, login):
    make_user("wang")
    response = login("wang", "wrong password")
    assert response.status_code == 200
    assert "用户名或密码错误" in response.get_data(as_text=True)
    assert client.get("/account").status_code == 302


@pytest.fixture
def role_app(config):
    app = create_app(config)
    bp = Blueprint("roles_test", __name__)
    for role in accounts.ROLES:
        bp.add_url_rule(f"/needs-{role}", f"needs_{role}", require_role(role)(lambda: "ok"))
    api = Blueprint("api_test", __name__, url_prefix="/api/v1/test")
    api.add_url_rule("/admin", "admin", require_role("admin")(lambda: {"ok": True}))
    api.add_url_rule("/write", "write", lambda: {"ok": True}, methods=["POST"])

    def bad_input():
        raise LayerError.single("venues.xlsx", "expected a number", row=3, field="lon", value="abc")

    api.add_url_rule("/bad", "bad", bad_input)
    api.add_url_rule("/gone", "gone", lambda: abort(404, description="no venue 'v9'"))
    app.register_blueprint(bp)
    app.register_blueprint(api)
    return app


@pytest.mark.parametrize("role", accounts.ROLES)
def test_roles_enforced(role_app, role):
    client = role_app.test_client()
    from layers.store import Workspace

    accounts.add_user(Workspace.open(role_app.config["WORKSPACE"], create=True), "u", role, "correct horse 1")
    client.post("/login", data={"name": "u", "password": "correct horse 1"})
    for needed in accounts.ROLES:
        allowed = accounts.role_rank(role) >= accounts.role_rank(needed)
        assert client.get(f"/needs-{needed}").status_code == (200 if allowed else 403), needed
    assert client.get("/admin/users").status_code == (200 if role == "admin" else 403)
    assert client.get("/admin/audit").status_code == (200 if role == "admin" else 403)
    api = client.get("/api/v1/test/admin")
    if role == "admin":
        assert api.json == {"ok": True}
    else:
        assert api.status_code == 403 and api.json["status"] == 403 and api.json["error"]


def test_api_token_auth_and_json_errors(role_app):
    from layers.store import Workspace

    ws = Workspace.open(role_app.config["WORKSPACE"], create=True)
    accounts.add_user(ws, "bot", "viewer", "correct horse 1", locale="en")
    token = accounts.create_token(ws, "bot")
    client = role_app.test_client()
    auth = {"Authorization": f"Bearer {token}"}

    assert client.get("/api/v1/me", headers=auth).json == {"name": "bot", "role": "viewer", "locale": "en"}
    for headers in ({}, {"Authorization": "Bearer cm_not-a-token"}, {"Authorization": f"Basic {token}"}):
        response = client.get("/api/v1/me", headers=headers)
        assert response.status_code == 401 and response.is_json
        assert response.json["status"] == 401 and response.json["error"]
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/api/v1/test/admin", headers=auth).json["status"] == 403
    missing = client.get("/api/v1/nothing-here", headers=auth)
    assert missing.status_code == 404 and missing.is_json
    gone = client.get("/api/v1/test/gone", headers=auth)
    assert gone.json == {"error": "no venue 'v9'", "status": 404}
    bad = client.get("/api/v1/test/bad", headers=auth)
    assert bad.status_code == 400
    assert bad.json["error"] == "1 problem(s) found:\nvenues.xlsx row 3: lon = 'abc': expected a number"
    assert client.post("/api/v1/me", headers=auth).json["status"] == 405
    accounts.revoke_tokens(ws, "bot")
    assert client.get("/api/v1/me", headers=auth).status_code == 401


def test_csrf_enforced(config, tmp_path, csrf_from):
    config["WTF_CSRF_ENABLED"] = True
    app = create_app(config)
    from layers.store import Workspace

    ws = Workspace.open(app.config["WORKSPACE"], create=True)
    accounts.add_user(ws, "admin", "admin", "correct horse 1")
    client = app.test_client()
    form = {"name": "admin", "password": "correct horse 1"}

    refused = client.post("/login", data=form)
    assert refused.status_code == 400
    assert "表单已过期" in refused.get_data(as_text=True)
    token = csrf_from(client.get("/login").get_data(as_text=True))
    assert client.post("/login", data={**form, "csrf_token": token}).status_code == 302

    new_user = {"name": "x1", "role": "viewer", "locale": "zh_CN", "password": "long-enough"}
    assert client.post("/admin/users", data=new_user).status_code == 400
    assert accounts.get_user(ws, "x1") is None
    token = csrf_from(client.get("/admin/users").get_data(as_text=True))
    assert client.post("/admin/users", data={**new_user, "csrf_token": token}).status_code == 302
    assert accounts.get_user(ws, "x1").role == "viewer"
    # the API with the session cookie needs the token too; with a bearer token it does not
    assert client.post("/api/v1/me").json["status"] == 400
    assert client.post("/api/v1/me", headers={"X-CSRFToken": token}).json["status"] == 405
    bearer = {"Authorization": f"Bearer {accounts.create_token(ws, 'x1')}"}
    assert app.test_client().post("/api/v1/me", headers=bearer).json["status"] == 405


def test_login_rate_limited(client, make_user, login, workspace):
    make_user("wang")
    for _ in range(10):
        assert login("wang", "guess").status_code == 200
    locked = login("wang")  # even the right password, until the minute is over
    assert locked.status_code == 429
    page = locked.get_data(as_text=True)
    assert "登录尝试次数过多" in page
    assert client.get("/account").status_code == 302
    login("wang")
    actions = [e.action for e in accounts.list_audit(workspace)]
    assert actions.count("login.failure") == 10
    assert actions.count("login.locked") == 1
    assert "login.success" not in actions


def test_upload_size_limited(config):
    config["MAX_CONTENT_LENGTH"] = 1000
    app = create_app(config)
    upload = Blueprint("upload_test", __name__, url_prefix="/api/v1/test")
    upload.add_url_rule("/upload", "upload", lambda: {"size": len(request.get_data())}, methods=["POST"])
    app.register_blueprint(upload)
    from layers.store import Workspace

    accounts.add_user(
        Workspace.open(app.config["WORKSPACE"], create=True), "bot", "analyst", "correct horse 1"
    )
    client = app.test_client()
    page = client.post("/login", data={"name": "x", "password": "y" * 2000})
    assert page.status_code == 413
    assert "上传文件超过" in page.get_data(as_text=True)
    auth = {
        "Authorization": "Bearer "
        + accounts.create_token(Workspace.open(app.config["WORKSPACE"], create=True), "bot")
    }
    assert client.post("/api/v1/test/upload", data=b"x" * 999, headers=auth).json == {"size": 999}
    too_big = client.post("/api/v1/test/upload", data=b"x" * 1001, headers=auth)
    assert too_big.status_code == 413 and too_big.json["status"] == 413


def test_security_headers(client, config):
    first = client.get("/login")
    second = client.get("/login")
    csp = first.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    assert nonce not in second.headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == f"'self' 'nonce-{nonce}'"
    assert (
        directives["img-src"]
        == "'self' data: https://*.tianditu.gov.cn https://tile.openstreetmap.org https://*.is.autonavi.com"
    )
    assert directives["frame-ancestors"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert first.headers["X-Content-Type-Options"] == "nosniff"
    assert first.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert first.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert first.headers["Cache-Control"] == "no-store"
    assert "unsafe-inline" not in directives["script-src"]
    assert client.get("/healthz").headers["X-Content-Type-Options"] == "nosniff"


def test_tile_hosts_from_config(config):
    config["TILE_HOSTS"] = (
        "http://10.1.2.3:8080/tiles/{z}/{x}/{y}.png, https://t{s}.tianditu.gov.cn/vec_w/wmts?tk={k}"
    )
    csp = create_app(config).test_client().get("/login").headers["Content-Security-Policy"]
    assert "img-src 'self' data: http://10.1.2.3:8080 https://*.tianditu.gov.cn;" in csp


@pytest.mark.parametrize(
    ("url", "source"),
    [
        ("https://t{s}.tianditu.gov.cn/vec_w/wmts?tk={key}", "https://*.tianditu.gov.cn"),
        ("https://webrd0{s}.is.autonavi.com/appmaptile?x={x}", "https://*.is.autonavi.com"),
        ("https://tile.openstreetmap.org/{z}/{x}/{y}.png", "https://tile.openstreetmap.org"),
        ("https://{s}.{s}.example.org/{z}.png", "https://*.example.org"),
        ("http://10.1.2.3:8080/t/{z}/{x}/{y}.png", "http://10.1.2.3:8080"),
        ("https://*.tianditu.gov.cn", "https://*.tianditu.gov.cn"),
    ],
)
def test_csp_sources(url, source):
    assert csp_sources([url]) == [source]


def test_hostile_user_name_is_escaped(client, make_user, login):
    make_user("admin", "admin")
    make_user("<img src=x onerror=alert(1)>")
    login("admin")
    page = client.get("/admin/users").get_data(as_text=True)
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<img src=x" not in page


def test_audit_log_records_logins(client, make_user, login, workspace):
    make_user("admin", "admin")
    login("admin", "nope")
    login("admin")
    entries = accounts.list_audit(workspace)
    assert [(e.action, e.user, e.ip) for e in entries] == [
        ("login.success", "admin", "127.0.0.1"),
        ("login.failure", "admin", "127.0.0.1"),
    ]
    page = client.get("/admin/audit").get_data(as_text=True)
    assert page.count("login.failure") == 1 and page.count("login.success") == 1
    assert 'name="user" value=""' in page
    page = client.get("/admin/audit?action=login.fail").get_data(as_text=True)
    assert page.count("login.failure") == 1 and "login.success" not in page
    assert 'name="action" value="login.fail"' in page
    client.post("/logout")
    assert accounts.list_audit(workspace)[0].action == "logout"


def test_deleted_user_is_signed_out(client, make_user, login, workspace):
    make_user("temp")
    login("temp")
    assert client.get("/account").status_code == 200
    accounts.delete_user(workspace, "temp")
    assert client.get("/account").status_code == 302
