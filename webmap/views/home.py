"""Home page: what the workspace holds."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

from layers.schema import SCHEMAS
from layers.store import Workspace

bp = Blueprint("home", __name__)


def workspace() -> Workspace:
    return Workspace.open(current_app.config["WORKSPACE"], create=True)


@bp.get("/")
def index():
    ws = workspace()
    counts = ws.counts()
    versions = ws.current_versions()
    rows = [
        {
            "kind": kind,
            "label_zh": schema.label_zh,
            "label_en": schema.label_en,
            "count": counts.get(kind, 0),
            "version": versions.get(kind),
        }
        for kind, schema in SCHEMAS.items()
    ]
    return render_template("home.html", rows=rows, history=ws.history()[-10:][::-1], workspace=ws.path)
