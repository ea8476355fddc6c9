"""MCLP and LSCP against brute force on small instances, build order, candidates."""

from __future__ import annotations

import itertools

import geopandas as gpd
import numpy as np
import pytest
from coverage_helpers import LOCAL, facilities, frame, rect, residential

from geo.siting import build_order, candidate_sites, fewest_sites, maximal_coverage, site_facilities
from layers.errors import CivicmapError


def _covered(matrix: np.ndarray, weights: np.ndarray, cols) -> float:
    return float(weights[matrix[:, list(cols)].any(axis=1)].sum()) if len(cols) else 0.0


@pytest.mark.parametrize(
    ("seed", "engine"),
    [
        (1, "sparse"),
        (2, "sparse"),
        (3, "sparse"),
        *(pytest.param(s, "spopt", marks=pytest.mark.slow) for s in (1, 2)),
    ],
)
def test_mclp_matches_brute_force(seed, engine):
    rng = np.random.default_rng(seed)
    matrix = rng.random((14, 9)) < 0.25
    weights = rng.integers(1, 100, 14).astype(float)
    for p in (1, 2, 3):
        best = max(_covered(matrix, weights, c) for c in itertools.combinations(range(9), p))
        chosen = maximal_coverage(matrix, weights, p, engine=engine)
        assert len(chosen) <= p
        assert _covered(matrix, weights, chosen) == pytest.approx(best)


@pytest.mark.slow  # imports spopt (a few seconds)
@pytest.mark.parametrize("seed", [4, 5])
def test_lscp_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    matrix = rng.random((12, 8)) < 0.3
    weights = rng.integers(1, 50, 12).astype(float)
    coverable = float(weights[matrix.any(axis=1)].sum())
    for needed in (0.5 * coverable, 0.8 * coverable, coverable):
        size = next(
            k
            for k in range(1, 9)
            if any(_covered(matrix, weights, c) >= needed for c in itertools.combinations(range(8), k))
        )
        chosen = fewest_sites(matrix, weights, needed)
        assert len(chosen) == size
        assert _covered(matrix, weights, chosen) >= needed - 1e-9
    with pytest.raises(CivicmapError, match="not reachable"):
        fewest_sites(matrix, weights, coverable + 1)
    full = fewest_sites(matrix, weights, coverable, engine="spopt")
    assert len(full) == len(fewest_sites(matrix, weights, coverable))
    assert _covered(matrix, weights, full) == pytest.approx(coverable)


def test_build_order_by_hand():
    # site 0 reaches rows 0, 1 (10 + 20); site 1 reaches rows 1, 2 (20 + 40); site 2 reaches row 3 (5)
    matrix = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1]], dtype=bool)
    order, gains = build_order(matrix, np.array([10.0, 20.0, 40.0, 5.0]), np.array([0, 1, 2]))
    assert order.tolist() == [1, 0, 2] and gains.tolist() == [60.0, 10.0, 5.0]


def test_candidate_grid():
    subs = frame(
        [{"id": "sd", "name": "S", "population": 1, "urban": True, "geometry": rect(0, 0, 1000, 1000)}]
    )
    grid = candidate_sites(subs, spacing_m=250)
    assert len(grid) == 16 and set(grid["subdistrict"]) == {"S"}
    blocked = frame([{"id": "w", "geometry": rect(0, 0, 500, 500)}])
    assert len(candidate_sites(subs, spacing_m=250, exclude=blocked)) == 12


def test_site_facilities_keeps_existing_fixed():
    subs = frame(
        [{"id": "sd", "name": "S", "population": 1, "urban": True, "geometry": rect(-500, -500, 5000, 500)}]
    )
    units = residential(("u1", 0, 0, 500, "S"), ("u2", 2000, 0, 300, "S"), ("u3", 4000, 0, 200, "S"))
    existing = facilities(("st", "service_point", 100, 0))  # reaches u1 within 500 m (urban standard)
    cands = frame(
        [
            {"id": "c-near-u1", "geometry": _pt(0, 100)},
            {"id": "c-u2", "geometry": _pt(2100, 0)},
            {"id": "c-u3", "geometry": _pt(4000, 200)},
        ]
    )
    layers = {"residential": units, "cultural_facilities": existing, "subdistricts": subs}
    result = site_facilities(layers, "service_point", p=1, candidates=cands)
    assert result.sites["id"].tolist() == ["c-u2"]  # u1 (500) is already covered
    assert result.covered_before == 500 and result.newly_covered == 300
    two = site_facilities(layers, "service_point", p=2, candidates=cands)
    assert two.sites["id"].tolist() == ["c-u2", "c-u3"]
    assert two.sites["marginal_population"].tolist() == [300, 200]
    table = two.by_subdistrict.set_index("subdistrict")
    assert table.loc["S", "covered_after"] == 1000 and table.loc["S", "share_after"] == pytest.approx(1.0)
    lscp = site_facilities(layers, "service_point", target_share=0.75, candidates=cands)
    assert lscp.sites["id"].tolist() == ["c-u2"]  # 800 of 1,000 with one site
    with pytest.raises(CivicmapError, match="either p"):
        site_facilities(layers, "service_point", candidates=cands)


def _pt(x, y):
    return gpd.GeoSeries.from_xy([x], [y], crs=LOCAL).to_crs("EPSG:4326").iloc[0]
