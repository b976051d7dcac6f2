"""What a store is, and what every store outside the process shares: the serializer, and
faults handled one way (a circuit breaker, logs, errors)."""

from __future__ import annotations

import asyncio
import logging
import pickle
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar, Protocol, TypeVar, cast, runtime_checkable

from .._checks import MAX_SECONDS_TEXT, number_above, seconds
from .._errors import BatchConfigError, BatcheError
from .._serialize import Serializer, resolve
from ._circuit import SKIP, USE, Circuit

__all__ = ["Store", "StoreError"]

log = logging.getLogger("batche")

A = TypeVar("A")
T = TypeVar("T")
Rows = Sequence[tuple[str, bytes]]


class StoreError(BatcheError, RuntimeError):
    """A store could not be read or written (with ``on_store_error="raise"``, or by an
    explicit operation: ``clear``, ``delete_many``, ``stats``)."""


@runtime_checkable
class Store(Protocol):
    """A store of results that ``cache_batch_variable(cache=...)`` accepts.

    Keys are strings (batche makes them stable across processes); ``get_many`` returns
    only the keys it holds (``None`` is a value, absence is a miss). The ``a``-prefixed
    twins do the same without blocking an event loop. ``clear(prefix)`` removes the
    entries whose key starts with ``prefix`` (all of them when it is None) and returns
    how many it removed, when it knows (batche's stores do), or None.
    """

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]: ...

    def set_many(self, mapping: Mapping[str, Any]) -> None: ...

    def delete_many(self, keys: Sequence[str]) -> None: ...

    def clear(self, prefix: str | None = None) -> int | None: ...

    def __len__(self) -> int: ...

    async def aget_many(self, keys: Sequence[str]) -> dict[str, Any]: ...

    async def aset_many(self, mapping: Mapping[str, Any]) -> None: ...

    async def adelete_many(self, keys: Sequence[str]) -> None: ...

    async def aclear(self, prefix: str | None = None) -> int | None: ...


class RemoteStore:
    """What SQLite and Redis stores share: the serializer, and faults handled one way.

    Reads and writes go through a circuit breaker. With ``on_store_error="compute"`` (the
    default) a store that fails (an error, or no answer within its timeout) is treated as
    empty: reads find nothing, writes are dropped, calls return correct results by
    computing. For ``retry_after`` seconds after a failure calls skip the store without
    touching it; then one call at a time tries it again, and the first that succeeds puts
    it back in use. One warning is logged when the trouble starts and one when it ends.
    With ``"raise"`` a failure raises ``StoreError``, and so does a call while the store
    is skipped (at once, without touching it). An entry that cannot be decoded is a miss
    (recomputed, overwritten), logged once per store.

    A subclass reads with ``_read_rows``/``_aread_rows``, writes with ``_write_rows``/
    ``_awrite_rows`` and names the exceptions of its failures in ``errors``; the methods
    here do the rest (the circuit breaker, decoding, logs and errors).
    """

    maxsize: int | None = None
    #: the exceptions that mean "the store failed" (anything else propagates)
    errors: ClassVar[tuple[type[BaseException], ...]] = ()

    def __reduce__(self) -> Any:
        # Its connections and locks belong to this process: say so, rather than pickle's
        # "cannot pickle '_thread.lock' object".
        raise pickle.PicklingError(
            f"{self.where} cannot be pickled: its connections belong to this process; make "
            "the store in each worker process (at module level, or in the pool's "
            "initializer) with the same arguments, and they share its entries"
        )

    def __init__(
        self, serializer: Any, on_store_error: str, where: str, *, retry_after: float = 5.0
    ) -> None:
        if on_store_error not in ("compute", "raise"):
            raise BatchConfigError(
                f"{where}: on_store_error must be 'compute' or 'raise', got {on_store_error!r}"
            )
        if not number_above(retry_after, 0, inclusive=True):
            raise BatchConfigError(
                f"{where}: retry_after must be a number of seconds >= 0, got {retry_after!r}"
            )
        self.serializer: Serializer = resolve(serializer, where)
        self.on_store_error = on_store_error
        self.where = where
        self.retry_after = retry_after
        self._circuit = Circuit(retry_after)
        #: strings never to show in a message (a password in a URL)
        self._secrets: tuple[str, ...] = ()
        self._log_lock = threading.Lock()  # guards _warned_decode, so it is logged once
        self._warned_decode = False

    def _check_ttl(self, ttl: Any) -> float | None:
        """``ttl`` if it is None or a number of seconds > 0 (finite: Redis takes no
        infinite expiry, and None already means none)."""
        if ttl is not None and not seconds(ttl):
            raise BatchConfigError(
                f"{self.where}: ttl must be None or a number of seconds > 0, got {ttl!r} "
                f"{MAX_SECONDS_TEXT}"
            )
        return cast("float | None", ttl)

    # -- reads and writes through the circuit breaker ------------------------------------

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        if not keys:
            return {}
        return self._decoded(self._guarded("read", self._read_rows, keys, ()))

    def set_many(self, mapping: Mapping[str, Any]) -> None:
        if mapping:
            self._guarded("write", self._write_rows, self._encoded(mapping), None)

    async def aget_many(self, keys: Sequence[str]) -> dict[str, Any]:
        if not keys:
            return {}
        return self._decoded(await self._aguarded("read", self._aread_rows, keys, ()))

    async def aset_many(self, mapping: Mapping[str, Any]) -> None:
        if mapping:
            await self._aguarded("write", self._awrite_rows, self._encoded(mapping), None)

    def _read_rows(self, keys: Sequence[str]) -> Rows:
        """The (key, bytes) of the keys present."""
        raise NotImplementedError

    def _write_rows(self, encoded: list[tuple[str, bytes]]) -> None:
        """Store each (key, bytes), all or nothing."""
        raise NotImplementedError

    async def _aread_rows(self, keys: Sequence[str]) -> Rows:
        return await asyncio.get_running_loop().run_in_executor(None, self._read_rows, keys)

    async def _awrite_rows(self, encoded: list[tuple[str, bytes]]) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._write_rows, encoded)

    def _guarded(self, action: str, op: Callable[[A], T], arg: A, fallback: T) -> T:
        """``op(arg)``, or ``fallback`` when the store is skipped or fails."""
        ticket = self._enter(action)
        if ticket == SKIP:
            return fallback
        try:
            value = op(arg)
        except self.errors as exc:
            self._failed(action, exc, ticket)
            return fallback
        except BaseException:
            self._circuit.leave(ticket)
            raise
        self._succeeded(ticket)
        return value

    async def _aguarded(
        self, action: str, op: Callable[[A], Awaitable[T]], arg: A, fallback: T
    ) -> T:
        """``_guarded`` for a coroutine function (the same steps around an await)."""
        ticket = self._enter(action)
        if ticket == SKIP:
            return fallback
        try:
            value = await op(arg)
        except self.errors as exc:
            self._failed(action, exc, ticket)
            return fallback
        except BaseException:  # cancelled, or a bug: no outcome to record
            self._circuit.leave(ticket)
            raise
        self._succeeded(ticket)
        return value

    def _enter(self, action: str) -> int:
        """What this call may do with the store (``SKIP``: raise, when asked to)."""
        ticket = self._circuit.enter()
        if ticket == SKIP and self.on_store_error == "raise":
            circuit = self._circuit
            wait = max(0.0, (circuit.reopens or 0.0) - time.monotonic())
            raise StoreError(
                f"{self.where}: could not {action}: the store failed ({circuit.error}); "
                f"it is tried again in {wait:.1f} s"
            )
        return ticket

    def _failed(self, action: str, exc: BaseException, ticket: int | None = None) -> None:
        """A read or write failed: open the circuit; raise, or log once and go on.

        ``ticket`` is what ``_enter`` gave the call; None for a store that calls this
        directly without consulting the circuit (it then retries at every call).
        """
        error = self._scrub(str(exc) or type(exc).__name__)
        opened = self._circuit.failed(USE if ticket is None else ticket, error)
        if self.on_store_error == "raise":
            raise StoreError(f"{self.where}: could not {action}: {error}") from exc
        if opened:
            retry = "" if ticket is None else f", tried again every {self.retry_after:g} s"
            log.warning(
                "%s: could not %s (%s); computing without the store until it is back%s",
                self.where, action, error, retry,
            )  # fmt: skip

    def _succeeded(self, ticket: int = USE) -> None:
        if self._circuit.succeeded(ticket):
            log.warning("%s: the store is back; caching again", self.where)

    def _error(self, action: str, exc: BaseException) -> StoreError:
        """The error of an explicit operation (clear, delete, stats) that failed."""
        return StoreError(f"{self.where}: could not {action}: {self._scrub(str(exc))}")

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    # -- values --------------------------------------------------------------------------

    def _encoded(self, mapping: Mapping[str, Any]) -> list[tuple[str, bytes]]:
        dumps = self.serializer.dumps
        return [(key, dumps(value)) for key, value in mapping.items()]

    def _decode(self, key: str, data: bytes) -> Any:
        """The value of an entry, or the miss marker when it does not decode."""
        try:
            return self.serializer.loads(data)
        except Exception as exc:  # noqa: BLE001 - any undecodable entry is a miss
            with self._log_lock:
                first, self._warned_decode = not self._warned_decode, True
            if first:
                log.warning(
                    "%s: an entry could not be decoded (%s); it is recomputed and "
                    "overwritten (further ones are not logged)", self.where, exc,
                )  # fmt: skip
            return _UNDECODABLE

    def _decoded(self, rows: Rows) -> dict[str, Any]:
        found = {}
        for key, data in rows:
            value = self._decode(key, data)
            if value is not _UNDECODABLE:
                found[key] = value
        return found


_UNDECODABLE: Any = object()
