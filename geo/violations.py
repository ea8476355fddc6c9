"""Which venues break a profile's rules, by how much, measured how — with the evidence line.

:class:`RuleEngine` takes the workspace's layers (GeoDataFrames in WGS84, keyed by kind) and a
:class:`~geo.rules.Profile`, prepares the spatial indexes and the walking network once, and
answers :meth:`RuleEngine.violations` (the batch list) and, through :mod:`geo.precheck`, a
single location.  One row per (venue, protected site or other venue or zone, rule):

``distance``     exact straight line (:mod:`geo.distance`) or walking route (:mod:`geo.network`);
                 walking pairs are pre-filtered by the straight line, which can only be shorter.
``residential``  a venue inside a residential building (or compound, per the rule's scope).
``spacing``      two regulated venues closer than the limit (each pair once).
``zone``         a venue inside, or within the limit of, a restricted zone.

When the data are thinner than the method needs (a school given as a point, no gates, no
doors, a gate too far from any road) the best available measure is used and the row is
marked ``approximate`` with the reason.  ``recheck`` marks results within the profile's band
of the limit, because two field surveys differ by that much.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import cached_property

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.distance import SiteIndex
from geo.network import WalkNetwork
from geo.rules import Profile, Rule
from geo.walking import walk_pairs
from layers.schema import SCHEMAS
from layers.store import empty_layer

log = logging.getLogger(__name__)

#: columns of a violation table, in order (geometry last)
COLUMNS = [
    "venue_id", "venue_name", "venue_kind", "venue_status", "licence_no", "site_id", "site_name",
    "site_kind", "site_level", "rule", "rule_type", "limit_m", "distance_m", "straight_m", "shortfall_m",
    "method", "approximate", "approx_reason", "recheck", "violation", "subdistrict", "basis",
]  # fmt: skip


class RuleEngine:
    """A profile applied to one set of layers; indexes are built once and reused.

    Parameters
    ----------
    layers
        Kind → GeoDataFrame in WGS84 with ``id`` and the schema's fields (as the store returns
        them).  Missing kinds count as empty.
    profile
        The rule profile to apply.
    """

    def __init__(self, layers: Mapping[str, gpd.GeoDataFrame], profile: Profile) -> None:
        self.layers = dict(layers)
        self.profile = profile
        self._site_indexes: dict[tuple, tuple[gpd.GeoDataFrame, SiteIndex]] = {}

    # ------------------------------------------------------------ inputs
    def layer(self, kind: str) -> gpd.GeoDataFrame:
        """A stored layer; empty (with its schema's columns) when the workspace has none."""
        frame = self.layers.get(kind)
        if frame is not None:
            return frame
        if kind in SCHEMAS:
            return empty_layer(kind)
        return gpd.GeoDataFrame({"id": pd.Series(dtype=object)}, geometry=[], crs="EPSG:4326")

    def regulated(self, rule: Rule, *, kinds: set[str] | None = None) -> gpd.GeoDataFrame:
        """Venues a rule applies to, with a ``venue_kind`` column; ``pois:x`` selects POIs by category."""
        parts = []
        for kind in rule.regulated:
            if kinds is not None and kind not in kinds:
                continue
            if kind.startswith("pois:"):
                pois = self.layer("pois")
                category = pois.get("category", pd.Series(index=pois.index, dtype=object))
                frame = pois[category.astype("string").str.lower() == kind[5:].lower()]
            else:
                frame = self.layer(kind)
            if len(frame):
                parts.append(frame.assign(venue_kind=kind))
        if not parts:
            return empty_layer("net_cafes").assign(venue_kind=pd.Series(dtype=object))
        return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs="EPSG:4326")

    def protected(self, rule: Rule) -> tuple[gpd.GeoDataFrame, SiteIndex]:
        """Schools of the rule's levels and their distance index (cached per level set)."""
        key = ("schools", rule.levels)
        if key not in self._site_indexes:
            schools = self.layer("schools")
            sites = schools[schools["level"].isin(rule.levels)].reset_index(drop=True)
            self._site_indexes[key] = (sites, SiteIndex(sites.geometry))
        return self._site_indexes[key]

    def zones(self, rule: Rule) -> tuple[gpd.GeoDataFrame, SiteIndex]:
        key = ("zones", rule.zone_types)
        if key not in self._site_indexes:
            zones = self.layer("zones")
            sites = zones[zones["zone_type"].isin(rule.zone_types)].reset_index(drop=True)
            self._site_indexes[key] = (sites, SiteIndex(sites.geometry))
        return self._site_indexes[key]

    @cached_property
    def network(self) -> WalkNetwork | None:
        """The walking network from the roads layer, or None when there are no roads."""
        roads = self.layer("roads")
        if roads.empty:
            return None
        return WalkNetwork.from_roads(roads, max_snap_m=self.profile.max_snap_m)

    @cached_property
    def _subdistricts(self) -> tuple[np.ndarray, shapely.STRtree | None]:
        subs = self.layer("subdistricts")
        if subs.empty:
            return np.empty(0, dtype=object), None
        return subs["name"].to_numpy(), shapely.STRtree(subs.geometry.values)

    # ------------------------------------------------------------ batch
    def violations(self, *, kinds: set[str] | None = None, include_near: bool = False) -> gpd.GeoDataFrame:
        """Every finding of the profile, one row per (venue, site, rule).

        Parameters
        ----------
        kinds
            Only venues of these kinds (default: every regulated kind).
        include_near
            Also return near misses within the recheck band above the limit
            (``violation`` False, ``recheck`` True), for inspectors to measure on site.
        """
        frames = []
        for rule in self.profile.rules:
            venues = self.regulated(rule, kinds=kinds)
            if venues.empty:
                continue
            found = self.evaluate(rule, venues)
            if len(found):
                frames.append(found)
        if not frames:
            return gpd.GeoDataFrame({c: [] for c in COLUMNS}, geometry=[], crs="EPSG:4326")
        out = pd.concat(frames, ignore_index=True)
        if not include_near:
            out = out[out["violation"]]
        out = out.sort_values(["rule", "distance_m", "venue_id", "site_id"], kind="stable")
        log.info("%d findings under profile %s", len(out), self.profile.name)
        return gpd.GeoDataFrame(out.reset_index(drop=True), geometry="geometry", crs="EPSG:4326")

    def evaluate(self, rule: Rule, venues: gpd.GeoDataFrame) -> pd.DataFrame:
        """Findings of one rule for the given venues (``venue_kind`` column set), near misses included."""
        evaluator = {
            "distance": self._distance_rule,
            "residential": self._residential_rule,
            "spacing": self._spacing_rule,
            "zone": self._zone_rule,
        }[rule.type]
        return evaluator(rule, venues)

    # ------------------------------------------------------------ rule types
    def _distance_rule(self, rule: Rule, venues: gpd.GeoDataFrame) -> pd.DataFrame:
        sites, index = self.protected(rule)
        band = self.profile.recheck_band_m
        pairs = index.pairs_within(venues.geometry, rule.limit_m, margin_m=band)
        if rule.method == "door-walk":
            pairs = _merge_door_pairs(pairs, self._door_pairs(rule, venues, index, band))
        if pairs.empty:
            return pd.DataFrame()
        rows = self._base_rows(rule, venues, pairs["venue_index"].to_numpy(), "schools")
        site = sites.iloc[pairs["site_index"].to_numpy()]
        rows["site_id"] = site["id"].to_numpy()
        rows["site_name"] = site["name"].to_numpy()
        rows["site_level"] = site["level"].to_numpy()
        rows["straight_m"] = pairs["distance_m"].to_numpy()
        rows["distance_m"] = rows["straight_m"]
        rows["method"] = "boundary"
        point_school = (
            site.get("approximate", pd.Series(False, index=site.index)).fillna(False).to_numpy(bool)
        )
        rows["approximate"] = point_school
        rows["approx_reason"] = np.where(
            point_school, "学校仅有点位，按中心点测量 / school given as a point", ""
        )
        rows["geometry"] = _pair_lines(pairs)
        if rule.walking:
            rows = self._walk(rule, rows, venues, sites)
        return _finish(rows, rule, band)

    def _door_pairs(
        self, rule: Rule, venues: gpd.GeoDataFrame, index: SiteIndex, band: float
    ) -> pd.DataFrame:
        """Straight-line pre-filter through doors: a door can be nearer the school than the venue point."""
        doors = self._doors_of(venues)
        if doors.empty:
            return pd.DataFrame()
        found = index.pairs_within(doors.geometry, rule.limit_m, margin_m=band)
        found["venue_index"] = doors["venue_pos"].to_numpy()[found["venue_index"].to_numpy()]
        return found

    @cached_property
    def _door_table(self) -> tuple[gpd.GeoDataFrame, np.ndarray]:
        """Doors with a "kind/id" key of the venue they belong to."""
        doors = self.layer("venue_doors").reset_index(drop=True)
        kinds = doors.get("venue_kind", pd.Series("net_cafes", index=doors.index)).fillna("net_cafes")
        keys = (kinds.astype(str) + "/" + doors["venue_id"].astype(str)).to_numpy(object)
        return doors, keys

    def _doors_of(self, venues: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        """Doors of ``venues`` with ``venue_pos``, their position in ``venues``."""
        doors, keys = self._door_table
        if doors.empty or venues.empty or "is_door" in venues.columns:  # a pre-checked spot is its own door
            return doors.iloc[0:0].assign(venue_pos=pd.Series(dtype="int64"))
        position = {
            f"{k}/{i}": n for n, (k, i) in enumerate(zip(venues["venue_kind"], venues["id"], strict=True))
        }
        pos = np.fromiter((position.get(k, -1) for k in keys), dtype="int64", count=len(keys))
        keep = pos >= 0
        return doors[keep].assign(venue_pos=pos[keep]).reset_index(drop=True)

    def _walk(
        self, rule: Rule, rows: pd.DataFrame, venues: gpd.GeoDataFrame, sites: gpd.GeoDataFrame
    ) -> pd.DataFrame:
        """Replace straight distances by walking routes where gates, doors and roads allow."""
        return walk_pairs(self, rule, rows, venues, sites)

    def residential_in_scope(self, rule: Rule) -> tuple[gpd.GeoDataFrame, shapely.STRtree]:
        """Residential polygons a residential rule counts, with their index (cached per scope)."""
        key = ("residential", rule.scope, rule.mixed_use_is_residential)
        if key not in self._site_indexes:
            res = self.layer("residential")
            form = res.get("form", pd.Series("compound", index=res.index)).fillna("compound")
            mixed = res.get("mixed_use", pd.Series(False, index=res.index)).fillna(False).astype(bool)
            in_scope = (
                form.eq("building") if rule.scope == "building" else form.isin(["building", "compound"])
            )
            if not rule.mixed_use_is_residential:
                in_scope &= ~mixed
            areal = res.geometry.geom_type.isin(["Polygon", "MultiPolygon"])
            polygons = res[in_scope & areal].reset_index(drop=True)
            self._site_indexes[key] = (polygons, shapely.STRtree(polygons.geometry.values))
        return self._site_indexes[key]

    def _residential_rule(self, rule: Rule, venues: gpd.GeoDataFrame) -> pd.DataFrame:
        polygons, tree = self.residential_in_scope(rule)
        if polygons.empty:
            return pd.DataFrame()
        vi, si = tree.query(venues.geometry.values, predicate="intersects")
        if vi.size == 0:
            return pd.DataFrame()
        rows = self._base_rows(rule, venues, vi, "residential")
        site = polygons.iloc[si]
        rows["site_id"] = site["id"].to_numpy()
        rows["site_name"] = site["name"].to_numpy()
        rows["site_level"] = np.where(
            site["mixed_use"].fillna(False).to_numpy(bool), "mixed_use", site["form"]
        )
        rows["distance_m"] = rows["straight_m"] = 0.0
        rows["method"] = "inside"
        rows["approximate"] = False
        rows["approx_reason"] = ""
        rows["geometry"] = [_point_line(g) for g in venues.geometry.values[vi]]
        return _finish(rows, rule, 0.0)

    def _spacing_rule(self, rule: Rule, venues: gpd.GeoDataFrame) -> pd.DataFrame:
        pairs = SiteIndex(venues.geometry).pairs_within(venues.geometry, rule.limit_m)
        pairs = pairs[pairs["venue_index"] < pairs["site_index"]]
        if pairs.empty:
            return pd.DataFrame()
        rows = self._base_rows(rule, venues, pairs["venue_index"].to_numpy(), None)
        other = venues.iloc[pairs["site_index"].to_numpy()]
        rows["site_id"] = other["id"].to_numpy()
        rows["site_name"] = other["name"].to_numpy()
        rows["site_kind"] = other["venue_kind"].to_numpy()
        rows["site_level"] = ""
        return _straight(rows, pairs, rule, self.profile.recheck_band_m)

    def _zone_rule(self, rule: Rule, venues: gpd.GeoDataFrame) -> pd.DataFrame:
        zones, index = self.zones(rule)
        if zones.empty:
            return pd.DataFrame()
        pairs = index.pairs_within(venues.geometry, max(rule.limit_m, 0.0))
        if pairs.empty:
            return pd.DataFrame()
        rows = self._base_rows(rule, venues, pairs["venue_index"].to_numpy(), "zones")
        site = zones.iloc[pairs["site_index"].to_numpy()]
        rows["site_id"] = site["id"].to_numpy()
        rows["site_name"] = site["name"].to_numpy()
        rows["site_level"] = site["zone_type"].to_numpy()
        return _straight(rows, pairs, rule, 0.0)

    # ------------------------------------------------------------ helpers
    def _base_rows(
        self, rule: Rule, venues: gpd.GeoDataFrame, positions: np.ndarray, site_kind
    ) -> pd.DataFrame:
        v = venues.iloc[positions]
        return pd.DataFrame(
            {
                "venue_id": v["id"].to_numpy(),
                "venue_name": v["name"].to_numpy(),
                "venue_kind": v["venue_kind"].to_numpy(),
                "venue_status": _column(v, "status"),
                "licence_no": _column(v, "licence_no"),
                "site_kind": site_kind,
                "rule": rule.id,
                "rule_type": rule.type,
                "limit_m": rule.limit_m,
                "subdistrict": self._subdistrict_of(v),
                "basis": rule.basis_zh,
                "venue_pos": positions,
            }
        )

    def _subdistrict_of(self, venues: gpd.GeoDataFrame) -> np.ndarray:
        """The sub-district containing each venue; the venue's own attribute where none does."""
        own = _column(venues, "subdistrict")
        names, tree = self._subdistricts
        if tree is None or venues.empty:
            return own
        points = shapely.point_on_surface(venues.geometry.values)
        vi, si = tree.query(points, predicate="within")
        out = own.copy()
        out[vi] = names[si]
        return out


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name in frame.columns:
        return frame[name].astype(object).where(frame[name].notna(), "").to_numpy()
    return np.full(len(frame), "", dtype=object)


def _point_line(geom) -> shapely.LineString:
    p = geom.representative_point() if geom.geom_type != "Point" else geom
    return shapely.LineString([p, p])


def _pair_lines(pairs: pd.DataFrame) -> np.ndarray:
    """The shortest connecting line of each pair, venue end first (WGS84)."""
    ends = np.stack(
        [pairs[["venue_lon", "venue_lat"]].to_numpy(), pairs[["site_lon", "site_lat"]].to_numpy()], 1
    )
    return shapely.linestrings(ends)


def _straight(rows: pd.DataFrame, pairs: pd.DataFrame, rule: Rule, band: float) -> pd.DataFrame:
    rows["distance_m"] = rows["straight_m"] = pairs["distance_m"].to_numpy()
    rows["method"] = "boundary"
    rows["approximate"] = False
    rows["approx_reason"] = ""
    rows["geometry"] = _pair_lines(pairs)
    return _finish(rows, rule, band)


def _merge_door_pairs(pairs: pd.DataFrame, door_pairs: pd.DataFrame) -> pd.DataFrame:
    """Union of venue-point and door candidate pairs, keeping the venue point's straight line."""
    if door_pairs.empty:
        return pairs
    extra = door_pairs.sort_values("distance_m").drop_duplicates(["venue_index", "site_index"])
    known = pd.MultiIndex.from_frame(pairs[["venue_index", "site_index"]])
    new = extra[~pd.MultiIndex.from_frame(extra[["venue_index", "site_index"]]).isin(known)]
    return pd.concat([pairs, new], ignore_index=True)


def _finish(rows: pd.DataFrame, rule: Rule, band: float) -> pd.DataFrame:
    """Verdict columns: violation, recheck band, shortfall (how far the venue would have to move)."""
    distance = rows["distance_m"].to_numpy(float)
    if rule.type in ("residential",):
        rows["violation"] = True
        rows["recheck"] = False
        rows["shortfall_m"] = np.nan
    else:
        rows["violation"] = distance <= rule.limit_m
        rows["recheck"] = np.abs(distance - rule.limit_m) <= band if band > 0 else False
        rows["shortfall_m"] = np.where(rows["violation"], rule.limit_m - distance, 0.0)
    rows = rows[rows["distance_m"] <= rule.limit_m + band]
    return rows[[*COLUMNS, "geometry"]]
