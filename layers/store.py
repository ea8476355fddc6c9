"""The workspace store: every layer of a bureau, versioned, in one SQLite/GeoPackage file.

A workspace is a folder holding ``civicmap.gpkg`` and a lock file.  Each import of a kind
stores a new *version*: the layer encoded as GeoParquet blobs (:mod:`layers.layer_blob`), one
per chunk of consecutive rows (about 4 MB of data each), in ``civicmap_layer_data`` (versions
written before chunking: byte pieces of one file, ``whole = 0``).  civicmap's own tables
in the same file say which versions exist (``civicmap_layers``), which one is current
(``civicmap_current``) and who imported what (``civicmap_history``).  Other modules may
add their own tables through :meth:`Workspace.sqlite`.  A layer reads back with the
columns, order and dtypes it was written with (datetimes to the microsecond); the index
is not stored.

QGIS
----
The file stays a GeoPackage, but the versions are blobs a desktop GIS cannot draw.
:meth:`Workspace.publish_gpkg` (the ``civicmap publish`` command) writes the current
version of each kind as a GeoPackage feature table named after the kind (``net_cafes``,
``schools`` …) with a spatial index; ``civicmap_published`` records which version each
one shows, and publishing again rewrites only the stale ones.  Publishing is left out of
imports on purpose (a feature table with its R-tree costs several times the import
itself): publish before opening the file in QGIS.  Those tables are a copy; civicmap
never reads them, and edits made to them in QGIS are not imported.

Older workspaces
----------------
Workspaces written before the blob store keep each version as a feature table
``<kind>__v<N>``.  They open and read as before (a version without blob parts is read
from its table with GDAL), new imports add blobs next to them, and pruning drops the old
tables in time.

Crash safety
------------
The database runs in WAL mode.  An import, holding the writers' lock, writes the chunks as
they are encoded (in parallel threads), the ``civicmap_layers`` row, the current-version
pointer and the history row in ONE SQLite transaction: a process killed at any moment leaves either
the whole new version or nothing (uncommitted WAL frames are ignored by SQLite).  Old
versions beyond the kept number are dropped in a second transaction; a kill there only
leaves extra versions, pruned next time.  Writers are serialised by a ``flock`` lock
file, released by the kernel when its holder dies; readers never take it and, in WAL mode,
read the last committed state while a writer works.  Writes use ``synchronous=NORMAL``,
which in WAL mode survives a killed process, and a power cut without corruption.

pyogrio's GDAL (used only for old-format versions and publishing) carries its own copy of
SQLite: every access goes through the gate of :mod:`layers.gpkg_view`; never open the
workspace file any other way.

Table names are only ever built from validated kind names and integers.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import filelock
import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio

from layers import gpkg_view, layer_blob
from layers import schema as sch
from layers import store_tables as tables
from layers.errors import WorkspaceError
from layers.gpkg_view import GATE, GDAL, SQLITE3

log = logging.getLogger(__name__)

ENV_VAR = "CIVICMAP_WORKSPACE"
GPKG_NAME = "civicmap.gpkg"
LOCK_NAME = ".civicmap.lock"
KEEP_VERSIONS = 10
LOCK_TIMEOUT_S = 60.0
BUSY_TIMEOUT_S = 60.0
RESERVED_COLUMNS = tables.RESERVED_COLUMNS  # would clash in a published feature table
#: stored dtypes of the schema's field types (an empty layer has these)
FIELD_DTYPES = {sch.INT: "Int64", sch.FLOAT: "float64", sch.BOOL: "boolean", sch.DATE: "datetime64[us]"}

#: test seams: called inside the import's transaction after each blob part is written, and
#: after everything is written, before COMMIT (with the version's name ``<kind>__v<N>``)
_after_part: Callable[[int], None] | None = None
_before_commit: Callable[[str], None] | None = None
#: SQLite page cache of a writer, KiB (small values make uncommitted pages spill into the WAL)
_WRITE_CACHE_KIB = 65536
#: SQLite page size of new workspaces: the largest, because nearly every byte is in blobs
#: (a 5 MB blob is 80 pages instead of 1,300, each with its own WAL frame and overflow link)
PAGE_BYTES = 65536


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
            info = pd.DataFrame({"key": ["format", "created_at"], "value": ["1", tables.now()]}, dtype="str")
            with GATE.enter(GDAL):
                pyogrio.write_dataframe(info, tmp, layer="civicmap_workspace", driver="GPKG")
            with GATE.enter(SQLITE3), closing(sqlite3.connect(tmp, isolation_level=None)) as con:
                con.execute(f"PRAGMA page_size = {PAGE_BYTES}")  # before WAL: VACUUM applies it
                con.execute("VACUUM")
                con.execute("PRAGMA journal_mode = WAL")
                tables.create_meta(con)
            os.replace(tmp, self.gpkg_path)
            log.info("created workspace %s", self.path)

    # ------------------------------------------------------------ connections and the lock
    def _uri(self) -> str:
        """The database as a URI that never creates a missing file."""
        return f"file:{urllib.parse.quote(str(self.gpkg_path.resolve()))}?mode=rw"

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """An autocommit connection (transactions are explicit), closed afterwards."""
        with GATE.enter(SQLITE3):
            con = sqlite3.connect(self._uri(), uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            try:
                con.execute("PRAGMA synchronous = NORMAL")  # safe in WAL mode, see the module docstring
                yield con
            finally:
                con.close()

    @contextmanager
    def sqlite(self) -> Iterator[sqlite3.Connection]:
        """A connection to the workspace database, for other modules' own tables.

        Commits when the block ends, rolls back when it raises, then closes.  Do not
        create tables named ``<kind>`` (a layer kind: published views), ``<kind>__v<N>``,
        ``gpkg_*``, ``rtree_*`` or ``civicmap_*``.  Keep the block short and never open the
        workspace file any other way: while it runs, this process's publishing and reads of
        older-format versions wait (see :class:`layers.gpkg_view.LibraryGate`).
        """
        with GATE.enter(SQLITE3):
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

    def _prepare(self) -> None:
        """Add civicmap's tables to a GeoPackage made elsewhere or by an older civicmap; drop orphans."""
        try:
            with self._connection() as con:
                if not tables.meta_is_current(con):
                    with self._locked():
                        tables.create_meta(con)
                if tables.orphans(con):
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
        for table in tables.orphans(con):
            log.warning("workspace %s: dropping %s, left by an interrupted import", self.path, table)
            con.execute("BEGIN IMMEDIATE")
            gpkg_view.drop_table(con, table)
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
            con.execute("BEGIN")  # one snapshot for every statement
            row = tables.layer_row(con, kind, None)
            if row is None:
                return set()
            parts, whole = tables.parts(con, kind, row[0])
            if not parts:  # a version of the older format: a feature table
                return {r[0] for r in con.execute(f'SELECT "id" FROM "{row[1]}"')}
            con.execute("COMMIT")
        return set(layer_blob.decode_ids(parts, whole=whole))

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
                con.execute("BEGIN")  # the version row and its blob from one snapshot
                row = tables.layer_row(con, kind, version)
                parts, whole = ([], True) if row is None else tables.parts(con, kind, row[0])
                con.execute("COMMIT")
                if row is None and version is not None:
                    stored = ", ".join(map(str, self.versions(kind))) or "none"
                    raise WorkspaceError(
                        f"{kind} version {version} is not stored in workspace {self.path}; stored versions: {stored}"
                    )
            if row is None:
                return empty_layer(kind)
            columns = json.loads(row[2])
            if parts:
                return layer_blob.decode_layer(parts, columns, whole=whole)
            try:  # the older format: read the feature table with GDAL, outside the snapshot
                frame = gpkg_view.read_feature_table(self.gpkg_path, row[1])
            except pyogrio.errors.DataLayerError as exc:
                if version is None and attempt < 2:  # pruned by a writer after we looked: look again
                    continue
                raise WorkspaceError(f"{kind}: {row[1]} vanished while being read ({exc})") from exc
            return layer_blob.restore_columns(frame, columns)
        raise AssertionError("unreachable")  # pragma: no cover

    def history(self, kind: str | None = None) -> list[ImportRecord]:
        """Imports and restores, newest first; all kinds, or only ``kind``."""
        sql = f"SELECT {tables.HISTORY_COLUMNS} FROM civicmap_history"
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
        gdf: gpd.GeoDataFrame | layer_blob.PointRows,
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

        What it costs: encoding ``gdf`` as GeoParquet, and one SQLite transaction writing the
        blob, the version row, the pointer and the history row (then pruning old versions).
        The GeoPackage feature table for QGIS is not written (see :meth:`publish_gpkg`).

        Parameters
        ----------
        kind
            A layer kind of :data:`layers.schema.KINDS`.
        gdf
            The layer in EPSG:4326 with a unique, non-missing ``id`` column; stored as
            given (columns, order, dtypes), without its index.  A
            :class:`~layers.layer_blob.PointRows` (a point layer from coordinate columns) is
            stored from its lon/lat arrays and reads back as the GeoDataFrame of its
            :meth:`~layers.layer_blob.PointRows.to_geodataframe`.
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
        sch.get_schema(kind)
        if isinstance(gdf, layer_blob.PointRows):
            _check_point_rows(kind, gdf)
            columns = gdf.columns
        else:
            gdf = tables.checked_frame(kind, gdf)
            columns = [[str(c), str(t)] for c, t in gdf.dtypes.items()]
        started = time.perf_counter()
        stored_bytes = 0
        with self._writer() as con:
            con.execute(f"PRAGMA cache_size = -{int(_WRITE_CACHE_KIB)}")
            con.execute("BEGIN IMMEDIATE")
            try:
                version = tables.next_version(con, kind)
                for number, part in enumerate(layer_blob.encode_chunks(gdf)):  # written as they are encoded
                    con.execute(
                        "INSERT INTO civicmap_layer_data (kind, version, part, data, whole) VALUES (?, ?, ?, ?, 1)",
                        (kind, version, number, part),
                    )
                    stored_bytes += part.size
                    if _after_part is not None:
                        _after_part(number)
                con.execute(
                    "INSERT INTO civicmap_layers VALUES (?, ?, ?, ?, ?, ?)",
                    (kind, version, f"{kind}__v{version}", len(gdf), json.dumps(columns), tables.now()),
                )
                tables.record(con, kind, version, user, source_name, source_sha256, crs,
                        (rows_read, len(gdf), rows_rejected), "import", note)  # fmt: skip
                if _before_commit is not None:
                    _before_commit(f"{kind}__v{version}")
                con.execute("COMMIT")
            except BaseException:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise
            try:
                self._prune(con, kind)
            except sqlite3.Error:  # the import itself is stored; the next one prunes
                log.exception("could not prune old versions of %s", kind)
        log.info(
            "stored %d %s rows as version %d (%.1f MB) in %.2f s",
            len(gdf), kind, version, stored_bytes / 1e6, time.perf_counter() - started,
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
            if tables.layer_row(con, kind, version) is None:
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
            tables.record(con, kind, int(version), user, *source[:3], source[3:], "restore", note)
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
            con.execute("DELETE FROM civicmap_layer_data WHERE kind = ? AND version = ?", (kind, version))
            gpkg_view.drop_table(con, table)  # an older-format version's feature table, if any
            log.info("pruned %s version %d", kind, version)
        con.execute("COMMIT")

    # ------------------------------------------------------------ the GeoPackage view for QGIS
    def published(self) -> dict[str, int]:
        """The version each published feature table shows, by kind (see :meth:`publish_gpkg`)."""
        with self._connection() as con:
            return dict(con.execute("SELECT kind, version FROM civicmap_published WHERE version > 0"))

    def publish_gpkg(self, kinds: list[str] | None = None) -> dict[str, int]:
        """Write the current version of ``kinds`` (default: every kind imported) as GeoPackage feature tables.

        Each table is named after its kind (``net_cafes``), carries a GeoPackage R-tree
        (unless the workspace was opened with ``spatial_index=False``) and a description
        naming the version.  Tables already showing the current version are left alone;
        a kind never imported is skipped.  The tables are a copy for QGIS users: civicmap
        never reads them, and publishing again replaces them.

        Returns
        -------
        dict
            Kind -> the version its table now shows.

        Raises
        ------
        WorkspaceError
            When the workspace is busy, or a table of that name exists that civicmap did not publish.
        """
        kinds = list(self.current_versions()) if kinds is None else [sch.get_schema(k).kind for k in kinds]
        shown: dict[str, int] = {}
        with self._locked():
            for kind in kinds:
                with self._connection() as con:
                    current = con.execute(
                        "SELECT version FROM civicmap_current WHERE kind = ?", (kind,)
                    ).fetchone()
                    if current is None:
                        continue
                    done = con.execute(
                        "SELECT version FROM civicmap_published WHERE kind = ?", (kind,)
                    ).fetchone()
                    if done is not None and done[0] == current[0] and kind in gpkg_view.feature_tables(con):
                        shown[kind] = current[0]
                        continue
                    if done is None and kind in gpkg_view.feature_tables(con):
                        raise WorkspaceError(
                            f"cannot publish {kind}: workspace {self.path} holds a table {kind!r} that civicmap "
                            "did not make; rename it"
                        )
                    con.execute("BEGIN IMMEDIATE")  # 0: being published (the table is ours, maybe half there)
                    con.execute(
                        "INSERT OR REPLACE INTO civicmap_published VALUES (?, 0, ?)", (kind, tables.now())
                    )
                    gpkg_view.drop_table(con, kind)
                    con.execute("COMMIT")
                frame = self.read(kind, version=current[0])
                schema = sch.get_schema(kind)
                description = (
                    f"{schema.label_zh} {schema.label_en}: civicmap version {current[0]} (a published copy)"
                )
                gpkg_view.write_feature_table(self._connection, self.gpkg_path, kind, frame,
                                              description=description, spatial_index=self.spatial_index)  # fmt: skip
                with self._connection() as con:
                    con.execute("UPDATE civicmap_published SET version = ?, published_at = ? WHERE kind = ?",
                                (current[0], tables.now(), kind))  # fmt: skip
                shown[kind] = current[0]
                log.info("published %s version %d as a GeoPackage feature table", kind, current[0])
        return shown


def _check_point_rows(kind: str, rows: layer_blob.PointRows) -> None:
    """The checks of a GeoDataFrame written to the store, for rows whose points are not built:
    the attributes as any layer's, and the coordinates finite WGS84 degrees."""
    if rows.geometry_name in rows.attributes.columns:
        raise WorkspaceError(f"{kind}: the geometry column {rows.geometry_name!r} is also an attribute")
    tables.check_attributes(kind, rows.attributes.assign(**{rows.geometry_name: None}))
    lon, lat = np.asarray(rows.lon, dtype=np.float64), np.asarray(rows.lat, dtype=np.float64)
    bad = ~(np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 180) & (np.abs(lat) <= 90))
    if bad.any():
        raise WorkspaceError(
            f"{kind}: {int(bad.sum())} point(s) without finite WGS84 lon/lat, the first at position "
            f"{int(np.flatnonzero(bad)[0])}"
        )
