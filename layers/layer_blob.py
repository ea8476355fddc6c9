"""One layer version as bytes: GeoParquet files (zstd) kept as blobs in the workspace database.

Why a blob and not a GeoPackage feature table: SQLite inserts rows one at a time (≈ 1.7 s
per million) and the R-tree costs as much again, while encoding a layer as GeoParquet runs
at memory speed, and reading it back is a decode, not a query.  A version is written and
registered in one SQLite transaction, so it exists fully or not at all.

Chunks: a layer is cut into runs of consecutive rows of about :data:`CHUNK_BYTES`, each its
own GeoParquet file, encoded on a small thread pool (zstd and Parquet release the GIL) and
handed to the store in order as each is ready, so the database write of one chunk overlaps
the encoding of the next; reading decodes the chunks in parallel and concatenates them.

Encoding: GeoArrow (native coordinates) when every geometry has the same type, which skips
WKB (a layer of points goes straight from shapely's coordinates); WKB otherwise (e.g. schools
mixing campus polygons and points).  A point layer read from coordinate columns (CSV, XLSX)
arrives as :class:`PointRows` and is encoded from its lon/lat arrays without ever building a
shapely point (GEOS allocates one object per point, ≈ 1 µs each: most of a CSV import).
Blobs written in WKB by earlier versions still decode.  No
dictionaries, no statistics: nobody queries inside a blob, and both cost time.  The
column names, order and dtypes recorded at write time are restored on read
(:func:`restore_columns`); the index is not stored.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyproj
import shapely

from layers.errors import WorkspaceError

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
#: GeoParquet names of shapely's geometry type ids
_TYPE_NAMES = ("Point", "LineString", "LineString", "Polygon", "MultiPoint", "MultiLineString",
               "MultiPolygon", "GeometryCollection")  # fmt: skip
#: Arrow bytes of the rows of one chunk: chunks are encoded in parallel, and written while the
#: next ones are encoded; large enough to compress as well as one file (zstd works in pages anyway)
CHUNK_BYTES = 4 * 1024 * 1024
#: the largest encoded chunk one database row takes (SQLite's limit is 1e9 bytes)
MAX_CHUNK_BYTES = 512 * 1024 * 1024


@dataclass
class PointRows:
    """The rows of a point layer whose geometry has not been built: attributes and WGS84 lon/lat.

    What :func:`layers.validate.validate_table` gives for coordinate columns, and what
    :meth:`layers.store.Workspace.write` stores as it is; :meth:`to_geodataframe` builds the
    shapely points only when someone needs them.

    Attributes
    ----------
    attributes
        Every column but the geometry, in order, with a default ``RangeIndex``; its ``attrs``
        are carried over to the GeoDataFrame.
    lon, lat
        WGS84 (EPSG:4326) degrees, one per row, all finite.
    geometry_name
        Name of the geometry column, which comes last.
    """

    attributes: pd.DataFrame
    lon: np.ndarray
    lat: np.ndarray
    geometry_name: str = "geometry"

    def __post_init__(self) -> None:
        if not (len(self.attributes) == len(self.lon) == len(self.lat)):
            raise ValueError(
                f"PointRows: {len(self.attributes)} rows but {len(self.lon)} lon and {len(self.lat)} lat"
            )

    def __len__(self) -> int:
        return len(self.attributes)

    @property
    def columns(self) -> list[list[str]]:
        """``[name, dtype]`` of each column as the GeoDataFrame would have them (geometry last)."""
        return [[str(c), str(t)] for c, t in self.attributes.dtypes.items()] + [
            [self.geometry_name, "geometry"]
        ]

    def to_geodataframe(self) -> gpd.GeoDataFrame:
        """The rows as a GeoDataFrame in EPSG:4326, with shapely points (the costly part)."""
        geometry = gpd.GeoSeries(shapely.points(self.lon, self.lat), crs=_WGS84, name=self.geometry_name)
        frame = gpd.GeoDataFrame(self.attributes.copy(deep=False), geometry=geometry)
        frame.attrs.update(self.attributes.attrs)
        return frame


def layer_table(layer: gpd.GeoDataFrame | PointRows) -> pa.Table:
    """``layer`` (EPSG:4326) as an Arrow table with GeoParquet metadata, without its index."""
    if isinstance(layer, PointRows):
        return _point_table(layer.attributes, layer.geometry_name, layer.lon, layer.lat)
    gdf = layer
    name = gdf.geometry.name
    geoms = np.asarray(gdf.geometry.array)
    type_ids = shapely.get_type_id(geoms)
    types = np.unique(type_ids)
    if len(gdf) and types.tolist() == [0]:  # only points: GeoArrow coordinates straight from shapely
        coords = shapely.get_coordinates(geoms)
        if len(coords) == len(gdf):  # no empty points
            return _point_table(pd.DataFrame(gdf.drop(columns=name)), name, coords[:, 0], coords[:, 1])
    present = [_TYPE_NAMES[t] for t in types if t >= 0]
    if len(present) <= 1:  # GeoArrow would turn Polygon + MultiPolygon into MultiPolygon
        try:
            table = pa.table(gdf.to_arrow(index=False, geometry_encoding="geoarrow", interleaved=False))
            encoding = table.schema.field(name).metadata[b"ARROW:extension:name"].decode().split(".")[-1]
            return _with_geo(table, name, encoding, present)
        except (ValueError, NotImplementedError, TypeError, KeyError, pa.ArrowException) as exc:
            log.debug("GeoArrow encoding refused (%s); using WKB", exc)
    return _with_geo(pa.table(gdf.to_arrow(index=False, geometry_encoding="WKB")), name, "WKB", present)


def encode_layer(layer: gpd.GeoDataFrame | PointRows) -> pa.Buffer:
    """``layer`` (EPSG:4326) as the bytes of one GeoParquet file, without its index."""
    return _parquet(layer_table(layer))


def encode_chunks(layer: gpd.GeoDataFrame | PointRows) -> Iterator[pa.Buffer]:
    """``layer`` as GeoParquet files of consecutive rows (one at least), in order.

    The chunks are encoded in parallel (compression releases the GIL) and handed out as
    they are ready, so that a caller writing them to the database overlaps with the encoding
    of the next ones.  Concatenated in order they are the layer (:func:`decode_layer`).
    """
    table = layer_table(layer)
    step = chunk_rows(table)
    pieces = [table.slice(start, step) for start in range(0, max(table.num_rows, 1), step)]
    if len(pieces) == 1:
        yield _parquet(pieces[0])
        return
    futures = [_workers().submit(_parquet, piece) for piece in pieces]
    try:
        for future in futures:
            yield future.result()
    finally:  # the caller gave up (an error, a closed generator): stop what has not started
        for future in futures:
            future.cancel()


def chunk_rows(table: pa.Table) -> int:
    """Rows per chunk: about :data:`CHUNK_BYTES` of Arrow data each, one row at least."""
    if table.num_rows == 0:
        return 1
    per_row = max(table.nbytes / table.num_rows, 1.0)
    return max(1, int(CHUNK_BYTES // per_row))


def _parquet(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **_PARQUET_OPTIONS)
    data = sink.getvalue()
    if data.size > MAX_CHUNK_BYTES:
        raise WorkspaceError(
            f"{table.num_rows} row(s) encode to {data.size / 1e6:.0f} MB, more than a database row takes "
            f"({MAX_CHUNK_BYTES / 1e6:.0f} MB): a geometry this large cannot be stored"
        )
    return data


@functools.cache
def _workers() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1), thread_name_prefix="civicmap-blob")


def _with_geo(table: pa.Table, name: str, encoding: str, types: list[str]) -> pa.Table:
    """``table`` with the GeoParquet 1.1 ``geo`` metadata of its geometry column ``name``."""
    geo = {"version": "1.1.0", "primary_column": name,
           "columns": {name: {"encoding": encoding, "geometry_types": types, "crs": _WGS84_PROJJSON}}}  # fmt: skip
    return table.replace_schema_metadata({**(table.schema.metadata or {}), b"geo": json.dumps(geo).encode()})


def _point_table(attributes: pd.DataFrame, name: str, x: np.ndarray, y: np.ndarray) -> pa.Table:
    """A GeoParquet 1.1 table of a point layer: the attributes, then the ``point`` encoded geometry."""
    table = pa.Table.from_pandas(attributes, preserve_index=False)
    xy = pa.StructArray.from_arrays(
        [pa.array(np.asarray(x, dtype=np.float64)), pa.array(np.asarray(y, dtype=np.float64))],
        fields=[pa.field("x", pa.float64(), nullable=False), pa.field("y", pa.float64(), nullable=False)],
    )
    table = table.append_column(pa.field(name, xy.type, nullable=False), xy)
    return _with_geo(table, name, "point", ["Point"])


def read_table(parts: list[bytes], *, whole: bool = True, columns: list[str] | None = None) -> pa.Table:
    """The Arrow table stored as ``parts`` (in order).

    ``whole``: each part is a GeoParquet file of consecutive rows (:func:`encode_chunks`; read
    in parallel); otherwise the parts are byte pieces of one file, as earlier versions stored it.
    """
    if not whole:
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        return pq.read_table(pa.BufferReader(data), columns=columns)

    def one(part: bytes) -> pa.Table:
        return pq.read_table(pa.BufferReader(part), columns=columns)

    return pa.concat_tables(list(_workers().map(one, parts)) if len(parts) > 1 else [one(parts[0])])


def decode_layer(parts: list[bytes], columns: list[list[str]], *, whole: bool = True) -> gpd.GeoDataFrame:
    """The layer stored as ``parts`` (see :func:`read_table`), with the ``columns`` ([name, dtype], …) it was written with.

    The geometry is decoded here rather than by ``geopandas.read_parquet``, which parses the
    PROJJSON CRS of every blob (≈ 40 ms each, most of the time of reading a small layer).
    """
    table = read_table(parts, whole=whole)
    geo = json.loads(table.schema.metadata[b"geo"])
    name = geo["primary_column"]
    encoding = geo["columns"][name]["encoding"].lower()
    if encoding != "wkb" and encoding not in _GEOARROW_TYPES:  # pragma: no cover - we never write others
        raise ValueError(f"stored layer: unknown geometry encoding {encoding!r}")
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


def decode_ids(parts: list[bytes], *, whole: bool = True) -> list[str]:
    """Only the ``id`` column of a stored layer."""
    return read_table(parts, whole=whole, columns=["id"]).column("id").to_pylist()


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
