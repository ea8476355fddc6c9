"""Unlicensed-café leads: reconcile observed points (map crawl, tip-offs) with the licence register.

Each observed net café is paired with at most one register entry and each register entry with
at most one observation.  A pair *qualifies* when the two are within ``max_distance_m`` (exact
geodesic metres, :func:`geo.distance.pairs_within`) and their normalised names
(:func:`geo.names.normalise_name`) are similar enough (rapidfuzz, ``min_score`` out of 100),
or -- the *same-name* rule, on by default -- within ``name_confirmed_distance_m`` (200 m) when
the names are near-identical (``confirmed_score``, 95) and give no conflicting branches: a
register geocoded from its address is often 100-200 m off, and on real data this rule cuts the
false leads from about 71 to 2 per run (lead precision 0.50 → 0.98, benchmarks/bench_leads.py).
Among the
qualifying pairs, the one-to-one assignment that maximises the total pair score (name
similarity blended with closeness) is chosen with :func:`scipy.optimize.linear_sum_assignment`,
one connected group of candidates at a time, so that two branches of a chain next to each
other do not both claim the same POI (a greedy "best match first" would).

Results (one row per observation and per unobserved register entry):

``matched``       observed and licensed (the register entry is in ``register_*``);
``unlicensed``    observed, no register entry qualifies: a lead.  ``candidate_*`` names the best
                  nearby register entry that did not qualify, as evidence;
``not_observed``  in the register but not seen (possibly closed).  ``candidate_*`` names the
                  best nearby observation that did not qualify.

A second sighting of an already matched venue (same name, same branch or none given, within
``max_distance_m`` of the first) is ``matched`` to the same entry with ``duplicate_of`` set,
instead of becoming a false lead.  Everything is WGS84 (EPSG:4326).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from geo.crs import geodesic_distance_m
from geo.distance import pairs_within
from geo.names import branch_of, name_score, normalise_name

__all__ = [
    "LEAD_COLUMNS",
    "LeadOptions",
    "branch_of",
    "leads_from_layers",
    "name_score",
    "normalise_name",
    "reconcile",
    "select_observed_cafes",
]

logger = logging.getLogger(__name__)

#: columns of :func:`reconcile`'s result, in order (plus ``geometry``)
LEAD_COLUMNS = [
    "status",
    "observed_id",
    "observed_name",
    "observed_source",
    "observed_at",
    "address",
    "register_id",
    "register_name",
    "licence_no",
    "register_status",
    "score",
    "distance_m",
    "candidate_id",
    "candidate_name",
    "observed_norm",
    "register_norm",
    "duplicate_of",
]
STATUSES = ("matched", "unlicensed", "not_observed")


@dataclass(frozen=True)
class LeadOptions:
    """Settings of :func:`reconcile` (all distances in metres, scores out of 100)."""

    max_distance_m: float = 100.0
    #: least name similarity (after normalisation) for a pair to qualify
    min_score: float = 75.0
    #: weight of name similarity in the pair score that the assignment maximises (rest: closeness)
    name_weight: float = 0.7
    #: radius searched for evidence (best non-qualifying candidate); default 2 × max_distance_m
    evidence_distance_m: float | None = None
    #: the same-name rule: a pair also qualifies up to this distance if its names score at
    #: least ``confirmed_score`` and give no conflicting branches (registers geocoded from
    #: addresses are often 100+ m off); None or 0: off.  Ordinary pairs stay within
    #: ``max_distance_m``.
    name_confirmed_distance_m: float | None = 200.0
    confirmed_score: float = 95.0
    #: treat a second sighting of a matched venue as matched (``duplicate_of``) rather than a lead
    merge_duplicates: bool = True
    #: ``pois.category`` values that are net cafés
    categories: tuple[str, ...] = (
        "网吧",
        "网咖",
        "网络会所",
        "电竞馆",
        "上网服务场所",
        "休闲娱乐;网吧",
        "net_cafe",
    )
    #: names that reveal a net café whatever the category says ...
    name_pattern: str = r"网吧|网咖|网络会所|电竞|上网"
    #: ... unless the category is another licensed kind (game venues and the like)
    other_categories: tuple[str, ...] = ("游艺厅", "游戏厅", "电玩城", "歌舞厅", "KTV", "休闲娱乐;游戏场所")

    @property
    def evidence_m(self) -> float:
        radius = self.evidence_distance_m if self.evidence_distance_m is not None else 2 * self.max_distance_m
        return max(radius, self.name_confirmed_distance_m or 0.0)


# ------------------------------------------------------------------ inputs
def select_observed_cafes(pois: gpd.GeoDataFrame, options: LeadOptions | None = None) -> gpd.GeoDataFrame:
    """The net cafés among observed POIs: by category, or by name unless the category is another kind."""
    options = options or LeadOptions()
    if len(pois) == 0:
        return pois.copy()
    category = pois["category"].astype("object") if "category" in pois else pd.Series(None, index=pois.index)
    category = category.fillna("").astype(str).str.strip()
    by_category = category.isin(options.categories)
    by_name = pois["name"].fillna("").astype(str).str.contains(options.name_pattern, regex=True)
    keep = by_category | (by_name & ~category.isin(options.other_categories))
    return pois.loc[keep.to_numpy()].copy()


def _text(frame: gpd.GeoDataFrame, column: str) -> list[object]:
    """A column as text (midnight timestamps as ``YYYY-MM-DD``); None where missing."""
    if column not in frame:
        return [None] * len(frame)
    return [None if pd.isna(v) else _as_text(v) for v in frame[column]]


def _as_text(value: object) -> str:
    if isinstance(value, datetime) and value == value.replace(hour=0, minute=0, second=0, microsecond=0):
        return value.date().isoformat()
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


# ------------------------------------------------------------------ matching
def _candidate_pairs(observed, register, options: LeadOptions) -> pd.DataFrame:
    """Every (observed, register) pair within the evidence radius, with name and pair scores."""
    pairs = pairs_within(observed, register, options.evidence_m)
    obs_names, reg_names = observed["name"].tolist(), register["name"].tolist()
    obs_norm = [normalise_name(n) for n in obs_names]
    reg_norm = [normalise_name(n) for n in reg_names]
    oi = pairs["venue_index"].to_numpy(dtype="int64")
    ri = pairs["site_index"].to_numpy(dtype="int64")
    dist = pairs["distance_m"].to_numpy(dtype="float64")
    names = np.array([name_score(obs_norm[o], reg_norm[r]) for o, r in zip(oi, ri, strict=True)])
    closeness = 100.0 * np.clip(1.0 - dist / options.max_distance_m, 0.0, 1.0)
    frame = pd.DataFrame(
        {
            "obs": oi,
            "reg": ri,
            "distance_m": dist,
            "score": names,
            "pair_score": options.name_weight * names + (1 - options.name_weight) * closeness,
            "qualifies": (dist <= options.max_distance_m) & (names >= options.min_score),
        }
    )
    if options.name_confirmed_distance_m:
        far = (
            ~frame["qualifies"]
            & (dist <= options.name_confirmed_distance_m)
            & (names >= options.confirmed_score)
        )
        for k in np.flatnonzero(far):
            a, b = branch_of(obs_names[oi[k]]), branch_of(reg_names[ri[k]])
            frame.loc[k, "qualifies"] = not a or not b or a == b
    return frame


def _assign(qualified: pd.DataFrame) -> dict[int, int]:
    """Observed → register one-to-one, maximising the total pair score per connected group."""
    if qualified.empty:
        return {}
    obs_codes, obs_keys = pd.factorize(qualified["obs"])
    reg_codes, reg_keys = pd.factorize(qualified["reg"])
    n_obs, n_reg = len(obs_keys), len(reg_keys)
    graph = coo_matrix((np.ones(len(qualified)), (obs_codes, n_obs + reg_codes)), shape=(n_obs + n_reg,) * 2)
    _, label = connected_components(graph, directed=False)
    groups = pd.Series(label[obs_codes])
    result: dict[int, int] = {}
    scores = qualified["pair_score"].to_numpy()
    for _g, rows in groups.groupby(groups).groups.items():
        rows = np.asarray(rows)
        o_local, o_index = np.unique(obs_codes[rows], return_inverse=True)
        r_local, r_index = np.unique(reg_codes[rows], return_inverse=True)
        cost = np.zeros((len(o_local), len(r_local)))
        cost[o_index, r_index] = -(scores[rows] + 1.0)  # qualifying pairs always beat "unmatched" (0)
        row_ind, col_ind = linear_sum_assignment(cost)
        for a, b in zip(row_ind, col_ind, strict=True):
            if cost[a, b] < 0:
                result[int(obs_keys[o_local[a]])] = int(reg_keys[r_local[b]])
    return result


def _best(pairs: pd.DataFrame, key: str) -> dict[int, pd.Series]:
    """Per ``key`` value, the pair with the highest name score (then the shortest distance)."""
    if pairs.empty:
        return {}
    ranked = pairs.sort_values(["score", "distance_m"], ascending=[False, True], kind="stable")
    return {int(k): row for k, row in ranked.groupby(key, sort=False).head(1).set_index(key).iterrows()}


def _duplicates(pairs, assigned, observed, options) -> dict[int, tuple[int, int]]:
    """Unassigned observations that are a second sighting of an assigned one: obs → (first obs, register)."""
    by_register = {r: o for o, r in assigned.items()}
    norm = [normalise_name(n) for n in observed["name"]]
    branch = [branch_of(n) for n in observed["name"]]
    found: dict[int, tuple[int, int]] = {}
    free = pairs[pairs["qualifies"] & ~pairs["obs"].isin(list(assigned))]
    for o, rows in free.sort_values("pair_score", ascending=False).groupby("obs", sort=False):
        for r in rows["reg"]:
            first = by_register.get(int(r))
            if first is None:
                continue
            same_branch = not branch[o] or not branch[first] or branch[o] == branch[first]
            a, b = observed.geometry.iloc[o], observed.geometry.iloc[first]
            gap_m = float(geodesic_distance_m([a.x], [a.y], [b.x], [b.y])[0])
            near = gap_m <= options.max_distance_m
            if same_branch and near and name_score(norm[o], norm[first]) >= options.min_score:
                found[int(o)] = (first, int(r))
                break
    return found


# ------------------------------------------------------------------ result
def _point(geom):
    return geom if geom is None or geom.geom_type == "Point" else geom.representative_point()


def reconcile(
    register: gpd.GeoDataFrame,
    observed: gpd.GeoDataFrame,
    *,
    max_distance_m: float = 100.0,
    min_score: float = 75.0,
    options: LeadOptions | None = None,
    filter_observed: bool | None = None,
) -> gpd.GeoDataFrame:
    """Match observed net cafés to the licence register; list leads and unobserved entries.

    Parameters
    ----------
    register
        The ``net_cafes`` layer (WGS84): ``id``, ``name``, ``licence_no``, ``status``, points
        or footprints.
    observed
        Observed points (WGS84): ``id``, ``name`` and optionally ``source``, ``observed_at``,
        ``address``, ``category`` — typically the whole ``pois`` layer.
    filter_observed
        Keep only the net cafés among ``observed`` (:func:`select_observed_cafes`); by default
        (None) when ``observed`` has a ``category`` column, i.e. when it is a ``pois`` layer.
    max_distance_m, min_score
        A pair qualifies within ``max_distance_m`` metres (exact geodesic) and with a name
        similarity (:func:`name_score` of :func:`normalise_name`) of at least ``min_score``.
    options
        Further settings (:class:`LeadOptions`); ``max_distance_m`` and ``min_score`` given
        here override the ones in ``options``.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns :data:`LEAD_COLUMNS` and point geometry (EPSG:4326): the observed point for
        ``matched`` / ``unlicensed`` rows, the register point for ``not_observed`` rows.
        ``score`` (0–100) and ``distance_m`` describe the match, or the candidate for the
        other two statuses (NaN when nothing lies within the evidence radius).  Observations
        come first in input order, then unobserved register entries in register order.
    """
    options = replace(
        options or LeadOptions(), max_distance_m=float(max_distance_m), min_score=float(min_score)
    )
    if options.max_distance_m <= 0 or not np.isfinite(options.max_distance_m):
        raise ValueError(f"max_distance_m = {max_distance_m!r}; expected a positive number of metres")
    if filter_observed or (filter_observed is None and "category" in observed.columns):
        observed = select_observed_cafes(observed, options)
    observed = observed.reset_index(drop=True)
    register = register.reset_index(drop=True)
    if len(observed) and len(register):
        pairs = _candidate_pairs(observed, register, options)
    else:
        pairs = pd.DataFrame(columns=["obs", "reg", "distance_m", "score", "pair_score", "qualifies"])
    assigned = _assign(pairs[pairs["qualifies"].astype(bool)])
    duplicates = _duplicates(pairs, assigned, observed, options) if options.merge_duplicates else {}
    lookup = pairs.set_index(["obs", "reg"])
    best_for_obs = _best(pairs, "obs")
    best_for_reg = _best(pairs, "reg")
    obs_text = {c: _text(observed, c) for c in ("id", "name", "source", "observed_at", "address")}
    reg_text = {c: _text(register, c) for c in ("id", "name", "licence_no", "status", "address")}
    rows: list[dict] = []
    geoms = []

    def register_part(r: int) -> dict:
        return {
            "register_id": reg_text["id"][r],
            "register_name": reg_text["name"][r],
            "licence_no": reg_text["licence_no"][r],
            "register_status": reg_text["status"][r],
            "register_norm": normalise_name(reg_text["name"][r]),
        }

    def candidate(best: dict | None, side: str, text: dict, norm_column: str) -> dict:
        """The best pair that did not qualify, seen from its other ``side`` (``obs`` or ``reg``)."""
        if best is None:
            return {}
        i = int(best[side])
        return {"score": best["score"], "distance_m": best["distance_m"], "candidate_id": text["id"][i],
                "candidate_name": text["name"][i], norm_column: normalise_name(text["name"][i])}  # fmt: skip

    for o in range(len(observed)):
        row = {
            "observed_id": obs_text["id"][o],
            "observed_name": obs_text["name"][o],
            "observed_source": obs_text["source"][o],
            "observed_at": obs_text["observed_at"][o],
            "address": obs_text["address"][o],
            "observed_norm": normalise_name(obs_text["name"][o]),
        }
        r = assigned.get(o)
        if r is None and o in duplicates:
            first, r = duplicates[o]
            row["duplicate_of"] = obs_text["id"][first]
        if r is not None:
            pair = lookup.loc[(o, r)]
            row.update(
                status="matched", score=pair["score"], distance_m=pair["distance_m"], **register_part(r)
            )
        else:
            row["status"] = "unlicensed"
            row.update(candidate(best_for_obs.get(o), "reg", reg_text, "register_norm"))
        rows.append(row)
        geoms.append(_point(observed.geometry.iloc[o]))
    taken = set(assigned.values())
    for r in range(len(register)):
        if r in taken:
            continue
        row = {"status": "not_observed", "address": reg_text["address"][r], **register_part(r)}
        row.update(candidate(best_for_reg.get(r), "obs", obs_text, "observed_norm"))
        rows.append(row)
        geoms.append(_point(register.geometry.iloc[r]))
    frame = pd.DataFrame(rows, columns=LEAD_COLUMNS)
    for column in LEAD_COLUMNS:
        if column in ("score", "distance_m"):
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
        else:  # text: None when missing, never NaN
            values = frame[column].astype(object)
            frame[column] = values.where(values.notna(), None)
    result = gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs="EPSG:4326").array, crs="EPSG:4326")
    counts = result["status"].value_counts().to_dict()
    logger.info(
        "reconciled %d observed with %d register entries: %s (%d duplicate sightings)",
        len(observed),
        len(register),
        counts,
        len(duplicates),
    )
    return result


def leads_from_layers(layers: dict, options: LeadOptions | None = None) -> gpd.GeoDataFrame | None:
    """:func:`reconcile` of a workspace's ``pois`` with its ``net_cafes`` register (default options).

    Returns None when there is no ``pois`` layer or no register to reconcile with, so the
    target list simply has no lead findings.
    """
    pois, register = layers.get("pois"), layers.get("net_cafes")
    if pois is None or pois.empty or register is None:
        return None
    options = options or LeadOptions()
    return reconcile(
        register, pois, max_distance_m=options.max_distance_m, min_score=options.min_score, options=options
    )
