"""Import path kept from batche 0.1.1 (``from batche.batche import BatcheException``)."""

from __future__ import annotations

from ._decorator import cache_batch_variable
from ._errors import BatcheException

__all__ = ["BatcheException", "cache_batch_variable"]
