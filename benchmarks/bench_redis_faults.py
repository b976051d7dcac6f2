"""A frozen Redis (SIGSTOP): what each call costs, with batche and with a plain cache.

Run: python benchmarks/bench_redis_faults.py [--calls 50]

It starts its own redis-server on loopback, caches an item, freezes the server with
SIGSTOP and times calls of the cached function (sync, then async):
- batche: ``RedisStore`` with its defaults (``timeout=1.0``, ``retry_after=5.0``). The
  first call waits out one deadline; the next ones skip the store (the circuit is open);
- the references: the same function in front of a plain redis-py client with the same
  1 s socket timeouts, errors caught: what a cache without a circuit breaker or a total
  deadline costs, on every call. Made by ``redis.Redis.from_url`` (as batche 0.2.0 made
  its client), and by ``redis.Redis(host, port)``, which keeps redis-py's default
  retries (10 retries with back-off in redis-py 8).
Then it thaws the server, one second after the circuit opened, and calls on until the
store is used again (a cached item is a hit): the time to resume.
"""

from __future__ import annotations

import asyncio
import signal
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import contextlib
import platform

import redis
from _common import redis_server, table

from batche import cache_batch_variable
from batche.stores import RedisStore


def seconds_of(call: Callable[[], Any]) -> float:
    start = time.monotonic()
    call()
    return time.monotonic() - start


def plain_cache(client: redis.Redis) -> Callable[[list[str]], list[str]]:
    """A per-item cache on a plain redis-py client: no breaker, no total deadline."""

    def embed(texts: list[str]) -> list[str]:
        keys = [f"plain:{t}" for t in texts]
        try:
            values = client.mget(keys)
        except redis.RedisError:
            values = [None] * len(keys)
        out = [v.decode() if v is not None else t.upper() for t, v in zip(texts, values)]
        with contextlib.suppress(redis.RedisError):
            client.mset({k: o for k, o, v in zip(keys, out, values) if v is None})
        return out

    return embed


def measure(server: Any, kind: str, calls: int) -> list[list[str]]:
    """Rows for batche (sync or async) on a server frozen for the duration."""
    url = server.url
    computed = [0]  # items computed
    loop = asyncio.new_event_loop() if kind == "async" else None

    def upper(texts: list[str]) -> list[str]:
        computed[0] += len(texts)
        return [t.upper() for t in texts]

    async def aupper(texts: list[str]) -> list[str]:
        return upper(texts)

    store = RedisStore(url)
    cached = cache_batch_variable("texts", cache=store, namespace=kind)(
        aupper if loop is not None else upper
    )

    def call(texts: list[str]) -> Any:
        result = cached(texts)
        return loop.run_until_complete(result) if loop is not None else result

    call(["warm"])
    server.freeze()
    first = seconds_of(lambda: call(["warm", "x"]))
    opened = time.monotonic()
    skipped = [seconds_of(lambda: call(["warm", "x"])) for _ in range(calls)]
    while time.monotonic() - opened < 1.0:  # the outage lasts one second after opening
        call(["warm"])
    server.thaw()
    thawed = time.monotonic()
    while True:  # until "warm" is found in the store again
        before = computed[0]
        call(["warm"])
        if computed[0] == before:
            break
    resumed = time.monotonic()
    if loop is not None:
        loop.run_until_complete(store.aclose())
        loop.close()
    store.close()
    name = f"batche ({kind})"
    return [
        ["frozen: the first call", name, f"{first:.3f} s", "one deadline (timeout=1.0)"],
        [f"frozen: the next {calls} calls", name,
         f"median {statistics.median(skipped) * 1e6:.0f} µs, max {max(skipped) * 1e3:.2f} ms",
         "the circuit is open: the store is skipped"],
        ["thawed: until caching resumes", name, f"{resumed - thawed:.2f} s after the thaw",
         f"{resumed - opened:.2f} s after the circuit opened (retry_after=5.0)"],
    ]  # fmt: skip


def reference(server: Any, made: str, client: redis.Redis, calls: int) -> list[list[str]]:
    embed = plain_cache(client)
    embed(["warm"])
    server.freeze()
    try:
        costs = [seconds_of(lambda: embed(["warm", "x"])) for _ in range(calls)]
    finally:
        server.thaw()
    client.close()
    return [[f"frozen: each of {calls} calls", f"plain cache, {made}",
             f"median {statistics.median(costs):.2f} s, max {max(costs):.2f} s",
             "a read and a write, every call"]]  # fmt: skip


class Server:
    """A running redis-server that can be frozen (SIGSTOP) and thawed (SIGCONT)."""

    def __init__(self, url: str, process: Any) -> None:
        self.url, self.process = url, process

    def freeze(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.process.send_signal(signal.SIGCONT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50, help="calls while frozen")
    args = parser.parse_args()
    with redis_server() as (url, process):
        server = Server(url, process)
        try:
            rows = measure(server, "sync", args.calls)
            rows += measure(server, "async", args.calls)
            timeouts = {"socket_timeout": 1.0, "socket_connect_timeout": 1.0}
            rows += reference(server, "from_url", redis.Redis.from_url(url, **timeouts), 3)
            port = int(url.rsplit(":", 1)[1].split("/")[0])
            rows += reference(
                server, "Redis(host, port)", redis.Redis("127.0.0.1", port, **timeouts), 1
            )
        finally:
            server.thaw()  # a frozen server cannot act on SIGTERM
    print(f"Python {platform.python_version()} on {platform.machine()}, {platform.system()}")
    print(table(["scenario", "contender", "cost", "note"], rows))


if __name__ == "__main__":
    main()
