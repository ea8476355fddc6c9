"""Unlicensed-café leads: observed net cafés reconciled with the licence register.

``/leads/`` shows the three groups of :func:`geo.leads.reconcile` — leads (observed, no
register entry qualifies), not observed (in the register, not seen) and matched — each row
with the evidence side by side: the observed name and the register name, both normalised, the
name similarity and the distance.  The map draws the three groups and, for each lead, a dashed
line to its best register candidate.  ``?max_distance=`` (metres) and ``?min_score=`` tune the
matching, ``?confirmed_distance=`` the same-name rule (default 200 m; empty or 0: off);
``/leads/export.csv`` downloads the same rows (UTF-8 with BOM, for Excel).

Inspectors and admins only: leads name places to raid.
"""

from __future__ import annotations

import csv
import io
import logging
import math

import folium
import geopandas as gpd
import shapely
from flask import Blueprint, Response, current_app, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from geo.leads import LeadOptions, reconcile
from layers.errors import CivicmapError
from webmap.accounts import current_workspace
from webmap.assets import map_parts
from webmap.basemaps import active_basemap, basemap_choices, make_map, to_display
from webmap.i18n import format_distance, format_number, is_chinese
from webmap.labels import status_label
from webmap.maps.features import geojson_layer, plain_text
from webmap.maps.legend import Legend
from webmap.nav import NAV_ORDER, nav_entry
from webmap.security import require_role

log = logging.getLogger(__name__)

bp = Blueprint("leads", __name__, url_prefix="/leads")
nav_entry(bp, ".index", _l("Unlicensed leads"), order=NAV_ORDER["enforcement"] + 1, role="analyst")

GROUPS = ("unlicensed", "not_observed", "matched")
COLOURS = {"unlicensed": "#d62728", "not_observed": "#7f7f7f", "matched": "#2ca02c", "evidence": "#ff7f0e"}
DISTANCE_RANGE_M = (5.0, 1000.0)


def _group_labels() -> dict[str, str]:
    return {
        "unlicensed": _("Observed but unlicensed (leads)"),
        "not_observed": _("Licensed but not observed"),
        "matched": _("Matched"),
    }


def _options() -> LeadOptions:
    """Matching settings from the query string, clamped to sensible ranges."""
    defaults = LeadOptions()
    distance = request.args.get("max_distance", type=float)
    score = request.args.get("min_score", type=float)
    if distance is None or not math.isfinite(distance):
        distance = defaults.max_distance_m
    if score is None or not math.isfinite(score):
        score = defaults.min_score
    low, high = DISTANCE_RANGE_M
    return LeadOptions(
        max_distance_m=min(max(distance, low), high),
        min_score=min(max(score, 0.0), 100.0),
        name_confirmed_distance_m=_same_name_distance(defaults.name_confirmed_distance_m),
    )


def _same_name_distance(default: float | None) -> float | None:
    """``?confirmed_distance=``: absent or not a number → the default; empty or ≤ 0 → off (None)."""
    raw = request.args.get("confirmed_distance")
    if raw is None:
        return default
    if not raw.strip():
        return None
    try:
        value = float(raw)
    except ValueError:
        return default
    if not math.isfinite(value):
        return default
    low, high = DISTANCE_RANGE_M
    return None if value <= 0 else min(max(value, low), high)


def leads_for_workspace(options: LeadOptions) -> tuple[gpd.GeoDataFrame, int]:
    """The reconciliation of the workspace's ``pois`` (net cafés) with ``net_cafes``, and the POI count."""
    ws = current_workspace()
    register, pois = ws.read("net_cafes"), ws.read("pois")
    result = reconcile(  # keeps the net cafés among the POIs (geo.leads.select_observed_cafes)
        register,
        pois,
        max_distance_m=options.max_distance_m,
        min_score=options.min_score,
        options=options,
    )
    return result, len(pois)


def _score(value: object) -> str:
    return (
        "—" if value is None or (isinstance(value, float) and math.isnan(value)) else format_number(value, 0)
    )


def _distance(value: object) -> str:
    return (
        "—" if value is None or (isinstance(value, float) and math.isnan(value)) else format_distance(value)
    )


def _rows(result: gpd.GeoDataFrame) -> dict[str, list[dict]]:
    """Table rows per group: the observed side and the register side of each row, side by side.

    For a lead the register side is its best candidate; for an unobserved entry the observed
    side is the best nearby observation (both marked ``*_is_candidate``).
    """
    groups: dict[str, list[dict]] = {g: [] for g in GROUPS}
    for row, geom in zip(result.to_dict("records"), result.geometry, strict=True):
        status = row["status"]
        text = {k: plain_text(v) for k, v in row.items() if k != "geometry"}
        observed_side = status != "not_observed"
        register_side = status != "unlicensed"
        groups[status].append(
            {
                **text,
                "lat": f"{geom.y:.6f}",
                "lon": f"{geom.x:.6f}",
                "obs_name": text["observed_name"] if observed_side else text["candidate_name"],
                "obs_is_candidate": not observed_side,
                "reg_name": text["register_name"] if register_side else text["candidate_name"],
                "reg_is_candidate": not register_side,
                "register_status_label": status_label(row["register_status"])
                if row["register_status"]
                else "",
                "score_text": _score(row["score"]),
                "distance_text": _distance(row["distance_m"]),
                "distance_value": "" if math.isnan(row["distance_m"]) else f"{row['distance_m']:.3f}",
            }
        )
    return groups


def _evidence_lines(result: gpd.GeoDataFrame, register: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Dashed lines from each lead to its best register candidate."""
    points = dict(zip(register["id"].astype(str), register.geometry.representative_point(), strict=True))
    leads = result[(result["status"] == "unlicensed") & result["candidate_id"].notna()]
    lines = [
        shapely.LineString([g, points[c]]) for g, c in zip(leads.geometry, leads["candidate_id"], strict=True)
    ]
    return gpd.GeoDataFrame(
        {"name": leads["observed_name"].tolist(), "candidate": leads["candidate_name"].tolist()},
        geometry=lines,
        crs="EPSG:4326",
    )


def _build_map(result: gpd.GeoDataFrame, register: gpd.GeoDataFrame, basemap) -> folium.Map:
    bounds = result.total_bounds if len(result) else None
    m = make_map(bounds=bounds, basemap=basemap)
    labels = _group_labels()
    lines = _evidence_lines(result, register)
    if len(lines):
        geojson_layer(
            to_display(lines, basemap),
            name=_("Lead → nearest register entry"),
            columns={"name": lines["name"], "candidate": lines["candidate"]},
            tooltip={"name": _("Observed"), "candidate": _("Best register candidate")},
            style=lambda f: {"color": COLOURS["evidence"], "weight": 2, "dashArray": "5 5"},
        ).add_to(m)
    for group in reversed(GROUPS):
        part = result[result["status"] == group]
        if part.empty:
            continue
        observed = group != "not_observed"
        colour = COLOURS[group]
        geojson_layer(
            to_display(part, basemap),
            name=f"{labels[group]} ({len(part)})",
            columns={
                "name": part["observed_name"] if observed else part["register_name"],
                "other": part["register_name"] if group == "matched" else part["candidate_name"],
                "licence_no": part["licence_no"],
                "score": [_score(v) for v in part["score"]],
                "distance": [_distance(v) for v in part["distance_m"]],
            },
            popup={
                "name": _("Observed name") if observed else _("Register name"),
                "other": _("Register name") if group == "matched" else _("Best candidate"),
                "licence_no": _("Licence no."),
                "score": _("Name score"),
                "distance": _("Distance"),
            },
            tooltip={"name": ""},
            style=lambda f, c=colour: {
                "color": c,
                "weight": 1.5,
                "fill": True,
                "fillColor": c,
                "fillOpacity": 0.85,
            },
            marker=folium.CircleMarker(radius=7 if group == "unlicensed" else 5),
        ).add_to(m)
    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    items = [(labels[g], {"color": COLOURS[g], "fill": COLOURS[g], "shape": "dot"}) for g in GROUPS]
    items.append(
        (_("Lead → nearest register entry"), {"color": COLOURS["evidence"], "fill": "", "shape": "dash"})
    )
    m.add_child(Legend(_("Legend"), items))
    return m


@bp.get("/")
@require_role("analyst")
def index():
    """The three groups with their evidence, and the map."""
    options = _options()
    basemap = active_basemap(current_app.config, request.args.get("basemap"))
    result, n_pois = leads_for_workspace(options)
    register = current_workspace().read("net_cafes")
    m = _build_map(result, register, basemap)
    locale = "zh_CN" if is_chinese() else "en"
    return render_template(
        "leads/index.html",
        map=map_parts(m),
        map_name=m.get_name(),
        groups=_rows(result),
        labels=_group_labels(),
        order=GROUPS,
        options=options,
        n_pois=n_pois,
        n_observed=int((result["status"] != "not_observed").sum()),
        basemaps=[
            {"name": b.name, "label": b.label(locale), "selected": b.name == basemap.name}
            for b in basemap_choices(current_app.config)
        ],
    )


def _cell(text: str) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_headers() -> list[tuple[str, str]]:
    return [
        ("status", _("Result")),
        ("observed_id", _("Observed ID")),
        ("observed_name", _("Observed name")),
        ("observed_norm", _("Observed name, normalised")),
        ("observed_source", _("Source")),
        ("observed_at", _("Observed")),
        ("address", _("Address")),
        ("register_id", _("Register ID")),
        ("register_name", _("Register name")),
        ("register_norm", _("Register name, normalised")),
        ("licence_no", _("Licence no.")),
        ("register_status", _("Licence status")),
        ("candidate_id", _("Best candidate ID")),
        ("candidate_name", _("Best candidate")),
        ("score", _("Name score")),
        ("distance_m", _("Distance (m)")),
        ("duplicate_of", _("Second sighting of")),
    ]


@bp.get("/export.csv")
@require_role("analyst")
def export_csv():
    """The reconciliation as CSV (UTF-8 with BOM so that Excel reads the Chinese)."""
    options = _options()
    try:
        result, _n = leads_for_workspace(options)
    except CivicmapError as exc:
        return Response(str(exc), status=400, mimetype="text/plain")
    labels = _group_labels()
    headers = _csv_headers()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([label for _key, label in headers] + [_("Longitude"), _("Latitude")])
    for row, geom in zip(result.to_dict("records"), result.geometry, strict=True):
        values = []
        for key, _label in headers:
            value = row[key]
            if key == "status":
                value = labels[value]
            elif key in ("score", "distance_m"):
                value = "" if math.isnan(value) else f"{value:.1f}"
            values.append(_cell(plain_text(value)))
        writer.writerow([*values, f"{geom.x:.7f}", f"{geom.y:.7f}"])
    body = "\ufeff" + out.getvalue()
    return Response(
        body.encode("utf-8"),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=unlicensed-leads.csv"},
    )
