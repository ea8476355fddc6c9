"""Building blocks of the demo-district generator (``data/make_demo.py``).

Everything is built in one local metric frame: the transverse Mercator that
:func:`geo.crs.metric_crs` gives for the district centre (x east, y north, metres).
Every coordinate is *snapped* when it is created: sent to WGS84, rounded to
:data:`DECIMALS` decimals (the precision of the committed GeoJSON) and brought back.
Snapping is idempotent, so what the generator measures while it designs is exactly what
the files hold.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import shapely
from pyproj import Transformer
from shapely import affinity
from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry

from geo.crs import metric_crs

CENTRE_LON, CENTRE_LAT = 114.30, 30.55
DECIMALS = 7
FRAME = metric_crs(Point(CENTRE_LON, CENTRE_LAT))
_TO_WGS = Transformer.from_crs(FRAME, "EPSG:4326", always_xy=True)
_FROM_WGS = Transformer.from_crs("EPSG:4326", FRAME, always_xy=True)


# ------------------------------------------------------------------ frame and snapping
def to_lonlat(xy: np.ndarray) -> np.ndarray:
    """Metric (n, 2) coordinates to WGS84 lon/lat rounded to :data:`DECIMALS`."""
    xy = np.asarray(xy, dtype="float64").reshape(-1, 2)
    lon, lat = _TO_WGS.transform(xy[:, 0], xy[:, 1])
    return np.column_stack([np.round(lon, DECIMALS), np.round(lat, DECIMALS)])


def _snap_coords(xy: np.ndarray) -> np.ndarray:
    if len(xy) == 0:
        return xy
    ll = to_lonlat(xy)
    x, y = _FROM_WGS.transform(ll[:, 0], ll[:, 1])
    return np.column_stack([x, y])


def snap(geom: BaseGeometry) -> BaseGeometry:
    """``geom`` (metric) with every vertex moved to the nearest representable WGS84 position."""
    return shapely.transform(geom, _snap_coords)


def snap_point(x: float, y: float) -> Point:
    """A snapped metric point."""
    sx, sy = _snap_coords(np.array([[x, y]], dtype="float64"))[0]
    return Point(float(sx), float(sy))


# ------------------------------------------------------------------ road graph
@dataclass
class Edge:
    """One straight road segment between two nodes."""

    u: int
    v: int
    name: str
    road_class: str
    walkable: bool = True


class Network:
    """A road graph whose junctions are shared nodes by construction (exactly noded)."""

    def __init__(self) -> None:
        self.xy: list[tuple[float, float]] = []
        self._by_key: dict[tuple[int, int], int] = {}
        self.edges: list[Edge | None] = []

    def node(self, x: float, y: float) -> int:
        """The node at (x, y) after snapping, created on first use."""
        lon, lat = to_lonlat(np.array([[x, y]]))[0]
        key = round(lon * 10**DECIMALS), round(lat * 10**DECIMALS)
        if key not in self._by_key:
            sx, sy = _FROM_WGS.transform(lon, lat)
            self._by_key[key] = len(self.xy)
            self.xy.append((float(sx), float(sy)))
        return self._by_key[key]

    def add(self, u: int, v: int, name: str, road_class: str, *, walkable: bool = True) -> int:
        if u == v:
            raise ValueError(f"zero-length road {name!r}")
        self.edges.append(Edge(u, v, name, road_class, walkable))
        return len(self.edges) - 1

    def add_path(self, points: list[tuple[float, float]], name: str, road_class: str, **kw: bool) -> None:
        """Edges along consecutive ``points``."""
        ids = [self.node(x, y) for x, y in points]
        for u, v in itertools.pairwise(ids):
            self.add(u, v, name, road_class, **kw)

    def segment(self, e: int) -> LineString:
        edge = self.edges[e]
        return LineString([self.xy[edge.u], self.xy[edge.v]])

    def live(self) -> list[int]:
        return [i for i, e in enumerate(self.edges) if e is not None]

    def nearest_edge(self, x: float, y: float) -> tuple[int, float]:
        """(edge, distance_m) of the segment nearest to (x, y)."""
        live = self.live()
        xy = np.asarray(self.xy)
        a = xy[[self.edges[e].u for e in live]]
        d = xy[[self.edges[e].v for e in live]] - a
        p = np.array([x, y])
        t = np.clip(((p - a) * d).sum(axis=1) / (d * d).sum(axis=1), 0.0, 1.0)
        dist = np.hypot(*(p - (a + t[:, None] * d)).T)
        k = int(np.argmin(dist))
        return live[k], float(dist[k])

    def split_at(self, x: float, y: float, *, tolerance_m: float = 0.05) -> int:
        """Insert a node on the segment passing (x, y); return the node."""
        best, best_d = self.nearest_edge(x, y)
        if best_d > tolerance_m:
            raise ValueError(f"no road within {tolerance_m} m of ({x:.2f}, {y:.2f})")
        edge = self.edges[best]
        n = self.node(x, y)
        if n in (edge.u, edge.v):
            return n
        self.edges[best] = None
        self.add(edge.u, n, edge.name, edge.road_class, walkable=edge.walkable)
        self.add(n, edge.v, edge.name, edge.road_class, walkable=edge.walkable)
        return n

    def add_crossing_path(self, points: list[tuple[float, float]], name: str, road_class: str) -> None:
        """A road along ``points`` that becomes a junction wherever it crosses an existing one.

        A crossing within ``3 m`` of an existing node joins that node instead (no sliver edges).
        """
        line = LineString(points)
        stops: list[tuple[float, int]] = []
        for x, y in points:  # a vertex on an existing road becomes a junction of it
            on_road = self.nearest_edge(x, y)[1] < 0.05
            stops.append((line.project(Point(x, y)), self.split_at(x, y) if on_road else self.node(x, y)))
        crossings = []
        for e in self.live():
            seg = self.segment(e)
            if seg.intersects(line):
                crossings += [q for q in shapely.get_parts(seg.intersection(line)) if q.geom_type == "Point"]
        for q in crossings:
            e, _ = self.nearest_edge(q.x, q.y)
            edge = self.edges[e]
            near = [n for n in (edge.u, edge.v) if Point(self.xy[n]).distance(q) < 3.0]
            stops.append((line.project(q), near[0] if near else self.split_at(q.x, q.y)))
        ids = [n for _, n in sorted(stops)]
        ids = [n for k, n in enumerate(ids) if k == 0 or n != ids[k - 1]]
        for u, v in itertools.pairwise(ids):
            self.add(u, v, name, road_class)

    def lines(self) -> list[tuple[LineString, Edge]]:
        return [(self.segment(e), self.edges[e]) for e in self.live()]

    def components(self, *, walkable_only: bool) -> int:
        """Number of connected components (union-find over shared nodes)."""
        parent = list(range(len(self.xy)))

        def find(a: int) -> int:
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a

        used: set[int] = set()
        for e in self.live():
            edge = self.edges[e]
            if walkable_only and not edge.walkable:
                continue
            used.update((edge.u, edge.v))
            parent[find(edge.u)] = find(edge.v)
        return len({find(n) for n in used})


# ------------------------------------------------------------------ polygons
def ccw(poly: Polygon) -> Polygon:
    """Exterior counter-clockwise (RFC 7946), no repeated vertices."""
    return shapely.orient_polygons(shapely.remove_repeated_points(poly, 0.0))


def block_frame(poly: Polygon) -> tuple[float, tuple[float, float], tuple[float, float, float, float]]:
    """(angle, origin, bounds): rotating ``poly`` by -angle about origin aligns its long axis with x."""
    rect = np.asarray(shapely.oriented_envelope(poly).exterior.coords)[:4]
    sides = rect[1:] - rect[:-1]
    k = int(np.argmax(np.hypot(sides[:, 0], sides[:, 1])))
    angle = math.atan2(sides[k, 1], sides[k, 0])
    if angle <= -math.pi / 2:
        angle += math.pi
    elif angle > math.pi / 2:
        angle -= math.pi
    origin = (poly.centroid.x, poly.centroid.y)
    rotated = affinity.rotate(poly, -angle, origin=origin, use_radians=True)
    return angle, origin, rotated.bounds


def split_polygon(poly: Polygon, n_long: int, n_short: int, gap_m: float) -> list[Polygon]:
    """Cut ``poly`` into an n_long x n_short grid along its long axis, ``gap_m`` between pieces."""
    angle, origin, (minx, miny, maxx, maxy) = block_frame(poly)
    rotated = affinity.rotate(poly, -angle, origin=origin, use_radians=True)
    pieces = []
    for i in range(n_long):
        for j in range(n_short):
            x0 = minx + (maxx - minx) * i / n_long + (gap_m / 2 if i > 0 else -1)
            x1 = minx + (maxx - minx) * (i + 1) / n_long - (gap_m / 2 if i < n_long - 1 else -1)
            y0 = miny + (maxy - miny) * j / n_short + (gap_m / 2 if j > 0 else -1)
            y1 = miny + (maxy - miny) * (j + 1) / n_short - (gap_m / 2 if j < n_short - 1 else -1)
            cell = rotated.intersection(shapely.box(x0, y0, x1, y1))
            if cell.geom_type == "MultiPolygon":
                cell = max(cell.geoms, key=lambda g: g.area)
            if cell.geom_type == "Polygon" and not cell.is_empty:
                pieces.append(affinity.rotate(cell, angle, origin=origin, use_radians=True))
    return pieces


def cut_line(poly: Polygon, *, reach_m: float = 1000.0) -> LineString:
    """The line across ``poly``'s short axis through the middle of its long axis."""
    angle, origin, (minx, miny, maxx, maxy) = block_frame(poly)
    mid = (minx + maxx) / 2
    line = LineString([(mid, miny - reach_m), (mid, maxy + reach_m)])
    return affinity.rotate(line, angle, origin=origin, use_radians=True)


def edges_of(poly: Polygon) -> list[tuple[np.ndarray, np.ndarray]]:
    """Exterior edges (a, b) of a counter-clockwise polygon."""
    c = np.asarray(ccw(poly).exterior.coords)
    return [(c[i], c[i + 1]) for i in range(len(c) - 1)]


def outward_normal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Unit normal pointing out of a counter-clockwise ring at edge a→b."""
    d = b - a
    return np.array([d[1], -d[0]]) / math.hypot(d[0], d[1])


def points_at_distance(poly: Polygon, distance_m: float) -> list[tuple[float, float]]:
    """Candidate points whose distance to convex-ish ``poly`` is exactly ``distance_m``.

    Feet at 1/4, 1/2, 3/4 of every edge pushed out along its normal, and convex corners
    pushed out along the bisector of their two normals.  Candidates whose distance is not
    exact (a concave neighbourhood) are dropped.
    """
    out = []
    es = edges_of(poly)
    for k, (a, b) in enumerate(es):
        n = outward_normal(a, b)
        for t in (0.25, 0.5, 0.75):
            out.append(tuple(a + t * (b - a) + distance_m * n))
        n_prev = outward_normal(*es[k - 1])
        bis = n + n_prev
        d0, d1 = es[k - 1][1] - es[k - 1][0], b - a
        if np.hypot(*bis) > 1e-6 and d0[0] * d1[1] - d0[1] * d1[0] > 0:
            out.append(tuple(a + distance_m * bis / np.hypot(*bis)))
    boundary = poly.exterior
    return [
        (float(x), float(y))
        for x, y in out
        if abs(boundary.distance(Point(x, y)) - distance_m) < 1e-6 and not poly.contains(Point(x, y))
    ]


def regular_polygon(x: float, y: float, radius_m: float, n: int, phase: float = 0.0) -> Polygon:
    """A regular n-gon (snapped, counter-clockwise)."""
    ang = phase + np.arange(n) * 2 * math.pi / n
    return ccw(snap(Polygon(np.column_stack([x + radius_m * np.cos(ang), y + radius_m * np.sin(ang)]))))


def chinese_number(n: int) -> str:
    """1..99 in Chinese numerals (一, 十二, 二十三)."""
    digits = "零一二三四五六七八九"
    if n < 10:
        return digits[n]
    tens, ones = divmod(n, 10)
    return ("" if tens == 1 else digits[tens]) + "十" + (digits[ones] if ones else "")
