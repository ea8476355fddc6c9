"""Walking distances for the ``gate-walk`` and ``door-walk`` regimes, on top of straight-line pairs.

:func:`walk_pairs` receives the (school, venue) pairs a straight-line pre-filter found — the
walk can only be longer than the straight line — and measures, for each, the shortest walk
over every gate of the school and every door of the venue (``door-walk``) or the venue point
(``gate-walk``).  Pairs whose walk exceeds the limit plus the recheck band are dropped (they
comply under this regime).  Where the walk cannot be measured the straight line stays, marked
``approximate`` with the reason — a distance is never invented.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.network import BEYOND_LIMIT, DESTINATION_OFF_NETWORK, NO_PATH, ORIGIN_OFF_NETWORK, minimum_walks
from geo.rules import Rule

if TYPE_CHECKING:
    from geo.violations import RuleEngine

REASON_TEXT = {
    "no_roads": "无道路图层，按直线测量 / no roads layer: straight line",
    "no_gates": "学校无校门数据，按校园边界直线测量 / no gates recorded: straight line from the campus",
    NO_PATH: "校门与场所之间路网不连通，按直线测量 / no walking path joins them: straight line",
    ORIGIN_OFF_NETWORK: "校门距道路超过{snap:.0f}米，无法步行测距，按直线测量 / gate {gap:.0f} m from any road: straight line",
    DESTINATION_OFF_NETWORK: "场所距道路超过{snap:.0f}米，无法步行测距，按直线测量 / venue {gap:.0f} m from any road: straight line",
    "no_doors": "场所无出入口数据，按场所点位测量 / no doors recorded: measured to the venue point",
}


def walk_pairs(
    engine: RuleEngine, rule: Rule, rows: pd.DataFrame, venues: gpd.GeoDataFrame, sites: gpd.GeoDataFrame
) -> pd.DataFrame:
    """Turn straight-line candidate rows into walking results (see the module docstring)."""
    rows = rows.reset_index(drop=True)
    network = engine.network
    if network is None:
        return _fallback(rows, np.ones(len(rows), bool), REASON_TEXT["no_roads"])
    gates = engine.layer("school_gates")
    gates = gates[gates["school_id"].isin(rows["site_id"])].reset_index(drop=True)
    has_gates = rows["site_id"].isin(gates["school_id"]).to_numpy()
    rows = _fallback(rows, ~has_gates, REASON_TEXT["no_gates"])
    if gates.empty:
        return rows
    dests = _destinations(engine, rule, venues, rows.loc[has_gates, "venue_pos"].unique())
    pairs = (
        rows.loc[has_gates, ["site_id", "venue_pos"]]
        .merge(
            gates[["school_id"]].reset_index(names="origin_index"), left_on="site_id", right_on="school_id"
        )
        .merge(dests[["venue_pos"]].reset_index(names="destination_index"), on="venue_pos")
    )
    walks = network.shortest_walks(
        gates.geometry,
        dests.geometry,
        pairs=pairs[["origin_index", "destination_index"]],
        limit_m=rule.limit_m + engine.profile.recheck_band_m,
        geometry=True,
    )
    best = minimum_walks(walks, gates["school_id"], dests["venue_pos"])
    best = best.rename(columns={"origin_group": "site_id", "destination_group": "venue_pos"})
    best["door_missing"] = dests["door_missing"].to_numpy()[best["destination_index"].to_numpy()]
    merged = rows.merge(best, on=["site_id", "venue_pos"], how="left", suffixes=("", "_walk"))
    keep = np.ones(len(merged), bool)
    for i, walk in merged.iterrows():
        if not has_gates[i]:
            continue
        reason = walk["reason"]
        if pd.isna(reason):
            merged.at[i, "distance_m"] = walk["distance_m_walk"]
            merged.at[i, "method"] = rule.method
            merged.at[i, "geometry"] = walk["geometry_walk"]
            if walk["door_missing"]:
                _mark(merged, i, REASON_TEXT["no_doors"])
        elif reason == BEYOND_LIMIT:
            keep[i] = False
        else:
            gap = walk["origin_snap_m"] if reason == ORIGIN_OFF_NETWORK else walk["destination_snap_m"]
            _mark(merged, i, REASON_TEXT[reason].format(snap=network.max_snap_m, gap=gap))
    return merged.loc[keep, rows.columns].reset_index(drop=True)


def _destinations(
    engine: RuleEngine, rule: Rule, venues: gpd.GeoDataFrame, positions: np.ndarray
) -> gpd.GeoDataFrame:
    """Walk end points per venue: its doors (door-walk), else its point; ``door_missing`` when a door was wanted."""
    points = venues.geometry.values[positions]
    points = gpd.GeoSeries(points, crs="EPSG:4326").representative_point()
    base = gpd.GeoDataFrame({"venue_pos": positions}, geometry=points.values, crs="EPSG:4326")
    # A pre-checked location is itself the door: nothing is missing.
    given_as_door = (
        venues["is_door"].to_numpy(bool)[positions] if "is_door" in venues else np.zeros(len(positions), bool)
    )
    if rule.method != "door-walk":
        return base.assign(door_missing=False)
    base = base.assign(door_missing=~given_as_door)
    doors = engine._doors_of(venues)
    doors = doors[doors["venue_pos"].isin(positions)]
    without = base[~base["venue_pos"].isin(doors["venue_pos"])]
    with_doors = gpd.GeoDataFrame(
        {"venue_pos": doors["venue_pos"].to_numpy(), "door_missing": False},
        geometry=doors.geometry.values,
        crs="EPSG:4326",
    )
    return gpd.GeoDataFrame(pd.concat([with_doors, without], ignore_index=True), crs="EPSG:4326")


def _mark(rows: pd.DataFrame, i: int, reason: str) -> None:
    rows.at[i, "approximate"] = True
    previous = rows.at[i, "approx_reason"]
    rows.at[i, "approx_reason"] = f"{previous}; {reason}" if previous else reason


def _fallback(rows: pd.DataFrame, mask: np.ndarray, reason: str) -> pd.DataFrame:
    rows = rows.copy()
    for i in np.flatnonzero(mask):
        _mark(rows, i, reason)
    return rows
