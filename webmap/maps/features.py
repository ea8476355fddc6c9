"""One layer → one ``folium.GeoJson``, with every property value HTML-escaped.

Folium's ``GeoJsonPopup`` and ``GeoJsonTooltip`` put property values into the popup's HTML
as they are, so :func:`geojson_layer` escapes each value (``markupsafe.escape``) before the
data reach the map: a venue called ``<img src=x onerror=alert(1)>`` shows as text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from folium.utilities import JsCode
from markupsafe import escape

#: coordinates are rounded to this grid (degrees; 1e-6° ≈ 0.1 m) to keep pages small
DISPLAY_GRID_DEG = 1e-6


def plain_text(value: Any) -> str:
    """A property value as plain text (``""`` for missing values, ``✓`` for true)."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, bool | np.bool_):
        return "✓" if value else ""
    return str(value)


def plain_texts(values: Sequence[Any]) -> list[str]:
    """:func:`plain_text` of every value; fast for pandas text columns."""
    if (
        isinstance(values, pd.Series)
        and (pd.api.types.is_string_dtype(values) or values.dtype == object)
        and values.map(type).isin([str, type(None), float]).all()
    ):
        return values.fillna("").astype(str).tolist()
    return [plain_text(v) for v in values]


def display_text(value: Any) -> str:
    """A property value as HTML-escaped display text (for Folium popups and tooltips)."""
    return str(escape(plain_text(value)))


def feature_collection(frame: gpd.GeoDataFrame, columns: Mapping[str, Sequence[Any]]) -> dict:
    """A GeoJSON FeatureCollection of ``frame``'s geometries with escaped ``columns``.

    Parameters
    ----------
    frame
        WGS84 (or display-datum) geometries.
    columns
        Property name → values (one per row); each value is escaped with :func:`display_text`.
    """
    geoms = shapely.set_precision(np.asarray(frame.geometry.values), DISPLAY_GRID_DEG)
    props = {name: [display_text(v) for v in values] for name, values in columns.items()}
    raw = {name: list(values) for name, values in columns.items() if name.startswith("_")}
    features = []
    for i, geom in enumerate(geoms):
        if geom is None or geom.is_empty:
            continue
        properties = {name: values[i] for name, values in props.items()}
        properties.update({name: values[i] for name, values in raw.items()})
        features.append({"type": "Feature", "geometry": geom.__geo_interface__, "properties": properties})
    return {"type": "FeatureCollection", "features": features}


#: a fixed label at each feature's centre, shown while the feature is on the map.  A marker with a
#: zero-size div icon (centred by CSS) never reads the layout, unlike a permanent tooltip.
_LABEL_JS = """function (feature, layer) {
  var text = feature.properties[LABEL];
  if (!text) { return; }
  var cls = "cm-dist-label" + (feature.properties._violation === false ? " cm-dist-near" : "");
  var icon = L.divIcon({className: "cm-dist-icon", html: '<span class="' + cls + '">' + text + "</span>",
                        iconSize: [0, 0]});
  var marker = null;
  layer.on("add", function () {
    marker = L.marker(layer.getCenter(), {icon: icon, interactive: false, keyboard: false}).addTo(layer._map);
  });
  layer.on("remove", function () { if (marker) { marker.remove(); marker = null; } });
}"""


def geojson_layer(
    frame: gpd.GeoDataFrame,
    *,
    name: str,
    columns: Mapping[str, Sequence[Any]],
    popup: Mapping[str, str] | None = None,
    tooltip: Mapping[str, str] | None = None,
    style: Callable[[dict], dict] | None = None,
    marker: Any = None,
    show: bool = True,
    tooltip_options: Mapping[str, Any] | None = None,
    label: str | None = None,
) -> folium.GeoJson:
    """One ``folium.GeoJson`` for a whole layer.

    Parameters
    ----------
    frame
        The features (display datum).
    name
        Shown in the layer control.
    columns
        Properties to embed (escaped); names starting with ``_`` are embedded raw (numbers
        and flags for styling, never user text).
    popup, tooltip
        Property → label shown in the popup / tooltip (labels are the app's own strings).
    style
        ``feature → Leaflet path options``; evaluated here, per feature.
    marker
        For point layers, e.g. ``folium.CircleMarker(radius=5)``.
    show
        Whether the layer starts visible.
    label
        A property (escaped text) shown permanently at each feature's centre (e.g. the
        distance), CSS class ``cm-dist-label`` (plus ``cm-dist-near`` when the raw property
        ``_violation`` is false).
    """
    data = feature_collection(frame, columns)
    kwargs: dict[str, Any] = {"name": name, "show": show, "control": True}
    if style is not None:
        kwargs["style_function"] = style
    if marker is not None:
        kwargs["marker"] = marker
    if popup:
        kwargs["popup"] = folium.GeoJsonPopup(
            fields=list(popup), aliases=[str(v) for v in popup.values()], localize=False, max_width=360
        )
    if tooltip:
        labels = any(tooltip.values())
        kwargs["tooltip"] = folium.GeoJsonTooltip(
            fields=list(tooltip),
            aliases=[str(v) for v in tooltip.values()],
            labels=labels,
            localize=False,
            **(tooltip_options or {}),
        )
    if label:
        kwargs["on_each_feature"] = JsCode(_LABEL_JS.replace("LABEL", json.dumps(label)))
    return folium.GeoJson(data, **kwargs)
