"""Target exports read back: XLSX with openpyxl (sheets, headers, frozen row, widths, route order), CSV, GeoJSON."""

from __future__ import annotations

import csv
import json
import math

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from openpyxl import load_workbook

from layers.errors import CivicmapError
from layers.target_export import HEADERS, write_targets

ISSUE_HEADERS = ["序号", "场所名称", "许可证号", "地址", "违规情形", "保护对象", "距离(米)", "限值(米)", "测量方法",
                 "所属街道", "优先级", "状态"]  # fmt: skip


def finding(
    distance_m, limit_m=200.0, rule_label="距小学不足 200 米", rule_type="distance", method="boundary"
):
    return {"rule": "r", "rule_type": rule_type, "rule_label": rule_label, "protected_id": "s",
            "protected_name": "东湖小学", "protected_level": "primary", "distance_m": distance_m, "limit_m": limit_m,
            "method": method, "shortfall_m": limit_m - distance_m, "straight_m": distance_m, "approximate": False,
            "recheck": False, "evidence": "LINESTRING (114.3 30.5, 114.3 30.501)"}  # fmt: skip


@pytest.fixture
def targets() -> gpd.GeoDataFrame:
    rows = [
        # rank, id, name, subdistrict, team, day, order, distance, case
        (1, "nc-1", "星海网咖", "东湖街道", "一中队", 1, 2, 30.04, "new"),
        (2, "nc-2", "蓝天网吧", "东湖街道", "一中队", 1, 1, 120.0, "assigned"),
        (3, "gv-1", "欢乐电玩城", "星海街道", "二中队", 1, 1, 180.55, "inspected"),
        (4, "nc-3", "[测试]网吧", "", "未分配", None, None, math.nan, "closed"),
    ]
    records = []
    for rank, vid, name, sub, team, day, order, dist, case in rows:
        found = [finding(dist)] if not math.isnan(dist) else [finding(0.0, 0.0, "位于居民住宅楼（院）内", "residential",
                                                                     "inside")]  # fmt: skip
        records.append({
            "venue_id": vid, "kind": "net_cafes", "name": name, "licence_no": f"L-{vid}", "address": "纬八路30号",
            "subdistrict": sub, "team": team, "status": "licensed", "findings": found,
            "summary": "摘要", "protected": "东湖小学", "distance_m": dist, "limit_m": 200.0, "method": "boundary",
            "priority": 100.0 - rank, "priority_reasons": "基础分 +10.0", "rank": rank, "case_id": rank,
            "case_status": case, "route_day": day, "route_order": order, "rules": ["r"],
        })  # fmt: skip
    frame = pd.DataFrame(records)
    for column in ("case_id", "route_day", "route_order"):
        frame[column] = pd.array(frame[column], dtype="Int64")
    return gpd.GeoDataFrame(
        frame, geometry=[shapely.Point(114.3 + i / 100, 30.5) for i in range(4)], crs="EPSG:4326"
    )


def test_xlsx_by_subdistrict_reads_back(targets, tmp_path):
    path = write_targets(targets, tmp_path / "targets.xlsx")
    book = load_workbook(path)
    assert book.sheetnames == ["汇总", "东湖街道", "星海街道", "未知", "全部目标"]
    sheet = book["东湖街道"]
    header = [c.value for c in sheet[1]]
    assert header[: len(ISSUE_HEADERS)] == ISSUE_HEADERS and header == HEADERS
    assert sheet.freeze_panes == "A2"
    # route order within the sheet: 蓝天网吧 (stop 1) before 星海网咖 (stop 2)
    names = [sheet.cell(row=r, column=2).value for r in range(2, sheet.max_row + 1)]
    assert names == ["蓝天网吧", "星海网咖"]
    second = {h: sheet.cell(row=3, column=i + 1).value for i, h in enumerate(HEADERS)}
    assert second["序号"] == 1 and second["距离(米)"] == 30.0 and second["限值(米)"] == 200.0
    assert (
        second["测量方法"] == "边界最近距离" and second["状态"] == "新立案" and second["许可状态"] == "正常"
    )
    assert second["路线顺序"] == 2 and second["巡查日"] == 1 and second["违规情形"] == "距小学不足 200 米"
    # widths: CJK counted double, never narrower than the header
    assert sheet.column_dimensions["B"].width >= 2 * len("欢乐电玩城")
    assert sheet.column_dimensions["D"].width >= 2 * len("纬八路30号") - 2
    residential = book["未知"]
    assert residential.cell(row=2, column=7).value is None  # no distance inside a building
    summary = book["汇总"]
    rows = [[c.value for c in r] for r in summary.iter_rows(min_row=2, max_row=summary.max_row)]
    assert rows[0][:2] == ["所属街道", "目标数"]
    assert rows[1][:3] == ["东湖街道", 2, 2] and rows[1][-1] == "东湖街道"
    assert rows[-1][:3] == ["合计", 4, 3]
    assert book["全部目标"].max_row == 5


def test_xlsx_by_team_and_sheet_names_cleaned(targets, tmp_path):
    targets.loc[0, "team"] = "一中队/东"  # a slash is not allowed in a sheet name
    path = write_targets(targets, tmp_path / "t.xlsx", by="team")
    assert load_workbook(path).sheetnames == ["汇总", "一中队", "一中队_东", "二中队", "未分配", "全部目标"]


def test_csv_has_a_bom_and_the_headers(targets, tmp_path):
    path = write_targets(targets, tmp_path / "targets.csv")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert rows[0] == HEADERS
    assert [r[1] for r in rows[1:]] == ["星海网咖", "蓝天网吧", "欢乐电玩城", "[测试]网吧"]
    assert rows[3][6] == "180.6" and rows[4][6] == ""


def test_geojson_keeps_findings_and_points(targets, tmp_path):
    path = write_targets(targets, tmp_path / "targets.geojson")
    data = json.loads(path.read_text(encoding="utf-8"))
    features = data["features"]
    assert [f["properties"]["venue_id"] for f in features] == ["nc-1", "nc-2", "gv-1", "nc-3"]
    first = features[0]
    assert first["geometry"] == {"type": "Point", "coordinates": [114.3, 30.5]}
    assert first["properties"]["findings"][0]["protected_name"] == "东湖小学"
    assert first["properties"]["route_order"] == 2
    assert features[3]["properties"]["distance_m"] is None and features[3]["properties"]["route_day"] is None


def test_unknown_format_and_grouping(targets, tmp_path):
    with pytest.raises(CivicmapError, match=r"unknown format '\.txt'"):
        write_targets(targets, tmp_path / "t.txt")
    with pytest.raises(CivicmapError, match="by = 'rule'"):
        write_targets(targets, tmp_path / "t.xlsx", by="rule")


def test_empty_list_still_writes_a_workbook(targets, tmp_path):
    path = write_targets(targets.iloc[0:0], tmp_path / "empty.xlsx")
    book = load_workbook(path)
    assert book.sheetnames == ["汇总", "全部目标"] and [c.value for c in book["全部目标"][1]] == HEADERS
