"""Enforcement cases: transitions, history, surveys, revisits, continuity across analysis runs, crash safety."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from geo.rules import load_profile
from geo.targets import workspace_targets
from geo.violations import RuleEngine
from layers.cases import CaseBook, CaseError
from layers.store import Workspace

ROOT = Path(__file__).resolve().parents[2]
DAY = date(2026, 3, 1)


@pytest.fixture
def ws(tmp_path) -> Workspace:
    return Workspace.open(tmp_path / "ws", create=True)


@pytest.fixture
def book(ws) -> CaseBook:
    return CaseBook(ws, deadline_days=30, revisit_days=90)


def venue(venue_id, status="licensed", kind="net_cafes"):
    return {"kind": kind, "venue_id": venue_id, "name": f"网吧{venue_id}", "status": status}


def test_sync_creates_one_case_per_venue_with_a_history_line(book):
    report = book.sync([venue("a"), venue("b"), venue("a")], today=DAY)
    assert (report.created, report.kept) == (2, 0)
    cases = book.cases()
    assert set(cases) == {("net_cafes", "a"), ("net_cafes", "b")}
    a = cases[("net_cafes", "a")]
    assert a.status == "new" and a.venue_name == "网吧a"
    [event] = book.history(a.case_id)
    assert (event.from_status, event.to_status, event.user) == (None, "new", "analysis")


def test_status_changes_record_who_when_note_and_survey(book):
    book.sync([venue("a")], today=DAY)
    case_id = book.cases()[("net_cafes", "a")].case_id
    book.update(case_id, "assigned", user="张三", note="派给一中队", today=DAY)
    book.update(case_id, "inspected", user="李四", note="现场测量", surveyed_distance_m=187.5,
                survey_report="测绘-2026-017", today=DAY)  # fmt: skip
    case = book.update(case_id, "rectified", user="李四", note="已停业整改", today=DAY)
    assert case.status == "rectified" and case.deadline == "2026-03-31" and case.closures == 1
    assert case.surveyed_distance_m == 187.5 and case.survey_report == "测绘-2026-017"
    events = book.history(case_id)
    assert [(e.from_status, e.to_status, e.user) for e in events[1:]] == [
        ("new", "assigned", "张三"), ("assigned", "inspected", "李四"), ("inspected", "rectified", "李四")]  # fmt: skip
    assert events[2].note == "现场测量" and events[2].survey_report == "测绘-2026-017"
    assert events[2].surveyed_distance_m == 187.5
    assert all(e.at for e in events)


@pytest.mark.parametrize(
    ("steps", "status", "kwargs", "message"),
    [([], "closed", {}, "cannot go from new to closed"),
     ([], "dismissed", {}, "dismissing needs a reason"),
     ([], "resolved", {}, "is not one of"),
     ([], "flying", {}, "'flying' is not one of"),
     ([], "assigned", {"surveyed_distance_m": 190.0}, "needs the survey report number"),
     ([], "assigned", {"survey_report": "R-1"}, "without a surveyed distance"),
     ([], "assigned", {"surveyed_distance_m": -3, "survey_report": "R"}, "must be a distance"),
     (["assigned", "dismissed"], "assigned", {}, "cannot go from dismissed to assigned"),
     (["inspected"], "closed", {"deadline": "31/03/2026"}, "is not a date")],
)  # fmt: skip
def test_bad_updates_are_refused_and_change_nothing(book, steps, status, kwargs, message):
    book.sync([venue("a")], today=DAY)
    case_id = book.cases()[("net_cafes", "a")].case_id
    for step in steps:
        book.update(case_id, step, user="u", reason="误报" if step == "dismissed" else "")
    before = (book.get(case_id), len(book.history(case_id)))
    with pytest.raises(CaseError, match=message):
        book.update(case_id, status, user="u", **kwargs)
    assert (book.get(case_id), len(book.history(case_id))) == before


def test_unknown_case_number(book):
    with pytest.raises(CaseError, match="no case number 99"):
        book.get(99)


def test_dismissed_with_reason_keeps_it(book):
    book.sync([venue("a")], today=DAY)
    case = book.update(1, "dismissed", user="u", reason="学校已搬迁", today=DAY)
    assert case.status == "dismissed" and case.reason == "学校已搬迁"
    assert book.history(1)[-1].reason == "学校已搬迁"


def test_closed_unlicensed_site_gets_a_revisit_and_shows_when_overdue(book):
    book.sync([venue("lead", status="unlicensed"), venue("lic")], today=DAY)
    for case_id in (1, 2):
        book.update(case_id, "inspected", user="u", today=DAY)
        book.update(case_id, "closed", user="u", today=DAY)
    assert book.get(1).revisit_on == "2026-05-30"  # DAY + 90 days
    assert book.get(2).revisit_on is None  # licensed venue: no revisit
    assert book.overdue_revisits(date(2026, 5, 30)) == []
    assert [c.case_id for c in book.overdue_revisits(date(2026, 5, 31))] == [1]


def test_continuity_rules_across_runs(book):
    """keeps its case; closed reopens only after its deadline; dismissed stays; gone → resolved; back → reopened."""
    book.sync([venue("a"), venue("b"), venue("c")], today=DAY)
    book.update(1, "inspected", user="u", today=DAY)
    book.update(1, "closed", user="u", deadline="2026-03-10", today=DAY)
    book.update(2, "dismissed", user="u", reason="测量有误", today=DAY)
    ids = {k: c.case_id for k, c in book.cases().items()}

    report = book.sync([venue("a"), venue("b"), venue("d")], today=date(2026, 3, 10))
    cases = book.cases()
    assert (report.created, report.kept, report.reopened, report.resolved) == (1, 2, 0, 1)
    assert cases[("net_cafes", "a")].status == "closed"  # on the deadline day: not yet
    assert cases[("net_cafes", "b")].status == "dismissed"
    assert cases[("net_cafes", "c")].status == "resolved"  # no longer found, not deleted
    assert cases[("net_cafes", "d")].status == "new"
    assert {k: c.case_id for k, c in cases.items() if k in ids} == ids  # same venue, same case

    report = book.sync([venue("a"), venue("c"), venue("d")], today=date(2026, 3, 11))
    cases = book.cases()
    assert (report.reopened, report.resolved) == (2, 0)
    assert cases[("net_cafes", "a")].status == "new" and cases[("net_cafes", "a")].reopen_count == 1
    assert cases[("net_cafes", "c")].status == "new"  # found again
    assert cases[("net_cafes", "b")].status == "dismissed"  # dismissed cases stay closed
    assert "整改期限 2026-03-10 后仍违规" in book.history(ids[("net_cafes", "a")])[-1].note
    assert len(cases) == 4


def test_concurrent_syncs_make_one_case_per_venue(ws, book):
    venues = [venue(str(i)) for i in range(40)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        reports = list(pool.map(lambda _i: CaseBook(ws).sync(venues, today=DAY), range(4)))
    assert sum(r.created for r in reports) == 40 and sum(r.kept for r in reports) == 120
    assert len(book.cases()) == 40


def test_a_failed_sync_leaves_no_trace(book):
    def venues():
        yield venue("a")
        raise RuntimeError("analysis crashed")

    with pytest.raises(RuntimeError):
        book.sync(venues(), today=DAY)
    assert book.cases() == {}


@pytest.mark.slow
def test_a_killed_process_loses_no_committed_case(ws, book):
    """A process killed in the middle of a sync leaves the cases exactly as the last commit left them."""
    book.sync([venue("a")], today=DAY)
    book.update(1, "assigned", user="u", today=DAY)
    script = (
        "import os, sys\nfrom layers.store import Workspace\nfrom layers.cases import CaseBook\n"
        f"book = CaseBook(Workspace.open({str(ws.path)!r}))\n"
        "def venues():\n"
        "    yield {'kind': 'net_cafes', 'venue_id': 'b', 'name': 'b', 'status': 'licensed'}\n"
        "    os._exit(9)\n"
        "book.sync(venues())\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, timeout=60)
    assert done.returncode == 9
    cases = CaseBook(Workspace.open(ws.path)).cases()
    assert list(cases) == [("net_cafes", "a")] and cases[("net_cafes", "a")].status == "assigned"
    assert len(book.history(1)) == 2


# ------------------------------------------------------------------ two real analysis runs
def layers_with(cafes: dict[str, tuple[float, float]]) -> dict[str, gpd.GeoDataFrame]:
    school = shapely.box(114.300, 30.500, 114.302, 30.502)
    schools = gpd.GeoDataFrame({"id": ["s1"], "name": ["示范小学"], "level": ["primary"], "approximate": [False]},
                               geometry=[school], crs="EPSG:4326")  # fmt: skip
    net_cafes = gpd.GeoDataFrame(
        {"id": list(cafes), "name": [f"网吧{k}" for k in cafes], "licence_no": [f"L{k}" for k in cafes],
         "status": ["licensed"] * len(cafes), "address": [""] * len(cafes), "subdistrict": ["东湖街道"] * len(cafes)},
        geometry=[shapely.Point(xy) for xy in cafes.values()], crs="EPSG:4326",
    )  # fmt: skip
    return {"schools": schools, "net_cafes": net_cafes}


def run(ws, layers, today):
    engine = RuleEngine(layers, load_profile("national"))
    return workspace_targets(ws, engine.violations(), layers, today=today)


def test_continuity_across_two_analysis_runs_with_changed_data(ws):
    # run 1: a is ~100 m east of the school, b ~50 m north; c is 1 km away
    first = run(ws, layers_with({"a": (114.303, 30.501), "b": (114.301, 30.5025), "c": (114.31, 30.51)}), DAY)
    assert set(first["venue_id"]) == {"a", "b"}
    case_a = int(first.set_index("venue_id").loc["a", "case_id"])
    book = CaseBook(ws)
    book.update(case_a, "inspected", user="u", today=DAY)
    book.update(case_a, "closed", user="u", deadline="2026-03-05", today=DAY)
    # run 2 after the deadline, with new data: a still there, b moved away, c moved in front of the school
    second = run(ws, layers_with({"a": (114.303, 30.501), "b": (114.32, 30.52), "c": (114.3005, 30.4995)}),
                 date(2026, 3, 6))  # fmt: skip
    t = second.set_index("venue_id")
    assert set(t.index) == {"a", "c"}
    assert int(t.loc["a", "case_id"]) == case_a and t.loc["a", "case_status"] == "new"  # reopened
    assert (
        "逾期仍违规重新立案 1 次" in t.loc["a", "priority_reasons"]
        and "曾经查处" in t.loc["a", "priority_reasons"]
    )
    cases = book.cases()
    assert cases[("net_cafes", "b")].status == "resolved"
    assert cases[("net_cafes", "c")].status == "new"
    assert t.loc["a", "route_order"] >= 1 and t.loc["c", "route_order"] >= 1
