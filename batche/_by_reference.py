"""Decorated functions pickle and copy as the name they are imported by, as functions do."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable
from typing import Any


class ByReference:
    """Pickled, copied and deep-copied by reference, as ``functools.lru_cache`` functions are.

    A worker process imports the module and finds the object under its name, with state of
    its own: a store's connections, a batcher's queue and threads cannot travel.
    """

    def _referenced(self) -> tuple[Callable[..., Any], str]:
        """The function wrapped and the name errors give it ("embed()")."""
        raise NotImplementedError

    def __reduce__(self) -> str:
        func, fname = self._referenced()
        name = getattr(func, "__qualname__", None)
        if not isinstance(name, str):
            raise pickle.PicklingError(
                f"{fname}: cannot be pickled: it wraps "
                f"{type(func).__name__}, which has no name to be imported by"
            )
        return name

    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: Any) -> Any:
        return self


class BoundByReference:
    """A decorated method bound to its instance: pickled and deep-copied as a bound method
    is (the instance, and the name to look it up by)."""

    __slots__ = ()

    def _bound(self) -> tuple[Any, str]:
        """The instance (or class) and the method's name."""
        raise NotImplementedError

    def __reduce__(self) -> tuple[Any, ...]:
        return getattr, self._bound()

    def __deepcopy__(self, memo: Any) -> Any:
        # bound to a copy of its instance; without this, the __getattr__ of a bound method
        # would hand over its function's own __deepcopy__, which returns the unbound one
        obj, name = self._bound()
        return getattr(copy.deepcopy(obj, memo), name)
