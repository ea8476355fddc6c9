"""Offline assets: every JS/CSS file a Folium map needs, served by the app itself.

Folium points its maps and plugins at CDN addresses (``default_js`` / ``default_css``).
:func:`localize` rewrites them, per map, to ``/vendor/<package>/<file>`` served by the ``assets``
blueprint from installed XStatic packages, the folium package, or ``webmap/static/vendor/``
(see the README there).  An address with no local copy raises :class:`UnknownAssetError`, so a
new plugin cannot silently reach the internet.

:func:`map_parts` renders a map into three pieces for ``templates/map_page.html`` — header
(links and styles, for ``<head>``), body HTML, and the script, which the template wraps in
``<script nonce=…>``.  Pages keep a strict Content-Security-Policy: scripts run only from
'self' or with the request's nonce.  Folium's inline header scripts get the nonce here; user
strings never reach the header, and a ``</script`` inside the map script is neutralised.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from flask import Blueprint, Response, abort, send_from_directory, url_for
from markupsafe import Markup

STATIC_VENDOR = Path(__file__).resolve().parent / "static" / "vendor"
#: seconds browsers may cache a vendor file (paths carry versions)
CACHE_MAX_AGE_S = 7 * 24 * 3600


def _xstatic(module: str) -> Callable[[], Path]:
    def base_dir() -> Path:
        import importlib

        return Path(importlib.import_module(f"xstatic.pkg.{module}").BASE_DIR)

    return base_dir


def _folium_templates() -> Path:
    import folium

    return Path(folium.__file__).resolve().parent / "templates"


#: package name in /vendor/<package>/… → folder that holds its files
PACKAGES: dict[str, Callable[[], Path]] = {
    "leaflet": _xstatic("leaflet"),
    "leaflet.markercluster": _xstatic("leaflet_markercluster"),
    "jquery": _xstatic("jquery"),
    "font-awesome": _xstatic("font_awesome"),
    "folium": _folium_templates,
    "bootstrap": lambda: STATIC_VENDOR / "bootstrap-5.2.2",
    "awesome-markers": lambda: STATIC_VENDOR / "leaflet-awesome-markers-2.0.2",
    "glyphicons": lambda: STATIC_VENDOR / "glyphicons-3.3.7",
    "leaflet-search": lambda: STATIC_VENDOR / "leaflet-search-2.9.7",
}

_JSD = "https://cdn.jsdelivr.net"
_CDNJS = "https://cdnjs.cloudflare.com/ajax/libs"
_MC = f"{_CDNJS}/leaflet.markercluster/1.1.0"
#: every CDN address folium (0.17–0.20) uses that has a local copy → (package, file)
CDN_TO_LOCAL: dict[str, tuple[str, str]] = {
    f"{_JSD}/npm/leaflet@1.9.3/dist/leaflet.js": ("leaflet", "leaflet.js"),
    f"{_JSD}/npm/leaflet@1.9.3/dist/leaflet.css": ("leaflet", "leaflet.css"),
    "https://code.jquery.com/jquery-3.7.1.min.js": ("jquery", "jquery.min.js"),
    f"{_CDNJS}/jquery/3.7.1/jquery.min.js": ("jquery", "jquery.min.js"),
    f"{_JSD}/npm/bootstrap@5.2.2/dist/js/bootstrap.bundle.min.js": (
        "bootstrap",
        "js/bootstrap.bundle.min.js",
    ),
    f"{_JSD}/npm/bootstrap@5.2.2/dist/css/bootstrap.min.css": ("bootstrap", "css/bootstrap.min.css"),
    "https://netdna.bootstrapcdn.com/bootstrap/3.0.0/css/bootstrap-glyphicons.css": (
        "glyphicons",
        "css/glyphicons.min.css",
    ),
    f"{_JSD}/npm/@fortawesome/fontawesome-free@6.2.0/css/all.min.css": ("font-awesome", "css/all.min.css"),
    f"{_CDNJS}/Leaflet.awesome-markers/2.0.2/leaflet.awesome-markers.js": (
        "awesome-markers",
        "js/leaflet.awesome-markers.js",
    ),
    f"{_CDNJS}/Leaflet.awesome-markers/2.0.2/leaflet.awesome-markers.css": (
        "awesome-markers",
        "css/leaflet.awesome-markers.css",
    ),
    f"{_JSD}/gh/python-visualization/folium/folium/templates/leaflet.awesome.rotate.min.css": (
        "civicmap",
        "awesome-rotate.css",
    ),
    f"{_MC}/leaflet.markercluster.js": ("leaflet.markercluster", "leaflet.markercluster.js"),
    f"{_MC}/MarkerCluster.css": ("leaflet.markercluster", "MarkerCluster.css"),
    f"{_MC}/MarkerCluster.Default.css": ("leaflet.markercluster", "MarkerCluster.Default.css"),
    f"{_JSD}/gh/python-visualization/folium@main/folium/templates/leaflet_heat.min.js": (
        "folium",
        "leaflet_heat.min.js",
    ),
    f"{_JSD}/npm/leaflet-search@2.9.7/dist/leaflet-search.min.js": (
        "leaflet-search",
        "dist/leaflet-search.min.js",
    ),
    f"{_JSD}/npm/leaflet-search@2.9.7/dist/leaflet-search.min.css": (
        "leaflet-search",
        "dist/leaflet-search.min.css",
    ),
}

#: links that templates/base.html loads on every page; map_parts leaves them out of the map header
BASE_PAGE_ASSETS: tuple[tuple[str, str], ...] = (
    ("bootstrap", "css/bootstrap.min.css"),
    ("bootstrap", "js/bootstrap.bundle.min.js"),
)

bp = Blueprint("assets", __name__, url_prefix="/vendor")
bp.public = True  # served before sign-in (the login page uses them); see webmap.security


class UnknownAssetError(LookupError):
    """A map needs a remote file civicmap has no local copy of."""


@bp.get("/civicmap/awesome-rotate.css")
def rotate_css() -> Response:
    """The ``fa-rotate-N`` classes (N = 0…359) that ``folium.Icon(angle=N)`` puts on icons."""
    body = "".join(f".fa-rotate-{n}{{transform:rotate({n}deg)}}\n" for n in range(360))
    response = Response(body, mimetype="text/css")
    response.cache_control.max_age = CACHE_MAX_AGE_S
    response.cache_control.public = True
    return response


@bp.get("/<package>/<path:filename>")
def file(package: str, filename: str) -> Response:
    """One file of a vendored package (404 for unknown packages and files)."""
    folder = PACKAGES.get(package)
    if folder is None:
        abort(404)
    return send_from_directory(folder(), filename, max_age=CACHE_MAX_AGE_S)


def asset_url(package: str, filename: str) -> str:
    """The app's URL of one vendored file (needs an app or request context)."""
    if package == "civicmap":
        return url_for("assets.rotate_css")
    return url_for("assets.file", package=package, filename=filename)


def local_url(url: str) -> str:
    """The local URL replacing the CDN address ``url``; local URLs come back unchanged.

    Raises
    ------
    UnknownAssetError
        When ``url`` is remote and has no local copy.
    """
    if not re.match(r"(?i)^(https?:)?//", url):
        return url
    try:
        package, filename = CDN_TO_LOCAL[url]
    except KeyError:
        raise UnknownAssetError(
            f"{url!r} has no local copy: vendor it and add it to webmap.assets.CDN_TO_LOCAL "
            f"(see webmap/static/vendor/README.md)"
        ) from None
    return asset_url(package, filename)


def _walk(element) -> Iterator:
    yield element
    for child in list(getattr(element, "_children", {}).values()):
        yield from _walk(child)


def localize(m):
    """Make a Folium map and everything on it reference only local asset URLs.

    Call after adding every layer and plugin and before rendering (``map_parts`` does).
    Rewrites each element's ``default_js`` / ``default_css`` (as instance attributes, so
    folium's class-level lists stay untouched) and any link already in the figure header.

    Parameters
    ----------
    m
        A ``folium.Map`` (or any branca element inside a figure).

    Returns
    -------
    The same map, for chaining.

    Raises
    ------
    UnknownAssetError
        A plugin needs a remote file civicmap does not vendor.
    """
    from branca.element import CssLink, JavascriptLink

    for element in _walk(m.get_root()):
        for attr in ("default_js", "default_css"):
            links = getattr(element, attr, None)
            if links:
                setattr(element, attr, [(name, local_url(url)) for name, url in links])
        if isinstance(element, JavascriptLink | CssLink):
            element.url = local_url(element.url)
    return m


@dataclass(frozen=True)
class MapParts:
    """A rendered map: ``header`` for ``<head>``, ``html`` for the body, ``script`` to run."""

    header: Markup
    html: Markup
    script: Markup


_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*\bnonce=)([^>]*)>", re.IGNORECASE)


def _guard_script(code: str) -> str:
    """Neutralise sequences that would end or confuse a ``<script>`` element.

    ``<\\/script`` and ``<\\!--`` mean the same as ``</script`` and ``<!--`` inside JS strings,
    template literals and regular expressions, the only places they can occur in valid code.
    """
    code = re.sub(r"(?i)</(script)", r"<\\/\1", code)
    return code.replace("<!--", "<\\!--")


def map_parts(
    m, *, nonce: str | None = None, skip: tuple[tuple[str, str], ...] = BASE_PAGE_ASSETS
) -> MapParts:
    """Render a Folium map for embedding in a civicmap page (``templates/map_page.html``).

    Parameters
    ----------
    m
        The ``folium.Map``.
    nonce
        The CSP nonce for inline header scripts; default: this request's nonce.
    skip
        ``(package, file)`` pairs the page already loads; their links are left out.

    Returns
    -------
    MapParts
    """
    if nonce is None:
        from webmap.security import csp_nonce

        nonce = csp_nonce()
    localize(m)
    figure = m.get_root()
    figure.render()
    skipped = {asset_url(p, f) for p, f in skip}
    for name, child in list(figure.header._children.items()):
        if getattr(child, "url", None) in skipped:
            del figure.header._children[name]
    header = _INLINE_SCRIPT.sub(lambda mt: f'<script nonce="{nonce}"{mt.group(1)}>', figure.header.render())
    return MapParts(
        header=Markup(header),  # noqa: S704 - folium's own header, no user strings
        html=Markup(figure.html.render()),  # noqa: S704 - folium-rendered, strings escaped by folium
        script=Markup(_guard_script(figure.script.render())),  # noqa: S704 - runs inside <script nonce>
    )


def init_assets(app) -> None:
    """Register the ``/vendor`` blueprint and check the vendored folders exist."""
    app.register_blueprint(bp)
    missing = [name for name, folder in PACKAGES.items() if not _exists(folder)]
    if missing:
        app.logger.warning("vendored asset packages missing: %s", ", ".join(missing))


def _exists(folder: Callable[[], Path]) -> bool:
    try:
        return folder().is_dir()
    except ImportError:
        return False


__all__ = [
    "CDN_TO_LOCAL",
    "PACKAGES",
    "MapParts",
    "UnknownAssetError",
    "asset_url",
    "init_assets",
    "local_url",
    "localize",
    "map_parts",
]
