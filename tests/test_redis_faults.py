"""A Redis that hangs, drops, resets, refuses or restarts: every call is correct, and the
store costs a bounded time (one deadline, then nothing while the circuit is open)."""

from __future__ import annotations

import asyncio
import logging
import socket
import sqlite3
import threading
import time
from typing import Any

import pytest

from batche import cache_batch_variable
from batche.stores import RedisStore, StoreError

from ._proxy import Proxy
from ._timing import timed, warnings_of
from .conftest import Harness, Recorder, RedisServer, in_threads

TIMEOUT = 1.0  # the stores' deadline in these tests
pytestmark = pytest.mark.redis


def troubles(caplog: pytest.LogCaptureFixture) -> tuple[int, int]:
    """How many times the trouble and the recovery were logged."""
    messages = warnings_of(caplog)
    return (
        sum("could not" in m for m in messages),
        sum("the store is back; caching again" in m for m in messages),
    )


def finish(harness: Harness, store: RedisStore) -> None:
    """Close the store's clients (the harness's loop closes without shutting down)."""
    if harness.kind == "async":
        harness.run(store.aclose())
    store.close()


def free_port() -> int:
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- a server that hangs: SIGSTOP ----------------------------------------------------------


def test_a_frozen_server_costs_one_deadline_then_is_skipped(
    own_redis: RedisServer, harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    store = RedisStore(own_redis.url, timeout=TIMEOUT, retry_after=600)
    recorder = Recorder(lambda i: i * i)
    square = harness.decorate(recorder, cache=store)
    assert harness.run(square([1, 2])) == [1, 4]
    own_redis.freeze()
    try:
        with caplog.at_level(logging.WARNING, logger="batche"):
            value, first = timed(lambda: harness.run(square([1, 2, 3])))
            assert value == [1, 4, 9]
            # the read waits out its deadline, once: no retry, and the write is skipped
            assert TIMEOUT <= first < 2 * TIMEOUT
            for _ in range(5):
                value, later = timed(lambda: harness.run(square([1, 2, 3])))
                assert value == [1, 4, 9]
                assert later < TIMEOUT  # skipped: touching the store would cost TIMEOUT
    finally:
        own_redis.thaw()
    assert recorder.calls == [[1, 2]] + [[1, 2, 3]] * 6  # the store was empty to them
    assert troubles(caplog) == (1, 0)
    finish(harness, store)


def test_a_thawed_server_is_used_again_by_the_next_probe(
    own_redis: RedisServer, harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    store = RedisStore(own_redis.url, timeout=TIMEOUT, retry_after=0)  # probe at every call
    recorder = Recorder()
    f = harness.decorate(recorder, cache=store)
    with caplog.at_level(logging.WARNING, logger="batche"):
        own_redis.freeze()
        try:
            assert harness.run(f(["a"])) == ["<a>"]
        finally:
            own_redis.thaw()
        assert harness.run(f(["a", "b"])) == ["<a>", "<b>"]  # answered: stored again
        assert harness.run(f(["b", "a"])) == ["<b>", "<a>"]  # hits
    assert recorder.calls == [["a"], ["a", "b"]]
    assert troubles(caplog) == (1, 1)
    finish(harness, store)


def test_redis_restarted_mid_run_loses_nothing(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[list[int]] = []
    store = RedisStore(own_redis.url, timeout=TIMEOUT, retry_after=0)

    @cache_batch_variable("items", cache=store)
    def square(items: list[int]) -> list[int]:
        calls.append(list(items))
        return [i * i for i in items]

    with caplog.at_level(logging.WARNING, logger="batche"):
        assert square([1, 2]) == [1, 4]
        own_redis.stop()
        assert square([2, 3]) == [4, 9]  # the server is down: computed, correct
        assert square([3]) == [9]
        own_redis.start()  # same port, empty (nothing kept on disk)
        assert square([3, 4]) == [9, 16]  # caching resumes by itself
        assert square([4]) == [16]
    assert calls[-1] == [3, 4]  # [4] was a hit again
    assert troubles(caplog) == (1, 1)
    store.close()


def test_an_unreachable_redis_computes_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    store = RedisStore(url, timeout=0.5)

    @cache_batch_variable("texts", cache=store)
    def embed(texts: list[str]) -> list[str]:
        return [t * 2 for t in texts]

    with caplog.at_level(logging.WARNING, logger="batche"):
        for _ in range(3):
            assert embed(["a", "b"]) == ["aa", "bb"]
    assert troubles(caplog) == (1, 0)
    assert "Connection refused" in warnings_of(caplog)[0]


def test_with_on_store_error_raise_a_skipped_store_raises_at_once() -> None:
    strict = RedisStore(
        f"redis://127.0.0.1:{free_port()}/0", on_store_error="raise", retry_after=600
    )

    @cache_batch_variable("texts", cache=strict)
    def strict_embed(texts: list[str]) -> list[str]:
        return list(texts)

    # the error names the function, then the store (its password masked) and the fault
    with pytest.raises(StoreError, match=r"<locals>.strict_embed\(\): RedisStore\('redis://127.*"
                       "could not read: Error 111 connecting"):  # fmt: skip
        strict_embed(["a"])
    # while the circuit is open: the same error, without trying the store again
    skipped = r"strict_embed\(\): RedisStore\(.*could not read: the store failed \(Error 111"
    with pytest.raises(StoreError, match=skipped + ".*again in"):
        strict_embed(["a"])


def test_with_on_store_error_raise_every_store_error_of_a_call_names_the_function(
    tmp_path: Any, own_redis: RedisServer
) -> None:
    from batche.stores import SQLiteStore

    sqlite = SQLiteStore(tmp_path / "c.db", on_store_error="raise")
    redis = RedisStore(own_redis.url, on_store_error="raise", retry_after=600, timeout=0.5)

    @cache_batch_variable("texts", cache=sqlite)
    def on_sqlite(texts: list[str]) -> list[str]:
        return list(texts)

    @cache_batch_variable("texts", cache=redis, lock=True)
    async def leased(texts: list[str]) -> list[str]:
        return list(texts)

    other = sqlite3.connect(tmp_path / "c.db")
    other.execute("DROP TABLE batche_entries")  # someone else's doing: reads fail
    other.close()
    with pytest.raises(StoreError, match=r"<locals>.on_sqlite\(\): SQLiteStore\(.*could not read"):
        on_sqlite(["a"])
    own_redis.freeze()
    try:
        with pytest.raises(StoreError, match=r"<locals>.leased\(\): RedisStore\(.*could not read"):
            asyncio.run(leased(["a"]))
    finally:
        own_redis.thaw()
    sqlite.close()
    redis.close()


# -- a link that drops, resets, refuses or delays: through a proxy -----------------------


@pytest.fixture
def proxy(redis_url: str, redis_server: RedisServer) -> Any:
    """A proxy in front of the session's server (emptied), in "pass" mode."""
    with Proxy(("127.0.0.1", redis_server.port)) as running:
        yield running


def url_of(proxy: Proxy) -> str:
    return f"redis://127.0.0.1:{proxy.port}/0"


def test_a_blackholed_link_costs_one_deadline_then_no_store_time(
    proxy: Proxy, harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    store = RedisStore(url_of(proxy), timeout=TIMEOUT, retry_after=600)
    recorder = Recorder()
    f = harness.decorate(recorder, cache=store)
    assert harness.run(f(["a", "b"])) == ["<a>", "<b>"]
    proxy.mode("blackhole")
    connections = proxy.connections
    with caplog.at_level(logging.WARNING, logger="batche"):
        value, first = timed(lambda: harness.run(f(["a", "b", "c"])))
        assert value == ["<a>", "<b>", "<c>"]
        assert TIMEOUT <= first < 2 * TIMEOUT
        assert proxy.connections == connections  # no retry on a new connection
        received = proxy.received
        for _ in range(20):
            assert harness.run(f(["c", "a"])) == ["<c>", "<a>"]
        assert proxy.received == received  # the open circuit sent nothing to the store
    assert recorder.calls == [["a", "b"], ["a", "b", "c"]] + [["c", "a"]] * 20
    assert troubles(caplog) == (1, 0)
    proxy.mode("pass")
    finish(harness, store)


def test_after_retry_after_one_call_probes_and_caching_resumes(
    proxy: Proxy, caplog: pytest.LogCaptureFixture
) -> None:
    retry_after = 0.5
    store = RedisStore(url_of(proxy), timeout=TIMEOUT, retry_after=retry_after)
    recorder = Recorder()
    f = cache_batch_variable(cache=store)(lambda items: recorder(items))
    assert f(["a"]) == ["<a>"]
    with caplog.at_level(logging.WARNING, logger="batche"):
        proxy.mode("reset")
        assert f(["a", "b"]) == ["<a>", "<b>"]  # the read fails: the circuit opens
        opened = time.monotonic()
        proxy.mode("pass")  # the store is back, but not tried before retry_after
        received = proxy.received
        while proxy.received == received:
            assert f(["a", "b"]) == ["<a>", "<b>"]
            assert time.monotonic() - opened < 60, "the store was never tried again"
        probed = time.monotonic()
        computed = len(recorder.calls)
        assert f(["b", "a"]) == ["<b>", "<a>"]  # the probe stored both: hits
    assert probed - opened >= retry_after
    assert len(recorder.calls) == computed
    assert troubles(caplog) == (1, 1)
    store.close()


@pytest.mark.parametrize("mode", ["reset", "refuse"])
def test_a_reset_or_refused_link_fails_fast(
    proxy: Proxy, harness: Harness, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = RedisStore(url_of(proxy), timeout=30, retry_after=600)
    recorder = Recorder()
    f = harness.decorate(recorder, cache=store)
    assert harness.run(f(["a"])) == ["<a>"]
    proxy.mode(mode)
    with caplog.at_level(logging.WARNING, logger="batche"):
        value, elapsed = timed(lambda: harness.run(f(["a", "b"])))
    assert value == ["<a>", "<b>"]
    assert elapsed < 15  # an error at once, not a wait for the 30 s deadline
    assert troubles(caplog) == (1, 0)
    proxy.mode("pass")
    finish(harness, store)


def test_latency_under_the_deadline_still_caches(proxy: Proxy, harness: Harness) -> None:
    store = RedisStore(url_of(proxy), timeout=5.0)
    recorder = Recorder()
    f = harness.decorate(recorder, cache=store)
    proxy.mode("latency", latency=0.05)
    assert harness.run(f(["a", "b"])) == ["<a>", "<b>"]
    assert harness.run(f(["b", "a"])) == ["<b>", "<a>"]
    assert recorder.calls == [["a", "b"]]  # slow, but answered: a hit
    proxy.mode("pass")
    finish(harness, store)


@pytest.mark.parametrize(
    ("latency", "connected"),
    [
        # an answer that comes too late
        (2.0, True),
        # a new connection: the handshake, then the read, each answered 0.4 s later; each
        # wait is shorter than the deadline, but not both together (a socket timeout
        # alone would let the round trip take 0.8 s)
        (0.2, False),
    ],
    ids=["late-answer", "handshake-and-command"],
)
def test_one_deadline_covers_the_whole_round_trip(
    proxy: Proxy,
    harness: Harness,
    caplog: pytest.LogCaptureFixture,
    latency: float,
    connected: bool,
) -> None:
    store = RedisStore(url_of(proxy), timeout=0.5, retry_after=600)
    recorder = Recorder()
    f = harness.decorate(recorder, cache=store)
    if connected:
        assert harness.run(f(["b"])) == ["<b>"]
    proxy.mode("latency", latency=latency)  # each way
    with caplog.at_level(logging.WARNING, logger="batche"):
        value, elapsed = timed(lambda: harness.run(f(["a", "b"])))
    assert value == ["<a>", "<b>"]
    assert 0.5 <= elapsed < 0.8
    assert troubles(caplog) == (1, 0)
    proxy.mode("pass")
    finish(harness, store)


# -- lock=True without Redis -------------------------------------------------------------


def test_lock_true_with_redis_unreachable_computes_without_the_lease(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    recorder = Recorder()
    f = harness.decorate(recorder, cache=store, lock=True, lock_timeout=30)
    with caplog.at_level(logging.WARNING, logger="batche"):
        for _ in range(3):
            assert harness.run(f(["a", "b"])) == ["<a>", "<b>"]
    assert recorder.calls == [["a", "b"]] * 3
    assert troubles(caplog) == (1, 0)
    finish(harness, store)


def test_lease_operations_on_a_failing_store_hand_every_key_back() -> None:
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5, retry_after=0)
    assert store.lease_many(["k1", "k2"], "token", 30) == ["k1", "k2"]  # all ours
    assert store.release_many(["k1"], "token") is None
    value, elapsed = timed(lambda: store.follow_many(["k3"], 30))
    assert value == {}
    assert elapsed < 15  # nothing to wait for on a store that is not there

    async def main() -> None:
        assert await store.alease_many(["k1", "k2"], "token", 30) == ["k1", "k2"]
        assert await store.arelease_many(["k1"], "token") is None
        assert await store.afollow_many(["k3"], 30) == {}

    asyncio.run(main())
    strict = RedisStore(store.url, timeout=0.5, on_store_error="raise")
    with pytest.raises(StoreError, match="could not lease"):
        strict.lease_many(["k1"], "token", 30)


def test_a_store_lost_during_a_locked_call_ends_it_without_waiting(
    proxy: Proxy, redis_server: RedisServer
) -> None:
    store = RedisStore(url_of(proxy), timeout=TIMEOUT, retry_after=600)
    calls: list[list[str]] = []

    @cache_batch_variable("texts", cache=store, namespace="n", lock=True, lock_timeout=30)
    def upper(texts: list[str]) -> list[str]:
        calls.append(list(texts))
        if texts == ["b"]:
            proxy.mode("reset")  # Redis goes away while "b" is computed
        return [t.upper() for t in texts]

    (key,) = upper._core.keys_of(["a"], ())
    direct = RedisStore(redis_server.url)
    assert direct.lease_many([key], "another-process", 30) == [key]
    # "b" is ours; "a" is another process's, to follow: but the store is gone by then,
    # so it is computed here rather than waited for (30 s)
    value, elapsed = timed(lambda: upper(["a", "b"]))
    assert value == ["A", "B"]
    assert calls == [["b"], ["a"]]
    assert elapsed < 15
    proxy.mode("pass")
    direct.close()
    store.close()


def test_a_store_lost_while_following_a_lease_ends_the_wait(
    proxy: Proxy, redis_server: RedisServer, harness: Harness
) -> None:
    store = RedisStore(url_of(proxy), timeout=TIMEOUT, retry_after=600)
    recorder = Recorder()
    upper = harness.decorate(recorder, cache=store, namespace="n", lock=True, lock_timeout=30)
    (key,) = upper._core.keys_of(["a"], ())
    direct = RedisStore(redis_server.url)
    assert direct.lease_many([key], "another-process", 30) == [key]
    sent = proxy.received
    result: dict[str, Any] = {}

    def call() -> None:
        result["value"], result["elapsed"] = timed(lambda: harness.run(upper(["a"])))

    caller = threading.Thread(target=call)  # an async harness runs its loop there too
    caller.start()
    assert proxy.wait_for(b"SUBSCRIBE", sent)  # following the other process's lease
    proxy.mode("reset")
    caller.join(timeout=60)
    assert result["value"] == ["<a>"]  # computed here, not waited for (30 s)
    assert result["elapsed"] < 15
    assert recorder.calls == [["a"]]
    proxy.mode("pass")
    finish(harness, store)
    direct.close()


def test_threads_share_one_probe(proxy: Proxy) -> None:
    """While one call tries the store again, the other threads skip it."""
    store = RedisStore(url_of(proxy), timeout=TIMEOUT, retry_after=0)
    recorder = Recorder()
    f = cache_batch_variable(cache=store)(lambda items: recorder(items))
    assert f(["a"]) == ["<a>"]
    proxy.mode("blackhole")
    assert f(["a"]) == ["<a>"]  # the circuit opens
    durations: dict[int, float] = {}

    def call(n: int) -> None:  # distinct items: no thread waits on another's computation
        value, durations[n] = timed(lambda: f([f"x{n}"]))
        assert value == [f"<x{n}>"]

    in_threads(8, call)
    # one thread probed, and waited out the deadline of each of its round trips; the
    # seven others skipped the store meanwhile (probing too, each would have waited)
    assert sum(elapsed >= TIMEOUT for elapsed in durations.values()) == 1
    proxy.mode("pass")
    store.close()
