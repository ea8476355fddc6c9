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

This module maps headers, resolves the CRS, collects problems and assembles the result; the
work per column is in :mod:`layers.cells` (text, numbers, categories, dates), ids in
:mod:`layers.ids` (duplicates, content ids) and geometry in :mod:`layers.validate_geometry`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.crs import Datum, parse_crs
from layers import schema as sch
from layers.cells import constant_values, convert_column, norm, plain_value, text_values
from layers.errors import CRSError, LayerError, Message, Problem
from layers.ids import content_ids, duplicated
from layers.layer_blob import PointRows
from layers.readers import RawTable
from layers.validate_geometry import CHINA_BBOX, FAMILIES, GeometryChecks

__all__ = ["CHINA_BBOX", "ValidationResult", "check_parents", "validate_table"]

logger = logging.getLogger(__name__)

#: output columns computed here; input columns of these names are ignored
_DERIVED = ("approximate", "source_row")


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
            problem = Problem(self.source, int(self.rows[pos]), name, plain_value(value), text)
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
            values[f.name] = constant_values(f, n)
            continue
        series = frame.iloc[:, targets[f.name]]
        converted, missing, checks = convert_column(series, f)
        for mask, expected in checks:
            col.add(mask, headers[f.name], series, expected)
        if f.required:
            col.add(missing, headers[f.name], series, Message("required value missing"))
        values[f.name] = converted
    given_ids = _check_ids(frame, targets, col)
    geom = GeometryChecks(raw, schema, targets, headers, datum, col)

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
        data["approximate"] = pick(geom.family) != FAMILIES.index(schema.preferred_geometry)
    data["source_row"] = pick(rows)
    for name, pos in extras.items():
        data[name] = pick(text_values(frame.iloc[:, pos]).array)
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


# ---------------------------------------------------------------- headers and CRS
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
        lookup.setdefault(norm(spelling), target)

    targets: dict[str, int] = {}
    extras: dict[str, int] = {}
    for pos, header in enumerate(raw.frame.columns):
        if raw.has_geometry and header == "geometry":
            continue
        target = lookup.get(norm(header))
        if raw.has_geometry and target in ("_lon", "_lat", "_wkt"):
            target = None  # the file's own geometry wins; such columns are kept as extras
        if target is None and norm(header) in _DERIVED:
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


# ---------------------------------------------------------------- ids
def _check_ids(
    frame: pd.DataFrame, targets: dict[str, int], col: _Collector
) -> pd.arrays.ArrowStringArray | None:
    """The file's ids as strings (missing where blank); duplicates are reported."""
    if "id" not in targets:
        return None
    series = frame.iloc[:, targets["id"]]
    ids = text_values(series)
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


def _ids(
    schema: sch.LayerSchema,
    given: pd.arrays.ArrowStringArray | None,
    names: object,
    lon: np.ndarray,
    lat: np.ndarray,
    wkb: np.ndarray | None,
) -> pd.arrays.ArrowStringArray:
    """The file's ids where given, else content ids (:func:`content_ids`)."""
    if given is None:
        return content_ids(schema, names, lon, lat, wkb)
    todo = np.flatnonzero(pd.isna(given))
    if not len(todo):
        return given
    ids = pd.Series(given)
    sub = None if wkb is None else wkb[todo]
    ids.iloc[todo] = content_ids(schema, names[todo], lon[todo], lat[todo], sub)
    return ids.array


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
