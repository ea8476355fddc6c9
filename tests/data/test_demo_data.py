"""The committed demo district (data/demo/) against its schema and its designed truth.

Checks use methods independent of the generator: geodesic distances (pyproj.Geod) to nearest
points found in an azimuthal-equidistant projection (not the generator's transverse Mercator),
an own Dijkstra (scipy) on the shared vertices of the roads, and the raw GeoJSON properties.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import shapely
from pyproj import Geod, Transformer
from scipy import sparse
from scipy.sparse import csgraph
from shapely.geometry import LineString, Point, shape
from shapely.ops import nearest_points

from layers.schema import BOOL, CATEGORY, DATE, FACILITY_TYPES, FLOAT, INT, KINDS, SCHEMAS, STR

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "data" / "demo"
GEOD = Geod(ellps="WGS84")
TOL_M = 0.05
CENTRE = (114.30, 30.55)  # district centre (design.json "centre")


# ------------------------------------------------------------------ loading and helpers
@pytest.fixture(scope="module")
def design() -> dict:
    return json.loads((DEMO / "design.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def layers() -> dict[str, list[dict]]:
    out = {}
    for kind in KINDS:
        collection = json.loads((DEMO / f"{kind}.geojson").read_text(encoding="utf-8"))
        assert collection["type"] == "FeatureCollection"
        for f in collection["features"]:
            f["shape"] = shape(f["geometry"])
        out[kind] = collection["features"]
    return out


@pytest.fixture(scope="module")
def by_id(layers) -> dict[str, dict]:
    return {f["properties"]["id"]: f for fs in layers.values() for f in fs}


@functools.lru_cache(maxsize=8)
def _aeqd(lon: float, lat: float) -> tuple[Transformer, Transformer]:
    proj = f"+proj=aeqd +lat_0={lat} +lon_0={lon} +ellps=WGS84 +units=m"
    return (
        Transformer.from_crs("EPSG:4326", proj, always_xy=True),
        Transformer.from_crs(proj, "EPSG:4326", always_xy=True),
    )


@pytest.fixture(scope="module")
def to_m(design):
    """WGS84 geometries to metres in one aeqd centred on the district (for roads and graphs)."""
    assert tuple(design["centre"]) == CENTRE
    fwd, _ = _aeqd(*CENTRE)
    return lambda g: shapely.transform(g, lambda c: np.column_stack(fwd.transform(c[:, 0], c[:, 1])))


def geodesic_distance_m(target, p: Point) -> float:
    """Geodesic distance from point ``p`` to ``target`` (point or polygon), all WGS84.

    The nearest point is found in an aeqd projection centred on the district (its scale
    error, < 1e-6 there, moves the nearest point by micrometres, which changes the distance
    only at second order); the distance itself is geodesic.
    """
    fwd, back = _aeqd(*CENTRE)
    proj = lambda g: shapely.transform(g, lambda c: np.column_stack(fwd.transform(c[:, 0], c[:, 1])))  # noqa: E731
    near, _ = nearest_points(proj(target), proj(p))
    lon, lat = back.transform(near.x, near.y)
    return float(GEOD.inv(lon, lat, p.x, p.y)[2])


def _designed_near_entries(design) -> list[tuple[str, dict]]:
    keys = ("near_school", "near_limit", "near_kindergarten", "near_point_school", "game_near_school")
    return [(k, e) for k in keys for e in design[k]]


# ------------------------------------------------------------------ schema
def test_counts_and_sizes_match_the_design(layers, design):
    assert {k: len(v) for k, v in layers.items()} == design["counts"]
    total = sum(p.stat().st_size for p in DEMO.iterdir())
    assert total < 3_000_000


def test_layers_have_the_requested_contents(layers):
    props = {kind: [f["properties"] for f in fs] for kind, fs in layers.items()}
    levels = Counter(s["level"] for s in props["schools"])
    campuses = [f["properties"] for f in layers["schools"] if f["shape"].geom_type == "Polygon"]
    assert 6 <= len(props["subdistricts"]) <= 10
    assert sum(c["level"] != "kindergarten" for c in campuses) >= 40 and levels["kindergarten"] >= 10
    assert set(levels) == set(SCHEMAS["schools"].field("level").choices)
    assert 2 <= len(props["schools"]) - len(campuses) <= 3
    status = Counter(c["status"] for c in props["net_cafes"])
    assert len(props["net_cafes"]) >= 100 and status["unlicensed"] >= 5 and status["licensed"] > 80
    assert status["suspended"] >= 1 and status["revoked"] >= 1
    chains = Counter(c["chain"] for c in props["net_cafes"] if c["chain"])
    assert len(chains) >= 2 and min(chains.values()) > 3
    assert 25 <= len(props["game_venues"]) <= 35
    assert len(props["entertainment_venues"]) >= 20 and len(props["publication_sellers"]) >= 20
    forms = Counter(r["form"] for r in props["residential"])
    assert (
        forms["compound"] >= 300
        and forms["building"] >= 10
        and any(r["mixed_use"] for r in props["residential"])
    )
    assert {f["type"] for f in props["cultural_facilities"]} == set(FACILITY_TYPES)
    assert len(props["pois"]) >= 140 and 2 <= len(props["zones"]) <= 3
    assert len({d["venue_id"] for d in props["venue_doors"]}) >= 25
    for kind in ("schools", "net_cafes", "residential", "cultural_facilities", "subdistricts"):
        names = [p["name"] for p in props[kind]]
        assert len(set(names)) == len(names), kind


@pytest.mark.parametrize("kind", KINDS)
def test_properties_follow_the_schema(layers, kind):
    schema = SCHEMAS[kind]
    pattern = re.compile(rf"^{schema.id_prefix}-\d{{3,}}$")
    ids = [f["properties"]["id"] for f in layers[kind]]
    assert len(set(ids)) == len(ids)
    for f in layers[kind]:
        props = f["properties"]
        assert set(props) == {"id", *schema.field_names}, props
        assert pattern.match(props["id"]), props["id"]
        for fld in schema.fields:
            value = props[fld.name]
            if value is None:
                assert not fld.required, (props["id"], fld.name)
                continue
            if fld.type in (STR, CATEGORY):
                assert isinstance(value, str) and value.strip(), (props["id"], fld.name)
            if fld.type == CATEGORY:
                assert value in fld.choices, (props["id"], fld.name, value)
            if fld.type == INT:
                assert isinstance(value, int) and not isinstance(value, bool), (props["id"], fld.name)
            if fld.type == FLOAT:
                assert isinstance(value, int | float) and not isinstance(value, bool)
            if fld.type == BOOL:
                assert isinstance(value, bool), (props["id"], fld.name)
            if fld.type == DATE:
                dt.date.fromisoformat(value)
            if fld.min_value is not None:
                assert value >= fld.min_value


@pytest.mark.parametrize("kind", KINDS)
def test_geometries_are_valid_allowed_and_rounded(layers, kind):
    allowed = SCHEMAS[kind].geometry
    for f in layers[kind]:
        g = f["shape"]
        assert g.geom_type in allowed and g.is_valid and not g.is_empty, f["properties"]["id"]
        coords = shapely.get_coordinates(g)
        assert np.array_equal(np.round(coords, 7), coords)
        if g.geom_type == "Polygon":
            assert g.exterior.is_ccw  # RFC 7946


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "subdistricts"])
def test_everything_lies_inside_the_district(layers, kind):
    district = shapely.union_all([f["shape"] for f in layers["subdistricts"]])
    outside = [f["properties"]["id"] for f in layers[kind] if not district.covers(f["shape"])]
    assert outside == []


def test_subdistricts_tile_the_district(layers, to_m):
    polys = [to_m(f["shape"]) for f in layers["subdistricts"]]
    for a, b in itertools.combinations(polys, 2):
        assert a.intersection(b).area < 1e-3  # m²: shared edges only
    union = shapely.union_all(polys)
    assert union.geom_type == "Polygon" and len(union.interiors) == 0
    assert union.area == pytest.approx(sum(p.area for p in polys), abs=1e-2)
    width, height = np.ptp(shapely.get_coordinates(union), axis=0)
    assert 7000 < width < 9000 and 5000 < height < 7000


def test_subdistrict_populations(layers, design, to_m):
    props = [f["properties"] for f in layers["subdistricts"]]
    assert sum(p["population"] for p in props) == design["district"]["population"]
    assert 300_000 <= design["district"]["population"] <= 400_000
    assert 1 <= sum(not p["urban"] for p in props) <= 2
    assert len({p["population"] for p in props}) == len(props)
    homes = Counter()
    for f in layers["residential"]:
        homes[f["properties"]["subdistrict"]] += f["properties"]["population"]
    for p in props:
        assert 0.95 * p["population"] <= homes[p["name"]] <= p["population"]
    density = {
        p["name"]: p["population"] / to_m(f["shape"]).area
        for p, f in zip(props, layers["subdistricts"], strict=True)
    }
    rural = [density[p["name"]] for p in props if not p["urban"]]
    assert max(rural) < min(density[p["name"]] for p in props if p["urban"]) / 3


@pytest.mark.parametrize(
    "kind",
    ["schools", "net_cafes", "game_venues", "cultural_facilities", "residential", "publication_sellers"],
)
def test_subdistrict_fields_match_the_location(layers, kind):
    areas = [(f["properties"]["name"], f["shape"]) for f in layers["subdistricts"]]
    for f in layers[kind]:
        p = f["shape"].representative_point()
        (name,) = [n for n, poly in areas if poly.covers(p)]
        assert f["properties"]["subdistrict"] == name, f["properties"]["id"]


# ------------------------------------------------------------------ roads
def test_roads_are_noded_every_crossing_is_a_shared_endpoint(layers):
    lines = [f["shape"] for f in layers["roads"]]
    assert all(len(line.coords) >= 2 for line in lines)
    left, right = shapely.STRtree(lines).query(lines, predicate="intersects")
    pairs = [(a, b) for a, b in zip(left, right, strict=True) if a < b]
    assert len(pairs) > len(lines)
    for a, b in pairs:
        ends_a = {lines[a].coords[0], lines[a].coords[-1]}
        ends_b = {lines[b].coords[0], lines[b].coords[-1]}
        meet = lines[a].intersection(lines[b])
        assert meet.geom_type == "Point" and meet.coords[0] in ends_a & ends_b, (a, b, meet.wkt)


def test_no_road_ends_just_short_of_another(layers, to_m):
    # an end within 0.5 m of a segment must be one of that segment's own vertices (no near misses)
    lines = [to_m(f["shape"]) for f in layers["roads"]]
    assert all(len(line.coords) == 2 for line in lines)
    xy = np.array([line.coords for line in lines])  # (n, 2 ends, 2)
    ends = xy.reshape(-1, 2)
    near_end, near_line = shapely.STRtree(lines).query(
        shapely.points(ends), predicate="dwithin", distance=0.5
    )
    gap = np.hypot(*(xy[near_line] - ends[near_end][:, None, :]).transpose(2, 0, 1)).min(axis=1)
    assert len(near_end) > len(ends) and gap.max() < 1e-6


def _graph(layers, to_m, *, walkable_only: bool):
    roads = [f for f in layers["roads"] if f["properties"]["walkable"] or not walkable_only]
    index: dict[tuple, int] = {}
    rows, cols, weights = [], [], []
    for f in roads:
        coords = f["shape"].coords
        u = index.setdefault(coords[0], len(index))
        v = index.setdefault(coords[-1], len(index))
        rows.append(u)
        cols.append(v)
        weights.append(to_m(f["shape"]).length)
    return roads, index, rows, cols, weights


@pytest.mark.parametrize("walkable_only", [True, False])
def test_road_network_is_one_component(layers, to_m, walkable_only):
    _, index, rows, cols, weights = _graph(layers, to_m, walkable_only=walkable_only)
    matrix = sparse.coo_matrix((weights, (rows, cols)), shape=(len(index), len(index)))
    n, _ = csgraph.connected_components(matrix, directed=False)
    assert n == 1


def test_only_the_railway_is_not_walkable(layers):
    classes = Counter((f["properties"]["road_class"], f["properties"]["walkable"]) for f in layers["roads"])
    assert {c for c, w in classes if not w} == {"rail"}
    assert {"primary", "residential", "alley", "village_lane"} <= {c for c, _ in classes}


def _walk_m(layers, to_m, a: Point, b: Point, *, walkable_only: bool = True) -> float:
    """Own shortest walk: snap legs to the nearest segment + Dijkstra between the two feet."""
    roads, index, rows, cols, weights = _graph(layers, to_m, walkable_only=walkable_only)
    lines = [to_m(f["shape"]) for f in roads]
    tree = shapely.STRtree(lines)
    n = len(index)
    edges: dict[tuple[int, int], float] = {}

    def link(u: int, v: int, w: float) -> None:
        key = (min(u, v), max(u, v))
        edges[key] = min(w, edges.get(key, np.inf))

    for u, v, w in zip(rows, cols, weights, strict=True):
        link(u, v, w)
    legs = 0.0
    for k, p in enumerate((to_m(a), to_m(b))):
        i = int(tree.nearest(p))
        along = lines[i].project(p)
        legs += lines[i].distance(p)
        link(n + k, rows[i], along)
        link(n + k, cols[i], lines[i].length - along)
    (us, vs), ws = zip(*edges, strict=True), list(edges.values())
    matrix = sparse.coo_matrix((ws, (us, vs)), shape=(n + 2, n + 2)).tocsr()
    dist = csgraph.dijkstra(matrix, directed=False, indices=n)
    return float(legs + dist[n + 1])


def test_far_door_walk_is_long_although_the_door_is_close(layers, design, by_id, to_m):
    case = design["far_door"]
    gate, door = by_id[case["gate_id"]]["shape"], by_id[case["door_id"]]["shape"]
    venue, school = by_id[case["venue_id"]], by_id[case["school_id"]]
    assert by_id[case["door_id"]]["properties"]["venue_id"] == case["venue_id"]
    assert by_id[case["gate_id"]]["properties"]["school_id"] == case["school_id"]
    assert float(GEOD.inv(gate.x, gate.y, door.x, door.y)[2]) == pytest.approx(case["straight_m"], abs=TOL_M)
    assert geodesic_distance_m(school["shape"], venue["shape"]) == pytest.approx(
        case["boundary_m"], abs=TOL_M
    )
    assert _walk_m(layers, to_m, gate, door) == pytest.approx(case["walk_m"], abs=TOL_M)
    assert case["walk_m"] > 200 > case["boundary_m"] and case["walk_m"] > 5 * case["straight_m"]
    # one gate, one door: the designed pair is the door-walk minimum
    assert sum(d["properties"]["venue_id"] == case["venue_id"] for d in layers["venue_doors"]) == 1
    assert sum(g["properties"]["school_id"] == case["school_id"] for g in layers["school_gates"]) == 1


def test_detour_across_the_river(layers, design, by_id, to_m):
    case = design["detour"]
    gate, venue = by_id[case["gate_id"]]["shape"], by_id[case["venue_id"]]["shape"]
    assert float(GEOD.inv(gate.x, gate.y, venue.x, venue.y)[2]) == pytest.approx(
        case["straight_m"], abs=TOL_M
    )
    school = by_id[case["school_id"]]["shape"]
    assert geodesic_distance_m(school, venue) == pytest.approx(case["boundary_m"], abs=TOL_M)
    assert _walk_m(layers, to_m, gate, venue) == pytest.approx(case["walk_m"], abs=TOL_M)
    assert case["walk_m"] > 10 * case["straight_m"]
    assert sum(g["properties"]["school_id"] == case["school_id"] for g in layers["school_gates"]) == 1
    # a builder that forgets `walkable` would cross on the railway bridge
    via_rail = _walk_m(layers, to_m, gate, venue, walkable_only=False)
    assert via_rail == pytest.approx(case["walk_if_railway_bridge_were_walkable_m"], abs=TOL_M)


# ------------------------------------------------------------------ places
def test_campuses_and_homes_stay_off_the_roads(layers):
    tree = shapely.STRtree([f["shape"] for f in layers["roads"]])
    for kind in ("schools", "residential"):
        polys = [f["shape"] for f in layers[kind] if f["shape"].geom_type == "Polygon"]
        hit, _ = tree.query(polys, predicate="intersects")
        assert len(hit) == 0, kind


def test_campuses_homes_and_venues_do_not_overlap(layers):
    campuses = [f["shape"] for f in layers["schools"] if f["shape"].geom_type == "Polygon"]
    homes = shapely.STRtree([f["shape"] for f in layers["residential"]])
    hit, _ = homes.query(campuses, predicate="intersects")
    assert len(hit) == 0
    tree = shapely.STRtree(campuses)
    for kind in (
        "net_cafes",
        "game_venues",
        "entertainment_venues",
        "publication_sellers",
        "cultural_facilities",
    ):
        points = [f["shape"] for f in layers[kind]]
        inside, _ = tree.query(points, predicate="intersects")
        assert len(inside) == 0, kind


def test_gates_sit_on_their_campus_boundary_facing_a_road(layers, by_id, to_m):
    per_school = Counter(g["properties"]["school_id"] for g in layers["school_gates"])
    for s in layers["schools"]:
        n = per_school[s["properties"]["id"]]
        assert (1 <= n <= 3) if s["shape"].geom_type == "Polygon" else n == 0
    walk_lines = [to_m(f["shape"]) for f in layers["roads"] if f["properties"]["walkable"]]
    tree = shapely.STRtree(walk_lines)
    for g in layers["school_gates"]:
        campus = by_id[g["properties"]["school_id"]]["shape"]
        gate = to_m(g["shape"])
        assert to_m(campus).exterior.distance(gate) < TOL_M
        assert walk_lines[int(tree.nearest(gate))].distance(gate) < 10.0


def test_doors_are_near_their_cafe_and_a_road(layers, by_id, to_m):
    walk_lines = [to_m(f["shape"]) for f in layers["roads"] if f["properties"]["walkable"]]
    tree = shapely.STRtree(walk_lines)
    per_venue = Counter(d["properties"]["venue_id"] for d in layers["venue_doors"])
    assert set(per_venue.values()) <= {1, 2}
    for d in layers["venue_doors"]:
        venue = by_id[d["properties"]["venue_id"]]
        assert d["properties"]["venue_kind"] == "net_cafes" and venue["properties"]["id"].startswith("nc-")
        door = to_m(d["shape"])
        assert walk_lines[int(tree.nearest(door))].distance(door) < 10.0
        assert to_m(venue["shape"]).distance(door) < 60.0


def test_designed_distances_to_schools(layers, design, by_id):
    entries = _designed_near_entries(design)
    assert len(entries) >= 20
    for _key, e in entries:
        school, venue = by_id[e["school_id"]], by_id[e["venue_id"]]
        assert geodesic_distance_m(school["shape"], venue["shape"]) == pytest.approx(
            e["distance_m"], abs=TOL_M
        )
        for other in layers["schools"]:
            if other is not school:
                assert geodesic_distance_m(other["shape"], venue["shape"]) > 215.0, (
                    e,
                    other["properties"]["id"],
                )


def test_near_limit_cases_straddle_200_m(design, by_id):
    distances = sorted(e["distance_m"] for e in design["near_limit"])
    assert len(distances) >= 8 and distances[0] >= 185 and distances[-1] <= 215
    assert any(199 < d < 200 for d in distances) and any(200 < d < 201 for d in distances)
    assert all(by_id[e["school_id"]]["properties"]["level"] != "kindergarten" for e in design["near_limit"])
    assert all(
        by_id[e["school_id"]]["properties"]["level"] == "kindergarten" for e in design["near_kindergarten"]
    )
    assert all(by_id[e["school_id"]]["shape"].geom_type == "Point" for e in design["near_point_school"])


def test_every_other_cafe_is_well_clear_of_schools(layers, design, to_m):
    designed = {e["venue_id"] for _, e in _designed_near_entries(design)}
    designed |= {design["far_door"]["venue_id"], design["detour"]["venue_id"]}
    schools = [to_m(s["shape"]) for s in layers["schools"]]
    for cafe in layers["net_cafes"]:
        if cafe["properties"]["id"] not in designed:
            assert min(s.distance(to_m(cafe["shape"])) for s in schools) > 215.0, cafe["properties"]["id"]


def test_cafes_inside_residential_are_exactly_the_designed_ones(layers, design):
    homes = [(f["properties"], f["shape"]) for f in layers["residential"]]
    found = {
        (c["properties"]["id"], h["id"])
        for c in layers["net_cafes"]
        for h, shp in homes
        if shp.contains(c["shape"])
    }
    assert found == {(e["venue_id"], e["residential_id"]) for e in design["in_residential"]}
    forms = Counter((e["form"], e["mixed_use"]) for e in design["in_residential"])
    assert (
        forms[("building", True)] >= 1 and forms[("building", False)] >= 1 and forms[("compound", False)] >= 1
    )
    home_props = {h["id"]: h for h, _ in homes}
    for e in design["in_residential"]:
        assert home_props[e["residential_id"]]["form"] == e["form"]
        assert home_props[e["residential_id"]]["mixed_use"] == e["mixed_use"]


def test_game_venue_spacing(layers, design, by_id):
    pairs = {frozenset((e["a"], e["b"])): e["distance_m"] for e in design["game_pairs"]}
    assert sum(d < 100 for d in pairs.values()) >= 3
    venues = [(f["properties"]["id"], f["shape"]) for f in layers["game_venues"]]
    for (ia, a), (ib, b) in itertools.combinations(venues, 2):
        d = float(GEOD.inv(a.x, a.y, b.x, b.y)[2])
        if frozenset((ia, ib)) in pairs:
            assert d == pytest.approx(pairs[frozenset((ia, ib))], abs=TOL_M)
        else:
            assert d > 110.0, (ia, ib, d)


def test_zones_hold_the_designed_venues(layers, design, by_id):
    types = Counter(z["properties"]["zone_type"] for z in layers["zones"])
    assert types["heritage_protection"] >= 1 and types["construction_control"] >= 1
    assert {e["inside"] for e in design["zone_venues"]} == {True, False}
    for e in design["zone_venues"]:
        zone, venue = by_id[e["zone_id"]]["shape"], by_id[e["venue_id"]]["shape"]
        assert zone.contains(venue) == e["inside"]
        assert geodesic_distance_m(zone, venue) < 60.0  # inside (0) or near


def test_cultural_facility_coverage_gap_and_free_entry(layers, design):
    facts = design["facilities"]
    gap = facts["subdistrict_without_station_or_service_point"]
    grassroots = Counter(
        f["properties"]["subdistrict"]
        for f in layers["cultural_facilities"]
        if f["properties"]["type"] in ("service_point", "cultural_station")
    )
    names = [f["properties"]["name"] for f in layers["subdistricts"]]
    assert grassroots[gap] == 0 and all(grassroots[n] > 0 for n in names if n != gap)
    not_free = sorted(
        f["properties"]["id"]
        for f in layers["cultural_facilities"]
        if f["properties"]["type"] in facts["must_be_free_types"]
        and f["properties"]["free_for_minors"] is False
    )
    assert not_free == sorted(facts["must_be_free_but_marked_false"]) and 2 <= len(not_free) <= 5
    per_type = Counter(f["properties"]["type"] for f in layers["cultural_facilities"])
    assert per_type["service_point"] >= 20 and per_type["cultural_station"] == len(names) - 1


def test_pois_are_jittered_copies_or_leads(layers, design, by_id):
    matched = design["pois"]["matched"]
    assert len(matched) + len(design["pois"]["leads"]) == len(layers["pois"])
    for e in matched:
        p, v = by_id[e["poi_id"]]["shape"], by_id[e["venue_id"]]["shape"]
        d = float(GEOD.inv(p.x, p.y, v.x, v.y)[2])
        assert d == pytest.approx(e["offset_m"], abs=TOL_M) and 10 - TOL_M <= d <= 30 + TOL_M
    venues = [f["shape"] for k in ("net_cafes", "game_venues") for f in layers[k]]
    for pid in design["pois"]["leads"]:
        p = by_id[pid]["shape"]
        assert min(float(GEOD.inv(p.x, p.y, v.x, v.y)[2]) for v in venues) > 60.0
    statuses = Counter(by_id[e["venue_id"]]["properties"].get("status") for e in matched)
    assert statuses["licensed"] >= 80 and statuses["unlicensed"] >= 3


# ------------------------------------------------------------------ reproducibility
@pytest.mark.slow
def test_generator_reproduces_the_committed_files(tmp_path):
    run = subprocess.run(
        [sys.executable, str(ROOT / "data" / "make_demo.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    committed = sorted(p.name for p in DEMO.iterdir() if p.suffix in (".geojson", ".json"))
    assert sorted(p.name for p in tmp_path.iterdir()) == committed
    for name in committed:
        assert (tmp_path / name).read_bytes() == (DEMO / name).read_bytes(), name


def test_walk_helper_on_a_hand_built_network(to_m):
    # sanity check of the test's own Dijkstra: an L-shaped street, points 3 m off it
    _, back = _aeqd(*CENTRE)
    lonlat = lambda x, y: Point(*back.transform(x, y))  # noqa: E731
    roads = [
        {
            "properties": {"walkable": True},
            "shape": LineString([lonlat(0, 0).coords[0], lonlat(100, 0).coords[0]]),
        },
        {
            "properties": {"walkable": True},
            "shape": LineString([lonlat(100, 0).coords[0], lonlat(100, 50).coords[0]]),
        },
    ]
    walk = _walk_m({"roads": roads}, to_m, lonlat(10, 3), lonlat(97, 40))
    assert walk == pytest.approx(3 + 90 + 40 + 3, abs=1e-3)
