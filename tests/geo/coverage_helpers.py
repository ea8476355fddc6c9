"""Hand-built layers for the coverage tests, laid out in metres around 114.3 E, 30.55 N.

Coordinates are given in an azimuthal equidistant projection centred there (pyproj), which
keeps distances from the centre exact and is not the projection the code under test uses.
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
from pyproj import Transformer
from shapely.geometry import LineString, Point, box

LOCAL = "+proj=aeqd +lat_0=30.55 +lon_0=114.3 +ellps=WGS84 +units=m"
_TO_LONLAT = Transformer.from_crs(LOCAL, "EPSG:4326", always_xy=True)


def lonlat(x_m: float, y_m: float) -> tuple[float, float]:
    return _TO_LONLAT.transform(x_m, y_m)


def point(x_m: float, y_m: float) -> Point:
    return Point(lonlat(x_m, y_m))


def line(*xy: tuple[float, float]) -> LineString:
    return LineString([lonlat(x, y) for x, y in xy])


def rect(x0: float, y0: float, x1: float, y1: float):
    return gpd.GeoSeries([box(x0, y0, x1, y1)], crs=LOCAL).to_crs("EPSG:4326").iloc[0]


def frame(rows: list[dict]) -> gpd.GeoDataFrame:
    geoms = [r.pop("geometry") for r in rows]
    return gpd.GeoDataFrame(pd.DataFrame(rows), geometry=geoms, crs="EPSG:4326")


def residential(*units: tuple[str, float, float, int, str]) -> gpd.GeoDataFrame:
    """(id, x_m, y_m, population, subdistrict) points."""
    return frame(
        [
            {
                "id": i,
                "name": f"unit {i}",
                "population": pop,
                "subdistrict": sd,
                "approximate": True,
                "geometry": point(x, y),
            }
            for i, x, y, pop, sd in units
        ]
    )


def facilities(*rows: tuple) -> gpd.GeoDataFrame:
    """(id, type, x_m, y_m[, facility_level]) points, free for minors, capacity 10.

    The ``facility_level`` column is added only when some row gives a level (``None``: missing).
    """
    with_level = any(len(r) > 4 for r in rows)
    return frame(
        [
            {
                "id": r[0],
                "name": f"facility {r[0]}",
                "type": r[1],
                "free_for_minors": True,
                "capacity": 10,
                **({"facility_level": r[4] if len(r) > 4 else None} if with_level else {}),
                "geometry": point(r[2], r[3]),
            }
            for r in rows
        ]
    )
