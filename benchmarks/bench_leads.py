"""Benchmark: unlicensed-café leads on real data — precision and recall against two naive peers.

    .venv/bin/python benchmarks/bench_leads.py                     # 5 seeds, default settings
    .venv/bin/python benchmarks/bench_leads.py --seeds 20 --max-distance 150

Observed layer: the 712 Baidu-Map net cafés of Xi'an (``shared/real-data/xian_baidu_poi``),
converted from their original BD-09 coordinates to WGS84 with :func:`geo.crs.bd09_to_wgs84`.
A licence register is derived from them per seed:

* ``--lead-share`` of the venues are left out of the register: observed, unlicensed (true leads);
* ``--closed-share`` are left out of the observed layer: licensed, not observed (true closures);
* ``--moved-share`` of the register points are moved 20–150 m in a random direction (a register
  geocoded from the address); beyond ``--max-distance`` no method can pair them;
* ``--renamed-share`` of the register names are rewritten as a register writes them: 网吧 ↔ 网咖,
  a branch added or dropped in full- or half-width brackets, a company name
  (西安市…网络有限公司), 网络会所 / 电竞馆.

Each method then labels every observation ``matched`` (with a register id) or ``unlicensed``
and every register entry ``not_observed`` or not.  Peers, run on the same data in the same run:

``civicmap``     geo.leads.reconcile with its defaults: normalised names (rapidfuzz) + exact
                 distance, one-to-one assignment (linear_sum_assignment), duplicate sightings
                 merged, and the same-name rule (``--confirmed-distance``, 200 m): near-identical
                 names with no conflicting branch also pair beyond ``--max-distance``
``civicmap_100`` the same with the same-name rule off (the plain distance rule)
``exact_name``   exact normalised-name equality within the distance, nearest first, one-to-one
``exact_far``    exact_name up to ``--confirmed-distance`` (the fair peer of civicmap+)
``nearest``      the nearest register entry within the distance, names ignored, one-to-one

Reported: precision / recall of ``unlicensed`` and ``not_observed``, matched accuracy (share of
truly matched observations paired with the right entry), mean over seeds, and civicmap's F1
over each peer's.  Then, for both civicmap methods, the false leads (licensed venues reported
as leads) by cause, summed over the seeds:

``moved``            the register point is beyond the distance the names allow (> max distance,
                     and > the same-name distance or the names are not near-identical)
``renamed``          within the distance but the names score below ``--min-score``
``branch conflict``  near-identical names beyond max distance, but the two give different branches
``entry taken``      its register entry was assigned to another observation
``other``            none of these (e.g. a duplicate-sighting rule that did not apply)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from pyproj import Geod

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from geo.crs import bd09_to_wgs84, geodesic_distance_m  # noqa: E402
from geo.distance import pairs_within  # noqa: E402
from geo.leads import LeadOptions, reconcile  # noqa: E402
from geo.names import branch_of, name_score, normalise_name  # noqa: E402

_RELATIVE = Path("shared") / "real-data" / "xian_baidu_poi" / "internet_cafes.geojson"
#: ../shared beside the repository (a worktree sits one level deeper)
DEFAULT_DATA = next(
    (p / _RELATIVE for p in ROOT.parents[:2] if (p / _RELATIVE).is_file()), ROOT.parent / _RELATIVE
)
GEOD = Geod(ellps="WGS84")
BRANCHES = (
    "小寨",
    "钟楼",
    "北大街",
    "长安路",
    "高新",
    "曲江",
    "纺织城",
    "土门",
    "电子城",
    "韦曲",
    "张家堡",
    "大明宫",
)


# ------------------------------------------------------------------ data
def load_observed(path: Path) -> tuple[gpd.GeoDataFrame, float]:
    """The Baidu net cafés in WGS84 from their BD-09 originals; also the largest gap to the file's geometry (m)."""
    raw = gpd.read_file(path)
    lon, lat = bd09_to_wgs84(raw["bd09_lng"].to_numpy(float), raw["bd09_lat"].to_numpy(float))
    gap_m = geodesic_distance_m(lon, lat, raw.geometry.x.to_numpy(), raw.geometry.y.to_numpy())
    frame = gpd.GeoDataFrame(
        {"id": raw["uid"].astype(str), "name": raw["name"].astype(str), "address": raw["address"]},
        geometry=gpd.points_from_xy(lon, lat),
        crs="EPSG:4326",
    )
    return frame, float(np.max(gap_m))


def rename(name: str, rng: np.random.Generator) -> str:
    """A register's way of writing an observed name."""
    base = name.replace("（", "(").replace("）", ")")
    stem = base.split("(")[0]
    choice = rng.integers(5)
    if choice == 0 and ("网吧" in base or "网咖" in base):
        return base.replace("网吧", "#").replace("网咖", "网吧").replace("#", "网咖")
    if choice == 1:
        return stem if stem != base else f"{stem}（{rng.choice(BRANCHES)}店）"
    if choice == 2:
        core = stem.replace("网吧", "").replace("网咖", "") or stem
        return f"西安市{core}网络有限公司"
    if choice == 3:
        return f"{stem.replace('网吧', '').replace('网咖', '')}{rng.choice(['网络会所', '电竞馆'])}"
    return f"{stem} ({rng.choice(BRANCHES)}分店)"


def make_case(universe: gpd.GeoDataFrame, seed: int, args) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Observed layer and derived register (same ``id`` = the same venue)."""
    rng = np.random.default_rng(seed)
    n = len(universe)
    role = rng.permutation(n)
    n_lead, n_closed = round(n * args.lead_share), round(n * args.closed_share)
    leads, closed = set(role[:n_lead]), set(role[n_lead : n_lead + n_closed])
    observed = universe.iloc[[i for i in range(n) if i not in closed]].reset_index(drop=True)
    register = universe.iloc[[i for i in range(n) if i not in leads]].reset_index(drop=True).copy()
    m = len(register)
    moved = rng.random(m) < args.moved_share
    dist = rng.uniform(20.0, 150.0, m)
    bearing = rng.uniform(0.0, 360.0, m)
    lon, lat, _ = GEOD.fwd(register.geometry.x.to_numpy(), register.geometry.y.to_numpy(), bearing, dist)
    register["geometry"] = [
        shapely.Point(x, y) if mv else g
        for x, y, mv, g in zip(lon, lat, moved, register.geometry, strict=True)
    ]
    register["moved_m"] = np.where(moved, dist, 0.0)
    renamed = rng.random(m) < args.renamed_share
    register["name"] = [rename(nm, rng) if r else nm for nm, r in zip(register["name"], renamed, strict=True)]
    register["licence_no"] = [f"L{i:05d}" for i in range(m)]
    register["status"] = "licensed"
    return observed, register


# ------------------------------------------------------------------ peers
def greedy_pairs(observed, register, max_distance_m: float, *, same_name: bool) -> dict[str, str]:
    """Nearest-first one-to-one pairing within the distance (optionally only equal normalised names)."""
    pairs = pairs_within(observed, register, max_distance_m)
    if same_name:
        obs_norm = np.array([normalise_name(x) for x in observed["name"]], dtype=object)
        reg_norm = np.array([normalise_name(x) for x in register["name"]], dtype=object)
        keep = obs_norm[pairs["venue_index"].to_numpy()] == reg_norm[pairs["site_index"].to_numpy()]
        pairs = pairs[keep]
    pairs = pairs.sort_values("distance_m", kind="stable")
    used_o, used_r, found = set(), set(), {}
    for o, r in zip(pairs["venue_index"], pairs["site_index"], strict=True):
        if o in used_o or r in used_r:
            continue
        used_o.add(o)
        used_r.add(r)
        found[observed["id"].iat[o]] = register["id"].iat[r]
    return found


def civicmap_pairs(observed, register, max_distance_m: float, min_score: float, **options) -> dict[str, str]:
    result = reconcile(
        register, observed, max_distance_m=max_distance_m, min_score=min_score, options=LeadOptions(**options)
    )
    matched = result[result["status"] == "matched"]
    return dict(zip(matched["observed_id"], matched["register_id"], strict=True))


# ------------------------------------------------------------------ scoring
def _pr(predicted: set, actual: set) -> tuple[float, float, float]:
    tp = len(predicted & actual)
    precision = tp / len(predicted) if predicted else 1.0
    recall = tp / len(actual) if actual else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def score(found: dict[str, str], observed, register) -> dict[str, float]:
    """Precision / recall of leads and closures, matched accuracy."""
    obs_ids, reg_ids = set(observed["id"]), set(register["id"])
    true_leads, true_closed = obs_ids - reg_ids, reg_ids - obs_ids
    leads = obs_ids - set(found)
    closed = reg_ids - set(found.values())
    truly_matched = obs_ids & reg_ids
    right = sum(found.get(i) == i for i in truly_matched)
    lp, lr, lf = _pr(leads, true_leads)
    cp, cr, cf = _pr(closed, true_closed)
    return {
        "lead_precision": lp,
        "lead_recall": lr,
        "lead_f1": lf,
        "closed_precision": cp,
        "closed_recall": cr,
        "closed_f1": cf,
        "matched_accuracy": right / len(truly_matched),
        "wrong_pairs": float(sum(1 for o, r in found.items() if o != r)),
    }


FALSE_LEAD_CAUSES = ("moved", "renamed", "branch conflict", "entry taken", "other")


def false_lead_causes(found: dict[str, str], observed, register, args, *, same_name: bool) -> dict[str, int]:
    """Licensed venues reported as leads, counted by why they were missed (see the module docstring)."""
    obs, reg = observed.set_index("id"), register.set_index("id")
    taken = set(found.values())
    counts = dict.fromkeys(FALSE_LEAD_CAUSES, 0)
    for venue in sorted((set(obs.index) & set(reg.index)) - set(found)):
        a, b = obs.loc[venue], reg.loc[venue]
        gap_m = float(geodesic_distance_m([a.geometry.x], [a.geometry.y], [b.geometry.x], [b.geometry.y])[0])
        score_ = name_score(normalise_name(a["name"]), normalise_name(b["name"]))
        branches = branch_of(a["name"]), branch_of(b["name"])
        near_identical = same_name and score_ >= LeadOptions().confirmed_score
        if venue in taken:
            cause = "entry taken"
        elif gap_m <= args.max_distance:
            cause = "renamed" if score_ < args.min_score else "other"
        elif near_identical and gap_m <= args.confirmed_distance:
            cause = "branch conflict" if all(branches) and branches[0] != branches[1] else "other"
        else:
            cause = "moved"
        counts[cause] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--max-distance", type=float, default=100.0)
    parser.add_argument("--min-score", type=float, default=75.0)
    parser.add_argument("--lead-share", type=float, default=0.10)
    parser.add_argument("--closed-share", type=float, default=0.08)
    parser.add_argument("--moved-share", type=float, default=0.30)
    parser.add_argument("--renamed-share", type=float, default=0.40)
    parser.add_argument(
        "--confirmed-distance",
        type=float,
        default=200.0,
        help="civicmap+: name-confirmed pairs up to this (m)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    universe, gap_m = load_observed(args.data)
    print(
        f"{len(universe)} Baidu net cafés from {args.data.name}; BD-09 → WGS84 agrees with the file to {gap_m:.3f} m"
    )
    methods = {
        "civicmap": lambda o, r: civicmap_pairs(
            o, r, args.max_distance, args.min_score, name_confirmed_distance_m=args.confirmed_distance
        ),
        "civicmap_100": lambda o, r: civicmap_pairs(
            o, r, args.max_distance, args.min_score, name_confirmed_distance_m=None
        ),
        "exact_name": lambda o, r: greedy_pairs(o, r, args.max_distance, same_name=True),
        "exact_far": lambda o, r: greedy_pairs(o, r, args.confirmed_distance, same_name=True),
        "nearest": lambda o, r: greedy_pairs(o, r, args.max_distance, same_name=False),
    }
    results: dict[str, list[dict]] = {name: [] for name in methods}
    times: dict[str, list[float]] = {name: [] for name in methods}
    unreachable = []
    causes = {name: dict.fromkeys(FALSE_LEAD_CAUSES, 0) for name in ("civicmap", "civicmap_100")}
    for seed in range(args.seeds):
        observed, register = make_case(universe, seed, args)
        unreachable.append(int((register["moved_m"] > args.max_distance).sum()))
        for name, method in methods.items():
            started = time.perf_counter()
            found = method(observed, register)
            times[name].append(time.perf_counter() - started)
            results[name].append(score(found, observed, register))
            if name in causes:
                counts = false_lead_causes(found, observed, register, args, same_name=name == "civicmap")
                for cause, n in counts.items():
                    causes[name][cause] += n
    keys = list(results["civicmap"][0])
    mean = {name: {k: statistics.fmean(r[k] for r in rows) for k in keys} for name, rows in results.items()}
    print(
        f"seeds {args.seeds}; leads {args.lead_share:.0%}, closed {args.closed_share:.0%}, moved "
        f"{args.moved_share:.0%} by 20–150 m ({statistics.fmean(unreachable):.1f} per seed beyond "
        f"{args.max_distance:g} m), renamed {args.renamed_share:.0%}; max distance {args.max_distance:g} m, "
        f"min score {args.min_score:g}"
    )
    header = f"{'method':<11}" + "".join(f"{k:>17}" for k in keys) + f"{'time s':>9}"
    print(header)
    for name, row in mean.items():
        cells = "".join(f"{row[k]:>17.3f}" if k != "wrong_pairs" else f"{row[k]:>17.1f}" for k in keys)
        print(f"{name:<11}{cells}{statistics.median(times[name]):>9.3f}")
    for peer in ("exact_name", "exact_far", "nearest"):
        for ours in ("civicmap", "civicmap_100"):
            ratios = ", ".join(
                f"{k} {mean[ours][k] / mean[peer][k]:.2f}x" if mean[peer][k] else f"{k} n/a"
                for k in ("lead_f1", "closed_f1", "matched_accuracy")
            )
            print(f"{ours} / {peer}: {ratios}")
    for name, counts in causes.items():
        total = sum(counts.values())
        parts = ", ".join(f"{cause} {n}" for cause, n in counts.items())
        print(f"false leads of {name} over {args.seeds} seeds: {total} ({parts})")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "args": vars(args) | {"data": str(args.data), "json": None},
                    "mean": mean,
                    "false_lead_causes": causes,
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
