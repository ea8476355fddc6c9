"""``civicmap leads``: the demo design read back from CSV / XLSX / GeoJSON, the options, errors.

Expected groups come from ``data/demo/design.json`` or from POIs placed here with pyproj.Geod
at known distances from register cafés, never from :mod:`geo.leads` itself.
"""

from __future__ import annotations

import csv
import json

import geopandas as gpd
import pytest
import shapely
from openpyxl import load_workbook
from pyproj import Geod

import cli
from layers.store import Workspace

GEOD = Geod(ellps="WGS84")


def main(*args) -> int:
    return cli.main(list(args))


def _csv(path) -> list[dict]:
    raw = path.read_bytes()
    assert raw.startswith("\ufeff".encode())  # BOM, so that Excel reads UTF-8
    return list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))


def _sheet_rows(sheet) -> list[dict]:
    values = list(sheet.values)
    return [dict(zip(values[0], row, strict=True)) for row in values[1:]]


def test_demo_design_in_csv_xlsx_and_geojson(demo_copy, tmp_path, capsys, demo_design, demo_layers):
    pois = demo_layers["pois"].set_index("id")
    cafes = {
        m["poi_id"]: m["venue_id"] for m in demo_design["pois"]["matched"] if m["venue_id"].startswith("nc-")
    }
    designed_leads = set(demo_design["pois"]["leads"])
    unseen = set(demo_layers["net_cafes"]["id"]) - set(cafes.values())

    assert main("leads", "--workspace", str(demo_copy), "-o", str(tmp_path / "l.csv")) == 0
    assert "wrote" in capsys.readouterr().out
    rows = _csv(tmp_path / "l.csv")
    assert list(rows[0])[:3] == ["比对结果", "观测编号", "观测名称"]
    groups = [r["比对结果"] for r in rows]
    assert groups == sorted(
        groups, key=["观测到但无登记（线索）", "有登记但未观测到", "已匹配"].index
    )  # leads first
    leads = {r["观测编号"] for r in rows if r["比对结果"] == "观测到但无登记（线索）"}
    assert {p for p in designed_leads if pois.at[p, "category"] == "网吧"} <= leads <= designed_leads
    matched = {r["观测编号"]: r for r in rows if r["比对结果"] == "已匹配"}
    assert {p: r["登记编号"] for p, r in matched.items()} == cafes
    first = demo_design["pois"]["matched"][0]
    assert float(matched[first["poi_id"]]["距离(米)"]) == pytest.approx(first["offset_m"], abs=0.05)
    assert {r["登记编号"] for r in rows if r["比对结果"] == "有登记但未观测到"} == unseen

    assert main("leads", "--workspace", str(demo_copy), "-o", str(tmp_path / "l.xlsx")) == 0
    book = load_workbook(tmp_path / "l.xlsx")
    assert book.sheetnames == ["汇总", "无证线索", "未观测到", "已匹配"]
    summary = {row[0]: row[1] for row in book["汇总"].values if row and row[0]}
    assert summary["同名放宽距离(米)"] == 200 and summary["最大距离(米)"] == 100
    assert summary["已匹配"] == len(cafes) and summary["有登记但未观测到"] == len(unseen)
    assert summary["观测到但无登记（线索）"] == len(leads)
    assert {r["观测编号"] for r in _sheet_rows(book["无证线索"])} == leads
    assert {r["登记编号"] for r in _sheet_rows(book["未观测到"])} == unseen
    assert book["已匹配"].freeze_panes == "A2" and book["已匹配"].max_row == len(cafes) + 1

    assert main("leads", "--workspace", str(demo_copy), "-o", str(tmp_path / "l.geojson")) == 0
    features = json.loads((tmp_path / "l.geojson").read_text(encoding="utf-8"))["features"]
    assert len(features) == len(rows)
    lead = next(f for f in features if f["properties"]["observed_id"] in leads)
    assert lead["properties"]["status"] == "unlicensed" and lead["properties"]["register_id"] is None
    assert lead["geometry"]["type"] == "Point"


def _place(register: gpd.GeoDataFrame, venue: str, north_m: float) -> shapely.Point:
    point = register.set_index("id").geometry[venue]
    lon, lat, _ = GEOD.fwd(point.x, point.y, 0.0, north_m)
    return shapely.Point(lon, lat)


@pytest.fixture
def placed(demo_copy):
    """Three POIs: nc-001's name 30 m north of it, nc-032's name 150 m north, a formula-like name far off."""
    ws = Workspace.open(demo_copy)
    register = ws.read("net_cafes")
    names = register.set_index("id")["name"]
    assert (names["nc-001"], names["nc-032"]) == ("星海网咖(东湖店)", "红蜻蜓网咖")
    pois = gpd.GeoDataFrame(
        {
            "id": ["p-near", "p-far", "p-evil"],
            "name": ["星海网咖(东湖店)", "红蜻蜓网吧", "=HYPERLINK(1)网吧"],
            "category": ["网吧"] * 3,
            "source": ["群众举报", "地图", "-1+1"],
            "address": [None] * 3,
        },
        geometry=[
            _place(register, "nc-001", 30),
            _place(register, "nc-032", 150),
            shapely.Point(100.0, 30.0),
        ],
        crs="EPSG:4326",
    )
    pois["observed_at"] = None
    ws.write(
        "pois", pois, user="t", source_name="t", source_sha256="0", crs="wgs84", rows_read=3, rows_rejected=0
    )
    return demo_copy


def _groups(path) -> dict[str, str]:
    return {r["观测编号"]: r["比对结果"] for r in _csv(path) if r["观测编号"]}


def test_same_name_distance_is_on_by_default_and_switchable(placed, tmp_path):
    out = tmp_path / "l.csv"
    assert main("leads", "--workspace", str(placed), "-o", str(out)) == 0
    rows = {r["观测编号"]: r for r in _csv(out) if r["观测编号"]}
    assert rows["p-near"]["登记编号"] == "nc-001"
    assert float(rows["p-near"]["距离(米)"]) == pytest.approx(30.0, abs=0.05)
    assert (rows["p-far"]["比对结果"], rows["p-far"]["登记编号"]) == ("已匹配", "nc-032")
    assert float(rows["p-far"]["距离(米)"]) == pytest.approx(150.0, abs=0.05)
    assert rows["p-evil"]["比对结果"] == "观测到但无登记（线索）"
    # user text that a spreadsheet would run is written as text
    assert rows["p-evil"]["观测名称"] == "'=HYPERLINK(1)网吧" and rows["p-evil"]["来源"] == "'-1+1"
    for off in (["--same-name-distance", "0"], ["--same-name-distance", "140"]):
        assert main("leads", "--workspace", str(placed), *off, "-o", str(out)) == 0
        assert _groups(out) == {
            "p-near": "已匹配",
            "p-far": "观测到但无登记（线索）",
            "p-evil": "观测到但无登记（线索）",
        }
    # a wider ordinary limit pairs the 150 m one again; a strict score keeps the near one (score 100)
    assert (
        main(
            "leads",
            "--workspace",
            str(placed),
            "--same-name-distance",
            "0",
            "--max-distance",
            "160",
            "-o",
            str(out),
        )
        == 0
    )
    assert _groups(out)["p-far"] == "已匹配"
    assert main("leads", "--workspace", str(placed), "--min-score", "100", "-o", str(out)) == 0
    assert _groups(out)["p-near"] == "已匹配"


def test_xlsx_keeps_formula_like_text_as_text(placed, tmp_path):
    out = tmp_path / "l.xlsx"
    assert main("leads", "--workspace", str(placed), "-o", str(out)) == 0
    rows = _sheet_rows(load_workbook(out)["无证线索"])
    assert [r["观测名称"] for r in rows] == ["=HYPERLINK(1)网吧"]
    sheet = load_workbook(out)["无证线索"]
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)


def test_printed_summary_and_user_errors(placed, tmp_path, capsys):
    assert main("leads", "--workspace", str(placed)) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("观测到但无登记（线索） 1,") and "p-evil" in out
    for bad in (
        ["--max-distance", "0"],
        ["--min-score", "101"],
        ["--same-name-distance", "-5"],
        ["-o", str(tmp_path / "x.pdf")],
    ):
        assert main("leads", "--workspace", str(placed), *bad) == 2, bad
        assert "Traceback" not in capsys.readouterr().err


def test_workspace_without_pois_is_a_user_error(tmp_path, capsys):
    Workspace.open(tmp_path / "empty", create=True)
    assert main("leads", "--workspace", str(tmp_path / "empty")) == 2
    assert "pois" in capsys.readouterr().err
