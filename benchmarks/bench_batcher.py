"""batche's ``dynamically`` side by side with ``batched`` 0.1.5 (the seed dynamic batcher).

Run: python benchmarks/bench_batcher.py [--quick]

Workloads (the batch function itself is trivial, so the batcher's own cost shows):
- 10,000 concurrent asyncio single-item callers (batch_size=64, timeout_ms=5 for both),
  next to a bare ``asyncio.gather`` of 10,000 no-op coroutines;
- closed-loop callers: 8 threads x 2,000 calls and 8 asyncio tasks x 250 calls, each
  waiting for its answer before asking again (batche with timeout_ms=0, batched at its
  defaults);
- a lone call on an idle batcher (latency percentiles), with timeout_ms=0 and 5;
- CPU burnt by an idle batcher in one second;
- a cache hit stacked over the batcher.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import batched
from _common import compare, table

from batche import cache_batch_variable, dynamically


def double(xs):  # type: ignore[no-untyped-def]
    return [x * 2 for x in xs]


async def adouble(xs):  # type: ignore[no-untyped-def]
    return [x * 2 for x in xs]


def timed(run: Any, requests: int) -> Any:
    """A round for ``compare``: seconds per request of one ``run()``."""

    def one_round() -> float:
        start = time.perf_counter()
        run()
        return (time.perf_counter() - start) / requests

    return one_round


def rates(contenders: dict[str, Any], rounds: int) -> dict[str, float]:
    """Requests per second of each contender, timed in interleaved rounds."""
    return {name: 1 / seconds for name, seconds in compare(contenders, rounds).items()}


def concurrent_async(make: Any, callers: int) -> Any:
    async def once() -> None:
        f = make()
        results = await asyncio.gather(*(f.one(i) if hasattr(f, "one") else f(i)
                                          for i in range(callers)))  # fmt: skip
        assert results[-1] == 2 * (callers - 1)

    return timed(lambda: asyncio.run(once()), callers)


def bare_gather(callers: int) -> Any:
    async def noop(i: int) -> int:
        return i * 2

    async def once() -> None:
        await asyncio.gather(*(noop(i) for i in range(callers)))

    return timed(lambda: asyncio.run(once()), callers)


def closed_loop_threads(f: Any, threads: int, calls: int) -> Any:
    single = hasattr(f, "one")

    def run() -> None:
        barrier = threading.Barrier(threads)

        def work(n: int) -> None:
            barrier.wait()
            for i in range(calls):
                got = f.one(i) if single else f(i)
                assert got == 2 * i

        workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()

    return timed(run, threads * calls)


def closed_loop_tasks(make: Any, tasks: int, calls: int) -> Any:
    async def once() -> None:
        f = make()
        single = hasattr(f, "one")

        async def work() -> None:
            for i in range(calls):
                got = await (f.one(i) if single else f(i))
                assert got == 2 * i

        await asyncio.gather(*(work() for _ in range(tasks)))

    return timed(lambda: asyncio.run(once()), tasks * calls)


def lone_latency_threads(f: Any, calls: int) -> list[float]:
    """Microseconds per call, one caller, idle batcher between calls (no GC pauses)."""
    single = hasattr(f, "one")
    samples = []
    gc.disable()
    try:
        for i in range(calls):
            start = time.perf_counter()
            _ = f.one(i) if single else f(i)
            samples.append((time.perf_counter() - start) * 1e6)
    finally:
        gc.enable()
    return samples


def lone_latency_async(make: Any, calls: int) -> list[float]:
    async def once() -> list[float]:
        f = make()
        single = hasattr(f, "one")
        samples = []
        for i in range(calls):
            start = time.perf_counter()
            _ = await (f.one(i) if single else f(i))
            samples.append((time.perf_counter() - start) * 1e6)
        return samples

    gc.disable()
    try:
        return asyncio.run(once())
    finally:
        gc.enable()


IDLE_PROBE = """
import sys, time
sys.path.insert(0, {root!r})
import batched
from batche import dynamically
double = lambda xs: [x * 2 for x in xs]
f = {make}
f.one(1) if hasattr(f, "one") else f(1)  # its worker is started, then idles
start = time.process_time()
time.sleep({seconds})  # the probe waits; the batcher should not work meanwhile
print((time.process_time() - start) * 1000 / {seconds})
"""


def idle_cpu_ms(make: str, seconds: float, runs: int = 3) -> float:
    """CPU milliseconds per second that a started, idle batcher burns (its own process).

    The lowest of ``runs`` probes: a poller burns CPU in every one of them, while a
    hiccup of the machine disturbs one.
    """
    root = str(Path(__file__).resolve().parent.parent)
    code = IDLE_PROBE.format(root=root, make=make, seconds=seconds)
    probes = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        probes.append(float(done.stdout.strip()))
    return min(probes)


def throughput(label: str, got: dict[str, float], note: str) -> list[str]:
    ours, theirs = got["batche"], got["batched"]
    return [label, f"{ours:,.0f}/s", f"{theirs:,.0f}/s", f"{ours / theirs:.1f}x", note]


def latency_row(label: str, ours: list[float], theirs: list[float]) -> list[str]:
    p99 = f"p99 {pct(ours, 0.99):,.0f} µs"
    return [label, f"{pct(ours, 0.5):,.0f} µs", f"{pct(theirs, 0.5):,.0f} µs", "", p99]


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (a smoke run)")
    args = parser.parse_args()
    rounds = 2 if args.quick else 5
    callers = 10_000
    rows: list[list[str]] = []

    # 1. a lone call on an idle batcher: measured first, while no batched processor
    #    exists (theirs keep polling threads alive that would disturb our timings)
    n = 300 if args.quick else 2_000
    lone_async = lone_latency_async(lambda: dynamically(batch_size=64, timeout_ms=0)(adouble), n)
    lone_threads = lone_latency_threads(dynamically(batch_size=64, timeout_ms=0)(double), n)
    waiting = lone_latency_threads(
        dynamically(batch_size=64, timeout_ms=5)(double), max(50, n // 10)
    )
    waiting_async = lone_latency_async(
        lambda: dynamically(batch_size=64, timeout_ms=5)(adouble), max(50, n // 10)
    )
    # batched's thread processor polls from then on, taking the GIL every 5 ms
    theirs_async = lone_latency_async(lambda: batched.aio.dynamically(adouble), max(50, n // 10))
    theirs_threads = lone_latency_threads(batched.dynamically(double), max(50, n // 10))
    rows.append(latency_row("lone call p50, asyncio (timeout 0)", lone_async, theirs_async))
    rows.append(latency_row("lone call p50, threads (timeout 0)", lone_threads, theirs_threads))
    rows.append(["lone call, timeout 5 ms: p99 / max (threads)",
                 f"{pct(waiting, .99) / 1000:.2f} / {max(waiting) / 1000:.2f} ms", "", "",
                 "target: never longer than 5 ms + 1 ms"])  # fmt: skip
    rows.append(["lone call, timeout 5 ms: p99 / max (asyncio)",
                 f"{pct(waiting_async, .99) / 1000:.2f} / {max(waiting_async) / 1000:.2f} ms",
                 "", "", "target: never longer than 5 ms + 1 ms"])  # fmt: skip

    # 2. 10,000 concurrent single-item asyncio callers
    got = rates(
        {
            "batche": concurrent_async(
                lambda: dynamically(batch_size=64, timeout_ms=5)(adouble), callers
            ),
            "batched": concurrent_async(
                lambda: batched.aio.dynamically(adouble, batch_size=64, timeout_ms=5.0), callers
            ),
            "gather": bare_gather(callers),
        },
        rounds,
    )
    rows.append(throughput("10,000 concurrent asyncio callers (64, 5 ms)", got,
                           f"bare gather {got['gather']:,.0f}/s"))  # fmt: skip

    # 3. closed-loop threads (batched sleeps its timeout whenever the queue is short)
    threads, calls = 8, (500 if args.quick else 2_000)
    got = rates(
        {
            "batche": closed_loop_threads(
                dynamically(batch_size=64, timeout_ms=0)(double), threads, calls
            ),
            "batched": closed_loop_threads(batched.dynamically(double), threads, calls // 4),
        },
        rounds,
    )
    rows.append(throughput(f"{threads} threads x {calls:,} calls, closed loop", got,
                           "batche timeout 0; batched defaults"))  # fmt: skip

    # 4. closed-loop asyncio tasks
    tasks, task_calls = 8, 250
    got = rates(
        {
            "batche": closed_loop_tasks(
                lambda: dynamically(batch_size=64, timeout_ms=0)(adouble), tasks, task_calls
            ),
            "batched": closed_loop_tasks(
                lambda: batched.aio.dynamically(adouble), tasks, task_calls // 4
            ),
        },
        rounds,
    )
    rows.append(throughput(f"{tasks} tasks x {task_calls} calls, closed loop", got,
                           "batche timeout 0; batched defaults"))  # fmt: skip

    # 5. idle CPU
    seconds = 0.5 if args.quick else 2.0
    idle_ours = idle_cpu_ms("dynamically(batch_size=64, timeout_ms=5)(double)", seconds)
    idle_theirs = idle_cpu_ms("batched.dynamically(double)", seconds)
    rows.append(["idle CPU per second", f"{idle_ours:.2f} ms", f"{idle_theirs:.2f} ms", "", ""])

    # 6. a cache hit stacked over the batcher
    batcher = dynamically(batch_size=64, timeout_ms=0)(double)
    cached = cache_batch_variable("xs")(batcher)
    cached([1])
    before = batcher.stats.batches
    hit = min(
        (time.perf_counter(), [cached([1]) for _ in range(10_000)], time.perf_counter())
        for _ in range(rounds)
    )
    per_hit = (hit[2] - hit[0]) / 10_000 * 1e6
    assert batcher.stats.batches == before  # hits never reached the batcher
    rows.append(["stacked cache hit (1 item)", f"{per_hit:.2f} µs", "", "", "batcher untouched"])

    print(f"Python {platform.python_version()} on {platform.machine()}, {platform.system()}; "
          f"batched {getattr(batched, '__version__', '0.1.5')}")  # fmt: skip
    print(table(["workload", "batche", "batched", "ratio", "note"], rows))


if __name__ == "__main__":
    main()
