"""A Redis Cluster whose nodes hang, die, fail over or all restart: every call is correct and
raises nothing, a failing node costs one deadline then nothing, and the keys of the other
nodes still hit. Real redis-server processes; faults from our proxy or from signals."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import Any

import pytest

from batche import cache_batch_variable
from batche.stores import RedisStore, StoreError

from ._cluster import Cluster, Proxied, eventually, free_ports
from .conftest import Harness, Recorder

TIMEOUT = 1.0  # the stores' deadline in these tests
pytestmark = pytest.mark.redis


class Tally:
    """Calls of a cached function, each checked against what it must return: how many,
    how many wrong, how many raised, and the slowest."""

    def __init__(self, harness: Harness, f: Any) -> None:
        self.harness, self.f = harness, f
        self.calls = self.wrong = self.raised = 0
        self.worst = 0.0

    def __call__(self, items: list[str]) -> float:
        """Call on ``items``; the seconds it took."""
        start = time.monotonic()
        try:
            value = self.harness.run(self.f(items))
        except Exception:  # noqa: BLE001 - counted, and the test fails on the count
            self.raised += 1
            value = None
        elapsed = time.monotonic() - start
        self.calls += 1
        self.wrong += value != [f"<{item}>" for item in items]
        self.worst = max(self.worst, elapsed)
        return elapsed

    def clean(self) -> bool:
        return self.calls > 0 and self.wrong == 0 and self.raised == 0


def by_node(cluster: Cluster, store: RedisStore, f: Any, items: list[str]) -> dict[int, list[str]]:
    """``items`` grouped by the port of the primary their entry lives on."""
    keys = f._core.keys_of(items, ())
    owners = cluster.owners([k.encode() for k in store._full(keys)])
    groups: dict[int, list[str]] = {}
    for item, owner in zip(items, owners):
        groups.setdefault(owner.port, []).append(item)
    return groups


def node_warnings(caplog: pytest.LogCaptureFixture, name: str) -> tuple[int, int]:
    """How many times trouble on node ``name``, and its recovery, were logged."""
    messages = [r.getMessage() for r in caplog.records if r.name == "batche"]
    return (
        sum(f"on node {name}" in m and "could not" in m for m in messages),
        sum(f"node {name} is back" in m for m in messages),
    )


def through(proxied: Proxied, **options: Any) -> RedisStore:
    """A store on the cluster whose every node is reached through its proxy."""
    return RedisStore(proxied.url, timeout=TIMEOUT, address_remap=proxied.remap, **options)


def finish(harness: Harness, store: RedisStore) -> None:
    if harness.kind == "async":
        harness.run(store.aclose())
    store.close()


ITEMS = [f"item {i}" for i in range(300)]


# -- primaries that hang: blackholed by their proxies --------------------------------------


@pytest.mark.parametrize("hung", [1, 2])
def test_blackholed_primaries_cost_one_deadline_then_nothing_and_the_rest_still_hit(
    redis_cluster: Cluster, harness: Harness, caplog: pytest.LogCaptureFixture, hung: int
) -> None:
    redis_cluster.flush()
    with redis_cluster.proxied() as proxied:
        store = through(proxied, retry_after=600)
        recorder = Recorder()
        tally = Tally(harness, harness.decorate(recorder, cache=store, namespace="hung"))
        tally(ITEMS)  # all stored, over the three primaries
        groups = by_node(redis_cluster, store, tally.f, ITEMS)
        first_node = redis_cluster.nodes[0].port  # the URL's: the others hang
        victims = [n for n in redis_cluster.primaries() if n.port != first_node][:hung]
        for victim in victims:
            proxied.of(victim).mode("blackhole")
        lost = sorted(item for victim in victims for item in groups[victim.port])
        with caplog.at_level(logging.WARNING, logger="batche"):
            first = tally([*ITEMS, "new"])
            # every hung node waited on at once, for one deadline: no retry, no slot by slot
            assert TIMEOUT <= first < 2 * TIMEOUT
            received = [proxied.of(victim).received for victim in victims]
            later = [tally(ITEMS) for _ in range(10)]
        assert max(later) < TIMEOUT  # the hung nodes are skipped: nothing is waited on
        assert [proxied.of(victim).received for victim in victims] == received  # not a byte
        assert tally.clean()
        # the keys of the nodes that answer are hits; only the hung nodes' are computed
        assert sorted(recorder.calls[1]) == sorted([*lost, "new"])
        assert all(sorted(call) == lost for call in recorder.calls[2:])
        for victim in victims:
            name = f"127.0.0.1:{proxied.of(victim).port}"
            assert node_warnings(caplog, name) == (1, 0)
        proxied.mode("pass")
        finish(harness, store)


def test_lock_true_with_a_hung_node_computes_its_keys_without_waiting_for_it(
    redis_cluster: Cluster, harness: Harness
) -> None:
    redis_cluster.flush()
    with redis_cluster.proxied() as proxied:
        store = through(proxied, retry_after=600)
        recorder = Recorder()
        f = harness.decorate(recorder, cache=store, namespace="locked", lock=True, lock_timeout=30)
        tally = Tally(harness, f)
        tally(ITEMS)
        groups = by_node(redis_cluster, store, f, ITEMS)
        victim = redis_cluster.primaries()[-1]
        proxied.of(victim).mode("blackhole")
        first = tally(ITEMS)  # the read waits one deadline; leases skip the hung node
        later = [tally(ITEMS) for _ in range(5)]
        assert first < 2 * TIMEOUT
        assert max(later) < TIMEOUT
        assert all(sorted(c) == sorted(groups[victim.port]) for c in recorder.calls[1:])
        assert tally.clean()
        proxied.mode("pass")
        finish(harness, store)


def test_with_on_store_error_raise_a_failing_node_is_named(redis_cluster: Cluster) -> None:
    redis_cluster.flush()
    with redis_cluster.proxied() as proxied:
        store = through(proxied, retry_after=600, on_store_error="raise")
        store.set_many({f"k{i}": i for i in range(100)})
        victim = redis_cluster.primaries()[-1]
        name = f"127.0.0.1:{proxied.of(victim).port}"
        proxied.of(victim).mode("blackhole")
        with pytest.raises(
            StoreError,
            match=f"could not read on node {name}: timed out: no answer before the deadline",
        ):
            store.get_many([f"k{i}" for i in range(100)])
        # while its circuit is open: at once, without a byte sent to it
        received = proxied.of(victim).received
        with pytest.raises(StoreError, match=f"node {name} failed .*; it is tried again in"):
            store.get_many([f"k{i}" for i in range(100)])
        assert proxied.of(victim).received == received
        proxied.mode("pass")
        store.close()


def test_a_hung_node_is_probed_again_and_used_once_it_answers(
    redis_cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    redis_cluster.flush()
    with redis_cluster.proxied() as proxied:
        store = through(proxied, retry_after=0.2)
        recorder = Recorder()
        sync = Harness("sync", None)
        tally = Tally(sync, sync.decorate(recorder, cache=store))
        tally(ITEMS)
        victim = redis_cluster.primaries()[-1]
        with caplog.at_level(logging.WARNING, logger="batche"):
            proxied.of(victim).mode("blackhole")
            tally(ITEMS)  # its circuit opens
            proxied.of(victim).mode("pass")
            # probed after retry_after, it answers: its keys are found again
            eventually(lambda: hit(tally, recorder, ITEMS), "every item a hit again")
        assert node_warnings(caplog, f"127.0.0.1:{proxied.of(victim).port}") == (1, 1)
        assert tally.clean()
        store.close()


def hit(tally: Tally, recorder: Recorder, items: list[str]) -> bool:
    """One call; whether it computed nothing (every item a hit)."""
    before = len(recorder.calls)
    tally(items)
    return len(recorder.calls) == before


# -- a primary that dies, with no replica ----------------------------------------------------


def test_a_killed_primary_costs_nothing_and_its_restart_is_found(
    own_cluster: Cluster, harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    store = RedisStore(own_cluster.url, timeout=TIMEOUT, retry_after=0.3)
    recorder = Recorder()
    tally = Tally(harness, harness.decorate(recorder, cache=store, namespace="killed"))
    tally(ITEMS)
    groups = by_node(own_cluster, store, tally.f, ITEMS)
    victim = own_cluster.primaries()[1]
    with caplog.at_level(logging.WARNING, logger="batche"):
        victim.stop(signal.SIGKILL)
        down = [tally(ITEMS) for _ in range(5)]
        assert max(down) < TIMEOUT  # refused at once, then skipped
        assert all(sorted(call) == sorted(groups[victim.port]) for call in recorder.calls[1:])
        victim.start()  # on its port, with its slots (its cluster state is on disk), empty
        own_cluster.wait_ok()
        eventually(lambda: hit(tally, recorder, ITEMS), "the restarted node's keys hit")
    assert node_warnings(caplog, f"127.0.0.1:{victim.port}") == (1, 1)
    assert tally.clean()
    finish(harness, store)


# -- failover: a replica takes over a primary that died ---------------------------------------


def test_a_failover_keeps_every_call_correct_and_writes_land_on_the_new_primary(
    replicated_cluster: Cluster, harness: Harness
) -> None:
    cluster = replicated_cluster
    store = RedisStore(cluster.url, timeout=TIMEOUT, retry_after=0.3)
    recorder = Recorder()
    tally = Tally(harness, harness.decorate(recorder, cache=store, namespace="failover"))
    tally(ITEMS)
    groups = by_node(cluster, store, tally.f, ITEMS)
    victim = cluster.node(cluster.nodes[0].port)  # the URL's node, a primary
    assert victim in cluster.primaries()
    replica = cluster.replica_of(victim)
    eventually(lambda: int(replica.command("DBSIZE")) == len(groups[victim.port]), "replicated")
    victim.stop(signal.SIGKILL)
    worst_down = max(tally(ITEMS) for _ in range(3))
    replica.command("CLUSTER", "FAILOVER", "TAKEOVER")  # promoted at once, without a vote
    others = [n for n in cluster.alive() if n is not replica]
    eventually(
        lambda: all(cluster.owners([store._full([k])[0].encode()], n)[0] is replica
                    for n in others for k in tally.f._core.keys_of(groups[victim.port][:1], ())),
        "the cluster agrees on the new primary",
    )  # fmt: skip
    # the new primary holds the victim's entries (replicated): once the client has read
    # the new slot map, they are hits again, as are every other node's
    eventually(lambda: hit(tally, recorder, ITEMS), "every item a hit again")
    fresh = [f"fresh {i}" for i in range(300)]
    tally(fresh)
    landed = by_node(cluster, store, tally.f, fresh)
    assert replica.port in landed  # some fresh entries belong to the new primary's slots
    keys = store._full(tally.f._core.keys_of(landed[replica.port], ()))
    assert all(replica.command("EXISTS", key) == 1 for key in keys)  # written there
    assert worst_down < TIMEOUT
    assert tally.clean()
    finish(harness, store)


def test_after_the_urls_node_fails_over_new_event_loops_still_find_the_cluster(
    replicated_cluster: Cluster,
) -> None:
    # Each asyncio.run() makes the store a client for its loop. Once the node of the URL is
    # dead, a new client starts from the nodes of the last slot map read, not from the URL:
    # after the failover every entry hits again from fresh loops too.
    cluster = replicated_cluster
    store = RedisStore(cluster.url, timeout=TIMEOUT, retry_after=0.3)
    computed: list[str] = []

    @cache_batch_variable("texts", cache=store, namespace="loops")
    async def f(texts: list[str]) -> list[str]:
        computed.extend(texts)
        return [f"<{t}>" for t in texts]

    assert asyncio.run(f(ITEMS)) == [f"<{t}>" for t in ITEMS]
    victim = cluster.node(cluster.nodes[0].port)  # the URL's node, a primary
    replica = cluster.replica_of(victim)
    eventually(lambda: int(replica.command("DBSIZE")) > 0, "replicated")
    victim.stop(signal.SIGKILL)
    replica.command("CLUSTER", "FAILOVER", "TAKEOVER")
    served_by = [node for node in cluster.alive() if node is not victim]
    eventually(
        lambda: all(victim.port not in {o[2] for o in Cluster._slot_owners(n)} for n in served_by),
        "every node sees the replica promoted",
    )

    def all_hit() -> bool:
        before = len(computed)
        assert asyncio.run(f(ITEMS)) == [f"<{t}>" for t in ITEMS]  # always right
        return len(computed) == before

    eventually(all_hit, "every item a hit from a new event loop")
    asyncio.run(store.aclose())
    store.close()


# -- the whole cluster restarted ---------------------------------------------------------------


def test_a_whole_cluster_restarted_is_reconnected(
    own_cluster: Cluster, harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    store = RedisStore(own_cluster.url, timeout=TIMEOUT, retry_after=0.3)
    recorder = Recorder()
    tally = Tally(harness, harness.decorate(recorder, cache=store, namespace="restart"))
    tally(ITEMS)
    with caplog.at_level(logging.WARNING, logger="batche"):
        for node in own_cluster.nodes:
            node.stop()
        down = [tally(ITEMS) for _ in range(5)]
        assert max(down) < TIMEOUT  # refused at once, then skipped
        for node in own_cluster.nodes:
            node.start()
        own_cluster.wait_ok()
        tally(ITEMS)  # computed again (nothing kept on disk), and stored
        eventually(lambda: hit(tally, recorder, ITEMS), "every item a hit again")
    assert tally.clean()
    finish(harness, store)


# -- no cluster at all ---------------------------------------------------------------------------


def test_an_unreachable_cluster_is_a_store_failure(caplog: pytest.LogCaptureFixture) -> None:
    (port,) = free_ports(1)
    store = RedisStore(f"redis://127.0.0.1:{port}/0", cluster=True, timeout=0.5)
    recorder = Recorder()
    sync = Harness("sync", None)
    tally = Tally(sync, sync.decorate(recorder, cache=store))
    with caplog.at_level(logging.WARNING, logger="batche"):
        for _ in range(3):
            assert tally(["a", "b"]) < 0.5
    assert tally.clean()
    assert recorder.calls == [["a", "b"]] * 3
    messages = [r.getMessage() for r in caplog.records if r.name == "batche"]
    assert len(messages) == 1
    assert "could not read (Redis Cluster cannot be connected" in messages[0]
    strict = RedisStore(store.url, cluster=True, timeout=0.5, on_store_error="raise")
    with pytest.raises(StoreError, match="could not read: Redis Cluster cannot be connected"):
        strict.get_many(["a"])
