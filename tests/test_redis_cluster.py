"""RedisStore on a real Redis Cluster: found by itself, keys spread over hash-tag buckets on
every primary, one round trip per node, and what a single server does (ttl, deletes,
clear, len, stats, the CLI, bad options named)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from batche import BatchConfigError, cache_batch_variable
from batche.stores import RedisStore
from batche.stores._redis_slots import TAGS, bucket_of

from ._cluster import Cluster, cluster_client
from .conftest import Harness, Recorder, run_batche

pytestmark = pytest.mark.redis


def test_the_session_cluster_serves_every_slot_from_three_primaries(
    redis_cluster: Cluster,
) -> None:
    primaries = redis_cluster.primaries()
    assert len(primaries) == 3
    info = primaries[0].command("CLUSTER", "INFO").decode()
    assert "cluster_state:ok" in info
    assert "cluster_slots_assigned:16384" in info


def finish(harness: Harness, store: RedisStore) -> None:
    if harness.kind == "async":
        harness.run(store.aclose())
    store.close()


def test_a_cluster_is_found_by_itself_and_entries_spread_over_every_primary(
    redis_cluster: Cluster, redis_cluster_url: str, harness: Harness
) -> None:
    store = RedisStore(redis_cluster_url)  # cluster= not given: INFO cluster says so
    recorder = Recorder()
    f = harness.decorate(recorder, cache=store, namespace="spread")
    items = [f"item {i}" for i in range(1_000)]
    assert harness.run(f(items)) == [f"<{i}>" for i in items]
    assert harness.run(f(items[::-1])) == [f"<{i}>" for i in items[::-1]]
    assert recorder.calls == [items]  # every one a hit the second time
    sizes = [int(node.command("DBSIZE")) for node in redis_cluster.primaries()]
    assert sum(sizes) == 1_000
    assert all(250 <= size <= 420 for size in sizes), sizes  # about a third each
    assert store._cluster is True
    finish(harness, store)


def test_an_entry_lives_under_its_buckets_hash_tag(
    redis_cluster: Cluster, redis_cluster_url: str
) -> None:
    store = RedisStore(redis_cluster_url, cluster=True)
    store.set_many({"ns:1:abc": "value"})
    redis_key = f"batche:{TAGS[bucket_of('ns:1:abc')]}ns:1:abc"
    assert store._full(["ns:1:abc"]) == [redis_key]
    owner = redis_cluster.owner(redis_key.encode())
    assert owner.command("EXISTS", redis_key) == 1
    store.close()


def test_a_batch_costs_one_round_trip_per_node_all_at_once(redis_cluster: Cluster) -> None:
    latency = 0.3  # each way, on every node's link: a round trip costs 0.6 s
    redis_cluster.flush()
    with redis_cluster.proxied() as proxied:
        store = RedisStore(proxied.url, timeout=10, address_remap=proxied.remap)
        calls: list[int] = []

        @cache_batch_variable("texts", cache=store, namespace="trips")
        def f(texts: list[str]) -> list[str]:
            calls.append(len(texts))
            return [t.upper() for t in texts]

        items = [f"t{i}" for i in range(1_000)]
        f(items[:500])  # the slot map read, the connections open, half the items stored
        proxied.mode("latency", latency)
        start = time.monotonic()
        assert f(items[:500]) == [t.upper() for t in items[:500]]
        hits = time.monotonic() - start
        start = time.monotonic()
        assert f(items) == [t.upper() for t in items]
        read_and_write = time.monotonic() - start
        proxied.mode("pass")
        store.close()
    assert calls == [500, 500]
    # one round trip (a pipeline to each of the 3 nodes, all at once), then two; one node
    # after the other would take 3 times as long, a round trip per bucket 80 times
    assert 2 * latency <= hits < 4 * latency
    assert 4 * latency <= read_and_write < 6 * latency


def test_ttl_delete_clear_len_and_stats_cover_every_primary(
    redis_cluster: Cluster, redis_cluster_url: str
) -> None:
    store = RedisStore(redis_cluster_url, ttl=60)
    store.set_many({f"ns:1:{i}": i for i in range(300)} | {f"other:1:{i}": i for i in range(30)})
    assert len(store) == 330
    stats = store.stats()
    assert stats["entries"] == 330
    assert stats["groups"] == {"ns:1": 300, "other:1": 30}
    assert stats["bytes"] > 0
    key = store._full(["ns:1:7"])[0]
    assert 0 < redis_cluster.owner(key.encode()).command("PTTL", key) <= 60_000
    store.delete_many([f"ns:1:{i}" for i in range(100)])
    assert store.get_many(["ns:1:5", "ns:1:150"]) == {"ns:1:150": 150}
    assert len(store) == 230
    store.clear("ns:1:")
    assert len(store) == 30
    assert store.get_many(["other:1:3"]) == {"other:1:3": 3}
    store.clear()
    assert len(store) == 0
    assert all(int(node.command("DBSIZE")) == 0 for node in redis_cluster.primaries())
    store.close()


def test_len_of_a_large_cluster_is_a_bounded_sample_on_each_primary(
    redis_cluster: Cluster, redis_cluster_url: str
) -> None:
    store = RedisStore(redis_cluster_url)
    other = cluster_client(redis_cluster_url)
    for start in range(0, 30_000, 5_000):
        other.mset_nonatomic({f"other:{i}": b"x" for i in range(start, start + 5_000)})
    store.set_many({f"ns:1:{i}": "x" for i in range(6_000)})
    for node in redis_cluster.primaries():
        node.command("CONFIG", "RESETSTAT")
    size = len(store)
    scans = sum(
        int(node.info("commandstats").get("cmdstat_scan", {}).get("calls", 0))
        for node in redis_cluster.primaries()
    )
    # a sample of about a thousand keys per primary, not a scan of the 36,000
    assert scans <= 3 * 3
    assert 4_500 <= size <= 7_500  # 6,000 entries, estimated
    assert store.stats()["entries"] == 6_000  # exact, by a scan of every primary
    other.close()
    store.close()


def test_leases_and_other_keys_are_never_entries(
    redis_cluster: Cluster, redis_cluster_url: str
) -> None:
    store = RedisStore(redis_cluster_url)
    store.set_many({"ns:1:a": 1, "ns:1:b": 2})
    assert store.lease_many(["ns:1:x", "ns:1:a"], "token", 30) == ["ns:1:x", "ns:1:a"]
    other = cluster_client(redis_cluster_url)
    other.set("batche:not-ours", b"x")  # under the prefix, but no bucket's tag
    other.set("batche:{x}ns:1:z", b"x")  # a tag, but not a bucket's
    assert len(store) == 2
    assert store.stats()["entries"] == 2
    store.clear()
    assert len(store) == 0
    assert other.exists("batche:not-ours", "batche:{x}ns:1:z") == 2  # left alone
    assert store.lease_many(["ns:1:x"], "another-process", 30) == []  # still held
    other.close()
    store.close()


def test_the_async_twins_on_a_cluster(redis_cluster_url: str) -> None:
    store = RedisStore(redis_cluster_url, cluster=True)

    async def main() -> None:
        await store.aset_many({f"k{i}": i for i in range(50)})
        assert await store.aget_many(["k1", "k49", "nope"]) == {"k1": 1, "k49": 49}
        await store.adelete_many(["k1"])
        assert await store.aget_many(["k1", "k2"]) == {"k2": 2}
        await store.aclear()
        assert await store.aget_many(["k2"]) == {}
        await store.aclose()

    asyncio.run(main())
    asyncio.run(main())  # another loop: another client, closed with it
    store.close()


def test_stats_and_clear_from_the_command_line(redis_cluster_url: str) -> None:
    store = RedisStore(redis_cluster_url)
    cache_batch_variable("t", cache=store, namespace="emb", version=2)(lambda t: list(t))(
        ["a", "b"]
    )
    cache_batch_variable("t", cache=store, namespace="other")(lambda t: list(t))(["z"])
    shown = run_batche("stats", redis_cluster_url)
    assert shown.returncode == 0, shown.stderr
    assert "entries: 3" in shown.stdout
    assert "emb:2" in shown.stdout
    cleared = run_batche("clear", redis_cluster_url, "--namespace", "emb")
    assert cleared.stdout.strip().endswith("removed 2 entries"), cleared.stderr
    assert "entries: 1" in run_batche("stats", redis_cluster_url).stdout
    store.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cluster": "yes"}, "cluster must be True, False or None"),
        ({"address_remap": "127.0.0.1"}, "address_remap must be a function"),
        ({"address_remap": lambda a: a, "cluster": False}, "address_remap maps the addresses"),
        ({"cluster": True, "prefix": "{app}:"}, "prefix must not hold '{' or '}'"),
    ],
)
def test_bad_cluster_options_are_named(options: dict[str, Any], message: str) -> None:
    with pytest.raises(BatchConfigError, match=message):
        RedisStore("redis://127.0.0.1:7000/0", **options)


def test_a_database_other_than_0_is_named(redis_cluster: Cluster) -> None:
    url = redis_cluster.url.replace("/0", "/1")
    with pytest.raises(BatchConfigError, match=r"\(a Redis Cluster, by cluster=True\): url names"):
        RedisStore(url, cluster=True)
    found = RedisStore(url)  # found on first use: the first call says so
    with pytest.raises(BatchConfigError, match=r"by INFO cluster\): url names database 1"):
        found.get_many(["a"])
    found.close()
    shown = run_batche("stats", url)
    assert shown.returncode == 2
    assert "url names database 1, but a cluster has database 0 only" in shown.stderr
