"""Durations: every option that becomes a wait is held to what Python can wait.

An infinite or huge timeout, ttl or window used to be accepted and then fail where it was
waited (OverflowError in every call, a batcher's worker thread dead and its callers
waiting forever, a Redis that refuses the expiry and so looks down). Now each is refused
when it is given, naming the parameter; the largest accepted value works for real.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any, Callable

import pytest

from batche import (
    BatchConfigError,
    BatchDefinitionError,
    RateLimit,
    cache_batch_variable,
    dynamically,
)
from batche.stores import RedisStore, SQLiteStore

from .conftest import RedisServer

# what Python can wait, in seconds (about 292 years)
MAX_SECONDS = threading.TIMEOUT_MAX
TOO_LONG = [math.inf, 1e30, MAX_SECONDS * 2, math.nan]
URL = "redis://127.0.0.1:1/0"  # never reached: these are refused before any connection


@pytest.mark.parametrize("value", TOO_LONG)
@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda v: RedisStore(URL, ttl=v), r"RedisStore\('redis://127.0.0.1:1/0'\): ttl must"),
        (lambda v: RedisStore(URL, timeout=v), r"RedisStore\(.*\): timeout must be a number"),
        (lambda v: RateLimit(requests=1, per=v), r"RateLimit\(\): per must be a number"),
        (lambda v: RateLimit(1, redis=URL, timeout=v), r"RateLimit\(\): timeout must be"),
    ],
)
def test_a_wait_too_long_to_be_waited_is_refused_by_its_constructor(
    make: Callable[[float], Any], message: str, value: float
) -> None:
    with pytest.raises(
        BatchConfigError, match=message + r".*\(at most 9.22e\+09 s: threading.TIMEOUT_MAX\)"
    ):
        make(value)


@pytest.mark.parametrize("value", TOO_LONG)
def test_sqlite_ttl_and_timeout_are_held_to_the_same_bound(tmp_path: Path, value: float) -> None:
    with pytest.raises(BatchConfigError, match=r"SQLiteStore\(.*\): ttl must be None"):
        SQLiteStore(tmp_path / "c.db", ttl=value)
    with pytest.raises(BatchConfigError, match=r"SQLiteStore\(.*\): timeout must be a number"):
        SQLiteStore(tmp_path / "c.db", timeout=value)


@pytest.mark.parametrize("value", [2_147_483.648, 3e6])
def test_sqlite_timeout_is_held_to_what_sqlite_waits(tmp_path: Path, value: float) -> None:
    # SQLite's busy timeout is an int of milliseconds: 3e6 s became no wait at all
    with pytest.raises(BatchConfigError, match=r"at most 2,147,483.647: SQLite's busy timeout"):
        SQLiteStore(tmp_path / "c.db", timeout=value)


def test_the_longest_sqlite_timeout_is_the_wait_sqlite_makes(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "c.db", timeout=2_147_483.647)
    with store._pool.connection() as connection:
        assert connection.execute("PRAGMA busy_timeout").fetchone() == (2_147_483_647,)
    store.close()


@pytest.mark.parametrize("value", TOO_LONG)
def test_lock_timeout_and_timeout_ms_are_refused_at_decoration(value: float) -> None:
    with pytest.raises(BatchDefinitionError, match=r"lock_timeout must be .*, got"):
        cache_batch_variable("texts", cache=RedisStore(URL), lock=True, lock_timeout=value)
    with pytest.raises(BatchDefinitionError, match=r"dynamically\(\): timeout_ms must be"):
        dynamically(timeout_ms=value * 1000)


@pytest.mark.parametrize("lock", [0, "yes", None, 1])
def test_lock_must_be_a_bool(lock: Any) -> None:
    # lock="yes" turned the lock on, lock=None or 0 turned it off: now as typed= is checked
    with pytest.raises(BatchDefinitionError, match=f"lock must be a bool, got {lock!r}"):
        cache_batch_variable("texts", cache=RedisStore(URL), lock=lock)


def test_the_longest_accepted_durations_work_on_a_real_redis(redis_server: RedisServer) -> None:
    # Before, ttl=inf raised OverflowError from every call with misses, and ttl=1e30 made
    # Redis refuse each write (the store then looked down). The bound is one Redis takes.
    store = RedisStore(redis_server.url, ttl=MAX_SECONDS, timeout=MAX_SECONDS, prefix="long:")
    calls: list[list[str]] = []

    @cache_batch_variable("texts", cache=store, lock=True, lock_timeout=MAX_SECONDS)
    def embed(texts: list[str]) -> list[int]:
        calls.append(texts)
        return [len(t) for t in texts]

    assert embed(["a", "bb"]) == [1, 2]
    assert embed(["a", "bb"]) == [1, 2]
    assert calls == [["a", "bb"]]
    assert len(store) == 2  # written, with their expiry, and read back
    limit = RateLimit(requests=1, per=MAX_SECONDS, redis=redis_server.url, timeout=MAX_SECONDS)
    limit.acquire()  # the first acquisition goes at once, through Redis
    store.clear()
    store.close()
    limit.close()


def test_a_batcher_with_the_longest_timeout_keeps_its_worker() -> None:
    # Before, timeout_ms=inf killed the worker thread (OverflowError in its wait) and every
    # caller waited forever. The longest accepted wait is waited; a full batch goes at once.
    @dynamically(batch_size=2, timeout_ms=MAX_SECONDS * 1000)
    def embed(texts: list[str]) -> list[int]:
        return [len(t) for t in texts]

    answers: dict[int, int] = {}
    both = threading.Barrier(2)

    def ask(i: int) -> None:
        both.wait()
        answers[i] = embed.one("x" * i)

    threads = [threading.Thread(target=ask, args=(i,)) for i in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == {1: 1, 2: 2}
    assert embed(["abc", "d"]) == [3, 1]
    embed.close()


def test_an_async_batcher_with_the_longest_timeout_answers_and_closes() -> None:
    import asyncio

    @dynamically(batch_size=2, timeout_ms=MAX_SECONDS * 1000)
    async def embed(texts: list[str]) -> list[int]:
        return [len(t) for t in texts]

    async def main() -> tuple[list[int], int]:
        full = await asyncio.gather(embed.one("a"), embed.one("bb"))  # a full batch: at once
        alone = asyncio.ensure_future(embed.one("ccc"))  # waits for company...
        await asyncio.sleep(0)
        await embed.aclose()  # ...until closing runs what is queued
        return list(full), await alone

    assert asyncio.run(main()) == ([1, 2], 3)
