"""Languages: Chinese by default, English per user or ?lang=, catalogues complete, locale formats."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from babel.support import Translations
from flask_babel import force_locale

from webmap import accounts
from webmap.i18n import TRANSLATIONS, compile_catalogs, format_distance, format_number, format_timestamp

WEBMAP = Path(__file__).resolve().parents[2] / "webmap"
LAYERS = WEBMAP.parent / "layers"


def _extracted_ids() -> set[str]:
    method_map = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
    keywords = {"_": None, "gettext": None, "_l": None, "lazy_gettext": None, "ngettext": (1, 2)}
    ids = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(WEBMAP), method_map, keywords=keywords
    ):
        ids.add(message if isinstance(message, str) else message[0])
    return ids | _problem_templates()


def _problem_templates() -> set[str]:
    """The templates of layers.errors.Message: what validation says of a file, shown on the report page."""
    found = extract_from_dir(str(LAYERS), [("**.py", "python")], keywords={"Message": None})
    return {message for _file, _line, message, _comments, _context in found}


def test_problem_templates_are_found_and_keep_their_placeholders_in_chinese():
    with (TRANSLATIONS / "zh" / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        catalog = read_po(fh, locale="zh")
    templates = _problem_templates()
    assert len(templates) > 40 and "not a number" in templates and "must be ≥ {low}" in templates
    for template in templates:
        chinese = catalog.get(template).string
        assert sorted(re.findall(r"\{[^}]*\}", chinese)) == sorted(re.findall(r"\{[^}]*\}", template)), (
            template
        )


def test_every_ui_string_has_a_chinese_translation():
    with (TRANSLATIONS / "zh" / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        catalog = read_po(fh, locale="zh")
    translated = {m.id for m in catalog if m.id and m.string and "fuzzy" not in m.flags}
    ids = _extracted_ids()
    assert len(ids) > 60
    assert sorted(ids - translated) == []


def test_no_string_is_translated_twice():
    """Several areas append to the catalogue at once: a repeated msgid would silently win or lose."""
    import re
    from collections import Counter

    text = (TRANSLATIONS / "zh" / "LC_MESSAGES" / "messages.po").read_text(encoding="utf-8")
    keys = re.findall(r'^(?:msgctxt "(.*)"\n)?msgid "(.+)"$', text, re.M)
    repeated = [key for key, count in Counter(keys).items() if count > 1]
    assert repeated == []


def test_catalogues_compile_when_missing_or_stale(tmp_path):
    copy = tmp_path / "translations"
    shutil.copytree(TRANSLATIONS, copy, ignore=shutil.ignore_patterns("*.mo"))
    assert compile_catalogs(copy) == copy
    mo = copy / "zh" / "LC_MESSAGES" / "messages.mo"
    assert Translations.load(str(copy), ["zh_Hans_CN"]).gettext("Sign out") == "退出登录"
    assert Translations.load(str(copy), ["zh_CN"]).gettext("Sign out") == "退出登录"
    po = mo.with_suffix(".po")
    po.write_text(po.read_text(encoding="utf-8").replace('"退出登录"', '"注销"'), encoding="utf-8")
    stamp = mo.stat().st_mtime
    os.utime(mo, (stamp - 10, stamp - 10))
    compile_catalogs(copy)
    assert Translations.load(str(copy), ["zh_CN"]).gettext("Sign out") == "注销"


def test_login_page_chinese_by_default_english_on_request(client):
    zh = client.get("/login").get_data(as_text=True)
    assert '<html lang="zh-CN">' in zh
    assert "文化市场监管地图" in zh and ">登录<" in zh and "用户名" in zh
    en = client.get("/login?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in en
    assert "Culture Market Supervision Map" in en and ">Sign in<" in en and "文化市场监管地图" not in en
    # the choice sticks for the session; an unknown language is ignored
    assert ">Sign in<" in client.get("/login").get_data(as_text=True)
    assert ">Sign in<" in client.get("/login?lang=fr").get_data(as_text=True)
    assert ">登录<" in client.get("/login?lang=zh-CN").get_data(as_text=True)


def test_pages_follow_the_user_setting(client, make_user, login, workspace):
    make_user("admin", "admin", locale="en")
    login("admin")
    page = client.get("/admin/users").get_data(as_text=True)
    assert ">Users<" in page and "Sign out" in page and "Administrator (+ manage users)" in page
    client.post("/account/language", data={"locale": "zh_CN", "next": "/admin/users"})
    assert accounts.get_user(workspace, "admin").locale == "zh_CN"
    page = client.get("/admin/users").get_data(as_text=True)
    assert ">用户管理<" in page and "退出登录" in page and "管理员（+ 管理用户）" in page
    assert accounts.list_audit(workspace)[0].action == "settings.language"


def test_error_pages_translated(client, make_user, login):
    make_user("v", locale="en")
    login("v")
    assert "Your role does not allow this page." in client.get("/admin/users").get_data(as_text=True)
    assert "No such page." in client.get("/no/such/page").get_data(as_text=True)


@pytest.mark.parametrize(
    ("locale", "distance_m", "expected"),
    [
        ("zh_CN", 1234.56, "1,234.6 米"),
        ("en", 1234.56, "1,234.6 m"),
        ("zh_CN", 199.96, "200.0 米"),
        ("en", 12345.0, "12.35 km"),
        ("zh_CN", 12345.0, "12.35 千米"),
        ("en", None, "—"),
    ],
)
def test_distance_format(app, locale, distance_m, expected):
    with app.test_request_context(), force_locale(locale):
        assert format_distance(distance_m) == expected


def test_number_and_time_formats(app):
    with app.test_request_context():
        with force_locale("zh_CN"):
            assert format_number(1234567) == "1,234,567"
            assert format_number(0.5, 2) == "0.50"
            # stored in UTC, shown in Beijing time (UTC+8)
            assert format_timestamp("2026-01-02T03:04:05+00:00") == "2026年1月2日 11:04:05"
        with force_locale("en"):
            assert format_timestamp("2026-01-02T03:04:05+00:00").startswith("Jan 2, 2026, 11:04:05")
            assert format_timestamp("not a time") == "not a time"
            assert format_timestamp(None) == "—"
