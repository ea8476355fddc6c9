"""Read a layer file of any supported format into a :class:`RawTable`, exactly as written.

Formats: GeoJSON, GeoPackage, Shapefile (``.shp`` or a ``.zip`` holding one), GeoParquet,
and tables with coordinate or WKT columns (CSV/TSV, XLSX).  Readers only read: they keep
every column with its original header and values and never rename, convert or drop data
(blank lines of a CSV/XLSX are skipped but keep the numbering).  Interpretation — header
aliases, types, datums — is :mod:`layers.validate`'s job.

Row numbers: ``RawTable.frame.index`` is the 1-based data row a user sees, header excluded:
row 1 is the first record (spreadsheet line 2 of a CSV/XLSX, the first feature of a GeoJSON).

A file that cannot be read at all raises :class:`~layers.errors.LayerError` with one
file-level :class:`~layers.errors.Problem`.
"""

from __future__ import annotations

import io
import json
import logging
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import charset_normalizer
import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyogrio
from pyarrow import csv as pacsv

from geo.crs import Datum, parse_crs
from layers.errors import LayerError, Message

__all__ = ["FORMATS", "RawTable", "detect_encoding", "read_table"]

logger = logging.getLogger(__name__)

#: file extension -> format name
FORMATS: dict[str, str] = {
    ".geojson": "geojson",
    ".json": "geojson",
    ".gpkg": "gpkg",
    ".shp": "shapefile",
    ".zip": "shapefile-zip",
    ".parquet": "geoparquet",
    ".geoparquet": "geoparquet",
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".xlsx": "xlsx",
}
_TEXT_HEAD_BYTES = 65536
_CRS_MEMBER = re.compile(r'"crs"\s*:\s*\{\s*"type"\s*:')


@dataclass
class RawTable:
    """One table as read from a file, before any interpretation.

    Attributes
    ----------
    source
        The name to use in messages: the file name, plus ``:layer`` when a layer/sheet was named.
    frame
        Every original column under its original header, values as the format gives them
        (CSV: strings, missing cells NaN).  Files with geometry have a ``geometry`` column of
        shapely objects.  The index is the 1-based data row number (see the module docstring).
    file_crs
        The CRS the file itself declares, or ``None``.
    has_geometry
        True for formats with a geometry column (all but CSV/XLSX/plain Parquet).
    format
        One of the values of :data:`FORMATS`.
    encoding
        Text encoding used for a CSV: ``utf-8``, ``utf-8-sig`` (with BOM), ``gb18030``, or what
        charset-normalizer found; ``None`` for other formats.
    default_crs
        The CRS the format implies when the file declares none: WGS84 for GeoJSON (RFC 7946)
        and GeoParquet; ``None`` when the user must say.
    blank_rows
        Number of entirely empty rows skipped (CSV/XLSX).
    """

    source: str
    frame: pd.DataFrame
    file_crs: Datum | None
    has_geometry: bool
    format: str
    encoding: str | None = None
    default_crs: Datum | None = None
    blank_rows: int = 0

    @property
    def rows(self) -> int:
        """Number of data rows read."""
        return len(self.frame)


def read_table(path: str | Path, *, layer: str | None = None) -> RawTable:
    """Read a layer file of any supported format.

    Parameters
    ----------
    path
        The file; its extension selects the format (see :data:`FORMATS`).
    layer
        GeoPackage layer, shapefile inside a zip, or XLSX sheet.  Optional when there is only
        one (XLSX: the first sheet is used).

    Returns
    -------
    RawTable

    Raises
    ------
    LayerError
        Missing, empty, unsupported, corrupt or undecodable files; an ambiguous or unknown layer.
    """
    path = Path(path)
    source = path.name if layer is None else f"{path.name}:{layer}"
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise LayerError.single(
            source,
            Message(
                "unsupported file type {suffix!r}; expected one of: {formats}",
                suffix=path.suffix or "(none)",
                formats=", ".join(FORMATS),
            ),
        )
    if not path.is_file():
        raise LayerError.single(source, Message("file not found"))
    if path.stat().st_size == 0:
        raise LayerError.single(source, Message("file is empty"))
    try:
        if fmt == "csv":
            raw = _read_csv(path, source)
        elif fmt == "xlsx":
            raw = _read_xlsx(path, source, layer)
        elif fmt == "geoparquet":
            raw = _read_parquet(path, source)
        else:
            raw = _read_ogr(path, source, fmt, layer)
    except LayerError:
        raise
    except (
        OSError,
        ValueError,
        KeyError,
        zipfile.BadZipFile,
        pyogrio.errors.DataSourceError,
        pyogrio.errors.DataLayerError,
    ) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise LayerError.single(
            source, Message("cannot be read as {format}: {reason}", format=fmt, reason=first_line)
        ) from None
    logger.info(
        "read %s: %d rows, %d columns (%s%s)",
        source,
        raw.rows,
        raw.frame.shape[1],
        fmt,
        f", {raw.encoding}" if raw.encoding else "",
    )
    return raw


# ---------------------------------------------------------------- text tables
def detect_encoding(data: bytes) -> str | None:
    """The encoding of CSV bytes: strict UTF-8 (``utf-8-sig`` if with BOM), then GB18030, then a guess.

    GB18030 is a superset of GBK and GB2312, which Excel in China writes.  Only when neither
    decodes strictly is charset-normalizer asked; ``None`` when it cannot tell either.
    """
    for encoding in ("utf-8", "gb18030"):
        try:
            data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if encoding == "utf-8" and data.startswith(b"\xef\xbb\xbf"):
            return "utf-8-sig"
        return encoding
    best = charset_normalizer.from_bytes(data).best()
    return None if best is None else best.encoding


def _read_csv(path: Path, source: str) -> RawTable:
    data = path.read_bytes()
    # Most files are UTF-8: Arrow checks every cell while it reads (all columns are strings, and
    # separators, quotes and line ends are ASCII), so a clean read proves what a full strict
    # decode would (one pass over the bytes instead of two).  Any failure takes the careful path.
    guess = "utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8"
    try:
        return _parse_csv(data, source, guess)
    except LayerError:
        pass
    encoding = detect_encoding(data)
    if encoding is None:
        raise LayerError.single(source, Message("text encoding not recognised; save the file as UTF-8 CSV"))
    return _parse_csv(data, source, encoding)


def _parse_csv(data: bytes, source: str, encoding: str) -> RawTable:
    """The CSV ``data`` decoded as ``encoding``, every cell a string (Arrow validates UTF-8 as it goes)."""
    head = data[:_TEXT_HEAD_BYTES].decode(encoding, errors="ignore").lstrip("\ufeff")
    first_line = head.splitlines()[0] if head.strip() else ""
    if not first_line.strip():
        raise LayerError.single(source, Message("file is empty (no header row)"))
    counts = {sep: first_line.count(sep) for sep in (",", "\t", ";")}
    sep = max(counts, key=lambda s: (counts[s], s == ","))
    try:
        arrow = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(
                autogenerate_column_names=True, encoding="utf8" if encoding.startswith("utf-8") else encoding
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=sep, newlines_in_values=True, ignore_empty_lines=False
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={f"f{i}": pa.string() for i in range(counts[sep] + 1)},
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
                null_values=[""],
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as err:
        raise LayerError.single(
            source, Message("cannot be read as CSV: {reason}", reason=str(err).strip())
        ) from None
    table = arrow.to_pandas()
    frame, blank = _split_header(table)
    return RawTable(source, frame, None, False, "csv", encoding=encoding, blank_rows=blank)


def _read_xlsx(path: Path, source: str, sheet: str | None) -> RawTable:
    if not zipfile.is_zipfile(path):
        raise LayerError.single(
            source, Message("not a valid .xlsx workbook (corrupt, or an old .xls: save as .xlsx)")
        )
    with warnings.catch_warnings():
        # openpyxl warns about styles and data-validation extensions it does not need
        warnings.filterwarnings("ignore", category=UserWarning, module="openpyxl")
        with pd.ExcelFile(path, engine="openpyxl") as book:
            if sheet is not None and sheet not in book.sheet_names:
                sheets = ", ".join(book.sheet_names)
                raise LayerError.single(
                    source, Message("sheet {sheet!r} not found; sheets: {sheets}", sheet=sheet, sheets=sheets)
                )
            table = pd.read_excel(book, sheet_name=sheet or 0, header=None, dtype=object)
    if table.empty:
        raise LayerError.single(source, Message("the sheet is empty (no header row)"))
    frame, blank = _split_header(table)
    return RawTable(source, frame, None, False, "xlsx", blank_rows=blank)


def _split_header(table: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """First row as headers (kept verbatim, duplicates too), the rest numbered 1..n."""
    headers = []
    keep = []
    for pos, cell in enumerate(table.iloc[0].tolist()):
        empty = cell is None or (isinstance(cell, float) and np.isnan(cell)) or not str(cell).strip()
        if empty and table.iloc[1:, pos].isna().all():
            continue  # an unnamed, empty column: trailing separators or Excel formatting
        keep.append(pos)
        headers.append(f"(column {pos + 1})" if empty else str(cell))
    frame = table.iloc[1:, keep]
    frame.columns = headers
    frame.index = pd.RangeIndex(1, len(frame) + 1)
    filled = frame.notna().to_numpy().any(axis=1)
    blank = int((~filled).sum())
    if blank:
        frame = frame[filled]
        logger.info("skipped %d blank row(s)", blank)
    return frame, blank


# ---------------------------------------------------------------- GIS formats
def _read_ogr(path: Path, source: str, fmt: str, layer: str | None) -> RawTable:
    if fmt == "shapefile-zip":
        target = _zip_member(path, source, layer)
        layer = None
    else:
        target = str(path)
        if fmt == "gpkg":
            layer = _pick_layer(target, source, layer)
    gdf = pyogrio.read_dataframe(target, layer=layer, use_arrow=True)
    if not isinstance(gdf, gpd.GeoDataFrame):  # an attribute table (e.g. in a GeoPackage): coordinate columns
        gdf.index = pd.RangeIndex(1, len(gdf) + 1)
        return RawTable(source, gdf, None, False, fmt)
    file_crs = parse_crs(gdf.crs) if gdf.crs is not None else None
    default_crs = None
    if fmt == "geojson" and not _geojson_declares_crs(path):
        file_crs, default_crs = None, parse_crs("wgs84")
    return RawTable(source, _plain_frame(gdf), file_crs, True, fmt, default_crs=default_crs)


def _pick_layer(target: str, source: str, layer: str | None) -> str | None:
    names = [str(n) for n in pyogrio.list_layers(target)[:, 0]]
    if layer is None:
        if len(names) > 1:
            raise LayerError.single(
                source,
                Message(
                    "file has {count} layers ({layers}); name one", count=len(names), layers=", ".join(names)
                ),
            )
        return None
    if layer not in names:
        raise LayerError.single(
            source,
            Message("layer {layer!r} not found; layers: {layers}", layer=layer, layers=", ".join(names)),
        )
    return layer


def _zip_member(path: Path, source: str, layer: str | None) -> str:
    if not zipfile.is_zipfile(path):
        raise LayerError.single(source, Message("not a valid zip archive (corrupt or not a zip)"))
    with zipfile.ZipFile(path) as archive:
        shps = [n for n in archive.namelist() if n.lower().endswith(".shp") and not n.startswith("__MACOSX")]
    if not shps:
        raise LayerError.single(source, Message("zip archive holds no shapefile (.shp)"))
    if layer is not None:
        shps = [n for n in shps if layer in (n, Path(n).name, Path(n).stem)] or shps
        if len(shps) > 1 or layer not in (shps[0], Path(shps[0]).name, Path(shps[0]).stem):
            raise LayerError.single(
                source,
                Message(
                    "shapefile {layer!r} not in the zip; found: {found}", layer=layer, found=", ".join(shps)
                ),
            )
    elif len(shps) > 1:
        raise LayerError.single(
            source,
            Message(
                "zip holds {count} shapefiles ({found}); name one", count=len(shps), found=", ".join(shps)
            ),
        )
    return f"/vsizip/{path.resolve()}/{shps[0]}"


def _geojson_declares_crs(path: Path) -> bool:
    """Whether a GeoJSON has a top-level ``crs`` member (GDAL reports WGS84 either way)."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(_TEXT_HEAD_BYTES).decode("utf-8", errors="ignore")
        features_at = head.find('"features"')
        match = _CRS_MEMBER.search(head)
        if match and (features_at < 0 or match.start() < features_at):
            return True
        if size <= _TEXT_HEAD_BYTES:
            tail = head
        else:
            fh.seek(size - _TEXT_HEAD_BYTES)
            tail = fh.read().decode("utf-8", errors="ignore")
    starts = [m.start() for m in _CRS_MEMBER.finditer(tail)]
    return bool(starts) and tail.rfind('"geometry"') < starts[-1]


def _read_parquet(path: Path, source: str) -> RawTable:
    metadata = pq.read_schema(path).metadata or {}
    if b"geo" not in metadata:
        frame = pd.read_parquet(path)
        frame.index = pd.RangeIndex(1, len(frame) + 1)
        return RawTable(source, frame, None, False, "geoparquet")
    geo = json.loads(metadata[b"geo"])
    declared = "crs" in geo["columns"][geo["primary_column"]]
    gdf = gpd.read_parquet(path)
    file_crs = parse_crs(gdf.crs) if declared and gdf.crs is not None else None
    default_crs = None if declared else parse_crs("wgs84")  # GeoParquet spec: absent crs = OGC:CRS84
    return RawTable(source, _plain_frame(gdf), file_crs, True, "geoparquet", default_crs=default_crs)


def _plain_frame(gdf: gpd.GeoDataFrame) -> pd.DataFrame:
    """A plain DataFrame whose shapely geometry column is called ``geometry``, rows numbered from 1."""
    geometry = gdf.geometry.name
    frame = pd.DataFrame(gdf)
    if geometry != "geometry":
        frame = frame.rename(columns={geometry: "geometry"})
    frame.index = pd.RangeIndex(1, len(frame) + 1)
    return frame
