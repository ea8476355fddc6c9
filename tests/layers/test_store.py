"""The workspace store: round trips, versions, restore, history, pruning, the R-tree, errors."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import UTC, datetime

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pyogrio
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal
from shapely.geometry import LineString, MultiLineString, MultiPoint, MultiPolygon, Point, Polygon

from layers import layer_blob, store
from layers.errors import CivicmapError, CRSError, WorkspaceError
from layers.schema import KINDS
from layers.store import ImportRecord, Workspace, empty_layer

SQUARE = Polygon([(116.0, 39.0), (116.001, 39.0), (116.001, 39.001), (116.0, 39.001)])
HOLED = Polygon(
    [(116.1, 39.1), (116.2, 39.1), (116.2, 39.2), (116.1, 39.2)],
    [[(116.12, 39.12), (116.13, 39.12), (116.13, 39.13)]],
)
MULTI = MultiPolygon([SQUARE, HOLED])
LINE = LineString([(116.3, 39.3), (116.31, 39.35), (116.4, 39.3)])
SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv("CIVICMAP_WORKSPACE", raising=False)


@pytest.fixture
def ws(tmp_path) -> Workspace:
    return Workspace.open(tmp_path / "ws", create=True)


def _frame(geometries, **extra) -> gpd.GeoDataFrame:
    """Every column type the importer produces, with missing values where a type allows them."""
    n = len(geometries)
    data = {
        "id": pd.Series([f"id-{i}" for i in range(n)], dtype="str"),
        "name": pd.Series(
            (["网吧一号 朝阳区", SCRIPT, 'Café ‘O’Brien’s "quote" \\ ; DROP TABLE x'] * n)[:n], dtype="str"
        ),
        "address": pd.Series(([None, "北京市 海淀区 中关村大街1号"] * n)[:n], dtype="str"),
        "terminals": pd.array(([120, None, 2**40] * n)[:n], dtype="Int64"),
        "area_m2": np.array(([12.5, np.nan, -0.0] * n)[:n], dtype="float64"),
        "free": pd.array(([True, None, False] * n)[:n], dtype="boolean"),
        "approximate": np.array(([False, True] * n)[:n], dtype=bool),
        "observed_at": pd.array(
            ([pd.Timestamp("2024-02-29 13:45:01.123"), None] * n)[:n], dtype="datetime64[us]"
        ),
        **extra,
    }
    return gpd.GeoDataFrame(data, geometry=list(geometries), crs="EPSG:4326")


def _write(ws: Workspace, kind: str, gdf: gpd.GeoDataFrame, **changes) -> int:
    meta = {"user": "zhang.san", "source_name": "网吧名单.xlsx", "source_sha256": "ab" * 32, "crs": "gcj02",
            "rows_read": len(gdf) + 1, "rows_rejected": 1, **changes}  # fmt: skip
    return ws.write(kind, gdf, **meta)


# ------------------------------------------------------------------ round trips
@pytest.mark.parametrize(
    "geometries",
    [
        [Point(116.397, 39.909), Point(-0.0, 0.0), Point(180.0, -90.0)],
        [SQUARE, HOLED],
        [MULTI, MultiPolygon([SQUARE])],
        [LINE, LineString([(0, 0), (1, 1)])],
        [SQUARE, MULTI, SQUARE],  # mixed single and multi: kept as written, not promoted
        [Point(116.0, 39.0), SQUARE, LINE, MULTI, None],  # schools may mix points and polygons
    ],
    ids=["point", "polygon", "multipolygon", "linestring", "polygon+multi", "mixed+null"],
)
def test_round_trip_keeps_every_value_dtype_and_geometry(ws, geometries):
    written = _frame(geometries)
    assert _write(ws, "net_cafes", written) == 1
    back = ws.read("net_cafes")
    assert_geodataframe_equal(back, written, check_less_precise=False)
    assert list(back.geom_type) == list(written.geom_type)
    assert back.crs == "EPSG:4326"
    assert back["name"].iloc[1] == SCRIPT if len(back) > 1 else True


@pytest.mark.parametrize(
    ("geometries", "encoding"),
    [
        ([Point(116.397, 39.909), Point(1e-9, -1e-9)], "point"),
        ([Point(116.397, 39.909), None, Point()], "point"),  # null and empty points
        ([SQUARE, None, HOLED, Polygon()], "polygon"),
        ([LINE, LineString(), None], "linestring"),
        ([MULTI, None, MultiPolygon([SQUARE])], "multipolygon"),
        ([MultiPoint([(1, 2), (3, 4)]), MultiPoint([(5, 6)])], "multipoint"),
        ([MultiLineString([LINE, [(0, 0), (1, 1)]]), None], "multilinestring"),
        ([SQUARE, MULTI, LINE, Point(1, 1), None], "WKB"),  # mixed types
    ],
)
def test_every_geometry_encoding_reads_back_exactly(ws, geometries, encoding):
    written = gpd.GeoDataFrame(
        {"id": pd.Series([f"g{i}" for i in range(len(geometries))], dtype="str")},
        geometry=geometries,
        crs=4326,
    )
    _write(ws, "pois", written)
    with closing(sqlite3.connect(ws.gpkg_path)) as con:
        (blob,) = con.execute("SELECT data FROM civicmap_layer_data").fetchone()
    geo = json.loads(pq.read_schema(io.BytesIO(blob)).metadata[b"geo"])
    assert geo["columns"]["geometry"]["encoding"] == encoding
    back = ws.read("pois")
    assert_geodataframe_equal(back, written)
    assert [g is None for g in back.geometry] == [g is None for g in geometries]
    assert [g.wkt for g in back.geometry if g is not None] == [g.wkt for g in geometries if g is not None]


def test_round_trip_of_texts_verbatim(ws):
    names = ["网吧一号", SCRIPT, "  spaces kept  ", "", "emoji 🎮", "tab\there", "line\nbreak", "ʼ ＂ ’"]
    written = gpd.GeoDataFrame(
        {
            "id": pd.Series([f"nc-{i}" for i in range(len(names))], dtype="str"),
            "name": pd.Series(names, dtype="str"),
        },
        geometry=shapely.points(np.arange(len(names)), np.zeros(len(names))),
        crs="EPSG:4326",
    )
    _write(ws, "net_cafes", written)
    assert ws.read("net_cafes")["name"].tolist() == names


def test_datetimes_keep_their_time_zone_to_the_microsecond(ws):
    stamps = ["2024-01-01 10:00:00.123456", "2024-07-01 23:59:59.999"]
    written = gpd.GeoDataFrame(
        {
            "id": pd.array(["a", "b"], dtype="str"),
            "naive": pd.to_datetime(stamps),
            "utc": pd.to_datetime(stamps).tz_localize("UTC"),
            "beijing": pd.to_datetime(stamps).tz_localize("Asia/Shanghai"),
            "kind": pd.Categorical(["x", "y"]),
        },
        geometry=[Point(1, 1), Point(2, 2)],
        crs="EPSG:4326",
    )
    _write(ws, "pois", written)
    back = ws.read("pois")
    assert_geodataframe_equal(back, written)
    assert str(back["beijing"].iloc[0]) == "2024-01-01 10:00:00.123456+08:00"


def test_column_order_index_and_geometry_name_as_written(ws):
    written = gpd.GeoDataFrame(
        {"shape": [Point(1, 2), Point(3, 4)], "id": pd.array(["b", "a"], dtype="str"), "n": np.array([1, 2])},
        geometry="shape",
        crs="EPSG:4326",
        index=[10, 7],
    )
    _write(ws, "pois", written)
    back = ws.read("pois")
    assert list(back.columns) == ["shape", "id", "n"]
    assert back.geometry.name == "shape"
    assert back["n"].dtype == np.int64
    assert back.index.tolist() == [0, 1]
    assert_geodataframe_equal(back, written.reset_index(drop=True))


def test_an_empty_layer_can_be_stored(ws):
    written = _frame([])
    assert _write(ws, "roads", written) == 1
    assert_geodataframe_equal(ws.read("roads"), written)
    assert ws.counts()["roads"] == 0


def test_crs84_is_stored_as_epsg_4326(ws):
    written = _frame([Point(116.4, 39.9)]).set_crs("OGC:CRS84", allow_override=True)
    _write(ws, "net_cafes", written)
    assert ws.read("net_cafes").crs == "EPSG:4326"


def test_a_version_is_geoparquet_chunks_of_consecutive_rows_written_in_one_transaction(ws, monkeypatch):
    written = _frame([Point(116 + i / 100, 39) for i in range(500)])
    monkeypatch.setattr(layer_blob, "CHUNK_BYTES", 4_000)
    _write(ws, "net_cafes", written)
    with closing(sqlite3.connect(ws.gpkg_path)) as con:
        parts = con.execute("SELECT part, data, whole FROM civicmap_layer_data WHERE kind = 'net_cafes' "
                            "AND version = 1 ORDER BY part").fetchall()  # fmt: skip
    assert [p for p, _, _ in parts] == list(range(len(parts))) and len(parts) > 2
    assert all(whole == 1 for _, _, whole in parts)
    chunks = [gpd.read_parquet(io.BytesIO(d)) for _, d, _ in parts]  # any GeoParquet reader opens each
    assert all(d[:4] == b"PAR1" and d[-4:] == b"PAR1" for _, d, _ in parts)
    assert_geodataframe_equal(pd.concat(chunks, ignore_index=True), written, check_crs=False)
    assert_geodataframe_equal(ws.read("net_cafes"), written)
    assert ws.ids("net_cafes") == set(written["id"])

    def fail(name):
        raise RuntimeError(f"power cut while writing {name}")

    monkeypatch.setattr(store, "_before_commit", fail)
    with pytest.raises(RuntimeError, match="net_cafes__v2"):
        _write(ws, "net_cafes", written.iloc[:3])
    with closing(sqlite3.connect(ws.gpkg_path)) as con:  # all of version 2 rolled back, parts too
        assert con.execute("SELECT DISTINCT version FROM civicmap_layer_data").fetchall() == [(1,)]
    assert ws.versions("net_cafes") == [1] and [r.version for r in ws.history()] == [1]
    assert_geodataframe_equal(ws.read("net_cafes"), written)


def test_a_workspace_from_before_chunks_gains_the_column_and_reads_its_pieces(tmp_path):
    ws = Workspace.open(tmp_path / "ws", create=True)
    written = _frame([Point(116 + i / 100, 39) for i in range(200)])
    _write(ws, "net_cafes", written)
    data = layer_blob.encode_layer(written).to_pybytes()
    with closing(sqlite3.connect(ws.gpkg_path)) as con, con:  # as an earlier civicmap left it
        con.execute("DROP TABLE civicmap_layer_data")
        con.execute("CREATE TABLE civicmap_layer_data (kind TEXT NOT NULL, version INTEGER NOT NULL, "
                    "part INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (kind, version, part))")  # fmt: skip
        for number, start in enumerate(range(0, len(data), 1_000)):
            con.execute("INSERT INTO civicmap_layer_data VALUES ('net_cafes', 1, ?, ?)",
                        (number, data[start : start + 1_000]))  # fmt: skip
    reopened = Workspace.open(tmp_path / "ws")
    with closing(sqlite3.connect(ws.gpkg_path)) as con:
        columns = [r[1] for r in con.execute("PRAGMA table_info(civicmap_layer_data)")]
        wholes = {r[0] for r in con.execute("SELECT whole FROM civicmap_layer_data")}
    assert columns[-1] == "whole" and wholes == {0}
    assert_geodataframe_equal(reopened.read("net_cafes"), written)
    assert reopened.ids("net_cafes") == set(written["id"])
    _write(reopened, "net_cafes", written.iloc[:5])  # new versions are chunks, next to the pieces
    assert_geodataframe_equal(reopened.read("net_cafes"), written.iloc[:5])
    assert_geodataframe_equal(reopened.read("net_cafes", version=1), written)


# ------------------------------------------------------------------ never imported
@pytest.mark.parametrize("kind", KINDS)
def test_a_kind_never_imported_reads_as_an_empty_layer_of_its_schema(ws, kind):
    back = ws.read(kind)
    assert len(back) == 0
    assert back.crs == "EPSG:4326"
    assert list(back.columns) == list(empty_layer(kind).columns)
    assert back.columns[0] == "id" and back.columns[-1] == "geometry"
    assert ws.ids(kind) == set()


def test_the_empty_layer_of_schools_names_every_field_with_its_dtype():
    dtypes = {c: str(t) for c, t in empty_layer("schools").dtypes.items()}
    assert dtypes == {
        "id": "str", "name": "str", "level": "str", "address": "str", "subdistrict": "str", "students": "Int64",
        "approximate": "bool", "geometry": "geometry",
    }  # fmt: skip
    dtypes = {c: str(t) for c, t in empty_layer("cultural_facilities").dtypes.items()}
    assert dtypes["free_for_minors"] == "boolean" and dtypes["floor_area_m2"] == "float64"
    assert str(empty_layer("pois")["observed_at"].dtype) == "datetime64[us]"


# ------------------------------------------------------------------ versions, restore, history
def test_versions_increment_and_the_newest_is_current(ws):
    frames = [_frame([Point(116 + i, 39)] * (i + 1)) for i in range(3)]
    assert [_write(ws, "net_cafes", f) for f in frames] == [1, 2, 3]
    assert _write(ws, "schools", frames[0]) == 1  # numbered per kind
    assert ws.current_versions() == {"net_cafes": 3, "schools": 1}
    assert ws.versions("net_cafes") == [1, 2, 3]
    assert ws.counts()["net_cafes"] == 3 and ws.counts()["schools"] == 1 and ws.counts()["roads"] == 0
    assert set(ws.counts()) == set(KINDS)
    assert ws.ids("net_cafes") == {"id-0", "id-1", "id-2"}
    for version, frame in enumerate(frames, start=1):
        assert_geodataframe_equal(ws.read("net_cafes", version=version), frame)


def test_history_records_who_what_and_how_many(ws):
    before = datetime.now(UTC).replace(microsecond=0)
    _write(ws, "net_cafes", _frame([Point(1, 1), Point(2, 2)]), note="季度更新")
    (record,) = ws.history()
    assert record == ImportRecord(
        id=record.id, kind="net_cafes", version=1, user="zhang.san", at=record.at, file_name="网吧名单.xlsx",
        file_sha256="ab" * 32, crs="gcj02", rows_read=3, rows_imported=2, rows_rejected=1, action="import",
        note="季度更新",
    )  # fmt: skip
    at = datetime.fromisoformat(record.at)
    assert at.utcoffset().total_seconds() == 0
    assert before <= at <= datetime.now(UTC)


def test_restore_makes_an_earlier_version_current_and_is_recorded(ws):
    first, second = _frame([Point(1, 1)]), _frame([Point(2, 2), Point(3, 3)])
    _write(ws, "net_cafes", first, source_name="a.xlsx", source_sha256="a" * 64, rows_read=1, rows_rejected=0)
    _write(ws, "net_cafes", second, source_name="b.xlsx", user="li.si")
    ws.restore("net_cafes", 1, user="wang.wu")
    assert ws.current_versions() == {"net_cafes": 1}
    assert_geodataframe_equal(ws.read("net_cafes"), first)
    assert ws.counts()["net_cafes"] == 1 and ws.ids("net_cafes") == {"id-0"}
    latest = ws.history("net_cafes")[0]
    assert (latest.action, latest.version, latest.user, latest.file_name, latest.file_sha256, latest.rows_imported) == (
        "restore", 1, "wang.wu", "a.xlsx", "a" * 64, 1,
    )  # fmt: skip
    assert latest.note == "restored version 1 (version 2 was current)"
    assert [r.action for r in ws.history()] == ["restore", "import", "import"]
    ws.restore("net_cafes", 1, user="wang.wu")  # already current: nothing to do, nothing recorded
    assert len(ws.history()) == 3
    assert _write(ws, "net_cafes", first) == 3  # numbers are never reused


def test_restore_of_a_version_not_stored_names_the_stored_ones(ws):
    _write(ws, "net_cafes", _frame([Point(1, 1)]))
    with pytest.raises(WorkspaceError, match=r"cannot restore net_cafes version 5: .* stored versions: 1$"):
        ws.restore("net_cafes", 5, user="u")
    with pytest.raises(WorkspaceError, match=r"net_cafes version 2 is not stored .* stored versions: 1$"):
        ws.read("net_cafes", version=2)
    with pytest.raises(WorkspaceError, match=r"stored versions: none$"):
        ws.restore("schools", 1, user="u")
    with pytest.raises(WorkspaceError, match=r"version = '1': expected an integer"):
        ws.read("net_cafes", version="1")


def test_old_versions_are_pruned_beyond_the_setting(tmp_path):
    ws = Workspace.open(tmp_path / "ws", create=True, keep_versions=2)
    frames = [_frame([Point(i, i)]) for i in range(4)]
    for frame in frames:
        _write(ws, "net_cafes", frame)
    assert ws.versions("net_cafes") == [3, 4]
    assert_geodataframe_equal(ws.read("net_cafes", version=3), frames[2])
    with pytest.raises(WorkspaceError, match=r"net_cafes version 1 is not stored .* stored versions: 3, 4"):
        ws.read("net_cafes", version=1)
    assert [r.version for r in ws.history()] == [4, 3, 2, 1]  # the history keeps everything
    with closing(sqlite3.connect(ws.gpkg_path)) as con:
        stored = con.execute("SELECT DISTINCT version FROM civicmap_layer_data ORDER BY version").fetchall()
    assert stored == [(3,), (4,)]
    ws.restore("net_cafes", 3, user="u")
    _write(ws, "net_cafes", frames[0])  # current 5 and the newest other one, 4, are kept
    assert ws.versions("net_cafes") == [4, 5]


@pytest.mark.parametrize("keep", [0, -1, 1.5, True, "3"])
def test_keep_versions_must_be_a_positive_integer(tmp_path, keep):
    with pytest.raises(WorkspaceError, match=r"keep_versions = .*: expected an integer >= 1"):
        Workspace.open(tmp_path / "ws", create=True, keep_versions=keep)


# ------------------------------------------------------------------ the database
def test_the_database_is_in_wal_mode_and_readers_do_not_wait_for_a_writer(ws):
    _write(ws, "net_cafes", _frame([Point(1, 1)]))
    script = (
        "import sqlite3, sys, time; con = sqlite3.connect(sys.argv[1], isolation_level=None); "
        "print(con.execute('PRAGMA journal_mode').fetchone()[0], flush=True); "
        "con.execute('BEGIN IMMEDIATE'); con.execute('CREATE TABLE busy (x)'); print('writing', flush=True); "
        "time.sleep(30)"
    )
    writer = subprocess.Popen(
        [sys.executable, "-c", script, str(ws.gpkg_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout.readline().strip() == "wal"
        assert writer.stdout.readline().strip() == "writing"
        assert len(ws.read("net_cafes")) == 1
        assert ws.counts()["net_cafes"] == 1 and ws.ids("net_cafes") == {"id-0"}
    finally:
        writer.kill()
        writer.communicate()


def test_sqlite_gives_other_modules_a_transaction_in_the_same_file(ws):
    with ws.sqlite() as con:
        con.execute("CREATE TABLE IF NOT EXISTS cases (id INTEGER PRIMARY KEY, title TEXT)")
        con.execute("INSERT INTO cases (title) VALUES (?)", ("无证经营",))
    with pytest.raises(ZeroDivisionError), ws.sqlite() as con:
        con.execute("INSERT INTO cases (title) VALUES ('rolled back')")
        raise ZeroDivisionError
    with ws.sqlite() as con:
        assert con.execute("SELECT title FROM cases").fetchall() == [("无证经营",)]
    _write(ws, "net_cafes", _frame([Point(1, 1)]))  # other tables do not disturb the store
    assert ws.current_versions() == {"net_cafes": 1}


# ------------------------------------------------------------------ opening and bad input
def test_open_needs_an_existing_workspace_unless_asked_to_create(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere"
    with pytest.raises(WorkspaceError, match=f"workspace {missing} not found"):
        Workspace.open(missing)
    assert not missing.exists()
    with pytest.raises(WorkspaceError, match="no workspace given: pass a folder or set CIVICMAP_WORKSPACE"):
        Workspace.open()
    monkeypatch.setenv("CIVICMAP_WORKSPACE", str(missing))
    ws = Workspace.open(create=True)
    assert ws.path == missing and ws.gpkg_path == missing / "civicmap.gpkg" and ws.gpkg_path.is_file()
    assert Workspace.open().current_versions() == {}
    (tmp_path / "file").write_text("x")
    with pytest.raises(WorkspaceError, match="is a file, expected a folder"):
        Workspace.open(tmp_path / "file", create=True)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "civicmap.gpkg").write_text("not a database")
    with pytest.raises(WorkspaceError, match=r"civicmap\.gpkg is not a readable GeoPackage"):
        Workspace.open(tmp_path / "junk")


def test_a_geopackage_made_elsewhere_is_adopted(tmp_path):
    (tmp_path / "ws").mkdir()
    layer = _frame([Point(1, 1)])
    pyogrio.write_dataframe(layer, tmp_path / "ws" / "civicmap.gpkg", layer="from_qgis")
    ws = Workspace.open(tmp_path / "ws")
    assert ws.current_versions() == {}
    assert _write(ws, "net_cafes", layer) == 1


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (
            lambda f: f.to_crs(3857),
            CRSError,
            r"net_cafes: layers are stored in EPSG:4326 \(WGS84\), got EPSG:3857",
        ),
        (lambda f: f.set_crs(None, allow_override=True), CRSError, "got None"),
        (lambda f: f.drop(columns="id"), WorkspaceError, "net_cafes: the layer has no 'id' column"),
        (
            lambda f: f.assign(id=["a", "a"]),
            WorkspaceError,
            r"'id' must be unique .* offending values: \['a'\]",
        ),
        (lambda f: f.assign(id=["a", None]), WorkspaceError, "'id' must be unique and not missing"),
        (
            lambda f: f.assign(fid=[1, 2]),
            WorkspaceError,
            r"column\(s\) fid: names must be unique ignoring case",
        ),
        (
            lambda f: f.assign(Name=["x", "y"]),
            WorkspaceError,
            r"column\(s\) Name, name: names must be unique",
        ),
        (lambda f: pd.DataFrame(f.drop(columns="geometry")), WorkspaceError, "expected a GeoDataFrame"),
        (lambda f: f.assign(other=f.geometry), WorkspaceError, "one active geometry column"),
    ],
)
def test_write_refuses_frames_that_break_the_store_rules(ws, change, error, message):
    with pytest.raises(error, match=message):
        _write(ws, "net_cafes", change(_frame([Point(116, 39), Point(116.1, 39)])))
    assert ws.current_versions() == {} and ws.history() == []
    assert not [n for n in pyogrio.list_layers(ws.gpkg_path)[:, 0] if n.startswith("net_cafes")]


def test_unknown_kinds_are_refused_everywhere(ws):
    frame = _frame([Point(1, 1)])
    for call in (
        lambda: ws.read("net_cafes; DROP TABLE civicmap_history"),
        lambda: _write(ws, "../etc", frame),
        lambda: ws.restore("bars", 1, user="u"),
        lambda: ws.ids("bars"),
        lambda: ws.history("bars"),
        lambda: ws.versions("bars"),
    ):
        with pytest.raises(CivicmapError, match="unknown layer kind"):
            call()
