"""A table of broken files: each problem names the right row and field and says what was expected.

Rows are data rows counted from 1 below the header (spreadsheet line = row + 1).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import LineString, Point, Polygon

from layers.errors import LayerError, Problem
from layers.readers import read_table
from layers.validate import validate_table

HEAD = "名称,经度,纬度,终端数\n"
GOOD = "网吧甲,108.95,34.25,100\n"


def text(content: str, name: str = "t.csv", encoding: str = "utf-8") -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(content.encode(encoding))
        return path

    return make


def geojson(*geometries: object, props: dict | None = None) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / "t.geojson"
        n = len(geometries)
        data = props or {"名称": [f"校{i}" for i in range(n)], "学段": ["小学"] * n}
        gpd.GeoDataFrame(data, geometry=list(geometries), crs=4326).to_file(path, engine="pyogrio")
        return path

    return make


def gpkg_in_gk_zone(folder: Path) -> Path:
    path = folder / "t.gpkg"
    gpd.GeoDataFrame({"名称": ["a"]}, geometry=[Point(500000, 3790000)], crs=4545).to_file(path)
    return path


def xlsx(folder: Path) -> Path:
    import openpyxl

    book = openpyxl.Workbook()
    for row in (
        ["名称", "经度", "纬度"],
        ["a", 108.95, 34.25],
        ["b", 108.96, 34.26],
        ["c", "东经108度", 34.27],
    ):
        book.active.append(row)
    path = folder / "t.xlsx"
    book.save(path)
    return path


def raw_bytes(name: str, content: bytes) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(content)
        return path

    return make


BOWTIE = Polygon([(108.94, 34.25), (108.95, 34.26), (108.95, 34.25), (108.94, 34.26)])
LINE = LineString([(108.94, 34.25), (108.95, 34.26)])


@dataclass
class Case:
    make: Callable[[Path], Path]
    kind: str = "net_cafes"
    crs: str | None = "wgs84"
    #: (row, field, words every expectation must contain), in the order reported
    expected: list[tuple[int | None, str | None, tuple[str, ...]]] = field(default_factory=list)
    value: object = None


CASES = {
    "non-numeric 经度": Case(
        text(HEAD + GOOD + "网吧乙,abc,34.25,10\n"), expected=[(2, "经度", ("not a number",))]
    ),
    "missing 名称 column": Case(
        text("经度,纬度\n108.95,34.25\n"),
        expected=[
            (None, None, ("required column name (名称) is missing", "accepted headers: name, 名称, 场所名称"))
        ],
    ),
    "unknown 学段": Case(
        text("名称,学段,经度,纬度\n甲校,小学,108.95,34.25\n乙校,大学,108.95,34.26\n"),
        kind="schools",
        expected=[(2, "学段", ("unknown value; allowed:", "primary (小学)", "kindergarten (幼儿园"))],
        value="大学",
    ),
    "swapped lon/lat": Case(
        text(HEAD + GOOD + GOOD.replace("108.95,34.25", "34.25,108.95")),
        expected=[
            (2, "经度/纬度", ("outside China (73–136°E, 3–54°N) when read as wgs84", "lon/lat look swapped"))
        ],
        value=(34.25, 108.95),
    ),
    "point outside China": Case(
        text(HEAD + "巴黎网吧,2.35,48.85,10\n" + GOOD),
        expected=[(1, "经度/纬度", ("outside China (73–136°E, 3–54°N) when read as wgs84",))],
        value=(2.35, 48.85),
    ),
    "self-intersecting polygon": Case(
        geojson(Point(108.95, 34.25), BOWTIE),
        kind="schools",
        crs=None,
        expected=[(2, "geometry", ("invalid geometry: Self-intersection[108.945 34.255]", "not repaired"))],
    ),
    "empty geometry": Case(
        text("名称,学段,wkt\n甲校,小学,POLYGON EMPTY\n"),
        kind="schools",
        expected=[(1, "wkt", ("empty geometry",))],
    ),
    "empty WKT under the header geometry": Case(
        text("名称,geometry\n甲,\n"), expected=[(1, "geometry", ("required value missing (WKT geometry)",))]
    ),
    "invalid WKT": Case(
        text("名称,WKT\n甲,POINT (108.95 34.25\n"), expected=[(1, "WKT", ("not valid WKT",))]
    ),
    "line for schools": Case(
        geojson(LINE),
        kind="schools",
        crs=None,
        expected=[(1, "geometry", ("LineString not accepted for schools; expected Polygon or Point",))],
    ),
    "duplicate ids": Case(
        text("编号,名称,经度,纬度\nA1,甲,108.95,34.25\nA2,乙,108.95,34.26\nA1,丙,108.96,34.26\n"),
        expected=[
            (1, "编号", ("duplicate id; used in rows 1, 3",)),
            (3, "编号", ("duplicate id; used in rows 1, 3",)),
        ],
    ),
    "GBK CSV with a bad value": Case(
        text("名称,经度,纬度,经营状态\n碑林网吧,108.95,34.25,倒闭\n", encoding="gbk"),
        expected=[(1, "经营状态", ("unknown value; allowed:", "suspended (停业/停业整顿"))],
        value="倒闭",
    ),
    "CSV without crs": Case(
        text(HEAD + GOOD),
        crs=None,
        expected=[(None, None, ("no CRS given; pass --crs wgs84|cgcs2000|gcj02|bd09|EPSG:...",))],
    ),
    "conflicting CRS": Case(
        gpkg_in_gk_zone,
        crs="gcj02",
        expected=[(None, None, ("the file declares CRS EPSG:4545 but crs gcj02 was given",))],
    ),
    "unknown crs": Case(
        text(HEAD + GOOD), crs="mars", expected=[(None, None, ("CRS 'mars' is not understood",))]
    ),
    "negative 终端数": Case(
        text(HEAD + GOOD + "网吧乙,108.95,34.26,-3\n"), expected=[(2, "终端数", ("must not be negative",))]
    ),
    "fractional 终端数": Case(
        text(HEAD + "网吧乙,108.95,34.26,2.5\n"), expected=[(1, "终端数", ("not an integer",))]
    ),
    "missing 名称 value": Case(
        text(HEAD + GOOD + " ,108.95,34.26,1\n"), expected=[(2, "名称", ("required value missing",))]
    ),
    "non-finite coordinate": Case(
        text(HEAD + "网吧乙,inf,34.25,1\n"), expected=[(1, "经度", ("non-finite",))]
    ),
    "bad yes/no": Case(
        text("名称,设施类型,对未成年人免费,经度,纬度\n馆,图书馆,也许,108.95,34.25\n"),
        kind="cultural_facilities",
        expected=[(1, "对未成年人免费", ("expected yes or no: 是/否",))],
    ),
    "XLSX with a bad row": Case(xlsx, expected=[(3, "经度", ("not a number",))], value="东经108度"),
    "two columns for one field": Case(
        text("名称,场所名称,经度,纬度\na,b,108.95,34.25\n"),
        expected=[(None, None, ("columns '名称' and '场所名称' both give name; keep one",))],
    ),
    "no coordinate columns": Case(
        text("名称,地址\na,b\n"), expected=[(None, None, ("no coordinates: expected longitude (lon/lng",))]
    ),
    "header only": Case(text(HEAD), expected=[(None, None, ("no data rows",))]),
    "several problems in one row": Case(
        text(HEAD + "网吧乙,abc,,-1\n"),
        expected=[
            (1, "经度", ("not a number",)),
            (1, "纬度", ("required value missing",)),
            (1, "终端数", ("must not be negative",)),
        ],
    ),
}

UNREADABLE = {
    "corrupt zip": (raw_bytes("t.zip", b"PK\x03\x04 definitely not a zip"), "not a valid zip archive"),
    "zip without shapefile": (
        raw_bytes("t.zip", b"PK\x05\x06" + b"\0" * 18),
        "zip archive holds no shapefile",
    ),
    "unsupported extension": (raw_bytes("t.kml", b"<kml/>"), "unsupported file type '.kml'; expected one of"),
    "empty file": (raw_bytes("t.csv", b""), "file is empty"),
    "corrupt xlsx": (raw_bytes("t.xlsx", b"not a workbook"), "not a valid .xlsx workbook"),
    "ragged CSV": (
        text("名称,经度\na,1,2\n"),
        "cannot be read as CSV: CSV parse error: Expected 2 columns, got 3",
    ),
    "broken GeoJSON": (
        raw_bytes("t.geojson", b'{"type": "FeatureCollection", "features": [{'),
        "cannot be read",
    ),
    "GeoPackage with two layers": (None, "file has 2 layers (a, b); name one"),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_input_is_reported_precisely(tmp_path: Path, case: Case) -> None:
    raw = read_table(case.make(tmp_path))
    result = validate_table(raw, case.kind, crs=case.crs)
    got = [(p.row, p.field) for p in result.problems]
    assert got == [(row, name) for row, name, _ in case.expected], [str(p) for p in result.problems]
    for problem, (_, _, words) in zip(result.problems, case.expected, strict=True):
        for word in words:
            assert word in problem.expected, str(problem)
    if case.value is not None:
        assert result.problems[0].value == case.value
        assert repr(case.value) in str(result.problems[0])  # Chinese shown as written, not escaped
    bad_rows = {row for row, _, _ in case.expected if row is not None}
    if bad_rows and all(row is not None for row, _, _ in case.expected):
        assert set(result.rejected["row"]) == bad_rows
    assert len(result.valid) + len(result.rejected) == raw.rows


@pytest.mark.parametrize(("make", "words"), UNREADABLE.values(), ids=UNREADABLE.keys())
def test_unreadable_files_raise_one_file_level_problem(tmp_path: Path, make, words: str) -> None:
    if make is None:  # a GeoPackage with two layers and none named
        path = tmp_path / "t.gpkg"
        for name in ("a", "b"):
            gpd.GeoDataFrame({"名称": [name]}, geometry=[Point(108.95, 34.25)], crs=4326).to_file(
                path, layer=name
            )
    else:
        path = make(tmp_path)
    with pytest.raises(LayerError) as err:
        read_table(path)
    [problem] = err.value.problems
    assert problem == Problem(path.name, None, None, None, problem.expected)
    assert words in problem.expected


def test_geojson_with_nan_coordinates(tmp_path: Path) -> None:
    path = tmp_path / "nan.geojson"
    feature = {
        "type": "Feature",
        "properties": {"名称": "a"},
        "geometry": {"type": "Point", "coordinates": [1, 2]},
    }
    line = {**feature, "geometry": {"type": "Polygon", "coordinates": [[[108.9, 34.2], [108.95, 34.2],
                                                                        [108.95, 34.3], [108.9, 34.2]]]}}  # fmt: skip
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [line, feature]}), encoding="utf-8")
    raw = read_table(path)
    with np.errstate(invalid="ignore"):  # GEOS flags NaN while building them
        raw.frame.loc[1, "geometry"] = Polygon([(108.9, 34.2), (float("nan"), 34.2), (108.95, 34.3)])
        raw.frame.loc[2, "geometry"] = Point(float("nan"), float("nan"))
    problems = validate_table(raw, "net_cafes").problems
    assert [(p.row, p.field, p.expected) for p in problems] == [
        (1, "geometry", "non-finite coordinate (NaN or infinity)"),
        (2, "geometry", "non-finite coordinate (NaN or infinity)"),
    ]
