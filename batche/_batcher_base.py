"""What the sync and async batchers share: their options, the shape of a call, the queue
they make; and the exit hook that closes every live batcher before the interpreter ends."""

from __future__ import annotations

import atexit
import contextvars
import os
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from ._api_options import ApiOptions
from ._binding import display_name
from ._by_reference import ByReference
from ._errors import BatchArgumentError, BatcheError
from ._methods import BoundBatcher, batcher_of, instances_of
from ._queue import Piece, Queue, gather
from ._shapes import Shape

__all__ = ["BatcherBase", "BatcherClosedError"]

B = TypeVar("B", bound="BatcherBase")


class BatcherClosedError(BatcheError, RuntimeError):
    """The batcher was closed: the call was refused, or could not run before shutdown."""


_LIVE: weakref.WeakSet[BatcherBase] = weakref.WeakSet()

#: The batchers whose batch runs in this context: set by a worker thread for its life, and
#: by a batch's task for its own (each has a context of its own, so it is never reset).
_RUNNING: contextvars.ContextVar[frozenset[int]] = contextvars.ContextVar(
    "batche_running_batches", default=frozenset()
)


def _close_all() -> None:
    """At interpreter exit, queued requests are run (sync) or failed, never left waiting."""
    for batcher in list(_LIVE):
        batcher._shutdown(wait=True)


# Python joins its non-daemon threads before atexit handlers run; a thread waiting on a
# batch would hold the exit up until its batch's timeout. threading's own exit hook (the
# one concurrent.futures uses) runs before that join; atexit is the fallback.
_register_early = getattr(threading, "_register_atexit", None)
if _register_early is not None:
    _register_early(_close_all)
else:  # pragma: no cover - every supported CPython has it
    atexit.register(_close_all)


def _reset_all_in_child() -> None:
    """In a forked child, only the forking thread lives on: the workers, and whatever
    lock another thread held, stayed in the parent. Each batcher starts afresh."""
    for batcher in list(_LIVE):
        batcher._after_fork()


if hasattr(os, "register_at_fork"):  # not on Windows, which does not fork
    os.register_at_fork(after_in_child=_reset_all_in_child)


class BatcherBase(ByReference):
    """State shared by the sync and async batchers of one function (or one instance)."""

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        batch_size: int,
        timeout_ms: float,
        concurrency: int,
        max_queue: int | None,
        small_batch_threshold: int,
        pad_token: Mapping[str, Any] | None,
        api: ApiOptions | None = None,
    ) -> None:
        self.__wrapped__ = func
        self._fname = display_name(func)
        self._batch_size = batch_size
        self._timeout_s = timeout_ms / 1000
        self._concurrency = concurrency
        self._max_queue = max_queue
        self._small = small_batch_threshold
        self._pad_token = pad_token
        self._shape = Shape(func, self._fname, pad_token)
        #: one list parameter, no padding: ``.one(item)`` needs no binding
        self._plain = len(self._shape.names) == 1 and self._shape.padder is None
        self._closed = False
        #: a method's batcher (on the class): each call carries its instance first, and is
        #: run by that instance's own batcher (``_methods``), one of ``_instances``
        self._method = self._shape.method
        self._instances: weakref.WeakSet[BatcherBase] = weakref.WeakSet()  # _methods._LOCK
        #: isolate=, cost=, max_batch_cost=, rate_limit= (None: none given): batches then
        #: run through ``_batch_engine``
        self._api = api
        _LIVE.add(self)

    def _new_queue(self) -> Queue:
        api = self._api
        if api is None:
            return Queue(self._batch_size, self._timeout_s, self._small, self._max_queue)
        where = (self._fname, ", ".join(map(repr, self._shape.names)))
        return Queue(
            self._batch_size, self._timeout_s, self._small, self._max_queue,
            api.cost, api.max_batch_cost, where, keep_whole=api.isolates is not None,
        )  # fmt: skip

    def _call(self, func: Callable[..., Any], pieces: list[Piece]) -> Any:
        """Call ``func`` on the batch these pieces make (on their instance, for a method)."""
        args, kwargs = self._call_args(pieces)
        return func(*args, **kwargs)

    def _call_args(self, pieces: list[Piece]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The arguments of the call of the function on the batch these pieces make
        (its instance first, for a method)."""
        args, kwargs = self._shape.call_args(gather(pieces))
        instance = pieces[0][0].instance  # every request of an instance's batcher has it
        if instance is not None:
            return (instance, *args), kwargs
        return args, kwargs

    def _of(self: B, args: tuple[Any, ...]) -> B:
        """For a method's batcher: the batcher of the instance a call passes first."""
        if not args:
            raise BatchArgumentError(
                f"{self._fname}: a batched method is called on an instance, "
                f"obj.{self._fname[:-2].rsplit('.', 1)[-1]}(...), or with the instance first"
            )
        return cast(B, batcher_of(self, args[0]))

    def _for_instance(self: B) -> B:
        """A batcher of this method for one instance (``_methods.batcher_of``)."""
        batcher = type(self)(self.__wrapped__, **self._options())
        batcher._method = False  # its calls come with the instance apart (BoundBatcher)
        return batcher

    def _close_instances(self, wait: bool) -> None:
        for batcher in instances_of(self):
            batcher._shutdown(wait)

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        return BoundBatcher(batcher_of(self, obj), obj)

    def _running_here(self) -> None:
        """Mark this context (a worker thread, a batch's task) as running this batcher."""
        _RUNNING.set(_RUNNING.get() | {id(self)})

    def _refuse_reentry(self) -> None:
        """A call made from inside this batcher's own batch, with one batch at a time, would
        wait for a batch that cannot start until it returns: refused rather than hung."""
        if self._concurrency == 1 and id(self) in _RUNNING.get():
            raise self._closed_error(
                "it was made from inside the batch it would wait for, and with "
                "concurrency=1 that batch never ends; call the function itself "
                f"({self._fname[:-2].rsplit('.', 1)[-1]}.__wrapped__) for the inner items"
            )

    def _closed_error(self, why: str = "it was closed") -> BatcherClosedError:
        return BatcherClosedError(f"{self._fname}: the batcher cannot take this call: {why}")

    def _options(self) -> dict[str, Any]:
        return {
            "batch_size": self._batch_size,
            "timeout_ms": self._timeout_s * 1000,
            "concurrency": self._concurrency,
            "max_queue": self._max_queue,
            "small_batch_threshold": self._small,
            "pad_token": self._pad_token,
            "api": self._api,
        }

    def _shutdown(self, wait: bool) -> None:
        raise NotImplementedError

    def _after_fork(self) -> None:
        """In a forked child: drop the parent's workers, locks and queued calls."""
        raise NotImplementedError

    def _referenced(self) -> tuple[Callable[..., Any], str]:
        return self.__wrapped__, self._fname

    def __repr__(self) -> str:
        return f"<dynamically batched {self._fname[:-2]}>"
