"""Leases in Redis: across processes, one computation per key (``lock=True``)."""

from __future__ import annotations

import time
from collections.abc import Generator, Sequence
from operator import methodcaller
from typing import Any

from ._redis_cluster import RELEASE, AsyncClusterKeys, AsyncNodePubSub, ClusterKeys, NodePubSub
from ._redis_io import Op, Step, adrive, bounded, drive, rows, until, within
from ._redis_mode import ClusterMode

__all__ = ["RedisLeases"]


class RedisLeases(ClusterMode):
    """Leases per key (``SET NX PX``), released with a message on a channel.

    Leases live under ``lease_prefix``, never under the entries' prefix: scans, counts
    and ``clear`` never see them. Every operation goes through the circuit breaker: when
    Redis fails or is skipped, ``lease_many`` hands every key to the caller (computed
    here, as without ``lock=True``), ``release_many`` does nothing and ``follow_many``
    returns what it found so far (nothing): nobody waits on a store that is not there.
    """

    @property
    def _channel(self) -> str:
        return f"{self.prefix}released"

    def _leasing(self, client: Any, keys: Sequence[str], token: str, timeout: float) -> Any:
        pipe = client.pipeline(transaction=False)
        px = max(1, int(timeout * 1000))
        for key in keys:
            pipe.set(self.lease_prefix + key, token, nx=True, px=px)
        return pipe

    def _releasing(self, client: Any, keys: Sequence[str], token: str) -> Any:
        pipe = client.pipeline(transaction=False)
        pipe.eval(RELEASE, len(keys), *[self.lease_prefix + key for key in keys], token)
        pipe.publish(self._channel, b"")
        return pipe

    def lease_many(self, keys: Sequence[str], token: str, timeout: float) -> list[str]:
        """Take the lease of each key nobody holds, for ``timeout`` seconds; the keys
        leased, in order (all of them when the store fails: compute them here)."""
        if not keys:
            return []
        args = (keys, token, timeout)
        taken = self._guarded("lease", self._lease, args, [True] * len(keys))
        return [key for key, ok in zip(keys, taken) if ok]

    def _lease(self, args: tuple[Sequence[str], str, float]) -> Any:
        return bounded(self.timeout, self._lease_now, *args)

    def _lease_now(self, keys: Sequence[str], token: str, timeout: float) -> Any:
        on = self._clustered()
        if on is not None:
            return on.nodes.run("lease", on.leasing(keys, token, timeout))
        return self._leasing(self.client, keys, token, timeout).execute()

    async def alease_many(self, keys: Sequence[str], token: str, timeout: float) -> list[str]:
        if not keys:
            return []
        args = (keys, token, timeout)
        taken = await self._aguarded("lease", self._alease, args, [True] * len(keys))
        return [key for key, ok in zip(keys, taken) if ok]

    async def _alease(self, args: tuple[Sequence[str], str, float]) -> Any:
        keys, token, timeout = args
        ends = time.monotonic() + self.timeout
        on = await self._aclustered(ends)
        if on is not None:
            return await on.nodes.arun("lease", on.leasing(keys, token, timeout), ends=ends)
        return await until(ends, self._leasing(self._loops.get(), keys, token, timeout).execute())

    def release_many(self, keys: Sequence[str], token: str) -> None:
        """Give back the leases still ours, and wake whoever follows them."""
        if keys:
            self._guarded("release", self._release, (keys, token), 0)

    def _release(self, args: tuple[Sequence[str], str]) -> Any:
        return bounded(self.timeout, self._release_now, *args)

    def _release_now(self, keys: Sequence[str], token: str) -> Any:
        on = self._clustered()
        if on is not None:
            return on.nodes.run("release", on.releasing(keys, token))
        return self._releasing(self.client, keys, token).execute()

    async def arelease_many(self, keys: Sequence[str], token: str) -> None:
        if keys:
            await self._aguarded("release", self._arelease, (keys, token), 0)

    async def _arelease(self, args: tuple[Sequence[str], str]) -> Any:
        keys, token = args
        ends = time.monotonic() + self.timeout
        on = await self._aclustered(ends)
        if on is not None:
            return await on.nodes.arun("release", on.releasing(keys, token), ends=ends)
        return await until(ends, self._releasing(self._loops.get(), keys, token).execute())

    def follow_many(self, keys: Sequence[str], timeout: float) -> dict[str, Any]:
        """Wait for keys leased by others: return once each has a value or no lease (its
        holder failed or its lease expired), or after ``timeout``; the values found.

        Each round trip and each wait goes through the circuit breaker on its own (a
        follow may last ``timeout``): when the store fails or is skipped, it returns
        what it found so far.
        """
        on = self._on()
        client: Any = self.client if on is None else ClusterKeys(on)
        pubsub: Any = (
            self.client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
            if on is None
            else NodePubSub(on.nodes)
        )

        def trip(op: Op) -> Any:
            return self._guarded("follow leases", self._trip, (op, client), _GONE)

        def wait(seconds: float) -> Any:
            return self._guarded("follow leases", _message, (pubsub, seconds), _GONE)

        try:
            # subscribed before the first read: no release is missed
            if trip(lambda _: pubsub.subscribe(self._channel)) is _GONE:
                return {}
            return drive(self._following(keys, timeout), trip, wait)
        finally:
            pubsub.close()

    async def afollow_many(self, keys: Sequence[str], timeout: float) -> dict[str, Any]:
        on = self._on()
        client: Any = self._loops.get() if on is None else AsyncClusterKeys(on)
        pubsub: Any = (
            client.pubsub(ignore_subscribe_messages=True)
            if on is None
            else AsyncNodePubSub(on.nodes)
        )

        async def trip(op: Op) -> Any:
            return await self._aguarded("follow leases", self._atrip, (op, client), _GONE)

        async def wait(seconds: float) -> Any:
            return await self._aguarded("follow leases", _amessage, (pubsub, seconds), _GONE)

        try:
            if await trip(lambda _: pubsub.subscribe(self._channel)) is _GONE:
                return {}
            return await adrive(self._following(keys, timeout), trip, wait)
        finally:
            await pubsub.aclose()

    def _trip(self, args: tuple[Op, Any]) -> Any:
        op, client = args
        return bounded(self.timeout, op, client)

    async def _atrip(self, args: tuple[Op, Any]) -> Any:
        op, client = args
        return await within(self.timeout, op(client))

    def _following(
        self, keys: Sequence[str], timeout: float
    ) -> Generator[Step, Any, dict[str, Any]]:
        """Following leases, without I/O: read, check the leases left, wait, again. A
        reply ``_GONE`` (the store failed or is skipped) ends it with what was found."""
        deadline = time.monotonic() + timeout
        full = self._full(keys)
        lease_of = dict(zip(keys, self._leases(keys)))
        found: dict[str, Any] = {}
        while True:
            values = yield methodcaller("mget", full)
            if values is _GONE:
                return found
            found = self._decoded(rows(keys, values))
            leases = [lease_of[key] for key in keys if key not in found]
            leased = (yield methodcaller("exists", *leases)) if leases else 0
            remaining = deadline - time.monotonic()
            if leased is _GONE or leased == 0 or remaining <= 0:
                return found
            if (yield min(remaining, 1.0)) is _GONE:  # until a release is published
                return found


#: the reply of a round trip when the store failed or is skipped
_GONE: Any = object()


def _message(args: tuple[Any, float]) -> Any:
    pubsub, seconds = args
    return pubsub.get_message(timeout=seconds)


async def _amessage(args: tuple[Any, float]) -> Any:
    pubsub, seconds = args
    return await pubsub.get_message(timeout=seconds)
