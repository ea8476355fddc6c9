"""Benchmark: inspection tours, civicmap's nearest neighbour + 2-opt against named peers.

    .venv/bin/python benchmarks/bench_tour.py                  # n = 8, 20, 50, 100; 10 instances each (~40 s)
    .venv/bin/python benchmarks/bench_tour.py --sizes 200       # Christofides takes ~20 s per instance here
    .venv/bin/python benchmarks/bench_tour.py --sizes 8,20 --instances 5

Seeded instances: stops uniform in a 5 km × 5 km district, Euclidean distances in metres (the
tour code only sees the matrix).  On the same instances, each method returns an *open* path
(an inspector does not return to the first stop):

``civicmap``     geo.tour.plan_tour: nearest neighbour from stop 0, then 2-opt (start fixed)
``nn``           nearest neighbour alone from stop 0 (geo.tour.nearest_neighbour)
``christofides`` networkx.algorithms.approximation.traveling_salesman_problem(cycle=False),
                 Christofides (1.5-approximation of the cycle), free start
``optimum``      brute force over every order from stop 0, only for n ≤ 9

It prints, per size, the mean path length of civicmap over each peer's (below 1 = civicmap
shorter) and the time ratio (below 1 = civicmap faster), both as the median over instances.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from geo.tour import nearest_neighbour, path_length_m, plan_tour  # noqa: E402

SIDE_M = 5000.0


def instance(n: int, seed: int) -> np.ndarray:
    points = np.random.default_rng(seed).uniform(0, SIDE_M, size=(n, 2))
    return np.hypot(*(points[:, None, :] - points[None, :, :]).transpose(2, 0, 1))


def christofides(matrix: np.ndarray) -> list[int]:
    import networkx as nx
    from networkx.algorithms.approximation import traveling_salesman_problem

    graph = nx.Graph()
    n = len(matrix)
    graph.add_weighted_edges_from((i, j, float(matrix[i, j])) for i in range(n) for j in range(i + 1, n))
    return list(traveling_salesman_problem(graph, weight="weight", cycle=False))


def optimum(matrix: np.ndarray) -> list[int]:
    rest = range(1, len(matrix))
    best = min(itertools.permutations(rest), key=lambda p: path_length_m(matrix, [0, *p]))
    return [0, *best]


METHODS = {
    "civicmap": lambda m: plan_tour(m, start=0).order,
    "nn": lambda m: nearest_neighbour(m, 0),
    "christofides": christofides,
    "optimum": optimum,
}


def timed(method, matrix) -> tuple[float, float]:
    started = time.perf_counter()
    order = METHODS[method](matrix)
    elapsed = time.perf_counter() - started
    assert sorted(order) == list(range(len(matrix))), method
    return path_length_m(matrix, order), elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="8,20,50,100", help="stops per tour, comma separated")
    parser.add_argument("--instances", type=int, default=10, help="seeded instances per size")
    args = parser.parse_args(argv)
    print(f"{'n':>5} {'peer':<13} {'length civicmap/peer':>21} {'time civicmap/peer':>19} "
          f"{'civicmap ms':>12} {'peer ms':>9}")  # fmt: skip
    for n in (int(v) for v in args.sizes.split(",")):
        peers = ["nn", "christofides"] + (["optimum"] if n <= 9 else [])
        results: dict[str, list[tuple[float, float]]] = {m: [] for m in ["civicmap", *peers]}
        for seed in range(args.instances):
            matrix = instance(n, seed)
            for method in results:  # same instance for every method, interleaved
                results[method].append(timed(method, matrix))
        ours = results["civicmap"]
        for peer in peers:
            theirs = results[peer]
            length = statistics.median(a[0] / b[0] for a, b in zip(ours, theirs, strict=True))
            speed = statistics.median(a[1] / b[1] for a, b in zip(ours, theirs, strict=True))
            print(f"{n:>5} {peer:<13} {length:>21.3f} {speed:>19.3f} "
                  f"{1000 * statistics.median(t for _l, t in ours):>12.2f} "
                  f"{1000 * statistics.median(t for _l, t in theirs):>9.2f}")  # fmt: skip
        worse = sum(a[0] > b[0] + 1e-9 for a, b in zip(ours, results["nn"], strict=True))
        print(f"{n:>5} civicmap longer than nearest neighbour alone on {worse} of {args.instances} instances")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
