"""Cell values of a layer file as its schema wants them: text, numbers, categories, yes/no, dates.

Used by :mod:`layers.validate`.  Each function works on a whole column (Arrow and numpy,
without copying the chunks a CSV was read in) and reports what does not fit as masks with
what was expected, rather than raising.
"""

from __future__ import annotations

import unicodedata

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from layers import schema as sch
from layers.errors import Message

_TRUE = ("是", "true", "t", "yes", "y", "1", "有")
_FALSE = ("否", "false", "f", "no", "n", "0", "无")
#: what Arrow's string -> float64 cast accepts (checked in the tests), for finding the bad cells
_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$|^(?i:[+-]?(inf|infinity|nan))$"
_DTYPES = {sch.INT: "Int64", sch.FLOAT: "float64", sch.BOOL: "boolean", sch.DATE: "datetime64[us]"}


def norm(text: object) -> str:
    """Text as headers and choices are matched: NFKC (full-width brackets match), trimmed, lower case."""
    return unicodedata.normalize("NFKC", str(text)).strip().lower()


def plain_value(value: object) -> object:
    """A value fit for a message: numpy scalars unwrapped, missing as None, geometry as short WKT."""
    if isinstance(value, shapely.Geometry):
        text = shapely.to_wkt(value, rounding_precision=7)
        return text if len(text) <= 80 else text[:77] + "..."
    if value is None or (np.ndim(value) == 0 and pd.isna(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _cell_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "isoformat"):
        stamp = pd.Timestamp(value)
        return stamp.date().isoformat() if stamp == stamp.normalize() else stamp.isoformat()
    return str(value)


def text_values(series: pd.Series) -> pd.Series:
    """Stripped strings (dtype ``str``, positional index); empty cells missing; whole numbers without ``.0``."""
    dtype = series.dtype
    if isinstance(dtype, pd.StringDtype):
        arrow = as_arrow(series.array)
    elif pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        arrow = pa.array(series, from_pandas=True).cast(pa.string())
    else:
        arrow = as_arrow(pd.array(series.map(_cell_text, na_action="ignore").to_numpy(), dtype="str"))
    stripped = pc.utf8_trim_whitespace(arrow)
    blank = pc.equal(pc.binary_length(stripped), 0)
    if pc.any(blank).as_py():
        stripped = pc.if_else(blank, pa.scalar(None, stripped.type), stripped)
    return pd.Series(pd.array(stripped, dtype="str"))


def constant_values(f: sch.Field, n: int) -> object:
    """``n`` times the default of a field the file does not have, in the field's dtype."""
    dtype = _DTYPES.get(f.type, "str")
    if dtype == "str":  # built by Arrow: taking from a one-value string array is slow
        text = pa.nulls(n, pa.large_string()) if f.default is None else pa.repeat(str(f.default), n)
        return pd.array(text.cast(pa.large_string()), dtype="str")
    return pd.array([f.default], dtype=dtype).take(np.zeros(n, dtype=np.int64))


def as_arrow(values: object) -> pa.Array | pa.ChunkedArray:
    """A pyarrow array of a Series, ExtensionArray, list or array, as its chunks if it has them (no copy)."""
    return values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(values, from_pandas=True)


def arrow_to_numpy(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A numpy array of an Arrow array of numbers or booleans (nulls as NaN or None)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    return values.to_numpy(zero_copy_only=False)


def number_values(series: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(float values, missing mask, not-a-number mask)."""
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        numbers = series.to_numpy(dtype="float64", na_value=np.nan)
        return numbers, np.isnan(numbers), np.zeros(len(numbers), dtype=bool)
    if isinstance(series.dtype, pd.StringDtype):  # the usual CSV column: every cell a plain number?
        try:  # Arrow refuses surrounding blanks, so success means stripping would change nothing
            raw = as_arrow(series.array)
            numbers = raw.cast(pa.float64())
        except pa.ArrowInvalid:
            pass
        else:
            return arrow_to_numpy(numbers), arrow_to_numpy(raw.is_null()), np.zeros(len(raw), dtype=bool)
    text = as_arrow(text_values(series).array)
    missing = arrow_to_numpy(text.is_null())
    try:
        numbers = text.cast(pa.float64())
        not_number = np.zeros(len(text), dtype=bool)
    except pa.ArrowInvalid:  # some cells are not numbers: find them
        ok = pc.fill_null(pc.match_substring_regex(text, _NUMBER), False)
        numbers = pc.if_else(ok, text, None).cast(pa.float64())
        not_number = ~missing & ~arrow_to_numpy(ok)
    return arrow_to_numpy(numbers), missing, not_number


def _codes(series: pd.Series, table: dict[str, int], size: int) -> np.ndarray:
    """Index into the choices of each cell (matched like headers): -1 missing or blank, ``size`` unknown.

    Text columns are factorised as they are (the few distinct values are then stripped and
    matched), other columns after :func:`text_values` (so that a spreadsheet's 1.0 reads as 1).
    """
    text = series if isinstance(series.dtype, pd.StringDtype) else text_values(series)
    codes, uniques = pd.factorize(text)
    mapped = np.array([table.get(norm(u), size) if norm(u) else -1 for u in uniques] + [-1], dtype=np.int64)
    return mapped[codes]


def _typed(values: pd.Series, f: sch.Field) -> object:
    """Values as a positional array of the field's dtype, missing ones set to the field's default."""
    if f.default is not None:
        values = values.fillna(f.default)
    dtype = _DTYPES.get(f.type, "str")
    return values.astype(dtype).to_numpy() if dtype == "float64" else values.astype(dtype).array


def convert_column(
    series: pd.Series, f: sch.Field
) -> tuple[object, np.ndarray, list[tuple[np.ndarray, str]]]:
    """(typed values, missing mask, [(bad mask, expectation)]) of one column."""
    checks: list[tuple[np.ndarray, str]] = []
    if f.type in (sch.INT, sch.FLOAT):
        numbers, missing, not_number = number_values(series)
        ok = np.isfinite(numbers)
        checks.append((not_number, Message("not a number")))
        checks.append((~missing & ~not_number & ~ok, Message("not a finite number")))
        if f.type == sch.INT:
            fractional = ok & ((numbers != np.floor(numbers)) | (np.abs(numbers) > 2**53))
            checks.append((fractional, Message("not an integer (a whole number)")))
            ok &= ~fractional
        if f.min_value is not None:
            low = ok & (numbers < f.min_value)
            too_low = (
                Message("must not be negative")
                if f.min_value == 0
                else Message("must be ≥ {low}", low=format(f.min_value, "g"))
            )
            checks.append((low, too_low))
            ok &= ~low
        return _typed(pd.Series(np.where(ok, numbers, np.nan)), f), missing, checks
    if f.type in (sch.CATEGORY, sch.BOOL):
        if f.type == sch.CATEGORY:
            choices = list(f.choices)
            table = {norm(v): i for i, (c, sp) in enumerate(f.choices.items()) for v in (c, *sp)}
            expected = Message("unknown value; allowed: {allowed}", allowed=f.allowed_text())
        else:
            choices = [False, True]
            table = {**dict.fromkeys(_FALSE, 0), **dict.fromkeys(_TRUE, 1)}
            expected = Message("expected yes or no: 是/否, true/false, 1/0, Y/N")
        codes = _codes(series, table, len(choices))
        checks.append((codes == len(choices), expected))
        options = pd.array([*choices, None], dtype=_DTYPES.get(f.type, "str"))
        return _typed(pd.Series(options.take(codes % len(options))), f), codes == -1, checks
    text = text_values(series)
    missing = text.isna().to_numpy()
    if f.type == sch.DATE:
        cleaned = text.str.replace(r"(\d)\s*[年月]\s*", r"\1-", regex=True).str.replace("日", "", regex=False)
        stamps = pd.to_datetime(cleaned, errors="coerce", format="mixed")
        checks.append((~missing & stamps.isna().to_numpy(), Message("not a date (e.g. 2024-05-31)")))
        return _typed(stamps, f), missing, checks
    return _typed(text, f), missing, checks
