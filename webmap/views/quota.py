"""The planning desk: density, permissible zones, quotas, and the policy tester (analysts).

``/quota/``            choropleth of café density, permissible zones, the quota table and the
                       Chinese summary, relocation suggestions; XLSX and GeoJSON exports.
``/quota/scenarios``   the scenario form, saved scenarios side by side, the sensitivity chart
                       (server-side SVG/PNG from matplotlib), XLSX export of the comparison.

Saved scenarios live in the workspace database, table ``quota_scenarios``.  Results are cached
per (workspace layer versions, profile, settings), so an import is picked up on the next request.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import folium
import numpy as np
import pandas as pd
from flask import Blueprint, Response, abort, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _

from geo.permissible import permissible_zones
from geo.quota import (
    DISTRICT_ROW,
    quota_summary,
    quota_table,
    relocation_suggestions,
    stock_table,
)
from geo.scenarios import Scenario, ScenarioRunner, attrition, limit_scenarios, sensitivity_chart, sweep
from layers.errors import CivicmapError
from webmap.accounts import audit, current_workspace
from webmap.analysis import cached, default_profile_name, get_engine, get_profile, profile_names
from webmap.assets import map_parts
from webmap.basemaps import active_basemap, make_map, to_display
from webmap.i18n import in_language
from webmap.labels import profile_title, rule_label
from webmap.maps.features import geojson_layer
from webmap.maps.legend import Legend
from webmap.nav import NAV_LABELS, NAV_ORDER, nav_entry
from webmap.security import current_user, require_role

bp = Blueprint("quota", __name__, url_prefix="/quota")
nav_entry(bp, ".index", NAV_LABELS["quota"], order=NAV_ORDER["quota"], role="analyst")

KIND = "net_cafes"
DEFAULT_PER_RESIDENTS = 12_000
DEFAULT_LIMITS = (100, 150, 200, 250, 300, 350, 400, 450, 500)
#: density classes (cafés per 10,000 residents) and their fill colours, light to dark
DENSITY_BREAKS = (1.0, 2.0, 3.0, 4.0)
DENSITY_COLOURS = ("#fee5d9", "#fcae91", "#fb6a4a", "#de2d26", "#a50f15")
TABLE = "quota_scenarios"
#: Chinese headers of the planning workbook (the CLI keeps the field names, for scripts)
XLSX_HEADERS = {
    "subdistrict": "街道/乡镇", "population": "常住人口", "area_km2": "面积(平方公里)", "cafes": "网吧(家)",
    "terminals": "终端(台)", "cafes_per_10k": "每万人网吧数", "terminals_per_1k": "每千人终端数",
    "chain_share": "连锁占比", "game_venues": "游艺场所(家)", "game_venues_per_10k": "每万人游艺场所数",
    "violating": "违规网吧(家)", "unlicensed_leads": "无证线索", "permissible_km2": "可设置面积(平方公里)",
    "permissible_share": "可设置占比", "quota": "配额(家)", "headroom": "余量(家)",
    "venue_id": "场所编号", "venue_name": "场所名称", "rules": "违反规则", "lon": "经度", "lat": "纬度",
    "target_lon": "建议经度", "target_lat": "建议纬度", "distance_m": "迁移距离(米)",
    "method": "方式", "stock": "现有(家)", "cap": "上限(家)", "to_close": "需压减(家)",
    "violators_left": "仍在营违规网吧", "violators_left_p5_p95": "第5至95百分位", "terminals_lost": "减少终端数",
    "closed": "压减名单",
}  # fmt: skip
#: headers of the scenario and sweep workbooks (a scenario's summary row, see geo.scenarios)
SCENARIO_HEADERS = {
    "id": "编号", "scenario": "方案", "profile": "规则方案", "created_by": "创建人", "limit_m": "距离限值(米)",
    "method": "测量方法", "levels": "保护学段", "spacing_m": "同类间距(米)", "residential": "居民楼规则",
    "cap": "总量上限(家)", "per_residents": "每家对应人口", "affected": "受影响场所(家)",
    "newly_affected": "新增受影响(家)", "no_longer_affected": "不再受影响(家)",
    "permissible_km2": "可设置面积(平方公里)", "quota": "配额(家)", "headroom": "余量(家)",
    "affected_ids": "受影响场所编号", "affected_names": "受影响场所名称", "seconds": "计算用时(秒)",
    "permissible_by_subdistrict": "各街道可设置面积(平方公里)", "quota_by_subdistrict": "各街道配额(家)",
}  # fmt: skip


def _number(text: str | None, default: float | None, *, integer: bool = False) -> float | None:
    if text is None or not str(text).strip():
        return default
    try:
        value = int(str(text).strip()) if integer else float(str(text).strip())
    except ValueError:
        raise CivicmapError(_("%(value)r is not a number.", value=str(text))) from None
    if value < 0 or not np.isfinite(value):
        raise CivicmapError(_("%(value)r is not a number.", value=str(text)))
    return value


def _settings(values) -> dict:
    """Profile, target (ratio or cap) and spacing from the query string, validated."""
    profile = values.get("profile") or default_profile_name()
    if profile not in profile_names():
        raise CivicmapError(_("Unknown rule profile %(name)r.", name=profile))
    target = values.get("target", "ratio")
    per = _number(values.get("per_residents"), DEFAULT_PER_RESIDENTS)
    cap = _number(values.get("cap"), None, integer=True)
    if target == "cap" and cap is None:
        raise CivicmapError(_("Enter the district cap."))
    if target != "cap" and not per:
        raise CivicmapError(_("Enter the residents per café (a number above 0)."))
    spacing = _number(values.get("spacing"), 0.0) or 0.0
    return {"profile": profile, "target": "cap" if target == "cap" else "ratio", "per_residents": per,
            "cap": cap, "spacing": spacing}  # fmt: skip


def _analysis(s: dict) -> dict:
    """Zones, quota table, summary and relocation suggestions for the settings (cached)."""

    def build() -> dict:
        engine = get_engine(s["profile"])
        zones = permissible_zones(engine, KIND, spacing_m=s["spacing"])
        stock = stock_table(engine, KIND)
        target = {"cap": s["cap"]} if s["target"] == "cap" else {"per_residents": s["per_residents"]}
        table = quota_table(engine, kind=KIND, zones=zones, stock=stock, **target)
        moves = relocation_suggestions(engine, zones, KIND)
        cut = (
            attrition(engine, s["cap"], kind=KIND) if s["target"] == "cap" and s["cap"] is not None else None
        )
        return {"engine": engine, "zones": zones, "table": table, "summary": quota_summary(table),
                "summary_en": quota_summary(table, "en"),
                "moves": moves, "attrition": cut}  # fmt: skip

    key = ("quota", s["profile"], get_profile(s["profile"]).source, s["target"], s["per_residents"], s["cap"],
           s["spacing"])  # fmt: skip
    return cached(key, build)


def _density_colour(value: float) -> str:
    if value != value:  # NaN: no residents recorded
        return "#eeeeee"
    return DENSITY_COLOURS[int(np.searchsorted(DENSITY_BREAKS, value, side="right"))]


def _map(result: dict, basemap):
    engine, zones, table = result["engine"], result["zones"], result["table"]
    subs = engine.layer("subdistricts")
    m = make_map(bounds=tuple(subs.total_bounds), basemap=basemap)
    rows = table.set_index("subdistrict").reindex(subs["name"].astype(str))
    density = rows["cafes_per_10k"].to_numpy(float)
    geojson_layer(
        to_display(subs, basemap),
        name=_("Café density"),
        columns={
            "name": subs["name"],
            "density": [f"{v:.2f}" if v == v else "—" for v in density],
            "cafes": rows["cafes"].astype(int),
            "quota": rows["quota"].astype(int),
            "_fill": [_density_colour(v) for v in density],
            "label": [
                f"{n} {v:.2f}" if v == v else str(n) for n, v in zip(subs["name"], density, strict=True)
            ],
        },
        label="label",
        tooltip={
            "name": _("Sub-district"),
            "density": _("Cafés per 10,000 residents"),
            "cafes": _("Net cafés"),
            "quota": _("Quota (cafés)"),
        },
        style=lambda f: {
            "color": "#52606d",
            "weight": 1.2,
            "fillColor": f["properties"]["_fill"],
            "fillOpacity": 0.5,
        },
    ).add_to(m)
    shown = zones.table.set_geometry(zones.display_geometry())
    shown = shown[~shown.geometry.is_empty]
    geojson_layer(
        to_display(shown, basemap),
        name=_("Permissible zones"),
        columns={"name": shown["subdistrict"], "area": [f"{v:.3f}" for v in shown["permissible_km2"]]},
        tooltip={"name": _("Sub-district"), "area": _("Permissible area (km²)")},
        style=lambda f: {"color": "#1d6b2f", "weight": 0.8, "fillColor": "#2f9e44", "fillOpacity": 0.45},
    ).add_to(m)
    moves = result["moves"].dropna(subset=["target_lon"])
    if len(moves):
        import geopandas as gpd
        import shapely

        lines = shapely.linestrings(
            np.stack([moves[["lon", "lat"]].to_numpy(), moves[["target_lon", "target_lat"]].to_numpy()], 1)
        )
        frame = gpd.GeoDataFrame({"name": moves["venue_name"].to_numpy()}, geometry=lines, crs="EPSG:4326")
        geojson_layer(
            to_display(frame, basemap),
            name=_("Relocation suggestions"),
            columns={"name": moves["venue_name"], "distance": [f"{v:.1f}" for v in moves["distance_m"]]},
            tooltip={"name": _("Venue"), "distance": _("Distance (m)")},
            style=lambda f: {"color": "#c8161d", "weight": 2, "dashArray": "4 3"},
        ).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    items = [(f"< {DENSITY_BREAKS[0]:g}", {"color": "#52606d", "fill": DENSITY_COLOURS[0], "shape": "area"})]
    items += [(f"{a:g}–{b:g}", {"color": "#52606d", "fill": c, "shape": "area"})
              for a, b, c in zip(DENSITY_BREAKS, DENSITY_BREAKS[1:], DENSITY_COLOURS[1:], strict=False)]  # fmt: skip
    items += [(f"≥ {DENSITY_BREAKS[-1]:g}", {"color": "#52606d", "fill": DENSITY_COLOURS[-1], "shape": "area"}),
              (_("Permissible zone"), {"color": "#1d6b2f", "fill": "#2f9e44", "shape": "area"}),
              (_("Relocation suggestion"), {"color": "#c8161d", "fill": "", "shape": "dash"})]  # fmt: skip
    m.add_child(Legend(_("Cafés per 10,000 residents"), items))
    return m


@bp.get("/")
@require_role("analyst")
def index():
    """Density map, permissible zones and the quota table for the chosen settings."""
    try:
        s = _settings(request.args)
        result = _analysis(s)
    except CivicmapError as err:
        s = _settings({})
        result, error = _analysis(s), str(err)
    else:
        error = None
    basemap = active_basemap(current_app.config, request.args.get("basemap"))
    m = _map(result, basemap)
    return render_template(
        "quota/index.html", map=map_parts(m), s=s, error=error, table=result["table"], summary=in_language(result["summary"], result["summary_en"]),
        moves=_with_rule_labels(result["moves"], result["engine"].profile), district_row=DISTRICT_ROW,
        attrition=_attrition_view(result),
        profiles=[(n, profile_title(get_profile(n))) for n in profile_names()],
        query=_query(s),
    ), 400 if error else 200  # fmt: skip


def _attrition_view(result: dict) -> dict | None:
    """The two ways to reach the cap, with the venues' names for the rule-based closures."""
    cut = result.get("attrition")
    if not cut or not cut["to_close"]:
        return cut
    venues = result["engine"].layer(KIND)
    names = dict(zip(venues["id"].astype(str), venues["name"].astype(str), strict=True))
    return {**cut, "closed_names": [names.get(i, i) for i in cut["rule_based"]["closed"]]}


def _with_rule_labels(moves: pd.DataFrame, profile) -> pd.DataFrame:
    known = {r.id: rule_label(r) for r in profile.rules}
    labels = ["、".join(known.get(x, x) for x in str(text).split("、") if x) for text in moves["rules"]]
    return moves.assign(rules_label=labels)


def _query(s: dict) -> dict:
    q = {"profile": s["profile"], "target": s["target"], "spacing": f"{s['spacing']:g}"}
    if s["target"] == "cap":
        q["cap"] = s["cap"]
    else:
        q["per_residents"] = f"{s['per_residents']:g}"
    return q


@bp.get("/export.xlsx")
@require_role("analyst")
def export_xlsx():
    """The quota table, relocation suggestions and summary as one workbook."""
    s = _settings(request.args)
    result = _analysis(s)
    out = io.BytesIO()
    with pd.ExcelWriter(out, engine="openpyxl") as writer:
        result["table"].round(4).rename(columns=XLSX_HEADERS).to_excel(writer, sheet_name="配额", index=False)
        moves = result["moves"].round({"distance_m": 1}).rename(columns=XLSX_HEADERS)
        moves.to_excel(writer, sheet_name="迁址建议", index=False)
        pd.DataFrame({"说明": [result["summary"]]}).to_excel(writer, sheet_name="说明", index=False)
        if result.get("attrition"):
            attrition_sheet = _attrition_frame(result["attrition"]).rename(columns=XLSX_HEADERS)
            attrition_sheet.to_excel(writer, sheet_name="压减方案", index=False)
    audit("quota.export", f"quota table, profile {s['profile']}")
    return _download(
        out.getvalue(), "quota.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )


@bp.get("/zones.geojson")
@require_role("analyst")
def zones_geojson():
    """The permissible zones (WGS84 GeoJSON, one feature per sub-district)."""
    s = _settings(request.args)
    text = _analysis(s)["zones"].to_geojson()
    return _download(text.encode("utf-8"), "permissible_zones.geojson", "application/geo+json")


def _download(data: bytes, name: str, mimetype: str) -> Response:
    return Response(data, mimetype=mimetype, headers={"Content-Disposition": f"attachment; filename={name}"})


# ------------------------------------------------------------------ scenarios
def _runner(profile: str) -> ScenarioRunner:
    def build() -> ScenarioRunner:
        engine = get_engine(profile)
        return ScenarioRunner(engine.layers, engine.profile, KIND, base=engine)

    return cached(("runner", profile, get_profile(profile).source), build)


def _ensure_table(con) -> None:
    con.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, "
                "profile TEXT NOT NULL, params TEXT NOT NULL, result TEXT NOT NULL, created_by TEXT, created_at TEXT)")  # fmt: skip


def saved_scenarios() -> list[dict]:
    """Saved scenarios of the workspace, oldest first."""
    with current_workspace().sqlite() as con:
        _ensure_table(con)
        rows = con.execute(
            f"SELECT id, name, profile, params, result, created_by, created_at FROM {TABLE} ORDER BY id"
        ).fetchall()
    return [{"id": r[0], "name": r[1], "profile": r[2], "params": json.loads(r[3]), "result": json.loads(r[4]),
             "created_by": r[5], "created_at": r[6]} for r in rows]  # fmt: skip


def _scenario_from_form(form) -> tuple[str, Scenario]:
    profile = form.get("profile") or default_profile_name()
    if profile not in profile_names():
        raise CivicmapError(_("Unknown rule profile %(name)r.", name=profile))
    name = (form.get("name") or "").strip()[:60] or _("Scenario")
    levels = None
    if form.get("kindergartens"):
        main = next((r for r in get_profile(profile).rules_for(KIND) if r.type == "distance"), None)
        if main is not None:
            levels = tuple(dict.fromkeys((*main.levels, "kindergarten")))
    scenario = Scenario(
        name=name, kind=KIND, limit_m=_number(form.get("limit_m"), None), method=form.get("method") or None,
        levels=levels, spacing_m=_number(form.get("spacing_m"), 0.0) or 0.0,
        residential_scope=form.get("residential") or None, cap=_number(form.get("cap"), None, integer=True),
    )  # fmt: skip
    return profile, scenario


def _result_summary(result, profile: str) -> dict:
    table = result.table
    per_sub = table[table["subdistrict"] != DISTRICT_ROW].set_index("subdistrict")
    row = result.row()
    row["affected_names"] = _venue_names(result, profile)
    row["permissible_by_subdistrict"] = per_sub["permissible_km2"].round(4).to_dict()
    if "quota" in per_sub:
        row["quota_by_subdistrict"] = per_sub["quota"].astype(int).to_dict()
    return row


def _venue_names(result, profile: str) -> list[str]:
    cafes = get_engine(profile).layer(KIND)
    names = dict(zip(cafes["id"].astype(str), cafes["name"].astype(str), strict=True))
    return [names.get(v, v) for v in result.affected]


@bp.get("/scenarios")
@require_role("analyst")
def scenarios():
    """The policy tester: form, saved scenarios side by side, sensitivity chart."""
    profile = request.args.get("profile") or default_profile_name()
    if profile not in profile_names():
        profile = default_profile_name()
    limits = request.args.get("limits") or ",".join(str(x) for x in DEFAULT_LIMITS)
    saved = saved_scenarios()
    baseline = cached(
        ("baseline", profile, get_profile(profile).source),
        lambda: _result_summary(_runner(profile).run(Scenario(name="baseline")), profile),
    )
    baseline = {**baseline, "scenario": _("Current rules")}
    subs = list(baseline["permissible_by_subdistrict"])
    subs += sorted({k for x in saved for k in x["result"]["permissible_by_subdistrict"]} - set(subs))
    profiles = [(n, profile_title(get_profile(n))) for n in profile_names()]
    return render_template(
        "quota/scenarios.html", profile=profile, limits=limits, saved=saved, baseline=baseline, subdistricts=subs,
        profiles=profiles, titles=dict(profiles), error=request.args.get("error"),
    )  # fmt: skip


@bp.post("/scenarios")
@require_role("analyst")
def save_scenario():
    """Run the scenario of the form and save it (then show the comparison)."""
    try:
        profile, scenario = _scenario_from_form(request.form)
        result = _runner(profile).run(scenario)
    except CivicmapError as err:
        return redirect(url_for(".scenarios", profile=request.form.get("profile"), error=str(err)))
    user = current_user()
    with current_workspace().sqlite() as con:
        _ensure_table(con)
        con.execute(f"INSERT INTO {TABLE} (name, profile, params, result, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (scenario.name, profile, json.dumps(scenario.to_dict(), ensure_ascii=False),
                     json.dumps(_result_summary(result, profile), ensure_ascii=False, default=_plain),
                     user.name if user else "", datetime.now(UTC).isoformat(timespec="seconds")))  # fmt: skip
    audit("quota.scenario", f"{scenario.name} under {profile}: {len(result.affected)} affected")
    return redirect(url_for(".scenarios", profile=profile))


def _plain(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    raise TypeError(type(value))


@bp.post("/scenarios/<scenario_id>/delete")  # a plain converter: signed-out users get the login, not a 404
@require_role("analyst")
def delete_scenario(scenario_id: str):
    """Delete one saved scenario."""
    if not scenario_id.isdigit():
        abort(404)
    with current_workspace().sqlite() as con:
        _ensure_table(con)
        found = con.execute(f"DELETE FROM {TABLE} WHERE id = ?", (int(scenario_id),)).rowcount
    if not found:
        abort(404)
    audit("quota.scenario.delete", str(scenario_id))
    return redirect(url_for(".scenarios", profile=request.form.get("profile")))


@bp.get("/scenarios.xlsx")
@require_role("analyst")
def scenarios_xlsx():
    """The saved scenarios side by side as a workbook."""
    rows = [
        s["result"] | {"id": s["id"], "profile": s["profile"], "created_by": s["created_by"]}
        for s in saved_scenarios()
    ]
    frame = pd.DataFrame(rows)
    for col in ("affected_names", "permissible_by_subdistrict", "quota_by_subdistrict"):
        if col in frame:
            frame[col] = frame[col].map(
                lambda v: json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else v
            )
    out = io.BytesIO()
    frame.rename(columns=SCENARIO_HEADERS).to_excel(
        out, sheet_name="方案对比", index=False, engine="openpyxl"
    )
    return _download(
        out.getvalue(), "scenarios.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )


def _sweep_frame(profile: str, limits_text: str) -> pd.DataFrame:
    try:
        limits = tuple(float(x) for x in limits_text.replace("，", ",").split(",") if x.strip())
    except ValueError:
        abort(400)
    if not limits or len(limits) > 20 or any(x <= 0 or x > 5000 for x in limits):
        abort(400)
    if profile not in profile_names():
        abort(400)
    return cached(("sweep", profile, limits), lambda: sweep(_runner(profile), limit_scenarios(limits))[0])


@bp.get("/sweep.<fmt>")
@require_role("analyst")
def sweep_chart(fmt: str):
    """The sensitivity chart (``svg`` or ``png``) or its table (``xlsx``) for ``?profile=&limits=``."""
    frame = _sweep_frame(
        request.args.get("profile") or default_profile_name(), request.args.get("limits", "")
    )
    if fmt == "xlsx":
        out = io.BytesIO()
        frame.rename(columns=SCENARIO_HEADERS).to_excel(
            out, sheet_name="敏感性分析", index=False, engine="openpyxl"
        )
        return _download(
            out.getvalue(), "sweep.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        )
    if fmt not in ("svg", "png"):
        abort(404)
    labels = {"title": _("Sensitivity to the distance limit"), "x": _("Limit (m)"),
              "affected": _("Affected venues"), "area": _("Permissible area (km²)")}  # fmt: skip
    data = sensitivity_chart(frame, fmt=fmt, labels=labels)
    mimetype = "image/svg+xml" if fmt == "svg" else "image/png"
    return Response(data, mimetype=mimetype)


def _attrition_frame(cut: dict) -> pd.DataFrame:
    """Lottery vs rule-based closures, one row each (for the workbook)."""
    lottery, rules = cut["lottery"], cut["rule_based"]
    return pd.DataFrame(
        {
            "method": ["随机摇号", "按规则压减"],
            "stock": cut["stock"],
            "cap": cut["cap"],
            "to_close": cut["to_close"],
            "violators_left": [lottery["violators_left_mean"], rules["violators_left"]],
            "violators_left_p5_p95": [f"{lottery['violators_left_p5']}–{lottery['violators_left_p95']}", ""],
            "terminals_lost": [lottery["terminals_lost_mean"], rules["terminals_lost"]],
            "closed": ["", "、".join(rules["closed"])],
        }
    )
