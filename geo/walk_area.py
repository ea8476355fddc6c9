"""The protected area of a walking-distance rule: every place whose walk from a school gate is short.

:func:`geo.precheck.check_site` measures a walking rule (``gate-walk``, ``door-walk``) for a
candidate point ``P`` as ``snap(gate) + network(gate foot → P's foot) + |P − P's foot|``, where
``P``'s foot is the perpendicular foot on its nearest road segment (:meth:`WalkNetwork.snap`).
Along one segment, the network part is ``d(t) = min(D_u + t, D_v + len − t, c_g + |t − t_g|)``
(``D`` from one bounded Dijkstra per school; the last term for a gate snapped onto the segment),
so the places within the limit ``L`` beside a segment form a "tent": the points at a
perpendicular offset ``≤ min(L − d(t), max_snap)``, plus a round cap of radius
``min(L − d(end), max_snap)`` past each end.  Where the walk cannot be measured the pre-check
keeps the straight line, and so does the area: schools without gates or without a routable
gate, places farther than ``max_snap`` from every road, and places beside road pieces no gate
reaches (there a segment's region is its capsule within the straight-line buffer).

A place belongs to the region of its *nearest* segment only, as the pre-check snaps it: each
segment's region is cut to its cell of the segments' Voronoi diagram (:func:`nearest_road_only`).
Two segments meeting at a node split the plane along their angle bisector (one half-plane each,
:mod:`geo.nearest_segment`); any other pair along lines and parabolas (drawn within 0.1 mm).  The protected area is the union of the
cut regions: zone and pre-check agree everywhere but within millimetres of an edge.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import shapely
from pyproj import CRS, Transformer
from scipy.sparse import csgraph
from shapely.geometry.base import BaseGeometry

from geo.nearest_segment import nearest_road_only
from geo.rules import Rule

#: tolerance of the round parts drawn at the snap distance (tents' end caps, road capsules): coarser
#: than the campus buffers' 0.25 mm because this area is only as exact as best-vs-nearest road anyway
SNAP_EDGE_TOLERANCE_M = 2e-3


def _exact_buffer(geoms, radius_m: float, tolerance_m: float | None = None):
    from geo.permissible import BUFFER_TOLERANCE_M, exact_buffer

    return exact_buffer(geoms, radius_m, tolerance_m=tolerance_m or BUFFER_TOLERANCE_M)


@functools.lru_cache(maxsize=16)
def _transformer(src: CRS | str, dst: CRS | str) -> Transformer:
    """One transformer per pair of frames (building one costs ~50 ms, a fifth of a district's zone)."""
    return Transformer.from_crs(src, dst, always_xy=True)


def _to_frame(geom: BaseGeometry, src: CRS, dst: CRS) -> BaseGeometry:
    if src.equals(dst):
        return geom
    fwd = _transformer(src, dst)
    return shapely.transform(geom, lambda xy: np.column_stack(fwd.transform(xy[:, 0], xy[:, 1])))


def segment_tent(
    a: np.ndarray,
    b: np.ndarray,
    du: float,
    dv: float,
    gates: list[tuple[float, float]],
    limit_m: float,
    cap_m: float,
) -> list[BaseGeometry]:
    """Places beside one segment ``a→b`` whose walk is within ``limit_m`` (pieces to union).

    Parameters
    ----------
    a, b
        Segment ends in metres.
    du, dv
        Network distance from the nearest gate to each end (``inf`` when not reached).
    gates
        ``(t_g, c_g)`` for gates snapped onto this segment: foot position and snap leg.
    limit_m, cap_m
        The rule's limit and the network's snap cap.
    """
    length = float(np.hypot(*(b - a)))
    if length <= 0:
        return []
    e = (b - a) / length
    n = np.array([-e[1], e[0]])
    lines = [(du, 1.0), (dv + length, -1.0)]
    for t_g, c in gates:
        lines += [(c - t_g, 1.0), (c + t_g, -1.0)]
    lines = [(c, s) for c, s in lines if np.isfinite(c)]
    if not lines:
        return []
    ts = {0.0, length, *(t for t, _c in gates)}
    for i, (c1, s1) in enumerate(lines):
        for c2, s2 in lines[i + 1 :]:
            if s1 != s2:
                ts.add((c2 - c1) / (s1 - s2))
        for level in (limit_m, limit_m - cap_m):
            ts.add((level - c1) / s1)
    t = np.array(sorted(x for x in ts if 0.0 <= x <= length))
    d = np.minimum(du + t, dv + length - t)
    for t_g, c in gates:
        d = np.minimum(d, c + np.abs(t - t_g))
    w = np.clip(np.minimum(limit_m - d, cap_m), 0.0, None)
    k = np.flatnonzero((np.maximum(w[:-1], w[1:]) > 0) & (np.diff(t) > 0))
    t0, t1, w0, w1 = t[k, None], t[k + 1, None], w[k, None], w[k + 1, None]
    quads = np.stack(
        [a + t0 * e - w0 * n, a + t1 * e - w1 * n, a + t1 * e + w1 * n, a + t0 * e + w0 * n], axis=1
    )
    pieces: list[BaseGeometry] = (
        list(shapely.polygons(quads)) if len(k) else []
    )  # width 0 at one end: a triangle
    for end, sign, dist in ((a, -1.0, d[0]), (b, 1.0, d[-1])):
        r = min(limit_m - dist, cap_m)
        if r > 0:
            disc = _exact_buffer([shapely.Point(end)], r, SNAP_EDGE_TOLERANCE_M)[0]
            far = r * 1.01 + 1.0
            half = shapely.Polygon([end + n * far, end + n * far + sign * e * far,
                                    end - n * far + sign * e * far, end - n * far])  # fmt: skip
            pieces.append(disc.intersection(half))
    return pieces


def road_cover_area(lines: np.ndarray, cap_m: float) -> BaseGeometry:
    """The places within ``cap_m`` of any of ``lines`` (two-point segments, metres): the roads' capsules united.

    Drawn as the segments' flat-ended bodies plus one disc per node rather than one capsule per
    segment: the same set, and the same round edges to within :data:`SNAP_EDGE_TOLERANCE_M`,
    but the round ends of segments meeting at a node (each with its own vertices) no longer
    overlap in millimetre slivers, which made the overlay several times slower.
    """
    if not len(lines):
        return shapely.Polygon()
    discs = _exact_buffer(shapely.points(np.unique(shapely.get_coordinates(lines), axis=0)), cap_m,
                          SNAP_EDGE_TOLERANCE_M)  # fmt: skip
    quad_segs = max(8, math.ceil(math.pi / 2 / math.sqrt(16 * SNAP_EDGE_TOLERANCE_M / cap_m)))
    radius = cap_m * (1 + (math.pi / 2 / quad_segs) ** 2 / 16)  # as the discs' (exact_buffer's) radius
    bodies = shapely.buffer(lines, radius, cap_style="flat")
    return shapely.union_all(np.concatenate([bodies, discs]))


def walking_protected_area(engine, rule: Rule, crs: CRS, *, nearest_road: bool = True) -> BaseGeometry:
    """Protected area of a walking ``distance`` rule, in the metric frame ``crs`` (see the module docstring).

    ``nearest_road=False`` skips :func:`nearest_road_only` and takes each place's *best* road
    within the snap distance: a superset, faster, that may disagree with the pre-check (kept
    for the benchmark, which measures what the exact answer costs).
    """
    net = engine.network
    sites, _index = engine.protected(rule)
    limit, cap = rule.limit_m, net.max_snap_m
    band = engine.profile.recheck_band_m
    to_net = _transformer("EPSG:4326", net.crs)

    def project(geoms):
        return shapely.transform(np.asarray(geoms, dtype=object),
                                 lambda xy: np.column_stack(to_net.transform(xy[:, 0], xy[:, 1])))  # fmt: skip

    campus = project(sites.geometry.values)
    straight = _exact_buffer(campus, limit)
    prefilter = _exact_buffer(campus, limit + band)
    gates = engine.layer("school_gates")
    gates = gates[gates["school_id"].isin(sites["id"])].reset_index(drop=True)
    snap = net.snap(gates.geometry) if len(gates) else None
    graph, gate_nodes = None, None
    if snap is not None:
        graph, _xy, (gate_nodes,) = net.graph_with_points([snap])
    routable = snap.routable if snap is not None else np.zeros(0, bool)
    n_nodes = len(net.node_xy)
    seg_u, seg_v = net.segments["u"].to_numpy(), net.segments["v"].to_numpy()
    segment_lines = shapely.linestrings(np.stack([net.node_xy[seg_u], net.node_xy[seg_v]], axis=1))
    tree = shapely.STRtree(segment_lines)
    capsule_cache: dict[int, BaseGeometry] = {}

    def capsules_of(positions: np.ndarray) -> np.ndarray:
        missing = [int(i) for i in positions if int(i) not in capsule_cache]
        if missing:
            capsule_cache.update(
                zip(missing, _exact_buffer(segment_lines[missing], cap, SNAP_EDGE_TOLERANCE_M), strict=True)
            )
        return np.array([capsule_cache[int(i)] for i in positions], dtype=object)

    _n_parts, part = csgraph.connected_components(graph, directed=False) if graph is not None else (0, None)
    dist = None
    if routable.any():
        dist = csgraph.dijkstra(graph, indices=gate_nodes[routable], limit=limit)
    gate_rows = np.flatnonzero(routable)
    near_of = tree.query(prefilter, predicate="dwithin", distance=cap)
    # the roads' capsules united once for the schools measured by walking (a school's own union would
    # only lack capsules that miss its straight-line buffer): one overlay instead of one per school
    walked = sites["id"].isin(gates["school_id"].to_numpy()[routable]).to_numpy() if len(gates) else None
    cover_of = tree.query(straight[walked], predicate="dwithin", distance=cap) if walked is not None else None
    covering = np.unique(cover_of[1]) if cover_of is not None else np.zeros(0, int)
    road_cover = road_cover_area(segment_lines[covering], cap)
    shapely.prepare(road_cover)
    out: list[BaseGeometry] = []
    for s_pos, school_id in enumerate(sites["id"].to_numpy()):
        mine = np.flatnonzero(gates["school_id"].to_numpy() == school_id) if len(gates) else np.zeros(0, int)
        mine_routable = [k for k, g in enumerate(gate_rows) if g in set(mine)]
        if not len(mine) or not mine_routable:
            out.append(straight[s_pos])  # no gates, or none near a road: straight line everywhere
            continue
        snap_legs = snap.snap_distance_m[gate_rows[mine_routable]]
        best = np.min(dist[mine_routable][:, :n_nodes] + snap_legs[:, None], axis=0)
        gate_parts = set(part[gate_nodes[gate_rows[mine_routable]]])
        own_gates: dict[int, list[tuple[float, float]]] = {}
        for k in mine_routable:
            g = gate_rows[k]
            own_gates.setdefault(int(snap.segment[g]), []).append(
                (float(snap.position_m[g]), float(snap.snap_distance_m[g]))
            )
        near = np.sort(near_of[1][near_of[0] == s_pos])
        capsules = capsules_of(near)
        regions = []  # per near segment: the places it protects when it is their nearest road
        for s, capsule in zip(near, capsules, strict=True):
            if part[seg_u[s]] not in gate_parts:  # no gate reaches this road: the straight line stays
                regions.append(shapely.intersection(capsule, straight[s_pos]))
                continue
            tent = segment_tent(net.node_xy[seg_u[s]], net.node_xy[seg_v[s]], best[seg_u[s]], best[seg_v[s]],
                                own_gates.get(int(s), []), limit, cap)  # fmt: skip
            regions.append(shapely.union_all(tent) if tent else shapely.Polygon())
        regions = np.array(regions, dtype=object)
        if nearest_road:
            regions = nearest_road_only(segment_lines[near], regions, capsules, cap)
        beyond_roads = shapely.difference(
            straight[s_pos], shapely.clip_by_rect(road_cover, *straight[s_pos].bounds)
        )
        area = shapely.union_all([beyond_roads, *[r for r in regions if not r.is_empty]])
        out.append(shapely.intersection(area, prefilter[s_pos]))
    return _to_frame(shapely.union_all(out), net.crs, crs)
