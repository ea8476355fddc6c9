"""Heritage zones, cultural facilities, residential compounds and buildings, observed POIs."""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections import Counter

import numpy as np
from demo_base import ccw, chinese_number, outward_normal, regular_polygon, snap, snap_point
from demo_map import SUBDISTRICTS
from demo_names import COMMUNITY_WORDS, COMPOUND_WORDS, TOWER_NAMES, compound_name, poi_variant
from demo_venues import GAME_SPACING_M, add_cafe, add_venue
from demo_world import World
from shapely.geometry import Polygon

log = logging.getLogger(__name__)

DORMS = [
    "供电局宿舍楼",
    "粮食局宿舍楼",
    "纺织厂宿舍楼",
    "机械厂宿舍楼",
    "邮电局宿舍楼",
    "教师公寓楼",
    "自来水公司宿舍楼",
    "税务局宿舍楼",
    "棉麻公司宿舍楼",
    "运输公司宿舍楼",
    "医院职工宿舍楼",
    "农机厂宿舍楼",
]
#: facility types that must be free for minors (DOMAIN.md §3: public cultural facilities, patriotic bases)
MUST_BE_FREE = (
    "library",
    "cultural_centre",
    "cultural_station",
    "service_point",
    "museum",
    "patriotic_base",
    "city_study_room",
)
UNCOVERED_SUBDISTRICT = "白沙乡"
RESIDENT_SHARE = 0.975  # of a sub-district's population living in the mapped residential features


def place_heritage(world: World) -> None:
    """Two heritage zones around 文昌阁 (urban) and one around 白沙古渡遗址 (rural), with venues in/near."""
    design = world.design
    parcel = next(
        p
        for p in world.random_parcels(uses=(None,))
        if world.school_distances(p.poly.centroid).min() > 420 and world.spacing_ok(p.poly.centroid, 250.0)
    )
    parcel.use = "public"
    site = snap(parcel.poly.centroid)
    add_facility(world, site, "heritage_site", "文昌阁", free=True, capacity=200, area_m2=640.0, level="省级")
    z1 = world.add(
        "zones",
        regular_polygon(site.x, site.y, 60.0, 8, math.pi / 8),
        name="文昌阁保护范围",
        zone_type="heritage_protection",
    )
    z2 = world.add(
        "zones",
        regular_polygon(site.x, site.y, 170.0, 12),
        name="文昌阁建设控制地带",
        zone_type="construction_control",
    )
    inner, outer = z1["geometry"], z2["geometry"]
    design["zone_venues"] = []
    for kind, want_inside in (("game_venues", True), ("entertainment_venues", False)):
        for parcel in world.random_parcels():
            p, _ = world.frontage_spot(parcel)
            inside = outer.buffer(-5.0).contains(p) and inner.distance(p) > 5.0
            near = not outer.buffer(10.0).contains(p) and outer.distance(p) < 60.0
            if not (inside if want_inside else near) or not world.spacing_ok(p, 20.0):
                continue
            if kind == "game_venues" and not (
                world.clear_of_schools(p) and world.spacing_ok(p, GAME_SPACING_M, ("game_venues",))
            ):
                continue
            if world.free_parcel(p) is parcel:
                v = add_venue(world, kind, p, parcel)
                design["zone_venues"].append(
                    {"venue_kind": kind, "venue_id": v["id"], "zone_id": z2["id"], "inside": want_inside}
                )
                break
        else:
            raise RuntimeError(
                f"no {kind} spot {'inside' if want_inside else 'near'} {z2['properties']['name']}"
            )
    ford = snap_point(1420.0, -2150.0)
    add_facility(
        world, ford, "heritage_site", "白沙古渡遗址", free=True, capacity=None, area_m2=None, level="区级"
    )
    world.add(
        "zones",
        regular_polygon(ford.x, ford.y, 80.0, 10),
        name="白沙古渡遗址保护范围",
        zone_type="heritage_protection",
    )


def place_landmarks(world: World) -> None:
    """The district library, cultural centre and museum, drawn as their plots."""
    for name, ftype, free, cap, area in (
        ("示范区图书馆", "library", True, 900, 14500.0),
        ("示范区文化馆", "cultural_centre", True, 600, 9800.0),
        ("示范区博物馆", "museum", True, 1200, 12600.0),
    ):
        parcel = next(
            p
            for p in world.random_parcels(uses=(None,))
            if p.poly.area > 8000 and world.spacing_ok(p.poly.centroid, 80.0)
        )
        parcel.use = "public"
        add_facility(world, parcel.poly, ftype, name, free=free, capacity=cap, area_m2=area, level="区级")


def add_facility(
    world: World, geom, ftype: str, name: str, *, free: bool, capacity, area_m2, level: str
) -> dict:
    p = geom if geom.geom_type == "Point" else geom.centroid
    world.spots.setdefault("cultural_facilities", []).append(p)
    return world.add(
        "cultural_facilities",
        geom,
        name=name,
        type=ftype,
        free_for_minors=free,
        capacity=capacity,
        floor_area_m2=area_m2,
        facility_level=level,
        address=world.address(p),
        subdistrict=world.subdistrict_name(p),
    )


def place_residential(world: World, n_buildings: int = 42) -> None:
    """Cut every block, give each parcel a use, draw compounds and stand-alone residential buildings."""
    g, rng = world.ground, world.rng
    for parcel in world.random_parcels(kinds=("urban", "village"), uses=(None,)):
        r = rng.random()
        if parcel.face.kind == "village":
            parcel.use = "residential" if r < 0.7 else "commercial"
        else:
            parcel.use = "residential" if r < 0.36 else "commercial" if r < 0.8 else "other"
    faces = sorted(g.faces, key=lambda f: (round(f.poly.centroid.y, 3), round(f.poly.centroid.x, 3)))
    yards: Counter[str] = Counter()
    for face in faces:
        for parcel in face.parcels:
            if parcel.use == "residential":
                if face.kind == "urban":
                    name = compound_name(rng, world.names)
                else:
                    yards[face.village] += 1
                    name = f"{face.village}{chinese_number(yards[face.village])}组院落"
                world.add(
                    "residential",
                    parcel.poly,
                    name=name,
                    population=0,
                    form="compound",
                    mixed_use=False,
                    subdistrict=world.subdistrict_name(parcel.poly.centroid),
                )
    made = 0
    for parcel in world.random_parcels(uses=("commercial",)):
        if made >= n_buildings:
            break
        a, b = max(parcel.frontage, key=lambda ab: np.hypot(*(ab[1] - ab[0])))
        length = float(np.hypot(*(b - a)))
        size = min(float(rng.uniform(30, 60)), 0.7 * length)
        t0 = float(rng.uniform(0.1, max(0.11, 0.9 - size / length)))
        u, inward = (b - a) / length, -outward_normal(a, b)
        depth = float(rng.uniform(12, 18))
        p0 = a + u * t0 * length + inward * 3.0
        poly = ccw(snap(Polygon([p0, p0 + u * size, p0 + u * size + inward * depth, p0 + inward * depth])))
        if not parcel.poly.contains(poly) or any(
            poly.distance(q) < 5 for pts in world.spots.values() for q in pts
        ):
            continue
        mixed = made % 3 == 0
        if mixed:
            name = COMPOUND_WORDS[made % len(COMPOUND_WORDS)] + TOWER_NAMES[made % len(TOWER_NAMES)]
        else:
            name = (
                DORMS[made % len(DORMS)]
                if made % 3 == 1
                else f"{g.nearest_road_name(poly.centroid)}{made + 1}号楼"
            )
        while name in world.names:
            name = f"{g.nearest_road_name(poly.centroid)}{name}"
        world.names.add(name)
        world.add(
            "residential",
            poly,
            name=name,
            population=int(rng.integers(60, 420)),
            form="building",
            mixed_use=mixed,
            subdistrict=world.subdistrict_name(poly.centroid),
        )
        made += 1


def place_cafes_in_residential(world: World) -> None:
    """Three cafés inside residential buildings (one of them mixed-use) and two inside compounds."""
    design, rng = world.design, world.rng
    design["in_residential"] = []
    homes = world.layers["residential"]
    buildings = [r for r in homes if r["properties"]["form"] == "building"]
    compounds = [r for r in homes if r["properties"]["form"] == "compound"]
    plan = [(buildings, True), (buildings, False), (buildings, False), (compounds, None), (compounds, None)]
    for pool, mixed in plan:
        for k in rng.permutation(len(pool)):
            home = pool[int(k)]
            if mixed is not None and home["properties"]["mixed_use"] != mixed:
                continue
            if home["properties"]["form"] == "building":
                p = snap(home["geometry"].centroid)
            else:
                parcel = world.ground.parcel_at(home["geometry"].representative_point(), rng)
                if parcel is None or parcel.poly != home["geometry"]:
                    continue
                p, _ = world.frontage_spot(parcel)
            if not home["geometry"].buffer(-2.0).contains(p) or not world.clear_of_schools(p):
                continue
            if not world.spacing_ok(p, 60.0, ("net_cafes",)) or world.ground.road_distance(p) > 40:
                continue
            if any(h["geometry"].contains(p) for h in homes if h is not home):
                continue
            cafe = add_cafe(
                world, p, None, status="licensed" if len(design["in_residential"]) != 2 else "unlicensed"
            )
            design["in_residential"].append(
                {
                    "venue_id": cafe["id"],
                    "residential_id": home["id"],
                    "form": home["properties"]["form"],
                    "mixed_use": home["properties"]["mixed_use"],
                }
            )
            break
        else:
            raise RuntimeError("no residential building or compound left for a café")


OTHER_FACILITIES = [  # type, name, free for minors, sub-district index
    ("library", "示范区图书馆星海分馆", True, 4),
    ("library", "示范区图书馆和平分馆", True, 1),
    ("theatre", "示范大剧院", False, 2),
    ("cinema", "星海国际影城", False, 4),
    ("cinema", "和平电影院", False, 1),
    ("cinema", "东湖影城", False, 3),
    ("museum", "示范区美术馆", False, 2),  # must be free: marked false on purpose
    ("heritage_site", "城隍庙", True, 3),
    ("patriotic_base", "示范区革命纪念馆", True, 0),
    ("patriotic_base", "示范区烈士陵园", False, 5),  # must be free: marked false on purpose
    ("other", "示范区青少年活动中心", True, 2),
    ("other", "示范区科技馆", True, 3),
    *[("city_study_room", f"城市书房·{SUBDISTRICTS[k][0][:2]}", k != 2, k) for k in range(6)],  # k=2: false
]
CAPACITY = {
    "library": (200, 400),
    "cultural_station": (100, 300),
    "service_point": (30, 120),
    "theatre": (800, 1400),
    "cinema": (300, 1200),
    "museum": (300, 800),
    "heritage_site": (100, 300),
    "patriotic_base": (200, 600),
    "city_study_room": (30, 80),
    "other": (200, 600),
}
LEVEL = {"service_point": "社区级", "cultural_station": "街道级"}


def place_facilities(world: World) -> None:
    """Every facility type; a station and service points in every sub-district except one."""
    rng, design = world.rng, world.design
    plan: list[tuple[str, str, bool, int, str | None]] = []  # type, name, free, sub-district, village
    communities = iter(COMMUNITY_WORDS)
    for k, (sd, _code, urban, _pop, _seed) in enumerate(SUBDISTRICTS):
        if sd == UNCOVERED_SUBDISTRICT:
            continue
        plan.append(("cultural_station", f"{sd}综合文化站", True, k, None))
        if urban:
            plan += [
                ("service_point", f"{next(communities)}社区综合文化服务中心", True, k, None)
                for _ in range(int(rng.integers(4, 6)))
            ]
        else:
            villages = sorted({f.village for f in world.ground.faces if f.village and f.subdistrict == k})
            plan += [("service_point", f"{v}文化礼堂", True, k, v) for v in villages]
    plan += [(*item, None) for item in OTHER_FACILITIES]
    for ftype, name, free, k, village in plan:
        kinds = ("urban",) if SUBDISTRICTS[k][2] else ("village",)
        uses = (
            ("residential", "commercial")
            if ftype in ("service_point", "city_study_room")
            else ("other", "commercial")
        )
        for parcel in world.random_parcels(kinds=kinds, uses=uses):
            if parcel.face.subdistrict != k or village not in (None, parcel.face.village):
                continue
            p, _ = world.frontage_spot(parcel)
            if (
                world.spacing_ok(p, 30.0)
                and not world.in_building(p, margin_m=3.0)
                and parcel.poly.contains(p)
            ):
                lo, hi = CAPACITY[ftype]
                cap = int(rng.integers(lo, hi) // 10 * 10)
                area = float(round(cap * float(rng.uniform(2.5, 6.0)), 1))
                level = LEVEL.get(ftype, "区级")
                add_facility(world, p, ftype, name, free=free, capacity=cap, area_m2=area, level=level)
                break
        else:
            raise RuntimeError(f"no place for {name}")
    facilities = world.layers["cultural_facilities"]
    design["facilities"] = {
        "must_be_free_types": list(MUST_BE_FREE),
        "must_be_free_but_marked_false": [
            f["id"]
            for f in facilities
            if f["properties"]["type"] in MUST_BE_FREE and not f["properties"]["free_for_minors"]
        ],
        "subdistrict_without_station_or_service_point": UNCOVERED_SUBDISTRICT,
    }


def allocate_population(world: World) -> None:
    """Compound populations summing to RESIDENT_SHARE of each sub-district's population."""
    rng = world.rng
    homes = world.layers["residential"]
    for name, _code, _urban, population, _seed in SUBDISTRICTS:
        mine = [h for h in homes if h["properties"]["subdistrict"] == name]
        target = round(population * RESIDENT_SHARE) - sum(
            h["properties"]["population"] for h in mine if h["properties"]["form"] == "building"
        )
        compounds = [h for h in mine if h["properties"]["form"] == "compound"]
        weights = np.array([h["geometry"].area * rng.lognormal(0.0, 0.35) for h in compounds])
        raw = target * weights / weights.sum()
        counts = np.floor(raw).astype(int)
        for i in np.argsort(-(raw - counts), kind="stable")[: target - counts.sum()]:
            counts[i] += 1
        for h, c in zip(compounds, counts, strict=True):
            h["properties"]["population"] = int(c)


def place_pois(world: World, n: int = 150) -> None:
    """A map crawl: most points near known cafés and game venues, some leads with no record."""
    rng, design = world.rng, world.design
    start = dt.date(2024, 3, 1)
    cafes = world.layers["net_cafes"]
    licensed = [c for c in cafes if c["properties"]["status"] == "licensed"]
    others = [c for c in cafes if c["properties"]["status"] in ("unlicensed", "revoked")]
    games = world.layers["game_venues"]
    plan = [(c, "网吧") for c in licensed[:: max(1, len(licensed) // 90)][:90]]
    plan += [(c, "网吧") for c in licensed[::7][:10]] + [(c, "网吧") for c in others]
    plan += [(v, "游艺厅") for v in games[:20]]
    design["pois"] = {"matched": [], "leads": []}
    for venue, category in plan[: n - 15]:
        r, t = float(rng.uniform(10.0, 30.0)), float(rng.uniform(0, 2 * math.pi))
        v = venue["geometry"]
        p = snap_point(v.x + r * math.cos(t), v.y + r * math.sin(t))
        place = venue["properties"]["subdistrict"][:2]
        source = str(rng.choice(["地图抓取", "地图抓取", "天地图POI", "网格员上报"]))
        poi = world.add(
            "pois",
            p,
            name=poi_variant(venue["properties"]["name"], rng, place),
            category=category,
            source=source,
            observed_at=(start + dt.timedelta(days=int(rng.integers(0, 270)))).isoformat(),
            address=world.address(p),
        )
        design["pois"]["matched"].append(
            {"poi_id": poi["id"], "venue_id": venue["id"], "offset_m": round(r, 3)}
        )
    venues = [v["geometry"] for k in ("net_cafes", "game_venues") for v in world.layers[k]]
    while len(world.layers["pois"]) < n:
        parcel = world.random_parcels(
            kinds=("urban", "village"), uses=("commercial", "residential", "other")
        )[0]
        p, _ = world.frontage_spot(parcel)
        if min(p.distance(v) for v in venues) < 80 or world.in_building(p, margin_m=1.0):
            continue
        name = ["电脑培训室", "网络会所", "游戏工作室", "上网室", "无名网吧"][
            len(design["pois"]["leads"]) % 5
        ]
        poi = world.add(
            "pois",
            p,
            name=f"{world.ground.nearest_road_name(p)}{name}",
            category=str(rng.choice(["网吧", "培训机构", "休闲娱乐"])),
            source=str(rng.choice(["群众举报", "网格员上报"])),
            observed_at=(start + dt.timedelta(days=int(rng.integers(0, 270)))).isoformat(),
            address=world.address(p),
        )
        design["pois"]["leads"].append(poi["id"])
        venues.append(p)
