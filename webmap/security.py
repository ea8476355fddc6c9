"""Sign-in, roles, CSRF, rate limits and security headers for every request.

- Every page and API call needs a signed-in user, except views marked :func:`public`
  (``/healthz``, the login page) and the ``static`` / ``assets`` files.
- Pages use the session cookie (HttpOnly, SameSite=Lax, Secure over HTTPS); ``/api/`` calls use
  ``Authorization: Bearer <token>`` (no CSRF needed) or, from the app's own pages, the session
  cookie (then CSRF applies to unsafe methods: send the token in ``X-CSRFToken``).
- CSRF (Flask-WTF) is checked here for every unsafe request, so new blueprints are covered.
- Content-Security-Policy: scripts only from 'self' or carrying this request's nonce
  (:func:`csp_nonce`; Folium's inline scripts get it in :func:`webmap.assets.map_parts`), no
  'unsafe-inline' for scripts anywhere; styles allow 'unsafe-inline' because Leaflet and
  Folium popups set ``style`` attributes; images from 'self', ``data:`` and ``TILE_HOSTS``.
"""

from __future__ import annotations

import functools
import logging
import re
import secrets
from collections.abc import Callable, Iterable
from typing import TypeVar
from urllib.parse import urlsplit

from flask import Flask, abort, current_app, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from webmap import accounts
from webmap.accounts import User

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
API_PREFIX = "/api/"


class _SessionInterface(SecureCookieSessionInterface):
    """Session cookies get the Secure flag when configured or when the request came over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"] or request.is_secure)


def public(view: F) -> F:
    """Mark a view as reachable without signing in."""
    view._civicmap_public = True  # type: ignore[attr-defined]
    return view


def current_user() -> User | None:
    """The signed-in user of this request, or ``None``."""
    return g.get("user")


def csp_nonce() -> str:
    """This request's Content-Security-Policy nonce (for ``<script nonce=…>``)."""
    nonce = g.get("csp_nonce")
    if nonce is None:
        nonce = g.csp_nonce = secrets.token_urlsafe(18)
    return nonce


def is_api_request() -> bool:
    """True for requests under ``/api/`` (JSON errors, token auth)."""
    return request.path.startswith(API_PREFIX)


def require_role(role: str) -> Callable[[F], F]:
    """Decorator: the view needs a signed-in user with at least ``role`` (403 otherwise).

    Parameters
    ----------
    role
        One of :data:`webmap.accounts.ROLES` — ``viewer``, ``analyst``, ``inspector``, ``admin``.
    """
    accounts.role_rank(role)  # unknown roles fail at import time

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            user = current_user()
            if user is None:
                abort(401)
            if not user.has_role(role):
                abort(403)
            return view(*args, **kwargs)

        wrapped._civicmap_role = role  # type: ignore[attr-defined]
        return wrapped  # type: ignore[return-value]

    return decorator


def login_user(user: User) -> None:
    """Start a fresh session for ``user`` (the old session's content is dropped)."""
    session.clear()
    session.permanent = True
    session["user"] = user.name
    g.user = user


def logout_user() -> None:
    """End the session."""
    session.clear()
    g.user = None


def _is_public(endpoint: str) -> bool:
    if endpoint == "static":
        return True
    blueprint = endpoint.rpartition(".")[0]
    if blueprint and getattr(current_app.blueprints.get(blueprint), "public", False):
        return True
    view = current_app.view_functions.get(endpoint)
    return bool(getattr(view, "_civicmap_public", False))


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


def _session_user() -> User | None:
    name = session.get("user")
    if not name:
        return None
    user = accounts.get_user(accounts.current_workspace(), name)
    if user is None:  # deleted meanwhile
        session.clear()
    return user


def _gate():
    """before_request: who is asking, may they, and is the form genuine."""
    csp_nonce()
    endpoint = request.endpoint
    if endpoint == "static" or (endpoint or "").startswith("assets."):
        return None
    token = _bearer_token() if is_api_request() else None
    if token is not None:
        g.user = accounts.verify_token(accounts.current_workspace(), token)
        if g.user is None:
            abort(401, description="invalid or revoked API token")
    else:
        g.user = _session_user()
    if g.user is None and endpoint is not None and not _is_public(endpoint):
        if is_api_request():
            abort(401, description="sign in or send Authorization: Bearer <token>")
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    if token is None and request.method not in SAFE_METHODS and current_app.config["WTF_CSRF_ENABLED"]:
        current_app.extensions["csrf"].protect()
    return None


def csp_sources(hosts: Iterable[str]) -> list[str]:
    """CSP sources for tile hosts given as origins or tile URL templates.

    ``https://t{s}.tianditu.gov.cn/vec_w/wmts?tk={key}`` → ``https://*.tianditu.gov.cn``.
    """
    out: list[str] = []
    for raw in hosts:
        parts = urlsplit(raw.strip())
        if not parts.scheme or not parts.netloc:
            continue
        labels = ["*" if "{" in label or "*" in label else label for label in parts.netloc.split(".")]
        while len(labels) > 1 and labels[1] == "*":  # a wildcard may only lead
            labels.pop(0)
        source = f"{parts.scheme}://{'.'.join(labels)}"
        if source not in out:
            out.append(source)
    return out


def content_security_policy(nonce: str, tile_hosts: Iterable[str]) -> str:
    """The Content-Security-Policy header value for one response."""
    images = " ".join(["'self'", "data:", *csp_sources(tile_hosts)])
    directives = {
        "default-src": "'self'",
        "script-src": f"'self' 'nonce-{nonce}'",
        "style-src": "'self' 'unsafe-inline'",
        "img-src": images,
        "font-src": "'self' data:",
        "connect-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'self'",
    }
    return "; ".join(f"{k} {v}" for k, v in directives.items())


def _headers(response):
    from webmap.basemaps import active_basemap

    headers = response.headers
    # images may also come from the tile hosts of the base map this request shows (``?basemap=``)
    basemap = active_basemap(current_app.config, request.args.get("basemap"))
    tile_hosts = [*current_app.config["TILE_HOSTS"], *basemap.tile_hosts]
    headers.setdefault("Content-Security-Policy", content_security_policy(csp_nonce(), tile_hosts))
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "SAMEORIGIN")
    # cross-origin requests (map tiles) carry only the origin: Tianditu browser keys check it
    headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), payment=(), usb=()")
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if request.endpoint != "static" and not (request.endpoint or "").startswith("assets."):
        headers.setdefault("Cache-Control", "no-store")
    return response


def _limit_login(app: Flask, limiter: Limiter) -> None:
    endpoint = "auth.login"
    view = app.view_functions.get(endpoint)
    if view is None:
        return

    def on_breach(limit) -> None:
        # one audit line per client and window, however often it keeps trying
        seen = app.extensions.setdefault("civicmap_lockouts", {})
        ip = request.remote_addr
        if seen.get(ip) != limit.reset_at:
            seen[ip] = limit.reset_at
            accounts.audit("login.locked", f"too many sign-in attempts from {ip}")
        log.warning("sign-in attempts from %s over the limit", ip)

    limited = limiter.limit(
        lambda: app.config["LOGIN_RATE_LIMIT"],
        methods=["POST"],
        key_func=get_remote_address,
        on_breach=on_breach,
    )(view)
    app.view_functions[endpoint] = limited


def init_security(app: Flask) -> None:
    """Install sessions, CSRF, the sign-in gate, the login rate limit and security headers.

    Call after every blueprint is registered (the login limit wraps ``auth.login``).
    """
    if int(app.config.get("TRUSTED_PROXIES") or 0) > 0:
        n = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
    app.session_interface = _SessionInterface()
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False  # checked in _gate for every unsafe request
    CSRFProtect(app)
    limiter = Limiter(get_remote_address, app=app, default_limits=[], headers_enabled=True)
    app.extensions["civicmap_limiter"] = limiter
    _limit_login(app, limiter)
    app.before_request(_gate)
    app.after_request(_headers)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.jinja_env.globals["current_user"] = current_user


_SAFE_NEXT = re.compile(r"^/(?![/\\])")


def safe_next(target: str | None, default: str) -> str:
    """``target`` when it is a path on this site (no open redirects), else ``default``."""
    if target and _SAFE_NEXT.match(target) and "\n" not in target and "\r" not in target:
        return target
    return default
