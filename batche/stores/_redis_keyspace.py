"""The explicit operations of a RedisStore over its keyspace: delete, clear and stats
(their failures raise ``StoreError``), and ``len()``, the cheap count (its failures skip)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Generator, Sequence
from operator import methodcaller
from typing import Any

from .._results import SHAPE_SUFFIX
from ._base import StoreError
from ._redis_cluster import OnCluster, escape
from ._redis_io import Step, arun, bounded, run
from ._redis_mode import ClusterMode

__all__ = ["RedisKeyspace"]

_CHUNK = 10_000  # keys per command for deletes and scans
_SAMPLE = 1_000  # keys len() looks at, at most, before it estimates
_TEMPLATE = (":" + SHAPE_SUFFIX).encode()  # how the key of arrays' template ends


class RedisKeyspace(ClusterMode):
    """Deletes, scans and counts of a store's entries, on one server or on every primary of
    a cluster (``OnCluster`` does the cluster's part). The entries are the keys under
    ``prefix``; leases (under ``lease_prefix``) and the arrays' templates of the namespaces
    are not counted."""

    def _is_entry(self, key: bytes) -> bool:
        """A key of ours that is not a lease (they share a prefix only if ours is odd)."""
        return key.startswith(self.prefix.encode()) and not key.startswith(
            self.lease_prefix.encode()
        )

    def _is_counted(self, key: bytes) -> bool:
        """An entry that counts as one: not the arrays' template of a namespace."""
        return self._is_entry(key) and not key.endswith(_TEMPLATE)

    # -- explicit operations: a failure raises StoreError ---------------------------------

    def _run(
        self,
        action: str,
        steps: Callable[[], Generator[Step, Any, Any]],
        on_cluster: Callable[[OnCluster], Generator[Any, Any, Any]],
    ) -> Any:
        """``steps()`` on one server, ``on_cluster(...)`` on a cluster."""
        try:
            on = bounded(self.timeout, self._clustered)
            if on is not None:
                return on.nodes.run(action, on_cluster(on), strict=True)
            return run(self.client, self.timeout, steps())
        except self.errors as exc:
            raise self._error(action, exc) from exc

    async def _arun(
        self,
        action: str,
        steps: Callable[[], Generator[Step, Any, Any]],
        on_cluster: Callable[[OnCluster], Generator[Any, Any, Any]],
    ) -> Any:
        try:
            on = await self._aclustered(time.monotonic() + self.timeout)
            if on is not None:
                return await on.nodes.arun(action, on_cluster(on), strict=True)
            return await arun(self._loops.get(), self.timeout, steps())
        except self.errors as exc:
            raise self._error(action, exc) from exc

    def _deleting(self, keys: Sequence[str]) -> Generator[Step, Any, int]:
        """Delete ``keys``; how many there were (``UNLINK`` counts the keys it removed)."""
        full = self._full(keys)
        removed = 0
        for start in range(0, len(full), _CHUNK):
            chunk = full[start : start + _CHUNK]
            removed += int((yield methodcaller("unlink", *chunk)))
        return removed

    def delete_many(self, keys: Sequence[str]) -> None:
        self._run("delete entries", lambda: self._deleting(keys), lambda on: on.deleting(keys))

    async def adelete_many(self, keys: Sequence[str]) -> None:
        await self._arun(
            "delete entries", lambda: self._deleting(keys), lambda on: on.deleting(keys)
        )

    def _scanning(self, prefix: str | None) -> Generator[Step, Any, list[bytes]]:
        """Every entry key under ``prefix`` (leases left out), one SCAN at a time."""
        match = escape(self.prefix + (prefix or "")) + "*"
        keys: list[bytes] = []
        cursor = None
        while cursor != 0:
            cursor, found = yield methodcaller("scan", cursor or 0, match, _CHUNK)
            keys.extend(key for key in found if self._is_entry(key))
        return list(dict.fromkeys(keys))  # a scan may return a key twice

    def _clearing(self, prefix: str | None) -> Generator[Step, Any, int]:
        keys = yield from self._scanning(prefix)
        start = len(self.prefix)
        entries = [key.decode()[start:] for key in keys if not key.endswith(_TEMPLATE)]
        templates = [key.decode()[start:] for key in keys if key.endswith(_TEMPLATE)]
        yield from self._deleting(templates)  # gone too, but not entries: not counted
        return (yield from self._deleting(entries))

    def clear(self, prefix: str | None = None) -> int:
        """Remove the entries whose key (after ``self.prefix``) starts with ``prefix``;
        the number removed (exact: another client's deletes are not counted; the arrays'
        templates of the namespaces go too, and are not entries)."""
        clearing = functools.partial(self._clearing, prefix)
        return int(self._run("clear entries", clearing, lambda on: on.clearing(prefix)))

    async def aclear(self, prefix: str | None = None) -> int:
        clearing = functools.partial(self._clearing, prefix)
        return int(await self._arun("clear entries", clearing, lambda on: on.clearing(prefix)))

    def _stating(self) -> Generator[Step, Any, dict[str, Any]]:
        keys = yield from self._scanning(None)
        sizes = []
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            sizes += yield functools.partial(_strlen, keys=chunk)
        groups: dict[str, int] = {}
        entries, size = 0, 0
        for key, length in zip(keys, sizes):
            if key.endswith(_TEMPLATE):
                continue  # the arrays' template of a namespace and version: not an entry
            group = key.decode()[len(self.prefix) :].rsplit(":", 1)[0]
            groups[group] = groups.get(group, 0) + 1
            entries, size = entries + 1, size + int(length)
        return {"entries": entries, "bytes": size, "groups": groups}

    def stats(self) -> dict[str, Any]:
        """Entries, bytes and the entries of each namespace and version: exact, by a
        scan of the whole database, of every primary (``len()`` is the cheap count)."""
        return dict(self._run("read the entries", self._stating, OnCluster.stating))

    # -- size: cheap, whatever the size of the database -----------------------------------

    def _sizing(self) -> Generator[Step, Any, int]:
        """Entries: exact while the database holds at most ``_SAMPLE`` keys; beyond, the
        database's size times the share of entries among a sample of ``_SAMPLE`` keys."""
        size, (cursor, sample) = yield _size_and_sample
        seen = set(sample)
        while cursor != 0 and len(seen) < _SAMPLE:
            cursor, sample = yield methodcaller("scan", cursor, count=_SAMPLE)
            seen.update(sample)
        ours = sum(1 for key in seen if self._is_counted(key))
        if cursor == 0 or not seen:
            return ours
        return round(int(size) * ours / len(seen))

    def __len__(self) -> int:
        """The entries, counted cheaply (see ``_sizing``): 0 while the store is skipped
        (on a cluster, a node skipped counts none)."""
        return self._guarded("count", self._count, None, 0)

    def count_or_none(self) -> int | None:
        """``len()`` when the store answers; None while it is skipped after a failure or
        when it fails now, whatever ``on_store_error`` (``cache_info()``'s ``currsize``)."""
        try:
            return self._guarded("count", self._count, None, None)
        except StoreError:  # on_store_error="raise": a count is not a call to fail
            return None

    def _count(self, _: None) -> int:
        on = bounded(self.timeout, self._clustered)
        if on is not None:
            return on.nodes.run("count", on.sizing())
        return run(self.client, self.timeout, self._sizing())


def _size_and_sample(client: Any) -> Any:
    pipe = client.pipeline(transaction=False)
    pipe.dbsize()
    pipe.scan(0, count=_SAMPLE)
    return pipe.execute()


def _strlen(client: Any, keys: list[bytes]) -> Any:
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.strlen(key)
    return pipe.execute()
