"""Licence pre-check: may a venue of this kind open at this spot, under this profile?

The counter clerk types or clicks a location (in any datum); :func:`check_site` answers every
rule that applies to the kind with its verdict, the conflicting sites with their distances,
and the shortfall — how much farther the spot would have to be.  It runs the very evaluators
the batch violation list uses (on a one-row venue table), so the counter and the list never
disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.crs import WGS84, parse_crs, to_wgs84
from geo.distance import SiteIndex
from geo.rules import Rule
from geo.violations import RuleEngine
from layers.errors import CRSError, RuleError

CANDIDATE_ID = "candidate"
VIOLATION, RECHECK, OK = "violation", "recheck", "ok"


@dataclass
class RuleVerdict:
    """One rule's answer for the candidate location."""

    rule: Rule
    verdict: str  # violation | recheck | ok
    conflicts: pd.DataFrame  # site_id, site_name, site_kind, site_level, distance_m, method, approximate ...
    shortfall_m: float  # metres the spot falls short of the limit (0 when it complies; NaN for "inside")
    nearest: dict | None = None  # for a complying distance rule: the nearest protected site

    def to_dict(self) -> dict:
        return {
            "rule": self.rule.id,
            "type": self.rule.type,
            "limit_m": self.rule.limit_m,
            "method": self.rule.method,
            "basis_zh": self.rule.basis_zh,
            "basis_en": self.rule.basis_en,
            "verdict": self.verdict,
            "shortfall_m": None if np.isnan(self.shortfall_m) else round(float(self.shortfall_m), 2),
            "nearest": self.nearest,
            "conflicts": _records(self.conflicts),
        }


@dataclass
class SiteCheck:
    """The answer for one location and venue kind."""

    lon: float
    lat: float
    kind: str
    profile: str
    verdicts: list[RuleVerdict] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        found = {v.verdict for v in self.verdicts}
        return VIOLATION if VIOLATION in found else RECHECK if RECHECK in found else OK

    @property
    def shortfall_m(self) -> float:
        values = [
            v.shortfall_m for v in self.verdicts if v.verdict == VIOLATION and not np.isnan(v.shortfall_m)
        ]
        return max(values, default=0.0)

    def to_dict(self) -> dict:
        return {
            "lon": self.lon,
            "lat": self.lat,
            "kind": self.kind,
            "profile": self.profile,
            "verdict": self.verdict,
            "shortfall_m": round(self.shortfall_m, 2),
            "rules": [v.to_dict() for v in self.verdicts],
        }


def check_site(engine: RuleEngine, x: float, y: float, *, kind: str, crs: object = "wgs84") -> SiteCheck:
    """Every rule of ``engine.profile`` that regulates ``kind``, judged at one location.

    Parameters
    ----------
    engine
        A :class:`~geo.violations.RuleEngine` (keep it: its indexes make repeated checks fast).
    x, y
        Longitude and latitude (or easting/northing for a projected ``crs``).
    kind
        The venue kind applied for (``net_cafes``, ``game_venues`` … or ``pois:tobacco``).
    crs
        Datum of ``x, y``: wgs84, cgcs2000, gcj02, bd09 or EPSG:n.
    """
    datum = parse_crs(crs)
    lon_a, lat_a = to_wgs84([x], [y], datum)
    lon, lat = float(lon_a[0]), float(lat_a[0])
    if not (73.0 <= lon <= 136.0 and 3.0 <= lat <= 54.0):
        raise CRSError(f"location ({x}, {y}) in {datum} is ({lon:.6f}, {lat:.6f}) in WGS84: outside China")
    rules = engine.profile.rules_for(kind)
    if not rules:
        raise RuleError(f"profile {engine.profile.name!r} has no rule for {kind!r}")
    candidate = gpd.GeoDataFrame(
        {"id": [CANDIDATE_ID], "name": ["申请地址"], "venue_kind": [kind], "status": [""], "licence_no": [""],
         "is_door": [True]},
        geometry=[shapely.Point(lon, lat)],
        crs=WGS84,
    )  # fmt: skip
    result = SiteCheck(lon, lat, kind, engine.profile.name)
    band = engine.profile.recheck_band_m
    for rule in rules:
        if rule.type == "spacing":
            found = _spacing(engine, rule, lon, lat, band)
        else:
            found = engine.evaluate(rule, candidate)
        result.verdicts.append(_verdict(engine, rule, found, lon, lat))
    return result


def _spacing(engine: RuleEngine, rule: Rule, lon: float, lat: float, band: float) -> pd.DataFrame:
    existing = engine.regulated(rule)
    if existing.empty:
        return pd.DataFrame()
    near = SiteIndex(existing.geometry).distances_from(lon, lat, within_m=rule.limit_m + band)
    other = existing.iloc[near["site_index"].to_numpy()]
    distance = near["distance_m"].to_numpy()
    return pd.DataFrame(
        {
            "site_id": other["id"].to_numpy(),
            "site_name": other["name"].to_numpy(),
            "site_kind": other["venue_kind"].to_numpy(),
            "site_level": "",
            "distance_m": distance,
            "method": "boundary",
            "approximate": False,
            "approx_reason": "",
            "violation": distance <= rule.limit_m,
            "recheck": np.abs(distance - rule.limit_m) <= band,
            "shortfall_m": np.maximum(rule.limit_m - distance, 0.0),
            "geometry": shapely.linestrings(
                np.stack(
                    [np.broadcast_to([lon, lat], (len(near), 2)), near[["site_lon", "site_lat"]].to_numpy()],
                    1,
                )
            ),
        }
    )


def _verdict(engine: RuleEngine, rule: Rule, found: pd.DataFrame, lon: float, lat: float) -> RuleVerdict:
    if found.empty:
        return RuleVerdict(rule, OK, found, 0.0, _nearest(engine, rule, lon, lat))
    found = found.sort_values("distance_m", kind="stable").reset_index(drop=True)
    if found["violation"].any():
        verdict = VIOLATION
        shortfall = float("nan") if rule.type == "residential" else float(found["shortfall_m"].max())
    elif found["recheck"].any():
        verdict, shortfall = RECHECK, 0.0
    else:
        verdict, shortfall = OK, 0.0
    return RuleVerdict(rule, verdict, found, shortfall, _nearest(engine, rule, lon, lat))


def _nearest(engine: RuleEngine, rule: Rule, lon: float, lat: float) -> dict | None:
    """The nearest protected site by straight line, for context on the counter."""
    if rule.type != "distance":
        return None
    sites, index = engine.protected(rule)
    if sites.empty:
        return None
    near = index.nearest(lon, lat)
    row = sites.iloc[int(near["site_index"].iloc[0])]
    return {"site_id": row["id"], "site_name": row["name"], "site_level": row["level"],
            "straight_m": round(float(near["distance_m"].iloc[0]), 2)}  # fmt: skip


def _records(frame: pd.DataFrame) -> list[dict]:
    if frame.empty:
        return []
    keep = [c for c in ("site_id", "site_name", "site_kind", "site_level", "distance_m", "straight_m", "method",
                        "approximate", "approx_reason", "violation", "recheck") if c in frame.columns]  # fmt: skip
    out = frame[keep].copy()
    for col in ("distance_m", "straight_m"):
        if col in out:
            out[col] = out[col].astype(float).round(2)
    records = out.to_dict(orient="records")
    for rec, geom in zip(
        records, frame.geometry.values if "geometry" in frame else [None] * len(out), strict=False
    ):
        rec["line"] = shapely.geometry.mapping(geom) if geom is not None and not geom.is_empty else None
    return records
