"""2SFCA on a textbook example worked out by hand, and the Gini coefficient."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from coverage_helpers import facilities, frame, rect, residential

from geo.accessibility import accessibility, gini, two_step_fca
from layers.errors import CivicmapError

# Demand A (100), B (200), C (300); supply X (10) and Y (30).  Catchment: X reaches A and B,
# Y reaches B and C.  Step 1: R_X = 10 / (100 + 200) = 1/30, R_Y = 30 / (200 + 300) = 3/50.
# Step 2: A = 1/30, B = 1/30 + 3/50 = 7/75, C = 3/50.
EXPECTED = {"A": 1 / 30, "B": 7 / 75, "C": 3 / 50}


def test_textbook_two_step_fca():
    demand = pd.Series([100.0, 200.0, 300.0], index=["A", "B", "C"])
    supply = pd.Series([10.0, 30.0], index=["X", "Y"])
    costs = pd.DataFrame(
        {
            "origin": ["A", "B", "B", "C", "A", "C"],
            "destination": ["X", "X", "Y", "Y", "Y", "X"],
            "cost": [500.0, 500.0, 500.0, 500.0, 1500.0, 1500.0],
        }
    )
    scores = two_step_fca(demand, supply, costs, max_cost=600.0)
    assert scores.to_dict() == pytest.approx(EXPECTED)
    # supply is conserved: population-weighted scores add up to the total supply
    assert float((scores * demand).sum()) == pytest.approx(40.0)


def test_accessibility_from_layers():
    # A, X, B, Y, C on a line 500 m apart; catchment 600 m gives the textbook reach
    units = residential(("A", 0, 0, 100, "S"), ("B", 1000, 0, 200, "S"), ("C", 2000, 0, 300, "S"))
    facs = facilities(("X", "library", 500, 0), ("Y", "library", 1500, 0))
    facs["capacity"] = [10, 30]
    facs["floor_area_m2"] = [100.0, None]
    subs = frame(
        [{"id": "sd", "name": "S", "population": 600, "urban": True, "geometry": rect(-500, -500, 2500, 500)}]
    )
    layers = {"residential": units, "cultural_facilities": facs, "subdistricts": subs}
    result = accessibility(layers, catchment_m=600)
    assert dict(zip(result.units["id"], result.units["score"], strict=True)) == pytest.approx(EXPECTED)
    mean = (100 * EXPECTED["A"] + 200 * EXPECTED["B"] + 300 * EXPECTED["C"]) / 600 * 1000
    assert result.by_subdistrict["mean_score_per_1000"].tolist() == pytest.approx([mean, mean])
    x, w = np.array(list(EXPECTED.values())), np.array([100.0, 200.0, 300.0])
    pairs = sum(w[i] * w[j] * abs(x[i] - x[j]) for i, j in itertools.product(range(3), repeat=2))
    assert result.gini == pytest.approx(pairs / (2 * w.sum() * (w * x).sum()))
    # floor area: only X has one (100 m2), shared by A and B
    by_area = accessibility(layers, catchment_m=600, supply_field="floor_area_m2")
    assert by_area.units["score"].tolist() == pytest.approx([100 / 300, 100 / 300, 0.0])
    with pytest.raises(CivicmapError, match="supply"):
        accessibility(layers, supply_field="seats")


@pytest.mark.parametrize(
    ("values", "weights", "expected"),
    [([1, 1, 1], None, 0.0), ([0, 0, 0, 1], None, 0.75), ([0, 1], [3, 1], 0.75), ([2, 0, 2], [1, 2, 1], 0.5)],
)
def test_gini_by_hand(values, weights, expected):
    # ([0, 1], weights 3:1) is ([0, 0, 0, 1]) with repeated units; ([2, 0, 2], 1:2:1) is [0, 0, 2, 2]
    assert gini(
        np.array(values, dtype=float), None if weights is None else np.array(weights, float)
    ) == pytest.approx(expected)


def test_demo_accessibility(demo_layers, demo_design):
    result = accessibility(demo_layers, catchment_m=1000)
    by = result.by_subdistrict.set_index("subdistrict")
    assert set(demo_design["residential_population"]) <= set(by.index)
    assert 0 < result.gini < 1
    assert (result.units["score"] >= 0).all()
