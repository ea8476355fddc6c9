"""The coverage page: who is within reach of cultural facilities, and where new ones should go.

``GET /coverage/`` (every signed-in user) takes ``?type=`` (a facility type or ``any``),
``?method=`` (``straight`` / ``walk``), ``?cutoff=`` (``5 min`` … ``standard``) and
``?basemap=``; it shows the residential units coloured by coverage over the service areas
(circles, or the roads within walking reach), the table per sub-district, the uncovered
units, the compliance lists and the 2SFCA summary.  ``POST /coverage/site`` (analysts) runs
MCLP or LSCP (:func:`geo.siting.site_facilities`) and draws the chosen sites in build order.
Both call the same :mod:`geo` functions as ``civicmap coverage`` / ``site-facilities``.
"""

from __future__ import annotations

import logging
import time

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from flask import Blueprint, current_app, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from geo.accessibility import accessibility
from geo.coverage import (
    ANY,
    DISTRICT_TOTAL,
    WALK_SNAP_M,
    compute_coverage,
    free_for_minors_violations,
    load_standards,
    subdistricts_without_centre,
    unit_points,
)
from geo.crs import metric_crs
from layers.errors import CivicmapError
from layers.schema import FACILITY_TYPES
from webmap.accounts import audit
from webmap.analysis import cached, get_engine
from webmap.assets import map_parts
from webmap.basemaps import active_basemap, make_map, to_display
from webmap.i18n import format_distance
from webmap.maps.features import geojson_layer
from webmap.maps.legend import Legend
from webmap.nav import NAV_LABELS, NAV_ORDER, nav_entry
from webmap.security import require_role

log = logging.getLogger(__name__)

bp = Blueprint("coverage", __name__, url_prefix="/coverage")
nav_entry(bp, ".index", NAV_LABELS["coverage"], order=NAV_ORDER["coverage"])

TYPE_LABELS = {
    ANY: _l("Any cultural facility"),
    "library": _l("Library"),
    "cultural_centre": _l("Cultural centre"),
    "cultural_station": _l("Cultural station"),
    "service_point": _l("Grass-roots service point"),
    "theatre": _l("Theatre"),
    "cinema": _l("Cinema"),
    "museum": _l("Museum"),
    "heritage_site": _l("Heritage site"),
    "patriotic_base": _l("Patriotic education base"),
    "city_study_room": _l("City study room"),
    "other": _l("Other facility"),
}
METHOD_LABELS = {"straight": _l("Straight line"), "walk": _l("Walking on roads")}
COVERED, UNCOVERED, NEW, AREA, SITE = "#2f8a3e", "#c8161d", "#13a8a8", "#1d4f91", "#d48806"
UNIT_COLORS = {"yes": COVERED, "no": UNCOVERED, "new": NEW}
MAX_UNCOVERED_ROWS = 100
MAX_SITES = 30


def _cutoff_label(label: str) -> str:
    if label == "standard":
        return _("Type standard")
    number, _sep, unit = label.partition(" ")
    return _("%(n)s min", n=number) if unit == "min" else _("%(n)s m", n=number)


def _district_label(name: str) -> str:
    return _("District") if name == DISTRICT_TOTAL else name


class Options:
    """The page's query, checked against the allowed values."""

    def __init__(self, args) -> None:
        self.type = args.get("type") or ANY
        self.method = args.get("method") or "straight"
        self.cutoff = args.get("cutoff") or "15 min"
        if self.type not in TYPE_LABELS:
            raise CivicmapError(f"type = {self.type!r}; expected one of {sorted(TYPE_LABELS)}")
        if self.method not in METHOD_LABELS:
            raise CivicmapError(f"method = {self.method!r}; expected one of {sorted(METHOD_LABELS)}")


def _layers() -> dict[str, gpd.GeoDataFrame]:
    return get_engine().layers


def _reach_m(layers, points: gpd.GeoDataFrame, cutoff, method: str, standards) -> np.ndarray:
    """Reach of each of ``points`` (``type``, ``subdistrict``, optional ``facility_level``) in
    its own setting, metres: a library's level picks its radius under the standard cutoff."""
    sub, flags = layers.get("subdistricts"), {}
    if sub is not None and "urban" in sub.columns:
        flags = dict(zip(sub["name"].astype(str), sub["urban"].fillna(True).astype(bool), strict=True))
    urban = np.array([flags.get(str(s), True) for s in points["subdistrict"]], dtype=bool)
    levels = points["facility_level"] if "facility_level" in points.columns else [None] * len(points)
    pairs = zip(points["type"].astype(str), levels, strict=True)
    return np.array(
        [
            standards.threshold_m(cutoff, t, urban[i : i + 1], method, facility_level=lv)[0]
            for i, (t, lv) in enumerate(pairs)
        ],
        dtype=float,
    )


def _service_areas(
    layers, points: gpd.GeoDataFrame, reach: np.ndarray, method: str
) -> gpd.GeoDataFrame | None:
    """Circles (straight line) or reached roads (walking) of ``reach`` metres around ``points``."""
    if points.empty:
        return None
    centres = points.geometry.reset_index(drop=True)
    if method == "walk":
        from geo.network import WalkNetwork
        from geo.service_areas import service_area_lines

        net = WalkNetwork.from_roads(layers["roads"], max_snap_m=WALK_SNAP_M)
        lines = [service_area_lines(net, centres[reach == r], float(r)) for r in np.unique(reach)]
        return gpd.GeoDataFrame({"reach_m": np.unique(reach)}, geometry=lines, crs="EPSG:4326")
    crs = metric_crs(centres.values)
    circles = centres.to_crs(crs).buffer(reach, quad_segs=12).to_crs("EPSG:4326")
    return gpd.GeoDataFrame({"reach_m": reach}, geometry=circles.to_numpy(), crs="EPSG:4326")


def _area_layer(areas, basemap, name: str, color: str, walk: bool):
    style = {
        "color": color,
        "weight": 3 if walk else 1,
        "opacity": 0.7,
        "fillColor": color,
        "fillOpacity": 0.06,
    }
    return geojson_layer(to_display(areas, basemap), name=name, columns={}, style=lambda _f: style)


def _build_map(layers, result, options, standards, sites=None, new_unit_ids=None):
    basemap = active_basemap(current_app.config, request.args.get("basemap"))
    units = result.units
    m = make_map(bounds=units.total_bounds, basemap=basemap)
    walk = options.method == "walk"
    cutoff = next(c for c in result.cutoffs if c.label == options.cutoff)
    facilities = layers["cultural_facilities"]
    types = list(standards.any_types) if options.type == ANY else [options.type]
    shown = facilities[facilities["type"].isin(types)]
    existing = gpd.GeoDataFrame(
        {
            "type": shown["type"].astype(str).to_numpy(),
            "subdistrict": shown.get("subdistrict", pd.Series("", index=shown.index)).to_numpy(),
            "facility_level": shown.get("facility_level", pd.Series(None, index=shown.index)).to_numpy(),
        },
        geometry=unit_points(shown).to_numpy(),
        crs="EPSG:4326",
    )
    reach = _reach_m(layers, existing, cutoff, options.method, standards)
    areas = _service_areas(layers, existing, reach, options.method)
    if areas is not None:
        _area_layer(areas, basemap, _("Service areas"), AREA, walk).add_to(m)
    if sites is not None and not sites.empty:
        new_sites = sites.assign(type=options.type)
        new_reach = _reach_m(layers, new_sites, cutoff, options.method, standards)
        new_areas = _service_areas(layers, new_sites, new_reach, options.method)
        _area_layer(new_areas, basemap, _("Service areas of proposed sites"), SITE, walk).add_to(m)
    hit = result.covered[(options.type, options.cutoff)]
    newly = set(new_unit_ids or ())
    dist = units[f"nearest_m:{options.type}"].to_numpy(dtype=float)
    columns = {
        "name": units["name"],
        "subdistrict": units["subdistrict"],
        "population": units["population"],
        "distance": [format_distance(d) if np.isfinite(d) else "—" for d in dist],
        "_state": [
            "new" if i in newly else "yes" if h else "no" for i, h in zip(units["id"], hit, strict=True)
        ],
    }
    geojson_layer(
        to_display(units[["geometry"]], basemap),
        name=_("Residential units"),
        columns=columns,
        tooltip={
            "name": _("Residential unit"),
            "subdistrict": _("Sub-district"),
            "population": _("Population"),
            "distance": _("Nearest facility"),
        },
        marker=folium.CircleMarker(radius=5, weight=1, fill=True, fill_opacity=0.85),
        style=lambda f: {"color": "#ffffff", "fillColor": UNIT_COLORS[f["properties"]["_state"]]},
    ).add_to(m)
    if not shown.empty:
        geojson_layer(
            to_display(gpd.GeoDataFrame(geometry=unit_points(shown)), basemap),
            name=_("Facilities"),
            columns={
                "name": shown["name"],
                "type": [str(TYPE_LABELS[t]) for t in shown["type"]],
                "reach": [format_distance(r) for r in reach],
            },
            tooltip={"name": _("Facility"), "type": _("Type"), "reach": _("Reach")},
            marker=folium.CircleMarker(radius=6, weight=2, fill=True, fill_opacity=1),
            style=lambda _f: {"color": AREA, "fillColor": "#ffffff"},
        ).add_to(m)
    items = [
        (_("Covered"), {"color": "#ffffff", "fill": COVERED, "shape": "dot"}),
        (_("Not covered"), {"color": "#ffffff", "fill": UNCOVERED, "shape": "dot"}),
        (_("Facility"), {"color": AREA, "fill": "#ffffff", "shape": "dot"}),
        (
            _("Service area"),
            {"color": AREA, "fill": "", "shape": "line" if options.method == "walk" else "area"},
        ),
    ]
    if sites is not None and not sites.empty:
        geojson_layer(
            to_display(sites[["geometry"]], basemap),
            name=_("Proposed sites"),
            columns={"order": sites["order"], "added": sites["marginal_population"]},
            tooltip={"order": _("Build order"), "added": _("Residents added")},
            marker=folium.CircleMarker(radius=9, weight=3, fill=True, fill_opacity=0.9),
            style=lambda _f: {"color": "#ffffff", "fillColor": SITE},
        ).add_to(m)
        items.append((_("Proposed site"), {"color": "#ffffff", "fill": SITE, "shape": "dot"}))
        items.append((_("Newly covered"), {"color": "#ffffff", "fill": NEW, "shape": "dot"}))
    m.add_child(Legend(_("Coverage"), items))
    folium.LayerControl(collapsed=True).add_to(m)
    return m, basemap


def _rows(table) -> list[dict]:
    return [
        {
            "subdistrict": _district_label(r.subdistrict),
            "population": int(r.population),
            "covered": int(r.covered),
            "share": float(r.share),
            "total": r.subdistrict == DISTRICT_TOTAL,
        }
        for r in table.itertuples()
    ]


def _render(options: Options, siting=None, siting_form=None, status: int = 200):
    started = time.perf_counter()
    layers = _layers()
    standards = load_standards()
    if layers.get("residential") is None or layers.get("cultural_facilities") is None:
        return render_template("coverage/empty.html"), 200
    types = None if options.type == ANY else [options.type]
    result = cached(
        ("coverage", options.method, options.type),  # the shipped standards (load_standards())
        lambda: compute_coverage(layers, method=options.method, standards=standards, types=types),
    )
    if options.cutoff not in [c.label for c in result.cutoffs]:
        raise CivicmapError(
            f"cutoff = {options.cutoff!r}; expected one of {[c.label for c in result.cutoffs]}"
        )
    uncovered = result.uncovered(options.type, options.cutoff)
    catchment_m = standards.circle_radius_m["urban"][max(standards.cutoff_minutes)]
    access = cached(("accessibility", catchment_m), lambda: accessibility(layers, catchment_m=catchment_m))
    facilities = layers["cultural_facilities"]
    subdistricts = layers.get("subdistricts")
    m, _basemap = _build_map(
        layers,
        result,
        options,
        standards,
        sites=None if siting is None else siting.sites,
        new_unit_ids=None if siting is None else siting.new_unit_ids,
    )
    context = {
        "map": map_parts(m),
        "options": options,
        "type_choices": [(k, str(v)) for k, v in TYPE_LABELS.items()],
        "method_choices": [(k, str(v)) for k, v in METHOD_LABELS.items()],
        "cutoff_choices": [(c.label, _cutoff_label(c.label)) for c in result.cutoffs],
        "site_types": [(k, str(TYPE_LABELS[k])) for k in FACILITY_TYPES],
        "rows": _rows(result.table(options.type, options.cutoff)),
        "uncovered": [
            {
                "name": r.name,
                "subdistrict": r.subdistrict,
                "population": int(r.population),
                "distance": format_distance(r.distance_m) if np.isfinite(r.distance_m) else "—",
                "off_network": r.note == "off_network",
            }
            for r in uncovered.head(MAX_UNCOVERED_ROWS).itertuples()
        ],
        "uncovered_total": len(uncovered),
        "not_free": free_for_minors_violations(facilities, standards).to_dict("records"),
        "no_centre": subdistricts_without_centre(facilities, subdistricts, standards)
        if subdistricts is not None
        else [],
        "access": {
            "gini": access.gini,
            "catchment": format_distance(access.catchment_m),
            "rows": [
                {"subdistrict": _district_label(r.subdistrict), "score": r.mean_score_per_1000}
                for r in access.by_subdistrict.itertuples()
            ],
        },
        "siting": siting,
        "siting_rows": [] if siting is None else _siting_rows(siting),
        "siting_form": siting_form
        or {
            "type": "service_point",
            "p": 3,
            "method": options.method,
            "goal": "p",
            "target": 0.95,
        },
        "type_label": str(TYPE_LABELS[options.type]),
    }
    log.info(
        "coverage page (%s, %s, %s) built in %.2f s",
        options.type,
        options.method,
        options.cutoff,
        time.perf_counter() - started,
    )
    return render_template("coverage/index.html", **context), status


def _siting_rows(siting) -> list[dict]:
    return [
        {
            "order": int(r.order),
            "subdistrict": r.subdistrict,
            "added": int(r.marginal_population),
            "cumulative": int(r.cumulative_population),
            "lon": r.geometry.x,
            "lat": r.geometry.y,
        }
        for r in siting.sites.itertuples()
    ]


@bp.get("/")
def index():
    """Coverage map, tables and compliance lists."""
    try:
        options = Options(request.args)
        return _render(options)
    except CivicmapError as exc:
        return render_template("error.html", code=400, message=str(exc)), 400


@bp.post("/site")
@require_role("analyst")
def site():
    """Run MCLP (``goal=p``) or LSCP (``goal=target``) and draw the chosen sites."""
    from geo.siting import site_facilities

    form = request.form
    siting_form = {
        "type": form.get("type", ""),
        "method": form.get("method", "straight"),
        "goal": form.get("goal", "p"),
        "p": form.get("p", ""),
        "target": form.get("target", ""),
    }
    options = Options(
        {
            "type": siting_form["type"] if siting_form["type"] in FACILITY_TYPES else ANY,
            "method": siting_form["method"],
            "cutoff": "standard",
        }
    )
    try:
        if siting_form["type"] not in FACILITY_TYPES:
            raise CivicmapError(f"type = {siting_form['type']!r}; expected one of {sorted(FACILITY_TYPES)}")
        p = target = None
        if siting_form["goal"] == "target":
            target = _number(siting_form["target"], _("Target share"), 0.0, 1.0)
        else:
            p = int(_number(siting_form["p"], _("New sites"), 1, MAX_SITES))
        result = site_facilities(
            _layers(), siting_form["type"], p=p, target_share=target, method=options.method
        )
    except CivicmapError as exc:
        return _render(options, siting_form={**siting_form, "error": str(exc)}, status=400)
    audit(
        "coverage.site",
        f"{siting_form['type']} {options.method} p={p} target={target}: {len(result.sites)} sites",
    )
    return _render(options, siting=result, siting_form=siting_form)


def _number(text: str, what: str, low: float, high: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise CivicmapError(_("%(what)s: %(value)s is not a number", what=what, value=repr(text))) from None
    if not low < value <= high if low == 0 else not low <= value <= high:
        raise CivicmapError(
            _("%(what)s: %(value)s is outside %(low)s–%(high)s", what=what, value=text, low=low, high=high)
        )
    return value
