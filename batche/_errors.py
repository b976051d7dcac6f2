"""The exceptions batche raises.

Every error derives from :class:`BatcheError` (also exported under its 0.1.1 name
``BatcheException``), and each specific error also derives from the builtin a user would
catch for that fault, so ``except TypeError`` keeps working around a decorated call.
"""

from __future__ import annotations

__all__ = [
    "BatchArgumentError",
    "BatchConfigError",
    "BatchDefinitionError",
    "BatchItemsError",
    "BatchResultError",
    "BatcheError",
    "BatcheException",
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
