"""Walking network for the ``gate-walk`` and ``door-walk`` measuring regimes (DOMAIN.md §1).

:meth:`WalkNetwork.from_roads` takes a WGS84 roads layer (rows whose ``walkable`` is False are
left out; a missing value counts as walkable, the schema's default), projects it with
:func:`geo.crs.metric_crs` (or a CRS passed in, e.g. a :func:`geo.crs.zone_crs` band) and nodes
it at its vertices: each straight piece between consecutive vertices is one undirected edge
weighted by its length in metres, and vertices within ``merge_tolerance_m`` (0.01 m) become one
node.  Lines crossing without a shared vertex do not connect (bridges, tunnels).

Points snap to the nearest *segment*; the perpendicular foot splits it virtually.  A point
farther than ``max_snap_m`` (50 m) is unroutable: its snap distance is reported, no distance
is invented.  Walks run from the point itself to the other point itself, so the snap legs
(gate → road, road → door) count: ``distance_m = origin_snap_m + network_m +
destination_snap_m``.  Two points on one segment are joined directly along it.

For the violation engine: pass the (gate, door) pairs of a straight-line pre-filter to
:meth:`WalkNetwork.shortest_walks` with ``limit_m`` (one bounded Dijkstra per origin covers all
its destinations), then :func:`minimum_walks` keeps the shortest gate/door pair per (school,
venue).
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer
from scipy import sparse
from scipy.sparse import csgraph
from scipy.spatial import cKDTree
from shapely.geometry import LineString
from shapely.geometry.base import BaseGeometry

from geo.crs import metric_crs, parse_crs
from layers.errors import CRSError, LayerError, Problem

__all__ = ["BEYOND_LIMIT", "DESTINATION_OFF_NETWORK", "NO_PATH", "ORIGIN_OFF_NETWORK", "REASONS"]
__all__ += ["PointGraph", "SnapResult", "WalkNetwork", "minimum_walks"]

logger = logging.getLogger(__name__)

#: why a walk has no distance; ranked from most to least informative (see :func:`minimum_walks`)
BEYOND_LIMIT = "beyond_limit"  # a path exists but is longer than limit_m
NO_PATH = "no_path"  # the two points lie on disconnected parts of the network
DESTINATION_OFF_NETWORK = "destination_off_network"  # no geometry, or farther than max_snap_m
ORIGIN_OFF_NETWORK = "origin_off_network"
REASONS = (BEYOND_LIMIT, NO_PATH, DESTINATION_OFF_NETWORK, ORIGIN_OFF_NETWORK)

_POSITION_QUANTUM_M = 1e-6  # snapped positions closer than this along a segment share a node
_DIJKSTRA_CELLS = 8_000_000  # sources x nodes per Dijkstra call without a limit (64 MB of float64)
_SUBGRAPH_NODES = 20_000  # under a limit, origins are searched in cells of about this many nodes
_LONLAT_CRS = (CRS.from_epsg(4326), CRS.from_epsg(4490))  # WGS84 and CGCS2000 (equal at this accuracy)
_WALK_COLUMNS = ["origin_index", "destination_index", "distance_m", "network_m", "origin_snap_m",
                 "destination_snap_m", "reason"]  # fmt: skip


@dataclass(frozen=True, eq=False)
class SnapResult:
    """Points snapped onto the network; arrays aligned with ``index``.

    ``index``: labels of the input points (a GeoDataFrame's index, else 0..n-1);
    ``segment``: row of :attr:`WalkNetwork.segments` nearest to the point (-1: no geometry);
    ``position_m``: distance of the foot from that segment's ``u`` end;
    ``snap_distance_m``: point to foot, metres (NaN: no geometry);
    ``routable``: a geometry and ``snap_distance_m <= max_snap_m``;
    ``point_xy``, ``foot_xy``: (n, 2) in the network's metric CRS; ``lonlat``: the point as given.
    """

    index: pd.Index
    segment: np.ndarray
    position_m: np.ndarray
    snap_distance_m: np.ndarray
    routable: np.ndarray
    point_xy: np.ndarray
    foot_xy: np.ndarray
    lonlat: np.ndarray

    def to_frame(self) -> pd.DataFrame:
        """The snap as a DataFrame indexed like the input points."""
        names = ("segment", "position_m", "snap_distance_m", "routable")
        return pd.DataFrame({name: getattr(self, name) for name in names}, index=self.index)


class PointGraph(NamedTuple):
    """The network with snapped points as extra nodes (see :meth:`WalkNetwork.graph_with_points`)."""

    graph: sparse.csr_matrix
    node_xy: np.ndarray
    point_nodes: list[np.ndarray]


def _wgs84_geometries(data: object, what: str) -> tuple[pd.Index, np.ndarray]:
    """Index labels and an object array of geometries, after checking they are WGS84."""
    if isinstance(data, BaseGeometry):
        data = [data]
    crs = getattr(data, "crs", None)
    if isinstance(data, gpd.GeoDataFrame):
        index, geoms = data.index, np.asarray(data.geometry.array, dtype=object)
    elif isinstance(data, pd.Series):
        index, geoms = data.index, np.asarray(data.array, dtype=object)
    else:
        geoms = np.empty(len(data), dtype=object)  # type: ignore[arg-type]
        geoms[:] = list(data)  # type: ignore[call-overload]
        index = pd.RangeIndex(len(geoms))
    quick = isinstance(crs, CRS) and any(crs.equals(c, ignore_axis_order=True) for c in _LONLAT_CRS)
    if crs is not None and not quick and parse_crs(crs).name not in ("wgs84", "cgcs2000"):
        raise CRSError(
            f"{what}: CRS {parse_crs(crs)} received, WGS84 lon/lat (EPSG:4326) expected; "
            "convert with geo.crs.geometry_to_wgs84 first"
        )
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if present.any():
        minx, miny, maxx, maxy = shapely.total_bounds(geoms[present])
        if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
            raise CRSError(
                f"{what}: coordinates span x {minx:.1f}…{maxx:.1f}, y {miny:.1f}…{maxy:.1f}, which is "
                "not lon/lat; WGS84 (EPSG:4326) expected"
            )
    return index, geoms


@lru_cache(maxsize=16)
def _transformers(crs: CRS) -> tuple[Transformer, Transformer]:
    """WGS84 → ``crs`` and back, lon/lat order."""
    return (Transformer.from_crs(_LONLAT_CRS[0], crs, always_xy=True),
            Transformer.from_crs(crs, _LONLAT_CRS[0], always_xy=True))  # fmt: skip


def _merge_vertices(xy: np.ndarray, tolerance_m: float) -> np.ndarray:
    """Node label of every vertex: vertices within ``tolerance_m`` (transitively) share one."""
    near = cKDTree(xy).query_pairs(r=tolerance_m, output_type="ndarray")
    n = len(xy)
    links = sparse.coo_matrix((np.ones(len(near)), (near[:, 0], near[:, 1])), shape=(n, n))
    return csgraph.connected_components(links, directed=False)[1]


def _symmetric(i: np.ndarray, j: np.ndarray, w: np.ndarray, n: int) -> sparse.csr_matrix:
    ij = (np.concatenate([i, j]), np.concatenate([j, i]))
    return sparse.csr_matrix((np.concatenate([w, w]), ij), (n, n))


class WalkNetwork:
    """An undirected walking graph in metres, built with :meth:`from_roads`.

    Attributes
    ----------
    crs : pyproj.CRS
        The metric CRS of the graph.
    max_snap_m : float
        Points farther than this from every segment are unroutable.
    node_xy : numpy.ndarray, shape (n_nodes, 2)
        Node coordinates in ``crs``.
    segments : pandas.DataFrame
        One row per straight segment: ``road_index`` (label of the roads row), ``u``, ``v``
        (nodes; ``u`` is where ``position_m`` is 0) and ``length_m``.
    """

    def __init__(self, node_xy: np.ndarray, segments: pd.DataFrame, crs: CRS, *, max_snap_m: float) -> None:
        if not max_snap_m >= 0:
            raise ValueError(f"max_snap_m = {max_snap_m!r}: a distance >= 0 in metres expected")
        self.crs, self.max_snap_m, self.node_xy, self.segments = crs, float(max_snap_m), node_xy, segments
        self._to_metric, self._to_lonlat = _transformers(crs)
        self._u, self._v = segments["u"].to_numpy(), segments["v"].to_numpy()
        self._len = segments["length_m"].to_numpy()
        a, b = np.minimum(self._u, self._v), np.maximum(self._u, self._v)
        keep = np.unique(a * len(node_xy) + b, return_index=True)[1]  # parallel duplicates: equal lengths
        self._edges = (a[keep], b[keep], self._len[keep])
        pieces = shapely.linestrings(np.stack([node_xy[self._u], node_xy[self._v]], axis=1))
        self._tree = shapely.STRtree(pieces)

    @classmethod
    def from_roads(
        cls,
        roads: gpd.GeoDataFrame,
        *,
        max_snap_m: float = 50.0,
        crs: CRS | None = None,
        merge_tolerance_m: float = 0.01,
    ) -> WalkNetwork:
        """Build the network from a WGS84 roads layer.

        Parameters
        ----------
        roads
            GeoDataFrame (or GeoSeries / geometries) of LineStrings and MultiLineStrings in
            WGS84; an optional bool column ``walkable`` drops rows that are False.
        max_snap_m
            Snap cap for :meth:`snap`, in metres.
        crs
            Metric CRS to use; default :func:`geo.crs.metric_crs` of the roads.
        merge_tolerance_m
            Vertices closer than this are joined into one node.

        Raises
        ------
        CRSError
            Roads not in WGS84, or spanning more longitude than one projection allows.
        LayerError
            Non-line geometries (all listed), or no walkable line at all.
        """
        index, geoms = _wgs84_geometries(roads, "roads")
        keep = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        if isinstance(roads, pd.DataFrame) and "walkable" in roads.columns:
            keep &= roads["walkable"].astype("boolean").fillna(True).to_numpy(dtype=bool)
        kinds = shapely.get_type_id(geoms)
        bad = np.flatnonzero(keep & ~np.isin(kinds, (1, 5)))
        if len(bad):
            expected = "LineString or MultiLineString"
            raise LayerError(
                [Problem("roads", int(i) + 1, "geometry", geoms[i].geom_type, expected) for i in bad]
            )
        parts, part_of = shapely.get_parts(geoms[keep], return_index=True)
        if len(parts) == 0:
            raise LayerError.single("roads", "no walkable line: a walking network needs at least one road")
        crs = metric_crs(parts) if crs is None else crs
        lonlat, line_of = shapely.get_coordinates(parts, return_index=True)
        xy = np.column_stack(_transformers(crs)[0].transform(lonlat[:, 0], lonlat[:, 1]))
        labels = _merge_vertices(xy, merge_tolerance_m)
        _, first = np.unique(labels, return_index=True)
        node_xy = xy[first]
        start = np.flatnonzero(line_of[:-1] == line_of[1:])
        u, v = labels[start], labels[start + 1]
        ok = u != v
        u, v = u[ok], v[ok]
        road_pos = np.flatnonzero(keep)[part_of[line_of[start[ok]]]]
        segments = pd.DataFrame({"road_index": index.take(road_pos), "u": u, "v": v,
                                 "length_m": np.hypot(*(node_xy[v] - node_xy[u]).T)})  # fmt: skip
        if segments.empty:
            raise LayerError.single("roads", "every walkable line has zero length: no network can be built")
        net = cls(node_xy, segments, crs, max_snap_m=max_snap_m)
        n_parts, _ = csgraph.connected_components(_symmetric(*net._edges, len(node_xy)), directed=False)
        logger.info(
            "walking network: %d of %d roads, %d segments, %d nodes (%d vertices merged), %d component(s)",
            int(keep.sum()), len(geoms), len(segments), len(node_xy), len(xy) - len(node_xy), n_parts,
        )  # fmt: skip
        return net

    # ------------------------------------------------------------------ snapping
    def snap(self, points: object) -> SnapResult:
        """Snap WGS84 points onto their nearest segment.

        Parameters
        ----------
        points
            GeoDataFrame / GeoSeries / sequence of shapely Points in WGS84 (missing or empty
            geometries are unroutable), or a :class:`SnapResult` (returned as is).
        """
        if isinstance(points, SnapResult):
            return points
        index, geoms = _wgs84_geometries(points, "points")
        n = len(geoms)
        present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        not_points = np.flatnonzero(present & (shapely.get_type_id(geoms) != 0))
        if len(not_points):
            found = {str(index[i]): geoms[i].geom_type for i in not_points[:5]}
            raise ValueError(f"points: {len(not_points)} geometries are not Points, e.g. {found}")
        lonlat = np.full((n, 2), np.nan)
        lonlat[present] = shapely.get_coordinates(geoms[present])
        xy = np.column_stack(self._to_metric.transform(lonlat[:, 0], lonlat[:, 1]))
        pts = shapely.points(xy[present])
        found_seg = np.full(len(pts), -1)
        hit, seg = self._tree.query_nearest(pts, max_distance=self.max_snap_m + 1.0, all_matches=False)
        found_seg[hit] = seg
        far = np.flatnonzero(found_seg < 0)
        if len(far):  # report how far the unroutable points are
            hit, seg = self._tree.query_nearest(pts[far], all_matches=False)
            found_seg[far[hit]] = seg
        segment = np.full(n, -1)
        segment[present] = found_seg
        s = np.where(segment >= 0, segment, 0)
        a, b = self.node_xy[self._u[s]], self.node_xy[self._v[s]]
        t = np.clip(np.einsum("ij,ij->i", xy - a, b - a) / self._len[s] ** 2, 0.0, 1.0)
        foot = a + t[:, None] * (b - a)
        snap_m = np.where(present, np.hypot(*(xy - foot).T), np.nan)
        routable = present & (snap_m <= self.max_snap_m)
        if not routable.all():
            logger.info("snap: %d of %d points unroutable (beyond %g m or no geometry)",
                        n - int(routable.sum()), n, self.max_snap_m)  # fmt: skip
        return SnapResult(index, segment, np.where(present, t * self._len[s], np.nan), snap_m, routable, xy,
                          np.where(present[:, None], foot, np.nan), lonlat)  # fmt: skip

    def graph_with_points(self, snaps: list[SnapResult]) -> PointGraph:
        """The walking graph with every routable snapped point as a node splitting its segment.

        For callers that run their own searches on the network (walkable areas, nearest-facility
        walks): one Dijkstra on :attr:`PointGraph.graph` from a point's node gives network
        metres to every node and to every other point; add the snap legs
        (:attr:`SnapResult.snap_distance_m`) for the walk from the point itself.

        Parameters
        ----------
        snaps
            Results of :meth:`snap`, in the order their nodes are wanted.

        Returns
        -------
        PointGraph
            ``graph``: symmetric CSR matrix of edge lengths in metres over ``len(node_xy)``
            nodes, the network's nodes first (same numbers as :attr:`node_xy`);
            ``node_xy``: (n, 2) node coordinates in :attr:`crs`; ``point_nodes``: per
            SnapResult, the node of each point (-1 when unroutable).  Points at the same
            position share a node; points at a segment's end use the end node; points on one
            segment are chained in order of position, so walks between them run along it.  A
            split segment keeps its own edge beside its pieces (distances are unchanged; drop it
            when listing the graph's edges as pieces of road).
        """
        graph, xy, nodes = self._augmented(snaps)
        return PointGraph(graph, xy, nodes)

    def to_lonlat(self, xy: object) -> np.ndarray:
        """Coordinates in the network's metric :attr:`crs` (array of shape (..., 2)) to WGS84 lon/lat."""
        xy = np.asarray(xy, dtype=float)
        lon, lat = self._to_lonlat.transform(xy[..., 0].ravel(), xy[..., 1].ravel())
        return np.column_stack([lon, lat]).reshape(xy.shape)

    def _augmented(self, snaps: list[SnapResult]) -> tuple[sparse.csr_matrix, np.ndarray, list[np.ndarray]]:
        """:meth:`graph_with_points` as a plain tuple."""
        seg = np.concatenate([s.segment for s in snaps])
        ok = np.concatenate([s.routable for s in snaps])
        s = seg[ok]
        length = self._len[s]
        pos = np.round(np.concatenate([sn.position_m for sn in snaps])[ok] / _POSITION_QUANTUM_M)
        pos *= _POSITION_QUANTUM_M
        node = np.where(pos <= _POSITION_QUANTUM_M, self._u[s], self._v[s])
        mid = np.flatnonzero((pos > _POSITION_QUANTUM_M) & (pos < length - _POSITION_QUANTUM_M))
        order = mid[np.lexsort((pos[mid], s[mid]))]
        new = np.ones(len(order), dtype=bool)
        new[1:] = (s[order][1:] != s[order][:-1]) | (pos[order][1:] != pos[order][:-1])
        n = len(self.node_xy)
        node[order] = n + np.cumsum(new) - 1
        us, up = s[order][new], pos[order][new]  # one virtual node per distinct (segment, position)
        ids = n + np.arange(len(us))
        first = np.ones(len(us), dtype=bool)
        first[1:] = us[1:] != us[:-1]
        last = np.ones(len(us), dtype=bool)
        last[:-1] = first[1:]
        prev = np.where(first, self._u[us], np.concatenate([[-1], ids[:-1]]))
        prev_pos = np.where(first, 0.0, np.concatenate([[0.0], up[:-1]]))
        ea, eb, ew = self._edges
        i = np.concatenate([ea, prev, ids[last]])
        j = np.concatenate([eb, ids, self._v[us[last]]])
        w = np.concatenate([ew, up - prev_pos, self._len[us[last]] - up[last]])
        a, b = self.node_xy[self._u[us]], self.node_xy[self._v[us]]
        xy = np.vstack([self.node_xy, a + (up / self._len[us])[:, None] * (b - a)])
        nodes = np.full(len(seg), -1)
        nodes[ok] = node
        bounds = np.cumsum([0] + [len(sn.segment) for sn in snaps])
        return _symmetric(i, j, w, len(xy)), xy, [nodes[lo:hi] for lo, hi in itertools.pairwise(bounds)]

    # ------------------------------------------------------------------ walks
    def shortest_walks(
        self,
        origins: object,
        destinations: object,
        *,
        pairs: object = None,
        limit_m: float | None = None,
        geometry: bool = False,
    ) -> pd.DataFrame:
        """Walking distance of origin/destination pairs, in metres, snap legs included.

        Parameters
        ----------
        origins, destinations
            Points as accepted by :meth:`snap`, or their :class:`SnapResult`.
        pairs
            Pairs to measure, as index *labels* of origins and destinations: a DataFrame with
            columns ``origin_index`` and ``destination_index``, or an array-like of shape (k, 2).
            Default: every origin with every destination.
        limit_m
            Walks longer than this (in total) get no distance, reason ``beyond_limit``; it also
            bounds each Dijkstra search, which is what keeps a city-wide run fast.
        geometry
            Also return each route as a WGS84 LineString from the origin point to the
            destination point (snap legs included); the result is then a GeoDataFrame.

        Returns
        -------
        pandas.DataFrame
            One row per pair, in the order of ``pairs``: ``origin_index``,
            ``destination_index``, ``distance_m`` (NaN when there is none), ``network_m``,
            ``origin_snap_m``, ``destination_snap_m`` and ``reason`` (NaN when measured, else
            one of :data:`REASONS`).
        """
        if limit_m is not None and not limit_m >= 0:
            raise ValueError(f"limit_m = {limit_m!r}: a distance >= 0 in metres expected")
        started = time.perf_counter()
        so, sd = self.snap(origins), self.snap(destinations)
        po, pd_ = _pair_positions(so, sd, pairs)
        graph, xy, (vo, vd) = self._augmented([so, sd])
        sel = np.flatnonzero((vo[po] >= 0) & (vd[pd_] >= 0))
        lim = None if limit_m is None else limit_m - so.snap_distance_m[po[sel]]
        net = np.full(len(po), np.inf)
        found, paths = _search(graph, xy, vo[po[sel]], vd[pd_[sel]], lim, geometry)
        net[sel] = found
        routes = np.full(len(po), None, dtype=object)
        for k, path in zip(sel, paths, strict=True):
            if path is not None:
                routes[k] = self._route_line(so, po[k], sd, pd_[k], xy[path])
        total = so.snap_distance_m[po] + net + sd.snap_distance_m[pd_]
        reason = np.full(len(po), None, dtype=object)
        if limit_m is not None:
            reason[np.isfinite(total) & (total > limit_m)] = BEYOND_LIMIT
            unreached = sel[np.isinf(net[sel])]
            _, part = csgraph.connected_components(graph, directed=False)
            same = part[vo[po[unreached]]] == part[vd[pd_[unreached]]]
            reason[unreached] = np.where(same, BEYOND_LIMIT, NO_PATH)
        else:
            reason[np.isinf(net)] = NO_PATH
        reason[~sd.routable[pd_]] = DESTINATION_OFF_NETWORK
        reason[~so.routable[po]] = ORIGIN_OFF_NETWORK
        measured = pd.isna(reason)
        routes[~measured] = None
        values = (so.index.take(po), sd.index.take(pd_), np.where(measured, total, np.nan),
                  np.where(measured, net, np.nan), so.snap_distance_m[po], sd.snap_distance_m[pd_],
                  pd.array(reason, dtype="str"))  # fmt: skip
        out = pd.DataFrame(dict(zip(_WALK_COLUMNS, values, strict=True)))
        logger.info("shortest_walks: %d pairs, %d measured, %.2f s",
                    len(po), int(measured.sum()), time.perf_counter() - started)  # fmt: skip
        if geometry:
            return gpd.GeoDataFrame(out, geometry=gpd.GeoSeries(routes, crs="EPSG:4326"))
        return out

    def route(self, origin: BaseGeometry, destination: BaseGeometry) -> LineString | None:
        """The shortest walk from one WGS84 Point to another as a WGS84 LineString, or None.

        None when either point is unroutable or no path joins them; use
        :meth:`shortest_walks` for the distance and the reason.
        """
        walk = self.shortest_walks([origin], [destination], geometry=True)
        return walk.geometry.iloc[0]

    def _route_line(self, so: SnapResult, i: int, sd: SnapResult, j: int, path_xy: np.ndarray) -> LineString:
        xy = np.vstack([so.point_xy[i], path_xy, sd.point_xy[j]])
        keep = np.ones(len(xy), dtype=bool)
        keep[1:] = np.hypot(*np.diff(xy, axis=0).T) > _POSITION_QUANTUM_M
        xy = xy[keep] if keep.sum() >= 2 else xy[[0, -1]]
        lonlat = np.column_stack(self._to_lonlat.transform(xy[:, 0], xy[:, 1]))
        lonlat[0], lonlat[-1] = so.lonlat[i], sd.lonlat[j]
        return LineString(lonlat)


def _search(
    graph: sparse.csr_matrix,
    xy: np.ndarray,
    onode: np.ndarray,
    dnode: np.ndarray,
    limit_m: np.ndarray | None,
    paths: bool,
) -> tuple[np.ndarray, list[np.ndarray | None]]:
    """Network distance (inf when not reached) and, if ``paths``, node path of each pair.

    One Dijkstra per distinct origin node covers all its destinations.  With per-pair limits
    (the budget left after the origin's snap leg) origins are grouped by square cells holding
    about ``_SUBGRAPH_NODES`` nodes, and each group searches only the nodes within its cell
    plus the largest limit: a walk of length L never leaves the disc of radius L, so the
    result is exact, and the cost grows with origins times the *local* graph, not times the
    whole city.  Without a limit every origin searches the whole graph.
    """
    n_pairs = len(onode)
    net = np.full(n_pairs, np.inf)
    found: list[np.ndarray | None] = [None] * n_pairs
    if n_pairs == 0:
        return net, found
    group = np.zeros(n_pairs, dtype=np.int64)
    if limit_m is not None:
        width, height = np.ptp(xy, axis=0) + 1.0
        cell_m = max(np.sqrt(_SUBGRAPH_NODES * width * height / len(xy)), 2 * float(np.max(limit_m)), 1.0)
        cell = np.floor(xy[onode] / cell_m).astype(np.int64)
        group = cell[:, 0] * (1 << 32) + cell[:, 1]
        tree = cKDTree(xy)
    order = np.lexsort((onode, group))
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(group[order])) + 1, [n_pairs]])
    for lo, hi in itertools.pairwise(bounds):
        k = order[lo:hi]  # pairs of one group, sorted by origin node
        sub, g, limit = None, graph, np.inf
        if limit_m is not None:
            limit = max(float(np.max(limit_m[k])), 0.0) + 1e-6
            lower, upper = xy[onode[k]].min(axis=0) - limit, xy[onode[k]].max(axis=0) + limit
            sub = np.sort(tree.query_ball_point((lower + upper) / 2, np.max(upper - lower) / 2, p=np.inf))
            g = graph[sub][:, sub]
        src, first = np.unique(onode[k], return_index=True)
        first = np.append(first, len(k))
        local_src = src if sub is None else np.searchsorted(sub, src)
        target = dnode[k]
        if sub is not None:
            at = np.minimum(np.searchsorted(sub, target), len(sub) - 1)
            inside = sub[at] == target
            target = np.where(inside, at, 0)
        step = max(1, _DIJKSTRA_CELLS // g.shape[0])
        for b in range(0, len(src), step):  # batches of origins, to bound memory
            kb = slice(first[b], first[min(b + step, len(src))])
            result = csgraph.dijkstra(
                g, indices=local_src[b : b + step], limit=limit, return_predecessors=paths
            )
            dist = result[0] if paths else result
            rows = np.searchsorted(src, onode[k[kb]]) - b
            got = dist[rows, target[kb]]
            if sub is not None:
                got[~inside[kb]] = np.inf
            net[k[kb]] = got
            for r, pair, d in zip(rows, k[kb], target[kb], strict=True) if paths else ():
                if np.isfinite(net[pair]):
                    path = _path(result[1][r], local_src[b + r], d)
                    found[pair] = np.asarray(path) if sub is None else sub[path]
    return net, found


def _path(predecessors: np.ndarray, source: int, target: int) -> list[int]:
    path = [int(target)]
    while path[-1] != source:
        path.append(int(predecessors[path[-1]]))
    return path[::-1]


def _pair_positions(so: SnapResult, sd: SnapResult, pairs: object) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the requested pairs in the origins and destinations."""
    n_o, n_d = len(so.index), len(sd.index)
    if pairs is None:
        return np.repeat(np.arange(n_o), n_d), np.tile(np.arange(n_d), n_o)
    if isinstance(pairs, pd.DataFrame):
        o_labels, d_labels = pairs["origin_index"].to_numpy(), pairs["destination_index"].to_numpy()
    else:
        arr = pairs if isinstance(pairs, np.ndarray) else np.asarray(pairs, dtype=object)
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise ValueError(
                f"pairs: shape {arr.shape} received, (k, 2) of (origin, destination) labels expected"
            )
        o_labels, d_labels = arr[:, 0], arr[:, 1]
    positions = []
    for name, snapped, labels in (("origin", so, o_labels), ("destination", sd, d_labels)):
        if not snapped.index.is_unique:
            raise ValueError(f"pairs: the {name}s' index has duplicate labels; reset_index() first")
        pos = snapped.index.get_indexer(labels)
        if (pos < 0).any():
            raise ValueError(
                f"pairs: {name} label(s) {labels[pos < 0][:5].tolist()} are not in the {name}s' index"
            )
        positions.append(pos)
    return positions[0], positions[1]


def minimum_walks(walks: pd.DataFrame, origin_groups: object, destination_groups: object) -> pd.DataFrame:
    """Shortest walk per (origin group, destination group), e.g. per (school, venue).

    Parameters
    ----------
    walks
        A result of :meth:`WalkNetwork.shortest_walks`.
    origin_groups, destination_groups
        Mapping (Series indexed by label, dict or function) from ``origin_index`` /
        ``destination_index`` labels to group keys, e.g. ``gates["school_id"]``.

    Returns
    -------
    pandas.DataFrame
        One row per group pair present in ``walks``: ``origin_group``, ``destination_group``
        and the columns of ``walks`` for the pair of gate and door with the least
        ``distance_m``.  A group pair with no measured walk keeps the most informative
        reason, in the order of :data:`REASONS` (``beyond_limit`` first).
    """
    groups = {}
    for side, mapping in (("origin", origin_groups), ("destination", destination_groups)):
        keys = walks[f"{side}_index"].map(mapping)
        if keys.isna().any():
            missing = walks.loc[keys.isna(), f"{side}_index"].unique()[:5].tolist()
            raise ValueError(f"{side}_groups: no group for {side}_index {missing}")
        groups[f"{side}_group"] = keys.to_numpy()
    rank = walks["reason"].map({r: k for k, r in enumerate(REASONS)}).fillna(-1)
    ranked = walks.assign(**groups, _rank=rank.to_numpy())
    ranked = ranked.sort_values(["distance_m", "_rank"], na_position="last", kind="stable")
    best = ranked.drop_duplicates(["origin_group", "destination_group"]).drop(columns="_rank")
    best = best.sort_values(["origin_group", "destination_group"], kind="stable").reset_index(drop=True)
    extra = [c for c in best.columns if c not in _WALK_COLUMNS and not c.endswith("_group")]
    return best[["origin_group", "destination_group", *_WALK_COLUMNS, *extra]]
