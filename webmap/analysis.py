"""The analysis the pages share: one cached rule engine per (workspace state, profile).

Building a :class:`~geo.violations.RuleEngine` reads every layer and prepares the spatial
indexes and the walking network (about a second for a district); the pre-check counter must
then answer in milliseconds.  Engines and their violation tables are cached and keyed by the
workspace's current layer versions, so an import or a restore is picked up on the next
request without any explicit invalidation.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

import geopandas as gpd
from flask import current_app

from geo.rules import Profile, available_profiles, load_profile
from geo.violations import RuleEngine
from layers.store import Workspace
from webmap.accounts import current_workspace

T = TypeVar("T")
_LOCK = threading.Lock()
_ENGINES: OrderedDict[tuple, RuleEngine] = OrderedDict()
_VIOLATIONS: OrderedDict[tuple, gpd.GeoDataFrame] = OrderedDict()
_MAX_CACHED = 8
_RESULTS: OrderedDict[tuple, object] = OrderedDict()
_MAX_RESULTS = 24


def profile_names() -> list[str]:
    """Profiles a user may choose: shipped ones and the workspace's own ``profiles/`` folder."""
    return available_profiles(current_workspace().path / "profiles")


def default_profile_name() -> str:
    return current_app.config.get("PROFILE", "national")


def get_profile(name: str | None = None) -> Profile:
    """A profile by name (default: the deployment's ``PROFILE`` setting)."""
    return load_profile(name or default_profile_name(), extra_dir=current_workspace().path / "profiles")


def _state_key(ws: Workspace, profile: Profile) -> tuple:
    return (str(ws.path), tuple(sorted(ws.current_versions().items())), profile.name, profile.source)


def get_engine(profile_name: str | None = None) -> RuleEngine:
    """The rule engine for the current workspace state and a profile (cached)."""
    ws = current_workspace()
    profile = get_profile(profile_name)
    key = _state_key(ws, profile)
    with _LOCK:
        engine = _ENGINES.get(key)
        if engine is not None:
            _ENGINES.move_to_end(key)
            return engine
    engine = RuleEngine(ws.read_all(), profile)
    with _LOCK:
        _ENGINES[key] = engine
        while len(_ENGINES) > _MAX_CACHED:
            _ENGINES.popitem(last=False)
    return engine


def get_violations(profile_name: str | None = None) -> gpd.GeoDataFrame:
    """Every finding of a profile, near misses included (filter ``violation`` for the list)."""
    engine = get_engine(profile_name)
    key = (*_state_key(current_workspace(), engine.profile), "violations")
    with _LOCK:
        found = _VIOLATIONS.get(key)
    if found is None:
        found = engine.violations(include_near=True)
        with _LOCK:
            _VIOLATIONS[key] = found
            while len(_VIOLATIONS) > _MAX_CACHED:
                _VIOLATIONS.popitem(last=False)
    return found


def cached(key: tuple, build: Callable[[], T]) -> T:
    """``build()`` once per (workspace layer versions, ``key``): for the pages' heavier analyses.

    ``key`` names the analysis and its settings (e.g. ``("coverage", "walk", "any")``); an import
    or a restore changes the layer versions, so the next request computes afresh.
    """
    ws = current_workspace()
    full = (str(ws.path), tuple(sorted(ws.current_versions().items())), *key)
    with _LOCK:
        if full in _RESULTS:
            _RESULTS.move_to_end(full)
            return _RESULTS[full]
    value = build()
    with _LOCK:
        _RESULTS[full] = value
        while len(_RESULTS) > _MAX_RESULTS:
            _RESULTS.popitem(last=False)
    return value


def clear_cache() -> None:
    """Forget every cached engine and result (tests; a profile file edited in place)."""
    with _LOCK:
        _ENGINES.clear()
        _VIOLATIONS.clear()
        _RESULTS.clear()
