"""Cost of batche's cache next to the floors it is measured against, and batche 0.1.1.

Run: python benchmarks/bench_cache.py [--quick]

Floors, measured in the same run:
- hits: ``[d[k] for k in keys]`` on a dict that holds every key;
- misses: a membership test per item, one call of the bare function on the misses,
  and one insert per result (no dedup, no order restored).
Every contender of a workload is timed in interleaved rounds; each figure is its best
round, and ratios are to the floor of the same workload.
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import Round, compare, legacy_batche, loop, table

from batche import cache_batch_variable


def bare(batch_items):  # type: ignore[no-untyped-def]  # batche 0.1.1 fails on string annotations
    """The function under the cache: as cheap as a function can be, so overhead shows."""
    return [len(t) for t in batch_items]


def keys_of(n: int, start: int = 0) -> list[str]:
    return [f"text number {i}" for i in range(start, start + n)]


def cached(factory: Any, maxsize: int | None) -> Any:
    return factory(batch_variable_name="batch_items", maxsize=maxsize)(bare)


def fresh_calls(make: Any, call: Any, per_round: int) -> Round:
    """A round of ``per_round`` calls, each on a fresh cache made (and warmed) untimed."""

    def one_round() -> float:
        made = [make() for _ in range(per_round)]
        start = time.perf_counter()
        for item in made:
            call(item)
        return (time.perf_counter() - start) / per_round

    return one_round


def hit_workload(keys: list[str], impls: dict[str, Any]) -> dict[str, Round]:
    d = dict(zip(keys, bare(keys)))
    contenders = {"floor": loop(lambda: [d[k] for k in keys])}
    for name, (factory, maxsize) in impls.items():
        f = cached(factory, maxsize(len(keys)))
        f(keys)
        contenders[name] = loop(lambda f=f: f(keys))
    return contenders


def miss_workload(keys: list[str], impls: dict[str, Any]) -> dict[str, Round]:
    per_round = max(1, 20_000 // len(keys))

    def floor(d: dict[str, int]) -> list[int]:
        todo = [k for k in keys if k not in d]
        out = bare(todo)
        for k, v in zip(todo, out):
            d[k] = v
        return out

    contenders = {"floor": fresh_calls(dict, floor, per_round)}
    for name, (factory, maxsize) in impls.items():
        contenders[name] = fresh_calls(
            lambda factory=factory, maxsize=maxsize: cached(factory, maxsize(len(keys))),
            lambda f: f(keys),
            per_round,
        )
    return contenders


def mixed_workload(n: int, impls: dict[str, Any]) -> dict[str, Round]:
    """Half of each batch was seen before, interleaved with new items."""
    seen, new = keys_of(n // 2), keys_of(n // 2, start=10**6)
    mixed = [k for pair in zip(seen, new) for k in pair]
    base = dict(zip(seen, bare(seen)))

    def floor(d: dict[str, int]) -> list[int]:
        todo = [k for k in mixed if k not in d]
        for k, v in zip(todo, bare(todo)):
            d[k] = v
        return [d[k] for k in mixed]

    def warmed(factory: Any, maxsize: Any) -> Any:
        f = cached(factory, maxsize(2 * n))
        f(seen)
        return f

    contenders = {"floor": fresh_calls(lambda: dict(base), floor, 20)}
    for name, (factory, maxsize) in impls.items():
        contenders[name] = fresh_calls(
            lambda factory=factory, maxsize=maxsize: warmed(factory, maxsize),
            lambda f: f(mixed),
            20,
        )
    return contenders


def chunked_workload(n: int, distinct: int, max_batch_size: int) -> dict[str, Round]:
    """One call of ``n`` items drawn from ``distinct`` (so with many repeats), all new:
    sent in chunks of ``max_batch_size``, and in one piece."""
    rng = random.Random(7)
    items = [f"text number {rng.randrange(distinct)}" for _ in range(n)]

    def make(size: int | None) -> Any:
        return cache_batch_variable(batch_variable_name="batch_items", max_batch_size=size)(bare)

    return {
        "one piece": fresh_calls(lambda: make(None), lambda f: f(items), 1),
        f"chunks of {max_batch_size:,}": fresh_calls(
            lambda: make(max_batch_size), lambda f: f(items), 1
        ),
    }


def chunked_table(rounds: int) -> str:
    """The cost of ``max_batch_size`` on a large batch with repeats, as a Markdown table."""
    n, distinct, size = 400_000, 100_000, 2048
    best = compare(chunked_workload(n, distinct, size), rounds)
    whole, chunked = best["one piece"], best[f"chunks of {size:,}"]
    row = [f"{n:,} ({distinct:,} distinct)", f"{whole:.2f} s", f"{chunked:.2f} s"]
    return table(
        ["items", "in one piece", f"max_batch_size={size:,}", "ratio"],
        [[*row, f"{chunked / whole:.2f}x"]],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    parser.add_argument("--chunks", action="store_true", help="only the max_batch_size row")
    args = parser.parse_args()
    rounds = 3 if args.quick else 9
    chunks = chunked_table(min(rounds, 3))
    if args.chunks:
        print(chunks)
        return
    legacy = legacy_batche()
    unbounded = lambda n: None  # noqa: E731
    bounded = lambda n: 2 * n  # noqa: E731
    impls: dict[str, Any] = {
        "batche, dict": (cache_batch_variable, unbounded),
        "batche, LRU": (cache_batch_variable, bounded),
    }
    if legacy is not None:
        impls["0.1.1, dict"] = (legacy.cache_batch_variable, unbounded)
        impls["0.1.1, LRU"] = (legacy.cache_batch_variable, bounded)

    workloads = [("hit", n, hit_workload(keys_of(n), impls)) for n in (10, 1_000, 100_000)]
    workloads += [("miss", n, miss_workload(keys_of(n), impls)) for n in (10, 1_000, 100_000)]
    workloads += [("mixed, ½ seen", 1_000, mixed_workload(1_000, impls))]

    detail: list[list[str]] = []
    summary: list[list[str]] = []
    for workload, n, contenders in workloads:
        best = compare(contenders, rounds)
        floor = best["floor"]
        for name, seconds in best.items():
            per_item = f"{seconds / n * 1e9:,.1f}"
            detail.append([workload, f"{n:,}", name, per_item, f"{seconds / floor:.2f}x"])
        ratios = [f"{best[name] / floor:.2f}x" for name in impls]
        summary.append([workload, f"{n:,}", f"{floor / n * 1e9:,.1f} ns", *ratios])

    print(f"Python {platform.python_version()} on {platform.machine()}, {platform.system()}")
    print(table(["workload", "items", "contender", "ns/item", "vs floor"], detail))
    print("\nRatios to the floor (the README's table):\n")
    print(table(["workload", "items", "floor per item", *impls], summary))
    print("\nmax_batch_size on a batch with many repeats (seconds per call, best round):\n")
    print(chunks)


if __name__ == "__main__":
    main()
