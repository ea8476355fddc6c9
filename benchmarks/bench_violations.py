"""Benchmark: venues within 200 m of school campuses, national scale, exact distances.

    .venv/bin/python benchmarks/bench_violations.py                 # 300k campuses x 1M venues
    .venv/bin/python benchmarks/bench_violations.py --scale small   # 30k x 100k, ~1 min
    .venv/bin/python benchmarks/bench_violations.py --postgis       # + PostGIS geography (see README)

Synthetic, seeded data spread over China (cities from Mohe to Sanya, Kashgar to Fuyuan) is
written once as WGS84 GeoParquet.  Each implementation then runs in its own process, from
reading the GeoParquet to a pair table with distances in metres ("end to end"):

``civicmap``      geo.distance.pairs_within: 1° bands, STRtree dwithin, geodesic distances
``gpd_utm``       geopandas: one UTM zone (estimate_utm_crs) + sjoin(dwithin) + distance
``buffer_sjoin``  the QGIS habit: buffer 200 m (5 segments per quarter) in that zone + sjoin
``duckdb``        DuckDB spatial: ST_Transform to that zone, JOIN ON ST_DWithin, 2 threads
``postgis_geog``  PostGIS ST_DWithin on geography (spheroid); load excluded, only with --postgis

It prints each time, civicmap's time over each peer's, and which pairs each peer misses or
adds against civicmap, with their geodesic distances.  ``--accuracy`` compares civicmap's
distances, and the band-projected distances, with a brute-force geodesic on a sample.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LIMIT_M = 200.0
SCALES = {"full": (300_000, 1_000_000), "small": (30_000, 100_000), "tiny": (3_000, 10_000)}
DEFAULT_DIR = Path(os.environ.get("CIVICMAP_BENCH_DIR", "/tmp/civicmap-bench"))

# (name, lon, lat, weight): big cities, provincial capitals and the corners of the country
CITIES = [
    ("Shanghai", 121.47, 31.23, 25), ("Beijing", 116.40, 39.90, 22), ("Chengdu", 104.07, 30.57, 21),
    ("Chongqing", 106.55, 29.56, 20), ("Guangzhou", 113.26, 23.13, 18), ("Shenzhen", 114.06, 22.54, 17),
    ("Wuhan", 114.30, 30.59, 13), ("Xian", 108.94, 34.34, 13), ("Tianjin", 117.20, 39.13, 13),
    ("Hangzhou", 120.16, 30.27, 12), ("Zhengzhou", 113.63, 34.75, 12), ("Shijiazhuang", 114.51, 38.04, 11),
    ("Harbin", 126.53, 45.80, 10), ("Changsha", 112.94, 28.23, 10), ("Qingdao", 120.38, 36.07, 10),
    ("Nanjing", 118.80, 32.06, 9), ("Shenyang", 123.43, 41.80, 9), ("Changchun", 125.32, 43.82, 9),
    ("Jinan", 117.00, 36.67, 9), ("Hefei", 117.23, 31.82, 9), ("Kunming", 102.83, 24.88, 8),
    ("Nanning", 108.37, 22.82, 8), ("Fuzhou", 119.30, 26.08, 8), ("Dalian", 121.61, 38.91, 7),
    ("Guiyang", 106.63, 26.65, 6), ("Nanchang", 115.86, 28.68, 6), ("Taiyuan", 112.55, 37.87, 5),
    ("Xiamen", 118.09, 24.48, 5), ("Lanzhou", 103.83, 36.06, 4), ("Urumqi", 87.62, 43.83, 4),
    ("Hohhot", 111.75, 40.84, 3), ("Yinchuan", 106.23, 38.49, 3), ("Haikou", 110.32, 20.03, 3),
    ("Xining", 101.78, 36.62, 2), ("Kashgar", 76.00, 39.50, 2), ("Sanya", 109.50, 18.25, 1.5),
    ("Lhasa", 91.10, 29.65, 1), ("Mohe", 122.40, 53.50, 0.4), ("Fuyuan", 134.30, 48.40, 0.4),
]  # fmt: skip
LEVELS = np.array(["kindergarten", "primary", "middle", "high", "vocational"])
KINDS = np.array(["net_cafe", "game_venue", "esports_hotel"])
CELL_M = 700.0  # one campus per grid cell: campuses (≤ 400 m a side) never overlap


# ------------------------------------------------------------------ synthetic national data
def _city_schools(rng: np.random.Generator, n: int, half: float) -> tuple[np.ndarray, ...]:
    """Campus centres on a jittered grid (one per cell), clustered around districts."""
    n_dist = max(3, n // 150)
    dc = rng.uniform(-0.8 * half, 0.8 * half, (n_dist, 2))
    dsig = rng.uniform(2000.0, 5000.0, n_dist)
    dw = rng.pareto(1.5, n_dist) + 1.0
    cells = np.empty(0, dtype="int64")
    side = int(2 * half // CELL_M)
    while cells.size < n:
        m = 2 * n + 64
        k = rng.choice(n_dist, m, p=dw / dw.sum())
        clustered = rng.random(m) < 0.55
        xy = np.where(clustered[:, None], dc[k] + rng.normal(0, 1, (m, 2)) * dsig[k, None],
                      rng.uniform(-half, half, (m, 2)))  # fmt: skip
        ij = np.floor((xy + half) / CELL_M).astype("int64")
        ok = np.all((ij >= 0) & (ij < side), axis=1)
        cand = np.concatenate([cells, ij[ok, 0] * side + ij[ok, 1]])
        _, first = np.unique(cand, return_index=True)
        cells = cand[np.sort(first)][:n]
    cx = (cells // side + 0.5) * CELL_M - half + rng.uniform(-55, 55, n)
    cy = (cells % side + 0.5) * CELL_M - half + rng.uniform(-55, 55, n)
    return cx, cy


def _campus_rings(rng: np.random.Generator, cx: np.ndarray, cy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotated rectangles or L shapes, 100–400 m a side, as closed 7-point rings (metres)."""
    n = cx.size
    a = np.clip(np.exp(rng.normal(math.log(170.0), 0.35, n)), 100.0, 400.0)
    b = np.clip(a * rng.uniform(0.6, 1.4, n), 100.0, 400.0)
    hx, hy = a / 2, b / 2
    cut = rng.random(n) < 0.25
    xc = np.where(cut, hx - 2 * hx * rng.uniform(0.35, 0.6, n), hx / 3)
    yc = np.where(cut, hy - 2 * hy * rng.uniform(0.35, 0.6, n), hy)
    x = np.stack([-hx, hx, hx, xc, np.where(cut, xc, -hx / 3), -hx, -hx], axis=1)
    y = np.stack([-hy, -hy, yc, yc, hy, hy, -hy], axis=1)
    theta = rng.uniform(0, math.pi / 2, n)[:, None]
    xr = cx[:, None] + x * np.cos(theta) - y * np.sin(theta)
    yr = cy[:, None] + x * np.sin(theta) + y * np.cos(theta)
    return np.stack([xr, yr], axis=2), np.hypot(hx, hy)


def _city_venues(rng, m: int, half: float, cx, cy, reach) -> tuple[np.ndarray, np.ndarray]:
    """65 % around commercial hubs, 15 % just around a campus, 20 % anywhere in the city."""
    n_hub = max(4, m // 200)
    hub = rng.uniform(-0.9 * half, 0.9 * half, (n_hub, 2))
    hsig = rng.uniform(150.0, 900.0, n_hub)
    hw = rng.pareto(1.2, n_hub) + 1.0
    u = rng.random(m)
    xy = rng.uniform(-half, half, (m, 2))
    at_hub = u < 0.65
    k = rng.choice(n_hub, int(at_hub.sum()), p=hw / hw.sum())
    xy[at_hub] = hub[k] + rng.normal(0, 1, (k.size, 2)) * hsig[k, None]
    near = (u >= 0.65) & (u < 0.80)
    s = rng.integers(0, cx.size, int(near.sum()))
    r = reach[s] * 0.6 + rng.uniform(0.0, 350.0, s.size)
    ang = rng.uniform(0, 2 * math.pi, s.size)
    xy[near] = np.column_stack([cx[s] + r * np.cos(ang), cy[s] + r * np.sin(ang)])
    return np.clip(xy[:, 0], -half, half), np.clip(xy[:, 1], -half, half)


def generate(n_sites: int, n_venues: int, seed: int = 7):
    """Campus polygons and venue points over China (GeoDataFrames, WGS84)."""
    import geopandas as gpd
    import shapely
    from pyproj import Transformer

    rng = np.random.default_rng(seed)
    w = np.array([c[3] for c in CITIES], dtype=float)
    n_s = np.maximum(2, np.round(1.02 * n_sites * w / w.sum())).astype(int)  # 2 % spare: see below
    n_v = np.maximum(1, np.round(n_venues * w / w.sum())).astype(int)
    n_v[0] += n_venues - n_v.sum()
    polys, points = [], []
    for (_, lon, lat, _), ns, nv in zip(CITIES, n_s, n_v, strict=True):
        half = 15_000.0 * math.sqrt(ns / 1000.0) + 2_000.0
        cx, cy = _city_schools(rng, int(ns), half)
        rings, reach = _campus_rings(rng, cx, cy)
        vx, vy = _city_venues(rng, int(nv), half, cx, cy, reach)
        to_ll = Transformer.from_crs(
            f"+proj=aeqd +lat_0={lat} +lon_0={lon} +ellps=WGS84", 4326, always_xy=True
        )
        rl = np.stack(to_ll.transform(rings[..., 0], rings[..., 1]), axis=-1)
        polys.append(shapely.polygons(np.round(rl, 7)))
        points.append(np.round(np.column_stack(to_ll.transform(vx, vy)), 7))
    polys_all, pts = np.concatenate(polys), np.concatenate(points)
    # neighbouring cities (Guangzhou/Shenzhen, Beijing/Tianjin) overlap: drop campuses closer
    # than ~10 m to an earlier one, then keep exactly n_sites of the rest
    a, b = shapely.STRtree(polys_all).query(polys_all, predicate="dwithin", distance=1e-4)
    ok = np.ones(polys_all.size, dtype=bool)
    ok[np.unique(np.maximum(a, b)[a != b])] = False
    polys_all = polys_all[np.sort(rng.choice(np.flatnonzero(ok), n_sites, replace=False))]
    sites = gpd.GeoDataFrame(
        {"id": [f"S{i:06d}" for i in range(polys_all.size)], "level": rng.choice(LEVELS, polys_all.size)},
        geometry=polys_all, crs="EPSG:4326")  # fmt: skip
    venues = gpd.GeoDataFrame(
        {"id": [f"V{i:07d}" for i in range(len(pts))], "kind": rng.choice(KINDS, len(pts))},
        geometry=gpd.points_from_xy(pts[:, 0], pts[:, 1]), crs="EPSG:4326")  # fmt: skip
    return sites, venues


def ensure_data(scale: str, root: Path) -> Path:
    folder = root / f"national-{scale}"
    if not (folder / "venues.parquet").exists():
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        sites, venues = generate(*SCALES[scale])
        sites.to_parquet(folder / "sites.parquet", index=False)
        venues.to_parquet(folder / "venues.parquet", index=False)
        b = sites.total_bounds
        print(f"generated {len(sites):,} campuses, {len(venues):,} venues, lon {b[0]:.2f}..{b[2]:.2f} "
              f"lat {b[1]:.2f}..{b[3]:.2f} in {time.perf_counter() - t0:.1f} s -> {folder}")  # fmt: skip
    return folder


# ------------------------------------------------------------------ implementations (one per process)
def _read(folder: Path):
    """Both layers, with the cyclic GC paused while 1.3M geometry objects are made.

    Every Python implementation reads through here; the pause cuts geopandas.read_parquet
    from ~2.6 s to ~0.9 s at full scale (the GC otherwise rescans all objects repeatedly).
    """
    import gc

    import geopandas as gpd

    gc.disable()
    try:
        return gpd.read_parquet(folder / "sites.parquet"), gpd.read_parquet(folder / "venues.parquet")
    finally:
        gc.enable()


def _pairs(vi, si, dist):
    import pandas as pd

    return pd.DataFrame({"venue_index": np.asarray(vi, "int64"), "site_index": np.asarray(si, "int64"),
                         "distance_m": np.asarray(dist, "float64")})  # fmt: skip


def run_civicmap(folder: Path, args, workers: int | None = None) -> tuple:
    from geo.distance import pairs_within

    t0 = time.perf_counter()
    sites, venues = _read(folder)
    t1 = time.perf_counter()
    out = pairs_within(venues, sites, LIMIT_M, workers=workers or args.workers)
    t2 = time.perf_counter()
    return out[["venue_index", "site_index", "distance_m"]], {"read_s": t1 - t0, "pairs_within_s": t2 - t1}


def run_utm_join(folder: Path, args, buffer_segments: int | None = None) -> tuple:
    """geopandas in one UTM zone: sjoin dwithin, or (QGIS habit) buffer the campuses + sjoin intersects."""
    import geopandas as gpd
    import shapely

    t0 = time.perf_counter()
    sites, venues = _read(folder)
    t1 = time.perf_counter()
    crs = sites.estimate_utm_crs()
    s, v = sites.to_crs(crs), venues.to_crs(crs)
    t2 = time.perf_counter()
    if buffer_segments is None:
        j = gpd.sjoin(v[["geometry"]], s[["geometry"]], predicate="dwithin", distance=LIMIT_M)
    else:
        buf = gpd.GeoDataFrame(geometry=s.buffer(LIMIT_M, quad_segs=buffer_segments), crs=crs)
        j = gpd.sjoin(v[["geometry"]], buf, predicate="intersects")
    vi, si = j.index.to_numpy(), j["index_right"].to_numpy()
    t3 = time.perf_counter()
    d = shapely.distance(v.geometry.array[vi], s.geometry.array[si])  # a QGIS user would not have these
    t4 = time.perf_counter()
    phases = {"read_s": t1 - t0, "to_crs_s": t2 - t1, "join_s": t3 - t2, "distance_s": t4 - t3}
    return _pairs(vi, si, d), phases | {"crs": crs.to_string()}


def _utm_epsg(folder: Path) -> int:
    """The zone geopandas' estimate_utm_crs picks, from the GeoParquet bbox (no geometry read)."""
    import pyarrow.parquet as pq
    from pyproj.aoi import AreaOfInterest
    from pyproj.database import query_utm_crs_info

    meta = json.loads(pq.read_schema(folder / "sites.parquet").metadata[b"geo"])
    x0, y0, x1, y1 = meta["columns"][meta["primary_column"]]["bbox"]
    aoi = AreaOfInterest((x0 + x1) / 2, (y0 + y1) / 2, (x0 + x1) / 2, (y0 + y1) / 2)
    return int(query_utm_crs_info(datum_name="WGS 84", area_of_interest=aoi)[0].code)


def duckdb_connect():
    """DuckDB with the spatial extension, offline: PyPI's duckdb-ext-spatial ships the binary."""
    import glob

    import duckdb

    con = duckdb.connect()
    try:
        con.execute("LOAD spatial")
    except duckdb.Error:
        import duckdb_ext

        pattern = f"extensions/v{duckdb.__version__}/*/spatial.duckdb_extension"
        hits = [h for p in duckdb_ext.__path__ for h in glob.glob(os.path.join(p, pattern))]
        if not hits:
            raise RuntimeError(
                "no DuckDB spatial extension: pip install 'duckdb==1.4.4' duckdb-ext-spatial"
            ) from None
        con.execute(f"LOAD '{hits[0]}'")
    return con


def run_duckdb(folder: Path, args) -> tuple:
    epsg = _utm_epsg(folder)
    t0 = time.perf_counter()
    con = duckdb_connect()
    con.execute(f"SET threads = {args.workers}")
    for name, table in (("sites", "s"), ("venues", "v")):
        path = str(folder / f"{name}.parquet").replace("'", "''")
        con.execute(f"""CREATE TABLE {table} AS SELECT file_row_number AS i,
            ST_Transform(geometry, 'EPSG:4326', 'EPSG:{epsg}', always_xy := true) AS g
            FROM read_parquet('{path}', file_row_number = true)""")
    t1 = time.perf_counter()
    df = con.execute(f"""SELECT v.i AS venue_index, s.i AS site_index, ST_Distance(v.g, s.g) AS distance_m
                         FROM v JOIN s ON ST_DWithin(v.g, s.g, {LIMIT_M})""").df()
    t2 = time.perf_counter()
    return _pairs(df["venue_index"], df["site_index"], df["distance_m"]), {
        "read_transform_s": t1 - t0, "join_s": t2 - t1, "crs": f"EPSG:{epsg}"}  # fmt: skip


IMPLS = {
    "civicmap": run_civicmap,
    "gpd_utm": run_utm_join,
    "buffer_sjoin": lambda folder, args: run_utm_join(folder, args, buffer_segments=5),
    "duckdb": run_duckdb,
}


def run_postgis_geog(folder: Path, args) -> tuple:
    """ST_DWithin on geography.  Reading, COPY and GiST indexing are timed apart (load_s); only the query counts."""
    import io

    import pandas as pd
    import psycopg
    import shapely

    t0 = time.perf_counter()
    sites, venues = _read(folder)
    with psycopg.connect(args.dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        conn.execute("SET jit = off")
        for table, frame in (("bench_sites", sites), ("bench_venues", venues)):
            conn.execute(f"DROP TABLE IF EXISTS {table}")
            conn.execute(f"CREATE TABLE {table} (i bigint, g geography)")
            wkb = shapely.to_wkb(np.asarray(frame.geometry.array), hex=True)
            text = "".join(f"{i}\t{h}\n" for i, h in enumerate(wkb)).encode()
            with conn.cursor().copy(f"COPY {table} FROM STDIN") as copy:
                for k in range(0, len(text), 1 << 24):
                    copy.write(text[k : k + (1 << 24)])
            conn.execute(f"CREATE INDEX ON {table} USING gist (g)")
            conn.execute(f"VACUUM ANALYZE {table}")
        t1 = time.perf_counter()
        sql = f"""SELECT v.i, s.i, ST_Distance(v.g, s.g) FROM bench_venues v
                  JOIN bench_sites s ON ST_DWithin(v.g, s.g, {LIMIT_M})"""
        buf = io.BytesIO()
        with conn.cursor().copy(f"COPY ({sql}) TO STDOUT") as copy:
            for block in copy:
                buf.write(block)
        buf.seek(0)
        df = pd.read_csv(buf, sep="\t", header=None, names=["vi", "si", "d"])
        t2 = time.perf_counter()
    return _pairs(df["vi"], df["si"], df["d"]), {"load_s": t1 - t0, "query_s": t2 - t1, "timed": "query only"}


IMPLS["postgis_geog"] = run_postgis_geog
IMPLS["civicmap_serial"] = lambda folder, args: run_civicmap(folder, args, workers=1)


def child(args) -> None:
    """Run one implementation (1 warm-up + ``args.runs``); write its pairs; print one JSON line."""
    import geopandas  # noqa: F401 - imports are not part of the timed work
    import pyproj  # noqa: F401

    import geo.distance  # noqa: F401

    folder = Path(args.data)
    totals, phases, out = [], [], None
    for k in range(args.runs + args.warmup):
        t0 = time.perf_counter()
        out, ph = IMPLS[args.impl](folder, args)
        if k >= args.warmup:
            totals.append(time.perf_counter() - t0 - ph.get("load_s", 0.0))
            phases.append(ph)
        del ph
    out.sort_values(["venue_index", "site_index"]).to_parquet(args.pairs_out, index=False)
    med = {k: statistics.median(p[k] for p in phases) for k in phases[0] if isinstance(phases[0][k], float)}
    info = {k: v for k, v in phases[0].items() if not isinstance(v, float)}
    print(json.dumps({"impl": args.impl, "median_s": statistics.median(totals), "runs": totals, "phases": med,
                      "pairs": len(out), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      **info}))  # fmt: skip


# ------------------------------------------------------------------ comparison and accuracy
def compare(folder: Path, pair_files: dict[str, Path], reference: str = "civicmap") -> list[dict]:
    """Pairs each implementation misses / adds against ``reference``, with geodesic distances."""
    import geopandas as gpd
    import pandas as pd

    from geo.distance import pair_distances

    ref = pd.read_parquet(pair_files[reference])
    sites = venues = None
    rows = []
    for name, path in pair_files.items():
        if name == reference:
            continue
        other = pd.read_parquet(path)
        m = ref.merge(
            other, on=["venue_index", "site_index"], how="outer", suffixes=("", "_peer"), indicator=True
        )
        missed = m.loc[m["_merge"] == "left_only", "distance_m"].to_numpy()
        added = m[m["_merge"] == "right_only"]
        added_geod = np.empty(0)
        if len(added):
            if sites is None:
                sites = gpd.read_parquet(folder / "sites.parquet", columns=["geometry"])
                venues = gpd.read_parquet(folder / "venues.parquet", columns=["geometry"])
            exact = pair_distances(venues, sites, added["venue_index"], added["site_index"])
            added_geod = exact["distance_m"].to_numpy()
        both = m[m["_merge"] == "both"]
        diff = (both["distance_m_peer"] - both["distance_m"]).abs()
        rows.append({"impl": name, "missed": len(missed), "missed_geodesic_m": _range(missed),
                     "added": len(added), "added_geodesic_m": _range(added_geod),
                     "common_max_abs_diff_m": float(diff.max()) if len(diff) else None})  # fmt: skip
    return rows


def _summary(rounds: list[dict]) -> dict:
    """One implementation's rounds: times, median phases, the rest from the first round."""
    times = [r["median_s"] for r in rounds]
    phases = {k: statistics.median(r["phases"][k] for r in rounds) for k in rounds[0]["phases"]}
    return rounds[0] | {"times": times, "median_s": statistics.median(times), "phases": phases,
                        "peak_rss_mb": max(r["peak_rss_mb"] for r in rounds)}  # fmt: skip


def _range(x: np.ndarray) -> list[float] | None:
    return [round(float(x.min()), 3), round(float(x.max()), 3)] if len(x) else None


def accuracy(folder: Path, pairs_file: Path, sample: int, step_m: float = 0.25) -> dict:
    """civicmap's distances and band-projected ones against a brute-force geodesic, on a sample.

    Brute force: every campus edge densified along the geodesic every ``step_m``; the
    distance is the smallest pyproj.Geod distance from the venue to those points (0 inside).
    """
    import geopandas as gpd
    import pandas as pd
    import shapely
    from pyproj import Geod, Transformer

    from geo.crs import metric_zone_keys, zone_crs

    geod = Geod(ellps="WGS84")
    pairs = pd.read_parquet(pairs_file)
    pairs = pairs.iloc[np.sort(np.random.default_rng(1).choice(len(pairs), min(sample, len(pairs)), False))]
    sites = gpd.read_parquet(folder / "sites.parquet").geometry.array[pairs["site_index"].to_numpy()]
    venues = gpd.read_parquet(folder / "venues.parquet").geometry.array[pairs["venue_index"].to_numpy()]
    brute, projected = np.empty(len(pairs)), np.empty(len(pairs))
    for k, (v, s) in enumerate(zip(venues, sites, strict=True)):
        ring = np.asarray(s.exterior.coords)
        pts = [ring[:1]]
        for (x1, y1), (x2, y2) in itertools.pairwise(ring):
            n = max(1, math.ceil(geod.inv(x1, y1, x2, y2)[2] / step_m))
            mid = geod.npts(x1, y1, x2, y2, n - 1) if n > 1 else []
            pts.append(np.array([*mid, (x2, y2)]).reshape(-1, 2))
        pts = np.concatenate(pts)
        d = geod.inv(np.full(len(pts), v.x), np.full(len(pts), v.y), pts[:, 0], pts[:, 1])[2]
        j = int(np.argmin(d))  # refine between the neighbours of the nearest sample, every ~1 mm
        a, b = pts[max(j - 1, 0)], pts[min(j + 1, len(pts) - 1)]
        fine = np.array(geod.npts(a[0], a[1], b[0], b[1], 500))
        d_fine = geod.inv(np.full(500, v.x), np.full(500, v.y), fine[:, 0], fine[:, 1])[2]
        brute[k] = 0.0 if s.covers(v) else min(d.min(), d_fine.min())
        crs = zone_crs(int(metric_zone_keys(v.x)))
        t = Transformer.from_crs(4326, crs, always_xy=True)
        proj = shapely.transform([v, s], lambda c, t=t: np.column_stack(t.transform(c[:, 0], c[:, 1])))
        projected[k] = shapely.distance(proj[0], proj[1])
    from geo.distance import pair_distances

    # the same nearest points measured by pyproj.Geod instead of the scale-corrected chord
    k = np.arange(len(pairs))
    geod_nearest = pair_distances(venues, sites, k, k)["distance_m"].to_numpy()
    rows = {"civicmap": pairs["distance_m"].to_numpy(), "geod_of_nearest_points": geod_nearest,
            "band_projected": projected}  # fmt: skip
    out = {"sample": len(pairs), "densify_step_m": step_m}
    for name, got in rows.items():
        err = got - brute
        out[name] = {"max_abs_m": float(np.abs(err).max()), "median_m": float(np.median(err))}
    return out


# ------------------------------------------------------------------ driver
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", choices=sorted(SCALES), default="full")
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="data and pair sets (default %(default)s)")
    ap.add_argument("--runs", type=int, default=3, help="interleaved rounds, one timed run each (median)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs first, in each process")
    ap.add_argument("--workers", type=int, default=2, help="processes for civicmap, threads for DuckDB")
    ap.add_argument(
        "--peers", default="civicmap_serial,gpd_utm,buffer_sjoin,duckdb", help="comma-separated, or 'none'"
    )
    ap.add_argument("--postgis", action="store_true", help="also PostGIS geography (server on --dsn)")
    ap.add_argument(
        "--dsn",
        default=os.environ.get("BENCH_PG_DSN", "host=127.0.0.1 port=55432 user=postgres dbname=bench"),
    )
    ap.add_argument(
        "--accuracy", type=int, default=2000, metavar="N", help="pairs checked by brute force (0: skip)"
    )
    ap.add_argument("--impl", choices=sorted(IMPLS), help=argparse.SUPPRESS)  # child process
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--pairs-out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.impl:
        child(args)
        return 0

    folder = ensure_data(args.scale, args.dir)
    impls = ["civicmap"] + [p for p in args.peers.split(",") if p and p != "none"]
    impls += ["postgis_geog"] if args.postgis else []
    pair_files = {impl: folder / f"pairs-{impl}.parquet" for impl in impls}
    # rounds interleave the implementations, so that load from other work hits them alike
    rounds: dict[str, list[dict]] = {impl: [] for impl in impls}
    for _ in range(args.runs):
        for impl in list(rounds):
            cmd = [sys.executable, __file__, "--impl", impl, "--data", str(folder), "--pairs-out",
                   str(pair_files[impl]), "--runs", "1", "--warmup", str(args.warmup),
                   "--workers", str(args.workers), "--dsn", args.dsn]  # fmt: skip
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                print(f"!! {impl} failed:\n{proc.stderr[-2000:]}")
                rounds.pop(impl), pair_files.pop(impl)
                continue
            rounds[impl].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    results = {impl: _summary(r) for impl, r in rounds.items()}
    ours = [r["median_s"] for r in rounds["civicmap"]]
    print(f"\n{args.scale}: {SCALES[args.scale][0]:,} campuses x {SCALES[args.scale][1]:,} venues, "
          f"limit {LIMIT_M:g} m, {args.runs} interleaved round(s), end to end from GeoParquet")  # fmt: skip
    print(
        f"{'impl':<14}{'median s':>9}{'min s':>8}{'civicmap/peer':>15}{'pairs':>10}{'peak MB':>9}  phases (median)"
    )
    for impl, r in results.items():
        ratio = "" if impl == "civicmap" else f"{statistics.median(np.divide(ours, r['times'])):.2f}"
        phases = " ".join(f"{k}={v:.2f}" for k, v in r["phases"].items())
        print(f"{impl:<14}{r['median_s']:>9.2f}{min(r['times']):>8.2f}{ratio:>15}{r['pairs']:>10,}"
              f"{r['peak_rss_mb']:>9.0f}  {phases}" + (f" [{r['crs']}]" if "crs" in r else ""))  # fmt: skip
    if len(pair_files) > 1:
        print("\npair sets against civicmap (geodesic distances in m):")
        for row in compare(folder, pair_files):
            print(f"  {row['impl']:<14} misses {row['missed']:>6,} {row['missed_geodesic_m'] or ''}"
                  f"   adds {row['added']:>6,} {row['added_geodesic_m'] or ''}"
                  f"   common pairs: max |distance - geodesic| {row['common_max_abs_diff_m']:.3f} m")  # fmt: skip
    if args.accuracy:
        acc = accuracy(folder, pair_files["civicmap"], args.accuracy)
        print(f"\naccuracy on {acc['sample']:,} civicmap pairs against a brute-force geodesic (max |error|):")
        for name in ("civicmap", "geod_of_nearest_points", "band_projected"):
            print(f"  {name:<24}{acc[name]['max_abs_m']:.2e} m")
        results["accuracy"] = acc
    (args.dir / f"results-{args.scale}.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
