"""Inspection tours: the targets of one team and day in a short visiting order.

An inspector's day is an *open* path: it starts at a given stop (the team's office, or the
most urgent target) and ends wherever the last visit is.  The order is built by the
nearest-neighbour heuristic and then improved by 2-opt (reverse a stretch of the path while
that shortens it), which never lengthens a tour: the result is at most as long as the
nearest-neighbour path it started from.

Distances are straight lines (geodesic, WGS84 ellipsoid) or walking routes on the road network
(:class:`geo.network.WalkNetwork`); a stop the network cannot reach keeps its straight line to
every other stop, so one unroutable venue never breaks a tour.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.crs import geodesic_distance_m
from geo.network import WalkNetwork
from layers.errors import CivicmapError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tour:
    """A visiting order over the rows of a distance matrix.

    ``order``: row positions in visiting order (the start first); ``length_m``: total length
    of the open path; ``nearest_neighbour_m``: length of the nearest-neighbour path 2-opt
    started from.
    """

    order: list[int]
    length_m: float
    nearest_neighbour_m: float


def straight_matrix_m(points: gpd.GeoSeries | gpd.GeoDataFrame) -> np.ndarray:
    """Geodesic distances in metres between every pair of points (WGS84 point geometries)."""
    geoms = points.geometry if isinstance(points, gpd.GeoDataFrame) else points
    if len(geoms) and geoms.crs is not None and not geoms.crs.equals("EPSG:4326"):
        geoms = geoms.to_crs("EPSG:4326")
    lon = np.asarray(geoms.x, dtype=float)
    lat = np.asarray(geoms.y, dtype=float)
    n = len(lon)
    i, j = np.triu_indices(n, k=1)
    matrix = np.zeros((n, n))
    if len(i):
        d = geodesic_distance_m(lon[i], lat[i], lon[j], lat[j])
        matrix[i, j] = d
        matrix[j, i] = d
    return matrix


def walking_matrix_m(points: gpd.GeoSeries | gpd.GeoDataFrame, network: WalkNetwork) -> np.ndarray:
    """Walking distances in metres between every pair of points; straight lines where unroutable."""
    geoms = points.geometry if isinstance(points, gpd.GeoDataFrame) else points
    geoms = gpd.GeoSeries(np.asarray(geoms.values), crs=geoms.crs or "EPSG:4326").reset_index(drop=True)
    matrix = straight_matrix_m(geoms)
    if len(geoms) < 2:
        return matrix
    walks = network.shortest_walks(geoms, geoms)
    ok = walks["distance_m"].notna().to_numpy()
    oi = walks["origin_index"].to_numpy(int)[ok]
    di = walks["destination_index"].to_numpy(int)[ok]
    walked = matrix.copy()
    walked[oi, di] = walks["distance_m"].to_numpy(float)[ok]
    walked = np.maximum(walked, matrix)  # a walk is never shorter than the straight line
    np.fill_diagonal(walked, 0.0)
    unroutable = len(geoms) * len(geoms) - len(geoms) - int((oi != di).sum())
    if unroutable:
        log.info(
            "%d of %d stop pairs unroutable; straight lines used", unroutable, len(geoms) ** 2 - len(geoms)
        )
    return walked


def path_length_m(distance_m: np.ndarray, order: list[int]) -> float:
    """Length of the open path visiting ``order`` (metres)."""
    if len(order) < 2:
        return 0.0
    idx = np.asarray(order)
    return float(distance_m[idx[:-1], idx[1:]].sum())


def nearest_neighbour(distance_m: np.ndarray, start: int = 0) -> list[int]:
    """Open path from ``start``, always going to the nearest stop not yet visited (ties: lowest row)."""
    n = len(distance_m)
    if n == 0:
        return []
    visited = np.zeros(n, dtype=bool)
    order = [start]
    visited[start] = True
    for _step in range(n - 1):
        row = np.where(visited, np.inf, distance_m[order[-1]])
        nxt = int(np.argmin(row))
        order.append(nxt)
        visited[nxt] = True
    return order


def two_opt(distance_m: np.ndarray, order: list[int], *, max_rounds: int = 1000) -> list[int]:
    """Improve an open path with a fixed first stop by 2-opt moves until none shortens it.

    A move reverses ``order[i..j]`` (``1 <= i < j``); when ``j`` is the last stop only the edge
    into the stretch changes.  Each accepted move shortens the path, so the result is never
    longer than ``order``.

    Parameters
    ----------
    distance_m
        Square matrix of distances (need not be symmetric, but the moves assume it is).
    order
        The starting path, e.g. from :func:`nearest_neighbour`.
    max_rounds
        Passes over every (i, j) at most.
    """
    route = np.asarray(order, dtype=int)
    n = len(route)
    if n < 3:
        return route.tolist()
    d = distance_m
    eps = 1e-9
    for _round in range(max_rounds):
        improved = False
        for i in range(1, n - 1):
            a, b = route[i - 1], route[i]
            # stretches ending before the last stop: edges (a,b) and (c,e) become (a,c) and (b,e)
            js = np.arange(i + 1, n)
            c = route[js]
            e = np.append(route[js[:-1] + 1], -1)
            gain = d[a, b] - d[a, c]
            closing = e >= 0
            gain[closing] += d[c[closing], e[closing]] - d[b, e[closing]]
            k = int(np.argmax(gain))
            if gain[k] > eps:
                j = int(js[k])
                route[i : j + 1] = route[i : j + 1][::-1]
                improved = True
        if not improved:
            break
    return route.tolist()


def plan_tour(distance_m: np.ndarray, *, start: int = 0) -> Tour:
    """Nearest-neighbour path from ``start`` improved by 2-opt.

    Parameters
    ----------
    distance_m
        Square matrix of distances in metres (:func:`straight_matrix_m`, :func:`walking_matrix_m`).
    start
        Row of the first stop.

    Returns
    -------
    Tour
    """
    matrix = np.asarray(distance_m, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise CivicmapError(f"tour: distance matrix must be square, got shape {matrix.shape}")
    n = len(matrix)
    if n and not 0 <= start < n:
        raise CivicmapError(f"tour: start = {start} is not a row of the {n} × {n} matrix")
    if not np.isfinite(matrix).all():
        raise CivicmapError("tour: the distance matrix holds missing or infinite distances")
    first = nearest_neighbour(matrix, start)
    improved = two_opt(matrix, first)
    return Tour(improved, path_length_m(matrix, improved), path_length_m(matrix, first))


def plan_routes(
    targets: gpd.GeoDataFrame,
    *,
    stops_per_day: int = 8,
    network: WalkNetwork | None = None,
) -> gpd.GeoDataFrame:
    """Split each team's targets into days (most urgent first) and order each day into a tour.

    Parameters
    ----------
    targets
        A target table (:func:`geo.targets.build_targets`) with ``team``, ``rank`` and WGS84 points.
    stops_per_day
        Targets per team and day: day 1 holds the team's ``stops_per_day`` best-ranked targets.
    network
        Walk on this road network; straight lines when None.

    Returns
    -------
    geopandas.GeoDataFrame
        A copy with ``route_day`` and ``route_order`` (1 = first visit, starting at the day's
        most urgent target) filled in.
    """
    if stops_per_day < 1:
        raise CivicmapError(f"tour: stops_per_day = {stops_per_day} must be at least 1")
    out = targets.copy()
    day = np.zeros(len(out), dtype="int64")
    order = np.zeros(len(out), dtype="int64")
    positions = pd.Series(np.arange(len(out)), index=out.index)
    for _team, group in out.sort_values("rank", kind="stable").groupby("team", sort=False):
        pos = positions[group.index].to_numpy()
        for start in range(0, len(pos), stops_per_day):
            chunk = pos[start : start + stops_per_day]
            points = out.geometry.iloc[chunk]
            matrix = walking_matrix_m(points, network) if network is not None else straight_matrix_m(points)
            tour = plan_tour(matrix, start=0)
            day[chunk] = start // stops_per_day + 1
            order[chunk[tour.order]] = np.arange(1, len(chunk) + 1)
    out["route_day"] = pd.array(day, dtype="Int64")
    out["route_order"] = pd.array(order, dtype="Int64")
    return out
