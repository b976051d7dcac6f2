"""A Redis Cluster in trouble: what the calls of a cached function see, with RedisStore's
defaults (``timeout=1.0``, ``retry_after=5.0``).

Run: python benchmarks/bench_cluster_faults.py [--seconds 3] [--items 300]

It starts its own clusters on free loopback ports (redis-server in cluster mode, joined by
redis-cli, ``cluster-require-full-coverage no``, ``cluster-node-timeout 5000``), caches
``--items`` items, makes the fault, then calls the function on all of them, in a loop,
for ``--seconds`` (or until the cluster is whole again), checking every result:
- a primary blackholed (its traffic swallowed by a TCP proxy; 3 primaries);
- a primary killed (SIGKILL; 3 primaries, no replica);
- a failover: a primary killed, its replica promoted by the cluster itself (3 primaries
  with a replica each), until the dead primary's entries hit again on the new primary;
- the whole cluster stopped, then restarted on its ports, until caching resumes.
For each: the calls made, the wrong results, the exceptions, the first call and the
slowest call while a node was down, and what the calls computed.
"""

from __future__ import annotations

import argparse
import platform
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import table

from batche import cache_batch_variable
from batche.stores import RedisStore
from tests._cluster import Cluster


class Calls:
    """A cached function and the record of its calls: latency, correctness, computations."""

    def __init__(self, store: RedisStore, items: list[str]) -> None:
        self.items = items
        self.computed: list[int] = []  # items computed, per call
        self.latencies: list[float] = []
        self.wrong = self.raised = 0

        @cache_batch_variable("texts", cache=store, namespace="faults")
        def upper(texts: list[str]) -> list[str]:
            self.computed[-1] += len(texts)
            return [t.upper() for t in texts]

        self.f = upper
        self.store = store

    def __call__(self) -> int:
        """One call on every item; how many it computed."""
        self.computed.append(0)
        start = time.monotonic()
        try:
            value = self.f(self.items)
        except Exception:  # noqa: BLE001 - counted: the figure to show is 0
            self.raised += 1
            value = None
        self.latencies.append(time.monotonic() - start)
        self.wrong += value != [t.upper() for t in self.items]
        return self.computed[-1]

    def during(self, seconds: float) -> None:
        ends = time.monotonic() + seconds
        while time.monotonic() < ends:
            self()

    def until(self, done: Callable[[], bool], limit: float = 120.0) -> float:
        """Call until ``done()``; the seconds it took."""
        start = time.monotonic()
        while not done():
            if time.monotonic() - start > limit:
                raise SystemExit(f"not recovered within {limit:g} s")
        return time.monotonic() - start

    def row(self, scenario: str, since: int, note: str) -> list[str]:
        latencies = self.latencies[since:]
        computed = self.computed[since + 1 :]
        return [
            scenario, f"{len(latencies):,}", str(self.wrong), str(self.raised),
            f"{latencies[0]:.3f} s", f"{max(latencies):.3f} s",
            f"{statistics.median(computed or [0]):.0f} of {len(self.items)}", note,
        ]  # fmt: skip


def owners_of(cluster: Cluster, calls: Calls) -> dict[int, int]:
    keys = calls.store._full(calls.f._core.keys_of(calls.items, ()))
    counts: dict[int, int] = {}
    for node in cluster.owners([k.encode() for k in keys]):
        counts[node.port] = counts.get(node.port, 0) + 1
    return counts


def blackholed(directory: Path, items: list[str], seconds: float) -> list[str]:
    cluster = Cluster(directory).start()
    try:
        with cluster.proxied() as proxied:
            store = RedisStore(proxied.url, address_remap=proxied.remap)
            calls = Calls(store, items)
            calls()
            victim = cluster.primaries()[-1]
            share = owners_of(cluster, calls)[victim.port]
            proxied.of(victim).mode("blackhole")
            since = len(calls.latencies)
            calls()  # waits out the deadline: the node's circuit opens
            sent = proxied.of(victim).received
            calls.during(seconds)
            sent = proxied.of(victim).received - sent
            note = f"its {share} items computed; {sent} bytes sent to it after the first call"
            proxied.mode("pass")
            store.close()
            return calls.row("a primary blackholed", since, note)
    finally:
        cluster.stop()


def killed(directory: Path, items: list[str], seconds: float) -> list[str]:
    cluster = Cluster(directory).start()
    try:
        store = RedisStore(cluster.url)
        calls = Calls(store, items)
        calls()
        victim = cluster.primaries()[-1]
        share = owners_of(cluster, calls)[victim.port]
        victim.stop(signal.SIGKILL)
        since = len(calls.latencies)
        calls.during(seconds)
        store.close()
        return calls.row("a primary killed (no replica)", since, f"its {share} items computed")
    finally:
        cluster.stop()


def failover(directory: Path, items: list[str]) -> list[str]:
    cluster = Cluster(directory, replicas=1).start()
    try:
        store = RedisStore(cluster.url)
        calls = Calls(store, items)
        calls()
        victim = cluster.primaries()[-1]
        replica = cluster.replica_of(victim)
        victim.stop(signal.SIGKILL)
        killed_at = time.monotonic()
        since = len(calls.latencies)

        def promoted() -> bool:
            calls()
            return replica.info("replication").get("role") == "master"

        calls.until(promoted)
        promoted_after = time.monotonic() - killed_at
        hits = calls.until(lambda: calls() == 0)  # every item found, on the new primary
        note = (
            f"replica promoted {promoted_after:.1f} s after the kill; every item a hit "
            f"{promoted_after + hits:.1f} s after it"
        )
        store.close()
        return calls.row("failover: a primary killed", since, note)
    finally:
        cluster.stop()


def restarted(directory: Path, items: list[str], seconds: float) -> list[str]:
    cluster = Cluster(directory).start()
    try:
        store = RedisStore(cluster.url)
        calls = Calls(store, items)
        calls()
        for node in cluster.nodes:
            node.stop()
        since = len(calls.latencies)
        calls.during(seconds)
        for node in cluster.nodes:
            node.start()
        cluster.wait_ok()
        back = time.monotonic()
        calls.until(lambda: calls() == 0 and calls() == 0)  # stored again, then found
        note = f"caching again {time.monotonic() - back:.1f} s after the cluster was back"
        store.close()
        return calls.row("the whole cluster restarted", since, note)
    finally:
        cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="calls while a node is down")
    parser.add_argument("--items", type=int, default=300, help="items of each call")
    args = parser.parse_args()
    items = [f"item {i}" for i in range(args.items)]
    rows: list[list[Any]] = []
    with tempfile.TemporaryDirectory() as scratch:
        for name, run in (
            ("hole", lambda d: blackholed(d, items, args.seconds)),
            ("kill", lambda d: killed(d, items, args.seconds)),
            ("failover", lambda d: failover(d, items)),
            ("restart", lambda d: restarted(d, items, args.seconds)),
        ):
            directory = Path(scratch) / name
            directory.mkdir()
            rows.append(run(directory))
    print(f"Python {platform.python_version()} on {platform.machine()}, {platform.system()}")
    print(
        table(
            ["fault", "calls", "wrong", "exceptions", "first call", "slowest", "computed",
             "note"],
            rows,
        )
    )  # fmt: skip


if __name__ == "__main__":
    main()
