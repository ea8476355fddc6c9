"""Real Xi'an data (tests/data/real, see SOURCE.md): BD-09 and GCJ-02 inputs land on WGS84."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
import shapely

GEOD = pyproj.Geod(ellps="WGS84")
REAL = Path(__file__).resolve().parents[1] / "data" / "real"


def _distances_m(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    _, _, dist = GEOD.inv(a[:, 0], a[:, 1], b[:, 0], b[:, 1])
    return np.abs(dist)


def test_baidu_net_cafes_from_bd09_land_on_their_wgs84_positions(tmp_path: Path, check) -> None:
    excerpt = pd.read_csv(REAL / "xian_net_cafes_excerpt.csv", dtype=str)
    assert len(excerpt) == 40
    # the file as a bureau would get it from Baidu: BD-09 in lng/lat columns; WGS84 kept as extra columns
    baidu = excerpt.rename(columns={"bd09_lng": "lng", "bd09_lat": "lat"})
    path = tmp_path / "baidu.csv"
    baidu.to_csv(path, index=False, encoding="utf-8-sig")
    result = check(path, "net_cafes", crs="bd09")
    assert result.problems == [] and result.encoding == "utf-8-sig"
    valid = result.valid
    assert valid["name"].tolist() == excerpt["name"].tolist()
    got = shapely.get_coordinates(valid.geometry.array)
    expected = np.column_stack([valid["wgs84_lon"].astype(float), valid["wgs84_lat"].astype(float)])
    assert _distances_m(got, expected).max() < 0.5
    # and the offset that was removed is the real 100–700+ m trap, not a rounding
    raw = np.column_stack([baidu["lng"].astype(float), baidu["lat"].astype(float)])
    assert _distances_m(raw, expected).min() > 100


def test_datav_gcj02_outline_lands_on_the_wgs84_outline(check) -> None:
    gcj = check(REAL / "xian_beilin_gcj02.geojson", "subdistricts", crs="gcj02")
    wgs = check(REAL / "xian_beilin_wgs84.geojson", "subdistricts")  # declares CRS84 itself
    assert gcj.problems == [] and wgs.problems == []
    assert gcj.valid["name"].tolist() == wgs.valid["name"].tolist() == ["碑林区"]
    converted = shapely.get_coordinates(gcj.valid.geometry.array)
    reference = shapely.get_coordinates(wgs.valid.geometry.array)
    assert len(converted) == len(reference) == 43
    assert _distances_m(converted, reference).max() < 0.5
    # read as WGS84 without saying it is GCJ-02, the same file is hundreds of metres off
    unconverted = shapely.get_coordinates(
        check(REAL / "xian_beilin_gcj02.geojson", "subdistricts").valid.geometry.array
    )
    assert _distances_m(unconverted, reference).min() > 100
