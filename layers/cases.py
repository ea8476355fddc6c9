"""Enforcement cases and their history, kept in the workspace database to closure.

Every target venue (one per ``(venue_kind, venue_id)``) has one case.  Statuses::

    new → assigned → inspected → rectified | closed | relocated | dismissed (reason required)

plus ``resolved`` (the analysis no longer finds the venue: *resolved by data*).  Every change
appends a history row: who, when, from → to, the note, the reason, and optionally a surveyed
distance (metres) with its survey report number, which overrides the computed distance.

:meth:`CaseBook.sync` keeps continuity across analysis runs: a venue keeps its case; a
rectified / closed / relocated case still found after its deadline reopens (back to ``new``);
an open case whose venue is no longer found becomes ``resolved``; a resolved case found again
reopens.  Nothing is ever deleted.  A closed unlicensed site gets a revisit date; revisits past
due are listed by :meth:`CaseBook.overdue_revisits`.

Crash safety: each update and each sync is one ``BEGIN IMMEDIATE`` SQLite transaction through
:meth:`layers.store.Workspace.sqlite` (WAL mode): a process killed midway leaves the database
as it was before the call, and two writers at once (a web request and the CLI) take turns.
"""

from __future__ import annotations

import logging
import math
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta

from layers.errors import CivicmapError
from layers.store import Workspace

log = logging.getLogger(__name__)

STATUSES = ("new", "assigned", "inspected", "rectified", "closed", "relocated", "dismissed", "resolved")
OPEN_STATUSES = ("new", "assigned", "inspected")
#: outcomes that reopen when the violation is still found after the deadline
CLOSED_STATUSES = ("rectified", "closed", "relocated")
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "new": ("assigned", "inspected", "dismissed"),
    "assigned": ("inspected", "dismissed"),
    "inspected": ("rectified", "closed", "relocated", "dismissed"),
    "rectified": (),
    "closed": (),
    "relocated": (),
    "dismissed": (),
    "resolved": (),
}
STATUS_ZH = {
    "new": "新立案",
    "assigned": "已分派",
    "inspected": "已检查",
    "rectified": "已整改",
    "closed": "已关停",
    "relocated": "已搬迁",
    "dismissed": "已撤销",
    "resolved": "数据已消除",
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS enforcement_cases (
    case_id INTEGER PRIMARY KEY AUTOINCREMENT,
    venue_kind TEXT NOT NULL,
    venue_id TEXT NOT NULL,
    venue_name TEXT NOT NULL DEFAULT '',
    licence_status TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    last_seen_at TEXT,
    deadline TEXT,
    revisit_on TEXT,
    surveyed_distance_m REAL,
    survey_report TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    closures INTEGER NOT NULL DEFAULT 0,
    reopen_count INTEGER NOT NULL DEFAULT 0,
    UNIQUE (venue_kind, venue_id)
);
CREATE TABLE IF NOT EXISTS enforcement_case_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id INTEGER NOT NULL REFERENCES enforcement_cases (case_id),
    at TEXT NOT NULL,
    user TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    surveyed_distance_m REAL,
    survey_report TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS enforcement_case_history_case ON enforcement_case_history (case_id);
"""


class CaseError(CivicmapError):
    """A case update that cannot be made; the message says which case, what and why."""


@dataclass(frozen=True)
class Case:
    """One enforcement case (dates are ISO ``YYYY-MM-DD``, times ISO UTC)."""

    case_id: int
    venue_kind: str
    venue_id: str
    venue_name: str
    licence_status: str
    status: str
    opened_at: str
    updated_at: str
    last_seen_at: str | None
    deadline: str | None
    revisit_on: str | None
    surveyed_distance_m: float | None
    survey_report: str
    reason: str
    closures: int
    reopen_count: int

    @property
    def key(self) -> tuple[str, str]:
        return (self.venue_kind, self.venue_id)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(frozen=True)
class CaseEvent:
    """One line of a case's history."""

    id: int
    case_id: int
    at: str
    user: str
    from_status: str | None
    to_status: str
    note: str
    reason: str
    surveyed_distance_m: float | None
    survey_report: str


@dataclass
class SyncReport:
    """What :meth:`CaseBook.sync` did, counted."""

    created: int = 0
    kept: int = 0
    reopened: int = 0
    resolved: int = 0

    def summary(self) -> str:
        return (
            f"cases: {self.created} new, {self.kept} kept, {self.reopened} reopened, "
            f"{self.resolved} resolved by data"
        )


_CASE_COLUMNS = ", ".join(f.name for f in fields(Case))
_EVENT_COLUMNS = ", ".join(f.name for f in fields(CaseEvent))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _iso_day(value: date | str | None, what: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value.isoformat()
    try:
        return date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise CaseError(f"{what} = {value!r} is not a date (expected YYYY-MM-DD)") from None


class CaseBook:
    """The cases of one workspace.

    Parameters
    ----------
    workspace
        The workspace whose database holds the cases.
    deadline_days
        Days after a rectified / closed / relocated outcome before a still-found violation reopens.
    revisit_days
        Days after closing an unlicensed site before its revisit is due.
    """

    def __init__(self, workspace: Workspace, *, deadline_days: int = 30, revisit_days: int = 90) -> None:
        self.workspace = workspace
        self.deadline_days = int(deadline_days)
        self.revisit_days = int(revisit_days)
        with workspace.sqlite() as con:
            con.executescript(_SCHEMA)

    # ------------------------------------------------------------ reading
    def cases(self) -> dict[tuple[str, str], Case]:
        """Every case, keyed by ``(venue_kind, venue_id)``."""
        with self.workspace.sqlite() as con:
            rows = con.execute(f"SELECT {_CASE_COLUMNS} FROM enforcement_cases ORDER BY case_id").fetchall()
        return {(r[1], r[2]): Case(*r) for r in rows}

    def get(self, case_id: int) -> Case:
        """One case; :class:`CaseError` when there is none with that number."""
        with self.workspace.sqlite() as con:
            return _case(con, case_id)

    def history(self, case_id: int) -> list[CaseEvent]:
        """The case's changes, oldest first."""
        with self.workspace.sqlite() as con:
            rows = con.execute(
                f"SELECT {_EVENT_COLUMNS} FROM enforcement_case_history WHERE case_id = ? ORDER BY id",
                (int(case_id),),
            ).fetchall()
        return [CaseEvent(*r) for r in rows]

    def overdue_revisits(self, today: date | None = None) -> list[Case]:
        """Closed unlicensed sites whose revisit date has passed, oldest first."""
        day = (today or date.today()).isoformat()
        with self.workspace.sqlite() as con:
            rows = con.execute(
                f"SELECT {_CASE_COLUMNS} FROM enforcement_cases WHERE status = 'closed' "
                "AND revisit_on IS NOT NULL AND revisit_on < ? ORDER BY revisit_on, case_id",
                (day,),
            ).fetchall()
        return [Case(*r) for r in rows]

    def counts(self) -> dict[str, int]:
        """Number of cases per status (every status listed, zeros included)."""
        with self.workspace.sqlite() as con:
            rows = dict(con.execute("SELECT status, count(*) FROM enforcement_cases GROUP BY status"))
        return {s: int(rows.get(s, 0)) for s in STATUSES}

    # ------------------------------------------------------------ changing
    def update(
        self,
        case_id: int,
        status: str,
        *,
        user: str,
        note: str = "",
        reason: str = "",
        surveyed_distance_m: float | None = None,
        survey_report: str = "",
        deadline: date | str | None = None,
        revisit_on: date | str | None = None,
        today: date | None = None,
    ) -> Case:
        """Move a case to ``status`` (or keep it, to add a note or a survey) and record who, when, why.

        Parameters
        ----------
        status
            The new status; see :data:`TRANSITIONS` (the current status again records a note).
        user
            Who made the change.
        reason
            Required when dismissing.
        surveyed_distance_m, survey_report
            A field-surveyed distance in metres and the survey report number (both or neither).
        deadline
            For rectified / closed / relocated: after this date a still-found violation reopens
            (default: ``today + deadline_days``).
        revisit_on
            For a closed unlicensed site: when to revisit (default: ``today + revisit_days``).

        Raises
        ------
        CaseError
            Unknown case or status, a transition not allowed, a missing reason or report number.
        """
        if status not in STATUSES or status == "resolved":
            allowed = ", ".join(s for s in STATUSES if s != "resolved")
            raise CaseError(f"case {case_id}: status = {status!r} is not one of {allowed}")
        if not user:
            raise CaseError(f"case {case_id}: who made the change is required")
        survey = _checked_survey(case_id, surveyed_distance_m, survey_report)
        day = today or date.today()
        with self.workspace.sqlite() as con:
            con.execute("BEGIN IMMEDIATE")  # read and write in one write transaction
            case = _case(con, case_id)
            if status != case.status and status not in TRANSITIONS[case.status]:
                allowed = ", ".join(TRANSITIONS[case.status]) or "none"
                raise CaseError(
                    f"case {case_id}: cannot go from {case.status} to {status} (allowed: {allowed})"
                )
            if status == "dismissed" and status != case.status and not reason.strip():
                raise CaseError(f"case {case_id}: dismissing needs a reason")
            changes: dict[str, object] = {"status": status, "updated_at": _now()}
            if survey is not None:
                changes["surveyed_distance_m"], changes["survey_report"] = survey
            if reason.strip():
                changes["reason"] = reason.strip()
            if status in CLOSED_STATUSES and status != case.status:
                changes["deadline"] = (
                    _iso_day(deadline, "deadline") or (day + timedelta(days=self.deadline_days)).isoformat()
                )
                changes["closures"] = case.closures + 1
                if status == "closed" and case.licence_status == "unlicensed":
                    changes["revisit_on"] = (
                        _iso_day(revisit_on, "revisit date")
                        or (day + timedelta(days=self.revisit_days)).isoformat()
                    )
            elif revisit_on is not None:
                changes["revisit_on"] = _iso_day(revisit_on, "revisit date")
            _set(con, case_id, changes)
            _log(con, case_id, user, case.status, status, note, reason, survey)
            updated = _case(con, case_id)
        log.info("case %s: %s → %s by %s", case_id, case.status, status, user)
        return updated

    def sync(
        self,
        venues: Iterable[Mapping[str, object]],
        *,
        user: str = "analysis",
        today: date | None = None,
    ) -> SyncReport:
        """Bring the cases in line with the venues an analysis run found (one transaction).

        Parameters
        ----------
        venues
            One mapping per target with ``kind``, ``venue_id``, ``name`` and ``status`` (licence
            status), e.g. the rows of :func:`geo.targets.build_targets`.
        user
            Recorded in the history of created, reopened and resolved cases.
        today
            The date deadlines are compared with (default: today).
        """
        day = (today or date.today()).isoformat()
        now = _now()
        report = SyncReport()
        with self.workspace.sqlite() as con:
            con.execute("BEGIN IMMEDIATE")  # two syncs at once: the second waits, then sees the first's cases
            known = {
                (r[1], r[2]): Case(*r)
                for r in con.execute(f"SELECT {_CASE_COLUMNS} FROM enforcement_cases").fetchall()
            }
            seen: set[tuple[str, str]] = set()
            for venue in venues:
                key = (str(venue["kind"]), str(venue["venue_id"]))
                if key in seen:
                    continue
                seen.add(key)
                name, licence = str(venue.get("name") or ""), str(venue.get("status") or "")
                case = known.get(key)
                if case is None:
                    cur = con.execute(
                        "INSERT INTO enforcement_cases (venue_kind, venue_id, venue_name, licence_status, "
                        "status, opened_at, updated_at, last_seen_at) VALUES (?, ?, ?, ?, 'new', ?, ?, ?)",
                        (*key, name, licence, now, now, now),
                    )
                    _log(con, int(cur.lastrowid), user, None, "new", "分析发现违规，立案", "", None)
                    report.created += 1
                    continue
                _set(con, case.case_id, {"venue_name": name, "licence_status": licence, "last_seen_at": now})
                reopen = case.status == "resolved" or (
                    case.status in CLOSED_STATUSES and case.deadline is not None and day > case.deadline
                )
                if reopen:
                    _set(con, case.case_id, {"status": "new", "updated_at": now,
                                             "reopen_count": case.reopen_count + 1})  # fmt: skip
                    note = (
                        "分析再次发现违规，重新立案"
                        if case.status == "resolved"
                        else f"整改期限 {case.deadline} 后仍违规，重新立案"
                    )
                    _log(con, case.case_id, user, case.status, "new", note, "", None)
                    report.reopened += 1
                else:
                    report.kept += 1
            for key, case in known.items():
                if key not in seen and case.status in OPEN_STATUSES:
                    _set(con, case.case_id, {"status": "resolved", "updated_at": now})
                    _log(con, case.case_id, user, case.status, "resolved",
                         "分析不再发现违规（数据已消除）", "", None)  # fmt: skip
                    report.resolved += 1
        log.info("%s", report.summary())
        return report


# ------------------------------------------------------------------ SQL helpers
def _case(con: sqlite3.Connection, case_id: int) -> Case:
    try:
        number = int(case_id)
    except (TypeError, ValueError):
        raise CaseError(f"case number {case_id!r} is not a number") from None
    row = con.execute(
        f"SELECT {_CASE_COLUMNS} FROM enforcement_cases WHERE case_id = ?", (number,)
    ).fetchone()
    if row is None:
        raise CaseError(f"there is no case number {number}")
    return Case(*row)


def _set(con: sqlite3.Connection, case_id: int, changes: Mapping[str, object]) -> None:
    names = [f.name for f in fields(Case)]
    bad = [k for k in changes if k not in names]
    if bad:  # column names below come only from this module
        raise ValueError(f"unknown case columns {bad}")
    assignments = ", ".join(f"{k} = ?" for k in changes)
    con.execute(f"UPDATE enforcement_cases SET {assignments} WHERE case_id = ?", (*changes.values(), case_id))


def _log(con, case_id, user, from_status, to_status, note, reason, survey) -> None:
    distance, report = survey if survey is not None else (None, "")
    con.execute(
        "INSERT INTO enforcement_case_history (case_id, at, user, from_status, to_status, note, reason, "
        "surveyed_distance_m, survey_report) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (case_id, _now(), user, from_status, to_status, note or "", reason or "", distance, report),
    )


def _checked_survey(case_id: int, distance_m: float | None, report: str) -> tuple[float, str] | None:
    report = (report or "").strip()
    if distance_m is None or (isinstance(distance_m, str) and not distance_m.strip()):
        if report:
            raise CaseError(f"case {case_id}: survey report {report!r} given without a surveyed distance")
        return None
    try:
        value = float(distance_m)
    except (TypeError, ValueError):
        raise CaseError(
            f"case {case_id}: surveyed distance = {distance_m!r} is not a number of metres"
        ) from None
    if not math.isfinite(value) or value < 0:
        raise CaseError(f"case {case_id}: surveyed distance = {distance_m!r} must be a distance ≥ 0 m")
    if not report:
        raise CaseError(f"case {case_id}: a surveyed distance needs the survey report number")
    return value, report
