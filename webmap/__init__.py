"""The web service: Flask application factory, blueprints per area, Folium maps.

``create_app(config)`` layers configuration: built-in defaults → an instance file named by
``CIVICMAP_SETTINGS`` → ``CIVICMAP_*`` environment variables → the ``config`` mapping
(tests pass overrides here); see :mod:`webmap.config` for every key.  ``app.py`` is only the
entry point.

Blueprints: ``auth`` (sign in, account), ``home`` (dashboard), ``admin`` (users, audit log),
``api`` (``/api/v1``), ``assets`` (``/vendor``, offline JS/CSS), ``enforcement``, ``leads``,
``quota``, ``coverage``.  A blueprint shows itself in
the navigation with :func:`webmap.nav.nav_entry`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from webmap.config import DEFAULTS, load_config

__all__ = ["DEFAULTS", "create_app"]


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the civicmap Flask app.

    Parameters
    ----------
    config
        Overrides applied last (e.g. ``{"WORKSPACE": tmp_path, "TESTING": True}``).

    Returns
    -------
    Flask
        The app, every blueprint registered and the security layer installed.
    """
    from webmap.assets import init_assets
    from webmap.errors import init_errors
    from webmap.i18n import init_i18n
    from webmap.nav import NAV_LABELS, NAV_ORDER, init_nav, register_nav
    from webmap.security import init_security, public
    from webmap.views import admin, api, auth, coverage, data, enforcement, home, leads, maps, precheck, quota

    app = Flask(__name__)
    load_config(app, config)
    init_nav(app)
    init_i18n(app)
    init_assets(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(home.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(data.bp)
    maps.register(app)  # the violation map and the layers map
    app.register_blueprint(precheck.bp)
    app.register_blueprint(enforcement.bp)  # targets, cases, inspection routes
    app.register_blueprint(leads.bp)  # unlicensed-café leads
    app.register_blueprint(quota.bp)  # density, permissible zones, quotas, policy tester
    app.register_blueprint(coverage.bp)  # cultural coverage and siting
    register_nav(app, "home.index", NAV_LABELS["dashboard"], order=NAV_ORDER["dashboard"])

    @app.get("/healthz")
    @public
    def health():
        return {"status": "ok"}

    init_errors(app)
    init_security(app)
    return app
