"""``civicmap coverage`` and ``civicmap site-facilities``: thin callers of :mod:`geo.coverage`
and :mod:`geo.siting` (the same functions the /coverage page uses)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from layers.errors import CivicmapError
from layers.schema import FACILITY_TYPES

TYPE_CHOICES = ("any", *FACILITY_TYPES)


def _write_tables(path: Path, sheets: dict[str, pd.DataFrame]) -> list[Path]:
    """CSV (the first table in ``path``, each other one in ``<stem>_<name>.csv``) or XLSX sheets."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise CivicmapError(f"-o {path}: a .csv or .xlsx file expected")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".xlsx":
        with pd.ExcelWriter(path, engine="openpyxl") as writer:
            for name, table in sheets.items():
                table.to_excel(writer, sheet_name=name, index=False)
        return [path]
    written = []
    for k, (name, table) in enumerate(sheets.items()):
        target = path if k == 0 else path.with_name(f"{path.stem}_{name}{path.suffix}")
        table.to_csv(target, index=False, encoding="utf-8-sig")
        written.append(target)
    return written


def _method_args(p: argparse.ArgumentParser) -> None:
    how = p.add_mutually_exclusive_group()
    how.add_argument("--walk", action="store_true", help="measure by walking on the roads layer")
    how.add_argument(
        "--radius", type=float, metavar="M", help="one straight-line radius in metres for every type"
    )
    p.add_argument("--standards", type=Path, help="TOML file overriding geo/coverage_standards.toml")
    p.add_argument("--cutoff", help="cutoff label, e.g. '15 min' (default), '5 min', 'standard'")


def _cutoff(args: argparse.Namespace) -> str | None:
    return None if args.radius is not None else (args.cutoff or "15 min")


def cmd_coverage(args: argparse.Namespace) -> int:
    from cli import open_workspace
    from geo.coverage import (
        compute_coverage,
        free_for_minors_violations,
        load_standards,
        subdistricts_without_centre,
    )

    layers = open_workspace(args).read_all()
    standards = load_standards(args.standards)
    types = None if args.type == "any" else [args.type]
    method = "walk" if args.walk else "straight"
    result = compute_coverage(layers, method=method, standards=standards, types=types, radius_m=args.radius)
    cutoff = _cutoff(args)
    table = result.table(args.type, cutoff)
    uncovered = result.uncovered(args.type, cutoff)
    print(f"coverage of {args.type} ({method}, {result._cutoff(cutoff)}):")
    print(table.to_string(index=False, formatters={"share": "{:.1%}".format}))
    print(f"{len(uncovered)} residential units uncovered")
    if args.output:
        facilities = layers["cultural_facilities"]
        sheets = {
            "coverage": table,
            "uncovered": uncovered,
            "all_cutoffs": result.summary(),
            "not_free_for_minors": free_for_minors_violations(facilities, standards),
        }
        if result.facilities is not None:  # the reach each facility was given (libraries by level)
            sheets["facilities"] = pd.DataFrame(result.facilities.drop(columns="geometry", errors="ignore"))
        if layers.get("subdistricts") is not None:
            missing = subdistricts_without_centre(facilities, layers["subdistricts"], standards)
            sheets["no_grassroots_centre"] = pd.DataFrame({"subdistrict": missing})
        for path in _write_tables(args.output, sheets):
            print(f"written: {path}")
    return 0


def cmd_site(args: argparse.Namespace) -> int:
    from cli import open_workspace
    from geo.coverage import load_standards
    from geo.siting import site_facilities
    from layers.importer import validate_file

    layers = open_workspace(args).read_all()
    candidates = None
    if args.candidates is not None:
        checked, report = validate_file(args.candidates, "pois")
        if report.problems:
            raise CivicmapError(
                f"{args.candidates}: {len(report.problems)} problem(s), first: {report.problems[0]}"
            )
        candidates = checked.valid
    result = site_facilities(
        layers,
        args.type,
        p=args.p,
        target_share=args.target,
        candidates=candidates,
        method="walk" if args.walk else "straight",
        radius_m=args.radius,
        cutoff=args.cutoff or "standard",
        spacing_m=args.spacing,
        standards=load_standards(args.standards),
    )
    sites = pd.DataFrame(result.sites.drop(columns="geometry"))
    sites["lon"], sites["lat"] = result.sites.geometry.x.round(7), result.sites.geometry.y.round(7)
    share = (result.covered_before + result.newly_covered) / max(result.population, 1)
    print(
        f"{len(sites)} new {args.type} site(s) ({result.cutoff}): +{result.newly_covered:,} residents, "
        f"coverage {result.covered_before / max(result.population, 1):.1%} -> {share:.1%}"
    )
    print(sites.to_string(index=False))
    if args.output:
        for path in _write_tables(args.output, {"sites": sites, "by_subdistrict": result.by_subdistrict}):
            print(f"written: {path}")
    return 0


def register(add: Callable) -> None:
    """Add this area's sub-commands to the parser (see :data:`cli.FEATURE_COMMANDS`)."""
    p = add("coverage", cmd_coverage, "residents within reach of cultural facilities, per sub-district")
    p.add_argument("--type", default="any", choices=TYPE_CHOICES, metavar="T", help="facility type or 'any'")
    _method_args(p)
    p.add_argument("-o", "--output", type=Path, help="CSV (plus <name>_uncovered.csv …) or XLSX (sheets)")

    p = add("site-facilities", cmd_site, "best places for new facilities of a type (MCLP / LSCP)")
    p.add_argument("--type", required=True, choices=FACILITY_TYPES, metavar="T", help="facility type")
    goal = p.add_mutually_exclusive_group(required=True)
    goal.add_argument("--p", type=int, help="number of new sites (maximal covering)")
    goal.add_argument("--target", type=float, help="share of residents to reach, 0–1 (fewest sites)")
    _method_args(p)
    p.add_argument(
        "--candidates", type=Path, help="candidate points: a file readable as the pois layer (name + point)"
    )
    p.add_argument(
        "--spacing", type=float, default=250.0, help="grid spacing of generated candidates, metres"
    )
    p.add_argument("-o", "--output", type=Path, help="CSV (plus <name>_by_subdistrict.csv) or XLSX")
