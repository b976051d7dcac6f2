"""A batched method: each instance gets a batcher of its own, and never outlives it.

The method's batcher (the one on the class) hands each call to the batcher of the instance
it is made on. That batcher is found in a table keyed by the instance's identity, through a
weak reference: it holds the instance only through the requests it has not answered yet.
Once the program drops the instance, the instance is freed and its batcher is closed: its
worker thread ends, its dispatcher tasks return.

The closing is done by one thread for the whole process, the reaper. An instance may be
freed anywhere: by garbage collection in any thread, even in a worker holding its batcher's
lock, where closing on the spot could deadlock or miss a sleeping worker. The weak
reference's callback only puts the batcher on a ``SimpleQueue``, which is safe to call from
such callbacks (``concurrent.futures`` wakes its workers the same way).
"""

from __future__ import annotations

import inspect
import logging
import os
import queue
import threading
import weakref
from typing import TYPE_CHECKING, Any

from ._by_reference import BoundByReference
from ._errors import BatchDefinitionError

if TYPE_CHECKING:
    from ._batcher_base import BatcherBase

__all__ = ["BoundBatcher", "batcher_of", "instances_of"]


class _Instance(weakref.ref):  # type: ignore[type-arg]
    """A weak reference to an instance, with the batchers of its batched methods."""

    __slots__ = ("batchers", "key")

    def __new__(cls, obj: Any, key: int) -> _Instance:
        return super().__new__(cls, obj, _gone)

    def __init__(self, obj: Any, key: int) -> None:
        self.key = key
        #: the method's batcher (on the class) -> this instance's own batcher
        self.batchers: dict[BatcherBase, BatcherBase] = {}


# id(instance) -> its entry. Keyed by identity, not by the instance: an instance that is
# unhashable (a dataclass), or equal to another one, still gets batchers of its own. An id
# is not reused before the entry leaves: the weak reference's callback runs before the
# instance's memory is freed.
_TABLE: dict[int, _Instance] = {}
_LOCK = threading.Lock()  # guards adding to _TABLE, an entry, a method's _instances; the reaper
_DEAD: queue.SimpleQueue[BatcherBase] = queue.SimpleQueue()  # batchers to close
_reaper: threading.Thread | None = None


def batcher_of(method: BatcherBase, obj: Any) -> BatcherBase:
    """The batcher of ``method`` for the instance ``obj``, made on first use."""
    entry = _TABLE.get(id(obj))
    if entry is not None:
        found = entry.batchers.get(method)
        if found is not None:
            return found
    with _LOCK:
        entry = _TABLE.get(id(obj))
        if entry is None:
            try:
                entry = _Instance(obj, id(obj))
            except TypeError:
                raise BatchDefinitionError(
                    f"{method._fname}: a batched method needs its instance first, and instances "
                    f"that support weak references; {type(obj).__name__} does not (add "
                    "'__weakref__' to its __slots__)"
                ) from None
            _TABLE[entry.key] = entry
        found = entry.batchers.get(method)
        if found is None:
            found = entry.batchers[method] = method._for_instance()
            method._instances.add(found)
            _start_reaper()
    if method._closed:  # closed for every instance, this one too (outside the lock)
        found._shutdown(wait=False)
    return found


def instances_of(method: BatcherBase) -> list[BatcherBase]:
    """The batchers of ``method``'s live instances."""
    with _LOCK:  # batcher_of may add one meanwhile
        return list(method._instances)


def _gone(entry: _Instance) -> None:
    """The instance was freed: forget it, and have its batchers closed."""
    # No lock: this may run in a thread that holds _LOCK (garbage collection runs anywhere).
    # A dict's pop is atomic, and nothing else touches a dead instance's entry.
    _TABLE.pop(entry.key, None)
    for batcher in entry.batchers.values():
        _DEAD.put(batcher)
    entry.batchers = {}


def _start_reaper() -> None:
    """Start the reaper thread unless it runs (_LOCK is held)."""
    global _reaper
    if _reaper is None or not _reaper.is_alive():  # not alive: also after a fork
        _reaper = threading.Thread(target=_reap, name="batche-reaper", daemon=True)
        _reaper.start()


def _after_fork_in_child() -> None:
    global _LOCK
    _LOCK = threading.Lock()  # another thread of the parent may have held it


if hasattr(os, "register_at_fork"):  # not on Windows, which does not fork
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _reap() -> None:
    while True:
        _close(_DEAD.get())


def _close(batcher: BatcherBase) -> None:
    """Close the batcher of a freed instance (nothing is queued: requests hold instances)."""
    try:
        batcher._shutdown(wait=False)
    except Exception:  # the reaper must go on; a failure is reported, not swallowed
        logging.getLogger("batche").exception("closing %r failed", batcher)


class BoundBatcher(BoundByReference):
    """A batched method bound to its instance, as a bound method is; ``.one``, ``.acall``,
    ``.stats`` and ``.close()`` are those of the instance's own batcher."""

    __slots__ = ("__self__", "_batcher")

    def __init__(self, batcher: BatcherBase, obj: Any) -> None:
        self._batcher: Any = batcher
        self.__self__ = obj

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._batcher._run(self.__self__, args, kwargs)

    def one(self, *args: Any, **kwargs: Any) -> Any:
        return self._batcher._one(self.__self__, args, kwargs)

    def acall(self, *args: Any, **kwargs: Any) -> Any:
        return self._batcher._acall(self.__self__, args, kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._batcher, name)

    @property
    def __signature__(self) -> inspect.Signature:
        """The method's, without its first parameter (as a bound method's)."""
        signature = inspect.signature(self._batcher.__wrapped__)
        return signature.replace(parameters=list(signature.parameters.values())[1:])

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, BoundBatcher)
            and other._batcher is self._batcher
            and other.__self__ is self.__self__
        )

    def __hash__(self) -> int:
        return hash((id(self._batcher), id(self.__self__)))

    def _bound(self) -> tuple[Any, str]:
        return self.__self__, self._batcher.__wrapped__.__name__

    def __repr__(self) -> str:
        return f"<bound {self._batcher!r} of {self.__self__!r}>"
