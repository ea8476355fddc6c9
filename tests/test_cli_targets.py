"""``civicmap targets`` and ``civicmap case`` on a copy of the demo district: files written and read back, errors."""

from __future__ import annotations

import csv
import json
import sys
import types

import pytest
from openpyxl import load_workbook

import cli
from layers.cases import CaseBook
from layers.store import Workspace


def main(*args) -> int:
    return cli.main(list(args))


@pytest.mark.slow
def test_targets_xlsx_csv_geojson(demo_copy, tmp_path, capsys, demo_layers, demo_design):
    assert main("targets", "--workspace", str(demo_copy), "-o", str(tmp_path / "t.xlsx"), "--by", "team") == 0
    out = capsys.readouterr().out
    count = int(out.split(" ")[0])
    book = load_workbook(tmp_path / "t.xlsx")
    assert book.sheetnames[0] == "汇总" and book.sheetnames[-1] == "全部目标"
    assert book["全部目标"].max_row == count + 1
    names = {book["全部目标"].cell(row=r, column=2).value for r in range(2, count + 2)}
    venue_names = {
        n for kind in ("net_cafes", "game_venues", "entertainment_venues") for n in demo_layers[kind]["name"]
    }
    leads = demo_layers["pois"].set_index("id").loc[demo_design["pois"]["leads"], "name"]
    assert names and names <= venue_names | set(leads)  # registered venues and the designed unlicensed leads
    assert names & set(leads)

    assert main("targets", "--workspace", str(demo_copy), "-o", str(tmp_path / "t.csv")) == 0
    rows = list(csv.reader((tmp_path / "t.csv").read_text(encoding="utf-8-sig").splitlines()))
    assert len(rows) == count + 1 and rows[1][0] == "1"

    assert (
        main("targets", "--workspace", str(demo_copy), "--team", "三中队", "-o", str(tmp_path / "t.geojson"))
        == 0
    )
    features = json.loads((tmp_path / "t.geojson").read_text(encoding="utf-8"))["features"]
    assert features and {f["properties"]["team"] for f in features} == {"三中队"}
    # every run keeps the same cases: one per target venue
    cases = CaseBook(Workspace.open(demo_copy)).cases()
    assert len(cases) == count


def test_unknown_team_is_a_user_error(demo_copy, capsys):
    assert main("targets", "--workspace", str(demo_copy), "--team", "九中队") == 2
    assert "--team '九中队'" in capsys.readouterr().err


@pytest.mark.slow
def test_case_update_and_history(demo_copy, capsys):
    main("targets", "--workspace", str(demo_copy))
    capsys.readouterr()
    assert (
        main("case", "1", "assigned", "--workspace", str(demo_copy), "--user", "王五", "--note", "派单") == 0
    )
    assert main("case", "1", "inspected", "--workspace", str(demo_copy), "--user", "王五",
                "--surveyed-m", "185", "--report", "测-9") == 0  # fmt: skip
    assert main("case", "1", "closed", "--workspace", str(demo_copy), "--user", "王五") == 0
    capsys.readouterr()
    assert main("case", "1", "--workspace", str(demo_copy)) == 0
    out = capsys.readouterr().out
    assert "王五 (cli)" in out and "new → assigned" in out and "surveyed 185 m (测-9)" in out
    assert main("case", "1", "dismissed", "--workspace", str(demo_copy)) == 2
    assert "cannot go from closed to dismissed" in capsys.readouterr().err


def test_pdf_goes_through_the_inspection_sheet_module(demo_copy, tmp_path, monkeypatch):
    calls = {}

    def write_inspection_pdf(targets, path, *, layers):
        calls.update(n=len(targets), path=path, kinds=set(layers))
        path.write_bytes(b"%PDF-1.4\n")
        return path

    monkeypatch.setitem(
        sys.modules, "layers.inspection_pdf", types.SimpleNamespace(write_inspection_pdf=write_inspection_pdf)
    )
    assert main("targets", "--workspace", str(demo_copy), "-o", str(tmp_path / "t.pdf")) == 0
    assert calls["n"] > 0 and calls["path"] == tmp_path / "t.pdf" and "schools" in calls["kinds"]


def test_targets_pdf_holds_one_sheet_per_target_with_its_names(demo_copy, tmp_path, capsys):
    from pypdf import PdfReader

    out = tmp_path / "team3.pdf"
    assert main("targets", "--workspace", str(demo_copy), "--team", "三中队", "-o", str(out)) == 0
    count = int(capsys.readouterr().out.split(" ")[0])
    geojson = tmp_path / "team3.geojson"
    assert main("targets", "--workspace", str(demo_copy), "--team", "三中队", "-o", str(geojson)) == 0
    names = [f["properties"]["name"] for f in json.loads(geojson.read_text(encoding="utf-8"))["features"]]
    pages = [page.extract_text() for page in PdfReader(out).pages]
    sheets = [text for text in pages if "现场检查单" in text]
    assert len(names) == count and len(sheets) == count
    for name, sheet in zip(names, sheets, strict=True):
        assert name in sheet.replace(" ", "")
