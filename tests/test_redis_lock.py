"""``lock=True``: processes sharing a Redis store (one server, or a cluster) compute each
missing item once."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import redis

from batche import cache_batch_variable
from batche.stores import RedisStore

ROOT = str(Path(__file__).resolve().parent.parent)

WORKER = """
import sys, time
sys.path.insert(0, {root!r})
import redis
from batche import cache_batch_variable
from batche.stores import RedisStore

url, control_url, name, timeout = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
# the test's messages go through one server, whatever the store is on; socket_timeout=None:
# a blocking command waits as long as it asks (redis-py's default of 5 s would cut BLPOP
# short while the other workers are still starting on a busy machine)
control = redis.Redis.from_url(control_url, socket_timeout=None)

# timeout=10: what is tested is the leases; a round trip that outlasts the default 1 s on
# a loaded machine would hand the keys to the caller (computed without the lock: twice)
@cache_batch_variable("items", cache=RedisStore(url, timeout=10), namespace="locked",
                      lock=True, lock_timeout=timeout)
def square(items):
    control.rpush("computed", *[f"{{name}}:{{i}}" for i in items])
    if name == "stuck":
        print("computing", flush=True)
        control.blpop("never", 60)   # holds its leases until it is killed
    time.sleep(0.2)                   # the cost of the computation
    return [i * i for i in items]

print("ready", flush=True)
control.blpop("start:" + name, 60)    # all workers start at the same moment
items = list(range(40))
assert square(items) == [i * i for i in items]
print("done", flush=True)
"""


@pytest.fixture(params=["server", "cluster"])
def store_url(request: pytest.FixtureRequest) -> str:
    """Where the store lives: the session's server or its cluster (emptied)."""
    fixture = "redis_url" if request.param == "server" else "redis_cluster_url"
    return str(request.getfixturevalue(fixture))


def spawn(url: str, control: str, name: str, timeout: float = 30.0) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER.format(root=ROOT), url, control, name, str(timeout)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip


def ready(process: subprocess.Popen[str]) -> subprocess.Popen[str]:
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


def start(url: str, control: str, name: str, timeout: float = 30.0) -> subprocess.Popen[str]:
    return ready(spawn(url, control, name, timeout))


def computed(url: str) -> Counter[int]:
    client = redis.Redis.from_url(url)
    return Counter(int(entry.split(b":")[1]) for entry in client.lrange("computed", 0, -1))


def test_four_processes_compute_each_item_once(store_url: str, redis_url: str) -> None:
    spawned = [spawn(store_url, redis_url, f"w{n}") for n in range(4)]  # at once
    workers = [ready(w) for w in spawned]
    client = redis.Redis.from_url(redis_url)
    for n in range(4):
        client.rpush(f"start:w{n}", 1)
    outputs = [w.communicate(timeout=120)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0, 0, 0]
    assert all(out.strip() == "done" for out in outputs)
    counts = computed(redis_url)
    assert set(counts) == set(range(40))
    assert max(counts.values()) == 1  # each item computed once, by one of the four


def test_a_dead_holders_lease_expires_and_another_computes(store_url: str, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    stuck = start(store_url, redis_url, "stuck", timeout=1.0)
    client.rpush("start:stuck", 1)
    assert stuck.stdout is not None
    assert stuck.stdout.readline().strip() == "computing"  # it holds the leases
    healthy = start(store_url, redis_url, "healthy", timeout=1.0)
    client.rpush("start:healthy", 1)
    try:
        out, _ = healthy.communicate(timeout=60)
        assert out.strip() == "done"  # it waited for the lease to expire, then computed
    finally:
        stuck.kill()
        stuck.wait()
        stuck.stdout.close()
    entries = [e.decode() for e in client.lrange("computed", 0, -1)]
    assert {e for e in entries if e.startswith("healthy:")} == {f"healthy:{i}" for i in range(40)}


def test_a_lease_given_back_without_a_value_is_computed_by_the_waiter(store_url: str) -> None:
    store = RedisStore(store_url)
    calls: list[list[str]] = []
    first_call = threading.Event()

    @cache_batch_variable("texts", cache=store, namespace="n", lock=True, lock_timeout=30)
    def upper(texts: list[str]) -> list[str]:
        calls.append(list(texts))
        first_call.set()
        return [t.upper() for t in texts]

    (key,) = upper._core.keys_of(["a"], ())
    assert store.lease_many([key], "another-process", 30) == [key]
    result: dict[str, Any] = {}
    waiter = threading.Thread(target=lambda: result.update(value=upper(["a", "b"])))
    waiter.start()
    # the waiter computes "b" (free) and follows "a"; the other process then fails
    # and gives its lease back without a value
    assert first_call.wait(timeout=30)
    store.release_many([key], "another-process")
    waiter.join(timeout=60)
    assert result["value"] == ["A", "B"]
    assert calls == [["b"], ["a"]]


def test_async_functions_lease_and_follow_too(store_url: str) -> None:
    import asyncio

    store = RedisStore(store_url)
    calls: list[list[str]] = []

    async def main() -> None:
        first_call = asyncio.Event()

        @cache_batch_variable("texts", cache=store, namespace="a", lock=True, lock_timeout=30)
        async def upper(texts: list[str]) -> list[str]:
            calls.append(list(texts))
            first_call.set()
            return [t.upper() for t in texts]

        (key,) = upper._core.keys_of(["a"], ())
        assert await store.alease_many([key], "another-process", 30) == [key]
        task = asyncio.ensure_future(upper(["a", "b"]))
        await first_call.wait()  # "b" computed; "a" is followed
        await store.arelease_many([key], "another-process")
        assert await task == ["A", "B"]
        assert calls == [["b"], ["a"]]
        assert await upper(["a", "b"]) == ["A", "B"]  # both stored: no call
        assert len(calls) == 2
        await store.aclose()

    asyncio.run(main())
    store.close()


# -- narrow windows, driven deterministically: two callers that share no in-process state
# (two decorations of one function, two store objects: as two processes are) ----------------


class PausingStore(RedisStore):
    """A real RedisStore that stops, once, at a chosen point until the test lets it go."""

    def __init__(self, url: str, pause_in: str) -> None:
        super().__init__(url)
        self.reached = threading.Event()
        self.go = threading.Event()
        if pause_in == "lease_many":
            self.lease_many = self._paused(self.lease_many)  # type: ignore[method-assign]
        else:  # a command of the client: "exists" is the look at the leases of a follow
            setattr(self.client, pause_in, self._paused(getattr(self.client, pause_in)))

    def _paused(self, method: Any) -> Any:
        def pausing(*args: Any, **kwargs: Any) -> Any:
            if not self.reached.is_set():
                self.reached.set()
                assert self.go.wait(timeout=30)
            return method(*args, **kwargs)

        return pausing


class Caller:
    """One decoration of the shared function, with its own store and its own gate."""

    def __init__(self, store: RedisStore, name: str, computed: list[str]) -> None:
        self.holding = threading.Event()  # set once it computes
        self.release = threading.Event()  # cleared: its computation waits for it
        self.release.set()

        @cache_batch_variable("texts", cache=store, namespace="window", lock=True, lock_timeout=30)
        def upper(texts: list[str]) -> list[str]:
            computed.extend(f"{name}:{t}" for t in texts)
            self.holding.set()
            assert self.release.wait(timeout=30)
            return [t.upper() for t in texts]

        self.upper = upper
        self.result: Any = None
        self.thread: threading.Thread | None = None

    def start(self, texts: list[str]) -> None:
        """Call it in a thread of its own."""
        self.thread = threading.Thread(target=lambda: setattr(self, "result", self.upper(texts)))
        self.thread.start()

    def join(self) -> Any:
        assert self.thread is not None
        self.thread.join(timeout=60)
        assert not self.thread.is_alive()
        return self.result


def two_callers(store_a: RedisStore, store_b: RedisStore) -> tuple[Caller, Caller, list[str]]:
    """One function decorated twice (one namespace, leases), each with its own store: two
    callers that share no in-process state, as two processes."""
    computed: list[str] = []
    return Caller(store_a, "a", computed), Caller(store_b, "b", computed), computed


def test_a_value_stored_between_a_read_and_a_lease_is_not_computed_again(
    store_url: str,
) -> None:
    # b reads (a miss), then a computes, stores and gives its lease back, then b leases
    store_b = PausingStore(store_url, pause_in="lease_many")
    a, b, computed = two_callers(RedisStore(store_url), store_b)
    b.start(["x", "y"])
    assert store_b.reached.wait(timeout=30)  # b has read, and is about to lease
    assert a.upper(["x", "y"]) == ["X", "Y"]  # a: lease, compute, store, release
    store_b.go.set()
    assert b.join() == ["X", "Y"]
    assert computed == ["a:x", "a:y"]  # b found them under its own lease
    info = b.upper.cache_info()
    assert (info.hits, info.misses) == (2, 0)


def test_a_value_stored_between_a_followers_two_looks_is_not_computed_again(
    redis_url: str,
) -> None:
    # b follows a's lease: it reads (nothing yet), a stores and gives its lease back,
    # then b looks at the leases (none left)
    store_b = PausingStore(redis_url, pause_in="exists")
    a, b, computed = two_callers(RedisStore(redis_url), store_b)
    a.release.clear()
    a.start(["x"])
    assert a.holding.wait(timeout=30)  # a holds the lease of "x" and computes
    b.start(["x"])
    assert store_b.reached.wait(timeout=30)  # b read no value, and is about to look at leases
    a.release.set()
    assert a.join() == ["X"]  # a stored "x" and gave its lease back
    store_b.go.set()
    assert b.join() == ["X"]
    assert computed == ["a:x"]
    info = b.upper.cache_info()
    assert (info.hits, info.misses) == (1, 0)


def test_items_joined_from_a_lease_are_counted_as_hits(store_url: str) -> None:
    a, b, computed = two_callers(RedisStore(store_url), RedisStore(store_url))
    a.release.clear()
    b.release.clear()
    a.start(["x"])
    assert a.holding.wait(timeout=30)  # a holds the lease of "x"
    b.start(["x", "y", "y"])
    assert b.holding.wait(timeout=30)  # b leased "y" (not "x") and computes it
    a.release.set()
    assert a.join() == ["X"]
    b.release.set()  # b stores "y", then follows "x" and finds it
    assert b.join() == ["X", "Y", "Y"]
    assert computed == ["a:x", "b:y"]
    info = b.upper.cache_info()
    assert (info.hits, info.misses, info.joined) == (2, 1, 1)  # "x" joined, "y" twice
