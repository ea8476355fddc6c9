"""The coverage page in a real browser: units drawn in the coverage colours, the siting form's sites.

Counts the circle markers Leaflet holds per fill colour and compares them with the page's own
table (uncovered count) and with the number of sites asked for.  No console error, no request
to any host but 127.0.0.1.
"""

from __future__ import annotations

import re

import pytest

from tests.webmap.browser_support import BROWSER_MARKS, open_page, serve_copy
from webmap.views.coverage import COVERED, NEW, SITE, UNCOVERED

pytestmark = BROWSER_MARKS

COUNT_MARKERS = """() => {
  const map = window[document.querySelector(".folium-map").id];
  const counts = {};
  map.eachLayer((layer) => {
    if (layer instanceof L.CircleMarker && !(layer instanceof L.Circle)) {
      const c = layer.options.fillColor; counts[c] = (counts[c] || 0) + 1;
    }
  });
  return counts;
}"""


@pytest.fixture
def live_server(demo_workspace, tmp_path):
    with serve_copy(demo_workspace, tmp_path) as base:
        yield base


def test_units_coloured_and_sites_drawn(live_server, demo_layers):
    with open_page(height=900) as page:
        page.goto(f"{live_server}/login")
        page.fill("input[name=name]", "analyst")
        page.fill("input[name=password]", "civicmap-demo")
        page.click("button[type=submit]")
        page.goto(f"{live_server}/coverage/?type=service_point&method=straight&cutoff=standard")
        counts = page.evaluate(COUNT_MARKERS)
        summary = page.inner_text("#cm-cov-uncovered summary")
        uncovered = int(re.sub(r"[^0-9]", "", summary.split(":")[-1]))
        assert counts.get(UNCOVERED) == uncovered
        assert counts.get(COVERED, 0) + uncovered == len(demo_layers["residential"])
        page.fill("#cm-cov-site input[name=p]", "3")
        page.click("#cm-cov-site button[type=submit]")
        page.wait_for_selector("#cm-cov-siting")
        after = page.evaluate(COUNT_MARKERS)
        assert after.get(SITE) == 3
        assert after.get(NEW, 0) > 0 and after.get(UNCOVERED) == uncovered - after[NEW]
        assert page.problems == {"console": [], "outside": [], "dialogs": []}
