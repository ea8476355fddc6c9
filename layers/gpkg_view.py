"""The workspace file as a GeoPackage for QGIS: published feature tables, R-trees, GDAL access.

civicmap keeps every layer version as a GeoParquet blob (:mod:`layers.layer_blob`); a
GeoPackage feature table is only a *view* for desktop GIS users.  :func:`write_feature_table`
writes one (called by :meth:`layers.store.Workspace.publish_gpkg` and ``civicmap publish``),
named after the kind (``net_cafes``, ``schools`` …), with a packed GeoPackage R-tree
(``gpkg_rtree_index``) built from the bounds already in memory, which is some ten times
faster than GDAL's own index.  Workspaces made before the blob store keep their versions as
feature tables ``<kind>__v<N>``; :func:`read_feature_table` reads them.

pyogrio's GDAL carries its own copy of SQLite, different from Python's ``sqlite3``.  Two
copies must never have the file open at once in one process (closing it in one silently
drops the other's POSIX locks, see :class:`LibraryGate`), so every access goes through the
process-wide :data:`GATE`.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyogrio
import shapely

from layers import schema as sch
from layers.errors import WorkspaceError

GEOM_COLUMN = "geom"  # geometry column inside the GeoPackage
#: GDAL settings while a table is written: WAL with synchronous=NORMAL survives a killed process
GDAL_WRITE_OPTIONS = {"OGR_SQLITE_SYNCHRONOUS": "NORMAL", "OGR_SQLITE_CACHE": "256"}
GDAL, SQLITE3 = "GDAL", "Python sqlite3"
_ARROW_NULLABLE = {
    pa.int64(): pd.Int64Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}
_RTREE_DEFINITION = "http://www.geopackage.org/spec120/#extension_rtree"
_OURS = re.compile(r"^([a-z_]+?)(__v[0-9]+)?$")
_CELL = np.dtype([("id", ">i8"), ("minx", ">f4"), ("maxx", ">f4"), ("miny", ">f4"), ("maxy", ">f4")])


class LibraryGate:
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
        self._waiting = {GDAL: 0, SQLITE3: 0}
        self._held = threading.local()

    @contextmanager
    def enter(self, library: str) -> Iterator[None]:
        """Use ``library`` (:data:`GDAL` or :data:`SQLITE3`) on the workspace file for the block."""
        held = getattr(self._held, "library", None)
        if held is not None:
            if held != library:
                raise RuntimeError(f"{library} used on a workspace while this thread has it open with {held}")
            yield
            return
        other = SQLITE3 if library == GDAL else GDAL
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


GATE = LibraryGate()
_gdal_lock = threading.Lock()
_gdal_users = 0
_gdal_saved: dict[str, str | None] = {}


@contextmanager
def gdal_write_options() -> Iterator[None]:
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


def read_feature_table(gpkg_path: Path, table: str) -> gpd.GeoDataFrame:
    """Read a feature table of the workspace (a version stored before the blob store, or a view).

    Raises
    ------
    pyogrio.errors.DataLayerError
        When the table does not exist (e.g. pruned meanwhile).
    """
    with GATE.enter(GDAL):
        return pyogrio.read_dataframe(
            gpkg_path,
            layer=table,
            use_arrow=True,
            arrow_to_pandas_kwargs={"types_mapper": _ARROW_NULLABLE.get},
        )


def write_feature_table(
    con_factory,
    gpkg_path: Path,
    table: str,
    frame: gpd.GeoDataFrame,
    *,
    description: str,
    spatial_index: bool,
) -> None:
    """Write ``frame`` as the GeoPackage feature table ``table`` (which must not exist), with its R-tree.

    Parameters
    ----------
    con_factory
        A context manager factory giving an autocommit ``sqlite3`` connection to ``gpkg_path``
        (entered through :data:`GATE`); used for the R-tree after GDAL has written the rows.
    gpkg_path, table, frame, description
        Where, under which name, what (EPSG:4326), and the ``gpkg_contents`` description.
    spatial_index
        Build the ``gpkg_rtree_index`` (QGIS draws large layers much faster with it).
    """
    try:
        with gdal_write_options(), GATE.enter(GDAL):
            pyogrio.write_dataframe(
                frame, gpkg_path, layer=table, driver="GPKG", append=True, use_arrow=True,
                promote_to_multi=False,
                layer_options={"SPATIAL_INDEX": "NO", "GEOMETRY_NAME": GEOM_COLUMN, "DESCRIPTION": description},
            )  # fmt: skip
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, pyogrio.errors.FieldError,
            pyogrio.errors.GeometryError, pyogrio.errors.CRSError, ValueError) as exc:  # fmt: skip
        raise WorkspaceError(f"cannot write {table} to {gpkg_path}: {exc}") from exc
    if spatial_index:
        with con_factory() as con:
            con.execute("BEGIN IMMEDIATE")
            build_rtree(con, table, shapely.bounds(np.asarray(frame.geometry.array)))
            con.execute("COMMIT")


def feature_tables(con: sqlite3.Connection) -> set[str]:
    """Tables in ``sqlite_master`` and in ``gpkg_contents``."""
    names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "gpkg_contents" in names:
        names |= {r[0] for r in con.execute("SELECT table_name FROM gpkg_contents")}
    return names


def drop_table(con: sqlite3.Connection, table: str) -> None:
    """Drop a feature table of civicmap (``<kind>`` or ``<kind>__v<N>``) with its R-tree and registrations.

    Runs inside the caller's transaction; a missing table is no error.
    """
    match = _OURS.match(table)
    if match is None or match.group(1) not in sch.SCHEMAS:  # only ever civicmap's own tables
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


# ---------------------------------------------------------------- GeoPackage R-tree bulk load


def build_rtree(con: sqlite3.Connection, table: str, bounds: np.ndarray) -> None:
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
