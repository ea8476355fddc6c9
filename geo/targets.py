"""Enforcement targets: every finding of a venue in one row, scored, ranked, with its team.

:func:`build_targets` turns the findings of :meth:`geo.violations.RuleEngine.violations`
(distance, residential, spacing and zone rules) and, optionally, the unlicensed-café leads of
``geo.leads.reconcile`` into one target per venue ``(kind, venue_id)`` carrying all its
findings, a priority score that explains itself, and the enforcement team of its sub-district.

The priority score, its terms and the effect of a surveyed distance are documented in
:mod:`geo.scoring` (weights in ``geo/enforcement.toml``, overridable per workspace); each target's
``priority_reasons`` lists the terms that applied, in Chinese; ``summary_en`` and
``priority_reasons_en`` say the same in English for English pages.  Targets are ranked by priority;
ties are broken by the larger shortfall, then by kind and venue id.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.scoring import (
    EnforcementConfig,
    apply_survey,
    level_en,
    level_zh,
    load_config,
    score,
    score_reasons,
    score_terms,
    score_total,
    severity,
)
from layers.target_export import METHOD_ZH
from layers.target_export import UNASSIGNED as UNASSIGNED_TEAM

log = logging.getLogger(__name__)

#: columns of a target table, in order (geometry last); the PDF sheets rely on these names
COLUMNS = [
    "venue_id", "kind", "name", "licence_no", "address", "subdistrict", "team", "status", "findings",
    "summary", "protected", "distance_m", "limit_m", "method", "priority", "priority_reasons", "rank",
    "case_id", "case_status", "route_day", "route_order", "rules", "summary_en", "priority_reasons_en",
]  # fmt: skip
LEAD_RULE = "unlicensed_lead"
BARRED_RULE = "operating_while_barred"


# ------------------------------------------------------------------ findings
def _num(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out


def _text(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


#: what a rule forbids, per language: ``{limit:g}`` metres, ``{level}`` the school level
_RULE_LABELS = {
    "zh": {"distance": "距{level}不足 {limit:g} 米", "residential": "位于居民住宅楼（院）内",
           "spacing": "与同类场所间距不足 {limit:g} 米", "zone": "距限制区域不足 {limit:g} 米",
           "inside_zone": "位于限制区域内"},
    "en": {"distance": "Less than {limit:g} m from a {level}", "residential": "Inside a residential building or compound",
           "spacing": "Less than {limit:g} m from a venue of its kind", "zone": "Less than {limit:g} m from a restricted zone",
           "inside_zone": "Inside a restricted zone"},
}  # fmt: skip


def _rule_label(rule_type: str, limit_m: float, level: str, language: str = "zh") -> str:
    if rule_type not in ("distance", "residential", "spacing"):
        rule_type = "zone" if limit_m > 0 else "inside_zone"
    level_name = (level_zh(level) or "学校") if language == "zh" else level_en(level)
    return _RULE_LABELS[language][rule_type].format(limit=limit_m, level=level_name)


def _finding_summary(f: dict) -> str:
    approx = "约" if f.get("approximate") else ""
    if f["rule_type"] == "residential":
        return f"位于{f['protected_name']}内（居民住宅）"
    if f["rule_type"] in ("lead", "barred"):
        return f["note"]
    if f["rule_type"] == "zone" and f["limit_m"] <= 0:
        return f"位于{f['protected_name']}内"
    what = "与" if f["rule_type"] == "spacing" else "距"
    method = METHOD_ZH.get(f["method"], f["method"])
    return (
        f"{what}{f['protected_name']} {approx}{f['distance_m']:.1f} 米，限值 {f['limit_m']:g} 米（{method}）"
    )


#: how a distance was measured, in English (METHOD_ZH in Chinese)
METHOD_EN = {"boundary": "nearest boundary", "gate-walk": "walking from the gate",
             "door-walk": "walking, gate to door", "inside": "inside", "surveyed": "surveyed on site"}  # fmt: skip


def _finding_summary_en(f: dict) -> str:
    """:func:`_finding_summary` in English."""
    if f["rule_type"] == "residential":
        return f"inside {f['protected_name']} (residential)"
    if f["rule_type"] in ("lead", "barred"):
        return f.get("note_en") or f["note"]
    if f["rule_type"] == "zone" and f["limit_m"] <= 0:
        return f"inside {f['protected_name']}"
    approx = "about " if f.get("approximate") else ""
    method = METHOD_EN.get(f["method"], f["method"])
    return f"{approx}{f['distance_m']:.1f} m from {f['protected_name']}, limit {f['limit_m']:g} m ({method})"


def _violation_findings(violations: pd.DataFrame) -> dict[tuple[str, str], list[dict]]:
    """Rule findings per venue key, as the dicts of the target frame's ``findings`` column."""
    out: dict[tuple[str, str], list[dict]] = {}
    if violations is None or violations.empty:
        return out
    found = violations[violations["violation"].astype(bool)] if "violation" in violations else violations
    for row in found.to_dict(orient="records"):
        geom = row.get("geometry")
        level = _text(row.get("site_level"))
        limit_m = _num(row.get("limit_m"))
        finding = {
            "rule": _text(row["rule"]),
            "rule_type": _text(row.get("rule_type")),
            "rule_label": _rule_label(_text(row.get("rule_type")), limit_m, level),
            "rule_label_en": _rule_label(_text(row.get("rule_type")), limit_m, level, "en"),
            "protected_id": _text(row.get("site_id")),
            "protected_name": _text(row.get("site_name")),
            "protected_level": level,
            "protected_kind": _text(row.get("site_kind")),
            "distance_m": _num(row.get("distance_m")),
            "limit_m": limit_m,
            "method": _text(row.get("method")),
            "shortfall_m": _num(row.get("shortfall_m")),
            "straight_m": _num(row.get("straight_m")),
            "approximate": bool(row.get("approximate")),
            "recheck": bool(row.get("recheck")),
            "evidence": geom.wkt if geom is not None and not geom.is_empty else None,
            "_venue": {
                "name": row.get("venue_name"),
                "licence_no": row.get("licence_no"),
                "status": row.get("venue_status"),
                "subdistrict": row.get("subdistrict"),
                "point": _first_point(geom),
            },
        }
        out.setdefault((_text(row["venue_kind"]), _text(row["venue_id"])), []).append(finding)
    return out


def _first_point(geom) -> shapely.Point | None:
    if geom is None or geom.is_empty:
        return None
    return shapely.Point(shapely.get_coordinates(geom)[0])


def _lead_findings(leads: pd.DataFrame | None) -> dict[tuple[str, str], list[dict]]:
    """Findings from reconciled leads: unlicensed leads, and licences suspended/revoked but operating."""
    out: dict[tuple[str, str], list[dict]] = {}
    if leads is None or len(leads) == 0:
        return out
    for row in leads.to_dict(orient="records"):
        status, register_status = _text(row.get("status")), _text(row.get("register_status"))
        source, when = _text(row.get("observed_source")), _text(row.get("observed_at"))
        seen = f"{source or '观测'}于{when or '近期'}发现"
        seen_en = f"seen {'on ' + when if when else 'recently'}{' (' + source + ')' if source else ''}"
        observed = _text(row.get("observed_name"))
        base = {"protected_id": "", "protected_name": "", "protected_level": "", "protected_kind": "",
                "limit_m": math.nan, "method": "", "shortfall_m": math.nan, "straight_m": math.nan,
                "approximate": False, "recheck": False, "evidence": None,
                "distance_m": _num(row.get("distance_m"))}  # fmt: skip
        point = row.get("geometry")
        if status == "unlicensed":
            candidate = _text(row.get("candidate_name"))
            note = f"无证经营线索：{seen}「{observed}」，登记册中无匹配"
            note_en = f"Unlicensed lead: “{observed}” {seen_en}, no match in the register"
            if candidate:
                note += f"（最接近：{candidate}，相似度 {_num(row.get('score')):.0f}"
                note_en += f" (closest: {candidate}, similarity {_num(row.get('score')):.0f}"
                distance = _num(row.get("distance_m"))
                note += f"，相距 {distance:.0f} 米）" if math.isfinite(distance) else "）"
                note_en += f", {distance:.0f} m apart)" if math.isfinite(distance) else ")"
            finding = {
                **base,
                "rule": LEAD_RULE,
                "rule_type": "lead",
                "rule_label": "无证经营线索",
                "rule_label_en": "Unlicensed lead",
                "note": note,
                "note_en": note_en,
            }
            venue = {"name": row.get("observed_name"), "licence_no": "", "status": "unlicensed",
                     "address": row.get("address"), "point": point}  # fmt: skip
            key = ("net_cafes", _text(row.get("observed_id")))
        elif status == "matched" and register_status in ("suspended", "revoked"):
            suspended = register_status == "suspended"
            label = "停业整顿期间仍在经营" if suspended else "许可证吊销/注销后仍在经营"
            note = f"{label}：{seen}「{observed}」（匹配度 {_num(row.get('score')):.0f}）"
            label_en = "Operating while suspended" if suspended else "Operating after the licence was revoked"
            note_en = f"{label_en}: “{observed}” {seen_en}, name match {_num(row.get('score')):.0f}"
            finding = {**base, "rule": BARRED_RULE, "rule_type": "barred", "rule_label": label, "note": note,
                       "rule_label_en": label_en, "note_en": note_en}  # fmt: skip
            venue = {"name": row.get("register_name"), "licence_no": row.get("licence_no"),
                     "status": register_status, "address": row.get("address"), "point": point}  # fmt: skip
            key = ("net_cafes", _text(row.get("register_id")))
        else:
            continue
        out.setdefault(key, []).append({**finding, "_venue": venue})
    return out


# ------------------------------------------------------------------ the target list
class _VenueIndex:
    """Venue rows by ``(kind, id)``: name, licence, status, address, sub-district, point (built once per kind)."""

    FIELDS = ("name", "licence_no", "status", "address", "subdistrict")

    def __init__(self, layers: Mapping[str, gpd.GeoDataFrame] | None) -> None:
        self.layers = layers or {}
        self._by_kind: dict[str, dict[str, dict]] = {}

    def get(self, key: tuple[str, str]) -> dict:
        kind, venue_id = key
        if kind not in self._by_kind:
            frame = self.layers.get(kind)
            rows: dict[str, dict] = {}
            if frame is not None and len(frame):
                columns = {
                    f: frame[f].tolist() if f in frame.columns else [None] * len(frame) for f in self.FIELDS
                }
                points = [
                    g.representative_point() if g is not None and not g.is_empty else None
                    for g in frame.geometry
                ]
                for n, vid in enumerate(frame["id"].astype(str)):
                    rows[vid] = {**{f: columns[f][n] for f in self.FIELDS}, "point": points[n]}
            self._by_kind[kind] = rows
        return self._by_kind[kind].get(venue_id, {})


def _known(field: str, value: Any) -> bool:
    """A venue attribute worth keeping: non-empty text, or a point."""
    return value is not None if field == "point" else bool(_text(value))


def _subdistrict_at(layers: Mapping[str, gpd.GeoDataFrame] | None, point) -> str:
    subs = (layers or {}).get("subdistricts")
    if subs is None or subs.empty or point is None:
        return ""
    inside = subs[subs.geometry.contains(point)]
    return _text(inside.iloc[0]["name"]) if len(inside) else ""


def build_targets(
    violations: pd.DataFrame | None,
    *,
    layers: Mapping[str, gpd.GeoDataFrame] | None = None,
    leads: pd.DataFrame | None = None,
    cases: Mapping[tuple[str, str], Any] | None = None,
    config: EnforcementConfig | None = None,
) -> gpd.GeoDataFrame:
    """One scored, ranked target per venue, carrying all its findings (WGS84 points).

    Parameters
    ----------
    violations
        :meth:`geo.violations.RuleEngine.violations` (rows with ``violation`` False are ignored).
    layers
        The workspace layers (kind → GeoDataFrame, WGS84): venue point, address, sub-district.
    leads
        ``geo.leads.reconcile`` output: ``unlicensed`` rows become targets, ``matched`` rows whose
        ``register_status`` is suspended / revoked add a finding to that venue.
    cases
        ``(kind, venue_id)`` → :class:`layers.cases.Case`: history terms of the score, surveyed
        distances, ``case_id`` and ``case_status``.
    config
        Weights and teams (default: :func:`load_config` without a workspace).

    Returns
    -------
    geopandas.GeoDataFrame
        Columns :data:`COLUMNS` and ``geometry``, ordered by ``rank`` (1 = most urgent).
    """
    config = config or load_config()
    cases = cases or {}
    grouped = _violation_findings(violations)
    index = _VenueIndex(layers)
    for key, found in _lead_findings(leads).items():
        grouped.setdefault(key, []).extend(found)
    records = []
    for key, found in grouped.items():
        case = cases.get(key)
        if case is not None and getattr(case, "surveyed_distance_m", None) is not None:
            found = apply_survey(found, float(case.surveyed_distance_m), getattr(case, "survey_report", ""))
        if not found:
            continue
        venue = {k: v for f in found for k, v in f["_venue"].items() if _known(k, v)}
        venue.update({k: v for k, v in index.get(key).items() if _known(k, v)})
        found = sorted(
            ({k: v for k, v in f.items() if k != "_venue"} for f in found), key=severity, reverse=True
        )
        worst = found[0]
        subdistrict = _text(venue.get("subdistrict")) or _subdistrict_at(layers, venue.get("point"))
        terms = score_terms(found, config, case)
        priority, reasons, reasons_en = score_total(terms), score_reasons(terms), score_reasons(terms, "en")
        records.append({
            "venue_id": key[1], "kind": key[0], "name": _text(venue.get("name")),
            "licence_no": _text(venue.get("licence_no")), "address": _text(venue.get("address")),
            "subdistrict": subdistrict, "team": config.team_of(subdistrict),
            "status": _text(venue.get("status")) or "licensed", "findings": found,
            "summary": "；".join(dict.fromkeys(_finding_summary(f) for f in found)),
            "protected": "；".join(dict.fromkeys(f["protected_name"] for f in found if f["protected_name"])),
            "distance_m": worst["distance_m"], "limit_m": worst["limit_m"], "method": worst["method"],
            "priority": priority, "priority_reasons": "；".join(reasons), "_shortfall": severity(worst)[1],
            "case_id": getattr(case, "case_id", None), "case_status": getattr(case, "status", None) or "",
            "rules": list(dict.fromkeys(f["rule"] for f in found)), "geometry": venue.get("point"),
            "summary_en": "; ".join(dict.fromkeys(_finding_summary_en(f) for f in found)),
            "priority_reasons_en": "; ".join(reasons_en),
        })  # fmt: skip
    if not records:
        empty = {c: pd.Series(dtype=object) for c in COLUMNS}
        return gpd.GeoDataFrame(empty, geometry=gpd.GeoSeries([], crs="EPSG:4326"), crs="EPSG:4326")
    frame = pd.DataFrame(records).sort_values(
        ["priority", "_shortfall", "kind", "venue_id"], ascending=[False, False, True, True], kind="stable"
    )
    frame["rank"] = np.arange(1, len(frame) + 1)
    frame["case_id"] = pd.array(frame["case_id"], dtype="Int64")
    frame["route_day"] = pd.array([None] * len(frame), dtype="Int64")
    frame["route_order"] = pd.array([None] * len(frame), dtype="Int64")
    out = gpd.GeoDataFrame(frame[COLUMNS], geometry=list(frame["geometry"]), crs="EPSG:4326")
    log.info("%d targets from %d venues with findings", len(out), len(grouped))
    return out.reset_index(drop=True)


def filter_targets(
    targets: gpd.GeoDataFrame,
    *,
    team: str | None = None,
    subdistrict: str | None = None,
    rule: str | None = None,
    kind: str | None = None,
    status: str | None = None,
    case_status: str | None = None,
    min_priority: float | None = None,
) -> gpd.GeoDataFrame:
    """The targets matching every filter given (``status`` is the licence status)."""
    keep = np.ones(len(targets), dtype=bool)
    for column, value in (("team", team), ("subdistrict", subdistrict), ("kind", kind), ("status", status),
                          ("case_status", case_status)):  # fmt: skip
        if value:
            keep &= (targets[column].astype(str) == value).to_numpy()
    if rule:
        keep &= np.array([rule in rules for rules in targets["rules"]], dtype=bool)
    if min_priority is not None:
        keep &= (targets["priority"].astype(float) >= float(min_priority)).to_numpy()
    return targets[keep]


def workspace_targets(
    workspace,
    violations: pd.DataFrame,
    layers: Mapping[str, gpd.GeoDataFrame],
    *,
    leads: pd.DataFrame | None = None,
    config: EnforcementConfig | None = None,
    network=None,
    sync: bool = True,
    user: str = "analysis",
    today=None,
) -> gpd.GeoDataFrame:
    """Targets of a workspace with their cases kept in step and each team's daily tours.

    Builds the targets with the cases as they stand (surveyed distances, history), brings the
    cases in line (:meth:`layers.cases.CaseBook.sync`, one transaction; skipped when ``sync``
    is False), scores again with the updated cases, and plans the tours.

    Parameters
    ----------
    workspace
        A :class:`layers.store.Workspace`.
    violations, layers, leads, config
        As for :func:`build_targets` (``config`` default: the workspace's settings).
    network
        A :class:`geo.network.WalkNetwork` for walking tours when ``config.walking``.
    sync
        Bring the cases in line with this run (False: only read them, e.g. a repeated page view).
    user
        Recorded in the history of cases the sync creates, reopens or resolves.
    today
        The date deadlines are compared with (default: today).
    """
    from geo.tour import plan_routes
    from layers.cases import CaseBook

    config = config or load_config(workspace.path)
    book = CaseBook(workspace, deadline_days=config.deadline_days, revisit_days=config.revisit_days)
    targets = build_targets(violations, layers=layers, leads=leads, cases=book.cases(), config=config)
    if sync:
        book.sync(
            targets[["kind", "venue_id", "name", "status"]].to_dict(orient="records"), user=user, today=today
        )
        targets = build_targets(violations, layers=layers, leads=leads, cases=book.cases(), config=config)
    if targets.empty:
        return targets
    return plan_routes(
        targets, stops_per_day=config.stops_per_day, network=network if config.walking else None
    )


__all__ = [
    "BARRED_RULE",
    "COLUMNS",
    "LEAD_RULE",
    "UNASSIGNED_TEAM",
    "EnforcementConfig",
    "apply_survey",
    "build_targets",
    "filter_targets",
    "load_config",
    "score",
    "workspace_targets",
]  # fmt: skip
