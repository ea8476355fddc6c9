"""The ``civicmap`` command line: thin callers of the same functions the web pages use.

This module holds the layer, violation, account and server commands; each product area adds
its own in a module of this package (:data:`FEATURE_COMMANDS`), reusing the helpers here
(``open_workspace``, ``engine_for``, ``user_name``).

User errors (:class:`~layers.errors.CivicmapError`) are printed without a traceback and
the command exits with status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import getpass
import importlib
import logging
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from layers.errors import CivicmapError

DEMO_DIR = Path(__file__).resolve().parent.parent / "data" / "demo"
#: parents before children, so gates and doors find their schools and venues
DEMO_ORDER = (
    "subdistricts",
    "roads",
    "schools",
    "school_gates",
    "net_cafes",
    "game_venues",
    "entertainment_venues",
    "publication_sellers",
    "venue_doors",
    "cultural_facilities",
    "residential",
    "pois",
    "zones",
)

#: sign-in accounts of the demo workspace only (a real workspace starts with `civicmap user add`)
DEMO_USERS = (("admin", "admin"), ("analyst", "analyst"), ("inspector", "inspector"), ("viewer", "viewer"))
DEMO_PASSWORD = "civicmap-demo"  # noqa: S105 - published demo credentials, demo workspace only

#: modules adding the commands of one product area; each defines ``register(add)`` where
#: ``add(name, func, help_text)`` returns an ``argparse`` parser that already has ``--workspace``
FEATURE_COMMANDS = ("cli.targets", "cli.quota", "cli.coverage", "cli.leads")

log = logging.getLogger("civicmap")


def _workspace_path(args: argparse.Namespace) -> Path:
    return Path(args.workspace or os.environ.get("CIVICMAP_WORKSPACE") or "workspace")


def open_workspace(args: argparse.Namespace, *, create: bool = False):
    from layers.store import Workspace

    return Workspace.open(_workspace_path(args), create=create)


def user_name(args: argparse.Namespace) -> str:
    return getattr(args, "user", None) or os.environ.get("CIVICMAP_USER") or getpass.getuser()


def _progress(label: str) -> Callable[[str], None]:
    """A phase progress bar on stderr (read → validate → store)."""
    from tqdm import tqdm

    from layers.importer import PHASES

    bar = tqdm(total=len(PHASES), desc=label, unit="step", leave=False, disable=not sys.stderr.isatty())

    def step(phase: str) -> None:
        bar.set_postfix_str(phase)
        bar.update(1)
        if phase == PHASES[-1]:
            bar.close()

    return step


# ------------------------------------------------------------------ commands
def cmd_import(args: argparse.Namespace) -> int:
    from layers.importer import import_file

    ws = open_workspace(args, create=True)
    report = import_file(
        ws,
        args.kind,
        args.file,
        crs=args.crs,
        user=user_name(args),
        partial=args.partial,
        layer=args.layer,
        progress=_progress(f"import {args.kind}"),
    )
    for problem in report.problems:
        print(f"rejected: {problem}", file=sys.stderr)
    _audit(ws, args, "layer.import", report.summary())
    print(report.summary())
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from layers.importer import validate_file

    ws = None
    if args.workspace or os.environ.get("CIVICMAP_WORKSPACE"):
        ws = open_workspace(args)
    _, report = validate_file(args.file, args.kind, crs=args.crs, workspace=ws, layer=args.layer)
    for problem in report.problems:
        print(problem)
    print(report.summary())
    return 1 if report.problems else 0


def cmd_layers(args: argparse.Namespace) -> int:
    from layers.schema import SCHEMAS

    ws = open_workspace(args)
    counts = ws.counts()
    versions = ws.current_versions()
    print(f"{'kind':<22} {'图层':<10} {'rows':>8} {'version':>8}")
    for kind, schema in SCHEMAS.items():
        print(f"{kind:<22} {schema.label_zh:<10} {counts.get(kind, 0):>8} {versions.get(kind, '-')!s:>8}")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    ws = open_workspace(args)
    for rec in ws.history(args.kind):
        print(
            f"{rec.at}  {rec.kind:<20} v{rec.version:<3} {rec.action:<8} {rec.user:<12} "
            f"{rec.rows_imported:>7} rows  {rec.file_name}"
        )
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    ws = open_workspace(args)
    ws.restore(args.kind, args.version, user=user_name(args))
    _audit(ws, args, "layer.restore", f"{args.kind} version {args.version}")
    print(f"{args.kind}: version {args.version} is current again")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from layers.export import export_layer

    ws = open_workspace(args)
    path = export_layer(ws.read(args.kind), args.output, crs=args.crs, kind=args.kind)
    print(f"wrote {path}")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    ws = open_workspace(args)
    shown = ws.publish_gpkg(args.kinds or None)
    for kind, version in shown.items():
        print(f"{kind:<22} version {version}")
    print(f"{ws.gpkg_path}: {len(shown)} layer(s) ready to open in QGIS")
    return 0


def engine_for(args: argparse.Namespace):
    from geo.rules import load_profile
    from geo.violations import RuleEngine

    ws = open_workspace(args)
    profile = load_profile(args.profile, extra_dir=ws.path / "profiles")
    return RuleEngine(ws.read_all(), profile)


def cmd_violations(args: argparse.Namespace) -> int:
    from layers.export import write_findings

    engine = engine_for(args)
    found = engine.violations(kinds={args.kind} if args.kind else None, include_near=args.include_near)
    if args.output:
        write_findings(found, args.output)
        print(f"{len(found)} finding(s) under profile {engine.profile.name}; wrote {args.output}")
    else:
        columns = [
            "venue_name",
            "venue_kind",
            "site_name",
            "rule",
            "distance_m",
            "limit_m",
            "method",
            "recheck",
        ]
        print(found[columns].round(1).to_string(index=False) if len(found) else "no findings")
    return 0


def cmd_check_site(args: argparse.Namespace) -> int:
    import json

    from geo.precheck import check_site

    answer = check_site(engine_for(args), args.lon, args.lat, kind=args.kind, crs=args.crs)
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return 0 if answer.verdict != "violation" else 1
    print(
        f"({answer.lon:.6f}, {answer.lat:.6f}) WGS84 — {args.kind} under {answer.profile}: {answer.verdict.upper()}"
    )
    for v in answer.verdicts:
        line = f"  [{v.verdict}] {v.rule.id} ({v.rule.type}, limit {v.rule.limit_m:g} m, {v.rule.method})"
        if v.verdict == "violation" and v.shortfall_m == v.shortfall_m:
            line += f": {v.shortfall_m:.1f} m short"
        print(line)
        for c in v.conflicts.itertuples():
            print(f"      {c.site_name} ({c.site_id}) {c.distance_m:.1f} m by {c.method}")
        if v.nearest and v.verdict == "ok":
            print(f"      nearest: {v.nearest['site_name']} {v.nearest['straight_m']:.1f} m (straight line)")
    return 0 if answer.verdict != "violation" else 1


def _audit(ws, args: argparse.Namespace, action: str, detail: str) -> None:
    from webmap.accounts import record_audit

    record_audit(ws, action, detail, user=f"{user_name(args)} (cli)")


def _read_password(prompt: str) -> str:
    if sys.stdin.isatty():
        first = getpass.getpass(prompt)
        if first != getpass.getpass("repeat: "):
            raise CivicmapError("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\n")


def cmd_user_add(args: argparse.Namespace) -> int:
    from webmap.accounts import add_user

    ws = open_workspace(args, create=True)
    password = _read_password(f"password for {args.name}: ")
    add_user(ws, args.name, args.role, password)
    _audit(ws, args, "user.add", f"{args.name} as {args.role}")
    print(f"user {args.name} added with role {args.role}")
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    from webmap.accounts import create_token

    ws = open_workspace(args)
    token = create_token(ws, args.name)
    _audit(ws, args, "token.create", args.name)
    print(token)
    print("keep it safe: it is shown only once", file=sys.stderr)
    return 0


def load_demo(workspace_path: Path, *, user: str = "demo") -> None:
    """Create a workspace at ``workspace_path`` holding the bundled demo district."""
    from layers.importer import import_file
    from layers.store import Workspace

    if not DEMO_DIR.is_dir():
        raise CivicmapError(f"demo data not found at {DEMO_DIR}; run data/make_demo.py")
    from webmap.accounts import add_user

    ws = Workspace.open(workspace_path, create=True)
    for name, role in DEMO_USERS:
        add_user(ws, name, role, DEMO_PASSWORD)
    for kind in DEMO_ORDER:
        path = DEMO_DIR / f"{kind}.geojson"
        if path.exists():
            report = import_file(ws, kind, path, crs="wgs84", user=user)
            log.info("%s", report.summary())
    ws.publish_gpkg()  # the demo opens in QGIS as it is


def cmd_demo(args: argparse.Namespace) -> int:
    path = _workspace_path(args)
    if path.exists() and any(path.iterdir()):
        if args.if_missing:
            print(f"workspace {path} exists; keeping it (use --force to rebuild the demo)")
            print(f"demo sign-in: admin / analyst / inspector / viewer, password {DEMO_PASSWORD!r}")
            return 0
        if not args.force:
            raise CivicmapError(f"workspace {path} is not empty; pass --force to replace it with the demo")
        shutil.rmtree(path)
    load_demo(path, user=user_name(args))
    print(f"demo district loaded into {path}")
    print(f"sign in as admin / analyst / inspector / viewer with the password {DEMO_PASSWORD!r}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import waitress

    from webmap import create_app

    app = create_app({"WORKSPACE": str(_workspace_path(args))})
    print(f"civicmap serving {_workspace_path(args)} at http://{args.host}:{args.port}", flush=True)
    waitress.serve(app, host=args.host, port=args.port, threads=args.threads)
    return 0


# ------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    from layers.schema import KINDS

    parser = argparse.ArgumentParser(
        prog="civicmap", description="civicmap: maps and analysis for a culture bureau"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress and counts")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--workspace", help="workspace folder (default: $CIVICMAP_WORKSPACE or ./workspace)")
        p.set_defaults(func=func)
        return p

    def file_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("kind", choices=KINDS, metavar="KIND", help=f"layer kind: {', '.join(KINDS)}")
        p.add_argument("file", type=Path, help="GeoJSON, GeoPackage, Shapefile/.zip, GeoParquet, CSV or XLSX")
        p.add_argument(
            "--crs", help="datum of coordinates without a declared CRS: wgs84, cgcs2000, gcj02, bd09, EPSG:n"
        )
        p.add_argument("--layer", help="layer name inside a GeoPackage")

    p = add("import", cmd_import, "validate a file and store it as the new version of a layer")
    file_args(p)
    p.add_argument(
        "--partial", action="store_true", help="store valid rows; write rejected rows next to the file"
    )
    p.add_argument("--user", help="who imports (default: the login name)")

    p = add("validate", cmd_validate, "report every problem of a file without importing it")
    file_args(p)

    add("layers", cmd_layers, "list layer kinds with row counts and current versions")

    p = add("history", cmd_history, "show the import history")
    p.add_argument("kind", nargs="?", choices=KINDS, metavar="KIND")

    p = add("restore", cmd_restore, "make an earlier version of a layer current again")
    p.add_argument("kind", choices=KINDS, metavar="KIND")
    p.add_argument("version", type=int)
    p.add_argument("--user")

    p = add("export", cmd_export, "write a layer to GeoJSON, GeoPackage, CSV or XLSX")
    p.add_argument("kind", choices=KINDS, metavar="KIND")
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--crs", default="wgs84", help="output datum (default wgs84)")

    p = add(
        "publish",
        cmd_publish,
        "write the current version of each layer into civicmap.gpkg as a feature table named after its kind, "
        "for QGIS; imports do not (they keep versions as GeoParquet blobs), so publish again after importing",
    )
    p.add_argument(
        "kinds", nargs="*", metavar="KIND", help=f"only these kinds (default: all): {', '.join(KINDS)}"
    )

    p = add(
        "violations",
        cmd_violations,
        "list venues that break the distance, residential, spacing and zone rules",
    )
    p.add_argument("--profile", default="national", help="rule profile (default: national)")
    p.add_argument("--kind", help="only venues of this kind (net_cafes, game_venues, ...)")
    p.add_argument("--include-near", action="store_true", help="also near misses within the recheck band")
    p.add_argument("-o", "--output", type=Path, help=".csv (UTF-8 with BOM), .xlsx or .geojson")

    p = add("check-site", cmd_check_site, "licence pre-check: may a venue of KIND open at this location?")
    p.add_argument("--lon", type=float, required=True, help="longitude (or easting for a projected --crs)")
    p.add_argument("--lat", type=float, required=True, help="latitude (or northing)")
    p.add_argument("--crs", default="wgs84", help="datum of the location (default wgs84)")
    p.add_argument("--kind", default="net_cafes")
    p.add_argument("--profile", default="national")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")

    p = add("demo", cmd_demo, "create a workspace holding the fictional demo district")
    p.add_argument("--force", action="store_true", help="replace an existing workspace")
    p.add_argument("--if-missing", action="store_true", help="do nothing if the workspace already exists")
    p.add_argument("--user")

    p = add(
        "user", cmd_user_add, "add a user who can sign in to the web app: civicmap user add NAME --role ROLE"
    )
    p.add_argument("action", choices=["add"])
    p.add_argument("name")
    p.add_argument("--role", required=True, choices=["viewer", "analyst", "inspector", "admin"])

    p = add("token", cmd_token_create, "create an API token for a user: civicmap token create NAME")
    p.add_argument("action", choices=["create"])
    p.add_argument("name")

    p = add("serve", cmd_serve, "serve the web app with a production WSGI server (waitress)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--threads", type=int, default=8)

    for module_name in FEATURE_COMMANDS:
        importlib.import_module(module_name).register(add)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``civicmap`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.func(args)
    except CivicmapError as err:
        print(f"civicmap: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("civicmap: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
