"""Benchmark: cultural coverage by walking, and MCLP siting, on the demo district.

    .venv/bin/python benchmarks/bench_coverage.py               # both parts
    .venv/bin/python benchmarks/bench_coverage.py --pairs 500    # fewer networkx pairs (faster)

Part 1 — coverage of every facility type by walking (demo district: ~600 residential units,
60 facilities, ~1,400 road segments); target < 5 s.

``civicmap``        geo.coverage.compute_coverage(method="walk"): network build, snapping, one
                    Dijkstra per type from a virtual super-source (geo.service_areas)
``nx_per_pair``     networkx on the same augmented graph: nx.dijkstra_path_length for each
                    (unit, facility) pair, minimum per unit and type.  Timed on ``--pairs``
                    random pairs and extrapolated to all pairs (printed as such)
``nx_multisource``  networkx multi_source_dijkstra_path_length per type (the fair peer)

Distances of both networkx peers are checked against civicmap (max abs difference).

Part 2 — MCLP with 500 candidates and 2,000 demand points (seeded, within the district, 500 m
straight-line reach, p = 10); target < 30 s.  ``civicmap`` = geo.siting.coverable_matrix +
maximal_coverage (sparse model, CBC); peers: ``spopt`` = the same with engine="spopt"
(spopt.locate.MCLP, dense model building) and ``greedy`` = add the site with the largest
marginal coverage p times (the usual heuristic): its time and the share of the optimum.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _demo_layers():
    from cli import load_demo
    from layers.store import Workspace

    path = Path(tempfile.mkdtemp(prefix="bench-coverage-")) / "ws"
    load_demo(path, user="bench")
    return Workspace.open(path).read_all()


def part_coverage(layers, n_pairs: int, seed: int) -> None:
    import networkx as nx

    from geo.coverage import ANY, WALK_SNAP_M, compute_coverage, unit_points
    from geo.network import WalkNetwork

    compute_coverage(layers, method="walk")  # warm-up (imports, caches)
    started = time.perf_counter()
    result = compute_coverage(layers, method="walk")
    ours_s = time.perf_counter() - started
    types = [t for t in result.types if t != ANY]
    print(
        f"civicmap        coverage by walking, {len(types)} types x {len(result.units)} units: {ours_s:.3f} s "
        f"(target < 5 s: {'ok' if ours_s < 5 else 'MISSED'})"
    )

    net = WalkNetwork.from_roads(layers["roads"], max_snap_m=WALK_SNAP_M)
    facilities = layers["cultural_facilities"].reset_index(drop=True)
    fs = net.snap(unit_points(facilities).reset_index(drop=True))
    us = net.snap(result.units.geometry.reset_index(drop=True))
    graph, _, (fnode, unode) = net.graph_with_points([fs, us])
    coo = graph.tocoo()
    g = nx.Graph()
    g.add_weighted_edges_from(zip(coo.row.tolist(), coo.col.tolist(), coo.data.tolist(), strict=True))
    fac_type = facilities["type"].astype(str).to_numpy()
    ok_u = np.flatnonzero(unode >= 0)
    ok_f = np.flatnonzero(fnode >= 0)

    # peer 1: one shortest path per (unit, facility) pair, sampled and extrapolated
    rng = np.random.default_rng(seed)
    all_pairs = len(ok_u) * len(ok_f)
    sample = [(int(rng.choice(ok_u)), int(rng.choice(ok_f))) for _ in range(min(n_pairs, all_pairs))]
    started = time.perf_counter()
    for u, f in sample:
        try:
            nx.dijkstra_path_length(g, int(fnode[f]), int(unode[u]), weight="weight")
        except nx.NetworkXNoPath:
            continue
    per_pair_s = (time.perf_counter() - started) / max(len(sample), 1)
    pair_s = per_pair_s * all_pairs
    print(
        f"nx_per_pair     {len(sample)} pairs in {per_pair_s * len(sample):.2f} s -> all {all_pairs:,} pairs "
        f"≈ {pair_s:.1f} s (extrapolated); civicmap/peer = {ours_s / pair_s:.4f}"
    )

    # peer 2: networkx multi-source Dijkstra per type, with the snap legs as a super-source
    started = time.perf_counter()
    diffs = []
    for t in types:
        src = ok_f[fac_type[ok_f] == t]
        if len(src) == 0:
            continue
        h = g.copy()
        for f in src:
            h.add_edge("S", int(fnode[f]), weight=max(float(fs.snap_distance_m[f]), 1e-9))
        dist = nx.single_source_dijkstra_path_length(h, "S", weight="weight")
        got = np.array([dist.get(int(unode[u]), np.inf) + us.snap_distance_m[u] for u in ok_u])
        ours = result.units[f"nearest_m:{t}"].to_numpy()[ok_u]
        both = np.isfinite(got) & np.isfinite(ours)
        diffs.append(float(np.max(np.abs(got[both] - ours[both]))) if both.any() else 0.0)
    multi_s = time.perf_counter() - started
    print(
        f"nx_multisource  {len(types)} types in {multi_s:.2f} s; civicmap/peer = {ours_s / multi_s:.3f}; "
        f"max |difference| {max(diffs):.2e} m"
    )


def part_mclp(layers, seed: int) -> None:
    import geopandas as gpd

    from geo.siting import coverable_matrix, maximal_coverage

    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = layers["subdistricts"].total_bounds
    demand = gpd.GeoSeries.from_xy(
        rng.uniform(minx, maxx, 2000), rng.uniform(miny, maxy, 2000), crs="EPSG:4326"
    )
    cands = gpd.GeoSeries.from_xy(rng.uniform(minx, maxx, 500), rng.uniform(miny, maxy, 500), crs="EPSG:4326")
    weights = rng.integers(50, 2000, 2000).astype(float)
    maximal_coverage(np.eye(3, dtype=bool), np.ones(3), 1)  # warm-up: spopt and pulp imports
    started = time.perf_counter()
    matrix = coverable_matrix(demand, cands, np.full(2000, 500.0))
    chosen = maximal_coverage(matrix, weights, 10)
    ours_s = time.perf_counter() - started
    dense = matrix.toarray()
    best = float(weights[dense[:, chosen].any(axis=1)].sum())
    print(
        f"civicmap        MCLP 2,000 demand x 500 candidates, p = 10: {ours_s:.2f} s "
        f"(target < 30 s: {'ok' if ours_s < 30 else 'MISSED'}), covers {best:,.0f}"
    )
    started = time.perf_counter()
    via_spopt = maximal_coverage(matrix, weights, 10, engine="spopt")
    spopt_s = time.perf_counter() - started
    spopt_cover = float(weights[dense[:, via_spopt].any(axis=1)].sum())
    print(
        f"spopt           {spopt_s:.2f} s, covers {spopt_cover:,.0f}; civicmap/peer time = {ours_s / spopt_s:.3f}"
    )
    started = time.perf_counter()
    done = np.zeros(len(weights), dtype=bool)
    for _ in range(10):
        gain = (dense & ~done[:, None]).T.astype(float) @ weights
        done |= dense[:, int(np.argmax(gain))]
    greedy_s = time.perf_counter() - started
    greedy = float(weights[done].sum())
    print(
        f"greedy          {greedy_s:.3f} s, covers {greedy:,.0f} = {greedy / best:.2%} of the optimum; "
        f"civicmap/peer time = {ours_s / greedy_s:.1f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=2000, help="networkx per-pair sample size")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    layers = _demo_layers()
    part_coverage(layers, args.pairs, args.seed)
    part_mclp(layers, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
