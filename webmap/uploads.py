"""Uploaded layer files: checked before parsing, then staged inside the workspace.

An upload is refused before any reader sees it when its extension is not one of
:data:`ALLOWED_EXTENSIONS`, it is larger than ``MAX_CONTENT_LENGTH``, its first bytes do not
match its format, or — for zip containers (zipped shapefiles, XLSX) — it holds more than
``DATA_ZIP_MAX_MEMBERS`` members or unpacks to more than ``DATA_ZIP_MAX_UNCOMPRESSED`` bytes
(checked on the declared sizes, then by actually decompressing with a cap, so a lying header
does not help a zip bomb).

An accepted file is stored as ``WORKSPACE/staging/<random token>/<original name>`` with a
``meta.json`` beside it (who, when, kind, datum, the validation report).  The original name is
kept (made safe) because the importer records it in the history.  Staged uploads older than
``DATA_STAGING_TTL_S`` seconds are deleted by :func:`purge_expired`, called on every visit of
the data pages and every API import.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import shutil
import time
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from flask import current_app
from flask_babel import gettext

from layers.errors import CivicmapError, Message

log = logging.getLogger(__name__)

#: extensions an upload may have (a bare ``.shp`` needs its sidecar files: upload a zip)
ALLOWED_EXTENSIONS: tuple[str, ...] = (
    ".csv", ".tsv", ".txt", ".xlsx", ".geojson", ".json", ".gpkg", ".zip", ".parquet", ".geoparquet",
)  # fmt: skip
ZIP_EXTENSIONS = frozenset({".zip", ".xlsx"})
#: defaults of the settings read here (``app.config`` keys)
DEFAULT_ZIP_MAX_MEMBERS = 200
DEFAULT_ZIP_MAX_UNCOMPRESSED = 500 * 1024 * 1024
DEFAULT_STAGING_TTL_S = 24 * 3600
STAGING_DIR = "staging"
META_NAME = "meta.json"
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_UNSAFE = re.compile(r"[^\w.\-()（）]+")
_CHUNK = 1 << 16
_SIGNATURES: dict[str, tuple[bytes, ...]] = {
    ".zip": (b"PK\x03\x04", b"PK\x05\x06"),
    ".xlsx": (b"PK\x03\x04",),
    ".gpkg": (b"SQLite format 3\x00",),
    ".parquet": (b"PAR1",),
    ".geoparquet": (b"PAR1",),
}


class UploadError(CivicmapError):
    """An upload refused before parsing (type, size, zip content); ``status`` is the HTTP code."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class StagedUpload:
    """One staged file: ``folder/<file_name>`` plus ``folder/meta.json``."""

    token: str
    folder: Path
    meta: dict[str, Any]

    @property
    def path(self) -> Path:
        return self.folder / self.meta["file_name"]

    def save_meta(self) -> None:
        """Write :attr:`meta` back to ``meta.json``."""
        (self.folder / META_NAME).write_text(json.dumps(self.meta, ensure_ascii=False), encoding="utf-8")

    def rejected_path(self) -> Path | None:
        """The rejected-rows CSV a partial import wrote, when there is one."""
        name = self.meta.get("rejected_file")
        return self.folder / name if name and (self.folder / name).is_file() else None

    def discard(self) -> None:
        """Delete the staged folder."""
        shutil.rmtree(self.folder, ignore_errors=True)


def staging_root(workspace_path: Path) -> Path:
    """``WORKSPACE/staging`` (created when missing, owner-only)."""
    root = Path(workspace_path) / STAGING_DIR
    root.mkdir(mode=0o700, exist_ok=True)
    return root


def safe_filename(name: str) -> str:
    """The base name of ``name`` with path parts, control and unsafe characters removed.

    Chinese letters are kept (the history shows the name); an empty result becomes ``upload``.
    """
    base = unicodedata.normalize("NFC", str(name)).replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    stem = _UNSAFE.sub("_", stem).strip("._")[:100] or "upload"
    ext = _UNSAFE.sub("", ext)[:12].lower()
    return f"{stem}.{ext}" if ext else stem


def check_extension(name: str) -> str:
    """The lower-case extension of ``name``; :class:`UploadError` when it is not allowed."""
    suffix = Path(safe_filename(name)).suffix.lower()
    if suffix not in ALLOWED_EXTENSIONS:
        raise UploadError(
            f"file {name!r}: type {suffix or '(none)'!r} is not accepted; expected one of "
            f"{', '.join(ALLOWED_EXTENSIONS)} (zip a shapefile with its .dbf, .shx and .prj)"
        )
    return suffix


def _save_limited(stream: IO[bytes], target: Path, limit_bytes: int) -> int:
    size = 0
    with open(target, "wb") as out:
        while chunk := stream.read(_CHUNK):
            size += len(chunk)
            if size > limit_bytes:
                raise UploadError(too_large_message(limit_bytes), status=413)
            out.write(chunk)
    return size


def too_large_message(limit_bytes: int) -> str:
    """The message for an upload over ``limit_bytes``."""
    return f"the upload is larger than the limit of {limit_bytes / (1024 * 1024):g} MB"


def check_signature(path: Path, suffix: str, source: str) -> None:
    """Refuse a file whose first bytes do not match its extension."""
    with open(path, "rb") as fh:
        head = fh.read(64)
    if not head:
        raise UploadError(f"file {source!r} is empty")
    expected = _SIGNATURES.get(suffix)
    if expected is not None and not head.startswith(expected):
        raise UploadError(
            f"file {source!r} is not a {suffix} file (its content does not match its extension)"
        )
    text = suffix in (".geojson", ".json", ".csv", ".tsv", ".txt")
    if text and b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UploadError(f"file {source!r} is not a text file (it contains NUL bytes)")


def check_zip(path: Path, source: str, *, max_members: int, max_uncompressed: int) -> None:
    """Zip-bomb guard: member count and total uncompressed size, declared and actual.

    Raises
    ------
    UploadError
        When the archive is unreadable, has too many members, unsafe member names, or unpacks
        to more than ``max_uncompressed`` bytes.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            members = zf.infolist()
            if len(members) > max_members:
                raise UploadError(
                    f"file {source!r}: the archive holds {len(members)} members; at most {max_members} allowed"
                )
            for info in members:
                name = info.filename.replace("\\", "/")
                if name.startswith("/") or ".." in name.split("/"):
                    raise UploadError(f"file {source!r}: archive member {info.filename!r} has an unsafe path")
            declared = sum(i.file_size for i in members)
            if declared > max_uncompressed:
                raise UploadError(_unzipped_message(source, declared, max_uncompressed))
            actual = 0
            for info in members:
                if info.is_dir():
                    continue
                with zf.open(info) as member:
                    while chunk := member.read(_CHUNK):
                        actual += len(chunk)
                        if actual > max_uncompressed:
                            raise UploadError(_unzipped_message(source, actual, max_uncompressed))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as err:
        raise UploadError(f"file {source!r} is not a readable zip archive: {err}") from None


def _unzipped_message(source: str, size: int, limit: int) -> str:
    return (
        f"file {source!r} unpacks to more than {limit / (1024 * 1024):g} MB "
        f"(at least {size / (1024 * 1024):.1f} MB); refused"
    )


def stage_upload(
    stream: IO[bytes], filename: str, *, workspace_path: Path, meta: dict[str, Any] | None = None
) -> StagedUpload:
    """Check an uploaded file and store it under a random name in the staging folder.

    Parameters
    ----------
    stream
        The upload's binary stream (``FileStorage.stream``).
    filename
        The name the client gave.
    workspace_path
        The workspace folder.
    meta
        Extra fields for ``meta.json`` (kind, datum, user …).

    Raises
    ------
    UploadError
        On any failed check; nothing is left behind.
    """
    config = current_app.config
    if not filename:
        raise UploadError("no file was chosen")
    suffix = check_extension(filename)
    name = safe_filename(filename)
    token = secrets.token_urlsafe(24)
    folder = staging_root(workspace_path) / token
    folder.mkdir(mode=0o700)
    try:
        limit = int(config.get("MAX_CONTENT_LENGTH") or 50 * 1024 * 1024)
        size = _save_limited(stream, folder / name, limit)
        check_signature(folder / name, suffix, name)
        if suffix in ZIP_EXTENSIONS:
            check_zip(
                folder / name,
                name,
                max_members=int(config.get("DATA_ZIP_MAX_MEMBERS", DEFAULT_ZIP_MAX_MEMBERS)),
                max_uncompressed=int(config.get("DATA_ZIP_MAX_UNCOMPRESSED", DEFAULT_ZIP_MAX_UNCOMPRESSED)),
            )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    staged = StagedUpload(
        token, folder, {**(meta or {}), "file_name": name, "size": size, "uploaded_at": time.time()}
    )
    staged.save_meta()
    log.info("staged upload %s (%d bytes) as %s", name, size, token)
    return staged


def load_staged(workspace_path: Path, token: str) -> StagedUpload | None:
    """The staged upload ``token``, or ``None`` when unknown, malformed or expired."""
    if not _TOKEN_RE.match(token or ""):
        return None
    folder = Path(workspace_path) / STAGING_DIR / token
    try:
        meta = json.loads((folder / META_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return StagedUpload(token, folder, meta)


def list_staged(workspace_path: Path, *, user: str | None = None) -> list[StagedUpload]:
    """Uploads still waiting for confirmation (of ``user`` when given), newest first."""
    root = Path(workspace_path) / STAGING_DIR
    found = []
    for folder in root.iterdir() if root.is_dir() else []:
        item = load_staged(workspace_path, folder.name)
        if item is None or item.meta.get("status") != "staged":
            continue
        if user is None or item.meta.get("user") == user:
            found.append(item)
    return sorted(found, key=lambda item: item.meta.get("uploaded_at", 0), reverse=True)


def purge_expired(workspace_path: Path, *, ttl_s: float | None = None, now: float | None = None) -> int:
    """Delete staged uploads older than ``ttl_s`` (default ``DATA_STAGING_TTL_S``); returns how many."""
    root = Path(workspace_path) / STAGING_DIR
    if not root.is_dir():
        return 0
    if ttl_s is None:
        ttl_s = float(current_app.config.get("DATA_STAGING_TTL_S", DEFAULT_STAGING_TTL_S))
    now = time.time() if now is None else now
    removed = 0
    for folder in root.iterdir():
        try:
            age = now - folder.stat().st_mtime
        except OSError:
            continue
        if age > ttl_s:
            shutil.rmtree(folder, ignore_errors=True) if folder.is_dir() else folder.unlink(missing_ok=True)
            removed += 1
    if removed:
        log.info("deleted %d expired staged upload(s)", removed)
    return removed


# ------------------------------------------------------------------ reports as JSON
PREVIEW_ROWS = 10


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON data: NaN / NA → ``None``, numpy scalars → Python, dates → ISO text."""
    import math

    import numpy as np
    import pandas as pd

    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, int):
        return value
    if isinstance(value, pd.Timestamp | np.datetime64):
        return None if pd.isna(value) else pd.Timestamp(value).isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def problem_dict(problem) -> dict[str, Any]:
    """A :class:`~layers.errors.Problem` as ``{source, row, field, value, expected}``.

    ``expected`` is English; when it is a :class:`~layers.errors.Message`, ``template`` and
    ``params`` are added so that a page can show it in the reader's language
    (:func:`problem_text`).
    """
    out = {
        "source": problem.source,
        "row": problem.row,
        "field": problem.field,
        "value": json_safe(problem.value),
        "expected": str(problem.expected),
    }
    if isinstance(problem.expected, Message):
        out["template"] = problem.expected.template
        out["params"] = {key: json_safe(value) for key, value in problem.expected.params.items()}
    return out


def problem_reason(problem) -> str:
    """A :class:`~layers.errors.Problem` as one reason of the rejected-rows file, in the request's language."""
    text = problem_text(problem_dict(problem))
    return text if problem.field is None else f"{problem.field} = {problem.value!r}: {text}"


def problem_text(problem: dict[str, Any]) -> str:
    """What a problem of :func:`problem_dict` expected, in the language of the request."""
    template = problem.get("template")
    if not template:
        return str(problem.get("expected") or "")
    try:
        return gettext(template).format(**problem.get("params", {}))
    except (KeyError, IndexError, ValueError):  # a translation with broken placeholders
        log.warning("translation of %r does not fit its values; showing English", template)
        return str(problem.get("expected") or "")


def report_dict(report, result=None, *, preview_rows: int = PREVIEW_ROWS) -> dict[str, Any]:
    """An :class:`~layers.importer.ImportReport` as JSON data, with a preview of the first valid rows."""
    out = {
        "kind": report.kind,
        "source": report.source,
        "sha256": report.sha256,
        "crs": report.crs,
        "encoding": report.encoding,
        "rows_read": report.rows_read,
        "rows_valid": report.rows_valid,
        "rows_rejected": report.rows_rejected,
        "version": report.version,
        "problems": [problem_dict(p) for p in report.problems],
    }
    if result is not None:
        out["preview"] = preview(result.valid, preview_rows)
    return out


def preview(frame, n: int) -> dict[str, list]:
    """The first ``n`` rows of a validated layer: ``{"columns": [...], "rows": [[...], ...]}``."""
    from layers.schema import get_schema

    if frame is None or len(frame) == 0:
        return {"columns": [], "rows": []}
    schema = get_schema(frame.attrs.get("kind")) if frame.attrs.get("kind") else None
    names = schema.field_names if schema is not None else []
    columns = ["id", *[c for c in names if c in frame.columns]]
    head = frame.head(n)
    rows = []
    for i in range(len(head)):
        row = [json_safe(head[c].iloc[i]) for c in columns]
        geom = head.geometry.iloc[i]
        row.append(_short_geometry(geom))
        rows.append(row)
    return {"columns": [*columns, "geometry"], "rows": rows}


def _short_geometry(geom) -> str:
    if geom is None or geom.is_empty:
        return ""
    if geom.geom_type == "Point":
        return f"{geom.x:.6f}, {geom.y:.6f}"
    c = geom.centroid
    return f"{geom.geom_type} ({c.x:.5f}, {c.y:.5f})"
