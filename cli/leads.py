"""``civicmap leads``: the workspace's observed POIs reconciled with the licence register.

Writes the three groups of :func:`geo.leads.reconcile` -- observed but unlicensed (leads),
licensed but not observed, matched -- each row with its evidence (the best match or candidate,
both names normalised, the name score and the distance):

``.csv``      one table, leads first, Chinese headers, UTF-8 with BOM (Excel reads it);
``.xlsx``     a summary sheet (汇总: the settings and the count per group) and one sheet per
              group, frozen header row, widths fitted to the Chinese text;
``.geojson``  a FeatureCollection of WGS84 points with the result's English column names.

Cells that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@`` …) are written as text.
Without ``-o`` the counts and the leads are printed.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from layers.errors import CivicmapError

#: groups in the order they are written, with their Chinese labels (as on the /leads/ page)
GROUPS = {
    "unlicensed": "观测到但无登记（线索）",
    "not_observed": "有登记但未观测到",
    "matched": "已匹配",
}
#: sheet names of the XLSX groups (≤ 31 characters, no brackets)
SHEETS = {"unlicensed": "无证线索", "not_observed": "未观测到", "matched": "已匹配"}
#: (result column, Chinese header) of every written column; longitude and latitude follow
COLUMNS = [
    ("status", "比对结果"),
    ("observed_id", "观测编号"),
    ("observed_name", "观测名称"),
    ("observed_norm", "观测名称（规范化）"),
    ("observed_source", "来源"),
    ("observed_at", "观测时间"),
    ("address", "地址"),
    ("register_id", "登记编号"),
    ("register_name", "登记名称"),
    ("register_norm", "登记名称（规范化）"),
    ("licence_no", "许可证号"),
    ("register_status", "许可状态"),
    ("candidate_id", "最佳候选编号"),
    ("candidate_name", "最佳候选名称"),
    ("score", "名称相似度"),
    ("distance_m", "距离(米)"),
    ("duplicate_of", "重复观测于"),
]
HEADERS = [header for _key, header in COLUMNS] + ["经度", "纬度"]
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _options(args: argparse.Namespace):
    """:class:`geo.leads.LeadOptions` from the command line, checked."""
    from geo.leads import LeadOptions

    if not (math.isfinite(args.max_distance) and args.max_distance > 0):
        raise CivicmapError(f"--max-distance {args.max_distance:g}: expected a positive number of metres")
    if not (math.isfinite(args.min_score) and 0 <= args.min_score <= 100):
        raise CivicmapError(f"--min-score {args.min_score:g}: expected a score from 0 to 100")
    same_name = args.same_name_distance
    if not math.isfinite(same_name) or same_name < 0:
        raise CivicmapError(
            f"--same-name-distance {same_name:g}: expected metres, or 0 to switch the rule off"
        )
    return LeadOptions(
        max_distance_m=args.max_distance,
        min_score=args.min_score,
        name_confirmed_distance_m=same_name or None,
    )


def reconcile_workspace(args: argparse.Namespace):
    """The reconciliation of the workspace's ``pois`` with its ``net_cafes`` register, leads first.

    Raises
    ------
    CivicmapError
        When the workspace has no observed POIs.
    """
    from cli import open_workspace
    from geo.leads import reconcile

    options = _options(args)
    ws = open_workspace(args)
    pois, register = ws.read("pois"), ws.read("net_cafes")
    if pois.empty:
        raise CivicmapError(
            f"workspace {ws.path}: no observed points (pois layer) to reconcile; import them first "
            "(civicmap import pois FILE)"
        )
    result = reconcile(
        register, pois, max_distance_m=options.max_distance_m, min_score=options.min_score, options=options
    )
    order = {group: i for i, group in enumerate(GROUPS)}
    result = result.iloc[result["status"].map(order).argsort(kind="stable")].reset_index(drop=True)
    return result, options


def _value(key: str, value: Any) -> Any:
    """A result cell for CSV/XLSX: Chinese labels for the statuses, rounded numbers, None for missing."""
    from layers.target_export import licence_status_zh

    if key == "status":
        return GROUPS[value]
    if key == "register_status":
        return licence_status_zh(value) if value else None
    if key in ("score", "distance_m"):
        return None if value is None or math.isnan(value) else round(float(value), 1)
    return value


def lead_rows(result) -> list[list[Any]]:
    """Rows of :data:`HEADERS` for each result row (missing values None)."""
    rows = []
    for record, geom in zip(result.to_dict("records"), result.geometry, strict=True):
        cells = [_value(key, record[key]) for key, _header in COLUMNS]
        rows.append([*cells, round(geom.x, 7), round(geom.y, 7)])
    return rows


def _as_text(value: Any) -> Any:
    """A string that a spreadsheet would run as a formula, prefixed with ' (numbers untouched)."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def write_csv(result, path: Path) -> Path:
    """One table, :data:`HEADERS`, UTF-8 with BOM."""
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADERS)
        for row in lead_rows(result):
            writer.writerow(["" if v is None else _as_text(v) for v in row])
    return path


def _width(values: list[Any]) -> float:
    """Column width in Excel units: CJK characters count double."""
    longest = max(
        (sum(2 if ord(ch) > 0x2E80 else 1 for ch in str(v)) for v in values if v is not None), default=0
    )
    return min(50, max(6, longest + 2))


def _sheet(book, title: str, rows: list[list[Any]]) -> None:
    from openpyxl.styles import Font, PatternFill

    sheet = book.create_sheet(title)
    sheet.append(HEADERS)
    for row in rows:
        sheet.append(row)
        for cell in sheet[sheet.max_row]:
            if cell.data_type == "f":  # user text starting with "=": keep it text
                cell.data_type = "s"
    bold, fill = Font(bold=True), PatternFill("solid", fgColor="DCE6F1")
    for cell in sheet[1]:
        cell.font, cell.fill = bold, fill
    sheet.freeze_panes = "A2"
    for i, header in enumerate(HEADERS):
        letter = sheet.cell(row=1, column=i + 1).column_letter
        sheet.column_dimensions[letter].width = _width([header, *(r[i] for r in rows)])
    if rows:
        sheet.auto_filter.ref = sheet.dimensions


def write_xlsx(result, path: Path, options) -> Path:
    """A summary sheet and one sheet per group."""
    from openpyxl import Workbook

    book = Workbook()
    summary = book.active
    summary.title = "汇总"
    summary.append(["无证网吧线索比对"])
    summary.append(["最大距离(米)", options.max_distance_m])
    summary.append(["最低名称相似度", options.min_score])
    summary.append(["同名放宽距离(米)", options.name_confirmed_distance_m or "不启用"])
    summary.append([])
    summary.append(["比对结果", "数量"])
    counts = result["status"].value_counts()
    for group, label in GROUPS.items():
        summary.append([label, int(counts.get(group, 0))])
    summary.column_dimensions["A"].width = 26
    summary.column_dimensions["B"].width = 12
    rows = lead_rows(result)
    for group in GROUPS:
        part = [row for row, status in zip(rows, result["status"], strict=True) if status == group]
        _sheet(book, SHEETS[group], part)
    book.save(path)
    return path


def write_geojson(result, path: Path) -> Path:
    """WGS84 points with the result's columns as properties (English names, NaN → null)."""
    features = []
    for record, geom in zip(result.drop(columns="geometry").to_dict("records"), result.geometry, strict=True):
        properties = {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in record.items()}
        features.append({"type": "Feature", "geometry": geom.__geo_interface__, "properties": properties})
    data = {"type": "FeatureCollection", "features": features}
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


WRITERS = {".csv": write_csv, ".xlsx": write_xlsx, ".geojson": write_geojson, ".json": write_geojson}


def cmd_leads(args: argparse.Namespace) -> int:
    output = args.output
    if output is not None and output.suffix.lower() not in WRITERS:
        raise CivicmapError(f"-o {output}: expected a .csv, .xlsx or .geojson file")
    result, options = reconcile_workspace(args)
    counts = {group: int((result["status"] == group).sum()) for group in GROUPS}
    summary = ", ".join(f"{GROUPS[g]} {n}" for g, n in counts.items())
    if output is None:
        print(summary)
        for row in result[result["status"] == "unlicensed"].itertuples():
            print(f"  {row.observed_id}  {row.observed_name}")
        return 0
    writer = WRITERS[output.suffix.lower()]
    if writer is write_xlsx:
        write_xlsx(result, output, options)
    else:
        writer(result, output)
    print(f"{summary}; wrote {output}")
    return 0


def register(add: Callable) -> None:
    """Add ``leads`` to the parser (see :data:`cli.FEATURE_COMMANDS`)."""
    p = add(
        "leads",
        cmd_leads,
        "unlicensed-café leads: observed POIs reconciled with the licence register, with the evidence",
    )
    p.add_argument(
        "--max-distance", type=float, default=100.0, help="metres within which a pair may match (default 100)"
    )
    p.add_argument("--min-score", type=float, default=75.0, help="least name similarity, 0-100 (default 75)")
    p.add_argument(
        "--same-name-distance",
        type=float,
        default=200.0,
        help="near-identical names with no conflicting branch also match up to this many metres "
        "(default 200; 0: off)",
    )
    p.add_argument("-o", "--output", type=Path, help=".csv (UTF-8 with BOM), .xlsx or .geojson")
