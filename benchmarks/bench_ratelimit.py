"""RateLimit under a steady workload: how much of the budget it uses, and never more.

Run: python benchmarks/bench_ratelimit.py [--quick] [--redis-url redis://127.0.0.1:6379/15]

Callers ask without pause, more than the budget allows, for several windows:
- local: 8 threads of one process share one RateLimit;
- Redis: 3 processes of 4 threads each share one budget kept in Redis.
Two budgets: requests only (50 per 0.5 s, every call free), and cost only (1,000 per
0.5 s, each call costing 10 to 100 at random, like token counts of varied batches).
Every slot the limiter hands out is recorded on the clock that decided it. "used" is the
budget spent in consecutive windows from the first slot, while every caller still asks;
"busiest window" is the most any window of the same length held (the contract: at most
100%). Without --redis-url a redis-server is started on a free loopback port.
"""

from __future__ import annotations

import argparse
import contextvars
import multiprocessing
import platform
import random
import sys
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import redis_url, table

from batche import RateLimit

PER = 0.5
SCENARIOS = {
    "requests: 50 per 0.5 s": {"requests": 50, "cost": None, "costs": (0, 0)},
    "cost: 1,000 per 0.5 s (10-100 a call)": {"requests": None, "cost": 1_000, "costs": (10, 100)},
}
FIRST_SLOT: contextvars.ContextVar[int] = contextvars.ContextVar("FIRST_SLOT")
LAST_SLOT: contextvars.ContextVar[int] = contextvars.ContextVar("LAST_SLOT")


class Recorded(RateLimit):
    """Keeps every slot it hands out: (slot in microseconds, cost)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stamps: list[tuple[int, float]] = []
        self._stamps_lock = threading.Lock()  # guards stamps (threads record at once)

    def _granted(self, slot: int, now: int, cost: float) -> None:
        with self._stamps_lock:
            self.stamps.append((slot, cost))
        LAST_SLOT.set(slot)
        if FIRST_SLOT.get(None) is None:
            FIRST_SLOT.set(slot)


def ask_steadily(limit: Recorded, costs: tuple[int, int], windows: int, seed: int) -> None:
    """Acquire without pause until this caller's slots span ``windows + 1`` windows."""
    rng = random.Random(seed)
    end = None
    while end is None or LAST_SLOT.get() < end:
        limit.acquire(rng.randint(*costs))
        if end is None:
            end = FIRST_SLOT.get() + round((windows + 1) * PER * 1e6)


def in_threads(
    limit: Recorded, costs: tuple[int, int], windows: int, count: int, seed: int
) -> None:
    barrier = threading.Barrier(count)

    def run(n: int) -> None:
        barrier.wait()
        ask_steadily(limit, costs, windows, seed * 100 + n)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def process_main(
    url: str, name: str, scenario: str, windows: int, start: Any, out: Any, n: int
) -> None:
    """One of the Redis processes: 4 threads, its slots put back on ``out``."""
    spec = SCENARIOS[scenario]
    limit = Recorded(spec["requests"], spec["cost"], PER, redis=url, name=name)
    start.wait()
    in_threads(limit, spec["costs"], windows, 4, seed=n)
    out.put(limit.stamps)
    limit.close()


def measure(stamps: list[tuple[int, float]], spec: dict[str, Any], windows: int) -> list[str]:
    """Budget used over ``windows`` consecutive windows, and the busiest window."""
    stamps = sorted(stamps)
    per = round(PER * 1e6)
    first = stamps[0][0]
    counted = [c for t, c in stamps if t < first + windows * per]
    busiest_n, busiest_c = 0, 0.0
    for i, (start, _) in enumerate(stamps):
        inside = [c for t, c in stamps[i:] if t < start + per]
        busiest_n, busiest_c = max(busiest_n, len(inside)), max(busiest_c, sum(inside))
    if spec["requests"] is not None:
        used, busiest = len(counted) / (windows * spec["requests"]), busiest_n / spec["requests"]
    else:
        used, busiest = sum(counted) / (windows * spec["cost"]), busiest_c / spec["cost"]
    verdict = "ok" if used >= 0.9 and busiest <= 1 else "MISSED"
    return [f"{used:.1%}", f"{busiest:.1%}", f"{len(stamps):,}", verdict]


def local_row(scenario: str, windows: int) -> list[str]:
    spec = SCENARIOS[scenario]
    limit = Recorded(spec["requests"], spec["cost"], PER)
    in_threads(limit, spec["costs"], windows, 8, seed=1)
    return ["local, 8 threads", scenario, *measure(limit.stamps, spec, windows)]


def redis_row(url: str, scenario: str, windows: int) -> list[str]:
    context = multiprocessing.get_context("spawn")
    start, out = context.Barrier(3), context.Queue()
    name = f"bench-{random.randrange(10**9)}"
    args = (url, name, scenario, windows, start, out)
    workers = [context.Process(target=process_main, args=(*args, n)) for n in range(3)]
    for worker in workers:
        worker.start()
    stamps = [stamp for _ in workers for stamp in out.get(timeout=120)]
    for worker in workers:
        worker.join()
    return [
        "Redis, 3 processes x 4 threads",
        scenario,
        *measure(stamps, SCENARIOS[scenario], windows),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer windows (a smoke run)")
    parser.add_argument("--redis-url", help="an existing server")
    args = parser.parse_args()
    windows = 3 if args.quick else 8
    rows = [local_row(scenario, windows) for scenario in SCENARIOS]
    with redis_url(args.redis_url) as url:
        rows += [redis_row(url, scenario, windows) for scenario in SCENARIOS]
    print(f"Python {platform.python_version()} on {platform.machine()}, {platform.system()}")
    print(f"{windows} windows of {PER} s each; used: target >= 90%; busiest window: <= 100%")
    print(table(["mode", "budget", "used", "busiest window", "slots", "verdict"], rows))


if __name__ == "__main__":
    main()
