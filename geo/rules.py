"""Rule profiles: which venues must keep how far from what, measured how — settings, not code.

A profile is a TOML file (``geo/profiles/*.toml`` ship with civicmap; a deployment adds or
overrides profiles in its own folder).  It has a ``[profile]`` table and ``[[rule]]`` entries;
``extends = "other"`` starts from another profile's rules.  Rule types:

``distance``     regulated venues within ``limit_m`` of protected sites (schools of given levels),
                 measured by ``method``: ``boundary`` (straight line from the campus boundary),
                 ``gate-walk`` (walking route from school gates), ``door-walk`` (gates to venue doors).
``residential``  regulated venues inside a residential ``building`` or ``building_or_compound``.
``spacing``      pairs of regulated venues closer than ``limit_m`` to each other.
``zone``         regulated venues inside (``limit_m = 0``) or within ``limit_m`` of restricted zones.

Regulated kinds are venue layers (``net_cafes`` …) or observed POI categories (``pois:tobacco``).
A profile with mistakes is refused with every mistake listed, each naming the file, the rule
and the field.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from layers.errors import RuleError
from layers.schema import SCHEMAS, SCHOOL_LEVELS, VENUE_KINDS

SHIPPED_DIR = Path(__file__).resolve().parent / "profiles"
RULE_TYPES = ("distance", "residential", "spacing", "zone")
METHODS = ("boundary", "gate-walk", "door-walk")
RESIDENTIAL_SCOPES = ("building", "building_or_compound")
PROTECTED_KINDS = ("schools",)
DEFAULT_RECHECK_BAND_M = 20.0
DEFAULT_MAX_SNAP_M = 50.0


@dataclass(frozen=True)
class Rule:
    """One rule of a profile."""

    id: str
    type: str
    regulated: tuple[str, ...]
    limit_m: float = 0.0
    method: str = "boundary"
    protected: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    scope: str = "building_or_compound"
    mixed_use_is_residential: bool = True
    zone_types: tuple[str, ...] = ()
    basis_zh: str = ""
    basis_en: str = ""

    @property
    def walking(self) -> bool:
        return self.method in ("gate-walk", "door-walk")

    def regulates(self, kind: str) -> bool:
        """Whether venues of ``kind`` (``net_cafes``, ``pois:tobacco`` …) fall under this rule."""
        return kind in self.regulated


@dataclass(frozen=True)
class Profile:
    """A named set of rules with the bands used to report them."""

    name: str
    title_zh: str
    title_en: str
    rules: tuple[Rule, ...]
    recheck_band_m: float = DEFAULT_RECHECK_BAND_M
    max_snap_m: float = DEFAULT_MAX_SNAP_M
    source: str = ""

    def rules_of(self, rule_type: str) -> list[Rule]:
        return [r for r in self.rules if r.type == rule_type]

    def rules_for(self, kind: str) -> list[Rule]:
        return [r for r in self.rules if r.regulates(kind)]

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise RuleError(f"profile {self.name!r} has no rule {rule_id!r}; it has: {', '.join(self.rule_ids)}")

    @property
    def rule_ids(self) -> list[str]:
        return [r.id for r in self.rules]


def profile_dirs(extra: str | Path | None = None) -> list[Path]:
    """Folders searched for profiles, most specific first (a deployment's folder, then shipped)."""
    dirs = [Path(extra)] if extra else []
    return [*dirs, SHIPPED_DIR]


def available_profiles(extra: str | Path | None = None) -> list[str]:
    """Names of every profile found, deployment profiles shadowing shipped ones."""
    names: set[str] = set()
    for folder in profile_dirs(extra):
        if folder.is_dir():
            names.update(p.stem for p in folder.glob("*.toml"))
    return sorted(names)


def load_profile(name_or_path: str | Path, *, extra_dir: str | Path | None = None) -> Profile:
    """Load and validate a profile by name (searched in ``extra_dir`` then shipped) or by path.

    Raises
    ------
    RuleError
        Unknown profile (listing the available ones), unreadable TOML, or every mistake in its rules.
    """
    return _load(name_or_path, extra_dir, seen=())


def _find(name_or_path: str | Path, extra_dir: str | Path | None) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.exists():
        if not candidate.is_file():
            raise RuleError(f"profile file {candidate} does not exist")
        return candidate
    for folder in profile_dirs(extra_dir):
        path = folder / f"{name_or_path}.toml"
        if path.is_file():
            return path
    raise RuleError(
        f"unknown profile {str(name_or_path)!r}; available: {', '.join(available_profiles(extra_dir))}"
    )


def _load(name_or_path: str | Path, extra_dir: str | Path | None, seen: tuple[str, ...]) -> Profile:
    path = _find(name_or_path, extra_dir)
    if path.stem in seen:
        raise RuleError(f"{path.name}: extends forms a cycle: {' → '.join((*seen, path.stem))}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise RuleError(f"{path.name}: not valid TOML: {err}") from None
    header = data.get("profile", {})
    base_rules: list[Rule] = []
    base: Profile | None = None
    if "extends" in data:
        base = _load(str(data["extends"]), extra_dir, (*seen, path.stem))
        base_rules = list(base.rules)
    problems: list[str] = []
    rules = _parse_rules(path.name, data.get("rule", []), problems)
    own_ids = {r.id for r in rules}
    merged = [r for r in base_rules if r.id not in own_ids] + rules
    recheck = _number(
        header, "recheck_band_m", base.recheck_band_m if base else DEFAULT_RECHECK_BAND_M, path.name, problems
    )
    snap = _number(header, "max_snap_m", base.max_snap_m if base else DEFAULT_MAX_SNAP_M, path.name, problems)
    if not merged:
        problems.append(f"{path.name}: the profile has no [[rule]] entries")
    if problems:
        raise RuleError(f"profile {path.name} refused:\n" + "\n".join(problems))
    return Profile(
        name=path.stem,
        title_zh=str(header.get("title_zh", path.stem)),
        title_en=str(header.get("title_en", path.stem)),
        rules=tuple(merged),
        recheck_band_m=recheck,
        max_snap_m=snap,
        source=str(path),
    )


def _number(table: dict, key: str, default: float, where: str, problems: list[str]) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        problems.append(f"{where}: [profile] {key} = {value!r}: expected a number of metres ≥ 0")
        return default
    return float(value)


def _parse_rules(where: str, entries: list, problems: list[str]) -> list[Rule]:
    rules: list[Rule] = []
    ids: set[str] = set()
    for position, entry in enumerate(entries, start=1):
        rule_id = str(entry.get("id", f"#{position}"))
        before = len(problems)

        def bad(field_name: str, value: object, expected: str, rule_id: str = rule_id) -> None:
            problems.append(f"{where}: rule {rule_id!r}: {field_name} = {value!r}: expected {expected}")

        if "id" not in entry:
            bad("id", None, "a rule id")
        elif rule_id in ids:
            bad("id", rule_id, "an id not used by another rule of this profile")
        ids.add(rule_id)
        rule_type = entry.get("type")
        if rule_type not in RULE_TYPES:
            bad("type", rule_type, f"one of {', '.join(RULE_TYPES)}")
            continue
        regulated = entry.get("regulated", [])
        if not isinstance(regulated, list) or not regulated:
            bad("regulated", regulated, "a non-empty list of venue kinds")
            regulated = []
        for kind in regulated:
            if kind not in VENUE_KINDS and not (
                isinstance(kind, str) and kind.startswith("pois:") and kind[5:]
            ):
                bad("regulated", kind, f"one of {', '.join(VENUE_KINDS)} or pois:<category>")
        limit = entry.get("limit_m", 0)
        if isinstance(limit, bool) or not isinstance(limit, int | float) or limit < 0:
            bad("limit_m", limit, "a distance in metres ≥ 0")
            limit = 0
        elif rule_type in ("distance", "spacing") and limit <= 0:
            bad("limit_m", limit, "a distance in metres > 0")
        method = entry.get("method", "boundary")
        if method not in METHODS:
            bad("method", method, f"one of {', '.join(METHODS)}")
        protected = entry.get("protected", ["schools"] if rule_type == "distance" else [])
        for kind in protected:
            if kind not in PROTECTED_KINDS:
                bad("protected", kind, f"one of {', '.join(PROTECTED_KINDS)}")
        levels = entry.get("levels", list(SCHOOL_LEVELS) if rule_type == "distance" else [])
        for level in levels:
            if level not in SCHOOL_LEVELS:
                bad("levels", level, f"school levels from {', '.join(SCHOOL_LEVELS)}")
        scope = entry.get("scope", "building_or_compound")
        if scope not in RESIDENTIAL_SCOPES:
            bad("scope", scope, f"one of {', '.join(RESIDENTIAL_SCOPES)}")
        zone_types = entry.get("zone_types", [])
        allowed_zones = SCHEMAS["zones"].field("zone_type").choices
        for zone_type in zone_types:
            if zone_type not in allowed_zones:
                bad("zone_types", zone_type, f"one of {', '.join(allowed_zones)}")
        if rule_type == "zone" and not zone_types:
            bad("zone_types", zone_types, "at least one zone type")
        if len(problems) > before:
            continue
        rules.append(
            Rule(
                id=rule_id,
                type=rule_type,
                regulated=tuple(regulated),
                limit_m=float(limit),
                method=method,
                protected=tuple(protected),
                levels=tuple(levels),
                scope=scope,
                mixed_use_is_residential=bool(entry.get("mixed_use_is_residential", True)),
                zone_types=tuple(zone_types),
                basis_zh=str(entry.get("basis_zh", "")),
                basis_en=str(entry.get("basis_en", "")),
            )
        )
    return rules
