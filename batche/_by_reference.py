"""Decorated functions pickle and copy as the name they are imported by, as functions do."""

from __future__ import annotations

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
