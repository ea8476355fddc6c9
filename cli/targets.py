"""``civicmap targets`` (the inspectors' list: xlsx, csv, geojson, pdf) and ``civicmap case`` (update a case)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from layers.errors import CivicmapError


def _targets(args: argparse.Namespace):
    """The workspace's targets under ``args.profile`` (filtered as asked) and the engine.

    Cases are kept in step only under the enforcement profile (``[cases] profile`` of
    ``enforcement.toml``, the default here); another ``--profile`` previews its targets.
    """
    from cli import engine_for, open_workspace, user_name
    from geo.leads import leads_from_layers
    from geo.scoring import load_config
    from geo.targets import filter_targets, workspace_targets

    ws = open_workspace(args)
    case_profile = load_config(ws.path).case_profile
    args.profile = args.profile or case_profile
    engine = engine_for(args)
    found = engine.violations()
    targets = workspace_targets(
        ws,
        found,
        engine.layers,
        leads=leads_from_layers(engine.layers),
        network=engine.network,
        sync=args.profile == case_profile,
        user=f"{user_name(args)} (cli)",
    )
    if args.team and args.team not in set(targets["team"]):
        teams = ", ".join(sorted(set(targets["team"]))) or "none"
        raise CivicmapError(f"--team {args.team!r}: no targets for that team (teams with targets: {teams})")
    chosen = filter_targets(
        targets, team=args.team, subdistrict=args.subdistrict, min_priority=args.min_priority
    )
    return chosen, engine


def cmd_targets(args: argparse.Namespace) -> int:
    from layers.target_export import write_targets

    targets, engine = _targets(args)
    if args.output is None:
        columns = ["rank", "name", "subdistrict", "team", "priority", "case_id", "case_status", "summary"]
        print(targets[columns].to_string(index=False) if len(targets) else "no targets")
        return 0
    if args.output.suffix.lower() == ".pdf":
        from layers.inspection_pdf import write_inspection_pdf

        write_inspection_pdf(targets, args.output, layers=engine.layers)
    else:
        write_targets(targets, args.output, by=args.by)
    print(f"{len(targets)} target(s); wrote {args.output}")
    return 0


def cmd_case(args: argparse.Namespace) -> int:
    from cli import _audit, open_workspace, user_name
    from geo.targets import load_config
    from layers.cases import STATUS_ZH, CaseBook

    ws = open_workspace(args)
    config = load_config(ws.path)
    book = CaseBook(ws, deadline_days=config.deadline_days, revisit_days=config.revisit_days)
    if args.status is None:
        case = book.get(args.case_id)
        print(
            f"case {case.case_id}: {case.venue_name} ({case.venue_kind}/{case.venue_id}) {STATUS_ZH[case.status]}"
        )
        for e in book.history(case.case_id):
            survey = f" surveyed {e.surveyed_distance_m:g} m ({e.survey_report})" if e.survey_report else ""
            print(f"  {e.at}  {e.user:<14} {e.from_status or '-'} → {e.to_status}  {e.note}{survey}")
        return 0
    case = book.update(
        args.case_id,
        args.status,
        user=f"{user_name(args)} (cli)",
        note=args.note,
        reason=args.reason,
        surveyed_distance_m=args.surveyed_m,
        survey_report=args.report,
        deadline=args.deadline,
        revisit_on=args.revisit,
    )
    _audit(ws, args, "case.update", f"case {case.case_id} ({case.venue_name}) → {case.status}")
    print(f"case {case.case_id}: now {case.status}")
    return 0


def register(add: Callable) -> None:
    """Add ``targets`` and ``case`` to the parser (see :data:`cli.FEATURE_COMMANDS`)."""
    p = add(
        "targets",
        cmd_targets,
        "the enforcement target list: one scored target per venue, with cases and tours",
    )
    p.add_argument(
        "--profile", help="rule profile (default: the enforcement profile of enforcement.toml, national)"
    )
    p.add_argument("--team", help="only this enforcement team's targets")
    p.add_argument("--subdistrict", help="only targets in this sub-district")
    p.add_argument("--min-priority", type=float, help="only targets scoring at least this")
    p.add_argument("--by", choices=["subdistrict", "team"], default="subdistrict", help="XLSX sheets per ...")
    p.add_argument("--user", help="who runs it (recorded in case history)")
    p.add_argument("-o", "--output", type=Path, help=".xlsx, .csv (UTF-8 with BOM), .geojson or .pdf")

    p = add("case", cmd_case, "show a case's history, or change its status: civicmap case N [STATUS]")
    p.add_argument("case_id", type=int)
    p.add_argument(
        "status",
        nargs="?",
        choices=["new", "assigned", "inspected", "rectified", "closed", "relocated", "dismissed"],
    )
    p.add_argument("--note", default="")
    p.add_argument("--reason", default="", help="required to dismiss")
    p.add_argument("--surveyed-m", type=float, help="field-surveyed distance in metres (needs --report)")
    p.add_argument("--report", default="", help="survey report number")
    p.add_argument("--deadline", help="YYYY-MM-DD: reopen if still violating after this date")
    p.add_argument("--revisit", help="YYYY-MM-DD: revisit date of a closed unlicensed site")
    p.add_argument("--user")
