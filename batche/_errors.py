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
