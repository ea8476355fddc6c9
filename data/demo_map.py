"""The ground of the demo district: outline, sub-districts, roads, blocks and parcels.

Layout (metres in the frame of :mod:`demo_base`, origin 114.30 E 30.55 N): an urban street
grid west of a north–south river (x = 1300), two rural townships with villages east of it.
The river is crossed only by five road bridges and one railway bridge (not walkable), so
walking across it is a detour.  A diagonal old street, jittered junctions, dropped street
segments, through alleys and cul-de-sacs break the grid's regularity.  Sub-district boundaries follow main roads and the river.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field

import numpy as np
import shapely
from demo_base import Network, ccw, chinese_number, cut_line, snap, split_polygon
from shapely.geometry import LineString, Point, Polygon

log = logging.getLogger(__name__)

OUTLINE = [
    (-4000, -3000), (-2600, -3080), (-800, -2990), (1300, -3060), (2600, -2980), (4000, -3040),
    (4060, -1500), (3990, 0), (4070, 1600), (4000, 3000), (2500, 3060), (1300, 2990), (-900, 3070),
    (-2400, 2985), (-4000, 3050), (-4080, 1400), (-3990, 0), (-4060, -1500),
]  # fmt: skip
MAIN_X = [(-3850.0, "西环路"), (-2300.0, "新桥路"), (-700.0, "星海路"), (1250.0, "滨河西路")]
MAIN_Y = [(-2850.0, "南环路"), (-1400.0, "和平路"), (0.0, "示范大道"), (1500.0, "文华路"), (2850.0, "北环路")]
OLD_STREET = [(-3850.0, 650.0), (-3450.0, 1100.0), (-3100.0, 1650.0), (-2800.0, 2250.0), (-2560.0, 2850.0)]
RIVER_X, WEST_BANK_X, EAST_BANK_X, RAIL_Y = 1300.0, 1250.0, 1350.0, 900.0
RURAL_X = [(1350.0, "滨河东路", "secondary"), (2500.0, "柳林路", "secondary"), (3850.0, "东环路", "primary")]
BRIDGES = {-2850.0: "南环大桥", -1400.0: "和平大桥", 0.0: "示范大桥", 1500.0: "文华大桥", 2850.0: "北环大桥"}
VILLAGES = [  # name, column positions, row positions, which axis lies on a host road
    ("柳林村", (1350, 1450, 1550, 1650), (480, 580, 680, 780), "x"),
    ("桃园村", (2500, 2600, 2700, 2800), (1900, 2000, 2100, 2200), "x"),
    ("白沙村", (2500, 2600, 2700, 2800), (-1000, -900, -800, -700), "x"),
    ("石桥村", (3000, 3100, 3200, 3300), (-2850, -2750, -2650, -2550), "y"),
]
#: name, code, urban, population, a point inside
SUBDISTRICTS = [
    ("新桥街道", "429901001", True, 61200, (-3100, 1400)),
    ("和平街道", "429901002", True, 52800, (-3100, -1400)),
    ("文华街道", "429901003", True, 68400, (-1500, 1400)),
    ("东湖街道", "429901004", True, 55300, (-1500, -1400)),
    ("星海街道", "429901005", True, 47900, (300, 1400)),
    ("滨河街道", "429901006", True, 40000, (300, -1400)),
    ("柳林镇", "429901101", False, 14600, (2600, 1400)),
    ("白沙乡", "429901201", False, 9800, (2600, -1400)),
]
URBAN_SETBACK_M, VILLAGE_SETBACK_M, PARCEL_GAP_M = 8.0, 5.0, 12.0
FAR_DOOR_ALLEY_OFFSET_M = 45.0
DETOUR_GATE_Y = 715.0


@dataclass(eq=False)
class Parcel:
    poly: Polygon
    face: Face
    use: str | None = None  # school, commercial, residential, public, other
    frontage: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)


@dataclass(eq=False)
class Face:
    poly: Polygon
    kind: str  # urban, village
    subdistrict: int
    setback_m: float
    village: str | None = None
    forced_mode: str | None = None
    alley: Polygon | None = None  # clearance around a cul-de-sac inside the block
    parcels: list[Parcel] | None = None


@dataclass
class Ground:
    """Everything later layers are placed on."""

    net: Network
    outline: Polygon  # the district: the union of its sub-districts
    subdistricts: list[Polygon]
    faces: list[Face]
    far_door: dict  # positions of the far-door block: x_c1, x_c2 (cross streets), y_a (street A), y_alley
    detour_face: Face | None = None
    _tree: shapely.STRtree | None = None
    _walk_lines: list[LineString] = field(default_factory=list)
    _walk_names: list[str] = field(default_factory=list)
    _face_tree: shapely.STRtree | None = None

    # -------------------------------------------------------------- queries
    def finish_roads(self) -> None:
        walk = [(line, e.name) for line, e in self.net.lines() if e.walkable]
        self._walk_lines = [line for line, _ in walk]
        self._walk_names = [name for _, name in walk]
        self._tree = shapely.STRtree(self._walk_lines)

    def road_distance(self, p: Point) -> float:
        i = self._tree.nearest(p)
        return self._walk_lines[i].distance(p)

    def nearest_road_name(self, p: Point) -> str:
        return self._walk_names[self._tree.nearest(p)]

    def subdistrict_of(self, p: Point) -> int:
        for k, poly in enumerate(self.subdistricts):
            if poly.covers(p):
                return k
        raise ValueError(f"point {p} outside the district")

    def face_at(self, p: Point) -> Face | None:
        if self._face_tree is None:
            self._face_tree = shapely.STRtree([f.poly for f in self.faces])
        hits = sorted(int(i) for i in self._face_tree.query(p, predicate="within"))
        return self.faces[hits[0]] if hits else None

    def parcels_of(self, face: Face, rng: np.random.Generator, mode: str | None = None) -> list[Parcel]:
        """The face's parcels, cutting it on first use (``mode`` or a random one)."""
        if face.parcels is None:
            mode = face.forced_mode or mode or _random_mode(face, rng)
            inset = face.poly.buffer(-face.setback_m, join_style="mitre")
            if inset.geom_type == "MultiPolygon":
                inset = max(inset.geoms, key=lambda g: g.area)
            face.parcels = []
            if inset.is_empty or inset.area < 1200:
                return face.parcels  # a sliver between roads
            n_long, n_short = _split_counts(inset, mode)
            pieces = split_polygon(inset, n_long, n_short, PARCEL_GAP_M) if n_long * n_short > 1 else [inset]
            for piece in pieces:
                if face.alley is not None:
                    piece = piece.difference(face.alley)
                    if piece.geom_type != "Polygon":
                        continue
                poly = ccw(snap(piece))
                if poly.is_valid and poly.area >= 1200:
                    parcel = Parcel(poly, face)
                    parcel.frontage = self._frontage(poly, face.setback_m)
                    if parcel.frontage:
                        face.parcels.append(parcel)
        return face.parcels

    def parcel_at(self, p: Point, rng: np.random.Generator) -> Parcel | None:
        face = self.face_at(p)
        if face is None:
            return None
        for parcel in self.parcels_of(face, rng):
            if parcel.poly.contains(p):
                return parcel
        return None

    def _frontage(self, poly: Polygon, setback_m: float) -> list[tuple[np.ndarray, np.ndarray]]:
        c = np.asarray(poly.exterior.coords)
        a, b = c[:-1], c[1:]
        _, dist = self._tree.query_nearest(
            shapely.points((a + b) / 2), return_distance=True, all_matches=False
        )
        keep = (np.hypot(*(b - a).T) >= 10) & (dist <= setback_m + 2.0)
        return [(a[k], b[k]) for k in np.flatnonzero(keep)]


def _split_counts(inset: Polygon, mode: str) -> tuple[int, int]:
    if mode == "whole":
        return 1, 1
    if mode == "halves":
        return 2, 1
    if mode == "quarters":
        return 2, 2
    rect = np.asarray(shapely.oriented_envelope(inset).exterior.coords)[:3]
    long_m = max(np.hypot(*(rect[1] - rect[0])), np.hypot(*(rect[2] - rect[1])))
    if mode == "strip":
        return max(1, round(long_m / 105)), 1
    return max(2, round(long_m / 110)), 2  # "grid" for merged blocks


def _random_mode(face: Face, rng: np.random.Generator) -> str:
    rect = np.asarray(shapely.oriented_envelope(face.poly).exterior.coords)[:3]
    short_m = min(np.hypot(*(rect[1] - rect[0])), np.hypot(*(rect[2] - rect[1])))
    if short_m < 80:
        return "strip"
    if face.kind == "village":
        return str(rng.choice(["whole", "halves"], p=[0.4, 0.6]))
    if face.poly.area > 75000:
        return "grid"
    return str(rng.choice(["whole", "halves", "quarters"], p=[0.15, 0.55, 0.30]))


# ------------------------------------------------------------------ building the ground
def _axis(mains: list[tuple[float, str]], spacing_m: float, word: str, rng: np.random.Generator) -> list:
    out: list[tuple[float, str, bool]] = []
    n_local = 0
    for (a, name_a), (b, _) in itertools.pairwise(mains):
        out.append((a, name_a, True))
        n = max(1, round((b - a) / spacing_m))
        for k in range(1, n):
            n_local += 1
            pos = a + (b - a) * k / n + float(rng.uniform(-20, 20))
            out.append((pos, f"{word}{chinese_number(n_local)}路", False))
    out.append((mains[-1][0], mains[-1][1], True))
    return out


def build_ground(rng: np.random.Generator) -> Ground:
    """Roads, sub-districts, blocks (faces) of the district."""
    cols = _axis(MAIN_X, 220.0, "经", rng)
    rows = _axis(MAIN_Y, 230.0, "纬", rng)
    nc, nr = len(cols), len(rows)
    i_c1 = [c[0] for c in cols].index(-2300.0)
    j_a = [r[0] for r in rows].index(-1400.0) + 3
    calm = np.zeros((nc, nr), dtype=bool)  # no jitter, no drops
    calm[i_c1 - 1 : i_c1 + 4, j_a - 1 : j_a + 2] = True
    calm[nc - 3 :, [j for j in range(nr) if 0 <= rows[j][0] <= 1500]] = True
    grid = np.zeros((nc, nr, 2))
    for i in range(nc):
        for j in range(nr):
            dx = 0.0 if cols[i][2] or calm[i, j] else float(rng.uniform(-12, 12))
            dy = 0.0 if rows[j][2] or calm[i, j] else float(rng.uniform(-12, 12))
            grid[i, j] = (cols[i][0] + dx, rows[j][0] + dy)

    # grid edges, with a few local ones dropped (never creating dead ends)
    edges: dict[tuple, tuple[str, str]] = {}
    for j, (_, name, main) in enumerate(rows):
        for i in range(nc - 1):
            edges[(i, j, i + 1, j)] = (name, "primary" if main else "residential")
    for i, (_, name, main) in enumerate(cols):
        for j in range(nr - 1):
            edges[(i, j, i, j + 1)] = (
                name,
                ("secondary" if i == nc - 1 else "primary") if main else "residential",
            )
    degree = np.zeros((nc, nr), dtype=int)
    for i0, j0, i1, j1 in edges:
        degree[i0, j0] += 1
        degree[i1, j1] += 1
    drops = [(i_c1 + 1, j_a - 1, i_c1 + 1, j_a)]  # the long block south of row A
    for key in sorted(edges):
        i0, j0, i1, j1 = key
        horizontal = j0 == j1
        local = not (rows[j0][2] if horizontal else cols[i0][2])
        if local and not calm[i0, j0] and not calm[i1, j1] and rng.random() < (0.05 if horizontal else 0.07):
            drops.append(key)
    for i0, j0, i1, j1 in drops:
        if (degree[i0, j0] >= 4 and degree[i1, j1] >= 4) or (i0, j0) == (i_c1 + 1, j_a - 1):
            del edges[(i0, j0, i1, j1)]
            degree[i0, j0] -= 1
            degree[i1, j1] -= 1

    net = Network()
    for (i0, j0, i1, j1), (name, cls) in edges.items():
        net.add(net.node(*grid[i0, j0]), net.node(*grid[i1, j1]), name, cls)

    # through alleys across some ordinary cells, and the far-door alley
    n_alley = 0
    for _ in range(40):
        i, j = int(rng.integers(1, nc - 2)), int(rng.integers(1, nr - 2))
        sides = [(i, j, i, j + 1), (i + 1, j, i + 1, j + 1), (i, j, i + 1, j), (i, j + 1, i + 1, j + 1)]
        if n_alley < 10 and not calm[i : i + 2, j : j + 2].any() and all(s in edges for s in sides):
            a = (grid[i, j] + grid[i, j + 1]) / 2
            b = (grid[i + 1, j] + grid[i + 1, j + 1]) / 2
            net.add(
                net.split_at(*a), net.split_at(*b), f"{rows[j][1]}{chinese_number(n_alley + 1)}巷", "alley"
            )
            for s in sides:  # keep cells used once
                edges.pop(s, None)
            n_alley += 1
    x_c1, x_c2, y_a = cols[i_c1][0], cols[i_c1 + 2][0], rows[j_a][0]
    y_alley = y_a - FAR_DOOR_ALLEY_OFFSET_M
    net.add(net.split_at(x_c1, y_alley), net.split_at(x_c2, y_alley), "东湖里", "alley")
    net.add_crossing_path(OLD_STREET, "古城老街", "secondary")  # a diagonal through the grid

    # east of the river: rural roads, bridges, the railway, villages
    attach_x: dict[float, set] = {}
    attach_y: dict[float, set] = {}
    for _, xs, ys, ax in VILLAGES:
        if ax == "x":
            attach_x.setdefault(xs[0], set()).update(ys)
        else:
            attach_y.setdefault(ys[0], set()).update(xs)
    main_ys = [y for y, _ in MAIN_Y]
    for x, name, cls in RURAL_X:
        ys = sorted({*main_ys, RAIL_Y, *attach_x.get(x, ())})
        net.add_path([(x, y) for y in ys], name, cls)
    for y, name in MAIN_Y:
        xs = sorted({x for x, _, _ in RURAL_X} | set(attach_y.get(y, ())))
        net.add_path([(x, y) for x in xs], name, "primary")
        net.add(net.node(WEST_BANK_X, y), net.node(EAST_BANK_X, y), BRIDGES[y], "primary")
    station = net.split_at(WEST_BANK_X, RAIL_Y)
    rail = [net.node(x, RAIL_Y) for x in (EAST_BANK_X, 2500.0, 3850.0)]
    for u, v in zip([station, *rail[:-1]], rail, strict=True):
        net.add(u, v, "示范铁路", "rail", walkable=False)
    for vname, xs, ys, ax in VILLAGES:
        k = 0
        for jj, y in enumerate(ys):
            if not (ax == "y" and jj == 0):
                k += 1
                net.add_path([(x, y) for x in xs], f"{vname}{chinese_number(k)}巷", "village_lane")
        for ii, x in enumerate(xs):
            if not (ax == "x" and ii == 0):
                k += 1
                net.add_path([(x, y) for y in ys], f"{vname}{chinese_number(k)}巷", "village_lane")

    subdistricts = _subdistricts(Polygon(OUTLINE))
    far_door = {"x_c1": x_c1, "x_c2": x_c2, "y_a": y_a, "y_alley": y_alley}
    ground = Ground(net, shapely.union_all(subdistricts), subdistricts, [], far_door)
    ground.faces = _faces(ground)
    _dead_end_alleys(ground, rng)
    ground.finish_roads()
    ground.detour_face = ground.face_at(Point(WEST_BANK_X - 60, DETOUR_GATE_Y))
    log.info("roads: %d segments, %d blocks", len(net.live()), len(ground.faces))
    return ground


def _subdistricts(outline: Polygon) -> list[Polygon]:
    dividers = [LineString([(x, -3500), (x, 3500)]) for x in (-2300.0, -700.0, RIVER_X)]
    dividers.append(LineString([(-4500, 0), (4500, 0)]))
    noded = shapely.unary_union([outline.exterior, *dividers])
    faces = [
        f
        for f in shapely.get_parts(shapely.polygonize([noded]))
        if outline.contains(f.representative_point())
    ]
    out = []
    for *_, seed in SUBDISTRICTS:
        (match,) = [f for f in faces if f.contains(Point(seed))]
        out.append(ccw(snap(match)))
    return out


def _faces(ground: Ground) -> list[Face]:
    lines = [line for line, _ in ground.net.lines()]
    faces = []
    for poly in shapely.get_parts(shapely.polygonize(lines)):
        c = poly.centroid
        if WEST_BANK_X < c.x < EAST_BANK_X:
            continue  # the river
        village = next(
            (n for n, xs, ys, _ in VILLAGES if xs[0] < c.x < xs[-1] and ys[0] < c.y < ys[-1]),
            None,
        )
        if c.x < WEST_BANK_X:
            kind, setback = "urban", URBAN_SETBACK_M
        elif village is not None:
            kind, setback = "village", VILLAGE_SETBACK_M
        else:
            continue  # farmland
        faces.append(Face(ccw(poly), kind, ground.subdistrict_of(c), setback, village))
    return faces


def _dead_end_alleys(ground: Ground, rng: np.random.Generator) -> None:
    """Cul-de-sacs into some ordinary blocks, along the gap between their two halves."""
    fd = ground.far_door
    keep_out = [Point(fd["x_c1"] + 150, fd["y_a"]), Point(WEST_BANK_X - 60, DETOUR_GATE_Y)]
    order = rng.permutation(len(ground.faces))
    n = 0
    for k in order:
        face = ground.faces[int(k)]
        if n >= 24 or face.kind != "urban" or not 35000 < face.poly.area < 60000:
            continue
        if any(face.poly.distance(p) < 300 for p in keep_out) or len(face.poly.exterior.coords) != 5:
            continue
        cut = cut_line(face.poly).intersection(face.poly)
        if cut.geom_type != "LineString":
            continue
        a, b = np.asarray(cut.coords[0]), np.asarray(cut.coords[-1])
        end = a + (b - a) * 0.45
        host = ground.net.edges[ground.net.nearest_edge(*a)[0]].name
        start = ground.net.split_at(*a)
        ground.net.add(start, ground.net.node(*end), f"{host}{chinese_number(n + 1)}弄", "alley")
        face.forced_mode = "halves"
        face.alley = LineString([a, end]).buffer(PARCEL_GAP_M / 2)
        n += 1
