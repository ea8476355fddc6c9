"""The licence pre-check counter: may a venue of this kind open here, under this profile?

Counter staff pick the venue kind and the rule profile, then click the map or type the
applicant's coordinates in whatever datum they came in (a Baidu pick-point gives BD-09, Amap
GCJ-02, a survey CGCS2000 or a Gauss–Krüger EPSG zone).  The answer — 合格 / 不合格 / 需复核 —
lists every rule with the conflicting sites, their distances, the measuring method and the
shortfall, and is drawn on the map by ``static/precheck.js``.

``POST /precheck/`` is a plain form that re-renders the page (works without JavaScript);
``POST /precheck/check`` answers the map click as JSON (CSRF token in ``X-CSRFToken``).  Both
call :func:`run_check`, which calls :func:`geo.precheck.check_site` on the cached engine.
"""

from __future__ import annotations

import json
import logging
import math
import time
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime

import shapely
from flask import Blueprint, current_app, get_template_attribute, jsonify, render_template, request
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from geo.crs import parse_crs, to_wgs84
from geo.precheck import check_site
from layers.errors import CivicmapError, CRSError
from webmap.analysis import default_profile_name, get_engine, get_profile, profile_names
from webmap.assets import map_parts
from webmap.basemaps import active_basemap, basemap_choices, make_map, to_display
from webmap.i18n import format_distance
from webmap.labels import (
    kind_label,
    level_label,
    method_label,
    profile_title,
    rule_basis,
    rule_label,
    verdict_label,
)
from webmap.nav import NAV_LABELS, NAV_ORDER, nav_entry

log = logging.getLogger(__name__)

bp = Blueprint("precheck", __name__, url_prefix="/precheck")
nav_entry(bp, ".index", NAV_LABELS["precheck"], order=NAV_ORDER["precheck"])

DEFAULT_KIND = "net_cafes"
#: the datums offered in the form; "epsg" means "the EPSG code typed beside it"
DATUMS = (
    ("wgs84", _l("WGS84 (GPS)")),
    ("cgcs2000", _l("CGCS2000 (survey data)")),
    ("gcj02", _l("GCJ-02 (Amap, Tencent)")),
    ("bd09", _l("BD-09 (Baidu)")),
    ("epsg", _l("Other: EPSG code")),
)
CHINA_LON = (73.0, 136.0)
CHINA_LAT = (3.0, 54.0)
#: the district extent used when a workspace holds no layer yet
FALLBACK_BOUNDS = (73.5, 18.0, 135.0, 53.5)


class InputError(CivicmapError):
    """A counter input the check cannot use; the message is for the clerk."""


@dataclass
class Query:
    """What the clerk asked, as typed (kept to fill the form again)."""

    kind: str
    profile: str
    x: str = ""
    y: str = ""
    datum: str = "wgs84"
    epsg: str = ""
    basemap: str = ""

    @classmethod
    def from_values(cls, values) -> Query:
        get = lambda key, default="": str(values.get(key) or default).strip()  # noqa: E731
        return cls(
            kind=get("kind", DEFAULT_KIND),
            profile=get("profile", default_profile_name()),
            x=get("x"),
            y=get("y"),
            datum=get("datum", "wgs84").lower(),
            epsg=get("epsg"),
            basemap=get("basemap"),
        )

    @property
    def datum_spec(self) -> str:
        if self.datum != "epsg":
            return self.datum
        code = self.epsg.upper().removeprefix("EPSG:").strip()
        return f"EPSG:{code}"

    @property
    def datum_text(self) -> str:
        labels = dict(DATUMS)
        return self.datum_spec if self.datum == "epsg" else str(labels.get(self.datum, self.datum))


def kinds_of(profile) -> list[str]:
    """Venue kinds a profile has rules for, in rule order."""
    return list(dict.fromkeys(k for r in profile.rules for k in r.regulated))


def _number(text: str, what: str) -> float:
    try:
        value = float(text.replace("，", ",").replace(" ", ""))
    except ValueError:
        raise InputError(_("%(what)s: %(value)r is not a number.", what=what, value=text)) from None
    if not math.isfinite(value):
        raise InputError(_("%(what)s: %(value)r is not a number.", what=what, value=text))
    return value


def parse_location(q: Query) -> tuple[float, float, object]:
    """The typed coordinates as numbers and the parsed datum; :class:`InputError` when unusable."""
    x_text, y_text = q.x, q.y
    if x_text and not y_text and ("," in x_text or "，" in x_text):
        x_text, _sep, y_text = x_text.replace("，", ",").partition(",")
    if not x_text or not y_text:
        raise InputError(_("Enter both coordinates, or click the map."))
    x, y = _number(x_text, _("Longitude / X")), _number(y_text, _("Latitude / Y"))
    if q.datum not in dict(DATUMS):
        raise InputError(_("Unknown datum %(datum)r.", datum=q.datum))
    try:
        datum = parse_crs(q.datum_spec)
    except CRSError:
        raise InputError(
            _("The coordinate system %(datum)r is not known; use WGS84, CGCS2000, GCJ-02, BD-09 or an EPSG code such "
              "as EPSG:4547.", datum=q.datum_spec)
        ) from None  # fmt: skip
    try:
        lon_a, lat_a = to_wgs84([x], [y], datum)
        lon, lat = float(lon_a[0]), float(lat_a[0])
    except (CRSError, ValueError):
        lon = lat = math.nan
    inside = CHINA_LON[0] <= lon <= CHINA_LON[1] and CHINA_LAT[0] <= lat <= CHINA_LAT[1]
    if not inside:
        hint = ""
        if datum.is_geographic and CHINA_LON[0] <= y <= CHINA_LON[1] and CHINA_LAT[0] <= x <= CHINA_LAT[1]:
            hint = " " + _("Longitude and latitude seem swapped.")
        raise InputError(
            _(
                "The location (%(x)s, %(y)s) in %(datum)s is not in China.",
                x=x_text,
                y=y_text,
                datum=q.datum_text,
            )
            + hint
        )
    return x, y, datum


def run_check(q: Query) -> dict:
    """Check one location; the result as the template and the map script use it.

    Raises
    ------
    InputError
        For coordinates, datum, kind or profile the clerk has to correct.
    """
    if q.profile not in profile_names():
        raise InputError(_("Unknown rule profile %(name)r.", name=q.profile))
    engine = get_engine(q.profile)
    if not engine.profile.rules_for(q.kind):
        raise InputError(
            _("The profile %(profile)s has no rule for %(kind)s.",
              profile=profile_title(engine.profile), kind=kind_label(q.kind))
        )  # fmt: skip
    x, y, datum = parse_location(q)
    started = time.perf_counter()
    check = check_site(engine, x, y, kind=q.kind, crs=datum)
    elapsed_ms = (time.perf_counter() - started) * 1000
    log.info("pre-check %s at %.6f, %.6f (%s): %s in %.1f ms", q.kind, check.lon, check.lat, datum, check.verdict,
             elapsed_ms)  # fmt: skip
    return _present(check, engine, q, elapsed_ms)


def _present(check, engine, q: Query, elapsed_ms: float) -> dict:
    raw = check.to_dict()
    rules = []
    for verdict, data in zip(check.verdicts, raw["rules"], strict=True):
        rule = verdict.rule
        conflicts = [
            {**c, "kind_label": kind_label(c.get("site_kind") or ""), "level_label": level_label(c.get("site_level")),
             "method_label": method_label(c.get("method"))}
            for c in data["conflicts"]
        ]  # fmt: skip
        rules.append({
            "id": rule.id, "label": rule_label(rule), "basis": rule_basis(rule), "type": rule.type,
            "limit_m": rule.limit_m, "method_label": method_label(rule.method) if rule.type == "distance" else "",
            "verdict": verdict.verdict, "verdict_label": verdict_label(verdict.verdict),
            "shortfall_m": data["shortfall_m"], "nearest": data["nearest"], "conflicts": conflicts,
        })  # fmt: skip
    return {
        "verdict": check.verdict,
        "verdict_label": verdict_label(check.verdict),
        "shortfall_m": raw["shortfall_m"],
        "lon": check.lon,
        "lat": check.lat,
        "given": {"x": q.x, "y": q.y, "datum": q.datum_text},
        "kind": q.kind,
        "kind_label": kind_label(q.kind),
        "profile": engine.profile.name,
        "profile_title": profile_title(engine.profile),
        "checked_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "elapsed_ms": round(elapsed_ms, 1),
        "rules": rules,
        "draw": _drawing(rules, check, engine, active_basemap(current_app.config, q.basemap or None)),
    }


_SHAPES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
#: layers whose features can be the "site" of a finding (besides venues, for spacing rules)
SITE_KINDS = ("schools", "residential", "zones")


def _site_shapes(engine) -> dict[tuple[str, str], object]:
    """(kind, id) → geometry of every school, residential polygon and zone (cached per engine)."""
    shapes = _SHAPES.get(engine)
    if shapes is None:
        shapes = {}
        for kind in SITE_KINDS:
            frame = engine.layer(kind)
            shapes.update(
                ((kind, str(i)), g) for i, g in zip(frame["id"], frame.geometry.values, strict=True)
            )
        _SHAPES[engine] = shapes
    return shapes


def _drawing(rules: list[dict], check, engine, basemap) -> dict:
    """What precheck.js draws, in the base map's datum: the candidate, a line to each conflicting
    site labelled with its distance, the sites highlighted; for a complying distance rule, the
    nearest protected site, dashed (a straight line, for orientation only)."""
    shapes = _site_shapes(engine)
    candidate = shapely.Point(check.lon, check.lat)
    lines, sites, seen = [], [], set()

    def add_site(kind: str, site_id: str, state: str, name: str) -> None:
        shape = shapes.get((kind, site_id))
        if shape is not None and (kind, site_id) not in seen:
            seen.add((kind, site_id))
            sites.append(
                {"geometry": shapely.geometry.mapping(_shown(shape, basemap)), "state": state, "name": name}
            )

    def add_line(geom, state: str, name: str, distance_m: float) -> None:
        if geom is None or geom.is_empty or geom.length == 0:
            return
        coords = [[y, x] for x, y in _shown(geom, basemap).coords]
        lines.append({"coords": coords, "state": state, "distance_m": round(distance_m, 2),
                      "label": f"{name} {format_distance(distance_m)}"})  # fmt: skip

    for rule in rules:
        for c in rule["conflicts"]:
            state = "violation" if c["violation"] else "recheck" if c["recheck"] else "ok"
            line = shapely.geometry.shape(c["line"]) if c.get("line") else None
            add_line(line, state, str(c["site_name"]), float(c["distance_m"]))
            add_site(str(c.get("site_kind")), str(c["site_id"]), state, str(c["site_name"]))
        nearest = rule["nearest"]
        if not rule["conflicts"] and nearest:
            shape = shapes.get(("schools", str(nearest["site_id"])))
            if shape is not None:
                add_line(shapely.shortest_line(candidate, shape), "nearest", str(nearest["site_name"]),
                         float(nearest["straight_m"]))  # fmt: skip
                add_site("schools", str(nearest["site_id"]), "nearest", str(nearest["site_name"]))
    point = _shown(candidate, basemap)
    return {"candidate": [point.y, point.x], "lines": lines, "sites": sites}


def _shown(geom, basemap):
    return to_display([geom], basemap)[0]


# ------------------------------------------------------------------ map
_CONTEXT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _context_layers(engine, q: Query, basemap) -> dict:
    """Background for the clerk: sub-district outlines, schools, existing venues of the kind, roads.

    Cached per engine (so per workspace state and profile), venue kind and base map.
    """
    key = (q.kind, basemap.name, str(get_locale()))
    cached = _CONTEXT.setdefault(engine, {})
    if key not in cached:
        cached[key] = _build_context(engine, q, basemap)
    return cached[key]


def _build_context(engine, q: Query, basemap) -> dict:
    out: dict[str, object] = {}
    subs = engine.layer("subdistricts")
    if len(subs):
        out["subdistricts"] = _geojson(subs[["name", "geometry"]], basemap)
    schools = engine.layer("schools")
    if len(schools):
        out["schools"] = _geojson(schools[["id", "name", "level", "geometry"]].assign(
            level=[level_label(v) for v in schools["level"]]), basemap)  # fmt: skip
    venues = engine.layer(q.kind) if not q.kind.startswith("pois:") else engine.layer("pois").iloc[0:0]
    if len(venues):
        out["venues"] = _geojson(venues[["id", "name", "geometry"]], basemap)
    if not basemap.layers:
        roads = engine.layer("roads")
        if len(roads):
            out["roads"] = _geojson(roads[["geometry"]], basemap)
    return out


def _geojson(frame, basemap) -> dict:
    shown = to_display(frame, basemap)
    return json.loads(shown.set_geometry(shown.geometry.set_precision(1e-6)).to_json(drop_id=True))


def _bounds(engine) -> tuple[float, ...]:
    for kind in ("subdistricts", "schools", "net_cafes"):
        frame = engine.layer(kind)
        if len(frame):
            return tuple(float(v) for v in frame.total_bounds)
    return FALLBACK_BOUNDS


def _page(q: Query, result: dict | None = None, error: str | None = None, status: int = 200):
    names = profile_names()
    profile = q.profile if q.profile in names else default_profile_name()
    engine = get_engine(profile)
    basemap = active_basemap(current_app.config, q.basemap or None)
    m = make_map(bounds=_bounds(engine), basemap=basemap)
    page = render_template(
        "precheck.html",
        map=map_parts(m),
        map_name=m.get_name(),
        q=q,
        result=result,
        error=error,
        datums=DATUMS,
        kinds=[(k, kind_label(k)) for k in kinds_of(engine.profile)],
        profiles=[(n, profile_title(get_profile(n))) for n in names],
        basemaps=[b.name for b in basemap_choices(current_app.config)],
        basemap=basemap,
        context=_context_layers(engine, q, basemap),
        now=datetime.now(UTC),
    )
    return page, status


@bp.get("/")
def index():
    """The counter, empty (``?kind=`` / ``?profile=`` / ``?basemap=`` preselect)."""
    return _page(Query.from_values(request.args))


@bp.post("/")
def submit():
    """The typed form: the page again, with the verdict or what to correct."""
    q = Query.from_values(request.form)
    try:
        return _page(q, result=run_check(q))
    except InputError as err:
        return _page(q, error=str(err), status=400)


@bp.post("/check")
def check_json():
    """The map click: ``{"result": …, "html": the result panel}`` or ``{"error": message}`` (400)."""
    values = request.get_json(silent=True)
    if not isinstance(values, dict):
        values = request.form
    q = Query.from_values(values)
    try:
        result = run_check(q)
    except InputError as err:
        return jsonify({"error": str(err), "status": 400}), 400
    panel = get_template_attribute("precheck_result.html", "result_panel")
    return jsonify({"result": result, "html": str(panel(result))})
