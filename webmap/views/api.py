"""The JSON API under ``/api/v1``; its OpenAPI document is :mod:`webmap.openapi`.

Clients authenticate with ``Authorization: Bearer <token>`` (``civicmap token create USER``);
the app's own pages may call it with their session cookie (send ``X-CSRFToken`` on writes).
Every error is ``{"error": message, "status": code}`` (see :mod:`webmap.errors`); an import
refused for its content adds ``problems``: ``[{source, row, field, value, expected}, …]``.

Endpoints: ``/me``, ``/layers``, ``/layers/<kind>`` (GeoJSON, ``bbox``, ``limit``/``offset``),
``/violations`` (filters, GeoJSON or rows), ``/check-site`` (GET or POST), ``/import/<kind>``
(analyst), ``/history``, ``/openapi.json``.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import geopandas as gpd
import numpy as np
import shapely
from flask import Blueprint, abort, jsonify, request, url_for

from geo.precheck import check_site as precheck_site
from layers.errors import LayerError
from layers.importer import import_file
from layers.schema import KINDS, SCHEMAS, get_schema
from webmap.accounts import audit, current_workspace
from webmap.analysis import default_profile_name, get_engine, get_violations, profile_names
from webmap.errors import json_error
from webmap.security import current_user, require_role
from webmap.uploads import UploadError, json_safe, problem_dict, purge_expired, report_dict, stage_upload

log = logging.getLogger(__name__)

API_VERSION = "v1"
bp = Blueprint("api", __name__, url_prefix=f"/api/{API_VERSION}")

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10000
VIOLATION_FORMATS = ("geojson", "rows")


@bp.get("/me")
def me():
    """Who the token or session belongs to."""
    user = current_user()
    return jsonify({"name": user.name, "role": user.role, "locale": user.locale})


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3.1 document of this API."""
    from webmap.openapi import openapi_document

    return jsonify(openapi_document(server_url=request.script_root + bp.url_prefix))


# ------------------------------------------------------------------ parameters
def _bad(message: str):
    abort(json_error(400, message))


def _int_arg(name: str, default: int, *, lo: int, hi: int | None = None) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        _bad(f"{name} = {raw!r}: expected an integer")
    if value < lo or (hi is not None and value > hi):
        _bad(f"{name} = {raw!r}: expected an integer from {lo}" + (f" to {hi}" if hi is not None else " up"))
    return value


def _bool_arg(name: str, source=None) -> bool | None:
    raw = (source if source is not None else request.args).get(name)
    if raw is None or raw == "":
        return None
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    _bad(f"{name} = {raw!r}: expected true or false")


def _bbox_arg() -> tuple[float, float, float, float] | None:
    raw = request.args.get("bbox")
    if not raw:
        return None
    parts = raw.split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        _bad(f"bbox = {raw!r}: expected minlon,minlat,maxlon,maxlat (WGS84 degrees)")
    minx, miny, maxx, maxy = values
    if (
        minx > maxx
        or miny > maxy
        or not (-180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= maxy <= 90)
    ):
        _bad(f"bbox = {raw!r}: expected minlon <= maxlon and minlat <= maxlat within -180..180 / -90..90")
    return minx, miny, maxx, maxy


def _profile_arg(raw: str | None) -> str:
    name = (raw or "").strip() or default_profile_name()
    if name not in profile_names():
        _bad(f"profile = {name!r}: expected one of {', '.join(profile_names())}")
    return name


# ------------------------------------------------------------------ GeoJSON
def _properties(frame) -> list[dict]:
    plain = frame.drop(columns=frame.geometry.name)
    columns = list(plain.columns)
    rows = plain.to_numpy(dtype=object, na_value=None)
    return [{c: json_safe(v) for c, v in zip(columns, row, strict=True)} for row in rows]


def feature_collection(frame: gpd.GeoDataFrame, *, id_column: str | None = "id") -> dict:
    """``frame`` (EPSG:4326) as a GeoJSON FeatureCollection; ``id_column`` becomes each feature's id."""
    features = []
    geoms = frame.geometry.values
    for props, geom in zip(_properties(frame), geoms, strict=True):
        features.append(
            {
                "type": "Feature",
                "id": props.get(id_column) if id_column else None,
                "properties": props,
                "geometry": None if geom is None or geom.is_empty else shapely.geometry.mapping(geom),
            }
        )
        if id_column is None:
            del features[-1]["id"]
    return {"type": "FeatureCollection", "features": features}


def _paging(total: int) -> tuple[slice, dict]:
    """The slice of ``limit`` / ``offset`` and the paging fields (``total``, ``next`` link …)."""
    limit = _int_arg("limit", DEFAULT_LIMIT, lo=1, hi=MAX_LIMIT)
    offset = _int_arg("offset", 0, lo=0)
    next_url = None
    if offset + limit < total:
        args = {**request.args.to_dict(), "limit": limit, "offset": offset + limit}
        next_url = url_for(request.endpoint, **(request.view_args or {}), **args)
    returned = max(0, min(limit, total - offset))
    return slice(offset, offset + limit), {
        "total": total, "returned": returned, "limit": limit, "offset": offset, "next": next_url,
    }  # fmt: skip


# ------------------------------------------------------------------ layers
@bp.get("/layers")
def layers():
    """Every layer kind with its label, row count, current and stored versions."""
    ws = current_workspace()
    counts, current = ws.counts(), ws.current_versions()
    out = []
    for kind in KINDS:
        schema = SCHEMAS[kind]
        out.append(
            {
                "kind": kind,
                "label_zh": schema.label_zh,
                "label_en": schema.label_en,
                "geometry": list(schema.geometry),
                "count": counts.get(kind, 0),
                "version": current.get(kind),
                "versions": ws.versions(kind),
            }
        )
    return jsonify({"layers": out})


@bp.get("/layers/<kind>")
def layer(kind: str):
    """The current version of a layer as GeoJSON; ``bbox`` keeps features intersecting it."""
    if kind not in SCHEMAS:
        abort(404, description=f"unknown layer kind {kind!r}; expected one of: {', '.join(KINDS)}")
    bbox = _bbox_arg()
    ws = current_workspace()
    frame = ws.read(kind)
    if bbox is not None and len(frame):
        hits = frame.sindex.query(shapely.box(*bbox), predicate="intersects")
        frame = frame.iloc[np.sort(hits)]
    rows, meta = _paging(len(frame))
    body = feature_collection(frame.iloc[rows])
    body.update({"kind": kind, "version": ws.current_versions().get(kind), **meta})
    return jsonify(body)


# ------------------------------------------------------------------ violations
@bp.get("/violations")
def violations():
    """Findings of a profile, filtered; GeoJSON (the connecting line or route) or plain rows."""
    profile = _profile_arg(request.args.get("profile"))
    fmt = request.args.get("format", "geojson")
    if fmt not in VIOLATION_FORMATS:
        _bad(f"format = {fmt!r}: expected one of {', '.join(VIOLATION_FORMATS)}")
    found = get_violations(profile)
    mask = np.ones(len(found), dtype=bool)
    if not _bool_arg("include_near"):
        mask &= found["violation"].to_numpy(dtype=bool)
    for arg, column in (("rule", "rule"), ("kind", "venue_kind"), ("subdistrict", "subdistrict")):
        value = request.args.get(arg)
        if value:
            mask &= (found[column] == value).fillna(False).to_numpy(dtype=bool)
    recheck = _bool_arg("recheck")
    if recheck is not None:
        mask &= found["recheck"].to_numpy(dtype=bool) == recheck
    rows, meta = _paging(int(mask.sum()))
    page = found[mask].iloc[rows]
    body = {"rows": _properties(page)} if fmt == "rows" else feature_collection(page, id_column=None)
    body.update({"profile": profile, **meta})
    return jsonify(body)


# ------------------------------------------------------------------ pre-check
@bp.route("/check-site", methods=["GET", "POST"])
def check_site():
    """May a venue of ``kind`` open at (``lon``, ``lat``)?  The :class:`~geo.precheck.SiteCheck` as JSON."""
    source = request.args
    if request.method == "POST":
        body = request.get_json(silent=True)
        source = body if isinstance(body, dict) else request.form
    values = {}
    for name in ("lon", "lat"):
        raw = source.get(name)
        try:
            values[name] = float(raw)
        except (TypeError, ValueError):
            _bad(f"{name} = {raw!r}: expected a number")
        if not math.isfinite(values[name]):
            _bad(f"{name} = {raw!r}: expected a finite number")
    kind = str(source.get("kind") or "net_cafes")
    crs = str(source.get("crs") or "wgs84")
    profile = _profile_arg(source.get("profile"))
    result = precheck_site(get_engine(profile), values["lon"], values["lat"], kind=kind, crs=crs)
    return jsonify(json_safe(result.to_dict()))


# ------------------------------------------------------------------ import and history
@bp.post("/import/<kind>")
@require_role("analyst")
def import_layer(kind: str):
    """Import a multipart ``file`` as the new version of ``kind`` (``crs``, ``partial``)."""
    get_schema(kind)
    ws = current_workspace()
    purge_expired(ws.path)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        _bad("file: expected a multipart/form-data part named 'file'")
    crs = (request.form.get("crs") or "").strip() or None
    partial = bool(_bool_arg("partial", request.form))
    user = current_user().name
    try:
        staged = stage_upload(
            upload.stream,
            upload.filename,
            workspace_path=ws.path,
            meta={"kind": kind, "crs": crs, "user": user},
        )
    except UploadError as err:
        return json_error(err.status, str(err))
    try:
        report = import_file(ws, kind, staged.path, crs=crs, user=user, partial=partial)
    except LayerError as err:
        return json_error(400, str(err), problems=[problem_dict(p) for p in err.problems])
    finally:
        staged.discard()
    audit(
        "import",
        f"{kind} version {report.version} from {report.source} (sha256 {report.sha256[:12]}) via the API: "
        f"{report.rows_valid} row(s) imported, {report.rows_rejected} rejected",
    )
    return jsonify(report_dict(report)), 201


@bp.get("/history")
def history():
    """Imports and restores, newest first; ``kind`` for one layer."""
    kind = request.args.get("kind") or None
    if kind is not None and kind not in SCHEMAS:
        _bad(f"kind = {kind!r}: expected one of {', '.join(KINDS)}")
    records = current_workspace().history(kind)
    rows, meta = _paging(len(records))
    return jsonify({"history": [dataclasses.asdict(r) for r in records[rows]], **meta})
