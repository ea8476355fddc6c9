"""Fixtures for the web app: a fresh workspace per test, app / client / runner, users, sign-in."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

# tests/conftest.py puts tests/ on sys.path, where tests/webmap would pass for the ``webmap``
# package (a namespace package) unless the repository root is on sys.path too: a regular
# package always wins over a namespace portion.  (pytest ``pythonpath = ["."]`` does the same.)
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.append(_ROOT)

from webmap import accounts, create_app  # noqa: E402

PASSWORD = "correct horse 1"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch):
    """No CIVICMAP_* variable of the developer's shell leaks in; fast password hashing."""
    for key in list(os.environ):
        if key.startswith("CIVICMAP_"):
            monkeypatch.delenv(key)
    # scrypt takes ~0.14 s per hash; test_accounts checks the real default separately
    monkeypatch.setattr(accounts, "PASSWORD_METHOD", "pbkdf2:sha256:1000")


@pytest.fixture
def config(tmp_path) -> dict:
    """Overrides for create_app; tests may change them before using ``app``."""
    return {
        "TESTING": True,
        "WORKSPACE": str(tmp_path / "ws"),
        "SECRET_KEY": "test-secret-key",
        "WTF_CSRF_ENABLED": False,
    }


@pytest.fixture
def app(config):
    return create_app(config)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def workspace(config):
    """The (fresh) workspace the app of this test uses."""
    from layers.store import Workspace

    return Workspace.open(config["WORKSPACE"], create=True)


@pytest.fixture
def make_user(workspace) -> Callable[..., accounts.User]:
    def make(name: str, role: str = "viewer", *, locale: str = "zh_CN", password: str = PASSWORD):
        return accounts.add_user(workspace, name, role, password, locale=locale)

    return make


@pytest.fixture
def login(client) -> Callable:
    def sign_in(name: str, password: str = PASSWORD, **extra):
        data = {"name": name, "password": password, **extra}
        return client.post("/login", data=data)

    return sign_in


@pytest.fixture
def csrf_from() -> Callable[[str], str]:
    """Reads the CSRF token out of a rendered form."""

    def read(html: str) -> str:
        match = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html)
        assert match, "no CSRF token in the page"
        return match.group(1)

    return read
