"""The pre-check counter in a real browser: Debian's Chromium driven by Playwright, app under waitress.

Clicks the map where a designed café stands 35 m from a school and expects 不合格 with that
school; a click far from every school gives 合格.  No console error, no request to any host but
127.0.0.1.  Screenshots go to ``$SCREENSHOT_DIR`` when set, else the test's temp folder.
"""

from __future__ import annotations

import pytest

from tests.webmap.browser_support import BROWSER_MARKS, open_page, screenshot_folder, serve_copy

pytestmark = BROWSER_MARKS

CENTRE_CLICK = """(target) => {
  const data = JSON.parse(document.getElementById("cm-pc-data").textContent);
  const map = window[data.map];
  map.setView(target, 17, {animate: false});
  const box = map.getContainer().getBoundingClientRect();
  const p = map.latLngToContainerPoint(target);
  return [box.left + p.x, box.top + p.y];
}"""


@pytest.fixture
def live_server(demo_workspace, tmp_path):
    with serve_copy(demo_workspace, tmp_path) as base:
        yield base


@pytest.fixture
def browser_page():
    with open_page(height=800) as page:
        yield page


def _click_at(page, lon: float, lat: float) -> None:
    x, y = page.evaluate(CENTRE_CLICK, [lat, lon])
    with page.expect_response(lambda r: r.url.endswith("/precheck/check")) as answer:
        page.mouse.click(x, y)
    assert answer.value.status == 200
    page.wait_for_selector("#cm-pc-verdict")


def test_clicking_the_map_gives_the_verdict(live_server, browser_page, demo_layers, demo_design, tmp_path):
    page = browser_page
    shots = screenshot_folder(tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    case = demo_design["near_school"][0]
    cafe = demo_layers["net_cafes"].set_index("id").loc[case["venue_id"]].geometry
    school = demo_layers["schools"].set_index("id").loc[case["school_id"], "name"]

    page.goto(f"{live_server}/login")
    page.fill("#name", "viewer")
    page.fill("#password", "civicmap-demo")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server}/")
    page.goto(f"{live_server}/precheck/")
    page.wait_for_load_state("networkidle")

    _click_at(page, cafe.x, cafe.y)
    assert page.locator("#cm-pc-verdict").inner_text() == "不合格"
    conflict = page.locator(".cm-pc-rule[data-rule=net_cafe_school] .cm-pc-conflict").first
    assert school in conflict.inner_text()
    shown_m = float(conflict.locator(".cm-pc-distance").inner_text().removesuffix("米").strip())
    assert shown_m == pytest.approx(case["distance_m"], abs=1.5)  # a click lands within a pixel (~1 m)
    assert page.locator(".cm-pc-tip").count() >= 1  # the evidence line, labelled
    assert float(page.input_value("#pc-x")) == pytest.approx(cafe.x, abs=2e-5)
    page.screenshot(path=str(shots / "precheck-violation-zh.png"))

    _click_at(page, 114.3300, 30.5300)  # a rural field far from every school
    assert page.locator("#cm-pc-verdict").inner_text() == "合格"
    page.screenshot(path=str(shots / "precheck-ok-zh.png"))
    assert page.problems == {"console": [], "outside": [], "dialogs": []}
