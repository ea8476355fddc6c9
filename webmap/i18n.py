"""Languages: Simplified Chinese by default, English per user (Flask-Babel).

Source strings are written in English in templates and views (``_("Sign in")``); the
Chinese catalogue translates them; the ``en`` catalogue is empty on purpose (English falls
back to the source strings).  Users choose ``zh_CN`` or ``en``; the Chinese catalogue sits in
``translations/zh/`` because recent Babel parses ``zh_CN`` as ``zh_Hans_CN``, and gettext
finds ``zh`` for both spellings.  Catalogues live in ``webmap/translations/``
as ``.po`` files; :func:`compile_catalogs` turns them into ``.mo`` on app start when a ``.mo``
is missing or older than its ``.po`` (so a fresh clone works with no build step).

Updating after changing strings::

    pybabel extract -F webmap/babel.cfg -k _l -k Message --no-location --sort-output -o webmap/translations/messages.pot .
    pybabel update -i webmap/translations/messages.pot -d webmap/translations
    # translate the new entries in webmap/translations/zh/LC_MESSAGES/messages.po

``tests/webmap/test_i18n.py`` fails when a marked string has no Chinese translation.

The language of a request: the signed-in user's setting; before sign-in, the ``?lang=``
choice remembered in the session; else ``BABEL_DEFAULT_LOCALE`` (``zh_CN``).
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, current_app, g, request, session
from flask_babel import Babel, format_datetime, format_decimal, get_locale
from flask_babel import gettext as _

from webmap.accounts import AccountError, normalize_locale

log = logging.getLogger(__name__)

TRANSLATIONS = Path(__file__).resolve().parent / "translations"
DOMAIN = "messages"


def compile_catalogs(source: Path = TRANSLATIONS) -> Path:
    """Compile every ``<locale>/LC_MESSAGES/messages.po`` under ``source`` whose ``.mo`` is stale.

    The ``.mo`` files are written beside the ``.po`` files; when that folder is read-only
    (an installed package), into a folder under the system temp directory instead.

    Returns
    -------
    Path
        The folder to give Flask-Babel as ``BABEL_TRANSLATION_DIRECTORIES``.
    """
    pos = sorted(source.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))
    stale = [po for po in pos if _stale(po, po.with_suffix(".mo"))]
    if not stale:
        return source
    try:
        for po in stale:
            _compile(po, po.with_suffix(".mo"))
        return source
    except OSError:
        digest = hashlib.sha256(str(source).encode()).hexdigest()[:12]
        target = Path(tempfile.gettempdir()) / f"civicmap-translations-{digest}"
        for po in pos:
            mo = target / po.relative_to(source).with_suffix(".mo")
            mo.parent.mkdir(parents=True, exist_ok=True)
            if _stale(po, mo):
                _compile(po, mo)
        return target


def _stale(po: Path, mo: Path) -> bool:
    return not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime


def _compile(po: Path, mo: Path) -> None:
    locale = po.parent.parent.name
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=locale, domain=DOMAIN)
    tmp = mo.with_suffix(".mo.tmp")
    with tmp.open("wb") as fh:
        write_mo(fh, catalog, use_fuzzy=False)
    tmp.replace(mo)
    log.info("compiled %s (%d messages)", mo, len(catalog))


def select_locale() -> str:
    """The locale of the current request (see module docstring)."""
    user = g.get("user")
    if user is not None:
        return user.locale
    lang = session.get("lang")
    if lang in current_app.config["LANGUAGES"]:
        return lang
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def remember_language_choice() -> None:
    """Store a valid ``?lang=`` of this request in the session (used before sign-in)."""
    raw = request.args.get("lang")
    if not raw:
        return
    try:
        lang = normalize_locale(raw)
    except AccountError:
        return
    if lang in current_app.config["LANGUAGES"]:
        session["lang"] = lang


def is_chinese() -> bool:
    """True when the current locale is Chinese."""
    return get_locale().language == "zh"


def in_language(chinese: object, english: object) -> object:
    """``english`` for an English page when there is one, else ``chinese``: for texts the analysis
    writes in both (finding summaries, score reasons, the quota summary)."""
    if is_chinese() or not english or (isinstance(english, float) and english != english):  # missing, NaN
        return chinese
    return english


def format_number(value: float | int | None, digits: int | None = None) -> str:
    """A number with the locale's grouping and decimal signs; ``—`` for ``None``."""
    if value is None:
        return "—"
    if digits is not None:
        value = round(float(value), digits)
        return format_decimal(value, format=f"#,##0.{'0' * digits}" if digits else "#,##0")
    return format_decimal(value)


def format_distance(distance_m: float | None) -> str:
    """A distance in metres (below 10 km, one decimal) or kilometres, in the locale's words."""
    if distance_m is None:
        return "—"
    if abs(distance_m) >= 10_000:
        return _("%(value)s km", value=format_number(distance_m / 1000, 2))
    return _("%(value)s m", value=format_number(distance_m, 1))


def format_timestamp(value: str | float | datetime | None, fmt: str = "medium") -> str:
    """An ISO-8601 time (as stored; naive means UTC) or a Unix time in the locale's format and time zone.

    Text that is not ISO-8601 comes back unchanged.
    """
    if value is None or value == "":
        return "—"
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    return format_datetime(value, fmt)


def init_i18n(app: Flask) -> None:
    """Compile catalogues if needed, install Flask-Babel and the template filters."""
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(compile_catalogs()))
    Babel(app, locale_selector=select_locale)
    app.jinja_env.filters["number"] = format_number
    app.jinja_env.filters["distance"] = format_distance
    app.jinja_env.filters["timestamp"] = format_timestamp
    app.jinja_env.globals["is_chinese"] = is_chinese
    app.jinja_env.globals["in_language"] = in_language
    app.jinja_env.globals["get_locale"] = get_locale
