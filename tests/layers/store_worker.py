"""A separate process writing to a workspace, for the kill and concurrency tests of layers/store.py.

Usage: ``python store_worker.py WORKSPACE SEED ROWS [--slow-parts] [--hold MARKER] [--go READY GO]``

Writes :func:`make_frame` (SEED, ROWS) as a new ``net_cafes`` version and prints the version.

``--slow-parts``   the blob goes in 64 KiB parts with a 64 KiB page cache and a pause after each
                   part, so that uncommitted pages of the version reach the WAL while the
                   transaction is still open: the worst moment for a kill.
``--hold MARKER``  inside the transaction, after everything is written and before COMMIT,
                   create MARKER and sleep.
``--go READY GO``  create READY once the frame is built, then wait for GO before writing.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from layers import layer_blob, store


def make_frame(seed: int, rows: int) -> gpd.GeoDataFrame:
    """A deterministic net-café layer: ids and values depend on ``seed``."""
    rng = np.random.default_rng(seed)
    numbers = np.arange(rows)
    text = pd.Series(numbers).astype("str")
    return gpd.GeoDataFrame(
        {
            "id": f"nc-{seed}-" + text,
            "name": f"网吧{seed}号" + text,
            "terminals": pd.array(rng.integers(0, 300, rows), dtype="Int64"),
            "status": pd.Series(np.where(numbers % 3 == 0, "licensed", "suspended"), dtype="str"),
        },
        geometry=shapely.points(116 + rng.random(rows), 39 + rng.random(rows)),
        crs="EPSG:4326",
    )


def _wait_for(path: Path, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {path}")
        time.sleep(0.005)


def main(argv: list[str]) -> int:
    workspace, seed, rows = argv[0], int(argv[1]), int(argv[2])
    options = argv[3:]
    frame = make_frame(seed, rows)
    if "--slow-parts" in options:
        store._WRITE_CACHE_KIB = 64
        layer_blob.CHUNK_BYTES = 64 * 1024
        store._after_part = lambda number: time.sleep(0.02)
    if "--hold" in options:
        marker = Path(options[options.index("--hold") + 1])

        def hold(table: str) -> None:
            marker.write_text(table)
            time.sleep(60)

        store._before_commit = hold
    ws = store.Workspace.open(workspace)
    if "--go" in options:
        ready, go = (Path(p) for p in options[options.index("--go") + 1 :][:2])
        ready.touch()
        _wait_for(go)
    version = ws.write(
        "net_cafes",
        frame,
        user=f"worker-{seed}",
        source_name=f"cafes-{seed}.csv",
        source_sha256=f"{seed:064x}",
        crs="wgs84",
        rows_read=rows,
        rows_rejected=0,
    )
    print(version, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
