"""``civicmap quota`` and ``civicmap scenario``: the planning desk on the command line.

``civicmap quota --per-residents 12000 -o quota.xlsx`` writes the density, stock and quota table
per sub-district (with a district row), prints the Chinese summary, and optionally the permissible
zones (``--zones zones.geojson``) and the relocation suggestions (``--relocation moves.csv``).
``civicmap scenario --limits 100,150,...,500 -o sweep.csv --chart sweep.svg`` runs a sweep.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from layers.errors import CivicmapError

TABLE_SUFFIXES = (".csv", ".xlsx")
CHART_SUFFIXES = (".svg", ".png")


def write_table(frame: pd.DataFrame | dict[str, pd.DataFrame], path: Path) -> Path:
    """A table (or several, one XLSX sheet each) as CSV (UTF-8 with BOM, first table) or XLSX."""
    sheets = frame if isinstance(frame, dict) else {"table": frame}
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise CivicmapError(f"{path}: unknown output format {suffix!r}; use .csv or .xlsx")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        next(iter(sheets.values())).to_csv(path, index=False, encoding="utf-8-sig")
    else:
        with pd.ExcelWriter(path, engine="openpyxl") as writer:
            for name, table in sheets.items():
                table.to_excel(writer, sheet_name=name[:31], index=False)
    return path


def _ints(text: str, what: str) -> list[float]:
    try:
        values = [float(x) for x in text.replace("，", ",").split(",") if x.strip()]
    except ValueError:
        raise CivicmapError(
            f"{what} {text!r}: expected numbers separated by commas, e.g. 100,150,200"
        ) from None
    if not values or any(v <= 0 for v in values):
        raise CivicmapError(f"{what} {text!r}: expected distances > 0 in metres")
    return values


def cmd_quota(args: argparse.Namespace) -> int:
    from cli import engine_for
    from geo.permissible import permissible_zones
    from geo.quota import quota_summary, quota_table, relocation_suggestions

    if args.output.suffix.lower() not in TABLE_SUFFIXES:
        raise CivicmapError(f"{args.output}: unknown output format; use .csv or .xlsx")
    engine = engine_for(args)
    zones = permissible_zones(engine, args.kind, spacing_m=args.spacing)
    table = quota_table(engine, per_residents=args.per_residents, cap=args.cap, kind=args.kind, zones=zones)
    summary = quota_summary(table)
    sheets = {"quota": table.round(4)}
    moves = None
    if args.relocation or args.output.suffix.lower() == ".xlsx":
        moves = relocation_suggestions(engine, zones, args.kind)
        sheets["relocation"] = moves.round({"distance_m": 1})
        sheets["summary"] = pd.DataFrame({"summary": [summary]})
    write_table(sheets, args.output)
    if args.relocation:
        write_table(moves.round({"distance_m": 1}), args.relocation)
    if args.zones:
        zones.to_geojson(args.zones)
    print(summary)
    print(f"wrote {args.output} ({len(table) - 1} sub-districts, profile {engine.profile.name})")
    return 0


def cmd_scenario(args: argparse.Namespace) -> int:
    from cli import open_workspace
    from geo.rules import load_profile
    from geo.scenarios import (
        Scenario,
        ScenarioRunner,
        limit_scenarios,
        per_subdistrict,
        sensitivity_chart,
        sweep,
    )

    if args.output.suffix.lower() not in TABLE_SUFFIXES:
        raise CivicmapError(f"{args.output}: unknown output format; use .csv or .xlsx")
    if args.chart and args.chart.suffix.lower() not in CHART_SUFFIXES:
        raise CivicmapError(f"{args.chart}: unknown chart format; use .svg or .png")
    ws = open_workspace(args)
    profile = load_profile(args.profile, extra_dir=ws.path / "profiles")
    levels = tuple(x.strip() for x in args.levels.split(",") if x.strip()) if args.levels else None
    template = Scenario(name="scenario", kind=args.kind, method=args.method, levels=levels, spacing_m=args.spacing,
                        residential_scope=args.residential, cap=args.cap, per_residents=args.per_residents)  # fmt: skip
    scenarios = limit_scenarios(_ints(args.limits, "--limits"), template) if args.limits else [template]
    runner = ScenarioRunner(ws.read_all(), profile, args.kind)
    frame, results = sweep(runner, scenarios)
    sheets = {
        "sweep": frame,
        "permissible_km2": per_subdistrict(results, "permissible_km2").round(4).reset_index(),
    }
    if "quota" in results[0].table:
        sheets["quota"] = per_subdistrict(results, "quota").reset_index()
    write_table(sheets, args.output)
    if args.chart:
        if not args.limits:
            raise CivicmapError("--chart needs --limits (the chart is limit against affected venues)")
        args.chart.write_bytes(sensitivity_chart(frame, fmt=args.chart.suffix.lower()[1:]))
        print(f"wrote {args.chart}")
    for row in frame.itertuples():
        print(f"{row.scenario:>10}: {row.affected:>4} affected (+{row.newly_affected}/-{row.no_longer_affected}), "
              f"permissible {row.permissible_km2:.3f} km²")  # fmt: skip
    print(f"wrote {args.output} ({len(frame)} scenario(s), profile {profile.name})")
    return 0


def register(add: Callable) -> None:
    """Add this area's sub-commands to the parser (see :data:`cli.FEATURE_COMMANDS`)."""
    p = add("quota", cmd_quota, "density, stock, permissible land and quotas per sub-district")
    p.add_argument("--profile", default="national", help="rule profile (default: national)")
    p.add_argument("--kind", default="net_cafes", help="venue kind (default: net_cafes)")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--per-residents", type=float, metavar="N", help="target: one venue per N residents")
    target.add_argument("--cap", type=int, metavar="N", help="district cap on the number of venues")
    p.add_argument(
        "--spacing", type=float, default=0.0, metavar="M", help="policy spacing around existing venues, m"
    )
    p.add_argument("-o", "--output", type=Path, required=True, help=".csv (UTF-8 with BOM) or .xlsx")
    p.add_argument("--zones", type=Path, help="also write the permissible zones as GeoJSON")
    p.add_argument("--relocation", type=Path, help="also write relocation suggestions (.csv or .xlsx)")

    p = add("scenario", cmd_scenario, "policy tester: what a rule change does to venues, land and quotas")
    p.add_argument("--profile", default="national", help="rule profile to change (default: national)")
    p.add_argument("--kind", default="net_cafes")
    p.add_argument("--limits", help="sweep of limits in metres, e.g. 100,150,200,250,300,350,400,450,500")
    p.add_argument("--method", choices=["boundary", "gate-walk", "door-walk"], help="measuring method")
    p.add_argument("--levels", help="protected school levels, comma-separated (e.g. add kindergarten)")
    p.add_argument("--spacing", type=float, default=0.0, metavar="M", help="spacing between venues, m")
    p.add_argument(
        "--residential", choices=["building", "building_or_compound", "none"], help="residential rule"
    )
    target = p.add_mutually_exclusive_group()
    target.add_argument("--per-residents", type=float, metavar="N")
    target.add_argument("--cap", type=int, metavar="N")
    p.add_argument("-o", "--output", type=Path, required=True, help=".csv or .xlsx")
    p.add_argument("--chart", type=Path, help="sensitivity chart (.svg or .png)")
