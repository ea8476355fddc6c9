"""The workspace as a GeoPackage: published feature tables for QGIS, the R-tree, older-format workspaces."""

from __future__ import annotations

import gzip
import shutil
import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal
from shapely.geometry import Point, Polygon

from layers import gpkg_view
from layers.errors import WorkspaceError
from layers.store import Workspace

LEGACY = Path(__file__).resolve().parents[1] / "data" / "legacy_workspace" / "civicmap.gpkg.gz"
SQUARE = Polygon([(116.0, 39.0), (116.001, 39.0), (116.001, 39.001), (116.0, 39.001)])


@pytest.fixture
def ws(tmp_path) -> Workspace:
    return Workspace.open(tmp_path / "ws", create=True)


@pytest.fixture
def legacy(tmp_path) -> Workspace:
    """A workspace written by the store before blobs (commit 50627d1): feature tables ``<kind>__v<N>``."""
    folder = tmp_path / "old"
    folder.mkdir()
    with gzip.open(LEGACY) as src, open(folder / "civicmap.gpkg", "wb") as dst:
        shutil.copyfileobj(src, dst)
    return Workspace.open(folder)


def _write(ws: Workspace, kind: str, gdf: gpd.GeoDataFrame) -> int:
    return ws.write(kind, gdf, user="u", source_name="f.csv", source_sha256="0" * 64, crs="wgs84",
                    rows_read=len(gdf), rows_rejected=0)  # fmt: skip


def _points(n: int, seed: int = 7) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    return gpd.GeoDataFrame(
        {"id": pd.Series([f"p{i}" for i in range(n)], dtype="str"),
         "terminals": pd.array(rng.integers(0, 300, n), dtype="Int64")},
        geometry=shapely.points(116 + rng.random(n), 39 + rng.random(n)),
        crs="EPSG:4326",
    )  # fmt: skip


def _layers(ws: Workspace) -> set[str]:
    return {str(n) for n in pyogrio.list_layers(ws.gpkg_path)[:, 0]}


# ------------------------------------------------------------------ publishing for QGIS
def test_imports_write_no_feature_table_until_published(ws):
    first = _points(300)
    _write(ws, "net_cafes", first)
    _write(ws, "schools", gpd.GeoDataFrame({"id": ["s1", "s2"]}, geometry=[SQUARE, Point(116, 39)], crs=4326))
    assert _layers(ws) == {"civicmap_workspace"}
    assert ws.published() == {}
    assert ws.publish_gpkg() == {"net_cafes": 1, "schools": 1}
    assert _layers(ws) == {"civicmap_workspace", "net_cafes", "schools"}
    assert ws.published() == {"net_cafes": 1, "schools": 1}
    shown = pyogrio.read_dataframe(ws.gpkg_path, layer="net_cafes")  # what QGIS opens
    assert shown["id"].tolist() == first["id"].tolist()
    assert shown["terminals"].tolist() == first["terminals"].tolist()
    assert shapely.equals(shown.geometry.values, first.geometry.values).all()
    assert pyogrio.read_dataframe(ws.gpkg_path, layer="schools").geom_type.tolist() == ["Polygon", "Point"]
    with closing(sqlite3.connect(ws.gpkg_path)) as con:
        description = con.execute(
            "SELECT description FROM gpkg_contents WHERE table_name = 'net_cafes'"
        ).fetchone()
    assert description == ("网吧 Net cafés: civicmap version 1 (a published copy)",)


def test_publishing_again_rewrites_only_stale_tables(ws):
    _write(ws, "net_cafes", _points(10, seed=1))
    _write(ws, "pois", _points(5, seed=2))
    ws.publish_gpkg()
    second = _points(20, seed=3)
    _write(ws, "net_cafes", second)
    assert ws.published() == {"net_cafes": 1, "pois": 1}  # an import leaves the view stale
    marker = gpd.GeoDataFrame({"id": ["marker"]}, geometry=[Point(1, 1)], crs=4326)
    pyogrio.write_dataframe(marker, ws.gpkg_path, layer="pois", append=True)  # pois is up to date: kept as is
    assert ws.publish_gpkg() == {"net_cafes": 2, "pois": 1}
    assert "marker" in set(pyogrio.read_dataframe(ws.gpkg_path, layer="pois")["id"])
    assert pyogrio.read_dataframe(ws.gpkg_path, layer="net_cafes")["id"].tolist() == second["id"].tolist()
    ws.restore("net_cafes", 1, user="u")
    assert ws.publish_gpkg(["net_cafes"]) == {"net_cafes": 1}
    assert len(pyogrio.read_dataframe(ws.gpkg_path, layer="net_cafes")) == 10
    assert ws.publish_gpkg(["roads"]) == {}  # never imported: nothing to show
    with closing(sqlite3.connect(ws.gpkg_path)) as con:  # one table per kind, nothing left behind
        tables = {r[0] for r in con.execute("SELECT table_name FROM gpkg_contents")}
        assert tables == {"civicmap_workspace", "net_cafes", "pois"}
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_table_civicmap_did_not_make_is_never_replaced(ws):
    _write(ws, "zones", _points(3))
    other = gpd.GeoDataFrame({"note": ["mine"]}, geometry=[Point(1, 1)], crs=4326)
    pyogrio.write_dataframe(other, ws.gpkg_path, layer="zones", append=True)
    with pytest.raises(
        WorkspaceError, match=r"cannot publish zones: .* holds a table 'zones' that civicmap did not"
    ):
        ws.publish_gpkg()
    assert pyogrio.read_dataframe(ws.gpkg_path, layer="zones")["note"].tolist() == ["mine"]


def test_the_published_r_tree_is_valid_used_by_gdal_and_kept_up_to_date_by_its_triggers(ws):
    n = 3_000
    written = _points(n)
    geoms = written.geometry.array.copy()
    geoms[5], geoms[6], geoms[7] = None, Point(), SQUARE  # null and empty ones are not indexed
    written = written.set_geometry(gpd.GeoSeries(geoms, crs=4326))
    _write(ws, "pois", written)
    ws.publish_gpkg()
    rtree = "rtree_pois_geom"
    with closing(sqlite3.connect(ws.gpkg_path)) as con:
        assert con.execute(f"SELECT rtreecheck('{rtree}')").fetchone() == ("ok",)
        assert con.execute(f'SELECT count(*) FROM "{rtree}"').fetchone() == (n - 2,)
        extensions = con.execute(
            "SELECT extension_name, scope FROM gpkg_extensions WHERE table_name = 'pois'"
        )
        assert extensions.fetchall() == [("gpkg_rtree_index", "write-only")]
    bbox = (116.2, 39.3, 116.45, 39.6)
    inside = written[written.intersects(shapely.box(*bbox))]
    got = pyogrio.read_dataframe(ws.gpkg_path, layer="pois", bbox=bbox)
    assert set(got["id"]) == set(inside["id"]) and 0 < len(got) < n
    # QGIS or GDAL editing the table later: the triggers keep the index right
    extra = gpd.GeoDataFrame({"id": ["new"]}, geometry=[Point(116.3, 39.4)], crs=4326)
    pyogrio.write_dataframe(extra, ws.gpkg_path, layer="pois", append=True)
    with closing(sqlite3.connect(ws.gpkg_path)) as con:
        assert con.execute(f"SELECT rtreecheck('{rtree}')").fetchone() == ("ok",)
        assert con.execute(f'SELECT count(*) FROM "{rtree}"').fetchone() == (n - 1,)
    assert "new" in set(pyogrio.read_dataframe(ws.gpkg_path, layer="pois", bbox=bbox)["id"])
    assert "new" not in set(ws.read("pois")["id"])  # the view is a copy; civicmap reads its own versions


@pytest.mark.parametrize(
    "n", [1, 51, 52, 2_602, 2_700]
)  # one node, full node, two nodes, two and three levels
def test_the_packed_r_tree_is_valid_and_answers_like_brute_force(n):
    rng = np.random.default_rng(n)
    x, y = 116 + rng.random(n) * 2, 39 + rng.random(n)
    bounds = np.column_stack([x, y, x + rng.random(n) * 0.01, y + rng.random(n) * 0.01])
    with closing(sqlite3.connect(":memory:")) as con:
        con.execute("CREATE TABLE t (fid INTEGER PRIMARY KEY, geom BLOB)")
        gpkg_view.build_rtree(con, "t", bounds)
        assert con.execute("SELECT rtreecheck('rtree_t_geom')").fetchone() == ("ok",)
        for box in [(116.3, 117.2, 39.2, 39.6), (115, 119, 38, 41), (0, 1, 0, 1)]:
            sql = "SELECT id FROM rtree_t_geom WHERE maxx >= ? AND minx <= ? AND maxy >= ? AND miny <= ?"
            got = {r[0] for r in con.execute(sql, box)}
            hit = (
                (bounds[:, 2] >= box[0])
                & (bounds[:, 0] <= box[1])
                & (bounds[:, 3] >= box[2])
                & (bounds[:, 1] <= box[3])
            )
            assert got == set((np.flatnonzero(hit) + 1).tolist())


def test_gdal_and_sqlite3_never_have_the_file_open_at_once_in_one_process():
    gate, events = gpkg_view.LibraryGate(), []
    with gate.enter(gpkg_view.GDAL):
        with gate.enter(gpkg_view.GDAL):  # nesting one library is fine
            pass
        with (
            pytest.raises(RuntimeError, match="while this thread has it open with GDAL"),
            gate.enter(gpkg_view.SQLITE3),
        ):
            pass

        def other():
            with gate.enter(gpkg_view.SQLITE3):
                events.append("sqlite3 in")

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(0.2)
        assert events == []  # waits while GDAL is in
        events.append("GDAL out")
    thread.join(5)
    assert events == ["GDAL out", "sqlite3 in"]


# ------------------------------------------------------------------ workspaces of the older format
def test_an_older_workspace_opens_and_reads_as_it_was_written(legacy):
    assert legacy.current_versions() == {"net_cafes": 2, "schools": 1}
    assert legacy.versions("net_cafes") == [1, 2]
    assert legacy.counts()["net_cafes"] == 2 and legacy.counts()["schools"] == 2
    assert legacy.ids("net_cafes") == {"nc-a", "nc-b"}
    first = legacy.read("net_cafes", version=1)
    assert first["id"].tolist() == ["nc-a", "nc-b", "nc-c"]
    assert first["name"].tolist()[:2] == ["星海网吧", "<b>云端</b>网咖"] and pd.isna(first["name"].iloc[2])
    assert first["terminals"].tolist()[0] == 120 and pd.isna(first["terminals"].iloc[1])
    assert str(first["terminals"].dtype) == "Int64" and first.crs == "EPSG:4326"
    assert legacy.read("net_cafes")["terminals"].tolist() == [130, 5]
    schools = legacy.read("schools")
    assert schools.geom_type.tolist() == ["Polygon", "Point"] and schools["approximate"].tolist() == [
        False,
        True,
    ]
    assert [(r.kind, r.version, r.user) for r in legacy.history()] == [
        ("schools", 1, "zhang.san"), ("net_cafes", 2, "li.si"), ("net_cafes", 1, "zhang.san"),
    ]  # fmt: skip


def test_an_older_workspace_takes_new_versions_restores_and_prunes_its_tables(legacy):
    assert _write(legacy, "net_cafes", _points(4)) == 3
    assert legacy.read("net_cafes")["id"].tolist() == ["p0", "p1", "p2", "p3"]
    legacy.restore("net_cafes", 1, user="u")  # an older-format version is current again
    assert legacy.read("net_cafes")["id"].tolist() == ["nc-a", "nc-b", "nc-c"]
    assert legacy.publish_gpkg(["net_cafes"]) == {"net_cafes": 1}
    assert pyogrio.read_dataframe(legacy.gpkg_path, layer="net_cafes")["id"].tolist() == [
        "nc-a",
        "nc-b",
        "nc-c",
    ]
    pruning = Workspace.open(legacy.path, keep_versions=1)
    _write(pruning, "net_cafes", _points(2))
    assert pruning.versions("net_cafes") == [4]
    assert "net_cafes__v1" not in _layers(pruning) and "net_cafes__v2" not in _layers(pruning)
    assert "schools__v1" in _layers(pruning)  # untouched until schools is imported again
    with closing(sqlite3.connect(pruning.gpkg_path)) as con:
        assert con.execute(
            "SELECT count(*) FROM gpkg_contents WHERE table_name LIKE 'net_cafes__v%'"
        ).fetchone() == (0,)
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_read_of_an_older_version_racing_a_prune_looks_again(legacy, monkeypatch):
    real, calls = gpkg_view.pyogrio.read_dataframe, []

    def pruned_once(path, layer, **kwargs):
        calls.append(layer)
        if len(calls) == 1:  # as if an import had moved the pointer on and pruned this table meanwhile
            raise pyogrio.errors.DataLayerError(f"Layer '{layer}' could not be opened")
        return real(path, layer=layer, **kwargs)

    monkeypatch.setattr(gpkg_view.pyogrio, "read_dataframe", pruned_once)
    assert legacy.read("net_cafes")["id"].tolist() == ["nc-a", "nc-b"]
    assert calls == ["net_cafes__v2", "net_cafes__v2"]
    calls.clear()
    with pytest.raises(WorkspaceError, match=r"net_cafes: net_cafes__v1 vanished while being read"):
        legacy.read("net_cafes", version=1)  # an explicit version is not looked up again


def test_orphan_tables_of_an_interrupted_older_import_are_dropped_on_open(legacy):
    orphan = _points(2)
    pyogrio.write_dataframe(orphan, legacy.gpkg_path, layer="net_cafes__v3", append=True)  # never registered
    pyogrio.write_dataframe(orphan, legacy.gpkg_path, layer="custom_layer", append=True)  # not ours: kept
    Workspace.open(legacy.path)
    assert "net_cafes__v3" not in _layers(legacy) and {"net_cafes__v2", "custom_layer"} <= _layers(legacy)
    assert _write(legacy, "net_cafes", orphan) == 3
    assert_geodataframe_equal(legacy.read("net_cafes"), orphan)


def test_an_interrupted_publish_is_finished_by_the_next_one(ws):
    frame = _points(40)
    _write(ws, "pois", frame)
    # as a publish killed while GDAL wrote: marked in progress (0), the table half there
    with closing(sqlite3.connect(ws.gpkg_path)) as con:
        con.execute("INSERT INTO civicmap_published VALUES ('pois', 0, '2026-01-01T00:00:00+00:00')")
        con.commit()
    pyogrio.write_dataframe(frame.iloc[:7], ws.gpkg_path, layer="pois", append=True)
    assert ws.published() == {}
    assert ws.publish_gpkg() == {"pois": 1}
    assert pyogrio.read_dataframe(ws.gpkg_path, layer="pois")["id"].tolist() == frame["id"].tolist()


def test_the_publish_command_names_the_tables_it_wrote(ws, capsys):
    import cli

    _write(ws, "net_cafes", _points(3))
    _write(ws, "schools", gpd.GeoDataFrame({"id": ["s1"]}, geometry=[SQUARE], crs=4326))
    assert cli.main(["publish", "net_cafes", "--workspace", str(ws.path)]) == 0
    out = capsys.readouterr().out
    assert "net_cafes              version 1" in out and "1 layer(s) ready to open in QGIS" in out
    assert _layers(ws) == {"civicmap_workspace", "net_cafes"}
    assert cli.main(["publish", "--workspace", str(ws.path)]) == 0
    assert "2 layer(s) ready" in capsys.readouterr().out
    assert _layers(ws) == {"civicmap_workspace", "net_cafes", "schools"}
    assert cli.main(["publish", "bars", "--workspace", str(ws.path)]) == 2
    assert "unknown layer kind" in capsys.readouterr().err
