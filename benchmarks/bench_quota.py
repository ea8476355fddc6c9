"""Benchmark: permissible zones and a nine-limit sweep on the demo district, against the QGIS habit.

    .venv/bin/python benchmarks/bench_quota.py            # national profile (straight line)
    .venv/bin/python benchmarks/bench_quota.py --walking  # also the walking profiles (pilot-2014, guangdong-2023)

``civicmap``       geo.permissible.permissible_zones: exact campus buffers (0.25 mm) in one TM,
                   residential polygons, per sub-district; geo.scenarios.sweep for nine limits
                   (shared indexes and unchanged excluded areas).
``qgis_utm``       what a QGIS user runs: reproject to UTM 49N (EPSG:32649), buffer 200 m with
                   5 segments per quarter (QGIS default), dissolve (unary_union), difference from
                   the sub-districts, area in UTM.
``qgis_webmerc``   the same in Web Mercator (EPSG:3857), a common slip: metres there are not
                   metres on the ground (×1.16 at 30.5° N).

``--walking-ref``  the walking zones of this tree against the same code at a git ref (``HEAD``: the
                   last commit), CPU time interleaved in one process, and the largest area change.
``--walking``      the walking profiles' zones (each place judged by its nearest road, as the
                   pre-check snaps it) against the former best-road union (``nearest_road=False``),
                   and the straight-line QGIS peer measured above.

Every variant runs on the same layers in the same process; times are the median of ``--repeat``
runs.  The peers' zones are reprojected to civicmap's TM frame to compare areas; the symmetric
difference is land one calls permissible and the other does not.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LIMITS = (100, 150, 200, 250, 300, 350, 400, 450, 500)
LEVELS = ("primary", "junior", "senior", "nine_year", "complete", "vocational", "special")


def _median_time(func, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def qgis_zones(
    layers: dict, crs: str, limit_m: float, residential_forms=("building", "compound")
) -> gpd.GeoSeries:
    """Buffer-union-difference as in QGIS: Buffer (5 segments) → Dissolve → Difference, per sub-district."""
    subs = layers["subdistricts"].to_crs(crs)
    schools = layers["schools"]
    schools = schools[schools["level"].isin(LEVELS)].to_crs(crs)
    res = layers["residential"]
    res = res[res["form"].isin(residential_forms) & res.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    blocked = shapely.union_all(
        [*schools.buffer(limit_m, quad_segs=5).values, *res.to_crs(crs).geometry.values]
    )
    return gpd.GeoSeries(subs.geometry.difference(blocked).values, crs=crs)


def _modules_at(ref: str) -> object:
    """``geo.walk_area`` as it was at git ``ref`` (with its ``geo.nearest_segment``), loaded under other names."""
    import subprocess
    import types

    loaded = {}
    for name, path in (("nearest_segment", "geo/nearest_segment.py"), ("walk_area", "geo/walk_area.py")):
        text = subprocess.check_output(["git", "-C", str(ROOT), "show", f"{ref}:{path}"], text=True)
        text = text.replace("from geo.nearest_segment import", "from _at_ref_nearest_segment import")
        module = types.ModuleType(f"_at_ref_{name}")
        sys.modules[module.__name__] = module
        exec(compile(text, f"{ref}:{path}", "exec"), module.__dict__)
        loaded[name] = module
    return loaded["walk_area"]


def _walking_against_ref(layers: dict, repeat: int, ref: str) -> None:
    """Walking zones now against the same code at git ``ref``: CPU time (median, interleaved) and areas."""
    from unittest import mock

    import geo.walk_area
    from geo.permissible import permissible_zones
    from geo.rules import load_profile
    from geo.violations import RuleEngine

    before = _modules_at(ref).walking_protected_area
    print(f"\nwalking zones, this tree against {ref} (CPU s, median of {repeat}, runs interleaved)")
    for name in ("pilot-2014", "guangdong-2023"):
        profile = load_profile(name)
        times: dict[str, list[float]] = {"ref": [], "now": []}
        zones = {}
        for _ in range(repeat):
            for label in ("ref", "now"):
                patch = (
                    mock.patch.object(geo.walk_area, "walking_protected_area", before)
                    if label == "ref"
                    else None
                )
                started = time.process_time()
                if patch:
                    with patch:
                        zones[label] = permissible_zones(RuleEngine(layers, profile))
                else:
                    zones[label] = permissible_zones(RuleEngine(layers, profile))
                times[label].append(time.process_time() - started)
        t_ref, t_now = statistics.median(times["ref"]), statistics.median(times["now"])
        pairs = list(zip(zones["ref"].zone_metric, zones["now"].zone_metric, strict=True))
        area_gap = max(abs(a.area - b.area) for a, b in pairs)
        land_gap = max(shapely.symmetric_difference(a, b).area for a, b in pairs)
        print(f"  {name:<16} {ref}: {t_ref:.2f} s   now: {t_now:.2f} s   ratio {t_ref / t_now:.2f}   "
              f"largest area change per sub-district {area_gap:.3f} m² (land that differs ≤ {land_gap:.3f} m²)")  # fmt: skip


def _walking(layers: dict, repeat: int, t_peer_straight: float) -> None:
    """Walking profiles: the exact zone (nearest road, as the pre-check) against the best-road union."""
    from unittest import mock

    import geo.walk_area
    from geo.permissible import permissible_zones
    from geo.rules import load_profile
    from geo.violations import RuleEngine

    exact_area = geo.walk_area.walking_protected_area

    def best_road(*args, **kwargs):
        return exact_area(*args, **kwargs, nearest_road=False)

    print(f"\n{'walking zones (engine + zones)':<40} {'time s':>8} {'km²':>9}  ratio")
    for name in ("pilot-2014", "guangdong-2023"):
        profile = load_profile(name)
        t_exact, exact = _median_time(lambda p=profile: permissible_zones(RuleEngine(layers, p)), repeat)
        with mock.patch.object(geo.walk_area, "walking_protected_area", best_road):
            t_best, best = _median_time(lambda p=profile: permissible_zones(RuleEngine(layers, p)), repeat)
        diff = shapely.symmetric_difference(
            shapely.union_all(exact.zone_metric), shapely.union_all(best.zone_metric)
        )
        print(
            f"{name + ' nearest road (= pre-check)':<40} {t_exact:8.2f} {exact.total_permissible_km2:9.4f}  1.00"
        )
        print(f"{name + ' best road (previous)':<40} {t_best:8.2f} {best.total_permissible_km2:9.4f}  "
              f"{t_best / t_exact:.2f}   land that differs: {diff.area:,.0f} m²")  # fmt: skip
        print(
            f"{'  qgis_utm straight 200 m (above)':<40} {t_peer_straight:8.2f} {'':>9}  {t_peer_straight / t_exact:.2f}"
        )
        print(f"  target < 2 s → {'met' if t_exact < 2 else 'NOT met'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--walking", action="store_true", help="also time the walking profiles")
    parser.add_argument("--walking-ref", metavar="GIT_REF",
                        help="also time the walking zones against the code at this git ref (e.g. HEAD)")  # fmt: skip
    args = parser.parse_args(argv)

    from cli import load_demo
    from geo.permissible import permissible_zones
    from geo.rules import load_profile
    from geo.scenarios import ScenarioRunner, limit_scenarios, sweep
    from geo.violations import RuleEngine
    from layers.store import Workspace

    with tempfile.TemporaryDirectory() as tmp:
        load_demo(Path(tmp) / "ws", user="bench")
        layers = Workspace.open(Path(tmp) / "ws").read_all()
    profile = load_profile("national")
    print(f"demo district: {len(layers['subdistricts'])} sub-districts, {len(layers['schools'])} schools, "
          f"{len(layers['residential'])} residential polygons; median of {args.repeat} runs\n")  # fmt: skip

    def civicmap_zones():
        return permissible_zones(RuleEngine(layers, profile))

    t_ours, zones = _median_time(civicmap_zones, args.repeat)
    frame = zones.crs
    ours_union = shapely.union_all(zones.zone_metric)
    rows = [("civicmap (engine + zones)", t_ours, ours_union.area / 1e6, 0.0, 0.0)]
    for name, crs in (("qgis_utm (EPSG:32649)", "EPSG:32649"), ("qgis_webmerc (EPSG:3857)", "EPSG:3857")):
        t_peer, peer = _median_time(lambda crs=crs: qgis_zones(layers, crs, 200.0), args.repeat)
        own_area = peer.area.sum() / 1e6
        in_frame = shapely.union_all(peer.to_crs(frame).values)
        diff = shapely.symmetric_difference(in_frame, ours_union).area
        rows.append((name, t_peer, in_frame.area / 1e6, diff, own_area))
    print(
        f"{'permissible zones, 200 m':<28} {'time s':>8} {'ratio':>7} {'km² (TM)':>10} {'sym.diff m²':>12} {'km² own CRS':>12}"
    )
    for name, seconds, km2, diff, own in rows:
        ratio = seconds / t_ours
        own_text = f"{own:12.4f}" if own else f"{'':>12}"
        print(f"{name:<28} {seconds:8.3f} {ratio:7.2f} {km2:10.4f} {diff:12.1f} {own_text}")
    print(f"  civicmap target: < 2 s → {'met' if t_ours < 2 else 'NOT met'}")

    def civicmap_sweep():
        runner = ScenarioRunner(layers, profile)
        return sweep(runner, limit_scenarios(LIMITS))[0]

    t_sweep, frame_sweep = _median_time(civicmap_sweep, max(1, args.repeat - 1))
    t_peer_sweep, _ = _median_time(
        lambda: [qgis_zones(layers, "EPSG:32649", x) for x in LIMITS], max(1, args.repeat - 1)
    )
    print(f"\nsweep of nine limits {LIMITS[0]}–{LIMITS[-1]} m")
    print(f"  civicmap (affected venues + zones + tables): {t_sweep:.2f} s  (target < 10 s → "
          f"{'met' if t_sweep < 10 else 'NOT met'})")  # fmt: skip
    print(
        f"  qgis_utm (zones only, no venue check):      {t_peer_sweep:.2f} s  ratio civicmap/peer {t_sweep / t_peer_sweep:.2f}"
    )
    print(frame_sweep[["limit_m", "affected", "permissible_km2", "seconds"]].to_string(index=False))

    if args.walking:
        _walking(layers, args.repeat, t_peer_straight=rows[1][1])
    if args.walking_ref:
        _walking_against_ref(layers, args.repeat, args.walking_ref)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
