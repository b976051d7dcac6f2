"""batche: per-item caching for list-in/list-out functions (embeddings, inference)."""

from __future__ import annotations

from ._batcher_base import BatcherClosedError
from ._batchers import AsyncBatcher, SyncBatcher
from ._decorator import cache_batch_variable
from ._dynamically import dynamically
from ._errors import (
    BatchArgumentError,
    BatchConfigError,
    BatchDefinitionError,
    BatcheError,
    BatcheException,
    BatchItemsError,
    BatchResultError,
)
from ._keys import UnstableKeyError
from ._ratelimit import RateLimit
from ._serialize import SerializationError
from ._stats import BatcherStats
from ._store_access import CacheInfo
from ._wrappers import AsyncCachedBatchFunction, CachedBatchFunction
from .stores._base import StoreError

__all__ = [
    "AsyncBatcher",
    "AsyncCachedBatchFunction",
    "BatchArgumentError",
    "BatchConfigError",
    "BatchDefinitionError",
    "BatchItemsError",
    "BatchResultError",
    "BatcheError",
    "BatcheException",
    "BatcherClosedError",
    "BatcherStats",
    "CacheInfo",
    "CachedBatchFunction",
    "RateLimit",
    "SerializationError",
    "StoreError",
    "SyncBatcher",
    "UnstableKeyError",
    "cache_batch_variable",
    "dynamically",
]

__version__ = "0.2.0"
