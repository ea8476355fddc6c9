"""``civicmap quota`` and ``civicmap scenario`` on a copy of the demo district: files, columns, errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow  # each command starts a Python and reads the demo district


def run(*args):
    argv = [sys.executable, "-c", "import cli, sys; sys.exit(cli.main(sys.argv[1:]))", *args]
    return subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=300)


@pytest.fixture(scope="module")
def ws(demo_workspace, tmp_path_factory):
    path = tmp_path_factory.mktemp("cliquota") / "ws"
    shutil.copytree(demo_workspace.path, path)
    return str(path)


def test_quota_by_ratio_to_csv_with_zones(ws, tmp_path):
    out, zones = tmp_path / "quota.csv", tmp_path / "zones.geojson"
    done = run("quota", "--workspace", ws, "--per-residents", "12000", "-o", str(out), "--zones", str(zones))
    assert done.returncode == 0, done.stderr
    assert "全区配额29家" in done.stdout  # 350,000 residents / 12,000 = 29.2
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM for Excel
    table = pd.read_csv(out, encoding="utf-8-sig")
    for column in ("subdistrict", "population", "area_km2", "cafes", "terminals", "cafes_per_10k",
                   "permissible_km2", "quota", "headroom"):  # fmt: skip
        assert column in table.columns
    assert len(table) == 9 and table["quota"].iloc[:-1].sum() == 29 == table["quota"].iloc[-1]
    assert len(json.loads(zones.read_text(encoding="utf-8"))["features"]) == 8


def test_quota_by_cap_to_xlsx(ws, tmp_path):
    out = tmp_path / "quota.xlsx"
    done = run("quota", "--workspace", ws, "--cap", "60", "-o", str(out))
    assert done.returncode == 0, done.stderr
    book = openpyxl.load_workbook(out)
    assert book.sheetnames == ["quota", "relocation", "summary"]
    quota = pd.read_excel(out, sheet_name="quota")
    assert quota["quota"].iloc[:-1].sum() == 60
    assert len(pd.read_excel(out, sheet_name="relocation")) == 17  # the licensed cafés breaking a rule


def test_quota_user_errors_exit_2(ws, tmp_path):
    both = run(
        "quota", "--workspace", ws, "--cap", "60", "--per-residents", "1000", "-o", str(tmp_path / "q.csv")
    )
    assert both.returncode == 2 and "not allowed with" in both.stderr
    bad = run("quota", "--workspace", ws, "--cap", "60", "-o", str(tmp_path / "q.pdf"))
    assert bad.returncode == 2 and "use .csv or .xlsx" in bad.stderr and "Traceback" not in bad.stderr


def test_scenario_sweep_with_chart(ws, tmp_path):
    out, chart = tmp_path / "sweep.csv", tmp_path / "sweep.svg"
    done = run(
        "scenario", "--workspace", ws, "--limits", "100,200,300", "-o", str(out), "--chart", str(chart)
    )
    assert done.returncode == 0, done.stderr
    frame = pd.read_csv(out, encoding="utf-8-sig")
    assert list(frame["limit_m"]) == [100, 200, 300]
    assert frame.loc[frame["limit_m"] == 200, "affected"].item() == 17
    assert frame["affected"].is_monotonic_increasing
    assert b"<svg" in chart.read_bytes()
    bad = run("scenario", "--workspace", ws, "--limits", "100,abc", "-o", str(out))
    assert bad.returncode == 2 and "--limits" in bad.stderr
