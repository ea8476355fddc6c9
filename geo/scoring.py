"""Priority scores of enforcement targets and the settings behind them (weights, teams, deadlines).

Settings ship in ``geo/enforcement.toml``; a workspace overrides any key in its own
``enforcement.toml`` (:func:`load_config`).

Priority score (weights in ``geo/enforcement.toml``, overridable per workspace)::

    priority = base
             + min(shortfall_cap, per_shortfall_m × worst shortfall in metres)
             + level[highest protected level affected]        (kindergarten, primary ≥ senior)
             + per_extra_site × (protected sites affected − 1)
             + Σ rule_type[t] for each other rule type found   (residential, spacing, zone)
             + unlicensed                                      (unlicensed-café lead)
             + operating_while_barred                          (suspended / revoked, seen open)
             + earlier_finding   if the venue's case was closed before
             + open_case         if its case is open
             + reopened × times the case was reopened
             + recheck           if every distance finding is in the field recheck band
             + approximate       if every distance finding is approximate

``priority_reasons`` lists each term that applied with its points, in Chinese
(``priority_reasons_en``: in English).  A surveyed
distance recorded on the case (:mod:`layers.cases`) replaces the computed distance of the
venue's worst distance finding; beyond the limit, that finding is dropped.  Ties are broken by
the larger shortfall, then by kind and venue id.
"""

from __future__ import annotations

import copy
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layers.errors import RuleError
from layers.schema import SCHOOL_LEVELS
from layers.target_export import UNASSIGNED as UNASSIGNED_TEAM

SHIPPED_CONFIG = Path(__file__).resolve().parent / "enforcement.toml"
WORKSPACE_CONFIG = "enforcement.toml"


# ------------------------------------------------------------------ configuration
@dataclass(frozen=True)
class EnforcementConfig:
    """Weights of the priority score, case deadlines, teams and tour settings (see the TOML file)."""

    score: dict[str, float]
    level: dict[str, float]
    rule_type: dict[str, float]
    deadline_days: int
    revisit_days: int
    stops_per_day: int
    walking: bool
    teams: dict[str, tuple[str, ...]]
    source: str = ""
    #: the rule profile whose findings open, reopen and resolve cases; other profiles only preview
    case_profile: str = "national"

    def team_of(self, subdistrict: str) -> str:
        """The team covering a sub-district (:data:`UNASSIGNED_TEAM` when none does)."""
        for team, subs in self.teams.items():
            if subdistrict in subs:
                return team
        return UNASSIGNED_TEAM


def _merge(base: dict, extra: Mapping) -> dict:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if key == "teams":
            out[key] = dict(value)
        elif isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(workspace_dir: str | Path | None = None) -> EnforcementConfig:
    """The shipped settings, overridden by ``<workspace_dir>/enforcement.toml`` when it exists.

    Raises
    ------
    RuleError
        A file that is not TOML, or a weight that is not a number (names file and key).
    """
    sources = [SHIPPED_CONFIG]
    if workspace_dir is not None and (Path(workspace_dir) / WORKSPACE_CONFIG).is_file():
        sources.append(Path(workspace_dir) / WORKSPACE_CONFIG)
    data: dict = {}
    for path in sources:
        try:
            data = _merge(data, tomllib.loads(path.read_text(encoding="utf-8")))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise RuleError(f"{path}: not a valid TOML file ({err})") from None
    where = str(sources[-1])
    score = dict(data.get("score", {}))
    level, rule_type = score.pop("level", {}), score.pop("rule_type", {})
    problems = [
        f"{where}: [score{'.' + table if table else ''}] {key} = {value!r} is not a number"
        for table, values in (("", score), ("level", level), ("rule_type", rule_type))
        for key, value in values.items()
        if isinstance(value, bool) or not isinstance(value, int | float)
    ]
    teams = data.get("teams", {})
    problems += [
        f"{where}: [teams] {team} = {subs!r} is not a list of sub-district names"
        for team, subs in teams.items()
        if not isinstance(subs, list) or not all(isinstance(s, str) for s in subs)
    ]
    if problems:
        raise RuleError("; ".join(problems))
    cases, tour = data.get("cases", {}), data.get("tour", {})
    return EnforcementConfig(
        score={k: float(v) for k, v in score.items()},
        level={k: float(v) for k, v in level.items()},
        rule_type={k: float(v) for k, v in rule_type.items()},
        deadline_days=int(cases.get("deadline_days", 30)),
        revisit_days=int(cases.get("revisit_days", 90)),
        case_profile=str(cases.get("profile", "national")),
        stops_per_day=max(1, int(tour.get("stops_per_day", 8))),
        walking=bool(tour.get("walking", False)),
        teams={str(t): tuple(s) for t, s in teams.items()},
        source=" + ".join(str(s) for s in sources),
    )


def level_zh(level: str) -> str:
    return SCHOOL_LEVELS[level][0] if level in SCHOOL_LEVELS else level


#: school levels in English, as words in a sentence
LEVEL_EN = {"primary": "primary school", "junior": "junior secondary school", "senior": "senior secondary school",
            "nine_year": "nine-year school", "complete": "complete secondary school",
            "vocational": "vocational school", "special": "special-education school", "kindergarten": "kindergarten"}  # fmt: skip


def level_en(level: str) -> str:
    return LEVEL_EN.get(level, level.replace("_", " ") if level else "school")


def severity(f: dict) -> tuple[float, float]:
    ratio = f["shortfall_m"] / f["limit_m"] if f["limit_m"] and f["limit_m"] > 0 else math.nan
    return (
        ratio if math.isfinite(ratio) else 1.0,
        f["shortfall_m"] if math.isfinite(f["shortfall_m"]) else 0.0,
    )


def apply_survey(findings: list[dict], surveyed_distance_m: float | None, report: str = "") -> list[dict]:
    """Replace the worst distance finding's distance by a surveyed one; drop it when beyond the limit."""
    if surveyed_distance_m is None or not math.isfinite(surveyed_distance_m):
        return findings
    distance = [f for f in findings if f["rule_type"] == "distance"]
    if not distance:
        return findings
    worst = max(distance, key=severity)
    if surveyed_distance_m > worst["limit_m"]:
        return [f for f in findings if f is not worst]
    surveyed = {**worst, "distance_m": float(surveyed_distance_m), "method": "surveyed", "recheck": False,
                "approximate": False, "shortfall_m": worst["limit_m"] - float(surveyed_distance_m),
                "survey_report": report}  # fmt: skip
    return [surveyed if f is worst else f for f in findings]


def score(
    findings: list[dict], config: EnforcementConfig, case: Any = None, *, language: str = "zh"
) -> tuple[float, list[str]]:
    """Priority of one venue and the reasons, term by term (Chinese, or ``language="en"``); see the module docstring.

    Parameters
    ----------
    findings
        The venue's findings (dicts as in the ``findings`` column).
    case
        Its :class:`layers.cases.Case` (or anything with ``status``, ``closures``,
        ``reopen_count``), or None.
    language
        ``zh`` or ``en``: the language of the reasons (the score is the same).
    """
    terms = score_terms(findings, config, case)
    return score_total(terms), score_reasons(terms, language)


def score_total(terms: list[tuple[float, str, str]]) -> float:
    return round(sum(points for points, _zh, _en in terms), 1)


def score_reasons(terms: list[tuple[float, str, str]], language: str = "zh") -> list[str]:
    """``label +points`` of each term that counts (the base always), in ``zh`` or ``en``."""
    pick = 2 if language == "en" else 1
    return [f"{term[pick]} {term[0]:+.1f}" for term in terms if term[0] != 0 or term[1] == "基础分"]


def score_terms(
    findings: list[dict], config: EnforcementConfig, case: Any = None
) -> list[tuple[float, str, str]]:
    """The terms of :func:`score`: ``(points, Chinese label, English label)`` each."""
    w = config.score
    terms: list[tuple[float, str, str]] = [(w.get("base", 0.0), "基础分", "base")]
    shortfalls = [
        f["shortfall_m"] for f in findings if math.isfinite(f["shortfall_m"]) and f["shortfall_m"] > 0
    ]
    if shortfalls:
        worst = max(shortfalls)
        points = min(w.get("shortfall_cap", math.inf), w.get("per_shortfall_m", 0.0) * worst)
        terms.append((points, f"距离不足 {worst:.1f} 米", f"{worst:.1f} m short"))
    distance = [f for f in findings if f["rule_type"] == "distance"]
    levels = {f["protected_level"] for f in distance if f["protected_level"] in config.level}
    if levels:
        top = max(levels, key=lambda v: config.level[v])
        terms.append((config.level[top], f"涉及{level_zh(top)}", f"near a {level_en(top)}"))
    sites = {f["protected_id"] for f in distance}
    if len(sites) > 1:
        extra = w.get("per_extra_site", 0.0) * (len(sites) - 1)
        terms.append((extra, f"涉及 {len(sites)} 个保护对象", f"{len(sites)} protected sites"))
    for rule_type in sorted({f["rule_type"] for f in findings} & set(config.rule_type)):
        zh, en = _RULE_TYPE_TERMS.get(rule_type, (rule_type, rule_type))
        terms.append((config.rule_type[rule_type], zh, en))
    if any(f["rule_type"] == "lead" for f in findings):
        terms.append((w.get("unlicensed", 0.0), "无证经营线索", "unlicensed lead"))
    if any(f["rule_type"] == "barred" for f in findings):
        terms.append(
            (
                w.get("operating_while_barred", 0.0),
                "停业/吊销后仍在经营",
                "operating while suspended or revoked",
            )
        )
    if case is not None:
        if getattr(case, "closures", 0) > 0:
            terms.append((w.get("earlier_finding", 0.0), "曾经查处", "dealt with before"))
        if getattr(case, "status", "") in ("new", "assigned", "inspected"):
            terms.append((w.get("open_case", 0.0), "案件未结", "case still open"))
        if getattr(case, "reopen_count", 0) > 0:
            terms.append((
                w.get("reopened", 0.0) * case.reopen_count,
                f"逾期仍违规重新立案 {case.reopen_count} 次",
                f"reopened {case.reopen_count} time(s) after the deadline",
            ))  # fmt: skip
    if distance and all(f["recheck"] for f in distance):
        terms.append((w.get("recheck", 0.0), "接近限值，需现场复核", "near the limit: measure on site"))
    if distance and all(f["approximate"] for f in distance):
        terms.append((w.get("approximate", 0.0), "近似测量", "approximate measurement"))
    return terms


#: (Chinese, English) of the rule-type terms
_RULE_TYPE_TERMS = {
    "residential": ("位于居民住宅内", "inside a residential building"),
    "spacing": ("间距不足", "too close to a venue of its kind"),
    "zone": ("位于限制区域", "in a restricted zone"),
}
