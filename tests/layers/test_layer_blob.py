"""Layer blobs: point layers stored from lon/lat arrays without shapely, and every encoding read back."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal
from shapely.geometry import Point, Polygon

from layers import layer_blob
from layers.errors import WorkspaceError
from layers.importer import import_file
from layers.layer_blob import PointRows, decode_layer, encode_layer
from layers.store import Workspace

LON = np.array([108.94, 108.9512345, 116.3975])
LAT = np.array([34.25, 34.2601234, 39.9087])


def _rows() -> PointRows:
    attributes = pd.DataFrame(
        {
            "id": pd.array(["nc-a", "nc-b", "nc-c"], dtype="str"),
            "name": pd.array(["甲网吧", None, "丙网吧"], dtype="str"),
            "terminals": pd.array([80, None, 120], dtype="Int64"),
            "approximate": np.array([False, False, True]),
            "source_row": np.array([1, 2, 4], dtype=np.int64),
        }
    )
    return PointRows(attributes, LON.copy(), LAT.copy())


def _columns(frame: gpd.GeoDataFrame) -> list[list[str]]:
    return [[str(c), str(t)] for c, t in frame.dtypes.items()]


def test_point_rows_become_the_geodataframe_they_describe() -> None:
    frame = _rows().to_geodataframe()
    assert frame.crs.to_epsg() == 4326
    assert list(frame.columns) == ["id", "name", "terminals", "approximate", "source_row", "geometry"]
    assert [(p.x, p.y) for p in frame.geometry] == list(zip(LON.tolist(), LAT.tolist(), strict=True))
    assert _rows().columns == _columns(frame)
    assert len(_rows()) == 3


def test_point_rows_refuse_arrays_of_another_length() -> None:
    with pytest.raises(ValueError, match="3 rows but 2 lon"):
        PointRows(_rows().attributes, LON[:2], LAT[:2])


def test_point_rows_blob_is_the_same_bytes_as_the_blob_of_their_geodataframe() -> None:
    rows = _rows()
    assert encode_layer(rows).to_pybytes() == encode_layer(rows.to_geodataframe()).to_pybytes()


def test_point_rows_blob_is_geoparquet_point_encoding_that_geopandas_reads(tmp_path: Path) -> None:
    data = encode_layer(_rows())
    table = pq.read_table(pa.BufferReader(data))
    geo = json.loads(table.schema.metadata[b"geo"])
    assert geo["columns"]["geometry"]["encoding"] == "point"
    assert geo["columns"]["geometry"]["geometry_types"] == ["Point"]
    assert table.column("geometry").type == pa.struct([pa.field("x", pa.float64(), nullable=False),
                                                       pa.field("y", pa.float64(), nullable=False)])  # fmt: skip
    path = tmp_path / "points.parquet"
    path.write_bytes(data.to_pybytes())
    back = gpd.read_parquet(path)  # an independent reader of the native encoding
    assert back.crs.to_epsg() == 4326
    assert shapely.get_coordinates(back.geometry.array).tolist() == np.column_stack([LON, LAT]).tolist()
    assert back["id"].tolist() == ["nc-a", "nc-b", "nc-c"]


def test_decode_gives_back_exactly_what_the_point_rows_describe(monkeypatch) -> None:
    rows = _rows()
    monkeypatch.setattr(layer_blob, "CHUNK_BYTES", 1)  # a chunk a row
    chunks = [c.to_pybytes() for c in layer_blob.encode_chunks(rows)]
    assert len(chunks) == 3
    assert_geodataframe_equal(decode_layer(chunks, rows.columns), rows.to_geodataframe())


def test_blobs_stored_as_byte_pieces_of_one_file_still_decode() -> None:
    # how versions were stored before chunks: one file cut into pieces of at most 256 MiB
    rows = _rows()
    data = encode_layer(rows).to_pybytes()
    pieces = [data[i : i + 500] for i in range(0, len(data), 500)]
    assert len(pieces) > 2
    back = decode_layer(pieces, rows.columns, whole=False)
    assert_geodataframe_equal(back, rows.to_geodataframe())
    assert layer_blob.decode_ids(pieces, whole=False) == ["nc-a", "nc-b", "nc-c"]


def test_blobs_written_in_wkb_still_decode() -> None:
    # how earlier versions stored mixed layers, and how any WKB GeoParquet looks
    frame = gpd.GeoDataFrame(
        {"id": pd.array(["s-1", "s-2", "s-3"], dtype="str")},
        geometry=[Point(108.94, 34.25), Polygon([(108.9, 34.2), (108.91, 34.2), (108.91, 34.21)]), None],
        crs="EPSG:4326",
    )
    sink = pa.BufferOutputStream()
    frame.to_parquet(sink, geometry_encoding="WKB", index=False)
    data = sink.getvalue()
    assert (
        json.loads(pq.read_schema(pa.BufferReader(data)).metadata[b"geo"])["columns"]["geometry"]["encoding"]
        == "WKB"
    )
    back = decode_layer([data.to_pybytes()], _columns(frame))
    assert_geodataframe_equal(back, frame)


def test_workspace_stores_point_rows_and_reads_a_geodataframe(tmp_path: Path) -> None:
    ws = Workspace.open(tmp_path / "ws", create=True)
    rows = _rows()
    version = ws.write("net_cafes", rows, user="t", source_name="t.csv", source_sha256="-", crs="wgs84",
                       rows_read=3, rows_rejected=0)  # fmt: skip
    assert version == 1
    assert_geodataframe_equal(ws.read("net_cafes"), rows.to_geodataframe())
    assert ws.ids("net_cafes") == {"nc-a", "nc-b", "nc-c"}


@pytest.mark.parametrize(
    ("ids", "lon", "message"),
    [
        (["nc-a", "nc-a", "nc-c"], LON, "'id' must be unique"),
        (["nc-a", "nc-b", "nc-c"], np.array([108.94, np.nan, 116.3975]), "1 point"),
        (["nc-a", "nc-b", "nc-c"], np.array([108.94, 200.0, 116.3975]), "first at position 1"),
    ],
)
def test_workspace_refuses_bad_point_rows_and_keeps_nothing(tmp_path: Path, ids, lon, message) -> None:
    ws = Workspace.open(tmp_path / "ws", create=True)
    attributes = _rows().attributes.assign(id=pd.array(ids, dtype="str"))
    with pytest.raises(WorkspaceError, match=message):
        ws.write("net_cafes", PointRows(attributes, lon, LAT), user="t", source_name="t.csv",
                 source_sha256="-", crs="wgs84", rows_read=3, rows_rejected=0)  # fmt: skip
    assert ws.versions("net_cafes") == []


def test_csv_import_stores_points_without_building_them(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "cafes.csv"
    path.write_text(
        "名称,经度,纬度,终端数\n甲网吧,108.94,34.25,80\n乙网吧,108.9512345,34.2601234,\n", "utf-8"
    )
    built = []
    real_points = shapely.points
    monkeypatch.setattr(shapely, "points", lambda *a, **k: built.append(1) or real_points(*a, **k))
    ws = Workspace.open(tmp_path / "ws", create=True)
    report = import_file(ws, "net_cafes", path, crs="wgs84", user="t")
    assert (report.rows_read, report.rows_valid, report.version) == (2, 2, 1)
    assert built == []  # neither validation nor the store made a shapely point
    monkeypatch.undo()
    back = ws.read("net_cafes")
    assert shapely.get_coordinates(back.geometry.array).tolist() == [
        [108.94, 34.25],
        [108.9512345, 34.2601234],
    ]
    assert back["terminals"].tolist()[0] == 80 and pd.isna(back["terminals"].iloc[1])
    assert back.crs.to_epsg() == 4326


def test_a_chunk_too_large_for_a_database_row_is_refused_clearly(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(layer_blob, "MAX_CHUNK_BYTES", 100)  # as if one row held a gigabyte of outline
    ws = Workspace.open(tmp_path / "ws", create=True)
    with pytest.raises(WorkspaceError, match=r"3 row\(s\) encode to .* more than a database row takes"):
        ws.write("net_cafes", _rows(), user="t", source_name="t.csv", source_sha256="-", crs="wgs84",
                 rows_read=3, rows_rejected=0)  # fmt: skip
    assert ws.versions("net_cafes") == []  # nothing half-written
