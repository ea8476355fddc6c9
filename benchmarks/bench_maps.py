"""Map pages in headless Chromium: the violation map and a 50,000-venue layers map vs an empty map.

Everything is served by the real app under waitress on a loopback port, signed in through
the login form.  Pages, all measured in the same run, each in a fresh browser context (cold
cache), alternating so that machine noise spreads over all of them:

``empty``       an empty Leaflet map in the app's map page (base map "none"): the baseline
``violations``  ``/violations/`` of the demo district                 (target ≤ 1.5 × empty)
``layers-50k``  ``/layers/`` of the demo district with 50,000 net cafés
                (targets: ≤ 5 MB, ≤ 3 × empty, server build < 1 s)
and, for the choice of technique, the same 50,000 venues as
``geojson-50k`` one ``folium.GeoJson`` (name tooltip) on a ``prefer_canvas`` map, and
``cluster-50k`` ``FastMarkerCluster``.

"Interactive" = the load event + two animation frames, from navigation start
(``performance.now()``, recorded by an init script).  Size = the HTML of the page; "total"
adds every asset the cold page fetched.  Server build = the request's time in the Flask test
client (cold: first request, which also reads the layers; warm: median of 3).

Run::

    .venv/bin/python benchmarks/bench_maps.py [--reps 5] [--venues 50000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PASSWORD = "bench-password-1"
INTERACTIVE_JS = """
window.addEventListener('load', () => requestAnimationFrame(() => requestAnimationFrame(() => {
  window.__cmInteractive = performance.now();
})));
"""


def make_workspaces(folder: Path, venues: int) -> tuple[Path, Path]:
    """The demo district, and a copy whose net cafés are ``venues`` random points in it."""
    import shutil

    from cli import load_demo
    from layers.store import Workspace
    from webmap.accounts import add_user

    demo = folder / "demo"
    load_demo(demo, user="bench")
    add_user(Workspace.open(demo), "bench", "viewer", PASSWORD)
    big = folder / "big"
    shutil.copytree(demo, big)
    ws = Workspace.open(big)
    cafes = ws.read("net_cafes")
    minx, miny, maxx, maxy = ws.read("subdistricts").total_bounds
    rng = np.random.default_rng(42)
    x = rng.uniform(minx, maxx, venues)
    y = rng.uniform(miny, maxy, venues)
    frame = gpd.GeoDataFrame(
        {
            "id": [f"nc-{i:06d}" for i in range(venues)],
            "name": [f"网吧{i:05d}" for i in range(venues)],
            "licence_no": [f"42990110{i:06d}" for i in range(venues)],
            "status": "licensed",
            "address": [f"示范区测试路{i % 500}号" for i in range(venues)],
            "subdistrict": cafes["subdistrict"].iloc[0],
            "terminals": 100,
            "chain": None,
            "source_row": np.arange(1, venues + 1),
        },
        geometry=shapely.points(x, y),
        crs=4326,
    )
    ws.write(
        "net_cafes",
        frame[[c for c in cafes.columns if c in frame.columns]],
        user="bench",
        source_name="bench",
        source_sha256="0" * 64,
        crs="wgs84",
        rows_read=venues,
        rows_rejected=0,
    )
    return demo, big


def bench_blueprint(venues_of):
    """Extra pages: the empty map, and the GeoJson / FastMarkerCluster variants of the big layer."""
    import folium
    from flask import Blueprint, current_app, render_template
    from folium import plugins

    from webmap.assets import map_parts
    from webmap.basemaps import active_basemap, make_map

    bp = Blueprint("bench", __name__, url_prefix="/bench")
    bounds = (114.2574723, 30.5222148, 114.3424243, 30.5776917)

    def page(m):
        return render_template("map_page.html", map=map_parts(m))

    @bp.get("/empty")
    def empty():
        return page(make_map(bounds=bounds, basemap=active_basemap(current_app.config)))

    @bp.get("/geojson")
    def geojson():
        venues = venues_of()
        m = make_map(bounds=bounds, basemap=active_basemap(current_app.config))
        folium.GeoJson(
            venues[["name", "geometry"]],
            name="net_cafes",
            marker=folium.CircleMarker(radius=3, fill=True),
            tooltip=folium.GeoJsonTooltip(["name"], labels=False),
        ).add_to(m)
        return page(m)

    @bp.get("/cluster")
    def cluster():
        venues = venues_of()
        m = make_map(bounds=bounds, basemap=active_basemap(current_app.config))
        plugins.FastMarkerCluster(np.column_stack([venues.geometry.y, venues.geometry.x]).tolist()).add_to(m)
        return page(m)

    return bp


class Server:
    """The app on a free loopback port (waitress)."""

    def __init__(self, workspace: Path, extra=None):
        import waitress

        from webmap import create_app

        self.app = create_app(
            {"WORKSPACE": str(workspace), "SECRET_KEY": "bench", "RATELIMIT_ENABLED": False}
        )
        if extra is not None:
            self.app.register_blueprint(extra)
        self.server = waitress.create_server(self.app, host="127.0.0.1", port=0, threads=4)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.server.effective_port}"

    def close(self) -> None:
        self.server.task_dispatcher.shutdown()
        self.server.close()


def server_build_s(server: Server, path: str) -> tuple[float, float, int]:
    """(cold, warm median of 3) request seconds and the HTML size, via the Flask test client."""
    import re

    client = server.app.test_client()
    form = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', form).group(1)
    client.post("/login", data={"name": "bench", "password": PASSWORD, "csrf_token": token})
    times = []
    size = 0
    for _ in range(4):
        started = time.perf_counter()
        response = client.get(path)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, (path, response.status_code)
        size = len(response.data)
    return times[0], statistics.median(times[1:]), size


def render(browser, storage, url: str) -> dict:
    """One cold render: interactive time (s), total bytes fetched, console errors."""
    context = browser.new_context(viewport={"width": 1366, "height": 800}, storage_state=storage)
    context.add_init_script(INTERACTIVE_JS)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url, wait_until="load", timeout=120_000)
    interactive = 0.0
    for _ in range(600):
        interactive = page.evaluate("() => window.__cmInteractive || 0")
        if interactive:
            break
        time.sleep(0.02)
    total = page.evaluate(
        "() => performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))"
        ".reduce((s, e) => s + (e.transferSize || e.encodedBodySize || 0), 0)"
    )
    context.close()
    return {"s": interactive / 1000, "total": total, "errors": errors}


def login_state(browser, base: str) -> dict:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{base}/login")
    page.fill("#name", "bench")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("load")
    state = context.storage_state()
    context.close()
    return state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--venues", type=int, default=50_000)
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.WARNING)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="bench-maps-") as tmp:
        t0 = time.perf_counter()
        demo_ws, big_ws = make_workspaces(Path(tmp), args.venues)
        print(f"workspaces ready in {time.perf_counter() - t0:.1f} s ({args.venues:,} venues)")
        from layers.store import Workspace

        big_venues = Workspace.open(big_ws).read("net_cafes")
        demo = Server(demo_ws, bench_blueprint(lambda: big_venues))
        big = Server(big_ws)
        pages = {
            "empty": (demo, "/bench/empty"),
            "violations": (demo, "/violations/"),
            "layers-50k": (big, "/layers/"),
            "geojson-50k": (demo, "/bench/geojson"),
            "cluster-50k": (demo, "/bench/cluster"),
        }
        builds = {name: server_build_s(srv, path) for name, (srv, path) in pages.items()}
        results: dict[str, list[dict]] = {name: [] for name in pages}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            states = {id(srv): login_state(browser, srv.base) for srv in (demo, big)}
            for srv, path in pages.values():  # warm-up round (not counted)
                render(browser, states[id(srv)], srv.base + path)
            for _ in range(args.reps):
                for name, (srv, path) in pages.items():
                    results[name].append(render(browser, states[id(srv)], srv.base + path))
            browser.close()
        demo.close()
        big.close()

    empty_s = statistics.median(r["s"] for r in results["empty"])
    print(
        f"\n{'page':<12} {'interactive s (min–max)':>26} {'× empty':>8} {'HTML MB':>8} {'total MB':>9}"
        f" {'build cold s':>12} {'build warm s':>12}  errors"
    )
    for name, runs in results.items():
        times = [r["s"] for r in runs]
        med = statistics.median(times)
        cold, warm, size = builds[name]
        print(
            f"{name:<12} {med:>10.2f} ({min(times):.2f}–{max(times):.2f}){'':>5} {med / empty_s:>8.2f}"
            f" {size / 1e6:>8.2f} {runs[0]['total'] / 1e6:>9.2f} {cold:>12.2f} {warm:>12.2f}"
            f"  {sum(len(r['errors']) for r in runs)}"
        )
    v = statistics.median(r["s"] for r in results["violations"]) / empty_s
    lay_ratio = statistics.median(r["s"] for r in results["layers-50k"]) / empty_s
    lay_mb = builds["layers-50k"][2] / 1e6
    print(
        f"\ntargets: violations {v:.2f}× empty (≤ 1.5: {'ok' if v <= 1.5 else 'MISSED'}); "
        f"layers-50k {lay_mb:.2f} MB (≤ 5: {'ok' if lay_mb <= 5 else 'MISSED'}), "
        f"{lay_ratio:.2f}× empty (≤ 3: {'ok' if lay_ratio <= 3 else 'MISSED'}), "
        f"server build warm {builds['layers-50k'][1]:.2f} s (< 1: {'ok' if builds['layers-50k'][1] < 1 else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
