"""Cost of batche's cache next to the floors it is measured against, and batche 0.1.1.

Run: python benchmarks/bench_cache.py [--quick]

Floors, measured in the same run:
- hits: ``[d[k] for k in keys]`` on a dict that holds every key;
- misses: a membership test per item, one call of the bare function on the misses,
  and one insert per result.
Each figure is the best of several rounds; ratios are to the floor of the same size.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import best_of, legacy_batche, table

from batche import cache_batch_variable


def bare(batch_items):  # type: ignore[no-untyped-def]  # batche 0.1.1 fails on string annotations
    """The function under the cache: as cheap as a function can be, so overhead shows."""
    return [len(t) for t in batch_items]


def keys_of(n: int, start: int = 0) -> list[str]:
    return [f"text number {i}" for i in range(start, start + n)]


def hit_floor(keys: list[str]) -> Any:
    d = dict(zip(keys, bare(keys)))
    return lambda: [d[k] for k in keys]


def miss_floor(keys: list[str]) -> Any:
    def run() -> list[int]:
        d: dict[str, int] = {}
        todo = [k for k in keys if k not in d]
        out = bare(todo)
        for k, v in zip(todo, out):
            d[k] = v
        return out

    return run


def cached(factory: Any, maxsize: int | None) -> Any:
    if factory is cache_batch_variable:
        return cache_batch_variable("batch_items", maxsize=maxsize)(bare)
    return factory(batch_variable_name="batch_items", maxsize=maxsize)(bare)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (for a smoke run)")
    args = parser.parse_args()
    repeat = 3 if args.quick else 7
    legacy = legacy_batche()
    impls: list[tuple[str, Any]] = [("batche", cache_batch_variable)]
    if legacy is not None:
        impls.append(("batche 0.1.1", legacy.cache_batch_variable))
    rows: list[list[str]] = []

    def add(workload: str, n: int, floor: float, name: str, seconds: float) -> None:
        per_item = f"{seconds / n * 1e9:,.1f}"
        rows.append([workload, f"{n:,}", name, per_item, f"{seconds / floor:.2f}x"])

    for n in (10, 1_000, 100_000):
        keys = keys_of(n)
        floor = best_of(hit_floor(keys), repeat=repeat)
        add("hit", n, floor, "floor: [d[k] for k in keys]", floor)
        for label, maxsize in (("dict", None), ("LRU", 2 * n)):
            for name, factory in impls:
                f = cached(factory, maxsize)
                f(keys)
                add(f"hit, {label}", n, floor, name, best_of(lambda f=f: f(keys), repeat=repeat))
    for n in (10, 1_000, 100_000):
        keys = keys_of(n)
        floor = best_of(miss_floor(keys), repeat=repeat)
        add("miss", n, floor, "floor: test + bare call + insert", floor)
        for label, maxsize in (("dict", None), ("LRU", 2 * n)):
            for name, factory in impls:
                seconds = _miss_time(factory, maxsize, keys, repeat)
                add(f"miss, {label}", n, floor, name, seconds)
    for n in (1_000,):
        seen, new = keys_of(n // 2), keys_of(n // 2, start=10**6)
        mixed = [k for pair in zip(seen, new) for k in pair]
        floor = best_of(_mixed_floor(seen, mixed), repeat=repeat)
        add("mixed ½ seen", n, floor, "floor: test + bare call + insert", floor)
        for label, maxsize in (("dict", None), ("LRU", 4 * n)):
            for name, factory in impls:
                seconds = _mixed_time(factory, maxsize, seen, mixed, repeat)
                add(f"mixed ½ seen, {label}", n, floor, name, seconds)

    print(f"Python {platform.python_version()} on {platform.machine()}, {platform.system()}")
    print(table(["workload", "items", "implementation", "ns/item", "vs floor"], rows))


def _miss_time(factory: Any, maxsize: int | None, keys: list[str], repeat: int) -> float:
    """Seconds for a call whose every item is a miss (fresh caches, made before timing)."""
    best = float("inf")
    for _ in range(repeat):
        fs = [cached(factory, maxsize) for _ in range(max(1, 20_000 // len(keys)))]
        start = time.perf_counter()
        for f in fs:
            f(keys)
        best = min(best, (time.perf_counter() - start) / len(fs))
    return best


def _mixed_floor(seen: list[str], mixed: list[str]) -> Any:
    base = dict(zip(seen, bare(seen)))

    def run() -> list[int]:
        d = dict(base)
        todo = [k for k in mixed if k not in d]
        for k, v in zip(todo, bare(todo)):
            d[k] = v
        return [d[k] for k in mixed]

    return run


def _mixed_time(
    factory: Any, maxsize: int | None, seen: list[str], mixed: list[str], repeat: int
) -> float:
    """Seconds for a call of which half the items were seen before (fresh caches)."""
    best = float("inf")
    for _ in range(repeat):
        fs = [cached(factory, maxsize) for _ in range(20)]
        for f in fs:
            f(seen)
        start = time.perf_counter()
        for f in fs:
            f(mixed)
        best = min(best, (time.perf_counter() - start) / len(fs))
    return best


if __name__ == "__main__":
    main()
