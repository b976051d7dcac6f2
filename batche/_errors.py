"""The exceptions batche raises.

Every error derives from :class:`BatcheError` (also exported under its 0.1.1 name
``BatcheException``), and each specific error also derives from the builtin a user would
catch for that fault, so ``except TypeError`` keeps working around a decorated call.
"""

from __future__ import annotations

import copy
from types import TracebackType

__all__ = [
    "BatchArgumentError",
    "BatchConfigError",
    "BatchDefinitionError",
    "BatchItemsError",
    "BatchResultError",
    "BatcheError",
    "BatcheException",
    "for_one_more_caller",
]


class BatcheError(Exception):
    """Base class of every error batche raises."""


#: The name batche 0.1.1 gave its only exception; the same class as :class:`BatcheError`.
BatcheException = BatcheError


class BatchDefinitionError(BatcheError, TypeError):
    """The decorator's configuration does not fit the function it decorates."""


class BatchArgumentError(BatcheError, TypeError):
    """A call of a decorated function passed a batch or argument batche cannot use."""


class BatchResultError(BatcheError, ValueError):
    """The wrapped function returned something other than one result per item."""


class BatchConfigError(BatcheError, ValueError):
    """A store was configured with a value it cannot use."""


class BatchItemsError(BatcheError):
    """Some items of a call failed on their own (``isolate=``); every other item has its result.

    ``errors`` maps each failing position of the caller's batch (every position of a
    repeated item) to its exception; ``results`` is the call's answer in input order,
    with the exception object at each failing position. The first error is the
    ``__cause__``. It derives from ``BatcheError`` only: what failed is the function's
    own exceptions, of whatever types it raises, and they are in ``errors``.
    """

    def __init__(self, message: str, errors: dict[int, BaseException], results: list[object]):
        super().__init__(message, errors, results)
        self.errors = errors
        self.results = results

    def __str__(self) -> str:
        return str(self.args[0])


def for_one_more_caller(error: BaseException, trace: TracebackType | None) -> BaseException:
    """A copy of ``error`` for one of the callers a failure is shared by, to raise.

    Raising one exception object in many callers would add every caller's frames to its
    ``__traceback__`` (which grows, and keeps them all alive). The copy has the type, the
    ``args``, the attributes (notes included), ``__cause__`` and ``__context__`` of
    ``error``; its traceback is ``trace`` (where the computation failed), to which the
    caller's own frames are added as it propagates. It is made as ``copy.copy`` makes it;
    an exception whose ``__init__`` does not take its ``args`` back (a custom signature)
    is made without calling ``__init__``. One that cannot be made either way is returned
    itself, as before.
    """
    twin = _copy(error)
    if twin is None:
        return error
    twin.__cause__ = error.__cause__  # (this sets __suppress_context__: restored below)
    twin.__context__ = error.__context__
    twin.__suppress_context__ = error.__suppress_context__
    return twin.with_traceback(trace)


def _copy(error: BaseException) -> BaseException | None:
    """``copy.copy(error)``, or the same made without ``__init__``; None if neither works."""
    cls = type(error)
    try:
        twin = copy.copy(error)
        if type(twin) is cls and _same(twin.args, error.args):
            return twin
    except Exception:  # noqa: BLE001, S110 - an __init__ that does not take its args back
        pass
    try:
        twin = cls.__new__(cls, *error.args)
        twin.args = error.args
        twin.__dict__.update(error.__dict__)
    except Exception:  # noqa: BLE001 - a __new__ of its own
        return None
    return twin if type(twin) is cls else None


def _same(these: tuple[object, ...], those: tuple[object, ...]) -> bool:
    # By identity: a copy holds the very same args (and == may not be defined on them).
    return len(these) == len(those) and all(a is b for a, b in zip(these, those))
