"""Inspection sheets: Chinese text comes back out of the PDF, pages and maps render (pdftoppm)."""

from __future__ import annotations

import re
import shutil
import subprocess

import geopandas as gpd
import numpy as np
import pytest
import shapely
from PIL import Image
from pypdf import PdfReader
from pyproj import Transformer

import layers.inspection_pdf as inspection_pdf
from layers.errors import CivicmapError
from layers.inspection_pdf import find_cjk_font, write_inspection_pdf

LON0, LAT0 = 114.30, 30.55
_TO_LL = Transformer.from_crs(
    f"+proj=tmerc +lon_0={LON0} +lat_0={LAT0} +k=1 +ellps=WGS84 +units=m", "EPSG:4326", always_xy=True
)
SITE_FILL = (0xCF, 0xE3, 0xF7)  # the protected site's fill colour in the sheet map
VENUE_RED = (0xC0, 0x00, 0x00)

needs_pdftoppm = pytest.mark.skipif(
    shutil.which("pdftoppm") is None, reason="pdftoppm (poppler-utils) missing"
)


def ll(geom):
    return shapely.transform(geom, lambda xy: np.column_stack(_TO_LL.transform(xy[:, 0], xy[:, 1])))


@pytest.fixture
def sheets(tmp_path):
    campus = ll(shapely.box(0, 0, 120, 100))
    layers = {
        "schools": gpd.GeoDataFrame({"id": ["sch-1"], "name": ["实验小学"]}, geometry=[campus], crs=4326)
    }
    venue_1 = ll(shapely.Point(200, 50))
    venue_2 = ll(shapely.Point(-150, 300))
    line = ll(shapely.LineString([(200, 50), (120, 50)]))  # 80 m to the campus edge
    route = ll(shapely.LineString([(-150, 300), (-150, 150), (60, 150), (60, 100)]))
    finding = {
        "rule": "school_200",
        "rule_label": "中小学周边200米",
        "protected_id": "sch-1",
        "protected_name": "实验小学",
        "protected_level": "primary",
        "distance_m": 80.0,
        "limit_m": 200.0,
        "method": "boundary",
        "shortfall_m": 120.0,
        "straight_m": 80.0,
        "approximate": False,
        "evidence": line.wkt,
    }
    walk = {**finding, "method": "gate-walk", "distance_m": 410.0, "shortfall_m": None, "evidence": route.wkt}
    common = {"kind": "net_cafes", "subdistrict": "东湖街道", "team": "第一执法队", "limit_m": 200.0}
    targets = gpd.GeoDataFrame(
        [
            {
                **common,
                "venue_id": "nc-1",
                "name": "星海网咖（东湖店）",
                "licence_no": "4299011011001",
                "address": "示范区纬八路30号",
                "status": "licensed",
                "findings": [finding],
                "summary": "距实验小学80.0米",
                "protected": "实验小学",
                "distance_m": 80.0,
                "method": "boundary",
                "priority": 92.5,
                "priority_reasons": ["差距120米", "小学"],
                "rank": 1,
                "case_id": "C-001",
                "case_status": "assigned",
                "route_order": 1,
            },
            {
                **common,
                "venue_id": "nc-2",
                "name": "经十二路上网室",
                "licence_no": None,
                "address": "示范区经十二路59号",
                "status": "unlicensed",
                "findings": [walk],
                "summary": "无证经营线索",
                "protected": None,
                "distance_m": None,
                "method": None,
                "priority": 40.0,
                "priority_reasons": "无证",
                "rank": 2,
                "case_id": None,
                "case_status": None,
                "route_order": None,
            },
        ],
        geometry=[venue_1, venue_2],
        crs="EPSG:4326",
    )
    path = write_inspection_pdf(targets, tmp_path / "sheets.pdf", layers=layers, title="东湖街道检查清单")
    return path, find_cjk_font()


def _text(reader: PdfReader, page: int, *, truetype: bool) -> str:
    text = reader.pages[page].extract_text()
    # with a CFF font (Noto CJK only) pypdf puts spaces or NULs between characters; drop them then
    return text if truetype else re.sub(r"[\s\x00]+", "", text)


def test_summary_and_sheets_carry_the_chinese_text(sheets):
    path, (_font, _index, truetype) = sheets
    reader = PdfReader(path)
    assert len(reader.pages) == 3  # summary + one sheet per target
    summary = _text(reader, 0, truetype=truetype)
    for expected in (
        "东湖街道检查清单",
        "场所名称",
        "许可证号",
        "星海网咖（东湖店）",
        "经十二路上网室",
        "4299011011001",
    ):
        assert expected in summary
    assert summary.index("星海网咖") < summary.index("经十二路上网室")  # row order kept
    first = _text(reader, 1, truetype=truetype)
    for expected in (
        "星海网咖（东湖店）",
        "实验小学（小学）",
        "中小学周边200米",
        "校园边界直线距离",
        "检查人员签字",
        "差距120米",
    ):
        assert expected in first
    assert "80.0" in first and "120.0" in first
    second = _text(reader, 2, truetype=truetype)
    assert "经十二路上网室" in second and "无证经营" in second and "校门起步行距离" in second
    assert path.stat().st_size < 400_000  # the font is subset


def _render(path, page: int, out_stem) -> np.ndarray:
    subprocess.run(
        [
            "pdftoppm",
            "-r",
            "60",
            "-png",
            "-f",
            str(page),
            "-l",
            str(page),
            "-singlefile",
            str(path),
            str(out_stem),
        ],
        check=True,
        timeout=60,
    )
    return np.asarray(Image.open(f"{out_stem}.png").convert("RGB")).astype(int)


def _share_near(image: np.ndarray, colour: tuple[int, int, int], tol: int = 12) -> float:
    return float((np.abs(image - np.array(colour)).max(axis=2) <= tol).mean())


@needs_pdftoppm
def test_pages_render_with_text_and_map(sheets, tmp_path):
    path, _font = sheets
    summary = _render(path, 1, tmp_path / "p1")
    ink = (summary < 128).all(axis=2).mean()
    assert 0.002 < ink < 0.5  # text drawn, page not black
    sheet = _render(path, 2, tmp_path / "p2")
    assert (sheet < 128).all(axis=2).mean() > 0.005
    assert _share_near(sheet, SITE_FILL) > 0.005  # the campus polygon is on the map
    assert _share_near(sheet, VENUE_RED, tol=40) > 0.00002  # and the venue marker


def test_missing_font_names_the_package(monkeypatch, tmp_path):
    monkeypatch.delenv(inspection_pdf.FONT_ENV, raising=False)
    monkeypatch.setattr(inspection_pdf, "FONT_CANDIDATES", (("/nonexistent/font.ttc", 0, True),))
    targets = gpd.GeoDataFrame({"name": ["x"]}, geometry=[shapely.Point(114.3, 30.5)], crs=4326)
    with pytest.raises(CivicmapError, match="fonts-wqy-microhei"):
        write_inspection_pdf(targets, tmp_path / "x.pdf")
    monkeypatch.setenv(inspection_pdf.FONT_ENV, str(tmp_path / "missing.ttf"))
    with pytest.raises(CivicmapError, match=r"missing\.ttf"):
        find_cjk_font()


@pytest.mark.parametrize(("span_m", "expected"), [(400.0, 100.0), (1000.0, 200.0), (90.0, 20.0), (2.0, 1.0)])
def test_scale_bar_length_is_round(span_m, expected):
    assert inspection_pdf._nice_length(span_m) == expected


def test_no_targets_and_no_location(tmp_path):
    empty = gpd.GeoDataFrame({"name": []}, geometry=[], crs="EPSG:4326")
    assert len(PdfReader(write_inspection_pdf(empty, tmp_path / "empty.pdf")).pages) == 1
    nowhere = gpd.GeoDataFrame(
        {"name": ["纬七路网络会所"], "findings": [[]]}, geometry=[None], crs="EPSG:4326"
    )
    reader = PdfReader(write_inspection_pdf(nowhere, tmp_path / "nowhere.pdf"))
    assert len(reader.pages) == 2
    assert "未绘制示意图" in re.sub(r"[\s\x00]+", "", reader.pages[1].extract_text())
