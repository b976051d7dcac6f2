"""A store in Redis: shared by every process and machine that reaches the server."""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from .._checks import for_running_loop
from .._errors import BatchConfigError
from ._base import RemoteStore

try:
    import redis
    import redis.asyncio as aredis
except ImportError as exc:  # pragma: no cover - the redis extra is installed in tests
    raise ImportError("RedisStore needs the redis package: pip install 'batche[redis]'") from exc

__all__ = ["RedisStore"]

_CHUNK = 10_000  # keys per command for deletes and scans

# Delete each lease still holding our token (a lease that expired and was taken by
# another process is not ours to delete).
_RELEASE = """
for i, key in ipairs(KEYS) do
    if redis.call('get', key) == ARGV[1] then redis.call('del', key) end
end
return 0
"""


def _escape(pattern: str) -> str:
    """``pattern`` with Redis glob characters taken literally."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in pattern)


class RedisStore(RemoteStore):
    """Results in Redis, shared by many processes and machines.

    One round trip per batch: ``MGET`` to read, one ``MSET`` (or a pipeline of ``SET``
    with an expiry when ``ttl`` is given) to write. Keys are ``prefix + namespace:
    version:digest``. The sync client is shared by threads; async code gets a client of
    its own event loop (redis-py's asyncio clients belong to one loop).

    Example::

        @cache_batch_variable("texts", cache=RedisStore("redis://127.0.0.1:6379/0", ttl=86_400))
        async def embed(texts: list[str]) -> list[list[float]]: ...
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        ttl: float | None = None,
        serializer: Any = "safe",
        on_store_error: str = "compute",
        *,
        prefix: str = "batche:",
        timeout: float = 5.0,
    ) -> None:
        where = f"RedisStore({url!r})"
        super().__init__(serializer, on_store_error, where)
        self.url = url
        self.ttl = self._check_ttl(ttl)
        self.prefix = prefix
        self.timeout = timeout
        try:
            self.client = redis.Redis.from_url(
                url, socket_timeout=timeout, socket_connect_timeout=timeout
            )
        except ValueError as exc:
            raise BatchConfigError(f"{where}: not a Redis URL: {exc}") from None
        self._async_clients: weakref.WeakKeyDictionary[Any, aredis.Redis] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()  # guards _async_clients

    def _async(self) -> aredis.Redis:
        return for_running_loop(
            self._async_clients,
            self._lock,
            lambda loop: aredis.Redis.from_url(
                self.url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout
            ),
        )

    def _full(self, keys: Sequence[str]) -> list[str]:
        prefix = self.prefix
        return [prefix + key for key in keys]

    def _encoded(self, mapping: Mapping[str, Any]) -> dict[str, bytes]:
        dumps = self.serializer.dumps
        prefix = self.prefix
        return {prefix + key: dumps(value) for key, value in mapping.items()}

    def _found(self, keys: Sequence[str], values: Sequence[Any]) -> dict[str, Any]:
        return self._decoded([(k, v) for k, v in zip(keys, values) if v is not None])

    def _ttl_ms(self) -> int | None:
        return None if self.ttl is None else max(1, int(self.ttl * 1000))

    # -- sync --------------------------------------------------------------------------

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        if not keys:
            return {}
        try:
            values = self.client.mget(self._full(keys))
        except redis.RedisError as exc:
            self._failed("read", exc)
            return {}
        self._succeeded()
        return self._found(keys, values)

    def set_many(self, mapping: Mapping[str, Any]) -> None:
        if not mapping:
            return
        encoded = self._encoded(mapping)
        ttl_ms = self._ttl_ms()
        try:
            if ttl_ms is None:
                self.client.mset(encoded)
            else:
                pipe = self.client.pipeline(transaction=False)
                for key, data in encoded.items():
                    pipe.set(key, data, px=ttl_ms)
                pipe.execute()
        except redis.RedisError as exc:
            self._failed("write", exc)
            return
        self._succeeded()

    def delete_many(self, keys: Sequence[str]) -> None:
        full = self._full(keys)
        for start in range(0, len(full), _CHUNK):
            if full[start : start + _CHUNK]:
                self.client.unlink(*full[start : start + _CHUNK])

    def _pattern(self, prefix: str | None) -> str:
        return _escape(self.prefix + (prefix or "")) + "*"

    def clear(self, prefix: str | None = None) -> None:
        batch: list[bytes] = []
        for key in self.client.scan_iter(match=self._pattern(prefix), count=_CHUNK):
            batch.append(key)
            if len(batch) >= _CHUNK:
                self.client.unlink(*batch)
                batch = []
        if batch:
            self.client.unlink(*batch)

    def __len__(self) -> int:
        return sum(1 for _ in self.client.scan_iter(match=self._pattern(None), count=_CHUNK))

    def stats(self) -> dict[str, Any]:
        """Entries, bytes and the entries of each namespace and version."""
        keys = list(self.client.scan_iter(match=self._pattern(None), count=_CHUNK))
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.strlen(key)
        sizes = pipe.execute() if keys else []
        groups: dict[str, int] = {}
        for key in keys:
            group = key.decode()[len(self.prefix) :].rsplit(":", 1)[0]
            groups[group] = groups.get(group, 0) + 1
        return {"entries": len(keys), "bytes": int(sum(sizes)), "groups": groups}

    def close(self) -> None:
        """Close the sync client's connections."""
        self.client.close()

    # -- leases: one computation per key across processes (cache_batch_variable(lock=True))

    def _lease(self, key: str) -> str:
        return f"{self.prefix}lease:{key}"

    @property
    def _channel(self) -> str:
        return f"{self.prefix}released"

    def lease_many(self, keys: Sequence[str], token: str, timeout: float) -> list[str]:
        """Take the lease of each key nobody holds; the keys leased, in order."""
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.set(self._lease(key), token, nx=True, px=max(1, int(timeout * 1000)))
        return [key for key, ok in zip(keys, pipe.execute()) if ok]

    def release_many(self, keys: Sequence[str], token: str) -> None:
        """Give back the leases still ours, and wake whoever follows them."""
        if keys:
            self.client.eval(_RELEASE, len(keys), *map(self._lease, keys), token)
            self.client.publish(self._channel, b"")

    def follow_many(self, keys: Sequence[str], timeout: float) -> dict[str, Any]:
        """Wait for keys leased by others: return once each has a value or no lease (its
        holder failed or its lease expired), or after ``timeout``; the values found."""
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        try:
            pubsub.subscribe(self._channel)  # before reading: no release is missed
            deadline = time.monotonic() + timeout
            while True:
                found, settled = self._followed(keys, self.get_many(keys))
                remaining = deadline - time.monotonic()
                if settled or remaining <= 0:
                    return found
                pubsub.get_message(timeout=min(remaining, 1.0))
        finally:
            pubsub.close()

    def _followed(self, keys: Sequence[str], found: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """``found`` and whether every other key has lost its lease (nothing to wait for)."""
        open_keys = [k for k in keys if k not in found]
        if not open_keys:
            return found, True
        leased = self.client.exists(*map(self._lease, open_keys))
        return found, leased == 0

    async def alease_many(self, keys: Sequence[str], token: str, timeout: float) -> list[str]:
        pipe = self._async().pipeline(transaction=False)
        for key in keys:
            pipe.set(self._lease(key), token, nx=True, px=max(1, int(timeout * 1000)))
        return [key for key, ok in zip(keys, await pipe.execute()) if ok]

    async def arelease_many(self, keys: Sequence[str], token: str) -> None:
        if keys:
            client = self._async()
            await client.eval(_RELEASE, len(keys), *map(self._lease, keys), token)
            await client.publish(self._channel, b"")

    async def afollow_many(self, keys: Sequence[str], timeout: float) -> dict[str, Any]:
        client = self._async()
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self._channel)
            deadline = time.monotonic() + timeout
            while True:
                found = await self.aget_many(keys)
                open_keys = [k for k in keys if k not in found]
                leased = await client.exists(*map(self._lease, open_keys)) if open_keys else 0
                remaining = deadline - time.monotonic()
                if leased == 0 or remaining <= 0:
                    return found
                await pubsub.get_message(timeout=min(remaining, 1.0))
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    # -- async ---------------------------------------------------------------------------

    async def aget_many(self, keys: Sequence[str]) -> dict[str, Any]:
        if not keys:
            return {}
        try:
            values = await self._async().mget(self._full(keys))
        except redis.RedisError as exc:
            self._failed("read", exc)
            return {}
        self._succeeded()
        return self._found(keys, values)

    async def aset_many(self, mapping: Mapping[str, Any]) -> None:
        if not mapping:
            return
        encoded = self._encoded(mapping)
        ttl_ms = self._ttl_ms()
        client = self._async()
        try:
            if ttl_ms is None:
                await client.mset(encoded)
            else:
                pipe = client.pipeline(transaction=False)
                for key, data in encoded.items():
                    pipe.set(key, data, px=ttl_ms)
                await pipe.execute()
        except redis.RedisError as exc:
            self._failed("write", exc)
            return
        self._succeeded()

    async def adelete_many(self, keys: Sequence[str]) -> None:
        full = self._full(keys)
        client = self._async()
        for start in range(0, len(full), _CHUNK):
            if full[start : start + _CHUNK]:
                await client.unlink(*full[start : start + _CHUNK])

    async def aclear(self, prefix: str | None = None) -> None:
        client = self._async()
        batch: list[bytes] = []
        async for key in client.scan_iter(match=self._pattern(prefix), count=_CHUNK):
            batch.append(key)
            if len(batch) >= _CHUNK:
                await client.unlink(*batch)
                batch = []
        if batch:
            await client.unlink(*batch)

    async def aclose(self) -> None:
        """Close the running loop's client (call before the loop ends)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._async_clients.pop(loop, None)
        if client is not None:
            await client.aclose()

    def __repr__(self) -> str:
        return f"RedisStore({self.url!r}, ttl={self.ttl}, prefix={self.prefix!r})"
