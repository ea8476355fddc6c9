"""Configuration of the web app, layered: defaults → instance file → environment → overrides.

1. :data:`DEFAULTS` below;
2. the file named by the ``CIVICMAP_SETTINGS`` environment variable: TOML (``*.toml``) or a
   Python file of ``UPPER_CASE = value`` lines; only upper-case keys are read;
3. ``CIVICMAP_*`` environment variables (``CIVICMAP_WORKSPACE=/srv/ws``); values are parsed as
   JSON when they can be (``true``, ``3``, ``["a", "b"]``), otherwise kept as strings;
4. the ``config`` mapping given to :func:`webmap.create_app` (tests).

``SECRET_KEY``, when no layer sets it, is generated once and kept in the workspace folder
(file ``.secret_key``, mode 0600) so that sessions survive restarts.
"""

from __future__ import annotations

import logging
import os
import secrets
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask

log = logging.getLogger(__name__)

#: every key the web app reads, with its default
DEFAULTS: dict[str, Any] = {
    # where the layers, users and audit log live (a folder; see layers.store.Workspace)
    "WORKSPACE": "workspace",
    # request bodies above this are refused with 413 before anything parses them
    "MAX_CONTENT_LENGTH": 50 * 1024 * 1024,
    # sessions: HttpOnly, SameSite=Lax; Secure is forced when a request arrives over HTTPS
    "SESSION_COOKIE_NAME": "civicmap_session",
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_SECURE": False,
    "PERMANENT_SESSION_LIFETIME": timedelta(hours=10),
    # CSRF tokens on every form (Flask-WTF); tokens live as long as the session
    "WTF_CSRF_ENABLED": True,
    "WTF_CSRF_TIME_LIMIT": None,
    # sign-in attempts per client address (Flask-Limiter notation)
    "LOGIN_RATE_LIMIT": "10 per minute",
    "RATELIMIT_STORAGE_URI": "memory://",
    "RATELIMIT_ENABLED": True,
    # number of reverse proxies in front of the app whose X-Forwarded-* headers are trusted
    "TRUSTED_PROXIES": 0,
    # origins allowed in the Content-Security-Policy img-src (map tiles), besides 'self'
    "TILE_HOSTS": [
        "https://*.tianditu.gov.cn",
        "https://tile.openstreetmap.org",
        "https://*.is.autonavi.com",
    ],
    # minimum password length for new passwords
    "PASSWORD_MIN_LENGTH": 8,
    # language and time zone
    "BABEL_DEFAULT_LOCALE": "zh_CN",
    "BABEL_DEFAULT_TIMEZONE": "Asia/Shanghai",
    "LANGUAGES": ["zh_CN", "en"],
    # the rule profile pages use unless the user picks another (geo/profiles or WORKSPACE/profiles)
    "PROFILE": "national",
    # uploads on the data page: zip members, total unpacked size, how long staged files are kept
    "DATA_ZIP_MAX_MEMBERS": 200,
    "DATA_ZIP_MAX_UNCOMPRESSED": 500 * 1024 * 1024,
    "DATA_STAGING_TTL_S": 24 * 3600,
}

SECRET_KEY_FILE = ".secret_key"  # noqa: S105 - a file name


def load_config(app: Flask, overrides: Mapping[str, Any] | None = None) -> None:
    """Fill ``app.config`` from the four layers, then derive what is left (``SECRET_KEY``).

    Parameters
    ----------
    app
        The app being built.
    overrides
        Applied last; ``None`` for none.
    """
    app.config.from_mapping(DEFAULTS)
    settings = os.environ.get("CIVICMAP_SETTINGS")
    if settings:
        _load_settings_file(app, Path(settings))
    app.config.from_prefixed_env("CIVICMAP")
    if overrides:
        app.config.from_mapping(overrides)
    app.config["TILE_HOSTS"] = _as_list(app.config["TILE_HOSTS"])
    app.config["LANGUAGES"] = _as_list(app.config["LANGUAGES"])
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = persistent_secret_key(Path(app.config["WORKSPACE"]))


def _load_settings_file(app: Flask, path: Path) -> None:
    if not path.is_file():
        from layers.errors import WorkspaceError

        raise WorkspaceError(f"CIVICMAP_SETTINGS = {str(path)!r}: no such file")
    if path.suffix.lower() == ".toml":
        app.config.from_file(str(path), load=tomllib.load, text=False)
    else:
        app.config.from_pyfile(str(path))
    log.info("settings read from %s", path)


def _as_list(value: Any) -> list[str]:
    """A list from a list, or from a comma-separated string (environment)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return [str(v) for v in value]


def persistent_secret_key(folder: Path) -> str:
    """The secret key kept in ``folder/.secret_key``; made (mode 0600) on first use.

    Parameters
    ----------
    folder
        The workspace folder; created when missing.

    Returns
    -------
    str
        64 hex characters.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / SECRET_KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text(encoding="ascii").strip()
        if len(key) >= 32:
            return key
        log.warning("%s is too short; writing a new secret key", path)
        path.unlink()
        return persistent_secret_key(folder)
    key = secrets.token_hex(32)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key + "\n")
    log.info("new secret key written to %s", path)
    return key
