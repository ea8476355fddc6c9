"""The JSON API under ``/api/v1`` (more endpoints are added by the map and data pages).

Clients authenticate with ``Authorization: Bearer <token>`` (``civicmap token create USER``);
the app's own pages may call it with their session cookie (send ``X-CSRFToken`` on writes).
Every error is ``{"error": message, "status": code}`` (see :mod:`webmap.errors`).
"""

from __future__ import annotations

from flask import Blueprint, jsonify

from webmap.security import current_user

API_VERSION = "v1"
bp = Blueprint("api", __name__, url_prefix=f"/api/{API_VERSION}")


@bp.get("/me")
def me():
    """Who the token or session belongs to."""
    user = current_user()
    return jsonify({"name": user.name, "role": user.role, "locale": user.locale})
