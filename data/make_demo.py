"""Generate the fictional demo district 示范区 (Demo District) into ``data/demo/``.

Usage::

    .venv/bin/python data/make_demo.py [--out DIR] [--seed N]

Deterministic: the same seed gives byte-identical files.  One GeoJSON per layer kind
(WGS84, coordinates rounded to 7 decimals, properties named as in ``layers/schema.py``,
``id`` on every feature) and ``design.json``, the truth the tests check the files against:
distances and routes recorded as they were constructed, not measured afterwards.

The pieces: :mod:`demo_map` (outline, sub-districts, roads, blocks, parcels),
:mod:`demo_schools`, :mod:`demo_venues`, :mod:`demo_civic` (zones, facilities, residential,
POIs); :mod:`demo_base` holds the metric frame, snapping and the road graph.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import shapely

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from demo_base import CENTRE_LAT, CENTRE_LON, FRAME, to_lonlat  # noqa: E402
from demo_civic import (  # noqa: E402
    allocate_population,
    place_cafes_in_residential,
    place_facilities,
    place_heritage,
    place_landmarks,
    place_pois,
    place_residential,
)
from demo_map import SUBDISTRICTS, build_ground  # noqa: E402
from demo_schools import place_schools  # noqa: E402
from demo_venues import (  # noqa: E402
    place_designed_cafes,
    place_designed_game_venues,
    place_doors,
    place_other_venues,
)
from demo_world import World  # noqa: E402

from layers.schema import KINDS  # noqa: E402

log = logging.getLogger("make_demo")

SEED = 20240601
OUT_DIR = Path(__file__).resolve().parent / "demo"


def build(seed: int = SEED) -> World:
    """Every layer of the district, in metric coordinates, with its design record."""
    rng = np.random.default_rng(seed)
    ground = build_ground(rng)
    world = World(ground, rng)
    for k, (name, code, urban, population, _seed) in enumerate(SUBDISTRICTS):
        world.add(
            "subdistricts", ground.subdistricts[k], name=name, population=population, code=code, urban=urban
        )
    for line, edge in ground.net.lines():
        world.add("roads", line, name=edge.name, road_class=edge.road_class, walkable=edge.walkable)
    place_schools(world)
    place_designed_cafes(world)
    place_designed_game_venues(world)
    place_heritage(world)
    place_landmarks(world)
    place_residential(world)
    place_cafes_in_residential(world)
    place_other_venues(world)
    place_doors(world)
    place_facilities(world)
    allocate_population(world)
    place_pois(world)
    _finish_design(world, seed)
    return world


def _finish_design(world: World, seed: int) -> None:
    design = {k: v for k, v in world.design.items() if not k.startswith("_")}
    homes = world.layers["residential"]
    lonlat = to_lonlat(np.asarray(world.ground.outline.exterior.coords))
    world.design = {
        "about": "Designed truth of the fictional demo district 示范区 (Demo District); see README.md. "
        "Distances in metres, recorded as constructed in the local transverse Mercator (frame) "
        "from coordinates already rounded to 7 decimals; the committed files differ from them only "
        "by that rounding (under 0.01 m).",
        "seed": seed,
        "frame": FRAME.to_wkt(),
        "centre": [CENTRE_LON, CENTRE_LAT],
        "district": {
            "name": "示范区",
            "name_en": "Demo District",
            "code": "429901",
            "population": sum(s[3] for s in SUBDISTRICTS),
            "bbox": [
                float(lonlat[:, 0].min()),
                float(lonlat[:, 1].min()),
                float(lonlat[:, 0].max()),
                float(lonlat[:, 1].max()),
            ],
        },
        "counts": {k: len(world.layers[k]) for k in KINDS},
        "walking": "distance_m = snap leg (point to its foot on the nearest walkable segment) + network "
        "length between the feet + snap leg; roads with walkable=false are not walked",
        **design,
        "residential_population": {
            s[0]: sum(h["properties"]["population"] for h in homes if h["properties"]["subdistrict"] == s[0])
            for s in SUBDISTRICTS
        },
    }


def _geometry(geom) -> dict:
    """GeoJSON of a geometry already in rounded WGS84 lon/lat."""
    kind = geom.geom_type
    if kind == "Point":
        return {"type": kind, "coordinates": _coords(geom.coords)[0]}
    if kind == "LineString":
        return {"type": kind, "coordinates": _coords(geom.coords)}
    if kind == "Polygon":
        return {"type": kind, "coordinates": [_coords(r.coords) for r in (geom.exterior, *geom.interiors)]}
    raise TypeError(f"unexpected geometry {kind}")


def _coords(coords) -> list[list[float]]:
    return [[float(x), float(y)] for x, y in coords]


def _json(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def write(world: World, out_dir: Path) -> None:
    """One ``<kind>.geojson`` per layer kind, and ``design.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for kind in KINDS:
        features = world.layers[kind]
        lonlat = shapely.transform(np.array([f["geometry"] for f in features], dtype=object), to_lonlat)
        lines = [
            _json(
                {
                    "type": "Feature",
                    "properties": {"id": f["id"], **f["properties"]},
                    "geometry": _geometry(g),
                }
            )
            for f, g in zip(features, lonlat, strict=True)
        ]
        head = f'{{"type":"FeatureCollection","name":"{kind}","features":[\n'
        (out_dir / f"{kind}.geojson").write_text(head + ",\n".join(lines) + "\n]}\n", encoding="utf-8")
    text = json.dumps(world.design, ensure_ascii=False, indent=1)
    (out_dir / "design.json").write_text(text + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help=f"output folder (default {OUT_DIR})")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    t0 = time.perf_counter()
    world = build(args.seed)
    write(world, args.out)
    log.info("wrote %s in %.1f s: %s", args.out, time.perf_counter() - t0, world.design["counts"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
