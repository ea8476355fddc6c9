"""The SQL side of the workspace store: civicmap's own tables and the statements on them.

Used by :mod:`layers.store` only; see its docstring for what the tables hold.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime

import geopandas as gpd
import numpy as np
import pandas as pd
from geopandas.array import GeometryDtype

from layers import gpkg_view
from layers import schema as sch
from layers.errors import CRSError, WorkspaceError
from layers.gpkg_view import GEOM_COLUMN
from layers.ids import duplicated

RESERVED_COLUMNS = frozenset({"fid", GEOM_COLUMN})  # would clash in a published feature table
TABLE_RE = re.compile(r"^([a-z_]+?)__v([0-9]+)$")
META_DDL = (
    """CREATE TABLE IF NOT EXISTS civicmap_layers (
        kind TEXT NOT NULL, version INTEGER NOT NULL, table_name TEXT NOT NULL UNIQUE,
        row_count INTEGER NOT NULL, columns TEXT NOT NULL, written_at TEXT NOT NULL,
        PRIMARY KEY (kind, version))""",
    "CREATE TABLE IF NOT EXISTS civicmap_current (kind TEXT PRIMARY KEY, version INTEGER NOT NULL)",
    """CREATE TABLE IF NOT EXISTS civicmap_history (
        id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, version INTEGER NOT NULL,
        user TEXT NOT NULL, at TEXT NOT NULL, file_name TEXT NOT NULL, file_sha256 TEXT NOT NULL,
        crs TEXT NOT NULL, rows_read INTEGER NOT NULL, rows_imported INTEGER NOT NULL,
        rows_rejected INTEGER NOT NULL, action TEXT NOT NULL CHECK (action IN ('import', 'restore')),
        note TEXT NOT NULL DEFAULT '')""",
    "CREATE INDEX IF NOT EXISTS civicmap_history_kind ON civicmap_history (kind, id)",
    """CREATE TABLE IF NOT EXISTS civicmap_layer_data (
        kind TEXT NOT NULL, version INTEGER NOT NULL, part INTEGER NOT NULL, data BLOB NOT NULL,
        whole INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (kind, version, part))""",
    """CREATE TABLE IF NOT EXISTS civicmap_published (
        kind TEXT PRIMARY KEY, version INTEGER NOT NULL, published_at TEXT NOT NULL)""",
)
HISTORY_COLUMNS = (
    "id, kind, version, user, at, file_name, file_sha256, crs, rows_read, rows_imported, "
    "rows_rejected, action, note"
)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def create_meta(con: sqlite3.Connection) -> None:
    """civicmap's tables, and the columns later versions added to them; only while holding the lock."""
    con.execute("BEGIN IMMEDIATE")
    for ddl in META_DDL:
        con.execute(ddl)
    if not meta_is_current(con):  # parts written before chunked blobs are byte pieces of one file
        con.execute("ALTER TABLE civicmap_layer_data ADD COLUMN whole INTEGER NOT NULL DEFAULT 0")
    con.execute("COMMIT")


def meta_is_current(con: sqlite3.Connection) -> bool:
    """Whether civicmap's tables exist with every column this version writes."""
    have = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not {"civicmap_current", "civicmap_layer_data", "civicmap_published"} <= have:
        return False
    return "whole" in {r[1] for r in con.execute("PRAGMA table_info(civicmap_layer_data)")}


def next_version(con: sqlite3.Connection, kind: str) -> int:
    """One more than any version of ``kind`` ever recorded or still lying around."""
    used = [r[0] for r in con.execute("SELECT MAX(version) FROM civicmap_history WHERE kind = ?", (kind,))]
    used += [
        r[0] for r in con.execute("SELECT MAX(version) FROM civicmap_layer_data WHERE kind = ?", (kind,))
    ]
    used += [
        int(m.group(2))
        for m in map(TABLE_RE.match, gpkg_view.feature_tables(con))
        if m and m.group(1) == kind
    ]
    return max([v for v in used if v is not None], default=0) + 1


def orphans(con: sqlite3.Connection) -> list[str]:
    """Older-format version tables no ``civicmap_layers`` row points to (an interrupted import)."""
    known = {r[0] for r in con.execute("SELECT table_name FROM civicmap_layers")}
    return sorted(
        t
        for t in gpkg_view.feature_tables(con)
        if (m := TABLE_RE.match(t)) and m.group(1) in sch.SCHEMAS and t not in known
    )


def layer_row(con: sqlite3.Connection, kind: str, version: int | None) -> tuple[int, str, str] | None:
    """(version, table name, columns JSON) of the current or the given version of ``kind``."""
    if version is None:
        sql = "SELECT l.version, l.table_name, l.columns FROM civicmap_layers l JOIN civicmap_current c "
        sql += "ON c.kind = l.kind AND c.version = l.version WHERE l.kind = ?"
        return con.execute(sql, (kind,)).fetchone()
    if isinstance(version, bool) or not isinstance(version, int | np.integer):
        raise WorkspaceError(f"version = {version!r}: expected an integer")
    sql = "SELECT version, table_name, columns FROM civicmap_layers WHERE kind = ? AND version = ?"
    return con.execute(sql, (kind, int(version))).fetchone()


def parts(con: sqlite3.Connection, kind: str, version: int) -> tuple[list[bytes], bool]:
    """The blob parts of a version in order (empty for a version of the older format), and whether
    each is a whole GeoParquet file (else they are byte pieces of one file)."""
    sql = "SELECT data, whole FROM civicmap_layer_data WHERE kind = ? AND version = ? ORDER BY part"
    rows = con.execute(sql, (kind, int(version))).fetchall()
    return [r[0] for r in rows], all(r[1] for r in rows)


def record(
    con: sqlite3.Connection,
    kind: str,
    version: int,
    user: str,
    file_name: str,
    sha256: str,
    crs: str,
    counts: tuple[int, int, int],
    action: str,
    note: str,
) -> None:
    con.execute(
        "INSERT INTO civicmap_history (kind, version, user, at, file_name, file_sha256, crs, rows_read, "
        "rows_imported, rows_rejected, action, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (kind, version, str(user), now(), str(file_name), str(sha256), str(crs), *map(int, counts), action,
         note),
    )  # fmt: skip
    con.execute("INSERT OR REPLACE INTO civicmap_current (kind, version) VALUES (?, ?)", (kind, version))


def checked_frame(kind: str, gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    geometry_columns = [c for c, t in getattr(gdf, "dtypes", {}).items() if isinstance(t, GeometryDtype)]
    if (
        not isinstance(gdf, gpd.GeoDataFrame)
        or len(geometry_columns) != 1
        or gdf.active_geometry_name is None
    ):
        raise WorkspaceError(
            f"{kind}: expected a GeoDataFrame with one active geometry column, got {type(gdf).__name__} "
            f"with geometry columns {geometry_columns}"
        )
    if gdf.crs is None or not (gdf.crs.to_epsg() == 4326 or gdf.crs.equals("OGC:CRS84")):
        raise CRSError(f"{kind}: layers are stored in EPSG:4326 (WGS84), got {gdf.crs}")
    check_attributes(kind, gdf)
    if gdf.crs.to_epsg() != 4326:
        gdf = gdf.set_crs("EPSG:4326", allow_override=True)
    return gdf


def check_attributes(kind: str, frame: pd.DataFrame) -> None:
    """Column names unique ignoring case and not reserved; an ``id`` column, unique and never missing."""
    names = [str(c) for c in frame.columns]
    lowered = [n.lower() for n in names]
    bad = sorted({n for n in names if n.lower() in RESERVED_COLUMNS or lowered.count(n.lower()) > 1})
    if bad:
        raise WorkspaceError(
            f"{kind}: column(s) {', '.join(bad)}: names must be unique ignoring case and not {sorted(RESERVED_COLUMNS)}"
        )
    if "id" not in frame.columns:
        raise WorkspaceError(f"{kind}: the layer has no 'id' column")
    ids = frame["id"]
    missing = ids.isna().to_numpy()
    repeated = (
        duplicated(ids) if isinstance(ids.dtype, pd.StringDtype) else ids.duplicated(keep=False).to_numpy()
    )
    if missing.any() or repeated.any():
        dupes = ids[repeated | missing].unique()[:5].tolist()
        raise WorkspaceError(f"{kind}: 'id' must be unique and not missing; offending values: {dupes}")
