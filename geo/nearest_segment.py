"""Which road segment is nearest: cutting per-segment regions to their Voronoi cells.

:meth:`geo.network.WalkNetwork.snap` puts a place on its *nearest* segment, so an area built
segment by segment (:mod:`geo.walk_area`) must give each place the answer of that segment only.
The cell of a segment in the Voronoi diagram of segments is bounded by lines (between two
segment interiors, or two end points) and parabolas (an end point against an interior): the
plane is cut into the convex pieces where each distance has one closed form, and in each piece
the bisector is drawn exactly, parabolas by inscribed chords within :data:`BISECTOR_TOLERANCE_M`.
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

#: largest gap between a parabolic Voronoi edge and the polygon drawn for it (inscribed chords)
BISECTOR_TOLERANCE_M = 1e-4
#: contested pieces smaller than this (slivers of the 2 mm round edges) are left alone
_SLIVER_M2 = 1e-6
#: snap-rounding grid of the nearest-road overlays (nearly parallel bisectors break floating overlays)
_GRID_M = 1e-6
_HalfPlane = tuple[np.ndarray, float]  # (normal, offset): the points P with normal · P <= offset


def nearest_road_only(
    lines: np.ndarray, regions: np.ndarray, capsules: np.ndarray, cap_m: float
) -> np.ndarray:
    """Cut each segment's region down to the places where no other segment is strictly nearer.

    ``regions[i]`` lies within ``capsules[i]`` (``lines[i]`` buffered by ``cap_m``).  Rivals
    meeting segment ``i`` at a node cut it by a half-plane each (:func:`_junction_half_planes`):
    one convex clip per segment.  For any other rival ``j`` a place ``P`` of ``regions[i]``
    nearer to ``j`` only matters when it is outside ``regions[j]`` (else the answer is the same
    either way); those places, ``regions[i] − regions[j]`` within ``capsules[j]``, are cut by
    :func:`closer_region`.  The union of the results is therefore the set of places inside
    the region of their nearest segment — :meth:`geo.network.WalkNetwork.snap`'s choice — up
    to :data:`BISECTOR_TOLERANCE_M` (ties: measure zero, or the same foot and walk).
    """
    regions = np.array([_polygonal(r) for r in regions], dtype=object)
    if len(lines) < 2:
        return regions
    ends = shapely.get_coordinates(lines).reshape(-1, 2, 2)
    i, j = shapely.STRtree(lines).query(lines, predicate="dwithin", distance=2 * cap_m)
    keep = (i != j) & ~shapely.is_empty(regions[i])
    i, j = i[keep], j[keep]
    mine, rival = ends[i], ends[j]
    same = np.all(mine == rival, axis=(1, 2)) | np.all(mine == rival[:, ::-1], axis=(1, 2))
    i, j, mine, rival = (
        i[~same],
        j[~same],
        mine[~same],
        rival[~same],
    )  # the same piece of road twice: same walks
    normals, offsets = _junction_half_planes(mine, rival, cap_m)
    slow = np.isnan(offsets)
    planes: dict[int, list[_HalfPlane]] = {}
    for k in np.flatnonzero(~slow):
        planes.setdefault(int(i[k]), []).append((-normals[k], -offsets[k]))  # keep the side of `i`
    out = regions.copy()
    for pos, cuts in planes.items():
        minx, miny, maxx, maxy = capsules[pos].bounds
        cell = np.array([[minx, miny], [maxx, miny], [maxx, maxy], [minx, maxy]], dtype=float)
        for normal, offset in cuts:
            cell = _clip(cell, normal, offset)
        cell_polygon = shapely.polygons(cell) if len(cell) else shapely.Polygon()
        out[pos] = _polygonal(shapely.intersection(out[pos], cell_polygon, grid_size=_GRID_M))
    i, j = i[slow], j[slow]
    touching = shapely.intersects(regions[i], capsules[j])
    i, j = i[touching], j[touching]
    contested = shapely.difference(shapely.intersection(regions[i], capsules[j]), regions[j])
    beaten: dict[int, list[BaseGeometry]] = {}
    for k in np.flatnonzero(shapely.area(contested) > _SLIVER_M2):
        region = _polygonal(contested[k])
        pieces = closer_region(tuple(ends[i[k]]), tuple(ends[j[k]]), region.bounds)
        beaten.setdefault(int(i[k]), []).extend(shapely.intersection(pieces, region))
    for pos, parts in beaten.items():
        parts = [p for p in map(_polygonal, parts) if not p.is_empty]
        try:
            out[pos] = _polygonal(shapely.difference(out[pos], shapely.union_all(parts), grid_size=_GRID_M))
        except shapely.errors.GEOSException:  # nearly parallel edges: one piece at a time is robust
            for part in parts:
                out[pos] = _polygonal(shapely.difference(out[pos], part, grid_size=_GRID_M))
    return out


def _junction_half_planes(mine: np.ndarray, rival: np.ndarray, cap_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Where ``rival[k]`` is nearer than ``mine[k]``, for pairs of segments meeting at a node: half-planes.

    Beside both segments the distances are to their lines and the bisector is the line
    through the node halving their angle; behind the node the node is nearest to both (a tie:
    the same foot, the same walk).  This holds within ``cap_m`` of both segments unless a
    place there is nearest to a *far* end of one of them; that cannot happen when the place
    past each far end is farther than ``cap_m`` from the other segment (checked).

    Parameters
    ----------
    mine, rival
        ``(k, 2, 2)`` segment ends of each pair, metres.
    cap_m
        The snap cap.

    Returns
    -------
    normals, offsets
        ``(k, 2)`` and ``(k,)``: the rival's side is ``normal · P <= offset``; the offset is NaN
        where the pair shares no node or the half-plane does not hold (use :func:`closer_region`).
    """
    count = len(mine)
    normals, offsets = np.zeros((count, 2)), np.full(count, np.nan)
    if not count:
        return normals, offsets
    # the shared node: the first of mine[a] == rival[c] in the order (a, c) = (0,0), (0,1), (1,0), (1,1)
    matched = np.zeros(count, dtype=bool)
    a_of, c_of = np.zeros(count, dtype=int), np.zeros(count, dtype=int)
    for a, c in ((0, 0), (0, 1), (1, 0), (1, 1)):
        hit = ~matched & np.all(mine[:, a] == rival[:, c], axis=1)
        a_of[hit], c_of[hit] = a, c
        matched |= hit
    rows = np.arange(count)
    node, far, rival_far = mine[rows, a_of], mine[rows, 1 - a_of], rival[rows, 1 - c_of]
    with np.errstate(invalid="ignore", divide="ignore"):
        e1 = (far - node) / np.hypot(*(far - node).T)[:, None]
        e2 = (rival_far - node) / np.hypot(*(rival_far - node).T)[:, None]
        holds = _beyond_end_is_far(far, e1, rival, cap_m) & _beyond_end_is_far(rival_far, e2, mine, cap_m)
    for k in np.flatnonzero(matched & holds):
        normal = e1[k] - e2[k]  # the rival's side: (P − node) · (e2 − e1) > 0
        normals[k], offsets[k] = normal, float(normal @ node[k])
    return normals, offsets


def _beyond_end_is_far(end: np.ndarray, outward: np.ndarray, other: np.ndarray, cap_m: float) -> np.ndarray:
    """Whether every place within ``cap_m`` of ``end[k]`` and past it (along ``outward[k]``) is farther than ``cap_m`` from segment ``other[k]``."""
    a, b = other[:, 0], other[:, 1]
    ab = b - a
    t = np.clip(np.sum((end - a) * ab, axis=1) / np.sum(ab * ab, axis=1), 0.0, 1.0)
    gap = np.hypot(*(end - a - t[:, None] * ab).T)
    behind = np.minimum(np.sum((end - a) * outward, axis=1), np.sum((end - b) * outward, axis=1))
    return (gap > 2 * cap_m) | (behind > cap_m)


def _clip(poly: np.ndarray, normal: np.ndarray, offset: float) -> np.ndarray:
    """Sutherland–Hodgman: the part of a convex polygon (k, 2) where ``normal · P <= offset``."""
    if len(poly) == 0:
        return poly
    side = (poly @ normal - offset).tolist()
    points = poly.tolist()  # plain floats: the same IEEE arithmetic, without numpy's per-scalar cost
    out = []
    for i in range(len(points)):
        j = (i + 1) % len(points)
        if side[i] <= 0:
            out.append(points[i])
        if (side[i] < 0 < side[j]) or (side[j] < 0 < side[i]):
            (xi, yi), (xj, yj) = points[i], points[j]
            f = side[i] / (side[i] - side[j])
            out.append([xi + (xj - xi) * f, yi + (yj - yi) * f])
    return np.array(out) if len(out) >= 3 else np.zeros((0, 2))


def _segment_zones(a: np.ndarray, b: np.ndarray) -> list[tuple[list[_HalfPlane], tuple]]:
    """The four convex zones where the distance to segment ``a→b`` has one closed form.

    Behind ``a`` and past ``b`` it is the distance to that end (``("point", end)``); in the
    slab beside the segment it is the distance to its line, ``normal · P + offset`` on each
    side (``("line", normal, offset)``).
    """
    e = (b - a) / np.hypot(*(b - a))
    n = np.array([-e[1], e[0]])
    slab = [(-e, -float(e @ a)), (e, float(e @ b))]
    return [
        ([(e, float(e @ a))], ("point", a)),
        ([(-e, -float(e @ b))], ("point", b)),
        ([*slab, (-n, -float(n @ a))], ("line", n, -float(n @ a))),
        ([*slab, (n, float(n @ a))], ("line", -n, float(n @ a))),
    ]


def _parabola_inside(focus: np.ndarray, normal: np.ndarray, offset: float, poly: np.ndarray) -> BaseGeometry:
    """``{P : |P − focus| < normal · P + offset}`` within the convex ``poly``, as an inscribed polygon.

    The set is convex (inside a parabola with that focus and directrix), so chords between
    points of the parabola stay inside it; their spacing keeps the gap below
    :data:`BISECTOR_TOLERANCE_M`.
    """
    p = float(normal @ focus + offset)  # focus to directrix
    if p <= 0:
        return shapely.Polygon()
    tangent = np.array([-normal[1], normal[0]])
    foot = focus - p * normal
    u_of, w_of = (poly - foot) @ tangent, (poly - foot) @ normal
    lo, hi, top = u_of.min(), u_of.max(), w_of.max()
    if p / 2 > top:
        return shapely.Polygon()
    half_width = np.sqrt(max(2 * p * top - p * p, 0.0))  # the parabola is above `top` beyond this
    lo, hi = max(lo, -half_width), min(hi, half_width)
    if hi <= lo:
        return shapely.Polygon()
    # chord sag (vertical) is du²/(8p); normal to the curve it shrinks by the slope's cosine
    grid = np.linspace(lo, hi, 513)
    density = 1.0 / np.sqrt(8 * p * BISECTOR_TOLERANCE_M * np.sqrt(1 + (grid / p) ** 2))
    cumulative = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2 * np.diff(grid))])
    count = max(2, int(np.ceil(cumulative[-1] * 1.05)) + 1)
    u = np.interp(np.linspace(0, cumulative[-1], count), cumulative, grid)
    w = (u * u + p * p) / (2 * p)
    roof = max(top, w.max()) + 1.0
    uw = np.vstack([np.column_stack([u, w]), [[hi, roof], [lo, roof]]])
    ring = foot + uw[:, :1] * tangent + uw[:, 1:] * normal
    return shapely.intersection(shapely.polygons(ring), shapely.polygons(poly))


def closer_region(s: tuple[np.ndarray, np.ndarray], rival: tuple[np.ndarray, np.ndarray],
                  box: tuple[float, float, float, float]) -> np.ndarray:  # fmt: skip
    """Where segment ``rival`` is strictly nearer than segment ``s``, within the rectangle ``box``.

    Returned as an array of disjoint polygons (their union is the region; uniting them in one
    overlay is left to the caller, as nearly parallel edges make that overlay fragile).

    The plane is cut into the convex pieces where each distance has one closed form (see
    :func:`_segment_zones`); within a piece the bisector is a straight line (line–line and
    point–point) or a parabola (point–line), drawn exactly but for the parabola's chords
    (:data:`BISECTOR_TOLERANCE_M`).

    Parameters
    ----------
    s, rival
        Segment ends ``(a, b)`` in metres.
    box
        ``(minx, miny, maxx, maxy)`` of the area of interest.
    """
    minx, miny, maxx, maxy = box
    rect = np.array([[minx, miny], [maxx, miny], [maxx, maxy], [minx, maxy]], dtype=float)
    pieces: list[BaseGeometry] = []
    for planes, mine in _segment_zones(*s):
        zone = rect
        for normal, offset in planes:
            zone = _clip(zone, normal, offset)
        if len(zone) == 0:
            continue
        for rival_planes, theirs in _segment_zones(*rival):
            poly = zone
            for normal, offset in rival_planes:
                poly = _clip(poly, normal, offset)
            if len(poly) == 0:
                continue
            if mine[0] == "line" and theirs[0] == "line":  # n'·P + k' < n·P + k
                normal, offset = theirs[1] - mine[1], mine[2] - theirs[2]
                if _near_zero(normal):
                    part = poly if offset > 0 else np.zeros((0, 2))
                else:
                    part = _clip(poly, normal, offset)
            elif mine[0] == "point" and theirs[0] == "point":  # |P − c'|² < |P − c|²
                c, c2 = mine[1], theirs[1]
                if _near_zero(c - c2, scale=c2):
                    continue
                part = _clip(poly, 2 * (c - c2), float(c @ c - c2 @ c2))
            elif theirs[0] == "point":  # |P − c'| < n·P + k: inside a parabola
                pieces.append(_parabola_inside(theirs[1], mine[1], mine[2], poly))
                continue
            else:  # n'·P + k' < |P − c|: the piece outside a parabola
                inside = _parabola_inside(mine[1], theirs[1], theirs[2], poly)
                pieces.append(shapely.difference(shapely.polygons(poly), inside))
                continue
            if len(part):
                pieces.append(shapely.polygons(part))
    pieces = [p for p in pieces if not p.is_empty]
    return np.array([p for p in pieces if not p.is_empty], dtype=object)


def _near_zero(x: np.ndarray, scale: np.ndarray | None = None) -> bool:
    """``np.allclose(x + scale, scale)`` for two-vectors (its default tolerances), without its overhead."""
    bound = 1e-8 if scale is None else 1e-8 + 1e-5 * np.abs(scale)
    return bool(np.all(np.abs(x) <= bound))


def _polygonal(geom: BaseGeometry) -> BaseGeometry:
    """The polygons of an overlay result (its stray lines and points dropped)."""
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()
