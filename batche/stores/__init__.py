"""Stores batche keeps results in: in memory, in a SQLite file, in Redis."""

from __future__ import annotations

from typing import Any

from ._base import Store, StoreError
from ._memory import LRUStore, MemoryStore
from ._sqlite import SQLiteStore

__all__ = ["LRUStore", "MemoryStore", "RedisStore", "SQLiteStore", "Store", "StoreError"]


def __getattr__(name: str) -> Any:
    # RedisStore needs the redis package (pip install 'batche[redis]'): imported on use.
    if name == "RedisStore":
        from ._redis import RedisStore

        return RedisStore
    raise AttributeError(f"module 'batche.stores' has no attribute {name!r}")
