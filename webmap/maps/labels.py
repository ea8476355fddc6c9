"""Display labels for layer kinds, school levels, venue statuses, rules and methods (locale-aware)."""

from __future__ import annotations

from flask_babel import gettext as _

from geo.rules import Rule
from layers.schema import SCHEMAS
from webmap.i18n import format_distance, is_chinese

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
STATUS_EN = {
    "licensed": "Licensed",
    "suspended": "Suspended",
    "revoked": "Revoked",
    "unlicensed": "Unlicensed",
}


def _choice_zh(kind: str, field: str, value: object) -> str | None:
    for f in SCHEMAS[kind].fields:
        if f.name == field and value in f.choices and f.choices[value]:
            return f.choices[value][0]
    return None


def kind_label(kind: str) -> str:
    """``net_cafes`` → 网吧 / Net cafés; ``pois:tobacco`` → the POI category."""
    base, _sep, category = kind.partition(":")
    schema = SCHEMAS.get(base)
    if schema is None:
        return kind
    label = schema.label_zh if is_chinese() else schema.label_en
    return f"{label}（{category}）" if category else label


def level_label(level: object) -> str:
    """A school level in the user's language (the stored value when unknown)."""
    if level is None or level != level:
        return ""
    if is_chinese():
        return _choice_zh("schools", "level", level) or str(level)
    return LEVEL_EN.get(str(level), str(level))


def status_label(status: object) -> str:
    """A venue's licence status in the user's language."""
    if status is None or status != status:
        return ""
    if is_chinese():
        return _choice_zh("net_cafes", "status", status) or str(status)
    return STATUS_EN.get(str(status), str(status))


def method_label(method: str) -> str:
    """How a distance was measured."""
    labels = {
        "boundary": _("straight line from the campus boundary"),
        "gate-walk": _("walking route from a school gate"),
        "door-walk": _("walking route from gate to door"),
        "inside": _("inside the building or compound"),
    }
    return labels.get(method, method)


def rule_label(rule: Rule) -> str:
    """A short name for a rule, e.g. 网吧距学校200米."""
    venues = (
        "、".join(kind_label(k) for k in rule.regulated)
        if is_chinese()
        else ", ".join(kind_label(k) for k in rule.regulated)
    )
    if rule.type == "distance":
        sites = "、".join(kind_label(k) for k in rule.protected)
        return _(
            "%(venues)s within %(limit)s of %(sites)s",
            venues=venues,
            limit=format_distance(rule.limit_m),
            sites=sites,
        )
    if rule.type == "residential":
        return _("%(venues)s in residential buildings", venues=venues)
    return rule.id
