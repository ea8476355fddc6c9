"""create_app: configuration layers, the persistent secret key, navigation registry, health check."""

from __future__ import annotations

import re
import stat
import sys

import pytest
from flask import Blueprint, render_template_string

from layers.errors import WorkspaceError
from webmap import DEFAULTS, create_app
from webmap.config import SECRET_KEY_FILE
from webmap.nav import NAV_ORDER, nav_entry


def test_layers_defaults_file_env_overrides(tmp_path, monkeypatch):
    settings = tmp_path / "civicmap.toml"
    settings.write_text(
        'LOGIN_RATE_LIMIT = "5 per minute"\nPASSWORD_MIN_LENGTH = 12\nTILE_HOSTS = ["https://tiles.internal"]\n'
        'SECRET_KEY = "from-file"\nlowercase_ignored = 1\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("CIVICMAP_SETTINGS", str(settings))
    monkeypatch.setenv("CIVICMAP_PASSWORD_MIN_LENGTH", "10")
    monkeypatch.setenv("CIVICMAP_WORKSPACE", str(tmp_path / "from-env"))
    app = create_app({"WORKSPACE": str(tmp_path / "from-test")})
    assert app.config["MAX_CONTENT_LENGTH"] == DEFAULTS["MAX_CONTENT_LENGTH"]  # default
    assert app.config["LOGIN_RATE_LIMIT"] == "5 per minute"  # file
    assert app.config["TILE_HOSTS"] == ["https://tiles.internal"]  # file
    assert app.config["PASSWORD_MIN_LENGTH"] == 10  # environment beats file, parsed as JSON
    assert app.config["WORKSPACE"] == str(tmp_path / "from-test")  # test overrides beat all
    assert app.config["SECRET_KEY"] == "from-file"
    assert "lowercase_ignored" not in app.config


def test_python_settings_file(tmp_path, monkeypatch):
    settings = tmp_path / "settings.py"
    settings.write_text(
        'TILE_HOSTS = "https://a.example, https://b.example"\nSECRET_KEY = "k"\n', encoding="utf-8"
    )
    monkeypatch.setenv("CIVICMAP_SETTINGS", str(settings))
    app = create_app({"WORKSPACE": str(tmp_path / "ws")})
    assert app.config["TILE_HOSTS"] == ["https://a.example", "https://b.example"]


def test_missing_settings_file(tmp_path, monkeypatch):
    monkeypatch.setenv("CIVICMAP_SETTINGS", str(tmp_path / "nope.toml"))
    with pytest.raises(WorkspaceError, match=r"nope\.toml"):
        create_app({"WORKSPACE": str(tmp_path / "ws")})


def test_secret_key_generated_once_and_kept(tmp_path):
    first = create_app({"WORKSPACE": str(tmp_path / "ws")})
    key_file = tmp_path / "ws" / SECRET_KEY_FILE
    key = first.config["SECRET_KEY"]
    assert len(key) == 64 and int(key, 16) >= 0
    assert key_file.read_text().strip() == key
    if sys.platform != "win32":
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    second = create_app({"WORKSPACE": str(tmp_path / "ws")})
    assert second.config["SECRET_KEY"] == key
    other = create_app({"WORKSPACE": str(tmp_path / "other")})
    assert other.config["SECRET_KEY"] != key


def test_sessions_survive_a_restart(tmp_path, monkeypatch):
    from webmap import accounts

    monkeypatch.setattr(accounts, "PASSWORD_METHOD", "pbkdf2:sha256:1000")
    config = {"WORKSPACE": str(tmp_path / "ws"), "WTF_CSRF_ENABLED": False}
    client = create_app(config).test_client()
    from layers.store import Workspace

    accounts.add_user(Workspace.open(tmp_path / "ws", create=True), "wang", "viewer", "long-enough")
    client.post("/login", data={"name": "wang", "password": "long-enough"})
    cookie = client.get_cookie("civicmap_session")
    restarted = create_app(config).test_client()
    restarted.set_cookie("civicmap_session", cookie.value)
    assert restarted.get("/account").status_code == 200


def test_health(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}


def _page():
    return render_template_string('{% extends "base.html" %}')


def test_nav_registry(config):
    app = create_app(config)
    quota = Blueprint("plan", __name__, url_prefix="/plan")
    quota.add_url_rule("/", "index", _page)
    quota.add_url_rule("/detail", "detail", _page)
    nav_entry(quota, ".index", "Quota", order=NAV_ORDER["quota"], role="analyst")
    enforcement = Blueprint("visits", __name__, url_prefix="/visits")
    enforcement.add_url_rule("/", "index", _page)
    nav_entry(enforcement, ".index", "Enforcement", order=NAV_ORDER["enforcement"])
    app.register_blueprint(quota)
    app.register_blueprint(enforcement)
    from layers.store import Workspace
    from webmap import accounts

    ws = Workspace.open(app.config["WORKSPACE"], create=True)
    accounts.add_user(ws, "viewer", "viewer", "long-enough", locale="en")
    accounts.add_user(ws, "analyst", "analyst", "long-enough", locale="en")

    def nav_of(name: str, path: str = "/account") -> list[str]:
        client = app.test_client()
        client.post("/login", data={"name": name, "password": "long-enough"})
        page = client.get(path).get_data(as_text=True)
        main = page.split('class="navbar-nav me-auto"', 1)[1].split("</ul>", 1)[0]
        links = re.findall(r'<a class="nav-link( active)?" href="([^"]+)"', main)
        return [link for link in links if link[1] in ("/", "/visits/", "/plan/")]

    assert nav_of("viewer") == [("", "/"), ("", "/visits/")]
    assert nav_of("analyst") == [("", "/"), ("", "/visits/"), ("", "/plan/")]
    assert nav_of("analyst", "/plan/detail") == [("", "/"), ("", "/visits/"), (" active", "/plan/")]
    assert nav_of("analyst", "/visits/") == [("", "/"), (" active", "/visits/"), ("", "/plan/")]
