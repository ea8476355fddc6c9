"""The navigation bar: blueprints register their entries; pages not yet built stay hidden.

A blueprint adds its entry where it is defined (labels: :data:`NAV_LABELS`, or ``lazy_gettext``)::

    from flask_babel import lazy_gettext as _l
    from webmap.nav import NAV_LABELS, NAV_ORDER, nav_entry

    bp = Blueprint("violations", __name__, url_prefix="/violations")
    nav_entry(bp, ".index", NAV_LABELS["violations"], order=NAV_ORDER["violations"])

Entries appear in ``order`` for users with at least ``role``; ``section="admin"`` puts an entry
in the user menu instead of the main bar.  The current page's entry is highlighted when the
request's endpoint belongs to the same blueprint.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, Flask, current_app, request
from flask_babel import lazy_gettext as _l

from webmap.accounts import role_rank

#: slots of the planned areas, so entries keep their place whatever registers first
NAV_ORDER: dict[str, int] = {
    "dashboard": 10,
    "violations": 20,
    "layers": 30,
    "precheck": 40,
    "data": 50,
    "enforcement": 60,
    "quota": 70,
    "coverage": 80,
}
#: labels of the planned areas (translated in the zh_CN catalogue)
NAV_LABELS: dict[str, object] = {
    "dashboard": _l("Dashboard"),
    "violations": _l("Violations"),
    "layers": _l("Layers"),
    "precheck": _l("Pre-check"),
    "data": _l("Data"),
    "enforcement": _l("Enforcement"),
    "quota": _l("Quota"),
    "coverage": _l("Coverage"),
}
EXTENSION = "civicmap_nav"


@dataclass(frozen=True)
class NavEntry:
    """One link of the navigation; ``label`` is a (lazy) translatable string."""

    endpoint: str
    label: object
    order: int
    role: str = "viewer"
    section: str = "main"

    @property
    def blueprint(self) -> str:
        """The blueprint part of the endpoint (``""`` for app-level views)."""
        return self.endpoint.rpartition(".")[0]


def register_nav(
    app: Flask, endpoint: str, label: object, *, order: int, role: str = "viewer", section: str = "main"
) -> NavEntry:
    """Add a navigation entry to ``app`` (replacing one for the same endpoint).

    Parameters
    ----------
    endpoint
        Full endpoint name, e.g. ``"violations.index"``.
    label
        Shown text; use ``lazy_gettext`` so it follows the user's language.
    order
        Position; see :data:`NAV_ORDER`.
    role
        Least role that sees the entry.
    section
        ``"main"`` (top bar) or ``"admin"`` (user menu).
    """
    role_rank(role)
    entry = NavEntry(endpoint, label, order, role, section)
    entries: list[NavEntry] = app.extensions.setdefault(EXTENSION, [])
    entries[:] = [e for e in entries if e.endpoint != endpoint] + [entry]
    entries.sort(key=lambda e: (e.order, e.endpoint))
    return entry


def nav_entry(
    bp: Blueprint, endpoint: str, label: object, *, order: int, role: str = "viewer", section: str = "main"
) -> None:
    """Register a navigation entry when ``bp`` is registered on an app.

    ``endpoint`` may be relative to the blueprint (``".index"``).
    """
    full = f"{bp.name}{endpoint}" if endpoint.startswith(".") else endpoint
    bp.record_once(
        lambda state: register_nav(state.app, full, label, order=order, role=role, section=section)
    )


def nav_items(section: str = "main") -> list[NavEntry]:
    """Entries of ``section`` the current user may see (for templates)."""
    from webmap.security import current_user

    user = current_user()
    if user is None:
        return []
    entries: list[NavEntry] = current_app.extensions.get(EXTENSION, [])
    return [e for e in entries if e.section == section and user.has_role(e.role)]


def is_active(entry: NavEntry) -> bool:
    """True when the request is ``entry``'s page, or another page of its blueprint when it is the only entry there."""
    endpoint = request.endpoint or ""
    if endpoint == entry.endpoint:
        return True
    entries: list[NavEntry] = current_app.extensions.get(EXTENSION, [])
    if not entry.blueprint or any(e.endpoint == endpoint for e in entries):
        return False
    siblings = [e for e in entries if e.blueprint == entry.blueprint]
    return len(siblings) == 1 and endpoint.rpartition(".")[0] == entry.blueprint


def init_nav(app: Flask) -> None:
    """Expose ``nav_items`` and ``nav_is_active`` to templates."""
    app.extensions.setdefault(EXTENSION, [])
    app.jinja_env.globals["nav_items"] = nav_items
    app.jinja_env.globals["nav_is_active"] = is_active
