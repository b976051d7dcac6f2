"""What RedisStore does on a Redis Cluster: each operation as steps of per-node pipelines
(one engine for the sync and the asyncio client), keys in hash-tag buckets."""

from __future__ import annotations

import time
from collections.abc import Generator, Sequence
from typing import Any

from redis.crc import key_slot

from .._results import SHAPE_SUFFIX
from ._base import Rows
from ._redis_nodes import MISSING, PRIMARIES, Nodes, Request
from ._redis_slots import TAGS, bucket_of, by_bucket, slot_of_bucket, untag

__all__ = [
    "RELEASE", "AsyncClusterKeys", "AsyncNodePubSub", "ClusterKeys", "NodePubSub", "OnCluster",
    "escape",
]  # fmt: skip

_CHUNK = 10_000  # keys per request for deletes, scans and sizes
_SAMPLE = 1_000  # keys a node's count looks at, at most, before it estimates
_TEMPLATE = (":" + SHAPE_SUFFIX).encode()  # how the key of arrays' template ends

# Delete each lease still holding our token (a lease that expired and was taken by
# another process is not ours to delete). The same script on one server and on a cluster,
# where the keys of one call are in one slot.
RELEASE = """
for i, key in ipairs(KEYS) do
    if redis.call('get', key) == ARGV[1] then redis.call('del', key) end
end
return 0
"""

Steps = Generator[Any, Any, Any]


def escape(pattern: str) -> str:
    """``pattern`` with Redis glob characters taken literally."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in pattern)


class OnCluster:
    """RedisStore's operations on a cluster: an entry ``key`` lives at
    ``prefix + "{tag}" + key``, its lease at ``lease_prefix + "{tag}" + key`` (the same
    slot), ``tag`` its bucket's (see ``_redis_slots``). Reads, writes and leases of a batch
    are one request: one command per bucket, one pipeline per node."""

    def __init__(self, store: Any, url: str, address_remap: Any) -> None:
        self.nodes = Nodes(store, url, address_remap)
        self.prefix: str = store.prefix
        self.lease_prefix: str = store.lease_prefix
        self.ttl: float | None = store.ttl
        self.channel = f"{store.prefix}released"

    def full(self, keys: Sequence[str]) -> list[str]:
        """The Redis keys of entries."""
        prefix = self.prefix
        return [prefix + TAGS[bucket_of(key)] + key for key in keys]

    def leases(self, keys: Sequence[str]) -> list[str]:
        prefix = self.lease_prefix
        return [prefix + TAGS[bucket_of(key)] + key for key in keys]

    def _each_bucket(self, command: str, prefix: str, keys: Sequence[str]) -> tuple[Any, Request]:
        groups = by_bucket(keys)
        request = [
            (slot_of_bucket(bucket), (command, *[prefix + TAGS[bucket] + key for key in group]))
            for bucket, group in groups.items()
        ]
        return groups, request

    # -- reads and writes (through the store's and the nodes' circuits) -------------------

    def reading(self, keys: Sequence[str]) -> Generator[Request, Any, Rows]:
        groups, request = self._each_bucket("MGET", self.prefix, keys)
        replies = yield request
        found: list[tuple[str, bytes]] = []
        for group, values in zip(groups.values(), replies):
            if values is not MISSING:  # its node is skipped or failed: misses
                found += [(key, value) for key, value in zip(group, values) if value is not None]
        return found

    def writing(self, encoded: list[tuple[str, bytes]]) -> Steps:
        prefix = self.prefix
        if self.ttl is None:
            groups: dict[int, list[Any]] = {}
            for key, data in encoded:
                bucket = bucket_of(key)
                groups.setdefault(bucket, []).extend((prefix + TAGS[bucket] + key, data))
            yield [(slot_of_bucket(bucket), ("MSET", *args)) for bucket, args in groups.items()]
        else:
            px = max(1, int(self.ttl * 1000))
            request = []
            for key, data in encoded:
                bucket = bucket_of(key)
                request.append(
                    (slot_of_bucket(bucket), ("SET", prefix + TAGS[bucket] + key, data, "PX", px))
                )
            yield request

    # -- leases -------------------------------------------------------------------------------

    def leasing(self, keys: Sequence[str], token: str, timeout: float) -> Steps:
        """Whether each key was leased to us (a key whose node fails is: compute it here)."""
        px = max(1, int(timeout * 1000))
        request = []
        for key in keys:
            bucket = bucket_of(key)
            lease = self.lease_prefix + TAGS[bucket] + key
            request.append((slot_of_bucket(bucket), ("SET", lease, token, "NX", "PX", px)))
        replies = yield request
        return [reply is not None for reply in replies]

    def releasing(self, keys: Sequence[str], token: str) -> Steps:
        groups = by_bucket(keys)
        request: list[Any] = []
        for bucket, group in groups.items():
            leases = [self.lease_prefix + TAGS[bucket] + key for key in group]
            request.append((slot_of_bucket(bucket), ("EVAL", RELEASE, len(leases), *leases, token)))
        # classic pub/sub: a cluster forwards a message published on a node to every node
        request.append((request[0][0], ("PUBLISH", self.channel, b"")))
        yield request

    def values(self, redis_keys: Sequence[str]) -> Steps:
        """``MGET`` of Redis keys of any slots (what following a lease reads)."""
        slots = [key_slot(key.encode()) for key in redis_keys]
        groups: dict[int, list[int]] = {}
        for index, slot in enumerate(slots):
            groups.setdefault(slot, []).append(index)
        request = [
            (slot, ("MGET", *[redis_keys[i] for i in group])) for slot, group in groups.items()
        ]
        replies = yield request
        values: list[Any] = [None] * len(redis_keys)
        for group, reply in zip(groups.values(), replies):
            if reply is not MISSING:
                for index, value in zip(group, reply):
                    values[index] = value
        return values

    def existing(self, redis_keys: Sequence[str]) -> Steps:
        """How many of these Redis keys exist (a node that fails counts none)."""
        request = [(key_slot(key.encode()), ("EXISTS", key)) for key in redis_keys]
        replies = yield request
        return sum(reply for reply in replies if reply is not MISSING)

    # -- explicit operations: strict ----------------------------------------------------------

    def deleting(self, keys: Sequence[str]) -> Generator[Any, Any, int]:
        """Delete ``keys``; how many there were (``UNLINK`` counts the keys it removed)."""
        removed = 0
        for start in range(0, len(keys), _CHUNK):
            _, request = self._each_bucket("UNLINK", self.prefix, keys[start : start + _CHUNK])
            removed += sum((yield request))
        return removed

    def _scanning(self, prefix: str | None) -> Generator[Any, Any, list[tuple[int, bytes]]]:
        """The (bucket, key) of every entry under ``prefix``: a SCAN on every primary at
        once, until each has gone round."""
        pattern = escape(self.prefix) + "{*}" + escape(prefix or "") + "*"
        wanted = (prefix or "").encode()
        cursors = dict.fromkeys((yield PRIMARIES), 0)
        found: set[tuple[int, bytes]] = set()  # a scan may return a key twice
        while cursors:
            request = [
                (name, ("SCAN", cursor, "MATCH", pattern, "COUNT", _CHUNK))
                for name, cursor in cursors.items()
            ]
            replies = yield request
            following = {}
            for name, (cursor, keys) in zip(cursors, replies):
                found.update(
                    e for e in untag(self.prefix.encode(), keys) if e[1].startswith(wanted)
                )
                if int(cursor) != 0:
                    following[name] = int(cursor)
            cursors = following
        return sorted(found)

    def clearing(self, prefix: str | None) -> Generator[Any, Any, int]:
        """Delete the entries under ``prefix``; how many (the arrays' templates of their
        namespaces go too, and are not counted)."""
        found = yield from self._scanning(prefix)
        templates = [key.decode() for _, key in found if key.endswith(_TEMPLATE)]
        yield from self.deleting(templates)
        return (
            yield from self.deleting([k.decode() for _, k in found if not k.endswith(_TEMPLATE)])
        )

    def stating(self) -> Generator[Any, Any, dict[str, Any]]:
        found = yield from self._scanning(None)
        entries = [(bucket, key) for bucket, key in found if not key.endswith(_TEMPLATE)]
        sizes = 0
        for start in range(0, len(entries), _CHUNK):
            request = [
                (slot_of_bucket(bucket), ("STRLEN", self.prefix + TAGS[bucket] + key.decode()))
                for bucket, key in entries[start : start + _CHUNK]
            ]
            sizes += sum((yield request))
        groups: dict[str, int] = {}
        for _, key in entries:
            group = key.decode().rsplit(":", 1)[0]
            groups[group] = groups.get(group, 0) + 1
        return {"entries": len(entries), "bytes": sizes, "groups": groups}

    def sizing(self) -> Generator[Any, Any, int]:
        """Entries on every primary, each counted as on one server (``RedisStore._sizing``):
        exact on a node of at most ``_SAMPLE`` keys, beyond that its size times the share of
        entries among a sample of ``_SAMPLE`` keys. A node skipped or failing counts none."""
        names = yield PRIMARIES
        replies = yield [(name, command) for name in names for command in _SIZE_AND_SAMPLE]
        sizes: dict[str, int] = {}
        cursors: dict[str, int] = {}
        seen: dict[str, set[bytes]] = {}
        for index, name in enumerate(names):
            size, scanned = replies[2 * index], replies[2 * index + 1]
            if size is not MISSING and scanned is not MISSING:
                sizes[name], cursors[name] = int(size), int(scanned[0])
                seen[name] = set(scanned[1])
        going = [n for n in cursors if cursors[n] != 0 and len(seen[n]) < _SAMPLE]
        while going:  # a SCAN may return fewer keys than asked: on until the sample is full
            replies = yield [(n, ("SCAN", cursors[n], "COUNT", _SAMPLE)) for n in going]
            for name, scanned in zip(going, replies):
                if scanned is MISSING:  # failed meanwhile: counts none
                    del sizes[name]
                    continue
                cursors[name] = int(scanned[0])
                seen[name].update(scanned[1])
            going = [n for n in going if n in sizes and cursors[n] != 0 and len(seen[n]) < _SAMPLE]
        total = 0
        prefix = self.prefix.encode()
        for name in sizes:
            ours = sum(not key.endswith(_TEMPLATE) for _, key in untag(prefix, list(seen[name])))
            whole = cursors[name] == 0 or not seen[name]
            total += ours if whole else round(sizes[name] * ours / len(seen[name]))
        return total


_SIZE_AND_SAMPLE = [("DBSIZE",), ("SCAN", 0, "COUNT", _SAMPLE)]


# -- following leases: what the follower asks of a client, on a cluster ----------------------


class ClusterKeys:
    """``mget`` and ``exists`` of Redis keys of any slots, one pipeline per node."""

    def __init__(self, on: OnCluster) -> None:
        self._on = on

    def mget(self, redis_keys: Sequence[str]) -> list[Any]:
        return list(self._on.nodes.run("follow leases", self._on.values(redis_keys)))

    def exists(self, *redis_keys: str) -> int:
        return int(self._on.nodes.run("follow leases", self._on.existing(redis_keys)))


class AsyncClusterKeys(ClusterKeys):
    """``ClusterKeys`` on the running loop's client."""

    async def mget(self, redis_keys: Sequence[str]) -> list[Any]:  # type: ignore[override]
        return list(await self._on.nodes.arun("follow leases", self._on.values(redis_keys)))

    async def exists(self, *redis_keys: str) -> int:  # type: ignore[override]
        return int(await self._on.nodes.arun("follow leases", self._on.existing(redis_keys)))


class NodePubSub:
    """A subscription on one primary: a cluster forwards a message published on any node
    to every node (classic pub/sub), so one node hears every release."""

    def __init__(self, nodes: Nodes) -> None:
        self._nodes = nodes
        self._pubsub: Any = None

    def subscribe(self, channel: str) -> None:
        cluster = self._nodes.client()
        node = self._nodes.circuits.answering(cluster.get_primaries())
        self._pubsub = cluster.get_redis_connection(node).pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(channel)

    def get_message(self, timeout: float) -> Any:
        return self._pubsub.get_message(timeout=timeout)

    def close(self) -> None:
        if self._pubsub is not None:
            self._pubsub.close()


class AsyncNodePubSub:
    """``NodePubSub`` on the running loop's client."""

    def __init__(self, nodes: Nodes) -> None:
        self._nodes = nodes
        self._pubsub: Any = None

    async def subscribe(self, channel: str) -> None:
        cluster = await self._nodes.aclient(time.monotonic() + self._nodes.timeout)
        node = self._nodes.circuits.answering(cluster.get_primaries())
        self._pubsub = cluster.pubsub(node=node, ignore_subscribe_messages=True)
        await self._pubsub.subscribe(channel)

    async def get_message(self, timeout: float) -> Any:
        return await self._pubsub.get_message(timeout=timeout)

    async def aclose(self) -> None:
        if self._pubsub is not None:
            await self._pubsub.aclose()
