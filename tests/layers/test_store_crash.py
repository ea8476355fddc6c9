"""The workspace store under real processes: killed mid-import (SIGKILL), two imports at once, a held lock.

Each test starts separate Python processes (``store_worker.py``); they take a few seconds in all.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest
from geopandas.testing import assert_geodataframe_equal
from store_worker import make_frame

from layers.errors import WorkspaceError
from layers.store import Workspace

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("store_worker.py")
REPO = Path(__file__).resolve().parents[2]


def _start(*args: object) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(WORKER), *map(str, args)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _poll(condition, process: subprocess.Popen, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"worker ended early ({process.returncode}): {out} {err}")
        if time.monotonic() > deadline:
            _kill(process)
            raise AssertionError("timed out")
        time.sleep(0.005)


def _kill(process: subprocess.Popen) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=10)  # waits and closes the pipes
    assert process.returncode == -signal.SIGKILL


def _stored_parts(ws: Workspace) -> set[tuple[str, int]]:
    """(kind, version) of every blob part in the database file."""
    with closing(sqlite3.connect(ws.gpkg_path)) as con:
        return set(con.execute("SELECT kind, version FROM civicmap_layer_data"))


def _assert_only_version_one(path: Path, first) -> None:
    ws = Workspace.open(path)
    assert ws.current_versions() == {"net_cafes": 1}
    assert ws.versions("net_cafes") == [1]
    assert [r.version for r in ws.history()] == [1]
    assert_geodataframe_equal(ws.read("net_cafes"), first)
    assert _stored_parts(ws) == {("net_cafes", 1)}
    with closing(sqlite3.connect(ws.gpkg_path)) as con:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    # the workspace goes on normally
    nxt = make_frame(3, 50)
    assert ws.write("net_cafes", nxt, user="u", source_name="n.csv", source_sha256="0", crs="wgs84",
                    rows_read=50, rows_rejected=0) == 2  # fmt: skip
    assert_geodataframe_equal(ws.read("net_cafes"), nxt)


@pytest.fixture
def first(tmp_path) -> tuple[Path, object]:
    """A workspace whose net_cafes version 1 is a known frame."""
    frame = make_frame(1, 500)
    ws = Workspace.open(tmp_path / "ws", create=True)
    ws.write("net_cafes", frame, user="u", source_name="a.csv", source_sha256="0", crs="wgs84",
             rows_read=500, rows_rejected=0)  # fmt: skip
    return ws.path, frame


def test_kill_while_the_blob_is_being_written(first):
    path, frame = first
    wal = path / "civicmap.gpkg-wal"
    start_size = wal.stat().st_size if wal.exists() else 0
    worker = _start(path, 2, 100_000, "--slow-parts")
    # uncommitted pages of version 2 are reaching the WAL: the version is half written
    _poll(lambda: wal.exists() and wal.stat().st_size > start_size + 500_000, worker)
    _kill(worker)
    _assert_only_version_one(path, frame)


def test_kill_after_everything_is_written_before_the_commit(first, tmp_path):
    path, frame = first
    marker = tmp_path / "held"
    worker = _start(path, 2, 2_000, "--hold", marker)
    _poll(marker.exists, worker)
    assert marker.read_text() == "net_cafes__v2"
    ws = Workspace(path, keep_versions=10, lock_timeout_s=1, spatial_index=True)  # no open(): no cleanup
    # the writer holds its open transaction: readers never see any of it, and do not wait
    assert ws.current_versions() == {"net_cafes": 1} and ws.versions("net_cafes") == [1]
    assert ws.counts()["net_cafes"] == 500 and [r.version for r in ws.history()] == [1]
    assert_geodataframe_equal(ws.read("net_cafes"), frame)
    _kill(worker)
    _assert_only_version_one(path, frame)


def test_two_imports_at_once_land_as_consecutive_versions(first, tmp_path):
    path, frame = first
    seeds = (11, 12)
    frames = {seed: make_frame(seed, 5_000) for seed in seeds}
    workers = {
        seed: _start(path, seed, 5_000, "--go", tmp_path / f"ready{seed}", tmp_path / "go") for seed in seeds
    }
    for seed, worker in workers.items():
        _poll((tmp_path / f"ready{seed}").exists, worker)
    (tmp_path / "go").touch()
    ws = Workspace.open(path)
    seen = set()
    while any(w.poll() is None for w in workers.values()):  # readers never block, never see half a version
        current = ws.read("net_cafes")
        seen.add(current["id"].iloc[0])
        assert len(current) in (500, 5_000)
        time.sleep(0.02)
    versions = {}
    for seed, worker in workers.items():
        out, err = worker.communicate(timeout=30)
        assert worker.returncode == 0, err
        versions[seed] = int(out)
    assert sorted(versions.values()) == [2, 3]
    for seed, version in versions.items():
        assert_geodataframe_equal(ws.read("net_cafes", version=version), frames[seed])
    last = max(versions, key=versions.get)
    assert_geodataframe_equal(ws.read("net_cafes"), frames[last])
    assert_geodataframe_equal(ws.read("net_cafes", version=1), frame)
    history = ws.history("net_cafes")
    assert [(r.version, r.user, r.rows_imported) for r in history[:2]] == [
        (versions[last], f"worker-{last}", 5_000),
        (versions[min(versions, key=versions.get)], f"worker-{min(versions, key=versions.get)}", 5_000),
    ]
    assert seen <= {"nc-1-0", "nc-11-0", "nc-12-0"}


def test_a_held_lock_times_out_with_a_clear_message_and_dies_with_its_holder(first):
    path, frame = first
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time, filelock; lock = filelock.FileLock(sys.argv[1]); lock.acquire(); "
         "print('locked', flush=True); time.sleep(60)", str(path / ".civicmap.lock")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout.readline().strip() == "locked"
    ws = Workspace.open(path, lock_timeout_s=0.2)
    new = make_frame(2, 10)
    with pytest.raises(
        WorkspaceError, match=r"^workspace .*ws is busy: another import is running \(waited 0\.2 s\)"
    ):
        ws.write("net_cafes", new, user="u", source_name="b.csv", source_sha256="0", crs="wgs84",
                 rows_read=10, rows_rejected=0)  # fmt: skip
    with pytest.raises(WorkspaceError, match="is busy: another import is running"):
        ws.restore("net_cafes", 1, user="u")
    assert_geodataframe_equal(ws.read("net_cafes"), frame)  # readers do not wait for the lock
    assert ws.counts()["net_cafes"] == 500
    _kill(holder)  # a lock of a killed process is free at once
    assert ws.write("net_cafes", new, user="u", source_name="b.csv", source_sha256="0", crs="wgs84",
                    rows_read=10, rows_rejected=0) == 2  # fmt: skip
