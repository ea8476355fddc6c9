"""Users, roles, API tokens and the audit log, kept in the workspace's SQLite database.

Tables (created on first use)::

    users(name, password_hash, role, locale, created_at)
    api_tokens(hash, user, created_at, last_used)
    audit_log(id, at, user, action, detail, ip)

Roles are cumulative: ``viewer`` reads; ``analyst`` also imports data and changes settings;
``inspector`` also updates enforcement cases; ``admin`` also manages users.  Passwords are
hashed with :func:`werkzeug.security.generate_password_hash` (scrypt); API tokens are shown
once and stored as SHA-256 digests.  Times are UTC ISO-8601 strings.

The functions taking a ``workspace`` are what the CLI calls; :func:`audit` and
:func:`current_workspace` work inside a Flask request.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from werkzeug.security import check_password_hash, generate_password_hash

from layers.errors import CivicmapError

if TYPE_CHECKING:
    from layers.store import Workspace

log = logging.getLogger(__name__)

#: roles from least to most rights; each has every right of those before it
ROLES: tuple[str, ...] = ("viewer", "analyst", "inspector", "admin")
#: languages a user can choose (Babel locale identifiers)
LOCALES: tuple[str, ...] = ("zh_CN", "en")
DEFAULT_LOCALE = "zh_CN"
#: werkzeug hashing method for new passwords
PASSWORD_METHOD = "scrypt"  # noqa: S105 - a hashing method, not a password
PASSWORD_MIN_LENGTH = 8
NAME_MAX_LENGTH = 64
TOKEN_PREFIX = "cm_"  # noqa: S105 - a prefix, not a token

_TABLES = (
    """CREATE TABLE IF NOT EXISTS users (
        name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, role TEXT NOT NULL,
        locale TEXT NOT NULL, created_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS api_tokens (
        hash TEXT PRIMARY KEY, user TEXT NOT NULL, created_at TEXT NOT NULL, last_used TEXT)""",
    """CREATE TABLE IF NOT EXISTS audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, user TEXT,
        action TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '', ip TEXT)""",
    "CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at)",
)
# a real hash to check against when the user does not exist, so that both cases take as long
_DUMMY_HASH = generate_password_hash("civicmap-no-such-user", method="pbkdf2:sha256:1000")


class AccountError(CivicmapError):
    """A user name, role, password, locale or token that cannot be used."""


@dataclass(frozen=True)
class User:
    """A signed-up person; ``role`` is one of :data:`ROLES`, ``locale`` one of :data:`LOCALES`."""

    name: str
    role: str
    locale: str
    created_at: str

    def has_role(self, role: str) -> bool:
        """True when this user has at least the rights of ``role``."""
        return role_rank(self.role) >= role_rank(role)


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit log."""

    id: int
    at: str
    user: str | None
    action: str
    detail: str
    ip: str | None


def role_rank(role: str) -> int:
    """Position of ``role`` in :data:`ROLES` (0 = viewer); :class:`AccountError` when unknown."""
    try:
        return ROLES.index(role)
    except ValueError:
        raise AccountError(f"role = {role!r}: expected one of {', '.join(ROLES)}") from None


def normalize_locale(value: str) -> str:
    """``zh-CN``, ``zh``, ``zh_cn`` → ``zh_CN``; ``en-US``, ``en`` → ``en``.

    Raises
    ------
    AccountError
        For any other language.
    """
    text = str(value).strip().replace("-", "_").lower()
    if text in {"zh", "zh_cn", "zh_hans", "zh_hans_cn"}:
        return "zh_CN"
    if text == "en" or text.startswith("en_"):
        return "en"
    raise AccountError(f"locale = {value!r}: expected one of {', '.join(LOCALES)}")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@contextmanager
def _db(workspace: Workspace) -> Iterator[sqlite3.Connection]:
    with workspace.sqlite() as con:
        for statement in _TABLES:
            con.execute(statement)
        yield con


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name or name != name.strip():
        raise AccountError(f"user name = {name!r}: expected a non-empty name without surrounding spaces")
    if len(name) > NAME_MAX_LENGTH or not name.isprintable():
        raise AccountError(f"user name = {name!r}: expected at most {NAME_MAX_LENGTH} printable characters")
    return name


def _check_password(password: str, min_length: int) -> None:
    if not isinstance(password, str) or len(password) < min_length:
        raise AccountError(f"password: expected at least {min_length} characters")


def _hash(password: str) -> str:
    return generate_password_hash(password, method=PASSWORD_METHOD)


def _user_row(row: tuple) -> User:
    return User(name=row[0], role=row[1], locale=row[2], created_at=row[3])


# ------------------------------------------------------------------ users
def add_user(
    workspace: Workspace,
    name: str,
    role: str,
    password: str,
    *,
    locale: str = DEFAULT_LOCALE,
    min_length: int = PASSWORD_MIN_LENGTH,
) -> User:
    """Create a user.

    Parameters
    ----------
    workspace
        The workspace whose database holds the users.
    name
        1–64 printable characters, no surrounding spaces; unique.
    role
        One of :data:`ROLES`.
    password
        At least ``min_length`` characters; stored hashed.
    locale
        ``zh_CN`` (default) or ``en``.

    Returns
    -------
    User

    Raises
    ------
    AccountError
        Bad name, role, password or locale, or the name is taken.
    """
    _check_name(name)
    role_rank(role)
    locale = normalize_locale(locale)
    _check_password(password, min_length)
    user = User(name=name, role=role, locale=locale, created_at=_now())
    with _db(workspace) as con:
        try:
            con.execute(
                "INSERT INTO users (name, password_hash, role, locale, created_at) VALUES (?, ?, ?, ?, ?)",
                (name, _hash(password), role, locale, user.created_at),
            )
        except sqlite3.IntegrityError:
            raise AccountError(f"user name = {name!r}: a user of that name exists") from None
    log.info("user %r added with role %s", name, role)
    return user


def get_user(workspace: Workspace, name: str) -> User | None:
    """The user called ``name``, or ``None``."""
    with _db(workspace) as con:
        row = con.execute(
            "SELECT name, role, locale, created_at FROM users WHERE name = ?", (name,)
        ).fetchone()
    return _user_row(row) if row else None


def list_users(workspace: Workspace) -> list[User]:
    """Every user, by name."""
    with _db(workspace) as con:
        rows = con.execute("SELECT name, role, locale, created_at FROM users ORDER BY name").fetchall()
    return [_user_row(r) for r in rows]


def _update(workspace: Workspace, name: str, column: str, value: str) -> None:
    # column comes from this module only (never from input)
    with _db(workspace) as con:
        changed = con.execute(f"UPDATE users SET {column} = ? WHERE name = ?", (value, name)).rowcount
    if not changed:
        raise AccountError(f"user name = {name!r}: no such user")


def set_password(
    workspace: Workspace, name: str, password: str, *, min_length: int = PASSWORD_MIN_LENGTH
) -> None:
    """Give ``name`` a new password."""
    _check_password(password, min_length)
    _update(workspace, name, "password_hash", _hash(password))


def set_role(workspace: Workspace, name: str, role: str) -> None:
    """Give ``name`` another role (one of :data:`ROLES`)."""
    role_rank(role)
    _update(workspace, name, "role", role)


def set_locale(workspace: Workspace, name: str, locale: str) -> None:
    """Set the language ``name`` sees (``zh_CN`` or ``en``)."""
    _update(workspace, name, "locale", normalize_locale(locale))


def delete_user(workspace: Workspace, name: str) -> None:
    """Remove ``name`` and every API token of theirs."""
    with _db(workspace) as con:
        changed = con.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount
        con.execute("DELETE FROM api_tokens WHERE user = ?", (name,))
    if not changed:
        raise AccountError(f"user name = {name!r}: no such user")


def authenticate(workspace: Workspace, name: str, password: str) -> User | None:
    """The user when ``password`` is theirs, else ``None`` (unknown users take as long)."""
    with _db(workspace) as con:
        row = con.execute(
            "SELECT name, role, locale, created_at, password_hash FROM users WHERE name = ?", (name,)
        ).fetchone()
    if row is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(row[4], password):
        return None
    return _user_row(row[:4])


# ------------------------------------------------------------------ API tokens
def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(workspace: Workspace, name: str) -> str:
    """A new API token for ``name``; only its digest is stored, so show it to the user now.

    Returns
    -------
    str
        ``cm_`` followed by 43 URL-safe characters (256 random bits).
    """
    if get_user(workspace, name) is None:
        raise AccountError(f"user name = {name!r}: no such user")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with _db(workspace) as con:
        con.execute(
            "INSERT INTO api_tokens (hash, user, created_at) VALUES (?, ?, ?)", (_digest(token), name, _now())
        )
    log.info("API token created for %r", name)
    return token


def verify_token(workspace: Workspace, token: str) -> User | None:
    """The user owning ``token`` (and note its use), or ``None``."""
    if not token or not token.startswith(TOKEN_PREFIX):
        return None
    digest = _digest(token)
    with _db(workspace) as con:
        row = con.execute(
            "SELECT u.name, u.role, u.locale, u.created_at FROM api_tokens t "
            "JOIN users u ON u.name = t.user WHERE t.hash = ?",
            (digest,),
        ).fetchone()
        if row is None:
            return None
        con.execute("UPDATE api_tokens SET last_used = ? WHERE hash = ?", (_now(), digest))
    return _user_row(row)


def revoke_tokens(workspace: Workspace, name: str) -> int:
    """Delete every token of ``name``; returns how many there were."""
    with _db(workspace) as con:
        return con.execute("DELETE FROM api_tokens WHERE user = ?", (name,)).rowcount


# ------------------------------------------------------------------ audit log
def record_audit(
    workspace: Workspace, action: str, detail: str = "", *, user: str | None = None, ip: str | None = None
) -> None:
    """Append one line to the audit log (the CLI calls this; pages call :func:`audit`).

    Parameters
    ----------
    action
        A short dotted verb, e.g. ``login.success``, ``login.failure``, ``import``, ``restore``,
        ``settings.change``, ``user.add``.
    detail
        Free text (what was imported, which setting …).
    user, ip
        Who did it and from where, when known.
    """
    with _db(workspace) as con:
        con.execute(
            "INSERT INTO audit_log (at, user, action, detail, ip) VALUES (?, ?, ?, ?, ?)",
            (_now(), user, action, detail, ip),
        )


def list_audit(
    workspace: Workspace,
    *,
    limit: int = 200,
    offset: int = 0,
    user: str | None = None,
    action: str | None = None,
) -> list[AuditEntry]:
    """Audit lines, newest first, optionally for one user and/or one action prefix."""
    where, params = [], []
    if user:
        where.append("user = ?")
        params.append(user)
    if action:
        where.append("action LIKE ? ESCAPE '\\'")
        params.append(action.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
    sql = "SELECT id, at, user, action, detail, ip FROM audit_log"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY id DESC LIMIT ? OFFSET ?"
    with _db(workspace) as con:
        rows = con.execute(sql, (*params, int(limit), int(offset))).fetchall()
    return [AuditEntry(*r) for r in rows]


def current_workspace() -> Workspace:
    """The workspace of the running app (opened once per request; created when missing)."""
    from flask import current_app, g

    from layers.store import Workspace

    ws = g.get("_civicmap_workspace")
    if ws is None:
        ws = Workspace.open(current_app.config["WORKSPACE"], create=True)
        g._civicmap_workspace = ws
    return ws


def audit(action: str, detail: str = "") -> None:
    """Write ``action`` to the audit log with the signed-in user and client address of this request.

    Parameters
    ----------
    action
        See :func:`record_audit`.
    detail
        Free text.
    """
    from flask import g, request

    user = g.get("user")
    name = user.name if user is not None else g.get("audit_user")
    record_audit(current_workspace(), action, detail, user=name, ip=request.remote_addr)
