"""A store in Redis: shared by every process and machine that reaches the server.

Here: the options, reads and writes, connections. Leases are in ``_redis_lease``, the
keyspace (delete, clear, stats, ``len()``) in ``_redis_keyspace``, the choice of one
server or a cluster in ``_redis_mode``."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from typing import Any

from .._checks import MAX_SECONDS_TEXT, seconds
from .._errors import BatchConfigError
from ._base import Rows
from ._redis_io import ERRORS, LoopClients, async_client, bounded, rows, sync_client, until
from ._redis_keyspace import RedisKeyspace
from ._redis_lease import RedisLeases
from ._urls import database_fault, masked, secrets_of

__all__ = ["RedisStore"]


class RedisStore(RedisLeases, RedisKeyspace):
    """Results in Redis, shared by many processes and machines: one server or a Redis
    Cluster.

    One round trip per batch: ``MGET`` to read, one ``MSET`` (or ``SET ... PX`` in one
    pipeline when ``ttl`` is given) to write. Keys are ``prefix + namespace:version:
    digest``. On a cluster an entry's key carries its bucket's hash tag
    (``prefix + "{tag}" + namespace:version:digest``, 256 buckets, see ``_redis_slots``):
    a batch is one command per bucket and one pipeline per node, every node at once. The
    sync client is shared by threads; async code gets a client of its own event loop
    (redis-py's asyncio clients belong to one loop), closed when that loop shuts down its
    async generators (as ``asyncio.run`` does) or by ``aclose()``.

    Faults: every round trip ends within ``timeout`` seconds in all (connecting, sending
    and reading together, every node of a cluster at once; redis-py never retries). A
    failure or a timeout opens a circuit breaker: calls skip the store (it is empty to
    them) for ``retry_after`` seconds, then one call at a time tries it again (see
    ``RemoteStore``). On a cluster each node has its own: a node that fails costs its own
    keys, the others still hit, and a replica promoted in its place is found and used.
    Explicit operations (``clear``, ``delete_many``, ``stats``) raise ``StoreError``.

    Arguments:
        url: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` (TLS, with
            redis-py's ``ssl_*`` options in the query) or ``unix://``; on a cluster, any
            node's ``redis://`` or ``rediss://`` URL (database 0). Shown with its password
            masked (``redis://user:***@host/0``) in ``repr``, ``url``, logs and errors.
        ttl: seconds an entry lasts (None: until evicted by Redis).
        serializer: ``"safe"`` (default, never unpickles), ``"pickle"``, or an object
            with ``dumps``/``loads``.
        on_store_error: ``"compute"`` (default: log once and compute) or ``"raise"``.
        prefix: put before every key; leases live apart, under ``lease_prefix``.
        timeout: the deadline of one round trip, in seconds (default 1.0).
        retry_after: seconds a failed store (or node) is skipped before it is tried
            again (5.0).
        cluster: True for a Redis Cluster, False for one server, None (default) to ask
            the server on first use (``INFO cluster``).
        address_remap: on a cluster, redis-py's ``address_remap``: maps the
            ``(host, port)`` a node announces to where this process reaches it (NAT, a
            proxy).

    ``len()`` is cheap: exact up to 1,000 keys in the database (on each primary),
    estimated from a sample of 1,000 beyond (``stats()`` counts exactly, with a scan).

    Example::

        @cache_batch_variable("texts", cache=RedisStore("redis://127.0.0.1:6379/0", ttl=86_400))
        async def embed(texts: list[str]) -> list[list[float]]: ...
    """

    errors = ERRORS
    #: ``len()`` costs a few commands whatever the size: ``cache_info()`` may call it
    len_is_cheap = True

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        ttl: float | None = None,
        serializer: Any = "safe",
        on_store_error: str = "compute",
        *,
        prefix: str = "batche:",
        timeout: float = 1.0,
        retry_after: float = 5.0,
        cluster: bool | None = None,
        address_remap: Callable[[tuple[str, int]], tuple[str, int]] | None = None,
    ) -> None:
        if not isinstance(url, str):
            raise BatchConfigError(f"RedisStore(): url must be a str, got {url!r}")
        #: the URL, with its password masked: safe to show
        self.url = masked(url)
        where = f"RedisStore({self.url!r})"
        super().__init__(serializer, on_store_error, where, retry_after=retry_after)
        self._secrets = secrets_of(url)
        self.ttl = self._check_ttl(ttl)
        if not seconds(timeout):
            raise BatchConfigError(
                f"{where}: timeout must be a number of seconds > 0, got {timeout!r} "
                f"{MAX_SECONDS_TEXT}"
            )
        if not isinstance(prefix, str) or not prefix:
            raise BatchConfigError(
                f"{where}: prefix must be a non-empty str, got {prefix!r} (an empty prefix "
                "would make clear(), len() and stats() take every key of the database)"
            )
        fault = database_fault(url)
        if fault is not None:
            raise BatchConfigError(f"{where}: url: {fault}")
        self.timeout = float(timeout)
        self.prefix = prefix
        #: where leases live: apart from the entries (``batche:`` -> ``batche-lease:``)
        self.lease_prefix = (prefix[:-1] if prefix.endswith(":") else prefix) + "-lease:"
        try:
            self.client = sync_client(url, self.timeout)
        except ValueError as exc:
            raise BatchConfigError(f"{where}: not a Redis URL: {self._scrub(str(exc))}") from None
        self._loops = LoopClients(functools.partial(async_client, url, self.timeout))
        self._init_mode(url, cluster, address_remap)

    # -- entries: through the circuit breaker (RemoteStore.get_many and the others) -------

    def _read_rows(self, keys: Sequence[str]) -> Rows:
        return bounded(self.timeout, self._read_now, keys)

    def _read_now(self, keys: Sequence[str]) -> Rows:
        on = self._clustered()
        if on is not None:
            return on.nodes.run("read", on.reading(keys))
        return rows(keys, self.client.mget(self._full(keys)))

    async def _aread_rows(self, keys: Sequence[str]) -> Rows:
        ends = time.monotonic() + self.timeout
        on = await self._aclustered(ends)
        if on is not None:
            return await on.nodes.arun("read", on.reading(keys), ends=ends)
        return rows(keys, await until(ends, self._loops.get().mget(self._full(keys))))

    def _writing(self, client: Any, encoded: list[tuple[str, bytes]]) -> Any:
        pipe = client.pipeline(transaction=False)
        prefix = self.prefix
        if self.ttl is None:
            pipe.mset({prefix + key: data for key, data in encoded})
        else:
            px = max(1, int(self.ttl * 1000))
            for key, data in encoded:
                pipe.set(prefix + key, data, px=px)
        return pipe

    def _write_rows(self, encoded: list[tuple[str, bytes]]) -> None:
        bounded(self.timeout, self._write_now, encoded)

    def _write_now(self, encoded: list[tuple[str, bytes]]) -> None:
        on = self._clustered()
        if on is not None:
            on.nodes.run("write", on.writing(encoded))
        else:
            self._writing(self.client, encoded).execute()

    async def _awrite_rows(self, encoded: list[tuple[str, bytes]]) -> None:
        ends = time.monotonic() + self.timeout
        on = await self._aclustered(ends)
        if on is not None:
            await on.nodes.arun("write", on.writing(encoded), ends=ends)
        else:
            await until(ends, self._writing(self._loops.get(), encoded).execute())

    # -- connections -----------------------------------------------------------------------

    def close(self) -> None:
        """Close the sync client's connections, and forget the asyncio clients of loops
        closed without shutting down. The store stays usable: it connects again."""
        self.client.close()
        self._loops.drop_closed()
        if self._on_cluster is not None:
            self._on_cluster.nodes.close()

    async def aclose(self) -> None:
        """Close the running loop's asyncio client now (it is closed anyway when the loop
        shuts down, as at the end of ``asyncio.run``)."""
        await self._loops.aclose()
        if self._on_cluster is not None:
            await self._on_cluster.nodes.loops.aclose()

    def __repr__(self) -> str:
        return f"RedisStore({self.url!r}, ttl={self.ttl}, prefix={self.prefix!r})"
