"""Inspection sheets as PDF: a summary list, then one sheet per target with its map.

Each sheet carries the venue's details, its findings (rule, protected site, distance, limit,
measuring method), a small map drawn offline with matplotlib (the venue, the protected site
from ``layers``, the measured line or walking route from the finding's evidence, a scale bar in
metres and a north arrow) and blank fields for the inspector's signature and the date.

Chinese text needs a CJK font that fpdf2 can embed; the first one found of :data:`FONT_CANDIDATES`
(or the file named by the ``CIVICMAP_PDF_FONT`` environment variable) is used and subset, so a
file stays small.  TrueType-outline fonts (WenQuanYi Micro Hei, ``apt-get install
fonts-wqy-microhei``) come first: with the CFF-outline Noto CJK the PDF renders correctly but
some text extractors (pypdf) put spaces between the characters.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Mapping
from datetime import date
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from fpdf import FPDF
from fpdf.fonts import FontFace
from matplotlib.figure import Figure
from pyproj import Transformer

from geo.crs import metric_crs
from layers.errors import CivicmapError
from layers.schema import SCHEMAS, SCHOOL_LEVELS

__all__ = ["FONT_CANDIDATES", "find_cjk_font", "write_inspection_pdf"]

logger = logging.getLogger(__name__)

#: (path, index in a collection, TrueType outlines?) searched in order
FONT_CANDIDATES: tuple[tuple[str, int, bool], ...] = (
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0, True),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0, True),
    ("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf", 0, True),
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2, False),  # index 2: Simplified Chinese
    ("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc", 2, False),
)
FONT_ENV = "CIVICMAP_PDF_FONT"
_INSTALL_HINT = (
    "install one with `apt-get install fonts-wqy-microhei` (or fonts-noto-cjk), "
    f"or set {FONT_ENV} to a .ttf/.ttc/.otf file with Chinese glyphs"
)
METHOD_ZH = {
    "boundary": "校园边界直线距离",
    "gate-walk": "校门起步行距离",
    "door-walk": "校门至场所门步行距离",
    "inside": "位于其内",
}
STATUS_ZH = {"licensed": "持证经营", "suspended": "停业整顿", "revoked": "已吊销", "unlicensed": "无证经营"}
CASE_ZH = {
    "new": "新建",
    "assigned": "已分派",
    "inspected": "已检查",
    "rectified": "已整改",
    "closed": "已关闭",
    "relocated": "已搬迁",
    "dismissed": "已撤销",
}
SUMMARY_HEADERS = (
    "序号",
    "场所名称",
    "许可证号",
    "地址",
    "所属街道",
    "违规情形",
    "距离(米)",
    "限值(米)",
    "优先级",
    "状态",
    "路线",
)
_MAP_W_MM, _MAP_H_MM = 120.0, 80.0


def find_cjk_font(font_path: str | os.PathLike | None = None) -> tuple[Path, int, bool]:
    """The CJK font to embed: ``(path, collection index, has TrueType outlines)``.

    Parameters
    ----------
    font_path
        A font file to use instead of searching (``.ttf``, ``.ttc``, ``.otf``); a collection's
        first font is used.  Default: ``$CIVICMAP_PDF_FONT``, then :data:`FONT_CANDIDATES`.

    Raises
    ------
    CivicmapError
        When the given file does not exist, or no candidate is installed; the message names the
        package to install.
    """
    given = font_path or os.environ.get(FONT_ENV)
    if given:
        path = Path(given)
        if not path.is_file():
            raise CivicmapError(f"PDF font {str(path)!r} does not exist; {_INSTALL_HINT}")
        return path, 0, path.suffix.lower() != ".otf"
    for name, index, truetype in FONT_CANDIDATES:
        if Path(name).is_file():
            return Path(name), index, truetype
    raise CivicmapError(f"No Chinese font found for the inspection PDF; {_INSTALL_HINT}")


# ------------------------------------------------------------------ values
def _blank(value: object) -> bool:
    if value is None or value is pd.NA:
        return True
    if isinstance(value, float) and np.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _text(value: object, default: str = "—") -> str:
    return default if _blank(value) else str(value)


def _metres(value: object) -> str:
    return "—" if _blank(value) else f"{float(value):.1f}"


def _reasons(value: object) -> str:
    if isinstance(value, (list, tuple, np.ndarray)):
        parts = [_reason(v) for v in value if not _blank(v)]
        return "；".join(p for p in parts if p) or "—"
    return _text(value)


def _reason(value: object) -> str:
    if isinstance(value, Mapping):  # e.g. {"label": ..., "points": ...}
        text = value.get("label") or value.get("text") or value.get("reason") or ""
        points = value.get("points")
        return f"{text}（{points:+g}）" if isinstance(points, (int, float)) and text else str(text)
    return str(value)


def _findings(value: object) -> list[dict]:
    if isinstance(value, (list, tuple, np.ndarray)):
        return [dict(f) for f in value if isinstance(f, Mapping)]
    return []


def _level(value: object) -> str:
    return "" if _blank(value) else SCHOOL_LEVELS.get(str(value), (str(value),))[0]


def _kind(value: object) -> str:
    schema = SCHEMAS.get(str(value))
    return schema.label_zh if schema else _text(value)


# ------------------------------------------------------------------ the map
def _find_site(layers: Mapping[str, gpd.GeoDataFrame] | None, site_id: object):
    if not layers or _blank(site_id):
        return None
    for frame in layers.values():
        if "id" in frame and len(frame):
            hit = frame.geometry[frame["id"].astype(str) == str(site_id)]
            if len(hit) and hit.iloc[0] is not None:
                return hit.iloc[0]
    return None


def _evidence(findings: list[dict]) -> list:
    lines = []
    for f in findings:
        wkt = f.get("evidence")
        if isinstance(wkt, str) and wkt.strip():
            try:
                lines.append(shapely.from_wkt(wkt))
            except shapely.errors.GEOSException:
                logger.warning("finding %s: evidence %r is not WKT; not drawn", f.get("rule"), wkt[:60])
    return lines


def _nice_length(span_m: float) -> float:
    """A round scale-bar length near a quarter of the map width."""
    target = max(span_m / 4, 1.0)
    base = 10 ** np.floor(np.log10(target))
    return float(max(m * base for m in (1, 2, 5) if m * base <= target))


def draw_sheet_map(
    venue, sites: list, evidence: list, *, dpi: int = 150, to_metres: Transformer | None = None
) -> bytes:
    """PNG of the venue, protected sites and evidence lines (WGS84) in local metres, with scale and north.

    ``to_metres`` (WGS84 → a transverse Mercator of the district) saves building one per map;
    by default one is centred on this map's data (:func:`geo.crs.metric_crs`).
    """
    everything = [g for g in [venue, *sites, *evidence] if g is not None and not g.is_empty]
    fwd = to_metres or _to_metres(np.array(everything, dtype=object))

    def project(g):
        return shapely.transform(g, lambda xy: np.column_stack(fwd.transform(xy[:, 0], xy[:, 1])))

    fig = Figure(figsize=(_MAP_W_MM / 25.4, _MAP_H_MM / 25.4), dpi=dpi)  # no pyplot: no global state
    ax = fig.add_axes((0.005, 0.005, 0.99, 0.99))
    for site in sites:
        _draw(ax, project(site), face="#cfe3f7", edge="#1f5fa8", point="#1f5fa8", marker="s")
    for line in evidence:
        _draw(ax, project(line), edge="#d62728", width=2.0, style="--")
    if venue is not None and not venue.is_empty:
        _draw(ax, project(venue), face="#f4b183", edge="#c00000", point="#c00000", marker="o")
    minx, miny, maxx, maxy = shapely.total_bounds(np.array([project(g) for g in everything], dtype=object))
    pad = max(maxx - minx, maxy - miny, 60.0) * 0.25
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    half_w = max(maxx - minx, (maxy - miny) * 1.5, 60.0) / 2 + pad
    half_h = half_w / 1.5
    ax.set_xlim(cx - half_w, cx + half_w)
    ax.set_ylim(cy - half_h, cy + half_h)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    bar = _nice_length(2 * half_w)
    x0, y0 = cx - half_w * 0.92, cy - half_h * 0.85
    ax.plot([x0, x0 + bar], [y0, y0], color="black", linewidth=3, solid_capstyle="butt")
    ax.text(x0 + bar / 2, y0 + half_h * 0.05, f"{bar:g} m", ha="center", va="bottom", fontsize=7)
    nx, ny = cx + half_w * 0.88, cy + half_h * 0.6
    ax.annotate(
        "", xy=(nx, ny + half_h * 0.25), xytext=(nx, ny), arrowprops={"arrowstyle": "-|>", "color": "k"}
    )
    ax.text(nx, ny + half_h * 0.27, "N", ha="center", va="bottom", fontsize=8, fontweight="bold")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _to_metres(geoms: np.ndarray) -> Transformer:
    return Transformer.from_crs("EPSG:4326", metric_crs(geoms), always_xy=True)


def _draw(ax, geom, *, face="none", edge="black", point="black", marker="o", width=1.2, style="-") -> None:
    for part in getattr(geom, "geoms", [geom]):
        if part.geom_type == "Polygon":
            x, y = part.exterior.xy
            ax.fill(x, y, facecolor=face, edgecolor=edge, linewidth=width)
        elif part.geom_type in ("LineString", "LinearRing"):
            x, y = part.xy
            ax.plot(x, y, color=edge, linewidth=width, linestyle=style)
        elif part.geom_type == "Point":
            ax.plot(part.x, part.y, marker=marker, color=point, markersize=7, markeredgecolor="white")
        else:
            _draw(ax, part, face=face, edge=edge, point=point, marker=marker, width=width, style=style)


# ------------------------------------------------------------------ the document
class _SheetPDF(FPDF):
    """A4 with the CJK font registered as ``cjk`` and page numbers in the footer."""

    def __init__(self, font: tuple[Path, int, bool], title: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        path, index, _truetype = font
        kwargs = {"collection_font_number": index} if path.suffix.lower() == ".ttc" else {}
        try:
            self.add_font("cjk", fname=str(path), **kwargs)
        except Exception as exc:  # fpdf2 raises several kinds for unreadable fonts
            raise CivicmapError(
                f"PDF font {str(path)!r} cannot be embedded ({exc}); {_INSTALL_HINT}"
            ) from exc
        self.doc_title = title
        self.set_title(title)
        self.set_creator("civicmap")
        self.set_auto_page_break(auto=True, margin=15)
        self.set_font("cjk", size=10)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("cjk", size=8)
        self.cell(0, 6, f"{self.doc_title}  ·  第 {self.page_no()} 页", align="C")

    def heading(self, text: str, size: float = 15) -> None:
        self.set_font("cjk", size=size)
        self.multi_cell(0, size * 0.55, text, new_x="LMARGIN", new_y="NEXT")
        self.set_font("cjk", size=10)
        self.ln(2)


def _summary_pages(pdf: _SheetPDF, targets: gpd.GeoDataFrame) -> None:
    pdf.add_page(orientation="L")
    pdf.heading(pdf.doc_title)
    pdf.set_font("cjk", size=9)
    pdf.cell(
        0,
        6,
        f"共 {len(targets)} 个检查对象  ·  生成日期 {date.today().isoformat()}",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(2)
    pdf.set_font("cjk", size=8)
    widths = (10, 38, 26, 46, 22, 52, 16, 16, 14, 20, 12)
    head = FontFace(emphasis=None, fill_color=(225, 232, 240))
    with pdf.table(col_widths=widths, headings_style=head, line_height=4.5, text_align="LEFT") as table:
        table.row(SUMMARY_HEADERS)
        for number, (_i, t) in enumerate(targets.iterrows(), start=1):
            table.row(
                (
                    str(number),
                    _text(t.get("name")),
                    _text(t.get("licence_no")),
                    _text(t.get("address")),
                    _text(t.get("subdistrict")),
                    _text(t.get("summary")),
                    _metres(t.get("distance_m")),
                    _metres(t.get("limit_m")),
                    _text(t.get("priority")),
                    STATUS_ZH.get(str(t.get("status")), _text(t.get("status"))),
                    _text(t.get("route_order"), ""),
                )
            )


def _detail_rows(t: pd.Series) -> list[tuple[str, str]]:
    case = _text(t.get("case_id"), "")
    if case:
        case += f"（{CASE_ZH.get(str(t.get('case_status')), _text(t.get('case_status')))}）"
    priority = _text(t.get("priority"))
    if not _blank(t.get("rank")):
        priority += f"（第 {t.get('rank')} 位）"
    return [
        ("场所名称", _text(t.get("name"))),
        ("场所类型", _kind(t.get("kind"))),
        ("许可证号", _text(t.get("licence_no"), "无")),
        ("地址", _text(t.get("address"))),
        ("所属街道", _text(t.get("subdistrict"))),
        ("执法队", _text(t.get("team"))),
        ("许可状态", STATUS_ZH.get(str(t.get("status")), _text(t.get("status")))),
        ("优先级", priority),
        ("优先级依据", _reasons(t.get("priority_reasons"))),
        ("案件", case or "—"),
        ("路线顺序", _text(t.get("route_order"))),
        ("场所编号", _text(t.get("venue_id"))),
    ]


def _finding_row(f: dict) -> tuple[str, ...]:
    site = _text(f.get("protected_name"))
    level = _level(f.get("protected_level"))
    if level:
        site += f"（{level}）"
    method = METHOD_ZH.get(str(f.get("method")), _text(f.get("method")))
    if f.get("approximate") is True:
        method += "（近似）"
    return (
        _text(f.get("rule_label") or f.get("rule")),
        site,
        _metres(f.get("distance_m")),
        _metres(f.get("limit_m")),
        _metres(f.get("shortfall_m")),
        method,
    )


def _sheet(pdf: _SheetPDF, t: pd.Series, number: int, layers, to_metres: Transformer | None) -> None:
    pdf.add_page(orientation="P")
    pdf.heading(f"现场检查单  {number}. {_text(t.get('name'))}", size=14)
    label = FontFace(fill_color=(238, 242, 247))
    with pdf.table(col_widths=(30, 150), first_row_as_headings=False, line_height=5.5) as table:
        for key, value in _detail_rows(t):
            row = table.row()
            row.cell(key, style=label)
            row.cell(value)
    pdf.ln(3)
    findings = _findings(t.get("findings"))
    pdf.set_font("cjk", size=11)
    pdf.cell(0, 7, "违规情形", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=9)
    head = FontFace(fill_color=(225, 232, 240))
    with pdf.table(col_widths=(40, 46, 20, 20, 20, 34), headings_style=head, line_height=5) as table:
        table.row(("违规情形", "保护对象", "距离(米)", "限值(米)", "差距(米)", "测量方法"))
        for f in findings or [{"rule_label": _text(t.get("summary"))}]:
            table.row(_finding_row(f))
    pdf.ln(3)
    sites = [g for g in (_find_site(layers, f.get("protected_id")) for f in findings) if g is not None]
    venue = t.geometry if t.geometry is not None and not t.geometry.is_empty else None
    lines = _evidence(findings)
    if venue is None and not sites and not lines:
        pdf.cell(0, 6, "（无位置信息，未绘制示意图）", new_x="LMARGIN", new_y="NEXT")
    else:
        png = draw_sheet_map(venue, sites, lines, to_metres=to_metres)
        if pdf.get_y() + _MAP_H_MM + 40 > pdf.h - pdf.b_margin:
            pdf.add_page(orientation="P")
        pdf.image(io.BytesIO(png), x=pdf.l_margin, w=_MAP_W_MM)
    pdf.set_font("cjk", size=7)
    pdf.cell(
        0,
        4,
        "示意图：红点为场所，蓝色为保护对象，红色虚线为测量线路；坐标 WGS84，局部投影。",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(3)
    pdf.set_font("cjk", size=10)
    pdf.cell(0, 6, "现场检查情况：", new_x="LMARGIN", new_y="NEXT")
    for _ in range(3):
        pdf.cell(0, 7, "", border="B", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(5)
    pdf.cell(90, 8, "检查人员签字：____________________")
    pdf.cell(0, 8, "日期：______年____月____日", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(90, 8, "场所负责人签字：__________________")
    pdf.cell(0, 8, "实测距离(米)：__________", new_x="LMARGIN", new_y="NEXT")


def write_inspection_pdf(
    targets: gpd.GeoDataFrame,
    path: str | os.PathLike,
    *,
    layers: Mapping[str, gpd.GeoDataFrame] | None = None,
    title: str | None = None,
    font_path: str | os.PathLike | None = None,
) -> Path:
    """Write the summary list and one inspection sheet per target to a PDF.

    Parameters
    ----------
    targets
        One row per venue (WGS84 point geometry) with ``venue_id, kind, name, licence_no,
        address, subdistrict, team, status, findings`` (list of dicts with ``rule_label,
        protected_id, protected_name, protected_level, distance_m, limit_m, method,
        shortfall_m, approximate, evidence`` — evidence a WKT line or route in WGS84, or None),
        ``summary, distance_m, limit_m, priority, priority_reasons, rank, case_id,
        case_status, route_order``; missing columns print as "—".  Sheets follow the row order.
    path
        The PDF to write (parent folders must exist).
    layers
        Kind → layer (WGS84), to draw the protected sites' outlines; without it only the
        measured lines are drawn.
    title
        Shown on the summary and in every footer (default 执法检查清单).
    font_path
        A CJK font file; default: :func:`find_cjk_font`.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    CivicmapError
        When no usable Chinese font is installed (the message names the package).
    """
    font = find_cjk_font(font_path)
    if not font[2]:
        logger.info("PDF font %s has CFF outlines; some text extractors space out its characters", font[0])
    if targets.crs is not None and targets.crs.to_epsg() != 4326:
        raise CivicmapError(f"targets: CRS {targets.crs.to_string()} is not WGS84 (EPSG:4326)")
    pdf = _SheetPDF(font, title or "执法检查清单")
    _summary_pages(pdf, targets)
    try:  # one projection for a district's sheets; each map gets its own for wider lists
        located = targets.geometry[targets.geometry.notna() & ~targets.geometry.is_empty].to_numpy()
        to_metres = _to_metres(located) if len(located) else None
    except CivicmapError:
        to_metres = None
    for number, (_i, target) in enumerate(targets.iterrows(), start=1):
        _sheet(pdf, target, number, layers, to_metres)
    out = Path(path)
    pdf.output(str(out))
    logger.info("wrote %d inspection sheets to %s (%d pages)", len(targets), out, pdf.page_no())
    return out
