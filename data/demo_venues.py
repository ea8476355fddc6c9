"""Net cafés, game and entertainment venues, publication sellers and venue doors.

The cafés near schools are *designed*: each is put at an exact boundary distance from one
school (a foot on a campus edge pushed out along the edge's normal, or a corner pushed out
along its bisector), with every other school at least :data:`CLEAR_OF_SCHOOLS_M` away, and
the distance is written to design.json as constructed.  The far-door and detour cases have
their walking routes built along known roads and summed piece by piece.
"""

from __future__ import annotations

import itertools
import logging
import math

import numpy as np
from demo_base import outward_normal, points_at_distance, snap, snap_point
from demo_map import EAST_BANK_X, URBAN_SETBACK_M, WEST_BANK_X
from demo_names import (
    BOOK_SUFFIXES,
    BOOK_WORDS,
    CAFE_CHAINS,
    GAME_SUFFIXES,
    GAME_WORDS,
    KTV_SUFFIXES,
    KTV_WORDS,
    UNLICENSED_NAMES,
    cafe_name,
    venue_name,
)
from demo_world import World
from shapely.geometry import LineString, Point

log = logging.getLogger(__name__)

NEAR_SCHOOL_M = (35.0, 62.5, 88.0, 110.0, 140.0, 165.0, 178.0)
NEAR_LIMIT_M = (185.0, 192.3, 197.4, 199.5, 199.9, 200.1, 200.5, 207.8, 214.5)
NEAR_KINDERGARTEN_M = (65.0, 95.5)
POINT_SCHOOL_M = 150.0
DETOUR_BOUNDARY_M, DETOUR_VENUE_DY_M = 120.0, 5.0
FAR_DOOR_BOUNDARY_M = 30.0
GAME_NEAR_SCHOOL_M = (90.0, 150.0, 196.0)
GAME_PAIRS_M = (45.0, 78.5, 99.5, 100.5)
GAME_SPACING_M = 130.0
KIND_CODE = {
    "net_cafes": "10",
    "game_venues": "20",
    "entertainment_venues": "30",
    "publication_sellers": "40",
}


def _licence(world: World, kind: str, year: int) -> str:
    serial = len(world.layers[kind]) + 1
    return f"429901{KIND_CODE[kind]}{year % 100:02d}{serial:03d}"


def add_cafe(world: World, p: Point, parcel, *, status: str = "licensed", chain: str | None = None) -> dict:
    """A net café at ``p`` (metric, snapped) with plausible attributes."""
    rng = world.rng
    sd = world.subdistrict_name(p)
    if status == "unlicensed":
        base = UNLICENSED_NAMES[len(world.layers["net_cafes"]) % len(UNLICENSED_NAMES)]
        name = f"{world.ground.nearest_road_name(p)}{base}"
        while name in world.names:
            name = f"{sd[:2]}{name}"
        world.names.add(name)
        licence, terminals = None, int(rng.integers(8, 40))
    else:
        if chain is None and rng.random() < 0.3:
            chain = CAFE_CHAINS[int(rng.integers(len(CAFE_CHAINS)))]
        place = (
            sd[:2]
            if chain and f"{chain}({sd[:2]}店)" not in world.names
            else world.ground.nearest_road_name(p)
        )
        name = cafe_name(rng, world.names, place, chain=chain)
        licence = _licence(world, "net_cafes", int(rng.integers(2008, 2024)))
        terminals = int(rng.integers(120, 301)) if chain else int(rng.integers(40, 161))
    cafe = world.add(
        "net_cafes",
        p,
        name=name,
        licence_no=licence,
        status=status,
        address=world.address(p),
        subdistrict=sd,
        terminals=terminals,
        chain=chain,
    )
    world.claim("net_cafes", p, parcel)
    return cafe


def add_venue(world: World, kind: str, p: Point, parcel, *, status: str = "licensed") -> dict:
    """A game venue, entertainment venue or publication seller at ``p``."""
    rng = world.rng
    words, suffixes = {
        "game_venues": (GAME_WORDS, GAME_SUFFIXES),
        "entertainment_venues": (KTV_WORDS, KTV_SUFFIXES),
        "publication_sellers": (BOOK_WORDS, BOOK_SUFFIXES),
    }[kind]
    road = world.ground.nearest_road_name(p)
    venue = world.add(
        kind,
        p,
        name=venue_name(rng, world.names, words, suffixes, road),
        licence_no=_licence(world, kind, int(rng.integers(2006, 2024))),
        status=status,
        address=world.address(p),
        subdistrict=world.subdistrict_name(p),
    )
    world.claim(kind, p, parcel)
    return venue


def _designed_near(world: World, schools: list[dict], distance_m: float, used: set[str]):
    """(point, parcel, school): a free spot exactly ``distance_m`` from one of ``schools``."""
    rng = world.rng
    for k in rng.permutation(len(schools)):
        school = schools[int(k)]
        if school["id"] in used:
            continue
        geom = school["geometry"]
        if geom.geom_type == "Polygon":
            cands = points_at_distance(geom, distance_m)
        else:
            ang = np.arange(24) * math.pi / 12
            cands = [(geom.x + distance_m * math.cos(a), geom.y + distance_m * math.sin(a)) for a in ang]
        for c in rng.permutation(len(cands)):
            p = snap_point(*cands[int(c)])
            if not world.clear_of_schools(p, except_id=school["id"]) or not world.spacing_ok(p, 20.0):
                continue
            parcel = world.free_parcel(p)
            if parcel is not None:
                used.add(school["id"])
                return p, parcel, school
    raise RuntimeError(f"no spot at {distance_m} m from any school")


def _route_m(points: list) -> float:
    pts = [np.asarray(p.coords[0]) if isinstance(p, Point) else np.asarray(p) for p in points]
    return float(sum(np.hypot(*(b - a)) for a, b in itertools.pairwise(pts)))


def _foot_on_road(world: World, p: Point) -> Point:
    seg = world.ground.net.segment(world.ground.net.nearest_edge(p.x, p.y)[0])
    return seg.interpolate(seg.project(p))


def _bank_nodes(world: World, x: float, y0: float, y1: float) -> list[tuple[float, float]]:
    """Road nodes on the straight bank road at ``x`` with y0 <= y < y1, by y."""
    nodes = [xy for xy in world.ground.net.xy if abs(xy[0] - x) < 0.5 and y0 - 0.5 <= xy[1] < y1]
    return sorted(nodes, key=lambda xy: xy[1])


def place_designed_cafes(world: World) -> None:
    """Far-door, detour, near-school, near-limit, near-kindergarten and point-school cafés."""
    gates = {gt["properties"]["school_id"]: gt for gt in reversed(world.layers["school_gates"])}  # main gates
    schools = {s["id"]: s for s in world.layers["schools"]}
    far, detour = schools[world.design["_far_door_school"]], schools[world.design["_detour_school"]]
    _far_door_case(world, far, gates[far["id"]])
    _detour_case(world, detour, gates[detour["id"]])
    _near_cases(world, used={far["id"], detour["id"]})
    log.info("designed cafés: %d", len(world.layers["net_cafes"]))


def _far_door_case(world: World, school: dict, gate: dict) -> None:
    """A café across street A from the school, its only door on the alley behind it."""
    fd, net = world.ground.far_door, world.ground.net
    ring = school["geometry"].exterior
    foot = ring.interpolate(ring.project(gate["geometry"]))  # on the campus's south edge (horizontal)
    p = snap_point(foot.x, foot.y - FAR_DOOR_BOUNDARY_M)
    if abs(school["geometry"].distance(p) - FAR_DOOR_BOUNDARY_M) > 0.01:
        raise RuntimeError("far-door café is not where it was designed")
    parcel = world.free_parcel(p)
    cafe = add_cafe(world, p, parcel, chain=CAFE_CHAINS[0])
    ring = parcel.poly.exterior
    door = snap(ring.interpolate(ring.project(Point(p.x, fd["y_alley"] + URBAN_SETBACK_M))))
    world.doors.append((cafe, door, 2, "后巷楼梯口"))
    # gate → street A → west along A to the corner → down the cross street → east along the alley → door
    corner = net.xy[net.node(fd["x_c1"], fd["y_a"])]
    alley_end = net.xy[net.node(fd["x_c1"], fd["y_alley"])]
    g = gate["geometry"]
    walk = _route_m([g, _foot_on_road(world, g), corner, alley_end, _foot_on_road(world, door), door])
    world.design["far_door"] = {
        "school_id": school["id"],
        "gate_id": gate["id"],
        "venue_kind": "net_cafes",
        "venue_id": cafe["id"],
        "door_id": None,  # set by place_doors
        "boundary_m": FAR_DOOR_BOUNDARY_M,
        "straight_m": round(g.distance(door), 3),
        "walk_m": round(walk, 3),
    }


def _detour_case(world: World, school: dict, gate: dict) -> None:
    """A café straight across the river from a riverside school's gate; the walk goes round by a bridge."""
    g = world.ground
    ring = school["geometry"].exterior
    gp = gate["geometry"]
    foot = ring.interpolate(ring.project(Point(gp.x, gp.y + DETOUR_VENUE_DY_M)))
    edge = min(itertools.pairwise(ring.coords), key=lambda ab: LineString(ab).distance(foot))
    n = outward_normal(np.asarray(edge[0]), np.asarray(edge[1]))
    p = snap_point(foot.x + DETOUR_BOUNDARY_M * n[0], foot.y + DETOUR_BOUNDARY_M * n[1])
    g.parcels_of(g.face_at(p), world.rng, "whole")
    parcel = world.free_parcel(p)
    cafe = add_cafe(world, p, parcel)
    world.doors.append((cafe, world.door_for(p, parcel), 1, "正门"))
    # gate → 滨河西路 → south to 示范大桥 (y = 0) → across → north on 滨河东路 → café
    p1, p2 = _foot_on_road(world, gp), _foot_on_road(world, p)
    west = _bank_nodes(world, WEST_BANK_X, 0.0, p1.y)[::-1]
    east = _bank_nodes(world, EAST_BANK_X, 0.0, p2.y)
    walk = _route_m([gp, p1, *west, *east, p2, p])
    # the same over the railway bridge (y = 900), which is not walkable
    rail_w = _bank_nodes(world, WEST_BANK_X, p1.y, 900.5)
    rail_e = _bank_nodes(world, EAST_BANK_X, p2.y, 900.5)[::-1]
    via_rail = _route_m([gp, p1, *rail_w, *rail_e, p2, p])
    world.design["detour"] = {
        "school_id": school["id"],
        "gate_id": gate["id"],
        "venue_kind": "net_cafes",
        "venue_id": cafe["id"],
        "boundary_m": DETOUR_BOUNDARY_M,
        "straight_m": round(gp.distance(p), 3),
        "walk_m": round(walk, 3),
        "walk_if_railway_bridge_were_walkable_m": round(via_rail, 3),
    }


def _urban(world: World, schools: list[dict], geom_type: str) -> list[dict]:
    """Urban schools of ``geom_type``; special-education schools are left out (protected status varies)."""
    g = world.ground
    schools = [s for s in schools if s["properties"]["level"] != "special"]
    return [
        s
        for s in schools
        if s["geometry"].geom_type == geom_type and g.face_at(s["geometry"].centroid).kind == "urban"
    ]


def _near_cases(world: World, used: set[str]) -> None:
    """Cafés at designed distances from one school each (every other school stays clear)."""
    schools = world.schools(kindergartens=False)
    kgs = [s for s in world.layers["schools"] if s["properties"]["level"] == "kindergarten"]
    statuses = ["licensed"] * 4 + ["suspended", "unlicensed", "licensed"]
    for key, distances, pool in (
        ("near_school", NEAR_SCHOOL_M, _urban(world, schools, "Polygon")),
        ("near_limit", NEAR_LIMIT_M, _urban(world, schools, "Polygon")),
        ("near_kindergarten", NEAR_KINDERGARTEN_M, _urban(world, kgs, "Polygon")),
        ("near_point_school", (POINT_SCHOOL_M,), _urban(world, schools, "Point")),
    ):
        world.design[key] = []
        for k, d in enumerate(distances):
            p, parcel, school = _designed_near(world, pool, d, used)
            cafe = add_cafe(world, p, parcel, status=statuses[k] if key == "near_school" else "licensed")
            world.doors.append((cafe, world.door_for(p, parcel), 1, "正门"))
            world.design[key].append(
                {
                    "venue_id": cafe["id"],
                    "school_id": school["id"],
                    "level": school["properties"]["level"],
                    "school_geometry": school["geometry"].geom_type,
                    "distance_m": d,
                }
            )


def place_designed_game_venues(world: World) -> None:
    """Game venues near schools and pairs at designed spacing."""
    rng, design = world.rng, world.design
    pool = _urban(world, world.schools(kindergartens=False), "Polygon")
    used = {e["school_id"] for key in ("near_limit", "near_school") for e in design[key]}
    design["game_near_school"] = []
    for d in GAME_NEAR_SCHOOL_M:
        p, parcel, school = _designed_near(world, pool, d, used)
        v = add_venue(world, "game_venues", p, parcel)
        design["game_near_school"].append({"venue_id": v["id"], "school_id": school["id"], "distance_m": d})
    design["game_pairs"] = []
    for d in GAME_PAIRS_M:
        for _ in range(2000):
            a, a_parcel = _free_spot(world, "game_venues", GAME_SPACING_M + d)
            ang = rng.permutation(36) * math.pi / 18
            for t in ang:
                b = snap_point(a.x + d * math.cos(t), a.y + d * math.sin(t))
                if not world.clear_of_schools(b) or not world.spacing_ok(b, GAME_SPACING_M, ("game_venues",)):
                    continue
                if not world.spacing_ok(b, 20.0) or b.distance(a) < 20:
                    continue
                b_parcel = world.free_parcel(b)
                if b_parcel is not None:
                    va = add_venue(world, "game_venues", a, a_parcel)
                    vb = add_venue(world, "game_venues", b, b_parcel)
                    design["game_pairs"].append({"a": va["id"], "b": vb["id"], "distance_m": d})
                    break
            else:
                continue
            break
        else:
            raise RuntimeError(f"no game-venue pair at {d} m")


def _free_spot(world: World, kind: str, spacing_m: float, *, kinds=("urban",), uses=(None, "commercial")):
    """A frontage spot clear of schools, ``spacing_m`` from venues of ``kind`` and 20 m from any venue."""
    for parcel in world.random_parcels(kinds=kinds, uses=uses) * 3:
        p, _ = world.frontage_spot(parcel)
        if (
            world.clear_of_schools(p)
            and world.spacing_ok(p, spacing_m, (kind,))
            and world.spacing_ok(p, 20.0)
            and world.free_parcel(p, uses=uses) is parcel
        ):
            return p, parcel
    raise RuntimeError(f"no free spot for {kind} in {kinds} parcels used as {uses}")


def place_other_venues(
    world: World, n_cafes: int = 110, n_game: int = 30, n_ent: int = 25, n_pub: int = 25
) -> None:
    """The rest: ordinary (compliant) cafés, game venues, entertainment venues, publication sellers."""
    rng = world.rng
    rest = n_cafes - len(world.layers["net_cafes"])
    statuses = ["unlicensed"] * 5 + ["suspended"] * 2 + ["revoked"] * 3 + ["licensed"] * (rest - 10)
    for k, status in enumerate(statuses):
        kinds = ("village",) if status == "unlicensed" and k < 3 else ("urban", "village")
        p, parcel = _free_spot(world, "net_cafes", 40.0, kinds=kinds, uses=("commercial",))
        cafe = add_cafe(world, p, parcel, status=status)
        if k % 8 == 7:
            world.doors.append((cafe, world.door_for(p, parcel), int(rng.choice([1, 2, -1])), "正门"))
    while len(world.layers["game_venues"]) < n_game:
        p, parcel = _free_spot(world, "game_venues", GAME_SPACING_M, uses=("commercial",))
        add_venue(world, "game_venues", p, parcel, status="suspended" if rng.random() < 0.1 else "licensed")
    for kind, n in (("entertainment_venues", n_ent), ("publication_sellers", n_pub)):
        while len(world.layers[kind]) < n:
            parcel = world.random_parcels(kinds=("urban", "village"), uses=("commercial",))[0]
            p, _ = world.frontage_spot(parcel)
            if world.spacing_ok(p, 25.0) and world.free_parcel(p, uses=("commercial",)) is parcel:
                status = str(rng.choice(["licensed", "suspended", "revoked"], p=[0.88, 0.08, 0.04]))
                add_venue(world, kind, p, parcel, status=status)
    log.info("venues: %s", {k: len(world.layers[k]) for k in KIND_CODE})


def place_doors(world: World) -> None:
    """Doors of the cafés listed in ``world.doors``; some get a second door."""
    rng = world.rng
    for cafe, door, floor, name in world.doors:
        door_f = world.add(
            "venue_doors", door, venue_id=cafe["id"], venue_kind="net_cafes", floor=floor, name=name
        )
        if world.design["far_door"]["venue_id"] == cafe["id"]:
            world.design["far_door"]["door_id"] = door_f["id"]
            continue
        if rng.random() < 0.35:
            parcel = world.ground.parcel_at(cafe["geometry"], rng)
            for a, b in parcel.frontage:
                q = snap(Point(a + float(rng.uniform(0.2, 0.8)) * (b - a)))
                if 12 < q.distance(door) < 60 and q.distance(cafe["geometry"]) < 60:
                    world.add(
                        "venue_doors", q, venue_id=cafe["id"], venue_kind="net_cafes", floor=1, name="侧门"
                    )
                    break
