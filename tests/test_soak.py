"""Soaks of the cache: event loops, threads and instances come and go; nothing of them stays.

An async cached function called from many ``asyncio.run()`` calls, with each store, and a
cached method called on many instances: the loops and instances left alive after a
garbage collection stay within a small constant. Run as a script to print the figures
the README quotes: ``python tests/test_soak.py`` (it starts its own redis-server).

Objects are counted through weak references, so counting keeps nothing alive.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

if __package__ in (None, ""):  # run as a script: import the worktree's batche
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from batche import cache_batch_variable
from batche.stores import RedisStore, SQLiteStore
from tests.conftest import RedisServer, in_threads

RUNS = 200
INSTANCES = 1_000
MAXSIZE = 64  # entries of the method whose key holds the instance
# What may stay: the loop of the last run until the next collection, a thread of a pool.
SLACK = 2


def alive(refs: list[weakref.ref[Any]]) -> int:
    """How many of ``refs`` still point to an object, after a full collection."""
    gc.collect()
    return sum(ref() is not None for ref in refs)


class LoopFigures(NamedTuple):
    loops: int  # event loops still alive after the runs
    threads: tuple[int, int]  # threads before and after


def loop_soak(store: Any, runs: int = RUNS, **options: Any) -> LoopFigures:
    """``runs`` calls of ``asyncio.run``, each making misses and hits, two tasks sharing one
    computation, and a call still in flight when the run ends (asyncio.run cancels it)."""
    extra = {"cache": store, "namespace": "soak"} if store is not None else {}

    @cache_batch_variable("items", **extra, **options)
    async def triple(items: list[int]) -> list[int]:
        await asyncio.sleep(0)
        return [3 * i for i in items]

    loops: list[weakref.ref[Any]] = []

    async def one_run(n: int) -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        assert await triple([n, n // 2]) == [3 * n, 3 * (n // 2)]
        first, second = await asyncio.gather(triple([-n, n + 1]), triple([n + 1, -n]))
        assert first == [-3 * n, 3 * (n + 1)]
        assert second == [3 * (n + 1), -3 * n]
        asyncio.get_running_loop().create_task(triple([10**6 + n]))  # left in flight
        await asyncio.sleep(0)

    threads_before = threading.active_count()
    for n in range(runs):
        asyncio.run(one_run(n))
    return LoopFigures(alive(loops), (threads_before, threading.active_count()))


class Model:
    """Methods cached three ways: shared by instances (sync, async), and per instance."""

    def __init__(self, n: int) -> None:
        self.n = n

    @cache_batch_variable("texts", ignore=("self",))
    def embed(self, texts: list[str]) -> list[int]:
        if "fail" in texts:
            raise ValueError(f"model {self.n} cannot embed 'fail'")
        return [len(t) for t in texts]

    @cache_batch_variable("texts", ignore=("self",))
    async def aembed(self, texts: list[str]) -> list[int]:
        await asyncio.sleep(0)
        return [len(t) for t in texts]

    @cache_batch_variable("texts", maxsize=MAXSIZE)
    def own(self, texts: list[str]) -> list[str]:
        return [f"{self.n}:{t}" for t in texts]


class InstanceFigures(NamedTuple):
    shared: int  # instances alive after calls of the methods that ignore ``self``
    keyed: int  # instances alive after calls of the method whose key holds ``self``


def instance_soak(count: int = INSTANCES) -> InstanceFigures:
    """``count`` instances, each calling its methods (hits, misses, a failure, in threads
    and on an event loop); the instances still alive afterwards."""
    shared: list[weakref.ref[Any]] = []
    keyed: list[weakref.ref[Any]] = []

    def use(n: int) -> None:
        model = Model(n)
        shared.append(weakref.ref(model))
        assert model.embed([f"t{n}", "common"]) == [len(f"t{n}"), 6]
        with pytest.raises(ValueError, match="cannot embed"):
            model.embed(["fail", f"u{n}"])

    for wave in range(0, count // 2, 10):
        in_threads(10, lambda k, wave=wave: use(wave + k))

    async def on_a_loop() -> None:
        for n in range(count // 2, count):
            model = Model(n)
            shared.append(weakref.ref(model))
            results = await asyncio.gather(model.aembed([f"t{n}"]), model.aembed([f"t{n}", "x"]))
            assert results == [[len(f"t{n}")], [len(f"t{n}"), 1]]

    asyncio.run(on_a_loop())
    for n in range(count):
        model = Model(n)
        keyed.append(weakref.ref(model))
        assert model.own(["a"]) == [f"{n}:a"]
    del model
    return InstanceFigures(alive(shared), alive(keyed))


# -- the tests ------------------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        yield None
        return
    made: Any
    if request.param == "sqlite":
        made = SQLiteStore(tmp_path / "soak.db")
    else:
        made = RedisStore(request.getfixturevalue("redis_url"))
    yield made
    made.close()


def test_no_event_loop_outlives_its_run(store: Any) -> None:
    figures = loop_soak(store)
    assert figures.loops <= SLACK, figures
    before, after = figures.threads
    assert after <= before + SLACK, figures


def test_no_event_loop_outlives_its_run_with_leases(redis_url: str) -> None:
    store = RedisStore(redis_url)
    figures = loop_soak(store, lock=True, lock_timeout=30)
    store.close()
    assert figures.loops <= SLACK, figures


def test_no_instance_outlives_its_use() -> None:
    figures = instance_soak()
    assert figures.shared <= SLACK, figures
    # an entry per instance (self is part of its key, as with lru_cache): at most the
    # instances of the entries the LRU still holds
    assert figures.keyed <= MAXSIZE, figures


def main() -> None:
    kinds: list[tuple[str, Callable[[], Any]]] = [("memory", lambda: None)]
    with tempfile.TemporaryDirectory() as scratch:
        server = RedisServer(scratch)
        server.start()
        try:
            kinds.append(("SQLite", lambda: SQLiteStore(Path(scratch) / "soak.db")))
            kinds.append(("Redis", lambda: RedisStore(server.url)))
            print(f"{RUNS} asyncio.run() calls of an async cached function:")
            for name, make in kinds:
                figures = loop_soak(make())
                before, after = figures.threads
                print(f"  {name:7} loops alive after: {figures.loops:4}", end="")
                print(f"   threads: {before} -> {after}")
        finally:
            server.stop()
    instances = instance_soak()
    print(f"{INSTANCES:,} instances calling cached methods:")
    print(f"  alive after, methods with ignore=('self',): {instances.shared}")
    print(f"  alive after, a method keyed by self with maxsize={MAXSIZE}: {instances.keyed}")


if __name__ == "__main__":
    main()
