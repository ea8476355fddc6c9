"""Dashboard: what the workspace holds and what breaks the rules; every number links to its list.

``/`` shows, for one rule profile (``?profile=``, default the deployment's), the rows of every
layer with the licence status of venues, the findings by rule and by sub-district, the field
recheck cases and the unlicensed venues.  ``/list`` shows the rows behind any of those numbers:

``/list?layer=net_cafes&status=unlicensed``            rows of a layer (``status`` for venue kinds;
                                                        without ``layer``: every venue kind)
``/list?profile=national&rule=…&subdistrict=…``         findings: ``scope`` = ``violation`` (default),
                                                        ``near`` (near misses) or ``all``;
                                                        ``recheck=1``; ``venues=1`` one row per venue

The dashboard counts with the very functions the list filters with, so a number and its list
always agree.  The labels here (rules, statuses, methods, levels) are shared by other pages.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
from flask import Blueprint, abort, render_template, request, url_for
from flask_babel import gettext as _

from layers.schema import CATEGORY, SCHEMAS, VENUE_KINDS
from webmap.accounts import current_workspace
from webmap.analysis import default_profile_name, get_engine, get_profile, get_violations, profile_names
from webmap.i18n import format_distance, is_chinese
from webmap.labels import (
    kind_label,
    level_label,
    method_label,
    profile_title,
    rule_basis,
    rule_label,
    status_label,
)

bp = Blueprint("home", __name__)

VENUE_STATUSES = ("licensed", "suspended", "revoked", "unlicensed")
#: the ``subdistrict`` value of a list link for findings outside every sub-district
NO_SUBDISTRICT = "-"
#: the ``layer`` value of a list link for the venues of every kind
ALL_VENUES = "venues"
SCOPES = ("violation", "near", "all")
PAGE_SIZE = 2000


# ------------------------------------------------------------------ selections
def venue_status(frame: pd.DataFrame) -> pd.Series:
    """The ``status`` column as plain text (``""`` when missing or absent)."""
    if "status" not in frame.columns:
        return pd.Series("", index=frame.index, dtype=object)
    return frame["status"].astype(object).where(frame["status"].notna(), "")


def select_rows(layers: dict[str, gpd.GeoDataFrame], kind: str | None, status: str | None) -> pd.DataFrame:
    """Rows of one layer (or of every venue kind when ``kind`` is None), optionally of one status."""
    kinds = [kind] if kind and kind != ALL_VENUES else list(VENUE_KINDS)
    parts = []
    for k in kinds:
        frame = layers.get(k)
        if frame is None or frame.empty:
            continue
        if status is not None:
            frame = frame[venue_status(frame) == status]
        parts.append(pd.DataFrame(frame).assign(_kind=k))
    if not parts:
        return pd.DataFrame({"_kind": pd.Series(dtype=object)})
    return pd.concat(parts, ignore_index=True)


def finding_mask(
    found: pd.DataFrame | dict[str, np.ndarray],
    *,
    scope: str = "violation",
    rule: str | None = None,
    subdistrict: str | None = None,
    recheck: bool = False,
) -> np.ndarray:
    """Which findings (rows of :func:`webmap.analysis.get_violations`) match the list filters.

    Parameters
    ----------
    scope
        ``violation`` (breaches of a rule), ``near`` (near misses just above the limit) or ``all``.
    rule
        A rule id of the profile.
    subdistrict
        A sub-district name, or :data:`NO_SUBDISTRICT` for findings outside every one.
    recheck
        Only results within the profile's field recheck band of the limit.
    """
    cols = found if isinstance(found, dict) else finding_columns(found)
    keep = np.ones(len(cols["rule"]), dtype=bool)
    if scope == "violation":
        keep &= cols["violation"]
    elif scope == "near":
        keep &= ~cols["violation"]
    if rule:
        keep &= cols["rule"] == rule
    if subdistrict is not None:
        keep &= cols["subdistrict"] == ("" if subdistrict == NO_SUBDISTRICT else subdistrict)
    if recheck:
        keep &= cols["recheck"]
    return keep


def finding_columns(found: pd.DataFrame) -> dict[str, np.ndarray]:
    """The columns :func:`finding_mask` filters on, as arrays (to count many times over)."""
    subdistrict = found["subdistrict"].to_numpy(dtype=object)
    return {
        "violation": found["violation"].to_numpy(dtype=bool),
        "recheck": found["recheck"].to_numpy(dtype=bool),
        "rule": found["rule"].to_numpy(dtype=object),
        "subdistrict": np.where(pd.isna(subdistrict), "", subdistrict),
    }


def select_findings(found: pd.DataFrame, **filters) -> pd.DataFrame:
    """The findings :func:`finding_mask` keeps."""
    return found[finding_mask(found, **filters)]


def by_venue(findings: pd.DataFrame) -> pd.DataFrame:
    """One row per venue: its rules, the smallest distance and the largest shortfall."""
    if findings.empty:
        return pd.DataFrame(columns=["venue_kind", "venue_id", "venue_name", "venue_status", "licence_no",
                                     "subdistrict", "rules", "findings", "distance_m", "shortfall_m"])  # fmt: skip
    grouped = findings.groupby(["venue_kind", "venue_id"], sort=False)
    out = grouped.agg(
        venue_name=("venue_name", "first"),
        venue_status=("venue_status", "first"),
        licence_no=("licence_no", "first"),
        subdistrict=("subdistrict", "first"),
        rules=("rule", lambda s: list(dict.fromkeys(s))),
        findings=("rule", "size"),
        distance_m=("distance_m", "min"),
        shortfall_m=("shortfall_m", "max"),
    )
    return out.reset_index().sort_values(["venue_kind", "venue_id"], kind="stable")


# ------------------------------------------------------------------ dashboard
def _chosen_profile() -> str:
    name = request.args.get("profile") or default_profile_name()
    if name not in profile_names():
        abort(404)
    return name


def _count(found: dict[str, np.ndarray], **filters) -> int:
    return int(finding_mask(found, **filters).sum())


def _layer_rows(layers: dict[str, gpd.GeoDataFrame]) -> list[dict]:
    ws = current_workspace()
    counts, versions = ws.counts(), ws.current_versions()
    rows = []
    for kind in SCHEMAS:
        row = {
            "kind": kind,
            "label": kind_label(kind),
            "count": counts.get(kind, 0),
            "version": versions.get(kind),
        }
        row["url"] = url_for(".rows", layer=kind)
        if kind in VENUE_KINDS:
            frame = layers.get(kind, pd.DataFrame())
            tally = venue_status(frame).value_counts()
            row["statuses"] = {
                s: {"count": int(tally.get(s, 0)), "url": url_for(".rows", layer=kind, status=s)}
                for s in VENUE_STATUSES
            }
        rows.append(row)
    return rows


def _subdistrict_names(layers: dict[str, gpd.GeoDataFrame], found: dict[str, np.ndarray]) -> list[str]:
    subs = layers.get("subdistricts")
    names = list(subs["name"].astype(str)) if subs is not None and len(subs) else []
    extra = sorted({str(v) for v in found["subdistrict"] if str(v) not in names})
    return names + extra


def summarize(profile_name: str) -> dict:
    """Every figure of the dashboard for one profile, each with the URL of its list."""
    engine = get_engine(profile_name)
    frame = get_violations(profile_name)
    layers = engine.layers
    violations = select_findings(frame)
    found = finding_columns(frame)

    def link(**filters) -> str:
        return url_for(".rows", profile=profile_name, **filters)

    rules = [
        {"id": r.id, "label": rule_label(r), "basis": rule_basis(r), "method": method_label(r.method)
         if r.type == "distance" else "", "count": _count(found, rule=r.id), "url": link(rule=r.id)}
        for r in engine.profile.rules
    ]  # fmt: skip
    subdistricts = []
    for name in _subdistrict_names(layers, found):
        key = name or NO_SUBDISTRICT
        subdistricts.append({
            "name": name or _("outside every sub-district"),
            "count": _count(found, subdistrict=key),
            "url": link(subdistrict=key),
            "rules": [{"label": r["label"], "count": _count(found, rule=r["id"], subdistrict=key),
                       "url": link(rule=r["id"], subdistrict=key)} for r in rules],
        })  # fmt: skip
    top = max([s["count"] for s in subdistricts], default=0)
    for s in subdistricts:
        s["width_pct"] = 0 if top == 0 else max(2, math.ceil(100 * s["count"] / top)) if s["count"] else 0
    venues_total = sum(len(layers.get(k, ())) for k in VENUE_KINDS)
    return {
        "profile": engine.profile,
        "venues": {"count": len(by_venue(violations)), "url": link(venues=1)},
        "findings": {"count": len(violations), "url": link()},
        "recheck": {"count": _count(found, scope="all", recheck=True),
                    "url": link(scope="all", recheck=1)},
        "recheck_violation": {"count": _count(found, recheck=True), "url": link(recheck=1)},
        "near": {"count": _count(found, scope="near"), "url": link(scope="near")},
        "unlicensed": {"count": len(select_rows(layers, None, "unlicensed")),
                       "url": url_for(".rows", status="unlicensed")},
        "venues_total": {"count": venues_total, "url": url_for(".rows", layer=ALL_VENUES)},
        "rules": rules,
        "subdistricts": subdistricts,
        "layers": _layer_rows(layers),
    }  # fmt: skip


@bp.get("/")
def index():
    name = _chosen_profile()
    summary = summarize(name)
    ws = current_workspace()
    from webmap.views.enforcement import dashboard_figures

    return render_template(
        "home.html",
        s=summary,
        enforcement=dashboard_figures(),
        profile_name=name,
        profiles=[(p, profile_title(get_profile(p))) for p in profile_names()],
        history=ws.history()[:8],
        workspace=ws.path,
    )


# ------------------------------------------------------------------ lists
def cell(field, value: object) -> str:
    """One value of a layer row as text: statuses, levels and choices in words, booleans as 是/否."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    if field.name == "status":
        return status_label(value)
    if field.name == "level":
        return level_label(value)
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if field.type == CATEGORY and is_chinese() and field.choices.get(str(value)):
        return field.choices[str(value)][0]
    return str(value)


def location(geom) -> str:
    """``lon, lat`` of a point (5 decimals, about 1 m); the geometry type otherwise."""
    if geom is None or geom.is_empty:
        return ""
    if geom.geom_type == "Point":
        return f"{geom.x:.5f}, {geom.y:.5f}"
    return geom.geom_type


def metres(value: object) -> str:
    """A distance for a table cell; ``—`` when missing or not a number (inside a building)."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "—"
    return "—" if math.isnan(number) else format_distance(number)


@bp.context_processor
def _helpers() -> dict:
    return {"status_label": status_label, "method_label": method_label, "level_label": level_label,
            "kind_label": kind_label, "cell": cell, "location": location, "metres": metres}  # fmt: skip


def _page() -> int:
    try:
        return max(1, int(request.args.get("page", "1")))
    except ValueError:
        abort(404)


def _layer_list():
    layer = request.args.get("layer") or ALL_VENUES
    status = request.args.get("status") or None
    if layer != ALL_VENUES and layer not in SCHEMAS:
        abort(404)
    if status is not None and layer not in (*VENUE_KINDS, ALL_VENUES):
        abort(404)
    rows = select_rows(get_engine().layers, layer, status)
    if layer == ALL_VENUES:
        fields = [
            f
            for f in SCHEMAS[VENUE_KINDS[0]].fields
            if all(f.name in SCHEMAS[k].field_names for k in VENUE_KINDS)
        ]
    else:
        fields = list(SCHEMAS[layer].fields)
    title = _("Venues of every kind") if layer == ALL_VENUES else kind_label(layer)
    if status:
        title = f"{title} · {status_label(status)}"
    return rows, {"mode": "layer", "title": title, "fields": fields, "many": layer == ALL_VENUES}


def _finding_list():
    name = _chosen_profile()
    scope = request.args.get("scope", "violation")
    if scope not in SCOPES:
        abort(404)
    profile = get_engine(name).profile
    rule = request.args.get("rule") or None
    if rule is not None and rule not in profile.rule_ids:
        abort(404)
    subdistrict = request.args.get("subdistrict") or None
    recheck = request.args.get("recheck") == "1"
    rows = select_findings(
        get_violations(name), scope=scope, rule=rule, subdistrict=subdistrict, recheck=recheck
    )
    venues = request.args.get("venues") == "1"
    if venues:
        rows = by_venue(rows)
    parts = [profile_title(profile)]
    parts.append(
        {"violation": _("Rule violations"), "near": _("Near misses"), "all": _("All findings")}[scope]
    )
    if rule:
        parts.append(rule_label(profile.rule(rule)))
    if subdistrict:
        parts.append(subdistrict if subdistrict != NO_SUBDISTRICT else _("outside every sub-district"))
    if recheck:
        parts.append(_("field recheck"))
    if venues:
        parts.append(_("one row per venue"))
    labels = {r.id: rule_label(r) for r in profile.rules}
    return rows, {"mode": "venues" if venues else "findings", "title": " · ".join(parts), "rule_labels": labels,
                  "profile_name": name}  # fmt: skip


@bp.get("/list")
def rows():
    """The rows behind one number of the dashboard."""
    if request.args.get("profile") or not (request.args.get("layer") or request.args.get("status")):
        frame, view = _finding_list()
    else:
        frame, view = _layer_list()
    page = _page()
    total = len(frame)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    if page > pages:
        abort(404)
    shown = frame.iloc[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    return render_template(
        "home_list.html",
        view=view,
        rows=shown.to_dict(orient="records"),
        total=total,
        page=page,
        pages=pages,
        args={k: v for k, v in request.args.items() if k != "page"},
    )
