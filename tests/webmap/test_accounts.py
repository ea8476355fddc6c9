"""Users, roles, tokens and the audit log in the workspace database (no HTTP)."""

from __future__ import annotations

import hashlib

import pytest

from webmap import accounts
from webmap.accounts import AccountError


def _raw(workspace, sql, *params):
    with workspace.sqlite() as con:
        return con.execute(sql, params).fetchall()


def test_add_and_authenticate(workspace):
    user = accounts.add_user(workspace, "wang", "analyst", "s3cret-pass", locale="en")
    assert (user.name, user.role, user.locale) == ("wang", "analyst", "en")
    assert accounts.authenticate(workspace, "wang", "s3cret-pass") == user
    assert accounts.authenticate(workspace, "wang", "s3cret-pasS") is None
    assert accounts.authenticate(workspace, "nobody", "s3cret-pass") is None
    assert accounts.get_user(workspace, "wang") == user
    assert accounts.list_users(workspace) == [user]


def test_password_stored_hashed_with_scrypt_by_default(workspace, monkeypatch):
    monkeypatch.setattr(accounts, "PASSWORD_METHOD", "scrypt")
    accounts.add_user(workspace, "li", "viewer", "plain-text-pw")
    [(stored,)] = _raw(workspace, "SELECT password_hash FROM users WHERE name = ?", "li")
    assert stored.startswith("scrypt:")
    assert "plain-text-pw" not in stored
    assert accounts.authenticate(workspace, "li", "plain-text-pw") is not None


@pytest.mark.parametrize(
    ("name", "role", "password", "locale", "fragment"),
    [
        ("", "viewer", "long-enough", "zh_CN", "user name = ''"),
        (" wang", "viewer", "long-enough", "zh_CN", "surrounding spaces"),
        ("a\tb", "viewer", "long-enough", "zh_CN", "printable"),
        ("x" * 65, "viewer", "long-enough", "zh_CN", "at most 64"),
        (
            "wang",
            "boss",
            "long-enough",
            "zh_CN",
            "role = 'boss': expected one of viewer, analyst, inspector, admin",
        ),
        ("wang", "viewer", "short", "zh_CN", "at least 8 characters"),
        ("wang", "viewer", "long-enough", "fr", "locale = 'fr'"),
    ],
)
def test_add_user_rejects(workspace, name, role, password, locale, fragment):
    with pytest.raises(AccountError) as info:
        accounts.add_user(workspace, name, role, password, locale=locale)
    assert fragment in str(info.value)
    assert accounts.list_users(workspace) == []


def test_duplicate_name(workspace):
    accounts.add_user(workspace, "zhao", "viewer", "long-enough")
    with pytest.raises(AccountError, match="'zhao': a user of that name exists"):
        accounts.add_user(workspace, "zhao", "admin", "long-enough")


def test_role_hierarchy():
    ranks = {role: accounts.role_rank(role) for role in accounts.ROLES}
    assert ranks == {"viewer": 0, "analyst": 1, "inspector": 2, "admin": 3}
    inspector = accounts.User("a", "inspector", "zh_CN", "")
    assert [inspector.has_role(r) for r in accounts.ROLES] == [True, True, True, False]
    viewer = accounts.User("b", "viewer", "zh_CN", "")
    assert [viewer.has_role(r) for r in accounts.ROLES] == [True, False, False, False]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("zh-CN", "zh_CN"), ("zh", "zh_CN"), ("ZH_cn", "zh_CN"), ("en", "en"), ("en-US", "en"), ("en_GB", "en")],
)
def test_normalize_locale(raw, expected):
    assert accounts.normalize_locale(raw) == expected


def test_changes_and_delete(workspace):
    accounts.add_user(workspace, "sun", "viewer", "first-password")
    accounts.set_role(workspace, "sun", "inspector")
    accounts.set_locale(workspace, "sun", "en-US")
    accounts.set_password(workspace, "sun", "second-password")
    user = accounts.get_user(workspace, "sun")
    assert (user.role, user.locale) == ("inspector", "en")
    assert accounts.authenticate(workspace, "sun", "first-password") is None
    assert accounts.authenticate(workspace, "sun", "second-password") == user
    token = accounts.create_token(workspace, "sun")
    accounts.delete_user(workspace, "sun")
    assert accounts.get_user(workspace, "sun") is None
    assert accounts.verify_token(workspace, token) is None
    assert _raw(workspace, "SELECT COUNT(*) FROM api_tokens") == [(0,)]
    with pytest.raises(AccountError, match="'sun': no such user"):
        accounts.set_role(workspace, "sun", "viewer")


def test_tokens_are_stored_as_digests(workspace):
    accounts.add_user(workspace, "zhou", "analyst", "long-enough")
    token = accounts.create_token(workspace, "zhou")
    assert token.startswith("cm_") and len(token) == 3 + 43
    rows = _raw(workspace, "SELECT hash, user, last_used FROM api_tokens")
    assert rows == [(hashlib.sha256(token.encode()).hexdigest(), "zhou", None)]
    assert accounts.verify_token(workspace, token).name == "zhou"
    [(last_used,)] = _raw(workspace, "SELECT last_used FROM api_tokens")
    assert last_used is not None
    assert accounts.verify_token(workspace, token + "x") is None
    assert accounts.verify_token(workspace, "") is None
    second = accounts.create_token(workspace, "zhou")
    assert second != token
    assert accounts.revoke_tokens(workspace, "zhou") == 2
    assert accounts.verify_token(workspace, token) is None
    with pytest.raises(AccountError, match="'ghost': no such user"):
        accounts.create_token(workspace, "ghost")


def test_audit_log_filters(workspace):
    accounts.record_audit(workspace, "login.success", user="a", ip="127.0.0.1")
    accounts.record_audit(workspace, "login_x", "underscore is literal", user="b")
    accounts.record_audit(workspace, "loginAx", "not matched by login_", user="b")
    accounts.record_audit(workspace, "import", "net_cafes v2", user="a")
    newest_first = [e.action for e in accounts.list_audit(workspace)]
    assert newest_first == ["import", "loginAx", "login_x", "login.success"]
    assert [e.action for e in accounts.list_audit(workspace, user="a")] == ["import", "login.success"]
    assert [e.action for e in accounts.list_audit(workspace, action="login_")] == ["login_x"]
    assert [e.action for e in accounts.list_audit(workspace, limit=1, offset=1)] == ["loginAx"]
    first = accounts.list_audit(workspace, action="login.")[0]
    assert (first.user, first.ip, first.detail) == ("a", "127.0.0.1", "")
    assert first.at.endswith("+00:00")
