"""Enforcement pages: the target list, a case's page, a team's day tour, and the list's exports.

``/enforcement/``               targets of a profile, filtered (team, sub-district, rule, kind,
                                licence status, case status, least priority), with the score
                                explained and export buttons (XLSX, CSV, GeoJSON, PDF)
``/enforcement/export.<fmt>``   the same filtered list as a file
``/enforcement/case/<n>``       a case: map, findings, history; inspectors (and admins) change its
                                status with the form (``POST``, audit-logged); others read it
``/enforcement/route``          the tour of one team on one day (``?team=&day=``), map and stops

The targets come from :func:`geo.targets.workspace_targets` on the cached rule engine; the
cases are brought in step with the analysis once per workspace state, profile and day.
"""

from __future__ import annotations

import io
import math
import tempfile
import threading
from datetime import date
from pathlib import Path

import geopandas as gpd
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from geo.leads import leads_from_layers
from geo.targets import filter_targets, load_config, workspace_targets
from layers.cases import STATUSES, TRANSITIONS, CaseBook, CaseError
from layers.target_export import write_targets
from webmap.accounts import audit, current_workspace
from webmap.analysis import default_profile_name, get_engine, get_profile, get_violations, profile_names
from webmap.assets import map_parts
from webmap.basemaps import active_basemap
from webmap.i18n import format_distance
from webmap.labels import kind_label, level_label, method_label, profile_title, rule_label, status_label
from webmap.maps.enforcement_map import build_case_map, build_route_map
from webmap.nav import NAV_LABELS, NAV_ORDER, nav_entry
from webmap.security import current_user, require_role

bp = Blueprint("enforcement", __name__, url_prefix="/enforcement")
nav_entry(bp, ".index", NAV_LABELS["enforcement"], order=NAV_ORDER["enforcement"])

CASE_LABELS = {
    "new": _l("New"),
    "assigned": _l("Assigned"),
    "inspected": _l("Inspected"),
    "rectified": _l("Rectified"),
    "closed": _l("Closed"),
    "relocated": _l("Relocated"),
    "dismissed": _l("Dismissed"),
    "resolved": _l("Resolved by data"),
}
EXPORTS = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
    "geojson": "application/geo+json",
    "pdf": "application/pdf",
}
FILTERS = ("team", "subdistrict", "rule", "kind", "status", "case", "min")
_SYNC_LOCK = threading.Lock()
_SYNCED: set[tuple] = set()


# ------------------------------------------------------------------ data
def _profile() -> str:
    name = request.args.get("profile") or default_profile_name()
    if name not in profile_names():
        abort(404)
    return name


def _leads(engine):
    """Unlicensed-café leads: the workspace's observed POIs reconciled with the licence register."""
    return leads_from_layers(engine.layers)


def current_targets(profile_name: str) -> gpd.GeoDataFrame:
    """Targets of the workspace under a profile.

    Cases follow the findings of the enforcement profile only (``[cases] profile`` in
    ``enforcement.toml``), synced once per (workspace state, day); any other profile is a
    preview that shows the existing cases but never opens or resolves one.
    """
    ws = current_workspace()
    engine = get_engine(profile_name)
    key = (str(ws.path), tuple(sorted(ws.current_versions().items())), profile_name, date.today().isoformat())
    with _SYNC_LOCK:
        sync = key not in _SYNCED and profile_name == load_config(ws.path).case_profile
    targets = workspace_targets(
        ws,
        get_violations(profile_name),
        engine.layers,
        leads=_leads(engine),
        network=engine.network,
        sync=sync,
    )
    with _SYNC_LOCK:
        _SYNCED.add(key)
    return targets


def _case_book() -> CaseBook:
    config = load_config(current_workspace().path)
    return CaseBook(current_workspace(), deadline_days=config.deadline_days, revisit_days=config.revisit_days)


def _filtered(targets: gpd.GeoDataFrame, args) -> gpd.GeoDataFrame:
    try:
        least = float(args["min"]) if args.get("min") else None
    except ValueError:
        abort(400, _("The least priority must be a number."))
    return filter_targets(
        targets, team=args.get("team"), subdistrict=args.get("subdistrict"), rule=args.get("rule"),
        kind=args.get("kind"), status=args.get("status"), case_status=args.get("case"), min_priority=least,
    )  # fmt: skip


def case_label(status: object) -> str:
    return str(CASE_LABELS.get(str(status), status or "—"))


def metres(value: object) -> str:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "—"
    return "—" if math.isnan(number) else format_distance(number)


def _method(value: str) -> str:
    return _("field survey") if value == "surveyed" else (method_label(value) if value else "—")


RULE_TYPE_LABELS = {
    "residential": _l("inside a residential building"),
    "spacing": _l("too close to a venue of the same kind"),
    "zone": _l("in or near a restricted zone"),
}


@bp.context_processor
def _helpers() -> dict:
    return {"case_label": case_label, "metres": metres, "method_text": _method, "kind_label": kind_label,
            "status_label": status_label, "level_label": level_label,
            "rule_type_label": lambda t: str(RULE_TYPE_LABELS.get(t, t))}  # fmt: skip


# ------------------------------------------------------------------ the list
LEAD_LABELS = {
    "unlicensed_lead": _l("Unlicensed lead"),
    "operating_while_barred": _l("Operating while suspended or revoked"),
}


def _options(targets: gpd.GeoDataFrame, profile_name: str) -> dict:
    profile = get_engine(profile_name).profile
    found_rules = {r for rules_ in targets["rules"] for r in rules_}
    rules = [{"id": r.id, "label": rule_label(r)} for r in profile.rules if r.id in found_rules]
    rules += [
        {"id": r, "label": str(LEAD_LABELS.get(r, r))} for r in sorted(found_rules - set(profile.rule_ids))
    ]
    return {
        "profiles": [(p, profile_title(get_profile(p))) for p in profile_names()],
        "teams": sorted(set(targets["team"])),
        "subdistricts": sorted({s for s in targets["subdistrict"] if s}),
        "rules": rules,
        "kinds": sorted(set(targets["kind"])),
        "statuses": sorted(set(targets["status"])),
        "cases": [s for s in STATUSES if s in set(targets["case_status"])],
    }


@bp.get("/")
def index():
    """The target list with filters, the score explained and export buttons."""
    profile_name = _profile()
    targets = current_targets(profile_name)
    shown = _filtered(targets, request.args)
    args = {k: request.args.get(k, "") for k in FILTERS}
    config = load_config(current_workspace().path)
    days = shown[shown["route_day"].notna()].groupby(["team", "route_day"]).size()
    return render_template(
        "enforcement/index.html",
        targets=shown.to_dict(orient="records"),
        total=len(targets),
        args=args,
        profile_name=profile_name,
        options=_options(targets, profile_name),
        config=config,
        routes=[{"team": t, "day": int(d), "stops": int(n)} for (t, d), n in days.items()],
        export_args={k: v for k, v in request.args.items() if k in (*FILTERS, "profile") and v},
    )


@bp.get("/export.<fmt>")
def export(fmt: str):
    """The filtered list as XLSX (``?by=team`` for a sheet per team), CSV, GeoJSON or PDF sheets."""
    if fmt not in EXPORTS:
        abort(404)
    profile_name = _profile()
    shown = _filtered(current_targets(profile_name), request.args)
    by = "team" if request.args.get("by") == "team" or request.args.get("team") else "subdistrict"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"targets.{fmt}"
        if fmt == "pdf":
            try:
                from layers.inspection_pdf import write_inspection_pdf
            except ImportError:
                abort(404, _("PDF inspection sheets are not installed."))
            write_inspection_pdf(shown, path, layers=get_engine(profile_name).layers)
        else:
            write_targets(shown, path, by=by)
        data = io.BytesIO(path.read_bytes())
    audit("targets.export", f"{len(shown)} target(s) as {fmt} under {profile_name}")
    name = f"执法检查目标_{date.today():%Y%m%d}.{fmt}"
    return send_file(data, mimetype=EXPORTS[fmt], as_attachment=True, download_name=name)


# ------------------------------------------------------------------ a case
def _case_page(case_id: int, *, error: str = "", status: int = 200):
    book = _case_book()
    try:
        case = book.get(case_id)
    except CaseError:
        abort(404)
    profile_name = _profile()
    targets = current_targets(profile_name)
    hit = targets[(targets["kind"] == case.venue_kind) & (targets["venue_id"] == case.venue_id)]
    target = hit.iloc[0].to_dict() if len(hit) else None
    layers = get_engine(profile_name).layers
    point = target["geometry"] if target is not None else _venue_point(layers, case.venue_kind, case.venue_id)
    basemap = active_basemap(current_app.config, request.args.get("basemap"))
    m = build_case_map(target, point, layers, basemap)
    user = current_user()
    can_edit = user is not None and user.has_role("inspector")
    choices = [case.status, *TRANSITIONS[case.status]] if case.status != "resolved" else []
    return render_template(
        "enforcement/case.html",
        map=map_parts(m),
        case=case,
        target=target,
        history=book.history(case.case_id),
        can_edit=can_edit,
        choices=choices,
        error=error,
        form=request.form if error else {},
        profile_name=profile_name,
    ), status


def _venue_point(layers, kind: str, venue_id: str):
    frame = layers.get(kind)
    if frame is None:
        return None
    hit = frame[frame["id"].astype(str) == venue_id]
    return hit.geometry.iloc[0].representative_point() if len(hit) else None


def _number(case_id: str) -> int:
    if not case_id.isdigit():
        abort(404)
    return int(case_id)


@bp.get("/case/<case_id>")
def case(case_id: str):
    """A case: its map, findings, history, and the status form for inspectors."""
    return _case_page(_number(case_id))


@bp.post("/case/<case_id>")
@require_role("inspector")
def update_case(case_id: str):
    """Change a case's status (inspectors and admins; viewers and analysts get 403)."""
    number = _number(case_id)
    user = current_user()
    form = request.form
    book = _case_book()
    try:
        before = book.get(number)
    except CaseError:
        abort(404)
    try:
        after = book.update(
            number, form.get("status", ""), user=user.name, note=form.get("note", "").strip(),
            reason=form.get("reason", ""), surveyed_distance_m=form.get("surveyed_m") or None,
            survey_report=form.get("report", ""), deadline=form.get("deadline") or None,
            revisit_on=form.get("revisit") or None,
        )  # fmt: skip
    except CaseError as err:
        return _case_page(number, error=str(err), status=400)
    detail = f"case {number} ({before.venue_name}): {before.status} → {after.status}"
    if after.survey_report and after.survey_report != before.survey_report:
        detail += f"; surveyed {after.surveyed_distance_m:g} m, report {after.survey_report}"
    audit("case.update", detail)
    flash(_("Case %(n)s saved: %(status)s.", n=number, status=case_label(after.status)), "success")
    return redirect(url_for(".case", case_id=number, profile=request.args.get("profile") or None), code=303)


# ------------------------------------------------------------------ a team's day
@bp.get("/route")
def route():
    """The tour of one team on one day, on the map and as a numbered list."""
    profile_name = _profile()
    targets = current_targets(profile_name)
    teams = sorted(set(targets["team"]))
    team = request.args.get("team") or (teams[0] if teams else "")
    day = request.args.get("day", "1")
    if not day.isdigit() or (teams and team not in teams):
        abort(404)
    mine = targets[targets["team"] == team]
    days = sorted(int(d) for d in set(mine["route_day"].dropna()))
    stops = mine[mine["route_day"] == int(day)].sort_values("route_order")
    basemap = active_basemap(current_app.config, request.args.get("basemap"))
    config = load_config(current_workspace().path)
    network = get_engine(profile_name).network if config.walking else None
    m = build_route_map(stops, basemap, network=network)
    return render_template(
        "enforcement/route.html",
        map=map_parts(m),
        stops=stops.to_dict(orient="records"),
        team=team,
        teams=teams,
        day=int(day),
        days=days,
        walking=network is not None,
        profile_name=profile_name,
    )


# ------------------------------------------------------------------ dashboard
def dashboard_figures() -> dict:
    """Open cases and overdue revisits for the dashboard (cases brought up to date first)."""
    case_profile = load_config(current_workspace().path).case_profile
    if case_profile in profile_names():
        current_targets(case_profile)  # once per workspace state and day: new findings become cases
    book = _case_book()
    counts = book.counts()
    return {
        "open": sum(counts[s] for s in ("new", "assigned", "inspected")),
        "counts": counts,
        "overdue": book.overdue_revisits(),
        "url": url_for("enforcement.index"),
    }
