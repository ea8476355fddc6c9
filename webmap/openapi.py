"""The OpenAPI 3.1 document of the JSON API (:mod:`webmap.views.api`), written as data.

Served at ``/api/v1/openapi.json``.  ``tests/webmap/test_openapi_schemathesis.py`` checks the
running API against it, so a change to an endpoint must change this document too.
"""

from __future__ import annotations

from typing import Any

from layers.schema import KINDS

OPENAPI_VERSION = "3.1.0"
_REF = "#/components/schemas/"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _nullable(type_: str, **extra: Any) -> dict[str, Any]:
    return {"type": [type_, "null"], **extra}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


_ERRORS = {
    "400": _error("A parameter is missing or wrong; the message names it, the value and what is expected."),
    "401": _error("No valid token or session."),
}
_PAGING_PARAMS = [
    {
        "name": "limit",
        "in": "query",
        "description": "Items per page.",
        "schema": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 1000},
    },
    {
        "name": "offset",
        "in": "query",
        "description": "Items to skip.",
        "schema": {"type": "integer", "minimum": 0, "default": 0},
    },
]
_PROFILE_PARAM = {
    "name": "profile",
    "in": "query",
    "description": "Rule profile (default: the deployment's); see the profiles shipped and in the workspace.",
    "schema": {"type": "string"},
}
_BOOL = {"type": "string", "enum": ["true", "false", "1", "0", "yes", "no"]}

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error", "status"],
        "properties": {
            "error": {"type": "string"},
            "status": {"type": "integer"},
            "problems": {"type": "array", "items": _ref("Problem")},
        },
    },
    "Problem": {
        "type": "object",
        "description": "One problem in one place of an uploaded file (row is 1-based, header excluded).",
        "required": ["row", "field", "value", "expected"],
        "properties": {
            "source": {"type": "string"},
            "row": _nullable("integer"),
            "field": _nullable("string"),
            "value": {"description": "The value as read (any JSON type)."},
            "expected": {"type": "string", "description": "What was expected, in English."},
            "template": {
                "type": "string",
                "description": "The English template of expected (a stable key to translate it), when it has one.",
            },
            "params": {
                "type": "object",
                "description": "The values that fill the template's {placeholders}.",
            },
        },
    },
    "Me": {
        "type": "object",
        "required": ["name", "role", "locale"],
        "properties": {
            "name": {"type": "string"},
            "role": {"type": "string", "enum": ["viewer", "analyst", "inspector", "admin"]},
            "locale": {"type": "string"},
        },
    },
    "Layer": {
        "type": "object",
        "required": ["kind", "label_zh", "label_en", "geometry", "count", "version", "versions"],
        "properties": {
            "kind": {"type": "string", "enum": list(KINDS)},
            "label_zh": {"type": "string"},
            "label_en": {"type": "string"},
            "geometry": {"type": "array", "items": {"type": "string"}},
            "count": {"type": "integer", "minimum": 0},
            "version": _nullable("integer"),
            "versions": {"type": "array", "items": {"type": "integer"}},
        },
    },
    "Geometry": {
        "type": "object",
        "description": "A GeoJSON geometry in WGS84 (EPSG:4326).",
        "required": ["type"],
        "properties": {
            "type": {
                "type": "string",
                "enum": [
                    "Point",
                    "MultiPoint",
                    "LineString",
                    "MultiLineString",
                    "Polygon",
                    "MultiPolygon",
                    "GeometryCollection",
                ],
            },
            "coordinates": {"type": "array"},
            "geometries": {"type": "array"},
        },
    },
    "Feature": {
        "type": "object",
        "required": ["type", "properties", "geometry"],
        "properties": {
            "type": {"const": "Feature"},
            "id": _nullable("string"),
            "properties": {"type": "object"},
            "geometry": {"anyOf": [_ref("Geometry"), {"type": "null"}]},
        },
    },
    "Paging": {
        "type": "object",
        "required": ["total", "returned", "limit", "offset", "next"],
        "properties": {
            "total": {"type": "integer", "minimum": 0, "description": "Items matching the filters."},
            "returned": {"type": "integer", "minimum": 0},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
            "next": _nullable("string", description="Link to the next page, or null on the last one."),
        },
    },
    "LayerFeatures": {
        "allOf": [
            _ref("Paging"),
            {
                "type": "object",
                "required": ["type", "features", "kind", "version"],
                "properties": {
                    "type": {"const": "FeatureCollection"},
                    "features": {"type": "array", "items": _ref("Feature")},
                    "kind": {"type": "string"},
                    "version": _nullable("integer"),
                },
            },
        ]
    },
    "Violation": {
        "type": "object",
        "description": "One finding: a venue too close to a protected site under one rule.",
        "properties": {
            "venue_id": {"type": "string"},
            "venue_name": _nullable("string"),
            "venue_kind": {"type": "string"},
            "venue_status": _nullable("string"),
            "licence_no": _nullable("string"),
            "site_id": _nullable("string"),
            "site_name": _nullable("string"),
            "site_kind": _nullable("string"),
            "site_level": _nullable("string"),
            "rule": {"type": "string"},
            "rule_type": {"type": "string"},
            "limit_m": _nullable("number"),
            "distance_m": _nullable("number"),
            "straight_m": _nullable("number"),
            "shortfall_m": _nullable("number"),
            "method": _nullable("string"),
            "approximate": {"type": "boolean"},
            "approx_reason": _nullable("string"),
            "recheck": {"type": "boolean"},
            "violation": {"type": "boolean", "description": "False for near misses (include_near)."},
            "subdistrict": _nullable("string"),
            "basis": _nullable("string"),
        },
    },
    "Violations": {
        "allOf": [
            _ref("Paging"),
            {
                "type": "object",
                "required": ["profile"],
                "properties": {
                    "profile": {"type": "string"},
                    "type": {"const": "FeatureCollection"},
                    "features": {
                        "type": "array",
                        "items": {
                            "allOf": [
                                _ref("Feature"),
                                {"type": "object", "properties": {"properties": _ref("Violation")}},
                            ]
                        },
                    },
                    "rows": {"type": "array", "items": _ref("Violation")},
                },
            },
        ]
    },
    "RuleVerdict": {
        "type": "object",
        "required": ["rule", "type", "verdict", "shortfall_m", "conflicts"],
        "properties": {
            "rule": {"type": "string"},
            "type": {"type": "string"},
            "limit_m": _nullable("number"),
            "method": _nullable("string"),
            "basis_zh": _nullable("string"),
            "basis_en": _nullable("string"),
            "verdict": {"type": "string", "enum": ["violation", "recheck", "ok"]},
            "shortfall_m": _nullable("number"),
            "nearest": _nullable("object"),
            "conflicts": {"type": "array", "items": {"type": "object"}},
        },
    },
    "SiteCheck": {
        "type": "object",
        "required": ["lon", "lat", "kind", "profile", "verdict", "shortfall_m", "rules"],
        "properties": {
            "lon": {"type": "number", "description": "WGS84 longitude of the location checked."},
            "lat": {"type": "number"},
            "kind": {"type": "string"},
            "profile": {"type": "string"},
            "verdict": {"type": "string", "enum": ["violation", "recheck", "ok"]},
            "shortfall_m": {"type": "number", "minimum": 0},
            "rules": {"type": "array", "items": _ref("RuleVerdict")},
        },
    },
    "SiteQuery": {
        "type": "object",
        "required": ["lon", "lat"],
        "properties": {
            "lon": {"type": "number"},
            "lat": {"type": "number"},
            "crs": {"type": "string", "default": "wgs84"},
            "kind": {"type": "string", "default": "net_cafes"},
            "profile": {"type": "string"},
        },
    },
    "ImportReport": {
        "type": "object",
        "required": [
            "kind",
            "source",
            "sha256",
            "rows_read",
            "rows_valid",
            "rows_rejected",
            "version",
            "problems",
        ],
        "properties": {
            "kind": {"type": "string"},
            "source": {"type": "string"},
            "sha256": {"type": "string"},
            "crs": _nullable("string"),
            "encoding": _nullable("string"),
            "rows_read": {"type": "integer"},
            "rows_valid": {"type": "integer"},
            "rows_rejected": {"type": "integer"},
            "version": _nullable("integer"),
            "problems": {"type": "array", "items": _ref("Problem")},
        },
    },
    "ImportRecord": {
        "type": "object",
        "required": ["id", "kind", "version", "user", "at", "file_name", "file_sha256", "action"],
        "properties": {
            "id": {"type": "integer"},
            "kind": {"type": "string"},
            "version": {"type": "integer"},
            "user": {"type": "string"},
            "at": {"type": "string", "description": "ISO-8601 UTC"},
            "file_name": {"type": "string"},
            "file_sha256": {"type": "string"},
            "crs": {"type": "string"},
            "rows_read": {"type": "integer"},
            "rows_imported": {"type": "integer"},
            "rows_rejected": {"type": "integer"},
            "action": {"type": "string", "enum": ["import", "restore"]},
            "note": {"type": "string"},
        },
    },
}


def _paths() -> dict[str, Any]:
    kind_param = {
        "name": "kind",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": list(KINDS)},
    }
    site_params = [
        {"name": "lon", "in": "query", "required": True, "schema": {"type": "number"},
         "description": "Longitude (or easting for a projected crs)."},
        {"name": "lat", "in": "query", "required": True, "schema": {"type": "number"},
         "description": "Latitude (or northing)."},
        {"name": "crs", "in": "query", "schema": {"type": "string", "default": "wgs84"},
         "description": "wgs84, cgcs2000, gcj02, bd09 or EPSG:<code>."},
        {"name": "kind", "in": "query", "schema": {"type": "string", "default": "net_cafes"},
         "description": "Venue kind applied for (net_cafes, game_venues … or pois:<category>)."},
        _PROFILE_PARAM,
    ]  # fmt: skip
    site_responses = {"200": _json(_ref("SiteCheck"), "Every rule's verdict for the location."), **_ERRORS}
    return {
        "/me": {
            "get": {
                "operationId": "me",
                "summary": "The user the token or session belongs to",
                "responses": {"200": _json(_ref("Me"), "The user."), "401": _ERRORS["401"]},
            }
        },
        "/layers": {
            "get": {
                "operationId": "listLayers",
                "summary": "Layer kinds with row counts and versions",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["layers"],
                            "properties": {"layers": {"type": "array", "items": _ref("Layer")}},
                        },
                        "Every layer kind.",
                    ),
                    "401": _ERRORS["401"],
                },
            }
        },
        "/layers/{kind}": {
            "get": {
                "operationId": "getLayer",
                "summary": "The current version of a layer as GeoJSON, filtered by bbox, paged",
                "parameters": [
                    kind_param,
                    {
                        "name": "bbox",
                        "in": "query",
                        "description": "minlon,minlat,maxlon,maxlat (WGS84): features intersecting it.",
                        "schema": {"type": "string", "pattern": r"^-?\d+(\.\d+)?(,-?\d+(\.\d+)?){3}$"},
                    },
                    *_PAGING_PARAMS,
                ],
                "responses": {
                    "200": _json(_ref("LayerFeatures"), "A FeatureCollection with paging fields."),
                    **_ERRORS,
                    "404": _error("Unknown layer kind."),
                },
            }
        },
        "/violations": {
            "get": {
                "operationId": "listViolations",
                "summary": "Findings of a rule profile, filtered; GeoJSON lines or plain rows",
                "parameters": [
                    _PROFILE_PARAM,
                    {"name": "rule", "in": "query", "schema": {"type": "string"}, "description": "Rule id."},
                    {
                        "name": "kind",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": "Venue kind.",
                    },
                    {"name": "subdistrict", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "recheck",
                        "in": "query",
                        "schema": _BOOL,
                        "description": "Only findings within (true) or outside (false) the field-recheck band.",
                    },
                    {
                        "name": "include_near",
                        "in": "query",
                        "schema": _BOOL,
                        "description": "Also near misses just above the limit (violation false).",
                    },
                    {
                        "name": "format",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["geojson", "rows"]},
                        "description": "geojson (default: the connecting line or walking route) or rows.",
                    },
                    *_PAGING_PARAMS,
                ],
                "responses": {"200": _json(_ref("Violations"), "The findings."), **_ERRORS},
            }
        },
        "/check-site": {
            "get": {
                "operationId": "checkSite",
                "summary": "Licence pre-check of one location",
                "parameters": site_params,
                "responses": site_responses,
            },
            "post": {
                "operationId": "checkSitePost",
                "summary": "Licence pre-check of one location (JSON or form body)",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": _ref("SiteQuery")},
                        "application/x-www-form-urlencoded": {"schema": _ref("SiteQuery")},
                    },
                },
                "responses": site_responses,
            },
        },
        "/import/{kind}": {
            "post": {
                "operationId": "importLayer",
                "summary": "Import a file as the new version of a layer (analyst role)",
                "parameters": [kind_param],
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "required": ["file"],
                                "properties": {
                                    "file": {"type": "string", "format": "binary"},
                                    "crs": {
                                        "type": "string",
                                        "description": "Datum when the file declares none.",
                                    },
                                    "partial": {**_BOOL, "description": "Import the valid rows only."},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "201": _json(
                        _ref("ImportReport"), "Imported; the report (rejected rows listed as problems)."
                    ),
                    "400": _error("Nothing imported: every problem is listed in problems."),
                    "401": _ERRORS["401"],
                    "403": _error("The user is not an analyst."),
                    "413": _error("The upload is over the size limit."),
                },
            }
        },
        "/history": {
            "get": {
                "operationId": "importHistory",
                "summary": "Imports and restores, newest first",
                "parameters": [
                    {"name": "kind", "in": "query", "schema": {"type": "string", "enum": list(KINDS)}},
                    *_PAGING_PARAMS,
                ],
                "responses": {
                    "200": _json(
                        {
                            "allOf": [
                                _ref("Paging"),
                                {
                                    "type": "object",
                                    "required": ["history"],
                                    "properties": {
                                        "history": {"type": "array", "items": _ref("ImportRecord")}
                                    },
                                },
                            ]
                        },
                        "The history.",
                    ),
                    **_ERRORS,
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "responses": {
                    "200": _json({"type": "object"}, "The OpenAPI document."),
                    "401": _ERRORS["401"],
                },
            }
        },
    }


def openapi_document(server_url: str = "/api/v1") -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API.

    Parameters
    ----------
    server_url
        The API's base URL (``/api/v1`` under the site root).
    """
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "civicmap API",
            "version": "1",
            "description": (
                "Layers, violations, the licence pre-check and imports of a culture bureau's workspace. "
                "Authenticate with `Authorization: Bearer <token>` (`civicmap token create USER`). "
                'Errors are JSON: `{"error": message, "status": code}`.'
            ),
        },
        "servers": [{"url": server_url}],
        "security": [{"bearerAuth": []}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": _SCHEMAS,
        },
    }
