"""What a store is, and what every store outside the process shares (errors, decoding)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, cast, runtime_checkable

from .._checks import number_above
from .._errors import BatchConfigError, BatcheError
from .._serialize import Serializer, resolve

__all__ = ["Store", "StoreError"]

log = logging.getLogger("batche")


class StoreError(BatcheError, RuntimeError):
    """A store could not be read or written (with ``on_store_error="raise"``)."""


@runtime_checkable
class Store(Protocol):
    """A store of results that ``cache_batch_variable(cache=...)`` accepts.

    Keys are strings (batche makes them stable across processes); ``get_many`` returns
    only the keys it holds (``None`` is a value, absence is a miss). The ``a``-prefixed
    twins do the same without blocking an event loop. ``clear(prefix)`` removes the
    entries whose key starts with ``prefix`` (all of them when it is None).
    """

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]: ...

    def set_many(self, mapping: Mapping[str, Any]) -> None: ...

    def delete_many(self, keys: Sequence[str]) -> None: ...

    def clear(self, prefix: str | None = None) -> None: ...

    def __len__(self) -> int: ...

    async def aget_many(self, keys: Sequence[str]) -> dict[str, Any]: ...

    async def aset_many(self, mapping: Mapping[str, Any]) -> None: ...

    async def adelete_many(self, keys: Sequence[str]) -> None: ...

    async def aclear(self, prefix: str | None = None) -> None: ...


class RemoteStore:
    """What SQLite and Redis stores share: the serializer, and faults handled one way.

    With ``on_store_error="compute"`` (the default) a store that fails is treated as
    empty: calls still return correct results by computing, one warning is logged when
    the trouble starts and one when it ends. With ``"raise"`` the error propagates as a
    ``StoreError``. An entry that cannot be decoded is a miss (recomputed, overwritten),
    logged once per store.
    """

    maxsize: int | None = None

    def __init__(self, serializer: Any, on_store_error: str, where: str) -> None:
        if on_store_error not in ("compute", "raise"):
            raise BatchConfigError(
                f"{where}: on_store_error must be 'compute' or 'raise', got {on_store_error!r}"
            )
        self.serializer: Serializer = resolve(serializer, where)
        self.on_store_error = on_store_error
        self.where = where
        # Guards the two "already logged" flags, so each message is logged once.
        self._log_lock = threading.Lock()
        self._failing = False
        self._warned_decode = False

    def _check_ttl(self, ttl: Any) -> float | None:
        """``ttl`` if it is None or a number of seconds > 0."""
        if ttl is not None and not number_above(ttl, 0):
            raise BatchConfigError(
                f"{self.where}: ttl must be None or a number of seconds > 0, got {ttl!r}"
            )
        return cast("float | None", ttl)

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

    def _failed(self, action: str, exc: BaseException) -> None:
        """A read or write failed: raise, or log once and go on computing."""
        if self.on_store_error == "raise":
            raise StoreError(f"{self.where}: could not {action}: {exc}") from exc
        with self._log_lock:
            first, self._failing = not self._failing, True
        if first:
            log.warning(
                "%s: could not %s (%s); computing without the store until it is back",
                self.where, action, exc,
            )  # fmt: skip

    def _succeeded(self) -> None:
        if self._failing:
            with self._log_lock:
                was, self._failing = self._failing, False
            if was:
                log.warning("%s: the store is back; caching again", self.where)

    def _decoded(self, rows: Sequence[tuple[str, bytes]]) -> dict[str, Any]:
        found = {}
        for key, data in rows:
            value = self._decode(key, data)
            if value is not _UNDECODABLE:
                found[key] = value
        return found


_UNDECODABLE: Any = object()
