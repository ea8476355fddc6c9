"""The legend: a Leaflet control listing symbols and their meaning (text set as text, never HTML)."""

from __future__ import annotations

from collections.abc import Sequence

from branca.element import MacroElement
from jinja2 import Template


class Legend(MacroElement):
    """A legend control.

    Parameters
    ----------
    title
        Heading.
    items
        ``(label, swatch)`` pairs; ``swatch`` is a dict with ``color``, ``fill`` (colour or
        ``""`` for hollow), ``shape`` (``"line"``, ``"dash"``, ``"dot"``, ``"area"``).
    position
        Leaflet corner.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function () {
            var legend = L.control({position: {{ this.position|tojson }}});
            legend.onAdd = function () {
                var div = L.DomUtil.create("div", "cm-legend");
                var h = L.DomUtil.create("div", "cm-legend-title", div);
                h.textContent = {{ this.title|tojson }};
                {{ this.items|tojson }}.forEach(function (item) {
                    var row = L.DomUtil.create("div", "cm-legend-row", div);
                    var sw = L.DomUtil.create("span", "cm-swatch cm-swatch-" + item[1].shape, row);
                    sw.style.borderColor = item[1].color;
                    sw.style.background = item[1].fill || "transparent";
                    var t = L.DomUtil.create("span", "", row);
                    t.textContent = item[0];
                });
                L.DomEvent.disableClickPropagation(div);
                return div;
            };
            legend.addTo({{ this._parent.get_name() }});
        })();
        {% endmacro %}
        """
    )

    def __init__(self, title: str, items: Sequence[tuple[str, dict]], position: str = "bottomright"):
        super().__init__()
        self._name = "Legend"
        self.title = str(title)
        self.items = [[str(label), dict(swatch)] for label, swatch in items]
        self.position = position
