"""Walking reach of a set of facilities: nearest-facility distances and service areas.

Both use one Dijkstra from a virtual *super-source* joined to every facility's foot on the
network by an edge as long as that facility's snap leg, on the graph of
:class:`geo.network.WalkNetwork` with the facilities and the residential units as extra
nodes.  The distance of a node from the super-source is then its walk to the *nearest*
facility, snap leg included, in a single pass whatever the number of facilities; a
residential unit's distance adds its own snap leg (DOMAIN.md §1 "walking": point to foot +
network + foot to point).  Points farther than ``max_snap_m`` from every road are
unroutable: their distance is NaN, never invented.
"""

from __future__ import annotations

import logging

import numpy as np
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from geo.network import SnapResult, WalkNetwork

__all__ = ["nearest_walk_m", "service_area_lines"]

logger = logging.getLogger(__name__)

_ZERO_EDGE_M = 1e-9
_END_M = 1e-6  # a foot this close to a segment's end is on the end node (as in geo.network)  # a sparse matrix drops explicit zeros: a snap leg of 0 m becomes this


def _reach_from_sources(
    net: WalkNetwork, sources: SnapResult, extra: list[SnapResult], limit_m: float | None
) -> tuple[np.ndarray, sparse.csr_matrix, np.ndarray, list[np.ndarray]]:
    """Distance of every node of the augmented graph from the nearest routable source."""
    graph, xy, nodes = net.graph_with_points([sources, *extra])
    n = graph.shape[0]
    source_nodes = nodes[0]
    ok = source_nodes >= 0
    leg = np.full(n, np.inf)
    np.minimum.at(leg, source_nodes[ok], np.maximum(sources.snap_distance_m[ok], _ZERO_EDGE_M))
    targets = np.flatnonzero(np.isfinite(leg))
    coo = graph.tocoo()
    rows = np.concatenate([coo.row, np.full(len(targets), n)])
    cols = np.concatenate([coo.col, targets])
    weights = np.concatenate([coo.data, leg[targets]])
    augmented = sparse.csr_matrix((weights, (rows, cols)), shape=(n + 1, n + 1))
    if len(targets) == 0:
        return np.full(n, np.inf), graph, xy, nodes[1:]
    limit = np.inf if limit_m is None else float(limit_m)
    dist = csgraph.dijkstra(augmented, directed=True, indices=n, limit=limit)[:n]
    return dist, graph, xy, nodes[1:]


def nearest_walk_m(
    net: WalkNetwork, facilities: object, units: object, *, limit_m: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Walking distance from each unit to its nearest facility, in metres.

    Parameters
    ----------
    net
        The walking network.
    facilities, units
        WGS84 points as accepted by :meth:`WalkNetwork.snap` (or their :class:`SnapResult`).
    limit_m
        Optional bound of the search; walks longer than this come back as ``inf``.

    Returns
    -------
    distance_m : numpy.ndarray
        Per unit: snap legs + network metres to the nearest facility; ``inf`` when no routable
        facility is reachable (or beyond ``limit_m``); NaN when the unit itself is unroutable.
    routable : numpy.ndarray of bool
        Per unit: within ``max_snap_m`` of a walkable road.
    """
    fs, us = net.snap(facilities), net.snap(units)
    dist, _, _, (unit_nodes,) = _reach_from_sources(net, fs, [us], limit_m)
    out = np.full(len(unit_nodes), np.nan)
    ok = unit_nodes >= 0
    out[ok] = dist[unit_nodes[ok]] + us.snap_distance_m[ok]
    if limit_m is not None:
        out[ok & (out > limit_m)] = np.inf
    logger.info(
        "nearest walk: %d units, %d facilities, %d reached",
        len(out),
        len(fs.index),
        int(np.isfinite(out).sum()),
    )
    return out, ok


def service_area_lines(net: WalkNetwork, facilities: object, limit_m: float) -> shapely.Geometry:
    """The parts of the network within ``limit_m`` of walking from any facility (WGS84).

    Each edge is reached from either end by what is left of the budget there; an edge whose
    two reached parts meet is whole; the length of the result is the length of road within reach.  The facilities' snap legs count against the budget.

    Returns
    -------
    shapely.MultiLineString
        Reached pieces of road in WGS84 (empty when no facility is routable).
    """
    fs = net.snap(facilities)
    dist, graph, xy, _ = _reach_from_sources(net, fs, [], limit_m)
    coo = sparse.triu(graph).tocoo()
    a, b, w = coo.row, coo.col, coo.data
    # a segment split by a facility's foot stays in the graph whole beside its pieces: drop it
    seg_len = net.segments["length_m"].to_numpy()
    inner = (
        fs.routable & (fs.position_m > _END_M) & (fs.position_m < seg_len[np.maximum(fs.segment, 0)] - _END_M)
    )
    split = fs.segment[inner]
    u, v = net.segments["u"].to_numpy()[split], net.segments["v"].to_numpy()[split]
    n_nodes = graph.shape[0]
    whole_keys = np.minimum(u, v).astype(np.int64) * n_nodes + np.maximum(u, v)
    keep = ~np.isin(a.astype(np.int64) * n_nodes + b, whole_keys)
    a, b, w = a[keep], b[keep], w[keep]
    left_a = np.clip(limit_m - dist[a], 0.0, None)
    left_b = np.clip(limit_m - dist[b], 0.0, None)
    whole = left_a + left_b >= w
    pieces = []
    for i, j, length, la, lb, full in zip(a, b, w, left_a, left_b, whole, strict=True):
        if full:
            pieces.append((xy[i], xy[j]))
            continue
        step = (xy[j] - xy[i]) / length
        if la > 0:
            pieces.append((xy[i], xy[i] + step * la))
        if lb > 0:
            pieces.append((xy[j], xy[j] - step * lb))
    if not pieces:
        return shapely.MultiLineString([])
    metric = np.asarray(pieces)
    parts = shapely.linestrings(net.to_lonlat(metric))
    return shapely.MultiLineString(list(parts))
