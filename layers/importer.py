"""Import a bureau's file into a workspace: read → validate → check parents → store.

One path for every caller (CLI, web upload, demo loader).  By default an import with
any problem changes nothing and raises :class:`~layers.errors.LayerError` listing every
problem.  With ``partial=True`` the valid rows are stored and the rejected rows are
written, with their reasons, to ``<file>.rejected.csv`` next to the input, so that no
row vanishes without a trace.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from geo.crs import parse_crs
from layers.errors import LayerError, Message, Problem
from layers.readers import read_table
from layers.schema import VENUE_KINDS, get_schema
from layers.store import Workspace
from layers.validate import ValidationResult, check_parents, validate_table

log = logging.getLogger(__name__)

#: phases reported to a progress callback, in order
PHASES = ("read", "validate", "store")


@dataclass
class ImportReport:
    """What an import (or a dry run) did, for the CLI, the web page and the history."""

    kind: str
    source: str
    sha256: str
    rows_read: int
    rows_valid: int
    problems: list[Problem] = field(default_factory=list)
    version: int | None = None
    rejected_path: Path | None = None
    crs: str | None = None
    encoding: str | None = None

    @property
    def rows_rejected(self) -> int:
        return self.rows_read - self.rows_valid

    def summary(self) -> str:
        text = f"{self.source}: {self.rows_read} row(s) read, {self.rows_valid} valid, {self.rows_rejected} rejected"
        if self.version is not None:
            text += f"; stored as {self.kind} version {self.version}"
        if self.rejected_path is not None:
            text += f"; rejected rows written to {self.rejected_path}"
        return text


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def parent_ids(workspace: Workspace, kind: str, valid: pd.DataFrame) -> dict[str, set[str]]:
    """Ids of the parents a child layer may point at, keyed by parent kind."""
    schema = get_schema(kind)
    if schema.parent is None:
        return {}
    _, parent_kind = schema.parent
    if parent_kind == "venues":
        kinds = sorted(set(valid.get("venue_kind", pd.Series(dtype=str)).dropna())) or list(VENUE_KINDS)
        return {k: workspace.ids(k) for k in kinds}
    return {parent_kind: workspace.ids(parent_kind)}


def _parent_problems(workspace: Workspace, kind: str, result: ValidationResult, source: str) -> list[Problem]:
    schema = get_schema(kind)
    if schema.parent is None or result.valid.empty:
        return []
    parents = parent_ids(workspace, kind, result.valid)
    if schema.parent[1] != "venues":
        return check_parents(result.valid, next(iter(parents.values())), source=source)
    problems: list[Problem] = []
    for venue_kind, ids in parents.items():
        subset = result.valid[result.valid["venue_kind"] == venue_kind]
        problems += check_parents(subset, ids, source=source)
    return problems


def validate_file(
    path: str | Path,
    kind: str,
    *,
    crs: str | None = None,
    workspace: Workspace | None = None,
    layer: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[ValidationResult, ImportReport]:
    """Read and validate ``path`` as ``kind`` without storing anything.

    Parent references (gates → schools, doors → venues) are checked when a workspace is given.
    """
    path = Path(path)
    get_schema(kind)
    if crs is not None:
        parse_crs(crs)  # refuse a bad CRS before reading a large file
    step = progress or (lambda phase: None)
    step("read")
    raw = read_table(path, layer=layer)
    step("validate")
    result = validate_table(raw, kind, crs=crs)
    problems = list(result.problems)
    if workspace is not None:
        extra = _parent_problems(workspace, kind, result, raw.source)
        if extra:
            problems += extra
            result = result.reject(extra)
    report = ImportReport(
        kind=kind,
        source=raw.source,
        sha256=file_sha256(path),
        rows_read=len(result.valid_rows) + len(result.rejected),
        rows_valid=len(result.valid_rows),
        problems=problems,
        crs=str(result.crs) if result.crs is not None else None,
        encoding=raw.encoding,
    )
    return result, report


def import_file(
    workspace: Workspace,
    kind: str,
    path: str | Path,
    *,
    crs: str | None = None,
    user: str,
    partial: bool = False,
    layer: str | None = None,
    progress: Callable[[str], None] | None = None,
    describe: Callable[[Problem], str] | None = None,
) -> ImportReport:
    """Validate ``path`` and store it as the new current version of ``kind``.

    Parameters
    ----------
    workspace
        The target workspace.
    kind
        A layer kind from :data:`layers.schema.KINDS`.
    path
        GeoJSON, GeoPackage, Shapefile (or zipped), GeoParquet, CSV or XLSX.
    crs
        Datum of the file's coordinates when the file does not declare one.
    user
        Who imports (recorded in the history).
    partial
        Store the valid rows even when some rows are rejected; rejected rows go to
        ``<file>.rejected.csv``.
    describe
        How the rejected-rows file words one problem (the web passes the user's language);
        by default ``field = value: expected`` in English.

    Raises
    ------
    LayerError
        With every problem, when the file has problems and ``partial`` is false, or when
        no row is valid.
    """
    path = Path(path)
    result, report = validate_file(path, kind, crs=crs, workspace=workspace, layer=layer, progress=progress)
    if report.problems and not partial:
        raise LayerError(report.problems)
    if report.rows_valid == 0:
        raise LayerError(
            report.problems or [Problem(report.source, None, None, None, Message("the file has no rows"))]
        )
    if report.problems:
        report.rejected_path = _write_rejected(result.rejected, path, report.problems, describe)
    if progress:
        progress("store")
    report.version = workspace.write(
        kind,
        result.valid_rows,  # a point layer from coordinate columns stays without shapely points
        user=user,
        source_name=report.source,
        source_sha256=report.sha256,
        crs=report.crs or "",
        rows_read=report.rows_read,
        rows_rejected=report.rows_rejected,
    )
    log.info("%s", report.summary())
    return report


def _write_rejected(
    rejected: pd.DataFrame, path: Path, problems: list[Problem], describe: Callable[[Problem], str] | None
) -> Path:
    """Write rejected rows with their reasons next to the input (UTF-8 with BOM for Excel)."""
    target = path.with_name(path.stem + ".rejected.csv")
    frame = rejected.copy()
    if describe is not None:  # the reasons worded anew; file-level problems apply to every row
        everywhere = [describe(p) for p in problems if p.row is None]
        by_row: dict[int, list[str]] = {}
        for p in problems:
            if p.row is not None:
                by_row.setdefault(p.row, []).append(describe(p))
        frame["reason"] = ["; ".join(by_row.get(int(row), everywhere)) for row in frame["row"]]
    if "geometry" in frame.columns:
        frame["geometry"] = [g.wkt if g is not None and hasattr(g, "wkt") else g for g in frame["geometry"]]
    frame.to_csv(target, index=False, encoding="utf-8-sig")
    return target
