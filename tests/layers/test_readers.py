"""Readers: every format round-trips a tiny layer; encodings and layers are found."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
import shapely.affinity
from shapely.geometry import Polygon

from layers import readers
from layers.errors import LayerError
from layers.readers import detect_encoding, read_table

CAMPUS = Polygon([(108.94, 34.25), (108.942, 34.25), (108.942, 34.252), (108.94, 34.252)])
CAMPUS_2 = shapely.affinity.translate(CAMPUS, 0.01, 0.01)


def tiny_layer(crs: object = "EPSG:4326") -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"名称": ["碑林小学", "西安中学"], "学段": ["小学", "初中"], "学生数": [1200, 800]},
        geometry=[CAMPUS, CAMPUS_2],  # one type: shapefiles cannot mix
        crs=crs,
    )


def assert_same_layer(frame: pd.DataFrame, expected: gpd.GeoDataFrame) -> None:
    assert list(frame.index) == [1, 2]  # data rows, numbered as a user counts them
    assert frame["名称"].tolist() == expected["名称"].tolist()
    assert frame["学段"].tolist() == expected["学段"].tolist()
    assert frame["学生数"].astype(int).tolist() == [1200, 800]
    assert all(shapely.equals(np.asarray(frame["geometry"].array), np.asarray(expected.geometry.array)))


@pytest.mark.parametrize(("suffix", "driver"), [(".geojson", "GeoJSON"), (".gpkg", "GPKG"), (".shp", None)])
def test_ogr_formats_round_trip(tmp_path: Path, suffix: str, driver: str | None) -> None:
    layer = tiny_layer()
    path = tmp_path / f"schools{suffix}"
    layer.to_file(path, driver=driver, engine="pyogrio")
    raw = read_table(path)
    assert raw.has_geometry and raw.source == path.name and raw.encoding is None
    assert raw.file_crs is not None and raw.file_crs.name == "wgs84"
    assert_same_layer(raw.frame, layer)


def test_zipped_shapefile(tmp_path: Path) -> None:
    layer = tiny_layer("EPSG:4545")  # CGCS2000 3-degree Gauss-Krüger, CM 108°E
    layer.to_file(tmp_path / "schools.shp", engine="pyogrio")
    archive = tmp_path / "schools.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for part in tmp_path.glob("schools.*"):
            if part != archive:
                z.write(part, f"data/{part.name}")
    raw = read_table(archive)
    assert raw.file_crs.name == "EPSG:4545"
    assert_same_layer(raw.frame, layer)


def test_zip_with_two_shapefiles_needs_a_layer(tmp_path: Path) -> None:
    tiny_layer().to_file(tmp_path / "a.shp", engine="pyogrio")
    tiny_layer().iloc[:1].to_file(tmp_path / "b.shp", engine="pyogrio")
    archive = tmp_path / "two.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for part in sorted(tmp_path.glob("[ab].*")):
            z.write(part, part.name)
    with pytest.raises(LayerError) as err:
        read_table(archive)
    assert err.value.problems[0].expected == "zip holds 2 shapefiles (a.shp, b.shp); name one"
    assert read_table(archive, layer="b").rows == 1


def test_shapefile_without_prj_declares_no_crs(tmp_path: Path) -> None:
    tiny_layer().to_file(tmp_path / "s.shp", engine="pyogrio")
    (tmp_path / "s.prj").unlink()
    raw = read_table(tmp_path / "s.shp")
    assert raw.file_crs is None and raw.default_crs is None


def test_geopackage_layers(tmp_path: Path) -> None:
    path = tmp_path / "bureau.gpkg"
    tiny_layer().to_file(path, layer="schools", engine="pyogrio")
    tiny_layer().iloc[:1].to_file(path, layer="extra", engine="pyogrio")
    with pytest.raises(LayerError) as err:
        read_table(path)
    assert "2 layers (schools, extra)" in err.value.problems[0].expected
    raw = read_table(path, layer="schools")
    assert raw.source == "bureau.gpkg:schools"
    assert_same_layer(raw.frame, tiny_layer())
    with pytest.raises(LayerError, match="layer 'nope' not found; layers: schools, extra"):
        read_table(path, layer="nope")


def test_geopackage_attribute_table_is_a_coordinate_table(tmp_path: Path) -> None:
    path = tmp_path / "t.gpkg"
    pyogrio.write_dataframe(
        pd.DataFrame({"名称": ["a"], "经度": [108.95], "纬度": [34.25]}), path, layer="cafes"
    )
    raw = read_table(path)
    assert not raw.has_geometry and raw.file_crs is None
    assert raw.frame.loc[1].tolist() == ["a", 108.95, 34.25]


def test_geojson_without_crs_member_defaults_to_wgs84(tmp_path: Path) -> None:
    feature = {
        "type": "Feature",
        "properties": {"名称": "a"},
        "geometry": {"type": "Point", "coordinates": [108.9, 34.2]},
    }
    plain = tmp_path / "plain.geojson"
    plain.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}), encoding="utf-8")
    raw = read_table(plain)
    assert raw.file_crs is None and raw.default_crs.name == "wgs84"
    crs = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4490"}}
    late = tmp_path / "late.geojson"  # a crs member after the features is still found
    late.write_text(
        json.dumps({"type": "FeatureCollection", "features": [feature], "crs": crs}), encoding="utf-8"
    )
    assert read_table(late).file_crs.name == "cgcs2000"


def test_geoparquet_round_trip_and_unknown_crs(tmp_path: Path) -> None:
    path = tmp_path / "schools.parquet"
    tiny_layer("EPSG:4490").to_parquet(path)
    raw = read_table(path)
    assert raw.file_crs.name == "cgcs2000" and raw.default_crs is None
    assert_same_layer(raw.frame, tiny_layer())
    unknown = tmp_path / "unknown.parquet"
    tiny_layer(None).to_parquet(unknown)  # "crs": null means unknown: the user must say
    raw = read_table(unknown)
    assert raw.file_crs is None and raw.default_crs is None


def test_plain_parquet_is_a_coordinate_table(tmp_path: Path) -> None:
    path = tmp_path / "cafes.parquet"
    pd.DataFrame({"名称": ["a"], "经度": [108.9], "纬度": [34.2]}).to_parquet(path)
    raw = read_table(path)
    assert not raw.has_geometry and raw.frame.loc[1, "经度"] == 108.9


@pytest.mark.parametrize(
    ("encoding", "detected"),
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("gbk", "gb18030"), ("gb18030", "gb18030")],
)
def test_csv_encodings(csv_file, encoding: str, detected: str) -> None:
    path = csv_file("名称,经度,纬度,许可证号\n碑林区网吧,108.95,34.25,00123\n", encoding=encoding)
    raw = read_table(path)
    assert raw.encoding == detected
    assert list(raw.frame.columns) == ["名称", "经度", "纬度", "许可证号"]
    # every cell is kept as written: no number parsing, leading zeros survive
    assert raw.frame.loc[1].tolist() == ["碑林区网吧", "108.95", "34.25", "00123"]


def test_detect_encoding_falls_back_to_charset_normalizer() -> None:
    text = "名称,地址\n" + "碑林区网吧,西安市碑林区东关南街13号\n" * 5
    assert detect_encoding(text.encode("utf-16")) in ("utf_16", "utf-16")


def test_csv_blank_lines_keep_row_numbers_and_tabs(csv_file) -> None:
    path = csv_file("名称\t经度\t纬度\r\na\t1\t2\r\n\r\n\t\t\r\nb\t3\t4\r\n", name="t.tsv")
    raw = read_table(path)
    assert raw.blank_rows == 2
    assert list(raw.frame.index) == [1, 4]
    assert raw.frame["名称"].tolist() == ["a", "b"]


def test_csv_duplicate_and_empty_headers_are_kept(csv_file) -> None:
    raw = read_table(csv_file("名称,名称,,经度,\na,b,c,1,\n"))
    assert list(raw.frame.columns) == ["名称", "名称", "(column 3)", "经度"]


def test_xlsx_round_trip_and_sheets(xlsx_file) -> None:
    path = xlsx_file([["名称", "经度", "纬度", "终端数"], ["a", 108.95, 34.25, 120], [None, None, None, None],
                      ["b", 108.96, 34.26, 80]])  # fmt: skip
    raw = read_table(path)
    assert raw.format == "xlsx" and raw.blank_rows == 1
    assert list(raw.frame.index) == [1, 3]
    assert raw.frame.loc[3].tolist() == ["b", 108.96, 34.26, 80]  # Excel's own cell types
    assert read_table(path, layer="Sheet1").rows == 2
    with pytest.raises(LayerError, match="sheet 'x' not found; sheets: Sheet1"):
        read_table(path, layer="x")


@pytest.mark.parametrize(
    "tail",
    [
        "末行网吧,108.95,34.25\n".encode("gb18030"),  # GBK bytes only far past the first block
        b"bad\xed\xa0\x80,108.95,34.25\n",  # an encoded surrogate: not strict UTF-8
        b"bad\xff,108.95,34.25\n",
    ],
)
def test_csv_that_is_utf8_until_a_late_row_takes_the_careful_path(tmp_path: Path, tail: bytes) -> None:
    body = "".join(f"nc{i},108.95,34.25\n" for i in range(20_000)).encode()
    data = b"name,lon,lat\n" + body + tail  # ASCII, valid UTF-8, until the last row
    with pytest.raises(LayerError, match=r"(?i)utf-?8"):  # Arrow's own check refuses it...
        readers._parse_csv(data, "late.csv", "utf-8")
    path = tmp_path / "late.csv"
    path.write_bytes(data)
    raw = read_table(path)  # ...so the encoding is detected as before
    assert raw.encoding == detect_encoding(data) != "utf-8"
    assert raw.rows == 20_001
    assert raw.frame.iloc[-1].tolist() == data.splitlines()[-1].decode(raw.encoding).split(",")


def test_utf8_csv_read_in_one_pass_reports_its_encoding(csv_file) -> None:
    raw = read_table(csv_file("名称,经度,纬度\n甲,108.95,34.25\n", encoding="utf-8-sig"))
    assert raw.encoding == "utf-8-sig" and list(raw.frame.columns) == ["名称", "经度", "纬度"]
