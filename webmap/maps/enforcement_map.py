"""Enforcement maps: one case (venue, protected sites, measured lines) and a team's day tour.

Every user string goes through :func:`webmap.maps.features.geojson_layer`, which escapes it.
Geometries are WGS84 and shifted for display only (:func:`webmap.basemaps.to_display`).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import folium
import geopandas as gpd
import pandas as pd
import shapely
from flask_babel import gettext as _

from webmap.basemaps import Basemap, make_map, to_display
from webmap.i18n import format_distance, in_language
from webmap.labels import level_label
from webmap.maps.features import geojson_layer
from webmap.maps.legend import Legend

RED = "#c8161d"
BLUE = "#1d4f91"
GREEN = "#2e7d32"
ORANGE = "#e67e22"


def _frame(geoms: list, columns: Mapping[str, list]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(dict(columns), geometry=geoms, crs="EPSG:4326")


def _bounds(frames: list[gpd.GeoDataFrame], pad_deg: float = 0.002):
    shown = [f for f in frames if len(f)]
    if not shown:
        return None
    minx, miny, maxx, maxy = pd.concat([f.geometry for f in shown]).total_bounds
    return (minx - pad_deg, miny - pad_deg, maxx + pad_deg, maxy + pad_deg)


def build_case_map(
    target: Mapping | None, venue_point, layers: Mapping[str, gpd.GeoDataFrame], basemap: Basemap
) -> folium.Map:
    """The venue, the protected sites of its findings and each measured line or route.

    Parameters
    ----------
    target
        The venue's row of the target table (None when the analysis no longer finds it).
    venue_point
        The venue's WGS84 point (None when unknown).
    layers
        Workspace layers (``schools``, ``residential``, ``zones`` give the protected sites).
    basemap
        The base map.
    """
    findings = list(target["findings"]) if target is not None else []
    lines = [f for f in findings if f.get("evidence")]
    evidence = _frame(
        [shapely.from_wkt(f["evidence"]) for f in lines],
        {"label": [format_distance(f["distance_m"]) for f in lines],
         "site": [f["protected_name"] for f in lines], "rule": [f["rule_label"] for f in lines],
         "distance": [format_distance(f["distance_m"]) for f in lines]},
    )  # fmt: skip
    sites = []
    for kind in ("schools", "residential", "zones"):
        frame = layers.get(kind)
        ids = {f["protected_id"] for f in findings if f.get("protected_kind") == kind}
        if frame is not None and ids:
            sites.append(frame[frame["id"].astype(str).isin(ids)].assign(_kind=kind))
    protected = (
        gpd.GeoDataFrame(pd.concat(sites, ignore_index=True), crs="EPSG:4326") if sites else _frame([], {})
    )
    venue = _frame([venue_point] if venue_point is not None else [], {
        "name": [target["name"] if target is not None else ""] if venue_point is not None else []})  # fmt: skip
    m = make_map(bounds=_bounds([venue, protected, evidence]), basemap=basemap, zoom_start=16)
    if len(protected):
        geojson_layer(
            to_display(protected, basemap),
            name=_("Protected sites"),
            columns={
                "name": protected["name"],
                "level": [level_label(v) for v in protected.get("level", [""] * len(protected))],
            },
            tooltip={"name": "", "level": ""},
            style=lambda _f: {
                "color": GREEN,
                "weight": 2,
                "fill": True,
                "fillColor": GREEN,
                "fillOpacity": 0.25,
                "radius": 7,
            },
            marker=folium.CircleMarker(radius=7),
        ).add_to(m)
    if len(evidence):
        geojson_layer(
            to_display(evidence, basemap),
            name=_("Measured lines"),
            columns=evidence.drop(columns="geometry").to_dict(orient="list"),
            popup={"site": _("Protected site"), "rule": _("Rule"), "distance": _("Distance")},
            style=lambda _f: {"color": RED, "weight": 3.5, "opacity": 0.95},
            label="label",
        ).add_to(m)
    if len(venue):
        geojson_layer(
            to_display(venue, basemap),
            name=_("Venue"),
            columns={"name": venue["name"]},
            tooltip={"name": ""},
            style=lambda _f: {
                "color": RED,
                "fill": True,
                "fillColor": RED,
                "fillOpacity": 0.9,
                "weight": 2,
                "radius": 8,
            },
            marker=folium.CircleMarker(radius=8),
        ).add_to(m)
    m.add_child(Legend(_("Legend"), [
        (_("Venue"), {"color": RED, "fill": RED, "shape": "dot"}),
        (_("Protected sites"), {"color": GREEN, "fill": "#a5d6a7", "shape": "area"}),
        (_("Measured lines"), {"color": RED, "shape": "line"}),
    ]))  # fmt: skip
    folium.LayerControl(collapsed=True).add_to(m)
    return m


def route_legs(stops: gpd.GeoDataFrame, network=None) -> list[shapely.LineString]:
    """The lines between consecutive stops: walking routes when a network is given and routes, else straight."""
    points = list(stops.geometry)
    legs = []
    for a, b in itertools.pairwise(points):
        walk = network.route(a, b) if network is not None else None
        legs.append(walk if walk is not None else shapely.LineString([a, b]))
    return legs


def build_route_map(stops: gpd.GeoDataFrame, basemap: Basemap, *, network=None) -> folium.Map:
    """A day's tour: numbered stops in visiting order joined by the legs walked or driven.

    Parameters
    ----------
    stops
        Targets of one team and day sorted by ``route_order`` (WGS84 points).
    network
        A :class:`geo.network.WalkNetwork` to draw walking legs; straight legs when None.
    """
    m = make_map(bounds=_bounds([stops]), basemap=basemap, zoom_start=15)
    legs = route_legs(stops, network)
    if legs:
        path = _frame(legs, {"leg": [f"{i} → {i + 1}" for i in range(1, len(legs) + 1)]})
        geojson_layer(
            to_display(path, basemap),
            name=_("Route"),
            columns={"leg": path["leg"]},
            tooltip={"leg": ""},
            style=lambda _f: {"color": BLUE, "weight": 4, "opacity": 0.8, "dashArray": "8 6"},
        ).add_to(m)
    if len(stops):
        geojson_layer(
            to_display(stops, basemap),
            name=_("Stops"),
            columns={
                "name": stops["name"],
                "summary": [
                    in_language(zh, en)
                    for zh, en in zip(
                        stops["summary"], stops.get("summary_en", stops["summary"]), strict=True
                    )
                ],
                "priority": [f"{p:.1f}" for p in stops["priority"]],
            },
            popup={"name": _("Venue"), "summary": _("Findings"), "priority": _("Priority")},
            style=lambda _f: {
                "color": "#fff",
                "fill": True,
                "fillColor": RED,
                "fillOpacity": 0.95,
                "weight": 2,
                "radius": 12,
            },
            marker=folium.CircleMarker(radius=12),
        ).add_to(m)
        numbers = folium.FeatureGroup(name=_("Visiting order"), control=False)
        for point, order in zip(to_display(stops, basemap).geometry, stops["route_order"], strict=True):
            folium.Marker(
                [point.y, point.x],
                icon=folium.DivIcon(html=f'<span class="cm-stop-no">{int(order)}</span>', icon_size=(0, 0)),
                interactive=False,
            ).add_to(numbers)
        numbers.add_to(m)
    m.add_child(Legend(_("Legend"), [
        (_("Stop, in visiting order"), {"color": RED, "fill": RED, "shape": "dot"}),
        (_("Route"), {"color": BLUE, "shape": "dash"}),
    ]))  # fmt: skip
    return m
