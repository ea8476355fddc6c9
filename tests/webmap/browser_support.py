"""Shared by the real-browser tests: Debian's Chromium via Playwright, the app under waitress.

``serve(app)`` runs the app on a free loopback port; ``open_page()`` yields a page that records
console errors, requests to any host but 127.0.0.1, and dialogs (``page.problems``).  Never
downloads a browser: the tests are skipped, with the reason, when /usr/bin/chromium is missing.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.demo_support import copy_demo

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
#: put ``pytestmark = BROWSER_MARKS`` in a browser test module
BROWSER_MARKS = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)",
    ),
]


@contextmanager
def serve(app) -> Iterator[str]:
    """Serve ``app`` with waitress on a free loopback port; yields the base URL."""
    import waitress

    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.task_dispatcher.shutdown()
        server.close()
        thread.join(timeout=5)


@contextmanager
def serve_copy(workspace, folder: Path) -> Iterator[str]:
    """Serve the app on a copy of ``workspace`` (the demo district, say) made in ``folder``; yields the URL."""
    from webmap import create_app

    path = copy_demo(workspace, folder)
    app = create_app({"WORKSPACE": str(path), "SECRET_KEY": "browser-test", "TILE_HOSTS": []})
    with serve(app) as base:
        yield base


def screenshot_folder(tmp_path: Path) -> Path:
    """Where a test's screenshots go: ``$SCREENSHOT_DIR`` when set, else the test's temp folder."""
    folder = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def open_page(*, width: int = 1366, height: int = 800):
    """A fresh headless Chromium page with ``page.problems`` = console / outside / dialogs lists."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright Python package")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.problems = {"console": [], "outside": [], "dialogs": []}
            page.on("console", lambda m: m.type == "error" and page.problems["console"].append(m.text))
            page.on("pageerror", lambda e: page.problems["console"].append(str(e)))
            page.on(
                "request",
                lambda r: (
                    urlsplit(r.url).hostname != "127.0.0.1"
                    and not r.url.startswith("data:")
                    and page.problems["outside"].append(r.url)
                ),
            )
            page.on("dialog", lambda d: (page.problems["dialogs"].append(d.message), d.dismiss()))
            yield page
        finally:
            browser.close()
