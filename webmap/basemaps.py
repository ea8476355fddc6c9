"""Base maps: which tiles a map page draws under the data, from settings.

The shipped choices live in ``basemaps.toml`` next to this module; a deployment changes them
with these settings (all optional, read from the app's configuration):

``BASEMAPS``         a list of names to offer (in that order), or a table of entries to add or
                     override, with the keys of ``basemaps.toml``;
``BASEMAP_DEFAULT``  the base map a page opens with (default ``"none"``);
``TILE_URL``         the deployment's own tile server (``{z}/{x}/{y}`` template; adds ``"custom"``);
``TILE_DATUM``       datum of those tiles (default ``"wgs84"``);
``TIANDITU_KEY``     the Tianditu key (``tk``); the Tianditu base maps are offered only with it;
``MAP_APPROVAL_NO``  the approval number (审图号) shown bottom-left with "地图来源：天地图".

Data are stored and analysed in WGS84.  Only for a GCJ-02 base map (Amap) are they shifted,
for display only, with :func:`to_display`.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import folium
import geopandas as gpd
import numpy as np
from branca.element import MacroElement
from jinja2 import Template

from geo.crs import geometry_from_wgs84, wgs84_to_gcj02

log = logging.getLogger(__name__)

SHIPPED = Path(__file__).resolve().parent / "basemaps.toml"
DEFAULT_BASEMAP = "none"
GCJ02 = "gcj02"
TIANDITU_NOTICE = "地图来源：天地图"


@dataclass(frozen=True)
class TileSpec:
    """One tile layer of a base map (Tianditu draws two: the map and its labels)."""

    url: str
    subdomains: str = ""
    attribution: str = ""


@dataclass(frozen=True)
class Basemap:
    """A base map a page may draw; ``layers`` empty means a plain background."""

    name: str
    label_zh: str
    label_en: str
    datum: str = "wgs84"
    layers: tuple[TileSpec, ...] = ()
    max_zoom: int = 18
    provider: str = ""
    approval_no: str = ""

    def label(self, locale: str = "zh_CN") -> str:
        """The label in ``locale`` (Chinese unless the locale is English)."""
        return self.label_en if str(locale).startswith("en") else self.label_zh

    @property
    def is_gcj02(self) -> bool:
        """Whether data must be shifted into GCJ-02 to sit right on these tiles."""
        return self.datum == GCJ02

    @property
    def tile_hosts(self) -> tuple[str, ...]:
        """Origins the tiles come from (``https://*.tianditu.gov.cn``), for the CSP ``img-src``."""
        hosts: list[str] = []
        for layer in self.layers:
            parts = urlsplit(layer.url)
            if not parts.scheme or not parts.netloc:
                continue  # served by the app itself
            netloc = ".".join("*" if "{" in label else label for label in parts.netloc.split("."))
            origin = f"{parts.scheme}://{netloc}"
            if origin not in hosts:
                hosts.append(origin)
        return tuple(hosts)


@lru_cache(maxsize=4)
def _read_toml(path: Path) -> dict[str, Any]:
    with path.open("rb") as fh:
        return tomllib.load(fh)


def _entry(name: str, table: Mapping[str, Any], config: Mapping[str, Any]) -> Basemap | None:
    needs = table.get("needs")
    if needs and not config.get(needs):
        return None
    key = str(config.get("TIANDITU_KEY") or "")
    layers = tuple(
        TileSpec(
            url=str(spec["url"]).replace("{tk}", key),
            subdomains=str(spec.get("subdomains", "")),
            attribution=str(spec.get("attribution", "")),
        )
        for spec in table.get("layers", [])
    )
    return Basemap(
        name=name,
        label_zh=str(table.get("label_zh", name)),
        label_en=str(table.get("label_en", table.get("label_zh", name))),
        datum=str(table.get("datum", "wgs84")).lower().replace("-", ""),
        layers=layers,
        max_zoom=int(table.get("max_zoom", 18)),
        provider=str(table.get("provider", "")),
        approval_no=str(config.get("MAP_APPROVAL_NO") or ""),
    )


def basemap_choices(config: Mapping[str, Any]) -> list[Basemap]:
    """Every base map this deployment offers, the default first.

    Parameters
    ----------
    config
        The app configuration (``app.config``); see the module docstring for the keys.

    Returns
    -------
    list of Basemap
        Never empty: ``"none"`` is always available.
    """
    tables: dict[str, Mapping[str, Any]] = dict(_read_toml(SHIPPED))
    override = config.get("BASEMAPS")
    order: list[str] | None = None
    if isinstance(override, Mapping):
        for name, table in override.items():
            tables[str(name)] = {**tables.get(str(name), {}), **table}
    elif override:
        order = [override] if isinstance(override, str) else [str(n) for n in override]
    if config.get("TILE_URL"):
        tables["custom"] = {
            "label_zh": "本单位底图",
            "label_en": "Own tile server",
            "datum": config.get("TILE_DATUM", "wgs84"),
            "layers": [{"url": config["TILE_URL"], "attribution": config.get("TILE_ATTRIBUTION", "")}],
        }
        if order is not None and "custom" not in order:
            order.append("custom")
    names = order if order is not None else list(tables)
    unknown = [n for n in names if n not in tables]
    if unknown:
        log.warning("BASEMAPS names unknown base maps %s; known: %s", unknown, ", ".join(tables))
    choices = [b for n in names if n in tables and (b := _entry(n, tables[n], config)) is not None]
    if not any(b.name == DEFAULT_BASEMAP for b in choices):
        choices.insert(0, _entry(DEFAULT_BASEMAP, tables.get(DEFAULT_BASEMAP, {"layers": []}), config))
    default = str(config.get("BASEMAP_DEFAULT") or DEFAULT_BASEMAP)
    choices.sort(key=lambda b: b.name != default)
    return choices


def active_basemap(config: Mapping[str, Any], name: str | None = None) -> Basemap:
    """The base map called ``name`` (from ``?basemap=``), else the deployment's default.

    An unknown or unavailable ``name`` falls back to the default rather than failing.
    """
    choices = basemap_choices(config)
    for basemap in choices:
        if basemap.name == name:
            return basemap
    return choices[0]


def all_tile_hosts(config: Mapping[str, Any]) -> list[str]:
    """Tile origins of every offered base map (what the CSP ``img-src`` must allow)."""
    hosts: list[str] = []
    for basemap in basemap_choices(config):
        hosts.extend(h for h in basemap.tile_hosts if h not in hosts)
    return hosts


class _Notice(MacroElement):
    """A fixed text box in a map corner (the Tianditu source and approval number)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function () {
            var box = L.control({position: {{ this.position|tojson }}});
            box.onAdd = function () {
                var div = L.DomUtil.create("div", "cm-map-notice");
                {% for line in this.lines %}
                var p{{ loop.index }} = L.DomUtil.create("div", "", div);
                p{{ loop.index }}.textContent = {{ line|tojson }};
                {% endfor %}
                return div;
            };
            box.addTo({{ this._parent.get_name() }});
        })();
        {% endmacro %}
        """
    )

    def __init__(self, lines: list[str], position: str = "bottomleft"):
        super().__init__()
        self._name = "Notice"
        self.lines = lines
        self.position = position


class _Chrome(MacroElement):
    """A metric-only scale bar and a plain attribution prefix (no outside link)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        L.control.scale({imperial: false, position: "bottomleft"}).addTo({{ this._parent.get_name() }});
        if ({{ this._parent.get_name() }}.attributionControl) {
            {{ this._parent.get_name() }}.attributionControl.setPrefix("Leaflet");
        }
        {% endmacro %}
        """
    )

    def __init__(self):
        super().__init__()
        self._name = "MapChrome"


def _display_bounds(bounds: Any, basemap: Basemap) -> list[list[float]]:
    minx, miny, maxx, maxy = (float(v) for v in bounds)
    if basemap.is_gcj02:
        x, y = wgs84_to_gcj02(np.array([minx, maxx]), np.array([miny, maxy]))
        minx, maxx, miny, maxy = float(x[0]), float(x[1]), float(y[0]), float(y[1])
    return [[miny, minx], [maxy, maxx]]


def make_map(*, bounds: Any, basemap: Basemap, **folium_kwargs: Any) -> folium.Map:
    """A Folium map with ``basemap``'s tiles, canvas rendering and local assets.

    Parameters
    ----------
    bounds
        ``(min_lon, min_lat, max_lon, max_lat)`` in WGS84 to fit the view to.
    basemap
        From :func:`active_basemap`.
    **folium_kwargs
        Passed to :class:`folium.Map` (``prefer_canvas``, ``control_scale`` … may be overridden).

    Returns
    -------
    folium.Map
        With the tile layer(s), the attribution control and, for Tianditu, the source and
        approval number bottom-left.
    """
    from webmap.assets import localize

    options = {"prefer_canvas": True, "zoom_start": 13, "zoom_snap": 0.25, "zoom_delta": 0.5, **folium_kwargs}
    m = folium.Map(tiles=None, max_zoom=max(basemap.max_zoom, 18), **options)
    for i, spec in enumerate(basemap.layers):
        extra = {"subdomains": spec.subdomains} if spec.subdomains else {}
        folium.TileLayer(
            tiles=spec.url,
            attr=spec.attribution or basemap.label_zh,
            name=basemap.label_zh if i == 0 else f"{basemap.label_zh} ({i + 1})",
            max_zoom=basemap.max_zoom,
            max_native_zoom=basemap.max_zoom,
            control=False,
            overlay=False,
            **extra,
        ).add_to(m)
    m.add_child(_Chrome())
    if basemap.provider == "tianditu":
        lines = [TIANDITU_NOTICE] + ([f"审图号：{basemap.approval_no}"] if basemap.approval_no else [])
        m.add_child(_Notice(lines))
    if bounds is not None and len(bounds) == 4 and np.all(np.isfinite(np.asarray(bounds, dtype=float))):
        m.fit_bounds(_display_bounds(bounds, basemap))
    return localize(m)


def to_display(data: Any, basemap: Basemap) -> Any:
    """Shift WGS84 data into the base map's datum, for drawing only (never for analysis).

    Parameters
    ----------
    data
        A GeoDataFrame, GeoSeries or array of shapely geometries in WGS84.
    basemap
        The base map drawn under the data.

    Returns
    -------
    The same kind of object: unchanged unless the base map is GCJ-02 (then a shifted copy).
    """
    if not basemap.is_gcj02:
        return data
    if isinstance(data, gpd.GeoDataFrame):
        out = data.copy()
        out[out.geometry.name] = gpd.GeoSeries(
            geometry_from_wgs84(out.geometry.values, GCJ02), index=out.index, crs=data.crs
        )
        return out
    if isinstance(data, gpd.GeoSeries):
        return gpd.GeoSeries(geometry_from_wgs84(data.values, GCJ02), index=data.index, crs=data.crs)
    return geometry_from_wgs84(data, GCJ02)


__all__ = [
    "Basemap",
    "TileSpec",
    "active_basemap",
    "all_tile_hosts",
    "basemap_choices",
    "make_map",
    "to_display",
]
