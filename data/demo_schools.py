"""Schools, kindergartens and their gates."""

from __future__ import annotations

import logging
import math

import numpy as np
import shapely
from demo_base import outward_normal, snap
from demo_map import DETOUR_GATE_Y, URBAN_SETBACK_M, VILLAGES, WEST_BANK_X, Face, Parcel
from demo_names import SCHOOL_NAMES, STUDENTS
from demo_world import World
from shapely.geometry import Point

log = logging.getLogger(__name__)

MODE = {
    "senior": "whole",
    "complete": "whole",
    "vocational": "whole",
    "primary": "halves",
    "junior": "halves",
    "nine_year": "halves",
    "special": "quarters",
    "kindergarten": "quarters",
}
URBAN_PLAN = (
    ["primary"] * 19
    + ["junior"] * 6
    + ["senior"] * 4
    + ["nine_year"] * 3
    + ["complete"] * 2
    + ["vocational"] * 3
    + ["special"]
    + ["kindergarten"] * 9
)
#: (name, level, village, cell column, cell row, given as a point)
RURAL = [
    ("柳林镇九年一贯制学校", "nine_year", "桃园村", 1, 1, False),
    ("柳林镇中心幼儿园", "kindergarten", "桃园村", 2, 2, False),
    ("白沙乡中心小学", "primary", "石桥村", 1, 1, False),
    ("白沙乡中心幼儿园", "kindergarten", "石桥村", 0, 2, False),
    ("白沙村小学", "primary", "白沙村", 2, 2, True),
]
GATE_COUNT = {"whole": (2, 3), "halves": (1, 3), "quarters": (1, 2)}


def place_schools(world: World) -> None:
    """All schools: the two designed ones, the urban plan, the rural ones; then gates."""
    g, rng = world.ground, world.rng
    fd = g.far_door
    # designed: the riverside school of the detour case, the school facing the far-door café
    detour = _put(world, g.detour_face, "complete", "示范区滨河中学", mode="whole")
    far = _put(
        world, g.face_at(Point(fd["x_c1"] + 110, fd["y_a"] + 100)), "primary", "示范区东湖小学", mode="whole"
    )
    world.design["_detour_school"] = detour["id"]
    world.design["_far_door_school"] = far["id"]
    # keep the designed cafés' surroundings free of other schools
    reserved = [Point(WEST_BANK_X + 112, DETOUR_GATE_Y), Point(fd["x_c1"] + 150, fd["y_a"] - 22)]

    names = {k: list(v) for k, v in SCHOOL_NAMES.items()}
    plan = [URBAN_PLAN[int(i)] for i in rng.permutation(len(URBAN_PLAN))]
    plan += ["junior*", "kindergarten*"]  # given as points only
    faces = [f for f in g.faces if f.kind == "urban"]
    for item in plan:
        level = item.rstrip("*")
        face = _find_face(world, faces, level, reserved)
        _put(world, face, level, names[level].pop(0), mode=MODE[level], as_point=item.endswith("*"))
    for name, level, village, ci, cj, as_point in RURAL:
        xs, ys = next((xs, ys) for n, xs, ys, _ in VILLAGES if n == village)
        face = g.face_at(Point(xs[ci] + 50, ys[cj] + 50))
        _put(world, face, level, name, mode="whole", as_point=as_point)

    for school in world.layers["schools"]:
        if school["geometry"].geom_type != "Polygon":
            continue
        parcel = world.school_parcels[school["id"]]
        fixed = None
        if school["id"] == detour["id"]:
            fixed = Point(WEST_BANK_X - URBAN_SETBACK_M, DETOUR_GATE_Y)
        elif school["id"] == far["id"]:
            fixed = Point(fd["x_c1"] + 150, fd["y_a"] + URBAN_SETBACK_M)
        lo, hi = GATE_COUNT[
            "quarters" if parcel.face.kind == "village" else MODE[school["properties"]["level"]]
        ]
        # the designed schools have their one gate only, so their routes are the minimum over gates
        _gates(world, school, parcel, 1 if fixed else int(rng.integers(lo, hi + 1)), fixed)
    log.info("schools: %d, gates: %d", len(world.layers["schools"]), len(world.layers["school_gates"]))


def _find_face(world: World, faces: list[Face], level: str, reserved: list[Point]) -> Face:
    rng = world.rng
    mode = MODE[level]
    placed = [(s["geometry"].centroid, s["properties"]["level"] == "kindergarten") for s in world.schools()]
    for k in rng.permutation(len(faces)):
        face = faces[int(k)]
        if face.parcels is not None or face.forced_mode not in (None, mode):
            continue
        if not 30000 <= face.poly.area <= 75000 or any(face.poly.distance(p) < 260 for p in reserved):
            continue
        c = face.poly.centroid
        ok = True
        for q, kg in placed:
            need = 280 if level == "kindergarten" or kg else 480
            ok = ok and c.distance(q) >= need
        if ok:
            return face
    raise RuntimeError(f"no block left for a {level} school")


def _put(world: World, face: Face, level: str, name: str, *, mode: str, as_point: bool = False) -> dict:
    rng = world.rng
    parcels = [p for p in world.ground.parcels_of(face, rng, mode) if p.use is None]
    parcel = parcels[int(rng.integers(len(parcels)))]
    parcel.use = "school"
    geom = snap(parcel.poly.centroid) if as_point else parcel.poly
    lo, hi = STUDENTS[level]
    school = world.add(
        "schools",
        geom,
        name=name,
        level=level,
        address=world.address(parcel.poly.centroid),
        subdistrict=world.subdistrict_name(parcel.poly.centroid),
        students=int(rng.integers(lo, hi) // 10 * 10),
    )
    world.school_parcels[school["id"]] = parcel
    return school


def _direction(normal: np.ndarray) -> str:
    angle = math.degrees(math.atan2(normal[1], normal[0])) % 360
    return "东" if angle < 45 or angle >= 315 else "北" if angle < 135 else "西" if angle < 225 else "南"


def _gates(world: World, school: dict, parcel: Parcel, n: int, fixed: Point | None) -> None:
    rng = world.rng
    campus = school["geometry"]
    edges = sorted(parcel.frontage, key=lambda ab: -np.hypot(*(ab[1] - ab[0])))
    spots: list[tuple[Point, np.ndarray]] = []
    if fixed is not None:
        ring = campus.exterior
        foot = ring.interpolate(ring.project(fixed))
        edge = min(edges, key=lambda ab: shapely.LineString(ab).distance(foot))
        spots.append((snap(foot), outward_normal(*edge)))
    order = [edges[0]] + [edges[int(i) + 1] for i in rng.permutation(len(edges) - 1)]
    for a, b in order * 2:
        if len(spots) >= n:
            break
        p = snap(Point(a + float(rng.uniform(0.3, 0.7)) * (b - a)))
        if all(p.distance(q) >= 40 for q, _ in spots):
            spots.append((p, outward_normal(a, b)))
    main_normal = spots[0][1]
    names: set[str] = set()
    for k, (p, normal) in enumerate(spots):
        name = f"{_direction(normal)}门"
        name = f"{name[0]}侧门" if name in names else name
        names.add(name)
        if k == 0:
            gate_type = "main"
        elif float(np.dot(normal, main_normal)) < -0.7:
            gate_type = "back"
        else:
            gate_type = "fire" if rng.random() < 0.15 else "side"
        world.add("school_gates", p, school_id=school["id"], name=name, gate_type=gate_type)
