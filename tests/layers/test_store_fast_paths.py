"""The vectorised shortcuts behind fast imports give exactly what the plain pandas way gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from layers import cells as layer_cells
from layers import ids
from layers.ids import duplicated


def _plain_duplicated(values: pd.Series) -> list[bool]:
    return (values.duplicated(keep=False) & values.notna()).tolist()


@pytest.mark.parametrize(
    "values",
    [
        ["a", "b", None, "a", "ab", "b", None, "c", "a" * 17, "a" * 17, "a" * 16, "", ""],
        ["网吧1", "网吧１", "网吧1", "nc-1", "nc-1 ", "NC-1"],  # only exact repeats count
        [],
        [None, None],
    ],
)
def test_duplicated_marks_every_repeat_like_pandas(values):
    series = pd.Series(values, dtype="str")
    assert duplicated(series).tolist() == _plain_duplicated(series)


def test_duplicated_hand_worked():
    series = pd.Series(["x", "y", "x", None, None, "z", "y"], dtype="str")
    assert duplicated(series).tolist() == [True, True, True, False, False, False, True]


def test_duplicated_compares_exactly_when_hashes_collide(monkeypatch):
    # every value hashing alike: the exact comparison alone must decide
    monkeypatch.setattr(ids, "stable_hash", lambda values: np.zeros(len(values), dtype=np.uint64))
    series = pd.Series(["p", "q", "p", "r", None, "q"], dtype="str", index=[5, 6, 7, 8, 9, 10])
    assert duplicated(series).tolist() == [True, True, True, False, False, True]


def test_duplicated_on_many_unique_ids_and_one_repeat():
    ids = pd.Series([f"nc-{i}" for i in range(50_000)], dtype="str")
    assert not duplicated(ids).any()
    ids.iloc[49_999] = "nc-17"
    assert np.flatnonzero(duplicated(ids)).tolist() == [17, 49_999]


@pytest.mark.parametrize(
    "cells",
    [
        pd.Series(["  a ", "", "   ", None, "\u3000全角空格\u3000", "b\tc", "\n"], dtype="str"),
        pd.Series([1.0, 2.5, np.nan, 1e6]),
        pd.Series([1, 2, 3], dtype="Int64"),
        pd.Series(["x ", 3, 4.0, None, pd.Timestamp("2024-05-31")], dtype=object),
    ],
)
def test_text_strips_blanks_to_missing_like_the_pandas_string_methods(cells):
    got = layer_cells.text_values(cells)
    if isinstance(cells.dtype, pd.StringDtype):
        plain = cells.reset_index(drop=True)
    elif pd.api.types.is_numeric_dtype(cells.dtype):
        plain = pd.Series(
            cells.map(lambda v: str(int(v)) if float(v).is_integer() else str(v), na_action="ignore")
        )
        plain = plain.astype("str")
    else:
        plain = pd.Series(cells.map(layer_cells._cell_text, na_action="ignore").to_numpy(), dtype="str")
    plain = plain.str.strip()
    plain = plain.where(plain.str.len() > 0)
    assert str(got.dtype) == "str"
    assert got.isna().tolist() == plain.isna().tolist()
    assert got.dropna().tolist() == plain.dropna().tolist()


def test_text_by_hand():
    got = layer_cells.text_values(pd.Series([" 网吧 ", "", "\u3000", None, "a b"], dtype="str"))
    assert got.tolist()[0] == "网吧" and got.tolist()[4] == "a b"
    assert got.isna().tolist() == [False, True, True, True, False]


def test_numbers_of_plain_number_text_skip_stripping_and_agree_with_the_stripping_path():
    clean = pd.Series(["108.95", None, "-1.5e2", "inf", "7"], dtype="str")
    padded = pd.Series([" 108.95", None, "-1.5e2 ", "inf", "\u30007"], dtype="str")  # only the slow path
    fast, slow = layer_cells.number_values(clean), layer_cells.number_values(padded)
    assert fast[0].tolist()[0] == 108.95 and fast[0].tolist()[2:] == [-150.0, np.inf, 7.0]
    for got, want in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(got, want)
    assert fast[1].tolist() == [False, True, False, False, False]
    assert not fast[2].any()


def test_numbers_report_blank_and_bad_cells_after_a_failed_fast_cast():
    numbers, missing, not_number = layer_cells.number_values(pd.Series(["1", "   ", "x1", None], dtype="str"))
    assert numbers[0] == 1.0 and np.isnan(numbers[1:]).all()
    assert missing.tolist() == [False, True, False, True]
    assert not_number.tolist() == [False, False, True, False]
