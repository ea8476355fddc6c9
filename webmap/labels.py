"""Display labels shared by every page: layer kinds, school levels, licence statuses, methods, rules, verdicts.

Locale-aware (Chinese by default, English per user); values not known here show as stored.
"""

from __future__ import annotations

import pandas as pd
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from geo.rules import Profile, Rule
from layers.schema import SCHEMAS, SCHOOL_LEVELS
from webmap.i18n import format_number, is_chinese

LEVEL_EN = {
    "primary": "Primary",
    "junior": "Junior secondary",
    "senior": "Senior secondary",
    "nine_year": "Nine-year",
    "complete": "Complete secondary",
    "vocational": "Vocational secondary",
    "special": "Special education",
    "kindergarten": "Kindergarten",
}

_STATUS_LABELS = {
    "licensed": _l("Licensed"),
    "suspended": _l("Suspended"),
    "revoked": _l("Revoked"),
    "unlicensed": _l("Unlicensed"),
}
_METHOD_LABELS = {
    "boundary": _l("straight line from the campus boundary"),
    "gate-walk": _l("walking route from the school gate"),
    "door-walk": _l("walking route, gate to door"),
    "inside": _l("located inside"),
}
_FORM_LABELS = {
    "building": _l("residential building"),
    "compound": _l("residential compound"),
    "mixed_use": _l("mixed commercial-residential building"),
}
#: POI categories that rules regulate (``pois:tobacco``); others show as written
_POI_LABELS = {
    "tobacco": _l("Tobacco outlets"),
    "lottery": _l("Lottery outlets"),
    "alcohol": _l("Alcohol outlets"),
}
_VERDICT_LABELS = {
    "ok": _l("Compliant"),
    "violation": _l("Not compliant"),
    "recheck": _l("Field recheck needed"),
}


# ------------------------------------------------------------------ labels
def status_label(status: object) -> str:
    """A venue's licence status in the user's language (``—`` when missing)."""
    text = "" if status is None or status is pd.NA else str(status)
    return str(_STATUS_LABELS[text]) if text in _STATUS_LABELS else (text or "—")


def method_label(method: object) -> str:
    """How a distance was measured, in words."""
    return str(_METHOD_LABELS.get(str(method), method))


def verdict_label(verdict: str) -> str:
    """合格 / 不合格 / 需复核 (or the English)."""
    return str(_VERDICT_LABELS.get(verdict, verdict))


def level_label(level: object) -> str:
    """A school level (``primary`` → 小学) or residential form (``mixed_use`` → 商住两用)."""
    text = "" if level is None or level is pd.NA else str(level)
    if text in SCHOOL_LEVELS:
        return SCHOOL_LEVELS[text][0] if is_chinese() else LEVEL_EN[text]
    if text in _FORM_LABELS:
        return str(_FORM_LABELS[text])
    return text.replace("_", " ")


def kind_label(kind: str) -> str:
    """A layer kind's name (``net_cafes`` → 网吧); ``pois:tobacco`` → the POI category."""
    if kind.startswith("pois:"):
        return str(_POI_LABELS.get(kind[5:].lower(), kind[5:]))
    schema = SCHEMAS.get(kind)
    if schema is None:
        return kind
    return schema.label_zh if is_chinese() else schema.label_en


def _join(parts: list[str]) -> str:
    return ("、" if is_chinese() else ", ").join(parts)


def rule_label(rule: Rule) -> str:
    """A short title for a rule, e.g. ``网吧：距中小学 200 米``."""
    kinds = _join([kind_label(k) for k in rule.regulated])
    limit = _("%(value)s m", value=format_number(rule.limit_m))
    if rule.type == "distance":
        levels = list(rule.levels)
        sites = _join([level_label(v) for v in levels]) if 0 < len(levels) <= 2 else _("schools")
        return _("%(kinds)s: %(limit)s from %(sites)s", kinds=kinds, limit=limit, sites=sites)
    if rule.type == "residential":
        if rule.scope == "building":
            return _("%(kinds)s: not in residential buildings", kinds=kinds)
        return _("%(kinds)s: not in residential buildings or compounds", kinds=kinds)
    if rule.type == "spacing":
        return _("%(kinds)s: %(limit)s apart", kinds=kinds, limit=limit)
    if rule.limit_m > 0:
        return _("%(kinds)s: %(limit)s from protected zones", kinds=kinds, limit=limit)
    return _("%(kinds)s: not in protected zones", kinds=kinds)


def rule_basis(rule: Rule) -> str:
    """The rule's legal basis in the user's language (Chinese when no English is given)."""
    return rule.basis_zh if is_chinese() or not rule.basis_en else rule.basis_en


def profile_title(profile: Profile) -> str:
    return profile.title_zh if is_chinese() or not profile.title_en else profile.title_en
