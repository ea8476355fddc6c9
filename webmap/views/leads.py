"""Pages of this product area (the blueprint is registered; its pages land with the area)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("leads", __name__, url_prefix="/leads")
