"""The profile's limit buffers around protected sites, built exactly in metres (display only).

Each buffer is made in :func:`geo.crs.metric_crs` (transverse Mercator centred on the data,
k0 = 1) with 12 segments per quarter circle, so its chords fall at most
``limit·(1 − cos(π/48))`` (0.43 m at 200 m; a pixel is 0.5 m at the maps' zoom 18) inside
the true offset, then taken back to WGS84; fewer vertices keep the page light.  Rules sharing a limit share one buffer per site.
The analysis never uses these polygons: distances come from :mod:`geo.violations`.
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from geo.crs import metric_crs
from geo.rules import Profile

QUAD_SEGS = 12


def limit_buffers(layers: dict[str, gpd.GeoDataFrame], profile: Profile) -> gpd.GeoDataFrame:
    """Buffers of every distance rule's limit around the sites it protects.

    Parameters
    ----------
    layers
        Stored layers (WGS84) keyed by kind.
    profile
        The rule profile.

    Returns
    -------
    GeoDataFrame
        Columns ``site_id``, ``site_name``, ``rule`` (list of rule ids), ``limit_m``, ``geometry`` (WGS84).
    """
    parts = []
    for rule in profile.rules_of("distance"):
        for kind in rule.protected:
            sites = layers.get(kind)
            if sites is None or sites.empty:
                continue
            if rule.levels and "level" in sites.columns:
                sites = sites[sites["level"].isin(rule.levels)]
            if sites.empty or rule.limit_m <= 0:
                continue
            crs = metric_crs(sites.geometry.values)
            rings = sites.geometry.to_crs(crs).buffer(rule.limit_m, quad_segs=QUAD_SEGS).to_crs(4326)
            parts.append(
                gpd.GeoDataFrame(
                    {
                        "site_id": sites["id"].to_numpy(),
                        "site_name": sites["name"].to_numpy(),
                        "rule": rule.id,
                        "limit_m": float(rule.limit_m),
                    },
                    geometry=rings.to_numpy(),
                    crs=4326,
                )
            )
    if not parts:
        return gpd.GeoDataFrame(
            {"site_id": [], "site_name": [], "rule": [], "limit_m": []}, geometry=[], crs=4326
        )
    frame = pd.concat(parts, ignore_index=True)
    rules = frame.groupby(["site_id", "limit_m"], sort=False)["rule"].agg(list)
    frame = frame.drop_duplicates(["site_id", "limit_m"]).reset_index(drop=True)
    frame["rule"] = [rules[(s, lim)] for s, lim in zip(frame["site_id"], frame["limit_m"], strict=True)]
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=4326)
