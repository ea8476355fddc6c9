"""Helpers for the layer tests: write tiny input files in ``tmp_path`` and validate them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest

from layers.readers import read_table
from layers.validate import ValidationResult, validate_table


def write_text(path: Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` as a file in ``encoding`` (no newline translation) and return its path."""
    path.write_bytes(text.encode(encoding))
    return path


def write_xlsx(path: Path, rows: list[list[object]], sheet: str = "Sheet1") -> Path:
    """Write ``rows`` (the header first) to the single sheet of a new workbook."""
    book = openpyxl.Workbook()
    book.active.title = sheet
    for row in rows:
        book.active.append(row)
    book.save(path)
    return path


def check(path: Path, kind: str, *, crs: str | None = None, layer: str | None = None) -> ValidationResult:
    """Read and validate, and check that no row vanished."""
    raw = read_table(path, layer=layer)
    result = validate_table(raw, kind, crs=crs)
    assert len(result.valid) + len(result.rejected) == raw.rows
    return result


@pytest.fixture
def csv_file(tmp_path: Path) -> Callable[..., Path]:
    """``csv_file(text, name="t.csv", encoding="utf-8")`` -> path."""

    def make(text: str, name: str = "t.csv", encoding: str = "utf-8") -> Path:
        return write_text(tmp_path / name, text, encoding)

    return make


@pytest.fixture
def xlsx_file(tmp_path: Path) -> Callable[..., Path]:
    """``xlsx_file(rows, name="t.xlsx", sheet="Sheet1")`` -> path."""

    def make(rows: list[list[object]], name: str = "t.xlsx", sheet: str = "Sheet1") -> Path:
        return write_xlsx(tmp_path / name, rows, sheet)

    return make


@pytest.fixture(name="check")
def check_fixture() -> Callable[..., ValidationResult]:
    """``check(path, kind, crs=None, layer=None)``: read, validate, assert no row vanished."""
    return check
