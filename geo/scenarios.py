"""The policy tester: what a rule change would do to existing venues, permissible land and quotas.

A :class:`Scenario` changes the active profile for one venue kind — the distance limit, the
measuring method, the protected school levels (e.g. add kindergartens), a spacing between venues,
the residential rule — and may set a cap or a target ratio.  :func:`run_scenario` applies it with
the violation engine (:class:`geo.violations.RuleEngine`) and the permissible zones
(:mod:`geo.permissible`), so a scenario that changes nothing reproduces the profile's own results.
:func:`sweep` runs many (e.g. nine limits), sharing the walking network, the spatial indexes and
every excluded area that does not change; :func:`sensitivity_chart` draws limit against affected
venues and permissible area; :func:`attrition` compares a random lottery with rule-based attrition
as ways to bring the stock down to a cap.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy.stats import hypergeom

from geo.permissible import PermissibleZones, district_frame, permissible_zones, rule_area
from geo.quota import in_stock, quota_table, stock_table, subdistrict_of, violating_ids
from geo.rules import METHODS, RESIDENTIAL_SCOPES, Profile, Rule
from geo.violations import RuleEngine
from layers.errors import CivicmapError

log = logging.getLogger(__name__)

NO_RESIDENTIAL_RULE = "none"


@dataclass(frozen=True)
class Scenario:
    """A change to the active profile for one venue kind (``None`` keeps the profile's setting).

    Attributes
    ----------
    limit_m
        Limit of the kind's main school-distance rule (the first ``distance`` rule).
    method
        Measuring method of every distance rule of the kind (``boundary``, ``gate-walk``, ``door-walk``).
    levels
        School levels the main distance rule protects (add ``kindergarten`` to protect them too).
    spacing_m
        Minimum distance between venues of the kind (0: none); added as a ``spacing`` rule.
    residential_scope
        ``building``, ``building_or_compound``, or ``none`` (drop the residential rule).
    cap, per_residents
        At most one: the district cap, or one venue per N residents, for the quotas.
    """

    name: str = "baseline"
    kind: str = "net_cafes"
    limit_m: float | None = None
    method: str | None = None
    levels: tuple[str, ...] | None = None
    spacing_m: float = 0.0
    residential_scope: str | None = None
    cap: int | None = None
    per_residents: float | None = None

    def __post_init__(self) -> None:
        if self.limit_m is not None and not self.limit_m > 0:
            raise CivicmapError(f"scenario {self.name!r}: limit {self.limit_m!r} m: expected a distance > 0")
        if self.method is not None and self.method not in METHODS:
            raise CivicmapError(
                f"scenario {self.name!r}: method {self.method!r}: expected one of {', '.join(METHODS)}"
            )
        scopes = (*RESIDENTIAL_SCOPES, NO_RESIDENTIAL_RULE)
        if self.residential_scope is not None and self.residential_scope not in scopes:
            raise CivicmapError(f"scenario {self.name!r}: residential rule {self.residential_scope!r}: expected one of {', '.join(scopes)}")  # fmt: skip
        if self.spacing_m < 0:
            raise CivicmapError(f"scenario {self.name!r}: spacing {self.spacing_m!r} m: expected ≥ 0")
        if self.cap is not None and self.per_residents is not None:
            raise CivicmapError(f"scenario {self.name!r}: give a cap or a target ratio, not both")

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["levels"] = list(self.levels) if self.levels is not None else None
        return data

    @classmethod
    def from_dict(cls, data: Mapping) -> Scenario:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if values.get("levels") is not None:
            values["levels"] = tuple(values["levels"])
        return cls(**values)


def apply_scenario(profile: Profile, scenario: Scenario) -> Profile:
    """The profile with the scenario's changes to the rules of ``scenario.kind``."""
    rules: list[Rule] = []
    main_done = False
    for rule in profile.rules:
        if not rule.regulates(scenario.kind):
            rules.append(rule)
            continue
        if rule.type == "distance":
            changes: dict = {}
            if scenario.method is not None:
                changes["method"] = scenario.method
            if not main_done:
                main_done = True
                if scenario.limit_m is not None:
                    changes["limit_m"] = float(scenario.limit_m)
                if scenario.levels is not None:
                    changes["levels"] = tuple(scenario.levels)
            rule = dataclasses.replace(rule, **changes)
        elif rule.type == "residential" and scenario.residential_scope is not None:
            if scenario.residential_scope == NO_RESIDENTIAL_RULE:
                continue
            rule = dataclasses.replace(rule, scope=scenario.residential_scope)
        rules.append(rule)
    if scenario.residential_scope in RESIDENTIAL_SCOPES and not any(
        r.type == "residential" and r.regulates(scenario.kind) for r in rules
    ):
        rules.append(Rule(id=f"{scenario.kind}_residential", type="residential", regulated=(scenario.kind,),
                          scope=scenario.residential_scope))  # fmt: skip
    if scenario.spacing_m > 0:
        rules.append(Rule(id=f"{scenario.kind}_spacing", type="spacing", regulated=(scenario.kind,),
                          limit_m=float(scenario.spacing_m)))  # fmt: skip
    return dataclasses.replace(profile, name=f"{profile.name}:{scenario.name}", rules=tuple(rules))


@dataclass
class ScenarioResult:
    """What one scenario does: affected venues, permissible land, quotas."""

    scenario: Scenario
    affected: list[str]
    newly_affected: list[str]
    no_longer_affected: list[str]
    zones: PermissibleZones
    table: pd.DataFrame  # per sub-district (quota columns when a cap or ratio is set)
    seconds: float = 0.0
    profile: str = ""

    @property
    def permissible_km2(self) -> float:
        return self.zones.total_permissible_km2

    def row(self) -> dict:
        """One summary line for sweeps and side-by-side comparisons."""
        s = self.scenario
        district = self.table.iloc[-1] if "quota" in self.table else None
        return {"scenario": s.name, "limit_m": s.limit_m, "method": s.method, "levels": ",".join(s.levels or ()),
                "spacing_m": s.spacing_m, "residential": s.residential_scope, "cap": s.cap,
                "per_residents": s.per_residents, "affected": len(self.affected),
                "newly_affected": len(self.newly_affected), "no_longer_affected": len(self.no_longer_affected),
                "permissible_km2": round(self.permissible_km2, 4),
                "quota": int(district["quota"]) if district is not None else None,
                "headroom": int(district["headroom"]) if district is not None else None,
                "affected_ids": " ".join(self.affected), "seconds": round(self.seconds, 3)}  # fmt: skip


@dataclass
class ScenarioRunner:
    """Runs scenarios on one workspace's layers, sharing everything that does not change between them."""

    layers: Mapping[str, gpd.GeoDataFrame]
    profile: Profile
    kind: str = "net_cafes"
    base: RuleEngine | None = None
    _areas: dict = field(default_factory=dict)
    _baseline: set[str] | None = None

    def __post_init__(self) -> None:
        self.base = self.base or RuleEngine(self.layers, self.profile)

    def engine(self, profile: Profile) -> RuleEngine:
        engine = RuleEngine(self.layers, profile)
        engine._site_indexes = self.base._site_indexes  # keyed by levels / scope: safe to share
        if profile.max_snap_m == self.base.profile.max_snap_m:
            engine.__dict__["network"] = self.base.network
        return engine

    @property
    def baseline(self) -> set[str]:
        if self._baseline is None:
            self._baseline = self._stock_violators(self.base)
        return self._baseline

    def _stock_violators(self, engine: RuleEngine) -> set[str]:
        """Stock venues breaking any rule; each rule's verdicts are kept for the next scenario."""
        venues = engine.layer(self.kind)
        stock = set(venues.loc[in_stock(venues), "id"].astype(str))
        out: set[str] = set()
        for rule in engine.profile.rules_for(self.kind):
            key = ("violators", rule, engine.profile.max_snap_m, engine.profile.recheck_band_m)
            if key not in self._areas:
                found = engine.evaluate(rule, engine.regulated(rule, kinds={self.kind}))
                bad = found.loc[found["violation"], "venue_id"] if len(found) else []
                self._areas[key] = {str(v) for v in bad}
            out |= self._areas[key]
        return out & stock

    def _stock(self, engine: RuleEngine, affected: set[str]) -> pd.DataFrame:
        """The stock table with this scenario's violators (the rest is computed once)."""
        if "stock" not in self._areas:
            venues = self.base.layer(self.kind)
            venues = venues[in_stock(venues)]
            where = dict(zip(venues["id"].astype(str), subdistrict_of(self.base, venues), strict=True))
            self._areas["stock"] = (stock_table(self.base, self.kind, violating=set()), where)
        table, where = self._areas["stock"]
        counts = pd.Series([where[v] for v in affected if v in where], dtype=object).value_counts()
        return table.assign(violating=counts.reindex(table["subdistrict"], fill_value=0).to_numpy(int))

    def _excluded(self, engine: RuleEngine) -> dict:
        crs = district_frame(engine)
        out = {}
        for rule in engine.profile.rules_for(self.kind):
            key = (rule, engine.profile.max_snap_m, engine.profile.recheck_band_m, crs.to_wkt())
            if key not in self._areas:
                self._areas[key] = rule_area(engine, rule, crs)
            out[rule.id] = self._areas[key]
        return out

    def run(self, scenario: Scenario) -> ScenarioResult:
        """Apply one scenario (see :func:`run_scenario`)."""
        if scenario.kind != self.kind:
            raise CivicmapError(
                f"scenario {scenario.name!r} is for {scenario.kind}, this runner for {self.kind}"
            )
        started = time.perf_counter()
        engine = self.engine(apply_scenario(self.profile, scenario))
        affected = self._stock_violators(engine)
        zones = permissible_zones(engine, self.kind, excluded=self._excluded(engine))
        stock = self._stock(engine, affected)
        if scenario.cap is not None or scenario.per_residents is not None:
            table = quota_table(engine, cap=scenario.cap, per_residents=scenario.per_residents, kind=self.kind,
                                zones=zones, stock=stock)  # fmt: skip
        else:
            table = stock.merge(pd.DataFrame(zones.table.drop(columns="geometry")), on="subdistrict")
        return ScenarioResult(scenario, sorted(affected), sorted(affected - self.baseline),
                              sorted(self.baseline - affected), zones, table, time.perf_counter() - started,
                              engine.profile.name)  # fmt: skip


def run_scenario(
    layers: Mapping[str, gpd.GeoDataFrame], profile: Profile, scenario: Scenario
) -> ScenarioResult:
    """Apply ``scenario`` to ``profile`` on ``layers``: affected stock venues, permissible land, quotas.

    ``affected`` are the stock venues (licensed) of the kind that break at least one rule of the
    changed profile; ``newly_affected`` / ``no_longer_affected`` compare with the profile as it is.
    """
    return ScenarioRunner(layers, profile, scenario.kind).run(scenario)


def sweep(runner: ScenarioRunner, scenarios: Iterable[Scenario]) -> tuple[pd.DataFrame, list[ScenarioResult]]:
    """Run several scenarios; one summary row each (:meth:`ScenarioResult.row`) and the results."""
    results = [runner.run(s) for s in scenarios]
    return pd.DataFrame([r.row() for r in results]), results


def limit_scenarios(limits: Iterable[float], template: Scenario | None = None) -> list[Scenario]:
    """One scenario per limit, other settings from ``template``."""
    template = template or Scenario()
    return [dataclasses.replace(template, name=f"{float(x):g} m", limit_m=float(x)) for x in limits]


def per_subdistrict(results: list[ScenarioResult], column: str) -> pd.DataFrame:
    """A sub-district × scenario table of one column (``permissible_km2``, ``quota``, ``violating`` …)."""
    frames = {r.scenario.name: r.table.set_index("subdistrict")[column] for r in results if column in r.table}
    return pd.DataFrame(frames)


def sensitivity_chart(
    frame: pd.DataFrame, *, fmt: str = "svg", labels: Mapping[str, str] | None = None
) -> bytes:
    """Limit against affected venues (bars) and permissible area (line), as SVG or PNG bytes.

    Parameters
    ----------
    frame
        A sweep table with ``limit_m``, ``affected`` and ``permissible_km2``.
    fmt
        ``svg`` or ``png``.
    labels
        ``title``, ``x``, ``affected``, ``area``: texts to show (English defaults).  A font with
        Chinese glyphs (Noto CJK, WenQuanYi, SimHei) is used when one is installed.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import font_manager
    from matplotlib.figure import Figure

    text = {"title": "Sensitivity to the distance limit", "x": "limit (m)", "affected": "affected venues",
            "area": "permissible area (km²)", **(labels or {})}  # fmt: skip
    installed = {f.name for f in font_manager.fontManager.ttflist}
    cjk = [
        n for n in ("Noto Sans CJK SC", "Noto Serif CJK SC", "WenQuanYi Zen Hei", "SimHei") if n in installed
    ]
    if not cjk and any(ord(ch) > 0x2FFF for v in text.values() for ch in str(v)):
        text = {"title": "Sensitivity to the distance limit", "x": "limit (m)", "affected": "affected venues",
                "area": "permissible area (km2)"}  # fmt: skip
    rc = {"font.family": [*cjk, "DejaVu Sans"], "svg.hashsalt": "civicmap", "axes.unicode_minus": False}
    with matplotlib.rc_context(rc):
        fig = Figure(figsize=(9.0, 4.2), dpi=110)
        ax = fig.add_subplot()
        data = frame.sort_values("limit_m")
        x = data["limit_m"].astype(float).to_numpy()
        width = (np.diff(x).min() * 0.6) if len(x) > 1 else 20.0
        ax.bar(
            x, data["affected"].to_numpy(), width=width, color="#c0392b", alpha=0.75, label=text["affected"]
        )
        ax.set_xlabel(text["x"])
        ax.set_ylabel(text["affected"], color="#c0392b")
        ax.set_xticks(x)
        ax.set_xticklabels([f"{v:g}" for v in x])
        right = ax.twinx()
        right.plot(x, data["permissible_km2"].to_numpy(), color="#1f6f8b", marker="o", label=text["area"])
        right.set_ylabel(text["area"], color="#1f6f8b")
        ax.set_title(text["title"])
        fig.tight_layout()
        out = io.BytesIO()
        fig.savefig(out, format=fmt, metadata={"Date": None} if fmt == "svg" else None)
    return out.getvalue()


def attrition(
    engine: RuleEngine, cap: int, *, kind: str = "net_cafes", violating: set[str] | None = None
) -> dict:
    """Two ways to bring the stock down to ``cap``, with their expected outcome.

    ``lottery``: closures drawn at random among all stock venues — each survives with
    probability cap / stock; the violators left follow a hypergeometric law (mean and 90 % range).
    ``rule_based``: violators close first (they must anyway), then unchained venues, then the
    fewest terminals — a deterministic list of closures.

    Returns
    -------
    dict
        ``stock``, ``cap``, ``to_close``, ``violating``, ``lottery`` (expected survivors per
        sub-district, violators left: mean, p5, p95; terminals lost: mean) and ``rule_based``
        (closed venue ids, violators left, terminals lost, survivors per sub-district).
    """
    venues = engine.layer(kind)
    venues = venues[in_stock(venues)].reset_index(drop=True)
    violating = violating_ids(engine, kind) if violating is None else violating
    stock, cap = len(venues), int(cap)
    if cap < 0:
        raise CivicmapError(f"cap {cap}: expected a whole number ≥ 0")
    to_close = max(stock - cap, 0)
    bad = venues["id"].astype(str).isin(violating).to_numpy()
    terminals = pd.to_numeric(
        venues.get("terminals", pd.Series(0, index=venues.index)), errors="coerce"
    ).fillna(0)
    chain = (
        venues.get("chain", pd.Series("", index=venues.index))
        .astype(object)
        .fillna("")
        .astype(str)
        .str.strip()
    )
    where = pd.Series(subdistrict_of(engine, venues))
    keep_share = cap / stock if stock and to_close else 1.0
    n_bad = int(bad.sum())
    law = hypergeom(stock, n_bad, stock - to_close) if stock else None
    lottery = {
        "survive_probability": keep_share,
        "survivors_by_subdistrict": (where.value_counts() * keep_share).round(2).to_dict(),
        "violators_left_mean": n_bad * keep_share,
        "violators_left_p5": int(law.ppf(0.05)) if law is not None else 0,
        "violators_left_p95": int(law.ppf(0.95)) if law is not None else 0,
        "terminals_lost_mean": float(terminals.sum() * (1 - keep_share)),
    }
    order = np.lexsort(
        (venues["id"].astype(str).to_numpy(), terminals.to_numpy(), (chain != "").to_numpy(), ~bad)
    )
    closed = order[:to_close]
    survivors = np.setdiff1d(np.arange(stock), closed)
    rule_based = {
        "closed": venues["id"].astype(str).to_numpy()[closed].tolist(),
        "violators_left": int(bad[survivors].sum()),
        "terminals_lost": float(terminals.to_numpy()[closed].sum()),
        "survivors_by_subdistrict": where.iloc[survivors].value_counts().to_dict(),
    }
    return {"stock": stock, "cap": cap, "to_close": to_close, "violating": n_bad, "lottery": lottery,
            "rule_based": rule_based}  # fmt: skip
