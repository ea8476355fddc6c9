"""The geometry checks of validation: types, emptiness, finiteness, China bounds, validity; WGS84.

Used by :mod:`layers.validate`, whose collector receives the problems.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import shapely

from geo.crs import Datum, geometry_to_wgs84, to_wgs84
from layers import schema as sch
from layers.cells import number_values, text_values
from layers.errors import Message
from layers.readers import RawTable

if TYPE_CHECKING:
    from layers.validate import _Collector

#: generous (lon_min, lat_min, lon_max, lat_max) around China, WGS84 degrees
CHINA_BBOX = (73.0, 3.0, 136.0, 54.0)
#: geometry family codes; index = shapely type id + 1
FAMILIES = (None, sch.POINT, sch.LINE, sch.POLYGON)
_FAMILY_OF_TYPE = np.array([0, 1, 2, 0, 3, 0, 2, 3, 0], dtype=np.int8)
_TYPE_NAMES = ("none", "Point", "LineString", "LinearRing", "Polygon", "MultiPoint", "MultiLineString",
               "MultiPolygon", "GeometryCollection")  # fmt: skip


def _in_china(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    lon_min, lat_min, lon_max, lat_max = CHINA_BBOX
    return (lon >= lon_min) & (lon <= lon_max) & (lat >= lat_min) & (lat <= lat_max)


def _lonlat(x: np.ndarray, y: np.ndarray, datum: Datum) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 lon/lat of source coordinates; NaN where not finite or out of the datum's range."""
    ok = np.isfinite(x) & np.isfinite(y)
    if datum.is_geographic:
        ok &= (np.abs(x) <= 180) & (np.abs(y) <= 90)
    if ok.all():
        return to_wgs84(x, y, datum)
    lon, lat = np.full(len(x), np.nan), np.full(len(x), np.nan)
    if ok.any():
        lon[ok], lat[ok] = to_wgs84(x[ok], y[ok], datum)
    return lon, lat


class GeometryChecks:
    """Geometry checks of every row (vectorised), and the WGS84 geometry of the good ones."""

    def __init__(
        self,
        raw: RawTable,
        schema: sch.LayerSchema,
        targets: dict[str, int],
        headers: dict[str, str],
        datum: Datum | None,
        col: _Collector,
    ) -> None:
        n = len(raw.frame)
        self.datum = datum
        self.geoms: np.ndarray | None = None  # shapely objects in the source CRS; None for lon/lat columns
        self.family = np.ones(n, dtype=np.int8)  # codes of FAMILIES
        self.bounds = np.full((n, 4), np.nan)
        self.usable = np.zeros(n, dtype=bool)
        self.field = "geometry"
        if raw.has_geometry:
            source = raw.frame["geometry"]
            self._shapes(np.asarray(source.array, dtype=object), source, schema, col, report_missing=True)
        elif "_wkt" in targets:
            self.field = headers["_wkt"]
            source = raw.frame.iloc[:, targets["_wkt"]]
            text = text_values(source).to_numpy(dtype=object, na_value=None)
            with np.errstate(invalid="ignore"):
                geoms = shapely.from_wkt(text, on_invalid="ignore")
            given = pd.notna(text)
            col.add(given & shapely.is_missing(geoms), self.field, source, Message("not valid WKT"))
            col.add(~given, self.field, source, Message("required value missing (WKT geometry)"))
            self._shapes(geoms, source, schema, col, report_missing=False)
        elif "_lon" in targets and "_lat" in targets:
            self.field = f"{headers['_lon']}/{headers['_lat']}"
            self.usable[:] = True
            for target, pos in (("_lon", 0), ("_lat", 1)):
                series = raw.frame.iloc[:, targets[target]]
                numbers, missing, not_number = number_values(series)
                col.add(missing, headers[target], series, Message("required value missing"))
                col.add(not_number, headers[target], series, Message("not a number"))
                col.add(
                    ~missing & ~not_number & ~np.isfinite(numbers),
                    headers[target],
                    series,
                    Message("non-finite coordinate"),
                )
                self.usable &= np.isfinite(numbers)
                self.bounds[:, pos] = self.bounds[:, pos + 2] = numbers
        else:
            lon, lat, wkt = ("/".join(a[:5]) for a in (sch.LON_ALIASES, sch.LAT_ALIASES, sch.WKT_ALIASES))
            col.file_problem(
                Message(
                    "no coordinates: expected longitude ({lon}) and latitude ({lat}) columns, or WKT ({wkt})",
                    lon=lon,
                    lat=lat,
                    wkt=wkt,
                )
            )
        self.is_point = self.family == 1
        self.lon, self.lat = np.full(n, np.nan), np.full(n, np.nan)
        if datum is not None and self.usable.any():
            self._place(col)
        self._validity(col)

    def _shapes(
        self,
        geoms: np.ndarray,
        source: pd.Series,
        schema: sch.LayerSchema,
        col: _Collector,
        report_missing: bool,
    ) -> None:
        self.geoms = geoms
        type_id = shapely.get_type_id(geoms)
        self.family = _FAMILY_OF_TYPE[type_id + 1]
        missing = type_id < 0
        empty = shapely.is_empty(geoms)
        accepted = np.isin(self.family, [FAMILIES.index(g) for g in schema.geometry])
        if report_missing:
            col.add(missing, self.field, source, Message("required value missing (no geometry)"))
        col.add(empty, self.field, source, Message("empty geometry"))
        wrong = ~missing & ~empty & ~accepted
        allowed = " or ".join(schema.geometry)
        expected = {p: Message("{type} not accepted for {kind}; expected {allowed}",
                               type=_TYPE_NAMES[type_id[p] + 1], kind=schema.kind, allowed=allowed)
                    for p in np.flatnonzero(wrong)}  # fmt: skip
        col.add(wrong, self.field, source, expected)
        self.bounds = shapely.bounds(geoms)
        finite = np.isfinite(self.bounds[:, :2]).all(axis=1)
        others = np.flatnonzero(~missing & ~empty & (type_id != 0))
        if len(others):
            coords, index = shapely.get_coordinates(geoms[others], return_index=True)
            finite[others[np.unique(index[~np.isfinite(coords).all(axis=1)])]] = False
        col.add(
            ~missing & ~empty & ~finite,
            self.field,
            source,
            Message("non-finite coordinate (NaN or infinity)"),
        )
        self.usable = ~missing & ~empty & accepted & finite

    def _place(self, col: _Collector) -> None:
        """WGS84 position of each usable row; rows outside China are reported, swapped lon/lat named."""
        use = np.flatnonzero(self.usable)
        b = self.bounds[use]
        lon, lat = _lonlat(b[:, 0], b[:, 1], self.datum)
        inside = _in_china(lon, lat)
        wide = np.flatnonzero(~self.is_point[use])
        if len(wide):
            inside[wide] &= _in_china(*_lonlat(b[wide, 2], b[wide, 3], self.datum))
        self.lon[use], self.lat[use] = lon, lat
        out = use[~inside]
        if not len(out):
            return
        b = self.bounds[out]
        swapped = _in_china(*_lonlat(b[:, 1], b[:, 0], self.datum)) & _in_china(
            *_lonlat(b[:, 3], b[:, 2], self.datum)
        )
        datum = str(self.datum)
        outside = Message("outside China (73–136°E, 3–54°N) when read as {datum}", datum=datum)
        turned = Message(
            "outside China (73–136°E, 3–54°N) when read as {datum}; lon/lat look swapped", datum=datum
        )
        expected = {p: turned if s else outside for p, s in zip(out, swapped, strict=True)}
        mask = np.zeros(len(self.usable), dtype=bool)
        mask[out] = True
        values = (
            self.geoms
            if self.geoms is not None
            else {p: (float(b[i, 0]), float(b[i, 1])) for i, p in enumerate(out)}
        )
        col.add(mask, self.field, values, expected)
        self.usable[out] = False

    def _validity(self, col: _Collector) -> None:
        check = np.flatnonzero(self.usable & ~self.is_point)
        invalid = check[~shapely.is_valid(self.geoms[check])] if len(check) else check
        if not len(invalid):
            return
        reasons = shapely.is_valid_reason(self.geoms[invalid])
        expected = {p: Message("invalid geometry: {reason}; fix the outline (not repaired automatically)", reason=r)
                    for p, r in zip(invalid, reasons, strict=True)}  # fmt: skip
        mask = np.zeros(len(self.usable), dtype=bool)
        mask[invalid] = True
        col.add(mask, self.field, self.geoms, expected)

    def to_wgs84(
        self, keep: np.ndarray
    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, np.ndarray | None]:
        """(WGS84 geometries, lon, lat of the point or lower-left corner, WKB rounded to 1e-6° or None).

        The geometries are ``None`` for points given as coordinate columns: lon/lat say it all.
        """
        if not len(keep):
            return np.empty(0, dtype=object), np.empty(0), np.empty(0), None
        every = len(keep) == len(self.lon)
        lon, lat = (self.lon, self.lat) if every else (self.lon[keep], self.lat[keep])
        points = self.is_point if every else self.is_point[keep]
        if self.geoms is None:
            return None, lon, lat, None
        if self.datum is not None and self.datum.name in ("wgs84", "cgcs2000"):
            geometry = self.geoms if every else self.geoms[keep]
        else:
            geometry = np.empty(len(keep), dtype=object)
            geometry[points] = shapely.points(lon[points], lat[points])
            geometry[~points] = geometry_to_wgs84(self.geoms[keep[~points]], self.datum)
        if len(geometry) and shapely.has_z(geometry).any():
            geometry = shapely.force_2d(geometry)
        wkb = None
        if not points.all():
            wkb = np.full(len(keep), b"", dtype=object)
            wide = np.flatnonzero(~points)
            wkb[wide] = shapely.to_wkb(shapely.transform(geometry[wide], lambda c: np.round(c, 6)))
        return np.asarray(geometry, dtype=object), lon, lat, wkb
