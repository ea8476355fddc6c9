"""Target lists for inspectors: XLSX (summary + one sheet per sub-district or team), CSV, GeoJSON.

Takes the target table of :func:`geo.targets.build_targets` (WGS84).  The XLSX has the
headers inspectors know (序号, 场所名称, 许可证号, 地址, 违规情形, 保护对象, 距离(米), 限值(米),
测量方法, 所属街道, 优先级, 状态, then 许可状态, 执法队, 巡查日, 路线顺序, 案件编号, 评分说明), a
frozen header row, column widths fitted to Chinese text and, per sheet, the rows in route order
(day, then stop) where tours were planned.  The CSV is UTF-8 with a BOM (Excel opens it
correctly); the GeoJSON keeps the English column names and the findings as a list.
"""

from __future__ import annotations

import csv
import json
import math
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from layers.cases import STATUS_ZH
from layers.errors import CivicmapError
from layers.schema import SCHEMAS

METHOD_ZH = {
    "boundary": "边界最近距离",
    "gate-walk": "校门步行距离",
    "door-walk": "门到门步行距离",
    "inside": "位于内部",
    "surveyed": "实地测量",
}
HEADERS = ["序号", "场所名称", "许可证号", "地址", "违规情形", "保护对象", "距离(米)", "限值(米)", "测量方法",
           "所属街道", "优先级", "状态", "许可状态", "执法队", "巡查日", "路线顺序", "案件编号", "评分说明"]  # fmt: skip
GROUPS = {"subdistrict": "所属街道", "team": "执法队"}
FORMATS = (".xlsx", ".csv", ".geojson")
UNASSIGNED = "未分配"
_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")


def licence_status_zh(status: object) -> str:
    """A licence status in Chinese (``licensed`` → 正常)."""
    choices = SCHEMAS["net_cafes"].field("status").choices
    text = "" if status is None or status is pd.NA else str(status)
    return choices[text][0] if choices.get(text) else text


def _metres(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else round(number, 1)


def _int(value: Any) -> int | None:
    return None if value is None or value is pd.NA or pd.isna(value) else int(value)


def target_rows(targets: pd.DataFrame) -> list[list[Any]]:
    """The targets as rows under :data:`HEADERS` (numbers stay numbers)."""
    rows = []
    for t in targets.to_dict(orient="records"):
        labels = "；".join(dict.fromkeys(f["rule_label"] for f in t["findings"]))
        rows.append([
            _int(t["rank"]), t["name"], t["licence_no"], t["address"], labels, t["protected"],
            _metres(t["distance_m"]), _metres(t["limit_m"]), METHOD_ZH.get(t["method"], t["method"]),
            t["subdistrict"], float(t["priority"]), STATUS_ZH.get(t["case_status"], t["case_status"]),
            licence_status_zh(t["status"]), t["team"], _int(t["route_day"]), _int(t["route_order"]),
            _int(t["case_id"]), t["priority_reasons"],
        ])  # fmt: skip
    return rows


def _route_sorted(frame: pd.DataFrame) -> pd.DataFrame:
    keys = frame[["route_day", "route_order", "rank"]].astype("float").fillna(math.inf)
    return frame.loc[keys.sort_values(["route_day", "route_order", "rank"], kind="stable").index]


def _sheet_name(text: str, used: set[str]) -> str:
    base = _SHEET_BAD.sub("_", text or "未知").strip("'")[:28] or "未知"
    name, n = base, 2
    while name.lower() in {u.lower() for u in used} or name == "汇总":
        name, n = f"{base}_{n}", n + 1
    used.add(name)
    return name


def _width(values: list[Any]) -> float:
    """Column width in Excel units: CJK characters count double."""
    longest = 0
    for value in values:
        text = "" if value is None else str(value)
        longest = max(longest, sum(2 if ord(ch) > 0x2E80 else 1 for ch in text))
    return min(60, max(6, longest + 2))


def _write_table(sheet, rows: list[list[Any]]) -> None:
    from openpyxl.styles import Alignment, Font, PatternFill

    sheet.append(HEADERS)
    for row in rows:
        sheet.append(row)
    bold, fill = Font(bold=True), PatternFill("solid", fgColor="DCE6F1")
    for cell in sheet[1]:
        cell.font, cell.fill = bold, fill
        cell.alignment = Alignment(horizontal="center", vertical="center")
    sheet.freeze_panes = "A2"
    for i, header in enumerate(HEADERS, start=1):
        column = sheet.cell(row=1, column=i).column_letter
        sheet.column_dimensions[column].width = _width([header, *(r[i - 1] for r in rows)])
    for row in sheet.iter_rows(min_row=2, min_col=7, max_col=8):
        for cell in row:
            cell.number_format = "0.0"
    if rows:
        sheet.auto_filter.ref = sheet.dimensions


def write_xlsx(targets: pd.DataFrame, path: str | Path, *, by: str = "subdistrict", title: str = "") -> Path:
    """The inspectors' workbook: a summary sheet, then one sheet per sub-district (or team).

    Parameters
    ----------
    targets
        A target table.
    path
        Where to write (``.xlsx``).
    by
        ``subdistrict`` or ``team``: how the detail sheets are split.
    title
        First line of the summary sheet (default: 执法检查目标清单 and the time).
    """
    from openpyxl import Workbook
    from openpyxl.styles import Font

    if by not in GROUPS:
        raise CivicmapError(f"targets export: by = {by!r} is not one of {', '.join(GROUPS)}")
    path = Path(path)
    book = Workbook()
    summary = book.active
    summary.title = "汇总"
    summary.append([title or f"执法检查目标清单（{datetime.now():%Y-%m-%d %H:%M}）"])
    summary["A1"].font = Font(bold=True, size=13)
    summary.append([GROUPS[by], "目标数", "未结案件", "最高优先级", "无证线索", "工作表"])
    for cell in summary[2]:
        cell.font = Font(bold=True)
    summary.freeze_panes = "A3"
    used: set[str] = set()
    keys = targets[by].astype(str)
    names = sorted(set(keys), key=lambda n: (n in ("", UNASSIGNED), n))
    for name in names:
        group = targets[(keys == name).to_numpy()]
        sheet = book.create_sheet(_sheet_name(name, used))
        _write_table(sheet, target_rows(_route_sorted(group)))
        open_cases = int(group["case_status"].isin(["new", "assigned", "inspected"]).sum())
        leads = sum(any(f["rule_type"] == "lead" for f in fs) for fs in group["findings"])
        summary.append(
            [name or "未知", len(group), open_cases, float(group["priority"].max()), leads, sheet.title]
        )
    summary.append(["合计", len(targets), int(targets["case_status"].isin(["new", "assigned", "inspected"]).sum())
                    if len(targets) else 0])  # fmt: skip
    for column, width in zip("ABCDEF", (16, 8, 10, 12, 10, 16), strict=True):
        summary.column_dimensions[column].width = width
    all_sheet = book.create_sheet(_sheet_name("全部目标", used))
    _write_table(all_sheet, target_rows(targets.sort_values("rank", kind="stable")))
    book.save(path)
    return path


def write_csv(targets: pd.DataFrame, path: str | Path) -> Path:
    """All targets by rank, :data:`HEADERS` as the header row, UTF-8 with BOM."""
    path = Path(path)
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADERS)
        for row in target_rows(targets.sort_values("rank", kind="stable")):
            writer.writerow(["" if v is None else v for v in row])
    return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return _jsonable(value.item())
    return value


def write_geojson(targets: pd.DataFrame, path: str | Path) -> Path:
    """The targets as a GeoJSON FeatureCollection (WGS84 points, English property names)."""
    path = Path(path)
    features = []
    for t in targets.sort_values("rank", kind="stable").to_dict(orient="records"):
        geom = t.pop("geometry")
        features.append({
            "type": "Feature",
            "geometry": None if geom is None or geom.is_empty else geom.__geo_interface__,
            "properties": _jsonable(t),
        })  # fmt: skip
    data = {"type": "FeatureCollection", "features": features}
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def write_targets(targets: pd.DataFrame, path: str | Path, *, by: str = "subdistrict") -> Path:
    """Write targets by the file's extension: ``.xlsx``, ``.csv`` or ``.geojson``."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        return write_xlsx(targets, path, by=by)
    if suffix == ".csv":
        return write_csv(targets, path)
    if suffix in (".geojson", ".json"):
        return write_geojson(targets, path)
    raise CivicmapError(
        f"targets export: {path.name}: unknown format {suffix!r}; use {', '.join(FORMATS)} or .pdf"
    )
