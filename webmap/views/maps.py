"""The map pages: ``/violations/`` (findings of a rule profile) and ``/layers/`` (every layer).

Both are read-only and open to every signed-in user.  ``?basemap=`` picks the base map
(:mod:`webmap.basemaps`); the violation map also takes ``?profile=``, ``?rule=``, ``?kind=``,
``?subdistrict=`` and ``?recheck=1``.  Their Content-Security-Policy ``img-src`` allows
``TILE_HOSTS`` plus the tile hosts of the page's base map.

A rendered map is cached per app, keyed by the workspace's layer versions, the language and
the page's options, so that only the first request after an import pays for the build
(a 50,000-venue layers map: about a second); the CSP nonce is put in per request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from flask import Blueprint, current_app, jsonify, render_template, request, url_for
from flask_babel import get_locale
from markupsafe import Markup

from layers.errors import CivicmapError
from webmap.accounts import current_workspace
from webmap.analysis import get_engine, get_profile, get_violations, profile_names
from webmap.assets import MapParts, map_parts
from webmap.basemaps import active_basemap, basemap_choices
from webmap.errors import json_error
from webmap.i18n import is_chinese
from webmap.labels import kind_label, rule_label
from webmap.maps.layers_map import build_layers_map, feature_rows
from webmap.maps.violation_map import Filters, build_violation_map
from webmap.nav import NAV_LABELS, NAV_ORDER, nav_entry
from webmap.security import csp_nonce

log = logging.getLogger(__name__)

CACHE_EXTENSION = "civicmap_map_pages"
#: rendered maps kept per app (keyed by workspace state, language, page options)
MAX_CACHED_PAGES = 16
_CACHE_LOCK = threading.Lock()
_NONCE_SLOT = "cm-nonce-slot-2b7e41"

violations_bp = Blueprint("violations", __name__, url_prefix="/violations")
layers_bp = Blueprint("layers", __name__, url_prefix="/layers")
nav_entry(violations_bp, ".index", NAV_LABELS["violations"], order=NAV_ORDER["violations"])
nav_entry(layers_bp, ".index", NAV_LABELS["layers"], order=NAV_ORDER["layers"])


def _basemap_options(current: str) -> list[dict]:
    locale = "zh_CN" if is_chinese() else "en"
    return [
        {"name": b.name, "label": b.label(locale), "selected": b.name == current}
        for b in basemap_choices(current_app.config)
    ]


def _cached_page(key: tuple, build: Callable[[], tuple[Any, dict]]) -> tuple[MapParts, dict]:
    """The rendered map of ``key`` for the current workspace state and language.

    ``build() -> (folium_map, extra)`` runs only when this state has not been rendered yet;
    the cached header carries a placeholder where this request's CSP nonce goes.
    """
    ws = current_workspace()
    full_key = (str(ws.path), tuple(sorted(ws.current_versions().items())), str(get_locale()), *key)
    cache: OrderedDict = current_app.extensions.setdefault(CACHE_EXTENSION, OrderedDict())
    with _CACHE_LOCK:
        hit = cache.get(full_key)
        if hit is not None:
            cache.move_to_end(full_key)
    if hit is None:
        folium_map, extra = build()
        extra = {**extra, "map_name": folium_map.get_name()}
        hit = (map_parts(folium_map, nonce=_NONCE_SLOT), extra)
        with _CACHE_LOCK:
            cache[full_key] = hit
            while len(cache) > MAX_CACHED_PAGES:
                cache.popitem(last=False)
    parts, extra = hit
    header = Markup(str(parts.header).replace(_NONCE_SLOT, csp_nonce()))  # noqa: S704 - folium's header
    return MapParts(header=header, html=parts.html, script=parts.script), extra


def _profile_title(name: str) -> str:
    """A profile's title in the user's language (its name when it cannot be read)."""
    try:
        profile = get_profile(name)
    except CivicmapError:
        return name
    return (profile.title_zh if is_chinese() else profile.title_en) or name


def register(app) -> None:
    """Register both map blueprints on ``app`` (one call in ``create_app``)."""
    app.register_blueprint(violations_bp)
    app.register_blueprint(layers_bp)


@violations_bp.get("/")
def index():
    """The violation map with its filters, table and search."""
    started = time.perf_counter()
    engine = get_engine(request.args.get("profile") or None)
    profile = engine.profile
    basemap = active_basemap(current_app.config, request.args.get("basemap"))
    filters = Filters.from_args(request.args)

    def build():
        findings = get_violations(profile.name)
        built = build_violation_map(engine, findings, basemap, filters=filters)
        extra = {"rows": built.rows, "index": built.index, "counts": built.counts, "total": len(findings)}
        return built.map, extra

    key = ("violations", profile.name, profile.source, basemap.name, filters)
    parts, extra = _cached_page(key, build)
    subdistricts = engine.layers.get("subdistricts")
    options = {
        "profiles": [
            {"name": n, "label": _profile_title(n), "selected": n == profile.name} for n in profile_names()
        ],
        "rules": [{"id": r.id, "label": rule_label(r)} for r in profile.rules],
        "kinds": [
            {"kind": k, "label": kind_label(k)}
            for k in sorted({k for r in profile.rules for k in r.regulated if ":" not in k})
        ],
        "subdistricts": sorted(subdistricts["name"].dropna().astype(str)) if subdistricts is not None else [],
        "basemaps": _basemap_options(basemap.name),
    }
    log.info(
        "violation map: %d findings shown of %d, served in %.3f s",
        len(extra["rows"]),
        extra["total"],
        time.perf_counter() - started,
    )
    return render_template(
        "violations.html",
        map=parts,
        map_name=extra["map_name"],
        rows=extra["rows"],
        index=extra["index"],
        counts=extra["counts"],
        profile_title=profile.title_zh if is_chinese() else profile.title_en,
        filters=filters,
        options=options,
    )


@layers_bp.get("/")
def index():  # noqa: F811 - a second blueprint's view
    """Every layer of the workspace, toggleable, with counts."""
    started = time.perf_counter()
    basemap = active_basemap(current_app.config, request.args.get("basemap"))
    versions = current_workspace().current_versions()

    def detail_url(kind: str) -> str:
        return url_for("layers.feature", kind=kind, v=versions.get(kind, 0)) + "&i={i}"

    def build():
        built = build_layers_map(get_engine().layers, basemap, detail_url=detail_url)
        return built.map, {"counts": built.counts}

    parts, extra = _cached_page(("layers", basemap.name), build)
    log.info("layers map: %d layers served in %.3f s", len(extra["counts"]), time.perf_counter() - started)
    return render_template(
        "layers_map.html",
        map=parts,
        map_name=extra["map_name"],
        counts=extra["counts"],
        options={"basemaps": _basemap_options(basemap.name)},
    )


@layers_bp.get("/feature/<kind>")
def feature(kind: str):
    """The popup fields of row ``?i=`` of layer ``kind`` at version ``?v=`` (JSON)."""
    layers = get_engine().layers
    version = current_workspace().current_versions().get(kind)
    frame = layers.get(kind)
    index = request.args.get("i", type=int)
    if frame is None or index is None or not 0 <= index < len(frame):
        return json_error(404, f"{kind}: no feature number {request.args.get('i')!r}")
    if request.args.get("v", type=int) != version:
        return json_error(409, f"{kind}: the layer has changed since the map was drawn; reload the page")
    return jsonify({"rows": feature_rows(kind, frame, index)})
