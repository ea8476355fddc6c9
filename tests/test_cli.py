"""The command line: exit codes, messages without tracebacks, and the files it writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

import cli

ROOT = Path(__file__).resolve().parent.parent


def run(*args, workspace=None, stdin=None):
    argv = [sys.executable, "-c", "import cli, sys; sys.exit(cli.main(sys.argv[1:]))", *args]
    if workspace is not None:
        argv += ["--workspace", str(workspace)]
    return subprocess.run(argv, capture_output=True, text=True, input=stdin, cwd=ROOT, timeout=120)


def write_csv(path, rows, encoding="utf-8-sig"):
    pd.DataFrame(rows).to_csv(path, index=False, encoding=encoding)
    return path


CAFES = [
    {"名称": "星海网吧", "经度": 114.30, "纬度": 30.55, "许可证号": "429901-1", "状态": "正常", "终端数": 80},
    {
        "名称": "蓝天网咖",
        "经度": 114.31,
        "纬度": 30.56,
        "许可证号": "429901-2",
        "状态": "停业整顿",
        "终端数": 120,
    },
]


def test_user_error_prints_the_problem_without_a_traceback(tmp_path):
    bad = write_csv(tmp_path / "net_cafes.csv", [{**CAFES[0], "经度": "abc"}])
    result = run("import", "net_cafes", str(bad), "--crs", "wgs84", workspace=tmp_path / "ws")
    assert result.returncode == 2
    assert "net_cafes.csv row 1: 经度 = 'abc'" in result.stderr
    assert "Traceback" not in result.stderr


def test_csv_without_crs_is_refused(tmp_path):
    path = write_csv(tmp_path / "cafes.csv", CAFES)
    result = run("import", "net_cafes", str(path), workspace=tmp_path / "ws")
    assert result.returncode == 2
    assert "--crs" in result.stderr


def test_import_then_layers_history_export_round_trip(tmp_path):
    ws = tmp_path / "ws"
    path = write_csv(tmp_path / "cafes.csv", CAFES)
    assert cli.main(["import", "net_cafes", str(path), "--crs", "wgs84", "--workspace", str(ws)]) == 0
    listing = run("layers", workspace=ws)
    assert listing.returncode == 0
    assert any(line.split()[:3] == ["net_cafes", "网吧", "2"] for line in listing.stdout.splitlines())
    for suffix in (".xlsx", ".csv", ".geojson"):
        out = tmp_path / f"export{suffix}"
        assert cli.main(["export", "net_cafes", "-o", str(out), "--workspace", str(ws)]) == 0
        # What we export we can import again: same ids, same attributes.
        again = tmp_path / f"again-{suffix[1:]}"
        assert cli.main(["import", "net_cafes", str(out), "--crs", "wgs84", "--workspace", str(again)]) == 0
        from layers.store import Workspace

        a = Workspace.open(ws).read("net_cafes").sort_values("id")
        b = Workspace.open(again).read("net_cafes").sort_values("id")
        assert list(a["id"]) == list(b["id"])
        assert list(b["status"]) == ["licensed", "suspended"] or sorted(b["status"]) == [
            "licensed",
            "suspended",
        ]
        assert shapely.distance(a.geometry.values, b.geometry.values).max() < 1e-6


def test_export_in_gcj02_moves_points_by_the_offset(tmp_path):
    from geo.crs import wgs84_to_gcj02

    ws = tmp_path / "ws"
    cli.main(
        [
            "import",
            "net_cafes",
            str(write_csv(tmp_path / "c.csv", CAFES)),
            "--crs",
            "wgs84",
            "--workspace",
            str(ws),
        ]
    )
    out = tmp_path / "gcj.csv"
    assert cli.main(["export", "net_cafes", "-o", str(out), "--crs", "gcj02", "--workspace", str(ws)]) == 0
    table = pd.read_csv(out, encoding="utf-8-sig").sort_values("名称")
    glon, glat = wgs84_to_gcj02([114.30, 114.31], [30.55, 30.56])  # 星海 sorts before 蓝天
    assert table["经度"].tolist() == pytest.approx(list(glon), abs=1e-7)
    assert table["纬度"].tolist() == pytest.approx(list(glat), abs=1e-7)
    # GeoJSON has no code for GCJ-02: refused rather than mislabelled as WGS84.
    refused = run("export", "net_cafes", "-o", str(tmp_path / "x.geojson"), "--crs", "gcj02", workspace=ws)
    assert refused.returncode == 2
    assert "gcj02" in refused.stderr


def test_partial_import_writes_rejected_rows_next_to_the_file(tmp_path):
    path = write_csv(tmp_path / "cafes.csv", [*CAFES, {**CAFES[0], "名称": "坏行", "纬度": 95.0}])
    result = run("import", "net_cafes", str(path), "--crs", "wgs84", "--partial", workspace=tmp_path / "ws")
    assert result.returncode == 0, result.stderr
    rejected = pd.read_csv(tmp_path / "cafes.rejected.csv", encoding="utf-8-sig")
    assert rejected["名称"].tolist() == ["坏行"]
    assert (
        "纬度" in rejected["reason"].iloc[0] and "outside China" in rejected["reason"].iloc[0]
    )  # English here
    assert "2 valid, 1 rejected" in result.stdout


def test_validate_reports_and_changes_nothing(tmp_path):
    path = write_csv(tmp_path / "cafes.csv", [{**CAFES[0], "状态": "营业中?"}], encoding="gb18030")
    result = run("validate", "net_cafes", str(path), "--crs", "wgs84")
    assert result.returncode == 1
    assert "状态 = '营业中?'" in result.stdout
    assert not (tmp_path / "workspace").exists()


def test_restore_brings_back_the_previous_version(tmp_path):
    ws = tmp_path / "ws"
    cli.main(
        [
            "import",
            "net_cafes",
            str(write_csv(tmp_path / "a.csv", CAFES)),
            "--crs",
            "wgs84",
            "--workspace",
            str(ws),
        ]
    )
    cli.main(
        [
            "import",
            "net_cafes",
            str(write_csv(tmp_path / "b.csv", CAFES[:1])),
            "--crs",
            "wgs84",
            "--workspace",
            str(ws),
        ]
    )
    from layers.store import Workspace

    assert len(Workspace.open(ws).read("net_cafes")) == 1
    assert cli.main(["restore", "net_cafes", "1", "--workspace", str(ws)]) == 0
    assert len(Workspace.open(ws).read("net_cafes")) == 2
    history = run("history", "net_cafes", workspace=ws).stdout
    assert "restore" in history


def test_violations_and_check_site_on_the_demo(demo_workspace, demo_design, tmp_path):
    out = tmp_path / "v.csv"
    ws = str(demo_workspace.path)
    assert cli.main(["violations", "--workspace", ws, "--kind", "net_cafes", "-o", str(out)]) == 0
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM so that Excel in China reads UTF-8
    table = pd.read_csv(out, encoding="utf-8-sig")
    required = ["venue_id", "venue_name", "venue_kind", "site_id", "site_name", "site_kind", "rule", "limit_m",
                "distance_m", "method", "approximate", "recheck", "subdistrict"]  # fmt: skip
    assert set(required) <= set(table.columns)
    assert set(table["venue_kind"]) == {"net_cafes"}
    for case in demo_design["near_school"]:
        row = table[(table["venue_id"] == case["venue_id"]) & (table["site_id"] == case["school_id"])]
        assert row["distance_m"].iloc[0] == pytest.approx(case["distance_m"], abs=0.05)
    geo = tmp_path / "v.geojson"
    assert cli.main(["violations", "--workspace", ws, "-o", str(geo)]) == 0
    lines = gpd.read_file(geo)
    assert set(lines.geom_type) <= {"LineString"}
    assert len(lines) >= len(table)

    case = demo_design["near_school"][0]
    venue = demo_workspace.read("net_cafes").set_index("id").loc[case["venue_id"], "geometry"]
    result = run(
        "check-site", "--lon", str(venue.x), "--lat", str(venue.y), "--json", workspace=demo_workspace.path
    )
    assert result.returncode == 1  # a violation
    answer = json.loads(result.stdout)
    assert answer["verdict"] == "violation"
    school = next(r for r in answer["rules"] if r["rule"] == "net_cafe_school")
    assert case["school_id"] in [c["site_id"] for c in school["conflicts"]]


def test_demo_refuses_to_overwrite_without_force(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "keep.txt").write_text("x")
    result = run("demo", workspace=ws)
    assert result.returncode == 2
    assert "--force" in result.stderr
    assert (ws / "keep.txt").exists()
    kept = run("demo", "--if-missing", workspace=ws)
    assert kept.returncode == 0
    assert (ws / "keep.txt").exists()


def test_user_add_reads_the_password_from_stdin(tmp_path):
    ws = tmp_path / "ws"
    result = run("user", "add", "zhang", "--role", "inspector", workspace=ws, stdin="s3cret-passw0rd\n")
    assert result.returncode == 0, result.stderr
    from layers.store import Workspace
    from webmap.accounts import authenticate

    assert authenticate(Workspace.open(ws), "zhang", "s3cret-passw0rd").role == "inspector"
    token = run("token", "create", "zhang", workspace=ws)
    assert token.stdout.strip().startswith("cm_")
