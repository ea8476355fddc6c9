"""A canvas layer for many points: the data travel as columns, one canvas draws them all.

Folium's per-feature objects cost ~1 ms each to build and hundreds of bytes of HTML; even one
``GeoJson`` of 50,000 points is 6–7 MB.  :class:`PointCloud` sends coordinates rounded to
1e-6° and the names as arrays (≈ 40 bytes a point) and ``L.CivicPoints``
(``static/civicmap-map.js``) draws them on one canvas, re-projecting only on zoom; a click
opens a popup for the nearest point with its name, and fetches its other fields from the
server; everything is set as text (never HTML).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
from folium.map import Layer
from jinja2 import Template
from markupsafe import Markup

from webmap.maps.features import plain_texts


def _script_json(value: Any) -> Markup:
    """Compact JSON safe inside a ``<script>`` (``<``, ``>``, ``&``, ``'`` as ``\\u`` escapes)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("'", "\\u0027")):
        text = text.replace(ch, esc)
    return Markup(text)  # noqa: S704 - JSON with the HTML-significant characters escaped


class PointCloud(Layer):
    """Points drawn on one canvas, toggleable in the layer control.

    Parameters
    ----------
    lon, lat
        Display coordinates (degrees).
    name
        Layer-control label.
    titles
        Popup title of each point (its name), shown as text.
    detail_url
        URL with ``{i}`` for the point's row number; its JSON ``{"rows": [[label, value], …]}``
        fills the popup when clicked (the data travel only for the point asked about).
    color, fill
        Stroke and fill colours (``fill=""`` draws hollow circles).
    radius_px
        Circle radius in screen pixels.
    show
        Whether the layer starts visible.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.civicPoints({{ this.payload }});
        {% endmacro %}
        """
    )

    def __init__(
        self,
        lon: Sequence[float],
        lat: Sequence[float],
        *,
        name: str,
        titles: Sequence[Any],
        detail_url: str = "",
        color: str = "#1d4f91",
        fill: str = "#1d4f91",
        radius_px: float = 4.0,
        show: bool = True,
    ):
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "PointCloud"
        x = np.round(np.asarray(lon, dtype=float), 6).tolist()
        y = np.round(np.asarray(lat, dtype=float), 6).tolist()
        self.count = len(x)
        self.payload = _script_json(
            {
                "x": x,
                "y": y,
                "t": plain_texts(titles),
                "url": detail_url,
                "color": color,
                "fill": fill,
                "radius": radius_px,
            }
        )
