"""Import speed: civicmap's read + validate + store against a plain read of the same file.

Peers, measured in the same run on the same files:

* ``pandas.read_csv`` for a 200,000-row net-café CSV with Chinese headers (经度/纬度, 名称 …);
* ``geopandas.read_parquet`` for a 1,000,000-point GeoParquet.

civicmap's phases are timed apart: ``read`` (layers.readers.read_table), ``validate``
(layers.validate.validate_table: headers, types, categories, geometry, China bounds, ids) and
``store`` (Workspace.write of ``ValidationResult.valid_rows``, as layers.importer does: for the
CSV a PointRows whose lon/lat go into the blob's GeoArrow point column without any shapely
point being built; the id and column checks; the layer encoded as zstd GeoParquet chunks on
a thread pool while one SQLite transaction writes them, the version row, the current pointer
and the history row, with the writers' lock, the WAL commit and the checkpoint SQLite runs
when the writer's connection closes).  ``store`` does NOT include the GeoPackage feature table
QGIS draws: that is written on demand by ``civicmap publish`` (Workspace.publish_gpkg), timed
apart as ``publish`` for reference.  The target of the foundation issue is
(validate + store) / plain read ≤ 2×.

Usage::

    .venv/bin/python benchmarks/bench_import.py [--rows-csv 200000] [--rows-parquet 1000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from layers import layer_blob
from layers.readers import read_table
from layers.store import PAGE_BYTES, Workspace
from layers.validate import validate_table


def make_csv(path: Path, n: int) -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "名称": [f"星海网吧{i}号店" for i in range(n)],
            "经度": np.round(rng.uniform(113.5, 115.5, n), 7),
            "纬度": np.round(rng.uniform(29.5, 31.5, n), 7),
            "许可证号": [f"4299010{i:07d}" for i in range(n)],
            "状态": rng.choice(["正常", "停业整顿", "吊销", "无证"], n, p=[0.85, 0.05, 0.05, 0.05]),
            "终端数": rng.integers(20, 300, n),
            "连锁品牌": rng.choice(["网鱼", "顺网", "", "杰拉网咖"], n),
            "地址": [f"示范区东湖路{i % 999}号" for i in range(n)],
        }
    )
    frame.to_csv(path, index=False, encoding="utf-8-sig")


def make_parquet(path: Path, n: int) -> None:
    rng = np.random.default_rng(2)
    gdf = gpd.GeoDataFrame(
        {
            "id": [f"nc-{i}" for i in range(n)],
            "name": [f"网吧{i}" for i in range(n)],
            "status": rng.choice(["licensed", "suspended"], n, p=[0.95, 0.05]),
            "terminals": rng.integers(20, 300, n),
        },
        geometry=shapely.points(rng.uniform(74, 134, n), rng.uniform(19, 53, n)),
        crs="EPSG:4326",
    )
    gdf.to_parquet(path)


def durable_write(path: Path, chunks: list) -> None:
    """The least a store in one SQLite file can do: the encoded chunks in one WAL transaction, then close.

    Same settings as the workspace (64 KiB pages, WAL, synchronous=NORMAL); closing the only
    connection checkpoints the WAL into the database file, as it does after an import.
    """
    con = sqlite3.connect(path, isolation_level=None)
    con.execute(f"PRAGMA page_size = {PAGE_BYTES}")
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = NORMAL")
    con.execute("CREATE TABLE data (part INTEGER PRIMARY KEY, data BLOB NOT NULL)")
    con.execute("BEGIN IMMEDIATE")
    for number, chunk in enumerate(chunks):
        con.execute("INSERT INTO data VALUES (?, ?)", (number, chunk))
    con.execute("COMMIT")
    con.close()


def timed(func) -> tuple[float, object]:
    start = time.perf_counter()
    out = func()
    return time.perf_counter() - start, out


def bench(label: str, path: Path, plain, crs: str | None, runs: int, tmp: Path) -> None:
    rows = {"plain": [], "read": [], "validate": [], "store": [], "read back": [], "publish": [],
            "encode only": [], "write only": []}  # fmt: skip
    for run in range(runs):
        rows["plain"].append(timed(lambda: plain(path))[0])
        t_read, raw = timed(lambda: read_table(path))
        t_val, result = timed(lambda raw=raw: validate_table(raw, "net_cafes", crs=crs))
        assert not result.problems, result.problems[:3]
        ws = Workspace.open(tmp / f"ws-{label}-{run}", create=True)
        t_store, _ = timed(
            lambda ws=ws, result=result: ws.write(
                "net_cafes", result.valid_rows, user="bench", source_name=path.name, source_sha256="-", crs=str(crs),
                rows_read=len(result.valid_rows), rows_rejected=0,
            )
        )  # fmt: skip
        rows["read"].append(t_read)
        rows["validate"].append(t_val)
        rows["store"].append(t_store)
        rows["read back"].append(timed(lambda ws=ws: ws.read("net_cafes"))[0])
        t_encode, chunks = timed(lambda result=result: list(layer_blob.encode_chunks(result.valid_rows)))
        rows["encode only"].append(t_encode)
        rows["write only"].append(
            timed(lambda chunks=chunks, run=run: durable_write(tmp / f"bare-{label}-{run}.db", chunks))[0]
        )
        if run == 0:
            rows["publish"].append(timed(lambda ws=ws: ws.publish_gpkg())[0])
    med = {k: statistics.median(v) for k, v in rows.items()}
    ours = med["read"] + med["validate"] + med["store"]
    print(f"\n{label} ({path.stat().st_size / 1e6:.1f} MB), medians of {runs} runs")
    print(f"  peer plain read                     {med['plain']:7.2f} s")
    print(f"  civicmap read                       {med['read']:7.2f} s")
    print(f"  civicmap validate                   {med['validate']:7.2f} s")
    print(f"  civicmap store (blob + history)     {med['store']:7.2f} s")
    print(
        f"  ratio (validate + store) / plain    {(med['validate'] + med['store']) / med['plain']:7.2f}x   (target <= 2x)"
    )
    print(f"    of which validate / plain          {med['validate'] / med['plain']:7.2f}x")
    print(f"    of which store / plain             {med['store'] / med['plain']:7.2f}x")
    print(f"  ratio (read + validate + store) / plain {ours / med['plain']:5.2f}x")
    print(
        f"  floors of the store, measured apart: encoding the chunks {med['encode only']:.2f} s "
        f"({med['encode only'] / med['plain']:.2f}x), writing them durably to a bare SQLite database "
        f"{med['write only']:.2f} s ({med['write only'] / med['plain']:.2f}x)"
    )
    print(
        f"  for reference, not in the ratios: reading the stored layer back {med['read back']:.2f} s, "
        f"publishing it as a GeoPackage feature table for QGIS {med['publish']:.2f} s (once)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows-csv", type=int, default=200_000)
    parser.add_argument("--rows-parquet", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="civicmap-bench-import-") as folder:
        tmp = Path(folder)
        csv_path, parquet_path = tmp / "net_cafes.csv", tmp / "net_cafes.parquet"
        make_csv(csv_path, args.rows_csv)
        make_parquet(parquet_path, args.rows_parquet)
        bench(f"CSV, {args.rows_csv:,} rows", csv_path, lambda p: pd.read_csv(p), "wgs84", args.runs, tmp)
        bench(
            f"GeoParquet, {args.rows_parquet:,} points", parquet_path, gpd.read_parquet, None, args.runs, tmp
        )


if __name__ == "__main__":
    main()
