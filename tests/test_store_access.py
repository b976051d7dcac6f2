"""cache_info, cache_clear and invalidate over stores outside the process: what they cost,
what they count, and how their failures surface."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest

from batche import cache_batch_variable
from batche.stores import RedisStore, SQLiteStore, StoreError

from .conftest import RedisServer


class CountedLen:
    """A mixin that records every ``len()`` of the store (a count the store makes)."""

    counted = 0

    def __len__(self) -> int:
        self.counted += 1
        return super().__len__()  # type: ignore[misc, no-any-return]


class CountedSQLite(CountedLen, SQLiteStore):
    pass


class CheapSQLite(CountedLen, SQLiteStore):
    len_is_cheap = True


class CountedRedis(CountedLen, RedisStore):
    def count_or_none(self) -> int | None:  # what cache_info() asks a RedisStore
        self.counted += 1
        return super().count_or_none()


def dead_redis_url() -> str:
    """A loopback port nobody listens on: every connection is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


def lengths(texts: list[str]) -> list[int]:
    return [len(t) for t in texts]


def test_cache_info_never_counts_a_sqlite_table(tmp_path: Path) -> None:
    store = CountedSQLite(tmp_path / "c.db")
    embed = cache_batch_variable("texts", cache=store, namespace="n")(lengths)
    embed(["a", "bb", "a"])
    info = embed.cache_info()
    assert (info.hits, info.misses, info.currsize) == (1, 2, None)
    assert store.counted == 0  # no COUNT(*) of the table
    store.close()


def test_cache_info_reports_len_of_a_store_that_counts_cheaply(
    tmp_path: Path, redis_url: str
) -> None:
    for store in (CheapSQLite(tmp_path / "c.db"), CountedRedis(redis_url)):
        assert store.len_is_cheap
        other = cache_batch_variable("texts", cache=store, namespace="other")(lengths)
        other(["z"])
        embed = cache_batch_variable("texts", cache=store, namespace="n")(lengths)
        embed(["a", "bb"])
        assert embed.cache_info().currsize == 3  # the store's entries: others' too
        assert store.counted == 1
        store.close()


def test_lease_keys_are_never_counted_as_entries(redis_url: str) -> None:
    store = RedisStore(redis_url)
    embed = cache_batch_variable("texts", cache=store, namespace="n", lock=True)(lengths)
    embed(["a", "bb"])
    (key,) = embed._core.keys_of(["held"], ())
    assert store.lease_many([key], "another-process", 30) == [key]  # a lease in progress
    assert embed.cache_info().currsize == 2
    store.close()


def test_failures_of_explicit_operations_name_the_function() -> None:
    store = RedisStore(dead_redis_url(), timeout=5)

    @cache_batch_variable("texts", cache=store, namespace="n")
    def embed(texts: list[str]) -> list[int]:
        return lengths(texts)

    assert embed(["a"]) == [1]  # a call computes without the store (on_store_error="compute")
    with pytest.raises(StoreError, match=r"embed\(\): cache_clear\(\) failed: ") as cleared:
        embed.cache_clear()
    assert isinstance(cleared.value, RuntimeError)
    assert embed.cache_info().misses == 1  # the counts were left as they were
    with pytest.raises(StoreError, match=r"embed\(\): invalidate\(\) failed: "):
        embed.invalidate(["a"])
    store.close()


@pytest.mark.parametrize("on_store_error", ["compute", "raise"])
def test_cache_info_of_an_unreachable_store_says_its_size_is_unknown(on_store_error: str) -> None:
    store = RedisStore(dead_redis_url(), on_store_error=on_store_error, timeout=5)
    embed = cache_batch_variable("texts", cache=store, namespace="n")(lengths)
    if on_store_error == "compute":
        assert embed(["a", "a"]) == [1, 1]
    for _ in range(2):  # failing, then skipped after the failure: never raised, never 0
        info = embed.cache_info()
        assert info.currsize is None
        assert (info.hits, info.misses) == ((1, 1) if on_store_error == "compute" else (0, 0))
    store.close()


def test_cache_info_of_a_frozen_store_costs_one_deadline_then_nothing(
    own_redis: RedisServer,
) -> None:
    store = RedisStore(own_redis.url, timeout=0.5, retry_after=600)
    embed = cache_batch_variable("texts", cache=store, namespace="n")(lengths)
    embed(["a", "bb"])
    assert embed.cache_info().currsize == 2
    own_redis.freeze()
    try:
        start = time.monotonic()
        assert embed.cache_info().currsize is None  # one deadline: the store is skipped
        assert time.monotonic() - start < 1.0
        start = time.monotonic()
        for _ in range(20):
            info = embed.cache_info()
            assert (info.hits, info.misses, info.currsize) == (0, 2, None)
        assert time.monotonic() - start < 0.5  # no round trip: none waits out a deadline
    finally:
        own_redis.thaw()
    store.close()


def test_async_failures_name_the_function_too() -> None:
    store = RedisStore(dead_redis_url(), timeout=5)

    @cache_batch_variable("texts", cache=store, namespace="n")
    async def aembed(texts: list[str]) -> list[int]:
        return lengths(texts)

    async def main() -> None:
        with pytest.raises(StoreError, match=r"aembed\(\): cache_clear\(\) failed: "):
            await aembed.acache_clear()
        with pytest.raises(StoreError, match=r"aembed\(\): invalidate\(\) failed: "):
            await aembed.ainvalidate(["a"])
        await store.aclose()

    asyncio.run(main())
    store.close()


class Recording(SQLiteStore):
    """A SQLiteStore that notes where each clear ran: on an event loop's thread or not."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.cleared: list[str] = []

    def clear(self, prefix: str | None = None) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self.cleared.append("off the loop")
        else:
            self.cleared.append("on the loop")
        super().clear(prefix)


def test_acache_clear_empties_without_blocking_the_loop(tmp_path: Path) -> None:
    store = Recording(tmp_path / "c.db")
    calls: list[list[str]] = []

    @cache_batch_variable("texts", cache=store, namespace="n")
    async def aembed(texts: list[str]) -> list[int]:
        calls.append(list(texts))
        return lengths(texts)

    other = cache_batch_variable("texts", cache=store, namespace="other")(lengths)
    other(["kept"])

    async def main() -> None:
        assert await aembed(["a", "bb"]) == [1, 2]
        await aembed.acache_clear()
        assert aembed.cache_info()[:2] == (0, 0)
        assert await aembed(["a"]) == [1]  # computed again

    asyncio.run(main())
    assert calls == [["a", "bb"], ["a"]]
    assert store.cleared == ["off the loop"]  # on a worker thread: the loop never blocked
    assert len(store) == 2  # "a" again, and the other function's entry
    store.close()
