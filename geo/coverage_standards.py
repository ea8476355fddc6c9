"""Service standards of cultural facilities (DOMAIN.md §3): loading and thresholds.

The shipped values live in ``coverage_standards.toml`` beside this module; a deployment
overrides any of them with its own TOML file of the same shape (:func:`load_standards`).
A type may define *levels* (``[types.<type>.levels.<level>]``, e.g. the large / medium /
small libraries of 建标108-2008) whose own radius replaces the type's default for the
``standard`` cutoff; a facility's ``facility_level`` picks its level by name or alias, and
an unknown or missing level falls back to the type's default.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from layers.errors import CivicmapError
from layers.schema import FACILITY_TYPES

__all__ = ["DEFAULT_STANDARDS", "CoverageStandards", "Cutoff", "LevelStandard", "load_standards"]

DEFAULT_STANDARDS = Path(__file__).with_name("coverage_standards.toml")
SETTINGS = ("urban", "rural")


@dataclass(frozen=True)
class Cutoff:
    """One reach threshold: ``minutes`` (an N-minute circle), ``radius_m`` (one distance for
    all) or neither (each type's own standard)."""

    label: str
    minutes: float | None = None
    radius_m: float | None = None


@dataclass(frozen=True)
class LevelStandard:
    """The standard of one level of a facility type.

    ``walk_minutes`` is ``None`` when the level gives only a service radius: the walking
    reach is then that radius measured along the network.
    """

    name: str
    aliases: tuple[str, ...]
    radius_m: dict[str, float]
    walk_minutes: dict[str, float] | None = None


def _key(value: object) -> str:
    return str(value).strip().casefold()


@dataclass(frozen=True)
class CoverageStandards:
    """Service standards; see ``coverage_standards.toml`` for meanings and sources."""

    speed_m_per_min: float
    cutoff_minutes: tuple[float, ...]
    circle_radius_m: dict[str, dict[float, float]]
    radius_m: dict[str, dict[str, float]]
    walk_minutes: dict[str, dict[str, float]]
    any_types: tuple[str, ...]
    must_be_free: tuple[str, ...]
    grassroots_centre: tuple[str, ...]
    sources: dict[str, str] = field(default_factory=dict)
    levels: dict[str, dict[str, LevelStandard]] = field(default_factory=dict)

    def cutoffs(self, *, radius_m: float | None = None) -> list[Cutoff]:
        """The cutoffs of one run: ``radius_m`` alone, else the N-minute circles and ``standard``."""
        if radius_m is not None:
            if not radius_m > 0:
                raise CivicmapError(f"radius = {radius_m!r}: a distance > 0 in metres expected")
            return [Cutoff(f"{radius_m:g} m", radius_m=float(radius_m))]
        return [Cutoff(f"{m:g} min", minutes=m) for m in self.cutoff_minutes] + [Cutoff("standard")]

    def level_of(self, type_name: str, facility_level: object) -> str | None:
        """The level of ``type_name`` named by ``facility_level`` (its name or an alias,
        case and surrounding blanks ignored), or ``None`` when the type defines no such level."""
        if facility_level is None or (not isinstance(facility_level, str) and pd.isna(facility_level)):
            return None
        wanted = _key(facility_level)
        for name, level in self.levels.get(type_name, {}).items():
            if wanted == _key(name) or wanted in {_key(a) for a in level.aliases}:
                return name
        return None

    def threshold_m(
        self,
        cutoff: Cutoff,
        type_name: str,
        urban: np.ndarray,
        method: str,
        *,
        facility_level: object = None,
    ) -> np.ndarray:
        """Reach of ``type_name`` under ``cutoff`` for units with the given urban flags, metres.

        Parameters
        ----------
        cutoff, type_name, urban, method
            The cutoff, the facility type, one urban flag per unit and ``"straight"``/``"walk"``.
        facility_level
            The facility's ``facility_level`` value: under the ``standard`` cutoff a level the
            type defines (:meth:`level_of`) replaces the type's default; others fall back to it.
        """
        if cutoff.radius_m is not None:
            return np.full(len(urban), cutoff.radius_m)
        if cutoff.minutes is not None:
            if method == "walk":
                return np.full(len(urban), cutoff.minutes * self.speed_m_per_min)
            urban_m, rural_m = (self.circle_radius_m[s][cutoff.minutes] for s in SETTINGS)
            return np.where(urban, urban_m, rural_m)
        level_name = self.level_of(type_name, facility_level)
        level = self.levels[type_name][level_name] if level_name is not None else None
        if level is not None and (method != "walk" or level.walk_minutes is None):
            urban_m, rural_m = level.radius_m["urban"], level.radius_m["rural"]
        elif method == "walk":
            minutes = level.walk_minutes if level is not None else self.walk_minutes[type_name]
            urban_m, rural_m = (minutes[s] * self.speed_m_per_min for s in SETTINGS)
        else:
            urban_m, rural_m = self.radius_m[type_name]["urban"], self.radius_m[type_name]["rural"]
        return np.where(urban, urban_m, rural_m)


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        out[key] = (
            _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def _by_setting(value: object) -> dict[str, float]:
    """``{urban, rural}`` from a table of both or one number for both."""
    if isinstance(value, dict):
        return {s: float(value[s]) for s in SETTINGS}
    return {s: float(value) for s in SETTINGS}


def _levels(type_name: str, table: dict) -> dict[str, LevelStandard]:
    out = {}
    for name, spec in table.get("levels", {}).items():
        walk = spec.get("walk_minutes")
        out[name] = LevelStandard(
            name=name,
            aliases=tuple(str(a) for a in spec.get("aliases", ())),
            radius_m=_by_setting(spec["radius_m"]),
            walk_minutes=None if walk is None else _by_setting(walk),
        )
    return out


def load_standards(path: str | Path | None = None) -> CoverageStandards:
    """The shipped service standards, with the values of ``path`` (a TOML file) on top.

    Raises
    ------
    CivicmapError
        ``path`` unreadable, or a value of the wrong kind (the key is named).
    """
    data = tomllib.loads(DEFAULT_STANDARDS.read_text(encoding="utf-8"))
    if path is not None:
        try:
            data = _merge(data, tomllib.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise CivicmapError(f"{path}: cannot read coverage standards ({exc})") from exc
    where = str(path or DEFAULT_STANDARDS)
    try:
        types = data["types"]
        unknown = sorted(set(types) - set(FACILITY_TYPES))
        if unknown:
            raise CivicmapError(
                f"{where}: types {unknown} unknown; expected some of {sorted(FACILITY_TYPES)}"
            )
        minutes = tuple(float(m) for m in data["cutoffs"]["minutes"])
        circles = {
            s: {float(k): float(v) for k, v in data["circle"][s].items() if k != "source"} for s in SETTINGS
        }
        missing = [f"circle.{s}.{m:g}" for s in circles for m in minutes if m not in circles[s]]
        if missing:
            raise CivicmapError(f"{where}: {missing} missing; every cutoff minute needs a circle radius")
        sources = {name: str(t.get("source", "")) for name, t in types.items()}
        sources.update({k: str(data[k].get("source", "")) for k in ("walking", "cutoffs")})
        for name, t in types.items():
            sources.update(
                {f"{name}.{lv}": str(spec.get("source", "")) for lv, spec in t.get("levels", {}).items()}
            )
        return CoverageStandards(
            speed_m_per_min=float(data["walking"]["speed_m_per_min"]),
            cutoff_minutes=minutes,
            circle_radius_m=circles,
            radius_m={n: _by_setting(t["radius_m"]) for n, t in types.items()},
            walk_minutes={n: _by_setting(t["walk_minutes"]) for n, t in types.items()},
            any_types=tuple(n for n, t in types.items() if t.get("counts_for_any", False)),
            must_be_free=tuple(data["compliance"]["must_be_free"]),
            grassroots_centre=tuple(data["compliance"]["grassroots_centre"]),
            sources=sources,
            levels={n: lv for n, t in types.items() if (lv := _levels(n, t))},
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CivicmapError(f"{where}: coverage standards incomplete or malformed ({exc!r})") from exc
