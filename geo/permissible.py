"""Where a new venue may still open: permissible zones per sub-district under a rule profile.

The permissible zone of a sub-district is the sub-district minus everything the profile's rules
forbid for the venue kind — the very rules :func:`geo.precheck.check_site` applies, so a point
inside the zone passes the counter and a point outside fails it (``tests/geo/test_permissible.py``
checks this on random points):

``distance`` / ``boundary``   campus polygons (or school points) buffered by the limit in one
                              transverse Mercator (:func:`geo.crs.metric_crs`);
``distance`` / walking        the set of places whose walk from a gate is within the limit
                              (:mod:`geo.walk_area`), plus the straight-line buffer of schools
                              the walk cannot be measured for (no gates, unroutable places);
``residential``               the residential polygons in the rule's scope;
``zone``                      restricted zones buffered by the rule's limit;
``spacing``                   existing regulated venues buffered by the spacing limit.

``spacing_m`` adds an optional policy spacing around every existing venue of the kind; it is a
planning lever (not a rule of the profile), so the pre-check does not know it.

Buffers are exact to :data:`BUFFER_TOLERANCE_M` (0.25 mm): the segments per quarter circle grow
with the radius and the radius is scaled so that the polygon straddles the true circle.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points

from geo.crs import metric_crs
from geo.rules import Rule
from geo.violations import RuleEngine
from layers.errors import CivicmapError

log = logging.getLogger(__name__)

#: largest error of a buffer's round parts, metres (either side of the true circle)
BUFFER_TOLERANCE_M = 2.5e-4
SQ_M_PER_KM2 = 1_000_000.0


def exact_buffer(geoms: object, radius_m: float, *, tolerance_m: float = BUFFER_TOLERANCE_M) -> np.ndarray:
    """Buffers of metric geometries whose round parts stay within ``tolerance_m`` of the true circle.

    A polygonal arc with vertices on the circle lies inside it by up to the sagitta
    ``r θ² / 8`` (θ: angle per segment); scaling the radius by ``1 + θ²/16`` puts half of
    that error outside and half inside, so θ is chosen with ``r θ² / 16 <= tolerance_m``.
    """
    if radius_m <= 0:
        return np.asarray(geoms, dtype=object)
    quad_segs = max(8, math.ceil(math.pi / 2 / math.sqrt(16 * tolerance_m / radius_m)))
    theta = math.pi / 2 / quad_segs
    return shapely.buffer(
        np.asarray(geoms, dtype=object), radius_m * (1 + theta**2 / 16), quad_segs=quad_segs
    )


@dataclass
class PermissibleZones:
    """Permissible zones of one venue kind under one profile.

    Attributes
    ----------
    table : geopandas.GeoDataFrame
        One row per sub-district: ``subdistrict``, ``area_km2``, ``permissible_km2``,
        ``permissible_share`` (0…1) and the zone ``geometry`` in WGS84.
    excluded : dict
        Rule id (or ``"spacing_policy"``) → excluded area in :attr:`crs`.
    crs : pyproj.CRS
        The metric frame of :attr:`excluded` and :attr:`zone_metric`.
    zone_metric : list
        The zone of each table row in :attr:`crs`.
    """

    profile: str
    kind: str
    spacing_m: float
    crs: CRS
    table: gpd.GeoDataFrame
    excluded: dict[str, BaseGeometry] = field(default_factory=dict)
    zone_metric: list[BaseGeometry] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total_permissible_km2(self) -> float:
        return float(self.table["permissible_km2"].sum())

    @cached_property
    def _forward(self) -> Transformer:
        return Transformer.from_crs("EPSG:4326", self.crs, always_xy=True)

    @cached_property
    def _backward(self) -> Transformer:
        return Transformer.from_crs(self.crs, "EPSG:4326", always_xy=True)

    def to_metric(self, lon: object, lat: object) -> tuple[np.ndarray, np.ndarray]:
        """WGS84 lon/lat to this zone's metric frame."""
        return self._forward.transform(np.asarray(lon, float), np.asarray(lat, float))

    def contains(self, lon: object, lat: object) -> np.ndarray:
        """Whether each WGS84 point lies in the permissible zone (of any sub-district)."""
        x, y = self.to_metric(lon, lat)
        union = shapely.union_all(self.zone_metric) if self.zone_metric else shapely.Polygon()
        shapely.prepare(union)
        return shapely.contains_xy(union, x, y)

    def boundary_distance_m(self, lon: object, lat: object) -> np.ndarray:
        """Metres from each WGS84 point to the nearest zone boundary (for agreement tests)."""
        x, y = self.to_metric(lon, lat)
        edges = shapely.union_all([shapely.boundary(g) for g in self.zone_metric if not g.is_empty])
        return shapely.distance(shapely.points(x, y), edges)

    def display_geometry(self, tolerance_m: float = 1.0) -> np.ndarray:
        """The zones simplified by ``tolerance_m`` (for drawing only), in WGS84."""
        simple = shapely.simplify(np.asarray(self.zone_metric, dtype=object), tolerance_m)
        return np.asarray(gpd.GeoSeries(simple, crs=self.crs).to_crs("EPSG:4326").values, dtype=object)

    def to_geojson(self, path: str | Path | None = None) -> str:
        """The zones as a GeoJSON FeatureCollection (WGS84); written to ``path`` when given."""
        frame = self.table.assign(profile=self.profile, kind=self.kind, spacing_m=self.spacing_m)
        text = frame.to_json(drop_id=True, ensure_ascii=False)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def summary(self) -> dict:
        return {"profile": self.profile, "kind": self.kind, "spacing_m": self.spacing_m,
                "permissible_km2": round(self.total_permissible_km2, 4), "seconds": round(self.seconds, 3),
                "rows": json.loads(self.table.drop(columns="geometry").to_json(orient="records"))}  # fmt: skip


def district_frame(engine: RuleEngine) -> CRS:
    """The metric frame of a district: the walking network's when there is one, else a TM of its data."""
    if engine.network is not None and any(r.walking for r in engine.profile.rules):
        return engine.network.crs
    subs = engine.layer("subdistricts")
    if subs.empty:
        raise CivicmapError("no subdistricts layer: import the sub-district boundaries first")
    return metric_crs(subs.geometry)


def _project(geoms: object, crs: CRS) -> np.ndarray:
    series = gpd.GeoSeries(np.asarray(geoms, dtype=object), crs="EPSG:4326")
    return np.asarray(series.to_crs(crs).values, dtype=object)


def excluded_areas(
    engine: RuleEngine, kind: str = "net_cafes", *, spacing_m: float = 0.0, crs: CRS | None = None
) -> dict[str, BaseGeometry]:
    """The area each rule for ``kind`` forbids, in the metric frame ``crs`` (rule id → geometry).

    Parameters
    ----------
    engine
        The rule engine of the workspace and profile.
    kind
        Venue kind applied for (``net_cafes`` …).
    spacing_m
        Optional policy spacing around every existing venue of ``kind`` (0: none).
    crs
        Metric frame; default :func:`district_frame`.
    """
    crs = crs or district_frame(engine)
    out: dict[str, BaseGeometry] = {}
    for rule in engine.profile.rules_for(kind):
        out[rule.id] = rule_area(engine, rule, crs)
    if spacing_m > 0:
        existing = (
            engine.layer(kind) if not kind.startswith("pois:") else engine.regulated(_spacing_rule(kind))
        )
        out["spacing_policy"] = shapely.union_all(exact_buffer(_project(existing.geometry, crs), spacing_m))
    return out


def _spacing_rule(kind: str) -> Rule:
    return Rule(id="spacing_policy", type="spacing", regulated=(kind,), limit_m=1.0)


def rule_area(engine: RuleEngine, rule: Rule, crs: CRS) -> BaseGeometry:
    """The area one rule forbids (a ``distance``, ``residential``, ``zone`` or ``spacing`` rule), in ``crs``."""
    if rule.type == "distance":
        sites, _index = engine.protected(rule)
        if sites.empty:
            return shapely.Polygon()
        if rule.walking and engine.network is not None:
            from geo.walk_area import walking_protected_area

            return walking_protected_area(engine, rule, crs)
        return shapely.union_all(exact_buffer(_project(sites.geometry, crs), rule.limit_m))
    if rule.type == "residential":
        polygons, _tree = engine.residential_in_scope(rule)
        return shapely.union_all(_project(polygons.geometry, crs)) if len(polygons) else shapely.Polygon()
    if rule.type == "zone":
        zones, _index = engine.zones(rule)
        if zones.empty:
            return shapely.Polygon()
        return shapely.union_all(exact_buffer(_project(zones.geometry, crs), rule.limit_m))
    if rule.type == "spacing":
        existing = engine.regulated(rule)
        if existing.empty:
            return shapely.Polygon()
        return shapely.union_all(exact_buffer(_project(existing.geometry, crs), rule.limit_m))
    raise CivicmapError(f"rule {rule.id!r}: unknown type {rule.type!r}")


def permissible_zones(
    engine: RuleEngine,
    kind: str = "net_cafes",
    *,
    spacing_m: float = 0.0,
    excluded: dict[str, BaseGeometry] | None = None,
) -> PermissibleZones:
    """Each sub-district minus every area the profile forbids for ``kind`` (see the module docstring).

    Parameters
    ----------
    engine
        Rule engine of the workspace layers and the active profile.
    kind
        Venue kind (``net_cafes`` by default).
    spacing_m
        Optional policy spacing around existing venues of ``kind``, metres (0: none).
    excluded
        Precomputed :func:`excluded_areas` (scenario sweeps reuse the parts that do not change).

    Returns
    -------
    PermissibleZones
        Table per sub-district (area, permissible area and share, zone geometry in WGS84).
    """
    started = time.perf_counter()
    subs = engine.layer("subdistricts")
    if subs.empty:
        raise CivicmapError("no subdistricts layer: import the sub-district boundaries first")
    crs = district_frame(engine)
    if excluded is None:
        excluded = excluded_areas(engine, kind, spacing_m=spacing_m, crs=crs)
    sub_m = _project(subs.geometry, crs)
    zones = np.asarray(sub_m, dtype=object)
    for area in excluded.values():  # one difference per rule: cheaper than uniting the rules first
        if area is not None and not area.is_empty:
            zones = shapely.difference(zones, area)
    area = shapely.area(sub_m) / SQ_M_PER_KM2
    allowed = shapely.area(zones) / SQ_M_PER_KM2
    back = gpd.GeoSeries(zones, crs=crs).to_crs("EPSG:4326")
    table = gpd.GeoDataFrame(
        {
            "subdistrict": subs["name"].astype(str).to_numpy(),
            "area_km2": area,
            "permissible_km2": allowed,
            "permissible_share": np.divide(allowed, area, out=np.zeros_like(area), where=area > 0),
        },
        geometry=back.values,
        crs="EPSG:4326",
    )
    seconds = time.perf_counter() - started
    log.info("permissible zones for %s under %s: %.3f km² in %.2f s", kind, engine.profile.name,
             float(allowed.sum()), seconds)  # fmt: skip
    return PermissibleZones(
        engine.profile.name, kind, float(spacing_m), crs, table, excluded, list(zones), seconds
    )


def nearest_permissible(
    zones: PermissibleZones, lon: float, lat: float, subdistrict: str | None = None, *, inset_m: float = 0.5
) -> tuple[float, float, float] | None:
    """The nearest permissible point to a WGS84 location and the distance to it in metres.

    Searches the zone of ``subdistrict`` (the whole district when None).  Returns
    ``(lon, lat, distance_m)`` — ``distance_m`` 0 when the location already is permissible —
    or None when that zone is empty.  The point is taken ``inset_m`` past the zone's edge (when
    that is still inside) so that it passes the pre-check rather than sitting on the limit.
    """
    if subdistrict is None:
        pool = [g for g in zones.zone_metric if not g.is_empty]
        target = shapely.union_all(pool) if pool else shapely.Polygon()
    else:
        pick = np.flatnonzero(zones.table["subdistrict"].to_numpy() == subdistrict)
        target = zones.zone_metric[int(pick[0])] if len(pick) else shapely.Polygon()
    if target.is_empty:
        return None
    x, y = zones.to_metric([lon], [lat])
    here = shapely.Point(float(x[0]), float(y[0]))
    if target.contains(here):
        return float(lon), float(lat), 0.0
    edge = nearest_points(target, here)[0]
    gap = here.distance(edge)
    if gap > 0:
        dx, dy = (edge.x - here.x) / gap, (edge.y - here.y) / gap
        inner = shapely.Point(edge.x + dx * inset_m, edge.y + dy * inset_m)
        if target.contains(inner):
            edge = inner
    lon2, lat2 = zones._backward.transform(edge.x, edge.y)
    return float(lon2), float(lat2), float(here.distance(edge))


def zones_frame(zones: PermissibleZones) -> pd.DataFrame:
    """The per-sub-district table without geometry, rounded for reports."""
    frame = pd.DataFrame(zones.table.drop(columns="geometry"))
    return frame.round({"area_km2": 4, "permissible_km2": 4, "permissible_share": 4})
