"""Accessibility scores: two-step floating catchment (2SFCA) and an inequality summary.

Step 1: each facility's supply (seats = ``capacity``, or ``floor_area_m2``) is divided by
the population of the residential units within its catchment, giving a supply-to-demand
ratio R.  Step 2: each unit's score is the sum of R over the facilities within its
catchment.  The computation is PySAL ``access`` (:meth:`access.Access.two_stage_fca`); this
module prepares its inputs (distances by straight line or walking, as in
:mod:`geo.coverage`) and summarises the result per sub-district and with a
population-weighted Gini coefficient.  Scores are per resident; ``score_per_1000`` is the
same per 1,000 residents.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from geo.coverage import DISTRICT_TOTAL, WALK_SNAP_M, assign_subdistricts, unit_points
from geo.crs import metric_crs
from layers.errors import CivicmapError, LayerError

__all__ = ["SUPPLY_FIELDS", "AccessibilityResult", "accessibility", "gini", "two_step_fca"]

logger = logging.getLogger(__name__)

SUPPLY_FIELDS = ("capacity", "floor_area_m2")


def two_step_fca(demand: pd.Series, supply: pd.Series, costs: pd.DataFrame, *, max_cost: float) -> pd.Series:
    """2SFCA scores by PySAL ``access``.

    Parameters
    ----------
    demand
        Population indexed by demand id.
    supply
        Supply indexed by facility id.
    costs
        Columns ``origin`` (demand id), ``destination`` (facility id), ``cost`` (e.g. metres);
        pairs beyond ``max_cost`` may be left out.
    max_cost
        Catchment size, in the unit of ``cost`` (pairs with cost ≤ max_cost count).

    Returns
    -------
    pandas.Series
        Score per demand id (0 where no facility is within the catchment).
    """
    from access import Access

    demand_df = pd.DataFrame({"id": demand.index.astype(str), "population": demand.to_numpy(dtype=float)})
    supply_df = pd.DataFrame({"id": supply.index.astype(str), "supply": supply.to_numpy(dtype=float)})
    cost_df = pd.DataFrame(
        {
            "origin": costs["origin"].astype(str).to_numpy(),
            "destination": costs["destination"].astype(str).to_numpy(),
            "cost": costs["cost"].to_numpy(dtype=float),
        }
    )
    if cost_df.empty:
        return pd.Series(0.0, index=demand.index.astype(str), name="score")
    with warnings.catch_warnings():  # access uses pandas' inplace= (deprecated in pandas 3.1)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", category=Warning, module="access")
        warnings.filterwarnings("ignore", message=".*inplace.*")
        model = Access(
            demand_df=demand_df,
            demand_index="id",
            demand_value="population",
            supply_df=supply_df,
            supply_index="id",
            supply_value="supply",
            cost_df=cost_df,
            cost_origin="origin",
            cost_dest="destination",
            cost_name="cost",
        )
        scores = model.two_stage_fca(name="2sfca", max_cost=max_cost)
    out = scores.iloc[:, 0].reindex(demand_df["id"]).fillna(0.0)
    out.index.name, out.name = "id", "score"
    return out


def gini(values: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Population-weighted Gini coefficient of non-negative ``values`` (0 = equal; NaN if all 0).

    ``sum_ij w_i w_j |x_i - x_j| / (2 W sum_i w_i x_i)``, in O(n log n).
    """
    x = np.asarray(values, dtype=float)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    keep = w > 0
    x, w = x[keep], w[keep]
    if len(x) == 0 or (x < 0).any() or not np.isfinite(x).all():
        raise CivicmapError("gini: finite values >= 0 with some positive weight expected")
    total = float(np.sum(w * x))
    if total == 0:
        return float("nan")
    order = np.argsort(x, kind="stable")
    x, w = x[order], w[order]
    below = np.cumsum(w) - w
    above = w.sum() - below - w
    return float(np.sum(w * x * (below - above)) / (w.sum() * total))


@dataclass
class AccessibilityResult:
    """2SFCA scores of one run.

    Attributes
    ----------
    units : geopandas.GeoDataFrame
        ``id, name, subdistrict, population, score, score_per_1000`` and the unit centres.
    by_subdistrict : pandas.DataFrame
        ``subdistrict, population, mean_score_per_1000`` (population-weighted), then the district.
    gini : float
        Population-weighted Gini of the unit scores.
    supply_field, catchment_m, method : str, float, str
    """

    units: gpd.GeoDataFrame
    by_subdistrict: pd.DataFrame
    gini: float
    supply_field: str
    catchment_m: float
    method: str


def _pair_costs(
    layers: dict,
    units: gpd.GeoSeries,
    facilities: gpd.GeoSeries,
    catchment_m: float,
    method: str,
    network: object,
) -> pd.DataFrame:
    """(unit position, facility position, metres) of the pairs within the catchment."""
    crs = metric_crs(pd.concat([units, facilities]).values)
    uxy = shapely.get_coordinates(units.to_crs(crs).values)
    fxy = shapely.get_coordinates(facilities.to_crs(crs).values)
    near = cKDTree(uxy).sparse_distance_matrix(cKDTree(fxy), catchment_m, output_type="coo_matrix")
    pairs = pd.DataFrame({"origin": near.row, "destination": near.col, "cost": near.data})
    if method == "walk":
        from geo.network import WalkNetwork

        net = network or WalkNetwork.from_roads(layers["roads"], max_snap_m=WALK_SNAP_M)
        walks = net.shortest_walks(
            units.reset_index(drop=True),
            facilities.reset_index(drop=True),
            pairs=pairs[["origin", "destination"]].to_numpy(),
            limit_m=catchment_m,
        )
        pairs["cost"] = walks["distance_m"].to_numpy()
    elif method != "straight":
        raise CivicmapError(f"method = {method!r}; expected 'straight' or 'walk'")
    return pairs[pairs["cost"] <= catchment_m]


def accessibility(
    layers: dict[str, gpd.GeoDataFrame],
    *,
    catchment_m: float = 1000.0,
    supply_field: str = "capacity",
    types: list[str] | None = None,
    method: str = "straight",
    network: object = None,
) -> AccessibilityResult:
    """2SFCA scores of residential units for cultural facilities.

    Parameters
    ----------
    layers
        ``residential`` and ``cultural_facilities`` (WGS84); ``subdistricts`` for the names,
        ``roads`` for ``method="walk"``.
    catchment_m
        Catchment in metres (by straight line or walking).
    supply_field
        ``capacity`` or ``floor_area_m2``; facilities without a value are left out (logged).
    types
        Facility types that supply (default: all).
    """
    if supply_field not in SUPPLY_FIELDS:
        raise CivicmapError(f"supply = {supply_field!r}; expected one of {SUPPLY_FIELDS}")
    if not catchment_m > 0:
        raise CivicmapError(f"catchment = {catchment_m!r}: a distance > 0 in metres expected")
    for kind in ("residential", "cultural_facilities"):
        if layers.get(kind) is None or layers[kind].empty:
            raise LayerError.single(kind, f"the {kind} layer is empty or missing: accessibility needs it")
    residential, facilities = layers["residential"], layers["cultural_facilities"]
    if types is not None:
        facilities = facilities[facilities["type"].isin(types)]
    supply = (
        pd.to_numeric(facilities.get(supply_field), errors="coerce") if supply_field in facilities else None
    )
    if supply is None:
        raise LayerError.single("cultural_facilities", f"no {supply_field} column: cannot measure supply")
    known = supply.notna() & (supply > 0)
    if (~known).any():
        logger.info("2SFCA: %d facilities without %s left out", int((~known).sum()), supply_field)
    facilities, supply = facilities[known], supply[known]
    centres = unit_points(residential)
    population = pd.to_numeric(residential["population"]).fillna(0).astype(float)
    pairs = (
        _pair_costs(layers, centres, unit_points(facilities), catchment_m, method, network)
        if len(facilities)
        else pd.DataFrame({"origin": [], "destination": [], "cost": []})
    )
    unit_ids = residential["id"].astype(str).to_numpy()
    fac_ids = facilities["id"].astype(str).to_numpy()
    costs = pd.DataFrame(
        {
            "origin": unit_ids[pairs["origin"].to_numpy(dtype=int)],
            "destination": fac_ids[pairs["destination"].to_numpy(dtype=int)],
            "cost": pairs["cost"].to_numpy(dtype=float),
        }
    )
    scores = two_step_fca(
        pd.Series(population.to_numpy(), index=unit_ids),
        pd.Series(supply.to_numpy(dtype=float), index=fac_ids),
        costs,
        max_cost=catchment_m,
    )
    names = assign_subdistricts(residential, layers.get("subdistricts"))
    units = gpd.GeoDataFrame(
        {
            "id": unit_ids,
            "name": residential.get("name", residential["id"]).astype(str).to_numpy(),
            "subdistrict": names.to_numpy(),
            "population": population.to_numpy(),
            "score": scores.to_numpy(),
        },
        geometry=centres.to_numpy(),
        crs="EPSG:4326",
    )
    units["score_per_1000"] = units["score"] * 1000.0
    weighted = units.assign(
        _w=units["score_per_1000"] * units["population"], subdistrict=units["subdistrict"].fillna("")
    )
    grouped = weighted.groupby("subdistrict", sort=True)[["population", "_w"]].sum()
    rows = pd.concat(
        [
            grouped,
            pd.DataFrame(
                {"population": [grouped["population"].sum()], "_w": [grouped["_w"].sum()]},
                index=[DISTRICT_TOTAL],
            ),
        ]
    )
    by_sub = pd.DataFrame(
        {
            "subdistrict": rows.index.astype(str),
            "population": rows["population"].to_numpy(),
            "mean_score_per_1000": (rows["_w"] / rows["population"].where(rows["population"] > 0)).to_numpy(),
        }
    )
    coefficient = gini(units["score"].to_numpy(), units["population"].to_numpy())
    logger.info(
        "2SFCA (%s, %g m, %s): %d units, %d facilities, Gini %.3f",
        method,
        catchment_m,
        supply_field,
        len(units),
        len(fac_ids),
        coefficient,
    )
    return AccessibilityResult(
        units, by_sub.reset_index(drop=True), coefficient, supply_field, catchment_m, method
    )
