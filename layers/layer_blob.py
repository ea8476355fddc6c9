"""One layer version as bytes: a GeoParquet file (zstd) kept as a blob in the workspace database.

Why a blob and not a GeoPackage feature table: SQLite inserts rows one at a time (≈ 1.7 s
per million) and the R-tree costs as much again, while encoding a layer as GeoParquet runs
at memory speed, and reading it back is a decode, not a query.  A version is written and
registered in one SQLite transaction, so it exists fully or not at all.

Encoding: GeoArrow (native coordinates) when every geometry has the same type, which skips
WKB (a layer of points goes straight from shapely's coordinates); WKB otherwise (e.g. schools mixing campus polygons and points).  No
dictionaries, no statistics: nobody queries inside a blob, and both cost time.  The
column names, order and dtypes recorded at write time are restored on read
(:func:`restore_columns`); the index is not stored.
"""

from __future__ import annotations

import json
import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyproj
import shapely

log = logging.getLogger(__name__)

COMPRESSION = "zstd"  # level 1: as fast as LZ4 end to end here (fewer bytes through SQLite), 40 % smaller
_PARQUET_OPTIONS = {
    "compression": COMPRESSION,
    "compression_level": 1,
    "use_dictionary": False,
    "write_statistics": False,
}
_WGS84 = pyproj.CRS.from_epsg(4326)
_WGS84_PROJJSON = _WGS84.to_json_dict()
_GEOARROW_TYPES = {
    "point": shapely.GeometryType.POINT,
    "linestring": shapely.GeometryType.LINESTRING,
    "polygon": shapely.GeometryType.POLYGON,
    "multipoint": shapely.GeometryType.MULTIPOINT,
    "multilinestring": shapely.GeometryType.MULTILINESTRING,
    "multipolygon": shapely.GeometryType.MULTIPOLYGON,
}
#: the largest piece of a blob in one database row (SQLite's limit is 1e9 bytes)
PART_BYTES = 256 * 1024 * 1024


def encode_layer(gdf: gpd.GeoDataFrame) -> pa.Buffer:
    """``gdf`` (EPSG:4326) as the bytes of a GeoParquet file, without its index."""
    sink = pa.BufferOutputStream()
    geoms = np.asarray(gdf.geometry.array)
    types = np.unique(shapely.get_type_id(geoms))
    if len(gdf) and types.tolist() == [0]:  # only points: GeoArrow coordinates straight from shapely
        coords = shapely.get_coordinates(geoms)
        if len(coords) == len(gdf):  # no empty points
            pq.write_table(_point_table(gdf, coords), sink, **_PARQUET_OPTIONS)
            return sink.getvalue()
    options = {"index": False, "write_covering_bbox": False, **_PARQUET_OPTIONS}
    if len(types[types >= 0]) <= 1:  # GeoArrow would turn Polygon + MultiPolygon into MultiPolygon
        try:
            gdf.to_parquet(sink, geometry_encoding="geoarrow", **options)
            return sink.getvalue()
        except (ValueError, NotImplementedError, TypeError, pa.ArrowException) as exc:
            log.debug("GeoArrow encoding refused (%s); using WKB", exc)
            sink = pa.BufferOutputStream()
    gdf.to_parquet(sink, geometry_encoding="WKB", **options)
    return sink.getvalue()


def _point_table(gdf: gpd.GeoDataFrame, coords: np.ndarray) -> pa.Table:
    """A GeoParquet 1.1 table of a point layer: the attributes, then the ``point`` encoded geometry."""
    name = gdf.geometry.name
    table = pa.Table.from_pandas(pd.DataFrame(gdf.drop(columns=name)), preserve_index=False)
    xy = pa.StructArray.from_arrays(
        [pa.array(coords[:, 0]), pa.array(coords[:, 1])],
        fields=[pa.field("x", pa.float64(), nullable=False), pa.field("y", pa.float64(), nullable=False)],
    )
    table = table.append_column(pa.field(name, xy.type, nullable=False), xy)
    geo = {"version": "1.1.0", "primary_column": name,
           "columns": {name: {"encoding": "point", "geometry_types": ["Point"], "crs": _WGS84_PROJJSON}}}  # fmt: skip
    return table.replace_schema_metadata({**(table.schema.metadata or {}), b"geo": json.dumps(geo).encode()})


def split(data: pa.Buffer, part_bytes: int | None = None) -> list[memoryview]:
    """``data`` in pieces of at most ``part_bytes`` (default :data:`PART_BYTES`; views, no copy); one at least."""
    part_bytes = part_bytes or PART_BYTES
    view = memoryview(data)
    return [view[i : i + part_bytes] for i in range(0, max(len(view), 1), part_bytes)]


def _reader(parts: list[bytes]) -> pa.BufferReader:
    return pa.BufferReader(parts[0] if len(parts) == 1 else b"".join(parts))


def decode_layer(parts: list[bytes], columns: list[list[str]]) -> gpd.GeoDataFrame:
    """The layer stored as ``parts`` (in order), with the ``columns`` ([name, dtype], …) it was written with.

    The geometry is decoded here rather than by ``geopandas.read_parquet``, which parses the
    PROJJSON CRS of every blob (≈ 40 ms each, most of the time of reading a small layer).
    """
    table = pq.read_table(_reader(parts))
    geo = json.loads(table.schema.metadata[b"geo"])
    name = geo["primary_column"]
    encoding = geo["columns"][name]["encoding"].lower()
    if encoding != "wkb" and encoding not in _GEOARROW_TYPES:  # pragma: no cover - we never write others
        return restore_columns(gpd.read_parquet(_reader(parts)).set_crs(_WGS84, allow_override=True), columns)
    frame = table.drop_columns([name]).to_pandas()
    geometry = _geometry(table.column(name).combine_chunks(), encoding)
    frame = gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geometry, crs=_WGS84, name=name))
    return restore_columns(frame, columns)


def _geometry(arr: pa.Array, encoding: str) -> np.ndarray:
    """Shapely geometries of a WKB or GeoArrow (point, linestring, polygon, multi*) column; nulls as None."""
    if encoding == "wkb":
        return shapely.from_wkb(arr.to_numpy(zero_copy_only=False))
    nulls = arr.is_null().to_numpy(zero_copy_only=False)
    offsets = []
    coords = arr
    while pa.types.is_list(coords.type) or pa.types.is_large_list(coords.type):
        offsets.append(np.asarray(coords.offsets))
        coords = coords.values
    xy = np.column_stack([coords.field("x").to_numpy(), coords.field("y").to_numpy()])
    geoms = shapely.from_ragged_array(_GEOARROW_TYPES[encoding], xy, tuple(offsets[::-1]) or None)
    if nulls.any():
        geoms[nulls] = None
    return geoms


def decode_ids(parts: list[bytes]) -> list[str]:
    """Only the ``id`` column of a stored layer."""
    return pq.read_table(_reader(parts), columns=["id"]).column("id").to_pylist()


def restore_columns(frame: gpd.GeoDataFrame, columns: list[list[str]]) -> gpd.GeoDataFrame:
    """Give a frame read back the column order, names and dtypes recorded at write time."""
    geometry = next(name for name, dtype in columns if dtype == "geometry")
    if frame.geometry.name != geometry:
        frame = frame.rename_geometry(geometry)
    frame = frame[[name for name, _ in columns]]
    for name, dtype in columns:
        if dtype == "geometry" or str(frame[name].dtype) == dtype:
            continue
        try:
            frame[name] = frame[name].astype(dtype)
        except (TypeError, ValueError) as exc:
            log.warning("column %s read back as %s, not %s: %s", name, frame[name].dtype, dtype, exc)
    return frame
