"""The violation map: findings of a rule profile drawn over schools, venues and sub-districts.

Each layer is one ``folium.GeoJson`` on a canvas-rendered map (see ``features``): schools by
level, the limit buffers (hidden until switched on), regulated venues, the findings (shortest
connecting line or walking route, labelled with the distance; recheck cases dashed, near
misses orange; approximate results hollow and marked ≈), sub-district outlines.  The same
findings feed the table beside the map and the name search.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from flask_babel import gettext as _

from geo.rules import Profile
from webmap.basemaps import Basemap, make_map, to_display
from webmap.i18n import format_distance
from webmap.labels import kind_label, level_label, method_label, rule_label, status_label
from webmap.maps.buffers import limit_buffers
from webmap.maps.features import geojson_layer, plain_text
from webmap.maps.legend import Legend

RED = "#c8161d"
ORANGE = "#e67e22"
GREY = "#7b8794"
BUFFER = "#1d4f91"
OUTLINE = "#52606d"
LEVEL_COLORS = {
    "primary": "#2e7d32",
    "junior": "#1565c0",
    "senior": "#6a1b9a",
    "nine_year": "#00838f",
    "complete": "#283593",
    "vocational": "#8d6e63",
    "special": "#ad1457",
    "kindergarten": "#f9a825",
}
RECHECK_DASH = "7 5"


@dataclass(frozen=True)
class Filters:
    """What the user narrowed the findings to (empty string = all)."""

    rule: str = ""
    kind: str = ""
    subdistrict: str = ""
    recheck_only: bool = False

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> Filters:
        return cls(
            rule=args.get("rule", ""),
            kind=args.get("kind", ""),
            subdistrict=args.get("subdistrict", ""),
            recheck_only=args.get("recheck") in ("1", "on", "true"),
        )


@dataclass
class ViolationMap:
    """The built map plus what the page shows beside it."""

    map: folium.Map
    rows: list[dict[str, Any]] = field(default_factory=list)
    index: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def filter_findings(findings: gpd.GeoDataFrame, filters: Filters) -> gpd.GeoDataFrame:
    """The findings to show: violations and recheck cases matching ``filters``."""
    keep = findings["violation"].astype(bool) | findings["recheck"].astype(bool)
    if filters.rule:
        keep &= findings["rule"] == filters.rule
    if filters.kind:
        keep &= findings["venue_kind"] == filters.kind
    if filters.subdistrict:
        keep &= findings["subdistrict"] == filters.subdistrict
    if filters.recheck_only:
        keep &= findings["recheck"].astype(bool)
    return findings[keep.fillna(False).to_numpy(dtype=bool)]


def _num(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if np.isnan(out) else out


def _distance_text(row: pd.Series) -> str:
    if row["rule_type"] != "distance":
        return _("inside")
    text = format_distance(_num(row["distance_m"]))
    return f"≈{text}" if bool(row["approximate"]) else text


def _finding_style(feature: dict) -> dict:
    p = feature["properties"]
    return {
        "color": RED if p["_violation"] else ORANGE,
        "weight": 3.5 if p["_violation"] else 3,
        "opacity": 0.95,
        "dashArray": RECHECK_DASH if p["_recheck"] else None,
    }


def _venue_style(feature: dict) -> dict:
    p = feature["properties"]
    color = {2: RED, 1: ORANGE}.get(p["_state"], GREY)
    hollow = bool(p["_approx"])
    return {
        "color": color,
        "fill": True,
        "weight": 2.5 if hollow else 1.5,
        "fillColor": color,
        "fillOpacity": 0 if hollow else 0.85,
        "radius": 6 if p["_state"] else 4,
    }


def _school_style(feature: dict) -> dict:
    p = feature["properties"]
    color = LEVEL_COLORS.get(p["_level"], GREY)
    return {
        "color": color,
        "weight": 1.5,
        "fill": True,
        "fillColor": color,
        "fillOpacity": 0 if p["_approx"] else 0.3,
        "dashArray": "3 3" if p["_approx"] else None,
        "radius": 7,
    }


def _findings_layer(shown: gpd.GeoDataFrame, profile: Profile) -> folium.GeoJson:
    rules = {r.id: r for r in profile.rules}
    labels = [_distance_text(row) for _i, row in shown.iterrows()]
    columns = {
        "label": labels,
        "venue_name": shown["venue_name"],
        "licence_no": shown["licence_no"],
        "status": [status_label(s) for s in shown["venue_status"]],
        "site_name": shown["site_name"],
        "level": [
            level_label(v) if k == "schools" else ""
            for v, k in zip(shown["site_level"], shown["site_kind"], strict=True)
        ],
        "distance": labels,
        "limit": [
            format_distance(_num(v)) if t == "distance" else ""
            for v, t in zip(shown["limit_m"], shown["rule_type"], strict=True)
        ],
        "rule": [rule_label(rules[r]) if r in rules else r for r in shown["rule"]],
        "method": [method_label(m) for m in shown["method"]],
        "approx": shown["approx_reason"],
        "state": [_state_text(v, r) for v, r in zip(shown["violation"], shown["recheck"], strict=True)],
        "basis": shown["basis"],
        "_violation": shown["violation"].astype(bool).tolist(),
        "_recheck": shown["recheck"].astype(bool).tolist(),
    }
    popup = {
        "venue_name": _("Venue"),
        "licence_no": _("Licence no."),
        "status": _("Licence status"),
        "site_name": _("Protected site"),
        "level": _("School level"),
        "distance": _("Distance"),
        "limit": _("Limit"),
        "rule": _("Rule"),
        "method": _("Measured as"),
        "approx": _("Approximate"),
        "state": _("Finding"),
        "basis": _("Legal basis"),
    }
    return geojson_layer(
        shown,
        name=_("Findings (%(n)s)", n=len(shown)),
        columns=columns,
        popup=popup,
        style=_finding_style,
        label="label",
    )


def _state_text(violation: Any, recheck: Any) -> str:
    if bool(violation):
        return _("Violation, field recheck advised") if bool(recheck) else _("Violation")
    return _("Near the limit, field recheck advised")


def _venues(engine, profile: Profile, findings: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    kinds = sorted({k for r in profile.rules for k in r.regulated if ":" not in k})
    parts = []
    for kind in kinds:
        frame = engine.layers.get(kind)
        if frame is not None and not frame.empty:
            parts.append(frame.assign(venue_kind=kind))
    if not parts:
        return gpd.GeoDataFrame({"id": [], "venue_kind": []}, geometry=[], crs=4326)
    venues = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=4326)
    state = pd.Series(0, index=venues.index)
    approx = pd.Series(False, index=venues.index)
    key = venues["venue_kind"] + "/" + venues["id"]
    fkey = findings["venue_kind"] + "/" + findings["venue_id"]
    viol = set(fkey[findings["violation"].astype(bool)])
    rech = set(fkey[findings["recheck"].astype(bool)])
    appr = set(fkey[findings["approximate"].astype(bool)])
    state[key.isin(rech)] = 1
    state[key.isin(viol)] = 2
    approx[key.isin(appr)] = True
    return venues.assign(_state=state.to_numpy(), _approx=approx.to_numpy())


def _field(frame: pd.DataFrame, name: str) -> Any:
    return frame[name] if name in frame.columns else [""] * len(frame)


def build_violation_map(
    engine, findings: gpd.GeoDataFrame, basemap: Basemap, *, filters: Filters | None = None
) -> ViolationMap:
    """The violation map of one profile's findings.

    Parameters
    ----------
    engine
        A :class:`geo.violations.RuleEngine` (its layers, WGS84, and profile).
    findings
        ``engine.violations(include_near=True)`` (WGS84; never shifted here).
    basemap
        The base map; GCJ-02 base maps get the data shifted for display only.
    filters
        Narrow the findings shown (the other layers stay whole).

    Returns
    -------
    ViolationMap
    """
    filters = filters or Filters()
    profile = engine.profile
    shown = filter_findings(findings, filters)
    schools = engine.layers.get("schools")
    subdistricts = engine.layers.get("subdistricts")
    venues = _venues(engine, profile, findings)
    extent = [f for f in (subdistricts, schools, venues) if f is not None and not f.empty]
    bounds = pd.concat([f.geometry for f in extent]).total_bounds if extent else None
    m = make_map(bounds=bounds, basemap=basemap)

    if subdistricts is not None and not subdistricts.empty:
        geojson_layer(
            to_display(subdistricts, basemap),
            name=_("Sub-districts"),
            columns={"name": subdistricts["name"]},
            tooltip={"name": ""},
            style=lambda f: {"color": OUTLINE, "weight": 1.5, "fill": False, "dashArray": "6 4"},
        ).add_to(m)
    if schools is not None and not schools.empty:
        approx = _field(schools, "approximate")
        geojson_layer(
            to_display(schools, basemap),
            name=_("Schools (%(n)s)", n=len(schools)),
            columns={
                "name": schools["name"],
                "level": [level_label(v) for v in schools["level"]],
                "address": _field(schools, "address"),
                "students": _field(schools, "students"),
                "approx": [
                    _("given as a point; distances from the point") if bool(a) else "" for a in approx
                ],
                "_level": [plain_text(v) for v in schools["level"]],
                "_approx": [bool(a) for a in approx],
            },
            popup={
                "name": _("School"),
                "level": _("School level"),
                "address": _("Address"),
                "students": _("Students"),
                "approx": _("Approximate"),
            },
            tooltip={"name": ""},
            style=_school_style,
            marker=folium.CircleMarker(radius=7),
        ).add_to(m)
        buffers = limit_buffers(engine.layers, profile)
        if not buffers.empty:
            rules = {r.id: r for r in profile.rules}
            geojson_layer(
                to_display(buffers, basemap),
                name=_("Limit buffers"),
                columns={
                    "site_name": buffers["site_name"],
                    "limit": [format_distance(v) for v in buffers["limit_m"]],
                    "rule": ["；".join(rule_label(rules[r]) for r in ids) for ids in buffers["rule"]],
                },
                tooltip={"site_name": _("Protected site"), "limit": _("Limit"), "rule": _("Rule")},
                style=lambda f: {"color": BUFFER, "weight": 1, "fillColor": BUFFER, "fillOpacity": 0.06},
                show=False,
            ).add_to(m)
    if not venues.empty:
        geojson_layer(
            to_display(venues, basemap),
            name=_("Regulated venues (%(n)s)", n=len(venues)),
            columns={
                "name": venues["name"],
                "kind": [kind_label(k) for k in venues["venue_kind"]],
                "licence_no": _field(venues, "licence_no"),
                "status": [status_label(s) for s in _field(venues, "status")],
                "address": _field(venues, "address"),
                "_state": venues["_state"].tolist(),
                "_approx": venues["_approx"].tolist(),
            },
            popup={
                "name": _("Venue"),
                "kind": _("Kind"),
                "licence_no": _("Licence no."),
                "status": _("Licence status"),
                "address": _("Address"),
            },
            tooltip={"name": ""},
            style=_venue_style,
            marker=folium.CircleMarker(radius=5),
        ).add_to(m)
    shown_display = to_display(shown, basemap)
    if not shown.empty:
        _findings_layer(shown_display, profile).add_to(m)
    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    m.add_child(Legend(_("Legend"), _legend_items(schools)))
    return ViolationMap(
        map=m,
        rows=_table_rows(shown, shown_display, profile),
        index=_search_index(schools, venues, basemap),
        counts={
            "violations": int(shown["violation"].astype(bool).sum()),
            "recheck": int(shown["recheck"].astype(bool).sum()),
            "approximate": int(shown["approximate"].astype(bool).sum()),
        },
    )


def _legend_items(schools: gpd.GeoDataFrame | None) -> list[tuple[str, dict]]:
    items = [
        (_("Violation"), {"color": RED, "shape": "line"}),
        (_("Violation, field recheck advised"), {"color": RED, "shape": "dash"}),
        (_("Near the limit, field recheck advised"), {"color": ORANGE, "shape": "dash"}),
        (_("Venue with a violation"), {"color": RED, "fill": RED, "shape": "dot"}),
        (_("Venue without findings"), {"color": GREY, "fill": GREY, "shape": "dot"}),
        (_("Approximate result (hollow, ≈)"), {"color": RED, "fill": "", "shape": "dot"}),
        (_("Limit buffer"), {"color": BUFFER, "fill": "rgba(29,79,145,.12)", "shape": "area"}),
    ]
    if schools is not None and not schools.empty:
        for level in [lv for lv in LEVEL_COLORS if lv in set(schools["level"])]:
            color = LEVEL_COLORS[level]
            items.append((level_label(level), {"color": color, "fill": color + "55", "shape": "area"}))
    return items


def _table_rows(shown: gpd.GeoDataFrame, display: gpd.GeoDataFrame, profile: Profile) -> list[dict[str, Any]]:
    rules = {r.id: r for r in profile.rules}
    mids = shapely.line_interpolate_point(np.asarray(display.geometry.values), 0.5, normalized=True)
    rows = []
    for (_i, row), mid in zip(shown.iterrows(), mids, strict=True):
        distance = _num(row["distance_m"])
        rows.append(
            {
                "venue": plain_text(row["venue_name"]),
                "kind": kind_label(row["venue_kind"]),
                "licence_no": plain_text(row["licence_no"]),
                "site": plain_text(row["site_name"]),
                "rule": rule_label(rules[row["rule"]]) if row["rule"] in rules else row["rule"],
                "distance": _distance_text(row),
                "distance_m": distance if distance is not None else 0.0,
                "inside": row["rule_type"] != "distance",
                "violation": bool(row["violation"]),
                "recheck": bool(row["recheck"]),
                "approximate": bool(row["approximate"]),
                "subdistrict": plain_text(row["subdistrict"]),
                "lat": round(mid.y, 6),
                "lon": round(mid.x, 6),
            }
        )
    rows.sort(key=lambda r: (not r["violation"], r["inside"], r["distance_m"]))
    return rows


def _search_index(schools, venues, basemap: Basemap) -> list[dict[str, Any]]:
    out = []
    for frame, kinds in ((schools, None), (venues, "venue_kind")):
        if frame is None or frame.empty:
            continue
        points = to_display(frame.geometry.representative_point(), basemap)
        labels = [kind_label(k) for k in frame[kinds]] if kinds else [kind_label("schools")] * len(frame)
        for name, label, pt in zip(frame["name"], labels, points, strict=True):
            out.append({"n": plain_text(name), "k": label, "lat": round(pt.y, 6), "lon": round(pt.x, 6)})
    return out
