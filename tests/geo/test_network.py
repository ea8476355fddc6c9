"""Walking network: hand-computed walks on a small block, and networkx as an independent peer.

Geometries are drawn in metres on a local transverse Mercator (k0 = 1, centred on 116.4°E,
39.9°N) and converted to WGS84; the network picks its own projection, so the hand-computed
figures hold to well under a millimetre.

The block (metres)::

    (0,100) ---- (110,100) ---------- (300,100)      north street, road 1
       |             :                    |
     west          footbridge (road 4,    east
    road 2          walkable False)      road 3
       |             :                    |
    (0,0) ------ (110,0) ------------ (300,0)        south street, road 0
"""

from __future__ import annotations

import itertools

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Geod, Transformer
from shapely.geometry import LineString, MultiLineString, Point, Polygon

from geo.crs import zone_crs
from geo.network import WalkNetwork, minimum_walks
from layers.errors import CRSError, LayerError

_LOCAL = "+proj=tmerc +lat_0=39.9 +lon_0=116.4 +k=1 +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs"
TO_LONLAT = Transformer.from_crs(_LOCAL, "EPSG:4326", always_xy=True)
TO_LOCAL = Transformer.from_crs("EPSG:4326", _LOCAL, always_xy=True)
GEOD = Geod(ellps="WGS84")
MM = 1e-3  # metres


def line(*xy: tuple[float, float]) -> LineString:
    return LineString([TO_LONLAT.transform(x, y) for x, y in xy])


def pt(x: float, y: float) -> Point:
    return Point(TO_LONLAT.transform(x, y))


def points(*xy: tuple[float, float], index: list | None = None) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(geometry=[pt(x, y) for x, y in xy], index=index, crs="EPSG:4326")


def block(bridge_walkable: object = False, extra: list[LineString] | None = None) -> gpd.GeoDataFrame:
    geoms = [
        line((0, 0), (110, 0), (300, 0)),
        line((0, 100), (110, 100), (300, 100)),
        line((0, 0), (0, 100)),
        line((300, 0), (300, 100)),
        line((110, 0), (110, 100)),
        *(extra or []),
    ]
    walkable = [True, True, True, True, bridge_walkable] + [True] * len(extra or [])
    return gpd.GeoDataFrame({"walkable": walkable}, geometry=geoms, crs="EPSG:4326")


def walk(net: WalkNetwork, a: tuple[float, float], b: tuple[float, float], **kw) -> pd.Series:
    return net.shortest_walks(points(a), points(b), **kw).iloc[0]


# ------------------------------------------------------------------ hand-computed walks
@pytest.mark.parametrize(
    ("bridge", "expected_m"),
    [
        (False, 10 + 100 + 100 + 120 + 10),  # round the west end of the block
        (True, 10 + 10 + 100 + 10 + 10),  # across the footbridge at x = 110
        (None, 10 + 10 + 100 + 10 + 10),  # missing `walkable` means walkable (schema default)
    ],
)
def test_detour_round_a_long_block(bridge: object, expected_m: float) -> None:
    net = WalkNetwork.from_roads(block(bridge))
    row = walk(net, (100, -10), (120, 110))
    assert row.distance_m == pytest.approx(expected_m, abs=MM)
    assert row.network_m == pytest.approx(expected_m - 20, abs=MM)
    assert row.origin_snap_m == pytest.approx(10, abs=MM)
    assert row.destination_snap_m == pytest.approx(10, abs=MM)
    assert pd.isna(row.reason)


@pytest.mark.parametrize(
    ("a", "b", "expected_m"),
    [
        ((100, -10), (180, -10), 100.0),  # same segment (110..300 is another), direct, not via nodes
        ((180, -10), (100, -10), 100.0),  # reversed
        ((150, -10), (150, 10), 20.0),  # same foot from both sides of the street
        ((150, -10), (170, 10), 40.0),  # same segment, both sides
        ((150, -10), (150, -10), 20.0),  # a point to itself: there and back
    ],
)
def test_same_segment_walks_along_it(a: tuple, b: tuple, expected_m: float) -> None:
    net = WalkNetwork.from_roads(block())
    assert walk(net, a, b).distance_m == pytest.approx(expected_m, abs=MM)


def test_snap_to_segment_interior_gives_the_perpendicular_foot() -> None:
    net = WalkNetwork.from_roads(block())
    snap = net.snap(points((130, 7), (-3, -4)))
    seg = net.segments.iloc[snap.segment[0]]
    assert seg.road_index == 0
    assert seg.length_m == pytest.approx(190, abs=MM)  # the piece from (110,0) to (300,0)
    assert snap.position_m[0] == pytest.approx(20, abs=MM)
    assert snap.snap_distance_m.tolist() == pytest.approx([7, 5], abs=MM)  # 3-4-5 to the corner
    to_local = Transformer.from_crs(net.crs, _LOCAL, always_xy=True)
    foot = np.column_stack(to_local.transform(snap.foot_xy[:, 0], snap.foot_xy[:, 1]))
    np.testing.assert_allclose(foot, [[130, 0], [0, 0]], atol=MM)
    assert snap.routable.all()


def test_point_60_m_from_any_road_is_unroutable_with_its_snap_distance() -> None:
    net = WalkNetwork.from_roads(block())
    snap = net.snap(points((150, -60)))
    assert not snap.routable[0]
    assert snap.snap_distance_m[0] == pytest.approx(60, abs=MM)
    there = walk(net, (150, -60), (120, 110))
    back = walk(net, (120, 110), (150, -60))
    assert np.isnan(there.distance_m) and there.reason == "origin_off_network"
    assert np.isnan(back.distance_m) and back.reason == "destination_off_network"
    assert there.origin_snap_m == pytest.approx(60, abs=MM)
    assert net.route(pt(150, -60), pt(120, 110)) is None
    wider = WalkNetwork.from_roads(block(), max_snap_m=70)
    assert walk(wider, (150, -60), (150, -10)).distance_m == pytest.approx(70, abs=MM)


def test_missing_point_geometry_is_unroutable() -> None:
    net = WalkNetwork.from_roads(block())
    snap = net.snap([None, pt(150, -10)])
    assert snap.routable.tolist() == [False, True]
    assert np.isnan(snap.snap_distance_m[0]) and snap.segment[0] == -1


def test_minimum_over_two_gates_and_two_doors() -> None:
    net = WalkNetwork.from_roads(block())
    gates = points((100, -10), (290, -10), (150, -80), index=["g1", "g2", "g3"])
    doors = points((120, 110), (10, 110), index=["d1", "d2"])
    walks = net.shortest_walks(gates, doors)
    by_pair = walks.set_index(["origin_index", "destination_index"]).distance_m
    expected = {("g1", "d1"): 340, ("g1", "d2"): 230, ("g2", "d1"): 310, ("g2", "d2"): 420}
    for pair, distance_m in expected.items():
        assert by_pair[pair] == pytest.approx(distance_m, abs=MM)
    best = minimum_walks(walks, {"g1": "school", "g2": "school", "g3": "far"}, lambda _: "venue")
    assert best.origin_group.tolist() == ["far", "school"]
    school = best.iloc[1]
    assert (school.origin_index, school.destination_index) == ("g1", "d2")
    assert school.distance_m == pytest.approx(230, abs=MM)
    assert np.isnan(best.iloc[0].distance_m) and best.iloc[0].reason == "origin_off_network"


def test_disconnected_component_is_no_path_not_zero_or_inf() -> None:
    net = WalkNetwork.from_roads(block(extra=[line((0, 1000), (100, 1000))]))
    for limit_m in (None, 5000.0):
        row = walk(net, (100, -10), (50, 1010), limit_m=limit_m)
        assert np.isnan(row.distance_m) and np.isnan(row.network_m)
        assert row.reason == "no_path"
    assert walk(net, (10, 1010), (50, 990)).distance_m == pytest.approx(60, abs=MM)


@pytest.mark.parametrize(("limit_m", "expected_m"), [(339.99, np.nan), (340.01, 340.0), (1000.0, 340.0)])
def test_limit_is_respected_on_the_total(limit_m: float, expected_m: float) -> None:
    net = WalkNetwork.from_roads(block())
    row = walk(net, (100, -10), (120, 110), limit_m=limit_m)
    if np.isnan(expected_m):
        assert np.isnan(row.distance_m) and row.reason == "beyond_limit"
    else:
        assert row.distance_m == pytest.approx(expected_m, abs=MM) and pd.isna(row.reason)


def test_limit_counts_the_snap_legs() -> None:
    net = WalkNetwork.from_roads(block())
    assert walk(net, (100, -10), (180, -10), limit_m=95).reason == "beyond_limit"  # 10 + 80 + 10
    assert walk(net, (100, -10), (180, -10), limit_m=100.01).distance_m == pytest.approx(100, abs=MM)


def test_route_geometry_matches_distance_and_starts_and_ends_on_the_points() -> None:
    net = WalkNetwork.from_roads(block())
    a, b = pt(100, -10), pt(120, 110)
    walks = net.shortest_walks([a], [b], geometry=True)
    route = walks.geometry.iloc[0]
    assert walks.crs.to_epsg() == 4326
    assert GEOD.geometry_length(route) == pytest.approx(walks.distance_m.iloc[0], abs=0.01)
    assert route.coords[0] == a.coords[0] and route.coords[-1] == b.coords[0]
    local = np.column_stack(TO_LOCAL.transform(*np.asarray(route.coords).T))
    np.testing.assert_allclose(
        local, [(100, -10), (100, 0), (0, 0), (0, 100), (110, 100), (120, 100), (120, 110)], atol=MM
    )
    assert net.route(a, b).equals(route)


def test_route_on_one_segment_and_on_the_road_itself() -> None:
    net = WalkNetwork.from_roads(block())
    route = net.route(pt(100, -10), pt(180, -10))
    assert GEOD.geometry_length(route) == pytest.approx(100, abs=0.01)
    on_road = net.route(pt(150, 0), pt(160, 0))
    assert len(on_road.coords) == 2 and GEOD.geometry_length(on_road) == pytest.approx(10, abs=0.01)


@pytest.mark.parametrize(("gap_m", "joined"), [(0.005, True), (0.5, False)])
def test_endpoints_within_tolerance_are_joined(gap_m: float, joined: bool) -> None:
    roads = gpd.GeoDataFrame(geometry=[line((0, 0), (100, 0)), line((100 + gap_m, 0), (200, 0))], crs=4326)
    net = WalkNetwork.from_roads(roads)
    row = walk(net, (50, -5), (150, -5))
    if joined:
        assert row.distance_m == pytest.approx(110, abs=0.01)
    else:
        assert row.reason == "no_path"


def test_multilinestrings_and_pairs_by_label() -> None:
    roads = gpd.GeoDataFrame(geometry=[MultiLineString([line((0, 0), (100, 0)), line((100, 0), (100, 100))])])
    net = WalkNetwork.from_roads(roads)
    origins = points((0, -5), (100, 105), index=["a", "b"])
    dests = points((50, 5), (105, 50), index=[10, 20])
    walks = net.shortest_walks(origins, dests, pairs=[("b", 10), ("a", 20)])
    assert walks.origin_index.tolist() == ["b", "a"] and walks.destination_index.tolist() == [10, 20]
    assert walks.distance_m.tolist() == pytest.approx([5 + 100 + 50 + 5, 5 + 100 + 50 + 5], abs=MM)
    frame = pd.DataFrame({"origin_index": ["a"], "destination_index": [10]})
    assert net.shortest_walks(origins, dests, pairs=frame).distance_m.iloc[0] == pytest.approx(60, abs=MM)
    with pytest.raises(ValueError, match=r"origin label\(s\) \['zz'\]"):
        net.shortest_walks(origins, dests, pairs=[("zz", 10)])
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        net.shortest_walks(origins, dests, pairs=["a", 10, 20])


def test_snaps_are_reusable_a_zone_crs_may_be_given_and_empty_inputs_give_empty_results() -> None:
    net = WalkNetwork.from_roads(block(), crs=zone_crs(116))
    gates, doors = net.snap(points((100, -10))), net.snap(points((120, 110)))
    assert net.shortest_walks(gates, doors).distance_m.tolist() == pytest.approx([340], abs=MM)
    empty = net.shortest_walks([], doors, limit_m=200, geometry=True)
    assert empty.empty and list(empty.columns)[-2:] == ["reason", "geometry"]
    with pytest.raises(ValueError, match=r"no group for origin_index \[0\]"):
        minimum_walks(net.shortest_walks(gates, doors), {}, {0: "v"})


# ------------------------------------------------------------------ refusals
def test_projected_or_too_wide_roads_are_refused() -> None:
    with pytest.raises(CRSError, match="EPSG:3857"):
        WalkNetwork.from_roads(block().to_crs(3857))
    with pytest.raises(CRSError, match="not lon/lat"):
        WalkNetwork.from_roads(gpd.GeoDataFrame(geometry=list(block().to_crs(3857).geometry)))  # no CRS
    wide = gpd.GeoDataFrame(geometry=[LineString([(115.0, 39.9), (117.0, 39.9)])], crs=4326)
    with pytest.raises(CRSError, match=r"2\.00° of longitude"):
        WalkNetwork.from_roads(wide)
    net = WalkNetwork.from_roads(block())
    with pytest.raises(CRSError, match="points: CRS EPSG:3857"):
        net.snap(points((0, 0)).to_crs(3857))


def test_bad_road_geometries_are_all_listed() -> None:
    roads = block()
    roads.loc[1, "geometry"] = Polygon([(116.4, 39.9), (116.401, 39.9), (116.401, 39.901)])
    roads.loc[3, "geometry"] = pt(0, 0)
    with pytest.raises(LayerError) as err:
        WalkNetwork.from_roads(roads)
    assert [(p.row, p.value) for p in err.value.problems] == [(2, "Polygon"), (4, "Point")]
    with pytest.raises(LayerError, match="no walkable line"):
        WalkNetwork.from_roads(block().assign(walkable=False))
    with pytest.raises(ValueError, match="not Points"):
        WalkNetwork.from_roads(block()).snap([line((0, 0), (1, 1))])


# ------------------------------------------------------------------ independent peer
@pytest.fixture(scope="module")
def random_grid() -> tuple[gpd.GeoDataFrame, np.ndarray, dict]:
    """A jittered 7 x 7 street grid with 20% of streets missing plus an isolated street,
    25 random points and 3 by the isolated street, and the peer's walk of every pair:
    brute-force nearest road with shapely, the road split at the foot, networkx Dijkstra;
    None when no path."""
    import networkx as nx  # the test peer (a test extra); a missing peer must fail, not skip

    rng = np.random.default_rng(7)
    size, spacing = 7, 100.0
    node = {(i, j): (i * spacing + rng.uniform(-20, 20), j * spacing + rng.uniform(-20, 20))
            for i in range(size) for j in range(size)}  # fmt: skip
    edges = [((i, j), (i + di, j + dj)) for i in range(size) for j in range(size) for di, dj in ((1, 0), (0, 1))
             if i + di < size and j + dj < size and rng.random() > 0.2]  # fmt: skip
    local = []  # each road in metres: straight, or bent through a jittered midpoint
    for a, b in edges:
        mid = ((node[a][0] + node[b][0]) / 2 + rng.uniform(-15, 15), (node[a][1] + node[b][1]) / 2)
        local.append(LineString([node[a], mid, node[b]] if rng.random() < 0.5 else [node[a], node[b]]))
    edges.append(("island west", "island east"))
    local.append(LineString([(100, 900), (400, 900)]))
    roads = gpd.GeoDataFrame(geometry=[line(*g.coords) for g in local], crs="EPSG:4326")
    xy = np.vstack(
        [rng.uniform(-30, (size - 1) * spacing + 30, size=(25, 2)), [(150, 910), (390, 890), (20, 900)]]
    )

    graph = nx.Graph()
    on_road: dict[int, list[tuple[float, int]]] = {}
    snap_m = np.empty(len(xy))
    for k, p in enumerate(shapely.points(xy)):
        r = int(np.argmin(shapely.distance(local, p)))
        snap_m[k] = local[r].distance(p)
        on_road.setdefault(r, []).append((local[r].project(p), k))
    for r, (a, b) in enumerate(edges):
        chain = [(0.0, a), *sorted((pos, ("pt", k)) for pos, k in on_road.get(r, [])), (local[r].length, b)]
        for (p0, n0), (p1, n1) in itertools.pairwise(chain):
            graph.add_edge(n0, n1, weight=p1 - p0)
    peer = {}
    for o in range(len(xy)):
        reached = nx.single_source_dijkstra_path_length(graph, ("pt", o), weight="weight")
        for d in range(len(xy)):
            peer[o, d] = snap_m[o] + reached[("pt", d)] + snap_m[d] if ("pt", d) in reached else None
    return roads, xy, peer


@pytest.mark.parametrize(
    ("limit_m", "subgraph_nodes", "dijkstra_cells"),
    [
        (None, None, None),  # whole graph, one batch
        (None, None, 30),  # one origin per Dijkstra call
        (250.0, None, None),  # bounded search, one cell
        (250.0, 5, 30),  # bounded search in many small cells, one origin per call
    ],
)
def test_matches_networkx_on_a_random_noded_grid(
    random_grid: tuple, monkeypatch: pytest.MonkeyPatch, limit_m: float | None, subgraph_nodes, dijkstra_cells
) -> None:
    roads, xy, peer = random_grid
    if subgraph_nodes:
        monkeypatch.setattr("geo.network._SUBGRAPH_NODES", subgraph_nodes)
    if dijkstra_cells:
        monkeypatch.setattr("geo.network._DIJKSTRA_CELLS", dijkstra_cells)
    net = WalkNetwork.from_roads(roads, max_snap_m=1000)
    walks = net.shortest_walks([pt(*p) for p in xy], [pt(*p) for p in xy], limit_m=limit_m)
    assert len(walks) == len(peer)
    seen = {"measured": 0, "no_path": 0, "beyond_limit": 0}
    for row in walks.itertuples():
        expected = peer[row.origin_index, row.destination_index]
        if expected is None:
            assert row.reason == "no_path" and np.isnan(row.distance_m)
        elif limit_m is not None and expected > limit_m:
            assert row.reason == "beyond_limit" and np.isnan(row.distance_m)
        else:
            assert row.distance_m == pytest.approx(expected, abs=MM), (
                row.origin_index,
                row.destination_index,
            )
            assert pd.isna(row.reason)
        seen["measured" if pd.isna(row.reason) else row.reason] += 1
    assert seen["measured"] > 0 and seen["no_path"] > 0  # the grid exercises every outcome
    assert (seen["beyond_limit"] > 0) == (limit_m is not None)


# ------------------------------------------------------------------ public graph for own searches
def test_graph_with_points_splits_segments_at_the_feet() -> None:
    """South street's piece (110,0)→(300,0) split at x = 130 and x = 250; walks worked by hand."""
    from scipy.sparse import csgraph

    net = WalkNetwork.from_roads(block())
    first = net.snap(points((130, 7), (250, -4), (250, 4), (150, -60)))  # two at one foot; one 60 m off
    second = net.snap(points((110, 20), (0, -3)))  # feet on nodes: (110,0) (no bridge), the corner (0,0)
    graph, node_xy, (nodes_a, nodes_b) = net.graph_with_points([first, second])
    n = len(net.node_xy)
    assert graph.shape == (n + 2, n + 2) and len(node_xy) == n + 2
    np.testing.assert_array_equal(node_xy[:n], net.node_xy)
    assert nodes_a[0] >= n and nodes_a[1] == nodes_a[2] >= n and nodes_a[3] == -1
    node_at = {xy: int(np.argmin(np.hypot(*(net.node_xy - net.snap(points(xy)).point_xy[0]).T)))
               for xy in ((0, 0), (110, 0))}  # fmt: skip
    assert nodes_b.tolist() == [node_at[(110, 0)], node_at[(0, 0)]]  # a foot on a segment's end: that node
    dist = csgraph.dijkstra(graph, indices=nodes_a[0])
    assert dist[nodes_a[1]] == pytest.approx(120, abs=MM)  # along the street, 130 → 250
    assert dist[node_at[(0, 0)]] == pytest.approx(130, abs=MM)  # west along the south street
    assert dist[node_at[(110, 0)]] == pytest.approx(20, abs=MM)
    east = int(np.argmin(np.hypot(*(net.node_xy - net.snap(points((300, 0))).point_xy[0]).T)))
    assert graph[node_at[(110, 0)], east] == pytest.approx(190, abs=MM)  # the split piece keeps its edge
    assert graph[node_at[(110, 0)], nodes_a[0]] == pytest.approx(20, abs=MM)
    # the feet in the graph's coordinates are the snapped feet
    np.testing.assert_allclose(node_xy[nodes_a[0]], first.foot_xy[0], atol=1e-9)


def test_to_lonlat_inverts_the_snap_projection() -> None:
    net = WalkNetwork.from_roads(block())
    snap = net.snap(points((130, 7), (-3, -4)))
    np.testing.assert_allclose(net.to_lonlat(snap.point_xy), snap.lonlat, atol=1e-10)
    stacked = np.stack([snap.point_xy, snap.foot_xy])  # any leading shape
    back = net.to_lonlat(stacked)
    assert back.shape == (2, 2, 2)
    feet = np.column_stack(TO_LOCAL.transform(back[1, :, 0], back[1, :, 1]))
    np.testing.assert_allclose(feet, [[130, 0], [0, 0]], atol=MM)
