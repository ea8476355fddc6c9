"""The generator's state: the ground, the features made so far, and placement helpers."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely
from demo_base import outward_normal, snap, snap_point
from demo_map import SUBDISTRICTS, Ground, Parcel
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from layers.schema import SCHEMAS

#: every café/venue kept this far from any school unless placed near one on purpose
CLEAR_OF_SCHOOLS_M = 240.0


@dataclass
class World:
    ground: Ground
    rng: np.random.Generator
    layers: dict[str, list[dict]] = field(default_factory=lambda: {k: [] for k in SCHEMAS})
    design: dict = field(default_factory=dict)
    names: set[str] = field(default_factory=set)
    #: venue points (metric) already placed, by kind
    spots: dict[str, list[Point]] = field(default_factory=dict)
    #: the parcel each school occupies, by school id
    school_parcels: dict[str, Parcel] = field(default_factory=dict)
    #: (café feature, door point, floor, door name) to write as venue_doors
    doors: list[tuple[dict, Point, int, str]] = field(default_factory=list)
    _all_parcels: list[Parcel] = field(default_factory=list)

    def add(self, kind: str, geom: BaseGeometry, **props: object) -> dict:
        """Append a feature; ``id`` from the schema's prefix, properties in schema order."""
        schema = SCHEMAS[kind]
        unknown = set(props) - set(schema.field_names)
        if unknown:
            raise KeyError(f"{kind}: unknown fields {sorted(unknown)}")
        fid = f"{schema.id_prefix}-{len(self.layers[kind]) + 1:03d}"
        feature = {"id": fid, "geometry": geom, "properties": {f: props.get(f) for f in schema.field_names}}
        self.layers[kind].append(feature)
        return feature

    # -------------------------------------------------------------- schools
    def schools(self, *, kindergartens: bool = True) -> list[dict]:
        return [
            s for s in self.layers["schools"] if kindergartens or s["properties"]["level"] != "kindergarten"
        ]

    def school_distances(self, p: Point) -> np.ndarray:
        geoms = np.array([s["geometry"] for s in self.layers["schools"]], dtype=object)
        return shapely.distance(geoms, p) if len(geoms) else np.array([np.inf])

    def clear_of_schools(
        self, p: Point, *, except_id: str | None = None, margin_m: float = CLEAR_OF_SCHOOLS_M
    ) -> bool:
        d = self.school_distances(p)
        ids = [s["id"] for s in self.layers["schools"]]
        return all(dist >= margin_m for dist, i in zip(d, ids, strict=True) if i != except_id)

    # -------------------------------------------------------------- venue spots
    def spacing_ok(self, p: Point, min_m: float, kinds: tuple[str, ...] | None = None) -> bool:
        for kind, pts in self.spots.items():
            if (kinds is None or kind in kinds) and any(q.distance(p) < min_m for q in pts):
                return False
        return True

    def free_parcel(self, p: Point, *, uses: tuple[str | None, ...] = (None, "commercial")) -> Parcel | None:
        """The parcel holding ``p`` if it may take a venue there (2 m inside, near a road)."""
        parcel = self.ground.parcel_at(p, self.rng)
        if parcel is None or parcel.use not in uses or not parcel.poly.buffer(-2.0).contains(p):
            return None
        if self.ground.road_distance(p) > 40.0 or self.in_building(p, margin_m=3.0):
            return None
        return parcel

    def in_building(self, p: Point, *, margin_m: float = 0.0) -> bool:
        return any(
            r["geometry"].distance(p) <= margin_m
            for r in self.layers["residential"]
            if r["properties"]["form"] == "building"
        )

    def claim(self, kind: str, p: Point, parcel: Parcel | None) -> None:
        self.spots.setdefault(kind, []).append(p)
        if parcel is not None and parcel.use is None:
            parcel.use = "commercial"

    def frontage_spot(
        self, parcel: Parcel, depth_m: tuple[float, float] = (4.0, 10.0)
    ) -> tuple[Point, Point]:
        """(venue point, door point): a shop front on one of the parcel's road-facing edges."""
        a, b = parcel.frontage[int(self.rng.integers(len(parcel.frontage)))]
        foot = a + float(self.rng.uniform(0.15, 0.85)) * (b - a)
        inward = -outward_normal(a, b)
        p = foot + inward * float(self.rng.uniform(*depth_m))
        return snap_point(*p), snap_point(*foot)

    def door_for(self, p: Point, parcel: Parcel) -> Point:
        """The point of the parcel's road-facing edges nearest to ``p``."""
        best = min(parcel.frontage, key=lambda ab: shapely.LineString(ab).distance(p))
        line = shapely.LineString(best)
        foot = line.interpolate(line.project(p))
        return snap(foot)

    def random_parcels(
        self, *, kinds: tuple[str, ...] = ("urban",), uses=(None, "commercial")
    ) -> list[Parcel]:
        """Every parcel of faces of ``kinds`` with a use in ``uses``, shuffled (cuts faces as needed)."""
        if not self._all_parcels:
            for face in self.ground.faces:
                self._all_parcels.extend(self.ground.parcels_of(face, self.rng))
        out = [p for p in self._all_parcels if p.face.kind in kinds and p.use in uses]
        order = self.rng.permutation(len(out))
        return [out[int(i)] for i in order]

    # -------------------------------------------------------------- attributes
    def subdistrict_name(self, p: Point) -> str:
        return SUBDISTRICTS[self.ground.subdistrict_of(p)][0]

    def address(self, p: Point) -> str:
        face = self.ground.face_at(p)
        if face is not None and face.village:
            town = SUBDISTRICTS[face.subdistrict][0]
            return (
                f"示范区{town}{face.village}{int(self.rng.integers(1, 9))}组{int(self.rng.integers(1, 80))}号"
            )
        road = self.ground.nearest_road_name(p)
        return f"示范区{road}{int(self.rng.integers(1, 400))}号"
