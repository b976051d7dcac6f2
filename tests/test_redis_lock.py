"""``lock=True``: processes sharing a Redis store compute each missing item once."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

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

url, name, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
control = redis.Redis.from_url(url)

@cache_batch_variable("items", cache=RedisStore(url), namespace="locked", lock=True,
                      lock_timeout=timeout)
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


def start(url: str, name: str, timeout: float = 30.0) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", WORKER.format(root=ROOT), url, name, str(timeout)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


def computed(url: str) -> Counter[int]:
    client = redis.Redis.from_url(url)
    return Counter(int(entry.split(b":")[1]) for entry in client.lrange("computed", 0, -1))


def test_four_processes_compute_each_item_once(redis_url: str) -> None:
    workers = [start(redis_url, f"w{n}") for n in range(4)]
    client = redis.Redis.from_url(redis_url)
    for n in range(4):
        client.rpush(f"start:w{n}", 1)
    outputs = [w.communicate(timeout=120)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0, 0, 0]
    assert all(out.strip() == "done" for out in outputs)
    counts = computed(redis_url)
    assert set(counts) == set(range(40))
    assert max(counts.values()) == 1  # each item computed once, by one of the four


def test_a_dead_holders_lease_expires_and_another_computes(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    stuck = start(redis_url, "stuck", timeout=1.0)
    client.rpush("start:stuck", 1)
    assert stuck.stdout is not None
    assert stuck.stdout.readline().strip() == "computing"  # it holds the leases
    healthy = start(redis_url, "healthy", timeout=1.0)
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


def test_a_lease_given_back_without_a_value_is_computed_by_the_waiter(redis_url: str) -> None:
    store = RedisStore(redis_url)
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


def test_async_functions_lease_and_follow_too(redis_url: str) -> None:
    import asyncio

    store = RedisStore(redis_url)
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
