"""Data management: upload a layer file, read its validation report, import it, restore versions.

Flow: ``/data/`` (upload form, layers) → ``POST /data/upload`` checks the file before parsing
(:mod:`webmap.uploads`), stages it inside the workspace under a random name and validates it
→ ``/data/staged/<token>`` shows the report row by row → ``POST …/import`` imports it
(all or nothing, or the valid rows only, whose rejected rows can then be downloaded).
``/data/history/<kind>`` lists imports and restores; analysts may restore a stored version
(after a confirmation page).  Imports and restores are written to the audit log.

Uploading, importing and restoring need the ``analyst`` role; the history is open to viewers.
Nothing in the workspace changes until the import is confirmed.
"""

from __future__ import annotations

import logging

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import RequestEntityTooLarge

from geo.crs import parse_crs
from layers.errors import CivicmapError, LayerError
from layers.importer import import_file, validate_file
from layers.schema import KINDS, SCHEMAS, get_schema
from webmap.accounts import audit, current_workspace
from webmap.i18n import is_chinese
from webmap.labels import level_label, status_label
from webmap.nav import NAV_LABELS, NAV_ORDER, nav_entry
from webmap.security import current_user, require_role
from webmap.uploads import (
    ALLOWED_EXTENSIONS,
    StagedUpload,
    UploadError,
    list_staged,
    load_staged,
    problem_dict,
    problem_reason,
    problem_text,
    purge_expired,
    report_dict,
    stage_upload,
)

log = logging.getLogger(__name__)

bp = Blueprint("data", __name__, url_prefix="/data")
nav_entry(bp, ".index", NAV_LABELS["data"], order=NAV_ORDER["data"])

#: datum choices of the upload form: value → label ("" = the file's own CRS)
DATUMS: tuple[tuple[str, object], ...] = (
    ("", _l("From the file")),
    ("wgs84", _l("WGS84 (GPS)")),
    ("cgcs2000", _l("CGCS2000 (survey data)")),
    ("gcj02", _l("GCJ-02 (Amap, Tencent)")),
    ("bd09", _l("BD-09 (Baidu)")),
    ("epsg", _l("EPSG code")),
)
#: problems kept for and shown on the report page (all of them are in the API and the rejected file)
PROBLEMS_SHOWN = 500


def datum_label(value: str) -> str:
    """The translated label of a datum choice, or the value itself (``EPSG:4547``)."""
    return str(dict(DATUMS).get(value, value))


def kind_label(kind: str) -> str:
    """The schema's label of ``kind`` in the user's language."""
    schema = SCHEMAS.get(kind)
    if schema is None:
        return kind
    return schema.label_zh if is_chinese() else schema.label_en


bp.add_app_template_global(problem_text, "problem_text")


@bp.app_template_global("preview_cell")
def preview_cell(column: str, value: object) -> object:
    """A preview value as pages show it: licence statuses and school levels in words, missing as blank."""
    if value is None:
        return ""
    if column == "status":
        return status_label(value)
    if column == "level":
        return level_label(value)
    return value


@bp.app_template_global("data_kind_label")
def _kind_label_global(kind: str) -> str:
    return kind_label(kind)


@bp.before_request
def _purge():
    purge_expired(current_workspace().path)


def _crs_from_form(form) -> str | None:
    """The datum chosen in the form (``None`` = the file's own); :class:`UploadError` when unusable."""
    choice = (form.get("datum") or "").strip()
    if choice == "epsg":
        code = (form.get("epsg") or "").strip().upper().removeprefix("EPSG:")
        if not code.isdigit():
            raise UploadError(f"EPSG code = {form.get('epsg')!r}: expected digits such as 4547")
        choice = f"EPSG:{code}"
    if not choice:
        return None
    parse_crs(choice)
    return choice


def _layer_rows(ws) -> list[dict]:
    counts, current = ws.counts(), ws.current_versions()
    return [
        {"kind": k, "label": kind_label(k), "count": counts.get(k, 0), "version": current.get(k)}
        for k in KINDS
    ]


def _render_index(error: str | None = None, status: int = 200, form: dict | None = None):
    ws = current_workspace()
    user = current_user()
    staged = list_staged(ws.path, user=user.name) if user.has_role("analyst") else []
    return render_template(
        "data_index.html",
        layers=_layer_rows(ws),
        kinds=KINDS,
        datums=[(v, datum_label(v)) for v, _label in DATUMS],
        extensions=ALLOWED_EXTENSIONS,
        limit_mb=_limit_mb(),
        history=ws.history()[:15],
        staged=staged[:10],
        error=error,
        form=form or {},
    ), status


@bp.get("/")
def index():
    return _render_index()


@bp.post("/upload")
@require_role("analyst")
def upload():
    try:
        file = request.files.get("file")
    except RequestEntityTooLarge:
        return _render_index(_too_large(), 413)
    form = request.form
    kind = form.get("kind", "")
    try:
        get_schema(kind)
        crs = _crs_from_form(form)
        if file is None or not file.filename:
            raise UploadError("no file was chosen")
        ws = current_workspace()
        staged = stage_upload(
            file.stream,
            file.filename,
            workspace_path=ws.path,
            meta={"kind": kind, "crs": crs, "user": current_user().name, "status": "staged"},
        )
    except UploadError as err:
        message = (
            _too_large() if err.status == 413 else _("The file was refused: %(reason)s", reason=str(err))
        )
        return _render_index(message, err.status, dict(form))
    except CivicmapError as err:
        return _render_index(str(err), 400, dict(form))
    _validate(staged)
    return redirect(url_for("data.staged", token=staged.token))


def _limit_mb() -> float:
    return (current_app.config.get("MAX_CONTENT_LENGTH") or 0) / (1024 * 1024)


def _too_large() -> str:
    return _("The upload is larger than the limit of %(size)s MB.", size=f"{_limit_mb():g}")


def _validate(staged: StagedUpload) -> None:
    """Validate the staged file against the workspace (nothing is stored) and keep the report."""
    meta = staged.meta
    try:
        result, report = validate_file(
            staged.path, meta["kind"], crs=meta.get("crs"), workspace=current_workspace()
        )
        meta["report"] = report_dict(report, result)
        _keep_problems(meta["report"], meta["report"]["problems"])
    except LayerError as err:  # the file cannot be read at all
        meta["report"] = _unreadable(meta["file_name"])
        _keep_problems(meta["report"], [problem_dict(p) for p in err.problems])
    except CivicmapError as err:
        meta["report"] = _unreadable(meta["file_name"])
        _keep_problems(meta["report"], [{"row": None, "field": None, "value": None, "expected": str(err)}])
    staged.save_meta()


def _keep_problems(report: dict, problems: list[dict]) -> None:
    """Store the first :data:`PROBLEMS_SHOWN` problems, their total and counts per field in ``report``."""
    by_field: dict[str, int] = {}
    for p in problems:
        key = p.get("field") or "—"
        by_field[key] = by_field.get(key, 0) + 1
    report["problems"] = problems[:PROBLEMS_SHOWN]
    report["problems_total"] = len(problems)
    report["problems_by_field"] = sorted(by_field.items(), key=lambda kv: -kv[1])


def _unreadable(source: str) -> dict:
    """The report of a file that could not be read at all (problems added by :func:`_keep_problems`)."""
    return {
        "source": source, "rows_read": 0, "rows_valid": 0, "rows_rejected": 0, "crs": None,
        "preview": {"columns": [], "rows": []},
    }  # fmt: skip


def _own_staged(token: str) -> StagedUpload:
    staged = load_staged(current_workspace().path, token)
    if staged is None:
        abort(404)
    user = current_user()
    if staged.meta.get("user") != user.name and not user.has_role("admin"):
        abort(404)
    return staged


def _render_report(staged: StagedUpload, status: int = 200):
    report = staged.meta.get("report", {})
    problems = report.get("problems", [])
    return render_template(
        "data_report.html",
        staged=staged,
        meta=staged.meta,
        report=report,
        problems=problems[:PROBLEMS_SHOWN],
        problems_total=report.get("problems_total", len(problems)),
        by_field=report.get("problems_by_field", []),
        rejected=staged.rejected_path() is not None,
        datum=datum_label(staged.meta.get("crs") or ""),
        column_labels=_column_labels(staged.meta.get("kind", "")),
    ), status


def _column_labels(kind: str) -> dict[str, str]:
    """Field name → the schema's label in the user's language (for the preview table)."""
    schema = SCHEMAS.get(kind)
    if schema is None:
        return {}
    zh = is_chinese()
    labels = {f.name: (f.label_zh if zh else f.label_en) or f.name for f in schema.fields}
    return {**labels, "geometry": _("Location")}


@bp.get("/staged/<token>")
@require_role("analyst")
def staged(token: str):
    return _render_report(_own_staged(token))


@bp.post("/staged/<token>/import")
@require_role("analyst")
def confirm(token: str):
    staged = _own_staged(token)
    if staged.meta.get("status") != "staged":
        flash(_("This upload has already been imported."), "warning")
        return redirect(url_for("data.staged", token=token))
    partial = request.form.get("mode") == "partial"
    meta = staged.meta
    ws = current_workspace()
    try:
        report = import_file(
            ws, meta["kind"], staged.path, crs=meta.get("crs"), user=current_user().name, partial=partial,
            describe=problem_reason,
        )  # fmt: skip
    except LayerError as err:  # changed meanwhile (e.g. a parent layer): show what is wrong now
        _keep_problems(meta["report"], [problem_dict(p) for p in err.problems])
        staged.save_meta()
        flash(_("Nothing was imported: the file has problems."), "danger")
        return _render_report(staged, 400)
    meta["status"] = "imported"
    meta["version"] = report.version
    meta["report"].update({k: v for k, v in report_dict(report).items() if k != "preview"})
    if report.rejected_path is not None:
        meta["rejected_file"] = report.rejected_path.name
    staged.save_meta()
    audit(
        "import",
        f"{meta['kind']} version {report.version} from {report.source} (sha256 {report.sha256[:12]}): "
        f"{report.rows_valid} row(s) imported, {report.rows_rejected} rejected"
        + (" (valid rows only)" if partial else ""),
    )
    flash(
        _("Imported %(rows)s rows as version %(version)s.", rows=report.rows_valid, version=report.version),
        "success",
    )
    if report.rejected_path is not None:
        return redirect(url_for("data.staged", token=token))
    staged.discard()
    return redirect(url_for("data.history", kind=meta["kind"]))


@bp.get("/staged/<token>/rejected")
@require_role("analyst")
def rejected(token: str):
    staged = _own_staged(token)
    path = staged.rejected_path()
    if path is None:
        abort(404)
    return send_file(path, mimetype="text/csv", as_attachment=True, download_name=path.name)


@bp.post("/staged/<token>/discard")
@require_role("analyst")
def discard(token: str):
    _own_staged(token).discard()
    flash(_("The upload was discarded."), "info")
    return redirect(url_for("data.index"))


@bp.get("/history/<kind>")
def history(kind: str):
    if kind not in SCHEMAS:
        abort(404)
    ws = current_workspace()
    return render_template(
        "data_history.html",
        kind=kind,
        records=ws.history(kind),
        stored=set(ws.versions(kind)),
        current=ws.current_versions().get(kind),
        layers=_layer_rows(ws),
    )


def _version(text: str) -> int:
    """A version number from the URL (a plain string there, so every route matches without signing in)."""
    if not text.isdigit():
        abort(404)
    return int(text)


@bp.get("/history/<kind>/restore/<version>")
@require_role("analyst")
def restore_confirm(kind: str, version: str):
    version = _version(version)
    ws = current_workspace()
    if kind not in SCHEMAS or version not in ws.versions(kind):
        abort(404)
    record = next((r for r in ws.history(kind) if r.version == version and r.action == "import"), None)
    return render_template(
        "data_restore.html",
        kind=kind,
        version=version,
        record=record,
        current=ws.current_versions().get(kind),
    )


@bp.post("/history/<kind>/restore/<version>")
@require_role("analyst")
def restore(kind: str, version: str):
    version = _version(version)
    ws = current_workspace()
    if kind not in SCHEMAS:
        abort(404)
    before = ws.current_versions().get(kind)
    try:
        ws.restore(kind, version, user=current_user().name)
    except CivicmapError as err:
        flash(str(err), "danger")
        return redirect(url_for("data.history", kind=kind))
    if before != version:
        audit("restore", f"{kind} version {version} restored (version {before} was current)")
        flash(_("Version %(version)s is current again.", version=version), "success")
    return redirect(url_for("data.history", kind=kind))
