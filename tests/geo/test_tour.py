"""Inspection tours: nearest neighbour, 2-opt never longer, brute-force optimum on small cases, routes per team/day."""

from __future__ import annotations

import itertools

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Geod

from geo.network import WalkNetwork
from geo.tour import (
    nearest_neighbour,
    path_length_m,
    plan_routes,
    plan_tour,
    straight_matrix_m,
    two_opt,
    walking_matrix_m,
)
from layers.errors import CivicmapError

GEOD = Geod(ellps="WGS84")


def euclid(points) -> np.ndarray:
    p = np.asarray(points, dtype=float)
    return np.hypot(*(p[:, None, :] - p[None, :, :]).transpose(2, 0, 1))


def brute_force_m(matrix, start=0) -> float:
    rest = [i for i in range(len(matrix)) if i != start]
    return min(path_length_m(matrix, [start, *perm]) for perm in itertools.permutations(rest))


def test_nearest_neighbour_by_hand():
    # on a line at 0, 1, -1.5, 3: from 0 go to 1, then 3 (2 away, -1.5 is 2.5), then -1.5
    matrix = euclid([(0, 0), (1, 0), (-1.5, 0), (3, 0)])
    assert nearest_neighbour(matrix, 0) == [0, 1, 3, 2]
    assert path_length_m(matrix, [0, 1, 3, 2]) == pytest.approx(1 + 2 + 4.5)


def test_two_opt_removes_a_crossing():
    # unit square, path 0 → 2 → 1 → 3 crosses itself (√2 + 1 + √2); 2-opt finds length 3
    matrix = euclid([(0, 0), (1, 0), (1, 1), (0, 1)])
    better = two_opt(matrix, [0, 2, 1, 3])
    assert better[0] == 0 and sorted(better) == [0, 1, 2, 3]
    assert path_length_m(matrix, better) == pytest.approx(3.0)


def test_two_opt_can_reverse_the_tail_of_an_open_path():
    # 0 at the origin, then 3 → 2 → 1 going outwards would be better reversed: 0 → 1 → 2 → 3
    matrix = euclid([(0, 0), (1, 0), (2, 0), (3, 0)])
    assert two_opt(matrix, [0, 3, 2, 1]) == [0, 1, 2, 3]


@pytest.mark.parametrize("seed", range(40))
def test_tour_never_longer_than_nearest_neighbour_and_never_below_the_optimum(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 8)) if seed < 20 else int(rng.integers(10, 60))
    matrix = euclid(rng.uniform(0, 1000, size=(n, 2)))
    start = int(rng.integers(0, n))
    tour = plan_tour(matrix, start=start)
    nn = nearest_neighbour(matrix, start)
    assert tour.order[0] == start and sorted(tour.order) == list(range(n))
    assert tour.nearest_neighbour_m == pytest.approx(path_length_m(matrix, nn))
    assert tour.length_m <= tour.nearest_neighbour_m + 1e-9
    assert tour.length_m == pytest.approx(path_length_m(matrix, tour.order))
    if n <= 7:
        assert tour.length_m >= brute_force_m(matrix, start) - 1e-9


def test_two_opt_improves_clearly_on_random_instances():
    """Across instances the gain is real, not zero (a 2-opt that did nothing would pass the test above)."""
    rng = np.random.default_rng(7)
    ratios = []
    for _ in range(20):
        matrix = euclid(rng.uniform(0, 1000, size=(40, 2)))
        tour = plan_tour(matrix)
        ratios.append(tour.length_m / tour.nearest_neighbour_m)
    assert np.mean(ratios) < 0.97


def test_straight_distances_match_pyproj_geod():
    pts = gpd.GeoSeries([shapely.Point(114.30, 30.50), shapely.Point(114.31, 30.52)], crs="EPSG:4326")
    expected = GEOD.inv(114.30, 30.50, 114.31, 30.52)[2]
    matrix = straight_matrix_m(pts)
    assert matrix[0, 1] == pytest.approx(expected, abs=1e-6) and matrix[1, 0] == matrix[0, 1]
    assert matrix[0, 0] == 0.0


def test_walking_distances_follow_the_roads():
    # an L-shaped road: east 0.005°, then north 0.005°; the walk goes round the corner
    corner = (114.305, 30.50)
    roads = gpd.GeoDataFrame({"id": ["r1"]}, geometry=[shapely.LineString([(114.30, 30.50), corner, (114.305, 30.505)])],
                             crs="EPSG:4326")  # fmt: skip
    network = WalkNetwork.from_roads(roads)
    pts = gpd.GeoSeries(
        [shapely.Point(114.30, 30.50), shapely.Point(114.305, 30.505), shapely.Point(114.40, 30.60)],
        crs="EPSG:4326",
    )  # fmt: skip  (third: far off the road)
    walked = walking_matrix_m(pts, network)
    legs = GEOD.inv(114.30, 30.50, *corner)[2] + GEOD.inv(*corner, 114.305, 30.505)[2]
    assert walked[0, 1] == pytest.approx(legs, rel=2e-3)
    assert walked[0, 1] > straight_matrix_m(pts)[0, 1]
    # the unroutable stop keeps its straight line
    assert walked[0, 2] == pytest.approx(straight_matrix_m(pts)[0, 2])


@pytest.mark.parametrize(
    ("matrix", "start", "message"),
    [(np.zeros((2, 3)), 0, "square"), (np.zeros((2, 2)), 5, "start = 5"),
     (np.array([[0, np.nan], [1, 0]]), 0, "missing or infinite")],
)  # fmt: skip
def test_bad_matrices_are_refused(matrix, start, message):
    with pytest.raises(CivicmapError, match=message):
        plan_tour(matrix, start=start)


def test_plan_routes_splits_teams_into_days_and_orders_each_day():
    # team A: five stops along a parallel, ranks scrambled; team B: one stop
    xs = [114.30, 114.34, 114.31, 114.33, 114.32]
    targets = gpd.GeoDataFrame(
        {"venue_id": [*"abcde", "f"], "team": ["A"] * 5 + ["B"], "rank": [1, 2, 3, 4, 5, 6],
         "route_day": pd.array([None] * 6, dtype="Int64"), "route_order": pd.array([None] * 6, dtype="Int64")},
        geometry=[shapely.Point(x, 30.5) for x in xs] + [shapely.Point(114.2, 30.4)], crs="EPSG:4326",
    )  # fmt: skip
    routed = plan_routes(targets, stops_per_day=3).set_index("venue_id")
    # day 1 of team A: ranks 1-3 = a (114.30), b (114.34), c (114.31); starting at a: a, c, b
    assert routed.loc[["a", "b", "c"], "route_day"].tolist() == [1, 1, 1]
    assert routed.loc[["a", "c", "b"], "route_order"].tolist() == [1, 2, 3]
    # day 2: d (114.33) then e (114.32)
    assert routed.loc[["d", "e"], "route_day"].tolist() == [2, 2]
    assert routed.loc[["d", "e"], "route_order"].tolist() == [1, 2]
    assert routed.loc["f", "route_day"] == 1 and routed.loc["f", "route_order"] == 1
    assert str(routed["route_order"].dtype) == "Int64"
    with pytest.raises(CivicmapError, match="stops_per_day"):
        plan_routes(targets, stops_per_day=0)
