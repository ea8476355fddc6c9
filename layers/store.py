"""The workspace store: every layer of a bureau, versioned, in one GeoPackage.

A workspace is a folder holding ``civicmap.gpkg`` (openable in QGIS) and a lock file.
Each import of a kind writes a new table ``<kind>__v<N>`` with pyogrio; civicmap's own
tables in the same SQLite file say which versions exist (``civicmap_layers``), which
one is current (``civicmap_current``) and who imported what (``civicmap_history``).
Other modules may add their own tables through :meth:`Workspace.sqlite`.  A layer
reads back with the columns, order and dtypes it was written with (datetimes to the
millisecond, the GeoPackage's precision); the index is not stored.

Crash safety
------------
The database runs in WAL mode.  An import (1) writes the new table in one GDAL
transaction, then (2) registers it, moves the current-version pointer and appends the
history row in one SQLite transaction, then (3) drops versions beyond the kept number.
A process killed during (1) leaves uncommitted WAL frames that SQLite ignores, or a
committed table nobody points to: an *orphan*, dropped by the next writer or the next
:meth:`Workspace.open`.  A kill during (2) rolls back; during (3) leaves extra old
versions, pruned next time.  Writers are serialised by a ``flock`` lock file, released
by the kernel when its holder dies; readers never take it and, in WAL mode, read the
last committed state while a writer works.  GDAL writes with ``synchronous=NORMAL``,
which in WAL mode survives a killed process and even a power cut without corruption.

pyogrio's GDAL carries its own copy of SQLite, different from Python's ``sqlite3``.
Two copies must never have the file open at once in one process (closing it in one
silently drops the other's POSIX locks, see :class:`_LibraryGate`), so every access
goes through a process-wide gate: never open the workspace file any other way.

Speed
-----
GDAL's own spatial index costs more than writing the rows (it builds a temporary
R-tree database, then copies it).  The store writes the table without it and then
bulk-loads the GeoPackage R-tree (the ``gpkg_rtree_index`` extension) itself from the
bounds already in memory, packed Sort-Tile-Recursive, inside transaction (2).

Table names are only ever built from validated kind names and integers.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import filelock
import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyogrio
import shapely
from geopandas.array import GeometryDtype

from layers import schema as sch
from layers.errors import CRSError, WorkspaceError

log = logging.getLogger(__name__)

ENV_VAR = "CIVICMAP_WORKSPACE"
GPKG_NAME = "civicmap.gpkg"
LOCK_NAME = ".civicmap.lock"
KEEP_VERSIONS = 10
LOCK_TIMEOUT_S = 60.0
BUSY_TIMEOUT_S = 60.0
GEOM_COLUMN = "geom"  # geometry column inside the GeoPackage
RESERVED_COLUMNS = frozenset({"fid", GEOM_COLUMN})
#: GDAL settings while a table is written (see the module docstring)
GDAL_WRITE_OPTIONS = {"OGR_SQLITE_SYNCHRONOUS": "NORMAL", "OGR_SQLITE_CACHE": "256"}
#: stored dtypes of the schema's field types (an empty layer has these)
FIELD_DTYPES = {sch.INT: "Int64", sch.FLOAT: "float64", sch.BOOL: "boolean", sch.DATE: "datetime64[us]"}

#: test seam: called with the table name after it is written, before it is registered
_before_commit: Callable[[str], None] | None = None

_TABLE_RE = re.compile(r"^([a-z_]+?)__v([0-9]+)$")
_META_DDL = (
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
)
_HISTORY_COLUMNS = (
    "id, kind, version, user, at, file_name, file_sha256, crs, rows_read, rows_imported, "
    "rows_rejected, action, note"
)


@dataclass(frozen=True)
class ImportRecord:
    """One row of the import history: an import, or a restore of an earlier version.

    ``at`` is ISO-8601 UTC (``2026-03-01T08:15:02+00:00``).  A restore repeats the file,
    hash, CRS and counts of the import that made ``version``.
    """

    id: int
    kind: str
    version: int
    user: str
    at: str
    file_name: str
    file_sha256: str
    crs: str
    rows_read: int
    rows_imported: int
    rows_rejected: int
    action: str
    note: str


def empty_layer(kind: str) -> gpd.GeoDataFrame:
    """An empty layer of ``kind``: ``id``, the schema's fields, ``approximate`` where declared, ``geometry``.

    Dtypes: str / category fields ``str``, int ``Int64``, float ``float64``, bool
    ``boolean``, date ``datetime64[us]``; ``approximate`` is ``bool``.  CRS EPSG:4326.
    """
    schema = sch.get_schema(kind)
    columns = {"id": pd.Series(dtype="str")}
    for f in schema.fields:
        columns[f.name] = pd.Series(dtype=FIELD_DTYPES.get(f.type, "str"))
    if schema.preferred_geometry is not None:
        columns["approximate"] = pd.Series(dtype="bool")
    return gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries([], crs="EPSG:4326"), crs="EPSG:4326")


class Workspace:
    """A workspace folder; cheap to open, safe to use from several threads and processes.

    Use :meth:`open`.  Every method opens its own short-lived SQLite connection.
    """

    def __init__(self, path: Path, *, keep_versions: int, lock_timeout_s: float, spatial_index: bool):
        self.path = path
        self.gpkg_path = path / GPKG_NAME
        self.keep_versions = keep_versions
        self.lock_timeout_s = lock_timeout_s
        self.spatial_index = spatial_index

    def __repr__(self) -> str:
        return f"Workspace({str(self.path)!r})"

    # ------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        create: bool = False,
        keep_versions: int = KEEP_VERSIONS,
        lock_timeout_s: float = LOCK_TIMEOUT_S,
        spatial_index: bool = True,
    ) -> Workspace:
        """Open the workspace folder ``path`` (default: ``$CIVICMAP_WORKSPACE``).

        Parameters
        ----------
        path
            The folder holding ``civicmap.gpkg``.
        create
            Create the folder and an empty GeoPackage when missing.
        keep_versions
            Versions kept per kind (the newest ones; the current one is always kept).
        lock_timeout_s
            How long an import or restore waits for another one to finish.
        spatial_index
            Give every stored table a GeoPackage R-tree (for QGIS; civicmap itself reads whole layers).

        Raises
        ------
        WorkspaceError
            When no path is given, the workspace is missing and ``create`` is false,
            or a setting is invalid.
        """
        if path is None:
            path = os.environ.get(ENV_VAR) or None
        if path is None:
            raise WorkspaceError(f"no workspace given: pass a folder or set {ENV_VAR}")
        if isinstance(keep_versions, bool) or not isinstance(keep_versions, int) or keep_versions < 1:
            raise WorkspaceError(f"keep_versions = {keep_versions!r}: expected an integer >= 1")
        ws = cls(
            Path(path),
            keep_versions=keep_versions,
            lock_timeout_s=lock_timeout_s,
            spatial_index=spatial_index,
        )
        if not ws.gpkg_path.is_file():
            if not create:
                raise WorkspaceError(f"workspace {ws.path} not found: no {GPKG_NAME} in that folder")
            ws._create()
        ws._prepare()
        return ws

    def _create(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise WorkspaceError(f"workspace {self.path} is a file, expected a folder")
        self.path.mkdir(parents=True, exist_ok=True)
        with self._locked():
            if self.gpkg_path.is_file():  # created meanwhile by another process
                return
            tmp = self.path / "civicmap.creating.gpkg"
            for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm"), Path(f"{tmp}-journal")):
                leftover.unlink(missing_ok=True)
            info = pd.DataFrame({"key": ["format", "created_at"], "value": ["1", _now()]}, dtype="str")
            with _GATE.enter(_GDAL):
                pyogrio.write_dataframe(info, tmp, layer="civicmap_workspace", driver="GPKG")
            with _GATE.enter(_SQLITE3), closing(sqlite3.connect(tmp, isolation_level=None)) as con:
                con.execute("PRAGMA journal_mode = WAL")
                _create_meta(con)
            os.replace(tmp, self.gpkg_path)
            log.info("created workspace %s", self.path)

    # ------------------------------------------------------------ connections and the lock
    def _uri(self) -> str:
        """The database as a URI that never creates a missing file."""
        return f"file:{urllib.parse.quote(str(self.gpkg_path.resolve()))}?mode=rw"

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """An autocommit connection (transactions are explicit), closed afterwards."""
        with _GATE.enter(_SQLITE3):
            con = sqlite3.connect(self._uri(), uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            try:
                yield con
            finally:
                con.close()

    @contextmanager
    def sqlite(self) -> Iterator[sqlite3.Connection]:
        """A connection to the workspace database, for other modules' own tables.

        Commits when the block ends, rolls back when it raises, then closes.  Do not
        create tables named ``<kind>__v<N>``, ``gpkg_*``, ``rtree_*`` or ``civicmap_*``.
        Keep the block short and never open the workspace file any other way: while it
        runs, this process's layer reads and imports wait (see :class:`_LibraryGate`).
        """
        with _GATE.enter(_SQLITE3):
            con = sqlite3.connect(self._uri(), uri=True, timeout=BUSY_TIMEOUT_S)
            try:
                yield con
                con.commit()
            except BaseException:
                con.rollback()
                raise
            finally:
                con.close()

    @contextmanager
    def _locked(self, timeout_s: float | None = None) -> Iterator[None]:
        """Hold the writers' lock file (``flock``: a killed holder releases it at once)."""
        timeout_s = self.lock_timeout_s if timeout_s is None else timeout_s
        lock = filelock.FileLock(self.path / LOCK_NAME, timeout=timeout_s)
        try:
            lock.acquire()
        except filelock.Timeout:
            raise WorkspaceError(
                f"workspace {self.path} is busy: another import is running "
                f"(waited {timeout_s:g} s); try again later"
            ) from None
        try:
            yield
        finally:
            lock.release()

    @contextmanager
    def _writer(self) -> Iterator[sqlite3.Connection]:
        """The lock, and a connection on a workspace without orphans."""
        with self._locked(), self._connection() as con:
            self._drop_orphans(con)
            yield con

    def _drop_orphans_locked(self) -> None:
        with self._connection() as con:
            self._drop_orphans(con)

    def _prepare(self) -> None:
        """Add civicmap's tables to a GeoPackage made elsewhere; drop orphans unless a writer is busy."""
        try:
            with self._connection() as con:
                if (
                    con.execute("SELECT 1 FROM sqlite_master WHERE name = 'civicmap_current'").fetchone()
                    is None
                ):
                    with self._locked():
                        _create_meta(con)
                if _orphans(con):
                    try:
                        with self._locked(timeout_s=0):
                            self._drop_orphans(con)
                    except WorkspaceError:  # a writer is at work; it drops orphans itself
                        pass
        except sqlite3.DatabaseError as exc:
            raise WorkspaceError(
                f"workspace {self.path}: {GPKG_NAME} is not a readable GeoPackage ({exc})"
            ) from exc

    def _drop_orphans(self, con: sqlite3.Connection) -> None:
        """Drop the tables of interrupted imports; only while holding the lock."""
        for table in _orphans(con):
            log.warning("workspace %s: dropping %s, left by an interrupted import", self.path, table)
            con.execute("BEGIN IMMEDIATE")
            _drop_table(con, table)
            con.execute("COMMIT")

    # ------------------------------------------------------------ reading
    def current_versions(self) -> dict[str, int]:
        """The current version of every kind imported at least once."""
        with self._connection() as con:
            return dict(con.execute("SELECT kind, version FROM civicmap_current ORDER BY kind"))

    def versions(self, kind: str) -> list[int]:
        """The stored (restorable) versions of ``kind``, ascending."""
        sch.get_schema(kind)
        with self._connection() as con:
            rows = con.execute("SELECT version FROM civicmap_layers WHERE kind = ? ORDER BY version", (kind,))
            return [r[0] for r in rows]

    def counts(self) -> dict[str, int]:
        """Rows in the current version of every kind (0 for kinds never imported)."""
        counts = dict.fromkeys(sch.KINDS, 0)
        with self._connection() as con:
            rows = con.execute(
                "SELECT l.kind, l.row_count FROM civicmap_layers l "
                "JOIN civicmap_current c ON c.kind = l.kind AND c.version = l.version"
            )
            counts.update(dict(rows))
        return counts

    def ids(self, kind: str) -> set[str]:
        """The ``id`` values of the current version of ``kind`` (empty when never imported)."""
        sch.get_schema(kind)
        with self._connection() as con:
            con.execute("BEGIN")  # one snapshot for both statements
            row = _layer_row(con, kind, None)
            ids = set() if row is None else {r[0] for r in con.execute(f'SELECT "id" FROM "{row[0]}"')}
            con.execute("COMMIT")
        return ids

    def read_all(self) -> dict[str, gpd.GeoDataFrame]:
        """Every kind holding rows, as :meth:`read` returns it (the input of an analysis)."""
        return {kind: self.read(kind) for kind, count in self.counts().items() if count}

    def read(self, kind: str, *, version: int | None = None) -> gpd.GeoDataFrame:
        """The current (or the given) version of ``kind`` in EPSG:4326.

        Columns, their order and dtypes are those written; the index is a fresh
        RangeIndex.  A kind never imported gives :func:`empty_layer`.

        Raises
        ------
        WorkspaceError
            When ``version`` is not stored (never imported, or pruned).
        """
        sch.get_schema(kind)
        for attempt in range(3):
            with self._connection() as con:
                row = _layer_row(con, kind, version)
                if row is None and version is not None:
                    stored = ", ".join(map(str, self.versions(kind))) or "none"
                    raise WorkspaceError(
                        f"{kind} version {version} is not stored in workspace {self.path}; stored versions: {stored}"
                    )
            if row is None:
                return empty_layer(kind)
            table, columns = row[0], json.loads(row[1])
            try:
                with _GATE.enter(_GDAL):
                    frame = pyogrio.read_dataframe(
                        self.gpkg_path,
                        layer=table,
                        use_arrow=True,
                        arrow_to_pandas_kwargs={"types_mapper": _ARROW_NULLABLE.get},
                    )
            except pyogrio.errors.DataLayerError as exc:
                if version is None and attempt < 2:  # pruned by a writer after we looked: look again
                    continue
                raise WorkspaceError(f"{kind}: {table} vanished while being read ({exc})") from exc
            return _restore_columns(frame, columns)
        raise AssertionError("unreachable")  # pragma: no cover

    def history(self, kind: str | None = None) -> list[ImportRecord]:
        """Imports and restores, newest first; all kinds, or only ``kind``."""
        sql = f"SELECT {_HISTORY_COLUMNS} FROM civicmap_history"
        params: tuple = ()
        if kind is not None:
            sch.get_schema(kind)
            sql, params = sql + " WHERE kind = ?", (kind,)
        with self._connection() as con:
            return [ImportRecord(*r) for r in con.execute(sql + " ORDER BY id DESC", params)]

    # ------------------------------------------------------------ writing
    def write(
        self,
        kind: str,
        gdf: gpd.GeoDataFrame,
        *,
        user: str,
        source_name: str,
        source_sha256: str,
        crs: str,
        rows_read: int,
        rows_rejected: int,
        note: str = "",
    ) -> int:
        """Store ``gdf`` as the new current version of ``kind`` and record it in the history.

        Parameters
        ----------
        kind
            A layer kind of :data:`layers.schema.KINDS`.
        gdf
            The layer in EPSG:4326 with a unique, non-missing ``id`` column; stored as
            given (columns, order, dtypes), without its index.
        user, source_name, source_sha256, crs, rows_read, rows_rejected, note
            For the history: who, which file (name and SHA-256), the CRS the user gave,
            rows read and rejected; ``rows_imported`` is ``len(gdf)``.

        Returns
        -------
        int
            The new version number.

        Raises
        ------
        WorkspaceError
            When another import holds the workspace longer than ``lock_timeout_s``, or
            ``gdf`` breaks the rules above.
        CRSError
            When ``gdf`` is not in EPSG:4326.
        """
        schema = sch.get_schema(kind)
        gdf = _checked_frame(kind, gdf)
        columns = [[str(c), str(t)] for c, t in gdf.dtypes.items()]
        started = time.perf_counter()
        with self._locked():
            with self._connection() as con:
                self._drop_orphans(con)
                version = _next_version(con, kind)
            table = f"{kind}__v{version}"
            try:
                with (
                    _gdal_write_options(),
                    _GATE.enter(_GDAL),
                    _as_workspace_error(f"{kind}: cannot write {table} to {self.gpkg_path}"),
                ):
                    pyogrio.write_dataframe(
                        gdf,
                        self.gpkg_path,
                        layer=table,
                        driver="GPKG",
                        append=True,
                        use_arrow=True,
                        promote_to_multi=False,
                        layer_options={
                            "SPATIAL_INDEX": "NO",
                            "GEOMETRY_NAME": GEOM_COLUMN,
                            "DESCRIPTION": f"{schema.label_zh} {schema.label_en} v{version}",
                        },
                    )
                written = time.perf_counter()
                if _before_commit is not None:
                    _before_commit(table)
                with self._connection() as con:
                    con.execute("BEGIN IMMEDIATE")
                    _check_written(con, table, len(gdf))
                    if self.spatial_index:
                        _build_rtree(con, table, shapely.bounds(np.asarray(gdf.geometry.array)))
                    con.execute(
                        "INSERT INTO civicmap_layers VALUES (?, ?, ?, ?, ?, ?)",
                        (kind, version, table, len(gdf), json.dumps(columns), _now()),
                    )
                    _record(con, kind, version, user, source_name, source_sha256, crs,
                            (rows_read, len(gdf), rows_rejected), "import", note)  # fmt: skip
                    con.execute("COMMIT")
            except BaseException:
                try:
                    self._drop_orphans_locked()
                except sqlite3.Error:  # the next writer or open() drops it
                    log.exception("could not drop the unfinished %s", table)
                raise
            try:
                with self._connection() as con:
                    self._prune(con, kind)
            except sqlite3.Error:  # the import itself is stored; the next one prunes
                log.exception("could not prune old versions of %s", kind)
        log.info(
            "stored %d %s rows as version %d in %.2f s (table %.2f s)",
            len(gdf), kind, version, time.perf_counter() - started, written - started,
        )  # fmt: skip
        return version

    def restore(self, kind: str, version: int, *, user: str, note: str = "") -> None:
        """Make the stored ``version`` of ``kind`` current again; recorded as a restore.

        Restoring the version that is already current changes and records nothing.

        Raises
        ------
        WorkspaceError
            When ``version`` is not stored (never imported, or pruned).
        """
        sch.get_schema(kind)
        with self._writer() as con:
            if _layer_row(con, kind, version) is None:
                stored = ", ".join(map(str, self.versions(kind))) or "none"
                raise WorkspaceError(
                    f"cannot restore {kind} version {version}: not stored in workspace {self.path}; "
                    f"stored versions: {stored}"
                )
            current = con.execute("SELECT version FROM civicmap_current WHERE kind = ?", (kind,)).fetchone()
            if current is not None and current[0] == version:
                return
            source = con.execute(
                "SELECT file_name, file_sha256, crs, rows_read, rows_imported, rows_rejected "
                "FROM civicmap_history WHERE kind = ? AND version = ? AND action = 'import'",
                (kind, int(version)),
            ).fetchone()
            note = (
                note or f"restored version {version} (version {current[0] if current else '-'} was current)"
            )
            con.execute("BEGIN IMMEDIATE")
            _record(con, kind, int(version), user, *source[:3], source[3:], "restore", note)
            con.execute("COMMIT")
        log.info("restored %s version %d", kind, version)

    def _prune(self, con: sqlite3.Connection, kind: str) -> None:
        con.execute("BEGIN IMMEDIATE")
        rows = con.execute(
            "SELECT l.version, l.table_name FROM civicmap_layers l WHERE l.kind = ? "
            "AND l.version NOT IN (SELECT version FROM civicmap_current WHERE kind = ?) "
            "ORDER BY l.version DESC",
            (kind, kind),
        ).fetchall()
        for version, table in rows[self.keep_versions - 1 :]:
            con.execute("DELETE FROM civicmap_layers WHERE kind = ? AND version = ?", (kind, version))
            _drop_table(con, table)
            log.info("pruned %s version %d", kind, version)
        con.execute("COMMIT")


# ---------------------------------------------------------------- helpers
_ARROW_NULLABLE = {
    pa.int64(): pd.Int64Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}
_GDAL, _SQLITE3 = "GDAL", "Python sqlite3"


class _LibraryGate:
    """Keeps GDAL's SQLite and Python's ``sqlite3`` from having the workspace open at once in one process.

    pyogrio's GDAL carries its own copy of SQLite.  POSIX drops every lock a process
    holds on a file when any descriptor of that file is closed, and each SQLite copy
    only guards its own descriptors: GDAL closing the file would silently release the
    locks of an open ``sqlite3`` connection (and the reverse), letting another process
    delete the WAL under it -- a lost commit.  Any number of users of one library may
    be in at once; the other library waits.  A thread may nest entries of one library
    but not mix them.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active: str | None = None
        self._users = 0
        self._waiting = {_GDAL: 0, _SQLITE3: 0}
        self._held = threading.local()

    @contextmanager
    def enter(self, library: str) -> Iterator[None]:
        held = getattr(self._held, "library", None)
        if held is not None:
            if held != library:
                raise RuntimeError(f"{library} used on a workspace while this thread has it open with {held}")
            yield
            return
        other = _SQLITE3 if library == _GDAL else _GDAL
        with self._cond:
            self._waiting[library] += 1
            while not (self._active is None or (self._active == library and not self._waiting[other])):
                self._cond.wait()
            self._waiting[library] -= 1
            self._active = library
            self._users += 1
        self._held.library = library
        try:
            yield
        finally:
            self._held.library = None
            with self._cond:
                self._users -= 1
                if self._users == 0:
                    self._active = None
                    self._cond.notify_all()


_GATE = _LibraryGate()
_gdal_lock = threading.Lock()
_gdal_users = 0
_gdal_saved: dict[str, str | None] = {}


@contextmanager
def _gdal_write_options() -> Iterator[None]:
    """Set :data:`GDAL_WRITE_OPTIONS` (process-global in GDAL) while any thread writes."""
    global _gdal_users
    with _gdal_lock:
        if _gdal_users == 0:
            _gdal_saved.update({k: pyogrio.get_gdal_config_option(k) for k in GDAL_WRITE_OPTIONS})
            pyogrio.set_gdal_config_options(GDAL_WRITE_OPTIONS)
        _gdal_users += 1
    try:
        yield
    finally:
        with _gdal_lock:
            _gdal_users -= 1
            if _gdal_users == 0:
                pyogrio.set_gdal_config_options(dict(_gdal_saved))


@contextmanager
def _as_workspace_error(context: str) -> Iterator[None]:
    try:
        yield
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, pyogrio.errors.FieldError,
            pyogrio.errors.GeometryError, pyogrio.errors.CRSError, ValueError) as exc:  # fmt: skip
        raise WorkspaceError(f"{context}: {exc}") from exc


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _create_meta(con: sqlite3.Connection) -> None:
    con.execute("BEGIN IMMEDIATE")
    for ddl in _META_DDL:
        con.execute(ddl)
    con.execute("COMMIT")


def _next_version(con: sqlite3.Connection, kind: str) -> int:
    """One more than any version of ``kind`` ever recorded or still lying around."""
    used = [r[0] for r in con.execute("SELECT MAX(version) FROM civicmap_history WHERE kind = ?", (kind,))]
    used += [int(m.group(2)) for m in map(_TABLE_RE.match, _tables(con)) if m and m.group(1) == kind]
    return max([v for v in used if v is not None], default=0) + 1


def _tables(con: sqlite3.Connection) -> set[str]:
    names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "gpkg_contents" in names:
        names |= {r[0] for r in con.execute("SELECT table_name FROM gpkg_contents")}
    return names


def _orphans(con: sqlite3.Connection) -> list[str]:
    """Version tables no ``civicmap_layers`` row points to (left by an interrupted import)."""
    known = {r[0] for r in con.execute("SELECT table_name FROM civicmap_layers")}
    return sorted(
        t for t in _tables(con) if (m := _TABLE_RE.match(t)) and m.group(1) in sch.SCHEMAS and t not in known
    )


def _layer_row(con: sqlite3.Connection, kind: str, version: int | None) -> tuple[str, str] | None:
    if version is None:
        sql = "SELECT l.table_name, l.columns FROM civicmap_layers l JOIN civicmap_current c "
        sql += "ON c.kind = l.kind AND c.version = l.version WHERE l.kind = ?"
        return con.execute(sql, (kind,)).fetchone()
    if isinstance(version, bool) or not isinstance(version, int | np.integer):
        raise WorkspaceError(f"version = {version!r}: expected an integer")
    sql = "SELECT table_name, columns FROM civicmap_layers WHERE kind = ? AND version = ?"
    return con.execute(sql, (kind, int(version))).fetchone()


def _record(
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
        (
            kind,
            version,
            str(user),
            _now(),
            str(file_name),
            str(sha256),
            str(crs),
            *map(int, counts),
            action,
            note,
        ),
    )
    con.execute("INSERT OR REPLACE INTO civicmap_current (kind, version) VALUES (?, ?)", (kind, version))


def _drop_table(con: sqlite3.Connection, table: str) -> None:
    """Drop a layer table with its R-tree and GeoPackage registrations (inside the caller's transaction)."""
    if not _TABLE_RE.match(table):  # only ever our own version tables
        raise WorkspaceError(f"refusing to drop table {table!r}")
    existing = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    columns = {GEOM_COLUMN}
    if "gpkg_geometry_columns" in existing:
        sql = "SELECT column_name FROM gpkg_geometry_columns WHERE lower(table_name) = lower(?)"
        columns |= {r[0] for r in con.execute(sql, (table,))}
    for column in sorted(columns):
        if f"rtree_{table}_{column}" in existing:
            con.execute(f'DROP TABLE "rtree_{table}_{column}"')  # a virtual table: drops its shadow tables
    con.execute(f'DROP TABLE IF EXISTS "{table}"')
    for meta in ("gpkg_extensions", "gpkg_geometry_columns", "gpkg_ogr_contents", "gpkg_metadata_reference",
                 "gpkg_data_columns", "gpkg_contents"):  # fmt: skip
        if meta in existing:
            con.execute(f"DELETE FROM {meta} WHERE lower(table_name) = lower(?)", (table,))
    if "sqlite_sequence" in existing:
        con.execute("DELETE FROM sqlite_sequence WHERE name = ?", (table,))


def _checked_frame(kind: str, gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
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
    names = [str(c) for c in gdf.columns]
    lowered = [n.lower() for n in names]
    bad = sorted({n for n in names if n.lower() in RESERVED_COLUMNS or lowered.count(n.lower()) > 1})
    if bad:
        raise WorkspaceError(
            f"{kind}: column(s) {', '.join(bad)}: names must be unique ignoring case and not {sorted(RESERVED_COLUMNS)}"
        )
    if "id" not in gdf.columns:
        raise WorkspaceError(f"{kind}: the layer has no 'id' column")
    ids = gdf["id"]
    if ids.isna().any() or not ids.is_unique:
        dupes = ids[ids.duplicated(keep=False) | ids.isna()].unique()[:5].tolist()
        raise WorkspaceError(f"{kind}: 'id' must be unique and not missing; offending values: {dupes}")
    if gdf.crs.to_epsg() != 4326:
        gdf = gdf.set_crs("EPSG:4326", allow_override=True)
    return gdf


def _check_written(con: sqlite3.Connection, table: str, n: int) -> None:
    got = con.execute(f'SELECT count(*), min(fid), max(fid) FROM "{table}"').fetchone()
    if got != (n, 1 if n else None, n if n else None):
        raise WorkspaceError(f"{table}: expected rows with fid 1..{n} after writing, found {got}")


def _restore_columns(frame: gpd.GeoDataFrame, columns: list[list[str]]) -> gpd.GeoDataFrame:
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


# ---------------------------------------------------------------- GeoPackage R-tree bulk load
_CELL = np.dtype([("id", ">i8"), ("minx", ">f4"), ("maxx", ">f4"), ("miny", ">f4"), ("maxy", ">f4")])
_RTREE_DEFINITION = "http://www.geopackage.org/spec120/#extension_rtree"


def _build_rtree(con: sqlite3.Connection, table: str, bounds: np.ndarray) -> None:
    """Create and fill the ``gpkg_rtree_index`` of ``table`` whose rows have fid 1..n in ``bounds`` order.

    The nodes of SQLite's R-tree are written directly (a packed tree, Sort-Tile-Recursive
    order), which is some ten times faster than inserting row by row.
    """
    rtree = f"rtree_{table}_{GEOM_COLUMN}"
    con.execute(f'CREATE VIRTUAL TABLE "{rtree}" USING rtree(id, minx, maxx, miny, maxy)')
    keep = np.flatnonzero(~np.isnan(bounds).any(axis=1))  # null and empty geometries are not indexed
    if len(keep):
        _fill_rtree(con, rtree, keep + 1, bounds[keep])
    _rtree_triggers(con, table, rtree)
    con.execute(
        "CREATE TABLE IF NOT EXISTS gpkg_extensions (table_name TEXT, column_name TEXT, "
        "extension_name TEXT NOT NULL, definition TEXT NOT NULL, scope TEXT NOT NULL, "
        "CONSTRAINT ge_tce UNIQUE (table_name, column_name, extension_name))"
    )
    con.execute(
        "INSERT INTO gpkg_extensions VALUES (?, ?, 'gpkg_rtree_index', ?, 'write-only')",
        (table, GEOM_COLUMN, _RTREE_DEFINITION),
    )


def _fill_rtree(con: sqlite3.Connection, rtree: str, fids: np.ndarray, bounds: np.ndarray) -> None:
    node_size = con.execute(f'SELECT length(data) FROM "{rtree}_node" WHERE nodeno = 1').fetchone()[0]
    fanout = (node_size - 4) // _CELL.itemsize
    order = _str_order((bounds[:, 0] + bounds[:, 2]) / 2, (bounds[:, 1] + bounds[:, 3]) / 2, fanout)
    entries = np.empty(len(fids), _CELL)
    entries["id"] = fids[order]
    for name, column, direction in (("minx", 0, -1), ("maxx", 2, 1), ("miny", 1, -1), ("maxy", 3, 1)):
        entries[name] = _f32(bounds[order, column], direction)  # rounded outwards, as SQLite does
    levels = []  # bottom-up: (entries, first entry of each node)
    while True:
        n = len(entries)
        k = -(-n // fanout)
        starts = (np.arange(k) * n) // k  # entries spread evenly over k nodes
        levels.append((entries, starts))
        if k == 1:
            break
        entries = np.empty(k, _CELL)  # one entry per node: its box; id set once nodes are numbered
        for name, reduce in (
            ("minx", np.minimum),
            ("maxx", np.maximum),
            ("miny", np.minimum),
            ("maxy", np.maximum),
        ):
            entries[name] = reduce.reduceat(levels[-1][0][name], starts)
    sizes = [len(starts) for _, starts in levels]
    first = [1 + sum(sizes[level + 1 :]) for level in range(len(levels))]  # the root is node 1
    blobs, parents = [], []
    for level, (entries, starts) in enumerate(levels):
        k, n = len(starts), len(entries)
        counts = np.diff(np.append(starts, n))
        node = np.repeat(np.arange(k), counts)
        if level > 0:
            entries["id"] = first[level - 1] + np.arange(n)
            parents.append(np.column_stack([first[level - 1] + np.arange(n), first[level] + node]))
        cells = np.zeros(k * fanout, _CELL)
        cells[node * fanout + np.arange(n) - starts[node]] = entries
        data = np.zeros((k, node_size), np.uint8)
        data[:, 4 : 4 + _CELL.itemsize * fanout] = cells.view(np.uint8).reshape(k, -1)
        data[:, 2:4] = counts.astype(">u2").view(np.uint8).reshape(k, 2)
        if level == len(levels) - 1:
            data[0, 0:2] = np.array([level], ">u2").view(np.uint8)  # tree depth, in the root only
        blobs.extend(zip((first[level] + np.arange(k)).tolist(), map(bytes, data), strict=True))
        if level == 0:
            leaf_of_fid = np.zeros(int(fids.max()), np.int64)  # 0: not indexed (no geometry)
            leaf_of_fid[fids[order] - 1] = first[0] + node
    con.execute(f'DELETE FROM "{rtree}_node"')
    con.executemany(f'INSERT INTO "{rtree}_node" (nodeno, data) VALUES (?, ?)', blobs)
    if parents:
        pairs = np.concatenate(parents).tolist()
        con.executemany(f'INSERT INTO "{rtree}_parent" (nodeno, parentnode) VALUES (?, ?)', pairs)
    con.execute(
        f'INSERT INTO "{rtree}_rowid" (rowid, nodeno) SELECT key + 1, value FROM json_each(?) WHERE value > 0',
        (json.dumps(leaf_of_fid.tolist()),),
    )


def _str_order(x: np.ndarray, y: np.ndarray, fanout: int) -> np.ndarray:
    """Sort-Tile-Recursive order: vertical slices of equal count by x, each sorted by y."""
    n = len(x)
    slices = max(1, int(np.ceil(np.sqrt(-(-n // fanout)))))
    rank = np.empty(n, np.int64)
    rank[np.argsort(x)] = np.arange(n)
    span = float(y.max() - y.min()) or 1.0
    return np.argsort(rank * slices // n + (y - y.min()) / span * 0.5)  # slice + a fraction for y


def _f32(values: np.ndarray, direction: int) -> np.ndarray:
    """``values`` as float32, rounded down (``direction`` -1) or up (+1)."""
    out = values.astype(np.float32)
    wrong = out < values if direction > 0 else out > values
    out[wrong] = np.nextafter(out[wrong], np.float32(np.inf * direction))
    return out


def _rtree_triggers(con: sqlite3.Connection, table: str, rtree: str) -> None:
    """The triggers of the GeoPackage R-tree extension, keeping the index right when others edit."""
    t, r, g = f'"{table}"', f'"{rtree}"', f'NEW."{GEOM_COLUMN}"'
    old_g = f'OLD."{GEOM_COLUMN}"'
    box = f"NEW.fid, ST_MinX({g}), ST_MaxX({g}), ST_MinY({g}), ST_MaxY({g})"
    new_ok, old_ok = (
        f"({g} NOTNULL AND NOT ST_IsEmpty({g}))",
        f"({old_g} NOTNULL AND NOT ST_IsEmpty({old_g}))",
    )
    set_box = f"minx = ST_MinX({g}), maxx = ST_MaxX({g}), miny = ST_MinY({g}), maxy = ST_MaxY({g})"
    col = f'"{GEOM_COLUMN}"'
    triggers = {
        "insert": (f"AFTER INSERT ON {t} WHEN {new_ok}", f"INSERT OR REPLACE INTO {r} VALUES ({box});"),
        "update6": (
            f"AFTER UPDATE OF {col} ON {t} WHEN OLD.fid = NEW.fid AND {new_ok} AND {old_ok}",
            f"UPDATE {r} SET {set_box} WHERE id = NEW.fid;",
        ),
        "update7": (
            f"AFTER UPDATE OF {col} ON {t} WHEN OLD.fid = NEW.fid AND {new_ok} AND NOT {old_ok}",
            f"INSERT INTO {r} VALUES ({box});",
        ),
        "update2": (
            f"AFTER UPDATE OF {col} ON {t} WHEN OLD.fid = NEW.fid AND NOT {new_ok}",
            f"DELETE FROM {r} WHERE id = OLD.fid;",
        ),
        "update5": (
            f"AFTER UPDATE ON {t} WHEN OLD.fid != NEW.fid AND {new_ok}",
            f"DELETE FROM {r} WHERE id = OLD.fid; INSERT OR REPLACE INTO {r} VALUES ({box});",
        ),
        "update4": (
            f"AFTER UPDATE ON {t} WHEN OLD.fid != NEW.fid AND NOT {new_ok}",
            f"DELETE FROM {r} WHERE id IN (OLD.fid, NEW.fid);",
        ),
        "delete": (f"AFTER DELETE ON {t} WHEN {old_g} NOT NULL", f"DELETE FROM {r} WHERE id = OLD.fid;"),
    }
    for suffix, (when, body) in triggers.items():
        con.execute(f'CREATE TRIGGER "{rtree}_{suffix}" {when} BEGIN {body} END')
