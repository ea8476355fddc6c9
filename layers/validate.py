"""Validate a :class:`~layers.readers.RawTable` against its kind's schema and bring it to WGS84.

Every problem is reported and none is fixed silently.  A row with any problem goes to
``rejected`` with its reasons, so ``len(valid) + len(rejected)`` is the number of rows read.
Checks are vectorised (pandas, pyarrow, numpy, shapely).  :class:`~layers.errors.Problem`
objects are built only for the bad rows.

Row numbers are 1-based data rows as a user sees them, header excluded: row 1 is the first
record (spreadsheet line 2), or the first feature of a GeoJSON.

Datums: the file's own CRS wins.  A user ``crs`` that contradicts it is an error naming both
(WGS84 and CGCS2000 count as the same).  GeoJSON/GeoParquet without a declared CRS are WGS84
unless the user says otherwise (Chinese GeoJSON is often GCJ-02).  Coordinate tables (CSV,
XLSX) without ``crs`` are refused, never guessed.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from geo.crs import Datum, geometry_to_wgs84, parse_crs, to_wgs84
from layers import schema as sch
from layers.errors import CRSError, LayerError, Message, Problem
from layers.layer_blob import PointRows
from layers.readers import RawTable

__all__ = ["CHINA_BBOX", "ValidationResult", "check_parents", "duplicated", "stable_hash", "validate_table"]

logger = logging.getLogger(__name__)

#: generous (lon_min, lat_min, lon_max, lat_max) around China, WGS84 degrees
CHINA_BBOX = (73.0, 3.0, 136.0, 54.0)
#: output columns computed here; input columns of these names are ignored
_DERIVED = ("approximate", "source_row")
_TRUE = ("是", "true", "t", "yes", "y", "1", "有")
_FALSE = ("否", "false", "f", "no", "n", "0", "无")
#: what Arrow's string -> float64 cast accepts (checked in the tests), for finding the bad cells
_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$|^(?i:[+-]?(inf|infinity|nan))$"
#: geometry family codes; index = shapely type id + 1
_FAMILIES = (None, sch.POINT, sch.LINE, sch.POLYGON)
_FAMILY_OF_TYPE = np.array([0, 1, 2, 0, 3, 0, 2, 3, 0], dtype=np.int8)
_TYPE_NAMES = ("none", "Point", "LineString", "LinearRing", "Polygon", "MultiPoint", "MultiLineString",
               "MultiPolygon", "GeometryCollection")  # fmt: skip
_DTYPES = {sch.INT: "Int64", sch.FLOAT: "float64", sch.BOOL: "boolean", sch.DATE: "datetime64[us]"}


@dataclass
class ValidationResult:
    """Outcome of :func:`validate_table`.

    Attributes
    ----------
    valid_rows
        The valid rows as stored: a :class:`~layers.layer_blob.PointRows` for a point layer
        read from coordinate columns (no shapely points built yet), else :attr:`valid` itself.
        ``len(valid_rows)`` is the number of valid rows.  Pass it to
        :meth:`layers.store.Workspace.write`.
    valid
        (property) GeoDataFrame in WGS84 (EPSG:4326): ``id`` (str), every schema field under its canonical
        name (str, Int64, float64, boolean or datetime64), ``approximate`` (bool, only for kinds
        with a preferred geometry), ``source_row`` (int64), the file's other columns as strings
        under their own headers, ``geometry``.  ``attrs`` holds ``kind`` and ``headers``.
    problems
        Every problem: file-level ones first, then by row.
    rejected
        The original rows that failed, as read, with ``row`` and ``reason`` in front.
    crs
        The datum the coordinates were read in (``None`` if it could not be settled).
    headers
        Canonical field name (or ``id``, ``_lon``, ``_lat``, ``_wkt``) -> the header the file used.
    """

    kind: str
    source: str
    valid_rows: gpd.GeoDataFrame | PointRows
    problems: list[Problem]
    rejected: pd.DataFrame
    crs: Datum | None
    headers: dict[str, str]
    raw: RawTable = field(repr=False)

    @property
    def valid(self) -> gpd.GeoDataFrame:
        """The valid rows as a GeoDataFrame; the shapely points of :class:`PointRows` are built on first use."""
        if isinstance(self.valid_rows, PointRows):
            self.valid_rows = self.valid_rows.to_geodataframe()
        return self.valid_rows

    @property
    def rows(self) -> int:
        """Rows read: ``len(valid) + len(rejected)``."""
        return self.raw.rows

    @property
    def encoding(self) -> str | None:
        return self.raw.encoding

    def summary(self) -> str:
        """One line for logs and the CLI."""
        text = (
            f"{self.source} ({self.kind}): {len(self.valid_rows)} valid, {len(self.rejected)} rejected "
            f"of {self.rows} row(s), {len(self.problems)} problem(s)"
        )
        if self.crs is not None:
            text += f"; coordinates {self.crs} -> WGS84"
        return text + (f"; encoding {self.encoding}" if self.encoding else "")

    def reject(self, problems: list[Problem]) -> ValidationResult:
        """A new result with the valid rows named by ``problems`` (e.g. :func:`check_parents`) rejected."""
        reasons: dict[int, list[str]] = {}
        for p in problems:
            if p.row is not None:
                reasons.setdefault(p.row, []).append(_reason(p))
        moved = self.valid["source_row"].isin(list(reasons)).to_numpy()
        rows = self.valid["source_row"].to_numpy()[moved]
        extra = _with_reasons(self.raw.frame.loc[rows], rows, ["; ".join(reasons[r]) for r in rows])
        rejected = (
            pd.concat([self.rejected, extra]).sort_values("row", kind="stable")
            if len(extra)
            else self.rejected
        )
        valid = self.valid[~moved].reset_index(drop=True)
        valid.attrs.update(self.valid.attrs)
        problems = self.problems + list(problems)
        return ValidationResult(
            self.kind, self.source, valid, problems, rejected, self.crs, self.headers, self.raw
        )

    def raise_for_problems(self) -> None:
        """Raise :class:`~layers.errors.LayerError` listing every problem, if there is any."""
        if self.problems:
            raise LayerError(list(self.problems))


class _Collector:
    """Problems by row position, and which rows are bad."""

    def __init__(self, source: str, rows: np.ndarray, headers: list[str]) -> None:
        self.source = source
        self.rows = rows
        self.order = {h: i for i, h in reversed(list(enumerate(headers)))}  # header -> column position
        self.file: list[Problem] = []
        self.by_row: list[tuple[int, int, Problem]] = []
        self.bad = np.zeros(len(rows), dtype=bool)

    def file_problem(self, expected: str) -> None:
        self.file.append(Problem(self.source, None, None, None, expected))

    def add(self, mask: np.ndarray, name: str, values: object, expected: str | Mapping[int, str]) -> None:
        """One problem per True position of ``mask``; ``values`` is indexable by position."""
        for pos in np.flatnonzero(mask):
            value = values.iat[pos] if isinstance(values, pd.Series) else values[pos]
            text = expected if isinstance(expected, str) else expected[pos]
            problem = Problem(self.source, int(self.rows[pos]), name, _plain(value), text)
            self.by_row.append((int(pos), self.order.get(name, len(self.order)), problem))
        self.bad |= mask

    def problems(self) -> list[Problem]:
        """File-level problems, then by row and column."""
        return self.file + [p for _, _, p in sorted(self.by_row, key=lambda t: t[:2])]


def validate_table(raw: RawTable, kind: str, *, crs: object = None) -> ValidationResult:
    """Check every row of ``raw`` against the schema of ``kind`` and convert it to WGS84.

    Parameters
    ----------
    raw
        A table from :func:`layers.readers.read_table`.
    kind
        A layer kind of :data:`layers.schema.KINDS`.
    crs
        The datum/CRS of the coordinates (``wgs84``, ``cgcs2000``, ``gcj02``, ``bd09``,
        ``EPSG:nnnn``); required when the file declares none and its format implies none.

    Returns
    -------
    ValidationResult
        Problems are returned, not raised (see :meth:`ValidationResult.raise_for_problems`).
    """
    schema = sch.get_schema(kind)
    frame = raw.frame
    n = len(frame)
    rows = np.asarray(frame.index, dtype=np.int64)
    col = _Collector(raw.source, rows, [str(c) for c in frame.columns])
    if n == 0:
        col.file_problem(Message("no data rows"))
    targets, extras = _map_headers(raw, schema, col)
    headers = {t: str(frame.columns[p]) for t, p in targets.items()}
    datum = _resolve_crs(raw, crs, col)

    values: dict[str, object] = {}
    for f in schema.fields:
        if f.name not in targets:
            if f.required:
                accepted = ", ".join(dict.fromkeys((f.name, *f.aliases)))
                col.file_problem(
                    Message(
                        "required column {field} ({label}) is missing; accepted headers: {accepted}",
                        field=f.name,
                        label=f.label_zh,
                        accepted=accepted,
                    )
                )
            values[f.name] = _constant(f, n)
            continue
        series = frame.iloc[:, targets[f.name]]
        converted, missing, checks = _convert(series, f)
        for mask, expected in checks:
            col.add(mask, headers[f.name], series, expected)
        if f.required:
            col.add(missing, headers[f.name], series, Message("required value missing"))
        values[f.name] = converted
    given_ids = _check_ids(frame, targets, col)
    geom = _Geometry(raw, schema, targets, headers, datum, col)

    keep = np.flatnonzero(~col.bad) if not col.file else np.zeros(0, dtype=np.int64)
    every = len(keep) == n

    def pick(arr: object) -> object:
        return arr if every else arr[keep]

    geometry, lon, lat, wkb = geom.to_wgs84(keep)
    names = pick(values["name"]) if "name" in values else np.full(len(keep), "", dtype=object)
    data: dict[str, object] = {
        "id": _ids(schema, None if given_ids is None else pick(given_ids), names, lon, lat, wkb)
    }
    for f in schema.fields:
        data[f.name] = pick(values[f.name])
    if schema.preferred_geometry is not None:
        data["approximate"] = pick(geom.family) != _FAMILIES.index(schema.preferred_geometry)
    data["source_row"] = pick(rows)
    for name, pos in extras.items():
        data[name] = pick(_text(frame.iloc[:, pos]).array)
    if geometry is None:  # points from coordinate columns: no shapely object until someone asks
        valid: gpd.GeoDataFrame | PointRows = PointRows(pd.DataFrame(data), lon, lat)
        valid.attributes.attrs.update(kind=kind, headers=headers)
    else:
        valid = gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geometry, crs="EPSG:4326"))
        valid.attrs.update(kind=kind, headers=headers)

    good = np.zeros(n, dtype=bool)
    good[keep] = True
    result = ValidationResult(
        kind, raw.source, valid, col.problems(), _rejected(raw, col, good), datum, headers, raw
    )
    logger.info("%s", result.summary())
    return result


def check_parents(
    valid: pd.DataFrame, parent_ids: set[str], *, source: str, kind: str | None = None
) -> list[Problem]:
    """Problems for rows of a child layer (gates, doors) whose parent id is not in ``parent_ids``.

    Parameters
    ----------
    valid
        ``ValidationResult.valid`` of a kind with a parent: ``school_gates`` (``school_id``) or
        ``venue_doors`` (``venue_id``); any subset of its rows.
    parent_ids
        Ids of the existing parents.
    source
        File name for the messages.
    kind
        The child kind; by default ``valid.attrs["kind"]``, else found from the columns.
    """
    kind = kind or valid.attrs.get("kind")
    schema = sch.get_schema(kind) if kind else None
    if schema is None:
        schema = next((s for s in sch.SCHEMAS.values() if s.parent and s.parent[0] in valid.columns), None)
    if schema is None or schema.parent is None:
        return []
    name, parent_kind = schema.parent
    header = valid.attrs.get("headers", {}).get(name, name)
    orphan = np.flatnonzero(~valid[name].isin(list(parent_ids)).to_numpy())
    rows = valid["source_row"].to_numpy()
    return [
        Problem(
            source,
            int(rows[i]),
            header,
            valid[name].iat[i],
            Message("no {parent} with this id", parent=parent_kind),
        )
        for i in orphan
    ]


# ---------------------------------------------------------------- headers and CRS
def _norm(text: object) -> str:
    return unicodedata.normalize("NFKC", str(text)).strip().lower()


def _map_headers(
    raw: RawTable, schema: sch.LayerSchema, col: _Collector
) -> tuple[dict[str, int], dict[str, int]]:
    """Targets (field names, ``id``, ``_lon``, ``_lat``, ``_wkt``) -> column position; extras -> position.

    A header matches case-insensitively after trimming (and NFKC, so full-width brackets match):
    canonical names first, then aliases, Chinese/English labels, then id and coordinate aliases.
    """
    spellings = [(f.name, f.name) for f in schema.fields]
    spellings += [(a, f.name) for f in schema.fields for a in f.aliases]
    spellings += [(label, f.name) for f in schema.fields for label in (f.label_zh, f.label_en) if label]
    for target, aliases in (("id", sch.ID_ALIASES), ("_lon", sch.LON_ALIASES), ("_lat", sch.LAT_ALIASES),
                            ("_wkt", sch.WKT_ALIASES)):  # fmt: skip
        spellings += [(a, target) for a in aliases]
    lookup: dict[str, str] = {}
    for spelling, target in spellings:
        lookup.setdefault(_norm(spelling), target)

    targets: dict[str, int] = {}
    extras: dict[str, int] = {}
    for pos, header in enumerate(raw.frame.columns):
        if raw.has_geometry and header == "geometry":
            continue
        target = lookup.get(_norm(header))
        if raw.has_geometry and target in ("_lon", "_lat", "_wkt"):
            target = None  # the file's own geometry wins; such columns are kept as extras
        if target is None and _norm(header) in _DERIVED:
            logger.info(
                "%s: column %r is computed by civicmap; the file's values are ignored", raw.source, header
            )
        elif target is None:
            name = str(header)
            while name in extras:
                name += "_2"
            extras[name] = pos
        elif target in targets:
            first = raw.frame.columns[targets[target]]
            col.file_problem(
                Message("columns {first!r} and {second!r} both give {target}; keep one",
                        first=str(first), second=str(header), target=target.lstrip("_"))
            )  # fmt: skip
        else:
            targets[target] = pos
    return targets, extras


def _same_crs(a: Datum, b: Datum) -> bool:
    if a.name == b.name or {a.name, b.name} == {"wgs84", "cgcs2000"}:
        return True
    return a.crs is not None and b.crs is not None and a.crs.equals(b.crs, ignore_axis_order=True)


def _resolve_crs(raw: RawTable, crs: object, col: _Collector) -> Datum | None:
    user = None
    if crs is not None:
        try:
            user = parse_crs(crs)
        except CRSError as err:
            col.file_problem(str(err))
            return None
    declared = raw.file_crs
    if declared is not None and user is not None and not _same_crs(declared, user):
        col.file_problem(
            Message("the file declares CRS {declared} but crs {given} was given; omit crs to use the file's own, "
                    "or correct the file", declared=str(declared), given=str(user))
        )  # fmt: skip
        return None
    datum = declared or user or raw.default_crs
    if datum is None:
        col.file_problem(Message("no CRS given; pass --crs wgs84|cgcs2000|gcj02|bd09|EPSG:..."))
    return datum


# ---------------------------------------------------------------- values
def _plain(value: object) -> object:
    """A value fit for a message: numpy scalars unwrapped, missing as None, geometry as short WKT."""
    if isinstance(value, shapely.Geometry):
        text = shapely.to_wkt(value, rounding_precision=7)
        return text if len(text) <= 80 else text[:77] + "..."
    if value is None or (np.ndim(value) == 0 and pd.isna(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _cell_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "isoformat"):
        stamp = pd.Timestamp(value)
        return stamp.date().isoformat() if stamp == stamp.normalize() else stamp.isoformat()
    return str(value)


def _text(series: pd.Series) -> pd.Series:
    """Stripped strings (dtype ``str``, positional index); empty cells missing; whole numbers without ``.0``."""
    dtype = series.dtype
    if isinstance(dtype, pd.StringDtype):
        arrow = _arrow(series.array)
    elif pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        arrow = pa.array(series, from_pandas=True).cast(pa.string())
    else:
        arrow = _arrow(pd.array(series.map(_cell_text, na_action="ignore").to_numpy(), dtype="str"))
    stripped = pc.utf8_trim_whitespace(arrow)
    blank = pc.equal(pc.binary_length(stripped), 0)
    if pc.any(blank).as_py():
        stripped = pc.if_else(blank, pa.scalar(None, stripped.type), stripped)
    return pd.Series(pd.array(stripped, dtype="str"))


def _constant(f: sch.Field, n: int) -> object:
    """``n`` times the default of a field the file does not have, in the field's dtype."""
    dtype = _DTYPES.get(f.type, "str")
    if dtype == "str":  # built by Arrow: taking from a one-value string array is slow
        text = pa.nulls(n, pa.large_string()) if f.default is None else pa.repeat(str(f.default), n)
        return pd.array(text.cast(pa.large_string()), dtype="str")
    return pd.array([f.default], dtype=dtype).take(np.zeros(n, dtype=np.int64))


def _arrow(values: object) -> pa.Array | pa.ChunkedArray:
    """A pyarrow array of a Series, ExtensionArray, list or array, as its chunks if it has them (no copy)."""
    return values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(values, from_pandas=True)


def _numpy(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A numpy array of an Arrow array of numbers or booleans (nulls as NaN or None)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    return values.to_numpy(zero_copy_only=False)


def _numbers(series: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(float values, missing mask, not-a-number mask)."""
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        numbers = series.to_numpy(dtype="float64", na_value=np.nan)
        return numbers, np.isnan(numbers), np.zeros(len(numbers), dtype=bool)
    if isinstance(series.dtype, pd.StringDtype):  # the usual CSV column: every cell a plain number?
        try:  # Arrow refuses surrounding blanks, so success means stripping would change nothing
            raw = _arrow(series.array)
            numbers = raw.cast(pa.float64())
        except pa.ArrowInvalid:
            pass
        else:
            return _numpy(numbers), _numpy(raw.is_null()), np.zeros(len(raw), dtype=bool)
    text = _arrow(_text(series).array)
    missing = _numpy(text.is_null())
    try:
        numbers = text.cast(pa.float64())
        not_number = np.zeros(len(text), dtype=bool)
    except pa.ArrowInvalid:  # some cells are not numbers: find them
        ok = pc.fill_null(pc.match_substring_regex(text, _NUMBER), False)
        numbers = pc.if_else(ok, text, None).cast(pa.float64())
        not_number = ~missing & ~_numpy(ok)
    return _numpy(numbers), missing, not_number


def _codes(series: pd.Series, table: dict[str, int], size: int) -> np.ndarray:
    """Index into the choices of each cell (matched like headers): -1 missing or blank, ``size`` unknown.

    Text columns are factorised as they are (the few distinct values are then stripped and
    matched), other columns after :func:`_text` (so that a spreadsheet's 1.0 reads as 1).
    """
    text = series if isinstance(series.dtype, pd.StringDtype) else _text(series)
    codes, uniques = pd.factorize(text)
    mapped = np.array([table.get(_norm(u), size) if _norm(u) else -1 for u in uniques] + [-1], dtype=np.int64)
    return mapped[codes]


def _typed(values: pd.Series, f: sch.Field) -> object:
    """Values as a positional array of the field's dtype, missing ones set to the field's default."""
    if f.default is not None:
        values = values.fillna(f.default)
    dtype = _DTYPES.get(f.type, "str")
    return values.astype(dtype).to_numpy() if dtype == "float64" else values.astype(dtype).array


def _convert(series: pd.Series, f: sch.Field) -> tuple[object, np.ndarray, list[tuple[np.ndarray, str]]]:
    """(typed values, missing mask, [(bad mask, expectation)]) of one column."""
    checks: list[tuple[np.ndarray, str]] = []
    if f.type in (sch.INT, sch.FLOAT):
        numbers, missing, not_number = _numbers(series)
        ok = np.isfinite(numbers)
        checks.append((not_number, Message("not a number")))
        checks.append((~missing & ~not_number & ~ok, Message("not a finite number")))
        if f.type == sch.INT:
            fractional = ok & ((numbers != np.floor(numbers)) | (np.abs(numbers) > 2**53))
            checks.append((fractional, Message("not an integer (a whole number)")))
            ok &= ~fractional
        if f.min_value is not None:
            low = ok & (numbers < f.min_value)
            too_low = (
                Message("must not be negative")
                if f.min_value == 0
                else Message("must be ≥ {low}", low=format(f.min_value, "g"))
            )
            checks.append((low, too_low))
            ok &= ~low
        return _typed(pd.Series(np.where(ok, numbers, np.nan)), f), missing, checks
    if f.type in (sch.CATEGORY, sch.BOOL):
        if f.type == sch.CATEGORY:
            choices = list(f.choices)
            table = {_norm(v): i for i, (c, sp) in enumerate(f.choices.items()) for v in (c, *sp)}
            expected = Message("unknown value; allowed: {allowed}", allowed=f.allowed_text())
        else:
            choices = [False, True]
            table = {**dict.fromkeys(_FALSE, 0), **dict.fromkeys(_TRUE, 1)}
            expected = Message("expected yes or no: 是/否, true/false, 1/0, Y/N")
        codes = _codes(series, table, len(choices))
        checks.append((codes == len(choices), expected))
        options = pd.array([*choices, None], dtype=_DTYPES.get(f.type, "str"))
        return _typed(pd.Series(options.take(codes % len(options))), f), codes == -1, checks
    text = _text(series)
    missing = text.isna().to_numpy()
    if f.type == sch.DATE:
        cleaned = text.str.replace(r"(\d)\s*[年月]\s*", r"\1-", regex=True).str.replace("日", "", regex=False)
        stamps = pd.to_datetime(cleaned, errors="coerce", format="mixed")
        checks.append((~missing & stamps.isna().to_numpy(), Message("not a date (e.g. 2024-05-31)")))
        return _typed(stamps, f), missing, checks
    return _typed(text, f), missing, checks


# ---------------------------------------------------------------- ids
def _check_ids(
    frame: pd.DataFrame, targets: dict[str, int], col: _Collector
) -> pd.arrays.ArrowStringArray | None:
    """The file's ids as strings (missing where blank); duplicates are reported."""
    if "id" not in targets:
        return None
    series = frame.iloc[:, targets["id"]]
    ids = _text(series)
    dup = duplicated(ids)
    if dup.any():
        rows_of: dict[str, list[int]] = {}
        for pos in np.flatnonzero(dup):
            rows_of.setdefault(ids.iat[pos], []).append(int(col.rows[pos]))
        expected = {
            p: Message("duplicate id; used in rows {rows}", rows=", ".join(map(str, rows_of[ids.iat[p]])))
            for p in np.flatnonzero(dup)
        }
        col.add(dup, str(frame.columns[targets["id"]]), series, expected)
    return ids.array


def duplicated(values: pd.Series) -> np.ndarray:
    """True for every non-missing string that occurs more than once (``duplicated(keep=False)``).

    Fast for the usual case of unique ids: only values whose :func:`stable_hash` repeats are
    compared exactly.
    """
    values = pd.Series(values).reset_index(drop=True)
    present = np.flatnonzero(values.notna().to_numpy())
    hashes = stable_hash(values.array)[present]
    out = np.zeros(len(values), dtype=bool)
    if _all_different(hashes):  # the usual case ends here
        return out
    suspects = present[pd.Series(hashes).duplicated(keep=False).to_numpy()]
    out[suspects[values.iloc[suspects].duplicated(keep=False).to_numpy()]] = True
    return out


def _all_different(hashes: np.ndarray) -> bool:
    """Whether no value repeats (sorting integers beats pandas' hash table about threefold)."""
    ordered = np.sort(hashes)
    return not (ordered[1:] == ordered[:-1]).any()


#: two lower-case hex digits of each byte value, as they lie in memory
_HEX_PAIRS = np.frombuffer("".join(f"{i:02x}" for i in range(256)).encode(), dtype=np.uint16)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(h: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser (uint64 arithmetic wraps)."""
    h = (h ^ (h >> np.uint64(30))) * _M1
    h = (h ^ (h >> np.uint64(27))) * _M2
    return h ^ (h >> np.uint64(31))


def stable_hash(values: object) -> np.ndarray:
    """A 64-bit hash of each string or bytes value (missing = empty), the same on every platform.

    Vectorised: the UTF-8 bytes are read 8 at a time (little-endian words, the last one
    zero-padded) and folded with the splitmix64 finaliser, seeded with the length.
    """
    arr = pc.fill_null(_arrow(values).cast(pa.large_binary()), b"")
    if isinstance(arr, pa.ChunkedArray):  # each chunk on its own: no copy into one buffer
        return np.concatenate([_hash_array(c) for c in arr.chunks] or [np.zeros(0, dtype=np.uint64)])
    return _hash_array(arr)


def _hash_array(arr: pa.Array) -> np.ndarray:
    """:func:`stable_hash` of one contiguous ``large_binary`` array without nulls."""
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    body = arr.buffers()[2]
    data = np.zeros(offsets[-1] + 8, dtype=np.uint8)
    if body is not None and offsets[-1] > 0:
        data[: offsets[-1]] = np.frombuffer(body, dtype=np.uint8)[: offsets[-1]]
    words = np.ndarray(shape=(len(data) - 7,), dtype="<u8", buffer=data, strides=(1,))
    starts, lens = offsets[:-1], np.diff(offsets)
    h = _mix(lens.astype(np.uint64) ^ np.uint64(0x9E3779B97F4A7C15))
    active = np.flatnonzero(lens > 0)
    k = 0
    while len(active):
        at: slice | np.ndarray = slice(None) if len(active) == len(lens) else active  # a slice is cheaper
        left = lens[at] - 8 * k
        word = words[starts[at] + 8 * k]
        if left.min() < 8:  # some values end inside this word: keep only their bytes
            shift = (np.uint64(8) * np.minimum(left, 8).astype(np.uint64)) % np.uint64(64)
            word &= np.where(left >= 8, ~np.uint64(0), (np.uint64(1) << shift) - np.uint64(1))
        h[at] = _mix(h[at] ^ word)
        k += 1
        active = active[left > 8]
    return h


def _ids(
    schema: sch.LayerSchema,
    given: pd.arrays.ArrowStringArray | None,
    names: object,
    lon: np.ndarray,
    lat: np.ndarray,
    wkb: np.ndarray | None,
) -> pd.arrays.ArrowStringArray:
    """The file's ids where given, else content ids (:func:`_content_ids`)."""
    if given is None:
        return _content_ids(schema, names, lon, lat, wkb)
    todo = np.flatnonzero(pd.isna(given))
    if not len(todo):
        return given
    ids = pd.Series(given)
    sub = None if wkb is None else wkb[todo]
    ids.iloc[todo] = _content_ids(schema, names[todo], lon[todo], lat[todo], sub)
    return ids.array


def _content_ids(
    schema: sch.LayerSchema, names: object, lon: np.ndarray, lat: np.ndarray, wkb: np.ndarray | None
) -> pd.arrays.ArrowStringArray:
    """``{id_prefix}-{12 hex digits}`` of the row content; ``-2``, ``-3`` … for repeats, in file order.

    The hash (:func:`stable_hash`) covers the lower-cased name, the WGS84 coordinates in
    millionths of a degree (the point, or the lower-left corner), the WKB of other geometries
    rounded to 1e-6°, and the kind, so that re-importing the same rows gives the same ids.
    """
    n = len(lon)
    h = stable_hash(pc.utf8_lower(_arrow(pd.array(names, dtype="str"))))
    for coord in (lon, lat):
        h = _mix(h ^ np.round(np.nan_to_num(coord) * 1e6).astype(np.int64).view(np.uint64))
    if wkb is not None:
        h = _mix(h ^ stable_hash(wkb))
    h = _mix(h ^ stable_hash([schema.kind])[0])
    prefix = np.frombuffer(f"{schema.id_prefix}-".encode(), dtype=np.uint8)
    chars = np.empty((n, len(prefix) + 12), dtype=np.uint8)
    chars[:, : len(prefix)] = prefix
    top = (h >> np.uint64(16)).astype(">u8").view(np.uint8).reshape(n, 8)[:, 2:]  # the high 48 bits
    chars[:, len(prefix) :] = _HEX_PAIRS[top].view(np.uint8).reshape(n, 12)
    offsets = pa.py_buffer(np.arange(n + 1, dtype=np.int64) * chars.shape[1])
    arrow = pa.Array.from_buffers(pa.large_string(), n, [None, offsets, pa.py_buffer(chars)])
    made = pd.Series(pd.array(arrow, dtype="str"))
    if _all_different(h):
        return made.array
    repeat = np.flatnonzero(pd.Series(h).duplicated().to_numpy())
    if len(repeat):
        rank = pd.Series(h[repeat]).groupby(h[repeat]).cumcount().to_numpy() + 2
        made.iloc[repeat] = [f"{made.iat[p]}-{r}" for p, r in zip(repeat, rank, strict=True)]
    return made.array


# ---------------------------------------------------------------- rejected rows
def _reason(p: Problem) -> str:
    return p.expected if p.field is None else f"{p.field} = {p.value!r}: {p.expected}"


def _with_reasons(frame: pd.DataFrame, rows: np.ndarray, reasons: list[str]) -> pd.DataFrame:
    out = frame.copy()
    out.insert(0, "reason", reasons, allow_duplicates=True)
    out.insert(0, "row", rows, allow_duplicates=True)
    return out


def _rejected(raw: RawTable, col: _Collector, good: np.ndarray) -> pd.DataFrame:
    bad = np.flatnonzero(~good)
    file_reason = "; ".join(p.expected for p in col.file)
    reasons: dict[int, list[str]] = {}
    for pos, _, p in sorted(col.by_row, key=lambda t: t[:2]):
        reasons.setdefault(pos, []).append(_reason(p))
    texts = ["; ".join(reasons[p]) if p in reasons else file_reason for p in bad]
    taken = raw.frame.iloc[bad] if len(bad) else raw.frame.iloc[:0]  # taking no row is slow for strings
    return _with_reasons(taken, col.rows[bad], texts)


# ---------------------------------------------------------------- geometry
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


class _Geometry:
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
        self.family = np.ones(n, dtype=np.int8)  # codes of _FAMILIES
        self.bounds = np.full((n, 4), np.nan)
        self.usable = np.zeros(n, dtype=bool)
        self.field = "geometry"
        if raw.has_geometry:
            source = raw.frame["geometry"]
            self._shapes(np.asarray(source.array, dtype=object), source, schema, col, report_missing=True)
        elif "_wkt" in targets:
            self.field = headers["_wkt"]
            source = raw.frame.iloc[:, targets["_wkt"]]
            text = _text(source).to_numpy(dtype=object, na_value=None)
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
                numbers, missing, not_number = _numbers(series)
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
        accepted = np.isin(self.family, [_FAMILIES.index(g) for g in schema.geometry])
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
