"""``civicmap coverage`` and ``civicmap site-facilities`` on the demo district."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import cli
from geo.coverage import DISTRICT_TOTAL


def test_coverage_csv_has_the_tables(demo_workspace, demo_design, tmp_path, capsys):
    out = tmp_path / "cov.csv"
    assert (
        cli.main(["coverage", "--workspace", str(demo_workspace.path), "--radius", "800", "-o", str(out)])
        == 0
    )
    table = pd.read_csv(out, encoding="utf-8-sig")
    assert table.columns.tolist() == ["subdistrict", "population", "covered", "share"]
    by = table.set_index("subdistrict")
    for name, population in demo_design["residential_population"].items():
        assert by.loc[name, "population"] == population
    assert by.loc[DISTRICT_TOTAL, "covered"] == by.drop(index=DISTRICT_TOTAL)["covered"].sum()
    uncovered = pd.read_csv(tmp_path / "cov_uncovered.csv", encoding="utf-8-sig")
    assert (
        uncovered["population"].sum()
        == by.loc[DISTRICT_TOTAL, "population"] - by.loc[DISTRICT_TOTAL, "covered"]
    )
    assert (uncovered["distance_m"] > 800).all()
    free = pd.read_csv(tmp_path / "cov_not_free_for_minors.csv", encoding="utf-8-sig")
    assert free["id"].tolist() == demo_design["facilities"]["must_be_free_but_marked_false"]
    assert "800 m" in capsys.readouterr().out


def test_coverage_xlsx_walk_one_type(demo_workspace, demo_layers, tmp_path):
    out = tmp_path / "cov.xlsx"
    args = [
        "coverage",
        "--workspace",
        str(demo_workspace.path),
        "--type",
        "service_point",
        "--walk",
        "-o",
        str(out),
    ]
    assert cli.main(args) == 0
    sheets = pd.read_excel(out, sheet_name=None)
    assert {"coverage", "uncovered", "all_cutoffs", "no_grassroots_centre", "facilities"} <= set(sheets)
    assert sheets["no_grassroots_centre"]["subdistrict"].tolist() == ["白沙乡"]
    row = sheets["coverage"].set_index("subdistrict").loc["白沙乡"]
    assert row["covered"] == 0
    facilities = sheets["facilities"]
    points = demo_layers["cultural_facilities"]
    asked = set(points.loc[points["type"] == "service_point", "id"])
    assert asked <= set(facilities["id"]) <= set(points["id"])  # the type asked (and those "any" counts)
    assert (facilities["reach_m"] > 0).all()


def test_bad_output_and_walk_with_radius(demo_workspace, tmp_path, capsys):
    assert cli.main(["coverage", "--workspace", str(demo_workspace.path), "-o", str(tmp_path / "x.pdf")]) == 2
    assert "x.pdf" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["coverage", "--workspace", str(demo_workspace.path), "--walk", "--radius", "500"])


def test_site_facilities_with_candidates_file(demo_workspace, tmp_path, capsys):
    # two candidates: one in the middle of 白沙乡's villages (from the demo), one far outside the district
    res = demo_workspace.read_all()["residential"]
    baisha = res[res["subdistrict"] == "白沙乡"].geometry.union_all().centroid
    features = [
        {"type": "Feature", "properties": {"name": name}, "geometry": {"type": "Point", "coordinates": xy}}
        for name, xy in (("in baisha", [baisha.x, baisha.y]), ("far away", [114.40, 30.62]))
    ]
    path = tmp_path / "cands.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    out = tmp_path / "sites.csv"
    args = [
        "site-facilities",
        "--workspace",
        str(demo_workspace.path),
        "--type",
        "service_point",
        "--p",
        "2",
        "--candidates",
        str(path),
        "-o",
        str(out),
    ]
    assert cli.main(args) == 0
    sites = pd.read_csv(out, encoding="utf-8-sig")
    assert sites["name"].tolist() == ["in baisha"]  # the far one adds nobody and is not chosen
    assert sites["marginal_population"].iloc[0] > 0
    by = pd.read_csv(tmp_path / "sites_by_subdistrict.csv", encoding="utf-8-sig").set_index("subdistrict")
    assert by.loc["白沙乡", "newly_covered"] == sites["marginal_population"].iloc[0]
    assert "new service_point site" in capsys.readouterr().out
