"""Density, stock and quotas per sub-district: "control the total, adjust the stock" (DOMAIN.md §2).

National net-café quotas were abolished in 2014, so every ratio here is a parameter the bureau
chooses: a target of one café per ``per_residents`` residents (Hainan 2006: 12,000) or a district
``cap`` (Shanghai 2010: 1,724).  :func:`stock_table` counts what there is; :func:`allocate_quotas`
shares the district total among sub-districts by population with the largest-remainder method
(so the quotas sum exactly to the total), giving none to a sub-district without permissible
land (:mod:`geo.permissible`); :func:`quota_table` joins both with the headroom (quota − cafés;
negative = over-supplied); :func:`relocation_suggestions` gives each violating café the nearest
permissible point of its sub-district.

The stock is the venues whose ``status`` is in :data:`STOCK_STATUSES` (licensed).  Unlicensed
leads are the ``unlicensed`` rows of :func:`geo.leads.leads_from_layers` — the reconciliation the
leads page and the enforcement list use — counted in the sub-district containing the observed point.
"""

from __future__ import annotations

import logging
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.leads import LEAD_COLUMNS, leads_from_layers
from geo.permissible import PermissibleZones, nearest_permissible, permissible_zones
from geo.violations import RuleEngine
from layers.errors import CivicmapError

log = logging.getLogger(__name__)

STOCK_STATUSES = ("licensed",)
DISTRICT_ROW = "全区合计"
#: columns of :func:`quota_table`, in order
QUOTA_COLUMNS = [
    "subdistrict", "population", "area_km2", "cafes", "terminals", "cafes_per_10k", "terminals_per_1k",
    "chain_share", "game_venues", "game_venues_per_10k", "violating", "unlicensed_leads",
    "permissible_km2", "permissible_share", "quota", "headroom",
]  # fmt: skip


def subdistrict_of(engine: RuleEngine, frame: gpd.GeoDataFrame) -> np.ndarray:
    """Name of the sub-district containing each feature (its own ``subdistrict`` attribute when none does)."""
    own = frame["subdistrict"].astype(object).fillna("").to_numpy() if "subdistrict" in frame else None
    out = np.array(own if own is not None else [""] * len(frame), dtype=object)
    subs = engine.layer("subdistricts")
    if subs.empty or frame.empty:
        return out
    tree = shapely.STRtree(subs.geometry.values)
    vi, si = tree.query(shapely.point_on_surface(frame.geometry.values), predicate="within")
    out[vi] = subs["name"].astype(str).to_numpy()[si]
    return out


def in_stock(frame: gpd.GeoDataFrame) -> np.ndarray:
    """Rows of a venue layer counted as stock (status in :data:`STOCK_STATUSES`)."""
    if "status" not in frame:
        return np.ones(len(frame), bool)
    return frame["status"].astype(object).isin(STOCK_STATUSES).to_numpy()


def violating_ids(engine: RuleEngine, kind: str = "net_cafes") -> set[str]:
    """Ids of stock venues of ``kind`` that break at least one rule of the engine's profile."""
    found = engine.violations(kinds={kind})
    if found.empty:
        return set()
    stock_ids = set(engine.layer(kind).loc[in_stock(engine.layer(kind)), "id"].astype(str))
    return {str(v) for v in found["venue_id"]} & stock_ids


def unlicensed_leads(engine: RuleEngine, kind: str = "net_cafes") -> gpd.GeoDataFrame:
    """Unlicensed-café leads: the ``unlicensed`` rows of :func:`geo.leads.leads_from_layers`.

    Observed net cafés (``pois``) that match no register entry, by the reconciliation the leads
    page and the enforcement list use (default :class:`geo.leads.LeadOptions`), so the three
    count the same leads.  Columns :data:`geo.leads.LEAD_COLUMNS`, the observed point as
    geometry.  Only net cafés are reconciled: empty for any other ``kind``.
    """
    found = leads_from_layers(engine.layers) if kind == "net_cafes" else None
    if found is None:
        return gpd.GeoDataFrame(
            {c: pd.Series(dtype=object) for c in LEAD_COLUMNS}, geometry=[], crs="EPSG:4326"
        )
    return found[found["status"] == "unlicensed"].reset_index(drop=True)


def _per(count: np.ndarray, population: np.ndarray, unit: float) -> np.ndarray:
    return np.divide(count * unit, population, out=np.full(len(count), np.nan), where=population > 0)


def stock_table(
    engine: RuleEngine, kind: str = "net_cafes", *, violating: set[str] | None = None
) -> pd.DataFrame:
    """Population, area and stock per sub-district (no district row, no quota).

    Columns: ``subdistrict, population, cafes, terminals, cafes_per_10k, terminals_per_1k,
    chain_share, game_venues, game_venues_per_10k, violating, unlicensed_leads``.
    """
    subs = engine.layer("subdistricts")
    if subs.empty:
        raise CivicmapError("no subdistricts layer: import the sub-district boundaries first")
    names = subs["name"].astype(str).to_numpy()
    population = pd.to_numeric(subs.get("population"), errors="coerce").fillna(0).to_numpy(float)
    cafes = engine.layer(kind)
    cafes = cafes[in_stock(cafes)]
    where = pd.Series(subdistrict_of(engine, cafes), index=cafes.index)
    terminals = pd.to_numeric(
        cafes.get("terminals", pd.Series(0, index=cafes.index)), errors="coerce"
    ).fillna(0)
    chain = (
        cafes.get("chain", pd.Series("", index=cafes.index)).astype(object).fillna("").astype(str).str.strip()
    )
    games = engine.layer("game_venues")
    games = games[in_stock(games)]
    game_where = pd.Series(subdistrict_of(engine, games), index=games.index)
    violating = violating_ids(engine, kind) if violating is None else violating
    bad = where[cafes["id"].astype(str).isin(violating).to_numpy()]
    leads = unlicensed_leads(engine, kind)
    lead_where = pd.Series(subdistrict_of(engine, leads), index=leads.index)

    def count(series: pd.Series) -> np.ndarray:
        return series.value_counts().reindex(names, fill_value=0).to_numpy(int)

    n = count(where)
    chained = count(where[(chain != "").to_numpy()])
    term = terminals.groupby(where).sum().reindex(names, fill_value=0).to_numpy(float)
    n_games = count(game_where)
    return pd.DataFrame(
        {
            "subdistrict": names,
            "population": population.astype(int),
            "cafes": n,
            "terminals": term.astype(int),
            "cafes_per_10k": _per(n, population, 10_000),
            "terminals_per_1k": _per(term, population, 1_000),
            "chain_share": np.divide(chained, n, out=np.zeros(len(n)), where=n > 0),
            "game_venues": n_games,
            "game_venues_per_10k": _per(n_games, population, 10_000),
            "violating": count(bad),
            "unlicensed_leads": count(lead_where),
        }
    )


def allocate_quotas(population: object, total: int, eligible: object | None = None) -> np.ndarray:
    """Share ``total`` among areas in proportion to population: largest remainder, sums to ``total``.

    Parameters
    ----------
    population
        Residents per area (≥ 0).
    total
        The district total (a cap, or population / target ratio).
    eligible
        Bool per area; ineligible areas (no permissible land) get 0 and their share goes to the others.

    Returns
    -------
    numpy.ndarray of int
        Quota per area; ties for the last seats go to the larger population, then the earlier area.
    """
    pop = np.asarray(population, dtype=float)
    ok = np.ones(len(pop), bool) if eligible is None else np.asarray(eligible, bool)
    if total < 0:
        raise CivicmapError(f"quota total {total}: expected a number ≥ 0")
    weights = np.where(ok, np.clip(pop, 0, None), 0.0)
    out = np.zeros(len(pop), dtype=int)
    if total == 0 or weights.sum() <= 0:
        if total > 0:
            log.warning("no eligible population: a total of %d cannot be allocated", total)
        return out
    exact = total * weights / weights.sum()
    out = np.floor(exact).astype(int)
    left = int(total - out.sum())
    remainder = exact - out
    order = np.lexsort((np.arange(len(pop)), -weights, -remainder))
    order = [i for i in order if weights[i] > 0]
    for i in order[:left]:
        out[i] += 1
    return out


def district_total(population: float, *, per_residents: float | None = None, cap: int | None = None) -> int:
    """The district total: ``cap``, or one café per ``per_residents`` residents (rounded down)."""
    if (per_residents is None) == (cap is None):
        raise CivicmapError("give exactly one of a target ratio (per residents) or a cap")
    if cap is not None:
        if cap < 0:
            raise CivicmapError(f"cap {cap}: expected a whole number ≥ 0")
        return int(cap)
    if not per_residents or per_residents <= 0:
        raise CivicmapError(f"target ratio {per_residents!r}: expected residents per café > 0")
    return math.floor(population / per_residents)


def quota_table(
    engine: RuleEngine,
    *,
    per_residents: float | None = None,
    cap: int | None = None,
    kind: str = "net_cafes",
    zones: PermissibleZones | None = None,
    stock: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Stock, permissible land, quota and headroom per sub-district, with a district row last.

    Parameters
    ----------
    engine
        Rule engine of the workspace and the active profile.
    per_residents, cap
        Exactly one: a target of one café per N residents, or a district cap.
    kind
        Venue kind (``net_cafes``).
    zones, stock
        Precomputed :func:`geo.permissible.permissible_zones` / :func:`stock_table`.

    Returns
    -------
    pandas.DataFrame
        :data:`QUOTA_COLUMNS`; the last row is the district (:data:`DISTRICT_ROW`).
    """
    zones = zones or permissible_zones(engine, kind)
    table = stock if stock is not None else stock_table(engine, kind)
    table = table.merge(
        pd.DataFrame(zones.table.drop(columns="geometry")),
        on="subdistrict",
        how="left",
        validate="one_to_one",
    )
    total = district_total(float(table["population"].sum()), per_residents=per_residents, cap=cap)
    table["quota"] = allocate_quotas(table["population"], total, table["permissible_km2"] > 0)
    table["headroom"] = table["quota"] - table["cafes"]
    district = _district_row(table)
    out = pd.concat([table, pd.DataFrame([district])], ignore_index=True)
    out.attrs.update(
        total=total, per_residents=per_residents, cap=cap, profile=engine.profile.name, kind=kind
    )
    return out[QUOTA_COLUMNS]


def _district_row(table: pd.DataFrame) -> dict:
    sums = {c: table[c].sum() for c in ("population", "area_km2", "cafes", "terminals", "game_venues",
                                         "violating", "unlicensed_leads", "permissible_km2", "quota", "headroom")}  # fmt: skip
    pop, n = float(sums["population"]), int(sums["cafes"])
    chained = float((table["chain_share"] * table["cafes"]).sum())
    return {
        "subdistrict": DISTRICT_ROW,
        **sums,
        "cafes_per_10k": n * 10_000 / pop if pop else np.nan,
        "terminals_per_1k": sums["terminals"] * 1_000 / pop if pop else np.nan,
        "chain_share": chained / n if n else 0.0,
        "game_venues_per_10k": sums["game_venues"] * 10_000 / pop if pop else np.nan,
        "permissible_share": sums["permissible_km2"] / sums["area_km2"] if sums["area_km2"] else 0.0,
    }


#: the sentences of :func:`quota_summary`, per language (``{}`` fields filled from the district row)
_SUMMARY = {
    "zh": {
        "stock": "全区常住人口{population_10k:.1f}万人，现有持证网吧{cafes}家（每万人{per_10k:.2f}家），终端{terminals}台。",
        "by_ratio": "按每{per_residents:,.0f}名常住人口设1家的目标，全区配额{quota}家，",
        "by_cap": "按全区总量上限，全区配额{quota}家，",
        "room_total": "尚可新增{n}家。",
        "over_total": "超出{n}家，宜控制总量、逐步压减存量。",
        "room": "仍有余量的街道：{items}。", "room_item": "{name}（{n}家）",
        "over": "已超配的街道：{items}。", "over_item": "{name}（超{n}家）",
        "no_land": "无可设置用地的街道：{items}，不再新增。",
        "violating": "现有{n}家持证网吧不符合距离或选址规定，建议就近迁址（见迁址建议表）。",
        "leads": "地图兴趣点中另有{n}处疑似无证网吧线索，建议核查。",
        "list": "、", "join": "",
    },
    "en": {
        "stock": "The district has {population:,.0f} residents and {cafes} licensed net cafés ({per_10k:.2f} per "
                 "10,000) with {terminals:,} terminals.",
        "by_ratio": "At one café per {per_residents:,.0f} residents, its quota is {quota} café(s): ",
        "by_cap": "Under the district cap, its quota is {quota} café(s): ",
        "room_total": "{n} more may open.",
        "over_total": "{n} over; hold the total and reduce the stock step by step.",
        "room": "Room left in: {items}.", "room_item": "{name} ({n})",
        "over": "Over quota: {items}.", "over_item": "{name} ({n} over)",
        "no_land": "No permissible land, no new cafés: {items}.",
        "violating": "{n} licensed café(s) break the distance or siting rules; relocation nearby is suggested "
                     "(see the relocation table).",
        "leads": "Map points of interest show {n} likely unlicensed café(s) to check.",
        "list": ", ", "join": " ",
    },
}  # fmt: skip


def quota_summary(table: pd.DataFrame, language: str = "zh") -> str:
    """A plain-language summary of a :func:`quota_table` for the analyst's report, in ``zh`` or ``en``."""
    say = _SUMMARY[language]
    rows, district = table.iloc[:-1], table.iloc[-1]
    headroom = int(district["headroom"])
    per_residents = table.attrs.get("per_residents")
    basis = say["by_ratio"] if per_residents else say["by_cap"]
    parts = [
        say["stock"].format(population=district["population"], population_10k=district["population"] / 10_000,
                            cafes=int(district["cafes"]), per_10k=district["cafes_per_10k"],
                            terminals=int(district["terminals"])),
        basis.format(per_residents=per_residents or 0, quota=int(district["quota"]))
        + (say["room_total"].format(n=headroom) if headroom >= 0 else say["over_total"].format(n=-headroom)),
    ]  # fmt: skip
    room, full = rows[rows["headroom"] > 0], rows[rows["headroom"] < 0]
    for key, chosen, sign in (("room", room, 1), ("over", full, -1)):
        if len(chosen):
            items = say["list"].join(
                say[f"{key}_item"].format(name=r.subdistrict, n=sign * int(r.headroom))
                for r in chosen.itertuples()
            )
            parts.append(say[key].format(items=items))
    no_land = rows[rows["permissible_km2"] <= 0]
    if len(no_land):
        parts.append(say["no_land"].format(items=say["list"].join(no_land["subdistrict"])))
    for key, column in (("violating", "violating"), ("leads", "unlicensed_leads")):
        if int(district[column]):
            parts.append(say[key].format(n=int(district[column])))
    return say["join"].join(parts)


def relocation_suggestions(
    engine: RuleEngine, zones: PermissibleZones | None = None, kind: str = "net_cafes"
) -> pd.DataFrame:
    """For each violating stock venue: the nearest permissible point in its sub-district and the distance.

    Returns
    -------
    pandas.DataFrame
        ``venue_id, venue_name, subdistrict, rules, lon, lat, target_lon, target_lat, distance_m``;
        the target is empty (NaN) when the sub-district has no permissible land left.
    """
    zones = zones or permissible_zones(engine, kind)
    found = engine.violations(kinds={kind})
    venues = engine.layer(kind)
    venues = venues[in_stock(venues)].reset_index(drop=True)
    bad_ids = set(found["venue_id"].astype(str)) if len(found) else set()
    venues = venues[venues["id"].astype(str).isin(bad_ids)].reset_index(drop=True)
    where = subdistrict_of(engine, venues)
    rows = []
    for venue, sub in zip(venues.itertuples(), where, strict=True):
        point = venue.geometry.representative_point()
        rules = "、".join(sorted(set(found.loc[found["venue_id"].astype(str) == str(venue.id), "rule"])))
        target = nearest_permissible(zones, point.x, point.y, sub or None)
        rows.append({"venue_id": venue.id, "venue_name": venue.name, "subdistrict": sub, "rules": rules,
                     "lon": point.x, "lat": point.y, "target_lon": target[0] if target else np.nan,
                     "target_lat": target[1] if target else np.nan,
                     "distance_m": target[2] if target else np.nan})  # fmt: skip
    columns = [
        "venue_id",
        "venue_name",
        "subdistrict",
        "rules",
        "lon",
        "lat",
        "target_lon",
        "target_lat",
        "distance_m",
    ]
    return pd.DataFrame(rows, columns=columns).sort_values(["subdistrict", "venue_id"], ignore_index=True)
