"""batche: per-item caching for list-in/list-out functions (embeddings, inference)."""

from __future__ import annotations

from ._decorator import (
    AsyncCachedBatchFunction,
    CachedBatchFunction,
    CacheInfo,
    cache_batch_variable,
)
from ._errors import (
    BatchArgumentError,
    BatchDefinitionError,
    BatcheError,
    BatcheException,
    BatchResultError,
)

__all__ = [
    "AsyncCachedBatchFunction",
    "BatchArgumentError",
    "BatchDefinitionError",
    "BatchResultError",
    "BatcheError",
    "BatcheException",
    "CacheInfo",
    "CachedBatchFunction",
    "cache_batch_variable",
]

__version__ = "0.2.0"
