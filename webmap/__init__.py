"""The web service: Flask application factory, blueprints per area, Folium maps.

``create_app(config)`` layers configuration: built-in defaults → an instance file named by
``CIVICMAP_SETTINGS`` → ``CIVICMAP_*`` environment variables → the ``config`` mapping
(tests pass overrides here).  ``app.py`` is only the entry point.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Flask, jsonify

from layers.errors import CivicmapError

DEFAULTS: dict[str, Any] = {
    "WORKSPACE": "workspace",
    "MAX_CONTENT_LENGTH": 50 * 1024 * 1024,
}


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the civicmap Flask app.

    Parameters
    ----------
    config
        Overrides applied last (e.g. ``{"WORKSPACE": tmp_path, "TESTING": True}``).
    """
    app = Flask(__name__)
    app.config.from_mapping(DEFAULTS)
    if os.environ.get("CIVICMAP_SETTINGS"):
        app.config.from_envvar("CIVICMAP_SETTINGS")
    app.config.from_prefixed_env("CIVICMAP")
    if config:
        app.config.from_mapping(config)

    from webmap.views import home

    app.register_blueprint(home.bp)

    @app.errorhandler(CivicmapError)
    def user_error(err: CivicmapError):
        return jsonify({"error": str(err)}), 400

    @app.get("/healthz")
    def health():
        return {"status": "ok"}

    return app
