"""isolate=, rate_limit= and cost= through the decorators: what each costs, side by side.

Run: python benchmarks/bench_api.py [--quick]

1. Isolation: a batch of 2,048 items with 1 or 8 bad ones, sent to a simulated API
   (5 ms a request plus 2 us an item; one bad item fails the whole request). batche
   halves the failing sets; the reference is what a caller without it does once the
   batch failed: send every item alone. Ratios are to one clean request of 2,048.
2. Pacing: callers that ask without pause, more than the budget allows, through
   cache_batch_variable(rate_limit=...) (8 threads, new items every call) and through
   dynamically(rate_limit=...) (64 asyncio callers). "used" is the budget spent in
   consecutive windows of 0.5 s; "busiest window" the most any window held (at most 100%).
3. cost= on a call whose every item hits: the price of counting what the hits saved.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import platform
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import compare, loop, table
from bench_ratelimit import PER, Recorded, measure

from batche import cache_batch_variable, dynamically

N = 2048
LATENCY, PER_ITEM = 0.005, 2e-6


class BadItemError(Exception):
    pass


class SimulatedAPI:
    """Fails a whole request holding a bad item; counts requests and items."""

    def __init__(self, bad: set[int]) -> None:
        self.bad = bad
        self.requests = 0
        self.items = 0

    def __call__(self, items: list[int]) -> list[int]:
        self.requests += 1
        self.items += len(items)
        time.sleep(LATENCY + PER_ITEM * len(items))
        if not self.bad.isdisjoint(items):
            raise BadItemError(items)
        return [i * 2 for i in items]


def isolation_rows() -> list[list[str]]:
    clean = SimulatedAPI(set())
    started = time.perf_counter()
    clean(list(range(N)))
    one = time.perf_counter() - started
    rows = [["none (reference: one request)", "1", f"{N:,}", f"{one * 1000:.0f} ms", "1.0x"]]
    for count in (1, 8):
        bad = set(range(7, N, N // count))  # spread over the batch
        api = SimulatedAPI(bad)
        f = cache_batch_variable("items", isolate=BadItemError, return_exceptions=True)(api)
        started = time.perf_counter()
        out = f(list(range(N)))
        took = time.perf_counter() - started
        assert [i for i, v in enumerate(out) if isinstance(v, BadItemError)] == sorted(bad)
        rows.append([
            f"{count} bad, batche halving", f"{api.requests}", f"{api.items:,}",
            f"{took * 1000:.0f} ms", f"{took / one:.1f}x",
        ])  # fmt: skip
        alone = SimulatedAPI(bad)
        started = time.perf_counter()
        with contextlib.suppress(BadItemError):
            alone(list(range(N)))  # the batch fails; then every item alone
        for item in range(N):
            with contextlib.suppress(BadItemError):
                alone([item])
        took = time.perf_counter() - started
        rows.append([
            f"{count} bad, every item alone", f"{alone.requests:,}", f"{alone.items:,}",
            f"{took * 1000:,.0f} ms", f"{took / one:.1f}x",
        ])  # fmt: skip
    return rows


SCENARIOS = {
    "requests: 50 per 0.5 s": {"requests": 50, "cost": None, "costs": (1, 1)},
    "cost: 1,000 per 0.5 s (10-100 a call)": {"requests": None, "cost": 1_000, "costs": (10, 100)},
}


def item_cost(spec: dict[str, Any], k: int) -> int:
    """The cost of the k-th item: spread over the scenario's range."""
    low, high = spec["costs"]
    return int(low + (k * 37) % (high - low + 1))


def paced_options(spec: dict[str, Any], limit: Recorded) -> dict[str, Any]:
    options: dict[str, Any] = {"rate_limit": limit}
    if spec["cost"] is not None:
        options["cost"] = lambda item: item[1]
    return options


def paced_cache(spec: dict[str, Any], windows: int) -> list[tuple[int, float]]:
    """8 threads call a cached function without pause, one new item a call."""
    limit = Recorded(spec["requests"], spec["cost"], PER)
    counter = itertools.count()

    @cache_batch_variable("items", **paced_options(spec, limit))
    def f(items: list[tuple[int, int]]) -> list[int]:
        return [i for i, _ in items]

    start = [0.0]
    barrier = threading.Barrier(8, action=lambda: start.__setitem__(0, time.monotonic()))

    def run() -> None:
        barrier.wait()
        end = start[0] + (windows + 1) * PER
        while time.monotonic() < end:
            k = next(counter)
            f([(k, item_cost(spec, k))])

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return limit.stamps


def paced_dynamically(spec: dict[str, Any], windows: int) -> list[tuple[int, float]]:
    """64 asyncio callers call a batched function without pause, one item each time."""
    limit = Recorded(spec["requests"], spec["cost"], PER)

    @dynamically(batch_size=1, timeout_ms=0, concurrency=8, **paced_options(spec, limit))
    async def f(items: list[tuple[int, int]]) -> list[int]:
        return [i for i, _ in items]

    async def main() -> None:
        end = time.monotonic() + (windows + 1) * PER
        counter = itertools.count()

        async def caller() -> None:
            while time.monotonic() < end:
                k = next(counter)
                await f([(k, item_cost(spec, k))])

        await asyncio.gather(*(caller() for _ in range(64)))
        await f.aclose()

    asyncio.run(main())
    return limit.stamps


def pacing_rows(windows: int) -> list[list[str]]:
    rows = []
    runs = {"cache, 8 threads": paced_cache, "dynamically, asyncio": paced_dynamically}
    for scenario, spec in SCENARIOS.items():
        for name, run in runs.items():
            rows.append([name, scenario, *measure(run(spec, windows), spec, windows)])
    return rows


def cost_row(size: int, rounds: int) -> list[str]:
    """A hit-only call of ``size`` items without cost=, and with two cost functions."""
    texts = [f"text number {i} with some words" for i in range(size)]

    def body(texts: list[str]) -> list[int]:
        return [len(t) for t in texts]

    plain = cache_batch_variable("texts")(body)
    costed = cache_batch_variable("texts", cost=len)(body)
    words = cache_batch_variable("texts", cost=lambda t: len(t.split()))(body)
    for f in (plain, costed, words):
        f(texts)  # every item cached: the calls timed below are all hits
    best = compare(
        {"plain": loop(lambda: plain(texts)), "len": loop(lambda: costed(texts)),
         "words": loop(lambda: words(texts))},
        rounds,
    )  # fmt: skip
    base = best["plain"]
    return [
        f"{size:,} hits", f"{base * 1e6:.1f} us", f"{best['len'] / base:.2f}x",
        f"{best['words'] / base:.2f}x",
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer windows and rounds")
    args = parser.parse_args()
    windows = 3 if args.quick else 8
    rounds = 5 if args.quick else 20
    print(f"Python {platform.python_version()} on {platform.machine()}, {platform.system()}")
    print(f"\n1. Isolation in a batch of {N:,} ({LATENCY * 1000:.0f} ms a request + "
          f"{PER_ITEM * 1e6:.0f} us an item)")  # fmt: skip
    headers = ["bad items, how", "requests", "items sent", "time", "vs one request"]
    print(table(headers, isolation_rows()))
    print(
        f"\n2. Pacing through the decorators: {windows} windows of {PER} s; "
        "used: target >= 90%; busiest window: <= 100%"
    )
    headers = ["through", "budget", "used", "busiest window", "slots", "verdict"]
    print(table(headers, pacing_rows(windows)))
    print("\n3. cost= on a call whose every item hits (ratio to the same call without cost=)")
    headers = ["call", "without cost=", "cost=len", "cost=words (str.split)"]
    print(table(headers, [cost_row(size, rounds) for size in (10, 1_000)]))


if __name__ == "__main__":
    main()
