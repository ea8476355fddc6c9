"""Coverage of cultural facilities: who is within reach, who is left out (DOMAIN.md §3).

Residents live in residential units (polygons or, when ``approximate``, points); a unit
counts wholly as covered when its *centre* (the centroid, or a point inside when the centroid
falls outside the polygon) is within reach of a facility.  Reach is measured

- by straight line (``method="straight"``): metres in the district's transverse Mercator
  (:func:`geo.crs.metric_crs`), nearest facility by k-d tree; or
- by walking (``method="walk"``): on the roads layer, :func:`geo.service_areas.nearest_walk_m`.

Each unit gets its distance to the nearest facility of every type; a *cutoff* turns that into
covered / not covered with a threshold that depends on the unit's setting (urban or rural
sub-district) and, for the ``standard`` cutoff, on the type and the facility's level (a
large library reaches farther than a small one; :mod:`geo.coverage_standards`).  "any" is covered by at least
one type that ``counts_for_any``.  Service standards come from ``coverage_standards.toml``
(:func:`geo.coverage_standards.load_standards`, re-exported here), overridable by a deployment's own file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from geo.coverage_standards import DEFAULT_STANDARDS, CoverageStandards, Cutoff, LevelStandard, load_standards
from geo.crs import metric_crs
from layers.errors import CivicmapError, LayerError
from layers.schema import FACILITY_TYPES

__all__ = ["ANY", "DISTRICT_TOTAL", "CoverageResult", "CoverageStandards", "Cutoff", "compute_coverage"]
__all__ += ["free_for_minors_violations", "load_standards", "subdistricts_without_centre", "unit_points"]
__all__ += ["DEFAULT_STANDARDS", "LevelStandard", "assign_subdistricts"]

logger = logging.getLogger(__name__)

ANY = "any"  #: the pseudo-type "any cultural facility"
DISTRICT_TOTAL = "(district)"  #: the ``subdistrict`` of the district-wide row of a table
METHODS = ("straight", "walk")
#: snap cap of the walking network for unit centres and facilities, metres
WALK_SNAP_M = 150.0


def unit_points(frame: gpd.GeoDataFrame) -> gpd.GeoSeries:
    """A WGS84 point per row: the centroid, or a point inside when the centroid is outside.

    Centroids are taken in :func:`geo.crs.metric_crs` (not in degrees).
    """
    if frame.empty:
        return gpd.GeoSeries([], crs="EPSG:4326", index=frame.index)
    crs = metric_crs(frame.geometry.values)
    metric = frame.geometry.to_crs(crs)
    centre = metric.centroid
    outside = ~metric.contains(centre) & (metric.geom_type != "Point")
    centre[outside] = metric[outside].representative_point()
    return centre.to_crs("EPSG:4326")


def assign_subdistricts(frame: gpd.GeoDataFrame, subdistricts: gpd.GeoDataFrame | None) -> pd.Series:
    """Sub-district name of each row: the polygon holding its centre, else its own field."""
    own = frame["subdistrict"] if "subdistrict" in frame.columns else pd.Series(pd.NA, index=frame.index)
    own = own.astype("string")
    if subdistricts is None or subdistricts.empty:
        return own
    points = gpd.GeoDataFrame(geometry=unit_points(frame), index=frame.index)
    joined = gpd.sjoin(points, subdistricts[["name", "geometry"]], how="left", predicate="within")
    spatial = joined[~joined.index.duplicated()]["name"].astype("string")
    return spatial.fillna(own)


def _urban_flags(names: pd.Series, subdistricts: gpd.GeoDataFrame | None) -> np.ndarray:
    if subdistricts is None or "urban" not in subdistricts.columns:
        return np.ones(len(names), dtype=bool)
    flags = dict(zip(subdistricts["name"].astype(str), subdistricts["urban"].astype("boolean"), strict=True))
    return np.array(
        [bool(flags.get(str(n), True)) if pd.notna(flags.get(str(n), True)) else True for n in names],
        dtype=bool,
    )


def _straight_nearest_m(facility_xy: np.ndarray, unit_xy: np.ndarray) -> np.ndarray:
    if len(facility_xy) == 0:
        return np.full(len(unit_xy), np.inf)
    return cKDTree(facility_xy).query(unit_xy, k=1)[0]


@dataclass
class CoverageResult:
    """Distances and coverage of one run.

    Attributes
    ----------
    method : str
        ``"straight"`` or ``"walk"``.
    cutoffs : list of Cutoff
    types : list of str
        Facility types evaluated, then :data:`ANY`.
    units : geopandas.GeoDataFrame
        One row per residential unit (WGS84 centre points): ``id``, ``name``, ``subdistrict``,
        ``population``, ``urban``, ``routable`` and ``nearest_m:<type>`` per type and ``any``
        (inf: no facility reachable; NaN: unit off the walking network).
    covered : dict
        ``(type, cutoff label)`` → bool array aligned with ``units``.
    facilities : geopandas.GeoDataFrame or None
        One row per facility of the evaluated types (and the "any" types), WGS84 centre points:
        ``id, name, type, facility_level`` (as recorded), ``level`` (the standard's level it
        matched, empty: the type's default), ``urban`` (its own setting) and ``reach_m``, the
        radius it used under the ``standard`` cutoff in its own setting (units of the other
        setting use that setting's value; the minute and one-radius cutoffs ignore levels).
    """

    method: str
    cutoffs: list[Cutoff]
    types: list[str]
    units: gpd.GeoDataFrame
    covered: dict[tuple[str, str], np.ndarray]
    facilities: gpd.GeoDataFrame | None = None

    def _cutoff(self, label: str | None) -> str:
        labels = [c.label for c in self.cutoffs]
        if label is None:
            return labels[-1]
        if label not in labels:
            raise CivicmapError(f"cutoff {label!r} unknown; expected one of {labels}")
        return label

    def _type(self, type_name: str) -> str:
        if type_name not in self.types:
            raise CivicmapError(f"type {type_name!r} not evaluated; expected one of {self.types}")
        return type_name

    def table(self, type_name: str = ANY, cutoff: str | None = None) -> pd.DataFrame:
        """Per sub-district, then the district: ``subdistrict, population, covered, share``."""
        hit = self.covered[(self._type(type_name), self._cutoff(cutoff))]
        pop = self.units["population"].to_numpy(dtype=float)
        frame = pd.DataFrame(
            {
                "subdistrict": self.units["subdistrict"].fillna("").astype(str).to_numpy(),
                "population": pop,
                "covered": np.where(hit, pop, 0.0),
            }
        )
        out = frame.groupby("subdistrict", sort=True, as_index=False)[["population", "covered"]].sum()
        total = pd.DataFrame(
            {"subdistrict": [DISTRICT_TOTAL], "population": [pop.sum()], "covered": [frame["covered"].sum()]}
        )
        out = pd.concat([out, total], ignore_index=True)
        out["population"] = out["population"].round().astype("int64")
        out["covered"] = out["covered"].round().astype("int64")
        out["share"] = np.where(out["population"] > 0, out["covered"] / out["population"].clip(lower=1), 0.0)
        return out

    def summary(self) -> pd.DataFrame:
        """Every type and cutoff in one long table: ``type, cutoff`` + the :meth:`table` columns."""
        parts = [
            self.table(t, c.label).assign(type=t, cutoff=c.label) for t in self.types for c in self.cutoffs
        ]
        out = pd.concat(parts, ignore_index=True)
        return out[["type", "cutoff", "subdistrict", "population", "covered", "share"]]

    def uncovered(self, type_name: str = ANY, cutoff: str | None = None) -> pd.DataFrame:
        """Units left out: ``id, name, subdistrict, population, distance_m, note``, farthest first.

        ``distance_m`` is to the nearest facility of the type (NaN when none can be reached);
        ``note`` is ``off_network`` (unit farther than the snap cap from every road),
        ``unreachable`` (no facility of the type reachable) or empty.
        """
        hit = self.covered[(self._type(type_name), self._cutoff(cutoff))]
        dist = self.units[f"nearest_m:{type_name}"].to_numpy(dtype=float)
        note = np.where(
            ~self.units["routable"].to_numpy(), "off_network", np.where(np.isinf(dist), "unreachable", "")
        )
        out = pd.DataFrame(
            {
                "id": self.units["id"].to_numpy(),
                "name": self.units["name"].to_numpy(),
                "subdistrict": self.units["subdistrict"].to_numpy(),
                "population": self.units["population"].to_numpy(),
                "distance_m": np.where(np.isfinite(dist), dist, np.nan),
                "note": note,
            }
        )[~hit]
        return out.sort_values("distance_m", ascending=False, na_position="first", kind="stable").reset_index(
            drop=True
        )


def compute_coverage(
    layers: dict[str, gpd.GeoDataFrame],
    *,
    method: str = "straight",
    standards: CoverageStandards | None = None,
    types: list[str] | None = None,
    radius_m: float | None = None,
    network: object = None,
    max_snap_m: float = WALK_SNAP_M,
) -> CoverageResult:
    """Residents within reach of cultural facilities, per type and for any.

    Parameters
    ----------
    layers
        WGS84 layers by kind: ``residential`` and ``cultural_facilities`` required;
        ``subdistricts`` (names, urban flag) and, for ``method="walk"``, ``roads``.
    method
        ``"straight"`` or ``"walk"``.
    standards
        Default :func:`load_standards`.
    types
        Facility types to evaluate (default: every type present); :data:`ANY` is always added.
    radius_m
        One threshold in metres for every type and unit instead of the minute circles.
    network
        A prepared :class:`geo.network.WalkNetwork` (else built from ``layers["roads"]``).
    max_snap_m
        Snap cap of the network built here: a compound's centre lies well inside it, so the
        default (:data:`WALK_SNAP_M`) is wider than the 50 m of gates and doors; the snap leg
        counts as a straight walk from the centre to the road.
    """
    from geo.network import WalkNetwork
    from geo.service_areas import nearest_walk_m

    if method not in METHODS:
        raise CivicmapError(f"method = {method!r}; expected one of {METHODS}")
    standards = standards or load_standards()
    for kind in ("residential", "cultural_facilities") + (
        ("roads",) if method == "walk" and network is None else ()
    ):
        if layers.get(kind) is None or layers[kind].empty:
            raise LayerError.single(kind, f"the {kind} layer is empty or missing: coverage needs it")
    residential, facilities = layers["residential"], layers["cultural_facilities"]
    subdistricts = layers.get("subdistricts")
    present = sorted(set(facilities["type"].dropna().astype(str)))
    if types is None:
        types = present
    unknown = [t for t in types if t not in FACILITY_TYPES]
    if unknown:
        raise CivicmapError(f"type(s) {unknown} unknown; expected some of {sorted(FACILITY_TYPES)}")
    centres = unit_points(residential)
    names = assign_subdistricts(residential, subdistricts)
    urban = _urban_flags(names, subdistricts)
    units = gpd.GeoDataFrame(
        {
            "id": residential["id"].astype(str).to_numpy(),
            "name": residential.get("name", residential["id"]).astype(str).to_numpy(),
            "subdistrict": names.to_numpy(),
            "population": pd.to_numeric(residential["population"]).fillna(0).to_numpy(),
            "urban": urban,
        },
        geometry=centres.to_numpy(),
        crs="EPSG:4326",
    )
    fac_points = unit_points(facilities)
    fac_type = facilities["type"].astype(str).to_numpy()
    raw_level = facilities["facility_level"] if "facility_level" in facilities.columns else None
    fac_level = np.array(
        [
            standards.level_of(t, None if raw_level is None else raw_level.iloc[i]) or ""
            for i, t in enumerate(fac_type)
        ],
        dtype=object,
    )
    wanted = sorted(set(types) | set(standards.any_types))
    # nearest distance per (type, level): "" is the type's default standard
    by_level: dict[tuple[str, str], np.ndarray] = {}
    if method == "walk":
        net = network or WalkNetwork.from_roads(layers["roads"], max_snap_m=max_snap_m)
        snapped_units = net.snap(centres.reset_index(drop=True))
        units["routable"] = snapped_units.routable
        for t in wanted:
            for level in sorted(set(fac_level[fac_type == t])):
                pts = fac_points[(fac_type == t) & (fac_level == level)].reset_index(drop=True)
                by_level[(t, level)] = nearest_walk_m(net, pts, snapped_units)[0]
        unreached = np.where(snapped_units.routable, np.inf, np.nan)
    else:
        units["routable"] = True
        crs = metric_crs(pd.concat([centres, fac_points]).values)
        unit_xy = shapely.get_coordinates(centres.to_crs(crs).values)
        fac_xy = shapely.get_coordinates(fac_points.to_crs(crs).values)
        for t in wanted:
            for level in sorted(set(fac_level[fac_type == t])):
                by_level[(t, level)] = _straight_nearest_m(
                    fac_xy[(fac_type == t) & (fac_level == level)], unit_xy
                )
        unreached = np.full(len(units), np.inf)
    cutoffs = standards.cutoffs(radius_m=radius_m)
    nearest: dict[str, np.ndarray] = {}
    covered: dict[tuple[str, str], np.ndarray] = {}
    for t in wanted:
        parts = {level: d for (tt, level), d in by_level.items() if tt == t}
        with np.errstate(invalid="ignore"):
            nearest[t] = np.fmin.reduce(list(parts.values())) if parts else unreached.copy()
            for c in cutoffs:
                covered[(t, c.label)] = np.logical_or.reduce(
                    [
                        d <= standards.threshold_m(c, t, urban, method, facility_level=level or None)
                        for level, d in parts.items()
                    ]
                    or [np.zeros(len(units), bool)]
                )
    any_types = [t for t in standards.any_types if t in nearest]
    for c in cutoffs:
        covered[(ANY, c.label)] = np.logical_or.reduce(
            [covered[(t, c.label)] for t in any_types] or [np.zeros(len(units), bool)]
        )
    for t in types:
        units[f"nearest_m:{t}"] = nearest[t]
    with np.errstate(invalid="ignore"):
        units[f"nearest_m:{ANY}"] = np.fmin.reduce([nearest[t] for t in any_types]) if any_types else np.inf
    evaluated = [*types, ANY]
    covered = {k: v for k, v in covered.items() if k[0] in evaluated}
    logger.info("coverage (%s): %d units, %d types, %d cutoffs", method, len(units), len(types), len(cutoffs))
    reach = _facility_reach(facilities, fac_points, fac_type, fac_level, subdistricts, standards, method)
    keep = np.isin(fac_type, wanted)
    return CoverageResult(method, cutoffs, evaluated, units, covered, reach[keep].reset_index(drop=True))


def _facility_reach(facilities, fac_points, fac_type, fac_level, subdistricts, standards, method):
    """One row per facility: its level and its reach under the ``standard`` cutoff, metres."""
    fac_urban = _urban_flags(assign_subdistricts(facilities, subdistricts), subdistricts)
    standard = Cutoff("standard")
    reach_m = [
        float(standards.threshold_m(standard, t, fac_urban[i : i + 1], method, facility_level=lv or None)[0])
        for i, (t, lv) in enumerate(zip(fac_type, fac_level, strict=True))
    ]
    raw = (
        facilities["facility_level"]
        if "facility_level" in facilities.columns
        else pd.Series(pd.NA, index=facilities.index)
    )
    return gpd.GeoDataFrame(
        {
            "id": facilities["id"].astype(str).to_numpy(),
            "name": facilities.get("name", facilities["id"]).astype(str).to_numpy(),
            "type": fac_type,
            "facility_level": raw.astype("string").to_numpy(),
            "level": fac_level.astype(str),
            "urban": fac_urban,
            "reach_m": np.array(reach_m, dtype=float),
        },
        geometry=fac_points.to_numpy(),
        crs="EPSG:4326",
    )


def free_for_minors_violations(
    facilities: gpd.GeoDataFrame, standards: CoverageStandards | None = None
) -> pd.DataFrame:
    """Facilities of a type that must be free for minors whose ``free_for_minors`` is not true.

    Returns ``id, name, type, subdistrict, free_for_minors`` (False, or missing when not
    recorded), sorted by id.
    """
    standards = standards or load_standards()
    flag = (
        facilities["free_for_minors"].astype("boolean")
        if "free_for_minors" in facilities.columns
        else (pd.Series(pd.NA, index=facilities.index, dtype="boolean"))
    )
    bad = facilities["type"].isin(standards.must_be_free) & ~flag.fillna(False).astype(bool)
    cols = [c for c in ("id", "name", "type", "subdistrict") if c in facilities.columns]
    out = facilities.loc[bad, cols].assign(free_for_minors=flag[bad])
    return pd.DataFrame(out).sort_values("id").reset_index(drop=True)


def subdistricts_without_centre(
    facilities: gpd.GeoDataFrame, subdistricts: gpd.GeoDataFrame, standards: CoverageStandards | None = None
) -> list[str]:
    """Names of sub-districts holding no grass-roots comprehensive cultural service centre.

    A facility belongs to the sub-district polygon holding it (else to its ``subdistrict``
    field); the centre types are ``[compliance] grassroots_centre`` of the standards.
    """
    standards = standards or load_standards()
    centres = facilities[facilities["type"].isin(standards.grassroots_centre)]
    held = set(assign_subdistricts(centres, subdistricts).dropna().astype(str)) if len(centres) else set()
    return sorted(str(n) for n in subdistricts["name"] if str(n) not in held)
