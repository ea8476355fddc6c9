"""The layers map: every stored layer kind, toggleable, with its count and style.

Point layers are drawn by :class:`~webmap.maps.point_cloud.PointCloud` (columns + one canvas:
50,000 venues ≈ 2–3 MB of page, built in well under a second); lines and polygons are one
``folium.GeoJson`` each on the canvas renderer.  See ``benchmarks/bench_maps.py`` for the
measurements behind this choice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import folium
import geopandas as gpd
import pandas as pd
from flask_babel import gettext as _

from layers.schema import KINDS, SCHEMAS
from webmap.basemaps import Basemap, make_map, to_display
from webmap.labels import kind_label, level_label, status_label
from webmap.maps.features import geojson_layer, plain_text
from webmap.maps.legend import Legend
from webmap.maps.point_cloud import PointCloud

#: kind → (stroke, fill, shown at first)
STYLES: dict[str, tuple[str, str, bool]] = {
    "subdistricts": ("#52606d", "", True),
    "zones": ("#b7791f", "#f6e05e", True),
    "residential": ("#a0aec0", "#e2e8f0", False),
    "roads": ("#9aa5b1", "", False),
    "schools": ("#2e7d32", "#66bb6a", True),
    "school_gates": ("#1b5e20", "#ffffff", False),
    "cultural_facilities": ("#6a1b9a", "#ba68c8", True),
    "net_cafes": ("#c8161d", "#e53935", True),
    "game_venues": ("#d35400", "#f39c12", True),
    "entertainment_venues": ("#ad1457", "#f06292", True),
    "publication_sellers": ("#1565c0", "#64b5f6", True),
    "venue_doors": ("#37474f", "#ffffff", False),
    "pois": ("#455a64", "#90a4ae", False),
}
#: draw order: areas first, points last (on top)
ORDER = [k for k in STYLES if k in KINDS] + [k for k in KINDS if k not in STYLES]


@dataclass
class LayersMap:
    """The built map and the per-kind counts shown beside it."""

    map: folium.Map
    counts: list[dict] = field(default_factory=list)


def popup_fields(kind: str, frame: gpd.GeoDataFrame) -> dict[str, list]:
    """Label → values for a layer's popup: its name and the schema's most useful fields."""
    out: dict[str, list] = {_("Name"): list(frame["name"]) if "name" in frame.columns else list(frame["id"])}
    out[_("ID")] = list(frame["id"])
    for f in SCHEMAS[kind].fields:
        if f.name in ("name",) or f.name not in frame.columns:
            continue
        if f.name not in ("licence_no", "status", "level", "address", "subdistrict", "type", "category"):
            continue
        values = list(frame[f.name])
        if f.name == "status":
            values = [status_label(v) for v in values]
        elif f.name == "level":
            values = [level_label(v) for v in values]
        out[f.label_zh if _is_zh() else (f.label_en or f.name)] = values
    return out


def _is_zh() -> bool:
    from webmap.i18n import is_chinese

    return is_chinese()


def feature_rows(kind: str, frame: gpd.GeoDataFrame, index: int) -> list[list[str]]:
    """``[[label, text], …]`` of row ``index`` of a layer, for a point's popup."""
    fields = popup_fields(kind, frame.iloc[[index]])
    return [[str(label), plain_text(values[0])] for label, values in fields.items()]


def _add_layer(
    m: folium.Map,
    kind: str,
    frame: gpd.GeoDataFrame,
    basemap: Basemap,
    detail_url: Callable[[str], str] | None,
) -> None:
    stroke, fill, show = STYLES.get(kind, ("#1d4f91", "#1d4f91", True))
    name = f"{kind_label(kind)} ({len(frame):,})"
    shown = to_display(frame, basemap)
    if (shown.geom_type == "Point").all():
        PointCloud(
            shown.geometry.x,
            shown.geometry.y,
            name=name,
            titles=frame["name"] if "name" in frame.columns else frame["id"],
            detail_url=detail_url(kind) if detail_url else "",
            color=stroke,
            fill=fill,
            show=show,
            radius_px=3.5 if len(frame) > 5000 else 5,
        ).add_to(m)
        return
    fields = popup_fields(kind, frame)
    columns = {f"f{i}": values for i, values in enumerate(fields.values())}
    popup = {f"f{i}": label for i, label in enumerate(fields)}
    geojson_layer(
        shown,
        name=name,
        columns=columns,
        popup=popup,
        tooltip={"f0": ""},
        style=lambda f, s=stroke, c=fill: {
            "color": s,
            "weight": 1.5,
            "fill": bool(c),
            "fillColor": c or s,
            "fillOpacity": 0.35,
            "radius": 5,
        },
        marker=folium.CircleMarker(radius=5),
        show=show,
    ).add_to(m)


def build_layers_map(
    layers: dict[str, gpd.GeoDataFrame], basemap: Basemap, *, detail_url: Callable[[str], str] | None = None
) -> LayersMap:
    """Every non-empty layer of ``layers`` (kind → WGS84 GeoDataFrame) on one map.

    Parameters
    ----------
    layers
        Stored layers keyed by kind.
    basemap
        The base map (GCJ-02 base maps get the data shifted for display only).
    detail_url
        ``kind →`` URL (with ``{i}`` for the row) answering a point's details as JSON.

    Returns
    -------
    LayersMap
    """
    present = {k: f for k, f in layers.items() if f is not None and not f.empty}
    bounds = pd.concat([f.geometry for f in present.values()]).total_bounds if present else None
    m = make_map(bounds=bounds, basemap=basemap)
    counts = []
    for kind in ORDER:
        frame = present.get(kind)
        if frame is None:
            continue
        _add_layer(m, kind, frame, basemap, detail_url)
        stroke, fill, _show = STYLES.get(kind, ("#1d4f91", "#1d4f91", True))
        counts.append(
            {"kind": kind, "label": kind_label(kind), "count": len(frame), "color": stroke, "fill": fill}
        )
    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    if counts:
        items = [
            (c["label"], {"color": c["color"], "fill": c["fill"], "shape": "dot" if c["fill"] else "line"})
            for c in counts
        ]
        m.add_child(Legend(_("Legend"), items))
    return LayersMap(map=m, counts=counts)
